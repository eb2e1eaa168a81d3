"""fastconv.datasets: IDX files, search order, downloads, and the bundled sample.

No test touches the network: downloads come from an HTTP server on 127.0.0.1
serving small generated IDX files, and ``$HOME`` / ``$FASTCONV_DATA`` are
redirected to temporary directories.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fastconv.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    fashion_mnist,
    mnist,
    read_idx,
    write_idx,
)
from fastconv.datasets._files import IDX_FILES

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = pytest.mark.parametrize("module", [mnist, fashion_mnist], ids=["mnist", "fashion"])


def make_dataset(seed: int, n_train: int = 20, n_test: int = 10):
    """Small random uint8 images (N, 28, 28) and labels (N,), different per seed."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    return (x_train, y_train), (x_test, y_test)


def write_dataset(directory: Path, data, gz: bool = True) -> Path:
    """Write ``data`` as the four IDX files (gzipped or plain) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = data
    for name, array in zip(IDX_FILES, (x_train, y_train, x_test, y_test), strict=True):
        write_idx(directory / (name if gz else name.removesuffix(".gz")), array)
    return directory


def assert_same(loaded, expected) -> None:
    for got, want in zip((*loaded[0], *loaded[1]), (*expected[0], *expected[1]), strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Redirect the cache (``$HOME``) into tmp_path and unset ``$FASTCONV_DATA``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    return home


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``directory``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request into the test output."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], tuple]]:
    """A local HTTP mirror of a generated dataset: (base URL, SHA-256 per file, data)."""
    data = make_dataset(seed=7)
    root = write_dataset(tmp_path / "mirror", data)
    hashes = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in IDX_FILES}
    with serve(root) as url:
        yield url, hashes, data


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --- IDX format ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path: Path, dtype: str, name: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.flags.writeable
    np.testing.assert_array_equal(got, array)


def test_idx_bytes_match_the_format(tmp_path: Path) -> None:
    write_idx(tmp_path / "u8", np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    assert (tmp_path / "u8").read_bytes() == bytes.fromhex("00000802 00000002 00000003 010203040506")
    write_idx(tmp_path / "i16", np.array([1, -2], np.int16))
    assert (tmp_path / "i16").read_bytes() == bytes.fromhex("00000b01 00000002 0001 fffe")


def test_idx_gzip_is_detected_by_content(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "labels.gz", array)
    (tmp_path / "labels.gz").rename(tmp_path / "labels")
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), array)


HEADER = bytes.fromhex("00000803 00000002 00000002 00000002")  # uint8 (2, 2, 2)

CORRUPT = [
    ("bad-magic", b"\x01\x02" + HEADER[2:] + bytes(8), "bad IDX magic number"),
    ("type-code", b"\x00\x00\x07\x03" + HEADER[4:] + bytes(8), "unknown IDX type code 0x07"),
    ("zero-dims", b"\x00\x00\x08\x00", "0 dimensions"),
    ("short-magic", b"\x00\x00", "truncated IDX header"),
    ("short-dims", HEADER[:10], "truncated IDX header"),
    ("short-payload", HEADER + bytes(7), "truncated IDX payload"),
    ("trailing", HEADER + bytes(9), "trailing bytes"),
]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("content", "match"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupt_idx_raises_naming_the_file(
    tmp_path: Path, content: bytes, match: str, gz: bool
) -> None:
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="corrupt gzip data") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_write_idx_rejects_unsupported_arrays(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`array`.*received dtype=uint16"):
        write_idx(tmp_path / "x", np.zeros(3, np.uint16))
    with pytest.raises(TypeError, match="`array`.*numpy.ndarray, received list"):
        write_idx(tmp_path / "x", [1, 2])
    with pytest.raises(ValueError, match=r"`array`.*received shape=\(\)"):
        write_idx(tmp_path / "x", np.array(3, np.uint8))


# --- explicit path -----------------------------------------------------------


@DATASETS
@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_load_from_directory(module, tmp_path: Path, env: Path, gz: bool) -> None:
    data = make_dataset(seed=1)
    assert_same(module.load_data(write_dataset(tmp_path / "d", data, gz=gz)), data)


@DATASETS
def test_load_from_npz(module, tmp_path: Path, env: Path) -> None:
    data = make_dataset(seed=2)
    (x_train, y_train), (x_test, y_test) = data
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert_same(module.load_data(str(path)), data)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (dict(x_train=np.zeros((2, 28, 28), np.uint8)), "missing y_train, x_test, y_test"),
        (dict(x_train=np.zeros(2, object), y_train=0, x_test=0, y_test=0), "allow_pickle=False"),
        (dict(x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2), x_test=np.zeros((1, 4, 4)),
              y_test=np.zeros(1)), r"x_train\].*3-D uint8.*float64"),
        (dict(x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(3, np.uint8),
              x_test=np.zeros((1, 4, 4), np.uint8), y_test=np.zeros(1, np.uint8)),
         "2 images but .* 3 labels"),
    ],
    ids=["missing-keys", "pickled", "dtype", "lengths"],
)  # fmt: skip
def test_bad_npz_raises(tmp_path: Path, env: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        mnist.load_data(path)


def test_missing_explicit_path(tmp_path: Path, env: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="`path`.*does not exist"):
        mnist.load_data(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    write_dataset(partial, make_dataset(seed=4))
    (partial / IDX_FILES[3]).unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data(partial)
    message = str(info.value)
    assert f"not found: {IDX_FILES[3]} (" in message and f"Looked in:\n  {partial}\n" in message


def test_argument_types(env: Path, dead_url: str) -> None:
    with pytest.raises(TypeError, match="`path`.*received path=3"):
        mnist.load_data(3)
    with pytest.raises(TypeError, match="`search_dirs`.*single path"):
        mnist.load_data(search_dirs="/tmp")
    with pytest.raises(TypeError, match="`mirrors`.*single string"):
        mnist.load_data(mirrors=dead_url)


# --- search order --------------------------------------------------------------


def test_default_search_dirs(env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = env / ".fastconv/datasets"
    assert mnist.default_search_dirs() == [cache / "mnist"]
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "data"))
    assert fashion_mnist.default_search_dirs() == [
        tmp_path / "data/fashion-mnist",
        tmp_path / "data",
        cache / "fashion-mnist",
        DEBIAN_DIR,
    ]


def test_search_order(env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$FASTCONV_DATA/<name> beats $FASTCONV_DATA beats the cache beats the system dir."""
    system = tmp_path / "system"
    monkeypatch.setattr(
        fashion_mnist, "DATASET", dataclasses.replace(fashion_mnist.DATASET, system_dirs=(system,))
    )
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "data"))
    places = [
        tmp_path / "data/fashion-mnist",
        tmp_path / "data",
        env / ".fastconv/datasets/fashion-mnist",
        system,
    ]
    expected = [make_dataset(seed) for seed in range(len(places))]
    for place, data in zip(places, expected, strict=True):
        write_dataset(place, data, gz=place != system)
    for place, data in zip(places, expected, strict=True):
        assert_same(fashion_mnist.load_data(mirrors=()), data)
        # Without one of its four files a place no longer counts.
        for name in (IDX_FILES[0], IDX_FILES[0].removesuffix(".gz")):
            (place / name).unlink(missing_ok=True)
    with pytest.raises(DatasetNotFoundError):
        fashion_mnist.load_data(mirrors=())


def test_injected_search_dirs(env: Path, tmp_path: Path) -> None:
    data = make_dataset(seed=3)
    write_dataset(tmp_path / "b", data)
    loaded = mnist.load_data(search_dirs=[tmp_path / "a", str(tmp_path / "b")], mirrors=())
    assert_same(loaded, data)


# --- downloads -----------------------------------------------------------------


@DATASETS
def test_download_lands_in_cache(
    module, env: Path, monkeypatch: pytest.MonkeyPatch, mirror, dead_url: str
) -> None:
    url, hashes, data = mirror
    monkeypatch.setattr(module, "DATASET", dataclasses.replace(module.DATASET, sha256=hashes))
    # The first mirror is down, the second answers.
    assert_same(module.load_data(search_dirs=[], mirrors=[dead_url, url]), data)
    cache = env / ".fastconv/datasets" / module.DATASET.name
    assert sorted(p.name for p in cache.iterdir()) == sorted(IDX_FILES)
    # Now cached: found without any mirror.
    assert_same(module.load_data(mirrors=()), data)


def test_download_completes_a_partial_cache(
    env: Path, monkeypatch: pytest.MonkeyPatch, mirror, tmp_path: Path
) -> None:
    url, hashes, data = mirror
    monkeypatch.setattr(mnist, "DATASET", dataclasses.replace(mnist.DATASET, sha256=hashes))
    cache = env / ".fastconv/datasets/mnist"
    cache.mkdir(parents=True)
    mirror_dir = tmp_path / "mirror"
    (cache / IDX_FILES[0]).write_bytes((mirror_dir / IDX_FILES[0]).read_bytes())
    assert_same(mnist.load_data(mirrors=[url]), data)


def test_checksum_mismatch_leaves_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, mirror
) -> None:
    url, hashes, _ = mirror
    wrong = dict(hashes, **{IDX_FILES[0]: "0" * 64})
    monkeypatch.setattr(mnist, "DATASET", dataclasses.replace(mnist.DATASET, sha256=wrong))
    with pytest.raises(ChecksumError) as info:
        mnist.load_data(mirrors=[url])
    message = str(info.value)
    assert IDX_FILES[0] in message and "0" * 64 in message and hashes[IDX_FILES[0]] in message
    cache = env / ".fastconv/datasets/mnist"
    assert list(cache.iterdir()) == []


@DATASETS
def test_unreachable_mirror_gives_clear_error(
    module, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dead_url: str
) -> None:
    monkeypatch.setattr(
        module, "DATASET", dataclasses.replace(module.DATASET, system_dirs=(tmp_path / "sys",))
    )
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        module.load_data(mirrors=[dead_url])
    err = info.value
    assert isinstance(err, FileNotFoundError)
    assert err.__cause__ is None and err.__context__ is None  # no urllib traceback
    message = str(err)
    for name in IDX_FILES:
        assert name in message
    for place in module.default_search_dirs():
        assert f"\n  {place}\n" in message
    assert dead_url + IDX_FILES[0] in message and "refused" in message
    assert "FASTCONV_DATA" in message and "path=" in message
    assert module.DATASET.mirrors[0].rstrip("/") in message
    assert ("apt-get install dataset-fashion-mnist" in message) == (module is fashion_mnist)
    assert not any((env / ".fastconv/datasets" / module.DATASET.name).iterdir())


def test_http_error_is_reported(env: Path, monkeypatch: pytest.MonkeyPatch, mirror) -> None:
    url, hashes, _ = mirror
    monkeypatch.setattr(mnist, "DATASET", dataclasses.replace(mnist.DATASET, sha256=hashes))
    with pytest.raises(DatasetNotFoundError, match=f"{url}absent/{IDX_FILES[0]}: HTTP 404"):
        mnist.load_data(search_dirs=[], mirrors=[url + "absent/"])


def test_no_mirrors_never_downloads(env: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="downloading is off"):
        fashion_mnist.load_data(search_dirs=[tmp_path], mirrors=())


# --- real Fashion-MNIST ------------------------------------------------------------

needs_debian = pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason=f"{DEBIAN_DIR} absent (apt-get install dataset-fashion-mnist)"
)


@needs_debian
def test_debian_fashion_mnist(env: Path) -> None:
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(mirrors=())
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[0] == 9  # the first training image is an ankle boot


def test_bundled_sample() -> None:
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_sample()
    assert x_train.shape == (6000, 28, 28) and y_train.shape == (6000,)
    assert x_test.shape == (1000, 28, 28) and y_test.shape == (1000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == [600] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert 0 < x_train.mean() < 255  # real images, not blank


@needs_debian
def test_bundled_sample_is_a_subset_of_the_real_data(env: Path) -> None:
    full = fashion_mnist.load_data(mirrors=())
    sample = fashion_mnist.load_sample()
    index_file = Path(fashion_mnist.__file__).parent / "data" / fashion_mnist.SAMPLE_FILE
    with np.load(index_file, allow_pickle=False) as archive:
        indices = archive["train_index"], archive["test_index"]
    for (x_full, y_full), (x, y), index in zip(full, sample, indices, strict=True):
        np.testing.assert_array_equal(x, x_full[index])
        np.testing.assert_array_equal(y, y_full[index])

"""Loading damaged or crafted files: every failure is a ValueError naming
the file, no file can make loading allocate much more than it holds, and
stored weights must be floating-point."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import fastconv
from fastconv import layers, models


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def small_model() -> models.Sequential:
    model = models.Sequential([
        layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.train_on_batch(np.ones((2, 6, 6, 1), np.float32), np.array([0, 1]))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    fastconv.backend.clear_session()
    path = tmp_path_factory.mktemp("saved") / "model.fastconv"
    small_model().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return path, members


def write_archive(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def fails_cleanly(load, path) -> None:
    """``load(path)`` either succeeds or raises ValueError naming the file."""
    try:
        load(path)
    except ValueError as exc:
        assert str(path) in str(exc), exc


def test_random_damage_of_a_model_file_raises_value_error(saved, tmp_path):
    path, _ = saved
    good = path.read_bytes()
    rng = np.random.default_rng(1234)
    target = tmp_path / "damaged.fastconv"
    for _ in range(200):
        data = bytearray(good)
        if rng.random() < 0.3:
            data = data[:rng.integers(0, len(data))]
        for pos in rng.integers(0, max(len(data), 1), rng.integers(1, 5)):
            if data:
                data[pos] ^= 1 << int(rng.integers(0, 8))
        target.write_bytes(bytes(data))
        fails_cleanly(models.load_model, target)


def test_random_damage_of_a_weights_file_raises_value_error(tmp_path):
    model = small_model()
    model.save_weights(tmp_path / "w.npz")
    good = (tmp_path / "w.npz").read_bytes()
    rng = np.random.default_rng(99)
    target = tmp_path / "damaged.npz"
    for _ in range(100):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            data[pos] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            data = data[:rng.integers(0, len(data))]
        target.write_bytes(bytes(data))
        fails_cleanly(model.load_weights, target)


def spec_of(saved) -> dict:
    return json.loads(saved[1]["config.json"])


def with_config(saved, tmp_path, config) -> object:
    members = dict(saved[1])
    members["config.json"] = config if isinstance(config, bytes) else json.dumps(config)
    return write_archive(tmp_path / "crafted.fastconv", members)


def crafted_configs(spec: dict) -> dict[str, object]:
    layers_ = spec["config"]["layers"]
    return {
        "deeply nested JSON": b'{"class_name": "Sequential", "config": ' + b"[" * 100_000,
        "layers not a list": {**spec, "config": {"layers": 5}},
        "config not a dict": {**spec, "config": 5},
        "layer config a list": {**spec, "config": {"layers": [layers_[0], {
            "class_name": "Dense", "config": [1, 2]}]}},
        "units a list": {**spec, "config": {"layers": [layers_[0], {
            "class_name": "Dense", "config": {"units": [3]}}]}},
        "batch_shape a number": {**spec, "config": {"layers": [{
            "class_name": "InputLayer", "config": {"batch_shape": 7}}]}},
        "optimizer a list": {**spec, "compile_config": {**spec["compile_config"],
                                                         "optimizer": [1]}},
    }


@pytest.mark.parametrize("case", sorted(crafted_configs({"config": {"layers": [{}]},
                                                         "compile_config": {}})))
def test_crafted_configs_raise_value_error(saved, tmp_path, case):
    config = crafted_configs(spec_of(saved))[case]
    path = with_config(saved, tmp_path, config)
    with pytest.raises(ValueError, match="crafted.fastconv"):
        models.load_model(path)
    if isinstance(config, dict) and case != "optimizer a list":  # no compile settings there
        with pytest.raises(ValueError, match="JSON string"):
            models.model_from_json(json.dumps(config))


def test_crafted_archives_raise_value_error(saved, tmp_path):
    _, members = saved
    # zipfile cannot write the "encrypted" flag: set it in the local and
    # central headers of a written archive.
    data = bytearray(write_archive(tmp_path / "plain.fastconv", members).read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + flag_offset] |= 0x1
            start = data.find(signature, start + 1)
    encrypted = tmp_path / "encrypted.fastconv"
    encrypted.write_bytes(bytes(data))
    bzip2 = write_archive(tmp_path / "bzip2.fastconv", members, zipfile.ZIP_BZIP2)
    for path, message in ((encrypted, "encrypted"), (bzip2, "compression method 12")):
        with pytest.raises(ValueError, match=message):
            models.load_model(path)


def test_a_lying_npy_header_is_refused_before_allocation(saved, tmp_path):
    _, members = saved
    npy = io.BytesIO()
    np.lib.format.write_array(npy, np.zeros(4, np.float32))
    good = npy.getvalue()
    # Same header length (its padding shrinks), so the data stays where it was.
    huge = good.replace(b"(4,), }" + b" " * 13, b"(10000000000000,), }")
    assert huge != good and len(huge) == len(good)
    for lie in (huge, good.replace(b"(4,)", b"(5,)")):
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as archive:
            archive.writestr("weight_0000.npy", lie)
        path = write_archive(tmp_path / "lying.fastconv",
                             {**members, "weights.npz": inner.getvalue()})
        with pytest.raises(ValueError, match=r"lying.fastconv.*declares shape \((10000000000000|5),\)"):
            models.load_model(path)


def peak_bytes_of(load, path) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=str(path.name)):
            load(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_not_expanded_into_memory(saved, tmp_path):
    _, members = saved
    # 64 MiB of zeros deflate to 64 KB: weights.npz that is no .npz at all.
    path = write_archive(tmp_path / "bomb.fastconv",
                         {"config.json": members["config.json"],
                          "weights.npz": bytes(64 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    assert peak_bytes_of(models.load_model, path) < 4 * 2**20


def test_a_huge_layer_in_a_tiny_config_allocates_nothing(saved, tmp_path):
    spec = spec_of(saved)
    dense = next(layer for layer in spec["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = 10**7  # a 7.2 GB kernel, 40 MB for its bias
    path = with_config(saved, tmp_path, spec)
    assert path.stat().st_size < 64 * 2**10
    assert peak_bytes_of(models.load_model, path) < 4 * 2**20


@pytest.mark.parametrize("stored", [
    np.full((3, 3, 1, 2), 1 + 2j), np.full((3, 3, 1, 2), "1"), np.ones((3, 3, 1, 2), bool),
    np.zeros((3, 3, 1, 2), "datetime64[s]"), np.ones((3, 3, 1, 2), np.int64),
], ids=lambda a: a.dtype.name)
def test_non_float_weights_are_refused(saved, tmp_path, stored):
    model = small_model()
    weights = {f"weight_{i:04d}": w for i, w in enumerate(model.get_weights())}
    weights["weight_0000"] = stored
    path = write_archive(tmp_path / "typed.fastconv", {**saved[1], "weights.npz": npz(**weights)})
    with pytest.raises(ValueError, match=re.escape(f"conv2d/kernel is stored as {stored.dtype}")):
        models.load_model(path)
    (tmp_path / "typed.npz").write_bytes(npz(**weights))
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"typed.npz.*stored as {re.escape(str(stored.dtype))}"):
        model.load_weights(tmp_path / "typed.npz")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_float64_weights_are_cast_to_the_layers_float32(saved, tmp_path):
    model = small_model()
    weights = {f"weight_{i:04d}": w.astype(np.float64)
               for i, w in enumerate(model.get_weights())}
    (tmp_path / "w64.npz").write_bytes(npz(**weights))
    model.load_weights(tmp_path / "w64.npz")
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_old_files_with_a_deflated_weights_member_still_load(saved, tmp_path):
    path, members = saved
    old = write_archive(tmp_path / "old.fastconv", members, zipfile.ZIP_DEFLATED)
    original, loaded = models.load_model(path), models.load_model(old)
    assert all(np.array_equal(a, b)
               for a, b in zip(original.get_weights(), loaded.get_weights()))


def test_file_system_errors_stay_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "missing.fastconv")
    with pytest.raises(IsADirectoryError):
        models.load_model(tmp_path)

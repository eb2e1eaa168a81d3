"""Find, download and load the four IDX files of an MNIST-like dataset.

Every dataset module (``mnist``, ``fashion_mnist``) describes itself with one
:class:`IdxDataset` and hands it to :func:`load`, which does this, in order:

1. ``path=`` given: read that directory of IDX files or that ``.npz`` file,
   and nothing else.
2. Otherwise look in each search directory (by default ``$FASTCONV_DATA/<name>``,
   ``$FASTCONV_DATA``, the cache ``~/.fastconv/datasets/<name>``, then the
   dataset's system directories) for a directory that holds all four files,
   each gzipped or plain.
3. Otherwise download the missing files from the first mirror that answers
   into the cache, checking each file's SHA-256 before it is moved into place.
4. Otherwise raise :class:`DatasetNotFoundError` naming the missing files,
   every directory searched, every download error, and how to get the files.

Only the standard library and NumPy are used, so ``fastconv.datasets`` needs
none of the compiled kernels.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastconv.datasets.idx import read_idx

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "IdxDataset",
    "cache_dir",
    "default_search_dirs",
    "load",
    "load_npz",
]

Split = tuple[np.ndarray, np.ndarray]
PathArg = str | os.PathLike[str]

# The four files, in the order load_data returns their arrays.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

ENV_VAR = "FASTCONV_DATA"

# Seconds a socket may block on connect or on one read; the whole file may
# take longer.
TIMEOUT = 30.0
_CHUNK = 1 << 20


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on this machine and could not be downloaded."""


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 is not the published one; it was discarded."""


@dataclass(frozen=True)
class IdxDataset:
    """Where the four IDX files of one dataset can be found.

    Parameters
    ----------
    title : str
        Name shown in messages, e.g. ``"Fashion-MNIST"``.
    name : str
        Directory name under ``$FASTCONV_DATA`` and the cache, e.g.
        ``"fashion-mnist"``.
    sha256 : Mapping[str, str]
        SHA-256 of each gzipped file as the mirrors serve it, keyed by the
        names in ``IDX_FILES``. Checked on download only: local copies may
        be recompressed (Debian's are) and are validated by the IDX reader.
    mirrors : tuple of str
        Base URLs, tried in order; a file's URL is the base plus its name.
    system_dirs : tuple of Path
        Directories a system package installs the files into.
    install_hint : str
        Extra advice for the not-found message, e.g. an ``apt-get`` command.
    """

    title: str
    name: str
    sha256: Mapping[str, str]
    mirrors: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()
    install_hint: str = ""


def cache_dir(dataset: IdxDataset) -> Path:
    """The download cache, ``~/.fastconv/datasets/<name>`` (``~`` from ``$HOME``)."""
    return Path.home() / ".fastconv" / "datasets" / dataset.name


def default_search_dirs(dataset: IdxDataset) -> list[Path]:
    """Directories searched when ``path`` is None, in order.

    ``$FASTCONV_DATA/<name>`` comes before ``$FASTCONV_DATA`` itself because
    MNIST and Fashion-MNIST use the same file names: files placed directly in
    ``$FASTCONV_DATA`` are taken to be whichever dataset is being loaded.
    """
    dirs = []
    root = os.environ.get(ENV_VAR)
    if root:
        dirs += [Path(root) / dataset.name, Path(root)]
    dirs.append(cache_dir(dataset))
    dirs += dataset.system_dirs
    return dirs


def load(
    dataset: IdxDataset,
    path: PathArg | None = None,
    *,
    search_dirs: Iterable[PathArg] | None = None,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """Load ``(x_train, y_train), (x_test, y_test)`` of ``dataset``.

    Parameters
    ----------
    dataset : IdxDataset
        What to load.
    path : str or os.PathLike, optional
        A directory holding the four IDX files or a ``.npz`` file with keys
        ``x_train, y_train, x_test, y_test``. When given, nothing else is
        searched and nothing is downloaded.
    search_dirs : iterable of str or os.PathLike, optional
        Directories to search instead of :func:`default_search_dirs`.
    mirrors : sequence of str, optional
        Base URLs to download from instead of ``dataset.mirrors``; an empty
        sequence never downloads.

    Returns
    -------
    tuple
        ``(x_train, y_train), (x_test, y_test)``: images ``(N, H, W)`` and
        labels ``(N,)``, all uint8.

    Raises
    ------
    DatasetNotFoundError
        If the files are neither found nor downloaded.
    ChecksumError
        If a downloaded file does not have the published SHA-256.
    ValueError
        If a file is found but is not valid IDX or ``.npz`` data.
    """
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(
            "Invalid value for argument `path`: expected a str or os.PathLike "
            f"(a directory of IDX files or an .npz file), received path={path!r}."
        )
    if isinstance(search_dirs, str | os.PathLike):
        raise TypeError(
            "Invalid value for argument `search_dirs`: expected an iterable of "
            f"directories, received the single path search_dirs={search_dirs!r}."
        )
    if isinstance(mirrors, str):
        raise TypeError(
            "Invalid value for argument `mirrors`: expected a sequence of base URLs, "
            f"received the single string mirrors={mirrors!r}."
        )

    if path is not None:
        path = Path(path)
        if path.is_dir():
            files, missing = _look_in(path)
            if missing:
                raise DatasetNotFoundError(_not_found_message(dataset, missing, [path], []))
            return _load_idx(files)
        if path.is_file():
            return load_npz(path)
        raise DatasetNotFoundError(
            "Invalid value for argument `path`: expected an existing directory of IDX "
            f"files or an .npz file, received path='{path}', which does not exist."
        )

    if search_dirs is None:
        dirs = default_search_dirs(dataset)
    else:
        dirs = [Path(d) for d in search_dirs]
    for directory in dirs:
        files, missing = _look_in(directory)
        if not missing:
            return _load_idx(files)
    mirrors = dataset.mirrors if mirrors is None else mirrors
    return _load_idx(_download(dataset, list(mirrors), dirs))


def load_npz(path: PathArg) -> tuple[Split, Split]:
    """Load a Keras ``mnist.npz``-style file (no pickles allowed).

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` archive with uint8 arrays ``x_train (N, H, W)``,
        ``y_train (N,)``, ``x_test (M, H, W)``, ``y_test (M,)``; other keys
        are ignored.

    Returns
    -------
    tuple
        ``(x_train, y_train), (x_test, y_test)``.

    Raises
    ------
    ValueError
        If the file is not an ``.npz`` archive, lacks a key, holds pickled
        objects, or its arrays have the wrong dtype or shapes.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err}).") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected an .npz archive, received a single .npy array.")
    with archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: expected keys {', '.join(NPZ_KEYS)}, "
                f"missing {', '.join(missing)} (found {', '.join(archive.files) or 'none'})."
            )
        try:
            arrays = [archive[key] for key in NPZ_KEYS]
        except ValueError as err:  # object arrays refused by allow_pickle=False
            raise ValueError(f"{path}: {err}") from None
    return _check_splits(arrays, [f"{path}[{key}]" for key in NPZ_KEYS])


def _look_in(directory: Path) -> tuple[list[Path], list[str]]:
    """The files of ``IDX_FILES`` present in ``directory`` (``.gz`` preferred), and
    the names of those absent."""
    found, missing = [], []
    for name in IDX_FILES:
        for candidate in (directory / name, directory / name.removesuffix(".gz")):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            missing.append(name)
    return found, missing


def _load_idx(files: list[Path]) -> tuple[Split, Split]:
    return _check_splits([read_idx(f) for f in files], [str(f) for f in files])


def _check_splits(arrays: list[np.ndarray], names: list[str]) -> tuple[Split, Split]:
    """Check images are (N, H, W) uint8 with N matching uint8 labels (N,)."""
    for array, name, ndim in zip(arrays, names, (3, 1, 3, 1), strict=True):
        if array.dtype != np.uint8 or array.ndim != ndim:
            raise ValueError(
                f"{name}: expected a {ndim}-D uint8 array, received shape "
                f"{array.shape} of {array.dtype}."
            )
    x_train, y_train, x_test, y_test = arrays
    for x, y, x_name, y_name in ((x_train, y_train, *names[:2]), (x_test, y_test, *names[2:])):
        if len(x) != len(y):
            raise ValueError(
                f"{x_name} has {len(x)} images but {y_name} has {len(y)} labels: "
                "expected the same number."
            )
    return (x_train, y_train), (x_test, y_test)


def _download(dataset: IdxDataset, mirrors: list[str], searched: list[Path]) -> list[Path]:
    """Download the files missing from the cache; return all four cached paths."""
    cache = cache_dir(dataset)
    errors: list[str] = []
    paths = [cache / name for name in IDX_FILES]
    for index, dest in enumerate(paths):
        if dest.is_file():
            continue
        if not mirrors:
            errors.append("downloading is off (no mirrors were given)")
        for base in mirrors:
            url = base.rstrip("/") + "/" + dest.name
            try:
                _fetch(url, dest, dataset.sha256[dest.name])
                break
            # http.client errors (e.g. IncompleteRead) are not OSErrors; a
            # cache we cannot write to is an OSError too and is reported alike.
            except (OSError, http.client.HTTPException) as err:
                errors.append(f"{url}: {_describe(err)}")
        if not dest.is_file():
            # Stop at the first file no mirror has: offline, every further
            # attempt would only wait for its own timeout.
            missing = [p.name for p in paths[index:] if not p.is_file()]
            raise DatasetNotFoundError(
                _not_found_message(dataset, missing, searched, errors, cache)
            )
    return paths


def _fetch(url: str, dest: Path, sha256: str, timeout: float = TIMEOUT) -> None:
    """Download ``url`` to ``dest`` atomically, only if its SHA-256 is ``sha256``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {url} to {dest.parent}", file=sys.stderr)
    # The temporary file sits next to dest so os.replace is an atomic rename;
    # on any failure it is removed, so a file named dest is always complete.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ChecksumError(
                f"{dest.name} downloaded from {url} has the wrong SHA-256: expected "
                f"{sha256}, received {digest.hexdigest()}. The download was discarded: "
                f"nothing was written in place of {dest}."
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def _not_found_message(
    dataset: IdxDataset,
    missing: Sequence[str],
    searched: Sequence[Path],
    errors: Sequence[str],
    cache: Path | None = None,
) -> str:
    lines = [
        f"{dataset.title} files not found: {', '.join(missing)} "
        "(gzipped, or uncompressed without the .gz).",
        "Looked in:" if searched else "Looked in no directory (search_dirs was empty).",
        *(f"  {d}" for d in searched),
    ]
    if errors:
        lines += [f"Download into {cache} failed:", *(f"  {e}" for e in errors)]
    lines += [
        "To get them, any of:",
        f"  set {ENV_VAR} to a directory holding them (or a '{dataset.name}' subdirectory)",
        "  pass path= (a directory of the IDX files, or an .npz file)",
    ]
    if dataset.install_hint:
        lines.append(f"  {dataset.install_hint}")
    if dataset.mirrors:
        lines.append(
            f"  download {dataset.mirrors[0].rstrip('/')}/<file> into {cache_dir(dataset)}"
        )
    return "\n".join(lines)

"""MNIST handwritten digits, as ``keras.datasets.mnist``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from fastconv.datasets import _files

__all__ = ["load_data", "default_search_dirs"]

# SHA-256 of the gzipped files as served by both mirrors (the values
# TensorFlow Datasets records for storage.googleapis.com/cvdf-datasets).
DATASET = _files.IdxDataset(
    title="MNIST",
    name="mnist",
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
)


def default_search_dirs() -> list[Path]:
    """Where :func:`load_data` looks when ``path`` is None, in order.

    ``$FASTCONV_DATA/mnist``, ``$FASTCONV_DATA`` (when the variable is set),
    then the download cache ``~/.fastconv/datasets/mnist``.
    """
    return _files.default_search_dirs(DATASET)


def load_data(
    path: str | os.PathLike[str] | None = None,
    *,
    search_dirs: Iterable[str | os.PathLike[str]] | None = None,
    mirrors: Sequence[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST: 60,000 training and 10,000 test 28x28 grayscale digits.

    Looks in :func:`default_search_dirs` for the four IDX files
    (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, each
    gzipped or plain); failing that, downloads them into the cache and checks
    their SHA-256.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the four IDX files, or a Keras-style
        ``mnist.npz`` with keys ``x_train, y_train, x_test, y_test``. When
        given, nothing else is searched and nothing is downloaded.
    search_dirs : iterable of str or os.PathLike, optional
        Directories to search instead of :func:`default_search_dirs`.
    mirrors : sequence of str, optional
        Base URLs to download from; ``()`` never downloads.

    Returns
    -------
    tuple
        ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of shapes
        ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``.
        Labels are the digits 0-9.

    Raises
    ------
    DatasetNotFoundError
        If the files are neither found nor downloaded; the message names the
        missing files, every directory searched and every download error.
    ChecksumError
        If a downloaded file has the wrong SHA-256 (it is not kept).
    ValueError
        If a file is found but is corrupt.

    Notes
    -----
    MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges,
    made available under CC BY-SA 3.0.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
    >>> x_train.shape, y_test.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    return _files.load(DATASET, path, search_dirs=search_dirs, mirrors=mirrors)

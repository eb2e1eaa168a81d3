"""Fashion-MNIST (Zalando article images), as ``keras.datasets.fashion_mnist``.

Besides the full dataset, :func:`load_sample` returns a small class-balanced
subset shipped inside the package, for running examples with no data
installed and no network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from fastconv.datasets import _files

__all__ = ["CLASS_NAMES", "load_data", "load_sample", "default_search_dirs"]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# SHA-256 of the upstream gzipped files, which Keras' mirror serves
# unchanged. Debian's copies hold the same deflate streams under a gzip
# header without the file name, so their own hashes differ; local copies are
# therefore checked by the IDX reader, not by these hashes.
DATASET = _files.IdxDataset(
    title="Fashion-MNIST",
    name="fashion-mnist",
    sha256={
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    mirrors=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",),
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    install_hint="apt-get install dataset-fashion-mnist (Debian/Ubuntu)",
)

SAMPLE_FILE = "fashion_mnist_sample.npz"


def default_search_dirs() -> list[Path]:
    """Where :func:`load_data` looks when ``path`` is None, in order.

    ``$FASTCONV_DATA/fashion-mnist``, ``$FASTCONV_DATA`` (when the variable
    is set), the download cache ``~/.fastconv/datasets/fashion-mnist``, then
    ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
    """
    return _files.default_search_dirs(DATASET)


def load_data(
    path: str | os.PathLike[str] | None = None,
    *,
    search_dirs: Iterable[str | os.PathLike[str]] | None = None,
    mirrors: Sequence[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST: 60,000 training and 10,000 test 28x28 grayscale images.

    Looks in :func:`default_search_dirs` for the four IDX files
    (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, each
    gzipped or plain); failing that, downloads them into the cache and checks
    their SHA-256. It never falls back to the bundled sample: call
    :func:`load_sample` for that.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the four IDX files, or an ``.npz`` file with keys
        ``x_train, y_train, x_test, y_test``. When given, nothing else is
        searched and nothing is downloaded.
    search_dirs : iterable of str or os.PathLike, optional
        Directories to search instead of :func:`default_search_dirs`.
    mirrors : sequence of str, optional
        Base URLs to download from; ``()`` never downloads.

    Returns
    -------
    tuple
        ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of shapes
        ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``.
        Labels 0-9 index :data:`CLASS_NAMES`.

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
    Fashion-MNIST is copyright Zalando SE, released under the MIT license.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()  # doctest: +SKIP
    >>> CLASS_NAMES[y_train[0]]  # doctest: +SKIP
    'Ankle boot'
    """
    return _files.load(DATASET, path, search_dirs=search_dirs, mirrors=mirrors)


def load_sample() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the Fashion-MNIST sample shipped inside fastconv.

    6,000 training images (the first 600 of each class in the training file)
    and 1,000 test images (the first 100 of each class in the test file), in
    their original order, made by ``tools/make_fashion_mnist_sample.py``.

    Returns
    -------
    tuple
        ``(x_train, y_train), (x_test, y_test)``, uint8 arrays of shapes
        ``(6000, 28, 28)``, ``(6000,)``, ``(1000, 28, 28)``, ``(1000,)``.

    Raises
    ------
    FileNotFoundError
        If the installation lacks the sample file (a packaging error).
    """
    sample = resources.files(__package__).joinpath("data", SAMPLE_FILE)
    if not sample.is_file():
        raise FileNotFoundError(
            f"The bundled sample {SAMPLE_FILE} is missing from {sample}: this "
            "installation of fastconv was built without its package data."
        )
    with resources.as_file(sample) as sample_path:
        return _files.load_npz(sample_path)

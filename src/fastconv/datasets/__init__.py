"""Datasets with the interface of ``keras.datasets``.

- ``mnist.load_data()`` and ``fashion_mnist.load_data()`` return
  ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, found locally
  (``$FASTCONV_DATA``, the cache ``~/.fastconv/datasets``, system packages)
  or downloaded into the cache with SHA-256 checks.
- ``fashion_mnist.load_sample()``: a small class-balanced Fashion-MNIST
  subset shipped inside the package.
- ``read_idx`` / ``write_idx``: the IDX file format of both datasets.

Only NumPy and the standard library are used; no compiled kernels.
"""

from fastconv.datasets import fashion_mnist, mnist
from fastconv.datasets._files import ChecksumError, DatasetNotFoundError
from fastconv.datasets.idx import read_idx, write_idx

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "fashion_mnist",
    "mnist",
    "read_idx",
    "write_idx",
]

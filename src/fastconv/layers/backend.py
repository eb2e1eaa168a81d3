"""Which module computes the layers' convolutions and pooling.

Layers call ``kernels().conv2d(...)`` and friends (``REQUIRED``; the
convolution and pooling layers through ``fastconv.ops.spatial``). By default that is
``fastconv.ops`` (the compiled kernels); ``use_backend(fastconv.reference)``
runs the same model on the NumPy reference instead, which is possible
because the two modules share one signature per function. The benchmark
uses it to time a whole training step on each backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

from fastconv import ops

_backend: ModuleType = ops

# The kernel functions the layers call (a backend must have them all).
REQUIRED = (
    "conv2d", "conv2d_backward", "relu_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "conv2d_max_pool2d", "conv2d_max_pool2d_backward",
    "conv_nd", "conv_nd_backward", "conv_transpose_nd", "conv_transpose_nd_backward",
    "max_pool_nd", "max_pool_nd_backward", "avg_pool_nd", "avg_pool_nd_backward",
    # the resampling layers' ops (global pooling, upsampling, padding, cropping)
    "global_avg_pool", "global_avg_pool_backward", "global_max_pool",
    "global_max_pool_backward", "upsample", "upsample_backward", "zero_pad",
    "zero_pad_backward", "crop", "crop_backward",
)


def kernels() -> ModuleType:
    """The module the layers currently call (``fastconv.ops`` by default)."""
    return _backend


@contextlib.contextmanager
def use_backend(module: ModuleType) -> Iterator[None]:
    """Run the layers on ``module`` (``fastconv.ops`` or ``fastconv.reference``)
    inside the ``with`` block."""
    global _backend
    missing = [name for name in REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        raise ValueError(f"Invalid value for argument `module`: {module!r} lacks {missing}.")
    previous, _backend = _backend, module
    try:
        yield
    finally:
        _backend = previous

"""``fastconv.ops``: Keras 3's ops (``from keras import ops`` with the import
changed) and the compiled convolution and pooling kernels.

- Keras ops, by family: ``core`` (cast, convert_to_tensor, shape,
  stop_gradient and the machinery that records ops on symbolic tensors),
  ``numpy_ops`` (arithmetic, comparisons, reductions, linear algebra, shape
  and indexing ops) and ``nn`` (activations, one_hot, conv, max_pool,
  average_pool). On arrays they compute at once with NumPy; on a
  ``KerasTensor`` they record a graph node that the executor runs and
  differentiates.
- ``kernels``: conv2d, conv2d_backward, relu_backward, max_pool2d,
  max_pool2d_backward, conv2d_max_pool2d, conv2d_max_pool2d_backward,
  avg_pool2d, avg_pool2d_backward on NumPy arrays, with the signatures of
  their NumPy twins in ``fastconv.reference``; ``convolution``: conv_nd (rank 1-3,
  grouped and depthwise convolution, conv_transpose_nd) and ``pooling``
  (max and average pooling of rank 1-3), likewise.
- ``resample``: global_avg_pool, global_max_pool, upsample, zero_pad, crop
  and their ``*_backward`` gradients (ranks 1 to 3, channels last), with
  their twins in ``fastconv.reference`` too.
- ``normalization``: batch_norm (training), batch_norm_inference and
  batch_norm_backward, with their twins in ``fastconv.reference``.

The two sets share no name (Keras says conv / max_pool / average_pool, the
kernels conv2d / max_pool2d / avg_pool2d); every public name of both is
importable from here.
"""

from fastconv.ops import convolution as _convolution
from fastconv.ops import core, kernels, nn, normalization, numpy_ops, resample
from fastconv.ops import pooling as _pooling
from fastconv.ops.convolution import (
    conv_nd,
    conv_nd_backward,
    conv_transpose_nd,
    conv_transpose_nd_backward,
)
from fastconv.ops.core import *  # noqa: F401,F403
from fastconv.ops.kernels import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv2d_max_pool2d,
    conv2d_max_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    relu_backward,
)
from fastconv.ops.nn import *  # noqa: F401,F403
from fastconv.ops.normalization import *  # noqa: F401,F403
from fastconv.ops.numpy_ops import *  # noqa: F401,F403
from fastconv.ops.pooling import (
    avg_pool_nd,
    avg_pool_nd_backward,
    max_pool_nd,
    max_pool_nd_backward,
)
from fastconv.ops.resample import *  # noqa: F401,F403

_KERNELS = (
    "avg_pool2d", "avg_pool2d_backward", "conv2d", "conv2d_backward", "conv2d_max_pool2d",
    "conv2d_max_pool2d_backward", "max_pool2d", "max_pool2d_backward", "relu_backward",
    *_convolution.__all__, *_pooling.__all__,
)

__all__ = sorted({*core.__all__, *numpy_ops.__all__, *nn.__all__, *_KERNELS,
                  *resample.__all__, *normalization.__all__})

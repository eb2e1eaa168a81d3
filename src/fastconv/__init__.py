"""fastconv: a CPU CNN engine with OpenMP/SIMD direct-convolution kernels.

Public names:

- ``fastconv.ops``: convolution and pooling (forward and gradients) on NumPy
  arrays, NHWC activations and HWIO kernels, backed by compiled kernels.
- ``fastconv.reference``: the same functions, same signatures, in NumPy.
- ``set_num_threads`` / ``get_num_threads``: threads used by the kernels.
- ``openmp_enabled``: whether the build has OpenMP.
- ``set_isa`` / ``get_isa`` / ``supported_isas``: the SIMD level in use.
"""

from fastconv import ops, reference
from fastconv._settings import (
    get_isa,
    get_num_threads,
    openmp_enabled,
    set_isa,
    set_num_threads,
    supported_isas,
)

__version__ = "0.1.0"

__all__ = [
    "ops",
    "reference",
    "get_isa",
    "get_num_threads",
    "openmp_enabled",
    "set_isa",
    "set_num_threads",
    "supported_isas",
    "__version__",
]

"""fastconv: a CPU CNN engine with OpenMP/SIMD direct-convolution kernels and
a Keras-style model API.

Programs written for Keras run with their imports changed: ``import fastconv
as keras``, ``from fastconv import layers, models``, or ``import fastconv as
tf`` for code that says ``tf.keras.<...>`` (``fastconv.keras`` is fastconv).

Public names:

- the model API: ``Sequential``, ``Model``, ``Input``, ``layers``, ``models``,
  ``optimizers``, ``losses``, ``metrics``, ``callbacks``, ``initializers``,
  ``regularizers``, ``constraints``, ``activations``, ``datasets``, ``utils``,
  ``backend``, ``testing``;
- ``fastconv.ops``: Keras 3's ops (eager on arrays, recorded on symbolic
  tensors inside ``call``), and the compiled kernel functions: convolution,
  pooling, global pooling, upsampling, zero padding and cropping, forward
  and gradients, on NumPy arrays (NHWC activations, HWIO kernels);
- ``fastconv.reference``: the kernel functions' NumPy twins, same signatures;
- ``GradientTape``: gradients for hand-written training loops;
- ``set_num_threads`` / ``get_num_threads``, ``openmp_enabled``,
  ``set_isa`` / ``get_isa`` / ``supported_isas``: how the kernels run.
"""

import sys

from fastconv import ops, reference
from fastconv.runtime.settings import (
    get_isa,
    get_num_threads,
    openmp_enabled,
    set_isa,
    set_num_threads,
    supported_isas,
)
from fastconv import (  # the model API builds on the kernels above
    activations,
    backend,
    callbacks,
    constraints,
    datasets,
    distribute,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    saving,
    testing,
    utils,
)
from fastconv.graph.tape import GradientTape
from fastconv.layers import Input
from fastconv.models import Model, Sequential

__version__ = "0.1.0"

# Keras programs with their imports changed: `tf.keras.X`, `from fastconv import
# keras`, `from fastconv.keras import backend`, `from fastconv.keras.datasets
# import mnist`, ... fastconv.keras is fastconv itself, and its submodules are
# importable under both names.
keras = sys.modules[__name__]
for _name, _module in list(sys.modules.items()):
    if _name.startswith(__name__ + ".") and not _name.split(".")[1].startswith("_"):
        sys.modules[__name__ + ".keras." + _name.split(".", 1)[1]] = _module
sys.modules[__name__ + ".keras"] = keras
del _name, _module

__all__ = [
    "GradientTape", "Input", "Model", "Sequential", "activations", "backend", "callbacks", "constraints",
    "datasets", "initializers", "keras", "layers", "losses", "metrics", "models", "ops",
    "optimizers", "reference", "regularizers", "saving", "testing", "utils",
    "get_isa", "get_num_threads", "openmp_enabled", "set_isa", "set_num_threads",
    "supported_isas", "__version__",
]

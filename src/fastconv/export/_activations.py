"""Keras activations as ONNX nodes, for ``fastconv.export.onnx``.

Each activation becomes its ONNX op where one exists (Relu, Sigmoid,
Softmax, HardSwish, ...) and a few elementwise ops otherwise (gelu through
Erf, silu as ``x * Sigmoid(x)``), so every opset from 17 on can hold it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def emit_activation(b: Any, activation: Any, x: str, perm: tuple, owner: Any) -> str:
    """ONNX nodes for a fastconv Activation applied to ``x`` (held in
    ``perm``); softmax-like activations map their axis through ``perm``."""
    from fastconv import activations

    forward = activation._forward
    keywords = dict(forward.keywords) if isinstance(forward, functools.partial) else {}
    function = forward.func if isinstance(forward, functools.partial) else forward
    name = activation.name
    if getattr(activations, name, None) is not function:
        raise unsupported(owner, f"its activation {name!r} is not one of fastconv's "
                                  "built-in activations")
    ndim = len(perm)

    def axis(default: int = -1) -> int:
        a = keywords.get("axis", default)
        if not isinstance(a, int):
            raise unsupported(owner, f"its {name} runs over several axes {a}")
        return perm.index(a % ndim)

    def half(v: str) -> str:
        return b.op("Mul", [v, b.const(0.5, "half")], "half")

    if name == "linear":
        return x
    if name == "relu":
        slope = keywords.get("negative_slope", 0.0)
        max_value = keywords.get("max_value")
        threshold = keywords.get("threshold", 0.0)
        if threshold:
            t = b.const(threshold, "threshold")
            shifted = b.op("Sub", [x, t], "shifted")
            below = b.op("Mul", [shifted, b.const(slope, "slope")], "below")
            y = b.op("Where", [b.op("Greater", [x, t], "above"), x, below], "relu")
        elif slope:
            y = b.op("LeakyRelu", [x], "leaky_relu", alpha=float(slope))
        else:
            y = b.op("Relu", [x], "relu")
        if max_value is not None:
            y = b.op("Min", [y, b.const(max_value, "max_value")], "relu_max")
        return y
    if name == "leaky_relu":
        return b.op("LeakyRelu", [x], "leaky_relu",
                    alpha=float(keywords.get("negative_slope", 0.2)))
    if name == "relu6":
        return b.op("Clip", [x, b.const(0.0, "zero"), b.const(6.0, "six")], "relu6")
    if name == "hard_tanh":
        return b.op("Clip", [x, b.const(-1.0, "minus_one"), b.const(1.0, "one")], "hard_tanh")
    simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp", "hard_silu": "HardSwish"}
    if name in simple:
        return b.op(simple[name], [x], name)
    if name == "softmax":
        return b.op("Softmax", [x], "softmax", axis=axis())
    if name == "log_softmax":
        return b.op("LogSoftmax", [x], "log_softmax", axis=axis())
    if name == "elu":
        return b.op("Elu", [x], "elu", alpha=float(keywords.get("alpha", 1.0)))
    if name == "celu":
        return b.op("Celu", [x], "celu", alpha=float(keywords.get("alpha", 1.0)))
    if name == "selu":
        return b.op("Selu", [x], "selu", alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if name == "hard_sigmoid":
        return b.op("HardSigmoid", [x], "hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)
    if name == "silu":
        return b.op("Mul", [x, b.op("Sigmoid", [x], "sigmoid")], "silu")
    if name == "mish":
        soft = b.op("Softplus", [x], "softplus")
        return b.op("Mul", [x, b.op("Tanh", [soft], "tanh")], "mish")
    if name == "log_sigmoid":
        neg = b.op("Neg", [x], "neg")
        return b.op("Neg", [b.op("Softplus", [neg], "softplus")], "log_sigmoid")
    if name == "tanh_shrink":
        return b.op("Sub", [x, b.op("Tanh", [x], "tanh")], "tanh_shrink")
    if name == "soft_shrink":
        t = float(keywords.get("threshold", 0.5))
        return b.op("Shrink", [x], "soft_shrink", lambd=t, bias=t)
    if name == "hard_shrink":
        return b.op("Shrink", [x], "hard_shrink",
                    lambd=float(keywords.get("threshold", 0.5)), bias=0.0)
    if name == "gelu":
        if keywords.get("approximate", False):
            # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = b.op("Mul", [b.op("Mul", [x, x], "square"), x], "cube")
            inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715, "c")], "t")], "in")
            scaled = b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi), "k")], "arg")
            gate = b.op("Add", [b.op("Tanh", [scaled], "tanh"), b.const(1.0, "one")], "g")
        else:
            # 0.5 x (1 + erf(x / sqrt(2)))
            scaled = b.op("Mul", [x, b.const(math.sqrt(0.5), "k")], "arg")
            gate = b.op("Add", [b.op("Erf", [scaled], "erf"), b.const(1.0, "one")], "g")
        return half(b.op("Mul", [x, gate], "gelu"))
    raise unsupported(owner, f"the activation {name!r} has no ONNX mapping")


def unsupported(layer: Any, why: str) -> ValueError:
    return ValueError(
        f"Layer '{getattr(layer, 'name', '?')}' of class {type(layer).__name__} cannot be "
        f"exported to ONNX: {why}.")

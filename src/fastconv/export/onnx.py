"""ONNX export: a model's graph, node by node, as an ONNX graph.

The walk visits the model's call nodes in order (``Function.nodes``) and
emits ONNX nodes for each layer with the ``onnx`` package's helper API;
nested models are walked in place, and a subclassed model or custom layer
through the graph its ``call`` is traced into (its layer calls and
elementwise Keras ops). The model's inputs and outputs keep
fastconv's layouts exactly (channels-last ``(N, H, W, C)``), while the
convolutions, poolings and batch normalizations run channels-first as ONNX
defines them. Each ONNX value therefore carries a permutation ``perm`` of
fastconv's axes (``onnx_value == x.transpose(perm)``); a layer asks for the
permutation it needs and a ``Transpose`` is inserted only where the
permutation changes, so a chain of convolutions stays NCHW between one
Transpose at the input and one before the ``Flatten`` (which flattens in
fastconv's channels-last order).

Layers of inference-time identity (dropouts, noise, activity
regularization, random augmentations) add no node. A layer without an ONNX
equivalent raises ``ValueError`` naming the layer and its class.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastconv.export._activations import emit_activation as _activation
from fastconv.export._activations import unsupported as _unsupported

DEFAULT_OPSET = 18
MIN_OPSET = 17  # LayerNormalization is an ONNX op from opset 17 on

_INSTALL_HINT = ("ONNX export needs the `onnx` package (and `onnxruntime` to run the "
                 "file): pip install onnx onnxruntime, or pip install 'fastconv[onnx]'.")

# Layers that are the identity at inference.
_IDENTITY_AT_INFERENCE = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Identity",
    "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
    "RandomBrightness",
)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    return onnx


def _identity(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim))


def _channels_first(ndim: int) -> tuple[int, ...]:
    """fastconv's (N, *spatial, C) as ONNX's (N, C, *spatial)."""
    return (0, ndim - 1, *range(1, ndim - 1))


def _same_pads(sizes: tuple, kernel: tuple, strides: tuple, dilation: tuple) -> list[int]:
    """TensorFlow's "same" padding (the odd extra after) as ONNX pads
    ``[begin..., end...]``."""
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


class _Value:
    """An ONNX value: its name and the permutation of fastconv's axes it holds."""

    def __init__(self, name: str, perm: tuple[int, ...]) -> None:
        self.name = name
        self.perm = perm


class _Builder:
    """Collects ONNX nodes and initializers while the model's graph is walked."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.counter = 0
        self.reserved: set[str] = set()
        self.transposed: dict[tuple[str, tuple], str] = {}

    def fresh(self, base: str) -> str:
        """A new value name, never one of the graph's input or output names."""
        while True:
            self.counter += 1
            name = f"{base}_{self.counter}"
            if name not in self.reserved:
                return name

    def const(self, array: Any, base: str, dtype: Any = None) -> str:
        arr = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, values: Any, base: str) -> str:
        return self.const(np.asarray(values, dtype=np.int64), base, np.int64)

    def op(self, op_type: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.fresh(base)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def as_perm(self, value: _Value, perm: tuple[int, ...]) -> str:
        """The value's name with its data in permutation ``perm``."""
        perm = tuple(perm)
        if value.perm == perm:
            return value.name
        key = (value.name, perm)
        if key not in self.transposed:
            move = [value.perm.index(p) for p in perm]
            self.transposed[key] = self.op("Transpose", [value.name], "transpose", perm=move)
        return self.transposed[key]


# ----------------------------------------------------------------------------
# layers


def _spatial_perm(layer: Any, ndim: int) -> tuple[int, ...]:
    """The permutation in which a spatial layer's data is ONNX's N, C, *spatial."""
    if layer.data_format == "channels_first":
        return _identity(ndim)
    return _channels_first(ndim)


def _spatial_sizes(layer: Any, shape: tuple) -> tuple:
    return tuple(shape[2:]) if layer.data_format == "channels_first" else tuple(shape[1:-1])


def _conv_pads(layer: Any, shape: tuple, kernel: tuple, strides: tuple,
               dilation: tuple) -> dict[str, Any]:
    rank = len(kernel)
    if layer.padding == "valid":
        return {"pads": [0] * (2 * rank)}
    if layer.padding == "causal":
        return {"pads": [(kernel[0] - 1) * dilation[0], 0]}
    sizes = _spatial_sizes(layer, shape)
    if any(s is None for s in sizes):
        if max(dilation) > 1:
            raise _unsupported(layer, f"'same' padding with dilation_rate={dilation} needs "
                                      f"known spatial sizes, the input has {sizes}")
        # TensorFlow's "same" is ONNX's SAME_UPPER (the odd extra after).
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": _same_pads(sizes, kernel, strides, dilation)}


def _conv_weight(kernel: np.ndarray) -> np.ndarray:
    """Keras' (*k, C_in/groups, filters) kernel as ONNX's (filters, C_in/groups, *k)."""
    rank = kernel.ndim - 2
    return kernel.transpose(rank + 1, rank, *range(rank))


def _emit_conv(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    from fastconv.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv
    from fastconv.layers.convolutional.base_separable_conv import BaseSeparableConv

    ndim = len(shape)
    perm = _spatial_perm(layer, ndim)
    name = b.as_perm(x, perm)
    kernel_size, strides, dilation = layer.kernel_size, layer.strides, layer.dilation_rate
    pads = _conv_pads(layer, shape, kernel_size, strides, dilation)
    attrs = {"kernel_shape": list(kernel_size), "strides": list(strides),
             "dilations": list(dilation), **pads}
    bias = [b.const(layer.bias.value, "bias")] if layer.use_bias else []
    if isinstance(layer, (BaseDepthwiseConv, BaseSeparableConv)):
        depthwise = (layer.kernel if isinstance(layer, BaseDepthwiseConv)
                     else layer.depthwise_kernel).value
        c_in, multiplier = depthwise.shape[-2], depthwise.shape[-1]
        rank = depthwise.ndim - 2
        # Output channel c * multiplier + m reads input channel c: group c_in.
        w = depthwise.transpose(rank, rank + 1, *range(rank)).reshape(
            c_in * multiplier, 1, *depthwise.shape[:rank])
        if isinstance(layer, BaseDepthwiseConv):
            y = b.op("Conv", [name, b.const(w, "depthwise"), *bias], "depthwise_conv",
                     group=c_in, **attrs)
        else:
            d = b.op("Conv", [name, b.const(w, "depthwise")], "depthwise_conv",
                     group=c_in, **attrs)
            pw = _conv_weight(layer.pointwise_kernel.value)
            y = b.op("Conv", [d, b.const(pw, "pointwise"), *bias], "pointwise_conv",
                     kernel_shape=[1] * rank)
    else:
        y = b.op("Conv", [name, b.const(_conv_weight(layer.kernel.value), "kernel"), *bias],
                 "conv", group=layer.groups, **attrs)
    return _Value(_activation(b, layer.activation, y, perm, layer), perm)


def _emit_conv_transpose(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    from fastconv._validation_nd import conv_transpose_padding

    ndim = len(shape)
    perm = _spatial_perm(layer, ndim)
    name = b.as_perm(x, perm)
    sizes = _spatial_sizes(layer, shape)
    if any(s is None for s in sizes):
        raise _unsupported(layer, f"its input's spatial sizes {sizes} must be known")
    kernel = layer.kernel.value  # (*k, filters, C_in)
    rank = kernel.ndim - 2
    begin, end, extra = [], [], []
    for a, (n, k, s, d) in enumerate(zip(sizes, layer.kernel_size, layer.strides,
                                         layer.dilation_rate)):
        out_pad = None if layer.output_padding is None else layer.output_padding[a]
        length, before = conv_transpose_padding(n, k, s, d, layer.padding, out_pad)
        full = (n - 1) * s + (k - 1) * d + 1
        after = full - before - length
        begin.append(before)
        end.append(max(after, 0))
        extra.append(max(-after, 0))
    w = kernel.transpose(rank + 1, rank, *range(rank))  # (C_in, filters, *k)
    bias = [b.const(layer.bias.value, "bias")] if layer.use_bias else []
    y = b.op("ConvTranspose", [name, b.const(w, "kernel"), *bias], "conv_transpose",
             kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             dilations=list(layer.dilation_rate), pads=begin + end, output_padding=extra)
    return _Value(_activation(b, layer.activation, y, perm, layer), perm)


def _emit_pool(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    perm = _spatial_perm(layer, len(shape))
    name = b.as_perm(x, perm)
    rank = len(layer.pool_size)
    pads = _conv_pads(layer, shape, layer.pool_size, layer.strides, (1,) * rank)
    attrs = {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides), **pads}
    if layer.pool_mode == "max":
        y = b.op("MaxPool", [name], "max_pool", **attrs)
    else:
        # Keras' "same" average excludes the padding from each window's count.
        y = b.op("AveragePool", [name], "avg_pool", count_include_pad=0, **attrs)
    return _Value(y, perm)


def _emit_global_pool(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    perm = _spatial_perm(layer, ndim)
    name = b.as_perm(x, perm)
    op = "GlobalMaxPool" if "Max" in type(layer).__name__ else "GlobalAveragePool"
    y = b.op(op, [name], "global_pool")
    if layer.keepdims:
        return _Value(y, perm)
    return _Value(b.op("Flatten", [y], "flatten", axis=1), (0, 1))


def _emit_batch_norm(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    a = layer.axis % ndim
    perm = (0, a, *[i for i in range(1, ndim) if i != a])
    name = b.as_perm(x, perm)
    mean = layer.moving_mean.value
    ones, zeros = np.ones_like(mean), np.zeros_like(mean)
    gamma = layer.gamma.value if layer.gamma is not None else ones
    beta = layer.beta.value if layer.beta is not None else zeros
    y = b.op("BatchNormalization",
             [name, b.const(gamma, "gamma"), b.const(beta, "beta"), b.const(mean, "mean"),
              b.const(layer.moving_variance.value, "variance")],
             "batch_norm", epsilon=float(layer.epsilon))
    return _Value(y, perm)


def _emit_layer_norm(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    axes = sorted(a % ndim for a in (layer.axis if isinstance(layer.axis, (list, tuple))
                                     else [layer.axis]))
    if axes != list(range(axes[0], ndim)) or getattr(layer, "rms_scaling", False):
        raise _unsupported(layer, f"ONNX normalizes trailing axes only, without RMS "
                                  f"scaling; the layer has axis={layer.axis} and "
                                  f"rms_scaling={getattr(layer, 'rms_scaling', False)}")
    name = b.as_perm(x, _identity(ndim))
    norm_shape = tuple(shape[axes[0]:])
    gamma = (layer.gamma.value if layer.gamma is not None
             else np.ones(norm_shape, dtype=b.dtype)).reshape(norm_shape)
    beta = (layer.beta.value if layer.beta is not None
            else np.zeros(norm_shape, dtype=b.dtype)).reshape(norm_shape)
    y = b.op("LayerNormalization", [name, b.const(gamma, "gamma"), b.const(beta, "beta")],
             "layer_norm", axis=axes[0], epsilon=float(layer.epsilon))
    return _Value(y, _identity(ndim))


def _emit_dense(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    perm = _identity(len(shape))
    y = b.op("MatMul", [b.as_perm(x, perm), b.const(layer.kernel.value, "kernel")], "dense")
    if layer.use_bias:
        y = b.op("Add", [y, b.const(layer.bias.value, "bias")], "bias_add")
    return _Value(_activation(b, layer.activation, y, perm, layer), perm)


def _emit_flatten(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    # fastconv flattens in channels-last order (a channels_first input moves
    # its channels last first), never in ONNX's NCHW order.
    perm = (0, *range(2, ndim), 1) if layer.data_format == "channels_first" and ndim > 2 \
        else _identity(ndim)
    y = b.op("Flatten", [b.as_perm(x, perm)], "flatten", axis=1)
    return _Value(y, (0, 1))


def _emit_reshape(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    target = [0, *layer.target_shape]
    y = b.op("Reshape", [b.as_perm(x, _identity(len(shape))), b.ints(target, "shape")],
             "reshape")
    return _Value(y, _identity(len(target)))


def _emit_permute(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    # Permute's output is the input in permutation (0, *dims): only the label moves.
    full = (0, *layer.dims)
    name = b.as_perm(x, full)
    return _Value(name, _identity(len(shape)))


def _margins(layer: Any, perm: tuple, ndim: int) -> tuple[list[int], list[int]]:
    """(before, after) per ONNX axis of a value held in ``perm``."""
    first = 2 if layer.data_format == "channels_first" else 1
    before, after = [0] * ndim, [0] * ndim
    for k, (lo, hi) in enumerate(layer.pairs):
        axis = perm.index(first + k)
        before[axis], after[axis] = int(lo), int(hi)
    return before, after


def _emit_zero_padding(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    before, after = _margins(layer, x.perm, ndim)
    y = b.op("Pad", [x.name, b.ints(before + after, "pads")], "zero_pad", mode="constant")
    return _Value(y, x.perm)


def _emit_cropping(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    before, after = _margins(layer, x.perm, ndim)
    axes = [a for a in range(ndim) if before[a] or after[a]]
    if not axes:
        return x
    starts = [before[a] for a in axes]
    ends = [-after[a] if after[a] else np.iinfo(np.int64).max for a in axes]
    y = b.op("Slice", [x.name, b.ints(starts, "starts"), b.ints(ends, "ends"),
                       b.ints(axes, "axes")], "crop")
    return _Value(y, x.perm)


def _emit_upsampling(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    ndim = len(shape)
    first = 2 if layer.data_format == "channels_first" else 1
    scales = [1.0] * ndim
    for k, s in enumerate(layer.size):
        scales[x.perm.index(first + k)] = float(s)
    if layer.interpolation == "bilinear":
        # Keras resizes images with half-pixel centres, without antialiasing.
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        # Repeating each element: nearest with asymmetric coordinates and floor.
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}
    y = b.op("Resize", [x.name, "", b.const(scales, "scales", np.float32)], "upsample",
             **attrs)
    return _Value(y, x.perm)


def _emit_activation_layer(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    return _Value(_activation(b, layer.activation, x.name, x.perm, layer), x.perm)


def _emit_prelu(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    perm = _identity(len(shape))
    y = b.op("PRelu", [b.as_perm(x, perm), b.const(layer.alpha.value, "alpha")], "prelu")
    return _Value(y, perm)


def _emit_rescaling(b: _Builder, layer: Any, x: _Value, shape: tuple) -> _Value:
    perm = _identity(len(shape))
    y = b.op("Mul", [b.as_perm(x, perm), b.const(layer.scale, "scale")], "rescale")
    y = b.op("Add", [y, b.const(layer.offset, "offset")], "offset")
    return _Value(y, perm)


_MERGE_OPS = {"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}


def _emit_merge(b: _Builder, layer: Any, xs: list[_Value], shapes: list) -> _Value:
    kind = type(layer).__name__
    same = all(len(s) == len(shapes[0]) for s in shapes)
    # Inputs of one rank meet in the first one's permutation; broadcasting
    # across ranks needs fastconv's own layout.
    perm = xs[0].perm if same else None
    names = [b.as_perm(v, perm or _identity(len(s))) for v, s in zip(xs, shapes)]
    perm = perm or _identity(max(len(s) for s in shapes))
    if kind in _MERGE_OPS:
        return _Value(b.op(_MERGE_OPS[kind], names, kind.lower()), perm)
    if kind == "Subtract":
        return _Value(b.op("Sub", names, "subtract"), perm)
    if kind == "Multiply":
        y = names[0]
        for other in names[1:]:
            y = b.op("Mul", [y, other], "multiply")
        return _Value(y, perm)
    if kind == "Concatenate" and same:
        axis = perm.index(layer.axis % len(perm))
        return _Value(b.op("Concat", names, "concat", axis=axis), perm)
    raise _unsupported(layer, "this merge has no ONNX mapping")


def _emitter(layer: Any) -> Any:
    from fastconv import layers as L
    from fastconv.layers.convolutional.base_conv import BaseConv
    from fastconv.layers.convolutional.base_conv_transpose import BaseConvTranspose
    from fastconv.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv
    from fastconv.layers.convolutional.base_separable_conv import BaseSeparableConv
    from fastconv.layers.global_pooling import _GlobalPooling
    from fastconv.layers.pooling import BasePooling
    from fastconv.layers.reshaping import _Cropping, _UpSampling, _ZeroPadding

    table = [
        ((BaseConv, BaseDepthwiseConv, BaseSeparableConv), _emit_conv),
        (BaseConvTranspose, _emit_conv_transpose),
        (BasePooling, _emit_pool),
        (_GlobalPooling, _emit_global_pool),
        (L.BatchNormalization, _emit_batch_norm),
        (L.LayerNormalization, _emit_layer_norm),
        (L.Dense, _emit_dense),
        (L.Flatten, _emit_flatten),
        (L.Reshape, _emit_reshape),
        (L.Permute, _emit_permute),
        (_ZeroPadding, _emit_zero_padding),
        (_Cropping, _emit_cropping),
        (_UpSampling, _emit_upsampling),
        ((L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax), _emit_activation_layer),
        (L.PReLU, _emit_prelu),
        (L.Rescaling, _emit_rescaling),
    ]
    for classes, emit in table:
        if isinstance(layer, classes):
            return emit
    return None


# ----------------------------------------------------------------------------
# the graph walk


_BINARY_OPS = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div",
               "power": "Pow", "maximum": "Max", "minimum": "Min"}
_UNARY_OPS = {"negative": "Neg", "abs": "Abs", "sqrt": "Sqrt", "exp": "Exp", "log": "Log",
              "tanh": "Tanh", "sign": "Sign", "floor": "Floor", "ceil": "Ceil",
              "round": "Round", "stop_gradient": "Identity"}


def _emit_keras_op(b: _Builder, node: Any, env: dict) -> _Value | None:
    """The elementwise Keras ops (``x + y``, ``ops.exp(x)``, ...) of a graph;
    None for any other op."""
    from fastconv.graph.node import KerasTensor

    operation = node.operation
    name = getattr(getattr(operation, "primitive", None), "name", None)
    if name not in _BINARY_OPS and name not in _UNARY_OPS and name != "square":
        return None
    if getattr(operation, "static", None):
        return None
    args = operation._arguments(node.inputs)
    tensors = [a for a in args if isinstance(a, KerasTensor)]
    constants = [np.asarray(getattr(a, "value", a)) for a in args
                 if not isinstance(a, KerasTensor)]
    # Scalars broadcast in any layout; arrays and mixed ranks need fastconv's own.
    first = env[id(tensors[0])]
    keep = (all(c.ndim == 0 for c in constants)
            and all(len(t.shape) == len(tensors[0].shape) for t in tensors))
    perm = first.perm if keep else _identity(len(node.outputs[0].shape))
    names = [b.as_perm(env[id(a)], perm if keep else _identity(len(a.shape)))
             if isinstance(a, KerasTensor) else b.const(getattr(a, "value", a), "constant")
             for a in args]
    if name == "square":
        return _Value(b.op("Mul", [names[0], names[0]], "square"), perm)
    if name in _UNARY_OPS:
        return _Value(b.op(_UNARY_OPS[name], names[:1], name), perm)
    return _Value(b.op(_BINARY_OPS[name], names[:2], name), perm)


def _refused_op(operation: Any, owner: Any) -> ValueError:
    op = f"the Keras op '{getattr(operation, 'name', type(operation).__name__)}'"
    if owner is not None:
        return _unsupported(owner, f"its `call` uses {op}, which has no ONNX mapping "
                                   "(only calls of layers are exported)")
    return ValueError(f"The model's graph uses {op}, which cannot be exported to ONNX: "
                      "only layers are exported (wrap the op in a layer's `call` of layers).")


def _walk(b: _Builder, function: Any, inputs: list[_Value], owner: Any = None) -> list[_Value]:
    """Emit ``function``'s nodes with its inputs bound to ``inputs`` (``owner``:
    the layer whose traced `call` this graph is)."""
    from fastconv.layers.base import Layer
    from fastconv.layers.merging import _Merge
    from fastconv.models.model import Model

    env: dict[int, _Value] = {id(t): v for t, v in zip(function.inputs, inputs)}
    for node in function.nodes:
        layer = node.operation
        if not isinstance(layer, Layer):
            value = _emit_keras_op(b, node, env)
            if value is None:
                raise _refused_op(layer, owner)
            env[id(node.outputs[0])] = value
            continue
        tensors = node.input_tensors
        try:
            xs = [env[id(t)] for t in tensors]
        except KeyError:
            raise ValueError(f"Layer '{layer.name}' reads a tensor the exported graph "
                             "does not compute.") from None
        shapes = [t.shape for t in tensors]
        sub = getattr(layer, "_function", None) if isinstance(layer, Model) else None
        if sub is not None:
            outs = _walk(b, sub, xs)
        elif layer._defines_call():
            # A subclassed model or layer: its `call` traced (batch unknown).
            traced = layer._trace_spec(shapes[0] if node.structure == "single"
                                       else list(shapes), False)
            outs = _walk(b, traced, xs, layer)
        elif not type(layer).__module__.startswith("fastconv."):
            # A subclass of a fastconv layer may compute anything in `forward`:
            # exporting its base class's mapping could be silently wrong.
            raise _unsupported(layer, "it is not one of fastconv's layers and defines no "
                                      "`call` of layers and Keras ops to trace")
        elif type(layer).__name__ in _IDENTITY_AT_INFERENCE:
            outs = xs[:1]
        elif isinstance(layer, _Merge):
            outs = [_emit_merge(b, layer, xs, shapes)]
        else:
            emit = _emitter(layer)
            if emit is None or len(xs) != 1:
                raise _unsupported(layer, "it has no ONNX mapping")
            outs = [emit(b, layer, xs[0], shapes[0])]
        for t, v in zip(node.outputs, outs):
            env[id(t)] = v
    return [env[id(t)] for t in function.outputs]


def _value_info(onnx: Any, name: str, dtype: np.dtype, shape: tuple, index: int) -> Any:
    dims = [("batch" if axis == 0 else f"{name}_dim{axis}") if d is None else int(d)
            for axis, d in enumerate(shape)]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def build_onnx_model(model: Any, opset: int = DEFAULT_OPSET) -> Any:
    """The ``onnx.ModelProto`` of ``model``'s inference pass (checked by
    ``onnx.checker``). See ``export_onnx``."""
    onnx = _import_onnx()
    function = getattr(model, "_function", None)
    shape = getattr(model, "_build_input_shape", None) or getattr(model, "input_shape", None)
    if function is None and model._defines_call() and model.built and shape is not None:
        # A subclassed model: its `call` traced for the shape it was built for.
        shapes = ([(None, *s[1:]) for s in shape] if isinstance(shape, list)
                  else (None, *tuple(shape)[1:]))
        function = model._trace_spec(shapes, False)
        owner = model
        input_names = [t.name or f"input_{i}" for i, t in enumerate(function.inputs)]
        output_names = [f"output_{i}" for i in range(len(function.outputs))]
    elif function is None:
        raise ValueError(
            f"The model '{model.name}' has not been built yet, so it cannot be exported: "
            "give the first layer an `input_shape`, start with `fastconv.Input(shape)`, "
            "or call `build(input_shape)` / `fit` first.")
    else:
        owner = None
        input_names = list(model.input_names)
        output_names = list(model.output_names)
    dtype = np.dtype(model._dtype())
    if dtype != np.float32:
        # As in Keras; ONNX Runtime has no float64 convolutions either.
        raise ValueError(f"Only float32 models are exported to ONNX, model "
                         f"'{model.name}' is {dtype}.")
    b = _Builder(onnx, dtype)
    b.reserved.update(input_names + output_names)
    inputs = [_Value(name, _identity(len(t.shape)))
              for name, t in zip(input_names, function.inputs)]
    for t in function.inputs:
        if np.dtype(t.dtype) != dtype:
            raise ValueError(f"Input '{t.name}' of model '{model.name}' is {t.dtype}; only "
                             f"{dtype.name} inputs are exported.")
    outs = _walk(b, function, inputs, owner)
    taken = set(input_names)
    for i, (name, value, t) in enumerate(zip(output_names, outs, function.outputs)):
        if name in taken:
            name = output_names[i] = f"{name}_output"
        taken.add(name)
        src = b.as_perm(value, _identity(len(t.shape)))
        b.nodes.append(onnx.helper.make_node("Identity", [src], [name], name=f"{name}_out"))
    graph = onnx.helper.make_graph(
        b.nodes, model.name,
        [_value_info(onnx, n, dtype, t.shape, i)
         for i, (n, t) in enumerate(zip(input_names, function.inputs))],
        [_value_info(onnx, n, dtype, t.shape, i)
         for i, (n, t) in enumerate(zip(output_names, function.outputs))],
        initializer=b.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="fastconv")
    # The IR version the opset came with, so older runtimes read the file.
    proto.ir_version = min(proto.ir_version, _ir_version_for(onnx, opset))
    onnx.checker.check_model(proto)
    return proto


def _ir_version_for(onnx: Any, opset: int) -> int:
    for entry in onnx.helper.VERSION_TABLE:
        if entry[2] == opset:
            return entry[1]
    return onnx.IR_VERSION


def _check_opset(onnx: Any, opset: Any) -> int:
    highest = onnx.defs.onnx_opset_version()
    if (not isinstance(opset, (int, np.integer)) or isinstance(opset, bool)
            or not MIN_OPSET <= opset <= highest):
        raise ValueError(f"Invalid value for argument `opset_version`: expected an int in "
                         f"[{MIN_OPSET}, {highest}], received opset_version={opset!r}.")
    return int(opset)


def export_onnx(model: Any, filepath: str | os.PathLike, verbose: bool | None = None,
                input_signature: Any = None, opset_version: int | None = None, *,
                opset: int | None = None) -> None:
    """Write ``model``'s inference pass to ``filepath`` as an ONNX file.

    Parameters
    ----------
    model : Model
        A built Sequential or functional model (nested models inside are
        exported too). Its inputs and outputs keep fastconv's shapes and
        layouts (``(N, H, W, C)``); the batch size is dynamic.
    filepath : str or path
        Written atomically (a temporary file renamed over the target).
    verbose : bool, optional
        Print where the file was written (Keras' default, None, prints).
    input_signature : None
        Only None is supported: the model's own input shapes are used.
    opset_version, opset : int, optional
        The ONNX opset (``opset`` is a short alias); default 18, at least 17.

    Raises
    ------
    ImportError
        When the ``onnx`` package is missing (the message says what to install).
    ValueError
        For a layer without an ONNX mapping (naming the layer and its class),
        an unbuilt or subclassed model, or a bad opset.
    """
    onnx = _import_onnx()
    if input_signature is not None:
        raise ValueError("Invalid value for argument `input_signature`: fastconv exports "
                         "the model's own input shapes (dynamic batch); only "
                         f"input_signature=None is supported, received {input_signature!r}.")
    if opset is not None and opset_version is not None and opset != opset_version:
        raise ValueError(f"Invalid values for arguments `opset` and `opset_version`: they "
                         f"name the same setting, received opset={opset} and "
                         f"opset_version={opset_version}.")
    chosen = _check_opset(onnx, next((v for v in (opset_version, opset) if v is not None),
                                     DEFAULT_OPSET))
    proto = build_onnx_model(model, chosen)
    payload = proto.SerializeToString()

    from fastconv import saving
    saving._atomic_write(filepath, True, lambda f: f.write(payload))
    if verbose is None or verbose:
        print(f"Saved artifact at '{os.fspath(filepath)}'.")

"""Keras' convolution and pooling ops (``keras.ops.conv``, ``depthwise_conv``,
``separable_conv``, ``conv_transpose``, ``max_pool``, ``average_pool``) of
rank 1, 2 and 3, with their gradients, on fastconv's kernel functions.

Each takes Keras 3's arguments and computes through ``fastconv.ops.spatial``
(the 2-D kernels where they apply, ``conv_nd`` and friends otherwise), on
channels-last arrays: ``data_format="channels_first"`` moves the channels
around the call. Kernels are in Keras' layouts: ``(*k, C_in // groups,
C_out)`` for ``conv`` (the group count is C_in over the kernel's input
channels, as in Keras), ``(*k, C_in, m)`` for ``depthwise_conv``, ``(*k,
filters, C_in)`` for ``conv_transpose``. The two operands are cast to their
common float dtype (the kernels take one dtype per call).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from fastconv import activations as act
from fastconv._validation_nd import conv_transpose_padding
from fastconv.ops import spatial
from fastconv.ops.core import Primitive, apply, shape_of

__all__ = ["average_pool", "conv", "conv_transpose", "depthwise_conv", "max_pool",
           "separable_conv"]


def _kernels() -> ModuleType:
    """``fastconv.ops`` (this module is imported while it loads)."""
    from fastconv import ops
    return ops


# ----------------------------------------------------------------------------
# arguments


def _rank(inputs: Any, op: str, ranks: tuple[int, ...] = (1, 2, 3)) -> int:
    shape = shape_of(inputs)
    rank = len(shape) - 2
    if rank not in ranks:
        dims = " or ".join(str(r + 2) for r in ranks)
        raise ValueError(f"Invalid value for argument `inputs` of `{op}`: expected a tensor of "
                         f"rank {dims} (batch, {'/'.join(map(str, ranks))} spatial axes, "
                         f"channels), received a tensor of shape {shape}.")
    return rank


def _tuple(value: Any, rank: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, (int, np.integer)) else value
    if (isinstance(values, (tuple, list)) and len(values) == rank
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    and v >= minimum for v in values)):
        return tuple(int(v) for v in values)
    what = "positive" if minimum == 1 else "non-negative"
    raise ValueError(f"Invalid value for argument `{name}` of `{op}`: expected a {what} int or "
                     f"a tuple of {rank} of them, received {name}={value!r}.")


def _padding(padding: Any, op: str) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"Invalid value for argument `padding` of `{op}`: expected 'valid' "
                         f"or 'same', received padding={padding!r}.")
    return padding.lower()


def _data_format(data_format: Any, op: str) -> str:
    data_format = "channels_last" if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Invalid value for argument `data_format` of `{op}`: expected None, "
                         f"'channels_last' or 'channels_first', received "
                         f"data_format={data_format!r}.")
    return data_format


def _kernel_rank(kernel: Any, rank: int, name: str, op: str, layout: str) -> tuple:
    shape = shape_of(kernel)
    if len(shape) != rank + 2:
        raise ValueError(f"Invalid value for argument `{name}` of `{op}`: expected a rank-"
                         f"{rank + 2} {layout} kernel for inputs with {rank} spatial axes, "
                         f"received shape {shape}.")
    return shape


def _channels(inputs: Any, data_format: str) -> int | None:
    shape = shape_of(inputs)
    return shape[1] if data_format == "channels_first" else shape[-1]


def _last(x: Any, data_format: str) -> np.ndarray:
    """``x`` as a float channels-last array (integers as float32)."""
    x = act.linear(x)
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _first(y: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def _float_dtype(*values: Any) -> str:
    """The dtype the op computes in: the operands' common one, integers as float32."""
    dtypes = [np.dtype(getattr(v, "dtype", None) or np.asarray(v).dtype) for v in values]
    return np.result_type(*[d if d.kind == "f" else np.float32 for d in dtypes]).name


def _spec(inputs: Any, data_format: str, sizes: Any, channels: Any, *operands: Any
          ) -> tuple[tuple, str]:
    """(shape, dtype) of an output with these spatial sizes and channels."""
    shape = shape_of(inputs)
    spatial_sizes = tuple(sizes(shape[2:] if data_format == "channels_first" else shape[1:-1]))
    out = ((shape[0], channels, *spatial_sizes) if data_format == "channels_first"
           else (shape[0], *spatial_sizes, channels))
    return out, _float_dtype(inputs, *operands)


def _window_sizes(spatial_sizes: tuple, window: tuple, strides: tuple, dilation: tuple,
                  padding: str, op: str) -> tuple:
    sizes = tuple(spatial.conv_output_length(n, k, s, d, padding)
                  for n, k, s, d in zip(spatial_sizes, window, strides, dilation))
    if any(n is not None and n < 1 for n in sizes):
        raise ValueError(f"Invalid arguments for `{op}`: the window {window} (dilation "
                         f"{dilation}) is larger than the input's spatial size "
                         f"{spatial_sizes}; use padding='same' or a smaller window.")
    return sizes


def _common(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays in one float dtype, C-contiguous (the kernels take one dtype per call)."""
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


# ----------------------------------------------------------------------------
# conv


def _groups(c_in: int, kernel_in: int) -> int:
    if c_in % kernel_in:
        raise ValueError(f"Invalid value for argument `kernel` of `conv`: the input's {c_in} "
                         f"channels must be a multiple of the kernel's {kernel_in} input "
                         "channels (the group count is their ratio).")
    return c_in // kernel_in


def _conv_forward(inputs: Any, kernel: Any, strides: tuple, padding: str, data_format: str,
                  dilation_rate: tuple) -> np.ndarray:
    x, w = _common(_last(inputs, data_format), act.linear(kernel))
    y = spatial.conv(_kernels(), x, w, None, strides, padding, dilation_rate,
                     _groups(x.shape[-1], w.shape[-2]))
    return _first(y, data_format)


def _conv_backward(dy: np.ndarray, out: Any, inputs: Any, kernel: Any, strides: tuple,
                   padding: str, data_format: str, dilation_rate: tuple) -> tuple:
    x, w, d = _common(_last(inputs, data_format), act.linear(kernel), _last(dy, data_format))
    dx, dw, _ = spatial.conv_backward(_kernels(), d, x, w, strides, padding, dilation_rate,
                                      _groups(x.shape[-1], w.shape[-2]), need_db=False)
    return _first(dx, data_format), dw


def _conv_spec(inputs: Any, kernel: Any, strides: tuple, padding: str, data_format: str,
               dilation_rate: tuple) -> tuple[tuple, str]:
    k = shape_of(kernel)
    return _spec(inputs, data_format, lambda n: _window_sizes(
        n, k[:-2], strides, dilation_rate, padding, "conv"), k[-1], kernel)


_CONV = Primitive("conv", _conv_forward, _conv_backward, ("inputs", "kernel"),
                  output_spec=_conv_spec)


def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
         data_format: str | None = None, dilation_rate: Any = 1) -> Any:
    """General 1-, 2- or 3-D convolution (cross-correlation, as Keras).

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C_in) (channels_first: (N, C_in, *spatial))
    kernel : tensor, shape (*kernel_size, C_in // groups, C_out)
        A kernel with fewer input channels than ``inputs`` makes a grouped
        convolution of ``C_in // kernel.shape[-2]`` groups.
    strides, dilation_rate : int or tuple of one int per spatial axis
    padding : "valid" or "same"
    data_format : None ("channels_last"), "channels_last" or "channels_first"

    Returns
    -------
    tensor, shape (N, *out_spatial, C_out) (channels_first: (N, C_out, *out_spatial))
    """
    rank = _rank(inputs, "conv")
    data_format = _data_format(data_format, "conv")
    shape = _kernel_rank(kernel, rank, "kernel", "conv", "(*kernel_size, C_in, C_out)")
    c_in = _channels(inputs, data_format)
    if c_in is not None:
        _groups(c_in, shape[-2])
    return apply(_CONV, (inputs, kernel), {
        "strides": _tuple(strides, rank, "strides", "conv"),
        "padding": _padding(padding, "conv"), "data_format": data_format,
        "dilation_rate": _tuple(dilation_rate, rank, "dilation_rate", "conv")})


# ----------------------------------------------------------------------------
# depthwise and separable


def _grouped(kernel: np.ndarray) -> np.ndarray:
    """A depthwise kernel (*k, C_in, m) as the grouped convolution's (*k, 1, C_in * m)."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def _depthwise_forward(inputs: Any, kernel: Any, strides: tuple, padding: str,
                       data_format: str, dilation_rate: tuple) -> np.ndarray:
    x, w = _common(_last(inputs, data_format), act.linear(kernel))
    y = spatial.conv(_kernels(), x, _grouped(w), None, strides, padding, dilation_rate,
                     w.shape[-2])
    return _first(y, data_format)


def _depthwise_backward(dy: np.ndarray, out: Any, inputs: Any, kernel: Any, strides: tuple,
                        padding: str, data_format: str, dilation_rate: tuple) -> tuple:
    x, w, d = _common(_last(inputs, data_format), act.linear(kernel), _last(dy, data_format))
    dx, dw, _ = spatial.conv_backward(_kernels(), d, x, _grouped(w), strides, padding,
                                      dilation_rate, w.shape[-2], need_db=False)
    return _first(dx, data_format), dw.reshape(w.shape)


def _depthwise_spec(inputs: Any, kernel: Any, strides: tuple, padding: str,
                    data_format: str, dilation_rate: tuple) -> tuple[tuple, str]:
    k = shape_of(kernel)
    return _spec(inputs, data_format, lambda n: _window_sizes(
        n, k[:-2], strides, dilation_rate, padding, "depthwise_conv"), k[-2] * k[-1], kernel)


_DEPTHWISE_CONV = Primitive("depthwise_conv", _depthwise_forward, _depthwise_backward,
                            ("inputs", "kernel"), output_spec=_depthwise_spec)


def _check_depthwise(inputs: Any, kernel: Any, rank: int, data_format: str, name: str,
                     op: str) -> None:
    shape = _kernel_rank(kernel, rank, name, op, "(*kernel_size, C_in, depth_multiplier)")
    c_in = _channels(inputs, data_format)
    if c_in is not None and shape[-2] != c_in:
        raise ValueError(f"Invalid value for argument `{name}` of `{op}`: its input channels "
                         f"(axis -2, {shape[-2]}) must equal the input's {c_in} channels, "
                         f"received shape {shape}.")


def _hyper(rank: int, strides: Any, padding: Any, data_format: str, dilation_rate: Any,
           op: str) -> dict[str, Any]:
    return {"strides": _tuple(strides, rank, "strides", op),
            "padding": _padding(padding, op), "data_format": data_format,
            "dilation_rate": _tuple(dilation_rate, rank, "dilation_rate", op)}


def depthwise_conv(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                   data_format: str | None = None, dilation_rate: Any = 1) -> Any:
    """Depthwise 1-, 2- or 3-D convolution: each input channel through its own
    ``depth_multiplier`` filters (output channel ``c * m + j``).

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C_in) (channels_first: (N, C_in, *spatial))
    kernel : tensor, shape (*kernel_size, C_in, depth_multiplier)
    strides, padding, data_format, dilation_rate
        As for ``conv``.

    Returns
    -------
    tensor, shape (N, *out_spatial, C_in * depth_multiplier)
    """
    rank = _rank(inputs, "depthwise_conv")
    data_format = _data_format(data_format, "depthwise_conv")
    _check_depthwise(inputs, kernel, rank, data_format, "kernel", "depthwise_conv")
    return apply(_DEPTHWISE_CONV, (inputs, kernel),
                 _hyper(rank, strides, padding, data_format, dilation_rate, "depthwise_conv"))


def separable_conv(inputs: Any, depthwise_kernel: Any, pointwise_kernel: Any,
                   strides: Any = 1, padding: str = "valid", data_format: str | None = None,
                   dilation_rate: Any = 1) -> Any:
    """Depthwise separable convolution: ``depthwise_conv`` with the strides,
    padding and dilation, then a 1x1 ``conv`` by ``pointwise_kernel``.

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C_in) (channels_first: (N, C_in, *spatial))
    depthwise_kernel : tensor, shape (*kernel_size, C_in, depth_multiplier)
    pointwise_kernel : tensor, shape (1, ..., 1, C_in * depth_multiplier, C_out)
    strides, padding, data_format, dilation_rate
        As for ``conv``.

    Returns
    -------
    tensor, shape (N, *out_spatial, C_out)
    """
    op = "separable_conv"
    rank = _rank(inputs, op)
    data_format = _data_format(data_format, op)
    _check_depthwise(inputs, depthwise_kernel, rank, data_format, "depthwise_kernel", op)
    shape = _kernel_rank(pointwise_kernel, rank, "pointwise_kernel", op,
                         "(1, ..., 1, C_in * depth_multiplier, C_out)")
    d_shape = shape_of(depthwise_kernel)
    if any(k != 1 for k in shape[:rank]) or shape[-2] != d_shape[-2] * d_shape[-1]:
        raise ValueError(f"Invalid value for argument `pointwise_kernel` of `{op}`: expected "
                         f"shape {(1,) * rank + (d_shape[-2] * d_shape[-1],)} + (C_out,) for a "
                         f"depthwise kernel of shape {d_shape}, received shape {shape}.")
    hidden = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format,
                            dilation_rate)
    return conv(hidden, pointwise_kernel, 1, "valid", data_format, 1)


# ----------------------------------------------------------------------------
# conv_transpose


def _conv_transpose_forward(inputs: Any, kernel: Any, strides: tuple, padding: str,
                            output_padding: tuple | None, data_format: str,
                            dilation_rate: tuple) -> np.ndarray:
    x, w = _common(_last(inputs, data_format), act.linear(kernel))
    y = _kernels().conv_transpose_nd(x, w, None, strides, padding, output_padding,
                                     dilation_rate)
    return _first(y, data_format)


def _conv_transpose_backward(dy: np.ndarray, out: Any, inputs: Any, kernel: Any,
                             strides: tuple, padding: str, output_padding: tuple | None,
                             data_format: str, dilation_rate: tuple) -> tuple:
    x, w, d = _common(_last(inputs, data_format), act.linear(kernel), _last(dy, data_format))
    dx, dw, _ = _kernels().conv_transpose_nd_backward(d, x, w, strides, padding,
                                                      output_padding, dilation_rate,
                                                      need_db=False)
    return _first(dx, data_format), dw


def _conv_transpose_spec(inputs: Any, kernel: Any, strides: tuple, padding: str,
                         output_padding: tuple | None, data_format: str,
                         dilation_rate: tuple) -> tuple[tuple, str]:
    k = shape_of(kernel)

    def sizes(spatial_sizes: tuple) -> tuple:
        return tuple(None if n is None else conv_transpose_padding(
            n, k[a], strides[a], dilation_rate[a], padding,
            None if output_padding is None else output_padding[a])[0]
            for a, n in enumerate(spatial_sizes))

    return _spec(inputs, data_format, sizes, k[-2], kernel)


_CONV_TRANSPOSE = Primitive("conv_transpose", _conv_transpose_forward,
                            _conv_transpose_backward, ("inputs", "kernel"),
                            output_spec=_conv_transpose_spec)


def conv_transpose(inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
                   output_padding: Any = None, data_format: str | None = None,
                   dilation_rate: Any = 1) -> Any:
    """Transposed 1-, 2- or 3-D convolution (the input gradient of ``conv``),
    with Keras 3's output sizes (see ``fastconv.layers.Conv2DTranspose``).

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C_in) (channels_first: (N, C_in, *spatial))
    kernel : tensor, shape (*kernel_size, filters, C_in)
    strides, dilation_rate : int or tuple of one int per spatial axis
    padding : "valid" or "same"
    output_padding : None, int or tuple
        Extra output size after each axis, each less than its stride.
    data_format : None ("channels_last"), "channels_last" or "channels_first"

    Returns
    -------
    tensor, shape (N, *out_spatial, filters) (channels_first: (N, filters, *out_spatial))
    """
    op = "conv_transpose"
    rank = _rank(inputs, op)
    data_format = _data_format(data_format, op)
    shape = _kernel_rank(kernel, rank, "kernel", op, "(*kernel_size, filters, C_in)")
    c_in = _channels(inputs, data_format)
    if c_in is not None and shape[-1] != c_in:
        raise ValueError(f"Invalid value for argument `kernel` of `{op}`: its last axis "
                         f"({shape[-1]}) must equal the input's {c_in} channels, received "
                         f"shape {shape}.")
    hyper = _hyper(rank, strides, padding, data_format, dilation_rate, op)
    extra = None if output_padding is None else _tuple(output_padding, rank, "output_padding",
                                                       op, minimum=0)
    if extra is not None and any(p >= s for p, s in zip(extra, hyper["strides"])):
        raise ValueError(f"Invalid value for argument `output_padding` of `{op}`: each value "
                         f"must be less than the stride along its axis, received "
                         f"output_padding={output_padding!r} with strides={hyper['strides']}.")
    return apply(_CONV_TRANSPOSE, (inputs, kernel), {**hyper, "output_padding": extra})


# ----------------------------------------------------------------------------
# pooling


def _max_pool_forward(inputs: Any, pool_size: tuple, strides: tuple, padding: str,
                      data_format: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(_last(inputs, data_format))
    y, argmax = spatial.max_pool(_kernels(), x, pool_size, strides, padding)
    return _first(y, data_format), argmax


def _max_pool_backward(dy: np.ndarray, out: tuple, inputs: Any, pool_size: tuple,
                       strides: tuple, padding: str, data_format: str) -> tuple:
    x = _last(inputs, data_format)
    d = np.ascontiguousarray(_last(dy, data_format), dtype=x.dtype)
    dx = spatial.max_pool_backward(_kernels(), d, out[1], x.shape, pool_size, strides, padding)
    return (_first(dx, data_format),)


def _average_pool_forward(inputs: Any, pool_size: tuple, strides: tuple, padding: str,
                          data_format: str) -> np.ndarray:
    x = np.ascontiguousarray(_last(inputs, data_format))
    return _first(spatial.avg_pool(_kernels(), x, pool_size, strides, padding), data_format)


def _average_pool_backward(dy: np.ndarray, out: Any, inputs: Any, pool_size: tuple,
                           strides: tuple, padding: str, data_format: str) -> tuple:
    x = _last(inputs, data_format)
    d = np.ascontiguousarray(_last(dy, data_format), dtype=x.dtype)
    dx = spatial.avg_pool_backward(_kernels(), d, x.shape, pool_size, strides, padding)
    return (_first(dx, data_format),)


def _pool_spec(inputs: Any, pool_size: tuple, strides: tuple, padding: str,
               data_format: str) -> tuple[tuple, str]:
    shape = shape_of(inputs)
    channels = shape[1] if data_format == "channels_first" else shape[-1]
    return _spec(inputs, data_format, lambda n: _window_sizes(
        n, pool_size, strides, (1,) * len(pool_size), padding, "pooling"), channels)


# max_pool's backward needs the argmax its forward found: kept as aux.
_MAX_POOL = Primitive("max_pool", _max_pool_forward, _max_pool_backward, ("inputs",),
                      aux=True, output_spec=_pool_spec)
_AVERAGE_POOL = Primitive("average_pool", _average_pool_forward, _average_pool_backward,
                          ("inputs",), output_spec=_pool_spec)


def _pool(primitive: Primitive, inputs: Any, pool_size: Any, strides: Any, padding: str,
          data_format: str | None) -> Any:
    op = primitive.name
    rank = _rank(inputs, op)
    size = _tuple(pool_size, rank, "pool_size", op)
    step = size if strides is None else _tuple(strides, rank, "strides", op)
    return apply(primitive, (inputs,), {"pool_size": size, "strides": step,
                                        "padding": _padding(padding, op),
                                        "data_format": _data_format(data_format, op)})


def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
             data_format: str | None = None) -> Any:
    """1-, 2- or 3-D max pooling; the gradient goes to each window's first maximum.

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C) (channels_first: (N, C, *spatial))
    pool_size : int or tuple of one int per spatial axis
    strides : int or tuple, optional
        Defaults to ``pool_size``.
    padding : "valid" or "same"
    data_format : None ("channels_last"), "channels_last" or "channels_first"

    Returns
    -------
    tensor
    """
    return _pool(_MAX_POOL, inputs, pool_size, strides, padding, data_format)


def average_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None) -> Any:
    """1-, 2- or 3-D average pooling; with "same" padding the padded positions
    count in neither the sum nor the divisor (as Keras).

    Parameters
    ----------
    inputs : tensor, shape (N, *spatial, C) (channels_first: (N, C, *spatial))
    pool_size : int or tuple of one int per spatial axis
    strides : int or tuple, optional
        Defaults to ``pool_size``.
    padding : "valid" or "same"
    data_format : None ("channels_last"), "channels_last" or "channels_first"

    Returns
    -------
    tensor
    """
    return _pool(_AVERAGE_POOL, inputs, pool_size, strides, padding, data_format)

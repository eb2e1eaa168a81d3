"""Argument checking and geometry of the rank-generic convolution and pooling ops.

``fastconv.ops`` and ``fastconv.reference`` both call these, so the two
backends accept the same arguments and raise the same errors (as for the
2-D ops in :mod:`fastconv._validation`).

Shapes are channels-last: activations ``(N, *spatial, C)`` and kernels
``(*kernel_size, C_in / groups, C_out)``, with 1, 2 or 3 spatial axes (the
rank, read from the input's number of dimensions). Every geometry is stored
as a 3-D one: a rank-2 op has one depth plane and one depth tap; a rank-1 op
runs along the width, with a height of one (so its outputs form long rows,
which is what the compiled kernels block over).

Hyper-parameters of one value per spatial axis (strides, dilation, pool
size) are an int or a tuple of ``rank`` ints. Padding is "valid", "same"
(TensorFlow's rule: an odd extra element goes after), "causal" (rank 1
only: ``(kernel - 1) * dilation`` before, nothing after, as Keras' Conv1D),
an int, a tuple of ``rank`` ints, or a tuple of ``rank`` (before, after)
pairs.
"""

from __future__ import annotations

import numpy as np

from fastconv._validation import (
    MAX_HYPER_PARAMETER,
    ConvGeometry,
    PoolGeometry,
    _axis_geometry,
    _check_argmax,
    _check_elements,
    _check_nonempty,
    _is_int,
    _memoized,
    check_array,
    check_flag,
    check_same_dtype,
)

AXES = ("depth", "height", "width")
RANKS = (1, 2, 3)


def axis_names(rank: int) -> tuple[str, ...]:
    """Names of a rank's spatial axes, as error messages say them."""
    return (("length",), ("height", "width"), AXES)[rank - 1]


def _rank(shape: tuple[int, ...], name: str) -> int:
    rank = len(shape) - 2
    if rank not in RANKS:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected 3, 4 or 5 dimensions "
            f"(N, *spatial, C) for 1, 2 or 3 spatial axes, received shape {tuple(shape)}."
        )
    return rank


def positive_tuple(value: object, rank: int, name: str) -> tuple[int, ...]:
    """An int, or a tuple/list of ``rank`` ints, each in [1, 2**31 - 1]."""
    if _is_int(value):
        values = (int(value),) * rank
    elif (isinstance(value, (tuple, list)) and len(value) == rank
          and all(_is_int(v) for v in value)):
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(
            f"Invalid value for argument `{name}`: expected an int or a tuple of "
            f"{rank} ints, received {name}={value!r}."
        )
    if min(values) < 1 or max(values) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected positive ints up to "
            f"2**31 - 1, received {name}={value!r}."
        )
    return values


def padding_modes(padding: object, rank: int, name: str = "padding",
                  causal: bool = True) -> tuple[str | tuple[int, int], ...]:
    """One mode per spatial axis: "valid", "same", "causal" or (before, after)."""
    allowed = "'valid', 'same'" + (", 'causal' (rank 1)" if causal else "")
    explicit_text = (f"an int, a tuple of {rank} ints or a tuple of {rank} "
                     "(before, after) pairs")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode in ("valid", "same"):
            return (mode,) * rank
        if mode == "causal" and causal:
            if rank != 1:
                raise ValueError(
                    f"Invalid value for argument `{name}`: 'causal' padding is only "
                    f"defined for rank-1 (sequence) inputs, received {name}={padding!r} "
                    f"for an input with {rank} spatial axes."
                )
            return ("causal",)
        raise ValueError(
            f"Invalid value for argument `{name}`: expected {allowed}, or "
            f"{explicit_text}, received {name}={padding!r}."
        )
    pairs: tuple[tuple[int, int], ...] | None = None
    if _is_int(padding):
        pairs = ((int(padding), int(padding)),) * rank
    elif (rank == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2
          and all(_is_int(p) for p in padding)):
        pairs = ((int(padding[0]), int(padding[1])),)  # (before, after) of the one axis
    elif isinstance(padding, (tuple, list)) and len(padding) == rank:
        if all(_is_int(p) for p in padding):
            pairs = tuple((int(p), int(p)) for p in padding)
        elif all(isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(q) for q in p)
                 for p in padding):
            pairs = tuple((int(p[0]), int(p[1])) for p in padding)
    if pairs is None:
        raise TypeError(
            f"Invalid value for argument `{name}`: expected {allowed}, or "
            f"{explicit_text}, received {name}={padding!r}."
        )
    if min(min(p) for p in pairs) < 0 or max(max(p) for p in pairs) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `{name}`: explicit padding must be "
            f"non-negative ints up to 2**31 - 1, received {name}={padding!r}."
        )
    return pairs


def _to3(values: tuple[int, ...], fill: int) -> tuple[int, int, int]:
    """A rank's per-axis values as (depth, height, width)."""
    return (fill,) * (3 - len(values)) + tuple(values)  # type: ignore[return-value]


def _check_spatial_nd(shape: tuple[int, ...], name: str) -> None:
    if max(shape[1:-1]) > 2**31 - 1:
        raise ValueError(
            f"Invalid shape for argument `{name}`: spatial sizes must be at most "
            f"2**31 - 1, received shape {tuple(shape)}."
        )


def check_groups(groups: object, c_in: int, c_out: int, w_in: int,
                 x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> int:
    if not _is_int(groups):
        raise TypeError(
            f"Invalid value for argument `groups`: expected a positive int, received "
            f"groups={groups!r}."
        )
    groups = int(groups)
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(
            f"Invalid value for argument `groups`: expected a positive int dividing both "
            f"the input channels ({c_in}) and the output channels ({c_out}), received "
            f"groups={groups}."
        )
    if w_in * groups != c_in:
        raise ValueError(
            f"Channel mismatch: `x` has {c_in} channels (shape {tuple(x_shape)}) but `w` "
            f"expects {w_in} input channels per group x {groups} groups (shape "
            f"{tuple(w_shape)})."
        )
    return groups


@_memoized
def conv_nd_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: object,
                     padding: object, dilation: object, groups: object = 1) -> ConvGeometry:
    """The geometry of conv_nd(x, w, ...) for these shapes (see the module doc)."""
    rank = _rank(x_shape, "x")
    if len(w_shape) != rank + 2:
        raise ValueError(
            f"Invalid shape for argument `w`: expected {rank + 2} dimensions "
            f"(*kernel_size, C_in / groups, C_out) for an input with {rank} spatial axes, "
            f"received shape {tuple(w_shape)}."
        )
    _check_nonempty(tuple(x_shape), "x", tuple(range(1, rank + 2)), "spatial sizes and channels")
    _check_spatial_nd(x_shape, "x")
    _check_nonempty(tuple(w_shape), "w", tuple(range(rank + 2)), "every kernel dimension")
    n, c_in = x_shape[0], x_shape[-1]
    kernel, w_in, c_out = tuple(w_shape[:rank]), w_shape[-2], w_shape[-1]
    groups = check_groups(groups, c_in, c_out, w_in, x_shape, w_shape)
    steps = positive_tuple(strides, rank, "strides")
    dils = positive_tuple(dilation, rank, "dilation")
    modes = padding_modes(padding, rank)
    what = "shape for argument `w`: the dilated kernel's"
    outs, befores, afters = [], [], []
    for size, k, s, d, mode, axis in zip(x_shape[1:-1], kernel, steps, dils, modes,
                                         axis_names(rank)):
        extent = (k - 1) * d + 1
        if mode == "causal":
            mode = (extent - 1, 0)
        out, before, after = _axis_geometry(size, extent, s, mode, what, axis)
        outs.append(out)
        befores.append(before)
        afters.append(after)
    explicit = any(not isinstance(m, str) and max(m) > 0 for m in modes)
    _check_elements((n, *outs, c_out), "the output of shape", "padding" if explicit else "w",
                    f"padding={padding!r}" if explicit else f"shape {tuple(w_shape)} for "
                    f"x of shape {tuple(x_shape)}")
    d, h, w = _to3(tuple(x_shape[1:-1]), 1)
    kd, kh, kw = _to3(kernel, 1)
    od, oh, ow = _to3(tuple(outs), 1)
    sd, sh, sw = _to3(steps, 1)
    dd, dh, dw = _to3(dils, 1)
    pf, pt, pl = _to3(tuple(befores), 0)
    pk, pb, pr = _to3(tuple(afters), 0)
    return ConvGeometry(n, h, w, c_in, kh, kw, c_out, oh, ow, sh, sw, dh, dw, pt, pb, pl, pr,
                        d=d, kd=kd, od=od, stride_d=sd, dil_d=dd, pad_front=pf, pad_back=pk,
                        rank=rank, groups=groups)


def _check_bias(b: np.ndarray | None, c_out: int) -> None:
    if b is not None and b.shape[0] != c_out:
        raise ValueError(
            f"Invalid shape for argument `b`: expected ({c_out},) to match the "
            f"output channels, received shape {b.shape}."
        )


def _arrays(x: object, w: object, b: object) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = check_array(x, "x", None)
    w = check_array(w, "w", None)
    if b is not None:
        b = check_array(b, "b", 1)
    check_same_dtype(x=x, w=w, b=b)
    return x, w, b


def _flags(need_dx: object, need_dw: object, need_db: object) -> tuple[bool, bool, bool]:
    return (check_flag(need_dx, "need_dx"), check_flag(need_dw, "need_dw"),
            check_flag(need_db, "need_db"))


def _check_dy(dy: object, x: np.ndarray, expected: tuple[int, ...],
              what: str = "the forward output's shape") -> np.ndarray:
    dy = check_array(dy, "dy", None)
    check_same_dtype(dy=dy, x=x)
    if dy.shape != tuple(expected):
        raise ValueError(
            f"Invalid shape for argument `dy`: expected {what} {tuple(expected)}, "
            f"received shape {dy.shape}."
        )
    return dy


def check_conv_nd(x: object, w: object, b: object, strides: object, padding: object,
                  dilation: object, groups: object
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry]:
    x, w, b = _arrays(x, w, b)
    geom = conv_nd_geometry(x.shape, w.shape, strides, padding, dilation, groups)
    _check_bias(b, geom.c_out)
    return x, w, b, geom


def check_conv_nd_backward(dy: object, x: object, w: object, strides: object,
                           padding: object, dilation: object, groups: object,
                           need_dx: object, need_dw: object, need_db: object
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvGeometry,
                                      tuple[bool, bool, bool]]:
    flags = _flags(need_dx, need_dw, need_db)
    x, w, _ = _arrays(x, w, None)
    geom = conv_nd_geometry(x.shape, w.shape, strides, padding, dilation, groups)
    dy = _check_dy(dy, x, geom.output_shape)
    return dy, x, w, geom, flags


# ----------------------------------------------------------------------------
# transposed convolution


def _output_padding(value: object, rank: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if _is_int(value):
        values = (int(value),) * rank
    elif (isinstance(value, (tuple, list)) and len(value) == rank
          and all(_is_int(v) for v in value)):
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(
            f"Invalid value for argument `output_padding`: expected None, an int or a "
            f"tuple of {rank} ints, received output_padding={value!r}."
        )
    if min(values) < 0:
        raise ValueError(
            f"Invalid value for argument `output_padding`: expected non-negative ints, "
            f"received output_padding={value!r}."
        )
    return values


def conv_transpose_padding(size: int, kernel: int, stride: int, dilation: int, padding: str,
                           output_padding: int | None) -> tuple[int, int]:
    """(output length, pad_before) of a transposed convolution along one axis.

    Keras 3's rule (its JAX backend's ``left_pad``/``right_pad``, and
    TensorFlow's wherever TensorFlow accepts the arguments): "valid" gives
    ``(size - 1) * stride + max(extent, stride)`` with extent the dilated
    kernel, or ``(size - 1) * stride + extent + output_padding``; "same"
    gives ``size * stride``, or ``(size - 1) * stride + extent % 2 +
    output_padding``. Output position q is position ``q + pad_before`` of
    the full scatter of the input (element o at ``o * stride + tap *
    dilation``): pad_before is the underlying convolution's padding."""
    extent = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(extent, stride) - extent if output_padding is None else output_padding
        left, right = extent - 1, extent - 1 + extra
    else:
        if output_padding is None:
            total = stride + extent - 2
        else:
            total = extent + extent % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, extent - 1)
        right = total - left
    length = (size - 1) * stride + 2 - extent + left + right
    return length, extent - 1 - left


@_memoized
def conv_transpose_nd_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                               strides: object, padding: object, output_padding: object,
                               dilation: object) -> ConvGeometry:
    """The convolution this transposed convolution is the transpose of: its
    input has the transposed output's shape, its output x's shape, and its
    kernel is ``w`` (``(*kernel_size, filters, C_in)`` as Keras stores it).
    Its padding after may be negative: input positions no output reads
    (a transposed output the input never reaches holds only the bias)."""
    rank = _rank(x_shape, "x")
    if len(w_shape) != rank + 2:
        raise ValueError(
            f"Invalid shape for argument `w`: expected {rank + 2} dimensions "
            f"(*kernel_size, filters, C_in) for an input with {rank} spatial axes, "
            f"received shape {tuple(w_shape)}."
        )
    _check_nonempty(tuple(x_shape), "x", tuple(range(1, rank + 2)), "spatial sizes and channels")
    _check_spatial_nd(x_shape, "x")
    _check_nonempty(tuple(w_shape), "w", tuple(range(rank + 2)), "every kernel dimension")
    if w_shape[-1] != x_shape[-1]:
        raise ValueError(
            f"Channel mismatch: `x` has {x_shape[-1]} channels (shape {tuple(x_shape)}) "
            f"but `w` expects {w_shape[-1]} input channels in its last axis (shape "
            f"{tuple(w_shape)})."
        )
    modes = padding_modes(padding, rank, causal=False)
    if not all(isinstance(m, str) for m in modes):
        raise ValueError(
            f"Invalid value for argument `padding`: a transposed convolution takes "
            f"'valid' or 'same', received padding={padding!r}."
        )
    steps = positive_tuple(strides, rank, "strides")
    dils = positive_tuple(dilation, rank, "dilation")
    extra = _output_padding(output_padding, rank)
    sizes, befores, afters = [], [], []
    for a, (size, k, s, d) in enumerate(zip(x_shape[1:-1], w_shape[:rank], steps, dils)):
        if extra is not None and extra[a] >= s:
            raise ValueError(
                f"Invalid value for argument `output_padding`: each value must be "
                f"smaller than the stride along its axis (strides={steps}), received "
                f"output_padding={output_padding!r}."
            )
        length, before = conv_transpose_padding(size, k, s, d, modes[0],
                                                None if extra is None else extra[a])
        sizes.append(length)
        befores.append(before)
        afters.append((size - 1) * s + (k - 1) * d + 1 - length - before)
    if min(sizes) < 1:
        raise ValueError(
            f"Invalid value for argument `output_padding`: the output would have spatial "
            f"size {tuple(sizes)}, received output_padding={output_padding!r}."
        )
    _check_elements((x_shape[0], *sizes, w_shape[-2]), "the output of shape", "strides",
                    f"strides={strides!r}")
    if max(sizes) > 2**31 - 1:
        raise ValueError(
            f"Invalid value for argument `strides`: the output's spatial sizes {tuple(sizes)} "
            f"must be at most 2**31 - 1, received strides={strides!r}."
        )
    d, h, w = _to3(tuple(sizes), 1)
    kd, kh, kw = _to3(tuple(w_shape[:rank]), 1)
    od, oh, ow = _to3(tuple(x_shape[1:-1]), 1)
    sd, sh, sw = _to3(steps, 1)
    dd, dh, dw = _to3(dils, 1)
    pf, pt, pl = _to3(tuple(befores), 0)
    pk, pb, pr = _to3(tuple(afters), 0)
    return ConvGeometry(x_shape[0], h, w, w_shape[-2], kh, kw, x_shape[-1], oh, ow, sh, sw,
                        dh, dw, pt, pb, pl, pr, d=d, kd=kd, od=od, stride_d=sd, dil_d=dd,
                        pad_front=pf, pad_back=pk, rank=rank, groups=1)


def check_conv_transpose_nd(x: object, w: object, b: object, strides: object,
                            padding: object, output_padding: object, dilation: object
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                       ConvGeometry]:
    x, w, b = _arrays(x, w, b)
    geom = conv_transpose_nd_geometry(x.shape, w.shape, strides, padding, output_padding,
                                      dilation)
    _check_bias(b, geom.c_in)
    return x, w, b, geom


def check_conv_transpose_nd_backward(dy: object, x: object, w: object, strides: object,
                                     padding: object, output_padding: object,
                                     dilation: object, need_dx: object, need_dw: object,
                                     need_db: object
                                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                ConvGeometry, tuple[bool, bool, bool]]:
    flags = _flags(need_dx, need_dw, need_db)
    x, w, _ = _arrays(x, w, None)
    geom = conv_transpose_nd_geometry(x.shape, w.shape, strides, padding, output_padding,
                                      dilation)
    dy = _check_dy(dy, x, geom.input_shape)
    return dy, x, w, geom, flags


# ----------------------------------------------------------------------------
# pooling


@_memoized
def pool_nd_geometry(x_shape: tuple[int, ...], pool_size: object, strides: object,
                     padding: object, x_name: str = "x") -> PoolGeometry:
    """The pooling of an input of shape ``x_shape`` (``x_name`` in errors)."""
    rank = _rank(x_shape, x_name)
    _check_nonempty(tuple(x_shape), x_name, tuple(range(1, rank + 2)),
                    "spatial sizes and channels")
    _check_spatial_nd(x_shape, x_name)
    window = positive_tuple(pool_size, rank, "pool_size")
    steps = window if strides is None else positive_tuple(strides, rank, "strides")
    modes = padding_modes(padding, rank, causal=False)
    what = "value for argument `pool_size`: the pool window's"
    outs, befores, afters = [], [], []
    for size, k, s, mode, axis in zip(x_shape[1:-1], window, steps, modes, axis_names(rank)):
        if not isinstance(mode, str) and max(mode) >= k:
            # A window made only of padding would have no element to pool.
            raise ValueError(
                f"Invalid value for argument `padding`: explicit pooling padding must "
                f"be smaller than the pool size {window}, received padding={padding!r}."
            )
        out, before, after = _axis_geometry(size, k, s, mode, what, axis, "padding", "input")
        outs.append(out)
        befores.append(before)
        afters.append(after)
    d, h, w = _to3(tuple(x_shape[1:-1]), 1)
    kd, kh, kw = _to3(window, 1)
    od, oh, ow = _to3(tuple(outs), 1)
    sd, sh, sw = _to3(steps, 1)
    pf, pt, pl = _to3(tuple(befores), 0)
    pk, pb, pr = _to3(tuple(afters), 0)
    if d * h * w > np.iinfo(np.int32).max:
        raise ValueError(
            f"Invalid shape for argument `{x_name}`: max pooling stores int32 argmax "
            f"indices, so the product of the spatial sizes must be < 2**31, received "
            f"shape {tuple(x_shape)}."
        )
    return PoolGeometry(x_shape[0], h, w, x_shape[-1], kh, kw, oh, ow, sh, sw, pt, pb, pl, pr,
                        d=d, kd=kd, od=od, stride_d=sd, pad_front=pf, pad_back=pk, rank=rank)


def check_pool_nd(x: object, pool_size: object, strides: object, padding: object
                  ) -> tuple[np.ndarray, PoolGeometry]:
    x = check_array(x, "x", None)
    return x, pool_nd_geometry(x.shape, pool_size, strides, padding)


def check_shape_nd(value: object, name: str) -> tuple[int, ...]:
    """(N, *spatial, C) as non-negative ints, 1 to 3 spatial axes of size >= 1."""
    if (not isinstance(value, (tuple, list)) or not 3 <= len(value) <= 5
            or not all(_is_int(v) for v in value)):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected (N, *spatial, C) ints with 1 to "
            f"3 spatial axes, received {name}={value!r}."
        )
    shape = tuple(int(v) for v in value)
    if shape[0] < 0 or min(shape[1:]) < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected N >= 0 and sizes >= 1, "
            f"received {name}={value!r}."
        )
    _check_elements(shape, "the gradient of shape", name, f"{name}={value!r}")
    return shape


def _pool_backward_geometry(dy: np.ndarray, x_shape: object, pool_size: object,
                            strides: object, padding: object) -> PoolGeometry:
    shape = check_shape_nd(x_shape, "x_shape")
    geom = pool_nd_geometry(shape, pool_size, strides, padding, "x_shape")
    if dy.shape != geom.output_shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: pooling x_shape={shape} with "
            f"pool_size={pool_size!r}, strides={strides!r}, padding={padding!r} gives "
            f"{geom.output_shape}, received shape {dy.shape}."
        )
    return geom


def check_max_pool_nd_backward(dy: object, argmax: object, x_shape: object,
                               pool_size: object, strides: object, padding: object
                               ) -> tuple[np.ndarray, np.ndarray, PoolGeometry]:
    dy = check_array(dy, "dy", None)
    geom = _pool_backward_geometry(dy, x_shape, pool_size, strides, padding)
    argmax = _check_argmax(argmax, dy, "max_pool_nd")
    volume = geom.d * geom.h * geom.w
    if argmax.size and (argmax.min() < 0 or argmax.max() >= volume):
        raise ValueError(
            "Invalid value for argument `argmax`: indices must lie in "
            f"[0, {volume}) (the product of x_shape's spatial sizes), received values in "
            f"[{argmax.min()}, {argmax.max()}]."
        )
    return dy, argmax, geom


def check_avg_pool_nd_backward(dy: object, x_shape: object, pool_size: object,
                               strides: object, padding: object
                               ) -> tuple[np.ndarray, PoolGeometry]:
    dy = check_array(dy, "dy", None)
    return dy, _pool_backward_geometry(dy, x_shape, pool_size, strides, padding)

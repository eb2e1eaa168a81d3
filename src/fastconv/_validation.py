"""Argument checking and output geometry shared by every backend.

``fastconv.ops`` and ``fastconv.reference`` both call these functions, so the
two backends accept exactly the same arguments and raise exactly the same
errors. Each ``check_*`` function validates once and returns clean values:
C-contiguous arrays of one float dtype and a frozen geometry record holding
every size and hyper-parameter the compiled kernels need.

Shapes: activations are NHWC ``(N, H, W, C)``, kernels HWIO
``(KH, KW, C_in, C_out)``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Strides, dilations, pool sizes and paddings are capped (as in TensorFlow,
# which stores them as int32) so that every index the kernels compute fits
# in 64 bits.
MAX_HYPER_PARAMETER = 2**31 - 1

# A padded height or width must fit in an int32 too (as TensorFlow's sizes
# do), and no array the ops allocate (an output, or a gradient of x_shape)
# may hold more than MAX_ELEMENTS numbers, 1 TiB of float64: beyond these a
# call is a mistake, to be named, not a failing allocation.
MAX_PADDED_SIZE = 2**31 - 1
MAX_ELEMENTS = 2**37

# argmax indices of max pooling are int32 flat positions ih * W + iw.
ARGMAX_DTYPE = np.dtype(np.int32)


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one 2-D convolution (NHWC input, HWIO kernel)."""

    n: int
    h: int
    w: int
    c_in: int
    kh: int
    kw: int
    c_out: int
    oh: int
    ow: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    # Depth (rank-3 convolutions); one plane of one tap otherwise. A rank-1
    # convolution runs along the width with h = kh = oh = 1.
    d: int = 1
    kd: int = 1
    od: int = 1
    stride_d: int = 1
    dil_d: int = 1
    pad_front: int = 0
    pad_back: int = 0
    rank: int = 2
    groups: int = 1

    def _spatial(self, d: int, h: int, w: int) -> tuple[int, ...]:
        return ((w,), (h, w), (d, h, w))[self.rank - 1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n, *self._spatial(self.d, self.h, self.w), self.c_in)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return (*self._spatial(self.kd, self.kh, self.kw), self.c_in // self.groups,
                self.c_out)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n, *self._spatial(self.od, self.oh, self.ow), self.c_out)


@dataclass(frozen=True)
class PoolGeometry:
    """Every size of one 2-D pooling (NHWC input, window per channel)."""

    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    oh: int
    ow: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    # Depth (rank-3 pooling); a rank-1 pooling runs along the width.
    d: int = 1
    kd: int = 1
    od: int = 1
    stride_d: int = 1
    pad_front: int = 0
    pad_back: int = 0
    rank: int = 2

    def _spatial(self, d: int, h: int, w: int) -> tuple[int, ...]:
        return ((w,), (h, w), (d, h, w))[self.rank - 1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n, *self._spatial(self.d, self.h, self.w), self.c)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.n, *self._spatial(self.od, self.oh, self.ow), self.c)


# ----------------------------------------------------------------------------
# scalars and pairs


def _plain(value: object) -> bool:
    """Whether ``value`` is built of exact ints, strs and None only: equal
    such values are the same argument (True == 1 and 1.0 == 1 are not)."""
    kind = type(value)
    if kind is int or kind is str or value is None:
        return True
    return kind is tuple and all(_plain(v) for v in value)


def _memoized(geometry: Callable) -> Callable:
    """``geometry`` with its results kept for plain arguments (see _plain):
    a model calls the ops with the same shapes and hyper-parameters at every
    step. Others, and arguments that raise, are checked every time."""
    cached = functools.lru_cache(maxsize=256)(geometry)

    @functools.wraps(geometry)
    def wrapper(*args: object, **kwargs: object) -> object:
        if all(map(_plain, args)) and all(map(_plain, kwargs.values())):
            return cached(*args, **kwargs)
        return geometry(*args, **kwargs)

    return wrapper


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_pair(value: object, name: str) -> tuple[int, int]:
    """Normalise an int or a pair of ints, each >= 1, to a pair."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(
            f"Invalid value for argument `{name}`: expected an int or a pair of "
            f"ints, received {name}={value!r}."
        )
    if min(pair) < 1 or max(pair) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected positive ints up to "
            f"2**31 - 1, received {name}={value!r}."
        )
    return pair


def _explicit_padding(padding: object, name: str = "padding") -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) from an int, a pair, or a pair of pairs."""
    if _is_int(padding):
        p = int(padding)
        pads = (p, p, p, p)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        a, b = padding
        if _is_int(a) and _is_int(b):
            pads = (int(a), int(a), int(b), int(b))
        elif (
            isinstance(a, (tuple, list))
            and isinstance(b, (tuple, list))
            and len(a) == 2
            and len(b) == 2
            and all(_is_int(v) for v in (*a, *b))
        ):
            pads = (int(a[0]), int(a[1]), int(b[0]), int(b[1]))
        else:
            return None
    else:
        return None
    if min(pads) < 0 or max(pads) > MAX_HYPER_PARAMETER:
        raise ValueError(
            f"Invalid value for argument `{name}`: explicit padding must be "
            f"non-negative ints up to 2**31 - 1, received {name}={padding!r}."
        )
    return pads


def _padding_mode(padding: object, name: str = "padding") -> str | tuple[int, int, int, int]:
    if isinstance(padding, str):
        mode = padding.lower()
        if mode in ("valid", "same"):
            return mode
        raise ValueError(
            f"Invalid value for argument `{name}`: expected 'valid', 'same', an "
            "int, (pad_h, pad_w) or ((top, bottom), (left, right)), received "
            f"{name}={padding!r}."
        )
    pads = _explicit_padding(padding, name)
    if pads is None:
        raise TypeError(
            f"Invalid value for argument `{name}`: expected 'valid', 'same', an "
            "int, (pad_h, pad_w) or ((top, bottom), (left, right)), received "
            f"{name}={padding!r}."
        )
    return pads


def _axis_geometry(
    size: int, window: int, stride: int, mode: str | tuple[int, int], what: str, axis: str,
    padding_name: str = "padding", input_name: str = "input",
) -> tuple[int, int, int]:
    """(output size, pad before, pad after) along one spatial axis.

    ``window`` is the effective (dilated) window extent. "same" follows
    TensorFlow: output ceil(size / stride), and when the total padding is odd
    the extra row/column goes after (bottom/right). ``what`` names the
    window in the error message, e.g. "argument `w`: the dilated kernel's";
    ``padding_name`` the padding argument and ``input_name`` what is padded.
    """
    if mode == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        return out, total // 2, total - total // 2
    before, after = (0, 0) if mode == "valid" else mode
    padded = size + before + after
    if padded > MAX_PADDED_SIZE:
        raise ValueError(
            f"Invalid value for argument `{padding_name}`: the padded {input_name} {axis} "
            f"({size} + {before} + {after} = {padded}) must be at most 2**31 - 1."
        )
    if padded < window:
        raise ValueError(
            f"Invalid {what} {axis} ({window}) is larger than the padded {input_name} "
            f"{axis} ({padded}); use a smaller window, more padding, or "
            f"{padding_name}='same'."
        )
    return (padded - window) // stride + 1, before, after


# ----------------------------------------------------------------------------
# arrays


def check_array(value: object, name: str, ndim: int | None) -> np.ndarray:
    """A C-contiguous float32/float64 array of ``ndim`` dimensions (any if None)."""
    if not isinstance(value, np.ndarray) or isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a numpy.ndarray (not a "
            f"masked array), received {type(value).__name__}."
        )
    if value.dtype.kind == "f" and value.dtype.itemsize in (4, 8):
        value = value.astype(value.dtype.newbyteorder("="), copy=False)
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected float32 or float64, "
            f"received {value.dtype}."
        )
    if ndim is not None and value.ndim != ndim:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected {ndim} dimensions, "
            f"received shape {value.shape}."
        )
    # C order and aligned elements: the compiled kernels assume both.
    return np.require(value, requirements=("C", "A"))


def check_same_dtype(**arrays: np.ndarray | None) -> np.dtype:
    given = {name: a.dtype for name, a in arrays.items() if a is not None}
    dtypes = set(given.values())
    if len(dtypes) > 1:
        listed = ", ".join(f"{name}={dt}" for name, dt in given.items())
        raise TypeError(f"Arguments must share one float dtype, received {listed}.")
    return dtypes.pop()


def _check_nonempty(shape: tuple[int, ...], name: str, axes: tuple[int, ...], what: str) -> None:
    for axis in axes:
        if shape[axis] < 1:
            raise ValueError(
                f"Invalid shape for argument `{name}`: {what} must be >= 1, "
                f"received shape {shape}."
            )


def _check_elements(shape: tuple[int, ...], what: str, name: str, received: str) -> None:
    if np.prod(shape, dtype=object) > MAX_ELEMENTS:
        raise ValueError(
            f"Invalid value for argument `{name}`: {what} {shape} would hold more than "
            f"2**37 elements (1 TiB of float64), received {received}."
        )


def _check_spatial(shape: tuple[int, ...], name: str) -> None:
    if max(shape[1:3]) > MAX_PADDED_SIZE:
        raise ValueError(
            f"Invalid shape for argument `{name}`: height and width must be at most "
            f"2**31 - 1, received shape {tuple(shape)}."
        )


def check_shape4(value: object, name: str) -> tuple[int, int, int, int]:
    """A 4-tuple of non-negative ints describing an NHWC shape."""
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 4
        or not all(_is_int(v) for v in value)
    ):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected (N, H, W, C) ints, "
            f"received {name}={value!r}."
        )
    shape = tuple(int(v) for v in value)
    if shape[0] < 0 or min(shape[1:]) < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected N >= 0 and H, W, C >= 1, "
            f"received {name}={value!r}."
        )
    _check_spatial(shape, name)
    _check_elements(shape, "the gradient of shape", name, f"{name}={value!r}")
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------
# convolution


@_memoized
def conv_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: object, padding: object,
    dilation: object,
) -> ConvGeometry:
    n, h, w, c_in = x_shape
    kh, kw, w_in, c_out = w_shape
    _check_nonempty(x_shape, "x", (1, 2, 3), "height, width and channels")
    _check_spatial(x_shape, "x")
    _check_nonempty(w_shape, "w", (0, 1, 2, 3), "every kernel dimension")
    if w_in != c_in:
        raise ValueError(
            f"Channel mismatch: `x` has {c_in} channels (shape {tuple(x_shape)}) "
            f"but `w` expects {w_in} input channels (shape {tuple(w_shape)})."
        )
    sh, sw = positive_pair(strides, "strides")
    dh, dw = positive_pair(dilation, "dilation")
    mode = _padding_mode(padding)
    mode_h = mode if isinstance(mode, str) else mode[:2]
    mode_w = mode if isinstance(mode, str) else mode[2:]
    what = "shape for argument `w`: the dilated kernel's"
    oh, pt, pb = _axis_geometry(h, (kh - 1) * dh + 1, sh, mode_h, what, "height")
    ow, pl, pr = _axis_geometry(w, (kw - 1) * dw + 1, sw, mode_w, what, "width")
    # Only explicit padding or a huge C_out can make the output outgrow x.
    explicit = not isinstance(mode, str) and max(mode) > 0
    _check_elements((n, oh, ow, c_out), "the output of shape", "padding" if explicit else "w",
                    f"padding={padding!r}" if explicit else f"shape {tuple(w_shape)} for "
                    f"x of shape {tuple(x_shape)}")
    return ConvGeometry(n, h, w, c_in, kh, kw, c_out, oh, ow, sh, sw, dh, dw, pt, pb, pl, pr)


FUSED_ACTIVATIONS = (None, "relu")


def check_activation(activation: object) -> str | None:
    """The activation fused into conv2d's output: None or "relu"."""
    if activation not in FUSED_ACTIVATIONS:
        raise ValueError(
            f"Invalid value for argument `activation`: expected one of "
            f"{FUSED_ACTIVATIONS}, received activation={activation!r}."
        )
    return activation


def check_conv2d(
    x: object, w: object, b: object, strides: object, padding: object, dilation: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry]:
    x = check_array(x, "x", 4)
    w = check_array(w, "w", 4)
    if b is not None:
        b = check_array(b, "b", 1)
    check_same_dtype(x=x, w=w, b=b)
    geom = conv_geometry(x.shape, w.shape, strides, padding, dilation)
    if b is not None and b.shape[0] != geom.c_out:
        raise ValueError(
            f"Invalid shape for argument `b`: expected ({geom.c_out},) to match the "
            f"kernel's output channels, received shape {b.shape}."
        )
    return x, w, b, geom


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected True or False, "
            f"received {name}={value!r}."
        )
    return bool(value)


def check_conv2d_backward(
    dy: object, x: object, w: object, strides: object, padding: object, dilation: object,
    need_dx: object, need_dw: object, need_db: object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvGeometry, tuple[bool, bool, bool]]:
    """Checked dy, x, w, the geometry and the (need_dx, need_dw, need_db) flags."""
    flags = (check_flag(need_dx, "need_dx"), check_flag(need_dw, "need_dw"),
             check_flag(need_db, "need_db"))
    dy = check_array(dy, "dy", 4)
    x = check_array(x, "x", 4)
    w = check_array(w, "w", 4)
    check_same_dtype(dy=dy, x=x, w=w)
    geom = conv_geometry(x.shape, w.shape, strides, padding, dilation)
    if dy.shape != geom.output_shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: expected the forward output's shape "
            f"{geom.output_shape}, received shape {dy.shape}."
        )
    return dy, x, w, geom, flags


# ----------------------------------------------------------------------------
# pooling


@_memoized
def pool_geometry(
    x_shape: tuple[int, ...], pool_size: object, strides: object, padding: object,
    names: tuple[str, str, str] = ("x", "strides", "padding"),
) -> PoolGeometry:
    """The pooling of an input of shape ``x_shape``; ``names`` are the
    arguments that errors name for the input, the strides and the padding."""
    x_name, strides_name, padding_name = names
    n, h, w, c = x_shape
    _check_nonempty(tuple(x_shape), x_name, (1, 2, 3), "height, width and channels")
    _check_spatial(x_shape, x_name)
    kh, kw = positive_pair(pool_size, "pool_size")
    sh, sw = positive_pair(pool_size if strides is None else strides, strides_name)
    mode = _padding_mode(padding, padding_name)
    if not isinstance(mode, str) and (max(mode[:2]) >= kh or max(mode[2:]) >= kw):
        # A window made only of padding would have no element to pool.
        raise ValueError(
            f"Invalid value for argument `{padding_name}`: explicit pooling padding must "
            f"be smaller than the pool size {(kh, kw)}, received {padding_name}={padding!r}."
        )
    mode_h = mode if isinstance(mode, str) else mode[:2]
    mode_w = mode if isinstance(mode, str) else mode[2:]
    what = "value for argument `pool_size`: the pool window's"
    # Pooling a convolution's output (conv2d_max_pool2d): say so.
    pooled = "input" if padding_name == "padding" else "convolution output"
    oh, pt, pb = _axis_geometry(h, kh, sh, mode_h, what, "height", padding_name, pooled)
    ow, pl, pr = _axis_geometry(w, kw, sw, mode_w, what, "width", padding_name, pooled)
    return PoolGeometry(n, h, w, c, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr)


def check_pool2d(
    x: object, pool_size: object, strides: object, padding: object
) -> tuple[np.ndarray, PoolGeometry]:
    x = check_array(x, "x", 4)
    return x, pool_geometry(x.shape, pool_size, strides, padding)


def _check_argmax_range(geom: PoolGeometry, pooled: str, received: str) -> None:
    """argmax holds int32 flat positions in the pooled plane (``pooled``)."""
    if geom.h * geom.w > np.iinfo(ARGMAX_DTYPE).max:
        raise ValueError(
            f"Invalid shape for argument `x`: max pooling stores int32 argmax "
            f"indices, so {pooled} must be < 2**31, received {received}."
        )


def check_max_pool2d(
    x: object, pool_size: object, strides: object, padding: object
) -> tuple[np.ndarray, PoolGeometry]:
    x, geom = check_pool2d(x, pool_size, strides, padding)
    _check_argmax_range(geom, "H * W", f"shape {x.shape}")
    return x, geom


def check_conv2d_max_pool2d(
    x: object, w: object, b: object, strides: object, padding: object, dilation: object,
    pool_size: object, pool_strides: object, pool_padding: object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry, PoolGeometry]:
    """check_conv2d, then the max pooling of the convolution's output."""
    x, w, b, conv = check_conv2d(x, w, b, strides, padding, dilation)
    pool = pool_geometry(conv.output_shape, pool_size, pool_strides, pool_padding,
                         names=("x", "pool_strides", "pool_padding"))
    _check_argmax_range(pool, "the convolution's output height * width",
                        f"shape {x.shape}, whose output is {conv.output_shape}")
    return x, w, b, conv, pool


def _check_argmax(argmax: object, dy: np.ndarray, forward: str) -> np.ndarray:
    """argmax: the int32 array of dy's shape that ``forward`` returned."""
    if not isinstance(argmax, np.ndarray) or argmax.dtype != ARGMAX_DTYPE:
        got = argmax.dtype if isinstance(argmax, np.ndarray) else type(argmax).__name__
        raise TypeError(
            "Invalid value for argument `argmax`: expected the int32 array returned "
            f"by {forward}, received {got}."
        )
    if argmax.shape != dy.shape:
        raise ValueError(
            f"Invalid shape for argument `argmax`: expected dy's shape {dy.shape}, "
            f"received shape {argmax.shape}."
        )
    return np.require(argmax, requirements=("C", "A"))


def _check_argmax_values(argmax: np.ndarray, plane: int, where: str) -> None:
    """Every index is a flat position in the pooled plane of ``plane`` elements."""
    # One pass: a negative int32 read as unsigned is at least 2**31, so it is
    # out of range for any plane (an int32 index never reaches past 2**31).
    if argmax.size and argmax.view(np.uint32).max() >= min(plane, 2**31):
        raise ValueError(
            "Invalid value for argument `argmax`: indices must lie in "
            f"[0, {plane}) {where}, received values in [{argmax.min()}, {argmax.max()}]."
        )


def check_max_pool2d_backward(
    dy: object, argmax: object, x_shape: object, pool_size: object = None,
    strides: object = None, padding: object = "valid",
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], PoolGeometry | None]:
    """Checked dy, argmax, x_shape and, when ``pool_size`` is given, the
    pooling's geometry (its output must have dy's shape)."""
    dy = check_array(dy, "dy", 4)
    shape = check_shape4(x_shape, "x_shape")
    argmax = _check_argmax(argmax, dy, "max_pool2d")
    if dy.shape[0] != shape[0] or dy.shape[3] != shape[3]:
        raise ValueError(
            f"Invalid value for argument `x_shape`: batch and channels must match "
            f"dy's shape {dy.shape}, received x_shape={tuple(x_shape)}."
        )
    _check_argmax_values(argmax, shape[1] * shape[2], f"(H * W for x_shape={shape})")
    if pool_size is None:
        if strides is not None or not (isinstance(padding, str) and padding == "valid"):
            raise ValueError(
                "Invalid value for argument `pool_size`: `strides` and `padding` "
                "describe the pooling only with its pool_size, received pool_size=None."
            )
        return dy, argmax, shape, None
    geom = pool_geometry(shape, pool_size, strides, padding,
                         names=("x_shape", "strides", "padding"))
    if geom.output_shape != dy.shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: pooling x_shape={shape} with "
            f"pool_size={pool_size!r}, strides={strides!r}, padding={padding!r} gives "
            f"{geom.output_shape}, received shape {dy.shape}."
        )
    return dy, argmax, shape, geom


def check_conv2d_max_pool2d_backward(
    dy: object, argmax: object, x: object, w: object, strides: object, padding: object,
    dilation: object, activation: object, pool_size: object, pool_strides: object,
    pool_padding: object, y: object, need_dx: object, need_dw: object, need_db: object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry,
           PoolGeometry, tuple[bool, bool, bool]]:
    """Checked dy, argmax, x, w, the ReLU's pooled output (None without the
    ReLU), the geometries and the (need_dx, need_dw, need_db) flags."""
    flags = (check_flag(need_dx, "need_dx"), check_flag(need_dw, "need_dw"),
             check_flag(need_db, "need_db"))
    relu = check_activation(activation) == "relu"
    dy = check_array(dy, "dy", 4)
    x, w, _, geom, pool = check_conv2d_max_pool2d(x, w, None, strides, padding, dilation,
                                                  pool_size, pool_strides, pool_padding)
    check_same_dtype(dy=dy, x=x, w=w)
    if dy.shape != pool.output_shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: expected the pooled output's shape "
            f"{pool.output_shape}, received shape {dy.shape}."
        )
    argmax = _check_argmax(argmax, dy, "conv2d_max_pool2d")
    _check_argmax_values(argmax, geom.oh * geom.ow,
                         f"(the convolution's output OH * OW = {geom.oh} * {geom.ow})")
    if not relu:
        if y is not None:
            raise ValueError(
                "Invalid value for argument `y`: the pooled output is read only with "
                "activation='relu' (its gradient's mask); received an array with "
                "activation=None."
            )
        return dy, argmax, x, w, None, geom, pool, flags
    if y is None:
        raise ValueError(
            "Invalid value for argument `y`: activation='relu' needs the pooled "
            "output returned by conv2d_max_pool2d, received None."
        )
    y = check_array(y, "y", 4)
    check_same_dtype(dy=dy, y=y)
    if y.shape != dy.shape:
        raise ValueError(
            f"Invalid shape for argument `y`: expected dy's shape {dy.shape}, "
            f"received shape {y.shape}."
        )
    return dy, argmax, x, w, y, geom, pool, flags


def check_avg_pool2d_backward(
    dy: object, x_shape: object, pool_size: object, strides: object, padding: object
) -> tuple[np.ndarray, PoolGeometry]:
    dy = check_array(dy, "dy", 4)
    shape = check_shape4(x_shape, "x_shape")
    geom = pool_geometry(shape, pool_size, strides, padding)
    if dy.shape != geom.output_shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: expected the forward output's shape "
            f"{geom.output_shape}, received shape {dy.shape}."
        )
    return dy, geom


def check_relu_backward(dy: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    dy = check_array(dy, "dy", None)
    y = check_array(y, "y", None)
    check_same_dtype(dy=dy, y=y)
    if dy.shape != y.shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: expected the shape of `y` {y.shape}, "
            f"received shape {dy.shape}."
        )
    return dy, y

"""Invalid arguments: a clean ValueError/TypeError naming the argument, in both backends."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastconv import ops, reference

BACKENDS = pytest.mark.parametrize("backend", [ops, reference], ids=["ops", "reference"])

X = np.zeros((2, 5, 5, 3))
W = np.zeros((3, 3, 3, 4))
POOLED = np.zeros((2, 2, 2, 3))  # max/avg pooling of X with pool_size=2
ARGMAX = np.zeros(POOLED.shape, np.int32)

# Valid keyword arguments of every op; each case below breaks one or two.
VALID = {
    "conv2d": dict(x=X, w=W, b=np.zeros(4)),
    "conv2d_backward": dict(dy=np.zeros((2, 3, 3, 4)), x=X, w=W),
    "conv2d_max_pool2d": dict(x=X, w=W, b=np.zeros(4), pool_size=2),
    "conv2d_max_pool2d_backward": dict(dy=np.ones((2, 1, 1, 4)), argmax=np.zeros((2, 1, 1, 4),
                                       np.int32), x=X, w=W, activation="relu",
                                       y=np.ones((2, 1, 1, 4))),
    "max_pool2d": dict(x=X, pool_size=2),
    "max_pool2d_backward": dict(dy=POOLED, argmax=ARGMAX, x_shape=X.shape),
    "avg_pool2d": dict(x=X, pool_size=2),
    "avg_pool2d_backward": dict(dy=POOLED, x_shape=X.shape, pool_size=2),
    "global_avg_pool": {"x": X},
    "global_avg_pool_backward": {"dy": np.zeros((2, 3)), "x_shape": X.shape},
    "global_max_pool": {"x": X},
    "global_max_pool_backward": {"dy": np.zeros((2, 3)), "argmax": np.zeros((2, 3), np.int32),
                                 "x_shape": X.shape},
    "upsample": {"x": X, "size": 2, "interpolation": "bilinear"},
    "upsample_backward": {"dy": np.zeros((2, 10, 10, 3)), "x_shape": X.shape, "size": 2,
                          "interpolation": "bilinear"},
    "zero_pad": {"x": X, "padding": ((1, 0), (0, 2))},
    "zero_pad_backward": {"dy": X, "padding": 1},
    "crop": {"x": X, "cropping": (1, 2)},
    "crop_backward": {"dy": np.zeros((2, 3, 1, 3)), "x_shape": X.shape, "cropping": (1, 2)},
}

CASES = [
    # id, op, broken arguments, error, message pattern
    ("x-ndim", "conv2d", dict(x=np.zeros((5, 5, 3))), ValueError, "`x`.*4 dimensions"),
    ("w-ndim", "conv2d", dict(w=np.zeros((1, 3, 3, 3, 4))), ValueError, "`w`.*4 dimensions"),
    ("x-list", "conv2d", dict(x=X.tolist()), TypeError, "`x`.*numpy.ndarray"),
    ("x-int", "conv2d", dict(x=X.astype(np.int32)), TypeError, "`x`.*int32"),
    ("x-complex", "conv2d", dict(x=X.astype(np.complex128)), TypeError, "`x`.*complex128"),
    ("w-float16", "conv2d", dict(w=W.astype(np.float16)), TypeError, "`w`.*float16"),
    ("x-bool", "max_pool2d", dict(x=X.astype(bool)), TypeError, "`x`.*bool"),
    ("mixed-x-w", "conv2d", dict(x=X.astype(np.float32)), TypeError, "x=float32, w=float64"),
    ("mixed-b", "conv2d", dict(b=np.zeros(4, np.float32)), TypeError, "b=float32"),
    ("mixed-dy", "conv2d_backward", dict(dy=np.zeros((2, 3, 3, 4), np.float32)), TypeError,
     "dy=float32"),
    ("channels", "conv2d", dict(w=np.zeros((3, 3, 2, 4))), ValueError, "`w` expects 2 input"),
    ("b-length", "conv2d", dict(b=np.zeros(5)), ValueError, r"`b`.*\(4,\)"),
    ("b-ndim", "conv2d", dict(b=np.zeros((4, 1))), ValueError, "`b`.*1 dimensions"),
    ("x-empty-h", "conv2d", dict(x=np.zeros((2, 0, 5, 3))), ValueError, "`x`.*height"),
    ("w-empty", "conv2d", dict(w=np.zeros((0, 3, 3, 4))), ValueError, "`w`.*kernel dimension"),
    ("kernel-too-big", "conv2d", dict(w=np.zeros((6, 3, 3, 4))), ValueError,
     "`w`.*kernel's height.*padded input.*padding"),
    ("dilated-too-big", "conv2d", dict(dilation=(1, 3), padding=0), ValueError,
     "`w`.*kernel's width.*padded input.*padding"),
    ("strides-zero", "conv2d", dict(strides=0), ValueError, "`strides`.*positive"),
    ("strides-negative", "conv2d_backward", dict(strides=(1, -1)), ValueError, "`strides`"),
    ("strides-bool", "conv2d", dict(strides=True), TypeError, "`strides`"),
    ("strides-float", "conv2d", dict(strides=1.0), TypeError, "`strides`"),
    ("strides-triple", "conv2d", dict(strides=(1, 1, 1)), TypeError, "`strides`"),
    ("strides-none", "conv2d", dict(strides=None), TypeError, "`strides`"),
    ("strides-huge", "max_pool2d", dict(strides=2**31), ValueError, r"`strides`.*2\*\*31"),
    ("padding-huge", "conv2d", dict(padding=(0, 2**31)), ValueError, r"`padding`.*2\*\*31"),
    ("dilation-zero", "conv2d", dict(dilation=0), ValueError, "`dilation`.*positive"),
    ("dilation-string", "conv2d_backward", dict(dilation="2"), TypeError, "`dilation`"),
    ("padding-unknown", "conv2d", dict(padding="full"), ValueError, "`padding`.*'same'"),
    ("padding-negative", "conv2d", dict(padding=(1, -1)), ValueError, "`padding`.*non-negative"),
    ("padding-float", "conv2d", dict(padding=1.5), TypeError, "`padding`"),
    ("padding-bool", "avg_pool2d", dict(padding=True), TypeError, "`padding`"),
    ("padding-ragged", "conv2d", dict(padding=((1,), (1, 1))), TypeError, "`padding`"),
    ("padding-none", "max_pool2d", dict(padding=None), TypeError, "`padding`"),
    ("pool-zero", "max_pool2d", dict(pool_size=0), ValueError, "`pool_size`.*positive"),
    ("pool-pair-zero", "avg_pool2d", dict(pool_size=(3, 0)), ValueError, "`pool_size`"),
    ("pool-negative", "avg_pool2d_backward", dict(pool_size=-2), ValueError, "`pool_size`"),
    ("pool-float", "max_pool2d", dict(pool_size=2.0), TypeError, "`pool_size`"),
    ("pool-none", "avg_pool2d", dict(pool_size=None), TypeError, "`pool_size`"),
    ("pool-strides-zero", "max_pool2d", dict(strides=0), ValueError, "`strides`"),
    ("pool-strides-bool", "avg_pool2d", dict(strides=(True, 1)), TypeError, "`strides`"),
    ("pool-padding-too-big", "max_pool2d", dict(padding=(0, 2)), ValueError,
     "`padding`.*smaller than the pool size"),
    ("pool-too-big", "avg_pool2d", dict(pool_size=6), ValueError,
     "`pool_size`.*pool window's height.*padded input"),
    ("pool-x-ndim", "avg_pool2d", dict(x=np.zeros((2, 5, 5))), ValueError, "`x`"),
    ("argmax-int64", "max_pool2d_backward", dict(argmax=ARGMAX.astype(np.int64)), TypeError,
     "`argmax`.*int32"),
    ("argmax-float", "max_pool2d_backward", dict(argmax=POOLED), TypeError, "`argmax`"),
    ("argmax-list", "max_pool2d_backward", dict(argmax=ARGMAX.tolist()), TypeError, "`argmax`"),
    ("argmax-shape", "max_pool2d_backward", dict(argmax=np.zeros((2, 2, 2, 4), np.int32)),
     ValueError, "`argmax`"),
    ("argmax-too-large", "max_pool2d_backward", dict(argmax=ARGMAX + 25), ValueError,
     r"`argmax`.*\[0, 25\)"),
    ("argmax-negative", "max_pool2d_backward", dict(argmax=ARGMAX - 1), ValueError, "`argmax`"),
    ("dy-shape-conv", "conv2d_backward", dict(dy=np.zeros((2, 3, 3, 5))), ValueError,
     r"`dy`.*\(2, 3, 3, 4\)"),
    ("dy-shape-avg", "avg_pool2d_backward", dict(dy=np.zeros((2, 3, 2, 3))), ValueError,
     r"`dy`.*\(2, 2, 2, 3\)"),
    ("dy-ndim", "max_pool2d_backward", dict(dy=np.zeros((2, 2, 2))), ValueError, "`dy`"),
    ("dy-int", "avg_pool2d_backward", dict(dy=POOLED.astype(np.int64)), TypeError, "`dy`"),
    ("x_shape-short", "max_pool2d_backward", dict(x_shape=(2, 5, 5)), TypeError, "`x_shape`"),
    ("x_shape-float", "avg_pool2d_backward", dict(x_shape=(2, 5.0, 5, 3)), TypeError,
     "`x_shape`"),
    ("x_shape-string", "avg_pool2d_backward", dict(x_shape="2x5x5x3"), TypeError, "`x_shape`"),
    ("x_shape-zero", "avg_pool2d_backward", dict(x_shape=(2, 0, 5, 3)), ValueError, "`x_shape`"),
    ("x_shape-negative-batch", "max_pool2d_backward", dict(x_shape=(-1, 5, 5, 3)), ValueError,
     "`x_shape`"),
    ("x_shape-batch", "max_pool2d_backward", dict(x_shape=(3, 5, 5, 3)), ValueError,
     "`x_shape`"),
    ("x_shape-channels", "max_pool2d_backward", dict(x_shape=(2, 5, 5, 4)), ValueError,
     "`x_shape`"),
    ("padding-huge", "conv2d", dict(padding=2**31 - 1), ValueError,
     r"`padding`: the padded input height \(5 \+ 2147483647 \+ 2147483647"),
    ("padding-output-too-big", "conv2d", dict(padding=((2**14, 2**14), (2**29, 2**29))),
     ValueError, r"`padding`: the output of shape \(2, 32771, 1073741827, 4\).*2\*\*37"),
    ("padding-huge-fused", "conv2d_max_pool2d", dict(padding=(2**31 - 6, 0)), ValueError,
     "`padding`: the padded input height"),
    ("padding-huge-backward", "conv2d_backward", dict(padding=(2**31 - 1, 0)), ValueError,
     "`padding`: the padded input height"),
    ("w-output-too-big", "conv2d", dict(x=np.zeros((1, 2**10, 2**10, 1)),
                                        w=np.zeros((1, 1, 1, 2**18)), b=None), ValueError,
     r"`w`: the output of shape \(1, 1024, 1024, 262144\)"),
    ("x-height-huge", "max_pool2d", dict(x=np.zeros((0, 2**31, 1, 3))), ValueError,
     "`x`: height and width must be at most 2\\*\\*31 - 1"),
    ("x_shape-huge", "max_pool2d_backward", dict(x_shape=(2, 2**40, 5, 3)), ValueError,
     "`x_shape`: height and width"),
    ("x_shape-too-many-elements", "avg_pool2d_backward", dict(x_shape=(2**20, 2**10, 2**10, 3)),
     ValueError, r"`x_shape`: the gradient of shape \(1048576, 1024, 1024, 3\).*2\*\*37"),
    ("x-masked", "conv2d", dict(x=np.ma.masked_array(X)), TypeError, "`x`.*masked"),
    ("need_dx-int", "conv2d_backward", dict(need_dx=1), TypeError, "`need_dx`.*True or False"),
    ("need_dw-none", "conv2d_backward", dict(need_dw=None), TypeError, "`need_dw`"),
    ("need_db-string", "conv2d_backward", dict(need_db="no"), TypeError, "`need_db`"),
    # resampling: global pooling, upsampling, zero padding, cropping
    ("global-x-ndim2", "global_avg_pool", {"x": np.zeros((2, 3))}, ValueError,
     "`x`.*1 to 3 spatial axes"),
    ("global-x-ndim6", "global_max_pool", {"x": np.zeros((1, 2, 2, 2, 2, 3))}, ValueError,
     "`x`.*3 to 5 dimensions"),
    ("global-x-int", "global_avg_pool", {"x": X.astype(np.int64)}, TypeError, "`x`.*int64"),
    ("global-x-list", "global_max_pool", {"x": X.tolist()}, TypeError, "`x`.*numpy.ndarray"),
    ("global-x-empty", "global_avg_pool", {"x": np.zeros((2, 0, 3))}, ValueError,
     "`x`.*spatial sizes and channels must be >= 1"),
    ("global-dy-ndim", "global_avg_pool_backward", {"dy": np.zeros((2, 1, 1, 3))}, ValueError,
     "`dy`.*2 dimensions"),
    ("global-x_shape-channels", "global_avg_pool_backward", {"x_shape": (2, 5, 5, 4)},
     ValueError, "`x_shape`.*batch and channels"),
    ("global-x_shape-short", "global_max_pool_backward", {"x_shape": (2, 3)}, TypeError,
     "`x_shape`.*3 to 5 ints"),
    ("global-x_shape-huge", "global_avg_pool_backward", {"x_shape": (2, 2**20, 2**20, 3)},
     ValueError, r"`x_shape`: the result of shape .*2\*\*37"),
    ("global-argmax-range", "global_max_pool_backward",
     {"argmax": np.full((2, 3), 25, np.int32)}, ValueError, r"`argmax`.*\[0, 25\)"),
    ("global-argmax-int64", "global_max_pool_backward", {"argmax": np.zeros((2, 3))},
     TypeError, "`argmax`.*int32"),
    ("size-zero", "upsample", {"size": 0}, ValueError, "`size`.*positive"),
    ("size-float", "upsample", {"size": 2.0}, TypeError, "`size`"),
    ("size-bool", "upsample_backward", {"size": (2, True)}, TypeError, "`size`"),
    ("size-rank", "upsample", {"size": (2, 2, 2)}, TypeError, "`size`.*tuple of 2 ints"),
    ("size-huge", "upsample", {"size": 2**31}, ValueError, r"`size`.*2\*\*31 - 1"),
    ("size-upsampled-too-big", "upsample", {"size": 2**30}, ValueError,
     "`size`: the upsampled spatial sizes"),
    ("size-too-many-elements", "upsample", {"x": np.zeros((1, 2**10, 2**10, 1)), "size": 2**9},
     ValueError, r"`size`: the result of shape \(1, 524288, 524288, 1\)"),
    ("interpolation-keras-only", "upsample", {"interpolation": "bicubic"}, ValueError,
     (r"`interpolation`: expected 'nearest' or 'bilinear' \(Keras.*\), received "
      r"interpolation='bicubic'")),
    ("interpolation-unknown", "upsample_backward", {"interpolation": "cubic"}, ValueError,
     "`interpolation`.*received interpolation='cubic'"),
    ("interpolation-none", "upsample", {"interpolation": None}, ValueError,
     "`interpolation`"),
    ("bilinear-rank-3", "upsample", {"x": np.zeros((2, 3, 4, 5, 3))}, ValueError,
     "`interpolation`: 'bilinear' resizes images"),
    ("upsample-dy-shape", "upsample_backward", {"dy": np.zeros((2, 10, 9, 3))}, ValueError,
     r"`dy`.*gives \(2, 10, 10, 3\)"),
    ("upsample-x_shape-rank", "upsample_backward", {"x_shape": (2, 5, 3)}, TypeError,
     "`x_shape`: expected 4 ints"),
    ("pad-negative", "zero_pad", {"padding": (1, -1)}, ValueError, "`padding`.*non-negative"),
    ("pad-rank", "zero_pad", {"padding": (1, 2, 3)}, TypeError,
     "`padding`.*tuple of 2 \\(before, after\\) pairs"),
    ("pad-string", "zero_pad", {"padding": "same"}, TypeError, "`padding`"),
    ("pad-float", "zero_pad_backward", {"padding": 1.0}, TypeError, "`padding`"),
    ("pad-ragged", "zero_pad", {"padding": ((1, 2, 3), 0)}, TypeError, "`padding`"),
    ("pad-leaves-nothing", "zero_pad_backward", {"padding": ((2, 3), 0)}, ValueError,
     "`padding`.*removes every element of spatial axis 0"),
    ("pad-too-big", "zero_pad", {"padding": ((2**31 - 3, 0), 0)}, ValueError,
     "`padding`: the padded spatial sizes"),
    ("pad-huge", "zero_pad", {"padding": 2**31}, ValueError, r"`padding`.*2\*\*31 - 1"),
    ("crop-everything", "crop", {"cropping": ((2, 3), 0)}, ValueError,
     "`cropping`: 2 \\+ 3 removes every element of spatial axis 0"),
    ("crop-everything-int", "crop", {"cropping": 3}, ValueError, "`cropping`"),
    ("crop-bool", "crop", {"cropping": (True, 1)}, TypeError, "`cropping`"),
    ("crop-x-ndim", "crop", {"x": np.zeros((5, 3))}, ValueError, "`x`"),
    ("crop-dy-shape", "crop_backward", {"dy": np.zeros((2, 3, 2, 3))}, ValueError,
     r"`dy`.*gives \(2, 3, 1, 3\)"),
    ("crop-backward-everything", "crop_backward", {"cropping": (3, 0)}, ValueError,
     "`cropping`.*removes every element"),
    ("crop-x_shape-float", "crop_backward", {"x_shape": (2, 5.0, 5, 3)}, TypeError,
     "`x_shape`"),
]


@BACKENDS
@pytest.mark.parametrize(
    "op, broken, error, match", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_rejected_with_the_argument_named(backend, op, broken, error, match):
    with pytest.raises(error, match=match):
        getattr(backend, op)(**{**VALID[op], **broken})


@BACKENDS
@pytest.mark.parametrize("op", sorted(VALID))
def test_valid_arguments_of_these_cases_are_accepted(backend, op):
    # Keeps the cases above honest: each fails only because of what it breaks.
    getattr(backend, op)(**VALID[op])


@BACKENDS
def test_non_native_byte_order_is_converted(backend):
    # Big-endian input (e.g. read from a file) is a float array like any other.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(X.shape), rng.standard_normal(W.shape)
    swapped = x.astype(x.dtype.newbyteorder("S"))
    np.testing.assert_array_equal(backend.conv2d(swapped, w), backend.conv2d(x, w))
    np.testing.assert_array_equal(backend.max_pool2d(swapped, 2)[0], backend.max_pool2d(x, 2)[0])


# ----------------------------------------------------------------------------
# random arguments: arrays or a clean error, never anything else

DTYPES = [np.float32, np.float64]
ODD_DTYPES = [np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128]
# Around the 2**31 - 1 cap and big enough to overflow 64-bit integers in
# compiled code; accepted ones shrink the output (strides) or make the window
# reject the input (dilation, pool_size without "same"), so a valid call stays
# small. Explicit padding is kept small: a huge one would ask, legitimately,
# for a huge output.
HUGE = [2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63, 2**64 + 3, -(2**31), -(2**63)]

KIND = {
    "x": "array", "w": "array", "b": "array", "dy": "array", "argmax": "argmax",
    "x_shape": "shape", "strides": "pair", "dilation": "pair", "pool_size": "pair",
    "padding": "padding", "need_dx": "flag", "need_dw": "flag", "need_db": "flag",
    "pool_strides": "pair", "pool_padding": "padding", "activation": "activation",
    "y": "array", "size": "pair", "interpolation": "interpolation", "cropping": "padding",
}

scalars = st.one_of(
    st.none(), st.booleans(), st.floats(), st.text(max_size=3), st.integers(-3, 6),
    st.sampled_from(HUGE), st.integers(-3, 6).map(np.int64),
)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)
JUNK = {
    "array": st.one_of(
        hnp.arrays(st.sampled_from(DTYPES + ODD_DTYPES), shapes),
        hnp.arrays(st.sampled_from(DTYPES), st.lists(st.integers(0, 4), min_size=4,
                                                     max_size=4).map(tuple)),
        scalars, st.lists(st.floats(), max_size=3),
    ),
    "argmax": st.one_of(
        hnp.arrays(np.int32, shapes, elements=st.integers(-3, 60)),
        hnp.arrays(st.sampled_from([np.int64, np.float32, np.uint32]), shapes),
        scalars,
    ),
    "shape": st.one_of(
        st.lists(st.one_of(st.integers(-2, 7), scalars), max_size=5).map(tuple),
        st.lists(st.integers(-2, 7), max_size=5), scalars,
    ),
    "pair": st.one_of(
        scalars, st.sampled_from(HUGE), st.tuples(st.integers(1, 3), st.sampled_from(HUGE)),
        st.lists(scalars, max_size=3).map(tuple), st.lists(st.integers(-2, 4), max_size=3),
    ),
    "padding": st.one_of(
        st.sampled_from(["valid", "same", "VALID", "Same", "full", "causal", ""]),
        st.integers(-2, 5), st.none(), st.booleans(), st.floats(), st.text(max_size=4),
        st.lists(st.one_of(st.integers(-2, 5), st.none(), st.text(max_size=2)),
                 max_size=3).map(tuple),
        st.lists(st.lists(st.integers(-2, 5), max_size=3).map(tuple), max_size=3).map(tuple),
    ),
    "flag": st.sampled_from([True, False, 0, 1, None, np.True_, np.False_]),
    "activation": st.one_of(st.sampled_from(["relu", "RELU", "tanh", "linear", ""]), scalars),
    "interpolation": st.one_of(
        st.sampled_from(["nearest", "bilinear", "BILINEAR", "bicubic", "area", ""]), scalars),
}

OPS = sorted(VALID)


@st.composite
def plausible_arguments(draw: st.DrawFn, op: str) -> dict[str, object]:
    """Mostly valid keyword arguments for ``op``, from small random shapes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dtype = draw(st.sampled_from(DTYPES))
    if op in RESAMPLING:
        return _resampling_arguments(draw, op, rng, dtype)
    n, h, w, c = (draw(st.integers(lo, hi)) for lo, hi in ((0, 2), (1, 6), (1, 6), (1, 4)))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    strides = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)))
    if op.startswith("conv2d"):
        kernel = rng.standard_normal(
            (draw(st.integers(1, 3)), draw(st.integers(1, 3)), c, draw(st.integers(1, 4)))
        ).astype(dtype)
        hyper = dict(strides=strides, padding=padding, dilation=draw(st.integers(1, 2)))
        if op == "conv2d":
            return dict(x=x, w=kernel, b=rng.standard_normal(kernel.shape[3]).astype(dtype),
                        **hyper)
        if op == "conv2d_max_pool2d":
            return dict(x=x, w=kernel, b=rng.standard_normal(kernel.shape[3]).astype(dtype),
                        **hyper, activation=draw(st.sampled_from([None, "relu"])),
                        pool_size=draw(st.integers(1, 3)),
                        pool_strides=draw(st.one_of(st.none(), st.integers(1, 3))),
                        pool_padding=draw(st.sampled_from(["valid", "same", 0, 1])))
        if op == "conv2d_max_pool2d_backward":
            activation = draw(st.sampled_from([None, "relu"]))
            pool = dict(pool_size=draw(st.integers(1, 3)),
                        pool_strides=draw(st.one_of(st.none(), st.integers(1, 3))),
                        pool_padding=draw(st.sampled_from(["valid", "same", 0, 1])))
            try:
                y, argmax = reference.conv2d_max_pool2d(x, kernel, None, **hyper,
                                                        activation=activation, **pool)
            except (ValueError, TypeError):
                y, argmax = np.zeros((n, 1, 1, kernel.shape[3]), dtype), np.zeros(
                    (n, 1, 1, kernel.shape[3]), np.int32)
            flags = {name: draw(st.booleans()) for name in ("need_dx", "need_dw", "need_db")}
            return dict(dy=rng.standard_normal(y.shape).astype(dtype), argmax=argmax, x=x,
                        w=kernel, **hyper, activation=activation, **pool,
                        y=y if activation else None, **flags)
        flags = {name: draw(st.booleans()) for name in ("need_dx", "need_dw", "need_db")}
        dy = _like_output(rng, reference.conv2d, dict(x=x, w=kernel, **hyper), dtype)
        return dict(dy=dy, x=x, w=kernel, **hyper, **flags)
    pool_strides = draw(st.one_of(st.none(), st.just(strides)))
    hyper = dict(pool_size=draw(st.integers(1, 3)), strides=pool_strides, padding=padding)
    if op in ("max_pool2d", "avg_pool2d"):
        return dict(x=x, **hyper)
    if op == "avg_pool2d_backward":
        dy = _like_output(rng, reference.avg_pool2d, dict(x=x, **hyper), dtype)
        return dict(dy=dy, x_shape=x.shape, **hyper)
    try:
        _, argmax = reference.max_pool2d(x, **hyper)
    except (ValueError, TypeError):
        argmax = np.zeros((n, 1, 1, c), np.int32)
    geometry = hyper if draw(st.booleans()) else {}  # the windows, when the caller knows them
    return dict(dy=rng.standard_normal(argmax.shape).astype(dtype), argmax=argmax,
                x_shape=x.shape, **geometry)


RESAMPLING = {"global_avg_pool", "global_avg_pool_backward", "global_max_pool",
              "global_max_pool_backward", "upsample", "upsample_backward", "zero_pad",
              "zero_pad_backward", "crop", "crop_backward"}


def _resampling_arguments(draw: st.DrawFn, op: str, rng: np.random.Generator,
                          dtype: type) -> dict[str, object]:
    """Mostly valid arguments of a resampling op, on inputs of rank 1 to 3."""
    rank = draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 5)) for _ in range(rank)]
    x = rng.standard_normal((draw(st.integers(0, 2)), *spatial, draw(st.integers(1, 4))))
    x = x.astype(dtype)
    if op in ("global_avg_pool", "global_max_pool"):
        return {"x": x}
    if op.startswith("global"):
        dy = rng.standard_normal((x.shape[0], x.shape[-1])).astype(dtype)
        if op == "global_avg_pool_backward":
            return {"dy": dy, "x_shape": x.shape}
        argmax = rng.integers(0, math.prod(spatial), dy.shape).astype(np.int32)
        return {"dy": dy, "argmax": argmax, "x_shape": x.shape}
    if op.startswith("upsample"):
        size = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank)))
        mode = "bilinear" if rank == 2 and draw(st.booleans()) else "nearest"
        forward = {"x": x, "size": size, "interpolation": mode}
        if op == "upsample":
            return forward
        return {"dy": _like_output(rng, reference.upsample, forward, dtype), "x_shape": x.shape,
                "size": size, "interpolation": mode}
    side = st.integers(0, 2)
    amounts = draw(st.one_of(side, st.tuples(*[st.one_of(side, st.tuples(side, side))] * rank)))
    name = "padding" if op.startswith("zero_pad") else "cropping"
    forward = {"x": x, name: amounts}
    if op in ("zero_pad", "crop"):
        return forward
    dy = _like_output(rng, getattr(reference, op[:-len("_backward")]), forward, dtype)
    if op == "zero_pad_backward":
        return {"dy": dy, "padding": amounts}
    return {"dy": dy, "x_shape": x.shape, "cropping": amounts}


def _like_output(
    rng: np.random.Generator, forward: Callable[..., np.ndarray], kwargs: dict, dtype: type
) -> np.ndarray:
    """Random values shaped like ``forward(**kwargs)``, or like x when it rejects them."""
    try:
        shape = forward(**kwargs).shape
    except (ValueError, TypeError):
        shape = kwargs["x"].shape
    return rng.standard_normal(shape).astype(dtype)


def outcome(function: Callable[..., object], kwargs: dict) -> str:
    """Whether ``function(**kwargs)`` gave "arrays", a "ValueError" or a "TypeError".

    Any other exception propagates and fails the test.
    """
    try:
        result = function(**kwargs)
    except (ValueError, TypeError) as error:
        return type(error).__name__
    parts = result if isinstance(result, tuple) else (result,)
    assert all(p is None or isinstance(p, np.ndarray) for p in parts), repr(result)[:200]
    return "arrays"


@settings(max_examples=600, deadline=None)
@given(op=st.sampled_from(OPS), data=st.data())
def test_random_arguments_give_arrays_or_a_clean_error(op, data):
    kwargs = data.draw(plausible_arguments(op), label="plausible")
    for name in data.draw(st.sets(st.sampled_from(sorted(kwargs)), max_size=2), label="broken"):
        kwargs[name] = data.draw(JUNK[KIND[name]], label=name)
    results = {m.__name__: outcome(getattr(m, op), kwargs) for m in (ops, reference)}
    # Both backends share the validation, so they must agree on the outcome.
    assert results["fastconv.ops"] == results["fastconv.reference"], results


@BACKENDS
def test_a_valid_call_does_not_let_an_equal_invalid_argument_through(backend):
    # Geometry is memoized for plain arguments; True == 1 and 1.0 == 1, but
    # they are still rejected after the valid call has been cached.
    backend.conv2d(X, W, strides=1, dilation=1)
    backend.max_pool2d(X, pool_size=2, strides=2)
    for bad in (True, 1.0, np.float64(1.0)):
        with pytest.raises(TypeError, match="`strides`"):
            backend.conv2d(X, W, strides=bad)
        with pytest.raises(TypeError, match="`dilation`"):
            backend.conv2d(X, W, dilation=bad)
    with pytest.raises(TypeError, match="`strides`"):
        backend.max_pool2d(X, pool_size=2, strides=(2.0, 2))
    # numpy integers are valid, cached or not.
    np.testing.assert_array_equal(backend.conv2d(X, W, strides=np.int64(1)),
                                  backend.conv2d(X, W, strides=1))


def test_a_negative_argmax_is_rejected_even_for_a_plane_past_2_to_the_32():
    # (checked before dx, 17 GB here, is allocated)
    with pytest.raises(ValueError, match="`argmax`.*received values in \\[-1, -1\\]"):
        ops.max_pool2d_backward(np.zeros((1, 1, 1, 1), np.float32),
                                np.full((1, 1, 1, 1), -1, np.int32), (1, 65536, 65537, 1))

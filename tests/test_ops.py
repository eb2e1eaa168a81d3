"""fastconv.ops against fastconv.reference: forward, gradients and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import ops, reference
from helpers import check_op, conv_inputs, random_array, use_isa

DTYPES = [np.float32, np.float64]
POOLS = ["max_pool2d", "avg_pool2d"]

CONV_CASES = [
    # x_shape, w_shape, strides, padding, dilation
    ((1, 7, 7, 1), (1, 1, 1, 1), 1, "valid", 1),
    ((3, 9, 7, 3), (3, 3, 3, 17), 1, "same", 1),
    ((1, 9, 9, 17), (2, 2, 17, 32), 2, "same", 1),
    ((3, 7, 9, 32), (5, 5, 32, 3), 1, "valid", 1),
    ((1, 7, 7, 3), (7, 7, 3, 64), 1, "valid", 1),
    ((3, 5, 5, 1), (5, 5, 1, 3), 1, "same", 1),
    ((1, 7, 5, 64), (3, 3, 64, 17), 3, 1, 1),
    ((3, 9, 8, 3), (3, 2, 3, 5), (2, 1), (1, 2), (2, 1)),
    ((1, 9, 9, 5), (3, 3, 5, 4), 2, ((1, 0), (2, 1)), 2),
    ((3, 7, 7, 17), (3, 3, 17, 17), 1, "same", 2),
    ((1, 8, 11, 3), (5, 5, 3, 8), 3, "same", 2),
    ((1, 7, 7, 64), (1, 1, 64, 32), 2, "valid", 1),
    ((1, 1, 1, 3), (1, 1, 3, 2), 1, "valid", 1),
    ((1, 7, 9, 17), (2, 2, 17, 64), 1, "valid", 2),
    ((1, 9, 9, 3), (2, 2, 3, 4), 3, "valid", 1),
    ((3, 9, 7, 3), (3, 3, 3, 3), (3, 2), "same", (1, 2)),
    ((1, 7, 7, 32), (3, 3, 32, 64), 1, 2, 1),
    ((1, 3, 3, 1), (3, 3, 1, 2), 1, ((3, 3), (2, 2)), 3),
]

POOL_CASES = [
    # x_shape, pool_size, strides, padding
    ((1, 7, 7, 1), 2, None, "valid"),
    ((3, 9, 7, 3), 3, 2, "same"),
    ((1, 9, 9, 17), 2, 1, "same"),
    ((3, 7, 9, 32), (3, 2), (2, 3), "valid"),
    ((1, 7, 7, 64), 7, None, "valid"),
    ((1, 5, 5, 3), 5, 1, "same"),
    ((1, 7, 5, 3), 3, 1, 1),
    ((3, 9, 8, 5), (3, 2), (1, 2), (1, 0)),
    ((1, 9, 9, 4), 3, 2, ((2, 0), (1, 1))),
    ((1, 8, 11, 17), 5, 3, "same"),
    ((3, 7, 7, 3), 1, 1, "valid"),
    ((1, 7, 7, 3), 2, 3, "valid"),
    ((1, 1, 1, 1), 1, None, "same"),
    ((3, 9, 9, 64), 2, 2, "same"),
    ((1, 7, 9, 32), (1, 3), (1, 2), ((0, 0), (1, 2))),
]


# ----------------------------------------------------------------------------
# parameter grid


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", CONV_CASES)
def test_conv2d(x_shape, w_shape, strides, padding, dilation, dtype, isa):
    check_op("conv2d", **conv_inputs(x_shape, w_shape, dtype), strides=strides,
             padding=padding, dilation=dilation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", CONV_CASES[1:3])
def test_conv2d_without_bias(x_shape, w_shape, strides, padding, dilation, dtype):
    check_op("conv2d", **conv_inputs(x_shape, w_shape, dtype, bias=False), strides=strides,
             padding=padding, dilation=dilation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize("x_shape, pool_size, strides, padding", POOL_CASES)
def test_pool2d(op, x_shape, pool_size, strides, padding, dtype, isa):
    check_op(op, random_array(x_shape, dtype, 1), pool_size=pool_size, strides=strides,
             padding=padding)


# ----------------------------------------------------------------------------
# random shapes and hyper-parameters

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
paddings = st.one_of(
    st.sampled_from(["valid", "same", "SAME"]),
    st.integers(0, 3),
    st.tuples(st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
              st.tuples(st.integers(0, 3), st.integers(0, 3))),
)
isas = st.sampled_from(fastconv.supported_isas())
# Small counts, and the widths around the kernels' vector blocks (8, 16, 32
# floats; 4, 8, 16 doubles) where the register-blocked paths switch on.
channels = st.one_of(st.integers(1, 9), st.sampled_from([15, 16, 17, 31, 32, 33, 64]))


def check_or_same_error(op: str, arrays: dict, isa: str | None, **params: object) -> None:
    """check_op, or: when the reference rejects the arguments, ops does too."""
    try:
        getattr(reference, op)(*arrays.values(), **params)
    except (ValueError, TypeError) as error:
        with pytest.raises(type(error)):
            getattr(ops, op)(*arrays.values(), **params)
        return
    with use_isa(isa):
        check_op(op, **arrays, **params)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 3), h=st.integers(1, 10), w=st.integers(1, 10), c_in=channels,
    c_out=channels, kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    strides=st.one_of(st.integers(1, 3), pairs), dilation=st.one_of(st.integers(1, 2), pairs),
    padding=paddings, dtype=st.sampled_from(DTYPES), bias=st.booleans(), isa=isas,
)
def test_conv2d_random(n, h, w, c_in, c_out, kernel, strides, dilation, padding, dtype, bias, isa):
    arrays = conv_inputs((n, h, w, c_in), (*kernel, c_in, c_out), dtype, bias)
    check_or_same_error("conv2d", arrays, isa, strides=strides, padding=padding,
                        dilation=dilation)


@settings(max_examples=150, deadline=None)
@given(
    op=st.sampled_from(POOLS), n=st.integers(0, 3), h=st.integers(1, 10), w=st.integers(1, 10),
    c=st.integers(1, 20), pool_size=st.one_of(st.integers(1, 4), pairs),
    strides=st.one_of(st.none(), st.integers(1, 3), pairs), padding=paddings,
    dtype=st.sampled_from(DTYPES), isa=isas,
)
def test_pool2d_random(op, n, h, w, c, pool_size, strides, padding, dtype, isa):
    x = random_array((n, h, w, c), dtype, 1)
    check_or_same_error(op, {"x": x}, isa, pool_size=pool_size, strides=strides,
                        padding=padding)


HUGE_CASES = {
    # id: op, hyper-parameters for a huge int k
    "conv-strides": ("conv2d", lambda k: dict(strides=(k, 1), padding="valid")),
    "conv-strides-same": ("conv2d", lambda k: dict(strides=k, padding="same")),
    "conv-dilation-same": ("conv2d", lambda k: dict(dilation=(1, k), padding="same")),
    "max-window-same": ("max_pool2d", lambda k: dict(pool_size=k, padding="same")),
    "avg-window-same": ("avg_pool2d", lambda k: dict(pool_size=(2, k), strides=1, padding="same")),
    "max-strides": ("max_pool2d", lambda k: dict(pool_size=2, strides=k)),
}


@pytest.mark.parametrize("huge", [2**31 - 1, 2**31, 2**62, 2**63, 10**30])
@pytest.mark.parametrize("case", HUGE_CASES)
def test_huge_hyper_parameters(case, huge):
    # Around and beyond the largest accepted value (2**31 - 1): a stride or
    # window this large gives the reference's small result or is rejected by
    # both backends alike, never an overflow in the compiled code.
    op, params = HUGE_CASES[case]
    if op == "conv2d":
        arrays = conv_inputs((2, 5, 6, 3), (2, 3, 3, 4), np.float64)
    else:
        arrays = {"x": random_array((2, 5, 6, 3), np.float64, 1)}
    check_or_same_error(op, arrays, None, **params(huge))


# ----------------------------------------------------------------------------
# integer-valued float32: every sum is exact, so ops must equal float64 exactly


@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", [
    ((3, 9, 7, 17), (3, 3, 17, 32), 1, "same", 1),
    ((1, 9, 9, 64), (5, 5, 64, 17), 2, ((1, 2), (2, 1)), 1),
    ((3, 8, 7, 3), (2, 3, 3, 64), (2, 3), "same", 2),
])
def test_conv2d_integers_exact(x_shape, w_shape, strides, padding, dilation, isa):
    check_op("conv2d", **conv_inputs(x_shape, w_shape, np.float32, integers=True), exact=True,
             strides=strides, padding=padding, dilation=dilation)


@pytest.mark.parametrize("x_shape, pool_size, strides, padding", [
    ((3, 9, 7, 17), 3, 1, "same"),
    ((1, 8, 9, 64), (2, 3), 2, 1),
    ((3, 7, 7, 3), 2, 1, "valid"),
])
def test_max_pool2d_integers_exact(x_shape, pool_size, strides, padding, isa):
    # Values in [-3, 3] make most windows hold ties: argmax must still agree.
    check_op("max_pool2d", random_array(x_shape, np.float32, 1, integers=True), exact=True,
             pool_size=pool_size, strides=strides, padding=padding)


@pytest.mark.parametrize("x_shape, strides, padding", [
    ((3, 9, 7, 17), 1, "same"),
    ((1, 7, 9, 64), 2, "same"),
    ((3, 8, 8, 3), 1, 1),
    ((1, 6, 7, 32), (1, 2), "valid"),
])
def test_avg_pool2d_integers_exact(x_shape, strides, padding, isa):
    # 2x2 windows hold 1, 2 or 4 elements: dividing by them is exact.
    check_op("avg_pool2d", random_array(x_shape, np.float32, 1, integers=True), exact=True,
             pool_size=2, strides=strides, padding=padding)


# ----------------------------------------------------------------------------
# memory layouts


def strided(a: np.ndarray) -> np.ndarray:
    """The same values, not contiguous: every other element of a larger array."""
    big = np.zeros(a.shape + (2,), a.dtype)
    big[..., 0] = a
    return big[..., 0]


def read_only(a: np.ndarray) -> np.ndarray:
    """A copy that cannot be written to."""
    a = a.copy()
    a.flags.writeable = False
    return a


def reversed_strides(a: np.ndarray) -> np.ndarray:
    """The same values, viewed through negative strides."""
    return np.flip(np.flip(a).copy())


LAYOUTS = [np.asfortranarray, strided, read_only, reversed_strides]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_layouts(layout, dtype):
    arrays = conv_inputs((3, 7, 9, 5), (3, 2, 5, 4), dtype)
    params = dict(strides=(2, 1), padding="same", dilation=(1, 2))
    got = check_op("conv2d", **arrays, layout=layout, **params)
    contiguous = check_op("conv2d", **arrays, **params)
    for name, value in got.items():
        np.testing.assert_array_equal(value, contiguous[name], err_msg=name)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("op", POOLS)
def test_pool2d_layouts(op, layout):
    x = random_array((3, 7, 9, 5), np.float64, 1)
    params = dict(pool_size=3, strides=(2, 1), padding="same")
    got = check_op(op, x, layout=layout, **params)
    contiguous = check_op(op, x, **params)
    for name, value in got.items():
        np.testing.assert_array_equal(value, contiguous[name], err_msg=name)


# ----------------------------------------------------------------------------
# empty batches, skipped gradients


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch(dtype):
    check_op("conv2d", **conv_inputs((0, 7, 5, 3), (3, 3, 3, 4), dtype), padding="same")
    for op in POOLS:
        check_op(op, random_array((0, 7, 5, 3), dtype, 1), pool_size=2, padding="same")


def test_empty_batch_weight_gradient_is_zero_whatever_memory_held():
    x = np.zeros((0, 5, 5, 3))
    w = np.ones((3, 3, 3, 4))
    dy = np.zeros((0, 3, 3, 4))
    for _ in range(20):
        # NaN-filled buffers of the gradients' sizes, freed at once: NumPy's
        # allocation cache is likely to hand them to the next np.empty.
        np.full(w.shape, np.nan)
        np.full((4,), np.nan)
        dx, dw, db = ops.conv2d_backward(dy, x, w)
        assert dx.shape == x.shape
        np.testing.assert_array_equal(dw, 0)
        np.testing.assert_array_equal(db, 0)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("need_dw", [True, False])
@pytest.mark.parametrize("need_db", [True, False])
def test_conv2d_backward_only_what_is_needed(need_dx, need_dw, need_db):
    arrays = conv_inputs((3, 7, 6, 5), (3, 3, 5, 4), np.float64)
    flags = dict(need_dx=need_dx, need_dw=need_dw, need_db=need_db)
    dy = random_array((3, 4, 3, 4), np.float64, 4)
    got = ops.conv2d_backward(dy, arrays["x"], arrays["w"], strides=2, padding="same", **flags)
    want = reference.conv2d_backward(dy, arrays["x"], arrays["w"], strides=2, padding="same")
    for name, needed, g, e in zip(("dx", "dw", "db"), flags.values(), got, want):
        if needed:
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=name)
        else:
            assert g is None, name


# ----------------------------------------------------------------------------
# NaN, Inf and ties


def with_specials(a: np.ndarray) -> np.ndarray:
    """``a`` with a NaN, a +Inf and a -Inf at fixed spots of each image."""
    a = a.copy()
    a[:, 0, 1, 0] = np.nan
    a[:, 2, 2, -1] = np.inf
    a[:, -1, 0, 0] = -np.inf
    a[:, 3, 3, 0] = np.inf  # meets the -Inf or the NaN in some windows
    return a


# NumPy warns when the reference computes Inf - Inf; that NaN is the point here.
IEEE_WARNINGS = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@IEEE_WARNINGS
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_conv2d_nan_inf_propagate(where, padding, dtype):
    # Taps in the padding contribute nothing (the reference's definition), so
    # an Inf weight or dy meeting the padding must not turn into 0 * Inf = NaN.
    arrays = conv_inputs((2, 7, 6, 3), (3, 3, 3, 4), dtype)
    dy = random_array(reference.conv2d(**arrays, padding=padding).shape, dtype, 4)
    if where == "x":
        arrays["x"] = with_specials(arrays["x"])
    elif where == "w":
        arrays["w"][0, 0, 0, 0] = np.inf
        arrays["w"][2, 1, 2, 3] = -np.inf
        arrays["w"][1, 2, 1, 1] = np.nan
    else:
        dy = with_specials(dy)
    check_op("conv2d", **arrays, dy=dy, padding=padding)


@IEEE_WARNINGS
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", POOLS)
@pytest.mark.parametrize("pool_size, strides, padding", [(2, 1, "valid"), (3, 2, "same")])
def test_pool2d_nan_inf_propagate(op, pool_size, strides, padding, dtype, isa):
    # 17 channels: the specials sit in vector lanes and in the channel tail.
    x = with_specials(random_array((2, 7, 6, 17), dtype, 1))
    dy = reference.avg_pool2d(x, pool_size, strides, padding)  # NaN/Inf in dy as well
    check_op(op, x, dy=dy, pool_size=pool_size, strides=strides, padding=padding)


@pytest.mark.parametrize("fill", [0.0, -np.inf, np.inf, np.nan])
@pytest.mark.parametrize("padding", ["valid", "same", 1])
def test_max_pool2d_constant_input_first_wins(fill, padding, isa):
    # Every window is one big tie; padding must never be picked, even when
    # the image is -Inf everywhere.
    check_op("max_pool2d", np.full((2, 7, 6, 17), fill), pool_size=3, strides=1, padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_every_2x2_window_of_specials(dtype, isa):
    # All 7**4 windows over NaN, infinities, signed zeros and a tie, one per
    # image: the first maximum in row-major order, NaN over numbers, the
    # first NaN among several (the index as NumPy's argmax).
    values = np.array([np.nan, -np.inf, -1.0, -0.0, 0.0, 1.0, np.inf], dtype)
    grid = np.stack(np.meshgrid(*[np.arange(7)] * 4, indexing="ij"), -1).reshape(-1, 4)
    windows = values[grid].reshape(-1, 2, 2, 1)
    # 17 channels: vector lanes and the channel tail; each image's channels
    # see its window shifted to a neighbour image's, so lanes differ.
    x = np.concatenate([np.roll(windows, k, axis=0) for k in range(17)], axis=-1)
    y, argmax = ops.max_pool2d(x, 2)
    want_y, want_a = reference.max_pool2d(x, 2)
    np.testing.assert_array_equal(argmax, want_a)
    np.testing.assert_array_equal(y, want_y)  # NaN matches NaN, -0 matches +0
    # The value is the chosen element itself: its zero's sign, its NaN.
    chosen = np.take_along_axis(x.reshape(len(x), 4, 17), argmax.reshape(len(x), 1, 17), 1)
    assert y.tobytes() == chosen.tobytes()


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d"])
def test_misaligned_input_is_copied_to_aligned_memory(op):
    # A float32 array one byte past an allocation: valid NumPy, but its
    # elements are unaligned, which the compiled kernels must never see.
    x = random_array((2, 6, 5, 3), np.float32, 1)
    raw = bytearray(x.nbytes + 1)
    unaligned = np.frombuffer(raw, dtype=np.float32, count=x.size, offset=1).reshape(x.shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    args = (random_array((3, 3, 3, 4), np.float32, 2),) if op == "conv2d" else (2,)
    got, want = (getattr(ops, op)(data, *args) for data in (unaligned, x))
    as_tuple = (lambda r: r if isinstance(r, tuple) else (r,))
    for a, b in zip(as_tuple(got), as_tuple(want), strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------
# max_pool2d_backward with the windows' geometry (the gather for disjoint ones)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, pool_size, strides, padding", [
    ((3, 8, 8, 17), 2, None, "valid"),      # disjoint, covering the image
    ((2, 11, 9, 32), 2, None, "valid"),     # disjoint, last row and column left out
    ((2, 9, 7, 5), 2, 3, "same"),           # disjoint with gaps, padded
    ((2, 9, 7, 33), (2, 3), (2, 3), ((1, 0), (0, 2))),
    ((2, 9, 9, 16), 3, 2, "same"),          # overlapping: the scatter
])
def test_max_pool2d_backward_with_geometry_equals_the_scatter(x_shape, pool_size, strides,
                                                              padding, dtype, isa):
    x = random_array(x_shape, dtype, 1)
    x.reshape(-1)[::7] = 0.0  # ties
    y, argmax = ops.max_pool2d(x, pool_size, strides, padding)
    dy = random_array(y.shape, dtype, 2)
    dy.reshape(-1)[:3] = [-0.0, np.nan, np.inf]
    scatter = ops.max_pool2d_backward(dy, argmax, x.shape)
    gather = ops.max_pool2d_backward(dy, argmax, x.shape, pool_size, strides, padding)
    assert gather.tobytes() == scatter.tobytes()
    moved = argmax.copy()
    moved[1, 0, 0, 0] = x.shape[1] * x.shape[2] - 1  # in no window (or another one)
    assert (ops.max_pool2d_backward(dy, moved, x.shape, pool_size, strides, padding).tobytes()
            == ops.max_pool2d_backward(dy, moved, x.shape).tobytes())
    np.testing.assert_array_equal(
        gather, reference.max_pool2d_backward(dy, argmax, x.shape, pool_size, strides, padding))


@pytest.mark.parametrize("backend", [ops, reference])
def test_max_pool2d_backward_geometry_must_fit_dy(backend):
    x = np.zeros((2, 8, 8, 3), np.float32)
    y, argmax = backend.max_pool2d(x, 2)
    with pytest.raises(ValueError, match="`dy`.*pool_size=3"):
        backend.max_pool2d_backward(y, argmax, x.shape, 3)
    with pytest.raises(ValueError, match="`pool_size`"):
        backend.max_pool2d_backward(y, argmax, x.shape, strides=2)
    with pytest.raises(ValueError, match="`pool_size`"):
        backend.max_pool2d_backward(y, argmax, x.shape, padding="same")
    with pytest.raises(TypeError, match="`strides`"):
        backend.max_pool2d_backward(y, argmax, x.shape, 2, strides=2.0)


# A layer's last block of output pixels is often partial (9 pixels of a 3x3
# map are a block of 8 and one of 1): it is computed on fewer pixels, which
# must not change an output's bits. Each image alone gives what it gives
# inside its batch, where its pixels share blocks with its neighbours'.
@pytest.mark.parametrize("isa", fastconv.supported_isas())
@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((5, 5, 5, 64), (3, 3, 64, 64), "valid"),   # 3x3 outputs: 9 pixels an image
    ((5, 4, 4, 32), (3, 3, 32, 48), "valid"),   # 2x2 outputs, a channel tail
    ((5, 4, 5, 1), (3, 3, 1, 32), "valid"),     # one input channel (the flat taps)
    ((5, 3, 7, 3), (2, 2, 3, 32), "valid"),     # 2x6
    ((5, 5, 5, 16), (3, 3, 16, 32), "same"),    # padded borders: several tap ranges
    ((5, 3, 3, 8), (3, 3, 8, 64), "valid"),     # 1 pixel an image
])
def test_an_image_alone_gives_the_bits_it_gives_in_its_batch(x_shape, w_shape, padding, isa):
    x, w, b = (conv_inputs(x_shape, w_shape, np.float32, True)[k] for k in ("x", "w", "b"))
    with use_isa(isa):
        whole = ops.conv2d(x, w, b, padding=padding, activation="relu")
        alone = [ops.conv2d(x[i:i + 1], w, b, padding=padding, activation="relu")
                 for i in range(len(x))]
    np.testing.assert_array_equal(np.concatenate(alone), whole)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64),
                            b.astype(np.float64), padding=padding, activation="relu")
    np.testing.assert_allclose(whole, want, rtol=1e-4, atol=1e-4)

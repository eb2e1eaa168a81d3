"""conv2d_max_pool2d and its gradient: bit for bit the ops they fuse, at every
SIMD level, on both their paths (per-image fusion, and the separate ops when
there are fewer images than threads), against the reference, with clear
errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference
from helpers import random_array

# (x shape, w shape, conv strides, padding, dilation, pool size, pool strides,
# pool padding): the seed CNN's first two layers (disjoint windows, the second
# dropping a trailing row and column, which the fused kernels leave out), a
# first layer with "same" borders (few-taps block), channel tails (19),
# overlapping pooling windows ("same", and strides below the size), one
# output channel pooled with "same" padding, a "same" first layer whose odd
# output loses its last row and column (border pixels on both sides of the
# crop), and dilated taps pooled with gaps between the windows, 16 channels
# (half a register block) and a crop on both axes, a height-1 (Conv1D-like)
# layer whose overlapping windows read 9 of its 10 columns, and explicit
# pooling padding that leaves the last 2 of 10 rows out.
CASES = [
    ((5, 28, 28, 1), (3, 3, 1, 32), 1, "valid", 1, 2, None, "valid"),
    ((4, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 1, 2, None, "valid"),
    ((3, 10, 9, 3), (3, 3, 3, 19), 1, "same", 1, 3, 2, "same"),
    ((4, 12, 11, 5), (2, 3, 5, 33), (2, 1), ((1, 0), (0, 2)), (1, 2), (2, 3), 1, 1),
    ((3, 9, 9, 17), (3, 3, 17, 1), 1, "same", 1, 2, None, "same"),
    ((3, 27, 27, 1), (3, 3, 1, 8), 1, "same", 1, 2, None, "valid"),
    ((3, 12, 14, 6), (3, 2, 6, 16), 1, "valid", (2, 1), 3, (4, 3), "valid"),
    ((3, 1, 12, 4), (1, 3, 4, 16), 1, "valid", 1, (1, 3), (1, 2), "valid"),
    ((3, 12, 8, 5), (3, 3, 5, 16), 1, "valid", 1, 3, 3, ((1, 0), (0, 0))),
]


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_equals_conv_then_pool_bitwise(case, dtype, activation, isa):
    x_shape, w_shape, s, pad, d, pool, pool_s, pool_pad = case
    x, w = random_array(x_shape, dtype, 1), random_array(w_shape, dtype, 2)
    b = random_array(w_shape[3:], dtype, 3)
    got_y, got_a = ops.conv2d_max_pool2d(x, w, b, s, pad, d, activation, pool, pool_s, pool_pad)
    want_y, want_a = ops.max_pool2d(ops.conv2d(x, w, b, s, pad, d, activation), pool, pool_s,
                                    pool_pad)
    assert got_y.dtype == dtype and got_a.dtype == np.int32
    assert got_y.tobytes() == want_y.tobytes()
    np.testing.assert_array_equal(got_a, want_a)


@pytest.mark.parametrize("case", CASES)
def test_matches_reference(case):
    x_shape, w_shape, s, pad, d, pool, pool_s, pool_pad = case
    x, w = random_array(x_shape, np.float64, 4), random_array(w_shape, np.float64, 5)
    args = (s, pad, d, "relu", pool, pool_s, pool_pad)
    got_y, got_a = ops.conv2d_max_pool2d(x, w, None, *args)
    want_y, want_a = reference.conv2d_max_pool2d(x, w, None, *args)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-10, atol=1e-10 * np.abs(want_y).max())
    # Exact ties are measure-zero with normal inputs except the ReLU's zeros,
    # where both take the window's first element.
    np.testing.assert_array_equal(got_a, want_a)


def test_integer_inputs_exact_with_ties():
    # Small ints: exact sums, and most pooling windows hold ties.
    x = random_array((4, 11, 12, 3), np.float32, 6, integers=True)
    w = random_array((3, 3, 3, 32), np.float32, 7, integers=True)
    got = ops.conv2d_max_pool2d(x, w, activation="relu", pool_size=2)
    want = reference.conv2d_max_pool2d(x.astype(np.float64), w.astype(np.float64),
                                       activation="relu", pool_size=2)
    np.testing.assert_array_equal(got[0], want[0].astype(np.float32))
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("images", [0, 1, 2, 3, 7])
def test_fewer_images_than_threads(images, restore_settings):
    # Below the thread count the op runs the two kernels one after the other.
    fastconv.set_num_threads(3)
    x = random_array((images, 9, 8, 2), np.float32, 8)
    w = random_array((3, 3, 2, 32), np.float32, 9)
    y, a = ops.conv2d_max_pool2d(x, w, activation="relu")
    assert y.shape == a.shape == (images, 3, 3, 32)
    want = ops.max_pool2d(ops.conv2d(x, w, activation="relu"), 2)
    assert y.tobytes() == want[0].tobytes() and a.tobytes() == want[1].tobytes()


@pytest.mark.parametrize("backend", [ops, reference])
def test_bad_arguments_name_the_pool_argument(backend):
    x = np.zeros((2, 8, 8, 3), np.float32)
    w = np.zeros((3, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="`pool_strides`"):
        backend.conv2d_max_pool2d(x, w, pool_strides=0)
    with pytest.raises(ValueError, match="`pool_padding`"):
        backend.conv2d_max_pool2d(x, w, pool_padding="full")
    with pytest.raises(ValueError, match="`pool_padding`"):
        backend.conv2d_max_pool2d(x, w, pool_padding=2)  # not below the pool size
    with pytest.raises(ValueError, match="`pool_size`.*convolution output.*pool_padding='same'"):
        backend.conv2d_max_pool2d(x, w, pool_size=7)  # larger than the 6x6 output
    with pytest.raises(ValueError, match="`activation`"):
        backend.conv2d_max_pool2d(x, w, activation="tanh")
    with pytest.raises(ValueError, match="`w`"):
        backend.conv2d_max_pool2d(x, np.zeros((3, 3, 2, 4), np.float32))


def unfused_backward(dy, argmax, x, w, s, pad, d, activation, y, **need):
    """The gradient through the separate ops."""
    if activation == "relu":
        dy = ops.relu_backward(dy, y)
    conv_shape = ops.conv2d(x, w, None, s, pad, d).shape
    dz = ops.max_pool2d_backward(dy, argmax, conv_shape)
    return ops.conv2d_backward(dz, x, w, s, pad, d, **need)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_backward_equals_the_separate_ops_bitwise(case, dtype, activation, isa):
    x_shape, w_shape, s, pad, d, pool, pool_s, pool_pad = case
    # 18 images: more than the weight gradient's 16 chunks, so some chunks
    # sum two images.
    x = random_array((18, *x_shape[1:]), dtype, 1)
    w, b = random_array(w_shape, dtype, 2), random_array(w_shape[3:], dtype, 3)
    y, argmax = ops.conv2d_max_pool2d(x, w, b, s, pad, d, activation, pool, pool_s, pool_pad)
    dy = random_array(y.shape, dtype, 4)
    relu_y = y if activation == "relu" else None
    got = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, s, pad, d, activation, pool, pool_s,
                                         pool_pad, relu_y)
    want = unfused_backward(dy, argmax, x, w, s, pad, d, activation, y)
    for name, a, b in zip(("dx", "dw", "db"), got, want):
        assert a.dtype == dtype and a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False), (False, False, True),
                                  (False, True, True), (False, False, False)])
def test_backward_computes_only_what_is_asked(need):
    x_shape, w_shape, s, pad, d, pool, pool_s, pool_pad = CASES[2]  # strided pool, "same"
    x, w = random_array(x_shape, np.float32, 5), random_array(w_shape, np.float32, 6)
    y, argmax = ops.conv2d_max_pool2d(x, w, None, s, pad, d, "relu", pool, pool_s, pool_pad)
    dy = random_array(y.shape, np.float32, 7)
    flags = dict(zip(("need_dx", "need_dw", "need_db"), need))
    got = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, s, pad, d, "relu", pool, pool_s,
                                         pool_pad, y, **flags)
    want = unfused_backward(dy, argmax, x, w, s, pad, d, "relu", y, **flags)
    for asked, a, b in zip(need, got, want):
        assert (a is None) == (not asked) == (b is None)
        if asked:
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_leaves_out_the_dropped_pixels_only_where_the_bits_stay(dtype, isa):
    # 11 output rows pooled by 2 read 10: the fused gradient leaves the last
    # row and column out of its sums, zeros that change nothing, except a
    # zero times an infinity or NaN, which is NaN in the separate ops too.
    x = random_array((18, 13, 13, 8), dtype, 21)
    w = random_array((3, 3, 8, 32), dtype, 22)
    y, argmax = ops.conv2d_max_pool2d(x, w, activation="relu")
    dy = random_array(y.shape, dtype, 23)
    x_inf = x.copy()
    x_inf[3, 12, 5, 2] = np.inf  # read by the dropped row alone
    x_nan = x.copy()
    x_nan[7, 4, 11, 0] = np.nan  # read by a kept and a dropped column
    w_inf = w.copy()
    w_inf[2, 1, 3, 7] = -np.inf
    for xs, ws in ((x, w), (x_inf, w), (x_nan, w), (x, w_inf)):
        got = ops.conv2d_max_pool2d_backward(dy, argmax, xs, ws, activation="relu", y=y)
        want = unfused_backward(dy, argmax, xs, ws, 1, "valid", 1, "relu", y)
        for name, a, b in zip(("dx", "dw", "db"), got, want):
            assert a.tobytes() == b.tobytes(), name
    # The infinity meets the dropped row's zero gradient in the taps of the
    # kernel's last row: NaN there, finite elsewhere.
    dw = ops.conv2d_max_pool2d_backward(dy, argmax, x_inf, w, activation="relu", y=y)[1]
    assert np.isnan(dw[2, :, 2]).all() and np.isfinite(dw[:2]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_with_underflowing_products_keeps_the_zeros_sign(dtype, isa, restore_settings):
    # A multiply-add whose negative product underflows gives -0 from +0; the
    # dropped row's zero terms would have made it +0 again, so a cropped -0
    # sends the call to the full planes.
    tiny = dtype(1e-30 if dtype == np.float32 else 1e-170)
    x = np.ones((18, 4, 1, 16), dtype)
    x[:, 1] = tiny
    w = np.ones((2, 1, 16, 32), dtype)
    w[1] = tiny
    dy = np.full((18, 1, 1, 32), -tiny, dtype)
    argmax = np.ones(dy.shape, np.int32)  # 3 output rows pooled by (2, 1): 2 read
    want = unfused_backward(dy, argmax, x, w, 1, "valid", 1, None, None)
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        got = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, pool_size=(2, 1))
        for name, a, b in zip(("dx", "dw", "db"), got, want):
            assert a.tobytes() == b.tobytes(), (name, threads)


@pytest.mark.parametrize("need_dx", [True, False])
def test_backward_of_a_strided_convolution_with_a_dropped_row(need_dx, isa):
    # 15 rows at stride 2 give 7, pooled by 2: 6 read. Without dx the planes
    # leave the last row out; with it (by stride phases, planned on the full
    # geometry) they keep it.
    x = random_array((18, 15, 15, 4), np.float32, 24)
    w = random_array((3, 3, 4, 32), np.float32, 25)
    y, argmax = ops.conv2d_max_pool2d(x, w, None, 2, activation="relu")
    dy = random_array(y.shape, np.float32, 26)
    got = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, 2, activation="relu", y=y,
                                         need_dx=need_dx)
    want = unfused_backward(dy, argmax, x, w, 2, "valid", 1, "relu", y, need_dx=need_dx)
    assert (got[0] is None) == (want[0] is None) == (not need_dx)
    for a, b in zip(got, want):
        if a is not None:
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("case", CASES)
def test_backward_matches_reference(case):
    x_shape, w_shape, s, pad, d, pool, pool_s, pool_pad = case
    x, w = random_array(x_shape, np.float64, 8), random_array(w_shape, np.float64, 9)
    y, argmax = reference.conv2d_max_pool2d(x, w, None, s, pad, d, "relu", pool, pool_s,
                                            pool_pad)
    dy = random_array(y.shape, np.float64, 10)
    args = (dy, argmax, x, w, s, pad, d, "relu", pool, pool_s, pool_pad, y)
    for got, want in zip(ops.conv2d_max_pool2d_backward(*args),
                         reference.conv2d_max_pool2d_backward(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_relu_mask_uses_the_pooled_output():
    # Hand-made case: one image, one channel, a 1x1 kernel of weight 1, so the
    # convolution is the identity and pooling picks the maximum of each 2x2.
    x = np.array([[1.0, -2.0, -5.0, -1.0],
                  [3.0, 0.5, -3.0, -4.0]]).reshape(1, 2, 4, 1)
    w = np.ones((1, 1, 1, 1))
    y, argmax = ops.conv2d_max_pool2d(x, w, activation="relu")
    np.testing.assert_array_equal(y.ravel(), [3.0, 0.0])  # max(relu) of each window
    np.testing.assert_array_equal(argmax.ravel(), [4, 2])  # (1, 0); the first of the zeros
    dy = np.array([10.0, 20.0]).reshape(1, 1, 2, 1)
    dx, dw, db = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, activation="relu", y=y)
    # Only the positive maximum passes its gradient, to its own position.
    np.testing.assert_array_equal(dx.reshape(2, 4), [[0, 0, 0, 0], [10, 0, 0, 0]])
    np.testing.assert_array_equal(dw.ravel(), [30.0])  # 10 * x at (1, 0)
    np.testing.assert_array_equal(db, [10.0])


@pytest.mark.parametrize("images", [0, 1, 2])
def test_backward_with_fewer_images_than_threads(images, restore_settings):
    fastconv.set_num_threads(3)
    x = random_array((images, 9, 8, 2), np.float32, 11)
    w = random_array((3, 3, 2, 32), np.float32, 12)
    y, argmax = ops.conv2d_max_pool2d(x, w, activation="relu")
    dy = random_array(y.shape, np.float32, 13)
    got = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, activation="relu", y=y)
    want = unfused_backward(dy, argmax, x, w, 1, "valid", 1, "relu", y)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("backend", [ops, reference])
def test_backward_bad_arguments(backend):
    x = np.zeros((2, 8, 8, 3), np.float32)
    w = np.zeros((3, 3, 3, 4), np.float32)
    y, argmax = backend.conv2d_max_pool2d(x, w, activation="relu")
    with pytest.raises(ValueError, match="`y`.*None"):
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, activation="relu")
    with pytest.raises(ValueError, match="`y`.*only"):
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, y=y)
    with pytest.raises(ValueError, match="`argmax`.*36"):
        backend.conv2d_max_pool2d_backward(y, argmax + 36, x, w, activation="relu", y=y)
    with pytest.raises(TypeError, match="`argmax`"):
        backend.conv2d_max_pool2d_backward(y, argmax.astype(np.int64), x, w)
    with pytest.raises(ValueError, match="`dy`"):
        backend.conv2d_max_pool2d_backward(y[..., :2], argmax[..., :2], x, w)
    with pytest.raises(ValueError, match="`dy`"):  # pooled with a 3x3 window, not 2x2
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, pool_size=3)
    with pytest.raises(ValueError, match="`pool_strides`"):
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, pool_strides=(1, 0))
    with pytest.raises(ValueError, match="`y`"):
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, activation="relu", y=y[:, :2])
    with pytest.raises(TypeError, match="`need_dw`"):
        backend.conv2d_max_pool2d_backward(y, argmax, x, w, need_dw=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_argmax_outside_its_window_is_scattered_as_given(dtype, isa):
    # The gather for disjoint windows is only valid when each index lies in
    # its own window; any other valid index must still be scattered where it
    # points, as max_pool2d_backward does.
    x = random_array((4, 9, 9, 3), dtype, 14)
    w = random_array((3, 3, 3, 17), dtype, 15)
    y, argmax = ops.conv2d_max_pool2d(x, w, activation="relu")  # 7x7 -> 3x3 windows
    dy = random_array(y.shape, dtype, 16)
    moved = argmax.copy()
    moved[2, 1, 1, 5] = 48  # the last element of the 7x7 plane: in no window
    moved[3, 0, 0, 16] = moved[3, 2, 2, 16]  # another window's choice
    for a in (argmax, moved):
        got = ops.conv2d_max_pool2d_backward(dy, a, x, w, activation="relu", y=y)
        want = unfused_backward(dy, a, x, w, 1, "valid", 1, "relu", y)
        for g, h in zip(got, want):
            assert g.tobytes() == h.tobytes()
    changed = ops.conv2d_max_pool2d_backward(dy, moved, x, w, activation="relu", y=y)[0]
    original = ops.conv2d_max_pool2d_backward(dy, argmax, x, w, activation="relu", y=y)[0]
    assert not np.array_equal(changed[2:], original[2:])

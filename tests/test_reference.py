"""fastconv.reference against hand-computed values and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import reference as ref

X3 = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def image(rows: list[list[float]]) -> np.ndarray:
    """A (1, H, W, 1) image from its rows."""
    return np.array(rows, dtype=np.float64)[None, :, :, None]


def kernel(rows: list[list[float]]) -> np.ndarray:
    """A (KH, KW, 1, 1) kernel from its rows."""
    return np.array(rows, dtype=np.float64)[:, :, None, None]


# ----------------------------------------------------------------------------
# convolution by hand


def test_conv2d_valid_by_hand():
    y = ref.conv2d(X3, kernel([[1, 2], [3, 4]]), np.array([0.5]))
    # y[0, 0] = 1*1 + 2*2 + 4*3 + 5*4 = 37, and so on, plus the bias.
    np.testing.assert_array_equal(y[0, :, :, 0], [[37.5, 47.5], [67.5, 77.5]])


def test_conv2d_mixes_channels_by_hand():
    x = np.concatenate([X3, 10 * X3], axis=3)  # channel 1 is ten times channel 0
    w = np.zeros((1, 1, 2, 2))
    w[0, 0] = [[1, 2], [3, 4]]  # y0 = x0 + 3 x1, y1 = 2 x0 + 4 x1
    y = ref.conv2d(x, w)
    np.testing.assert_array_equal(y[..., 0], 31 * X3[..., 0])
    np.testing.assert_array_equal(y[..., 1], 42 * X3[..., 0])


def test_conv2d_same_even_kernel_pads_bottom_right():
    # A 2x2 kernel on 3x3 needs one row and one column of padding in total;
    # TensorFlow puts it at the bottom/right, so y[0, 0] sees no padding.
    y = ref.conv2d(X3, kernel([[1, 1], [1, 1]]), padding="same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 16, 9], [24, 28, 15], [15, 17, 9]])


def test_conv2d_same_strided_pads_bottom_right():
    # 6 rows, stride 2, dilated window 3: OH = 3 and total padding
    # (3 - 1) * 2 + 3 - 6 = 1, at the bottom; 5 columns, stride 2: OW = 3,
    # padding (3 - 1) * 2 + 3 - 5 = 2, one each side.
    x = np.arange(30.0).reshape(1, 6, 5, 1)
    y = ref.conv2d(x, kernel([[1, 0], [0, 1]]), strides=2, padding="same", dilation=2)
    # Output (oh, ow) reads x[2 oh, 2 ow - 1] + x[2 oh + 2, 2 ow + 1].
    expected = [[0 + 11, 1 + 13, 3 + 0], [0 + 21, 11 + 23, 13 + 0], [0 + 0, 21 + 0, 23 + 0]]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_conv2d_stride_and_dilation_by_hand():
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    # Dilation 2 spreads the 2x2 kernel over 3x3; stride 2 gives a 2x2 output
    # whose (oh, ow) reads x[2 oh + 2 a, 2 ow + 2 b] for taps (a, b).
    y = ref.conv2d(x, kernel([[1, 10], [100, 1000]]), strides=2, dilation=2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[13020, 15242], [24130, 26352]])


def test_conv2d_explicit_padding_pair_of_pairs():
    y = ref.conv2d(X3, kernel([[1]]), padding=((1, 0), (0, 2)))
    expected = np.zeros((4, 5))
    expected[1:, :3] = X3[0, :, :, 0]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_conv2d_backward_by_hand():
    dy = np.ones((1, 2, 2, 1))
    dx, dw, db = ref.conv2d_backward(dy, X3, kernel([[1, 2], [3, 4]]))
    # Each input pixel receives the kernel taps of every window covering it.
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    # Each tap sees the sum of the 2x2 block of x it slides over.
    np.testing.assert_array_equal(dw[:, :, 0, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(db, [4])


def test_conv2d_backward_skips_gradients_not_needed():
    dy = np.ones((1, 2, 2, 1))
    assert ref.conv2d_backward(dy, X3, np.ones((2, 2, 1, 1)), need_dx=False, need_dw=False,
                               need_db=False) == (None, None, None)


def test_empty_batch():
    x = np.zeros((0, 5, 4, 3), np.float32)
    w = np.zeros((3, 3, 3, 2), np.float32)
    assert ref.conv2d(x, w, padding="same").shape == (0, 5, 4, 2)
    dx, dw, db = ref.conv2d_backward(np.zeros((0, 5, 4, 2), np.float32), x, w, padding="same")
    assert dx.shape == (0, 5, 4, 3) and dw.dtype == np.float32
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, [0, 0])
    y, argmax = ref.max_pool2d(x, 2)
    assert y.shape == argmax.shape == (0, 2, 2, 3) and argmax.dtype == np.int32
    assert ref.max_pool2d_backward(y, argmax, x.shape).shape == x.shape
    assert ref.avg_pool2d(x, 3, 1, "same").shape == (0, 5, 4, 3)
    assert ref.avg_pool2d_backward(np.zeros((0, 5, 4, 3)), x.shape, 3, 1, "same").shape == x.shape


# ----------------------------------------------------------------------------
# pooling by hand


def test_max_pool_ties_go_to_the_first_in_window_order():
    x = image([[1, 7, 7, 0], [7, 7, 0, 0]])
    y, argmax = ref.max_pool2d(x, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[7, 7]])
    # First window: the 7 at (0, 1) beats the later 7s at (1, 0) and (1, 1).
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[1, 2]])
    y, argmax = ref.max_pool2d(np.full((1, 3, 3, 1), 5.0), 2, 1)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 1], [3, 4]])


def test_max_pool_padding_never_wins():
    y, argmax = ref.max_pool2d(-X3, 2, 2, "same")  # padding at the bottom/right
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 2], [6, 8]])


def test_max_pool_all_minus_inf_window_points_inside_the_image():
    x = np.full((1, 3, 3, 1), -np.inf)
    y, argmax = ref.max_pool2d(x, 3, 1, "same")
    assert np.all(y == -np.inf)
    # Window (oh, ow) starts at (oh - 1, ow - 1); its first image element is
    # (max(oh - 1, 0), max(ow - 1, 0)).
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])


def test_max_pool_nan_wins_at_its_first_occurrence():
    x = image([[1, np.nan, 9, 1], [np.nan, 5, np.nan, 2]])
    y, argmax = ref.max_pool2d(x, 2)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[1, 6]])
    y, argmax = ref.max_pool2d(image([[np.inf, 1], [-np.inf, 2]]), 2)
    assert y[0, 0, 0, 0] == np.inf and argmax[0, 0, 0, 0] == 0


def test_max_pool_backward_accumulates_overlapping_windows():
    x = image([[0, 0, 0], [0, 9, 0], [0, 0, 0]])
    y, argmax = ref.max_pool2d(x, 2, 1)
    dx = ref.max_pool2d_backward(np.arange(1.0, 5.0).reshape(1, 2, 2, 1), argmax, x.shape)
    expected = np.zeros((3, 3))
    expected[1, 1] = 1 + 2 + 3 + 4  # every window picks the centre
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_avg_pool_same_counts_only_the_image():
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    y = ref.avg_pool2d(x, 3, 1, "same")
    # Corner windows hold 4 image elements, edge windows 6, the centre 9.
    expected = [[8 / 4, 15 / 6, 12 / 4], [21 / 6, 36 / 9, 27 / 6], [20 / 4, 33 / 6, 24 / 4]]
    np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-15)
    # Even window: padding at the bottom/right only, so y[0, 0] is a full 2x2.
    y = ref.avg_pool2d(x, 2, 1, "same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[2, 3, 3.5], [5, 6, 6.5], [6.5, 7.5, 8]])


def test_avg_pool_explicit_padding_counts_only_the_image():
    y = ref.avg_pool2d(np.arange(4.0).reshape(1, 2, 2, 1), 2, 1, 1)
    expected = [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_avg_pool_backward_shares_by_count():
    dx = ref.avg_pool2d_backward(np.ones((1, 3, 3, 1)), (1, 3, 3, 1), 3, 1, "same")
    corner, edge, centre = 1 / 4, 1 / 6, 1 / 9
    # (0, 0) lies in windows (0, 0), (0, 1), (1, 0), (1, 1).
    assert dx[0, 0, 0, 0] == pytest.approx(corner + 2 * edge + centre, rel=1e-15)
    # The centre lies in all nine.
    assert dx[0, 1, 1, 0] == pytest.approx(4 * corner + 4 * edge + centre, rel=1e-15)


def test_huge_same_window_costs_no_more_than_the_image():
    x = np.random.default_rng(0).standard_normal((1, 5, 4, 2))
    y, argmax = ref.max_pool2d(x, 2**31 - 1, 1, "same")
    flat = x.reshape(1, 20, 2)
    np.testing.assert_array_equal(y, np.broadcast_to(flat.max(axis=1)[:, None, None], y.shape))
    np.testing.assert_array_equal(argmax[0, 2, 1], flat[0].argmax(axis=0))


# ----------------------------------------------------------------------------
# gradients against central finite differences
#
# Every op is piecewise linear in its inputs, so central differences with step
# 1e-6 are exact up to float64 rounding of the loss (about 1e-16 * |loss| /
# 1e-6 < 1e-8 here). Tolerance: rtol = atol = 1e-6.

STEP = 1e-6
FD_TOL = 1e-6


def numerical_gradient(loss, a: np.ndarray) -> np.ndarray:
    """Central differences of ``loss()`` with respect to every entry of ``a`` (in place)."""
    grad = np.empty_like(a)
    for i in np.ndindex(a.shape):
        saved = a[i]
        a[i] = saved + STEP
        up = loss()
        a[i] = saved - STEP
        down = loss()
        a[i] = saved
        grad[i] = (up - down) / (2 * STEP)
    return grad


CONV_FD_CASES = [
    # x_shape, w_shape, strides, padding, dilation
    ((2, 5, 6, 3), (3, 2, 3, 4), 1, "valid", 1),
    ((1, 5, 5, 2), (2, 2, 2, 3), 2, "same", 1),
    ((2, 6, 5, 2), (3, 3, 2, 2), (2, 1), ((1, 0), (2, 1)), (1, 2)),
    ((1, 7, 6, 1), (2, 3, 1, 2), 3, 1, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", CONV_FD_CASES)
def test_conv2d_gradients_match_finite_differences(x_shape, w_shape, strides, padding, dilation):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[3])
    hyper = dict(strides=strides, padding=padding, dilation=dilation)
    r = rng.standard_normal(ref.conv2d(x, w, b, **hyper).shape)

    def loss() -> float:
        return float(np.sum(ref.conv2d(x, w, b, **hyper) * r))

    dx, dw, db = ref.conv2d_backward(r, x, w, **hyper)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=FD_TOL, atol=FD_TOL)
    np.testing.assert_allclose(dw, numerical_gradient(loss, w), rtol=FD_TOL, atol=FD_TOL)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=FD_TOL, atol=FD_TOL)


POOL_FD_CASES = [
    # x_shape, pool_size, strides, padding
    ((2, 5, 6, 3), 2, None, "valid"),
    ((1, 5, 5, 2), 3, 1, "same"),
    ((2, 6, 5, 2), (3, 2), (2, 1), ((1, 0), (1, 1))),
    ((1, 7, 6, 2), 2, 3, "same"),
]


@pytest.mark.parametrize("x_shape, pool_size, strides, padding", POOL_FD_CASES)
def test_max_pool2d_gradient_matches_finite_differences(x_shape, pool_size, strides, padding):
    rng = np.random.default_rng(0)
    # Distinct values 0.01 apart, far beyond the step, so no maximum changes.
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.01
    y, argmax = ref.max_pool2d(x, pool_size, strides, padding)
    r = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(ref.max_pool2d(x, pool_size, strides, padding)[0] * r))

    dx = ref.max_pool2d_backward(r, argmax, x.shape)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("x_shape, pool_size, strides, padding", POOL_FD_CASES)
def test_avg_pool2d_gradient_matches_finite_differences(x_shape, pool_size, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    r = rng.standard_normal(ref.avg_pool2d(x, pool_size, strides, padding).shape)

    def loss() -> float:
        return float(np.sum(ref.avg_pool2d(x, pool_size, strides, padding) * r))

    dx = ref.avg_pool2d_backward(r, x.shape, pool_size, strides, padding)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=FD_TOL, atol=FD_TOL)

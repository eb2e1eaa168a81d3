"""conv2d(..., activation="relu") and relu_backward against the reference, at
every SIMD level, with NaN and sign edge cases and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference
from helpers import random_array, use_isa

# (x shape, w shape, strides, padding, dilation): block paths (C_out 32, 64),
# the few-taps block of first layers (C_in 1 and 3), channel tails (19), one
# output channel and padded borders.
CASES = [
    ((3, 9, 8, 5), (3, 3, 5, 32), 1, "same", 1),
    ((2, 12, 28, 1), (3, 3, 1, 32), 1, "valid", 1),
    ((2, 10, 19, 3), (3, 3, 3, 64), 1, "same", 1),
    ((2, 7, 7, 17), (3, 3, 17, 64), 2, "valid", 1),
    ((2, 9, 9, 3), (2, 2, 3, 19), 1, "same", 2),
    ((1, 6, 5, 40), (3, 3, 40, 1), 1, "same", 1),
]


@pytest.mark.parametrize("isa", fastconv.supported_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", CASES)
def test_fused_relu_matches_reference(x_shape, w_shape, strides, padding, dilation, dtype, isa):
    x, w = random_array(x_shape, dtype, 1), random_array(w_shape, dtype, 2)
    b = random_array(w_shape[3:], dtype, 3)
    with use_isa(isa):
        got = ops.conv2d(x, w, b, strides, padding, dilation, activation="relu")
    want = np.maximum(reference.conv2d(x, w, b, strides, padding, dilation), 0)
    np.testing.assert_array_equal(reference.conv2d(x, w, b, strides, padding, dilation,
                                                   activation="relu"), want)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))
    assert (got >= 0).all()


def test_fused_relu_integer_inputs_exact():
    x = random_array((2, 8, 8, 9), np.float32, 1, integers=True)
    w = random_array((3, 3, 9, 33), np.float32, 2, integers=True)
    got = ops.conv2d(x, w, activation="relu", padding="same")
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), activation="relu",
                            padding="same")
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_fused_relu_lets_nan_through():
    x = np.ones((1, 3, 3, 1), np.float32)
    x[0, 1, 1, 0] = np.nan
    y = ops.conv2d(x, -np.ones((1, 1, 1, 32), np.float32), activation="relu")
    assert np.isnan(y[0, 1, 1]).all() and (y[0, 0, 0] == 0).all()


@pytest.mark.parametrize("isa", fastconv.supported_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4, 2), (2, 300, 200)])
def test_relu_backward_matches_reference(shape, dtype, isa):
    dy, y = random_array(shape, dtype, 1), random_array(shape, dtype, 2)
    y.reshape(-1)[:3] = [0.0, -0.0, np.nan]
    with use_isa(isa):
        got = ops.relu_backward(dy, y)
    want = reference.relu_backward(dy, y)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, np.where(y > 0, dy, 0))
    assert got.dtype == dtype


def test_relu_backward_accepts_strided_and_empty():
    dy = random_array((4, 6), np.float32, 1)[:, ::2]
    y = random_array((4, 3), np.float32, 2)
    np.testing.assert_array_equal(ops.relu_backward(dy, y), reference.relu_backward(dy, y))
    assert ops.relu_backward(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("backend", [ops, reference])
def test_bad_arguments(backend):
    x, w = np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 2, 3))
    with pytest.raises(ValueError, match="`activation`.*'relu'"):
        backend.conv2d(x, w, activation="sigmoid")
    with pytest.raises(ValueError, match="`dy`.*shape"):
        backend.relu_backward(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="dy=float32, y=float64"):
        backend.relu_backward(np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(TypeError, match="`y`"):
        backend.relu_backward(np.zeros(3), [0.0, 1.0, 2.0])

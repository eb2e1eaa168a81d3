"""conv2d_max_pool2d: bit for bit the two ops it fuses, at every SIMD level,
on both its paths (per-image fusion, and the separate ops when there are fewer
images than threads), against the reference, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference
from helpers import random_array

# (x shape, w shape, conv strides, padding, dilation, pool size, pool strides,
# pool padding): the seed CNN's first two layers, a first layer with "same"
# borders (few-taps block), channel tails (19), overlapping "same" pooling
# windows, a pool that drops a trailing row and column, and one output channel.
CASES = [
    ((5, 28, 28, 1), (3, 3, 1, 32), 1, "valid", 1, 2, None, "valid"),
    ((4, 13, 13, 32), (3, 3, 32, 64), 1, "valid", 1, 2, None, "valid"),
    ((3, 10, 9, 3), (3, 3, 3, 19), 1, "same", 1, 3, 2, "same"),
    ((4, 12, 11, 5), (2, 3, 5, 33), (2, 1), ((1, 0), (0, 2)), (1, 2), (2, 3), 1, 1),
    ((3, 9, 9, 17), (3, 3, 17, 1), 1, "same", 1, 2, None, "valid"),
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
    with pytest.raises(ValueError, match="`pool_size`"):
        backend.conv2d_max_pool2d(x, w, pool_size=7)  # larger than the 6x6 output
    with pytest.raises(ValueError, match="`activation`"):
        backend.conv2d_max_pool2d(x, w, activation="tanh")
    with pytest.raises(ValueError, match="`w`"):
        backend.conv2d_max_pool2d(x, np.zeros((3, 3, 2, 4), np.float32))

"""The rank-generic ops of fastconv.ops (convolution: plain, grouped,
depthwise, transposed; pooling) against fastconv.reference, at every SIMD
level, for any thread count, and on integer-valued inputs exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import _validation_nd as vnd
from fastconv import ops, reference
from helpers import assert_matches, random_array

ISAS = fastconv.supported_isas()

# x_shape, kernel_size, C_out, groups, strides, padding, dilation: between
# them, every rank and kernel path (blocked channels, channel tails, one
# output channel, few taps x channels, depthwise with multipliers 1 and 2,
# other group counts, the unit-stride and the phased strided data gradient,
# kernel equal to the input, causal and explicit padding, batch 1).
CONV_CASES = [
    ((3, 17, 5), (3,), 19, 1, 1, "same", 1),
    ((2, 23, 16), (2,), 33, 1, 1, "causal", 3),
    ((1, 9, 4), (9,), 1, 1, 1, "valid", 1),
    ((2, 20, 6), (3,), 12, 3, 2, ((2, 1),), 1),
    ((4, 31, 18), (5,), 18, 18, 3, "same", 1),
    ((2, 11, 9, 17), (3, 2), 19, 1, (2, 1), "same", 1),
    ((3, 8, 7, 1), (3, 3), 33, 1, 2, "valid", 1),
    ((2, 9, 10, 24), (3, 3), 48, 24, 1, "same", 2),
    ((2, 9, 10, 20), (3, 3), 20, 20, 2, "same", 1),
    ((1, 6, 7, 8), (2, 3), 12, 4, 1, ((1, 0), (2, 2)), 1),
    ((2, 5, 6, 7, 3), (3, 2, 3), 33, 1, 1, "same", 1),
    ((1, 4, 5, 6, 17), (2, 3, 2), 16, 1, (2, 1, 2), "valid", 1),
    ((2, 5, 5, 5, 6), (3, 3, 3), 6, 6, 1, "same", (2, 1, 1)),
    ((1, 3, 4, 5, 4), (3, 4, 5), 7, 1, 1, "valid", 1),
]

# x_shape, kernel_size, filters, strides, padding, output_padding, dilation
TRANSPOSE_CASES = [
    ((3, 7, 5), (3,), 19, 2, "same", None, 1),
    ((2, 6, 16), (4,), 33, 3, "valid", 2, 1),
    ((1, 5, 3), (3,), 4, 1, "same", None, 2),
    ((2, 7, 6, 32), (3, 3), 32, 2, "same", None, 1),
    ((1, 5, 4, 3), (3, 2), 17, (2, 3), "valid", (1, 2), 1),
    ((2, 4, 4, 5), (2, 2), 8, 2, "same", 0, 1),
    ((1, 3, 4, 3, 5), (3, 3, 2), 6, 2, "same", None, 1),
    ((1, 3, 3, 3, 2), (2, 3, 3), 17, (1, 2, 3), "valid", (0, 1, 2), 1),
]

POOL_CASES = [
    ((2, 13, 5), 3, 2, "same"),
    ((1, 8, 17), (2,), None, "valid"),
    ((3, 9, 8, 19), (3, 2), (2, 1), "same"),
    ((1, 7, 7, 3), 2, 2, ((1, 0), (0, 1))),
    ((2, 5, 7, 6, 17), (2, 3, 2), None, "valid"),
    ((1, 6, 5, 4, 3), 3, (2, 1, 2), "same"),
    ((2, 4, 4, 4, 16), 2, 1, ((1, 0), (0, 1), (1, 1))),
]


def _conv_arrays(case, dtype, integers=False):
    x_shape, k, c_out, groups = case[:4]
    x = random_array(x_shape, dtype, 1, integers)
    w = random_array((*k, x_shape[-1] // groups, c_out), dtype, 2, integers)
    b = random_array((c_out,), dtype, 3, integers)
    return x, w, b


def _conv_params(case):
    _, _, _, groups, strides, padding, dilation = case
    return dict(strides=strides, padding=padding, dilation=dilation, groups=groups)


def _check_conv(case, dtype, exact=False):
    x, w, b = _conv_arrays(case, dtype, exact)
    p = _conv_params(case)
    ref = (lambda a: a.astype(np.float64)) if exact else (lambda a: a)
    context = f"conv_nd{case} {np.dtype(dtype)}"
    want_y = reference.conv_nd(ref(x), ref(w), ref(b), **p)
    assert_matches("y", ops.conv_nd(x, w, b, **p), want_y, np.dtype(dtype), exact, context)
    relu = reference.conv_nd(ref(x), ref(w), ref(b), activation="relu", **p)
    assert_matches("relu(y)", ops.conv_nd(x, w, b, activation="relu", **p), relu,
                   np.dtype(dtype), exact, context)
    dy = random_array(want_y.shape, dtype, 4, exact)
    got = ops.conv_nd_backward(dy, x, w, **p)
    want = reference.conv_nd_backward(ref(dy), ref(x), ref(w), **p)
    for name, g, e in zip(("dx", "dw", "db"), got, want):
        assert_matches(name, g, e, np.dtype(dtype), exact, context)


def _transpose_arrays(case, dtype, integers=False):
    x_shape, k, filters = case[:3]
    x = random_array(x_shape, dtype, 5, integers)
    w = random_array((*k, filters, x_shape[-1]), dtype, 6, integers)
    b = random_array((filters,), dtype, 7, integers)
    return x, w, b


def _transpose_params(case):
    _, _, _, strides, padding, output_padding, dilation = case
    return dict(strides=strides, padding=padding, output_padding=output_padding,
                dilation=dilation)


def _check_transpose(case, dtype, exact=False):
    x, w, b = _transpose_arrays(case, dtype, exact)
    p = _transpose_params(case)
    ref = (lambda a: a.astype(np.float64)) if exact else (lambda a: a)
    context = f"conv_transpose_nd{case} {np.dtype(dtype)}"
    want_y = reference.conv_transpose_nd(ref(x), ref(w), ref(b), **p)
    assert_matches("y", ops.conv_transpose_nd(x, w, b, **p), want_y, np.dtype(dtype), exact,
                   context)
    dy = random_array(want_y.shape, dtype, 8, exact)
    got = ops.conv_transpose_nd_backward(dy, x, w, **p)
    want = reference.conv_transpose_nd_backward(ref(dy), ref(x), ref(w), **p)
    for name, g, e in zip(("dx", "dw", "db"), got, want):
        assert_matches(name, g, e, np.dtype(dtype), exact, context)


def _check_pool(case, dtype, exact=False):
    x_shape, pool, strides, padding = case
    x = random_array(x_shape, dtype, 9, exact)
    ref = (lambda a: a.astype(np.float64)) if exact else (lambda a: a)
    context = f"pool_nd{case} {np.dtype(dtype)}"
    y, a = ops.max_pool_nd(x, pool, strides, padding)
    y_ref, a_ref = reference.max_pool_nd(ref(x), pool, strides, padding)
    # Max pooling picks elements: always exact, and its argmax equal.
    assert_matches("y", y, y_ref.astype(np.dtype(dtype)), np.dtype(dtype), True, context)
    assert_matches("argmax", a, a_ref, np.dtype(dtype), True, context)
    dy = random_array(y.shape, dtype, 10, exact)
    assert_matches("dx", ops.max_pool_nd_backward(dy, a, x.shape, pool, strides, padding),
                   reference.max_pool_nd_backward(ref(dy), a_ref, x.shape, pool, strides,
                                                  padding), np.dtype(dtype), exact, context)
    if not exact:  # a mean is not exact in binary
        q = ops.avg_pool_nd(x, pool, strides, padding)
        assert_matches("avg", q, reference.avg_pool_nd(x, pool, strides, padding),
                       np.dtype(dtype), False, context)
        assert_matches("avg dx", ops.avg_pool_nd_backward(q, x.shape, pool, strides, padding),
                       reference.avg_pool_nd_backward(q, x.shape, pool, strides, padding),
                       np.dtype(dtype), False, context)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_nd_matches_the_reference(case, dtype):
    _check_conv(case, dtype)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_nd_integer_inputs_are_exact(case):
    _check_conv(case, np.float32, exact=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose_nd_matches_the_reference(case, dtype):
    _check_transpose(case, dtype)


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose_nd_integer_inputs_are_exact(case):
    _check_transpose(case, np.float32, exact=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_nd_matches_the_reference(case, dtype):
    _check_pool(case, dtype)
    _check_pool(case, dtype, exact=True)


@pytest.mark.parametrize("isa", ISAS)
def test_every_simd_level_matches_the_reference(isa, restore_settings):
    fastconv.set_isa(isa)
    for case in CONV_CASES[::2]:
        _check_conv(case, np.float32)
    for case in TRANSPOSE_CASES[::3]:
        _check_transpose(case, np.float32)
    for case in POOL_CASES[::3]:
        _check_pool(case, np.float32)


def _all_outputs(dtype):
    """Every op's outputs on shapes that split unevenly between threads (more
    images than the weight gradient's chunks, and fewer)."""
    outs = []
    for n in (3, 19):
        for case in CONV_CASES[::2] + [CONV_CASES[7], CONV_CASES[9]]:
            case = ((n, *case[0][1:]), *case[1:])
            x, w, b = _conv_arrays(case, dtype)
            p = _conv_params(case)
            y = ops.conv_nd(x, w, b, **p)
            outs += [y, *ops.conv_nd_backward(y, x, w, **p)]
        for case in TRANSPOSE_CASES[::2]:
            case = ((n, *case[0][1:]), *case[1:])
            x, w, b = _transpose_arrays(case, dtype)
            p = _transpose_params(case)
            y = ops.conv_transpose_nd(x, w, b, **p)
            outs += [y, *ops.conv_transpose_nd_backward(y, x, w, **p)]
        for shape, pool, strides, padding in POOL_CASES[::2]:
            x = random_array((n, *shape[1:]), dtype, 11)
            y, a = ops.max_pool_nd(x, pool, strides, padding)
            q = ops.avg_pool_nd(x, pool, strides, padding)
            outs += [y, a, ops.max_pool_nd_backward(y, a, x.shape, pool, strides, padding), q,
                     ops.avg_pool_nd_backward(q, x.shape, pool, strides, padding)]
    return outs


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_1_2_3_threads(isa, dtype, restore_settings):
    fastconv.set_isa(isa)
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results[threads] = _all_outputs(dtype)
    for threads in (2, 3):
        for i, (a, b) in enumerate(zip(results[1], results[threads])):
            assert a.tobytes() == b.tobytes(), f"output {i} differs with {threads} threads"


def test_non_contiguous_and_read_only_inputs():
    x, w, b = _conv_arrays(CONV_CASES[5], np.float32)
    p = _conv_params(CONV_CASES[5])
    want = ops.conv_nd(x, w, b, **p)
    fortran = np.asfortranarray(x)
    frozen = w.copy()
    frozen.setflags(write=False)
    np.testing.assert_array_equal(ops.conv_nd(fortran, frozen, b, **p), want)
    wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), np.float32)
    wide[..., ::2] = x
    np.testing.assert_array_equal(ops.conv_nd(wide[..., ::2], w, b, **p), want)
    np.testing.assert_array_equal(x, _conv_arrays(CONV_CASES[5], np.float32)[0])


def test_empty_batch():
    x = np.zeros((0, 6, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 4), np.float32)
    y = ops.conv_nd(x, w, padding="same")
    assert y.shape == (0, 6, 5, 4)
    dx, dw, db = ops.conv_nd_backward(y, x, w, padding="same")
    assert dx.shape == x.shape and not dw.any() and not db.any()
    yt = ops.conv_transpose_nd(y, w, strides=2)
    assert yt.shape == (0, 13, 11, 3)
    p, a = ops.max_pool_nd(x, 2)
    assert p.shape == a.shape == (0, 3, 2, 3)


@settings(max_examples=25, deadline=None)
@given(rank=st.integers(1, 3), n=st.integers(1, 3), c_in=st.integers(1, 9),
       c_out=st.integers(1, 20), k=st.integers(1, 3), s=st.integers(1, 3),
       d=st.integers(1, 2), size=st.integers(1, 8), padding=st.sampled_from(["valid", "same"]),
       depthwise=st.booleans())
def test_random_convolutions(rank, n, c_in, c_out, k, s, d, size, padding, depthwise):
    groups, c_out = (c_in, c_in * (1 + c_out % 2)) if depthwise else (1, c_out)
    x_shape = (n, *(size + a for a in range(rank)), c_in)
    w_shape = (*(k,) * rank, c_in // groups, c_out)
    try:
        vnd.conv_nd_geometry(x_shape, w_shape, s, padding, d, groups)
    except ValueError:
        return  # a kernel larger than the input
    _check_conv((x_shape, (k,) * rank, c_out, groups, s, padding, d), np.float64)


@settings(max_examples=25, deadline=None)
@given(rank=st.integers(1, 3), c_in=st.integers(1, 9), filters=st.integers(1, 20),
       k=st.integers(1, 4), s=st.integers(1, 3), size=st.integers(1, 6),
       padding=st.sampled_from(["valid", "same"]), extra=st.integers(-1, 2))
def test_random_transposed_convolutions(rank, c_in, filters, k, s, size, padding, extra):
    output_padding = None if extra < 0 else min(extra, s - 1)
    x_shape = (2, *(size + a for a in range(rank)), c_in)
    w_shape = (*(k,) * rank, filters, c_in)
    try:
        vnd.conv_transpose_nd_geometry(x_shape, w_shape, s, padding, output_padding, 1)
    except ValueError:
        return  # an empty output
    _check_transpose((x_shape, (k,) * rank, filters, s, padding, output_padding, 1),
                     np.float64)

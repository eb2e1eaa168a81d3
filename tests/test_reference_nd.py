"""fastconv.reference's rank-generic ops (conv_nd, conv_transpose_nd,
max/avg_pool_nd and their gradients) against torch, brute-force loops,
hand-computed values, Keras' output sizes and finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastconv import reference as ref
from fastconv._validation_nd import conv_transpose_nd_geometry

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = 1e-10  # float64 against float64; the sums here are short


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal shape and dtype, values within TOL of the largest magnitude."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    diff = float(np.abs(got - want).max(initial=0))
    assert diff <= TOL * scale, f"{what}: largest difference {diff:.3g}"


def per_axis(value: object, rank: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def tf_pads(sizes: tuple[int, ...], extents: tuple[int, ...], strides: tuple[int, ...],
            padding: object) -> list[tuple[int, int]]:
    """(before, after) per axis, as TensorFlow and Keras pad, written out again here."""
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "causal":
        return [(e - 1, 0) for e in extents]
    if padding == "same":
        pads = []
        for n, e, s in zip(sizes, extents, strides):
            total = max((-(-n // s) - 1) * s + e - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    return [p if isinstance(p, (tuple, list)) else (p, p) for p in per_axis(padding, len(sizes))]


def torch_pad(t: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
    """Zero-pad the spatial axes of a channels-first tensor (F.pad lists the last axis first)."""
    return F.pad(t, [p for pair in reversed(pads) for p in pair])


def to_torch_kernel(w: torch.Tensor) -> torch.Tensor:
    """(*k, a, b) as torch's (b, a, *k)."""
    return w.movedim(-1, 0).movedim(-1, 1)


def leaf(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.tensor(a, requires_grad=True)


def torch_grads(y: torch.Tensor, dy: np.ndarray, *leaves: torch.Tensor) -> list[np.ndarray]:
    y.backward(torch.tensor(dy))
    return [t.grad.numpy() for t in leaves]


def random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------
# convolution against torch

CONV_CASES = [
    # x_shape, kernel_size, C_out, strides, padding, dilation, groups
    ((2, 9, 3), (3,), 5, 1, "valid", 1, 1),
    ((1, 10, 4), (2,), 6, 2, "same", 1, 2),
    ((2, 11, 3), (3,), 4, 1, "causal", 2, 1),
    ((1, 8, 3), (2,), 5, 3, "causal", 1, 1),
    ((1, 7, 5), (3,), 10, 3, "same", 1, 5),  # depthwise, multiplier 2
    ((1, 7, 3), (7,), 5, 1, "valid", 1, 1),  # kernel = input
    ((2, 8, 4), (3,), 4, 2, ((2, 1),), 2, 2),
    ((1, 9, 3), (4,), 3, 3, "same", 2, 3),  # depthwise, even dilated kernel
    ((2, 7, 6, 3), (3, 2), 5, (2, 1), "same", (1, 2), 1),
    ((1, 5, 7, 4), (5, 7), 6, 1, "valid", 1, 2),  # kernel = input
    ((1, 9, 8, 4), (3, 3), 8, 3, "same", 2, 4),  # depthwise, multiplier 2
    ((2, 6, 7, 6), (2, 3), 9, (1, 3), ((1, 2), (0, 3)), 1, 3),
    ((1, 5, 5, 3), (3, 3), 17, 2, 1, 1, 1),
    ((2, 5, 4, 6, 3), (2, 3, 2), 4, (1, 2, 3), "same", 1, 1),
    ((1, 4, 5, 5, 4), (2, 2, 3), 6, 2, "valid", (1, 2, 1), 2),
    ((1, 5, 3, 4, 3), (5, 3, 4), 5, 1, "valid", 1, 1),  # kernel = input
    ((1, 6, 5, 4, 2), (3, 2, 2), 4, (3, 1, 2), ((1, 1), (0, 2), (2, 0)), (2, 1, 1), 2),
    ((1, 7, 5, 6, 3), (3, 2, 3), 3, 3, "same", 2, 3),  # depthwise
]


@pytest.mark.parametrize("x_shape, k, c_out, strides, padding, dilation, groups", CONV_CASES)
def test_conv_nd_matches_torch(x_shape, k, c_out, strides, padding, dilation, groups):
    rank = len(k)
    x, b = random(x_shape, 1), random((c_out,), 3)
    w = random((*k, x_shape[-1] // groups, c_out), 2)
    hyper = {"strides": strides, "padding": padding, "dilation": dilation, "groups": groups}
    y = ref.conv_nd(x, w, b, **hyper)

    steps, dils = per_axis(strides, rank), per_axis(dilation, rank)
    extents = tuple((kk - 1) * d + 1 for kk, d in zip(k, dils))
    pads = tf_pads(x_shape[1:-1], extents, steps, padding)
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    yt = conv(torch_pad(xt.movedim(-1, 1), pads), to_torch_kernel(wt), bt, stride=steps,
              dilation=dils, groups=groups).movedim(1, -1)
    assert_close(y, yt.detach().numpy(), "y")
    assert_close(ref.conv_nd(x, w, b, **hyper, activation="relu"), np.maximum(y, 0), "relu(y)")

    dy = random(y.shape, 4)
    for got, want, name in zip(ref.conv_nd_backward(dy, x, w, **hyper),
                               torch_grads(yt, dy, xt, wt, bt), ("dx", "dw", "db")):
        assert_close(got, want, name)


@pytest.mark.parametrize("need", list(itertools.product([False, True], repeat=3)))
def test_conv_nd_backward_returns_only_what_is_needed(need):
    x, w, dy = random((2, 6, 5, 4), 1), random((3, 2, 2, 6), 2), random((2, 3, 5, 6), 3)
    hyper = {"strides": (2, 1), "padding": "same", "groups": 2}
    full = ref.conv_nd_backward(dy, x, w, **hyper)
    flags = dict(zip(("need_dx", "need_dw", "need_db"), need))
    for got, want, wanted in zip(ref.conv_nd_backward(dy, x, w, **hyper, **flags), full, need):
        assert (got is None) == (not wanted)
        if wanted:
            np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------
# transposed convolution against torch


def keras_length(size: int, kernel: int, stride: int, dilation: int, padding: str,
                 output_padding: int | None) -> int:
    """Keras' deconv_output_length, written out again here."""
    k = (kernel - 1) * dilation + 1
    if output_padding is None:
        return size * stride + max(k - stride, 0) if padding == "valid" else size * stride
    pad = k // 2 if padding == "same" else 0
    return (size - 1) * stride + k - 2 * pad + output_padding


TRANSPOSE_CASES = [
    # x_shape, kernel_size, filters, strides, padding, output_padding, dilation
    ((2, 5, 3), (3,), 4, 2, "valid", None, 1),
    ((1, 4, 2), (4,), 3, 3, "same", None, 1),
    ((1, 4, 3), (3,), 2, 3, "same", 2, 1),
    ((2, 3, 2), (2,), 3, 2, "valid", 1, 2),
    ((1, 5, 2), (1,), 3, 3, "valid", None, 1),  # kernel shorter than the stride
    ((1, 4, 2), (2,), 2, 2, "same", 1, 1),
    ((1, 6, 3), (3,), 5, 1, "same", 0, 2),
    ((2, 4, 3, 3), (3, 2), 5, (2, 1), "same", None, 1),
    ((1, 3, 4, 2), (3, 3), 3, (2, 3), "valid", (1, 2), 1),
    ((1, 4, 4, 3), (2, 3), 2, 1, "same", None, (2, 1)),
    ((1, 3, 3, 2), (3, 3), 4, 3, "same", (1, 2), 1),
    ((1, 3, 2, 4, 2), (2, 3, 2), 3, (2, 1, 3), "same", None, 1),
    ((2, 2, 3, 2, 3), (3, 2, 2), 2, 2, "valid", (1, 0, 1), (1, 2, 1)),
    # "same" with an even kernel and output_padding 0: Keras 3's length
    # (x - 1) * stride, which TensorFlow refuses and the other backends pad.
    ((1, 3, 2), (2,), 2, 2, "same", 0, 1),
    ((1, 3, 4, 2), (2, 4), 3, 2, "same", (0, 1), 1),
]


@pytest.mark.parametrize("x_shape, k, filters, strides, padding, output_padding, dilation",
                         TRANSPOSE_CASES)
def test_conv_transpose_nd_matches_torch(x_shape, k, filters, strides, padding, output_padding,
                                         dilation):
    rank = len(k)
    x, b = random(x_shape, 1), random((filters,), 3)
    w = random((*k, filters, x_shape[-1]), 2)
    hyper = {"strides": strides, "padding": padding, "output_padding": output_padding,
             "dilation": dilation}
    y = ref.conv_transpose_nd(x, w, b, **hyper)
    steps, dils = per_axis(strides, rank), per_axis(dilation, rank)
    extra = per_axis(output_padding, rank)
    out = tuple(keras_length(*args, padding, e)
                for *args, e in zip(x_shape[1:-1], k, steps, dils, extra))
    assert y.shape == (x_shape[0], *out, filters)

    # Output q is torch's full (unpadded) output at q + pad_before, or zero
    # past its end.
    g = conv_transpose_nd_geometry(x.shape, w.shape, strides, padding, output_padding, dilation)
    before = (g.pad_front, g.pad_top, g.pad_left)[3 - rank:]
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    full = conv_t(xt.movedim(-1, 1), to_torch_kernel(wt), stride=steps, dilation=dils)
    full = torch_pad(full, [(0, max(p + o - n, 0))
                            for p, o, n in zip(before, out, full.shape[2:])])
    crop = tuple(slice(p, p + o) for p, o in zip(before, out))
    yt = full[(slice(None), slice(None), *crop)].movedim(1, -1) + bt
    assert_close(y, yt.detach().numpy(), "y")

    dy = random(y.shape, 4)
    for got, want, name in zip(ref.conv_transpose_nd_backward(dy, x, w, **hyper),
                               torch_grads(yt, dy, xt, wt, bt), ("dx", "dw", "db")):
        assert_close(got, want, name)


# ----------------------------------------------------------------------------
# pooling against brute-force loops


def brute_pool(x: np.ndarray, pool_size: object, strides: object, padding: object
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One window at a time: (max, argmax, mean, dx of max, dx of mean) for dy = 1."""
    rank = x.ndim - 2
    sizes, window = x.shape[1:-1], per_axis(pool_size, rank)
    steps = window if strides is None else per_axis(strides, rank)
    pads = tf_pads(sizes, window, steps, padding)
    outs = [(n + p + q - k) // s + 1 for n, k, s, (p, q) in zip(sizes, window, steps, pads)]
    n, c = x.shape[0], x.shape[-1]
    y_max, y_mean = np.zeros((n, *outs, c)), np.zeros((n, *outs, c))
    argmax = np.zeros((n, *outs, c), dtype=np.int32)
    dx_max, dx_mean = np.zeros(x.shape), np.zeros(x.shape)
    for o in itertools.product(*map(range, outs)):
        ranges = [[i for i in range(a * s - p, a * s - p + k) if 0 <= i < size]
                  for a, s, (p, _), k, size in zip(o, steps, pads, window, sizes)]
        positions = list(itertools.product(*ranges))  # row-major window order
        values = np.stack([x[(slice(None), *pos)] for pos in positions])  # (T, N, C)
        first = values.argmax(axis=0)
        y_max[(slice(None), *o)] = values.max(axis=0)
        y_mean[(slice(None), *o)] = values.mean(axis=0)
        for i, j in itertools.product(range(n), range(c)):
            pos = positions[first[i, j]]
            argmax[(i, *o, j)] = np.ravel_multi_index(pos, sizes)
            dx_max[(i, *pos, j)] += 1
        for pos in positions:
            dx_mean[(slice(None), *pos)] += 1 / len(positions)
    return y_max, argmax, y_mean, dx_max, dx_mean


POOL_CASES = [
    # x_shape, pool_size, strides, padding
    ((2, 9, 3), 3, None, "valid"),
    ((1, 10, 2), 4, 3, "same"),
    ((1, 7, 3), 3, 2, ((2, 1),)),
    ((1, 5, 2), 5, 1, "same"),
    ((2, 7, 6, 3), (3, 2), (2, 1), "same"),
    ((1, 5, 5, 2), 2, None, "valid"),
    ((1, 6, 7, 2), 3, 2, ((1, 2), (0, 1))),
    ((1, 4, 5, 3), (4, 5), 1, "valid"),  # window = input
    ((1, 5, 4, 6, 2), 2, None, "same"),
    ((2, 4, 5, 3, 2), (3, 2, 2), (1, 2, 1), "same"),
    ((1, 5, 4, 4, 3), (2, 3, 2), (2, 1, 2), ((1, 0), (1, 1), (0, 1))),
]


@pytest.mark.parametrize("x_shape, pool_size, strides, padding", POOL_CASES)
def test_pooling_matches_brute_force(x_shape, pool_size, strides, padding):
    x = random(x_shape, 1)
    y_max, argmax, y_mean, dx_max, dx_mean = brute_pool(x, pool_size, strides, padding)
    y, got_argmax = ref.max_pool_nd(x, pool_size, strides, padding)
    assert_close(y, y_max, "max")
    assert got_argmax.dtype == np.int32
    np.testing.assert_array_equal(got_argmax, argmax)
    assert_close(ref.avg_pool_nd(x, pool_size, strides, padding), y_mean, "mean")

    ones = np.ones(y.shape)
    assert_close(ref.max_pool_nd_backward(ones, got_argmax, x.shape, pool_size, strides, padding),
                 dx_max, "dx of max")
    assert_close(ref.avg_pool_nd_backward(ones, x.shape, pool_size, strides, padding), dx_mean,
                 "dx of mean")


# ----------------------------------------------------------------------------
# hand-computed values


def seq(values: list[float]) -> np.ndarray:
    """A (1, W, 1) sequence."""
    return np.array(values, dtype=np.float64)[None, :, None]


def test_causal_dilated_conv1d_by_hand():
    # Dilation 2 pads (2 - 1) * 2 = 2 zeros before: y[o] = 1 * x[o - 2] + 10 * x[o].
    y = ref.conv_nd(seq([1, 2, 3, 4]), seq([1, 10])[0, :, :, None], padding="causal", dilation=2)
    np.testing.assert_array_equal(y[0, :, 0], [10, 20, 31, 42])
    y = ref.conv_nd(seq([1, 2, 3, 4]), seq([1, 10])[0, :, :, None], padding="causal")
    np.testing.assert_array_equal(y[0, :, 0], [10, 21, 32, 43])


def test_conv_transpose1d_stride2_by_hand():
    x, w = seq([1, 2, 3]), seq([1, 10, 100])[0, :, :, None]
    # Each x[o] adds x[o] * w to y[2 o : 2 o + 3].
    y = ref.conv_transpose_nd(x, w, strides=2)
    np.testing.assert_array_equal(y[0, :, 0], [1, 10, 102, 20, 203, 30, 300])
    # "same": length 3 * 2 = 6, the padding (one element in all) after.
    y = ref.conv_transpose_nd(x, w, strides=2, padding="same")
    np.testing.assert_array_equal(y[0, :, 0], [1, 10, 102, 20, 203, 30])
    # output_padding=0: length (3 - 1) * 2 + 3 - 2 * 1 = 5, one element cut each side.
    y = ref.conv_transpose_nd(x, w, strides=2, padding="same", output_padding=0)
    np.testing.assert_array_equal(y[0, :, 0], [10, 102, 20, 203, 30])


def test_conv_transpose_backward_by_hand():
    x, w = seq([1, 2]), seq([1, 10])[0, :, :, None]  # y = [1, 10, 2, 20], stride 2
    dy = seq([1, 2, 3, 4])
    dx, dw, db = ref.conv_transpose_nd_backward(dy, x, w, strides=2)
    np.testing.assert_array_equal(dx[0, :, 0], [1 + 20, 3 + 40])
    np.testing.assert_array_equal(dw[:, 0, 0], [1 * 1 + 3 * 2, 2 * 1 + 4 * 2])
    np.testing.assert_array_equal(db, [10])


def test_grouped_and_depthwise_channels_by_hand():
    x = np.array([1.0, 2, 3, 4])[None, None, :]  # (1, 1, 4): one position, 4 channels
    w = np.array([[10.0, 100], [1000, 10000]])[None]  # (1, 2, 2): 2 groups of 2 -> 1
    # Output 0 reads channels 0, 1; output 1 reads channels 2, 3.
    np.testing.assert_array_equal(ref.conv_nd(x, w, groups=2)[0, 0],
                                  [1 * 10 + 2 * 1000, 3 * 100 + 4 * 10000])
    # Depthwise, multiplier 2: w (1, C_in, 2) as (1, 1, C_in * 2); output c * 2 + j.
    m = np.arange(1.0, 9.0).reshape(1, 4, 2)
    y = ref.conv_nd(x, m.reshape(1, 1, 8), groups=4)
    np.testing.assert_array_equal(y[0, 0], (x[0, 0, :, None] * m[0]).ravel())


def test_pooling_by_hand():
    x = seq([1, 2, 3, 4, 5])
    # "same", stride 2: 3 windows, the padding element after: [1, 2], [3, 4], [5].
    np.testing.assert_array_equal(ref.avg_pool_nd(x, 2, padding="same")[0, :, 0], [1.5, 3.5, 5])
    y, argmax = ref.max_pool_nd(x, 2, padding="same")
    np.testing.assert_array_equal(y[0, :, 0], [2, 4, 5])
    np.testing.assert_array_equal(argmax[0, :, 0], [1, 3, 4])
    cube = np.arange(8.0).reshape(1, 2, 2, 2, 1)
    y, argmax = ref.max_pool_nd(cube, 2)
    assert y.shape == argmax.shape == (1, 1, 1, 1, 1)
    assert (y.item(), argmax.item()) == (7, 7)  # (1 * 2 + 1) * 2 + 1


# ----------------------------------------------------------------------------
# output shapes: Keras' formulas, by hand


@pytest.mark.parametrize("x_shape, k, strides, padding, output_padding, dilation, out", [
    ((1, 5, 2), (3,), 2, "valid", None, 1, (11,)),  # 5 * 2 + (3 - 2)
    ((1, 4, 2), (2,), 3, "valid", None, 1, (12,)),  # 4 * 3 + 0
    ((1, 5, 2), (3,), 2, "same", 1, 1, (10,)),  # 4 * 2 + 3 - 2 * 1 + 1
    ((1, 5, 2), (3,), 2, "valid", 1, 1, (12,)),  # 4 * 2 + 3 + 1
    ((1, 4, 5, 2), (3, 4), (2, 3), "valid", (1, 2), 1, (10, 18)),
    ((1, 4, 5, 2), (3, 3), 2, "same", None, 1, (8, 10)),
    ((1, 4, 5, 2), (5, 3), 1, "same", 0, (2, 1), (4, 5)),  # k_eff 9: 3 + 9 - 8; 4 + 3 - 2
    ((1, 2, 3, 4, 2), (3, 2, 2), (1, 2, 3), "same", (0, 1, 2), 1, (2, 5, 11)),
])
def test_conv_transpose_output_shape_is_keras(x_shape, k, strides, padding, output_padding,
                                              dilation, out):
    y = ref.conv_transpose_nd(np.ones(x_shape), np.ones((*k, 3, x_shape[-1])), None, strides,
                              padding, output_padding, dilation)
    assert y.shape == (x_shape[0], *out, 3)


@pytest.mark.parametrize("x_shape, k, strides, padding, dilation, out", [
    ((1, 7, 2), (3,), 3, "same", 1, (3,)),
    ((1, 10, 2), (3,), 2, "valid", 2, (3,)),  # (10 - 5) // 2 + 1
    ((1, 9, 2), (4,), 2, "causal", 1, (5,)),  # (9 + 3 - 4) // 2 + 1
    ((1, 7, 8, 9, 2), (2, 3, 4), (2, 3, 4), "same", 1, (4, 3, 3)),
    ((1, 6, 5, 2), (2, 2), 2, ((1, 0), (3, 2)), 1, (3, 5)),  # (7 - 2) // 2 + 1, (10 - 2) // 2 + 1
])
def test_conv_output_shape_is_keras(x_shape, k, strides, padding, dilation, out):
    y = ref.conv_nd(np.ones(x_shape), np.ones((*k, x_shape[-1], 3)), None, strides, padding,
                    dilation)
    assert y.shape == (x_shape[0], *out, 3)


def test_pool_output_shape_is_keras():
    assert ref.avg_pool_nd(np.ones((1, 7, 2)), 3, 2, "same").shape == (1, 4, 2)
    assert ref.avg_pool_nd(np.ones((1, 7, 2)), 3, 2).shape == (1, 3, 2)
    assert ref.max_pool_nd(np.ones((2, 5, 6, 7, 1)), (2, 3, 4))[0].shape == (2, 2, 2, 1, 1)


# ----------------------------------------------------------------------------
# gradients against central finite differences
#
# Every op is piecewise linear in its inputs, so central differences are exact
# up to the float64 rounding of the loss.

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


def assert_gradients(forward, backward, arrays: list[np.ndarray]) -> None:
    """backward(r, *arrays) against the finite differences of sum(forward(*arrays) * r)."""
    r = random(forward(*arrays).shape, 9)
    for got, a in zip(backward(r, *arrays), arrays):
        want = numerical_gradient(lambda: float(np.sum(forward(*arrays) * r)), a)
        np.testing.assert_allclose(got, want, rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("x_shape, k, c_out, strides, padding, dilation, groups", [
    ((2, 6, 4), (3,), 2, 2, "causal", 2, 2),
    ((1, 5, 4, 2), (2, 3), 4, (2, 1), "same", (1, 2), 2),
    ((1, 3, 4, 3, 2), (2, 2, 2), 3, (1, 2, 1), ((1, 0), (0, 1), (1, 1)), 1, 1),
])
def test_conv_nd_gradients_match_finite_differences(x_shape, k, c_out, strides, padding,
                                                    dilation, groups):
    hyper = {"strides": strides, "padding": padding, "dilation": dilation, "groups": groups}
    arrays = [random(x_shape, 1), random((*k, x_shape[-1] // groups, c_out), 2),
              random((c_out,), 3)]
    assert_gradients(lambda x, w, b: ref.conv_nd(x, w, b, **hyper),
                     lambda r, x, w, b: ref.conv_nd_backward(r, x, w, **hyper), arrays)


@pytest.mark.parametrize("x_shape, k, filters, strides, padding, output_padding, dilation", [
    ((2, 3, 2), (3,), 2, 2, "same", 1, 1),
    ((1, 3, 2, 2), (2, 3), 2, (2, 1), "valid", None, (1, 2)),
    ((1, 2, 2, 3, 1), (2, 2, 3), 2, (1, 2, 2), "same", None, 1),
])
def test_conv_transpose_nd_gradients_match_finite_differences(x_shape, k, filters, strides,
                                                              padding, output_padding, dilation):
    hyper = {"strides": strides, "padding": padding, "output_padding": output_padding,
             "dilation": dilation}
    arrays = [random(x_shape, 1), random((*k, filters, x_shape[-1]), 2), random((filters,), 3)]
    assert_gradients(lambda x, w, b: ref.conv_transpose_nd(x, w, b, **hyper),
                     lambda r, x, w, b: ref.conv_transpose_nd_backward(r, x, w, **hyper), arrays)


@pytest.mark.parametrize("x_shape, pool_size, strides, padding", [
    ((2, 7, 2), 3, 2, "same"),
    ((1, 5, 4, 2), (2, 3), 1, ((1, 0), (1, 1))),
    ((1, 3, 4, 3, 2), 2, (1, 2, 1), "same"),
])
def test_pool_nd_gradients_match_finite_differences(x_shape, pool_size, strides, padding):
    # Distinct values 0.01 apart, far beyond the step, so no maximum changes.
    x = np.random.default_rng(0).permutation(np.prod(x_shape)).reshape(x_shape) * 0.01
    _, argmax = ref.max_pool_nd(x, pool_size, strides, padding)
    assert_gradients(
        lambda x: ref.max_pool_nd(x, pool_size, strides, padding)[0],
        lambda r, x: [ref.max_pool_nd_backward(r, argmax, x.shape, pool_size, strides, padding)],
        [x])
    assert_gradients(
        lambda x: ref.avg_pool_nd(x, pool_size, strides, padding),
        lambda r, x: [ref.avg_pool_nd_backward(r, x.shape, pool_size, strides, padding)], [x])


# ----------------------------------------------------------------------------
# the maximum: ties, NaN, -inf


def test_max_pool_ties_go_to_the_first_in_window_order():
    _, argmax = ref.max_pool_nd(seq([3, 5, 5, 1]), 4)
    assert argmax.item() == 1
    _, argmax = ref.max_pool_nd(np.array([[1.0, 7], [7, 7]])[None, :, :, None], 2)
    assert argmax.item() == 1  # (0, 1) before (1, 0): rows first
    cube = np.zeros((1, 2, 2, 2, 1))
    cube[0, 1, 0, 0] = cube[0, 0, 1, 1] = 9
    _, argmax = ref.max_pool_nd(cube, 2)
    assert argmax.item() == 3  # (0, 1, 1) before (1, 0, 0): depth first
    _, argmax = ref.max_pool_nd(np.ones((1, 2, 3, 2, 1)), 2, 1)
    np.testing.assert_array_equal(argmax[0, 0, :, 0, 0], [0, 2])  # window corners


def test_max_pool_nan_wins_at_its_first_position():
    y, argmax = ref.max_pool_nd(seq([1, np.nan, 5, np.nan, 9, 2, np.nan]), 4, 3)
    assert np.isnan(y[0, :, 0]).all()
    np.testing.assert_array_equal(argmax[0, :, 0], [1, 3])
    cube = np.ones((1, 2, 2, 2, 1))
    cube[0, 1, 1, 0] = cube[0, 1, 0, 1] = np.nan
    y, argmax = ref.max_pool_nd(cube, 2)
    assert np.isnan(y.item()) and argmax.item() == 5  # (1, 0, 1) before (1, 1, 0)


def test_max_pool_padding_never_wins_over_minus_infinity():
    y, argmax = ref.max_pool_nd(np.full((1, 3, 3, 1), -np.inf), 2, 2, "same")
    assert (y == -np.inf).all()
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[0, 2], [6, 8]])


def test_max_pool_backward_accumulates_overlapping_windows():
    x = seq([0, 9, 0, 0])
    _, argmax = ref.max_pool_nd(x, 2, 1)  # the 9 wins windows 0 and 1, the first 0 window 2
    dx = ref.max_pool_nd_backward(np.array([1.0, 2, 4])[None, :, None], argmax, x.shape, 2, 1)
    np.testing.assert_array_equal(dx[0, :, 0], [0, 3, 4, 0])


def test_huge_same_window_pools_everything():
    x = random((1, 3, 4, 2, 2), 0)
    y, argmax = ref.max_pool_nd(x, 2**31 - 1, 1, "same")
    flat = x.reshape(1, 24, 2)
    np.testing.assert_array_equal(y, np.broadcast_to(flat.max(axis=1)[:, None, None, None],
                                                     y.shape))
    np.testing.assert_array_equal(argmax[0, 1, 2, 0], flat[0].argmax(axis=0))


# ----------------------------------------------------------------------------
# dtypes and empty batches


def test_float32_in_float32_out():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((2, 2, 3, 4))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    outputs = [
        (ref.conv_nd(x32, w32, groups=1), ref.conv_nd(x, w, groups=1)),
        (ref.conv_transpose_nd(x32, w32[..., :3], strides=2),
         ref.conv_transpose_nd(x, w[..., :3], strides=2)),
        (ref.max_pool_nd(x32, 2, 1, "same")[0], ref.max_pool_nd(x, 2, 1, "same")[0]),
        (ref.avg_pool_nd(x32, 2, 1, "same"), ref.avg_pool_nd(x, 2, 1, "same")),
    ]
    dy = rng.standard_normal((2, 4, 3, 4))
    outputs += zip(ref.conv_nd_backward(dy.astype(np.float32), x32, w32),
                   ref.conv_nd_backward(dy, x, w))
    for got, want in outputs:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_empty_batch():
    x = np.zeros((0, 5, 3))
    assert ref.conv_nd(x, np.ones((2, 3, 4))).shape == (0, 4, 4)
    dx, dw, db = ref.conv_nd_backward(np.zeros((0, 4, 4)), x, np.ones((2, 3, 4)))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)
    assert ref.conv_transpose_nd(x, np.ones((2, 4, 3)), strides=2).shape == (0, 10, 4)
    assert ref.avg_pool_nd(x, 2, padding="same").shape == (0, 3, 3)


# ----------------------------------------------------------------------------
# bad arguments

X1, W1 = np.ones((1, 6, 4)), np.ones((3, 4, 2))
X2, W2 = np.ones((1, 5, 5, 4)), np.ones((3, 3, 4, 2))
XT, WT = np.ones((1, 4, 4, 2)), np.ones((3, 3, 5, 2))  # transposed: (*k, filters, C_in)


@pytest.mark.parametrize("call, error, match", [
    (lambda: ref.conv_nd(np.ones((2, 3)), np.ones((2, 3))), ValueError, "`x`"),  # rank 0
    (lambda: ref.conv_nd(np.ones((1, 2, 2, 2, 2, 1)), np.ones((1, 1, 1, 1, 1, 1))),
     ValueError, "`x`"),  # rank 4
    (lambda: ref.max_pool_nd(np.ones((4, 4)), 2), ValueError, "`x`"),
    (lambda: ref.conv_nd(X2, W1), ValueError, "`w`"),
    (lambda: ref.conv_nd(X2, np.ones((3, 3, 2, 3)), groups=2), ValueError, "`groups`"),
    (lambda: ref.conv_nd(X2, np.ones((3, 3, 1, 2)), groups=3), ValueError, "`groups`"),
    (lambda: ref.conv_nd(X2, W2, groups=0), ValueError, "`groups`"),
    (lambda: ref.conv_nd(X2, W2, groups=1.0), TypeError, "`groups`"),
    (lambda: ref.conv_nd(X2, np.ones((3, 3, 3, 2))), ValueError, "Channel mismatch"),
    (lambda: ref.conv_nd(X2, W2, padding="causal"), ValueError, "`padding`.*rank-1"),
    (lambda: ref.conv_nd(X2, W2, padding="full"), ValueError, "`padding`"),
    (lambda: ref.conv_nd(X2, W2, strides=(1, 1, 1)), TypeError, "`strides`"),
    (lambda: ref.conv_nd(X2, W2, dilation=0), ValueError, "`dilation`"),
    (lambda: ref.conv_nd(X1, np.ones((7, 4, 2))), ValueError, "`w`"),
    (lambda: ref.conv_nd(X1, W1, np.ones(3)), ValueError, "`b`"),
    (lambda: ref.conv_nd(X1, W1, activation="tanh"), ValueError, "`activation`"),
    (lambda: ref.conv_nd(X1.astype(np.float32), W1), TypeError, "x=float32, w=float64"),
    (lambda: ref.conv_nd(X1.astype(int), W1), TypeError, "`x`"),
    (lambda: ref.conv_nd_backward(np.ones((1, 4, 3)), X1, W1), ValueError, "`dy`"),
    (lambda: ref.conv_nd_backward(np.ones((1, 4, 2), np.float32), X1, W1), TypeError, "dy="),
    (lambda: ref.conv_nd_backward(np.ones((1, 4, 2)), X1, W1, need_dw=1), TypeError,
     "`need_dw`"),
    (lambda: ref.conv_transpose_nd(XT, WT, strides=2, output_padding=2), ValueError,
     "`output_padding`"),
    (lambda: ref.conv_transpose_nd(XT, WT, output_padding=(0, 1)), ValueError,
     "`output_padding`"),
    (lambda: ref.conv_transpose_nd(XT, WT, output_padding=(0, 0, 0)), TypeError,
     "`output_padding`"),
    (lambda: ref.conv_transpose_nd(XT, WT[..., :1]), ValueError, "Channel mismatch"),
    (lambda: ref.conv_transpose_nd(XT, WT, padding=1), ValueError, "`padding`"),
    (lambda: ref.conv_transpose_nd(np.ones((1, 4, 2)), WT[0], padding="causal"), ValueError,
     "`padding`"),
    (lambda: ref.conv_transpose_nd(XT, WT, np.ones(2)), ValueError, "`b`"),
    (lambda: ref.conv_transpose_nd_backward(np.ones((1, 6, 5, 5)), XT, WT), ValueError, "`dy`"),
    (lambda: ref.conv_transpose_nd(XT, WT.astype(np.float32)), TypeError, "w=float32"),
    (lambda: ref.max_pool_nd(X2, 0), ValueError, "`pool_size`"),
    (lambda: ref.max_pool_nd(X2, (2, 2, 2)), TypeError, "`pool_size`"),
    (lambda: ref.max_pool_nd(X2, 2, padding=2), ValueError, "`padding`"),
    (lambda: ref.avg_pool_nd(X1, 2, padding="causal"), ValueError, "`padding`"),
    (lambda: ref.max_pool_nd(X1, 7), ValueError, "`pool_size`"),
    (lambda: ref.avg_pool_nd_backward(np.ones((1, 2, 4)), X1.shape, 2), ValueError, "`dy`"),
    (lambda: ref.avg_pool_nd_backward(np.ones((1, 3, 4)), (1, 6), 2), TypeError, "`x_shape`"),
    (lambda: ref.max_pool_nd_backward(np.ones((1, 3, 4)), np.full((1, 3, 4), 6, np.int32),
                                      X1.shape, 2), ValueError, "`argmax`"),
    (lambda: ref.max_pool_nd_backward(np.ones((1, 3, 4)), np.full((1, 3, 4), -1, np.int32),
                                      X1.shape, 2), ValueError, "`argmax`"),
    (lambda: ref.max_pool_nd_backward(np.ones((1, 3, 4)), np.zeros((1, 3, 4), np.int64),
                                      X1.shape, 2), TypeError, "`argmax`"),
    (lambda: ref.max_pool_nd_backward(np.ones((1, 3, 4)), np.zeros((1, 2, 4), np.int32),
                                      X1.shape, 2), ValueError, "`argmax`|`dy`"),
])
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()

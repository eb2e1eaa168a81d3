"""The resampling ops (global pooling, upsampling, zero padding, cropping):
fastconv.ops against fastconv.reference, finite differences, PyTorch and
hand-computed values; ties, NaN, layouts, empty batches and thread counts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_matches, random_array, use_isa
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import ops, reference
from fastconv._kernels import global_pool as global_pool_kernels
from fastconv._kernels import margins as margins_kernels
from fastconv._kernels import resize as resize_kernels

DTYPES = [np.float32, np.float64]


def check_resample(op: str, x: np.ndarray, *, dy: np.ndarray | None = None, layout=None,
                   exact: bool = False, **params: object) -> dict[str, np.ndarray]:
    """``op`` and its gradient in fastconv.ops against fastconv.reference.

    ``exact``: x holds small ints and the reference runs in float64; ops must
    match it exactly. ``layout`` is applied to every array ops receives.
    Returns the ops outputs by name (y, argmax, dx).
    """
    dtype = x.dtype
    context = f"{op}({dtype}, x {x.shape}, {params})"
    for_ops = (lambda a: a) if layout is None else layout
    for_ref = (lambda a: a.astype(np.float64)) if exact else (lambda a: a)
    copy = x.copy()
    got, want = {}, {}
    if op == "global_max_pool":
        got["y"], got["argmax"] = ops.global_max_pool(for_ops(x))
        want["y"], want["argmax"] = reference.global_max_pool(for_ref(x))
    else:
        got["y"] = getattr(ops, op)(for_ops(x), **params)
        want["y"] = getattr(reference, op)(for_ref(x), **params)
    if dy is None:
        dy = random_array(want["y"].shape, dtype, 4, integers=exact)
    if op == "global_max_pool":
        # Both backends route dy through the reference's argmax, so that a
        # wrong argmax (reported above) does not also show up as a wrong dx.
        args = (want["argmax"], x.shape)
    elif op in ("global_avg_pool", "upsample", "crop"):
        args = (x.shape,)
    else:
        args = ()
    backward = op + "_backward"
    got["dx"] = getattr(ops, backward)(for_ops(dy), *[for_ops(a) if isinstance(a, np.ndarray)
                                                      else a for a in args], **params)
    want["dx"] = getattr(reference, backward)(for_ref(dy), *args, **params)
    for name, expected in want.items():
        assert_matches(name, got[name], expected, dtype, exact, context)
    np.testing.assert_array_equal(x, copy, err_msg=f"{context}: an op modified x")
    return got


# ----------------------------------------------------------------------------
# parameter grids: odd sizes, batch 1, channels around the vector widths

GLOBAL_SHAPES = [
    (1, 7, 3), (3, 5, 17), (2, 1, 64),
    (1, 5, 7, 16), (3, 3, 4, 33), (1, 1, 1, 1), (2, 9, 2, 5),
    (2, 3, 4, 5, 19), (1, 1, 1, 1, 64), (1, 2, 3, 2, 32),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["global_avg_pool", "global_max_pool"])
@pytest.mark.parametrize("shape", GLOBAL_SHAPES, ids=str)
def test_global_pool(op, shape, dtype, isa):
    check_resample(op, random_array(shape, dtype, 1))


UPSAMPLE_CASES = [
    # shape, size, interpolation
    ((1, 7, 3), 2, "nearest"),
    ((3, 5, 17), (3,), "nearest"),
    ((1, 5, 7, 16), (2, 3), "nearest"),
    ((2, 3, 1, 33), 1, "nearest"),
    ((1, 3, 4, 5, 19), (2, 1, 3), "nearest"),
    ((2, 1, 2, 3, 1), 2, "NEAREST"),
    ((1, 5, 7, 3), 2, "bilinear"),
    ((3, 4, 3, 17), (3, 2), "bilinear"),
    ((1, 2, 2, 16), (4, 4), "bilinear"),
    ((2, 1, 5, 33), (2, 5), "bilinear"),
    ((1, 3, 1, 64), (1, 3), "Bilinear"),
    ((1, 1, 1, 5), (3, 2), "bilinear"),
    ((1, 6, 5, 19), 1, "bilinear"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size, interpolation", UPSAMPLE_CASES, ids=str)
def test_upsample(shape, size, interpolation, dtype, isa):
    check_resample("upsample", random_array(shape, dtype, 1), size=size,
                   interpolation=interpolation)


PAD_CASES = [
    # shape, padding (or cropping)
    ((1, 7, 3), 2),
    ((3, 5, 17), (1, 3)),
    ((3, 5, 17), ((0, 2),)),
    ((2, 6, 2), (4,)),
    ((1, 5, 7, 16), 1),
    ((2, 5, 7, 3), (2, 0)),
    ((1, 6, 7, 33), ((1, 2), (0, 3))),
    ((1, 5, 7, 3), ((1, 0), 2)),
    ((1, 4, 5, 6, 19), 1),
    ((2, 3, 4, 5, 2), (0, 1, 2)),
    ((1, 5, 6, 7, 3), ((1, 2), (0, 0), (2, 1))),
    ((2, 3, 3, 3, 1), 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, padding", PAD_CASES, ids=str)
def test_zero_pad(shape, padding, dtype):
    check_resample("zero_pad", random_array(shape, dtype, 1), padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, cropping", PAD_CASES, ids=str)
def test_crop(shape, cropping, dtype):
    # The same amounts as the padding cases, on inputs large enough to keep
    # something: each spatial size grows by 6.
    grown = (shape[0], *(d + 6 for d in shape[1:-1]), shape[-1])
    check_resample("crop", random_array(grown, dtype, 1), cropping=cropping)


@settings(max_examples=120, deadline=None)
@given(
    op=st.sampled_from(["global_avg_pool", "global_max_pool", "upsample", "upsample_bilinear",
                        "zero_pad", "crop"]),
    n=st.integers(0, 3), rank=st.integers(1, 3), data=st.data(),
    c=st.one_of(st.integers(1, 9), st.sampled_from([15, 16, 17, 31, 32, 33, 64, 70])),
    dtype=st.sampled_from(DTYPES), isa=st.sampled_from(fastconv.supported_isas()),
)
def test_random_shapes(op, n, rank, data, c, dtype, isa):
    if op == "upsample_bilinear":
        op, rank, params = "upsample", 2, {"interpolation": "bilinear"}
    else:
        params = {}
    spatial = data.draw(st.tuples(*[st.integers(1, 6)] * rank), label="spatial")
    side = st.integers(0, 3)
    if op == "upsample":
        params["size"] = data.draw(st.tuples(*[st.integers(1, 4)] * rank), label="size")
    elif op in ("zero_pad", "crop"):
        params["padding" if op == "zero_pad" else "cropping"] = data.draw(
            st.tuples(*[st.tuples(side, side)] * rank), label="amounts")
    if op == "crop":
        spatial = tuple(d + sum(pair) for d, pair in zip(spatial, params["cropping"]))
    with use_isa(isa):
        check_resample(op, random_array((n, *spatial, c), dtype, 1), **params)


# ----------------------------------------------------------------------------
# integer-valued float32: exact sums, so ops must equal the float64 reference


@pytest.mark.parametrize("op, shape, params", [
    ("global_avg_pool", (3, 4, 17), {}),             # P = 4: dividing by it is exact
    ("global_avg_pool", (2, 4, 8, 33), {}),
    ("global_avg_pool", (1, 2, 2, 4, 64), {}),
    ("global_max_pool", (3, 5, 7, 17), {}),          # ints in [-3, 3]: many ties
    ("global_max_pool", (2, 3, 3, 3, 33), {}),
    ("global_max_pool", (3, 9, 5, 3), {}),           # fewer channels than a vector
    ("global_max_pool", (2, 200, 1), {}),
    ("upsample", (2, 5, 7, 17), {"size": (2, 3)}),
    ("upsample", (1, 3, 4, 5, 3), {"size": 2}),
    ("upsample", (2, 5, 7, 17), {"size": 2, "interpolation": "bilinear"}),    # weights k / 8
    ("upsample", (1, 3, 4, 33), {"size": (4, 2), "interpolation": "bilinear"}),
    ("zero_pad", (2, 5, 7, 17), {"padding": ((1, 2), (3, 0))}),
    ("crop", (2, 5, 7, 17), {"cropping": ((1, 2), (3, 0))}),
])
def test_integers_exact(op, shape, params, isa):
    check_resample(op, random_array(shape, np.float32, 1, integers=True), exact=True, **params)


def test_global_avg_pool_of_float32_is_numpys_mean():
    # The same sums in the same order, one rounded division: bit for bit.
    x = random_array((3, 9, 11, 37), np.float32, 2)
    np.testing.assert_array_equal(ops.global_avg_pool(x), x.mean(axis=(1, 2)))


# ----------------------------------------------------------------------------
# gradients: central differences in float64


def numeric_gradient(f, x: np.ndarray, r: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d/dx of sum(f(x) * r), by central differences."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (np.sum(f(up) * r) - np.sum(f(down) * r)) / (2 * h)
    return g


GRADIENT_CASES = [
    ("global_avg_pool", (2, 5, 3), {}),
    ("global_avg_pool", (1, 3, 2, 4, 2), {}),
    ("global_max_pool", (2, 3, 4, 3), {}),
    ("global_max_pool", (1, 4, 3), {}),
    ("upsample", (2, 3, 2), {"size": 3}),
    ("upsample", (1, 2, 3, 2, 2), {"size": (2, 1, 2)}),
    ("upsample", (1, 3, 4, 2), {"size": (2, 3), "interpolation": "bilinear"}),
    ("upsample", (2, 2, 1, 3), {"size": (3, 2), "interpolation": "bilinear"}),
    ("zero_pad", (1, 3, 4, 2), {"padding": ((1, 0), (2, 1))}),
    ("zero_pad", (2, 2, 2, 3, 1), {"padding": 1}),
    ("crop", (1, 5, 6, 2), {"cropping": ((1, 2), (0, 3))}),
    ("crop", (2, 4, 3), {"cropping": (1, 2)}),
]


@pytest.mark.parametrize("op, shape, params", GRADIENT_CASES, ids=str)
def test_gradient_by_finite_differences(op, shape, params):
    x = random_array(shape, np.float64, 5)

    def forward(a: np.ndarray) -> np.ndarray:
        if op == "global_max_pool":
            return ops.global_max_pool(a)[0]
        return getattr(ops, op)(a, **params)

    y = forward(x)
    r = random_array(y.shape, np.float64, 6)
    if op == "global_max_pool":
        dx = ops.global_max_pool_backward(r, ops.global_max_pool(x)[1], x.shape)
    elif op in ("global_avg_pool", "upsample", "crop"):
        dx = getattr(ops, op + "_backward")(r, x.shape, **params)
    else:
        dx = getattr(ops, op + "_backward")(r, **params)
    np.testing.assert_allclose(dx, numeric_gradient(forward, x, r), rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------
# PyTorch as an independent oracle


def torch_layout(x: np.ndarray):
    """x (N, *spatial, C) as a channels-first torch tensor."""
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def from_torch(t) -> np.ndarray:
    return np.moveaxis(t.detach().numpy(), 1, -1)


@pytest.mark.parametrize("shape", [(2, 7, 17), (3, 5, 6, 33), (1, 3, 4, 5, 16)], ids=str)
def test_global_pool_against_torch(shape):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = random_array(shape, np.float64, 1)
    rank = len(shape) - 2
    pool = getattr(functional, f"adaptive_avg_pool{rank}d")
    t = torch_layout(x).requires_grad_()
    out = pool(t, 1).reshape(shape[0], shape[-1])
    dy = random_array(out.shape, np.float64, 2)
    out.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ops.global_avg_pool(x), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ops.global_avg_pool_backward(dy, shape), from_torch(t.grad),
                               rtol=1e-12)
    t = torch_layout(x).requires_grad_()
    out = t.flatten(2).amax(dim=2)
    out.backward(torch.from_numpy(dy))
    y, argmax = ops.global_max_pool(x)
    np.testing.assert_array_equal(y, out.detach().numpy())
    np.testing.assert_array_equal(ops.global_max_pool_backward(dy, argmax, shape),
                                  from_torch(t.grad))


@pytest.mark.parametrize("shape, size", [
    ((2, 5, 3), (3,)), ((1, 4, 5, 17), (2, 3)), ((1, 2, 3, 4, 5), (2, 1, 3)),
], ids=str)
def test_nearest_upsample_against_torch(shape, size):
    torch = pytest.importorskip("torch")
    x = random_array(shape, np.float64, 1)
    t = torch_layout(x).requires_grad_()
    out = torch.nn.functional.interpolate(t, scale_factor=size, mode="nearest")
    dy = np.moveaxis(random_array(tuple(out.shape), np.float64, 2), 1, -1)
    out.backward(torch_layout(dy))
    np.testing.assert_array_equal(ops.upsample(x, size), from_torch(out))
    np.testing.assert_allclose(ops.upsample_backward(dy, shape, size), from_torch(t.grad),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size", [
    ((2, 5, 7, 3), (2, 2)), ((1, 4, 3, 17), (3, 2)), ((1, 1, 4, 33), (2, 5)),
    ((2, 2, 2, 1), (4, 4)), ((1, 6, 5, 16), (1, 3)),
], ids=str)
def test_bilinear_upsample_against_torch(shape, size, dtype):
    # PyTorch's bilinear interpolation with align_corners=False uses the
    # same half-pixel source coordinates as TensorFlow's resize.
    torch = pytest.importorskip("torch")
    x = random_array(shape, dtype, 1)
    t = torch_layout(x).requires_grad_()
    out = torch.nn.functional.interpolate(t, scale_factor=size, mode="bilinear",
                                          align_corners=False)
    dy = np.moveaxis(random_array(tuple(out.shape), dtype, 2), 1, -1)
    out.backward(torch_layout(dy))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ops.upsample(x, size, "bilinear"), from_torch(out),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(ops.upsample_backward(dy, shape, size, "bilinear"),
                               from_torch(t.grad), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, pads", [
    ((2, 5, 3), ((1, 2),)), ((1, 4, 5, 17), ((0, 2), (3, 1))),
    ((1, 2, 3, 4, 5), ((1, 0), (0, 2), (2, 2))),
], ids=str)
def test_zero_pad_and_crop_against_torch(shape, pads):
    torch = pytest.importorskip("torch")
    x = random_array(shape, np.float64, 1)
    flat = tuple(v for pair in reversed(pads) for v in pair)  # last axis first
    padded = torch.nn.functional.pad(torch_layout(x), flat)
    np.testing.assert_array_equal(ops.zero_pad(x, pads), from_torch(padded))
    np.testing.assert_array_equal(ops.crop(from_torch(padded).copy(), pads), x)


# ----------------------------------------------------------------------------
# hand-computed values


def test_bilinear_2x2_to_4x4_by_hand():
    # Output o reads source (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    # clamped to [0, 1]: weights of x[1] 0, 0.25, 0.75, 1 along each axis.
    x = np.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
    expected = [[1.0, 1.25, 1.75, 2.0],
                [1.5, 1.75, 2.25, 2.5],
                [2.5, 2.75, 3.25, 3.5],
                [3.0, 3.25, 3.75, 4.0]]
    for backend in (ops, reference):
        np.testing.assert_array_equal(backend.upsample(x, 2, "bilinear")[0, :, :, 0], expected)
    # Each input's gradient from a unit dy: the sum of its weights, e.g. x[0, 0]
    # takes (1 + 0.75 + 0.25) along each axis (the rows and columns reading it).
    dx = ops.upsample_backward(np.ones((1, 4, 4, 1)), x.shape, 2, "bilinear")
    np.testing.assert_array_equal(dx[0, :, :, 0], [[4.0, 4.0], [4.0, 4.0]])
    dy = np.zeros((1, 4, 4, 1))
    dy[0, 1, 1, 0] = 1.0  # output (1, 1) reads x with weights 0.75*0.75, 0.75*0.25, ...
    np.testing.assert_array_equal(ops.upsample_backward(dy, x.shape, 2, "bilinear")[0, :, :, 0],
                                  [[0.5625, 0.1875], [0.1875, 0.0625]])


def test_bilinear_equals_interpolation_matrices():
    # An independent statement: y = A_h x A_w^T per channel, A's rows holding
    # the two weights of each output, built by hand from the coordinates.
    def matrix(n: int, s: int) -> np.ndarray:
        a = np.zeros((n * s, n))
        for o in range(n * s):
            src = min(max((o + 0.5) / s - 0.5, 0.0), n - 1.0)
            i = int(np.floor(src))
            a[o, i] += 1 - (src - i)
            a[o, min(i + 1, n - 1)] += src - i
        return a
    x = random_array((2, 5, 3, 4), np.float64, 1)
    a_h, a_w = matrix(5, 3), matrix(3, 4)
    expected = np.einsum("oh,nhwc,pw->nopc", a_h, x, a_w)
    np.testing.assert_allclose(ops.upsample(x, (3, 4), "bilinear"), expected, rtol=1e-13,
                               atol=1e-14)
    dy = random_array(expected.shape, np.float64, 2)
    np.testing.assert_allclose(ops.upsample_backward(dy, x.shape, (3, 4), "bilinear"),
                               np.einsum("oh,nopc,pw->nhwc", a_h, dy, a_w), rtol=1e-12,
                               atol=1e-13)


def test_nearest_and_padding_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
    np.testing.assert_array_equal(ops.upsample(x, (1, 2))[0, :, :, 0],
                                  [[1, 1, 2, 2], [3, 3, 4, 4]])
    np.testing.assert_array_equal(ops.upsample_backward(np.ones((1, 2, 4, 1)), x.shape,
                                                        (1, 2))[0, :, :, 0], [[2, 2], [2, 2]])
    np.testing.assert_array_equal(ops.zero_pad(x, ((1, 0), (0, 1)))[0, :, :, 0],
                                  [[0, 0, 0], [1, 2, 0], [3, 4, 0]])
    steps = np.arange(1.0, 6.0)[None, :, None]
    np.testing.assert_array_equal(ops.zero_pad(steps, (2, 1))[0, :, 0], [0, 0, 1, 2, 3, 4, 5, 0])
    np.testing.assert_array_equal(ops.crop(steps, (1, 3))[0, :, 0], [2])
    np.testing.assert_array_equal(ops.crop_backward(np.ones((1, 1, 1)), steps.shape,
                                                    (1, 3))[0, :, 0], [0, 1, 0, 0, 0])


def test_global_pool_by_hand():
    x = np.array([[1.0, -2.0], [3.0, 4.0], [3.0, -1.0]])[None]  # (1, 3 steps, 2 channels)
    np.testing.assert_array_equal(ops.global_avg_pool(x), [[7 / 3, 1 / 3]])
    y, argmax = ops.global_max_pool(x)
    np.testing.assert_array_equal(y, [[3.0, 4.0]])
    np.testing.assert_array_equal(argmax, [[1, 1]])  # the first of the two 3s
    np.testing.assert_array_equal(ops.global_max_pool_backward(np.array([[5.0, 6.0]]), argmax,
                                                               x.shape)[0],
                                  [[0, 0], [5, 6], [0, 0]])


# ----------------------------------------------------------------------------
# ties, NaN and Inf


@pytest.mark.parametrize("channels", [37, 3, 1])
@pytest.mark.parametrize("fill", [0.0, -np.inf, np.inf, 7.0])
def test_global_max_pool_ties_go_to_the_first(fill, channels, isa):
    x = np.full((2, 30, 4, channels), fill)
    x[1, 1:, 2:, -1] = np.float64(fill) + 1  # a later, larger plateau: its first element
    x[0, 17, 3, 0] = -0.0 if fill == 0 else fill  # equal to the rest: does not win
    y, argmax = ops.global_max_pool(x)
    expected = np.zeros((2, channels), np.int32)
    expected[1, -1] = 1 * 4 + 2 if np.isfinite(fill) else 0  # Inf + 1 is no larger
    np.testing.assert_array_equal(argmax, expected)
    np.testing.assert_array_equal(argmax, reference.global_max_pool(x)[1])
    np.testing.assert_array_equal(y, reference.global_max_pool(x)[0])


def with_specials(a: np.ndarray) -> np.ndarray:
    """``a`` with NaN, +Inf and -Inf in some channels of each image (in vector
    lanes and in the channel tail)."""
    a = a.copy()
    flat = a.reshape(a.shape[0], -1, a.shape[-1])
    flat[:, 1, 0] = np.nan
    flat[:, 0, 3] = np.inf
    flat[:, -1, 3] = -np.inf
    flat[:, -1, -1] = np.inf
    flat[:, 0, -1] = np.nan
    return a


IEEE_WARNINGS = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@IEEE_WARNINGS
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, shape, params", [
    ("global_avg_pool", (2, 5, 4, 19), {}),
    ("global_max_pool", (2, 5, 4, 19), {}),
    ("global_max_pool", (2, 3, 2, 2, 33), {}),
    ("global_max_pool", (2, 7, 9, 5), {}),
    ("global_avg_pool", (2, 7, 9, 5), {}),
    ("upsample", (2, 5, 4, 19), {"size": 2}),
    ("upsample", (2, 5, 4, 19), {"size": (3, 2), "interpolation": "bilinear"}),
    ("zero_pad", (2, 5, 4, 19), {"padding": 1}),
    ("crop", (2, 5, 4, 19), {"cropping": 1}),
])
def test_nan_and_inf_propagate(op, shape, params, dtype, isa):
    x = with_specials(random_array(shape, dtype, 1))
    got = check_resample(op, x, **params)
    if op == "global_max_pool":
        assert np.isnan(got["y"][:, 0]).all() and np.isnan(got["y"][:, -1]).all()
        np.testing.assert_array_equal(got["argmax"][:, 0], 1)  # the NaN, not the numbers
        np.testing.assert_array_equal(got["argmax"][:, -1], 0)  # the first NaN, not the Inf
    # NaN and Inf in the gradients pass through too.
    check_resample(op, x, dy=with_specials(random_array(got["y"].shape, dtype, 2))
                   if got["y"].ndim > 2 else np.where(np.isnan(got["y"]), np.inf, got["y"]),
                   **params)


# ----------------------------------------------------------------------------
# memory layouts and empty batches


def strided(a: np.ndarray) -> np.ndarray:
    big = np.zeros(a.shape + (2,), a.dtype)
    big[..., 0] = a
    return big[..., 0]


def read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("layout", [np.asfortranarray, strided, read_only],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("op, params", [
    ("global_avg_pool", {}), ("global_max_pool", {}), ("upsample", {"size": (2, 3)}),
    ("upsample", {"size": 2, "interpolation": "bilinear"}), ("zero_pad", {"padding": (1, 2)}),
    ("crop", {"cropping": (1, 2)}),
])
def test_layouts(op, params, layout):
    x = random_array((2, 7, 6, 5), np.float64, 1)
    got = check_resample(op, x, layout=layout, **params)
    contiguous = check_resample(op, x, **params)
    for name, value in got.items():
        np.testing.assert_array_equal(value, contiguous[name], err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, params", [
    ("global_avg_pool", {}), ("global_max_pool", {}), ("upsample", {"size": 2}),
    ("upsample", {"size": 2, "interpolation": "bilinear"}), ("zero_pad", {"padding": 1}),
    ("crop", {"cropping": 1}),
])
def test_empty_batch(op, params, dtype):
    got = check_resample(op, random_array((0, 5, 4, 3), dtype, 1), **params)
    assert got["dx"].shape == (0, 5, 4, 3)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype, shape", [(np.float32, (2, 301, 277, 13)),
                                          (np.float64, (1, 19, 101, 211, 3))], ids=str)
def test_large_outputs_stream_past_the_cache(dtype, shape, threads, restore_settings):
    # Outputs from 8 MB on are written with streaming stores, from rows that
    # start anywhere in a cache line (13 float32 or 3 float64 channels).
    fastconv.set_num_threads(threads)
    x = random_array(shape, dtype, 1)
    assert x.nbytes >= 8 << 20
    amounts = ((1, 2),) * (x.ndim - 2)
    np.testing.assert_array_equal(ops.zero_pad(x, amounts), reference.zero_pad(x, amounts))
    np.testing.assert_array_equal(ops.zero_pad_backward(x, amounts),
                                  reference.zero_pad_backward(x, amounts))
    np.testing.assert_array_equal(ops.crop(x, amounts), reference.crop(x, amounts))
    np.testing.assert_array_equal(ops.upsample(x, (2,) + (1,) * (x.ndim - 3)),
                                  reference.upsample(x, (2,) + (1,) * (x.ndim - 3)))


# ----------------------------------------------------------------------------
# threads: the requested count, and the same bits whatever it is


def _all_outputs(dtype: type) -> list[np.ndarray]:
    """Every compiled op's outputs on shapes that split unevenly, with fewer
    images than threads (channel blocks) and more."""
    outs = []
    # At least 96k elements each: three threads' worth (one per 32k).
    for shape in [(1, 40, 40, 70), (5, 40, 30, 19), (2, 12, 20, 20, 33), (7, 5000, 3)]:
        x = random_array(shape, dtype, 1)
        y, argmax = ops.global_max_pool(x)
        dy = random_array(y.shape, dtype, 2)
        outs += [ops.global_avg_pool(x), y, argmax, ops.global_avg_pool_backward(dy, shape),
                 ops.global_max_pool_backward(dy, argmax, shape)]
    for shape, size in [((1, 25, 30, 17), (3, 2)), ((3, 10, 15, 70), 2), ((5, 60, 30, 3), (2, 3))]:
        x = random_array(shape, dtype, 1)
        y = ops.upsample(x, size, "bilinear")
        outs += [y, ops.upsample_backward(random_array(y.shape, dtype, 2), shape, size,
                                          "bilinear")]
    for shape, size, amounts in [((3, 40, 30, 35), (2, 3), ((1, 2), (0, 3))),
                                 ((5, 9, 20, 30, 3), (3, 1, 2), 2), ((7, 3000, 5), 3, (4, 1))]:
        x = random_array(shape, dtype, 1)
        y = ops.upsample(x, size)
        outs += [y, ops.upsample_backward(random_array(y.shape, dtype, 2), shape, size),
                 ops.zero_pad(x, amounts), ops.zero_pad_backward(x, amounts),
                 ops.crop(x, amounts), ops.crop_backward(ops.crop(x, amounts), shape, amounts)]
    return outs


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_1_2_3_threads(dtype, isa, restore_settings):
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results[threads] = _all_outputs(dtype)
    for threads in (2, 3):
        for i, (a, b) in enumerate(zip(results[1], results[threads])):
            assert a.tobytes() == b.tobytes(), f"output {i} differs with {threads} threads"


def test_kernels_use_the_requested_threads(restore_settings):
    if not fastconv.openmp_enabled():
        pytest.skip("built without OpenMP")
    x = random_array((1, 48, 48, 40), np.float32, 1)  # one image: cut into channel blocks
    y, argmax = ops.global_max_pool(x)
    up = ops.upsample(x, 2, "bilinear")
    big = random_array((2, 32, 32, 40), np.float32, 2)  # 82k elements: two threads' worth
    big_up = ops.upsample(big, 2)
    calls = [
        (global_pool_kernels, lambda: ops.global_avg_pool(x)),
        (global_pool_kernels, lambda: ops.global_max_pool(x)),
        (global_pool_kernels, lambda: ops.global_avg_pool_backward(y, x.shape)),
        (global_pool_kernels, lambda: ops.global_max_pool_backward(y, argmax, x.shape)),
        (resize_kernels, lambda: ops.upsample(x, 2, "bilinear")),
        (resize_kernels, lambda: ops.upsample_backward(up, x.shape, 2, "bilinear")),
        (resize_kernels, lambda: ops.upsample(big, 2)),
        (resize_kernels, lambda: ops.upsample_backward(big_up, big.shape, 2)),
        (margins_kernels, lambda: ops.zero_pad(big, 1)),
        (margins_kernels, lambda: ops.zero_pad_backward(big, 1)),
        (margins_kernels, lambda: ops.crop(big, 1)),
        (margins_kernels, lambda: ops.crop_backward(big, (2, 34, 34, 40), 1)),
    ]
    for threads in (1, 2, 1, 2):
        fastconv.set_num_threads(threads)
        for i, (module, call) in enumerate(calls):
            call()
            assert module.last_team_size() == threads, f"call {i} with {threads} threads"
    fastconv.set_num_threads(2)
    ops.global_avg_pool(np.ones((1, 150, 150, 3), np.float32))  # one channel block: one item
    assert global_pool_kernels.last_team_size() == 1
    ops.zero_pad(np.ones((4, 5, 7, 3), np.float32), 1)  # far less than 32k elements
    assert margins_kernels.last_team_size() == 1

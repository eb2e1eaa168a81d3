"""The batch normalization ops (fastconv.ops.batch_norm, batch_norm_inference,
batch_norm_backward): against fastconv.reference at every SIMD level, the
reference against hand-computed values, finite differences and PyTorch,
bitwise identity across thread counts and instruction sets, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference
from fastconv._kernels import batchnorm as bn_kernels

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}

# (shape, axis): channels last and first, dense (N, C), channel counts around
# the vector widths, runs longer than a piece and rows beyond one chunk.
CASES = [
    ((8, 5, 5, 7), -1), ((4, 6, 6, 16), 3), ((2, 3, 3, 33), -1), ((300, 17), -1),
    ((3, 4), -1), ((1, 1), -1), ((2, 9000), 1), ((5, 7, 3), 1), ((2, 3, 4500), 1),
    ((2, 4, 3, 3, 3), -1), ((2, 4, 3, 3, 3), 1), ((6, 2, 5), -2),
]


def _arrays(shape, axis, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[axis]
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", CASES, ids=str)
def test_ops_match_the_reference(shape, axis, dtype, isa):
    x, gamma, beta, dy = _arrays(shape, axis, dtype)
    tol = TOL[dtype]
    y, mean, var = ops.batch_norm(x, gamma, beta, 1e-3, axis)
    y_ref, mean_ref, var_ref = reference.batch_norm(x, gamma, beta, 1e-3, axis)
    np.testing.assert_allclose(mean, mean_ref, **tol)
    np.testing.assert_allclose(var, var_ref, **tol)
    np.testing.assert_allclose(y, y_ref, **tol)
    for training in (True, False):
        got = ops.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, axis, training)
        want = reference.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, axis, training)
        for name, g, w in zip(("dx", "dgamma", "dbeta"), got, want):
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g / scale, w / scale, err_msg=name, **tol)
    y_inf = ops.batch_norm_inference(x, mean, var, gamma, beta, 1e-3, axis)
    np.testing.assert_allclose(y_inf, reference.batch_norm_inference(
        x, mean, var, gamma, beta, 1e-3, axis), **tol)
    assert y.dtype == mean.dtype == y_inf.dtype == x.dtype


@pytest.mark.parametrize("scale,center", [(False, True), (True, False), (False, False)])
def test_without_gamma_or_beta(scale, center, isa):
    x, gamma, beta, dy = _arrays((6, 3, 3, 5), -1, np.float64)
    gamma, beta = (gamma if scale else None), (beta if center else None)
    got = ops.batch_norm(x, gamma, beta, 1e-3, -1)
    want = reference.batch_norm(x, gamma, beta, 1e-3, -1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    _, mean, var = got
    for g, w in zip(ops.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, -1),
                    reference.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, -1)):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("shape,axis", [((24, 20, 20, 300), -1), ((16, 8, 70, 300), 1),
                                        ((3, 5000, 200), -1)], ids=str)
def test_outputs_large_enough_to_stream(shape, axis):
    # At least 8 MB: the affine sweeps write through streaming stores.
    x, gamma, beta, dy = _arrays(shape, axis, np.float32, seed=2)
    assert x.nbytes >= bn_kernels.STREAM_MIN_BYTES
    y, mean, var = ops.batch_norm(x, gamma, beta, 1e-3, axis)
    y_ref, _, _ = reference.batch_norm(x, gamma, beta, 1e-3, axis)
    np.testing.assert_allclose(y, y_ref, **TOL[np.float32])
    dx, _, _ = ops.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, axis)
    dx_ref, _, _ = reference.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, axis)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ops.batch_norm_inference(x, mean, var, None, beta, 1e-3, axis),
                               reference.batch_norm_inference(x, mean, var, None, beta, 1e-3,
                                                              axis), **TOL[np.float32])


def test_reference_by_hand():
    # One channel of values 1, 2, 3, 6: mean 3, biased variance (4+1+0+9)/4 = 3.5.
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    y, mean, var = reference.batch_norm(x, np.array([2.0]), np.array([1.0]), 0.5, -1)
    assert mean[0] == 3.0 and var[0] == 3.5
    np.testing.assert_allclose(y[:, 0], 2 * (x[:, 0] - 3) / 2 + 1)  # sqrt(3.5 + 0.5) = 2
    y, mean, var = ops.batch_norm(x, np.array([2.0]), np.array([1.0]), 0.5, -1)
    np.testing.assert_allclose(y[:, 0], [-1, 0, 1, 4])
    assert mean[0] == 3.0 and var[0] == 3.5
    # dbeta = sum(dy); dgamma = sum(dy * xhat); with dy = xhat, mean(dy) = 0
    # and mean(dy * xhat) = 3.5 / 4, so dx = gamma / 2 * xhat * (1 - 0.875).
    xhat = (x - 3) / 2
    dx, dgamma, dbeta = reference.batch_norm_backward(xhat, x, mean, var, np.array([2.0]), 0.5)
    np.testing.assert_allclose(dx, 0.125 * xhat, atol=1e-15)
    np.testing.assert_allclose(dgamma, [np.sum(xhat ** 2)])
    np.testing.assert_allclose(dbeta, [0], atol=1e-15)
    dx, _, _ = reference.batch_norm_backward(np.ones_like(x), x, mean, var, None, 0.5, -1,
                                             False)
    np.testing.assert_allclose(dx, 0.5)


@pytest.mark.parametrize("axis", [-1, 1])
def test_reference_gradient_by_finite_differences(axis):
    shape = (3, 4, 2, 2) if axis == 1 else (3, 2, 2, 4)
    x, gamma, beta, r = _arrays(shape, axis, np.float64, seed=3)
    for training in (True, False):
        _, m0, v0 = reference.batch_norm(x, gamma, beta, 1e-3, axis)

        def loss(xv, g, b):
            if training:
                y = reference.batch_norm(xv, g, b, 1e-3, axis)[0]
            else:
                y = reference.batch_norm_inference(xv, m0, v0, g, b, 1e-3, axis)
            return float(np.sum(y * r))

        dx, dgamma, dbeta = reference.batch_norm_backward(r, x, m0, v0, gamma, 1e-3, axis,
                                                          training)
        h = 1e-6
        for value, grad, which in ((x, dx, 0), (gamma, dgamma, 1), (beta, dbeta, 2)):
            numeric = np.zeros_like(value)
            for idx in np.ndindex(value.shape):
                args_up = [x, gamma, beta]
                args_dn = [x, gamma, beta]
                up, dn = value.copy(), value.copy()
                up[idx] += h
                dn[idx] -= h
                args_up[which], args_dn[which] = up, dn
                numeric[idx] = (loss(*args_up) - loss(*args_dn)) / (2 * h)
            np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_reference_matches_torch():
    torch = pytest.importorskip("torch")
    x, gamma, beta, dy = _arrays((4, 3, 5, 5), 1, np.float64, seed=1)
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-3)
    yt.backward(torch.tensor(dy))
    y, mean, var = reference.batch_norm(x, gamma, beta, 1e-3, 1)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx, dgamma, dbeta = reference.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, 1)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-10)


def test_large_offset_keeps_the_variance():
    # Values 1e4 + N(0, 1) in float32: a one-pass sum of squares would lose
    # the variance to cancellation; the shifted sums keep it.
    rng = np.random.default_rng(5)
    x = (1e4 + rng.standard_normal((4096, 8))).astype(np.float32)
    _, mean, var = ops.batch_norm(x, None, None, 0.0, -1)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(axis=0), rtol=1e-5)
    np.testing.assert_allclose(mean, x64.mean(axis=0), rtol=1e-7)


def _all_outputs(dtype):
    """Every op's outputs on three shapes, and the largest team that ran."""
    outs, team = [], 0
    for shape, axis in [((64, 9, 9, 24), -1), ((40, 24, 30, 30), 1), ((5000, 7), -1)]:
        x, gamma, beta, dy = _arrays(shape, axis, dtype, seed=7)
        y, mean, var = ops.batch_norm(x, gamma, beta, 1e-3, axis)
        team = max(team, bn_kernels.last_team_size())
        outs += [y, mean, var, *ops.batch_norm_backward(dy, x, mean, var, gamma, 1e-3, axis),
                 ops.batch_norm_inference(x, mean, var, gamma, beta, 1e-3, axis)]
    return outs, team


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_1_2_3_threads_and_every_isa(dtype, restore_settings):
    results = {}
    for isa in fastconv.supported_isas():
        fastconv.set_isa(isa)
        for threads in (1, 2, 3):
            fastconv.set_num_threads(threads)
            results[isa, threads], team = _all_outputs(dtype)
            assert team == (threads if fastconv.openmp_enabled() else 1)
    first = results[fastconv.supported_isas()[0], 1]
    for key, outs in results.items():
        for i, (a, b) in enumerate(zip(first, outs)):
            assert a.tobytes() == b.tobytes(), f"output {i} differs with {key}"


def test_empty_batch():
    x = np.zeros((0, 4), np.float32)
    m, v = np.zeros(4, np.float32), np.ones(4, np.float32)
    assert ops.batch_norm_inference(x, m, v, None, None).shape == (0, 4)
    with pytest.raises(ValueError, match="at least one value per channel"):
        ops.batch_norm(x, None, None)


def test_non_contiguous_and_read_only_inputs():
    x, gamma, beta, _ = _arrays((6, 4, 4, 3), -1, np.float32)
    want = ops.batch_norm(x, gamma, beta)
    frozen = np.asfortranarray(x)
    frozen.setflags(write=False)
    for g, w in zip(ops.batch_norm(frozen, gamma, beta), want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("backend", [ops, reference], ids=["ops", "reference"])
def test_bad_arguments(backend):
    x = np.ones((4, 3), np.float32)
    c3 = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="argument `x`.*numpy.ndarray"):
        backend.batch_norm([[1.0]], None, None)
    with pytest.raises(TypeError, match="dtype for argument `x`"):
        backend.batch_norm(np.ones((4, 3), np.int32), None, None)
    with pytest.raises(ValueError, match="argument `x`: expected at least 2"):
        backend.batch_norm(np.ones(3, np.float32), None, None)
    with pytest.raises(ValueError, match="argument `axis`"):
        backend.batch_norm(x, None, None, 1e-3, 2)
    with pytest.raises(ValueError, match="argument `axis`"):
        backend.batch_norm(x, None, None, 1e-3, 1.0)
    with pytest.raises(ValueError, match=r"argument `gamma`: expected \(3,\)"):
        backend.batch_norm(x, np.ones(4, np.float32), None)
    with pytest.raises(TypeError, match="share one float dtype"):
        backend.batch_norm(x, c3.astype(np.float64), None)
    with pytest.raises(ValueError, match="argument `epsilon`"):
        backend.batch_norm(x, None, None, -1.0)
    with pytest.raises(ValueError, match="argument `epsilon`"):
        backend.batch_norm(x, None, None, float("nan"))
    with pytest.raises(ValueError, match=r"argument `mean`: expected \(3,\)"):
        backend.batch_norm_inference(x, np.ones(2, np.float32), c3, None, None)
    with pytest.raises(ValueError, match="argument `dy`: expected the shape of x"):
        backend.batch_norm_backward(np.ones((4, 2), np.float32), x, c3, c3, None)
    with pytest.raises(TypeError, match="argument `training`"):
        backend.batch_norm_backward(x, x, c3, c3, None, 1e-3, -1, "yes")

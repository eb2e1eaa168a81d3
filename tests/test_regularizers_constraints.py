"""fastconv.regularizers and fastconv.constraints: hand-computed cases, finite
differences, get/serialize.

Finite differences are central, in float64, with step h = 1e-6; their error
is O(h^2) (zero for these quadratic and piecewise-linear penalties) plus
rounding of about 1e-16 * |penalty| / h, so gradients must match to
rtol 1e-7, atol 1e-9.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fastconv import constraints as cons
from fastconv import regularizers as regs

W = np.array([[1.0, -2.0], [0.0, 3.0]])  # sum |w| = 6, sum w^2 = 14


def numerical_gradient(f, w: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        plus, minus = w.copy(), w.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus) - f(minus)) / (2 * h)
    return grad


# ----------------------------------------------------------------------------
# regularizers: penalties and gradients


def test_l1_by_hand():
    r = regs.L1(0.1)
    assert r(W) == pytest.approx(0.6)
    np.testing.assert_allclose(r.gradient(W), [[0.1, -0.1], [0.0, 0.1]])


def test_l2_by_hand():
    r = regs.L2(0.1)
    assert r(W) == pytest.approx(1.4)  # l2 * sum(w^2), no 1/2 (Keras)
    np.testing.assert_allclose(r.gradient(W), 0.2 * W)
    assert regs.L2(2.0)(np.ones((5, 5))) == pytest.approx(50.0)  # Keras' docstring example


def test_l1l2_by_hand():
    r = regs.L1L2(l1=0.1, l2=0.2)
    assert r(W) == pytest.approx(0.6 + 2.8)
    np.testing.assert_allclose(r.gradient(W), 0.1 * np.sign(W) + 0.4 * W)


def test_l1_gradient_at_zero_is_zero():
    np.testing.assert_array_equal(regs.L1(0.5).gradient(np.zeros(3)), 0.0)
    np.testing.assert_array_equal(regs.L1L2(0.5, 0.5).gradient(np.zeros(3)), 0.0)


@pytest.mark.parametrize("r", [regs.L1(0.03), regs.L2(0.07), regs.L1L2(0.02, 0.05)], ids=repr)
def test_gradient_matches_finite_differences(r):
    rng = np.random.default_rng(0)
    # Keep |w| >= 0.1 so that no step crosses L1's kink at 0.
    w = rng.uniform(0.1, 2.0, (3, 3, 2, 4)) * rng.choice([-1.0, 1.0], (3, 3, 2, 4))
    np.testing.assert_allclose(r.gradient(w), numerical_gradient(r, w), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("r", [regs.L1(0.03), regs.L2(0.07), regs.L1L2(0.02, 0.05)], ids=repr)
def test_regularizer_dtypes(r):
    w32 = W.astype(np.float32)
    assert isinstance(r(w32), float)
    assert r.gradient(w32).dtype == np.float32
    assert r.gradient(W).dtype == np.float64
    assert r(w32) == pytest.approx(r(W), rel=1e-6)


def test_regularizer_keras_defaults():
    assert regs.L1().get_config() == {"l1": 0.01}
    assert regs.L2().get_config() == {"l2": 0.01}
    assert regs.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert regs.L1(None).l1 == 0.01 and regs.L1L2(None, None).l2 == 0.0
    base = regs.Regularizer()
    assert base(W) == 0.0 and repr(base) == "Regularizer()"
    np.testing.assert_array_equal(base.gradient(W), np.zeros_like(W))


@pytest.mark.parametrize("make, message", [
    (lambda: regs.L1(-1), "`l1`: expected a non-negative float, received l1=-1"),
    (lambda: regs.L2(math.inf), "`l2`"),
    (lambda: regs.L2("0.1"), "`l2`"),
    (lambda: regs.L1L2(l1=0.1, l2=-0.5), "`l2`.*l2=-0.5"),
])
def test_regularizer_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


REG_NAMES = {"l1": regs.L1, "L1": regs.L1, "l2": regs.L2, "L2": regs.L2,
             "l1_l2": regs.L1L2, "L1L2": regs.L1L2}


@pytest.mark.parametrize("name", sorted(REG_NAMES))
def test_regularizer_get_by_name(name):
    r = regs.get(name)
    assert type(r) is REG_NAMES[name]
    assert r.get_config() == REG_NAMES[name]().get_config()


@pytest.mark.parametrize("r", [regs.L1(0.3), regs.L2(0.25), regs.L1L2(0.1, 0.2)], ids=repr)
def test_regularizer_serialize_round_trip(r):
    data = regs.serialize(r)
    assert data == {"class_name": type(r).__name__, "config": r.get_config()}
    restored = regs.get(json.loads(json.dumps(data)))
    assert type(restored) is type(r) and restored.get_config() == r.get_config()
    assert restored(W) == r(W)


def test_regularizer_get_passes_through():
    assert regs.get(None) is None and regs.serialize(None) is None
    r = regs.L2(0.5)
    assert regs.get(r) is r
    assert isinstance(regs.get(regs.L1), regs.L1)
    assert isinstance(regs.get({"class_name": "L1L2", "config": {"l1": 0.1}}), regs.L1L2)


def test_plain_function_regularizer_has_no_gradient():
    def half_sum(w):
        return 0.5 * float(np.sum(w))

    r = regs.get(half_sum)
    assert isinstance(r, regs.Regularizer)
    assert r(W) == 1.0
    with pytest.raises(NotImplementedError, match="no gradient"):
        r.gradient(W)
    with pytest.raises(TypeError, match="plain function cannot be serialized"):
        regs.serialize(r)
    with pytest.raises(TypeError, match="plain function cannot be serialized"):
        regs.serialize(half_sum)


@pytest.mark.parametrize("bad, error", [
    ("l3", ValueError), ("L1_L2", ValueError), ({"class_name": "Lasso"}, ValueError),
    (0.01, TypeError), (dict, TypeError),
])
def test_regularizer_get_rejects(bad, error):
    with pytest.raises(error, match="`identifier`.*l1_l2"):
        regs.get(bad)


# ----------------------------------------------------------------------------
# constraints


EPS = 1e-7  # Keras' backend.epsilon()


def conv_kernel_with_filter_norms(norms: list[float]) -> np.ndarray:
    """A (3, 3, 2, len(norms)) kernel whose filter j has L2 norm norms[j]."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 2, len(norms)))
    w /= np.sqrt(np.sum(w**2, axis=(0, 1, 2)))
    return w * np.array(norms)


def filter_norms(w: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(w**2, axis=(0, 1, 2)))


def test_max_norm_conv_filters():
    w = conv_kernel_with_filter_norms([1.0, 2.0, 3.0, 5.0])
    before = w.copy()
    out = cons.MaxNorm(max_value=2.0, axis=[0, 1, 2])(w)
    np.testing.assert_array_equal(w, before)  # the input is left alone
    assert not np.shares_memory(out, w)
    np.testing.assert_allclose(filter_norms(out), [1.0, 2.0, 2.0, 2.0], rtol=1e-6)
    # Filters within the bound keep their weights, up to Keras' factor
    # norm / (norm + 1e-7); the others are rescaled, keeping their direction.
    np.testing.assert_allclose(out[..., :2], w[..., :2], rtol=1e-7)
    np.testing.assert_allclose(out[..., 2], w[..., 2] * 2.0 / (3.0 + EPS), rtol=1e-12)
    np.testing.assert_allclose(out[..., 3], w[..., 3] * 2.0 / (5.0 + EPS), rtol=1e-12)


def test_max_norm_dense_default_axis():
    w = np.array([[3.0, 0.6], [4.0, 0.8]])  # column norms 5 and 1
    out = cons.MaxNorm()(w)  # max_value=2, axis=0
    np.testing.assert_allclose(out, [[1.2, 0.6], [1.6, 0.8]], rtol=1e-6)
    assert cons.MaxNorm().get_config() == {"max_value": 2, "axis": 0}


def test_non_neg():
    w = np.array([[-1.0, 2.0], [0.0, -3.5]], dtype=np.float32)
    out = cons.NonNeg()(w)
    np.testing.assert_array_equal(out, [[0.0, 2.0], [0.0, 0.0]])
    assert out.dtype == np.float32 and w[0, 0] == -1.0


def test_unit_norm():
    w = np.array([[3.0, 0.0], [4.0, 0.0]])  # a zero column stays zero, not NaN
    np.testing.assert_allclose(cons.UnitNorm()(w), [[0.6, 0.0], [0.8, 0.0]], rtol=1e-6)
    out = cons.UnitNorm(axis=[0, 1, 2])(conv_kernel_with_filter_norms([0.5, 4.0]))
    np.testing.assert_allclose(filter_norms(out), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.sum(cons.UnitNorm(axis=1)(w.T) ** 2, axis=1)),
                               [1.0, 0.0], rtol=1e-6)


@pytest.mark.parametrize("rate, expected", [
    (1.0, [1.0, 1.5, 2.0]),
    (0.5, [0.75, 1.5, 2.5]),  # rate * clip(norm) + (1 - rate) * norm
    (0.0, [0.5, 1.5, 3.0]),
])
def test_min_max_norm(rate, expected):
    w = conv_kernel_with_filter_norms([0.5, 1.5, 3.0])
    out = cons.MinMaxNorm(min_value=1.0, max_value=2.0, rate=rate, axis=[0, 1, 2])(w)
    np.testing.assert_allclose(filter_norms(out), expected, rtol=1e-6)


@pytest.mark.parametrize("c", [cons.MaxNorm(1.0), cons.NonNeg(), cons.UnitNorm(),
                               cons.MinMaxNorm(0.5, 1.0, 0.5)], ids=repr)
def test_constraint_dtypes(c):
    w = np.random.default_rng(2).standard_normal((4, 3))
    assert c(w.astype(np.float32)).dtype == np.float32
    assert c(w).dtype == np.float64
    assert c(np.arange(12).reshape(4, 3)).dtype == np.float32
    np.testing.assert_allclose(c(w.astype(np.float32)), c(w), rtol=1e-5, atol=1e-6)


def test_constraint_axis_tuple_is_stored_as_list():
    c = cons.MaxNorm(axis=(0, 1, 2))
    assert c.get_config()["axis"] == [0, 1, 2]
    restored = cons.get(json.loads(json.dumps(cons.serialize(c))))
    w = conv_kernel_with_filter_norms([3.0])
    np.testing.assert_array_equal(restored(w), c(w))


@pytest.mark.parametrize("make, message", [
    (lambda: cons.MaxNorm(max_value=-1), "`max_value`: expected a non-negative float"),
    (lambda: cons.MaxNorm(axis="0"), "`axis`: expected an int or a list of ints"),
    (lambda: cons.UnitNorm(axis=[]), "`axis`"),
    (lambda: cons.UnitNorm(axis=[0, 1.0]), "`axis`"),
    (lambda: cons.MinMaxNorm(min_value=2.0, max_value=1.0), "`max_value`.*min_value=2.0"),
    (lambda: cons.MinMaxNorm(rate=1.5), "`rate`.*received rate=1.5"),
    (lambda: cons.MinMaxNorm(rate=-0.5), "`rate`"),
])
def test_constraint_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


CONS_NAMES = {"max_norm": cons.MaxNorm, "MaxNorm": cons.MaxNorm,
              "non_neg": cons.NonNeg, "NonNeg": cons.NonNeg,
              "unit_norm": cons.UnitNorm, "UnitNorm": cons.UnitNorm,
              "min_max_norm": cons.MinMaxNorm, "MinMaxNorm": cons.MinMaxNorm}


@pytest.mark.parametrize("name", sorted(CONS_NAMES))
def test_constraint_get_by_name(name):
    c = cons.get(name)
    assert type(c) is CONS_NAMES[name]
    assert c.get_config() == CONS_NAMES[name]().get_config()


@pytest.mark.parametrize("c", [cons.MaxNorm(3.0, axis=[0, 1, 2]), cons.NonNeg(),
                               cons.UnitNorm(axis=1),
                               cons.MinMaxNorm(0.5, 2.0, rate=0.3, axis=[0, 1])], ids=repr)
def test_constraint_serialize_round_trip(c):
    data = cons.serialize(c)
    assert data == {"class_name": type(c).__name__, "config": c.get_config()}
    restored = cons.get(json.loads(json.dumps(data)))
    assert type(restored) is type(c) and restored.get_config() == c.get_config()
    w = conv_kernel_with_filter_norms([0.2, 2.5, 4.0])
    np.testing.assert_array_equal(restored(w), c(w))


def test_constraint_get_passes_through():
    assert cons.get(None) is None and cons.serialize(None) is None
    c = cons.NonNeg()
    assert cons.get(c) is c
    assert isinstance(cons.get(cons.UnitNorm), cons.UnitNorm)

    def clip(w):
        return np.clip(w, -1, 1)

    assert cons.get(clip) is clip
    with pytest.raises(TypeError, match="plain function cannot be serialized"):
        cons.serialize(clip)
    base = cons.Constraint()
    np.testing.assert_array_equal(base(W), W)
    assert not np.shares_memory(base(W), W)


@pytest.mark.parametrize("bad, error", [
    ("maxnorm", ValueError), ({"class_name": "Clip", "config": {}}, ValueError),
    (2.0, TypeError), (list, TypeError),
])
def test_constraint_get_rejects(bad, error):
    with pytest.raises(error, match="`identifier`.*max_norm"):
        cons.get(bad)

"""fastconv.activations: hand values, finite differences, overflow, dtypes, get/serialize.

Gradient checks: the backward's vector-Jacobian product is compared with
central differences of L(x) = sum(dy * f(x)) in float64 with step 1e-6,
whose error is O(h^2) ~ 1e-12 times the third derivative plus rounding
~1e-16 * |L| / h ~ 1e-9, so they must match to rtol 1e-6, atol 1e-8.
Inputs stay at least 0.01 away from 0, where relu, leaky_relu, elu and selu
have a kink.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

from fastconv import activations as act

NAMES = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "softplus", "elu",
         "selu", "gelu", "silu"]

# (forward, backward) pairs, including non-default hyper-parameters.
VARIANTS = {name: (getattr(act, name), getattr(act, f"{name}_backward")) for name in NAMES}
VARIANTS.update({
    "leaky_relu(0.05)": (functools.partial(act.leaky_relu, negative_slope=0.05),
                         functools.partial(act.leaky_relu_backward, negative_slope=0.05)),
    "elu(0.5)": (functools.partial(act.elu, alpha=0.5),
                 functools.partial(act.elu_backward, alpha=0.5)),
    "softmax(axis=0)": (functools.partial(act.softmax, axis=0),
                        functools.partial(act.softmax_backward, axis=0)),
    "gelu(approximate)": (functools.partial(act.gelu, approximate=True),
                          functools.partial(act.gelu_backward, approximate=True)),
})

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def phi(v: float) -> float:
    """The standard normal CDF, from math.erfc."""
    return 0.5 * math.erfc(-v / math.sqrt(2))


def gelu_tanh(v: float) -> float:
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


POINTS = [-3.0, -1.0, -0.25, 0.0, 0.5, 2.0]

# Each forward against its definition written with the math module.
REFERENCE = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "leaky_relu": lambda v: v if v >= 0 else 0.2 * v,
    "sigmoid": sig,
    "tanh": math.tanh,
    "softplus": lambda v: math.log1p(math.exp(v)),
    "elu": lambda v: v if v > 0 else math.expm1(v),
    "selu": lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v)),
    "gelu": lambda v: v * phi(v),
    "silu": lambda v: v * sig(v),
    "gelu(approximate)": gelu_tanh,
    "elu(0.5)": lambda v: v if v > 0 else 0.5 * math.expm1(v),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_forward_by_hand(name):
    forward = VARIANTS[name][0]
    x = np.array(POINTS)
    expected = [REFERENCE[name](v) for v in POINTS]
    np.testing.assert_allclose(forward(x), expected, rtol=1e-13, atol=1e-15)


def test_forward_keras_examples():
    x = np.array([-10, -5, 0.0, 5, 10])
    np.testing.assert_array_equal(act.relu(x), [0.0, 0.0, 0.0, 5.0, 10.0])
    np.testing.assert_array_equal(act.leaky_relu(x), [-2.0, -1.0, 0.0, 5.0, 10.0])
    assert act.gelu(np.array(1.0)) == pytest.approx(0.8413447460685429, rel=1e-15)
    assert act.gelu(np.array(-1.0)) == pytest.approx(-0.15865525393145707, rel=1e-14)
    assert act.sigmoid(np.array(math.log(3.0))) == pytest.approx(0.75, rel=1e-15)


def test_softmax_by_hand():
    y = act.softmax(np.log(np.array([[1.0, 2.0, 3.0], [5.0, 3.0, 2.0]])))
    np.testing.assert_allclose(y, [[1 / 6, 2 / 6, 3 / 6], [0.5, 0.3, 0.2]], rtol=1e-14)
    y0 = act.softmax(np.log(np.array([[1.0, 3.0], [3.0, 1.0]])), axis=0)
    np.testing.assert_allclose(y0, [[0.25, 0.75], [0.75, 0.25]], rtol=1e-14)


def test_gelu_erfc_accuracy():
    """The erfc behind exact gelu agrees with math.erfc to 1e-14 relative, tails included."""
    z = np.concatenate([np.linspace(-26, 26, 20001), [0.46875, -0.46875, 4.0, -4.0, 1e-300]])
    expected = np.array([math.erfc(v) for v in z])
    np.testing.assert_allclose(act._erfc(z), expected, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(act._erfc(np.array([30.0, -30.0, np.inf, -np.inf])),
                                  [0.0, 2.0, 0.0, 2.0])
    assert np.isnan(act._erfc(np.array([np.nan])))[0]
    # For gelu the rounding of x / sqrt(2) (1e-16 relative) is amplified by
    # the slope of log erfc(z), 2 z, to about 1e-13 at x = -30.
    x = np.linspace(-30, 30, 2001)
    expected = [0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x]
    np.testing.assert_allclose(act.gelu(x), expected, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------
# backward against finite differences


def away_from_zero(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.01, 3.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_backward_matches_finite_differences(name):
    forward, backward = VARIANTS[name]
    x = away_from_zero((4, 7), seed=0)
    dy = np.random.default_rng(1).standard_normal(x.shape)
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += h
        minus[i] -= h
        numeric[i] = (np.sum(dy * forward(plus)) - np.sum(dy * forward(minus))) / (2 * h)
    np.testing.assert_allclose(backward(dy, x, forward(x)), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "selu"])
def test_gradient_at_zero_is_the_left_one(name):
    # As TensorFlow: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha.
    forward, backward = VARIANTS[name]
    x = np.zeros(1)
    expected = {"relu": 0.0, "leaky_relu": 0.2, "elu": 1.0, "selu": SELU_SCALE * SELU_ALPHA}
    assert backward(np.ones(1), x, forward(x))[0] == pytest.approx(expected[name])


# ----------------------------------------------------------------------------
# numerical safety and dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_no_overflow_warnings_on_large_inputs(name, dtype):
    forward, backward = VARIANTS[name]
    x = np.array([[-1000.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1000.0],
                  [-1e30, -40.0, -0.5, 0.0, 0.5, 40.0, 1e30]], dtype=dtype)
    # Underflow to 0 is expected (and ignored by NumPy's default settings).
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = forward(x)
        dx = backward(np.ones_like(x), x, y)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_large_input_values():
    x = np.array([-1000.0, 1000.0], dtype=np.float32)
    np.testing.assert_array_equal(act.sigmoid(x), [0.0, 1.0])
    np.testing.assert_array_equal(act.softplus(x), [0.0, 1000.0])
    np.testing.assert_array_equal(act.softmax(x), [0.0, 1.0])
    np.testing.assert_array_equal(act.elu(x), [-1.0, 1000.0])
    np.testing.assert_array_equal(act.gelu(x), [0.0, 1000.0])
    np.testing.assert_array_equal(act.gelu(x, approximate=True), [0.0, 1000.0])
    np.testing.assert_array_equal(act.silu(x), [0.0, 1000.0])
    np.testing.assert_array_equal(act.tanh(x), [-1.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_dtype_preserved(name, dtype):
    forward, backward = VARIANTS[name]
    x = away_from_zero((3, 5), seed=2).astype(dtype)
    y = forward(x)
    assert y.dtype == dtype
    assert backward(np.ones_like(x), x, y).dtype == dtype


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_float32_matches_float64(name):
    forward, backward = VARIANTS[name]
    x64 = away_from_zero((3, 5), seed=3)
    x32 = x64.astype(np.float32)
    dy = np.ones_like(x64)
    np.testing.assert_allclose(forward(x32), forward(x64), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(backward(dy.astype(np.float32), x32, forward(x32)),
                               backward(dy, x64, forward(x64)), rtol=1e-5, atol=1e-6)


def test_integer_input_is_float32():
    assert act.relu(np.array([-1, 2])).dtype == np.float32
    assert act.sigmoid([0, 1]).dtype == np.float32


# ----------------------------------------------------------------------------
# Activation, get, serialize


@pytest.mark.parametrize("name", NAMES)
def test_get_by_name_round_trip(name):
    a = act.get(name)
    assert isinstance(a, act.Activation) and a.name == name and a.has_backward
    assert act.serialize(a) == name
    assert act.get(act.serialize(a)) is a
    x = away_from_zero((2, 3), seed=4)
    np.testing.assert_array_equal(a.forward(x), getattr(act, name)(x))
    np.testing.assert_array_equal(a(x), a.forward(x))
    dy = np.ones_like(x)
    np.testing.assert_array_equal(a.backward(dy, x, a(x)),
                                  getattr(act, f"{name}_backward")(dy, x, a(x)))


def test_get_aliases_and_functions():
    assert act.get(None) is act.get("linear")
    assert act.serialize(None) == "linear"
    assert act.get("swish") is act.get("silu")
    assert act.serialize("swish") == "silu"  # as Keras: swish is silu
    assert act.swish is act.silu
    assert act.get(act.relu) is act.get("relu")
    assert act.serialize(act.gelu) == "gelu"
    custom = act.Activation("square", np.square, lambda dy, x, y: 2 * x * dy)
    assert act.get(custom) is custom


def test_plain_callable_is_inference_only():
    def cube(x):
        return x**3

    a = act.get(cube)
    assert a.name == "cube" and not a.has_backward
    np.testing.assert_array_equal(a.forward(np.array([2.0])), [8.0])
    with pytest.raises(NotImplementedError, match="'cube'.*only be used for inference"):
        a.backward(np.ones(1), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="only the built-in activations"):
        act.serialize(cube)


@pytest.mark.parametrize("bad, error", [
    ("Relu", ValueError), ("swish2", ValueError), (3, TypeError), ({"relu": 1}, TypeError),
])
def test_get_rejects(bad, error):
    with pytest.raises(error, match="`activation`.*'leaky_relu'") as info:
        act.get(bad)
    assert f"received activation={bad!r}" in str(info.value)

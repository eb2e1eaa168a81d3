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


# ----------------------------------------------------------------------------
# the rest of Keras 3's activations: hand values, finite differences, safety

# Where each function has a kink or a jump: gradient checks keep 0.01 away.
KINKS = {
    "relu6": (0.0, 6.0), "hard_sigmoid": (-3.0, 3.0), "hard_silu": (-3.0, 3.0),
    "hard_tanh": (-1.0, 1.0), "soft_shrink": (-0.5, 0.5), "hard_shrink": (-0.5, 0.5),
    "sparse_plus": (-1.0, 1.0), "sparse_sigmoid": (-1.0, 1.0), "celu": (0.0,),
    "threshold(1, -2)": (1.0,), "relu(keras)": (0.25, 2.0), "celu(2)": (0.0,),
}
NEW_NAMES = ["relu6", "hard_sigmoid", "hard_silu", "mish", "exponential", "log_softmax",
             "softsign", "celu", "log_sigmoid", "hard_tanh", "tanh_shrink", "soft_shrink",
             "hard_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "sparsemax"]
NEW_VARIANTS = {name: (getattr(act, name), getattr(act, f"{name}_backward"))
                for name in NEW_NAMES}


def _partial(name: str, **keywords):
    return (functools.partial(getattr(act, name), **keywords),
            functools.partial(getattr(act, f"{name}_backward"), **keywords))


NEW_VARIANTS.update({
    "celu(2)": _partial("celu", alpha=2.0),
    "soft_shrink(1.5)": _partial("soft_shrink", threshold=1.5),
    "hard_shrink(0.2)": _partial("hard_shrink", threshold=0.2),
    "squareplus(1)": _partial("squareplus", b=1.0),
    "threshold(1, -2)": _partial("threshold", threshold=1.0, default_value=-2.0),
    "relu(keras)": _partial("relu", negative_slope=0.5, max_value=2.0, threshold=0.25),
    "log_softmax(axis=0)": _partial("log_softmax", axis=0),
    "sparsemax(axis=0)": _partial("sparsemax", axis=0),
})
KINKS.update({"soft_shrink(1.5)": (-1.5, 1.5), "hard_shrink(0.2)": (-0.2, 0.2)})

NEW_REFERENCE = {
    "relu6": lambda v: min(max(v, 0.0), 6.0),
    "hard_sigmoid": lambda v: 0.0 if v <= -3 else 1.0 if v >= 3 else v / 6 + 0.5,
    "hard_silu": lambda v: 0.0 if v < -3 else v if v > 3 else v * (v + 3) / 6,
    "mish": lambda v: v * math.tanh(math.log1p(math.exp(v))),
    "exponential": math.exp,
    "softsign": lambda v: v / (abs(v) + 1),
    "celu": lambda v: v if v >= 0 else math.expm1(v),
    "celu(2)": lambda v: v if v >= 0 else 2.0 * math.expm1(v / 2.0),
    "log_sigmoid": lambda v: math.log(1 / (1 + math.exp(-v))),
    "hard_tanh": lambda v: -1.0 if v < -1 else 1.0 if v > 1 else v,
    "tanh_shrink": lambda v: v - math.tanh(v),
    "soft_shrink": lambda v: v - 0.5 if v > 0.5 else v + 0.5 if v < -0.5 else 0.0,
    "hard_shrink": lambda v: v if abs(v) > 0.5 else 0.0,
    "sparse_plus": lambda v: 0.0 if v <= -1 else (v + 1) ** 2 / 4 if v < 1 else v,
    "sparse_sigmoid": lambda v: 0.0 if v <= -1 else 0.5 * (v + 1) if v < 1 else 1.0,
    "squareplus": lambda v: (v + math.sqrt(v * v + 4)) / 2,
    "squareplus(1)": lambda v: (v + math.sqrt(v * v + 1)) / 2,
    "threshold(1, -2)": lambda v: v if v > 1 else -2.0,
    # Keras' relu: min(x, max_value) above the threshold, slope * (x - t) below.
    "relu(keras)": lambda v: min(v, 2.0) if v > 0.25 else 0.5 * (v - 0.25),
}
EDGE_POINTS = [-7.0, -3.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.5, 3.0, 6.0, 8.0]


@pytest.mark.parametrize("name", sorted(NEW_REFERENCE))
def test_new_forward_by_hand(name):
    x = np.array(EDGE_POINTS)
    expected = [NEW_REFERENCE[name](v) for v in EDGE_POINTS]
    np.testing.assert_allclose(NEW_VARIANTS[name][0](x), expected, rtol=1e-13, atol=1e-15)


def test_new_forward_keras_examples():
    x = np.array([-10, -5, 0.0, 5, 10])
    # keras.activations.relu's docstring examples.
    np.testing.assert_array_equal(act.relu(x, negative_slope=0.5), [-5, -2.5, 0, 5, 10])
    np.testing.assert_array_equal(act.relu(x, max_value=5.0), [0, 0, 0, 5, 5])
    np.testing.assert_array_equal(act.relu(x, threshold=5.0), [0, 0, 0, 0, 10])
    np.testing.assert_allclose(act.hard_sigmoid(np.array([-1.0, 0.0, 1.0])), [1 / 3, 0.5, 2 / 3])
    y = act.log_softmax(np.log(np.array([[1.0, 2.0, 5.0]])))
    np.testing.assert_allclose(y, np.log([[0.125, 0.25, 0.625]]), rtol=1e-14)


def test_glu_and_sparsemax_by_hand():
    x = np.array([[1.0, -2.0, 0.0, math.log(3.0)]])  # a = (1, -2), b = (0, log 3)
    np.testing.assert_allclose(act.glu(x), [[0.5, -1.5]], rtol=1e-14)
    np.testing.assert_allclose(act.glu(x.T, axis=0), [[0.5], [-1.5]], rtol=1e-14)
    with pytest.raises(ValueError, match="must be even"):
        act.glu(np.ones((2, 3)))
    # Worked out by hand: [1, 2, 3] keeps only the largest; [0.1, 0.2, 0.3] has
    # the whole support and tau = (0.6 - 1) / 3; [0.5, 0] has tau = -0.25.
    y = act.sparsemax(np.array([[1.0, 2.0, 3.0], [0.1, 0.2, 0.3]]))
    np.testing.assert_allclose(y, [[0, 0, 1], [0.7 / 3, 1 / 3, 1.3 / 3]], rtol=1e-14)
    np.testing.assert_allclose(act.sparsemax(np.array([[0.5], [0.0]]), axis=0), [[0.75], [0.25]])


def away_from_kinks(shape: tuple[int, ...], seed: int, kinks: tuple = (0.0,)) -> np.ndarray:
    """Values in [-4, 4] at least 0.02 from each kink."""
    x = np.random.default_rng(seed).uniform(-4, 4, shape)
    for k in kinks:
        near = np.abs(x - k) < 0.02
        x[near] = k + 0.05
    return x


def finite_difference_check(forward, backward, x, seed=1):
    dy = np.random.default_rng(seed).standard_normal(np.shape(forward(x)))
    h = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += h
        minus[i] -= h
        numeric[i] = (np.sum(dy * forward(plus)) - np.sum(dy * forward(minus))) / (2 * h)
    np.testing.assert_allclose(backward(dy, x, forward(x)), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(NEW_VARIANTS))
def test_new_backward_matches_finite_differences(name):
    forward, backward = NEW_VARIANTS[name]
    finite_difference_check(forward, backward, away_from_kinks((4, 7), 0, KINKS.get(name, ())))


@pytest.mark.parametrize("axis", [-1, 0])
def test_glu_backward_matches_finite_differences(axis):
    x = away_from_kinks((4, 6), 3)
    finite_difference_check(functools.partial(act.glu, axis=axis),
                            functools.partial(act.glu_backward, axis=axis), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(set(NEW_VARIANTS) - {"exponential"}))
def test_new_no_overflow_warnings_on_large_inputs(name, dtype):
    forward, backward = NEW_VARIANTS[name]
    x = np.array([[-1000.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1000.0],
                  [-1e30, -40.0, -0.5, 0.0, 0.5, 40.0, 1e30]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = forward(x)
        dx = backward(np.ones_like(y), x, y)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert y.dtype == dtype and dx.dtype == dtype


@pytest.mark.parametrize("name", sorted(NEW_VARIANTS))
def test_new_float32_matches_float64(name):
    forward, backward = NEW_VARIANTS[name]
    x64 = away_from_kinks((3, 5), 3, KINKS.get(name, ()))
    x32 = x64.astype(np.float32)
    np.testing.assert_allclose(forward(x32), forward(x64), rtol=2e-6, atol=2e-6)
    dy = np.ones_like(x64)
    np.testing.assert_allclose(backward(dy.astype(np.float32), x32, forward(x32)),
                               backward(dy, x64, forward(x64)), rtol=1e-5, atol=1e-5)


KERAS_NAMES = ["celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid",
               "hard_silu", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax",
               "mish", "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax",
               "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax",
               "squareplus", "tanh", "tanh_shrink"]


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_every_keras_name_round_trips_with_its_backward(name):
    a = act.get(name)
    assert a.name == name and a.has_backward
    assert act.serialize(a) == name and act.deserialize(name) is a
    assert act.get(getattr(act, name)) is a  # the function object too


def test_keras_aliases_and_threshold():
    assert act.get("hard_swish") is act.get("hard_silu")
    assert act.serialize("hard_swish") == "hard_silu"
    assert act.hard_swish is act.hard_silu
    with pytest.raises(ValueError, match="`activation`.*'threshold' needs the arguments "
                                         r"\['threshold', 'default_value'\]"):
        act.get("threshold")
    a = act.get(functools.partial(act.threshold, threshold=0.0, default_value=-1.0))
    np.testing.assert_array_equal(a(np.array([-2.0, 3.0])), [-1.0, 3.0])
    assert a.has_backward


def test_partial_of_a_builtin_keeps_its_backward_and_is_not_serializable():
    a = act.get(functools.partial(act.leaky_relu, negative_slope=0.1))
    x = np.array([-2.0, 3.0])
    np.testing.assert_allclose(a(x), [-0.2, 3.0])
    np.testing.assert_allclose(a.backward(np.ones(2), x, a(x)), [0.1, 1.0])
    with pytest.raises(ValueError, match="only the built-in activations"):
        act.serialize(a)
    with pytest.raises(TypeError, match="`activation`.*negative_slop"):
        act.get(functools.partial(act.leaky_relu, negative_slop=0.1))


def test_glu_output_shape():
    assert act.output_shape(act.get("glu"), (None, 6)) == (None, 3)
    assert act.output_shape(act.get(functools.partial(act.glu, axis=1)), (2, 4, 5)) == (2, 2, 5)
    assert act.output_shape(act.get("relu"), (None, 5)) == (None, 5)
    with pytest.raises(ValueError, match="must be even"):
        act.output_shape(act.get("glu"), (None, 5))

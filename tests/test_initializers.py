"""fastconv.initializers: statistics against Keras' formulas, seeding, get/serialize.

Statistical tolerances: draws have N >= 70,000 values. The sample mean is
checked to within 5 standard errors (5 * std / sqrt(N)) and the sample
standard deviation to within 2 % (its standard error is about
std / sqrt(2 N) < 0.3 %), so a correct initializer fails with probability
well below 1e-6. Bounds are checked exactly; "the draw reaches its bound"
means within 1 % of it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fastconv.runtime import random as _random
from fastconv import initializers as init

TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]

DENSE = (300, 250)         # fan_in 300, fan_out 250
CONV = (3, 3, 64, 128)     # receptive field 9: fan_in 576, fan_out 1152
FANS = {DENSE: (300, 250), CONV: (576, 1152)}


def check_mean_std(values: np.ndarray, mean: float, std: float) -> None:
    n = values.size
    assert abs(values.mean(dtype=np.float64) - mean) < 5 * std / math.sqrt(n)
    assert values.std(dtype=np.float64) == pytest.approx(std, rel=0.02)


# ----------------------------------------------------------------------------
# fans


@pytest.mark.parametrize("shape, fans", [
    ((), (1, 1)),
    ((7,), (7, 7)),
    ((4, 5), (4, 5)),
    ((3, 3, 4, 5), (36, 45)),
    ((2, 3, 4, 5, 6), (120, 144)),
])
def test_compute_fans(shape, fans):
    assert init.compute_fans(shape) == fans


# ----------------------------------------------------------------------------
# constant initializers


def test_zeros_ones_constant():
    assert_equal = np.testing.assert_array_equal
    z = init.Zeros()((2, 3))
    assert z.dtype == np.float32 and z.shape == (2, 3)
    assert_equal(z, 0)
    o = init.Ones()((4,), dtype=np.dtype("float64"))
    assert o.dtype == np.float64
    assert_equal(o, 1)
    c = init.Constant(2.5)((2, 2, 1, 3))
    assert c.dtype == np.float32
    assert_equal(c, 2.5)
    assert init.Constant(np.float64(3.0)).get_config() == {"value": 3.0}
    assert_equal(init.Constant(7)((2,), dtype="int32"), np.array([7, 7], dtype=np.int32))


# ----------------------------------------------------------------------------
# random initializers with explicit parameters


def test_random_normal_statistics():
    values = init.RandomNormal(mean=1.0, stddev=2.0, seed=1)((400, 250))
    assert values.dtype == np.float32
    check_mean_std(values, 1.0, 2.0)


def test_random_uniform_statistics():
    values = init.RandomUniform(minval=-1.0, maxval=3.0, seed=2)((400, 250))
    assert values.min() >= -1.0 and values.max() <= 3.0
    assert values.min() < -0.99 and values.max() > 2.99
    check_mean_std(values, 1.0, 4.0 / math.sqrt(12.0))


def test_truncated_normal_statistics():
    mean, stddev = 0.5, 2.0
    values = init.TruncatedNormal(mean=mean, stddev=stddev, seed=3)((400, 250))
    # Re-drawn beyond 2 stddev, so the truncated std is 0.8796 * stddev.
    assert np.abs(values - mean).max() <= 2 * stddev
    assert np.abs(values - mean).max() > 0.99 * 2 * stddev
    check_mean_std(values, mean, TRUNC_STD * stddev)


def test_keras_defaults():
    assert init.RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05, "seed": None}
    assert init.TruncatedNormal().get_config() == {"mean": 0.0, "stddev": 0.05, "seed": None}
    assert init.RandomUniform().get_config() == {"minval": -0.05, "maxval": 0.05, "seed": None}
    assert init.VarianceScaling().get_config() == {
        "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": None}
    assert init.Orthogonal().get_config() == {"gain": 1.0, "seed": None}
    assert init.Constant().get_config() == {"value": 0.0}
    assert init.GlorotUniform().get_config() == {"seed": None}


# ----------------------------------------------------------------------------
# variance scaling and its presets


# (class, scale, mode, distribution) as Keras defines each preset.
PRESETS = [
    (init.GlorotUniform, 1.0, "fan_avg", "uniform"),
    (init.GlorotNormal, 1.0, "fan_avg", "truncated_normal"),
    (init.HeNormal, 2.0, "fan_in", "truncated_normal"),
    (init.HeUniform, 2.0, "fan_in", "uniform"),
    (init.LecunNormal, 1.0, "fan_in", "truncated_normal"),
    (init.LecunUniform, 1.0, "fan_in", "uniform"),
]


def expected_stats(scale: float, mode: str, distribution: str,
                   shape: tuple[int, ...]) -> tuple[float, float]:
    """(std, bound) of a VarianceScaling draw, from Keras' formulas."""
    fan_in, fan_out = FANS[shape]
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    std = math.sqrt(scale / n)
    if distribution == "uniform":
        return std, math.sqrt(3 * scale / n)
    if distribution == "truncated_normal":
        return std, 2 * std / TRUNC_STD
    return std, math.inf


def check_variance_scaling(values: np.ndarray, std: float, bound: float) -> None:
    assert np.abs(values).max() <= bound * (1 + 1e-6)  # float32 rounding of the bound
    if math.isfinite(bound):
        assert np.abs(values).max() > 0.99 * bound
    check_mean_std(values, 0.0, std)


@pytest.mark.parametrize("shape", [DENSE, CONV], ids=["dense", "conv"])
@pytest.mark.parametrize("cls, scale, mode, distribution", PRESETS,
                         ids=[p[0].__name__ for p in PRESETS])
def test_presets_statistics(cls, scale, mode, distribution, shape):
    preset = cls(seed=4)
    assert (preset.scale, preset.mode, preset.distribution) == (scale, mode, distribution)
    values = preset(shape)
    assert values.shape == shape and values.dtype == np.float32
    check_variance_scaling(values, *expected_stats(scale, mode, distribution, shape))


@pytest.mark.parametrize("shape, limit", [
    (DENSE, math.sqrt(6 / (300 + 250))),
    (CONV, math.sqrt(6 / (576 + 1152))),
], ids=["dense", "conv"])
def test_glorot_uniform_limit(shape, limit):
    values = init.GlorotUniform(seed=5)(shape, dtype="float64")
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.99 * limit


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_modes(mode, distribution):
    values = init.VarianceScaling(scale=3.0, mode=mode, distribution=distribution, seed=6)(CONV)
    check_variance_scaling(values, *expected_stats(3.0, mode, distribution, CONV))


def test_variance_scaling_distribution_names():
    assert init.VarianceScaling(distribution="normal").distribution == "truncated_normal"
    assert init.VarianceScaling(distribution="Uniform").distribution == "uniform"


def test_variance_scaling_clamps_fans_below_one():
    # Keras divides by max(1, n): an empty kernel draws nothing but must not
    # divide by zero.
    assert init.HeNormal(seed=0)((0, 5)).shape == (0, 5)
    assert init.GlorotUniform(seed=0)((0, 0)).shape == (0, 0)
    assert init.VarianceScaling(seed=0)(()).shape == ()


# ----------------------------------------------------------------------------
# orthogonal


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (3, 3, 4, 16), (2, 2, 8, 64)])
def test_orthogonal(shape):
    gain = 2.0
    values = init.Orthogonal(gain=gain, seed=7)(shape, dtype="float64")
    assert values.shape == shape
    m = values.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(gram.shape[0]), atol=1e-12)


def test_orthogonal_needs_two_dimensions():
    with pytest.raises(ValueError, match="`shape`"):
        init.Orthogonal()((5,))


# ----------------------------------------------------------------------------
# seeding


ALL_RANDOM = [init.RandomNormal, init.RandomUniform, init.TruncatedNormal,
              init.VarianceScaling, init.Orthogonal] + [p[0] for p in PRESETS]


@pytest.mark.parametrize("cls", ALL_RANDOM, ids=lambda c: c.__name__)
def test_global_seed_reproducible(cls):
    _random.set_seed(123)
    a = cls()((3, 3, 2, 4))
    b = cls()((3, 3, 2, 4))
    _random.set_seed(123)
    np.testing.assert_array_equal(cls()((3, 3, 2, 4)), a)
    assert not np.array_equal(a, b)  # unseeded calls continue the global stream


@pytest.mark.parametrize("cls", ALL_RANDOM, ids=lambda c: c.__name__)
def test_explicit_seed_reproducible(cls):
    a = cls(seed=11)((6, 5))
    _random.set_seed(0)  # the global generator has no effect on a seeded initializer
    np.testing.assert_array_equal(cls(seed=11)((6, 5)), a)
    initializer = cls(seed=11)
    np.testing.assert_array_equal(initializer((6, 5)), initializer((6, 5)))
    assert not np.array_equal(cls(seed=12)((6, 5)), a)


def test_seeded_float32_is_rounded_float64():
    a64 = init.HeNormal(seed=9)((20, 30), dtype="float64")
    a32 = init.HeNormal(seed=9)((20, 30), dtype="float32")
    np.testing.assert_array_equal(a32, a64.astype(np.float32))


@pytest.mark.parametrize("cls", ALL_RANDOM, ids=lambda c: c.__name__)
def test_random_dtypes(cls):
    assert cls(seed=0)((4, 4)).dtype == np.float32
    assert cls(seed=0)((4, 4), dtype="float64").dtype == np.float64
    assert cls(seed=0)((4, 4), dtype=np.dtype(np.float64)).dtype == np.float64
    assert cls(seed=0)((4, 4), dtype=None).dtype == np.float32
    with pytest.raises(ValueError, match="`dtype`.*received dtype='int32'"):
        cls(seed=0)((4, 4), dtype="int32")


# ----------------------------------------------------------------------------
# get / serialize


NAMES = {
    "zeros": init.Zeros, "Zeros": init.Zeros, "zero": init.Zeros,
    "ones": init.Ones, "Ones": init.Ones, "one": init.Ones,
    "constant": init.Constant, "Constant": init.Constant,
    "random_normal": init.RandomNormal, "RandomNormal": init.RandomNormal,
    "normal": init.RandomNormal,
    "random_uniform": init.RandomUniform, "RandomUniform": init.RandomUniform,
    "uniform": init.RandomUniform,
    "truncated_normal": init.TruncatedNormal, "TruncatedNormal": init.TruncatedNormal,
    "variance_scaling": init.VarianceScaling, "VarianceScaling": init.VarianceScaling,
    "glorot_uniform": init.GlorotUniform, "GlorotUniform": init.GlorotUniform,
    "glorot_normal": init.GlorotNormal, "GlorotNormal": init.GlorotNormal,
    "he_normal": init.HeNormal, "HeNormal": init.HeNormal,
    "he_uniform": init.HeUniform, "HeUniform": init.HeUniform,
    "lecun_normal": init.LecunNormal, "LecunNormal": init.LecunNormal,
    "lecun_uniform": init.LecunUniform, "LecunUniform": init.LecunUniform,
    "orthogonal": init.Orthogonal, "Orthogonal": init.Orthogonal,
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_get_by_name(name):
    obj = init.get(name)
    assert type(obj) is NAMES[name]
    again = init.get(init.serialize(obj))
    assert type(again) is type(obj) and again.get_config() == obj.get_config()


NON_DEFAULT = [
    init.Zeros(), init.Ones(), init.Constant(-1.5),
    init.RandomNormal(mean=0.1, stddev=0.2, seed=1),
    init.RandomUniform(minval=-0.3, maxval=0.7, seed=2),
    init.TruncatedNormal(mean=-1.0, stddev=0.5, seed=3),
    init.VarianceScaling(scale=0.5, mode="fan_out", distribution="uniform", seed=4),
    init.Orthogonal(gain=1.5, seed=5),
] + [p[0](seed=6) for p in PRESETS]


@pytest.mark.parametrize("obj", NON_DEFAULT, ids=repr)
def test_serialize_round_trip(obj):
    data = init.serialize(obj)
    assert data == {"class_name": type(obj).__name__, "config": obj.get_config()}
    restored = init.get(json.loads(json.dumps(data)))
    assert type(restored) is type(obj)
    assert restored.get_config() == obj.get_config()
    np.testing.assert_array_equal(restored((4, 3)), obj((4, 3)))
    assert type(type(obj).from_config(obj.get_config())) is type(obj)


def test_get_accepts_keras_serialized_form():
    keras_form = {"module": "keras.initializers", "class_name": "HeUniform",
                  "config": {"seed": 42}, "registered_name": None}
    obj = init.get(keras_form)
    assert isinstance(obj, init.HeUniform) and obj.seed == 42


def test_get_passes_through():
    assert init.get(None) is None
    he = init.HeNormal()
    assert init.get(he) is he
    assert isinstance(init.get(init.GlorotNormal), init.GlorotNormal)

    def my_init(shape, dtype=None):
        return np.full(shape, 0.25, dtype=dtype)

    assert init.get(my_init) is my_init
    assert init.serialize(None) is None
    with pytest.raises(TypeError, match="plain function cannot be serialized"):
        init.serialize(my_init)


@pytest.mark.parametrize("bad, error", [
    ("glorot", ValueError),
    ("GLOROT_UNIFORM", ValueError),
    ({"class_name": "Nope", "config": {}}, ValueError),
    ({"config": {}}, ValueError),
    ({"class_name": "Zeros", "config": [1]}, ValueError),
    (3, TypeError),
    ([1, 2], TypeError),
    (int, TypeError),
])
def test_get_rejects(bad, error):
    with pytest.raises(error, match="glorot_uniform") as info:
        init.get(bad)
    assert "`identifier`" in str(info.value)


@pytest.mark.parametrize("make, message", [
    (lambda: init.RandomNormal(stddev=-1), "`stddev`.*received stddev=-1"),
    (lambda: init.TruncatedNormal(stddev=math.nan), "`stddev`"),
    (lambda: init.RandomNormal(mean="0"), "`mean`"),
    (lambda: init.RandomUniform(minval=1.0, maxval=0.0), "`maxval`.*minval=1.0, maxval=0.0"),
    (lambda: init.VarianceScaling(scale=0.0), "`scale`: expected a positive float"),
    (lambda: init.VarianceScaling(mode="fan_sum"), "`mode`.*received mode='fan_sum'"),
    (lambda: init.VarianceScaling(distribution="gamma"), "`distribution`"),
    (lambda: init.GlorotUniform(seed=-1), "`seed`.*received seed=-1"),
    (lambda: init.HeNormal(seed=1.5), "`seed`"),
    (lambda: init.HeNormal(seed=True), "`seed`"),
    (lambda: init.Constant([1, 2]), "`value`: expected a scalar"),
    (lambda: init.Zeros()((2, -1)), "`shape`.*received shape=\\(2, -1\\)"),
    (lambda: init.HeNormal()((2, 2.0)), "`shape`"),
])
def test_invalid_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_identity_initializer():
    np.testing.assert_array_equal(init.Identity()((3, 3)), np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(init.get("identity")((2, 3), "float64"),
                                  [[1, 0, 0], [0, 1, 0]])
    assert init.Identity(gain=2.0)((2, 2)).tolist() == [[2.0, 0.0], [0.0, 2.0]]
    assert type(init.get("IdentityInitializer")) is init.Identity
    restored = init.get(init.serialize(init.Identity(gain=0.5)))
    assert restored.get_config() == {"gain": 0.5}
    with pytest.raises(ValueError, match="shape"):
        init.Identity()((3, 3, 1))
    with pytest.raises(ValueError, match="gain"):
        init.Identity(gain=float("nan"))

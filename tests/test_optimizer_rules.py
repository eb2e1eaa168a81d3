"""AdamW, Adagrad, Adadelta, Adamax, Nadam and Lion against Keras 3's rules.

Each reference restates the rule of ``keras/src/optimizers/<name>.py`` in
float64 NumPy, one parameter at a time, independently of the module under
test. Keras' own golden values (its ``*_test.py``) check the same rules from
outside; the compiled kernels must equal the NumPy statement bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import optimizers
from fastconv._kernels import optim as _optim
from fastconv.layers import Variable
from fastconv.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    RMSprop,
)

TOLERANCE = {np.float32: 3e-6, np.float64: 1e-12}

W0 = [np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]]), np.array([1.5, -2.5])]
GRADS = [
    [np.array([[0.3, -0.8, 1.2], [-0.05, 0.4, 2.0]]), np.array([-1.0, 0.7])],
    [np.array([[0.1, 0.2, -0.3], [0.01, -0.1, 0.05]]), np.array([0.2, -0.1])],
    [np.array([[-0.4, 0.6, 0.2], [0.3, -0.7, 0.9]]), np.array([0.5, 0.3])],
]


def adamw_reference(w, grads, learning_rate, weight_decay, beta_1, beta_2, epsilon):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w - w * weight_decay * learning_rate
        alpha = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        w = w - alpha * m / (np.sqrt(v) + epsilon)
    return w


def adagrad_reference(w, grads, learning_rate, initial_accumulator_value, epsilon):
    acc = np.full_like(w, initial_accumulator_value)
    for g in grads:
        acc = acc + g**2
        w = w - learning_rate * g / np.sqrt(acc + epsilon)
    return w


def adadelta_reference(w, grads, learning_rate, rho, epsilon):
    acc_g, acc_d = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = -np.sqrt(acc_d + epsilon) * g / np.sqrt(acc_g + epsilon)
        acc_d = rho * acc_d + (1 - rho) * delta**2
        w = w + learning_rate * delta
    return w


def adamax_reference(w, grads, learning_rate, beta_1, beta_2, epsilon):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        u = np.maximum(beta_2 * u, np.abs(g))
        w = w - learning_rate / (1 - beta_1**t) * m / (u + epsilon)
    return w


def nadam_reference(w, grads, learning_rate, beta_1, beta_2, epsilon):
    m, v, product = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, g in enumerate(grads, start=1):
        mu_t = beta_1 * (1 - 0.5 * 0.96**t)
        mu_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        product = product * mu_t
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu_t) * g / (1 - product)
        v_hat = v / (1 - beta_2**t)
        w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    return w


def lion_reference(w, grads, learning_rate, beta_1, beta_2):
    m = np.zeros_like(w)
    for g in grads:
        w = w - learning_rate * np.sign(beta_1 * m + (1 - beta_1) * g)
        m = beta_2 * m + (1 - beta_2) * g
    return w


CASES = {
    "adamw": (AdamW, adamw_reference, {"learning_rate": 0.01, "weight_decay": 0.1,
                                       "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    "adagrad": (Adagrad, adagrad_reference, {"learning_rate": 0.1,
                                             "initial_accumulator_value": 0.2,
                                             "epsilon": 1e-3}),
    "adadelta": (Adadelta, adadelta_reference, {"learning_rate": 1.0, "rho": 0.8,
                                                "epsilon": 1e-3}),
    "adamax": (Adamax, adamax_reference, {"learning_rate": 0.05, "beta_1": 0.8,
                                          "beta_2": 0.9, "epsilon": 1e-3}),
    "nadam": (Nadam, nadam_reference, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9,
                                       "epsilon": 1e-3}),
    "lion": (Lion, lion_reference, {"learning_rate": 0.05, "beta_1": 0.7, "beta_2": 0.9}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_against_keras_formula(name, steps, dtype):
    cls, reference, hyper = CASES[name]
    opt = cls(**hyper)
    values = [w.astype(dtype) for w in W0]
    for grads in GRADS[:steps]:
        opt.update(values, [g.astype(dtype) for g in grads])
    assert opt.iterations == steps
    for i, value in enumerate(values):
        assert value.dtype == dtype
        expected = reference(W0[i], [g[i] for g in GRADS[:steps]], **hyper)
        np.testing.assert_allclose(value, expected, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype])


# Keras 3's test_single_step: learning_rate=0.5, one step from [1, 2, 3, 4].
@pytest.mark.parametrize("cls, expected", [
    (Adagrad, [0.5233, 1.5007, 2.5005, 3.5061]),
    (Adadelta, [0.9993, 1.9993, 2.9993, 3.9993]),
    (Adamax, [0.5, 1.5, 2.5, 3.5]),
    (Nadam, [0.4686, 1.4686, 2.4686, 3.4686]),
    (Lion, [0.5, 1.5, 2.5, 3.5]),
    (AdamW, [0.4980, 1.4960, 2.494, 3.492]),
], ids=lambda c: getattr(c, "__name__", ""))
def test_keras_single_step(cls, expected):
    w = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    cls(learning_rate=0.5).update([w], [np.array([1.0, 6.0, 7.0, 2.0], np.float32)])
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-4)


ADAGRAD_GOLDEN = [
    [0.9963] * 10,
    [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
    [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
    [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
    [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]]
ADAMAX_GOLDEN = [
    [0.8] * 10,
    [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
    [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
    [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
    [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]]
NADAM_GOLDEN = [
    [0.4281] * 10,
    [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
    [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
    [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
    [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454]]
ADAMW_GOLDEN = [
    [0.4998] * 10,
    [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
    [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
    [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
    [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159]]


# Keras 3's test_correctness_with_golden: one step with gradients 0.01, then
# steps with 0.1, 0.2, ..., 1.0.
@pytest.mark.parametrize("make, golden", [
    (lambda: Adagrad(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6),
     ADAGRAD_GOLDEN),
    (lambda: Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-6),
     [[x] * 10 for x in (0.9978, 0.9947, 0.9915, 0.9882, 0.9849)]),
    (lambda: Adamax(learning_rate=0.2, beta_1=0.85, beta_2=0.95, epsilon=1e-6),
     ADAMAX_GOLDEN),
    (lambda: Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5), NADAM_GOLDEN),
    (lambda: Lion(), [[x] * 10 for x in (0.999, 0.998, 0.997, 0.996, 0.995)]),
    (lambda: AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2), ADAMW_GOLDEN),
], ids=["adagrad", "adadelta", "adamax", "nadam", "lion", "adamw"])
def test_keras_golden_values(make, golden):
    opt = make()
    x = np.ones(10, np.float32)
    grads = np.arange(0.1, 1.1, 0.1).astype(np.float32)[:10]
    opt.update([x], [np.full(10, 0.01, np.float32)])
    for row in golden:
        np.testing.assert_allclose(x, row, rtol=5e-4, atol=5e-4)
        opt.update([x], [grads])


@pytest.mark.parametrize("cls", [Adagrad, Adadelta, Adamax, Nadam, Lion, AdamW, Adam, SGD,
                                 RMSprop])
def test_keras_weight_decay_and_exclusion(cls):
    # Keras 3's test_weight_decay: zero gradients, three optimizers with
    # weight_decay=0.004 and lr=1, the second and third excluding a variable.
    grads = np.zeros((), np.float32)
    var1, var2, var3 = (Variable(np.array(2.0, np.float32), name)
                        for name in ("var1", "exclude", "var3"))
    cls(learning_rate=1.0, weight_decay=0.004).apply_gradients(zip([grads], [var1]))
    opt2 = cls(learning_rate=1.0, weight_decay=0.004)
    opt2.exclude_from_weight_decay(var_names=["exclude"])
    opt2.apply_gradients(zip([grads, grads], [var1, var2]))
    opt3 = cls(learning_rate=1.0, weight_decay=0.004)
    opt3.exclude_from_weight_decay(var_list=[var3])
    opt3.apply_gradients(zip([grads, grads], [var1, var3]))
    assert var1.value == pytest.approx(2.0 * 0.996**3, abs=1e-6)  # 1.9760959
    assert var2.value == 2.0 and var3.value == 2.0


def test_torch_adadelta_and_adamw_agree():
    torch = pytest.importorskip("torch")
    for make, torch_make in [
        (lambda: Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-3),
         lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.8, eps=1e-3)),
        # Keras adds epsilon outside the bias correction, PyTorch inside:
        # equal as epsilon -> 0.
        (lambda: AdamW(learning_rate=0.01, weight_decay=0.1, epsilon=1e-14),
         lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-14)),
    ]:
        values = [w.copy() for w in W0]
        params = [torch.tensor(w, requires_grad=True) for w in W0]
        opt, torch_opt = make(), torch_make(params)
        for grads in GRADS:
            opt.update(values, [g.copy() for g in grads])
            for p, g in zip(params, grads):
                p.grad = torch.tensor(g)
            torch_opt.step()
        for got, p in zip(values, params):
            np.testing.assert_allclose(got, p.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_nadam_keeps_its_momentum_product():
    opt = Nadam(beta_1=0.8)
    opt.update([np.ones(2)], [np.ones(2)])
    opt.update([np.ones(2)], [np.ones(2)])
    expected = 0.8 * (1 - 0.5 * 0.96) * 0.8 * (1 - 0.5 * 0.96**2)
    assert opt.get_state()["u_product"] == pytest.approx(expected, rel=1e-14)


def test_lion_sign_of_zero_and_nan_follow_numpy():
    w = np.array([1.0, -0.0, 2.0, 0.0], np.float32)
    g = np.array([0.0, 0.0, np.nan, -0.0], np.float32)
    Lion(learning_rate=0.5).update([w], [g])
    np.testing.assert_array_equal(w, [1.0, 0.0, np.nan, 0.0])


# ----------------------------------------------------------------------------
# the compiled update against the NumPy rule, weight decay and clipping included


CONFIGS = [
    lambda: AdamW(0.01, weight_decay=0.05), lambda: AdamW(0.01, amsgrad=True),
    lambda: Adagrad(0.1), lambda: Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-3),
    lambda: Adadelta(1.0), lambda: Adadelta(0.5, rho=0.5, weight_decay=0.01),
    lambda: Adamax(), lambda: Adamax(0.1, beta_1=0.5, beta_2=0.7),
    lambda: Nadam(), lambda: Nadam(0.05, beta_1=0.5, beta_2=0.67, epsilon=1e-5),
    lambda: Lion(), lambda: Lion(0.01, beta_1=0.5, beta_2=0.9, weight_decay=0.1),
    lambda: SGD(0.1, momentum=0.9, weight_decay=0.01, clipnorm=1.0),
    lambda: RMSprop(weight_decay=0.01, global_clipnorm=2.0),
    lambda: Adam(clipvalue=0.5, gradient_accumulation_steps=2),
]
CONFIG_IDS = ["adamw", "adamw-amsgrad", "adagrad", "adagrad-0", "adadelta", "adadelta-wd",
              "adamax", "adamax-b", "nadam", "nadam-b", "lion", "lion-wd", "sgd-wd-clip",
              "rmsprop-wd-global", "adam-clip-accumulate"]


def numpy_rule(opt, values, grads):
    """One step by the NumPy statement of the rule, bypassing the kernels."""
    opt._update_compiled = lambda *args: False
    opt.update(values, grads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sizes", [[(3, 3, 1, 4), (4,)], [(3, 3, 64, 64), (64,)]],
                         ids=["small", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", CONFIGS, ids=CONFIG_IDS)
def test_compiled_update_equals_the_numpy_rule_bitwise(make, dtype, sizes, threads, isa,
                                                       restore_settings):
    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(dtype) for s in sizes]
    expected = [v.copy() for v in values]
    compiled, plain = make(), make()
    for _ in range(4):
        grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
        grads[0].reshape(-1)[:2] = [0.0, -0.0]
        compiled.update(values, grads)
        numpy_rule(plain, expected, grads)
    parallel = sum(v.size for v in values) >= _optim.PARALLEL_MIN_ELEMENTS
    if fastconv.openmp_enabled():
        assert _optim.last_team_size() == (threads if parallel else 1)
    for got, want in zip(values, expected):
        assert got.tobytes() == want.tobytes()
    for key, want in plain.get_state().items():
        assert compiled.get_state()[key].tobytes() == want.tobytes(), key


@pytest.mark.parametrize("make", CONFIGS, ids=CONFIG_IDS)
def test_compiled_update_propagates_nan_as_numpy(make):
    grads = [np.array([np.nan, 1.0, -2.0], np.float32)]
    values, expected = [np.ones(3, np.float32)], [np.ones(3, np.float32)]
    compiled, plain = make(), make()
    for _ in range(2):
        compiled.update(values, grads)
        numpy_rule(plain, expected, grads)
    np.testing.assert_array_equal(values[0], expected[0])


def test_none_gradient_leaves_its_parameter_and_state_alone():
    a, b = np.ones(3, np.float32), np.ones(2, np.float32)
    opt = AdamW(0.1)
    opt.update([a, b], [np.ones(3, np.float32), None])
    np.testing.assert_array_equal(b, 1.0)
    assert not np.array_equal(a, 1.0)
    assert not opt.get_state()["momentum_1"].any()
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.update([a, b], [None, None])


@pytest.mark.parametrize("name, cls", [("adamw", AdamW), ("AdamW", AdamW),
                                       ("adagrad", Adagrad), ("adadelta", Adadelta),
                                       ("adamax", Adamax), ("Nadam", Nadam), ("lion", Lion)])
def test_get_by_name_and_config_round_trip(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls and opt.get_config() == cls().get_config()
    assert opt.name == cls.__name__.lower()
    again = optimizers.get(optimizers.serialize(opt))
    assert type(again) is cls and again.get_config() == opt.get_config()


def test_keras_configs_and_defaults():
    base = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
            "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
            "ema_overwrite_frequency": None, "loss_scale_factor": None,
            "gradient_accumulation_steps": None}
    expected = {
        AdamW: {"name": "adamw", "learning_rate": 0.001, **base, "weight_decay": 0.004,
                "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False},
        Adagrad: {"name": "adagrad", "learning_rate": 0.001, **base,
                  "initial_accumulator_value": 0.1, "epsilon": 1e-07},
        Adadelta: {"name": "adadelta", "learning_rate": 0.001, **base, "rho": 0.95,
                   "epsilon": 1e-07},
        Adamax: {"name": "adamax", "learning_rate": 0.001, **base, "beta_1": 0.9,
                 "beta_2": 0.999, "epsilon": 1e-07},
        Nadam: {"name": "nadam", "learning_rate": 0.001, **base, "beta_1": 0.9,
                "beta_2": 0.999, "epsilon": 1e-07},
        Lion: {"name": "lion", "learning_rate": 0.001, **base, "beta_1": 0.9, "beta_2": 0.99},
    }
    for cls, config in expected.items():
        assert cls().get_config() == config
        assert cls.from_config(config).get_config() == config


@pytest.mark.parametrize("cls, kwargs, error", [
    (AdamW, {"weight_decay": None}, ValueError),
    (AdamW, {"weight_decay": -0.1}, ValueError),
    (Adagrad, {"initial_accumulator_value": -1.0}, ValueError),
    (Adagrad, {"epsilon": 0.0}, ValueError),
    (Adadelta, {"rho": 1.0}, ValueError),
    (Adadelta, {"epsilon": "1e-7"}, TypeError),
    (Adamax, {"beta_1": 1.0}, ValueError),
    (Adamax, {"beta_2": 1.5}, ValueError),
    (Nadam, {"beta_2": -0.1}, ValueError),
    (Nadam, {"epsilon": float("inf")}, ValueError),
    (Lion, {"beta_1": 0.0}, ValueError),
    (Lion, {"beta_2": 2.0}, ValueError),
])
def test_bad_hyper_parameters(cls, kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=f"`{name}`.*{name}="):
        cls(**kwargs)

"""fastconv.optimizers against Keras 3's update rules written out by hand.

Each reference below restates the rule of ``keras/src/optimizers/{sgd,
rmsprop,adam}.py`` in float64 NumPy, one parameter at a time, independently
of the module under test; the optimizers run two steps on two parameters and
must agree to float32 (or float64) rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import optimizers
from fastconv.optimizers import SGD, Adam, RMSprop

TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}

# Two parameters, two steps; the second gradient is smaller than the first so
# that AMSGrad's running maximum differs from Adam's velocity.
W0 = [np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]]), np.array([1.5, -2.5])]
GRADS = [
    [np.array([[0.3, -0.8, 1.2], [-0.05, 0.4, 2.0]]), np.array([-1.0, 0.7])],
    [np.array([[0.1, 0.2, -0.3], [0.01, -0.1, 0.05]]), np.array([0.2, -0.1])],
]


def sgd_reference(w, grads, lr, momentum, nesterov):
    m = np.zeros_like(w)
    for g in grads:
        if momentum == 0:
            w = w - lr * g
        else:
            m = momentum * m - lr * g
            w = w + (momentum * m - lr * g if nesterov else m)
    return w


def rmsprop_reference(w, grads, lr, rho, momentum, epsilon, centered):
    v, a, mom = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * g**2
        if centered:
            a = rho * a + (1 - rho) * g
            step = lr * g / np.sqrt(v - a**2 + epsilon)
        else:
            step = lr * g / np.sqrt(v + epsilon)
        if momentum > 0:
            mom = momentum * mom + step
            w = w - mom
        else:
            w = w - step
    return w


def adam_reference(w, grads, lr, beta_1, beta_2, epsilon, amsgrad):
    m, v, v_hat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        v_hat = np.maximum(v_hat, v)
        w = w - alpha * m / (np.sqrt(v_hat if amsgrad else v) + epsilon)
    return w


def run(opt, dtype, steps=2):
    values = [w.astype(dtype) for w in W0]
    for grads in GRADS[:steps]:
        opt.update(values, [g.astype(dtype) for g in grads])
    return values


def check_against(opt, dtype, reference, **hyper):
    values = run(opt, dtype)
    for i, value in enumerate(values):
        assert value.dtype == dtype
        expected = reference(W0[i], [g[i] for g in GRADS], **hyper)
        np.testing.assert_allclose(value, expected, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype])
    assert opt.iterations == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                                (0.5, True)])
def test_sgd_two_steps(dtype, momentum, nesterov):
    opt = SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov)
    check_against(opt, dtype, sgd_reference, lr=0.1, momentum=momentum, nesterov=nesterov)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_two_steps(dtype, momentum, centered):
    opt = RMSprop(learning_rate=0.01, rho=0.8, momentum=momentum, epsilon=1e-3,
                  centered=centered)
    check_against(opt, dtype, rmsprop_reference, lr=0.01, rho=0.8, momentum=momentum,
                  epsilon=1e-3, centered=centered)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_two_steps(dtype, amsgrad):
    opt = Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-3, amsgrad=amsgrad)
    check_against(opt, dtype, adam_reference, lr=0.01, beta_1=0.8, beta_2=0.9,
                  epsilon=1e-3, amsgrad=amsgrad)


def test_amsgrad_changes_the_second_step():
    plain, ams = run(Adam(0.01, amsgrad=False), np.float64), run(Adam(0.01, amsgrad=True),
                                                                 np.float64)
    assert not np.allclose(plain[0], ams[0], rtol=1e-6, atol=0)


def test_rmsprop_keras_docstring_example():
    # keras.optimizers.RMSprop docstring: var1 = 10, loss = var1**2 / 2,
    # one minimize step with learning_rate=0.1 gives 9.683772.
    var = np.array(10.0, dtype=np.float32)
    RMSprop(learning_rate=0.1).update([var], [var.copy()])
    assert var == pytest.approx(9.683772, abs=1e-6)


def test_adam_first_step_is_learning_rate_times_sign():
    # At t = 1: alpha * m / sqrt(v) = lr * sign(g), up to epsilon.
    w = np.array([1.0, -1.0, 0.5], dtype=np.float32)
    Adam(learning_rate=0.001).update([w], [np.array([3.0, -0.2, 40.0], np.float32)])
    np.testing.assert_allclose(w, [0.999, -0.999, 0.499], atol=1e-6)


BASE_CONFIG = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
               "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
               "ema_overwrite_frequency": None, "loss_scale_factor": None,
               "gradient_accumulation_steps": None}


def test_defaults_and_names_match_keras():
    # Keras 3's get_config: name, learning_rate, the base keys, then the rule's.
    assert SGD().get_config() == {"name": "SGD", "learning_rate": 0.01, **BASE_CONFIG,
                                  "momentum": 0.0, "nesterov": False}
    assert RMSprop().get_config() == {"name": "rmsprop", "learning_rate": 0.001,
                                      **BASE_CONFIG, "rho": 0.9, "momentum": 0.0,
                                      "epsilon": 1e-07, "centered": False}
    assert Adam().get_config() == {"name": "adam", "learning_rate": 0.001, **BASE_CONFIG,
                                   "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
                                   "amsgrad": False}
    assert list(Adam().get_config())[:11] == ["name", "learning_rate", *BASE_CONFIG]


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), RMSprop(centered=True, momentum=0.5),
                                 Adam(amsgrad=True)], ids=repr)
def test_float32_is_kept_everywhere(opt):
    values = [w.astype(np.float32) for w in W0]
    opt.update(values, [g.astype(np.float64) for g in GRADS[0]])  # grads cast to float32
    assert all(v.dtype == np.float32 for v in values)
    assert all(a.dtype == np.float32 for k, a in opt.get_state().items() if k != "iterations")


def test_update_is_in_place_and_counts_iterations():
    w = np.ones(3, dtype=np.float32)
    opt = SGD(0.5)
    opt.update([w], [np.ones(3, dtype=np.float32)])
    np.testing.assert_array_equal(w, [0.5, 0.5, 0.5])
    opt.update([], [])  # no parameters: a no-op, as in Keras
    assert opt.iterations == 1


def test_learning_rate_is_settable():
    opt = SGD(0.1)
    opt.learning_rate = 0.5
    w = np.zeros(2)
    opt.update([w], [np.ones(2)])
    np.testing.assert_array_equal(w, [-0.5, -0.5])
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -0.1


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9, nesterov=True),
                                  lambda: RMSprop(0.01, momentum=0.3, centered=True),
                                  lambda: Adam(0.01, amsgrad=True)])
def test_state_round_trip_resumes_exactly(make):
    a = make()
    values = run(a, np.float32)
    state = a.get_state()
    b = optimizers.get(optimizers.serialize(a))
    b.set_state(state)
    assert b.iterations == 2
    state["iterations"][...] = 99  # get_state returned copies; b keeps its own
    copies = [v.copy() for v in values]
    grads = [g.astype(np.float32) for g in GRADS[0]]
    a.update(values, grads)
    b.update(copies, grads)
    for x, y in zip(values, copies):
        np.testing.assert_array_equal(x, y)
    assert a.iterations == b.iterations == 3


def test_state_before_first_update_and_for_plain_sgd():
    fresh = Adam().get_state()
    assert list(fresh) == ["iterations"] and fresh["iterations"] == 0
    sgd = SGD(0.1)
    run(sgd, np.float64)
    assert list(sgd.get_state()) == ["iterations"]
    restored = SGD(0.1)
    restored.set_state(sgd.get_state())
    assert restored.iterations == 2


@pytest.mark.parametrize("state, match", [
    ({}, "missing key 'iterations'"),
    ({"iterations": np.array(-1)}, "non-negative integer"),
    ({"iterations": np.array(1.5)}, "non-negative integer"),
    ({"iterations": np.array(1), "momentum_0": np.zeros(2)}, r"missing keys \['velocity_0'\]"),
    ({"iterations": np.array(1), "momentum_0": np.zeros(2), "velocity_0": np.zeros(3)},
     "shapes"),
    ({"iterations": np.array(1), "momentum_1": np.zeros(2), "velocity_1": np.zeros(2)},
     r"unexpected keys \['momentum_1', 'velocity_1'\]"),
    ({"iterations": np.array(1), "momentum_0": np.zeros(2), "velocity_0": np.zeros(2),
      "velocity_hat_0": np.zeros(2)}, r"unexpected keys \['velocity_hat_0'\]"),
    ({"iterations": np.array(3)}, "no per-parameter arrays"),
    ({"iterations": np.array(1), "momentum_0": np.zeros(2, int), "velocity_0": np.zeros(2)},
     "float arrays"),
])
def test_bad_state(state, match):
    with pytest.raises(ValueError, match=match):
        Adam().set_state(state)


def test_different_parameters_later_are_rejected():
    opt = Adam()
    run(opt, np.float32, steps=1)
    with pytest.raises(ValueError, match="built for 2 parameters"):
        opt.update([np.zeros(2, np.float32)], [np.zeros(2, np.float32)])
    with pytest.raises(ValueError, match=r"shapes"):
        opt.update([np.zeros((3, 2), np.float32), np.zeros(2, np.float32)],
                   [np.zeros((3, 2), np.float32), np.zeros(2, np.float32)])


def test_bad_update_arguments():
    opt = SGD()
    w = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="one gradient per parameter"):
        opt.update([w], [])
    with pytest.raises(ValueError, match=r"grads\[0\].*\(3,\).*\(4,\)"):
        opt.update([w], [np.zeros(4)])
    for bad in (np.zeros(3, np.int32), np.zeros(3, np.float16), [0.0, 0.0, 0.0]):
        with pytest.raises(TypeError, match="float32 or float64 numpy.ndarray"):
            opt.update([bad], [np.zeros(3)])
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.update([w], [np.zeros(3)])
    with pytest.raises(TypeError, match="list of arrays"):
        opt.update(np.zeros(3), [np.zeros(3)])


@pytest.mark.parametrize("cls, kwargs, error", [
    (SGD, {"learning_rate": -1.0}, ValueError),
    (SGD, {"learning_rate": float("nan")}, ValueError),
    (SGD, {"learning_rate": "0.1"}, TypeError),
    (SGD, {"momentum": -0.1}, ValueError),
    (SGD, {"momentum": 1.5}, ValueError),
    (SGD, {"nesterov": 1}, TypeError),
    (RMSprop, {"rho": 1.0}, ValueError),
    (RMSprop, {"rho": -0.1}, ValueError),
    (RMSprop, {"momentum": -0.5}, ValueError),
    (RMSprop, {"epsilon": 0.0}, ValueError),
    (RMSprop, {"centered": "yes"}, TypeError),
    (Adam, {"beta_1": 1.0}, ValueError),
    (Adam, {"beta_2": -0.1}, ValueError),
    (Adam, {"epsilon": -1e-7}, ValueError),
    (Adam, {"amsgrad": None}, TypeError),
    (Adam, {"learning_rate": True}, TypeError),
])
def test_bad_hyper_parameters(cls, kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=f"`{name}`.*received {name}="):
        cls(**kwargs)


def test_integer_hyper_parameters_are_accepted():
    assert SGD(learning_rate=1, momentum=0).get_config()["learning_rate"] == 1.0


@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("SGD", SGD), ("rmsprop", RMSprop),
                                       ("RMSprop", RMSprop), ("Adam", Adam), ("ADAM", Adam)])
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls and opt.get_config() == cls().get_config()


def test_get_instance_and_dict():
    opt = Adam(0.1)
    assert optimizers.get(opt) is opt
    got = optimizers.get({"class_name": "adam", "config": {"learning_rate": 0.5}})
    assert isinstance(got, Adam) and got.learning_rate == 0.5
    assert isinstance(optimizers.get({"class_name": "SGD"}), SGD)


@pytest.mark.parametrize("opt", [SGD(0.2, momentum=0.3, nesterov=True, name="s"),
                                 RMSprop(0.02, rho=0.5, momentum=0.1, epsilon=1e-5,
                                         centered=True),
                                 Adam(0.03, beta_1=0.5, beta_2=0.6, epsilon=1e-4,
                                      amsgrad=True)], ids=repr)
def test_serialize_round_trip(opt):
    data = optimizers.serialize(opt)
    assert data["class_name"] == type(opt).__name__
    again = optimizers.get(data)
    assert type(again) is type(opt) and again.get_config() == opt.get_config()


def test_keras_config_loads():
    keras_config = {"name": "adam", "learning_rate": 0.001, "weight_decay": None,
                    "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                    "loss_scale_factor": None, "gradient_accumulation_steps": None,
                    "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}
    assert Adam.from_config(keras_config).get_config() == keras_config
    assert Adam.from_config({**keras_config, "clipnorm": 1.0}).clipnorm == 1.0
    with pytest.raises(ValueError, match="loss_scale_factor=128"):
        Adam.from_config({**keras_config, "loss_scale_factor": 128})
    with pytest.raises(ValueError, match=r"unknown keys \['foo'\]"):
        Adam.from_config({"foo": 1})


ALL_NAMES = r"\['adadelta', 'adagrad', 'adam', 'adamax', 'adamw', 'lion', 'nadam', 'rmsprop', 'sgd'\]"


@pytest.mark.parametrize("identifier", ["ftrl", 3, None, {"class_name": "lamb"}])
def test_get_rejects_unknown(identifier):
    with pytest.raises(ValueError, match=ALL_NAMES):
        optimizers.get(identifier)


@pytest.mark.parametrize("make", [optimizers.SGD, optimizers.RMSprop, optimizers.Adam])
def test_state_saved_before_the_first_step_restores(make):
    # A model saved right after compile() carries a state with no slots yet.
    fresh = make()
    restored = make()
    restored.set_state(fresh.get_state())
    assert restored.iterations == 0
    values = [np.ones(3, np.float32)]
    restored.update(values, [np.full(3, 0.5, np.float32)])
    assert restored.iterations == 1 and not np.array_equal(values[0], np.ones(3))


# ----------------------------------------------------------------------------
# the compiled update (fastconv._kernels.optim) against the NumPy rule


CONFIGS = [
    lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.9), lambda: SGD(0.1, momentum=0.9, nesterov=True),
    lambda: RMSprop(), lambda: RMSprop(momentum=0.5), lambda: RMSprop(centered=True),
    lambda: RMSprop(0.01, rho=0.8, momentum=0.3, centered=True, epsilon=1e-3),
    lambda: Adam(), lambda: Adam(0.01, beta_1=0.5, amsgrad=True),
]


def numpy_rule(opt, values, grads):
    """One step by the NumPy statement of the rule, bypassing the kernels."""
    opt._update_compiled = lambda *args: False
    opt.update(values, grads)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("sizes", [[(3, 3, 1, 4), (4,)], [(3, 3, 64, 64), (64,), (100, 7)]],
                         ids=["small", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", CONFIGS)
def test_compiled_update_equals_the_numpy_rule_bitwise(make, dtype, sizes, threads, isa,
                                                       restore_settings):
    import fastconv

    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(dtype) for s in sizes]
    expected = [v.copy() for v in values]
    compiled, plain = make(), make()
    for step in range(3):
        grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
        grads[0].reshape(-1)[:2] = [0.0, -0.0]
        compiled.update(values, grads)
        numpy_rule(plain, expected, grads)
    from fastconv._kernels import optim

    parallel = sum(v.size for v in values) >= optim.PARALLEL_MIN_ELEMENTS
    if fastconv.openmp_enabled():
        assert optim.last_team_size() == (threads if parallel else 1)
    for got, want in zip(values, expected):
        assert got.tobytes() == want.tobytes()
    for slot in plain._slots:
        for got, want in zip(compiled._slots[slot], plain._slots[slot]):
            assert got.tobytes() == want.tobytes()


def test_compiled_update_propagates_nan_as_numpy():
    grads = [np.array([np.nan, 1.0, -2.0], np.float32)]
    for make in CONFIGS:
        values, expected = [np.ones(3, np.float32)], [np.ones(3, np.float32)]
        compiled, plain = make(), make()
        compiled.update(values, grads)
        numpy_rule(plain, expected, grads)
        np.testing.assert_array_equal(values[0], expected[0])
        assert np.isnan(values[0][0]) and not np.isnan(values[0][1:]).any()


@pytest.mark.parametrize("make", CONFIGS)
def test_arrays_the_kernels_cannot_take_follow_the_numpy_rule(make):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 5)).astype(np.float32)
    grad = rng.standard_normal((5, 6)).astype(np.float32)
    # A transposed (Fortran-ordered) parameter, and a parameter that is its
    # own gradient: the kernels' loops assume neither.
    transposed, contiguous = base.T.copy(order="F"), base.T.copy()
    make().update([transposed], [grad])
    make().update([contiguous], [grad])
    np.testing.assert_array_equal(transposed, contiguous)
    aliased, expected = grad.copy(), grad.copy()
    make().update([aliased], [aliased])
    numpy_rule(make(), [expected], [expected])
    np.testing.assert_array_equal(aliased, expected)


def test_subclasses_restating_the_rule_run_it():
    # The kernels compute the built-in rules; a subclass with its own
    # _update_one (gradient clipping here), or a new optimizer that only
    # states _update_one, must run its rule.
    class ClippedSGD(SGD):
        def _update_one(self, index, value, grad):
            super()._update_one(index, value, np.clip(grad, -1, 1))

    class SignDescent(optimizers.Optimizer):
        def _update_one(self, index, value, grad):
            value -= self.learning_rate * np.sign(grad)

    w = np.zeros(4, np.float32)
    ClippedSGD(learning_rate=1.0).update([w], [np.full(4, 100, np.float32)])
    np.testing.assert_array_equal(w, -1.0)
    SignDescent(0.5).update([w], [np.array([3.0, -2.0, 0.0, 1.0], np.float32)])
    np.testing.assert_array_equal(w, [-1.5, -0.5, -1.0, -1.5])


def test_masked_parameters_follow_the_numpy_rule():
    w = np.ma.masked_array(np.ones(3, np.float32), mask=[False, True, False])
    SGD(0.5).update([w], [np.ones(3, np.float32)])
    np.testing.assert_array_equal(w.data, [0.5, 1.0, 0.5])  # the masked entry is left alone

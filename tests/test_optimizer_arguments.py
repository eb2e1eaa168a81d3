"""The base optimizer's arguments with Keras 3's semantics: clipping, weight
decay, gradient accumulation, the learning rate and the saved state."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from fastconv import layers, models, optimizers
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
    schedules,
)


def sgd_step(**kwargs):
    """One plain SGD step, lr = 1, from w = 0: returns -(the processed gradients)."""
    return lambda grads: _run(SGD(learning_rate=1.0, **kwargs), grads)


def _run(opt, grads):
    values = [np.zeros_like(np.asarray(g, np.float64)) for g in grads]
    opt.update(values, [np.asarray(g, np.float64) for g in grads])
    return [-v for v in values]


def test_clipnorm_is_per_parameter():
    # Keras' test_clip_norm: [100, 100] with clipnorm=1 -> [1, 1] / sqrt(2).
    got = sgd_step(clipnorm=1.0)([[100.0, 100.0], [0.3, 0.4]])
    np.testing.assert_allclose(got[0], [2**0.5 / 2, 2**0.5 / 2], rtol=1e-15)
    np.testing.assert_array_equal(got[1], [0.3, 0.4])  # norm 0.5 <= 1: untouched
    np.testing.assert_array_equal(sgd_step(clipnorm=1.0)([[0.0, 0.0]])[0], [0.0, 0.0])


def test_global_clipnorm_scales_all_together():
    # norm of (3, 4, 12) is 13; clip at 6.5 halves every gradient.
    got = sgd_step(global_clipnorm=6.5)([[3.0, 4.0], [12.0]])
    np.testing.assert_allclose(got[0], [1.5, 2.0], rtol=1e-15)
    np.testing.assert_allclose(got[1], [6.0], rtol=1e-15)
    small = sgd_step(global_clipnorm=100.0)([[3.0, 4.0], [12.0]])
    np.testing.assert_allclose(small[0], [3.0, 4.0], rtol=1e-15)
    with np.errstate(invalid="ignore"):
        infinite = sgd_step(global_clipnorm=1.0)([[np.inf, 1.0]])
    assert np.isnan(infinite[0]).all()  # Keras: a non-finite norm makes NaN


def test_clipvalue():
    got = sgd_step(clipvalue=1.0)([[100.0, -100.0, 0.5]])
    np.testing.assert_array_equal(got[0], [1.0, -1.0, 0.5])


def test_clipping_leaves_the_callers_gradients_alone():
    g = np.array([100.0, 100.0])
    SGD(clipnorm=1.0).update([np.zeros(2)], [g])
    np.testing.assert_array_equal(g, [100.0, 100.0])


def test_weight_decay_before_the_rule():
    # w = 2, g = 1, lr = 0.1, weight_decay = 0.5: w <- 2 - 2 * 0.5 * 0.1 = 1.9,
    # then SGD: 1.9 - 0.1 * 1 = 1.8.
    w = np.array([2.0])
    SGD(learning_rate=0.1, weight_decay=0.5).update([w], [np.ones(1)])
    assert w[0] == pytest.approx(1.8, abs=1e-15)
    # RMSprop: v = 0.1, step = 0.1 / sqrt(0.1 + 1e-7).
    w = np.array([2.0])
    RMSprop(learning_rate=0.1, weight_decay=0.5).update([w], [np.ones(1)])
    assert w[0] == pytest.approx(1.9 - 0.1 / np.sqrt(0.1 + 1e-7), abs=1e-14)


def test_weight_decay_uses_the_scheduled_learning_rate():
    lr = schedules.PiecewiseConstantDecay([0], [1.0, 0.5])  # 1.0 at step 0, then 0.5
    opt = SGD(learning_rate=lr, weight_decay=0.1)
    w = np.array([1.0])
    opt.update([w], [np.zeros(1)])
    opt.update([w], [np.zeros(1)])
    assert w[0] == pytest.approx((1 - 0.1) * (1 - 0.05), abs=1e-15)


def test_exclude_from_weight_decay_by_name_in_fit():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    opt = SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=opt, loss="mse")
    kernel, bias = (v.value for v in model.trainable_weights)
    kernel[...] = 1.0
    bias[...] = 1.0
    # Zero inputs and targets equal to the outputs: zero gradients, only decay.
    model.train_on_batch(np.zeros((4, 3), np.float32), np.ones((4, 2), np.float32))
    np.testing.assert_allclose(kernel, 0.95, rtol=1e-7)
    np.testing.assert_array_equal(bias, 1.0)


def test_exclude_from_weight_decay_errors():
    opt = SGD(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(ValueError, match="needs the variables' names"):
        opt.update([np.zeros(2)], [np.zeros(2)])
    opt = SGD(weight_decay=0.1)
    opt.update([np.zeros(2)], [np.zeros(2)])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(TypeError, match="var_names"):
        SGD().exclude_from_weight_decay(var_names="bias")


def test_gradient_accumulation_as_keras():
    # Keras' test_gradient_accumulation: SGD(1.0), 3 steps, gradients of ones.
    v = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    g = np.ones((2, 2), np.float32)
    opt = SGD(learning_rate=1.0, gradient_accumulation_steps=3)
    expected = [([[1, 2], [3, 4]], 1, 0, 1), ([[1, 2], [3, 4]], 2, 0, 2),
                ([[0, 1], [2, 3]], 0, 1, 3), ([[0, 1], [2, 3]], 1, 1, 4)]
    for value, accumulated, iterations, calls in expected:
        opt.update([v], [g])
        np.testing.assert_array_equal(v, value)
        np.testing.assert_array_equal(opt.get_state()["gradient_accumulator_0"], accumulated)
        assert opt.iterations == iterations and opt.get_state()["iterations"] == calls


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, Lion,
                                 Nadam])
def test_gradient_accumulation_equals_the_mean_gradient(cls):
    # Keras' test_gradient_accumulation_with_weigth_decay.
    rng = np.random.default_rng(0)
    one = cls(weight_decay=0.05)
    three = cls(weight_decay=0.05, gradient_accumulation_steps=3)
    v1, v3 = np.array([[0.9], [0.5]]), np.array([[0.9], [0.5]])
    for _ in range(8):
        grads = rng.random((3, 2, 1))
        one.update([v1], [(grads[0] + grads[1] + grads[2]) / 3])
        for batch in grads:
            three.update([v3], [batch])
    np.testing.assert_allclose(v1, v3, rtol=1e-12, atol=1e-14)
    assert one.iterations == three.iterations == 8


def test_learning_rate_is_readable_and_settable():
    opt = Adam(0.01)
    assert opt.learning_rate == 0.01
    opt.learning_rate = np.float32(0.5)
    assert opt.learning_rate == 0.5 and isinstance(opt.learning_rate, float)
    assert opt.get_config()["learning_rate"] == 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0


def test_ema_as_keras():
    # Keras' test_ema: SGD(1.0), momentum 0.9, overwrite every 3 updates.
    v = np.array([[3.0, 4.0], [5.0, 6.0]], np.float32)
    g = np.ones((2, 2), np.float32)
    opt = SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    for value, average in [([[2, 3], [4, 5]], [[2, 3], [4, 5]]),
                           ([[1, 2], [3, 4]], [[1.9, 2.9], [3.9, 4.9]]),
                           ([[1.71, 2.71], [3.71, 4.71]], [[1.71, 2.71], [3.71, 4.71]])]:
        opt.update([v], [g])
        np.testing.assert_allclose(v, value, rtol=1e-6)
        np.testing.assert_allclose(opt.get_state()["average_0"], average, rtol=1e-6)


def test_ema_with_model_fit():
    # Keras' test_ema_with_model_fit: the weights end as their average 0.891.
    model = models.Sequential([layers.Input((1,)),
                               layers.Dense(2, kernel_initializer="ones", use_bias=False)])
    opt = SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9)
    model.compile(optimizer=opt, loss="mse")
    model.fit(np.ones((1, 1), np.float32), np.zeros((1, 2), np.float32), batch_size=1,
              epochs=2, verbose=0)
    np.testing.assert_allclose(opt.get_state()["average_0"], [[0.891, 0.891]], atol=1e-5)
    np.testing.assert_allclose(model.trainable_weights[0].value, [[0.891, 0.891]], atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"clipnorm": 1.0, "clipvalue": 1.0}, "Only one of `clipnorm`"),
    ({"clipnorm": 1.0, "global_clipnorm": 1.0}, "Only one of `clipnorm`"),
    ({"clipnorm": 0.0}, "`clipnorm`.*clipnorm=0.0"),
    ({"clipvalue": -1.0}, "`clipvalue`.*clipvalue=-1.0"),
    ({"global_clipnorm": "1"}, "`global_clipnorm`"),
    ({"weight_decay": -0.1}, "`weight_decay`.*weight_decay=-0.1"),
    ({"gradient_accumulation_steps": 1}, "`gradient_accumulation_steps`.*>= 2"),
    ({"gradient_accumulation_steps": 2.0}, "`gradient_accumulation_steps`"),
    ({"use_ema": 1}, "`use_ema`"),
    ({"use_ema": True, "ema_momentum": 1.5}, "`ema_momentum`"),
    ({"use_ema": True, "ema_overwrite_frequency": 0}, "`ema_overwrite_frequency`"),
    ({"loss_scale_factor": 128.0}, "`loss_scale_factor`.*not support"),
])
def test_bad_base_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Adam(**kwargs)


def test_apply_gradients_with_variables():
    w = Variable(np.array([1.0, 2.0], np.float32), "w")
    b = Variable(np.array([3.0], np.float32), "b")
    opt = SGD(0.5)
    assert opt.apply_gradients(zip([np.ones(2, np.float32), None], [w, b])) == 1
    np.testing.assert_array_equal(w.value, [0.5, 1.5])
    np.testing.assert_array_equal(b.value, [3.0])
    with pytest.raises(ValueError, match="No gradients provided"):
        opt.apply_gradients(zip([None, None], [w, b]))


# ----------------------------------------------------------------------------
# state saved with the model


MAKERS = [
    lambda: SGD(0.05, momentum=0.9, nesterov=True),
    lambda: RMSprop(0.01, momentum=0.5, centered=True),
    lambda: Adam(0.01, amsgrad=True),
    lambda: AdamW(0.01, weight_decay=0.1),
    lambda: Adagrad(0.1),
    lambda: Adadelta(1.0),
    lambda: Adamax(0.01),
    lambda: Nadam(0.01),
    lambda: Lion(0.001),
    lambda: Adam(schedules.ExponentialDecay(0.01, 2, 0.5), gradient_accumulation_steps=2,
                 clipnorm=0.5),
    lambda: Nadam(0.01, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2),
]
MAKER_IDS = ["sgd", "rmsprop", "adam", "adamw", "adagrad", "adadelta", "adamax", "nadam",
             "lion", "adam-schedule-accumulate", "nadam-ema"]


def small_model(opt):
    model = models.Sequential([layers.Input((4,)), layers.Dense(3, activation="relu"),
                               layers.Dense(2)])
    model.compile(optimizer=opt, loss="mse")
    return model


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_save_mid_training_resumes_bitwise(make, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 2))
    model = small_model(make())
    for _ in range(3):
        model.train_on_batch(x, y.astype(np.float32))
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations
    for _ in range(2):
        model.train_on_batch(x, y.astype(np.float32))
        loaded.train_on_batch(x, y.astype(np.float32))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert a.tobytes() == b.tobytes()


def test_state_of_other_weights_is_rejected_on_load(tmp_path):
    model = small_model(Adam(0.01))
    model.train_on_batch(np.ones((2, 4), np.float32), np.ones((2, 2), np.float32))
    model.save(tmp_path / "m.zip")
    # The same file with the first weight's moments of another shape.
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        config = archive.read("config.json")
        with np.load(io.BytesIO(archive.read("weights.npz"))) as stored:
            arrays = dict(stored)
    for slot in ("momentum_0", "velocity_0", "velocity_hat_0"):
        if f"optimizer/{slot}" in arrays:
            arrays[f"optimizer/{slot}"] = np.zeros((5, 3), np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("config.json", config)
        archive.writestr("weights.npz", buffer.getvalue())
    with pytest.raises(ValueError, match=r"saved for 4 weights.*\(5, 3\).*\(4, 3\)"):
        models.load_model(tmp_path / "bad.zip")


def test_nadam_state_needs_its_product():
    opt = Nadam()
    opt.update([np.ones(2)], [np.ones(2)])
    state = opt.get_state()
    del state["u_product"]
    with pytest.raises(ValueError, match=r"missing keys \['u_product'\]"):
        Nadam().set_state(state)


def test_optimizer_serialize_get_deserialize():
    opt = AdamW(0.01, weight_decay=0.2, clipvalue=0.5, gradient_accumulation_steps=4)
    data = optimizers.serialize(opt)
    assert data["class_name"] == "AdamW"
    for again in (optimizers.get(data), optimizers.deserialize(data)):
        assert type(again) is AdamW and again.get_config() == opt.get_config()

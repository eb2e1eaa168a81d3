"""fastconv.optimizers.schedules against Keras 3's formulas, worked out by hand
at chosen steps, and as the learning rate of the optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastconv import optimizers
from fastconv.optimizers import SGD, Adam, schedules
from fastconv.optimizers.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    PolynomialDecay,
)


@pytest.mark.parametrize("schedule, step, expected", [
    (ExponentialDecay(0.05, 10, 0.96), 5, 0.05 * 0.96**0.5),
    (ExponentialDecay(0.1, 3, 0.96, staircase=True), 2, 0.1),
    (ExponentialDecay(0.1, 3, 0.96, staircase=True), 100, 0.1 * 0.96**33),
    (ExponentialDecay(1.0, 4, 0.5), 0, 1.0),
    (ExponentialDecay(1.0, 4, 0.5), 8, 0.25),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 0, 1.0),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 100, 1.0),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 101, 0.1),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 110, 0.1),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 120, 0.01),
    (PiecewiseConstantDecay([100, 110, 120], [1.0, 0.1, 0.01, 0.001]), 999, 0.001),
    (PolynomialDecay(0.1, 10, 0.0), 5, 0.05),
    (PolynomialDecay(0.1, 10, 0.01), 10, 0.01),
    (PolynomialDecay(0.1, 10, 0.01), 5, 0.055),
    (PolynomialDecay(0.1, 10, 0.01), 15, 0.01),
    # cycle: decay_steps becomes 20 at step 15, (1 - 15/20) = 0.25.
    (PolynomialDecay(0.1, 10, 0.01, cycle=True), 15, 0.09 * 0.25 + 0.01),
    (PolynomialDecay(0.1, 10, 0.01, cycle=True), 0, 0.1),
    (PolynomialDecay(0.1, 10, 0.01, power=0.5), 5, 0.09 * 0.5**0.5 + 0.01),
    (PolynomialDecay(0.1, 10, 0.01, power=2.0, cycle=True), 25, 0.09 * (1 / 6) ** 2 + 0.01),
    (InverseTimeDecay(0.1, 1.0, 0.5), 3, 0.1 / 2.5),
    (InverseTimeDecay(0.1, 2, 0.5, staircase=True), 3, 0.1 / 1.5),
    (CosineDecay(1.0, 10), 0, 1.0),
    (CosineDecay(1.0, 10), 5, 0.5),
    (CosineDecay(1.0, 10, alpha=0.2), 5, 0.8 * 0.5 + 0.2),
    (CosineDecay(1.0, 10, alpha=0.2), 30, 0.2),
    (CosineDecay(2.0, 8), 2, 2.0 * 0.5 * (1 + math.cos(math.pi / 4))),
    # warmup from 0 to 1 over 4 steps, then cosine from 1 over 10 steps.
    (CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 1, 0.25),
    (CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 4, 1.0),
    (CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 9, 0.5),
    (CosineDecay(0.0, 10, alpha=0.1, warmup_target=1.0, warmup_steps=4), 100, 0.1),
    (CosineDecayRestarts(1.0, 10, t_mul=1.0), 15, 0.5),
    (CosineDecayRestarts(1.0, 10, t_mul=1.0, m_mul=0.5), 20, 0.25),
    # t_mul=2: periods [0, 10), [10, 30), [30, 70); step 20 is half the second.
    (CosineDecayRestarts(1.0, 10), 20, 0.5),
    # step 40: 10 steps into the third period of 40 (i = 2), fraction 0.25.
    (CosineDecayRestarts(1.0, 10, m_mul=0.5), 40,
     0.5 * 0.25 * (1 + math.cos(math.pi / 4))),
    (CosineDecayRestarts(1.0, 10, m_mul=0.5, alpha=0.2), 5, 0.8 * 0.5 + 0.2),
    (CosineDecayRestarts(2.0, 10), 5, 1.0),
], ids=repr)
def test_schedule_values(schedule, step, expected):
    assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("schedule", [
    ExponentialDecay(0.1, 100, 0.9, staircase=True, name="e"),
    PiecewiseConstantDecay([5, 10], [0.3, 0.2, 0.1]),
    PolynomialDecay(0.1, 50, 0.001, power=0.5, cycle=True),
    InverseTimeDecay(0.2, 7, 0.3),
    CosineDecay(0.0, 20, alpha=0.1, warmup_target=0.5, warmup_steps=3),
    CosineDecayRestarts(0.2, 13, t_mul=1.5, m_mul=0.9, alpha=0.05),
], ids=lambda s: type(s).__name__)
def test_serialize_round_trip(schedule):
    data = schedules.serialize(schedule)
    assert data["class_name"] == type(schedule).__name__
    assert data["module"] == "keras.optimizers.schedules"
    again = schedules.deserialize(data)
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert [again(s) for s in range(0, 60, 7)] == [schedule(s) for s in range(0, 60, 7)]


def test_keras_config_keys():
    assert ExponentialDecay(0.1, 10, 0.9).get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9,
        "staircase": False, "name": "ExponentialDecay"}
    assert CosineDecay(0.1, 10).get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0, "name": "CosineDecay",
        "warmup_target": None, "warmup_steps": 0}
    assert CosineDecayRestarts(0.1, 10).get_config() == {
        "initial_learning_rate": 0.1, "first_decay_steps": 10, "t_mul": 2.0, "m_mul": 1.0,
        "alpha": 0.0, "name": "SGDRDecay"}
    assert PolynomialDecay(0.1, 10).get_config()["end_learning_rate"] == 0.0001
    assert PiecewiseConstantDecay([1], [0.2, 0.1]).get_config()["name"] == "PiecewiseConstant"
    assert InverseTimeDecay(0.1, 1, 0.5).get_config()["name"] == "InverseTimeDecay"


@pytest.mark.parametrize("make, name", [
    (lambda: ExponentialDecay(0.1, 0, 0.9), "decay_steps"),
    (lambda: ExponentialDecay(0.1, 10, 0.9, staircase=1), "staircase"),
    (lambda: PolynomialDecay(0.1, -1), "decay_steps"),
    (lambda: InverseTimeDecay("0.1", 1, 0.5), "initial_learning_rate"),
    (lambda: CosineDecay(0.1, 10, warmup_steps=-1), "warmup_steps"),
    (lambda: CosineDecayRestarts(0.1, 0), "first_decay_steps"),
    (lambda: CosineDecayRestarts(0.1, 10, t_mul=0.0), "t_mul"),
    (lambda: PiecewiseConstantDecay([10, 5], [0.3, 0.2, 0.1]), "boundaries"),
])
def test_bad_arguments(make, name):
    with pytest.raises((ValueError, TypeError), match=f"`{name}`.*{name}="):
        make()


def test_piecewise_lengths_must_match():
    with pytest.raises(ValueError, match="1 less than the length of values"):
        PiecewiseConstantDecay([1, 2], [0.1, 0.2])


def test_deserialize_unknown():
    with pytest.raises(ValueError, match="ExponentialDecay"):
        schedules.deserialize({"class_name": "Nope", "config": {}})


# ----------------------------------------------------------------------------
# as the optimizers' learning rate


def test_schedule_is_evaluated_at_iterations():
    # SGD: w -= lr(t) * g with g = 1 and lr(t) = 1, 0.5, 0.25 (halving each step).
    opt = SGD(learning_rate=ExponentialDecay(1.0, 1, 0.5))
    w = np.zeros(1)
    for expected in (-1.0, -1.5, -1.75):
        opt.update([w], [np.ones(1)])
        assert w[0] == expected
    assert opt.iterations == 3 and opt.learning_rate == 0.125


def test_schedule_learning_rate_is_not_settable_with_a_float():
    opt = Adam(learning_rate=ExponentialDecay(0.1, 10, 0.9))
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.01
    opt.learning_rate = PolynomialDecay(0.2, 10)  # another schedule replaces it
    assert opt.learning_rate == 0.2


def test_callable_learning_rate():
    # Keras' test_callable_learning_rate.
    v = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    opt = SGD(learning_rate=lambda: 0.1)
    opt.update([v], [np.ones((2, 2), np.float32)])
    np.testing.assert_allclose(v, [[0.9, 1.9], [2.9, 3.9]], rtol=1e-6)
    with pytest.raises(TypeError, match="cannot be serialized"):
        opt.get_config()
    assert "SGD(" in repr(opt)
    bad = SGD(learning_rate=lambda: "fast")
    with pytest.raises(ValueError, match="learning_rate"):
        bad.update([v], [np.ones((2, 2), np.float32)])


def test_optimizer_config_carries_the_schedule():
    opt = Adam(learning_rate=CosineDecay(0.1, 100, alpha=0.1))
    config = opt.get_config()
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    again = optimizers.get(optimizers.serialize(opt))
    assert isinstance(again._learning_rate, CosineDecay)
    assert again.learning_rate == opt.learning_rate == pytest.approx(0.1)


def test_custom_schedule_through_custom_objects():
    class Halving(LearningRateSchedule):
        def __init__(self, start):
            self.start = start

        def __call__(self, step):
            return self.start / 2**step

        def get_config(self):
            return {"start": self.start}

    data = optimizers.serialize(SGD(learning_rate=Halving(0.4)))
    with pytest.raises(ValueError, match="custom_objects"):
        optimizers.deserialize(data)
    again = optimizers.deserialize(data, custom_objects={"Halving": Halving})
    w = np.zeros(1)
    again.update([w], [np.ones(1)])
    again.update([w], [np.ones(1)])
    assert w[0] == pytest.approx(-0.6)

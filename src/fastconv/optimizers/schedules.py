"""Learning-rate schedules with Keras 3's formulas, names and configs.

A schedule is called with the optimizer's step count (``optimizer.iterations``
before the update, so the first update uses ``schedule(0)``) and returns the
learning rate of that step::

    lr = schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    opt = fastconv.optimizers.SGD(learning_rate=lr)

The formulas are those of ``keras/src/optimizers/schedules/
learning_rate_schedule.py``; each class docstring writes its own out. They
are evaluated in float64 and returned as Python floats (Keras evaluates them
in float32, the dtype of its learning rates; the two agree to float32
rounding, and the optimizer casts the value to each parameter's dtype).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastconv._validation import check_flag

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "serialize",
]


def _real(value: object, name: str, positive: bool = False, non_negative: bool = False) -> float:
    """``value`` as a finite float (> 0 or >= 0 if asked)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    x = float(value) if ok else math.nan
    if not ok or not math.isfinite(x) or (positive and x <= 0) or (non_negative and x < 0):
        kind = "a positive" if positive else "a non-negative" if non_negative else "a finite"
        error = ValueError if ok else TypeError
        raise error(f"Invalid value for argument `{name}`: expected {kind} number, "
                    f"received {name}={value!r}.")
    return x


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"Invalid value for argument `name`: expected a str, received "
                        f"name={value!r}.")
    return value


def _step(step: object) -> float:
    """The step count as a float; the optimizer passes an int >= 0."""
    value = np.asarray(step)
    if value.shape != () or value.dtype.kind not in "iuf" or not np.isfinite(value):
        raise TypeError(f"Invalid value for argument `step`: expected a finite scalar step "
                        f"count, received step={step!r}.")
    return float(value)


class LearningRateSchedule:
    """Base class of learning-rate schedules, as Keras' ``LearningRateSchedule``.

    A subclass implements ``__call__(step)``, returning the learning rate for
    the step count ``step``, and ``get_config()`` to be saved with a model.
    """

    def __call__(self, step: Any) -> float:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override "
            "`__call__(self, step)`.")

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override "
            "`get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LearningRateSchedule:
        """A new schedule from :meth:`get_config`'s output."""
        if not isinstance(config, Mapping):
            raise TypeError(f"Invalid value for argument `config`: expected a dict, received "
                            f"{type(config).__name__}.")
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class _RateDecay(LearningRateSchedule):
    """The arguments, checks and config that Keras' exponential and
    inverse-time decays share, and their progress ``step / decay_steps``
    (floored with ``staircase``); subclasses apply ``decay_rate`` to it."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool, name: str) -> None:
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _real(decay_steps, "decay_steps", positive=True)
        self.decay_rate = _real(decay_rate, "decay_rate")
        self.staircase = check_flag(staircase, "staircase")
        self.name = _name(name)
        # The arguments as given, so the config keeps ints as ints, as Keras'.
        self._config = {"initial_learning_rate": initial_learning_rate,
                        "decay_steps": decay_steps, "decay_rate": decay_rate}

    def _progress(self, step: Any) -> float:
        p = _step(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return {**self._config, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_RateDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``.

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int
        > 0.
    decay_rate : float
    staircase : bool, default False
    name : str, default "ExponentialDecay"
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: Any) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after
    ``boundaries[-1]``.

    Parameters
    ----------
    boundaries : list of numbers
        Strictly increasing, at least one.
    values : list of floats
        One more than ``boundaries``.
    name : str, default "PiecewiseConstant"
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float],
                 name: str = "PiecewiseConstant") -> None:
        for arg, label in ((boundaries, "boundaries"), (values, "values")):
            if not isinstance(arg, Sequence) or isinstance(arg, (str, bytes)):
                raise TypeError(f"Invalid value for argument `{label}`: expected a list of "
                                f"numbers, received {label}={arg!r}.")
        if len(boundaries) != len(values) - 1 or not boundaries:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values, and "
                f"at least 1. Received: boundaries={list(boundaries)} of length "
                f"{len(boundaries)}, and values={list(values)} of length {len(values)}.")
        bounds = [_real(b, "boundaries") for b in boundaries]
        if any(b >= c for b, c in itertools.pairwise(bounds)):
            raise ValueError(f"Invalid value for argument `boundaries`: expected strictly "
                             f"increasing numbers, received boundaries={list(boundaries)}.")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self._bounds = bounds
        self._values = [_real(v, "values") for v in values]
        self.name = _name(name)

    def __call__(self, step: Any) -> float:
        s = _step(step)
        for bound, value in zip(self._bounds, self._values):
            if s <= bound:
                return value
        return self._values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` in ``decay_steps``::

        step = min(step, decay_steps)                          (cycle=False)
        decay_steps = decay_steps * ceil(step / decay_steps)   (cycle=True; 1 at step 0)
        lr = (initial - end) * (1 - step / decay_steps) ** power + end

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int
        > 0.
    end_learning_rate : float, default 0.0001
    power : float, default 1.0
    cycle : bool, default False
    name : str, default "PolynomialDecay"
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _real(decay_steps, "decay_steps", positive=True)
        self.end_learning_rate = _real(end_learning_rate, "end_learning_rate")
        self.power = _real(power, "power")
        self.cycle = check_flag(cycle, "cycle")
        self.name = _name(name)
        self._config = {"initial_learning_rate": initial_learning_rate,
                        "decay_steps": decay_steps, "end_learning_rate": end_learning_rate,
                        "power": power}

    def __call__(self, step: Any) -> float:
        s, decay_steps = _step(step), self.decay_steps
        if self.cycle:
            decay_steps *= 1.0 if s == 0 else math.ceil(s / self.decay_steps)
        else:
            s = min(s, decay_steps)
        p = s / decay_steps
        return ((self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power
                + self.end_learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {**self._config, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(_RateDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True``, ``step / decay_steps`` is floored.

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : float
        > 0.
    decay_rate : float
    staircase : bool, default False
    name : str, default "InverseTimeDecay"
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: Any) -> float:
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


class CosineDecay(LearningRateSchedule):
    """Cosine decay, after an optional linear warmup.

    Without ``warmup_target``: ``step = min(step, decay_steps)`` and
    ``lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * step / decay_steps)) + alpha)``.
    With it: ``step = min(step, decay_steps + warmup_steps)``; while
    ``step < warmup_steps``,
    ``lr = (warmup_target - initial) * step / warmup_steps + initial``; after,
    the decay above from ``warmup_target``, at ``step - warmup_steps``.

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int
        > 0.
    alpha : float, default 0.0
        The final learning rate, as a fraction of the one decay starts from.
    name : str, default "CosineDecay"
    warmup_target : float or None, default None
    warmup_steps : int, default 0
        >= 0.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: int = 0) -> None:
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _real(decay_steps, "decay_steps", positive=True)
        self.alpha = _real(alpha, "alpha")
        self.name = _name(name)
        self.warmup_target = (None if warmup_target is None
                              else _real(warmup_target, "warmup_target"))
        self.warmup_steps = _real(warmup_steps, "warmup_steps", non_negative=True)
        self._config = {"initial_learning_rate": initial_learning_rate,
                        "decay_steps": decay_steps, "alpha": alpha, "name": name,
                        "warmup_target": warmup_target, "warmup_steps": warmup_steps}

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: Any) -> float:
        s = _step(step)
        if self.warmup_target is None:
            return self._decay(min(s, self.decay_steps), self.initial_learning_rate)
        s = min(s, self.decay_steps + self.warmup_steps)
        if s < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (s / self.warmup_steps) + self.initial_learning_rate
        return self._decay(s - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR).

    The first period lasts ``first_decay_steps``, each next one ``t_mul``
    times longer and starting from ``m_mul`` times the previous peak. With
    ``f = step / first_decay_steps``, the period ``i`` is ``floor(f)`` (t_mul
    = 1) or ``floor(log(1 - f * (1 - t_mul)) / log(t_mul))``, the fraction
    of it done ``f - i`` or ``(f - (1 - t_mul**i) / (1 - t_mul)) / t_mul**i``,
    and ``lr = initial * ((1 - alpha) * 0.5 * m_mul**i * (1 + cos(pi * fraction)) + alpha)``.

    Parameters
    ----------
    initial_learning_rate : float
    first_decay_steps : int
        > 0.
    t_mul : float, default 2.0
        > 0.
    m_mul : float, default 1.0
    alpha : float, default 0.0
    name : str, default "SGDRDecay"
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0, name: str = "SGDRDecay") -> None:
        self.initial_learning_rate = _real(initial_learning_rate, "initial_learning_rate")
        self.first_decay_steps = _real(first_decay_steps, "first_decay_steps", positive=True)
        self._t_mul = _real(t_mul, "t_mul", positive=True)
        self._m_mul = _real(m_mul, "m_mul")
        self.alpha = _real(alpha, "alpha")
        self.name = _name(name)
        self._config = {"initial_learning_rate": initial_learning_rate,
                        "first_decay_steps": first_decay_steps, "t_mul": t_mul,
                        "m_mul": m_mul, "alpha": alpha, "name": name}

    def __call__(self, step: Any) -> float:
        fraction = _step(step) / self.first_decay_steps
        t_mul = self._t_mul
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - t_mul**restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul**restart
        cosine = 0.5 * self._m_mul**restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)


_BY_NAME: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                  InverseTimeDecay, CosineDecay, CosineDecayRestarts)
}


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """Keras' serialized form of a schedule: ``{"module": ..., "class_name": ...,
    "config": {...}, "registered_name": None}``."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(
            "Invalid value for argument `learning_rate_schedule`: expected a "
            f"LearningRateSchedule, received {learning_rate_schedule!r}.")
    return {"module": "keras.optimizers.schedules",
            "class_name": type(learning_rate_schedule).__name__,
            "config": learning_rate_schedule.get_config(), "registered_name": None}


def deserialize(config: Mapping[str, Any],
                custom_objects: Mapping[str, Any] | None = None) -> LearningRateSchedule:
    """The schedule :func:`serialize` described (Keras' form).

    Parameters
    ----------
    config : dict
        ``{"class_name": ..., "config": {...}}``.
    custom_objects : dict, optional
        Schedule classes of your own, by class name.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"Invalid value for argument `config`: expected a dict, received "
                        f"{type(config).__name__}.")
    known = {**_BY_NAME, **dict(custom_objects or {})}
    name = config.get("class_name")
    cls = known.get(name) if isinstance(name, str) else None
    is_schedule = isinstance(cls, type) and issubclass(cls, LearningRateSchedule)
    if not is_schedule:
        raise ValueError(
            f"Invalid value for argument `config`: expected {{'class_name': one of "
            f"{sorted(known)}, 'config': {{...}}}} (other schedules through "
            f"`custom_objects`), received config={config!r}.")
    return cls.from_config(config.get("config") or {})

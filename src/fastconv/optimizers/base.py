"""The base optimizer: Keras 3's arguments and step, around each rule.

An optimizer updates the model's parameters in place::

    opt.update(values, grads)   # values[i] -= step(grads[i]), for every i

The model passes the same parameters in the same order on every call, so the
per-parameter state (momentum, velocity, ...) is a list indexed by position,
created lazily with each parameter's shape and dtype on the first call.
Every update is computed in the parameter's own dtype: float32 parameters
never go through float64, as in Keras, which casts the learning rate and the
gradient to the variable's dtype.

One step follows ``keras/src/optimizers/base_optimizer.py``'s ``apply``:

1. the learning rate of this step: the float, ``schedule(iterations)`` or
   ``callable()``;
2. with ``gradient_accumulation_steps=n``: the gradients are added up, and
   only every n-th call updates, with their mean;
3. gradient clipping (``clipnorm`` per parameter, ``global_clipnorm`` over all,
   or ``clipvalue``);
4. decoupled weight decay ``w -= w * weight_decay * lr`` on every parameter not
   excluded by :meth:`Optimizer.exclude_from_weight_decay`;
5. the rule of the subclass, in the compiled kernels when the arrays suit them
   (bitwise the NumPy statement of :meth:`Optimizer._update_one`);
6. with ``use_ema``, the moving average of the weights;
7. ``iterations += 1``.

``get_state`` / ``set_state`` expose the iteration counter and the state
arrays so that a model can save and restore training exactly.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastconv import _registry
from fastconv._validation import FLOAT_DTYPES, check_flag
from fastconv.optimizers import schedules
from fastconv.runtime import settings as _settings

__all__ = ["Optimizer"]


def _check_real(
    value: object, name: str, low: float, high: float = math.inf,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """``value`` as a float in the interval from ``low`` to ``high`` (open ends as flagged)."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a real number, "
            f"received {name}={value!r}."
        )
    x = float(value)
    above = x > low if low_open else x >= low
    below = x < high if high_open else x <= high
    if not (math.isfinite(x) and above and below):
        interval = (
            f"{'(' if low_open else '['}{low}, "
            f"{high}{')' if high_open or high == math.inf else ']'}"
        )
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a finite number in "
            f"{interval}, received {name}={value!r}."
        )
    return x


def _optional(value: object, name: str, low_open: bool = True) -> float | None:
    """None, or a finite float > 0 (>= 0 with ``low_open=False``)."""
    return None if value is None else _check_real(value, name, 0.0, low_open=low_open)


class Optimizer:
    """Base class: learning rate, clipping, weight decay, gradient
    accumulation, lazy per-parameter state, config and state I/O.

    Subclasses list their per-parameter arrays in :meth:`_slot_names` and
    implement :meth:`_update_one`, the rule for one parameter (its learning
    rate for this step is ``self._step_learning_rate``). The built-in rules
    also have :meth:`_compiled_rule`, the same rule for all parameters at
    once in compiled kernels, used when the arrays allow.

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable
        Step size: a float > 0; a schedule, called with ``iterations`` at each
        step; or a callable without arguments returning the rate.
    weight_decay : float or None, default None
        If set (>= 0), each step first does ``w -= w * weight_decay * lr``.
    clipnorm : float or None, default None
        If set (> 0), each gradient is scaled so that its L2 norm is at most
        this.
    clipvalue : float or None, default None
        If set (> 0), gradients are clipped to ``[-clipvalue, clipvalue]``.
    global_clipnorm : float or None, default None
        If set (> 0), all gradients are scaled so that the L2 norm of them all
        together is at most this. At most one of the three clipping arguments
        may be set.
    use_ema : bool, default False
        Keep an exponential moving average of the weights (state slot
        ``average``): after each call ``average = m * average + (1 - m) * w``
        with ``m = ema_momentum`` (0 on the first update). ``model.fit`` ends
        by copying the averages into the weights
        (:meth:`finalize_variable_values`).
    ema_momentum : float, default 0.99
        In [0, 1]; used with ``use_ema``.
    ema_overwrite_frequency : int or None, default None
        With ``use_ema``, copy the averages into the weights every this many
        updates as well.
    loss_scale_factor : not supported
        Only ``None`` is accepted.
    gradient_accumulation_steps : int or None, default None
        If an int n >= 2, the parameters change on every n-th call only, with
        the mean of the n gradients; ``iterations`` counts those updates and
        schedules see the number of calls.
    name : str
        Name of the optimizer.
    """

    def __init__(
        self, learning_rate: Any, weight_decay: float | None = None,
        clipnorm: float | None = None, clipvalue: float | None = None,
        global_clipnorm: float | None = None, use_ema: bool = False,
        ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None, name: str = "optimizer",
    ) -> None:
        self._learning_rate: Any = None
        self.learning_rate = learning_rate
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Invalid value for argument `name`: expected a non-empty str, "
                f"received name={name!r}."
            )
        self.name = name
        self.weight_decay = _optional(weight_decay, "weight_decay", low_open=False)
        self.clipnorm = _optional(clipnorm, "clipnorm")
        self.clipvalue = _optional(clipvalue, "clipvalue")
        self.global_clipnorm = _optional(global_clipnorm, "global_clipnorm")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        self.use_ema = check_flag(use_ema, "use_ema")
        if self.use_ema:
            _check_real(ema_momentum, "ema_momentum", 0.0, 1.0)
            frequency = ema_overwrite_frequency
            if frequency is not None and (not isinstance(frequency, (int, np.integer))
                                          or isinstance(frequency, (bool, np.bool_))
                                          or frequency < 1):
                raise ValueError(
                    "Invalid value for argument `ema_overwrite_frequency`: expected None or "
                    f"an int >= 1, received ema_overwrite_frequency={frequency!r}.")
        # Unused without use_ema, as in Keras; kept for the config.
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        if loss_scale_factor is not None:
            raise ValueError(
                "Invalid value for argument `loss_scale_factor`: fastconv optimizers do not "
                "support loss scaling (only loss_scale_factor=None; fastconv trains in "
                f"float32 or float64), received loss_scale_factor={loss_scale_factor!r}.")
        steps = gradient_accumulation_steps
        if steps is not None and (not isinstance(steps, (int, np.integer))
                                  or isinstance(steps, (bool, np.bool_)) or steps < 2):
            raise ValueError(
                "Invalid value for argument `gradient_accumulation_steps`: expected None "
                f"or an int >= 2, received gradient_accumulation_steps={steps!r}.")
        self.gradient_accumulation_steps = None if steps is None else int(steps)
        self._iterations = 0
        # Shapes of the parameters the state was built for; None until built.
        self._shapes: list[tuple[int, ...]] | None = None
        self._slots: dict[str, list[np.ndarray]] = {}
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern | None = None
        self._step_learning_rate = 0.0

    # ------------------------------------------------------------------
    # learning rate and iterations

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step, a float.

        Settable: a float > 0, a schedule or a callable. Setting a float while
        a schedule is in use is a TypeError, as in Keras."""
        return self._learning_rate_at(self._iterations)

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, schedules.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument.")
        self._learning_rate = _check_real(value, "learning_rate", 0.0)

    def _learning_rate_at(self, step: int) -> float:
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            value = lr(step)
        elif callable(lr):
            value = lr()
        else:
            return lr
        array = np.asarray(value)
        if array.shape != () or array.dtype.kind not in "iuf" or not np.isfinite(array):
            raise ValueError(
                "Invalid value for argument `learning_rate`: the schedule or callable must "
                f"return a finite real number, returned {value!r} at iteration {step}.")
        return float(array)

    @property
    def iterations(self) -> int:
        """Number of updates done (calls to :meth:`update`, divided by
        ``gradient_accumulation_steps`` if set)."""
        if self.gradient_accumulation_steps:
            return self._iterations // self.gradient_accumulation_steps
        return self._iterations

    # ------------------------------------------------------------------
    # weight decay

    def exclude_from_weight_decay(self, var_list: Sequence[Any] | None = None,
                                  var_names: Sequence[str] | None = None) -> None:
        """Keep some variables out of weight decay (before the first step).

        Parameters
        ----------
        var_list : list of Variable, optional
            These variables are not decayed.
        var_names : list of str, optional
            A variable whose name contains (``re.search``) any of these is not
            decayed, e.g. ``["bias"]``.
        """
        if self._shapes is not None:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer is built.")
        if var_names is not None and (isinstance(var_names, str) or not all(
                isinstance(n, str) for n in var_names)):
            raise TypeError("Invalid value for argument `var_names`: expected a list of str, "
                            f"received var_names={var_names!r}.")
        # A variable's value array stands for it when update() gets arrays only.
        self._exclude_ids = {id(v) for v in var_list or ()} | {
            id(getattr(v, "value", v)) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _decay_flags(self, values: list[np.ndarray], variables: Sequence[Any] | None,
                     active: list[int]) -> list[bool] | None:
        """Per active parameter, whether weight decay applies; None if none does."""
        if self.weight_decay is None:
            return None
        if self._exclude_pattern is not None and variables is None:
            raise ValueError(
                "Invalid value for argument `variables`: exclude_from_weight_decay("
                "var_names=...) needs the variables' names; pass `variables` to update(), "
                "or use apply_gradients() or model.fit().")
        flags = []
        for i in active:
            variable = variables[i] if variables is not None else None
            excluded = id(values[i]) in self._exclude_ids or (
                variable is not None and id(variable) in self._exclude_ids)
            if not excluded and self._exclude_pattern is not None:
                excluded = self._exclude_pattern.search(str(variable.name)) is not None
            flags.append(not excluded)
        return flags

    # ------------------------------------------------------------------
    # the step

    def _slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter arrays this configuration's rule keeps."""
        return ()

    def _slot_init(self, slot: str) -> float:
        """Initial value of the slot's arrays (0 unless a rule says otherwise)."""
        return 0.0

    def _all_slot_names(self) -> tuple[str, ...]:
        extra = ("gradient_accumulator",) if self.gradient_accumulation_steps else ()
        return self._slot_names() + extra + (("average",) if self.use_ema else ())

    def _scalar_names(self) -> tuple[str, ...]:
        """Names of scalar state entries a rule keeps besides ``iterations``."""
        return ()

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        """Update ``value`` in place from ``grad`` (same shape and dtype)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define an update rule; use one of "
            "fastconv.optimizers' optimizers.")

    def _before_step(self, values: list[np.ndarray]) -> None:
        """Per-step state shared by all parameters (Nadam's product), before the rule."""

    def update(self, values: list[np.ndarray], grads: list[np.ndarray | None],
               variables: Sequence[Any] | None = None) -> None:
        """Apply one step to every parameter, in place.

        Parameters
        ----------
        values : list of numpy.ndarray
            The parameters, float32 or float64, writeable; each is modified
            in place.
        grads : list of array_like or None
            ``grads[i]`` is the gradient of the loss with respect to
            ``values[i]``, same shape; it is cast to ``values[i].dtype``.
            None leaves that parameter (and its state) alone for this step.
        variables : list of Variable, optional
            The variables the values belong to, for
            :meth:`exclude_from_weight_decay` by name.

        Raises
        ------
        ValueError
            If the lists differ in length, a gradient's shape differs from its
            parameter's, or the parameters are not those of the first call
            (number and shapes).
        """
        values, grads = self._check_update_args(values, grads)
        if variables is not None and len(variables) != len(values):
            raise ValueError(
                "Invalid value for argument `variables`: expected one variable per "
                f"parameter ({len(values)}), received {len(variables)}.")
        if not values:
            # As in Keras, an empty gradient list is a no-op.
            return
        shapes = [v.shape for v in values]
        if self._shapes is None:
            self._build(values)
        elif shapes != self._shapes:
            raise ValueError(
                "Invalid value for argument `values`: this optimizer's state was "
                f"built for {len(self._shapes)} parameters of shapes {self._shapes}, "
                f"received {len(shapes)} parameters of shapes {shapes}. Use a new "
                "optimizer for a different set of parameters."
            )
        active = [i for i, g in enumerate(grads) if g is not None]
        if not active:
            raise ValueError("No gradients provided for any variable.")
        lr = self._learning_rate_at(self._iterations)
        steps = self.gradient_accumulation_steps
        if steps and (self._iterations + 1) % steps != 0:
            for i in active:
                accumulator = self._slots["gradient_accumulator"][i]
                accumulator += grads[i]
        else:
            if steps:
                sums = self._slots["gradient_accumulator"]
                for i in active:
                    grads[i] = (grads[i] + sums[i]) / values[i].dtype.type(steps)
            self._step(values, grads, variables, active, lr)
            if steps:
                for i in active:
                    self._slots["gradient_accumulator"][i].fill(0)
        if self.use_ema:
            self._update_moving_averages(values)
        self._iterations += 1

    def _update_moving_averages(self, values: list[np.ndarray]) -> None:
        """Keras' EMA of the weights, on every call (updates or not)."""
        for value, average in zip(values, self._slots["average"]):
            dtype = value.dtype.type
            momentum = dtype(self.ema_momentum) if self.iterations != 0 else dtype(0.0)
            average *= momentum
            average += (1 - momentum) * value
        frequency = self.ema_overwrite_frequency
        if frequency and (self.iterations + 1) % frequency == 0:
            for value, average in zip(values, self._slots["average"]):
                value[...] = average

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        """With ``use_ema``, copy the moving averages into these variables (the
        ones the optimizer updates, in the same order); otherwise nothing.
        ``model.fit`` calls it at the end of training, as Keras does."""
        if not self.use_ema or self._shapes is None:
            return
        averages = self._slots["average"]
        if len(var_list) != len(averages):
            raise ValueError(
                f"Invalid value for argument `var_list`: the optimizer keeps averages of "
                f"{len(averages)} variables, received {len(var_list)} variables.")
        for variable, average in zip(var_list, averages):
            np.copyto(getattr(variable, "value", variable), average)

    def _step(self, values: list[np.ndarray], grads: list, variables: Sequence[Any] | None,
              active: list[int], lr: float) -> None:
        """Clipping, weight decay and the rule, for the parameters ``active``."""
        clipped = self._clip_gradients([grads[i] for i in active])
        for i, g in zip(active, clipped):
            grads[i] = g
        decay = self._decay_flags(values, variables, active)
        self._step_learning_rate = lr
        self._before_step(values)
        if self._update_compiled(values, grads, active, decay, lr):
            return
        for k, i in enumerate(active):
            if decay is not None and decay[k]:
                dtype = values[i].dtype.type
                values[i] -= values[i] * dtype(self.weight_decay) * dtype(lr)
            self._update_one(i, values[i], grads[i])

    def _clip_gradients(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        """Keras' clipping; new arrays (the caller's gradients are not touched)."""
        if self.clipnorm:
            return [self._clip_by_norm(g) for g in grads]
        if self.global_clipnorm and grads:
            squares = np.array([np.sum(np.square(g)) for g in grads])
            with np.errstate(divide="ignore", invalid="ignore"):
                norm = np.sqrt(np.sum(squares))
                clip = norm.dtype.type(self.global_clipnorm)
                # NaN for a non-finite norm, as Keras (norm - norm).
                scale = clip * np.minimum(1 / norm, 1 / clip) + (norm - norm)
            return [g * g.dtype.type(scale) for g in grads]
        if self.clipvalue:
            return [np.clip(g, -self.clipvalue, self.clipvalue).astype(g.dtype, copy=False)
                    for g in grads]
        return grads

    def _clip_by_norm(self, g: np.ndarray) -> np.ndarray:
        clip = g.dtype.type(self.clipnorm)
        l2sum = np.sum(np.square(g))
        l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
        return g * clip / np.maximum(l2norm, clip)

    def apply_gradients(self, grads_and_vars: Any) -> int:
        """Keras' ``optimizer.apply_gradients(zip(grads, variables))``: one step
        for those weights (``fastconv.layers.Variable``), then their
        constraints; a None gradient leaves its weight alone for this step.
        The state follows the variables of the first call, as ``update``
        does. Returns ``iterations``."""
        pairs = list(grads_and_vars)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                    and hasattr(pair[1], "value")):
                raise TypeError(
                    "Invalid value for argument `grads_and_vars`: expected pairs "
                    f"(gradient, Variable), received {pair!r} at position {i}.")
        variables = [v for _, v in pairs]
        self.update([v.value for v in variables], [g for g, _ in pairs], variables=variables)
        for v in variables:
            if getattr(v, "constraint", None) is not None:
                v.value[...] = v.constraint(v.value)
        return self.iterations

    def apply(self, grads: list, trainable_variables: list | None = None) -> None:
        """Keras 3's ``optimizer.apply(grads, trainable_variables)``."""
        if trainable_variables is None:
            raise ValueError("Invalid value for argument `trainable_variables`: fastconv's "
                             "optimizers need the variables with their gradients.")
        self.apply_gradients(zip(grads, trainable_variables))

    def build(self, variables: Sequence[Any]) -> None:
        """Create the state for these variables (Keras' ``optimizer.build``);
        otherwise done by the first step."""
        if self._shapes is None:
            values, _ = self._check_update_args([v.value for v in variables],
                                                [None] * len(variables))
            self._build(values)

    def _update_compiled(self, values: list[np.ndarray], grads: list, active: list[int],
                         decay: list[bool] | None, lr: float) -> bool:
        """Apply weight decay and the rule to the parameters ``active`` in one
        call of the compiled kernels (fastconv._kernels.optim: one pass over
        each array, on the kernels' threads), with the same bits as
        :meth:`_update_one` (NaN in the same places, its sign or payload
        aside), when the arrays suit them: plain ndarrays of one dtype,
        C-contiguous, aligned, no gradient overlapping its parameter. Returns
        False, having done nothing, otherwise, and for a subclass that
        restates :meth:`_update_one` (its rule then runs as written)."""
        owner = next(k for k in type(self).__mro__ if "_update_one" in vars(k))
        if "_compiled_rule" not in vars(owner):
            return False
        values_a = [values[i] for i in active]
        grads_a = [grads[i] for i in active]
        if any(type(v) is not np.ndarray for v in values_a):  # masked arrays, ...
            return False
        dtype = values_a[0].dtype
        slots = [self._slots[s][i] for s in self._slot_names() for i in active]
        for a in (*values_a, *grads_a, *slots):
            if a.dtype != dtype or not (a.flags.c_contiguous and a.flags.aligned):
                return False
        if any(np.may_share_memory(v, g) for v, g in zip(values_a, grads_a)):
            return False
        wd = self.weight_decay if decay is not None else 0.0
        self._compiled_rule(active, values_a, grads_a, dtype == np.float32, _settings.isa_code(),
                            _settings.get_num_threads(),
                            {"decay": decay, "wd": float(dtype.type(wd)),
                             "wd_lr": float(dtype.type(lr))})
        return True

    def _compiled_rule(self, active: list[int], values: list[np.ndarray],
                       grads: list[np.ndarray], f32: bool, isa: int, threads: int,
                       decay: dict[str, Any]) -> None:
        """:meth:`_update_one` for the parameters ``active`` (their values and
        gradients given), in the compiled kernels; ``decay`` is passed on to
        the kernel as keyword arguments. Defined next to each built-in rule."""
        raise NotImplementedError

    def _slot_list(self, slot: str, active: list[int]) -> list[np.ndarray]:
        arrays = self._slots[slot]
        return [arrays[i] for i in active]

    @staticmethod
    def _check_update_args(
        values: object, grads: object
    ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        for arg, name in ((values, "values"), (grads, "grads")):
            if not isinstance(arg, Sequence) or isinstance(arg, (str, bytes)):
                raise TypeError(
                    f"Invalid value for argument `{name}`: expected a list of "
                    f"arrays, received {type(arg).__name__}."
                )
        if len(values) != len(grads):
            raise ValueError(
                "Invalid value for argument `grads`: expected one gradient per "
                f"parameter ({len(values)}), received {len(grads)} gradients."
            )
        checked_grads: list[np.ndarray | None] = []
        for i, (value, grad) in enumerate(zip(values, grads)):
            if not isinstance(value, np.ndarray) or value.dtype not in FLOAT_DTYPES:
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(
                    f"Invalid value for argument `values`: expected float32 or float64 "
                    f"numpy.ndarray parameters, received {got} at index {i}."
                )
            if not value.flags.writeable:
                raise ValueError(
                    f"Invalid value for argument `values`: parameters are updated "
                    f"in place and must be writeable; values[{i}] is read-only."
                )
            if grad is None:
                checked_grads.append(None)
                continue
            grad = np.asarray(grad)
            if grad.shape != value.shape:
                raise ValueError(
                    f"Invalid shape for argument `grads`: expected grads[{i}] to "
                    f"have its parameter's shape {value.shape}, received shape "
                    f"{grad.shape}."
                )
            checked_grads.append(grad.astype(value.dtype, copy=False))
        return list(values), checked_grads

    def _build(self, values: list[np.ndarray]) -> None:
        self._shapes = [v.shape for v in values]
        self._slots = {
            slot: [np.full_like(v, self._slot_init(slot)) for v in values]
            for slot in self._all_slot_names()
        }
        self._build_scalars(values)

    def _build_scalars(self, values: list[np.ndarray]) -> None:
        """Create the scalar state of :meth:`_scalar_names` (none by default)."""

    # ------------------------------------------------------------------
    # config and state

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, with Keras 3's keys and order.

        A schedule is given as :func:`schedules.serialize` gives it; a plain
        callable learning rate has no config (TypeError)."""
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            raise TypeError(
                f"Invalid value for argument `learning_rate`: a callable learning rate "
                f"({lr!r}) cannot be serialized; use a LearningRateSchedule subclass with "
                "get_config() to save or copy this optimizer.")
        return {
            "name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": None,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any],
                    custom_objects: Mapping[str, Any] | None = None) -> Optimizer:
        """A new optimizer from :meth:`get_config`'s output (or a Keras 3 config).

        A learning rate given as a dict is a serialized schedule
        (``custom_objects`` names schedule classes of your own)."""
        if isinstance(config, Mapping) and isinstance(config.get("learning_rate"), Mapping):
            config = {**config, "learning_rate": schedules.deserialize(
                config["learning_rate"], custom_objects)}
        return _registry.from_keras_config(cls, config, {}, "optimizers")

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the iteration counter and every state array.

        Returns
        -------
        dict of str to numpy.ndarray
            ``"iterations"`` (int64 scalar, the number of calls), the rule's
            scalars (Nadam's ``"u_product"``) and ``"<slot>_<i>"`` for each
            slot (e.g. ``"momentum_0"``, ``"velocity_3"``) and parameter
            index.
        """
        state = {"iterations": np.array(self._iterations, dtype=np.int64)}
        if self._shapes is not None:
            for name in self._scalar_names():
                state[name] = np.array(getattr(self, f"_{name}"), copy=True)
        for slot, arrays in self._slots.items():
            for i, array in enumerate(arrays):
                state[f"{slot}_{i}"] = array.copy()
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned (the arrays are copied).

        The restored arrays fix the parameter shapes that the next
        :meth:`update` must receive. A state without per-parameter arrays
        (saved before the first update, or from an optimizer that keeps none,
        such as plain SGD) leaves them to be built on the next update.

        Raises
        ------
        ValueError
            If a key is missing or unexpected for this optimizer's
            configuration, or the arrays are inconsistent.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"Invalid value for argument `state`: expected a dict, received "
                f"{type(state).__name__}."
            )
        if "iterations" not in state:
            raise ValueError("Invalid value for argument `state`: missing key 'iterations'.")
        iterations = np.asarray(state["iterations"])
        if iterations.shape != () or iterations.dtype.kind not in "iu" or iterations < 0:
            raise ValueError(
                "Invalid value for argument `state`: 'iterations' must be a "
                f"non-negative integer scalar, received {state['iterations']!r}."
            )
        names = self._all_slot_names()
        scalars = self._scalar_names()
        keys = {str(key) for key in state} - {"iterations"} - set(scalars)
        count = -(-len(keys) // len(names)) if names else 0  # ceil: a partial set is "missing"
        expected = {f"{slot}_{i}" for slot in names for i in range(count)}
        expected_scalars = set(scalars) if count else set()
        given_scalars = {str(key) for key in state} & set(scalars)
        if names and not keys and iterations > 0:
            raise ValueError(
                f"Invalid value for argument `state`: iterations={int(iterations)} but "
                f"no per-parameter arrays; expected {list(names)} for each parameter."
            )
        if keys != expected or given_scalars != expected_scalars:
            raise ValueError(
                f"Invalid value for argument `state`: {type(self).__name__} with "
                f"config {self._config_for_messages()} keeps {list(names)} for each "
                f"parameter{f' and {list(scalars)}' if scalars else ''} "
                f"(iterations={int(iterations)}); unexpected keys "
                f"{sorted((keys - expected) | (given_scalars - expected_scalars))}, missing "
                f"keys {sorted((expected - keys) | (expected_scalars - given_scalars))}."
            )
        slots = {
            slot: [np.array(state[f"{slot}_{i}"], copy=True, order="C") for i in range(count)]
            for slot in names
        }
        shapes = [a.shape for a in slots[names[0]]] if count else None
        for slot, arrays in slots.items() if count else ():
            if any(a.dtype.kind != "f" for a in arrays) or [a.shape for a in arrays] != shapes:
                raise ValueError(
                    f"Invalid value for argument `state`: the '{slot}' arrays must be "
                    f"float arrays of shapes {shapes} like the other slots, received "
                    f"{[(a.dtype.name, a.shape) for a in arrays]}."
                )
        restored = {}
        for name in expected_scalars:
            value = np.array(state[name], copy=True)
            if value.shape != () or value.dtype.kind != "f":
                raise ValueError(f"Invalid value for argument `state`: '{name}' must be a "
                                 f"float scalar, received {state[name]!r}.")
            restored[name] = value
        self._iterations = int(iterations)
        self._shapes = shapes
        self._slots = slots if count else {}
        for name, value in restored.items():
            setattr(self, f"_{name}", value)

    def check_state_for(self, values: Sequence[np.ndarray]) -> None:
        """Check that restored state fits these parameters (a loaded model's
        trainable weights): their number, shapes and dtypes.

        Raises
        ------
        ValueError
            Naming the state's shapes and the parameters'.
        """
        if self._shapes is None:
            return
        got = [(tuple(v.shape), np.dtype(v.dtype).name) for v in values]
        first = self._all_slot_names()[0]
        have = [(a.shape, a.dtype.name) for a in self._slots[first]]
        if got != have:
            raise ValueError(
                f"Invalid optimizer state: it was saved for {len(have)} weights of "
                f"(shape, dtype) {have}, but the model has {len(got)} trainable weights "
                f"{got}.")

    def _config_for_messages(self) -> Any:
        try:
            return self.get_config()
        except TypeError:
            return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config_for_messages().items())
        return f"{type(self).__name__}({args})"

"""Gradient-descent optimizers with Keras 3's update rules and defaults.

An optimizer updates the model's parameters in place::

    opt.update(values, grads)   # values[i] -= step(grads[i]), for every i

The model passes the same parameters in the same order on every call, so the
per-parameter state (momentum, velocity, ...) is a list indexed by position,
created lazily with zeros of each parameter's shape and dtype on the first
call. Every update is computed in the parameter's own dtype: float32
parameters never go through float64, as in Keras, which casts the learning
rate and the gradient to the variable's dtype.

The update rules are those of ``keras/src/optimizers/{sgd,rmsprop,adam}.py``
(Keras 3); each class docstring writes its rule out. ``get_state`` /
``set_state`` expose the iteration counter and the per-parameter arrays so
that a model can save and restore training exactly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastconv import _registry
from fastconv.runtime import settings as _settings
from fastconv._kernels import optim as _optim
from fastconv._validation import FLOAT_DTYPES, check_flag

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "get", "serialize"]

# Keys that Keras 3 writes in every optimizer config, with the value that
# means "feature off". A Keras config carrying these values loads; any other
# value asks for a feature fastconv does not have.
_KERAS_ONLY_DEFAULTS: dict[str, object] = {
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


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


class Optimizer:
    """Base class: validation, lazy per-parameter state, config and state I/O.

    Subclasses list their per-parameter arrays in :meth:`_slot_names` and
    implement :meth:`_update_one`, the rule for one parameter. The built-in
    rules also have :meth:`_compiled_rule`, the same rule for all parameters
    at once in compiled kernels, used when the arrays allow.

    Parameters
    ----------
    learning_rate : float
        Step size, > 0. Settable after construction.
    name : str
        Name of the optimizer.

    Attributes
    ----------
    iterations : int
        Number of :meth:`update` calls done (read-only; see :meth:`set_state`).
    """

    def __init__(self, learning_rate: float, name: str = "optimizer") -> None:
        self.learning_rate = learning_rate
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Invalid value for argument `name`: expected a non-empty str, "
                f"received name={name!r}."
            )
        self.name = name
        self._iterations = 0
        # Shapes of the parameters the state was built for; None until built.
        self._shapes: list[tuple[int, ...]] | None = None
        self._slots: dict[str, list[np.ndarray]] = {}

    @property
    def learning_rate(self) -> float:
        """Step size, a float > 0."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _check_real(value, "learning_rate", 0.0, low_open=True)

    @property
    def iterations(self) -> int:
        """Number of :meth:`update` calls done."""
        return self._iterations

    def _slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter arrays this configuration keeps."""
        return ()

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        """Update ``value`` in place from ``grad`` (same shape and dtype)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define an update rule; use SGD, "
            "RMSprop or Adam."
        )

    def update(self, values: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one step to every parameter, in place.

        Parameters
        ----------
        values : list of numpy.ndarray
            The parameters, float32 or float64, writeable; each is modified
            in place.
        grads : list of array_like
            ``grads[i]`` is the gradient of the loss with respect to
            ``values[i]``, same shape; it is cast to ``values[i].dtype``.

        Raises
        ------
        ValueError
            If the lists differ in length, a gradient's shape differs from its
            parameter's, or the parameters are not those of the first call
            (number and shapes).
        """
        values, grads = self._check_update_args(values, grads)
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
        if not self._update_compiled(values, grads):
            for i, (value, grad) in enumerate(zip(values, grads)):
                self._update_one(i, value, grad)
        self._iterations += 1

    def apply_gradients(self, grads_and_vars: Any) -> None:
        """Keras' ``optimizer.apply_gradients(zip(grads, variables))``: one step
        for those weights (``fastconv.layers.Variable``); a None gradient
        leaves its weight alone for this step. The state follows the
        variables of the first call, as ``update`` does."""
        pairs = list(grads_and_vars)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                    and hasattr(pair[1], "value")):
                raise TypeError(
                    "Invalid value for argument `grads_and_vars`: expected pairs "
                    f"(gradient, Variable), received {pair!r} at position {i}.")
        values = [v.value for _, v in pairs]
        grads = [np.zeros_like(v.value) if g is None else g for g, v in pairs]
        self.update(values, grads)
        for _, v in pairs:
            if getattr(v, "constraint", None) is not None:
                v.value[...] = v.constraint(v.value)

    def apply(self, grads: list, trainable_variables: list | None = None) -> None:
        """Keras 3's ``optimizer.apply(grads, trainable_variables)``."""
        if trainable_variables is None:
            raise ValueError("Invalid value for argument `trainable_variables`: fastconv's "
                             "optimizers need the variables with their gradients.")
        self.apply_gradients(zip(grads, trainable_variables))

    def _update_compiled(self, values: list[np.ndarray], grads: list[np.ndarray]) -> bool:
        """Apply the rule to every parameter in one call of the compiled
        kernels (fastconv._kernels.optim: one pass over each array, on the
        kernels' threads), with the same bits as :meth:`_update_one` (NaN in
        the same places, its sign or payload aside), when the arrays suit
        them: plain ndarrays of one dtype, C-contiguous, aligned, no gradient
        overlapping its parameter. Returns False, having done nothing,
        otherwise, and for a subclass that restates :meth:`_update_one` (its
        rule then runs as written)."""
        owner = next(k for k in type(self).__mro__ if "_update_one" in vars(k))
        if "_compiled_rule" not in vars(owner):
            return False
        if any(type(v) is not np.ndarray for v in values):  # masked arrays, ...
            return False
        dtype = values[0].dtype
        slots = [a for arrays in self._slots.values() for a in arrays]
        for a in (*values, *grads, *slots):
            if a.dtype != dtype or not (a.flags.c_contiguous and a.flags.aligned):
                return False
        if any(np.may_share_memory(v, g) for v, g in zip(values, grads)):
            return False
        self._compiled_rule(values, grads, dtype == np.float32, _settings.isa_code(),
                            _settings.get_num_threads())
        return True

    def _compiled_rule(self, values: list[np.ndarray], grads: list[np.ndarray], f32: bool,
                       isa: int, threads: int) -> None:
        """:meth:`_update_one` for every parameter, in the compiled kernels;
        defined next to each built-in rule."""
        raise NotImplementedError

    @staticmethod
    def _check_update_args(
        values: object, grads: object
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
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
        checked_grads = []
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
            slot: [np.zeros_like(v) for v in values] for slot in self._slot_names()
        }

    # ------------------------------------------------------------------
    # config and state

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, as a dict of Python scalars."""
        return {"name": self.name, "learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Optimizer:
        """A new optimizer from :meth:`get_config`'s output (or a Keras 3 config).

        Keras-only keys (``weight_decay``, ``clipnorm``, ``use_ema``, ...) are
        accepted when they hold Keras' "off" value.
        """
        return _registry.from_keras_config(cls, config, _KERAS_ONLY_DEFAULTS, "optimizers")

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the iteration counter and every per-parameter array.

        Returns
        -------
        dict of str to numpy.ndarray
            ``"iterations"`` (int64 scalar) and ``"<slot>_<i>"`` for each slot
            (e.g. ``"momentum_0"``, ``"velocity_3"``) and parameter index.
        """
        state = {"iterations": np.array(self._iterations, dtype=np.int64)}
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
        names = self._slot_names()
        keys = {str(key) for key in state} - {"iterations"}
        count = -(-len(keys) // len(names)) if names else 0  # ceil: a partial set is "missing"
        expected = {f"{slot}_{i}" for slot in names for i in range(count)}
        if names and not keys and iterations > 0:
            raise ValueError(
                f"Invalid value for argument `state`: iterations={int(iterations)} but "
                f"no per-parameter arrays; expected {list(names)} for each parameter."
            )
        if keys != expected:
            raise ValueError(
                f"Invalid value for argument `state`: {type(self).__name__} with "
                f"config {self.get_config()} keeps {list(names)} for each parameter "
                f"(iterations={int(iterations)}); unexpected keys "
                f"{sorted(keys - expected)}, missing keys {sorted(expected - keys)}."
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
        self._iterations = int(iterations)
        self._shapes = shapes
        self._slots = slots if count else {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Keras 3 rule for parameter ``w``, gradient ``g``, learning rate ``lr``::

        momentum == 0:   w = w - lr * g
        otherwise:       m = momentum * m - lr * g        (m starts at 0)
                         w = w + m                        (nesterov=False)
                         w = w + momentum * m - lr * g    (nesterov=True)

    Parameters
    ----------
    learning_rate : float, default 0.01
        Step size, > 0.
    momentum : float, default 0.0
        In [0, 1]; 0 is plain gradient descent.
    nesterov : bool, default False
        Whether to use Nesterov momentum.
    name : str, default "SGD"
    """

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
        name: str = "SGD",
    ) -> None:
        super().__init__(learning_rate, name=name)
        self.momentum = _check_real(momentum, "momentum", 0.0, 1.0)
        self.nesterov = check_flag(nesterov, "nesterov")

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0.0 else ()

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        lr = dtype(self.learning_rate)
        if self.momentum == 0.0:
            value -= lr * grad
            return
        mu = dtype(self.momentum)
        m = self._slots["momentum"][index]
        m *= mu
        m -= lr * grad
        if self.nesterov:
            value += mu * m - lr * grad
        else:
            value += m

    def _compiled_rule(self, values: list[np.ndarray], grads: list[np.ndarray], f32: bool,
                       isa: int, threads: int) -> None:
        m = self._slots["momentum"] if self.momentum != 0.0 else None
        _optim.sgd_update(values, grads, m, self.learning_rate, self.momentum, self.nesterov,
                          f32, isa, threads)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square.

    Keras 3 rule (every state array starts at 0)::

        v = rho * v + (1 - rho) * g**2
        centered:      a = rho * a + (1 - rho) * g
                       step = lr * g / sqrt(v - a**2 + epsilon)
        not centered:  step = lr * g / sqrt(v + epsilon)
        momentum > 0:  mom = momentum * mom + step;  w = w - mom
        otherwise:     w = w - step

    ``epsilon`` is added inside the square root, as Keras 3 does.

    Parameters
    ----------
    learning_rate : float, default 0.001
        Step size, > 0.
    rho : float, default 0.9
        Decay of the running averages, in [0, 1).
    momentum : float, default 0.0
        In [0, 1]; plain (not Nesterov) momentum on the step.
    epsilon : float, default 1e-07
        Added to the mean square, > 0.
    centered : bool, default False
        Whether to divide by the estimated standard deviation of the gradient
        instead of its root mean square.
    name : str, default "rmsprop"
    """

    def __init__(
        self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
        epsilon: float = 1e-07, centered: bool = False, name: str = "rmsprop",
    ) -> None:
        super().__init__(learning_rate, name=name)
        self.rho = _check_real(rho, "rho", 0.0, 1.0, high_open=True)
        self.momentum = _check_real(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)
        self.centered = check_flag(centered, "centered")

    def _slot_names(self) -> tuple[str, ...]:
        names = ("velocity",)
        if self.momentum > 0.0:
            names += ("momentum",)
        if self.centered:
            names += ("average_gradient",)
        return names

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        lr, rho, eps = dtype(self.learning_rate), dtype(self.rho), dtype(self.epsilon)
        one_minus_rho = dtype(1.0 - self.rho)
        v = self._slots["velocity"][index]
        v *= rho
        v += one_minus_rho * np.square(grad)
        if self.centered:
            a = self._slots["average_gradient"][index]
            a *= rho
            a += one_minus_rho * grad
            denominator = v - np.square(a) + eps
        else:
            denominator = v + eps
        step = lr * grad / np.sqrt(denominator)
        if self.momentum > 0.0:
            mom = self._slots["momentum"][index]
            mom *= dtype(self.momentum)
            mom += step
            value -= mom
        else:
            value -= step

    def _compiled_rule(self, values: list[np.ndarray], grads: list[np.ndarray], f32: bool,
                       isa: int, threads: int) -> None:
        a = self._slots["average_gradient"] if self.centered else None
        mom = self._slots["momentum"] if self.momentum > 0.0 else None
        _optim.rmsprop_update(values, grads, self._slots["velocity"], a, mom,
                              self.learning_rate, self.rho, 1.0 - self.rho, self.epsilon,
                              self.momentum, f32, isa, threads)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "rho": self.rho, "momentum": self.momentum,
            "epsilon": self.epsilon, "centered": self.centered,
        }


class Adam(Optimizer):
    """Adam, optionally with the AMSGrad variant.

    Keras 3 rule at step ``t = iterations + 1`` (every state array starts at 0)::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        amsgrad:  v_hat = max(v_hat, v);  v = v_hat      (for the step only)
        w = w - alpha * m / (sqrt(v) + epsilon)

    ``epsilon`` is "epsilon hat" of Kingma and Ba (added after the square root
    of the uncorrected ``v``).

    Parameters
    ----------
    learning_rate : float, default 0.001
        Step size, > 0.
    beta_1 : float, default 0.9
        Decay of the first-moment estimate, in [0, 1).
    beta_2 : float, default 0.999
        Decay of the second-moment estimate, in [0, 1).
    epsilon : float, default 1e-07
        Added to ``sqrt(v)``, > 0.
    amsgrad : bool, default False
        Whether to use the running maximum of ``v`` (AMSGrad).
    name : str, default "adam"
    """

    def __init__(
        self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
        epsilon: float = 1e-07, amsgrad: bool = False, name: str = "adam",
    ) -> None:
        super().__init__(learning_rate, name=name)
        self.beta_1 = _check_real(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = _check_real(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, low_open=True)
        self.amsgrad = check_flag(amsgrad, "amsgrad")

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _update_one(self, index: int, value: np.ndarray, grad: np.ndarray) -> None:
        dtype = value.dtype.type
        alpha = self._alpha(dtype)
        m = self._slots["momentum"][index]
        v = self._slots["velocity"][index]
        m += (grad - m) * dtype(1.0 - self.beta_1)
        v += (np.square(grad) - v) * dtype(1.0 - self.beta_2)
        if self.amsgrad:
            v_hat = self._slots["velocity_hat"][index]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        value -= m * alpha / (np.sqrt(v) + dtype(self.epsilon))

    def _alpha(self, dtype: type) -> np.floating:
        """The step size at this step, computed in the parameters' dtype."""
        # Keras raises the betas to the step count in the parameter's dtype.
        t = dtype(self._iterations + 1)
        beta_1_power = dtype(self.beta_1) ** t
        beta_2_power = dtype(self.beta_2) ** t
        return dtype(self.learning_rate) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _compiled_rule(self, values: list[np.ndarray], grads: list[np.ndarray], f32: bool,
                       isa: int, threads: int) -> None:
        v_hat = self._slots["velocity_hat"] if self.amsgrad else None
        alpha = self._alpha(values[0].dtype.type)
        _optim.adam_update(values, grads, self._slots["momentum"], self._slots["velocity"],
                           v_hat, float(alpha), 1.0 - self.beta_1, 1.0 - self.beta_2,
                           self.epsilon, f32, isa, threads)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
            "epsilon": self.epsilon, "amsgrad": self.amsgrad,
        }


_BY_NAME: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`get` to rebuild it.

    Parameters
    ----------
    optimizer : Optimizer

    Returns
    -------
    dict
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"Invalid value for argument `optimizer`: expected an Optimizer, "
            f"received {type(optimizer).__name__}."
        )
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def get(identifier: str | Optimizer | Mapping[str, Any]) -> Optimizer:
    """Resolve an optimizer identifier.

    Parameters
    ----------
    identifier : str, Optimizer or dict
        ``"sgd"``, ``"rmsprop"`` or ``"adam"`` (any case) for a new instance
        with default arguments; an :class:`Optimizer`, returned as is; or
        ``{"class_name": ..., "config": {...}}`` as made by :func:`serialize`
        (class name in any case).

    Returns
    -------
    Optimizer
    """
    if isinstance(identifier, Optimizer):
        return identifier
    allowed = sorted(_BY_NAME)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Invalid value for argument `identifier`: expected one of "
                f"{allowed} (any case), an Optimizer or a config dict, received "
                f"identifier={identifier!r}."
            )
        return cls()
    if isinstance(identifier, Mapping):
        class_name = identifier.get("class_name")
        cls = _BY_NAME.get(class_name.lower()) if isinstance(class_name, str) else None
        if cls is None:
            raise ValueError(
                f"Invalid value for argument `identifier`: a config dict needs "
                f"'class_name' in {allowed} (any case), received "
                f"class_name={class_name!r}."
            )
        return cls.from_config(identifier.get("config") or {})
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, an "
        f"Optimizer or a config dict, received {type(identifier).__name__}."
    )

"""Losses with Keras 3's formulas, and their gradients with respect to ``y_pred``.

Every loss reduces like Keras' default ``"sum_over_batch_size"``: the
per-sample (per-position) losses are averaged, so ``loss(y_true, y_pred)``
is one float and ``gradient`` is ``d loss / d y_pred`` with ``y_pred``'s
shape and dtype. Shapes are ``(N, ..., K)``: a leading batch axis, any
further axes (e.g. pixels), and the class or output axis last.

Formulas (``eps = 1e-7``, Keras' ``backend.epsilon()``; ``M`` = number of
per-sample losses = ``y_pred.size / K``; ``S`` = ``y_pred.size``):

- categorical / sparse categorical, probabilities: ``q = p / sum(p)`` along
  the last axis, ``c = clip(q, eps, 1 - eps)``, loss ``-sum(t * log(c))``
  per sample, mean over the ``M`` samples. The gradient is that of this
  exact formula; the clip passes no gradient where ``q`` lies outside
  ``[eps, 1 - eps]``.
- categorical / sparse categorical, logits: ``-sum(t * log_softmax(z))``,
  computed with the max subtracted, so logits of +-1000 stay finite.
- binary, probabilities: ``c = clip(p, eps, 1 - eps)``, loss
  ``-(t log(c) + (1 - t) log(1 - c))`` averaged over the last axis and then
  the batch, i.e. over all ``S`` entries.
- binary, logits: ``t * softplus(-z) + (1 - t) * softplus(z)`` (the
  log-sigmoid form of Keras' JAX and TensorFlow backends) with a stable
  softplus, averaged over all ``S`` entries.
- mean squared error: ``(t - p)**2`` averaged over all ``S`` entries.

When the model's last layer applies softmax (sigmoid for binary
cross-entropy) and the loss takes probabilities, the model can skip the
activation's backward pass and call :meth:`Loss.logits_gradient`, which
returns ``d loss / d logits`` in closed form.

Everything is computed in ``y_pred``'s dtype: float32 stays float32.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastconv import _registry

from fastconv._validation import FLOAT_DTYPES, check_flag

__all__ = [
    "Loss",
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "get",
    "serialize",
]

# keras.backend.epsilon(): the clip of probabilities away from 0 and 1.
EPSILON = 1e-7

# Keys of Keras 3 loss configs, with the values that fastconv implements.
_KERAS_ONLY_DEFAULTS: dict[str, object] = {
    "reduction": "sum_over_batch_size",
    "dtype": None,
    "label_smoothing": 0.0,
    "axis": -1,
    "ignore_class": None,
}


# ----------------------------------------------------------------------------
# argument checks


def _check_pred(y_pred: object, name: str = "y_pred") -> np.ndarray:
    """A non-empty float32 or float64 array of at least one dimension."""
    y_pred = np.asarray(y_pred)
    if y_pred.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected float32 or float64, "
            f"received dtype {y_pred.dtype}."
        )
    if y_pred.ndim < 1 or y_pred.size == 0:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected a non-empty array with "
            f"at least one dimension, received shape {y_pred.shape}."
        )
    return y_pred


def _check_dense_true(y_true: object, y_pred: np.ndarray) -> np.ndarray:
    """``y_true`` in ``y_pred``'s shape and dtype.

    As Keras' ``squeeze_or_expand_to_same_rank``, a trailing axis of size 1
    on either side is accepted: ``(N,)`` targets go with ``(N, 1)`` outputs.
    """
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "biuf":
        raise TypeError(
            f"Invalid dtype for argument `y_true`: expected numbers, received "
            f"dtype {y_true.dtype}."
        )
    shape = y_pred.shape
    if y_true.shape != shape:
        if y_true.shape != shape + (1,) and not (shape[-1] == 1 and y_true.shape == shape[:-1]):
            raise ValueError(
                f"Invalid shape for argument `y_true`: expected y_pred's shape "
                f"{shape} (a trailing axis of size 1 may be added or dropped), "
                f"received shape {y_true.shape}."
            )
        y_true = y_true.reshape(shape)
    return y_true.astype(y_pred.dtype, copy=False)


def _check_sparse_true(y_true: object, y_pred: np.ndarray) -> np.ndarray:
    """Integer class indices of shape ``y_pred.shape[:-1]``, as intp."""
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "iuf":
        raise TypeError(
            f"Invalid dtype for argument `y_true`: expected integer class indices "
            f"(any int, uint or float dtype), received dtype {y_true.dtype}."
        )
    batch_shape = y_pred.shape[:-1]
    if y_true.shape == batch_shape + (1,):
        y_true = y_true.reshape(batch_shape)
    elif y_true.shape != batch_shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected class indices of shape "
            f"{batch_shape} or {batch_shape + (1,)} for y_pred of shape "
            f"{y_pred.shape}, received shape {y_true.shape}."
        )
    if y_true.dtype.kind == "f":
        bad = ~np.isfinite(y_true) | (y_true != np.round(y_true))
        if bad.any():
            raise ValueError(
                "Invalid value for argument `y_true`: expected integer class "
                f"indices, received {float(y_true[bad].flat[0])}."
            )
    num_classes = y_pred.shape[-1]
    low, high = y_true.min(), y_true.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Invalid value for argument `y_true`: class indices must lie in "
            f"[0, {num_classes}) for y_pred with {num_classes} classes, received "
            f"values in [{low}, {high}]."
        )
    return y_true.astype(np.intp)


def _one_hot(labels: np.ndarray, like: np.ndarray) -> np.ndarray:
    """One-hot rows of ``like``'s shape and dtype for integer ``labels``."""
    onehot = np.zeros_like(like)
    np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
    return onehot


# ----------------------------------------------------------------------------
# formulas on checked arrays (t and y_pred share shape and dtype)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _clip_bounds(dtype: np.dtype) -> tuple[np.floating, np.floating]:
    return dtype.type(EPSILON), dtype.type(1.0 - EPSILON)


# ----------------------------------------------------------------------------
# classes


class Loss:
    """Base class of the losses.

    Subclasses implement ``_prepare`` (check and convert ``y_true`` against
    the checked ``y_pred``), ``_value`` and ``_gradient``.

    Parameters
    ----------
    name : str
        Name of the loss.
    from_logits : bool, default False
        Whether ``y_pred`` holds logits rather than probabilities.

    Attributes
    ----------
    fused_activation : str or None
        The output activation (``"softmax"`` or ``"sigmoid"``) whose backward
        pass :meth:`logits_gradient` folds in; None if it has none.
    """

    fused_activation: str | None = None

    def __init__(self, name: str, from_logits: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Invalid value for argument `name`: expected a non-empty str, "
                f"received name={name!r}."
            )
        self.name = name
        self.from_logits = check_flag(from_logits, "from_logits")

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _value(self, t: np.ndarray, y_pred: np.ndarray) -> float:
        raise NotImplementedError

    def _gradient(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_true: object, y_pred: object) -> float:
        """Mean loss over the batch.

        Parameters
        ----------
        y_true : array_like
            Targets (see the subclass for the shape).
        y_pred : array_like of float, shape (N, ..., K)
            Predictions: probabilities, or logits if ``from_logits``.

        Returns
        -------
        float
        """
        given = y_pred
        y_pred = _check_pred(y_pred)
        value = self._value(self._prepare(y_true, y_pred), y_pred)
        # Inside a GradientTape, the value is recorded with its gradient rule.
        from fastconv.graph import tape
        tape.record_loss(self, y_true, given, value)
        return value

    def gradient(self, y_true: object, y_pred: object) -> np.ndarray:
        """``d loss / d y_pred`` of the mean loss.

        Parameters
        ----------
        y_true : array_like
            Targets, as for :meth:`__call__`.
        y_pred : array_like of float, shape (N, ..., K)

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_pred``.
        """
        y_pred = _check_pred(y_pred)
        return self._gradient(self._prepare(y_true, y_pred), y_pred)

    def logits_gradient(self, y_true: object, y_prob: object) -> np.ndarray:
        """``d loss / d z`` where ``y_prob`` = activation(``z``); see subclasses."""
        raise NotImplementedError(
            f"{type(self).__name__} has no output activation to fuse; use gradient()."
        )

    def _check_fusable(self, y_prob: object) -> np.ndarray:
        if self.from_logits:
            raise ValueError(
                f"logits_gradient needs a loss on probabilities; this "
                f"{type(self).__name__} has from_logits=True, so use gradient()."
            )
        return _check_pred(y_prob, "y_prob")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {"name": self.name, "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Loss:
        """A new loss from :meth:`get_config`'s output (or a Keras 3 config).

        Keras-only keys (``reduction``, ``label_smoothing``, ``axis``, ...) are
        accepted when they hold the value fastconv implements.
        """
        return _registry.from_keras_config(cls, config, _KERAS_ONLY_DEFAULTS, "losses")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _SoftmaxCrossentropy(Loss):
    """Cross-entropy over the last axis; subclasses turn ``y_true`` into targets."""

    fused_activation = "softmax"

    def _value(self, t: np.ndarray, y_pred: np.ndarray) -> float:
        if self.from_logits:
            log_prob = _log_softmax(y_pred)
        else:
            low, high = _clip_bounds(y_pred.dtype)
            log_prob = np.log(np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), low, high))
        return float(-(t * log_prob).sum(axis=-1).mean())

    def _gradient(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        num_samples = y_pred.size // y_pred.shape[-1]
        if self.from_logits:
            return (_softmax(y_pred) * t.sum(axis=-1, keepdims=True) - t) / num_samples
        low, high = _clip_bounds(y_pred.dtype)
        total = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / total
        # d loss / d q, zero where the clip is active.
        dq = np.where((q >= low) & (q <= high), -t / np.clip(q, low, high), 0)
        # Through q = p / sum(p): d q_j / d p_k = (delta_jk - q_j) / sum(p).
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / total / num_samples

    def logits_gradient(self, y_true: object, y_prob: object) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = softmax(z)``, in closed form.

        Returns ``(y_prob * sum(t) - t) / M`` (``t`` the targets, one-hot for
        sparse labels; ``sum`` along the last axis; ``M = y_prob.size / K``),
        i.e. ``(y_prob - onehot(y_true)) / M`` for one-hot targets. It equals
        the gradient of the clipped loss exactly where the clip is inactive
        for every class with a non-zero target (``1e-7 <= y_prob <= 1 - 1e-7``
        there); elsewhere the clipped loss is flat and this is the gradient
        of the unclipped loss.

        Parameters
        ----------
        y_true : array_like
            Targets, as for :meth:`__call__`.
        y_prob : array_like of float, shape (N, ..., K)
            Softmax output of the model.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_prob``.
        """
        y_prob = self._check_fusable(y_prob)
        t = self._prepare(y_true, y_prob)
        return (y_prob * t.sum(axis=-1, keepdims=True) - t) / (y_prob.size // y_prob.shape[-1])


class CategoricalCrossentropy(_SoftmaxCrossentropy):
    """Cross-entropy between one-hot (or soft) targets and class scores.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)`` (a trailing axis of
    size 1 may be added or dropped on ``y_true``). See the module docstring
    for the formulas.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    name : str, default "categorical_crossentropy"
    """

    def __init__(self, from_logits: bool = False, name: str = "categorical_crossentropy") -> None:
        super().__init__(name, from_logits)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        if y_pred.shape[-1] == 1:
            warnings.warn(
                f"{type(self).__name__} expects y_pred of shape (N, ..., K) with "
                f"K > 1 classes, received shape {y_pred.shape}; with one output "
                "use binary cross-entropy.",
                UserWarning,
                stacklevel=3,
            )
        return _check_dense_true(y_true, y_pred)


class SparseCategoricalCrossentropy(_SoftmaxCrossentropy):
    """Cross-entropy between integer class indices and class scores.

    ``y_true`` holds class indices of shape ``(N, ...)`` or ``(N, ..., 1)``
    (any int, uint or float dtype with integral values in ``[0, K)``);
    ``y_pred`` has shape ``(N, ..., K)``. The loss is that of
    :class:`CategoricalCrossentropy` with one-hot targets.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    name : str, default "sparse_categorical_crossentropy"
    """

    def __init__(
        self, from_logits: bool = False, name: str = "sparse_categorical_crossentropy"
    ) -> None:
        super().__init__(name, from_logits)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        return _one_hot(_check_sparse_true(y_true, y_pred), y_pred)


class BinaryCrossentropy(Loss):
    """Cross-entropy between 0/1 (or soft) targets and independent outputs.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., D)`` (a trailing axis of
    size 1 may be added or dropped on ``y_true``, so ``(N,)`` labels go with
    ``(N, 1)`` outputs). As Keras, the loss is averaged over the last axis
    and then over the batch, i.e. over all entries.

    Parameters
    ----------
    from_logits : bool, default False
        Whether ``y_pred`` holds logits instead of probabilities.
    name : str, default "binary_crossentropy"
    """

    fused_activation = "sigmoid"

    def __init__(self, from_logits: bool = False, name: str = "binary_crossentropy") -> None:
        super().__init__(name, from_logits)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        return _check_dense_true(y_true, y_pred)

    def _value(self, t: np.ndarray, y_pred: np.ndarray) -> float:
        if self.from_logits:
            losses = t * _softplus(-y_pred) + (1 - t) * _softplus(y_pred)
        else:
            low, high = _clip_bounds(y_pred.dtype)
            c = np.clip(y_pred, low, high)
            losses = -(t * np.log(c) + (1 - t) * np.log(1 - c))
        return float(losses.mean())

    def _gradient(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:
            return (_sigmoid(y_pred) - t) / y_pred.size
        low, high = _clip_bounds(y_pred.dtype)
        c = np.clip(y_pred, low, high)
        inside = (y_pred >= low) & (y_pred <= high)
        return np.where(inside, (c - t) / (c * (1 - c)), 0) / y_pred.size

    def logits_gradient(self, y_true: object, y_prob: object) -> np.ndarray:
        """``d loss / d z`` for ``y_prob = sigmoid(z)``, in closed form.

        Returns ``(y_prob - t) / S`` with ``S = y_prob.size`` (the loss is a
        mean over all entries: over the last axis, then the batch). It equals
        the gradient of the clipped loss exactly where
        ``1e-7 <= y_prob <= 1 - 1e-7``; elsewhere the clipped loss is flat and
        this is the gradient of the unclipped loss.

        Parameters
        ----------
        y_true : array_like, shape (N, ..., D)
        y_prob : array_like of float, shape (N, ..., D)
            Sigmoid output of the model.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_prob``.
        """
        y_prob = self._check_fusable(y_prob)
        return (y_prob - self._prepare(y_true, y_prob)) / y_prob.size


class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred)**2`` over all entries.

    ``y_true`` and ``y_pred`` have the same shape (a trailing axis of size 1
    may be added or dropped on ``y_true``).

    Parameters
    ----------
    name : str, default "mean_squared_error"
    """

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(name, from_logits=False)

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        return _check_dense_true(y_true, y_pred)

    def _value(self, t: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.square(t - y_pred).mean())

    def _gradient(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return 2 * (y_pred - t) / y_pred.size

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
        MeanSquaredError,
    )
}
# Keras' function names and aliases; a loss got by one of these is named by it.
class FunctionLoss(Loss):
    """A loss written as a function ``fn(y_true, y_pred)`` with Keras ops
    (``fastconv.ops``), returning per-sample (or per-element) values; the loss
    is their mean, as Keras' default reduction. Its gradient comes from the
    ops' rules: ``fn`` is traced once per pair of shapes into a graph."""

    def __init__(self, fn: Any, name: str | None = None) -> None:
        super().__init__(name or getattr(fn, "__name__", "loss"))
        self.fn = fn
        self._plans: dict = {}

    def _prepare(self, y_true: object, y_pred: np.ndarray) -> np.ndarray:
        t = np.asarray(y_true)
        return t.astype(y_pred.dtype) if t.dtype.kind in "biuf" else t

    def _plan(self, t: np.ndarray, y_pred: np.ndarray) -> Any:
        from fastconv.graph.executor import Plan
        from fastconv.graph.function import Function
        from fastconv.graph.node import KerasTensor

        key = (t.shape[1:], t.dtype.name, y_pred.shape[1:], y_pred.dtype.name)
        plan = self._plans.get(key)
        if plan is None:
            yt = KerasTensor((None, *t.shape[1:]), t.dtype.name, name="y_true")
            yp = KerasTensor((None, *y_pred.shape[1:]), y_pred.dtype.name, name="y_pred")
            try:
                out = self.fn(yt, yp)
            except TypeError as exc:
                raise TypeError(
                    f"The loss function {self.name!r} could not be traced: {exc}. Write it "
                    "with fastconv.ops (keras.ops), not NumPy, so it can be "
                    "differentiated.") from None
            if not isinstance(out, KerasTensor):
                raise TypeError(f"The loss function {self.name!r} returned {type(out).__name__}"
                                "; it must return what fastconv.ops computed from its "
                                "arguments.")
            plan = Plan(Function([yt, yp], out, owner=f"loss {self.name!r}"))
            self._plans[key] = plan
        return plan

    def _value(self, t: np.ndarray, y_pred: np.ndarray) -> float:
        (out,), _ = self._plan(t, y_pred).forward([t, y_pred], training=True)
        return float(np.mean(out))

    def _gradient(self, t: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        plan = self._plan(t, y_pred)
        (out,), tape = plan.forward([t, y_pred], training=True, record=True)
        d = np.full(np.shape(out), 1.0 / max(np.size(out), 1), dtype=y_pred.dtype)
        grads = plan.backward(tape, [d], input_grads=True)
        g = grads[1]
        return np.zeros_like(y_pred) if g is None else g.astype(y_pred.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"The loss function {self.name!r} is Python code, which fastconv "
                        "does not save; pass it again with custom_objects when loading.")


_ALIASES: dict[str, type[Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
}


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for :func:`get` to rebuild it.

    Parameters
    ----------
    loss : Loss

    Returns
    -------
    dict
    """
    if not isinstance(loss, Loss):
        raise TypeError(
            f"Invalid value for argument `loss`: expected a Loss, received "
            f"{type(loss).__name__}."
        )
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def get(identifier: str | Loss | type | Mapping[str, Any]) -> Loss:
    """Resolve a loss identifier, as ``keras.losses.get`` (names are case-sensitive).

    Parameters
    ----------
    identifier : str, Loss, Loss subclass or dict
        A class name (``"CategoricalCrossentropy"``) or Keras function name or
        alias (``"categorical_crossentropy"``, ``"mse"``, ...) for a new
        instance with default arguments (named by the function name or
        alias, as Keras' ``compile`` does); a :class:`Loss`, returned as is;
        a Loss subclass, instantiated; or ``{"class_name": ..., "config":
        {...}}`` as made by :func:`serialize`.

    Returns
    -------
    Loss
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    allowed = sorted(_ALIASES) + sorted(_CLASSES)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        if identifier in _ALIASES:
            return _ALIASES[identifier](name=identifier)
        raise ValueError(
            f"Invalid value for argument `identifier`: expected one of {allowed}, "
            f"a Loss or a config dict, received identifier={identifier!r}."
        )
    if isinstance(identifier, Mapping):
        class_name = identifier.get("class_name")
        if not isinstance(class_name, str):
            cls = None
        else:
            cls = _CLASSES.get(class_name) or _ALIASES.get(class_name)
        if cls is None:
            raise ValueError(
                f"Invalid value for argument `identifier`: a config dict needs "
                f"'class_name' in {allowed}, received class_name={class_name!r}."
            )
        return cls.from_config(identifier.get("config") or {})
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, a "
        f"Loss or a config dict, received {type(identifier).__name__}."
    )

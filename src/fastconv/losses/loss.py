"""The ``Loss`` base class: per-sample losses, sample weights, reductions and
the exact gradient of the reduced value.

A loss computes in two stages, as Keras 3's ``Loss.__call__``:

1. ``_values(t, p)``: the per-sample losses ``L`` (Keras' ``call``), one per
   entry of ``y_pred`` with the reduced axis removed, e.g. ``(N,)`` for
   ``y_pred`` of shape ``(N, K)``, ``(N, H, W)`` for ``(N, H, W, K)``.
2. ``reduce_weighted_values``: ``L`` times ``sample_weight``, then the
   reduction.

The backward pass runs the same stages in reverse: the reduction gives
``dL`` (``d value / d L``, the weights times the reduction's scale), and
``_values_backward(t, p, dL)`` is the vector-Jacobian product of stage 1.
A subclass therefore writes only its formula and its derivative; the
weights and reductions live here once.

Sample weights follow Keras 3's ``reduce_weighted_values`` exactly:

- ``L`` and ``sample_weight`` are brought to the same rank by Keras'
  ``squeeze_or_expand_to_same_rank`` (a trailing axis of size 1 on the one
  of higher rank is dropped, or added to the other if it has rank 1), then
  multiplied with NumPy broadcasting (trailing axes aligned, as every Keras
  backend does). So ``(N,)`` weights go with ``(N,)`` or ``(N, 1)`` losses,
  and per-pixel losses ``(N, H, W)`` need weights of shape ``(N, H, W)``,
  ``(N, 1, 1)``, a scalar, or any shape that broadcasts.
- ``"sum"``: the sum of the weighted losses; ``"sum_over_batch_size"`` (the
  default) and ``"mean"``: that sum over the number of weighted losses
  (zero weights still count); ``"mean_with_sample_weight"``: the sum over
  the sum of the weights (the number of losses without weights); a zero
  divisor gives 0 (Keras' ``divide_no_nan``); ``"none"`` and ``None``: the
  weighted losses, unreduced. A 0-d ``L`` (e.g. mean squared error of a 1-d
  ``y_pred``) is returned as it is, as Keras does.

Everything is computed in ``y_pred``'s dtype (or the loss's ``dtype`` if
one is given): float32 stays float32.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fastconv import _registry
from fastconv._validation import FLOAT_DTYPES
from fastconv.runtime import batch as _batch

# keras.backend.epsilon(): the clip of probabilities away from 0 and 1.
EPSILON = 1e-7

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)

# Keras config keys that fastconv accepts only at their default value.
_KERAS_ONLY_DEFAULTS: dict[str, object] = {"dtype": None}


# ----------------------------------------------------------------------------
# argument checks


def check_pred(y_pred: object, name: str = "y_pred") -> np.ndarray:
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


def check_reduction(reduction: object) -> str | None:
    if not (reduction is None or (isinstance(reduction, str) and reduction in REDUCTIONS)):
        raise ValueError(
            f"Invalid value for argument `reduction`: expected one of "
            f"{list(REDUCTIONS)}, received reduction={reduction!r}."
        )
    return reduction


def check_dtype(dtype: object) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = np.dtype(object)
    if resolved not in FLOAT_DTYPES:
        raise ValueError(
            f"Invalid value for argument `dtype`: expected None, 'float32' or 'float64', "
            f"received dtype={dtype!r}."
        )
    return resolved


def check_float(value: object, name: str, low: float | None = None,
                high: float | None = None, open_low: bool = False) -> float:
    """A finite real number, optionally in ``[low, high]`` (``(low, high]``
    if ``open_low``; an unbounded side is written ``inf``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a finite float, "
            f"received {name}={value!r}."
        )
    value = float(value)
    below = low is not None and (value <= low if open_low else value < low)
    if below or (high is not None and value > high):
        interval = (f"{'(' if open_low else '['}{low if low is not None else '-inf'}, "
                    f"{high if high is not None else 'inf'}{']' if high is not None else ')'}")
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a float in {interval}, "
            f"received {name}={value!r}."
        )
    return value


def check_axis(axis: object) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(
            f"Invalid value for argument `axis`: expected an int, received axis={axis!r}."
        )
    return int(axis)


def same_rank(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``squeeze_or_expand_to_same_rank(y_true, y_pred)``.

    If the ranks differ by one and the array of higher rank ends in an axis
    of size 1, that axis is dropped; when the other array has rank 1, the
    other gains a trailing axis instead. Other shapes are returned as they are.
    """
    rt, rp = y_true.ndim, y_pred.ndim
    if rt == rp + 1 and y_true.shape[-1] == 1:
        if rp == 1:
            y_pred = y_pred[..., None]
        else:
            y_true = y_true[..., 0]
    if rp == rt + 1 and y_pred.shape[-1] == 1:
        if rt == 1:
            y_true = y_true[..., None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def check_dense_true(y_true: object, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(t, p)``: ``y_true`` as numbers in ``y_pred``'s dtype and ``y_pred``,
    brought to the same shape by :func:`same_rank` (so ``(N,)`` targets go
    with ``(N, 1)`` outputs)."""
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "biuf":
        raise TypeError(
            f"Invalid dtype for argument `y_true`: expected numbers, received "
            f"dtype {y_true.dtype}."
        )
    t, p = same_rank(y_true, y_pred)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected y_pred's shape "
            f"{y_pred.shape} (a trailing axis of size 1 may be added or dropped), "
            f"received shape {y_true.shape}."
        )
    return t.astype(y_pred.dtype, copy=False), p


def check_sample_weight(sample_weight: object, dtype: np.dtype) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(
            f"Invalid dtype for argument `sample_weight`: expected None or numbers "
            f"(bool, int or float), received dtype {weights.dtype}."
        )
    return weights.astype(dtype, copy=False)


# ----------------------------------------------------------------------------
# weights and reductions


def _weights_for(dtype: np.dtype, sample_weight: np.ndarray | None,
                 mask: np.ndarray | None, reduction: str | None) -> np.ndarray | None:
    """Keras' ``apply_mask``: the mask folded into the sample weights."""
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        if _batch.in_chunk():
            raise ValueError("A masked loss with reduction='sum_over_batch_size' divides by "
                             "the whole batch's count of unmasked entries, which one chunk "
                             "of the batch does not know (fastconv.distribute).")
        # Masked-out entries get weight 0 and the others total / valid, so
        # the mean over all entries is the mean over the valid ones.
        valid = mask.sum()
        scale = mask.size / valid if valid else 0.0
        float_mask = np.where(mask, scale, 0).astype(dtype)
    else:
        float_mask = mask.astype(dtype)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = same_rank(float_mask, sample_weight)
    return sample_weight * float_mask


def _aligned(values: np.ndarray, weights: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """``values`` and ``weights`` at the same rank and the broadcast shape of
    their product, or a ValueError naming both shapes."""
    if weights is None:
        return values, None, values.shape
    v, w = same_rank(values, weights)
    try:
        shape = np.broadcast_shapes(v.shape, w.shape)
    except ValueError:
        raise ValueError(
            f"Invalid shape for argument `sample_weight`: expected a scalar or a shape "
            f"that broadcasts against the per-sample losses of shape {values.shape} "
            "(a trailing axis of size 1 may be added or dropped), received shape "
            f"{weights.shape}."
        ) from None
    return v, w, shape


def _scale(shape: tuple, weights: np.ndarray | None, reduction: str | None) -> float | None:
    """The factor ``c`` of ``value = c * sum(L * w)``; None if unreduced."""
    if reduction in (None, "none") or shape in ((), (0,)):
        return None
    if reduction == "sum":
        return 1.0
    if reduction == "mean_with_sample_weight" and weights is not None:
        if _batch.in_chunk():
            raise ValueError("A loss with reduction='mean_with_sample_weight' divides by the "
                             "sum of the whole batch's weights, which one chunk of the batch "
                             "does not know (fastconv.distribute); use "
                             "reduction='sum_over_batch_size'.")
        divisor = float(weights.sum())
    else:
        # The mean over the whole batch, also when these rows are one chunk of it.
        divisor = float(np.prod(shape[1:])) * _batch.global_rows(shape[0])
    return 1.0 / divisor if divisor else 0.0  # divide_no_nan


def reduce_weighted_values(values: np.ndarray, sample_weight: np.ndarray | None = None,
                           mask: np.ndarray | None = None,
                           reduction: str | None = "sum_over_batch_size") -> np.ndarray:
    """Keras 3's ``reduce_weighted_values`` on arrays: the weighted, reduced losses.

    Parameters
    ----------
    values : numpy.ndarray
        Per-sample losses ``L``.
    sample_weight : numpy.ndarray or None
        Weights in ``values``' dtype (see the module docstring for shapes).
    mask : numpy.ndarray of bool or None
        Entries of ``values`` that count.
    reduction : str or None

    Returns
    -------
    numpy.ndarray
        0-d once reduced; the weighted losses for ``"none"``/None.
    """
    weights = _weights_for(values.dtype, sample_weight, mask, reduction)
    v, w, shape = _aligned(values, weights)
    weighted = v if w is None else v * w
    scale = _scale(shape, w, reduction)
    if scale is None:
        return weighted
    return np.asarray(weighted.sum() * values.dtype.type(scale), dtype=values.dtype)


def reduce_weighted_values_backward(values: np.ndarray, sample_weight: np.ndarray | None,
                                    mask: np.ndarray | None, reduction: str | None,
                                    d_out: Any = None) -> np.ndarray:
    """``dL``: the gradient with respect to ``values`` of
    :func:`reduce_weighted_values`, times ``d_out`` (1 if None; the shape of
    the unreduced result for ``"none"``)."""
    weights = _weights_for(values.dtype, sample_weight, mask, reduction)
    v, w, shape = _aligned(values, weights)
    scale = _scale(shape, w, reduction)
    d = np.ones(shape, values.dtype) if d_out is None else np.broadcast_to(
        np.asarray(d_out, values.dtype), shape)
    if scale is not None:
        d = d * values.dtype.type(scale)
    if w is not None:
        d = d * w
    # Sum over the axes the weights broadcast the losses along.
    extra = d.ndim - v.ndim
    if extra:
        d = d.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(v.shape) if n == 1 and d.shape[i] != 1)
    if axes:
        d = d.sum(axis=axes, keepdims=True)
    return np.ascontiguousarray(np.broadcast_to(d, v.shape)).reshape(values.shape)


# ----------------------------------------------------------------------------
# the base class


class _LossRecord:
    """How a loss value depends on ``y_pred`` on a ``GradientTape``."""

    name = "loss"

    def __init__(self, loss: Loss, y_true: Any, sample_weight: Any) -> None:
        self.loss, self.y_true, self.sample_weight = loss, y_true, sample_weight

    def backward(self, ctx: Any, d_out: Any, need_dx: bool = True) -> np.ndarray:
        return self.loss._backward(self.y_true, ctx, self.sample_weight, d_out, fused=False)


class Loss:
    """Base class of the losses, as ``keras.losses.Loss``.

    A custom loss, as in Keras, overrides :meth:`call` with
    ``fastconv.ops`` (``keras.ops``) and returns per-sample losses; they are
    weighted and reduced here, and the ops' gradient rules give the
    gradient (``call`` is traced once per pair of input shapes).

    The built-in losses instead implement ``_prepare(y_true, y_pred) ->
    (t, p, undo)`` (checked targets; ``y_pred`` with the reduced axis last;
    ``undo`` maps an array shaped like ``p`` back to ``y_pred``'s shape),
    ``_values(t, p)`` (per-sample losses, optionally with a mask) and
    ``_values_backward(t, p, dL)`` (d ``sum(dL * L)`` / d ``p``) in NumPy
    with closed-form derivatives; a loss with a fused output activation also
    implements ``_logits_backward``.

    Parameters
    ----------
    name : str, optional
        Name of the loss; defaults to the snake-case class name.
    reduction : str or None, default "sum_over_batch_size"
        ``"sum_over_batch_size"``, ``"sum"``, ``"mean"``,
        ``"mean_with_sample_weight"``, ``"none"`` or None (see the module
        docstring of ``fastconv.losses.loss``).
    dtype : str or None, default None
        Dtype of the computation: None computes in ``y_pred``'s dtype
        (float32 or float64); ``"float32"``/``"float64"`` casts to it first.

    Attributes
    ----------
    fused_activation : str or None
        The output activation (``"softmax"`` or ``"sigmoid"``) whose backward
        pass :meth:`logits_gradient` folds in; None if it has none.
    from_logits : bool
        Whether ``y_pred`` holds logits (False for losses without the option).
    """

    fused_activation: str | None = None
    from_logits: bool = False

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        if name is None:
            name = _snake_case(type(self).__name__)
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Invalid value for argument `name`: expected a non-empty str, "
                f"received name={name!r}."
            )
        self.name = name
        self.reduction = check_reduction(reduction)
        self._dtype = check_dtype(dtype)

    @property
    def dtype(self) -> str | None:
        return None if self._dtype is None else self._dtype.name

    # -- to implement --------------------------------------------------------

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample losses of symbolic ``y_true`` and ``y_pred``, written
        with ``fastconv.ops``; override it in a custom loss, as in Keras."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement call(y_true, y_pred) with "
            "fastconv.ops, returning the per-sample losses."
        )

    def _prepare(self, y_true: object, y_pred: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        t = np.asarray(y_true)
        t = t.astype(y_pred.dtype) if t.dtype.kind in "biuf" else t
        return t, y_pred, lambda dp: dp

    def _plan(self, t: np.ndarray, p: np.ndarray) -> Any:
        """The traced graph of :meth:`call` for the shapes of ``t`` and ``p``."""
        from fastconv.graph.executor import Plan
        from fastconv.graph.function import Function
        from fastconv.graph.node import KerasTensor

        plans = self.__dict__.setdefault("_plans", {})
        key = (t.shape[1:], t.dtype.name, p.shape[1:], p.dtype.name)
        plan = plans.get(key)
        if plan is None:
            yt = KerasTensor((None, *t.shape[1:]), t.dtype.name, name="y_true")
            yp = KerasTensor((None, *p.shape[1:]), p.dtype.name, name="y_pred")
            try:
                out = self.call(yt, yp)
            except TypeError as exc:
                raise TypeError(
                    f"The loss {self.name!r} could not be traced: {exc}. Write it "
                    "with fastconv.ops (keras.ops), not NumPy, so it can be "
                    "differentiated.") from None
            if not isinstance(out, KerasTensor):
                raise TypeError(f"The loss {self.name!r} returned {type(out).__name__}"
                                "; it must return what fastconv.ops computed from its "
                                "arguments.")
            plan = Plan(Function([yt, yp], out, owner=f"loss {self.name!r}"))
            plans[key] = plan
        return plan

    def _values(self, t: np.ndarray, p: np.ndarray
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
        (out,), _ = self._plan(t, p).forward([t, p], training=True)
        return np.asarray(out, dtype=p.dtype)

    def _values_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        plan = self._plan(t, p)
        (out,), tape = plan.forward([t, p], training=True, record=True)
        grads = plan.backward(tape, [dL.reshape(np.shape(out))], input_grads=True)
        g = grads[1]
        return np.zeros_like(p) if g is None else g.astype(p.dtype, copy=False)

    def _logits_backward(self, t: np.ndarray, p: np.ndarray, dL: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- public --------------------------------------------------------------

    def __call__(self, y_true: object, y_pred: object, sample_weight: object = None
                 ) -> float | np.ndarray:
        """The weighted, reduced loss.

        Parameters
        ----------
        y_true : array_like
            Targets (see the subclass for the shape).
        y_pred : array_like of float, shape (N, ..., K)
            Predictions: probabilities, or logits if ``from_logits``.
        sample_weight : array_like or None
            Scalar, ``(N,)`` or any shape that broadcasts against the
            per-sample losses (see the module docstring of
            ``fastconv.losses.loss``).

        Returns
        -------
        float or numpy.ndarray
            A float once reduced; the weighted per-sample losses for
            ``reduction="none"``/None.
        """
        given = y_pred
        y_pred = self._cast(check_pred(y_pred))
        t, p, _ = self._prepare(y_true, y_pred)
        values, mask = self._split(self._values(t, p))
        weights = check_sample_weight(sample_weight, values.dtype)
        out = reduce_weighted_values(values, weights, mask, self.reduction)
        value = float(out) if out.ndim == 0 else out
        # Inside a GradientTape, the value is recorded with its gradient rule.
        from fastconv.graph import tape
        if tape.recording() and isinstance(given, np.ndarray):
            tape.record(_LossRecord(self, y_true, sample_weight), given, [given],
                        tape.SINGLE, value)
        return value

    def gradient(self, y_true: object, y_pred: object, sample_weight: object = None
                 ) -> np.ndarray:
        """``d loss / d y_pred`` of :meth:`__call__`'s value.

        For ``reduction="none"``/None it is the gradient of the sum of the
        returned losses (what a ``GradientTape`` gives for a non-scalar target).

        Parameters
        ----------
        y_true, y_pred, sample_weight
            As for :meth:`__call__`.

        Returns
        -------
        numpy.ndarray
            Same shape and dtype as ``y_pred``.
        """
        return self._backward(y_true, y_pred, sample_weight, None, fused=False)

    def logits_gradient(self, y_true: object, y_prob: object, sample_weight: object = None
                        ) -> np.ndarray:
        """``d loss / d z`` where ``y_prob`` = activation(``z``); see subclasses."""
        if self.fused_activation is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no output activation to fuse; use gradient()."
            )
        if self.from_logits:
            raise ValueError(
                f"logits_gradient needs a loss on probabilities; this "
                f"{type(self).__name__} has from_logits=True, so use gradient()."
            )
        return self._backward(y_true, y_prob, sample_weight, None, fused=True)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, with Keras 3's keys."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Loss:
        """A new loss from :meth:`get_config`'s output (or a Keras 3 config)."""
        return _registry.from_keras_config(cls, config, _KERAS_ONLY_DEFAULTS, "losses")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- internals -----------------------------------------------------------

    def _cast(self, y_pred: np.ndarray) -> np.ndarray:
        return y_pred if self._dtype is None else y_pred.astype(self._dtype, copy=False)

    @staticmethod
    def _split(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(out, tuple):
            return np.asarray(out[0]), out[1]
        return np.asarray(out), None

    def _backward(self, y_true: object, y_pred: object, sample_weight: object, d_out: Any,
                  fused: bool) -> np.ndarray:
        name = "y_prob" if fused else "y_pred"
        given = check_pred(y_pred, name)
        y_pred = self._cast(given)
        t, p, undo = self._prepare(y_true, y_pred)
        values, mask = self._split(self._values(t, p))
        weights = check_sample_weight(sample_weight, values.dtype)
        dL = reduce_weighted_values_backward(values, weights, mask, self.reduction, d_out)
        dp = self._logits_backward(t, p, dL) if fused else self._values_backward(t, p, dL)
        return np.ascontiguousarray(undo(dp)).astype(given.dtype, copy=False)


def _snake_case(name: str) -> str:
    out = [name[0].lower()]
    for prev, ch in itertools.pairwise(name):
        out.append(f"_{ch.lower()}" if ch.isupper() and not prev.isupper() else ch.lower())
    return "".join(out)

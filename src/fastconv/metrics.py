"""Running metrics with Keras 3's semantics: a weighted mean of per-sample values.

Every metric here is a running mean, as in Keras' ``reduction_metrics.Mean``
and ``MeanMetricWrapper``: each ``update_state`` call turns its batch into
one value per sample (averaging any further axes), adds the weighted sum of
those values to ``total`` and the sum of the weights to ``count``;
``result()`` is ``total / count`` (0.0 before any update). The accuracy
metrics compute per-sample matches following
``keras/src/metrics/accuracy_metrics.py``; the running sums are Python
floats, so long epochs do not lose counts to float32 rounding.

:func:`get` resolves ``"accuracy"`` the way Keras' ``compile`` does
(``keras/src/trainers/compile_utils.py``), from the shapes of the targets
and the predictions.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastconv import losses

__all__ = [
    "Metric",
    "Mean",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "get",
]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"Invalid value for argument `name`: expected a non-empty str, "
            f"received name={name!r}."
        )
    return name


def _numeric(value: object, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected numbers, received "
            f"dtype {array.dtype}."
        )
    return array


def _same_rank(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``squeeze_or_expand_to_same_rank``: reconcile a trailing axis of size 1.

    If the ranks differ by one and the longer shape ends in 1, that axis is
    dropped, except that a rank-1 partner is expanded instead, so ``(N,)``
    and ``(N, 1)`` meet as ``(N, 1)``.
    """
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def _per_sample(values: np.ndarray) -> np.ndarray:
    """Mean over every axis after the first."""
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


class Metric:
    """Base class: a named running statistic.

    Subclasses implement ``update_state``, ``result`` and ``reset_state``.

    Parameters
    ----------
    name : str
        Name shown in logs and history.
    """

    def __init__(self, name: str) -> None:
        self.name = _check_name(name)

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Accumulate one batch."""
        raise NotImplementedError

    def result(self) -> float:
        """The statistic over every batch since the last reset."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget every batch seen."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Metric:
        """A new metric from :meth:`get_config`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Mean(Metric):
    """Weighted running mean of the given values (``keras.metrics.Mean``).

    Parameters
    ----------
    name : str, default "mean"

    Examples
    --------
    >>> m = Mean()
    >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    >>> m.result()
    2.0
    """

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)
        self.reset_state()

    def update_state(  # type: ignore[override]
        self, values: object, sample_weight: object = None
    ) -> None:
        """Add a batch of values.

        Parameters
        ----------
        values : float or array_like, shape (N, ...)
            A scalar counts as one value; otherwise each of the ``N`` samples
            contributes the mean of its entries.
        sample_weight : float or array_like, optional
            Weight of each sample (default 1): a scalar, or an array of shape
            ``(N,)``, ``(N, 1)`` or more axes matching ``values``. Keras'
            reduction is followed: values are averaged over the axes the
            weights lack, multiplied by the weights, then averaged per sample;
            ``count`` grows by the weights averaged per sample and summed.
            The model's running loss passes the batch loss with
            ``sample_weight=batch_size``.
        """
        values = _numeric(values, "values").astype(np.float64)
        if sample_weight is None:
            self._total += float(_per_sample(values).sum())
            self._count += float(values.shape[0]) if values.ndim else 1.0
            return
        weights = _numeric(sample_weight, "sample_weight").astype(np.float64)
        values, weights = _same_rank(values, weights)
        if values.ndim > weights.ndim:
            values = values.mean(axis=tuple(range(weights.ndim, values.ndim)))
        try:
            weights = np.broadcast_to(weights, values.shape)
        except ValueError:
            raise ValueError(
                f"Invalid shape for argument `sample_weight`: expected a scalar or "
                f"a shape that broadcasts to the values' per-sample shape "
                f"{values.shape}, received shape {np.shape(sample_weight)}."
            ) from None
        self._total += float(_per_sample(values * weights).sum())
        self._count += float(_per_sample(weights).sum())

    def result(self) -> float:
        """``total / count``, or 0.0 when ``count`` is 0 (as Keras' ``divide_no_nan``)."""
        return self._total / self._count if self._count else 0.0

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0.0


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred)``'s per-sample values, as
    Keras' ``MeanMetricWrapper``: how a metric written as a function (with
    ``fastconv.ops`` or NumPy) is tracked.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred)`` returning one value per sample (or a scalar).
    name : str, optional
        Default: the function's name.
    """

    def __init__(self, fn: Any, name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"Invalid value for argument `fn`: expected a callable, "
                            f"received {fn!r}.")
        self.fn = fn
        super().__init__(name or getattr(fn, "__name__", "metric"))

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        values = np.asarray(self.fn(np.asarray(y_true), np.asarray(y_pred)))
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"The metric {self.name!r} wraps a Python function, which fastconv "
                        "does not save.")


class _MatchRate(Mean):
    """Mean of a per-sample 0/1 match, computed by ``_matches``."""

    def _matches(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        """Add the matches of one batch.

        Parameters
        ----------
        y_true : array_like
            Targets (see the class for the shape).
        y_pred : array_like, shape (N, ...)
            Predictions (probabilities or logits).
        sample_weight : float or array_like, optional
            Weight of each sample, as for :meth:`Mean.update_state`.
        """
        y_true = _numeric(y_true, "y_true")
        y_pred = _numeric(y_pred, "y_pred")
        if y_pred.ndim < 1:
            raise ValueError(
                f"Invalid shape for argument `y_pred`: expected at least one "
                f"dimension (the batch), received shape {y_pred.shape}."
            )
        super().update_state(self._matches(y_true, y_pred), sample_weight)


def _check_elementwise(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions of one shape, ``(N, ..., D)``."""
    t, p = _same_rank(y_true, y_pred)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected y_pred's shape "
            f"{y_pred.shape} (a trailing axis of size 1 may be added or dropped), "
            f"received shape {y_true.shape}."
        )
    if p.ndim == 1:
        # One output per sample: keep one match per sample. (Keras would
        # average the whole rank-1 batch into a single value.)
        t, p = t[:, None], p[:, None]
    return t, p


class Accuracy(_MatchRate):
    """How often predictions exactly equal the targets (``keras.metrics.Accuracy``).

    ``y_true`` and ``y_pred`` have one shape ``(N, ..., D)`` (a trailing axis
    of size 1 may be added or dropped); each sample scores the fraction of its
    ``D`` entries that are equal.

    Parameters
    ----------
    name : str, default "accuracy"
    """

    def __init__(self, name: str = "accuracy") -> None:
        super().__init__(name)

    def _matches(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t, p = _check_elementwise(y_true, y_pred)
        return (t.astype(p.dtype) == p).mean(axis=-1)


class BinaryAccuracy(_MatchRate):
    """How often thresholded predictions match 0/1 targets (``keras.metrics.BinaryAccuracy``).

    A prediction counts as 1 when it is strictly greater than ``threshold``.
    ``y_true`` and ``y_pred`` have one shape ``(N, ..., D)`` (so ``(N,)``
    labels go with ``(N, 1)`` outputs); each sample scores the fraction of
    its ``D`` outputs that match.

    Parameters
    ----------
    threshold : float, default 0.5
        In (0, 1).
    name : str, default "binary_accuracy"
    """

    def __init__(self, threshold: float = 0.5, name: str = "binary_accuracy") -> None:
        super().__init__(name)
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, (bool, np.bool_)):
            raise TypeError(
                f"Invalid value for argument `threshold`: expected a float in (0, 1), "
                f"received threshold={threshold!r}."
            )
        if not (math.isfinite(threshold) and 0 < threshold < 1):
            raise ValueError(
                f"Invalid value for argument `threshold`: expected a value in "
                f"(0, 1), received threshold={threshold!r}."
            )
        self.threshold = float(threshold)

    def _matches(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        t, p = _check_elementwise(y_true, y_pred)
        return (t == (p > self.threshold).astype(t.dtype)).mean(axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(_MatchRate):
    """How often the arg-max of the predictions is the one-hot target's class.

    ``y_true`` and ``y_pred`` have shape ``(N, ..., K)``; ties go to the
    first index, as ``argmax``. Logits work as well as probabilities.

    Parameters
    ----------
    name : str, default "categorical_accuracy"
    """

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(name)

    def _matches(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"Invalid shape for argument `y_true`: expected one-hot targets of "
                f"y_pred's shape {y_pred.shape}, received shape {y_true.shape}."
            )
        return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(np.float64)


class SparseCategoricalAccuracy(_MatchRate):
    """How often the arg-max of the predictions equals the integer target.

    ``y_true`` holds class indices of shape ``(N, ...)`` or ``(N, ..., 1)``;
    ``y_pred`` has shape ``(N, ..., K)``. Ties go to the first index. A
    target that is not a valid index simply never matches, as in Keras.

    Parameters
    ----------
    name : str, default "sparse_categorical_accuracy"
    """

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(name)

    def _matches(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        batch_shape = y_pred.shape[:-1]
        if y_true.shape == batch_shape + (1,):
            y_true = y_true.reshape(batch_shape)
        elif y_true.shape != batch_shape:
            raise ValueError(
                f"Invalid shape for argument `y_true`: expected class indices of "
                f"shape {batch_shape} or {batch_shape + (1,)} for y_pred of shape "
                f"{y_pred.shape}, received shape {y_true.shape}."
            )
        return (y_true == y_pred.argmax(axis=-1)).astype(np.float64)


_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy)
}
_FUNCTION_NAMES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
}


def _resolve_accuracy(
    loss: object, y_true_shape: tuple[int, ...] | None, y_pred_shape: tuple[int, ...] | None
) -> type[Metric]:
    """The accuracy class that Keras' ``compile`` picks for ``"accuracy"``."""
    if y_true_shape is not None and y_pred_shape is not None:
        y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
        if not y_true_shape or not y_pred_shape:
            raise ValueError(
                "Invalid value for arguments `y_true_shape`/`y_pred_shape`: expected "
                f"at least one dimension each, received {y_true_shape} and {y_pred_shape}."
            )
        if y_pred_shape[-1] == 1:
            return BinaryAccuracy
        if len(y_true_shape) < len(y_pred_shape) or (
            y_true_shape[-1] == 1 and y_pred_shape[-1] > 1
        ):
            return SparseCategoricalAccuracy
        return CategoricalAccuracy
    # Without shapes, the loss tells which targets the model trains on.
    by_loss = {
        losses.SparseCategoricalCrossentropy: SparseCategoricalAccuracy,
        losses.CategoricalCrossentropy: CategoricalAccuracy,
        losses.BinaryCrossentropy: BinaryAccuracy,
    }
    if loss is not None:
        resolved = by_loss.get(type(losses.get(loss)))
        if resolved is not None:
            return resolved
    raise ValueError(
        "Cannot resolve 'accuracy': pass `y_true_shape` and `y_pred_shape`, or a "
        "cross-entropy `loss`; received y_true_shape="
        f"{y_true_shape}, y_pred_shape={y_pred_shape}, loss={loss!r}."
    )


def get(
    identifier: str | Metric | Mapping[str, Any],
    loss: object = None,
    y_true_shape: tuple[int, ...] | None = None,
    y_pred_shape: tuple[int, ...] | None = None,
) -> Metric:
    """Resolve a metric identifier as Keras' ``compile`` does.

    Parameters
    ----------
    identifier : str, Metric or dict
        ``"accuracy"`` or ``"acc"`` (any case): binary accuracy if the
        predictions' last dimension is 1; else sparse categorical accuracy if
        ``y_true`` has lower rank than ``y_pred``, or its last dimension is 1
        while ``y_pred``'s is > 1; else categorical accuracy.
        ``"binary_accuracy"``, ``"categorical_accuracy"``,
        ``"sparse_categorical_accuracy"`` or a class name (``"Mean"``,
        ``"BinaryAccuracy"``, ...): that metric. A metric got by a string is
        named by that string, as in Keras' logs and history (so "accuracy"
        stays "accuracy"). A :class:`Metric` is returned as is; a dict
        ``{"class_name": ..., "config": {...}}`` is rebuilt.
    loss : Loss or str, optional
        Used for ``"accuracy"`` only when the shapes are not given: sparse,
        categorical or binary cross-entropy pick the matching accuracy.
    y_true_shape, y_pred_shape : tuple of int, optional
        Shapes of the targets and the predictions.

    Returns
    -------
    Metric
    """
    if isinstance(identifier, Metric):
        return identifier
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _resolve_accuracy(loss, y_true_shape, y_pred_shape)(name=identifier)
        cls = _FUNCTION_NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is not None:
            return cls(name=identifier)
    elif isinstance(identifier, Mapping):
        class_name = identifier.get("class_name")
        cls = _CLASSES.get(class_name) if isinstance(class_name, str) else None
        if cls is not None:
            return cls.from_config(identifier.get("config") or {})
    allowed = ["accuracy", "acc", *_FUNCTION_NAMES, *_CLASSES]
    raise ValueError(
        f"Invalid value for argument `identifier`: expected one of {allowed}, a "
        f"Metric or a config dict, received identifier={identifier!r}."
    )

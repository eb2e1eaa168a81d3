"""The metric base class and the reductions every metric builds on.

A metric keeps its state as NumPy float64 arrays named as Keras 3 names its
variables (``total``/``count`` for a mean, ``true_positives`` ... for the
confusion metrics; :attr:`Metric.variables` lists them in Keras' order).
``update_state`` turns a batch into per-sample values in ``y_pred``'s
dtype (confusion counts compare in the metric's ``dtype``, float32 by
default as Keras' ``floatx``) and adds them into that float64 state, so long epochs do not lose counts to float32
rounding. ``result()`` is a Python float, or a NumPy array in ``dtype`` for
metrics with one value per threshold or class.

The reduction is that of Keras' ``reduction_metrics.reduce_to_samplewise_values``:
values are averaged over the axes the weights lack, multiplied by the
broadcast weights, then averaged per sample; the count grows by the weights
averaged per sample and summed.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastconv import _registry

# keras.backend.epsilon()
EPSILON = 1e-7

_DTYPES = ("float32", "float64")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"Invalid value for argument `name`: expected a non-empty str, "
            f"received name={name!r}."
        )
    return name


def check_dtype(dtype: object) -> str:
    """The metric's compute dtype: ``None`` means float32 (Keras' floatx)."""
    if dtype is None:
        return "float32"
    name = getattr(dtype, "name", dtype)
    if isinstance(name, str) and name in _DTYPES:
        return name
    raise ValueError(
        f"Invalid value for argument `dtype`: expected None, 'float32' or 'float64', "
        f"received dtype={dtype!r}."
    )


def check_real(value: object, name: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a float, received "
            f"{name}={value!r}."
        )
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a finite float, received "
            f"{name}={value!r}."
        )
    return value


def check_int(value: object, name: str, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected an int >= {low}, received "
            f"{name}={value!r}."
        )
    if value < low:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an int >= {low}, received "
            f"{name}={value!r}."
        )
    return int(value)


def numeric(value: object, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Invalid dtype for argument `{name}`: expected numbers, received "
            f"dtype {array.dtype}."
        )
    return array


def float_pred(y_pred: object, name: str = "y_pred") -> np.ndarray:
    """``y_pred`` as float (integers become float32), with a batch axis."""
    y_pred = numeric(y_pred, name)
    if y_pred.ndim < 1:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected at least one dimension "
            f"(the batch), received shape {y_pred.shape}."
        )
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float32)
    return y_pred


def same_rank(
    a: np.ndarray, b: np.ndarray, expand_rank_1: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``squeeze_or_expand_to_same_rank``: reconcile a trailing axis of size 1.

    If the ranks differ by one and the longer shape ends in 1, that axis is
    dropped, except that a rank-1 partner is expanded instead (when
    ``expand_rank_1``), so ``(N,)`` and ``(N, 1)`` meet as ``(N, 1)``.
    """
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 and expand_rank_1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 and expand_rank_1 else (a, b[..., 0])
    return a, b


def dense_pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions of one shape ``(N, ..., D)`` in ``y_pred``'s float dtype."""
    p = float_pred(y_pred)
    given = numeric(y_true, "y_true")
    t, p = same_rank(given.astype(p.dtype), p)
    if t.shape != p.shape:
        raise ValueError(
            f"Invalid shape for argument `y_true`: expected y_pred's shape "
            f"{np.shape(y_pred)} (a trailing axis of size 1 may be added or dropped), "
            f"received shape {given.shape}."
        )
    return t, p


def per_sample(values: np.ndarray) -> np.ndarray:
    """Mean over every axis after the first."""
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def reduce_to_samplewise(
    values: np.ndarray, sample_weight: object, reduce: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras' ``reduce_to_samplewise_values`` in float64: one value per sample
    (a scalar stays a scalar), and the weights reduced the same way."""
    values = values.astype(np.float64)
    weights = None
    if sample_weight is not None:
        weights = numeric(sample_weight, "sample_weight").astype(np.float64)
        values, weights = same_rank(values, weights)
        if values.ndim > weights.ndim:
            values = reduce(values, axis=tuple(range(weights.ndim, values.ndim)))
        try:
            weights = np.broadcast_to(weights, values.shape)
        except ValueError:
            raise ValueError(
                f"Invalid shape for argument `sample_weight`: expected a scalar or a "
                f"shape that broadcasts to the values' per-sample shape "
                f"{values.shape}, received shape {np.shape(sample_weight)}."
            ) from None
        values = values * weights
        if weights.ndim > 1:
            weights = reduce(weights, axis=tuple(range(1, weights.ndim)))
    if values.ndim > 1:
        values = reduce(values, axis=tuple(range(1, values.ndim)))
    return values, weights


def to_snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: "SparseTopKCategoricalAccuracy" ->
    "sparse_top_k_categorical_accuracy", "AUC" -> "auc"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class MetricVariable(np.lib.mixins.NDArrayOperatorsMixin):
    """A state variable of a metric written by subclassing :class:`Metric`
    (made by :meth:`Metric.add_variable`, as Keras' metric variables): a
    NumPy array with ``assign``, ``assign_add`` and ``assign_sub``, usable
    with NumPy, ``fastconv.ops`` and arithmetic operators.
    """

    def __init__(self, value: np.ndarray, name: str, path: str) -> None:
        self.value = value
        self.name = name
        self.path = path

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value: object) -> MetricVariable:
        self.value[...] = np.asarray(value)
        return self

    def assign_add(self, value: object) -> MetricVariable:
        self.value += np.asarray(value, dtype=self.value.dtype)
        return self

    def assign_sub(self, value: object) -> MetricVariable:
        self.value -= np.asarray(value, dtype=self.value.dtype)
        return self

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value.copy() if dtype is None else self.value.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x.value if isinstance(x, MetricVariable) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __len__(self) -> int:
        return len(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        return f"<MetricVariable path={self.path}, shape={self.shape}, value={self.value}>"


class Metric:
    """Base class: a named running statistic (``keras.metrics.Metric``).

    Built-in subclasses keep their state as arrays listed in
    ``_state_names``; a metric written by subclassing, as in Keras, creates
    its state with :meth:`add_variable` and implements ``update_state`` and
    ``result`` (``reset_state`` zeroes every variable).

    Parameters
    ----------
    dtype : {None, "float32", "float64"}, optional
        Dtype the batches are computed in; None means float32.
    name : str, optional
        Name shown in logs and history. Default: the class name in snake
        case, made unique as Keras does ("precision", "precision_1", ...;
        :func:`fastconv.backend.clear_session` restarts the count).
    """

    _state_names: tuple[str, ...] = ()

    def __init__(self, dtype: str | None = None, name: str | None = None) -> None:
        if name is None:
            from fastconv.layers.base import unique_name

            name = unique_name(to_snake_case(type(self).__name__))
        self.name = check_name(name)
        self.dtype = check_dtype(dtype)
        self._added_variables: list[MetricVariable] = []

    def add_variable(self, shape: tuple[int, ...], initializer: Any, dtype: str | None = None,
                     aggregation: str = "sum", name: str | None = None) -> MetricVariable:
        """A new state variable (Keras' ``Metric.add_variable``).

        Parameters
        ----------
        shape : tuple of int
        initializer : str, Initializer or callable
            E.g. ``"zeros"``; called as ``initializer(shape, dtype=dtype)``.
        dtype : str, optional
            Default: the metric's dtype.
        aggregation : str, default "sum"
            Accepted for Keras compatibility (fastconv runs on one device).
        name : str, optional

        Returns
        -------
        MetricVariable
        """
        from fastconv import initializers

        dtype = dtype or self.dtype
        init = initializers.get(initializer) if not callable(initializer) or isinstance(
            initializer, type) else initializer
        value = np.array(init(tuple(shape), dtype=dtype), dtype=dtype)
        name = name or f"variable_{len(self._added_variables)}"
        variable = MetricVariable(value, name, f"{self.name}/{name}")
        self._added_variables.append(variable)
        return variable

    def add_weight(self, shape: tuple[int, ...] = (), initializer: Any = None,
                   dtype: str | None = None, name: str | None = None) -> MetricVariable:
        """Keras' alias of :meth:`add_variable` (``initializer`` defaults to zeros)."""
        return self.add_variable(shape, initializer or "zeros", dtype=dtype, name=name)

    def update_state(self, y_true: object, y_pred: object, sample_weight: object = None) -> None:
        """Accumulate one batch."""
        raise NotImplementedError

    def result(self) -> Any:
        """The statistic over every batch since the last reset."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget every batch seen."""
        for name in self._state_names:
            value = getattr(self, name, None)
            if value is not None:
                value[...] = 0
        for variable in getattr(self, "_added_variables", ()):
            variable.value[...] = 0

    @property
    def variables(self) -> list[Any]:
        """The state arrays, in Keras' order (``[total, count]``, ...), then
        the variables made by :meth:`add_variable`."""
        values = [getattr(self, name, None) for name in self._state_names]
        return [v for v in values if v is not None] + list(getattr(self, "_added_variables", ()))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``update_state(*args, **kwargs)``, then ``result()``, as Keras."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, with Keras' keys."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Metric:
        """A new metric from :meth:`get_config`'s output (or a Keras 3 config)."""
        return _registry.from_keras_config(cls, config, {}, "metrics")

    def _scalar_or_vector(self, values: np.ndarray) -> Any:
        # A copy: the state keeps changing after the result is logged.
        values = np.array(values, dtype=self.dtype)
        return float(values) if values.ndim == 0 else values

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """Weighted running mean of the given values (``keras.metrics.Mean``).

    State: ``total`` and ``count``.

    Parameters
    ----------
    name : str, default "mean"
    dtype : {None, "float32", "float64"}, optional

    Examples
    --------
    >>> m = Mean()
    >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    >>> m.result()
    2.0
    """

    _state_names = ("total", "count")

    def __init__(self, name: str = "mean", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = np.zeros(())
        self.count = np.zeros(())

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
            ``(N,)``, ``(N, 1)`` or more axes matching ``values`` (see the
            module docstring for the reduction). The model's running loss
            passes the batch loss with ``sample_weight=batch_size``.
        """
        # Summed in float64 whatever the dtype: the model's float64 losses stay exact.
        values = numeric(values, "values")
        values, weights = reduce_to_samplewise(values, sample_weight, np.mean)
        self.total += values.sum()
        if weights is not None:
            self.count += weights.sum()
        else:
            self.count += values.shape[0] if values.ndim else 1

    def result(self) -> float:
        """``total / count``, or 0.0 when ``count`` is 0 (as Keras' ``divide_no_nan``)."""
        return float(self.total / self.count) if self.count else 0.0


class Sum(Metric):
    """Weighted running sum of the given values (``keras.metrics.Sum``).

    State: ``total``. Values are summed per sample, times the sample's
    weight.

    Parameters
    ----------
    name : str, default "sum"
    dtype : {None, "float32", "float64"}, optional

    Examples
    --------
    >>> m = Sum()
    >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    >>> m.result()
    4.0
    """

    _state_names = ("total",)

    def __init__(self, name: str = "sum", dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = np.zeros(())

    def update_state(  # type: ignore[override]
        self, values: object, sample_weight: object = None
    ) -> None:
        """Add a batch of values (and weights of the shapes :meth:`Mean.update_state` takes)."""
        values = numeric(values, "values")
        values, _ = reduce_to_samplewise(values, sample_weight, np.sum)
        self.total += values.sum()

    def result(self) -> float:
        return float(self.total)


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred, **kwargs)``'s per-sample
    values, as Keras' ``MeanMetricWrapper``: how a metric written as a
    function (with NumPy or ``fastconv.ops`` on arrays) is tracked.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)`` returning one value per sample (or
        per sample and position), or a scalar.
    name : str, optional
        Default: the function's name.
    dtype : {None, "float32", "float64"}, optional
    **kwargs
        Passed on to ``fn``.
    """

    def __init__(self, fn: Any, name: str | None = None, dtype: str | None = None,
                 **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"Invalid value for argument `fn`: expected a callable, "
                            f"received {fn!r}.")
        self.fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name or getattr(fn, "__name__", "metric"), dtype)

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        """Add ``fn``'s values on one batch, weighted as :meth:`Mean.update_state`."""
        values = np.asarray(self.fn(np.asarray(y_true), np.asarray(y_pred), **self._fn_kwargs))
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        raise TypeError(f"The metric {self.name!r} wraps a Python function, which fastconv "
                        "does not save.")


class FunctionMean(Mean):
    """A built-in metric that is the running mean of a per-sample function
    (Keras' ``MeanMetricWrapper`` subclasses). Subclasses set ``fn`` and
    keep its keyword arguments in ``_fn_kwargs``."""

    fn: Any = None

    def __init__(self, name: str, dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._fn_kwargs: dict[str, Any] = {}

    def update_state(  # type: ignore[override]
        self, y_true: object, y_pred: object, sample_weight: object = None
    ) -> None:
        """Add one batch.

        Parameters
        ----------
        y_true : array_like
            Targets (see the class for the shape).
        y_pred : array_like, shape (N, ...)
            Predictions.
        sample_weight : float or array_like, optional
            Weight of each sample: a scalar, ``(N,)``, ``(N, 1)`` or more
            axes, as :meth:`Mean.update_state`.
        """
        values = type(self).fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

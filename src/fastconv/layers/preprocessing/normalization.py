"""``Normalization``: ``(x - mean) / sqrt(variance)`` per feature, with the
statistics given or learnt from data by ``adapt``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv.layers.base import Layer, Shape

EPSILON = 1e-7  # Keras' backend.epsilon(): the smallest standard deviation divided by


class Normalization(Layer):
    """Shifts and scales each feature to mean 0 and variance 1, as Keras'
    ``keras.layers.Normalization``.

    Parameters
    ----------
    axis : int, tuple of ints or None
        The axes that keep separate statistics (default -1: one mean and
        variance per channel); None means one mean and variance overall.
    mean, variance : number or array, optional
        Fixed statistics (both or neither). Without them the layer holds
        them as its (non-trainable) weights ``mean``, ``variance`` and
        ``count``, set by ``adapt(data)`` and saved with the model.
    invert : bool
        Apply the inverse, ``mean + x * sqrt(variance)``.

    Output: ``(x - mean) / max(sqrt(variance), 1e-7)``, same shape as ``x``.

    Notes
    -----
    Keras keeps ``count`` as an int weight (it is never updated); fastconv
    keeps it in the layer's float dtype, as model files hold float weights.
    """

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None,
                 invert: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axis = (int(axis),)
        if not isinstance(axis, (tuple, list)) or not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise ValueError(f"Invalid value for argument `axis`: expected an int, a tuple of "
                             f"ints or None, received axis={axis!r}.")
        self.axis = tuple(int(a) for a in axis)
        if (mean is None) != (variance is None):
            raise ValueError("Invalid arguments `mean` and `variance`: expected both or "
                             f"neither, received mean={mean!r} and variance={variance!r}.")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(
                    "Invalid arguments `mean` and `variance`: expected the same shape, "
                    f"received shapes {np.shape(mean)} and {np.shape(variance)}.")
            if len(np.shape(mean)) > len(self.axis):
                raise ValueError(
                    f"Invalid value for argument `mean`: its rank must be at most the number "
                    f"of axes ({len(self.axis)}), received shape {np.shape(mean)} for "
                    f"axis={self.axis}.")
        self.input_mean = None if mean is None else np.asarray(mean, np.float64)
        self.input_variance = None if variance is None else np.asarray(variance, np.float64)
        self.invert = bool(invert)
        self.adapt_mean = self.adapt_variance = self.count = None
        self._keep_axis: tuple = ()

    def _kept(self, ndim: int) -> tuple[int, ...]:
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Invalid value for argument `axis`: expected axes in [-{ndim}, "
                             f"{ndim}) for inputs of rank {ndim}, received axis={self.axis}.")
        return tuple(sorted(a % ndim for a in self.axis))

    def build(self, input_shape: Shape) -> None:
        ndim = len(input_shape)
        self._keep_axis = self._kept(ndim)
        unknown = [d for d in self._keep_axis if input_shape[d] is None]
        if unknown:
            raise ValueError(
                f"Layer '{self.name}' (Normalization) needs a known size on every kept axis "
                f"{self.axis}; input shape {tuple(input_shape)} has none at axis {unknown[0]}.")
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1
                                      for d in range(ndim))
        stats_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(stats_shape, "zeros", trainable=False, name="mean")
            self.adapt_variance = self.add_weight(stats_shape, "ones", trainable=False,
                                                  name="variance")
            self.count = self.add_weight((), "zeros", trainable=False, name="count")
        else:
            self._fixed = tuple(self._broadcast(v) for v in (self.input_mean,
                                                              self.input_variance))

    def _broadcast(self, value: np.ndarray) -> np.ndarray:
        """Fixed statistics aligned with the kept axes (right to left), as Keras."""
        ndim = len(self._broadcast_shape)
        expanded = [1] * ndim
        for i in range(1, value.ndim + 1):
            expanded[self._keep_axis[-i]] = value.shape[-i]
        try:
            return np.broadcast_to(value.reshape(expanded), self._broadcast_shape).astype(
                self.dtype)
        except ValueError:
            raise ValueError(
                f"Invalid value for argument `mean`: shape {value.shape} does not broadcast "
                f"to the kept axes' sizes {self._broadcast_shape}.") from None

    def _accepts_shape(self, input_shape: Any) -> bool:
        return (isinstance(input_shape, tuple) and len(input_shape) == len(self.input_shape)
                and all(input_shape[d] in (None, self.input_shape[d])
                        for d in self._keep_axis if d > 0))

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.input_mean is not None:
            return self._fixed
        return (self.adapt_mean.value.reshape(self._broadcast_shape),
                self.adapt_variance.value.reshape(self._broadcast_shape))

    @property
    def mean(self) -> np.ndarray | None:
        """The mean the layer subtracts, in the inputs' broadcast shape (as
        Keras' ``Normalization.mean``); None before the layer is built."""
        return self._statistics()[0].copy() if hasattr(self, "_broadcast_shape") else None

    @property
    def variance(self) -> np.ndarray | None:
        """The variance the layer divides by (its square root), in the
        inputs' broadcast shape; None before the layer is built."""
        return self._statistics()[1].copy() if hasattr(self, "_broadcast_shape") else None

    def _std(self, variance: np.ndarray) -> np.ndarray:
        return np.maximum(np.sqrt(variance), np.asarray(EPSILON, variance.dtype))

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        x = np.asarray(x).astype(self.dtype, copy=False)
        mean, variance = self._statistics()
        std = self._std(variance)
        y = mean + x * std if self.invert else (x - mean) / std
        return y.astype(self.dtype, copy=False), None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        std = self._std(self._statistics()[1])
        return (dy * std if self.invert else dy / std).astype(dy.dtype, copy=False)

    def adapt(self, data: Any) -> None:
        """Set ``mean`` and ``variance`` from ``data``: an array (statistics
        over every axis but the kept ones), or an iterable of batches (arrays,
        or ``(x, y)`` tuples whose x is used), combined exactly as one array."""
        if self.input_mean is not None:
            raise ValueError(f"Layer '{self.name}' (Normalization) was given `mean` and "
                             "`variance`; adapt() only sets learnt statistics.")
        if isinstance(data, np.ndarray) or np.isscalar(data):
            batches = [np.asarray(data)]
        elif hasattr(data, "__iter__"):
            batches = (b[0] if isinstance(b, tuple) else b for b in data)
        else:
            raise TypeError(f"Invalid value for argument `data`: expected an array or an "
                            f"iterable of batches, received {type(data).__name__}.")
        total_mean = total_var = None
        total_count = 0
        for batch in batches:
            batch = np.asarray(batch, np.float64)
            if batch.dtype.kind not in "iuf" or batch.ndim == 0:
                raise TypeError("Invalid value for argument `data`: expected arrays of numbers "
                                f"with a batch axis, received shape {batch.shape}.")
            if not self.built:
                self.ensure_built(batch.shape)
            keep = self._kept(batch.ndim)
            if batch.ndim != len(self._broadcast_shape) or any(
                    batch.shape[d] != self._broadcast_shape[d] for d in keep):
                raise ValueError(
                    f"Invalid value for argument `data`: layer '{self.name}' was built for "
                    f"inputs of shape {self.input_shape}, received a batch of shape "
                    f"{batch.shape}.")
            reduce = tuple(d for d in range(batch.ndim) if d not in keep)
            mean, var = batch.mean(axis=reduce), batch.var(axis=reduce)
            count = math.prod(batch.shape[d] for d in reduce)
            if total_mean is None:
                total_mean, total_var, total_count = mean, var, count
                continue
            # Pooled variance of the union (the lack-of-fit decomposition Keras uses).
            total_count += count
            w = count / total_count
            new_mean = total_mean * (1 - w) + mean * w
            total_var = ((total_var + (total_mean - new_mean) ** 2) * (1 - w)
                         + (var + (mean - new_mean) ** 2) * w)
            total_mean = new_mean
        if total_mean is None:
            raise ValueError("Invalid value for argument `data`: adapt() received no batches.")
        self.adapt_mean.assign(total_mean.astype(self.dtype))
        self.adapt_variance.assign(total_var.astype(self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": None if self.input_mean is None else self.input_mean.tolist(),
                "variance": None if self.input_variance is None
                else self.input_variance.tolist()}

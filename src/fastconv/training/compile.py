"""The losses, loss weights and metrics that ``compile`` gives a model's
outputs, resolved once the number of outputs is known, with Keras' log
names, and the record that lets a ``GradientTape`` differentiate
``compute_loss``."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv import losses
from fastconv import metrics as metrics_module


def get_loss(identifier: Any) -> Any:
    """A Loss from a name, Loss, class, config dict or a function of
    ``(y_true, y_pred)`` written with Keras ops."""
    if callable(identifier) and not isinstance(identifier, (type, losses.Loss)):
        return losses.FunctionLoss(identifier)
    return losses.get(identifier)


def weighted_call(fn: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
    """``fn(y_true, y_pred)`` (a loss, or its gradient), with
    ``sample_weight`` passed only when there is one."""
    if sample_weight is None:
        return fn(y_true, y_pred)
    return fn(y_true, y_pred, sample_weight=sample_weight)


def serialize_loss(loss: Any) -> Any:
    """A loss's config; a loss function is kept by its name (it is code:
    loading resolves the name through ``custom_objects``)."""
    if loss is None:
        return None
    loss = get_loss(loss)
    if isinstance(loss, losses.FunctionLoss):
        return loss.name
    return losses.serialize(loss)


def serialize_metric(metric: Any) -> Any:
    """A metric's config; a metric function is kept by its name (it is code)."""
    if isinstance(metric, metrics_module.MeanMetricWrapper) or (
            callable(metric) and not isinstance(metric, (type, metrics_module.Metric))):
        return getattr(metric, "__name__", None) or metric.name
    if isinstance(metric, metrics_module.Metric):
        return {"class_name": type(metric).__name__, "config": metric.get_config()}
    return metric


def serialize_nested(value: Any, fn: Any) -> Any:
    if isinstance(value, dict):
        return {k: serialize_nested(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [serialize_nested(v, fn) for v in value]
    return fn(value)


def _per_output(spec: Any, names: list[str], what: str, single_broadcasts: bool) -> list:
    """One entry per output from a value, list or dict (keyed by output name)."""
    n = len(names)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ValueError(f"Invalid value for argument `{what}`: keys {unknown} are not "
                             f"output names; the outputs are {names}.")
        return [spec.get(name) for name in names]
    if isinstance(spec, (list, tuple)) and (what != "metrics" or n > 1):
        if len(spec) != n:
            raise ValueError(f"Invalid value for argument `{what}`: expected one entry per "
                             f"output ({n}: {names}), received {len(spec)}.")
        return list(spec)
    if n > 1 and not single_broadcasts:
        raise ValueError(f"Invalid value for argument `{what}`: the model has {n} outputs "
                         f"{names}; pass a list or a dict keyed by output name.")
    return [spec] * n


def _metric_ids(metrics: Any, names: list[str], what: str) -> list[list]:
    """One list of metric identifiers per output."""
    if metrics is None:
        specs: list = [[] for _ in names]
    elif len(names) == 1:
        specs = [next(iter(metrics.values())) if isinstance(metrics, dict) else metrics]
    else:
        specs = _per_output(metrics, names, what, True)
    return [[] if m is None else list(m) if isinstance(m, (list, tuple)) else [m]
            for m in specs]


class CompiledLosses:
    """The losses, loss weights and metrics of a model's outputs, with
    Keras' log names: ``loss``, ``<output>_loss`` and ``<output>_<metric>``
    (just ``<metric>`` for a model with one output). The metrics of
    ``weighted_metrics`` follow those of ``metrics``, take the sample
    weights, and are renamed ``weighted_<metric>`` when a metric of
    ``metrics`` already has their name (as Keras' ``CompileMetrics``)."""

    def __init__(self, names: list[str], loss: Any, loss_weights: Any, metrics: Any,
                 weighted_metrics: Any = None) -> None:
        self.n = len(names)
        self.names = names
        self.losses = [None if spec is None else get_loss(spec)
                       for spec in _per_output(loss, names, "loss", True)]
        if all(loss is None for loss in self.losses):
            raise ValueError("Invalid value for argument `loss`: no output has a loss.")
        weights = [1.0] * self.n if loss_weights is None else _per_output(
            loss_weights, names, "loss_weights", False)
        self.weights = [1.0 if w is None else float(w) for w in weights]
        self.metric_ids = _metric_ids(metrics, names, "metrics")
        self.weighted_ids = _metric_ids(weighted_metrics, names, "weighted_metrics")
        self.metrics: list | None = None
        self.weighted: list | None = None
        self.loss_tracker = metrics_module.Mean(name="loss")
        self.output_trackers = [metrics_module.Mean(name=f"{name}_loss") for name in names]

    def value(self, targets: list, outputs: list,
              sample_weights: list | None = None) -> tuple[float, list]:
        """The total loss and each output's (before its loss weight)."""
        sample_weights = sample_weights or [None] * self.n
        total, per_output = 0.0, []
        for k, (loss, weight) in enumerate(zip(self.losses, self.weights)):
            if loss is None or targets[k] is None:
                per_output.append(None)
                continue
            # reduction="none" gives per-sample losses; gradient() is that of their sum.
            v = float(np.sum(weighted_call(loss, targets[k], outputs[k], sample_weights[k])))
            per_output.append(v)
            total += v if weight == 1 else weight * v
        return total, per_output

    def _resolve_set(self, ids_per_output: list, targets: list, outputs: list,
                     taken: set) -> list:
        resolved_set = []
        for k, ids in enumerate(ids_per_output):
            resolved = []
            for m in ids:
                metric = metrics_module.get(m, loss=self.losses[k], y_true_shape=np.shape(
                    targets[k]) if targets[k] is not None else None,
                    y_pred_shape=outputs[k].shape)
                prefix = f"{self.names[k]}_" if self.n > 1 and isinstance(m, str) else ""
                if prefix + metric.name in taken:  # a weighted twin of an unweighted metric
                    metric.name = f"weighted_{metric.name}"
                metric.name = prefix + metric.name
                taken.add(metric.name)
                resolved.append(metric)
            resolved_set.append(resolved)
        return resolved_set

    def _resolve_metrics(self, targets: list, outputs: list) -> list:
        if self.metrics is None:
            taken: set = set()
            self.metrics = self._resolve_set(self.metric_ids, targets, outputs, taken)
            self.weighted = self._resolve_set(self.weighted_ids, targets, outputs, taken)
        return self.metrics

    def update(self, targets: list, outputs: list, output_losses: list | None,
               sample_weights: list | None = None) -> None:
        sample_weights = sample_weights or [None] * self.n
        self._resolve_metrics(targets, outputs)
        for k, (ms, ws) in enumerate(zip(self.metrics or [], self.weighted or [])):
            if targets[k] is None:
                continue
            for m in ms:
                m.update_state(targets[k], outputs[k])
            for m in ws:
                m.update_state(targets[k], outputs[k], sample_weight=sample_weights[k])
        if self.n > 1 and output_losses is not None:
            n = len(outputs[0])
            for tracker, value in zip(self.output_trackers, output_losses):
                if value is not None:
                    tracker.update_state(value, sample_weight=n)

    def all_metrics(self) -> list:
        trackers = [t for t, loss in zip(self.output_trackers, self.losses)
                    if loss is not None] if self.n > 1 else []
        return (trackers + [m for ms in self.metrics or [] for m in ms]
                + [m for ms in self.weighted or [] for m in ms])

    def result_names(self) -> list[str]:
        """The names after ``loss`` in evaluate's list, in Keras' order."""
        return [m.name for m in self.all_metrics()]

    def results(self) -> dict[str, float]:
        return {m.name: metrics_module.log_value(m.result()) for m in self.all_metrics()}

    def reset(self) -> None:
        for m in self.all_metrics():
            m.reset_state()
        for t in [self.loss_tracker, *self.output_trackers]:
            t.reset_state()


class ModelLoss:
    """A GradientTape record of ``compute_loss``: the total loss's gradient
    with respect to each output, plus the regularization penalties' gradients
    added into the weights."""

    name = "compute_loss"

    def __init__(self, model: Any, targets: list, sample_weights: list | None = None) -> None:
        self.model, self.targets = model, targets
        self.sample_weights = sample_weights or [None] * len(targets)

    def backward(self, outputs: list, d_loss: Any, need_dx: bool = True) -> list:
        compiled = self.model._resolve(len(outputs))
        scale = float(np.asarray(d_loss))
        grads = []
        for k, (loss, weight) in enumerate(zip(compiled.losses, compiled.weights)):
            if loss is None or self.targets[k] is None:
                grads.append(None)
                continue
            g = weighted_call(loss.gradient, self.targets[k], outputs[k],
                              self.sample_weights[k]).astype(outputs[k].dtype, copy=False)
            grads.append(g * g.dtype.type(weight * scale))
        self.model.add_regularization_gradients()
        return grads

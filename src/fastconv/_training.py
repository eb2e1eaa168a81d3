"""compile / fit / evaluate / predict: the training loop of every model.

``Trainer`` is mixed into ``fastconv.models.Model``. A model provides
``_chain`` (its layers in call order), its input shape and its weights; this module owns the loop around them: batching, shuffling, the
validation split, the loss (fusing softmax + cross-entropy into one stable
gradient), regularization, the optimizer step, metrics, progress lines and
callbacks.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from fastconv import _random, activations, callbacks as callbacks_module, losses
from fastconv import metrics as metrics_module
from fastconv import optimizers
from fastconv._blas import single_threaded_blas
from fastconv._memory import retained_heap
from fastconv._profile import format_profile, profile_model
from fastconv._progress import Progbar
from fastconv._validation import check_flag
from fastconv.layers import Conv2D, MaxPooling2D


def with_training_environment(method: Any = None, *, per_batch: bool = False) -> Any:
    """Run ``method`` with NumPy's BLAS on one thread (its spinning threads
    would steal the kernels' cores) and freed activations kept in the heap
    (see fastconv._blas and fastconv._memory); both are undone on return.
    A ``per_batch`` method (one step, usually called in a loop) leaves the
    heap untrimmed, so the next call reuses its memory."""
    if method is None:
        return functools.partial(with_training_environment, per_batch=per_batch)

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_threaded_blas(), retained_heap(trim=not per_batch):
            return method(*args, **kwargs)

    return wrapper


def _runs_as(layer: Any, cls: type) -> bool:
    """Whether ``layer`` computes exactly as ``cls`` does: an instance whose
    forward and backward passes are cls's own (a subclass or an instance
    overriding them must not be replaced by a fused kernel call)."""
    return (isinstance(layer, cls) and type(layer).forward is cls.forward
            and type(layer).backward is cls.backward
            and "forward" not in vars(layer) and "backward" not in vars(layer))


def _as_inputs(x: Any, dtype: str, name: str = "x") -> np.ndarray:
    if x is None:
        raise ValueError(f"Invalid value for argument `{name}`: expected an array of inputs, "
                         "received None.")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Invalid dtype for argument `{name}`: expected numbers, "
                        f"received {arr.dtype}.")
    return arr.astype(dtype, copy=False)


def _batch_size(batch_size: Any) -> int:
    if batch_size is None:
        return 32
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"Invalid value for argument `batch_size`: expected a positive int, "
                         f"received batch_size={batch_size!r}.")
    return int(batch_size)


def _verbosity(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"Invalid value for argument `verbose`: expected 'auto', 0, 1 or 2, "
                         f"received verbose={verbose!r}.")
    return int(verbose)


class Trainer:
    """The training API of a model (Keras' ``compile``/``fit``/``evaluate``/``predict``)."""

    # -- compile -----------------------------------------------------------

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Any = None, weighted_metrics: Any = None,
                run_eagerly: bool = False, steps_per_execution: int = 1,
                jit_compile: Any = "auto", auto_scale_loss: bool = True) -> None:
        """Configure training: optimizer, loss and metrics.

        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility and change nothing.
        """
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("`loss_weights` and `weighted_metrics` apply to multi-output "
                             "models, which fastconv does not support.")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss) if loss not in (None, "") else None
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        self._metric_ids = list(metrics)
        self._metrics: list | None = None  # resolved against the data's shapes on first use
        self.compiled = True
        # What model.save records besides the optimizer, whose config it
        # takes at save time (the learning rate may change after compile).
        self._compile_config = {
            "loss": None if self.loss is None else losses.serialize(self.loss),
            "metrics": [{"class_name": type(m).__name__, "config": m.get_config()}
                        if isinstance(m, metrics_module.Metric) else m
                        for m in self._metric_ids],
        }

    def _require_compiled(self, what: str) -> None:
        if not getattr(self, "compiled", False) or self.loss is None:
            raise RuntimeError(f"You must call `compile()` with a loss before `{what}()`.")

    def _resolve_metrics(self, y: np.ndarray, y_pred_shape: tuple) -> list:
        if self._metrics is None:
            self._metrics = [metrics_module.get(m, loss=self.loss, y_true_shape=y.shape,
                                                y_pred_shape=y_pred_shape)
                             for m in self._metric_ids]
        return self._metrics

    # -- one batch ---------------------------------------------------------

    def _fused_output(self) -> bool:
        """Whether the last layer's activation and the loss fuse into one
        gradient: softmax + (sparse) categorical cross-entropy, or sigmoid +
        binary cross-entropy, on probabilities. The fused gradient, computed
        from the probabilities, avoids dividing by tiny probabilities."""
        last = self._chain[-1]
        if last.activity_regularizer is not None:
            # The penalty's gradient joins dL/d(output), before the activation.
            return False
        fusable = getattr(self.loss, "fused_activation", None)
        if fusable is None or self.loss.from_logits:
            return False
        # The built-in activation itself, not a user function of that name.
        return getattr(last, "activation", None) is activations.get(fusable)

    def _forward_collect(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, float]:
        """The output and the activity-regularization penalty (batch-averaged).

        In training, the outputs of layers with an activity regularizer are
        kept in ``self._outputs`` for the penalty's gradient."""
        penalty = 0.0
        self._outputs = {}
        for step in self._forward_plan():
            x = self._forward_step(step, x, training)
            layer = self._chain[step[-1]]
            if layer.activity_regularizer is not None:
                penalty += layer.activity_regularizer(x)
                if training:
                    self._outputs[step[-1]] = x
        return x, penalty

    def _forward_plan(self) -> list[tuple[int, ...]]:
        """The forward pass as steps of chain indices: one layer, or a Conv2D
        and the MaxPooling2D after it, computed by one fused kernel call (the
        convolution's output never reaches memory)."""
        plan: list[tuple[int, ...]] = []
        i = 0
        while i < len(self._chain):
            if i + 1 < len(self._chain) and self._pool_fused_with_conv(i + 1):
                plan.append((i, i + 1))
                i += 2
            else:
                plan.append((i,))
                i += 1
        return plan

    def _forward_step(self, step: tuple[int, ...], x: np.ndarray, training: bool) -> np.ndarray:
        if len(step) == 2:
            conv, pool = self._chain[step[0]], self._chain[step[1]]
            return conv.forward_max_pooled(x, pool, training=training)
        return self._chain[step[0]].forward(x, training=training)

    def _trainable_variables(self) -> list:
        return [v for layer in self._chain for v in layer.trainable_weights]

    def _backward(self, y: np.ndarray, out: np.ndarray) -> None:
        """Gradients of the loss with respect to every weight, into Variable.grad."""
        dy, activation_done = self._output_gradient(y, out)
        for step in reversed(self._forward_plan()):
            dy, activation_done = self._backward_step(step, dy, activation_done)
        for layer in self._chain:
            layer.add_regularization_gradients()

    def _output_gradient(self, y: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, bool]:
        """dL/d(output), or dL/d(pre-activation) of the last layer when the loss
        fuses with its softmax/sigmoid (then the flag is True)."""
        fused = self._fused_output()
        dy = self.loss.logits_gradient(y, out) if fused else self.loss.gradient(y, out)
        return dy.astype(out.dtype, copy=False), fused

    def _backward_step(self, step: tuple[int, ...], dy: np.ndarray,
                       activation_done: bool) -> tuple[np.ndarray | None, bool]:
        """Backward through one step of the forward plan; returns what
        _backward_layer does."""
        if len(step) == 1:
            return self._backward_layer(step[0], dy, activation_done)
        conv, pool = self._chain[step[0]], self._chain[step[1]]
        if pool.activity_regularizer is not None:
            dy = dy + pool.activity_regularizer.gradient(self._outputs[step[1]])
        # The pool has no activation, so no loss fusion reached it.
        return conv.backward_max_pooled(dy, pool, need_dx=step[0] > 0), False

    def _backward_layer(self, i: int, dy: np.ndarray,
                        activation_done: bool) -> tuple[np.ndarray | None, bool]:
        """Backward through chain[i]. ``activation_done``: dy is already the
        gradient before chain[i]'s activation. Returns the gradient for
        chain[i - 1] and the same flag for it."""
        layer = self._chain[i]
        if layer.activity_regularizer is not None:
            # d(penalty) / d(output); the fusions above never apply to a layer
            # with a penalty, so dy is the gradient of its output here.
            dy = dy + layer.activity_regularizer.gradient(self._outputs[i])
        if activation_done:
            return layer.backward(dy, need_dx=i > 0, activation_done=True), False
        return layer.backward(dy, need_dx=i > 0), False

    def _pool_fused_with_conv(self, i: int) -> bool:
        """Whether chain[i] max-pools the output of a Conv2D whose ReLU the
        kernels fuse: both passes then run the two layers as one kernel call
        (conv2d_max_pool2d and its gradient, which applies the ReLU's mask to
        the pooled gradient: each maximum is the rectified value at its
        argmax)."""
        if i == 0:
            return False
        conv, pool = self._chain[i - 1], self._chain[i]
        return (_runs_as(conv, Conv2D) and _runs_as(pool, MaxPooling2D)
                and conv._fused_relu() and conv.activity_regularizer is None
                and conv.data_format == pool.data_format == "channels_last")

    def _loss_value(self, y: np.ndarray, out: np.ndarray, penalty: float) -> float:
        regularization = sum(layer.regularization_loss() for layer in self._chain)
        return float(self.loss(y, out)) + penalty + regularization

    @with_training_environment(per_batch=True)
    def train_on_batch(self, x: Any, y: Any) -> Any:
        """One optimizer step on one batch; returns the batch's loss, or
        ``[loss, *metrics]`` when the model was compiled with metrics (as
        Keras), the metrics measured on this batch alone."""
        self._require_compiled("train_on_batch")
        x = _as_inputs(x, self._dtype())
        y = np.asarray(y)
        self._ensure_built(x.shape)
        loss_value, out = self._train_step(x, y)
        metrics = self._resolve_metrics(y, out.shape)
        if not metrics:
            return loss_value
        values = [loss_value]
        for m in metrics:
            m.reset_state()
            m.update_state(y, out)
            values.append(float(m.result()))
            m.reset_state()
        return values

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        out, penalty = self._forward_collect(x, training=True)
        loss_value = self._loss_value(y, out, penalty)
        self._backward(y, out)
        self._outputs = {}
        variables = self._trainable_variables()
        self.optimizer.update([v.value for v in variables], [v.grad for v in variables])
        for layer in self._chain:
            layer.apply_constraints()
        return loss_value, out

    # -- fit ---------------------------------------------------------------

    @with_training_environment
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: list | None = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            profile: bool = False) -> callbacks_module.History:
        """Train for ``epochs`` passes over (x, y); returns the History.

        ``profile=True`` (not a Keras argument) then times training steps on
        the first batch layer by layer, as ``profile`` does, keeps the rows in
        ``history.profile`` and prints the table unless ``verbose`` is 0."""
        self._require_compiled("fit")
        profile = check_flag(profile, "profile")
        x = _as_inputs(x, self._dtype())
        if y is None:
            raise ValueError("Invalid value for argument `y`: expected targets, received None.")
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"Data cardinality is ambiguous: x has {len(x)} samples but y has "
                             f"{len(y)}. Make sure all arrays contain the same number of samples.")
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"Invalid value for argument `epochs`: expected an int >= 0, "
                             f"received epochs={epochs!r}.")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"Invalid value for argument `validation_split`: expected a float "
                             f"in [0, 1), received validation_split={validation_split!r}.")
        if validation_data is None and validation_split > 0:
            # Keras holds out the last samples, before any shuffling.
            split = int(len(x) * (1.0 - validation_split))
            x, x_val, y, y_val = x[:split], x[split:], y[:split], y[split:]
            validation_data = (x_val, y_val)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("Invalid value for argument `validation_data`: expected a "
                                 "tuple (x_val, y_val).")
            validation_data = (_as_inputs(validation_data[0], self._dtype(), "validation_data"),
                               np.asarray(validation_data[1]))
        if len(x) == 0:
            raise ValueError("Invalid value for argument `x`: no training samples.")
        self._ensure_built(x.shape)

        history = callbacks_module.History()
        n_steps = math.ceil(len(x) / batch_size)
        if steps_per_epoch is not None:
            n_steps = min(n_steps, int(steps_per_epoch))
        cbs = callbacks_module.CallbackList(
            [*(callbacks or []), history], self,
            {"epochs": epochs, "steps": n_steps, "verbose": verbose})
        self.stop_training = False
        self.history = history
        cbs.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            order = _random.generator().permutation(len(x)) if shuffle else np.arange(len(x))
            logs = self._run_epoch(x, y, order, batch_size, n_steps, verbose, cbs)
            if validation_data is not None:
                val_logs = self._evaluate_arrays(*validation_data, batch_size, 0, cbs=None)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            self._print_epoch_end(logs, verbose)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end({name: values[-1] for name, values in history.history.items()})
        if profile:
            history.profile = profile_model(self, x[:batch_size], y[:batch_size])
            if verbose:
                print(format_profile(history.profile))
        return history

    def _run_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                   n_steps: int, verbose: int, cbs: Any) -> dict[str, float]:
        mean_loss = metrics_module.Mean(name="loss")
        self._reset_metrics()
        self._progbar = Progbar(n_steps, verbose)
        for step in range(n_steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            cbs.on_train_batch_begin(step, {})
            loss_value, out = self._train_step(xb, yb)
            mean_loss.update_state(loss_value, sample_weight=len(idx))
            metrics = self._resolve_metrics(yb, out.shape)
            for m in metrics:
                m.update_state(yb, out)
            logs = self._logs(mean_loss, metrics)
            cbs.on_train_batch_end(step, logs)
            self._progbar.update(step + 1, logs, done=False)
            if self.stop_training:  # as Keras: a callback may end the epoch early
                break
        return self._logs(mean_loss, self._metrics or [])

    def _reset_metrics(self) -> None:
        """Start every pass from empty metrics, as Keras: a pass interrupted
        by an exception must not leak its counts into the next one."""
        for m in self._metrics or []:
            m.reset_state()

    def _print_epoch_end(self, logs: dict[str, float], verbose: int) -> None:
        ordered = dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0])))
        self._progbar.update(self._progbar.total, ordered, done=True)
        self._progbar.summary(self._progbar.total, ordered)

    @staticmethod
    def _logs(mean_loss: Any, metrics: list) -> dict[str, float]:
        logs = {m.name: float(m.result()) for m in metrics}
        logs["loss"] = float(mean_loss.result())
        return dict(sorted(logs.items()))

    # -- evaluate / predict ------------------------------------------------

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int, verbose: int,
                         cbs: Any) -> dict[str, float]:
        mean_loss = metrics_module.Mean(name="loss")
        self._reset_metrics()
        n_steps = math.ceil(len(x) / batch_size)
        progbar = Progbar(n_steps, verbose)
        metrics = None
        for step in range(n_steps):
            xb, yb = x[step * batch_size:(step + 1) * batch_size], y[step * batch_size:(step + 1) * batch_size]
            if cbs is not None:
                cbs.on_test_batch_begin(step, {})
            out, penalty = self._forward_collect(xb, training=False)
            mean_loss.update_state(self._loss_value(yb, out, penalty), sample_weight=len(xb))
            metrics = self._resolve_metrics(yb, out.shape)
            for m in metrics:
                m.update_state(yb, out)
            logs = self._logs(mean_loss, metrics)
            if cbs is not None:
                cbs.on_test_batch_end(step, logs)
            progbar.update(step + 1, logs, done=step + 1 == n_steps)
        logs = self._logs(mean_loss, metrics or [])
        progbar.summary(n_steps, logs)
        return logs

    @with_training_environment
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", callbacks: list | None = None,
                 return_dict: bool = False) -> Any:
        """The loss and metrics on (x, y): ``[loss, *metrics]`` (a scalar loss
        when there are no metrics), or a dict with ``return_dict=True``."""
        self._require_compiled("evaluate")
        x = _as_inputs(x, self._dtype())
        if y is None:
            raise ValueError("Invalid value for argument `y`: expected targets, received None.")
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"Data cardinality is ambiguous: x has {len(x)} samples but y has "
                             f"{len(y)}.")
        if len(x) == 0:
            raise ValueError("Invalid value for argument `x`: no samples to evaluate.")
        self._ensure_built(x.shape)
        cbs = callbacks_module.CallbackList(callbacks or [], self, {})
        cbs.on_test_begin({})
        logs = self._evaluate_arrays(x, y, _batch_size(batch_size), _verbosity(verbose), cbs)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[m.name] for m in self._metrics or []]
        return values[0] if len(values) == 1 else values

    @with_training_environment
    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                callbacks: list | None = None) -> np.ndarray:
        """The model's outputs for ``x``, computed ``batch_size`` samples at a time."""
        x = _as_inputs(x, self._dtype())
        self._ensure_built(x.shape)
        batch_size = _batch_size(batch_size)
        n_steps = math.ceil(len(x) / batch_size)
        progbar = Progbar(n_steps, _verbosity(verbose))
        cbs = callbacks_module.CallbackList(callbacks or [], self, {})
        cbs.on_predict_begin({})
        outputs = []
        for step in range(n_steps):
            cbs.on_predict_batch_begin(step, {})
            out, _ = self._forward_collect(x[step * batch_size:(step + 1) * batch_size],
                                           training=False)
            outputs.append(out)
            cbs.on_predict_batch_end(step, {"outputs": out})
            progbar.update(step + 1, {}, done=step + 1 == n_steps)
        progbar.summary(n_steps, {})
        cbs.on_predict_end({})
        if not outputs:
            return np.zeros((0, *self.output_shape[1:]), dtype=self._dtype())
        return np.concatenate(outputs)

    @with_training_environment
    def profile(self, x: Any, y: Any, repeat: int = 5, verbose: int = 1) -> list[dict]:
        """Time each layer's forward and backward pass on one batch (x, y).

        Returns one dict per layer (``forward_ms``, ``backward_ms``,
        ``forward_gflop``, ``backward_gflop``, ...) and, with ``verbose``,
        prints them as a table with GFLOP/s. The weights are not updated.
        """

        self._require_compiled("profile")
        x = _as_inputs(x, self._dtype())
        self._ensure_built(x.shape)
        rows = profile_model(self, x, np.asarray(y), repeat)
        if verbose:
            print(format_profile(rows))
        return rows

    @with_training_environment(per_batch=True)
    def predict_on_batch(self, x: Any) -> np.ndarray:
        x = _as_inputs(x, self._dtype())
        self._ensure_built(x.shape)
        return self._forward_collect(x, training=False)[0]

    @with_training_environment(per_batch=True)
    def test_on_batch(self, x: Any, y: Any) -> Any:
        return self.evaluate(x, y, batch_size=max(len(x), 1), verbose=0)

"""compile / fit / evaluate / predict: the training loop of every model.

``Trainer`` is mixed into ``fastconv.models.Model``. A model gives it a plan
(``_plan_for``), its inputs as flat arrays (``_flat_inputs``) and its
weights; this module owns the loop around them: batching, shuffling, the
validation split, the losses of every output (fusing softmax/sigmoid +
cross-entropy into one stable gradient), regularization, the optimizer step,
metrics, progress lines and callbacks.

One training step is ``train_step(data)``: forward (``compute_forward``) ->
loss (``compute_loss``) -> backward (``compute_gradients``) ->
``apply_gradients``. A subclass may override any of these, or
``train_step`` itself as in Keras (returning a dict of logs, for instance
with ``fastconv.GradientTape`` as in a TensorFlow ``train_step``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from fastconv import activations, callbacks as callbacks_module
from fastconv import metrics as metrics_module
from fastconv import optimizers
from fastconv._validation import check_flag
from fastconv.graph import tape as tape_module
from fastconv.graph.executor import zero_gradients
from fastconv.graph.node import flatten, unflatten
from fastconv.training.compile import (
    CompiledLosses,
    ModelLoss,
    get_loss,
    serialize_loss,
    serialize_metric,
    serialize_nested,
)
from fastconv.runtime import random as _random
from fastconv.runtime.allocator import retained_heap
from fastconv.runtime.blas import single_threaded_blas
from fastconv.training.profile import format_profile, profile_model
from fastconv.training.progress import Progbar


def with_training_environment(method: Any = None, *, per_batch: bool = False) -> Any:
    """Run ``method`` with NumPy's BLAS on one thread (its spinning threads
    would steal the kernels' cores) and freed activations kept in the heap
    (see fastconv.runtime.blas and fastconv.runtime.allocator); both are undone on return.
    A ``per_batch`` method (one step, usually called in a loop) leaves the
    heap untrimmed, so the next call reuses its memory."""
    if method is None:
        return functools.partial(with_training_environment, per_batch=per_batch)

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with single_threaded_blas(), retained_heap(trim=not per_batch):
            return method(*args, **kwargs)

    return wrapper


def _accepts_activation_done(layer: Any) -> bool:
    import inspect
    try:
        return "activation_done" in inspect.signature(layer.backward).parameters
    except (TypeError, ValueError):
        return False


def _n_samples(arrays: list, what: str) -> int:
    sizes = {len(a) for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"Data cardinality is ambiguous: the arrays of `{what}` hold "
                         f"{sorted(sizes)} samples. Make sure all arrays contain the same "
                         "number of samples.")
    return sizes.pop() if sizes else 0


def _take(value: Any, idx: Any) -> Any:
    """Rows ``idx`` of an array, or of each array in a list/tuple/dict."""
    if isinstance(value, dict):
        return {k: v[idx] for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(v[idx] for v in value)
    return value[idx]


def _as_data(value: Any, name: str) -> Any:
    """Arrays (or a list/dict of arrays) of numbers from user data."""
    if value is None:
        raise ValueError(f"Invalid value for argument `{name}`: expected an array of "
                         "inputs, received None.")
    if isinstance(value, dict):
        return {k: _as_data(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, np.ndarray) for v in value):
        return [_as_data(v, name) for v in value]
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Invalid dtype for argument `{name}`: expected numbers, "
                        f"received {arr.dtype}.")
    return arr


def _paired_data(x: Any, y: Any) -> tuple[Any, Any, int]:
    """Inputs and targets as arrays (or lists/dicts of them) holding the
    same number of samples, and that number."""
    x = _as_data(x, "x")
    if y is None:
        raise ValueError("Invalid value for argument `y`: expected targets, received None.")
    y = _as_data(y, "y")
    n_x, n_y = _n_samples(_flat_data(x), "x"), _n_samples(_flat_data(y), "y")
    if n_x != n_y:
        raise ValueError(f"Data cardinality is ambiguous: x has {n_x} samples but y has "
                         f"{n_y}. Make sure all arrays contain the same number of samples.")
    return x, y, n_x


def _flat_data(value: Any) -> list:
    return list(value.values()) if isinstance(value, dict) else (
        list(value) if isinstance(value, list) else [value])


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
        """Configure training: optimizer, losses and metrics.

        ``loss``, ``metrics`` and ``loss_weights`` are one value, a list (one
        entry per output) or a dict keyed by output name, as in Keras; a
        single loss applies to every output. A loss may be a name, a
        ``fastconv.losses.Loss`` or a function ``f(y_true, y_pred)`` written
        with Keras ops. ``run_eagerly``, ``steps_per_execution``,
        ``jit_compile`` and ``auto_scale_loss`` are accepted for
        compatibility and change nothing.
        """
        if weighted_metrics is not None:
            raise ValueError("`weighted_metrics` needs sample weights, which fastconv's fit "
                             "does not take yet.")
        self.optimizer = optimizers.get(optimizer)
        self._loss_spec = loss
        self._metrics_spec = metrics
        self._loss_weights_spec = loss_weights
        # The loss as Keras exposes it on the model (one object for one loss).
        self.loss = (get_loss(loss) if loss not in (None, "") and not isinstance(
            loss, (list, tuple, dict)) else loss)
        self._compiled: Any = None  # resolved against the outputs on first use
        self.compiled = True
        self._compile_config = {
            "loss": serialize_nested(loss, serialize_loss),
            "metrics": serialize_nested(metrics, serialize_metric),
            "loss_weights": loss_weights,
        }

    def _require_compiled(self, what: str) -> None:
        if not getattr(self, "compiled", False) or self._loss_spec in (None, "", [], {}):
            raise RuntimeError(f"You must call `compile()` with a loss before `{what}()`.")

    def _output_names(self, n: int) -> list[str]:
        names = getattr(self, "output_names", None)
        if names and len(names) == n:
            return list(names)
        return ["output"] if n == 1 else [f"output_{k + 1}" for k in range(n)]

    def _resolve(self, n_outputs: int) -> Any:
        """Per output: its loss (or None), weight and metric identifiers."""
        if self._compiled is not None and self._compiled.n == n_outputs:
            return self._compiled
        self._compiled = CompiledLosses(self._output_names(n_outputs), self._loss_spec,
                                         self._loss_weights_spec, self._metrics_spec)
        return self._compiled

    @property
    def metrics(self) -> list:
        """The loss tracker and the compiled metrics (after the first batch), as
        Keras' ``model.metrics``."""
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            return []
        return [compiled.loss_tracker, *(m for ms in compiled.metrics or [] for m in ms)]

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    # -- data --------------------------------------------------------------

    def _targets(self, y: Any, n_outputs: int) -> list:
        """Targets as one array per output: an array (one output), a list in
        output order, or a dict keyed by output name."""
        if isinstance(y, dict):
            names = self._output_names(n_outputs)
            unknown = sorted(set(y) - set(names))
            if unknown:
                raise ValueError(f"The targets name outputs {unknown} that model "
                                 f"'{self.name}' does not have; its outputs are {names}.")
            return [None if n not in y else np.asarray(y[n]) for n in names]
        if n_outputs == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray):
                y = y[0]
            return [np.asarray(y)]
        if not isinstance(y, (list, tuple)) or len(y) != n_outputs:
            raise ValueError(
                f"Model '{self.name}' has {n_outputs} outputs "
                f"{self._output_names(n_outputs)}; pass the targets as a list of "
                f"{n_outputs} arrays or a dict keyed by those names.")
        return [np.asarray(t) for t in y]

    # -- one step ----------------------------------------------------------

    def compute_forward(self, x: Any, training: bool = True) -> tuple[list, Any]:
        """The flat outputs for a batch, and the state backward needs."""
        arrays, structure = self._flat_inputs(x)
        plan = self._plan_for(arrays, structure, training)
        outputs, tape = plan.forward(arrays, training, record=training)
        return outputs, (plan, tape)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        """The total loss: every output's weighted loss, the weights'
        regularization penalties and the layers' activity penalties of the
        last forward pass. Recorded on an active ``GradientTape``."""
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported yet.")
        flat_pred = flatten(y_pred)[0] if isinstance(y_pred, (list, tuple, dict)) else [y_pred]
        compiled = self._resolve(len(flat_pred))
        targets = self._targets(y, len(flat_pred))
        total, per_output = compiled.value(targets, flat_pred)
        compiled._resolve_metrics(targets, flat_pred)  # model.metrics exists from here
        total += self._last_penalty + self.regularization_loss()
        value = np.asarray(total, dtype=np.float64)
        self._last_output_losses = per_output
        if tape_module.recording():
            tape_module.record(ModelLoss(self, targets), flat_pred, flat_pred,
                               ("list", len(flat_pred)), value)
        return value

    def _output_gradients(self, plan: Any, targets: list, outputs: list) -> tuple[list, set]:
        compiled = self._resolve(len(outputs))
        d_outputs, preactivation = [], set()
        for k, (loss, weight) in enumerate(zip(compiled.losses, compiled.weights)):
            if loss is None or targets[k] is None:
                d_outputs.append(None)
                continue
            key = ("fused", k, loss)
            if key not in plan.memo:  # the plan and the loss decide it once
                plan.memo[key] = self._fused_step(plan, k, loss)
            step = plan.memo[key]
            if step is not None:
                d = loss.logits_gradient(targets[k], outputs[k])
                preactivation.add(step)
            else:
                d = loss.gradient(targets[k], outputs[k])
            d = d.astype(outputs[k].dtype, copy=False)
            if weight != 1:
                d = d * d.dtype.type(weight)
            d_outputs.append(d)
        return d_outputs, preactivation

    @staticmethod
    def _fused_step(plan: Any, k: int, loss: Any) -> int | None:
        """The step whose activation output ``k``'s loss folds into its
        gradient (softmax + cross-entropy, sigmoid + binary cross-entropy, on
        probabilities), or None. The fused gradient, computed from the
        probabilities, avoids dividing by tiny probabilities."""
        fusable = getattr(loss, "fused_activation", None)
        if fusable is None or loss.from_logits:
            return None
        i = plan.output_step(k)
        if i is None:
            return None
        layer = plan.steps[i].layers[0]
        # The built-in activation itself, not a user function of that name.
        if getattr(layer, "activation", None) is not activations.get(fusable):
            return None
        return i if _accepts_activation_done(layer) else None

    def compute_gradients(self, state: Any, y: Any, y_pred: list) -> None:
        """Backpropagate the loss of the last forward pass into every weight's
        ``grad`` (zeroed first), regularization penalties included."""
        plan, tape = state
        zero_gradients(self._all_variables())
        d_outputs, preactivation = self._output_gradients(plan, self._targets(y, len(y_pred)),
                                                           y_pred)
        plan.backward(tape, d_outputs, preactivation=preactivation)
        self.add_regularization_gradients()

    def apply_gradients(self) -> None:
        """One optimizer update of the trainable weights from their ``grad``,
        then the weights' constraints."""
        variables = self.trainable_weights
        self.optimizer.update([v.value for v in variables], [v.grad for v in variables],
                              variables=variables)
        self.apply_constraints()

    def _all_variables(self) -> list:
        return self.weights

    def train_step(self, data: Any) -> Any:
        """One optimizer step on one batch ``(x, y)``: forward -> loss ->
        backward -> apply_gradients. Returns the loss and the outputs."""
        x, y = data[0], data[1]
        outputs, state = self.compute_forward(x, training=True)
        self._last_penalty = state[1].penalty
        loss = float(self.compute_loss(x, y, outputs))
        self.compute_gradients(state, y, outputs)
        self.apply_gradients()
        return loss, outputs

    def _custom_train_step(self) -> bool:
        return type(self).train_step is not Trainer.train_step

    def _step(self, xb: Any, yb: Any) -> tuple[float, list] | dict:
        if self._custom_train_step():
            logs = self.train_step((xb, yb))
            if not isinstance(logs, dict):
                raise TypeError(f"{type(self).__name__}.train_step must return a dict of "
                                f"logs, received {type(logs).__name__}.")
            return {k: float(np.asarray(v)) for k, v in logs.items()}
        return self.train_step((xb, yb))

    def _test_batch(self, xb: Any, yb: Any) -> tuple[float, list]:
        outputs, state = self.compute_forward(xb, training=False)
        self._last_penalty = state[0].last_penalty
        return float(self.compute_loss(xb, yb, outputs, training=False)), outputs

    # -- metrics and logs --------------------------------------------------

    def _update_metrics(self, y: Any, outputs: list) -> None:
        compiled = self._resolve(len(outputs))
        compiled.update(self._targets(y, len(outputs)), outputs,
                        getattr(self, "_last_output_losses", None))

    def _logs(self, loss_tracker: Any) -> dict[str, float]:
        compiled = self._compiled
        logs = compiled.results() if compiled is not None else {}
        logs["loss"] = float(loss_tracker.result())
        return dict(sorted(logs.items()))

    def reset_metrics(self) -> None:
        """Empty every compiled metric and loss tracker (Keras' ``reset_metrics``)."""
        self._reset_metrics()

    def _reset_metrics(self) -> None:
        """Start every pass from empty metrics, as Keras: a pass interrupted
        by an exception must not leak its counts into the next one."""
        if getattr(self, "_compiled", None) is not None:
            self._compiled.reset()

    @with_training_environment(per_batch=True)
    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: Any = None, return_dict: bool = False) -> Any:
        """One optimizer step on one batch; returns the batch's loss, or
        ``[loss, *metrics]`` when the model was compiled with metrics (as
        Keras), the metrics measured on this batch alone."""
        self._require_compiled("train_on_batch")
        x = _as_data(x, "x")
        result = self._step(x, y)
        if isinstance(result, dict):
            return result if return_dict else list(result.values())
        loss_value, outputs = result
        self._reset_metrics()
        self._update_metrics(y, outputs)
        logs = self._compiled.results()
        self._reset_metrics()
        if return_dict:
            return {"loss": loss_value, **logs}
        if not logs:
            return loss_value
        return [loss_value, *logs.values()]

    # -- fit ---------------------------------------------------------------

    @with_training_environment
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: list | None = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            profile: bool = False) -> callbacks_module.History:
        """Train for ``epochs`` passes over (x, y); returns the History.

        ``x`` and ``y`` are arrays, or lists / dicts of arrays for models
        with several inputs or outputs (dicts keyed by input and output
        names). ``profile=True`` (not a Keras argument) then times training
        steps on the first batch layer by layer, as ``profile`` does, keeps
        the rows in ``history.profile`` and prints the table unless
        ``verbose`` is 0."""
        self._require_compiled("fit")
        profile = check_flag(profile, "profile")
        x, y, n_x = _paired_data(x, y)
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
            split = int(n_x * (1.0 - validation_split))
            validation_data = (_take(x, slice(split, None)), _take(y, slice(split, None)))
            x, y = _take(x, slice(None, split)), _take(y, slice(None, split))
            n_x = split
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("Invalid value for argument `validation_data`: expected a "
                                 "tuple (x_val, y_val).")
            validation_data = (_as_data(validation_data[0], "validation_data"),
                               _as_data(validation_data[1], "validation_data"))
        if n_x == 0:
            raise ValueError("Invalid value for argument `x`: no training samples.")
        self._flat_inputs(_take(x, slice(0, 1)))  # builds and checks shapes before epoch 1

        history = callbacks_module.History()
        n_steps = math.ceil(n_x / batch_size)
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
            order = _random.generator().permutation(n_x) if shuffle else np.arange(n_x)
            logs = self._run_epoch(x, y, order, batch_size, n_steps, verbose, cbs)
            if validation_data is not None:
                val_logs = self._evaluate_arrays(*validation_data, batch_size, 0, cbs=None)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            self._print_epoch_end(logs, verbose)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        if epochs > 0:  # as Keras: the weights take the optimizer's moving averages, if kept
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cbs.on_train_end({name: values[-1] for name, values in history.history.items()})
        if profile:
            history.profile = profile_model(self, _take(x, slice(0, batch_size)),
                                            _take(y, slice(0, batch_size)))
            if verbose:
                print(format_profile(history.profile))
        return history

    def _run_epoch(self, x: Any, y: Any, order: np.ndarray, batch_size: int,
                   n_steps: int, verbose: int, cbs: Any) -> dict[str, float]:
        mean_loss = metrics_module.Mean(name="loss")
        self._reset_metrics()
        self._progbar = Progbar(n_steps, verbose)
        logs: dict[str, float] = {}
        for step in range(n_steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb, yb = _take(x, idx), _take(y, idx)
            cbs.on_train_batch_begin(step, {})
            result = self._step(xb, yb)
            if isinstance(result, dict):  # a train_step of the model's own
                logs = dict(result)
            else:
                loss_value, outputs = result
                mean_loss.update_state(loss_value, sample_weight=len(idx))
                self._update_metrics(yb, outputs)
                logs = self._logs(mean_loss)
            cbs.on_train_batch_end(step, logs)
            self._progbar.update(step + 1, logs, done=False)
            if self.stop_training:  # as Keras: a callback may end the epoch early
                break
        return logs if self._custom_train_step() else self._logs(mean_loss)

    def _print_epoch_end(self, logs: dict[str, float], verbose: int) -> None:
        ordered = dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0])))
        self._progbar.update(self._progbar.total, ordered, done=True)
        self._progbar.summary(self._progbar.total, ordered)

    # -- evaluate / predict ------------------------------------------------

    def _evaluate_arrays(self, x: Any, y: Any, batch_size: int, verbose: int,
                         cbs: Any) -> dict[str, float]:
        mean_loss = metrics_module.Mean(name="loss")
        self._reset_metrics()
        n = _n_samples(_flat_data(x), "x")
        n_steps = math.ceil(n / batch_size)
        progbar = Progbar(n_steps, verbose)
        for step in range(n_steps):
            rows = slice(step * batch_size, (step + 1) * batch_size)
            xb, yb = _take(x, rows), _take(y, rows)
            if cbs is not None:
                cbs.on_test_batch_begin(step, {})
            loss_value, outputs = self._test_batch(xb, yb)
            mean_loss.update_state(loss_value, sample_weight=len(flatten(xb)[0][0]))
            self._update_metrics(yb, outputs)
            logs = self._logs(mean_loss)
            if cbs is not None:
                cbs.on_test_batch_end(step, logs)
            progbar.update(step + 1, logs, done=step + 1 == n_steps)
        logs = self._logs(mean_loss)
        progbar.summary(n_steps, logs)
        return logs

    @with_training_environment
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", callbacks: list | None = None,
                 return_dict: bool = False) -> Any:
        """The loss and metrics on (x, y): ``[loss, *metrics]`` (a scalar loss
        when there are no metrics), or a dict with ``return_dict=True``."""
        self._require_compiled("evaluate")
        x, y, n_x = _paired_data(x, y)
        if n_x == 0:
            raise ValueError("Invalid value for argument `x`: no samples to evaluate.")
        self._flat_inputs(_take(x, slice(0, 1)))
        cbs = callbacks_module.CallbackList(callbacks or [], self, {})
        cbs.on_test_begin({})
        logs = self._evaluate_arrays(x, y, _batch_size(batch_size), _verbosity(verbose), cbs)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[name] for name in self._compiled.result_names()]
        return values[0] if len(values) == 1 else values

    @with_training_environment
    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                callbacks: list | None = None) -> Any:
        """The model's outputs for ``x``, computed ``batch_size`` samples at a
        time (a list or dict of arrays for several outputs)."""
        x = _as_data(x, "x")
        n = _n_samples(_flat_data(x), "x")
        first, structure = self._flat_inputs(_take(x, slice(0, 1)))
        batch_size = _batch_size(batch_size)
        n_steps = math.ceil(n / batch_size)
        progbar = Progbar(n_steps, _verbosity(verbose))
        cbs = callbacks_module.CallbackList(callbacks or [], self, {})
        cbs.on_predict_begin({})
        pieces: list[list] = []
        plan = None
        for step in range(n_steps):
            cbs.on_predict_batch_begin(step, {})
            arrays, structure = self._flat_inputs(
                _take(x, slice(step * batch_size, (step + 1) * batch_size)))
            plan = self._plan_for(arrays, structure, False)
            outputs, _ = plan.forward(arrays, False)
            pieces.append(outputs)
            cbs.on_predict_batch_end(step, {"outputs": unflatten(
                outputs, plan.function.output_structure)})
            progbar.update(step + 1, {}, done=step + 1 == n_steps)
        progbar.summary(n_steps, {})
        cbs.on_predict_end({})
        if plan is None:
            plan = self._plan_for(first, structure, False)
            outputs, _ = plan.forward(first, False)
            flat = [np.zeros((0, *o.shape[1:]), o.dtype) for o in outputs]
        else:
            flat = [np.concatenate([p[k] for p in pieces]) for k in range(len(pieces[0]))]
        return unflatten(flat, plan.function.output_structure)

    @with_training_environment
    def profile(self, x: Any, y: Any, repeat: int = 5, verbose: int = 1) -> list[dict]:
        """Time each layer's forward and backward pass on one batch (x, y).

        Returns one dict per layer (``forward_ms``, ``backward_ms``,
        ``forward_gflop``, ``backward_gflop``, ...) and, with ``verbose``,
        prints them as a table with GFLOP/s. The weights are not updated.
        """
        self._require_compiled("profile")
        x = _as_data(x, "x")
        rows = profile_model(self, x, _as_data(y, "y"), repeat)
        if verbose:
            print(format_profile(rows))
        return rows

    @with_training_environment(per_batch=True)
    def predict_on_batch(self, x: Any) -> Any:
        arrays, structure = self._flat_inputs(_as_data(x, "x"))
        plan = self._plan_for(arrays, structure, False)
        outputs, _ = plan.forward(arrays, False)
        return unflatten(outputs, plan.function.output_structure)

    @with_training_environment(per_batch=True)
    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        x = _as_data(x, "x")
        n = _n_samples(_flat_data(x), "x")
        return self.evaluate(x, y, batch_size=max(n, 1), verbose=0, return_dict=return_dict)

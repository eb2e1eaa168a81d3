"""compile / fit / evaluate / predict: the training loop of every model.

``Trainer`` is mixed into ``fastconv.models.Model``. A model gives it a plan
(``_plan_for``), its inputs as flat arrays (``_flat_inputs``) and its
weights; this module owns the loop around them: the validation passes, the
losses of every output (fusing softmax/sigmoid + cross-entropy into one
stable gradient), sample weights, regularization, the optimizer step,
metrics, progress lines and callbacks. The data, whatever its kind, arrives
as batches ``(x, y, sample_weight)`` from ``fastconv.training.data_adapters``.

One training step is ``train_step(data)``: forward (``compute_forward``) ->
loss (``compute_loss``) -> backward (``compute_gradients``) ->
``apply_gradients``. A subclass may override any of these, or
``train_step`` itself as in Keras (returning a dict of logs, for instance
with ``fastconv.GradientTape`` as in a TensorFlow ``train_step``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fastconv import activations, optimizers
from fastconv import callbacks as callbacks_module
from fastconv import metrics as metrics_module
from fastconv._validation import check_flag
from fastconv.distribute import _scope as distribute_scope
from fastconv.graph import tape as tape_module
from fastconv.graph.executor import zero_gradients
from fastconv.graph.inference import inference_outputs, programmed_call
from fastconv.graph.node import flatten, unflatten
from fastconv.runtime.allocator import retained_heap
from fastconv.runtime.blas import single_threaded_blas
from fastconv.training import data_adapters
from fastconv.training.compile import (
    CompiledLosses,
    ModelLoss,
    get_loss,
    serialize_loss,
    serialize_metric,
    serialize_nested,
    weighted_call,
)
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


def _as_data(value: Any, name: str) -> Any:
    """Arrays (or a list/dict of arrays) of numbers from user data."""
    if value is None:
        raise ValueError(f"Invalid value for argument `{name}`: expected an array of "
                         "inputs, received None.")
    return data_adapters.as_arrays(value, name)


def _first_rows(value: Any) -> Any:
    """The first sample of each array: builds the model and checks its
    input shapes before the first epoch."""
    return data_adapters.take_rows(value, slice(0, 1))


def _positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`: expected a positive int or "
                         f"None, received {name}={value!r}.")
    return int(value)


def _batch_rows(x: Any) -> int:
    """The number of samples in a batch (the first input's rows), which
    weighs the batch's loss in the running mean, as Keras."""
    leaves = data_adapters.leaves(x)
    return len(leaves[0]) if leaves else 0


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

        ``loss``, ``metrics``, ``weighted_metrics`` and ``loss_weights`` are
        one value, a list (one entry per output) or a dict keyed by output
        name, as in Keras; a single loss applies to every output. A loss may
        be a name, a ``fastconv.losses.Loss`` or a function
        ``f(y_true, y_pred)`` written with Keras ops. The metrics of
        ``metrics`` ignore sample weights; those of ``weighted_metrics`` use
        them (a name in both is logged as ``weighted_<name>`` the second
        time). ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility and change nothing.
        """
        for name, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple, dict)):
                raise ValueError(f"Expected `{name}` argument to be a list, tuple, or dict. "
                                 f"Received instead: {name}={value!r} of type {type(value)}")
        self.optimizer = optimizers.get(optimizer)
        self._loss_spec = loss
        self._metrics_spec = metrics
        self._weighted_metrics_spec = weighted_metrics
        self._loss_weights_spec = loss_weights
        # The loss as Keras exposes it on the model (one object for one loss).
        self.loss = (get_loss(loss) if loss not in (None, "") and not isinstance(
            loss, (list, tuple, dict)) else loss)
        self._compiled: Any = None  # resolved against the outputs on first use
        self.compiled = True
        # A model compiled inside a strategy's scope() trains with it.
        self._distribution = distribute_scope.current()
        self._compile_config = {
            "loss": serialize_nested(loss, serialize_loss),
            "metrics": serialize_nested(metrics, serialize_metric),
            "loss_weights": loss_weights,
        }
        if weighted_metrics is not None:
            self._compile_config["weighted_metrics"] = serialize_nested(
                weighted_metrics, serialize_metric)

    def _require_compiled(self, what: str) -> None:
        # A model with its own train_step computes its loss itself: Keras lets
        # it compile with an optimizer alone.
        own_step = what in ("fit", "train_on_batch") and self._custom_train_step()
        if not getattr(self, "compiled", False) or (
                not own_step and self._loss_spec in (None, "", [], {})):
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
                                         self._loss_weights_spec, self._metrics_spec,
                                         getattr(self, "_weighted_metrics_spec", None))
        return self._compiled

    @property
    def metrics(self) -> list:
        """The loss tracker and the compiled metrics (after the first batch), as
        Keras' ``model.metrics``."""
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            return []
        return [compiled.loss_tracker, *(m for ms in compiled.metrics or [] for m in ms),
                *(m for ms in compiled.weighted or [] for m in ms)]

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

    def _sample_weights(self, sample_weight: Any, n_outputs: int) -> list:
        """Sample weights as one array (or None) per output: one array for
        every output, a list in output order, or a dict keyed by output name."""
        if sample_weight is None:
            return [None] * n_outputs
        if isinstance(sample_weight, dict):
            names = self._output_names(n_outputs)
            unknown = sorted(set(sample_weight) - set(names))
            if unknown:
                raise ValueError(f"Invalid value for argument `sample_weight`: keys {unknown} "
                                 f"are not output names; the outputs are {names}.")
            return [None if sample_weight.get(n) is None else np.asarray(sample_weight[n])
                    for n in names]
        if isinstance(sample_weight, (list, tuple)) and all(
                isinstance(w, np.ndarray) or w is None for w in sample_weight):
            if len(sample_weight) != n_outputs:
                raise ValueError(
                    f"You should provide one `sample_weight` array per output in `y`: "
                    f"model '{self.name}' has {n_outputs} outputs, received "
                    f"{len(sample_weight)} arrays.")
            return [None if w is None else np.asarray(w) for w in sample_weight]
        return [np.asarray(sample_weight)] * n_outputs

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> Any:
        """The total loss: every output's weighted loss, the weights'
        regularization penalties and the layers' activity penalties of the
        last forward pass. ``sample_weight`` weighs each sample's loss with
        Keras' reduction (summed, divided by the batch size). Recorded on an
        active ``GradientTape``."""
        if y is None:
            raise ValueError("Invalid value for argument `y`: expected targets, received None.")
        flat_pred = flatten(y_pred)[0] if isinstance(y_pred, (list, tuple, dict)) else [y_pred]
        compiled = self._resolve(len(flat_pred))
        targets = self._targets(y, len(flat_pred))
        weights = self._sample_weights(sample_weight, len(flat_pred))
        total, per_output = compiled.value(targets, flat_pred, weights)
        compiled._resolve_metrics(targets, flat_pred)  # model.metrics exists from here
        total += self._last_penalty + self.regularization_loss()
        value = np.asarray(total, dtype=np.float64)
        self._last_output_losses = per_output
        if tape_module.recording():
            tape_module.record(ModelLoss(self, targets, weights), flat_pred, flat_pred,
                               ("list", len(flat_pred)), value)
        return value

    def _output_gradients(self, plan: Any, targets: list, outputs: list,
                          sample_weights: list | None = None) -> tuple[list, set]:
        compiled = self._resolve(len(outputs))
        sample_weights = sample_weights or [None] * len(outputs)
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
                d = weighted_call(loss.logits_gradient, targets[k], outputs[k],
                                  sample_weights[k])
                preactivation.add(step)
            else:
                d = weighted_call(loss.gradient, targets[k], outputs[k], sample_weights[k])
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

    def compute_gradients(self, state: Any, y: Any, y_pred: list,
                          sample_weight: Any = None) -> None:
        """Backpropagate the loss of the last forward pass into every weight's
        ``grad`` (zeroed first), regularization penalties included."""
        self.backpropagate_loss(state, y, y_pred, sample_weight)
        self.add_regularization_gradients()

    def backpropagate_loss(self, state: Any, y: Any, y_pred: list,
                           sample_weight: Any = None) -> None:
        """The loss's gradient alone into every weight's ``grad`` (zeroed
        first); a data-parallel step adds the penalties' once per batch."""
        plan, tape = state
        zero_gradients(self._all_variables())
        d_outputs, preactivation = self._output_gradients(
            plan, self._targets(y, len(y_pred)), y_pred,
            self._sample_weights(sample_weight, len(y_pred)))
        plan.backward(tape, d_outputs, preactivation=preactivation)

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
        """One optimizer step on one batch ``(x, y)`` or ``(x, y,
        sample_weight)``: forward -> loss -> backward -> apply_gradients.
        Returns the loss and the outputs."""
        if getattr(self, "_distribution", None) is not None:
            return self._distribution.train_step(self, data)
        x, y, sample_weight = data_adapters.unpack_x_y_sample_weight(data)
        outputs, state = self.compute_forward(x, training=True)
        self._last_penalty = state[1].penalty
        loss = float(self.compute_loss(x, y, outputs, sample_weight))
        self.compute_gradients(state, y, outputs, sample_weight)
        self.apply_gradients()
        return loss, outputs

    def _distributed_begin(self, what: str, verbose: int, callbacks: Any,
                           batch_size: Any) -> tuple[int, Any]:
        """A strategy's checks and rank-0-only output as a pass begins."""
        if getattr(self, "_distribution", None) is None:
            return verbose, callbacks
        return self._distribution.begin(self, what, verbose, callbacks, batch_size)

    def _custom_train_step(self) -> bool:
        return type(self).train_step is not Trainer.train_step

    def _step(self, xb: Any, yb: Any, swb: Any = None) -> tuple[float, list] | dict:
        # As Keras, a train_step sees (x, y) unless there are sample weights.
        data = (xb, yb) if swb is None else (xb, yb, swb)
        if self._custom_train_step():
            logs = self.train_step(data)
            if not isinstance(logs, dict):
                raise TypeError(f"{type(self).__name__}.train_step must return a dict of "
                                f"logs, received {type(logs).__name__}.")
            return {k: float(np.asarray(v)) for k, v in logs.items()}
        return self.train_step(data)

    def _test_batch(self, xb: Any, yb: Any, swb: Any = None) -> tuple[float, list]:
        if getattr(self, "_distribution", None) is not None:
            return self._distribution.test_batch(self, xb, yb, swb)
        return self._local_test_batch(xb, yb, swb)

    def _local_test_batch(self, xb: Any, yb: Any, swb: Any = None) -> tuple[float, list]:
        outputs, state = self.compute_forward(xb, training=False)
        self._last_penalty = state[0].last_penalty
        return float(self.compute_loss(xb, yb, outputs, swb, training=False)), outputs

    # -- metrics and logs --------------------------------------------------

    def _update_metrics(self, y: Any, outputs: list, sample_weight: Any = None) -> None:
        compiled = self._resolve(len(outputs))
        compiled.update(self._targets(y, len(outputs)), outputs,
                        getattr(self, "_last_output_losses", None),
                        self._sample_weights(sample_weight, len(outputs)))

    def _logs(self, loss_tracker: Any) -> dict[str, float]:
        compiled = self._compiled
        logs = compiled.results() if compiled is not None else {}
        logs["loss"] = float(loss_tracker.result())
        return dict(sorted(logs.items()))

    def _flat_logs(self, logs: dict[str, float]) -> Any:
        """Keras' list form of the logs: ``[loss, *metrics]`` in compile
        order, or the loss alone."""
        names = self._compiled.result_names() if self._compiled is not None else []
        values = [logs["loss"]] + [logs[name] for name in names if name in logs]
        return values[0] if len(values) == 1 else values

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
        Keras), the metrics measured on this batch alone (a dict with
        ``return_dict=True``). ``class_weight`` (class index -> weight) is
        turned into sample weights through ``y``."""
        self._require_compiled("train_on_batch")
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("Arguments `sample_weight` and `class_weight` cannot be "
                                 "specified at the same time. Received: "
                                 f"sample_weight={sample_weight!r}, "
                                 f"class_weight={class_weight!r}")
            sample_weight = data_adapters.checked_class_weights(y, None, class_weight)
        x = _as_data(x, "x")
        sample_weight = data_adapters.as_arrays(sample_weight, "sample_weight")
        result = self._step(x, y, sample_weight)
        if isinstance(result, dict):
            return result if return_dict else list(result.values())
        loss_value, outputs = result
        self._reset_metrics()
        self._update_metrics(y, outputs, sample_weight)
        logs = {"loss": loss_value, **self._compiled.results()}
        self._reset_metrics()
        return logs if return_dict else self._flat_logs(logs)

    # -- fit ---------------------------------------------------------------

    @with_training_environment
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: list | None = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            class_weight: Any = None, sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq: Any = 1,
            profile: bool = False) -> callbacks_module.History:
        """Train for ``epochs`` passes over the data; returns the History.

        ``x`` is NumPy arrays (lists / dicts of arrays for several inputs,
        keyed by input name), with targets ``y`` and optional
        ``sample_weight`` alike; or a Python generator / iterator yielding
        ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` batches; or a
        ``fastconv.utils.PyDataset``. ``class_weight`` (class index ->
        weight) multiplies each sample's loss by its class's weight (one
        output only). ``steps_per_epoch`` limits an epoch to that many
        batches, the next epoch continuing from there; an endless
        PyDataset needs it, and a generator runs until exhausted without
        it. ``validation_data`` is ``(x, y)``, ``(x, y, sample_weight)``, a
        generator or a PyDataset, evaluated every ``validation_freq``-th
        epoch (an int, or a list of epochs counted from 1) on at most
        ``validation_steps`` batches of ``validation_batch_size`` rows.
        ``profile=True`` (not a Keras argument) then times training steps
        on the first batch layer by layer, as ``profile`` does, keeps the
        rows in ``history.profile`` and prints the table unless ``verbose``
        is 0."""
        self._require_compiled("fit")
        profile = check_flag(profile, "profile")
        verbose = _verbosity(verbose)
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"Invalid value for argument `epochs`: expected an int >= 0, "
                             f"received epochs={epochs!r}.")
        if (not isinstance(initial_epoch, (int, np.integer)) or isinstance(initial_epoch, bool)
                or initial_epoch < 0):
            raise ValueError(f"Invalid value for argument `initial_epoch`: expected an int "
                             f">= 0, received initial_epoch={initial_epoch!r}.")
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"Invalid value for argument `validation_split`: expected a float "
                             f"in [0, 1), received validation_split={validation_split!r}.")
        data_adapters.check_validation_freq(validation_freq)
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        steps_per_epoch = _positive_int_or_none(steps_per_epoch, "steps_per_epoch")
        validation_steps = _positive_int_or_none(validation_steps, "validation_steps")
        validation_batch_size = _positive_int_or_none(validation_batch_size,
                                                      "validation_batch_size")
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = data_adapters.train_validation_split(
                x, y, sample_weight, validation_split)
        if isinstance(x, (tuple, list)) and len(x) == 0:
            raise ValueError("Invalid value for argument `x`: no training samples.")
        adapter = data_adapters.get_data_adapter(
            x, y, sample_weight, batch_size=batch_size, steps=steps_per_epoch,
            shuffle=shuffle, class_weight=class_weight)
        if adapter.num_batches is None and isinstance(adapter, data_adapters.PyDatasetAdapter) \
                and steps_per_epoch is None:
            raise ValueError("Invalid value for argument `steps_per_epoch`: `x` is an endless "
                             "PyDataset (its num_batches is None), so fit needs "
                             "`steps_per_epoch`; received steps_per_epoch=None.")
        if isinstance(adapter, data_adapters.ArrayDataAdapter):
            if adapter.n_samples == 0:
                raise ValueError("Invalid value for argument `x`: no training samples.")
            self._flat_inputs(_first_rows(adapter.x))  # builds and checks shapes before epoch 1
        val_iterator = None
        if validation_data is not None:
            val_iterator = self._validation_iterator(validation_data, validation_batch_size,
                                                     batch_size, validation_steps)

        verbose, callbacks = self._distributed_begin("fit", verbose, callbacks, batch_size)
        train_iterator = data_adapters.EpochIterator(adapter, steps_per_epoch)
        train_iterator.reset()
        history = callbacks_module.History()
        cbs = callbacks_module.CallbackList(
            [*(callbacks or []), history], self,
            {"epochs": epochs, "steps": train_iterator.num_batches, "verbose": verbose})
        progress = 0 if cbs.progbar is not None else verbose  # a ProgbarLogger prints instead
        self.stop_training = False
        self.history = history
        training_logs: dict[str, float] = {}
        first_batch = None
        cbs.on_train_begin({})
        # A callback (BackupAndRestore) may resume from a later epoch.
        initial_epoch = getattr(self, "_initial_epoch", None) or initial_epoch
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            cbs.on_epoch_begin(epoch, {})
            if progress and epochs > 1:  # as Keras 3: no "Epoch 1/1"
                print(f"Epoch {epoch + 1}/{epochs}")
            logs, n_steps, batch = self._train_epoch(train_iterator, progress, cbs)
            first_batch = first_batch or batch
            if n_steps == 0 and train_iterator.exhausted:
                break  # as Keras: the data ran out, no epoch to report
            if val_iterator is not None and data_adapters.should_eval(epoch, validation_freq):
                val_iterator.reset()
                val_logs = self._evaluate_loop(val_iterator, 0, cbs)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            self._print_epoch_end(logs, progress)
            cbs.on_epoch_end(epoch, logs)
            training_logs = logs
            if self.stop_training or train_iterator.exhausted:
                break
        if epochs > 0:  # as Keras: the weights take the optimizer's moving averages, if kept
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cbs.on_train_end(training_logs)
        if profile and first_batch is not None:
            history.profile = profile_model(self, first_batch[0], first_batch[1])
            if verbose:
                print(format_profile(history.profile))
        return history

    def _validation_iterator(self, validation_data: Any, validation_batch_size: int | None,
                             batch_size: int | None, validation_steps: int | None) -> Any:
        if isinstance(validation_data, (tuple, list)):
            if not 2 <= len(validation_data) <= 3:
                raise ValueError("Invalid value for argument `validation_data`: expected a "
                                 "tuple (x_val, y_val) or (x_val, y_val, val_sample_weight), a "
                                 "generator or a PyDataset, received a "
                                 f"{type(validation_data).__name__} of {len(validation_data)} "
                                 "elements.")
            val_x, val_y, val_sw = data_adapters.unpack_x_y_sample_weight(validation_data)
            val_batch = validation_batch_size or batch_size
        else:
            val_x, val_y, val_sw = validation_data, None, None
            val_batch = validation_batch_size  # whole batches: only an explicit size errors
        adapter = data_adapters.get_data_adapter(val_x, val_y, val_sw, batch_size=val_batch,
                                                 steps=validation_steps)
        if adapter.num_batches is None and isinstance(adapter, data_adapters.PyDatasetAdapter) \
                and validation_steps is None:
            raise ValueError("Invalid value for argument `validation_steps`: "
                             "`validation_data` is an endless PyDataset (its num_batches is "
                             "None), so fit needs `validation_steps`; received "
                             "validation_steps=None.")
        return data_adapters.EpochIterator(adapter, validation_steps)

    def _train_epoch(self, iterator: Any, verbose: int, cbs: Any) -> tuple[dict, int, Any]:
        """One epoch: its logs, its number of steps and its first batch."""
        mean_loss = metrics_module.Mean(name="loss")
        self._progbar = Progbar(iterator.num_batches or 0, verbose)
        logs: dict[str, float] = {}
        n_steps, first = 0, None
        for step, (xb, yb, swb) in iterator.epoch():
            first = first or (xb, yb)
            cbs.on_train_batch_begin(step, {})
            result = self._step(xb, yb, swb)
            if isinstance(result, dict):  # a train_step of the model's own
                logs = dict(result)
            else:
                loss_value, outputs = result
                mean_loss.update_state(loss_value, sample_weight=_batch_rows(xb))
                self._update_metrics(yb, outputs, swb)
                logs = self._logs(mean_loss)
            n_steps = step + 1
            cbs.on_train_batch_end(step, logs)
            self._progbar.total = iterator.num_batches or n_steps
            self._progbar.update(n_steps, logs, done=False)
            if self.stop_training:  # as Keras: a callback may end the epoch early
                break
        self._progbar.total = iterator.num_batches or n_steps
        if n_steps == 0 or self._custom_train_step():
            return logs, n_steps, first
        return self._logs(mean_loss), n_steps, first

    def _print_epoch_end(self, logs: dict[str, float], verbose: int) -> None:
        ordered = dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0])))
        self._progbar.update(self._progbar.total, ordered, done=True)
        self._progbar.summary(self._progbar.total, ordered)

    # -- evaluate / predict ------------------------------------------------

    def _evaluate_loop(self, iterator: Any, verbose: int, cbs: Any) -> dict[str, float]:
        """One pass of evaluation with the ``on_test_*`` hooks; its logs."""
        mean_loss = metrics_module.Mean(name="loss")
        self._reset_metrics()
        cbs.on_test_begin({})
        progbar = Progbar(iterator.num_batches or 0, verbose)
        n_steps = 0
        self.stop_evaluating = False
        for step, (xb, yb, swb) in iterator.epoch():
            cbs.on_test_batch_begin(step, {})
            loss_value, outputs = self._test_batch(xb, yb, swb)
            mean_loss.update_state(loss_value, sample_weight=_batch_rows(xb))
            self._update_metrics(yb, outputs, swb)
            logs = self._logs(mean_loss)
            n_steps = step + 1
            cbs.on_test_batch_end(step, logs)
            progbar.total = iterator.num_batches or n_steps
            progbar.update(n_steps, logs, done=False)
            if self.stop_evaluating:  # as Keras: a callback may end the pass early
                break
        logs = self._logs(mean_loss)
        progbar.total = n_steps
        progbar.update(n_steps, logs, done=True)
        progbar.summary(n_steps, logs)
        cbs.on_test_end(logs)
        return logs

    @with_training_environment
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", sample_weight: Any = None, steps: int | None = None,
                 callbacks: list | None = None, return_dict: bool = False) -> Any:
        """The loss and metrics on the data: ``[loss, *metrics]`` (a scalar
        loss when there are no metrics), or a dict with ``return_dict=True``.

        The data is as for ``fit`` (arrays with ``y`` and optional
        ``sample_weight``, a generator or a PyDataset); ``steps`` limits the
        pass to that many batches (an endless PyDataset needs it)."""
        self._require_compiled("evaluate")
        verbose = _verbosity(verbose)
        iterator = self._inference_iterator(x, y, sample_weight, batch_size, steps, "evaluate")
        verbose, callbacks = self._distributed_begin("evaluate", verbose, callbacks, batch_size)
        cbs = callbacks_module.CallbackList(
            callbacks or [], self, {"epochs": 1, "steps": iterator.num_batches,
                                    "verbose": verbose})
        logs = self._evaluate_loop(iterator, verbose, cbs)
        return logs if return_dict else self._flat_logs(logs)

    def _inference_iterator(self, x: Any, y: Any, sample_weight: Any, batch_size: Any,
                            steps: Any, what: str) -> Any:
        """The data of ``evaluate`` / ``predict``, read once, in order."""
        batch_size = _positive_int_or_none(batch_size, "batch_size")
        steps = _positive_int_or_none(steps, "steps")
        adapter = data_adapters.get_data_adapter(x, y, sample_weight, batch_size=batch_size,
                                                 steps=steps)
        if isinstance(adapter, data_adapters.ArrayDataAdapter):
            if adapter.n_samples == 0 and what == "evaluate":
                raise ValueError("Invalid value for argument `x`: no samples to evaluate.")
            if what == "evaluate" and adapter.y is None:
                raise ValueError("Invalid value for argument `y`: expected targets, "
                                 "received None.")
            self._flat_inputs(_first_rows(adapter.x))
        elif adapter.num_batches is None and isinstance(
                adapter, data_adapters.PyDatasetAdapter) and steps is None:
            raise ValueError(f"Invalid value for argument `steps`: `x` is an endless PyDataset "
                             f"(its num_batches is None), so {what} needs `steps`; received "
                             "steps=None.")
        iterator = data_adapters.EpochIterator(adapter, steps)
        iterator.reset()
        return iterator

    @with_training_environment
    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = "auto",
                steps: int | None = None, callbacks: list | None = None) -> Any:
        """The model's outputs for ``x``, computed ``batch_size`` samples at a
        time (a list or dict of arrays for several outputs). ``x`` may also
        be a generator or a PyDataset (their targets are ignored); ``steps``
        limits the number of batches."""
        verbose = _verbosity(verbose)
        iterator = self._inference_iterator(x, None, None, batch_size, steps, "predict")
        verbose, callbacks = self._distributed_begin("predict", verbose, callbacks, batch_size)
        dist = getattr(self, "_distribution", None)
        progbar = Progbar(iterator.num_batches or 0, verbose)
        cbs = callbacks_module.CallbackList(
            callbacks or [], self, {"epochs": 1, "steps": iterator.num_batches,
                                    "verbose": verbose})
        cbs.on_predict_begin({})
        pieces: list[list] = []
        plan = None
        n_steps = 0
        self.stop_predicting = False
        for step, (xb, _, _) in iterator.epoch():
            cbs.on_predict_batch_begin(step, {})
            if dist is not None:
                outputs, plan = dist.predict_batch(self, xb)
            else:
                arrays, structure = self._flat_inputs(xb)
                plan = self._plan_for(arrays, structure, False)
                outputs = inference_outputs(plan, arrays)
            pieces.append(outputs)
            n_steps = step + 1
            cbs.on_predict_batch_end(step, {"outputs": unflatten(
                outputs, plan.function.output_structure)})
            progbar.total = iterator.num_batches or n_steps
            progbar.update(n_steps, {}, done=False)
            if self.stop_predicting:
                break
        progbar.total = n_steps
        progbar.update(n_steps, {}, done=True)
        progbar.summary(n_steps, {})
        cbs.on_predict_end({})
        if plan is None:
            adapter = iterator.adapter
            if not isinstance(adapter, data_adapters.ArrayDataAdapter):
                raise ValueError("Invalid value for argument `x`: the data yielded no batches "
                                 "to predict.")
            first, structure = self._flat_inputs(_first_rows(adapter.x))
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

    def predict_on_batch(self, x: Any) -> Any:
        """The outputs for one batch ``x``, as ``predict`` on it alone."""
        outputs = programmed_call(self, x)
        return outputs if outputs is not None else self._predict_on_batch(x)

    @with_training_environment(per_batch=True)
    def _predict_on_batch(self, x: Any) -> Any:
        arrays, structure = self._flat_inputs(_as_data(x, "x"))
        plan = self._plan_for(arrays, structure, False)
        return unflatten(inference_outputs(plan, arrays), plan.function.output_structure)

    @with_training_environment(per_batch=True)
    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """The loss and metrics of one batch, as ``evaluate`` on it alone."""
        self._require_compiled("test_on_batch")
        x = _as_data(x, "x")
        return self.evaluate(x, y, batch_size=max(_batch_rows(x), 1), verbose=0,
                             sample_weight=sample_weight, return_dict=return_dict)


"""Callbacks: the hooks fit / evaluate / predict call and in which order,
History, EarlyStopping, ModelCheckpoint, TerminateOnNaN, model.stop_training.

The monitored values are injected by a callback placed first in the list
(callbacks share the epoch's ``logs`` dict), so the epoch at which Keras'
rules stop or save is known in advance.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest

import fastconv
from fastconv import callbacks, layers, models


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def tiny_model() -> models.Sequential:
    model = models.Sequential([fastconv.Input((3,)), layers.Dense(4, activation="relu"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def tiny_data(n: int = 5):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 2, n)


def inject(name: str, values: list[float]) -> callbacks.LambdaCallback:
    """Sets logs[name] = values[epoch] at each epoch end."""
    return callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update({name: values[epoch]}))


class WeightsAtEpochEnd(callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(self.model.get_weights())


def same_weights(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------
# hooks


def test_lambda_callback_hooks_order_and_arguments():
    events, batch_logs, epoch_logs, end_logs = [], [], [], []

    def on_batch_end(batch, logs):
        events.append(("batch_end", batch))
        batch_logs.append(dict(logs))

    def on_epoch_end(epoch, logs):
        events.append(("epoch_end", epoch))
        epoch_logs.append(dict(logs))

    hooks = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin",)),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch)),
        on_batch_begin=lambda batch, logs: events.append(("batch_begin", batch)),  # alias
        on_train_batch_end=on_batch_end,
        on_epoch_end=on_epoch_end,
        on_train_end=lambda logs: (events.append(("train_end",)), end_logs.append(logs)),
    )
    model = tiny_model()
    x, y = tiny_data(5)
    history = model.fit(x, y, batch_size=2, epochs=2, callbacks=[hooks], verbose=0)

    expected = [("train_begin",)]
    for epoch in range(2):
        expected.append(("epoch_begin", epoch))
        for batch in range(3):  # 5 samples in batches of 2
            expected += [("batch_begin", batch), ("batch_end", batch)]
        expected.append(("epoch_end", epoch))
    expected.append(("train_end",))
    assert events == expected
    assert all(sorted(logs) == ["accuracy", "loss"] for logs in batch_logs)
    # The last batch's running means are the epoch's values.
    assert [batch_logs[2]["loss"], batch_logs[5]["loss"]] == history.history["loss"]
    assert [logs["loss"] for logs in epoch_logs] == history.history["loss"]
    assert [logs["accuracy"] for logs in epoch_logs] == history.history["accuracy"]
    assert end_logs == [epoch_logs[-1]]


def test_evaluate_and_predict_hooks():
    events = []

    def recorder(name):
        # (logs,) or (batch, logs): keep the hook's name and the batch index.
        return lambda *args: events.append((name, *args[:-1]))

    names = ("on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
             "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end",
             "on_predict_end")
    record = {name: recorder(name) for name in names}
    model = tiny_model()
    x, y = tiny_data(5)
    model.evaluate(x, y, batch_size=4, callbacks=[callbacks.LambdaCallback(**record)], verbose=0)
    model.predict(x, batch_size=4, callbacks=[callbacks.LambdaCallback(**record)], verbose=0)
    assert events == [
        ("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
        ("on_test_batch_begin", 1), ("on_test_batch_end", 1), ("on_test_end",),
        ("on_predict_begin",), ("on_predict_batch_begin", 0), ("on_predict_batch_end", 0),
        ("on_predict_batch_begin", 1), ("on_predict_batch_end", 1), ("on_predict_end",)]


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="on_epoch_finish"):
        callbacks.LambdaCallback(on_epoch_finish=print)


def test_callbacks_get_the_model_and_params():
    seen = {}

    class Probe(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["model"], seen["params"] = self.model, dict(self.params)

    model = tiny_model()
    x, y = tiny_data(5)
    model.fit(x, y, batch_size=2, epochs=3, callbacks=[Probe()], verbose=0)
    assert seen["model"] is model
    assert seen["params"] == {"epochs": 3, "steps": 3, "verbose": 0}


def test_history_records_every_epoch():
    model = tiny_model()
    x, y = tiny_data(6)
    history = model.fit(x, y, batch_size=3, epochs=4, verbose=0)
    assert isinstance(history, callbacks.History)
    assert history.epoch == [0, 1, 2, 3]
    assert set(history.history) == {"loss", "accuracy"}
    assert all(len(v) == 4 and all(isinstance(f, float) for f in v)
               for v in history.history.values())
    # A second fit starts a new History.
    again = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert again is not history and again.epoch == [0] and model.history is again


# ----------------------------------------------------------------------------
# stopping


def test_stop_training_set_at_epoch_end_stops_after_that_epoch():
    model = tiny_model()
    x, y = tiny_data(5)
    stopper = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    history = model.fit(x, y, batch_size=2, epochs=10, callbacks=[stopper], verbose=0)
    assert history.epoch == [0, 1]


def test_stop_training_set_in_a_batch_ends_the_epoch_there():
    """Keras checks model.stop_training after every batch."""
    model = tiny_model()
    x, y = tiny_data(10)
    batches = []

    def on_batch_end(batch, logs):
        batches.append(batch)
        model.stop_training = batch == 1

    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                        callbacks=[callbacks.LambdaCallback(on_train_batch_end=on_batch_end)])
    assert batches == [0, 1] and history.epoch == [0]


def test_terminate_on_nan_stops_at_the_first_bad_batch(capsys):
    model = tiny_model()
    x, y = tiny_data(10)
    x[:] = np.nan
    seen = []
    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False, callbacks=[
        callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch)),
        callbacks.TerminateOnNaN()])
    assert seen == [0]
    assert history.epoch == [0]
    assert np.isnan(history.history["loss"][0])
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_leaves_finite_training_alone():
    model = tiny_model()
    x, y = tiny_data(6)
    history = model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                        callbacks=[callbacks.TerminateOnNaN()])
    assert history.epoch == [0, 1, 2]


# ----------------------------------------------------------------------------
# EarlyStopping


def fit_with(values, *cbs, monitor="val_loss", epochs=8):
    model = tiny_model()
    x, y = tiny_data(6)
    weights = WeightsAtEpochEnd()
    history = model.fit(x, y, batch_size=3, epochs=epochs, verbose=0,
                        callbacks=[inject(monitor, values), weights, *cbs])
    return model, history, weights.snapshots


def test_early_stopping_waits_patience_epochs_without_improvement():
    # best 0.9 at epoch 1; epochs 2 and 3 do not improve -> stop after epoch 3.
    values = [1.0, 0.9, 0.95, 0.97, 0.5, 0.4, 0.3, 0.2]
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2)
    model, history, snapshots = fit_with(values, stop)
    assert history.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3
    assert same_weights(model.get_weights(), snapshots[3])  # not restored


def test_early_stopping_restores_the_best_weights():
    values = [1.0, 0.9, 0.95, 0.97, 0.5, 0.4, 0.3, 0.2]
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model, history, snapshots = fit_with(values, stop)
    assert history.epoch == [0, 1, 2, 3]
    assert stop.best_epoch == 1 and stop.best == 0.9
    assert same_weights(model.get_weights(), snapshots[1])
    assert not same_weights(snapshots[1], snapshots[3])


def test_early_stopping_patience_zero_stops_at_the_first_worse_epoch():
    values = [1.0, 0.8, 0.9, 0.1]
    _, history, _ = fit_with(values, callbacks.EarlyStopping(patience=0))
    assert history.epoch == [0, 1, 2]


def test_early_stopping_min_delta():
    # 0.95 is below 1.0 but not by min_delta=0.1: no improvement.
    values = [1.0, 0.95, 0.93, 0.5]
    stop = callbacks.EarlyStopping(patience=2, min_delta=0.1)
    _, history, _ = fit_with(values, stop)
    assert history.epoch == [0, 1, 2]


@pytest.mark.parametrize("mode, monitor, expected_epochs", [
    ("max", "val_acc", [0, 1, 2]),   # 0.5 -> 0.6 improves, 0.55 does not
    ("auto", "val_acc", [0, 1, 2]),  # "acc" in the name: maximised
    ("min", "val_acc", [0, 1]),      # 0.6 > 0.5 is already worse
])
def test_early_stopping_mode(mode, monitor, expected_epochs):
    values = [0.5, 0.6, 0.55, 0.58, 0.9, 0.9, 0.9, 0.9]
    stop = callbacks.EarlyStopping(monitor=monitor, patience=1, mode=mode)
    _, history, _ = fit_with(values, stop, monitor=monitor)
    assert history.epoch == expected_epochs


def test_early_stopping_rejects_a_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        callbacks.EarlyStopping(mode="largest")


def test_early_stopping_warns_when_the_monitor_is_missing():
    model = tiny_model()
    x, y = tiny_data(4)
    with pytest.warns(UserWarning, match="val_loss"):
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()])
    assert history.epoch == [0, 1]


# ----------------------------------------------------------------------------
# ModelCheckpoint


def test_model_checkpoint_every_epoch_with_formatted_names(tmp_path):
    pattern = str(tmp_path / "model-{epoch:02d}-{loss:.3f}.keras")
    _, history, snapshots = fit_with([0.0] * 3, callbacks.ModelCheckpoint(pattern),
                                     epochs=3)
    names = sorted(os.listdir(tmp_path))
    assert names == [f"model-{e + 1:02d}-{history.history['loss'][e]:.3f}.keras"
                     for e in range(3)]
    loaded = models.load_model(tmp_path / names[1])
    assert same_weights(loaded.get_weights(), snapshots[1])


def test_model_checkpoint_save_best_only(tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}.keras")
    checkpoint = callbacks.ModelCheckpoint(pattern, monitor="val_loss", save_best_only=True)
    _, _, snapshots = fit_with([3.0, 2.0, 2.5, 1.0], checkpoint, epochs=4)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.keras", "ckpt-02.keras", "ckpt-04.keras"]
    for epoch in (1, 2, 4):
        loaded = models.load_model(tmp_path / f"ckpt-{epoch:02d}.keras")
        assert same_weights(loaded.get_weights(), snapshots[epoch - 1])


def test_model_checkpoint_save_best_only_to_one_file_keeps_the_best(tmp_path):
    path = tmp_path / "best.keras"
    checkpoint = callbacks.ModelCheckpoint(str(path), monitor="val_accuracy",
                                           save_best_only=True, mode="max")
    _, _, snapshots = fit_with([0.5, 0.7, 0.6, 0.65], checkpoint, monitor="val_accuracy",
                               epochs=4)
    assert same_weights(models.load_model(path).get_weights(), snapshots[1])
    assert checkpoint.best == 0.7


def test_model_checkpoint_save_weights_only(tmp_path):
    pattern = str(tmp_path / "w-{epoch}.weights.h5")
    checkpoint = callbacks.ModelCheckpoint(pattern, save_weights_only=True)
    model, _, snapshots = fit_with([0.0] * 2, checkpoint, epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["w-1.weights.h5", "w-2.weights.h5"]
    # Keras 3's HDF5 weights file: the weights at the end of epoch 1.
    assert (tmp_path / "w-1.weights.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    model.load_weights(tmp_path / "w-1.weights.h5")
    assert same_weights(model.get_weights(), snapshots[0])


def test_model_checkpoint_full_model_keeps_the_compile_settings(tmp_path):
    path = tmp_path / "m.keras"
    fit_with([0.0], callbacks.ModelCheckpoint(str(path)), epochs=1)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    assert config["compile_config"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert config["compile_config"]["metrics"] == ["accuracy"]


# ----------------------------------------------------------------------------
# Keras 3's constructor arguments, read from its source where it is mirrored

KERAS_REPO = "/work/.mirror/keras-team+keras/repo"
KERAS_CALLBACKS = {
    "EarlyStopping": "early_stopping", "ModelCheckpoint": "model_checkpoint",
    "ReduceLROnPlateau": "reduce_lr_on_plateau", "LearningRateScheduler":
    "learning_rate_scheduler", "CSVLogger": "csv_logger", "BackupAndRestore":
    "backup_and_restore", "TerminateOnNaN": "terminate_on_nan", "ProgbarLogger":
    "progbar_logger", "History": "history",
}


NO_DEFAULT = object()


def keras_init_arguments(class_name: str, module: str) -> list[tuple[str, object]]:
    try:
        source = subprocess.run(
            ["git", "-C", KERAS_REPO, "show", f"HEAD:keras/src/callbacks/{module}.py"],
            capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("Keras' source is not mirrored here")
    cls = next(node for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.ClassDef) and node.name == class_name)
    init = next(node for node in cls.body
                if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    names = [a.arg for a in init.args.args[1:]]
    defaults = [ast.literal_eval(d) for d in init.args.defaults]
    return list(zip(names, [NO_DEFAULT] * (len(names) - len(defaults)) + defaults))


@pytest.mark.parametrize("class_name", sorted(KERAS_CALLBACKS))
def test_constructor_arguments_are_keras(class_name):
    expected = keras_init_arguments(class_name, KERAS_CALLBACKS[class_name])
    parameters = [p for p in inspect.signature(getattr(callbacks, class_name)).parameters
                  .values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    ours = [(p.name, NO_DEFAULT if p.default is p.empty else p.default) for p in parameters]
    assert ours == expected

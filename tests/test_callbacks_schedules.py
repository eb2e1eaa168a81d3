"""LearningRateScheduler, ReduceLROnPlateau, EarlyStopping's Keras options,
CSVLogger, ProgbarLogger and the Keras callbacks fastconv does not offer.

Monitored values are injected by a callback placed first in the list
(callbacks share the epoch's logs), so every learning rate, stop and CSV row
below is worked out by hand from Keras 3's rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv
from fastconv import callbacks, layers, models, optimizers


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def tiny_model(optimizer=None) -> models.Sequential:
    model = models.Sequential([fastconv.Input((3,)), layers.Dense(4, activation="relu"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer or optimizers.SGD(0.1),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(n: int = 6):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 2, n)


def inject(name: str, values: list) -> callbacks.LambdaCallback:
    return callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update({name: values[epoch]}))


def fit(*cbs, epochs: int, model=None, **kwargs):
    model = model or tiny_model()
    x, y = tiny_data()
    kwargs.setdefault("verbose", 0)
    history = model.fit(x, y, batch_size=3, epochs=epochs, callbacks=list(cbs), **kwargs)
    return model, history


# ----------------------------------------------------------------------------
# LearningRateScheduler


def test_scheduler_with_epoch_and_rate_sets_each_epochs_rate():
    seen = []
    record = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(model.optimizer.learning_rate))
    model = tiny_model(optimizers.SGD(0.1))
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr / 2)
    _, history = fit(schedule, record, epochs=4, model=model)
    assert seen == [0.1, 0.05, 0.025, 0.0125]
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025, 0.0125]
    assert model.optimizer.learning_rate == 0.0125


def test_scheduler_with_epoch_only():
    schedule = callbacks.LearningRateScheduler(lambda epoch: 0.5 ** (epoch + 1))
    _, history = fit(schedule, epochs=3)
    assert history.history["learning_rate"] == [0.5, 0.25, 0.125]


def test_scheduled_rate_is_the_rate_the_optimizer_steps_with():
    """One epoch at a scheduled 0.05 equals one epoch of SGD(0.05)."""
    fastconv.utils.set_random_seed(3)
    scheduled = tiny_model(optimizers.SGD(0.1))
    fastconv.utils.set_random_seed(3)
    plain = tiny_model(optimizers.SGD(0.05))
    fit(callbacks.LearningRateScheduler(lambda epoch: 0.05), epochs=1, model=scheduled,
        shuffle=False)
    fit(epochs=1, model=plain, shuffle=False)
    assert all(np.array_equal(a, b)
               for a, b in zip(scheduled.get_weights(), plain.get_weights()))


def test_scheduler_verbose_message(capsys):
    fit(callbacks.LearningRateScheduler(lambda epoch: 0.25, verbose=1), epochs=1)
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.25." in \
        capsys.readouterr().out


def test_scheduler_rejects_a_non_float_rate_and_a_non_callable():
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        fit(callbacks.LearningRateScheduler(lambda epoch: 1), epochs=1)
    with pytest.raises(TypeError, match="`schedule`"):
        callbacks.LearningRateScheduler(0.1)


# ----------------------------------------------------------------------------
# ReduceLROnPlateau


def test_reduce_lr_after_patience_epochs_without_improvement():
    # best 0.9 at epoch 1; epochs 2, 3 stall -> 0.05 after epoch 3; epochs 4, 5
    # stall -> 0.025 after epoch 5. The logged rate is the one of the epoch.
    values = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5]
    reduce = callbacks.ReduceLROnPlateau(factor=0.5, patience=2)
    model, history = fit(inject("val_loss", values), reduce, epochs=7)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025]
    assert model.optimizer.learning_rate == 0.025


def test_reduce_lr_cooldown():
    # patience 1: epoch 1 stalls -> 0.05; epochs 2 and 3 are the cooldown
    # (counter 2 -> 1 -> 0), epoch 3 counts again -> 0.025, and so on.
    reduce = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, cooldown=2)
    _, history = fit(inject("loss", [1.0] * 6), reduce, epochs=6)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert reduce.cooldown_counter == 2


def test_reduce_lr_min_delta_and_min_lr():
    # 0.95 beats 1.0 by less than min_delta=0.1: a stall. 0.1 * 0.1 = 0.01 is
    # below min_lr, so 0.05; 0.05 is not above float32(0.05): no more reductions.
    reduce = callbacks.ReduceLROnPlateau(factor=0.1, patience=1, min_delta=0.1, min_lr=0.05)
    model, history = fit(inject("val_loss", [1.0, 0.95, 0.93, 0.92]), reduce, epochs=4)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05]
    assert model.optimizer.learning_rate == 0.05


def test_reduce_lr_mode_max():
    reduce = callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1)
    _, history = fit(inject("val_accuracy", [0.5, 0.7, 0.6, 0.8]), reduce, epochs=4)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.1, 0.05]


def test_reduce_lr_verbose_message_and_missing_monitor(capsys):
    fit(inject("val_loss", [1.0, 1.0]),
        callbacks.ReduceLROnPlateau(factor=0.5, patience=1, verbose=1), epochs=2)
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in \
        capsys.readouterr().out
    with pytest.warns(UserWarning, match="conditioned on metric `val_loss`"):
        _, history = fit(callbacks.ReduceLROnPlateau(), epochs=1)
    assert history.history["learning_rate"] == [0.1]


def test_auto_mode_needs_a_known_metric():
    with pytest.raises(ValueError, match="mode='max'"):
        fit(inject("val_score", [1.0]), callbacks.ReduceLROnPlateau(monitor="val_score"),
            epochs=1)
    # An explicit mode needs no inference.
    fit(inject("val_score", [1.0]), callbacks.ReduceLROnPlateau(monitor="val_score",
                                                                mode="max"), epochs=1)


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 1.0}, "factor >= 1.0"),
    ({"factor": -0.5}, "`factor`"),
    ({"patience": -1}, "`patience`"),
    ({"cooldown": 1.5}, "`cooldown`"),
    ({"min_lr": -1.0}, "`min_lr`"),
    ({"mode": "lowest"}, "`mode`"),
    ({"min_delta": "small"}, "`min_delta`"),
])
def test_reduce_lr_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.ReduceLROnPlateau(**kwargs)


# ----------------------------------------------------------------------------
# EarlyStopping: Keras' baseline, start_from_epoch, restore_best_weights


def test_early_stopping_baseline_stops_unless_it_is_beaten():
    # Without baseline: best 1.0, epochs 1 and 2 stall -> stop after epoch 2.
    # With baseline 0.5, epoch 0 improves on nothing it must beat, so the
    # counter keeps its 1 and reaches patience 2 at epoch 1.
    rising = [1.0, 1.1, 1.2, 1.3, 1.4]
    _, history = fit(inject("val_loss", rising), callbacks.EarlyStopping(patience=2), epochs=5)
    assert history.epoch == [0, 1, 2]
    _, history = fit(inject("val_loss", rising),
                     callbacks.EarlyStopping(patience=2, baseline=0.5), epochs=5)
    assert history.epoch == [0, 1]


def test_early_stopping_start_from_epoch():
    rising = [1.0, 2.0, 3.0, 4.0, 5.0]
    _, history = fit(inject("val_loss", rising), callbacks.EarlyStopping(), epochs=5)
    assert history.epoch == [0, 1]
    stop = callbacks.EarlyStopping(start_from_epoch=2)
    _, history = fit(inject("val_loss", rising), stop, epochs=5)
    assert history.epoch == [0, 1, 2, 3] and stop.best == 3.0


def test_early_stopping_restores_the_first_epoch_when_nothing_beats_the_baseline():
    snapshots = []
    keep = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    model = tiny_model()
    stop = callbacks.EarlyStopping(patience=2, baseline=0.5, restore_best_weights=True,
                                   verbose=1)
    fit(inject("val_loss", [1.0, 1.1, 1.2]), keep, stop, epochs=3, model=model)
    assert stop.stopped_epoch == 1 and stop.best_epoch == 0
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), snapshots[0]))


@pytest.mark.parametrize("kwargs, error", [
    ({"patience": -1}, ValueError), ({"start_from_epoch": -2}, ValueError),
    ({"baseline": "low"}, ValueError), ({"restore_best_weights": "yes"}, TypeError),
    ({"monitor": ""}, ValueError),
])
def test_early_stopping_bad_arguments(kwargs, error):
    with pytest.raises(error, match=f"`{next(iter(kwargs))}`"):
        callbacks.EarlyStopping(**kwargs)


# ----------------------------------------------------------------------------
# CSVLogger


def read(path) -> str:
    with open(path, newline="") as f:
        return f.read()


def test_csv_logger_writes_keras_columns_and_rows(tmp_path):
    path = tmp_path / "log.csv"
    x, y = tiny_data()
    model = tiny_model()
    history = model.fit(x, y, batch_size=3, epochs=3, verbose=0, validation_data=(x, y),
                        callbacks=[callbacks.CSVLogger(path)])
    h = history.history
    rows = [f"{e},{h['accuracy'][e]},{h['loss'][e]},{h['val_accuracy'][e]},{h['val_loss'][e]}"
            for e in range(3)]
    assert read(path) == "\r\n".join(["epoch,accuracy,loss,val_accuracy,val_loss", *rows, ""])


def test_csv_logger_adds_val_columns_as_na_and_the_learning_rate(tmp_path):
    path = tmp_path / "log.csv"
    _, history = fit(callbacks.LearningRateScheduler(lambda epoch: 0.5),
                     callbacks.CSVLogger(path, separator=";"), epochs=2)
    h = history.history
    assert read(path).split("\r\n") == [
        "epoch;accuracy;learning_rate;loss;val_accuracy;val_learning_rate;val_loss",
        f"0;{h['accuracy'][0]};0.5;{h['loss'][0]};NA;NA;NA",
        f"1;{h['accuracy'][1]};0.5;{h['loss'][1]};NA;NA;NA", ""]


def test_csv_logger_append_keeps_one_header_and_overwrite_starts_again(tmp_path):
    path = tmp_path / "log.csv"
    fit(callbacks.CSVLogger(path, append=True), epochs=2)
    fit(callbacks.CSVLogger(path, append=True), epochs=1)
    lines = read(path).split("\r\n")
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert [line.split(",")[0] for line in lines[1:-1]] == ["0", "1", "0"]
    fit(callbacks.CSVLogger(path), epochs=1)
    assert len(read(path).split("\r\n")) == 3  # header, one row, ""


def test_csv_logger_flushes_every_epoch(tmp_path):
    path = tmp_path / "log.csv"
    lines_seen = []
    peek = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: lines_seen.append(read(path).count("\r\n")))
    fit(callbacks.CSVLogger(path), peek, epochs=3)
    assert lines_seen == [2, 3, 4]


def test_csv_logger_writes_lists_as_keras_does(tmp_path):
    path = tmp_path / "log.csv"
    fit(inject("scores", [np.array([1, 2])]), callbacks.CSVLogger(path), epochs=1)
    # Keras quotes the list itself, and the csv module quotes those quotes.
    assert '"""[1, 2]"""' in read(path)


@pytest.mark.parametrize("kwargs, error", [
    ({"filename": ""}, ValueError), ({"filename": 3}, ValueError),
    ({"filename": "a.csv", "separator": ",,"}, ValueError),
    ({"filename": "a.csv", "append": 1}, TypeError),
])
def test_csv_logger_bad_arguments(kwargs, error):
    with pytest.raises(error, match="Invalid value for argument"):
        callbacks.CSVLogger(**kwargs)


# ----------------------------------------------------------------------------
# ProgbarLogger


def bar_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "/step" in line]


def test_progbar_logger_prints_fits_progress_once(capsys):
    fit(epochs=2, verbose=1)
    default = capsys.readouterr().out
    fit(callbacks.ProgbarLogger(), epochs=2, verbose=1)
    explicit = capsys.readouterr().out
    for out in (default, explicit):
        assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1
    steps = [[line.split()[0] for line in bar_lines(out)] for out in (default, explicit)]
    assert steps[0] == steps[1] and steps[1].count("2/2") == 2


def test_progbar_logger_follows_fits_verbose(capsys):
    fit(callbacks.ProgbarLogger(), epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    fit(callbacks.ProgbarLogger(), epochs=3, verbose=2)
    lines = bar_lines(capsys.readouterr().out)
    assert len(lines) == 3 and all(line.startswith("2/2 - ") for line in lines)


def test_progbar_logger_shows_what_earlier_callbacks_logged(capsys):
    # Keras prints the epoch line at the logger's on_epoch_end, after the
    # scheduler has added the learning rate; one epoch prints no "Epoch 1/1".
    fit(callbacks.LearningRateScheduler(lambda epoch: 0.5), callbacks.ProgbarLogger(),
        epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/1" not in out
    assert "learning_rate: 0.5000" in out


def test_progbar_logger_in_evaluate_and_predict_leaves_the_model_printing(capsys):
    model = tiny_model()
    x, y = tiny_data()
    model.evaluate(x, y, verbose=1, callbacks=[callbacks.ProgbarLogger()])
    model.predict(x, verbose=1, callbacks=[callbacks.ProgbarLogger()])
    assert len(bar_lines(capsys.readouterr().out)) == 2


# ----------------------------------------------------------------------------
# Keras callbacks fastconv does not offer


@pytest.mark.parametrize("name, args", [
    ("TensorBoard", ("logs",)), ("RemoteMonitor", ()), ("SwapEMAWeights", ()),
    ("OrbaxCheckpoint", ("ckpt",)),
])
def test_unsupported_callbacks_fail_at_construction(name, args):
    with pytest.raises(NotImplementedError, match=f"{name} is not supported by fastconv"):
        getattr(callbacks, name)(*args)
    assert getattr(fastconv.keras.callbacks, name) is getattr(callbacks, name)


def test_callback_batch_aliases_and_terminate_on_nan_raise_error():
    seen = []

    class Batches(callbacks.Callback):  # Keras' on_batch_end runs for training batches
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)

    fit(Batches(), epochs=1)
    assert seen == [0, 1]
    model = tiny_model()
    x, y = tiny_data()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        model.fit(np.full_like(x, math.nan), y, verbose=0,
                  callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


def test_keras_docstring_example_of_the_scheduler():
    """keras.callbacks.LearningRateScheduler's example: 0.01 for ten epochs,
    then times exp(-0.1) for five: round(lr, 5) == 0.00607."""
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * fastconv.ops.exp(-0.1)

    model = models.Sequential([layers.Dense(10)])
    model.compile(optimizers.SGD(), loss="mse")
    assert round(model.optimizer.learning_rate, 5) == 0.01
    # Keras' inputs are 0..99, on which SGD diverges; the rates do not depend on them.
    model.fit(np.arange(100).reshape(5, 20) / 100.0, np.zeros((5, 10)), epochs=15, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(scheduler)])
    assert round(model.optimizer.learning_rate, 5) == 0.00607

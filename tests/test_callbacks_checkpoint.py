"""ModelCheckpoint (batch frequency, file names, Keras' extension rules,
atomic writes) and BackupAndRestore (an interrupted fit resumed gives the
weights of an uninterrupted one, bit for bit)."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

import fastconv
from fastconv import callbacks, layers, models, optimizers
from fastconv.utils import set_random_seed


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def tiny_model(optimizer=None, dropout: float = 0.0) -> models.Sequential:
    stack = [fastconv.Input((3,)), layers.Dense(4, activation="relu")]
    if dropout:
        stack.append(layers.Dropout(dropout))
    model = models.Sequential([*stack, layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer or optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(n: int = 6):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 2, n)


def inject(name: str, values: list) -> callbacks.LambdaCallback:
    return callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.update({name: values[epoch]}))


def same_weights(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------
# ModelCheckpoint


def test_checkpoint_every_n_batches_across_epochs(tmp_path):
    # 6 samples in batches of 2: batches 0, 1, 2 per epoch; every 2nd batch
    # counted across epochs is saved: (epoch 1, batch 2), (2, 1), (2, 3).
    model = tiny_model()
    x, y = tiny_data()
    snapshots = {}
    keep = callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: snapshots.update(
        {(len(epochs), batch + 1): model.get_weights()}))
    epochs: list[int] = []
    count = callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.keras"),
                                           save_freq=2)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[count, keep, checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["b-1-2.keras", "b-2-1.keras", "b-2-3.keras"]
    for epoch, batch in ((1, 2), (2, 1), (2, 3)):
        loaded = models.load_model(tmp_path / f"b-{epoch}-{batch}.keras")
        assert same_weights(loaded.get_weights(), snapshots[(epoch, batch)])


def test_checkpoint_initial_value_threshold(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "c-{epoch}.keras"),
                                           save_best_only=True, initial_value_threshold=0.5)
    model = tiny_model()
    x, y = tiny_data()
    model.fit(x, y, epochs=4, verbose=0,
              callbacks=[inject("val_loss", [0.9, 0.6, 0.4, 0.45]), checkpoint])
    assert os.listdir(tmp_path) == ["c-3.keras"]
    assert checkpoint.best == 0.4


def test_checkpoint_saves_when_the_monitor_is_missing(tmp_path):
    model = tiny_model()
    x, y = tiny_data()
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(
            str(tmp_path / "m.keras"), save_best_only=True)])
    assert os.listdir(tmp_path) == ["m.keras"]


def test_checkpoint_verbose_messages(tmp_path, capsys):
    model = tiny_model()
    x, y = tiny_data()
    path = str(tmp_path / "m.keras")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[
        inject("val_loss", [0.5, 0.7]),
        callbacks.ModelCheckpoint(path, save_best_only=True, verbose=1)])
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from None to 0.50000, saving model to {path}" in out
    assert f"Epoch 1: finished saving model to {path}" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_checkpoint_unknown_format_field(tmp_path):
    model = tiny_model()
    x, y = tiny_data()
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            callbacks.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.keras"))])


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A save that fails halfway leaves the previous checkpoint intact."""
    path = tmp_path / "m.keras"
    model = tiny_model()
    x, y = tiny_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path))])
    before = path.read_bytes()
    writestr = zipfile.ZipFile.writestr

    def failing(self, name, data, *args, **kwargs):
        if name in ("weights.npz", "model.weights.h5"):
            raise OSError("disk full")
        return writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OSError, match="disk full"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path))])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.keras"]


@pytest.mark.parametrize("kwargs, match", [
    ({"filepath": "m.zip"}, "must end in `.keras`"),
    ({"filepath": "m.h5"}, "legacy HDF5"),
    ({"filepath": "m.keras", "save_weights_only": True}, "must end in `.weights.h5`"),
    ({"filepath": "w.npz", "save_weights_only": True}, "must end in `.weights.h5`"),
    ({"filepath": "m.keras", "save_freq": "batch"}, "`save_freq`"),
    ({"filepath": "m.keras", "save_freq": 0}, "`save_freq`"),
    ({"filepath": "m.keras", "mode": "up"}, "`mode`"),
])
def test_checkpoint_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.ModelCheckpoint(**kwargs)


def test_checkpoint_into_an_existing_directory(tmp_path):
    (tmp_path / "d.keras").mkdir()
    model = tiny_model()
    x, y = tiny_data()
    with pytest.raises(OSError, match="non-directory filepath"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "d.keras"))])


# ----------------------------------------------------------------------------
# BackupAndRestore


class Interrupt(callbacks.Callback):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def run(model, *cbs, epochs=4, shuffle=False):
    x, y = tiny_data()
    return model.fit(x, y, batch_size=2, epochs=epochs, verbose=0, shuffle=shuffle,
                     callbacks=list(cbs))


def backup_metadata(path) -> dict:
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as npz:
        return json.loads(str(npz["metadata"]))


def test_resumed_fit_equals_an_uninterrupted_one(tmp_path):
    backup = tmp_path / "backup"
    set_random_seed(1)
    reference = tiny_model()
    run(reference)

    set_random_seed(1)
    interrupted = tiny_model()
    with pytest.raises(RuntimeError, match="interrupted"):
        run(interrupted, callbacks.BackupAndRestore(backup), Interrupt(2))
    assert os.listdir(backup) == ["latest.backup.npz"]
    assert backup_metadata(backup / "latest.backup.npz")["epoch"] == 2

    set_random_seed(7)  # another initialisation: the backup's weights replace it
    resumed = tiny_model()
    history = run(resumed, callbacks.BackupAndRestore(backup))
    assert history.epoch == [2, 3]
    assert same_weights(resumed.get_weights(), reference.get_weights())
    assert resumed.optimizer.iterations == reference.optimizer.iterations == 12
    assert not backup.exists()  # deleted once training completed
    # The next fit on the same model starts from epoch 0 again.
    assert run(resumed, epochs=1).epoch == [0]


def test_resume_with_shuffling_dropout_and_adam_is_bitwise_equal(tmp_path):
    """Restoring the random generator's state makes the shuffles and dropout
    masks of the resumed epochs those of the uninterrupted run."""
    backup = tmp_path / "backup"
    set_random_seed(2)
    reference = tiny_model(optimizers.Adam(0.01), dropout=0.5)
    run(reference, epochs=5, shuffle=True)

    set_random_seed(2)
    interrupted = tiny_model(optimizers.Adam(0.01), dropout=0.5)
    with pytest.raises(RuntimeError):
        run(interrupted, callbacks.BackupAndRestore(backup), Interrupt(3), epochs=5,
            shuffle=True)

    set_random_seed(99)
    resumed = tiny_model(optimizers.Adam(0.01), dropout=0.5)
    history = run(resumed, callbacks.BackupAndRestore(backup), epochs=5, shuffle=True)
    assert history.epoch == [3, 4]
    assert same_weights(resumed.get_weights(), reference.get_weights())


def test_resume_with_seeded_random_layers_is_bitwise_equal(tmp_path):
    """Seeded layers draw from generators of their own: the backup keeps
    their states, so the resumed epochs draw the masks and noise of the
    uninterrupted run."""
    def seeded():
        model = models.Sequential([
            fastconv.Input((3,)), layers.Dense(8, activation="relu"),
            layers.Dropout(0.5, seed=3), layers.GaussianNoise(0.3, seed=4),
            layers.Dense(2, activation="softmax")])
        model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        return model

    backup = tmp_path / "backup"
    set_random_seed(5)
    reference = seeded()
    run(reference, epochs=4, shuffle=True)
    set_random_seed(5)
    with pytest.raises(RuntimeError):
        run(seeded(), callbacks.BackupAndRestore(backup), Interrupt(2), epochs=4,
            shuffle=True)
    assert len(backup_metadata(backup / "latest.backup.npz")["layer_rngs"]) == 2
    set_random_seed(5)
    resumed = seeded()
    assert run(resumed, callbacks.BackupAndRestore(backup), epochs=4, shuffle=True
               ).epoch == [2, 3]
    assert same_weights(resumed.get_weights(), reference.get_weights())


def test_a_backup_of_another_model_is_refused(tmp_path):
    backup = tmp_path / "backup"
    model = models.Sequential([fastconv.Input((3,)), layers.Dense(4),
                               layers.Dropout(0.5, seed=3), layers.Dense(2)])
    model.compile("sgd", "mse")
    x, y = tiny_data()
    y = np.eye(2)[y]
    callback = callbacks.BackupAndRestore(backup, delete_checkpoint=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    other = models.Sequential([fastconv.Input((3,)), layers.Dense(4),
                               layers.Dropout(0.5), layers.Dense(2)])
    other.compile("sgd", "mse")
    with pytest.raises(ValueError, match="holds the generator of layer 1:"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.BackupAndRestore(backup)])


def test_backup_keeps_the_learning_rate(tmp_path):
    backup = tmp_path / "backup"
    model = tiny_model(optimizers.SGD(0.1))
    with pytest.raises(RuntimeError):
        run(model, callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
            callbacks.BackupAndRestore(backup), Interrupt(2))
    resumed = tiny_model(optimizers.SGD(0.1))
    run(resumed, callbacks.BackupAndRestore(backup), epochs=2)  # nothing left to run
    assert resumed.optimizer.learning_rate == 0.05


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    backup = tmp_path / "backup"
    set_random_seed(4)
    reference = tiny_model()
    run(reference)
    set_random_seed(4)
    with pytest.raises(RuntimeError):
        run(tiny_model(), callbacks.BackupAndRestore(backup, double_checkpoint=True),
            Interrupt(3))
    assert sorted(os.listdir(backup)) == ["latest.backup.npz", "latest.backup.npz.bkp"]
    assert backup_metadata(backup / "latest.backup.npz.bkp")["epoch"] == 2
    (backup / "latest.backup.npz").write_bytes(b"PK\x03\x04 damaged")
    resumed = tiny_model()
    history = run(resumed, callbacks.BackupAndRestore(backup, double_checkpoint=True))
    assert history.epoch == [2, 3]
    assert same_weights(resumed.get_weights(), reference.get_weights())


def test_a_damaged_backup_without_a_previous_one_is_an_error(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.backup.npz").write_bytes(b"not a backup")
    with pytest.raises(ValueError, match="not a fastconv training backup or is corrupt"):
        run(tiny_model(), callbacks.BackupAndRestore(backup))


def test_a_crash_while_backing_up_keeps_the_previous_backup(tmp_path, monkeypatch):
    backup = tmp_path / "backup"
    model = tiny_model()
    writes = []
    real_fsync = os.fsync

    def fsync(fd):
        writes.append(fd)
        if len(writes) == 2:  # the second backup, at the end of epoch 1
            raise OSError("power cut")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="power cut"):
        run(model, callbacks.BackupAndRestore(backup))
    assert os.listdir(backup) == ["latest.backup.npz"]
    assert backup_metadata(backup / "latest.backup.npz")["epoch"] == 1


def test_backup_every_n_batches_resumes_at_the_start_of_that_epoch(tmp_path):
    backup = tmp_path / "backup"
    model = tiny_model()
    snapshots = []
    keep = callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: snapshots.append(model.get_weights()))
    with pytest.raises(RuntimeError):
        # 3 batches per epoch; a backup after every 4th batch counted across
        # epochs: the only one at epoch 1, batch 0 (0-based), mid-epoch.
        run(model, keep, callbacks.BackupAndRestore(backup, save_freq=4), Interrupt(2))
    meta = backup_metadata(backup / "latest.backup.npz")
    assert (meta["epoch"], meta["batch"]) == (1, 0)
    seen = []
    resumed = tiny_model()
    run(resumed, callbacks.BackupAndRestore(backup, save_freq=4), callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append((epoch, resumed.get_weights()))),
        epochs=2)
    assert [epoch for epoch, _ in seen] == [1]
    assert same_weights(seen[0][1], snapshots[3])


def test_keep_the_backup_with_delete_checkpoint_false(tmp_path):
    backup = tmp_path / "backup"
    model = tiny_model()
    run(model, callbacks.BackupAndRestore(backup, delete_checkpoint=False), epochs=2)
    assert backup_metadata(backup / "latest.backup.npz")["epoch"] == 2
    # A finished run's backup makes the next fit to the same epochs a no-op.
    again = tiny_model()
    history = run(again, callbacks.BackupAndRestore(backup, delete_checkpoint=False), epochs=2)
    assert history.epoch == []
    assert same_weights(again.get_weights(), model.get_weights())


def test_delete_leaves_other_files_alone(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    run(tiny_model(), callbacks.BackupAndRestore(backup), epochs=1)
    assert os.listdir(backup) == ["notes.txt"]


def test_backup_of_another_model_is_refused(tmp_path):
    backup = tmp_path / "backup"
    run(tiny_model(), callbacks.BackupAndRestore(backup, delete_checkpoint=False), epochs=1)
    other = models.Sequential([fastconv.Input((3,)), layers.Dense(2, activation="softmax")])
    other.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="resumes the model it was written for"):
        run(other, callbacks.BackupAndRestore(backup))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backup_dir": ""}, ValueError, "`backup_dir`"),
    ({"backup_dir": None}, ValueError, "`backup_dir`"),
    ({"backup_dir": "b", "save_freq": False}, ValueError, "not supported"),
    ({"backup_dir": "b", "save_freq": "batch"}, ValueError, "`save_freq`"),
    ({"backup_dir": "b", "save_freq": -3}, ValueError, "`save_freq`"),
    ({"backup_dir": "b", "double_checkpoint": "yes"}, TypeError, "`double_checkpoint`"),
    ({"backup_dir": "b", "delete_checkpoint": 0}, TypeError, "`delete_checkpoint`"),
])
def test_backup_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        callbacks.BackupAndRestore(**kwargs)


def test_keras_docstring_example_of_backup_and_restore(tmp_path):
    """keras.callbacks.BackupAndRestore's example: interrupted at epoch 4 of
    10, the second fit runs the remaining 6."""
    backup = callbacks.BackupAndRestore(backup_dir=str(tmp_path / "backup"))
    model = models.Sequential([layers.Dense(10)])
    model.compile(optimizers.SGD(), loss="mse")
    model.build(input_shape=(None, 20))
    x, y = np.arange(100).reshape(5, 20) / 100.0, np.zeros((5, 10))
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=10, batch_size=1, verbose=0, callbacks=[backup, Interrupt(4)])
    history = model.fit(x, y, epochs=10, batch_size=1, verbose=0, callbacks=[backup])
    assert len(history.history["loss"]) == 6

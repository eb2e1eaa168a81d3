"""Callbacks that write the training state to disk: ModelCheckpoint (models
or weights to keep) and BackupAndRestore (a backup to resume an interrupted
fit from).

Every file is written to a temporary file in the target's directory and then
renamed over the target (fastconv.saving), so a crash while writing leaves
the previous file intact.
"""

from __future__ import annotations

import io
import json
import numbers
import os
import warnings
from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.callbacks.callback import Callback
from fastconv.callbacks.monitor import MonitorCallback
from fastconv.runtime import random as _random
from fastconv.saving import _DECODE_ERRORS, _atomic_write


def _save_freq(save_freq: Any, name: str) -> str | int:
    if save_freq == "epoch":
        return "epoch"
    if isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral) \
            or save_freq < 1:
        raise ValueError(f"Invalid value for argument `save_freq` of {name}: expected "
                         f"'epoch' or a positive int (a number of batches), received "
                         f"save_freq={save_freq!r}.")
    return int(save_freq)


class _BatchCounter:
    """Counts training batches across epochs and says when ``every`` have passed
    since the last time it said so (Keras' ``_should_save_on_batch``)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.since = 0
        self.last: int | None = None

    def due(self, batch: int) -> bool:
        if self.last is None or batch <= self.last:  # a new epoch began
            self.since += batch + 1
        else:
            self.since += batch - self.last
        self.last = batch
        if self.since >= self.every:
            self.since = 0
            return True
        return False


class ModelCheckpoint(MonitorCallback):
    """Saves the model (or its weights) every epoch or every ``save_freq``
    batches, or only when ``monitor`` improves with ``save_best_only``.

    Parameters
    ----------
    filepath : str or os.PathLike
        May hold format fields filled from ``epoch`` (counting from 1),
        ``batch`` (from 1, with an integer ``save_freq``) and the logs, e.g.
        ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``. As in Keras it must end in
        ``.keras`` (a full model, ``model.save``) or, with
        ``save_weights_only``, in ``.weights.h5`` (``model.save_weights``).
        fastconv writes its own formats under these names (a zip of JSON and
        .npz; an .npz of the weights), read back by
        ``fastconv.models.load_model`` and ``model.load_weights``; Keras' HDF5
        files are not written, and a full model to ``.h5`` is refused.
    monitor : str, default "val_loss"
    verbose : int, default 0
        1: print a line at each save or skipped save.
    save_best_only : bool, default False
        Save only when ``monitor`` improves on the best value so far (a
        filepath without format fields then always holds the best model).
        If ``monitor`` is missing from the logs, a warning is issued and the
        model is saved.
    save_weights_only : bool, default False
    mode : {"auto", "min", "max"}, default "auto"
    save_freq : "epoch" or int, default "epoch"
        An int saves after every that many training batches (counted across
        epochs), with the batch's logs.
    initial_value_threshold : float or None, default None
        With ``save_best_only``, the value to beat at the first save.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch",
                 initial_value_threshold: float | None = None) -> None:
        super().__init__(monitor, mode, initial_value_threshold)
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"Invalid value for argument `filepath`: expected a path, "
                            f"received filepath={filepath!r}.")
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = check_flag(save_best_only, "save_best_only")
        self.save_weights_only = check_flag(save_weights_only, "save_weights_only")
        self.save_freq = _save_freq(save_freq, "ModelCheckpoint")
        self._batches = _BatchCounter(self.save_freq) if self.save_freq != "epoch" else None
        self._current_epoch = 0
        if self.save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, "
                                 "the filepath provided must end in `.weights.h5` (Keras "
                                 f"weights format). Received: filepath={self.filepath}")
        elif self.filepath.endswith(".h5"):
            raise ValueError("ModelCheckpoint cannot save a full model in the legacy HDF5 "
                             "format, which fastconv does not support: use a filepath ending "
                             f"in `.keras`. Received: filepath={self.filepath}")
        elif not self.filepath.endswith(".keras"):
            raise ValueError("The filepath provided must end in `.keras` (Keras model "
                             f"format). Received: filepath={self.filepath}")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._batches is not None and self._batches.due(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _get_file_path(self, epoch: int, batch: int | None, logs: dict | None) -> str:
        logs = logs or {}
        fields = {"epoch": epoch + 1, **logs}
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {exc}") from None

    def _should_save(self, epoch: int, logs: dict | None, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        if self.monitor_op is None:  # a batch-level save before the first epoch end
            self._set_monitor_op()
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(value, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{value:.5f}, saving model to {filepath}")
            self.best = value
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise OSError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        if not self._should_save(epoch, logs, filepath):
            return
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


BACKUP_FORMAT = "fastconv.backup"
BACKUP_VERSION = 1


def _seeded_layers(model: Any) -> dict[str, Any]:
    """The layers drawing from a generator of their own (a ``seed``
    argument), by position and class: their states are part of a backup."""
    layers = model._unique_layers() if hasattr(model, "_unique_layers") else []
    return {f"{i}:{type(layer).__name__}": layer for i, layer in enumerate(layers)
            if getattr(layer, "_rng", None) is not None}


class BackupAndRestore(Callback):
    """Backs up the training state so that an interrupted ``fit`` resumes
    where it stopped.

    At the end of every epoch (or every ``save_freq`` batches) one file,
    ``backup_dir/latest.backup.npz``, is written atomically with the model's
    weights, the optimizer's state (its iteration count, slots and learning
    rate), the epoch to resume from and the states of fastconv's random
    generator and of the seeded layers' own generators. A crash while
    writing keeps the previous backup. When ``fit``
    starts with a backup present, the weights, optimizer state and generator
    are restored and fit starts at the saved epoch (``model._initial_epoch``,
    as in Keras); with the generator restored, a resumed run with shuffling
    and dropout gives the same weights, bit for bit, as an uninterrupted one.
    A backup taken in the middle of an epoch resumes at the start of that
    epoch, with the weights of the backup. When ``fit`` completes, the
    backup is deleted (``delete_checkpoint``).

    Under ``fastconv.distribute.MPIDataParallel`` rank 0 alone writes and
    deletes the backup, and every rank resumes from the files rank 0 reads.

    The model and ``compile`` arguments of the resumed run must be those of
    the interrupted one. The state of other callbacks (EarlyStopping's
    counters, for instance) is not saved, as in Keras.

    Parameters
    ----------
    backup_dir : str or os.PathLike
        A directory used by this callback alone.
    save_freq : "epoch" or int, default "epoch"
        An int backs up every that many batches. (Keras' ``False``, for
        preemption checkpointing only, is not supported.)
    double_checkpoint : bool, default False
        Keep the previous backup as well (``latest.backup.npz.bkp``); it is
        used when the latest one cannot be read.
    delete_checkpoint : bool, default True
        Delete the backup files (and ``backup_dir`` if that leaves it empty)
        when training ends.
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"Invalid value for argument `backup_dir`: expected a non-empty "
                             f"directory path, received backup_dir={backup_dir!r}.")
        if save_freq is False:
            raise ValueError("BackupAndRestore with save_freq=False (preemption "
                             "checkpointing) is not supported: pass save_freq='epoch' or a "
                             "number of batches.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = _save_freq(save_freq, "BackupAndRestore")
        self.double_checkpoint = check_flag(double_checkpoint, "double_checkpoint")
        self.delete_checkpoint = check_flag(delete_checkpoint, "delete_checkpoint")
        self._backup_path = os.path.join(self.backup_dir, "latest.backup.npz")
        self._prev_backup_path = self._backup_path + ".bkp"
        self._batches = _BatchCounter(self.save_freq) if self.save_freq != "epoch" else None
        self._current_epoch = 0
        self._last_batch_seen = 0

    # -- restore -----------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not getattr(self.model, "built", True):
            raise ValueError("To use the BackupAndRestore callback, your model must be built "
                             f"before you call `fit()`. Model {self.model} is unbuilt.")
        self._current_epoch = 0
        # Data-parallel ranks all resume from rank 0's files.
        strategy = getattr(self.model, "_distribution", None)
        backups = self._read_backups() if strategy is None else strategy.from_root(
            self._read_backups)
        for i, (path, data) in enumerate(backups):
            try:
                if isinstance(data, OSError):
                    raise data
                self._restore(path, data)
                return
            except (OSError, ValueError):
                if i == len(backups) - 1:  # the previous backup is the last resort
                    raise

    def _read_backups(self) -> list[tuple[str, bytes | OSError]]:
        """The backups present, the latest first: their bytes, or the error
        that reading one raised."""
        found: list[tuple[str, bytes | OSError]] = []
        for path in (self._backup_path, self._prev_backup_path):
            if os.path.exists(path):
                try:
                    with open(path, "rb") as f:
                        found.append((path, f.read()))
                except OSError as err:
                    found.append((path, err))
        return found

    def _writes_files(self) -> bool:
        strategy = getattr(self.model, "_distribution", None)
        return strategy is None or strategy.is_root

    def _restore(self, path: str, data: bytes) -> None:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(str(arrays.pop("metadata")))
            if meta.get("format") != BACKUP_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
        except _DECODE_ERRORS as exc:  # zip, npy or JSON decoding: the file is damaged
            raise ValueError(f"{path} is not a fastconv training backup or is corrupt: "
                             f"{exc}") from None
        weights = [arrays[k] for k in sorted(k for k in arrays if k.startswith("weight_"))]
        expected = [w.value for w in self.model.weights]
        if len(weights) != len(expected) or any(
                a.shape != b.shape for a, b in zip(weights, expected)):
            raise ValueError(f"{path} holds {len(weights)} weights of shapes "
                             f"{[a.shape for a in weights]}; the model has {len(expected)} of "
                             f"shapes {[b.shape for b in expected]}. A backup resumes the "
                             "model it was written for.")
        self.model.set_weights(weights)
        optimizer = getattr(self.model, "optimizer", None)
        state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        if optimizer is not None and state:
            optimizer.set_state(state)
        rate = meta.get("learning_rate")
        # Set only when it differs: a rate computed by a schedule from the
        # restored iterations is already right (and may not be settable).
        if optimizer is not None and rate is not None and float(optimizer.learning_rate) != rate:
            optimizer.learning_rate = rate
        rng = meta.get("rng")
        if rng is not None:
            generator = _random.generator()
            if rng.get("bit_generator") != type(generator.bit_generator).__name__:
                raise ValueError(f"{path} holds the state of a {rng.get('bit_generator')} "
                                 f"generator; fastconv's is a "
                                 f"{type(generator.bit_generator).__name__}.")
            generator.bit_generator.state = rng
        own = _seeded_layers(self.model)
        for key, state in (meta.get("layer_rngs") or {}).items():
            if key not in own:
                raise ValueError(f"{path} holds the generator of layer {key}, which this "
                                 "model has not: a backup resumes the model it was "
                                 "written for.")
            own[key]._rng.bit_generator.state = state
        self.model._initial_epoch = int(meta["epoch"])

    # -- back up -----------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._batches is not None and self._batches.due(batch):
            self._last_batch_seen = batch
            self._save_model()

    def _payload(self) -> bytes:
        arrays = {f"weight_{i:04d}": w.value for i, w in enumerate(self.model.weights)}
        optimizer = getattr(self.model, "optimizer", None)
        rate = None
        if optimizer is not None:
            arrays.update({f"optimizer/{k}": v for k, v in optimizer.get_state().items()})
            rate = float(optimizer.learning_rate)
        meta = {"format": BACKUP_FORMAT, "version": BACKUP_VERSION,
                "epoch": self._current_epoch, "batch": self._last_batch_seen,
                "learning_rate": rate, "rng": _random.generator().bit_generator.state,
                "layer_rngs": {key: layer._rng.bit_generator.state
                               for key, layer in _seeded_layers(self.model).items()}}
        arrays["metadata"] = np.array(json.dumps(meta))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def _save_model(self) -> None:
        if not self._writes_files():
            return
        payload = self._payload()
        if self.double_checkpoint and os.path.exists(self._backup_path):
            with open(self._backup_path, "rb") as f:
                previous = f.read()
            _atomic_write(self._prev_backup_path, True, lambda f: f.write(previous))
        _atomic_write(self._backup_path, True, lambda f: f.write(payload))

    def on_train_end(self, logs: dict | None = None) -> None:
        # Keras keeps `_initial_epoch` after fit; a later fit would then skip epochs.
        self.model._initial_epoch = None
        if not self.delete_checkpoint or not self._writes_files():
            return
        for path in (self._backup_path, self._prev_backup_path):
            if os.path.exists(path):
                os.unlink(path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:  # absent, or holding files of something else: left alone
            pass

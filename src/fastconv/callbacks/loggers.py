"""Callbacks that report progress: CSVLogger (one CSV row per epoch) and
ProgbarLogger (fit's progress lines, fastconv.training.progress)."""

from __future__ import annotations

import collections.abc
import csv
import os
from typing import Any

import numpy as np

from fastconv._validation import check_flag
from fastconv.callbacks.callback import Callback
from fastconv.training.progress import Progbar


def _csv_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
            isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Writes each epoch's logs as one row of a CSV file, as Keras does.

    The columns are ``epoch`` (counting from 0) and then the first epoch's
    log keys in sorted order; when those hold no ``val_`` key, the ``val_``
    twin of every key is added too (written ``NA`` while there is no
    validation). The file is flushed after every row, so it can be read
    while training runs, and closed at the end of training.

    Parameters
    ----------
    filename : str or os.PathLike
        The CSV file, e.g. ``"run/log.csv"``.
    separator : str, default ","
        One character separating the fields.
    append : bool, default False
        True: add to an existing file (its header is kept; one is written
        only if the file is empty or missing). False: overwrite it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)) or not os.fspath(filename):
            raise ValueError(f"Invalid value for argument `filename`: expected a file path, "
                             f"received filename={filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"Invalid value for argument `separator`: expected a "
                             f"one-character string, received separator={separator!r}.")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = check_flag(append, "append")
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        mode = "w"
        self.append_header = True
        if self.append:
            mode = "a"
            if os.path.exists(self.filename):
                with open(self.filename, newline="") as f:
                    self.append_header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        # newline="": the csv module writes its own "\r\n" line ends, as Keras' files have.
        self.csv_file = open(self.filename, mode, newline="")  # noqa: SIM115 (open until on_train_end)
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self.writer is None:
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys],
                                         delimiter=self.sep, dialect="excel")
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _csv_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _display_order(logs: dict) -> dict:
    """Training values first, then validation values, each sorted by name."""
    return dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0])))


class ProgbarLogger(Callback):
    """Prints fit's progress: ``Epoch k/N`` and the Keras progress bar.

    ``fit`` prints the same lines itself when no ProgbarLogger is among its
    callbacks; given one, fit leaves the printing to it (never twice), at the
    ``verbose`` level passed to fit: 1 a bar redrawn as batches complete, 2
    one line per epoch, 0 nothing. As in Keras, the epoch line is written at
    the callback's own ``on_epoch_end``, so it shows what the callbacks
    before it added to the logs (``learning_rate`` for instance), and
    ``Epoch k/N`` is printed only when N > 1. Outside fit (``evaluate``,
    ``predict``) the model prints its own progress and this callback does
    nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.progbar: Progbar | None = None
        self.target: int | None = None
        self.verbose = 1
        self.epochs = 1
        self.seen = 0
        self._in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self._in_fit = "steps" in params and "epochs" in params
        if self._in_fit:
            verbose = params.get("verbose", 1)
            self.verbose = 1 if verbose == "auto" else int(verbose)
            self.epochs = params["epochs"]
            self.target = params["steps"]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._in_fit:
            return
        self.seen = 0
        self.progbar = Progbar(self.target, self.verbose)
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.progbar is None:
            return
        self.seen = batch + 1
        self.progbar.update(self.seen, _display_order(logs or {}), done=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progbar is None:
            return
        ordered = _display_order(logs or {})
        self.progbar.update(self.target, ordered, done=True)
        self.progbar.summary(self.target, ordered)
        self.progbar = None

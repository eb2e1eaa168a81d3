"""Keras callbacks fastconv does not offer. Each raises at construction, so
a program that relies on one fails at once with the reason, not silently
mid-training."""

from __future__ import annotations

from typing import Any

from fastconv.callbacks.callback import Callback


class _Unsupported(Callback):
    reason = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"keras.callbacks.{type(self).__name__} is not supported by "
                                  f"fastconv: {self.reason}")


class TensorBoard(_Unsupported):
    """Not supported: fastconv writes no TensorBoard event files."""

    reason = ("it writes no TensorBoard event files. Log the epoch values with "
              "fastconv.callbacks.CSVLogger, or read `history.history` after fit.")


class RemoteMonitor(_Unsupported):
    """Not supported: fastconv sends no training events over the network."""

    reason = ("it sends no training events over the network. Use a LambdaCallback that "
              "posts the logs where they are needed.")


class SwapEMAWeights(_Unsupported):
    """Not supported: the moving averages are not swapped in for evaluation."""

    reason = ("the weights' moving averages are not swapped in for evaluation and "
              "prediction. An optimizer with `use_ema=True` copies them into the weights "
              "at the end of `fit` (and every `ema_overwrite_frequency` steps).")


class OrbaxCheckpoint(_Unsupported):
    """Not supported: Orbax is a JAX checkpointing library."""

    reason = ("Orbax checkpoints are JAX's. Use fastconv.callbacks.ModelCheckpoint or "
              "BackupAndRestore.")

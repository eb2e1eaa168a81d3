"""Training callbacks with Keras 3's hooks, arguments and log keys.

A callback's methods are called by ``fit`` / ``evaluate`` / ``predict`` with
``logs``, a dict of the running or final metric values (``loss``,
``accuracy``, ``val_loss``, ...). Setting ``model.stop_training = True``
ends ``fit`` after the current batch.

- ``callback``: Callback, CallbackList, History, LambdaCallback, TerminateOnNaN
- ``monitor``: MonitorCallback (the improvement rule), EarlyStopping
- ``learning_rate``: LearningRateScheduler, ReduceLROnPlateau
- ``loggers``: CSVLogger, ProgbarLogger
- ``checkpoint``: ModelCheckpoint, BackupAndRestore
- ``unsupported``: TensorBoard, RemoteMonitor, SwapEMAWeights, OrbaxCheckpoint
  (each raises NotImplementedError when constructed)
"""

from fastconv.callbacks.callback import (
    Callback,
    CallbackList,
    History,
    LambdaCallback,
    TerminateOnNaN,
)
from fastconv.callbacks.checkpoint import BackupAndRestore, ModelCheckpoint
from fastconv.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from fastconv.callbacks.loggers import CSVLogger, ProgbarLogger
from fastconv.callbacks.monitor import EarlyStopping, MonitorCallback
from fastconv.callbacks.unsupported import (
    OrbaxCheckpoint,
    RemoteMonitor,
    SwapEMAWeights,
    TensorBoard,
)

__all__ = [
    "BackupAndRestore", "CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History",
    "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback",
    "OrbaxCheckpoint", "ProgbarLogger", "ReduceLROnPlateau", "RemoteMonitor", "SwapEMAWeights",
    "TensorBoard", "TerminateOnNaN",
]

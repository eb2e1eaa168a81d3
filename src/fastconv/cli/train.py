"""``python -m fastconv train``: fastconv's main job.

Trains a seed CNN on Fashion-MNIST with the Keras-style API, printing
Keras' progress lines, then the test accuracy and the time per epoch. It
uses the full dataset when it is installed (``FASTCONV_DATA``,
``~/.fastconv/datasets`` or Debian's ``dataset-fashion-mnist``), else the
sample shipped inside fastconv. With ``--distributed``, launched as
``mpirun -n K python -m fastconv train --distributed``, the ranks share each
global batch (``fastconv.distribute.MPIDataParallel``) and rank 0 prints.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

import fastconv
from fastconv import layers, models
from fastconv.datasets import fashion_mnist
from fastconv.datasets._files import DatasetNotFoundError


def seed_cnn() -> models.Sequential:
    """The convnet of the Keras tutorials (seeds 000 and 004): 93,322 parameters."""
    return models.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def fashion_cnn() -> models.Sequential:
    """The Fashion-MNIST CNN of seed 003 (with its two Dropout layers)."""
    return models.Sequential([
        layers.Conv2D(filters=64, kernel_size=2, padding="same", activation="relu",
                      input_shape=(28, 28, 1)),
        layers.MaxPooling2D(pool_size=2),
        layers.Conv2D(filters=32, kernel_size=2, padding="same", activation="relu"),
        layers.MaxPooling2D(pool_size=2),
        layers.Dropout(0.3),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])


# name: (builder, optimizer, batch size)
MODELS = {
    "seed-cnn": (seed_cnn, "rmsprop", 64),
    "fashion-cnn": (fashion_cnn, "adam", 32),
}


def load_fashion_mnist(path: str | None, sample: bool):
    """(train, test, description) from the full set when available, else the sample."""
    if not sample:
        try:
            data = fashion_mnist.load_data(path, mirrors=() if path is None else None)
            return (*data, "Fashion-MNIST (full: 60,000 training / 10,000 test images)")
        except DatasetNotFoundError:
            if path is not None:
                raise
    train, test = fashion_mnist.load_sample()
    return (train, test, f"the Fashion-MNIST sample shipped with fastconv ({len(train[0]):,} "
            f"training / {len(test[0]):,} test images; install dataset-fashion-mnist or set "
            "FASTCONV_DATA for the full set)")


def train(model_name: str, epochs: int, batch_size: int | None, path: str | None,
          sample: bool, seed: int | None, distributed: bool = False) -> int:
    (x_train, y_train), (x_test, y_test), description = load_fashion_mnist(path, sample)
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    build, optimizer, default_batch = MODELS[model_name]
    batch_size = batch_size or default_batch
    if seed is not None:
        fastconv.utils.set_random_seed(seed)
    strategy = fastconv.distribute.MPIDataParallel() if distributed else None
    root = strategy is None or strategy.is_root
    ranks = f", {strategy.size} ranks" if strategy is not None else ""
    if root:
        print(f"fastconv {fastconv.__version__}: {fastconv.get_num_threads()} threads{ranks}, "
              f"SIMD {fastconv.get_isa()}; data: {description}")
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build()
        if root:
            model.summary()
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    epoch_times: list[float] = []
    started = [0.0]
    timer = fastconv.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.__setitem__(0, time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_times.append(time.perf_counter() - started[0]),
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, callbacks=[timer])
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    if not root:
        return 0
    print(f"test accuracy: {test_acc:.4f} (loss {test_loss:.4f}); "
          f"time per epoch: {np.mean(epoch_times):.1f} s "
          f"({np.mean(epoch_times) / max(1, -(-len(x_train) // batch_size)) * 1e3:.1f} ms/step, "
          f"batch {batch_size})")
    return 0

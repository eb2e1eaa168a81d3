"""Accuracy on real data: the seed CNN trained on the full Fashion-MNIST
(60,000 images). Runs where the dataset is installed (CI installs Debian's
dataset-fashion-mnist); skipped elsewhere.

It trains two epochs: after one, the test accuracy lands between 0.84 and
0.86 depending on the seed (0.8436, 0.8591, 0.8425, 0.8596 for seeds 0-3),
too close to the 0.85 bar for a test; after two it clears it with margin."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv.datasets import DatasetNotFoundError, fashion_mnist
from fastconv.utils import set_random_seed


@pytest.fixture(scope="module")
def full_fashion_mnist():
    try:
        return fashion_mnist.load_data(mirrors=())
    except DatasetNotFoundError:
        pytest.skip("the full Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_seed_cnn_two_epochs_reach_085(full_fashion_mnist):
    from fastconv.cli.train import seed_cnn

    (x_train, y_train), (x_test, y_test) = full_fashion_mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    x_train = (x_train.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    x_test = (x_test.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    # Keras 3 reached 0.889 after 5 epochs.
    assert test_acc >= 0.85, (test_acc, test_loss, history.history)

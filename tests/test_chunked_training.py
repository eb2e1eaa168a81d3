"""A training step run chunk by chunk gives the bits of a plain ``fit``.

``MPIDataParallel`` on one process runs every chunk of each global batch
alone (inside ``fastconv.runtime.batch.chunk_of``) and adds the chunks'
weight gradients in chunk order, as k ranks do (``tests/test_mpi.py`` runs
those under ``mpirun``). Here each model of a family of Keras programs
trains with a plain ``fit`` and with the strategy on this one process, and
the weights after a few uneven batches must be equal bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, ops

pytest.importorskip("mpi4py")


class Scale(layers.Layer):
    """A custom layer of keras.ops: a broadcast weight and a matmul."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")
        self.w = self.add_weight(shape=(input_shape[-1], 6), initializer="glorot_uniform")

    def call(self, x):
        return ops.relu(ops.matmul(x * self.scale, self.w))


def _image_model():
    return fastconv.Sequential([
        layers.Input((10, 10, 2)),
        layers.RandomFlip(seed=1), layers.RandomTranslation(0.1, 0.1),
        layers.RandomContrast(0.2, seed=3),
        layers.Conv2D(6, 3, activation="relu", kernel_regularizer="l2"),
        layers.MaxPooling2D(), layers.SpatialDropout2D(0.3),
        layers.DepthwiseConv2D(3, padding="same"), layers.PReLU(),
        layers.SeparableConv2D(8, 3, padding="same"), layers.LayerNormalization(),
        layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
        layers.GroupNormalization(2), layers.GaussianNoise(0.1, seed=2),
        layers.Flatten(), layers.Dense(12, activation="tanh", activity_regularizer="l1"),
        layers.AlphaDropout(0.2, seed=4), layers.Dense(3, activation="softmax")])


def _sequence_model():
    return fastconv.Sequential([
        layers.Input((9,), dtype="int32"), layers.Embedding(20, 5),
        layers.Conv1D(7, 3, activation="relu"), layers.GaussianDropout(0.2),
        layers.GlobalMaxPooling1D(), Scale(), layers.Dense(3, activation="softmax")])


def _volume_model():
    return fastconv.Sequential([
        layers.Input((4, 6, 6, 1)), layers.Conv3D(3, 2, activation="relu"),
        layers.AveragePooling3D(), layers.Flatten(), layers.Dropout(0.3),
        layers.Dense(3, activation="softmax")])


def _two_outputs():
    inputs = fastconv.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, activation="relu")(inputs)
    h = layers.GlobalAveragePooling2D()(h)
    cls = layers.Dense(3, activation="softmax", name="cls")(layers.Dropout(0.5)(h))
    reg = layers.Dense(1, name="reg")(h)
    return fastconv.Model(inputs, [cls, reg])


def _data(kind, rng):
    n = 50
    labels = rng.integers(0, 3, n)
    if kind == "image":
        return rng.standard_normal((n, 10, 10, 2)).astype("float32"), labels
    if kind == "sequence":
        return rng.integers(0, 20, (n, 9)).astype("int32"), labels
    if kind == "volume":
        return rng.standard_normal((n, 4, 6, 6, 1)).astype("float32"), labels
    x = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    return x, (labels, rng.standard_normal((n, 1)).astype("float32"))


CASES = {
    "image": (_image_model, "adam", "sparse_categorical_crossentropy"),
    "sequence": (_sequence_model, "rmsprop", "sparse_categorical_crossentropy"),
    "volume": (_volume_model, "sgd",
               fastconv.losses.SparseCategoricalCrossentropy(reduction="sum")),
    "two-outputs": (_two_outputs, "adam", ["sparse_categorical_crossentropy", "mse"]),
}


def _train(kind, strategy):
    build, optimizer, loss = CASES[kind]
    fastconv.utils.set_random_seed(11)
    if strategy is None:
        model = build()
        model.compile(optimizer, loss)
    else:
        with strategy.scope():
            model = build()
            model.compile(optimizer, loss)
    x, y = _data(kind, np.random.default_rng(5))
    weights = np.random.default_rng(6).random(len(x)).astype("float32")
    history = model.fit(x, y, batch_size=20, epochs=2, verbose=0,
                        sample_weight=weights if kind == "image" else None)
    return model, history.history["loss"]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_chunk_by_chunk_training_gives_the_bits_of_a_plain_fit(kind):
    plain, plain_loss = _train(kind, None)
    strategy = fastconv.distribute.MPIDataParallel(abort_on_error=False)
    chunked, chunked_loss = _train(kind, strategy)
    for a, b in zip(plain.weights, chunked.weights):
        np.testing.assert_array_equal(b.value, a.value, err_msg=a.name)
    # The logged loss adds the chunks' shares of the mean: equal to rounding.
    np.testing.assert_allclose(chunked_loss, plain_loss, rtol=1e-5)

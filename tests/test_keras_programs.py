"""Keras guide programs (keras.io's "Making new layers and models via
subclassing" and "The Functional API"), with only their imports changed;
the expected numbers are the guides' own or counted by hand here."""

from __future__ import annotations

import numpy as np

import fastconv as keras
from fastconv import layers, ops


class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


class MLPBlock(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = ops.relu(x)
        x = self.linear_2(x)
        x = ops.relu(x)
        return self.linear_3(x)


def test_subclassing_guide_linear_and_mlp_block():
    x = ops.ones((2, 2))
    linear_layer = Linear(4)
    y = linear_layer(x)
    np.testing.assert_allclose(y, x @ linear_layer.w.value + linear_layer.b.value, rtol=1e-6)
    mlp = MLPBlock()
    y = mlp(ops.ones(shape=(3, 64)))
    assert y.shape == (3, 1)
    # The guide prints "weights: 6" and "trainable weights: 6".
    assert len(mlp.weights) == 6 and len(mlp.trainable_weights) == 6


def conv_params(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def test_functional_guide_toy_resnet_trains():
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.Flatten()(x)  # the guide's GlobalAveragePooling2D, in a coming layer family
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="toy_resnet")
    lines = []
    model.summary(print_fn=lines.append)
    assert "Connected to" in lines[2] and sum("(Add)" in line for line in lines) == 2
    expected = (conv_params(3, 3, 32) + conv_params(3, 32, 64) + 5 * conv_params(3, 64, 64)
                + (7 * 7 * 64 * 256 + 256) + (256 * 10 + 10))
    assert model.count_params() == expected
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["acc"])
    rng = np.random.default_rng(0)
    x_train = rng.random((40, 32, 32, 3), dtype=np.float32)
    y_train = keras.utils.to_categorical(rng.integers(0, 10, 40), 10)
    history = model.fit(x_train, y_train, batch_size=16, epochs=1, validation_split=0.2,
                        verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]


def test_constant_ops():
    np.testing.assert_array_equal(ops.zeros((2, 3)), np.zeros((2, 3), np.float32))
    assert ops.ones(4).dtype == np.float32 and ops.full((2,), 7, "int32").tolist() == [7, 7]
    np.testing.assert_array_equal(ops.eye(3), np.eye(3, dtype=np.float32))
    assert ops.arange(3).dtype == np.int32 and ops.arange(0.0, 1.0, 0.5).tolist() == [0.0, 0.5]

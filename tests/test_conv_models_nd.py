"""The convolution and pooling layer families in whole models, as Keras
programs use them: each model compiles, fits an epoch of tiny random data,
predicts, saves and loads with identical predictions, clones and prints its
summary; and models on inputs of unknown spatial size (``Input((None,
1))``, ``Input((None, None, 1))``) train and predict on any size."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, models


def round_trip(model, x, tmp_path):
    """Predictions survive save/load, model_from_json + weights and clone_model."""
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    rebuilt = models.model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), before)
    clone = models.clone_model(model)
    assert [type(a) for a in clone.layers] == [type(b) for b in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), before)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for layer in model.layers:  # long "name (Type)" cells wrap, as Keras' do
        assert f"{layer.name} (" in text
    assert f"Total params: {model.count_params():,}" in text
    return before


def fit_once(model, x, y, loss, **compile_args):
    model.compile(optimizer="adam", loss=loss, **compile_args)
    weights = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_time_series_conv1d_classifier(tmp_path):
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([
        layers.Input((32, 3)),
        layers.Conv1D(8, 5, activation="relu"),
        layers.MaxPooling1D(2),
        layers.Conv1D(8, 3, activation="relu", padding="same"),
        layers.AveragePooling1D(2),
        layers.Flatten(),
        layers.Dense(4, activation="softmax"),
    ])
    assert [layer.output_shape for layer in model.layers] == [
        (None, 28, 8), (None, 14, 8), (None, 14, 8), (None, 7, 8), (None, 56), (None, 4)]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 32, 3)).astype(np.float32), np.arange(10) % 4
    fit_once(model, x, y, "sparse_categorical_crossentropy", metrics=["accuracy"])
    probabilities = round_trip(model, x, tmp_path)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def wavenet(filters=4, dilations=(1, 2, 4, 8)):
    """A causal dilated Conv1D stack on sequences of any length (WaveNet)."""
    inputs = fastconv.Input((None, 1))
    h = inputs
    for d in dilations:
        h = layers.Conv1D(filters, 2, padding="causal", dilation_rate=d, activation="relu")(h)
    outputs = layers.Conv1D(1, 1)(h)
    return models.Model(inputs, outputs)


def test_causal_dilated_stack_trains_and_predicts_on_any_length(tmp_path):
    fastconv.utils.set_random_seed(1)
    model = wavenet()
    assert model.output_shape == (None, None, 1)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(1)
    for length in (20, 33):
        x = rng.standard_normal((8, length, 1)).astype(np.float32)
        y = np.roll(x, 1, axis=1)
        history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert model.predict(x, verbose=0).shape == (8, length, 1)
        assert np.isfinite(model.evaluate(x, y, verbose=0))
    x = rng.standard_normal((3, 17, 1)).astype(np.float32)
    round_trip(model, x, tmp_path)
    # causal: the first outputs do not depend on later inputs
    y = model.predict(x, verbose=0)
    later = x.copy()
    later[:, 9:] += 1.0
    np.testing.assert_array_equal(model.predict(later, verbose=0)[:, :9], y[:, :9])


def test_denoising_autoencoder_with_conv2d_transpose(tmp_path):
    fastconv.utils.set_random_seed(2)
    inputs = fastconv.Input((16, 16, 1))
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(h)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(h)
    model = models.Model(inputs, outputs)
    assert [layer.output_shape for layer in model.layers[1:]] == [
        (None, 8, 8, 8), (None, 4, 4, 8), (None, 8, 8, 8), (None, 16, 16, 8),
        (None, 16, 16, 1)]
    rng = np.random.default_rng(2)
    clean = (rng.random((8, 16, 16, 1)) > 0.5).astype(np.float32)
    noisy = np.clip(clean + 0.3 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    fit_once(model, noisy, clean, "binary_crossentropy")
    round_trip(model, noisy, tmp_path)


def test_mobilenet_style_block(tmp_path):
    fastconv.utils.set_random_seed(3)
    inputs = fastconv.Input((12, 12, 3))
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    h = layers.DepthwiseConv2D(3, padding="same", activation="relu")(h)
    h = layers.Conv2D(16, 1)(h)
    h = layers.ReLU(max_value=6.0)(h)
    h = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False)(h)
    h = layers.SeparableConv2D(16, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    outputs = layers.Dense(3, activation="softmax")(layers.Flatten()(h))
    model = models.Model(inputs, outputs)
    assert [layer.count_params() for layer in model.layers[1:]] == [
        224, 80, 144, 0, 288, 32 * 9 + 32 * 16 + 16, 0, 0, 51]
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((8, 12, 12, 3)).astype(np.float32), np.arange(8) % 3
    fit_once(model, x, y, "sparse_categorical_crossentropy", metrics=["accuracy"])
    round_trip(model, x, tmp_path)


def test_conv3d_max_pool3d_classifier(tmp_path):
    fastconv.utils.set_random_seed(4)
    model = models.Sequential([
        layers.Conv3D(4, 3, activation="relu", input_shape=(8, 8, 8, 1)),
        layers.MaxPool3D(2),
        layers.Conv3D(6, 2, activation="relu", padding="same"),
        layers.AvgPool3D(3),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    assert model.output_shape == (None, 2)
    assert model.layers[1].output_shape == (None, 3, 3, 3, 4)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((8, 8, 8, 8, 1)).astype(np.float32), np.arange(8) % 2
    fit_once(model, x, y, "sparse_categorical_crossentropy")
    round_trip(model, x, tmp_path)


def test_channels_first_conv1d_and_conv3d_models_train(tmp_path):
    fastconv.utils.set_random_seed(5)
    model = models.Sequential([
        layers.Input((3, 12)),
        layers.Conv1D(4, 3, data_format="channels_first", activation="relu"),
        layers.MaxPooling1D(2, data_format="channels_first"),
        layers.Conv1DTranspose(2, 2, strides=2, data_format="channels_first"),
        layers.Flatten(data_format="channels_first"),
        layers.Dense(2),
    ])
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 3, 12)).astype(np.float32), rng.standard_normal((8, 2))
    fit_once(model, x, y, "mse")
    round_trip(model, x, tmp_path)


# ----------------------------------------------------------------------------
# unknown spatial sizes


def test_image_input_of_unknown_size_trains_and_predicts_on_any_size():
    fastconv.utils.set_random_seed(6)
    inputs = fastconv.Input((None, None, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = layers.MaxPooling2D()(h)
    h = layers.SeparableConv2D(4, 3, padding="same")(h)
    h = layers.Conv2DTranspose(2, 2, strides=2)(h)
    model = models.Model(inputs, h)
    assert model.output_shape == (None, None, None, 2)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(6)
    for size in [(8, 8), (12, 6), (4, 10)]:
        x = rng.standard_normal((4, *size, 1)).astype(np.float32)
        y = rng.standard_normal((4, *size, 2)).astype(np.float32)
        model.fit(x, y, epochs=1, batch_size=2, verbose=0)
        assert model.predict(x, verbose=0).shape == (4, *size, 2)
    rows = model.profile(x, y, repeat=1, verbose=0)  # FLOPs unknown for unknown sizes
    assert all(r["forward_gflop"] == 0 for r in rows)


def test_subclassed_model_traced_at_each_new_size():
    # A subclassed model's layers are built at the first data's size; later
    # sizes trace again and must be accepted (Keras checks only the rank and
    # channels of a built convolution's input).
    class Net(models.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv1D(4, 3, padding="causal", activation="relu")
            self.pool = layers.MaxPooling1D()
            self.head = layers.Conv1D(1, 1)

        def call(self, x):
            return self.head(self.pool(self.conv(x)))

    fastconv.utils.set_random_seed(7)
    model = Net()
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(7)
    for length in (16, 24):
        x = rng.standard_normal((4, length, 2)).astype(np.float32)
        y = rng.standard_normal((4, length // 2, 1)).astype(np.float32)
        model.fit(x, y, epochs=1, verbose=0)
        assert model.predict(x, verbose=0).shape == (4, length // 2, 1)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict(rng.standard_normal((4, 16, 3)).astype(np.float32), verbose=0)


def test_a_built_layer_takes_new_spatial_sizes_eagerly():
    conv = layers.Conv2D(2, 3)
    assert conv(np.zeros((1, 8, 8, 1))).shape == (1, 6, 6, 2)
    assert conv(np.zeros((2, 5, 9, 1))).shape == (2, 3, 7, 2)
    with pytest.raises(ValueError, match="incompatible"):
        conv(np.zeros((1, 8, 8, 3)))
    transpose = layers.Conv1DTranspose(2, 3, strides=2, data_format="channels_first")
    assert transpose(np.zeros((1, 3, 4))).shape == (1, 2, 9)
    assert transpose(np.zeros((1, 3, 7))).shape == (1, 2, 15)

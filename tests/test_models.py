"""Model structure: summary tables, Sequential / functional building, the seed
programs' idioms, and the utilities they call (to_categorical, clear_session).

Expected numbers are Keras' (the seed notebooks print them) or computed here
by hand; the convolution used to check feature maps is a NumPy loop written
in this file, independent of fastconv's kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, models

# Keras' summary of the seed 000/004 convnet: (output shape, params) per layer.
SEED_000 = [
    ("conv2d (Conv2D)", "(None, 26, 26, 32)", 320),
    ("max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", 0),
    ("conv2d_1 (Conv2D)", "(None, 11, 11, 64)", 18_496),
    ("max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)", 0),
    ("conv2d_2 (Conv2D)", "(None, 3, 3, 64)", 36_928),
    ("flatten (Flatten)", "(None, 576)", 0),
    ("dense (Dense)", "(None, 64)", 36_928),
    ("dense_1 (Dense)", "(None, 10)", 650),
]
# Seed 003's Fashion-MNIST CNN.
SEED_003 = [
    ("conv2d (Conv2D)", "(None, 28, 28, 64)", 320),
    ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 64)", 0),
    ("conv2d_1 (Conv2D)", "(None, 14, 14, 32)", 8_224),
    ("max_pooling2d_1 (MaxPooling2D)", "(None, 7, 7, 32)", 0),
    ("dropout (Dropout)", "(None, 7, 7, 32)", 0),
    ("flatten (Flatten)", "(None, 1568)", 0),
    ("dense (Dense)", "(None, 256)", 401_664),
    ("dropout_1 (Dropout)", "(None, 256)", 0),
    ("dense_1 (Dense)", "(None, 10)", 2_570),
]


@pytest.fixture(autouse=True)
def fresh_names():
    """Every test starts with Keras' automatic names ("conv2d", "dense", ...)."""
    fastconv.backend.clear_session()
    yield


def seed_000_model() -> models.Sequential:
    """Seed 000 verbatim: Sequential() then add(), input_shape on the first layer."""
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def seed_003_model():
    """Seed 003 verbatim, with `import fastconv as tf` and `K.clear_session()`."""
    import fastconv as tf
    from fastconv import backend as K

    K.clear_session()
    model = tf.keras.Sequential()
    model.add(tf.keras.layers.Conv2D(filters=64, kernel_size=2, padding="same",
                                     activation="relu", input_shape=(28, 28, 1)))
    model.add(tf.keras.layers.MaxPooling2D(pool_size=2))
    model.add(tf.keras.layers.Conv2D(filters=32, kernel_size=2, padding="same",
                                     activation="relu"))
    model.add(tf.keras.layers.MaxPooling2D(pool_size=2))
    model.add(tf.keras.layers.Dropout(0.3))
    model.add(tf.keras.layers.Flatten())
    model.add(tf.keras.layers.Dense(256, activation="relu"))
    model.add(tf.keras.layers.Dropout(0.5))
    model.add(tf.keras.layers.Dense(10, activation="softmax"))
    return model


def summary_lines(model) -> list[str]:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return lines


def summary_rows(lines: list[str]) -> list[tuple[str, str, int]]:
    """(layer, output shape, params) of each body row of the table."""
    rows = []
    for line in lines:
        if line.startswith("│"):
            name, shape, params = (cell.strip() for cell in line.strip("│").split("│"))
            rows.append((name, shape, int(params.replace(",", ""))))
    return rows


def conv2d_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Plain loops: stride 1, no padding, NHWC input and HWIO kernel."""
    n, h, w, _ = x.shape
    kh, kw, _, c_out = kernel.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, c_out))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            patch = x[:, i:i + kh, j:j + kw, :].astype(np.float64)
            out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2])) + bias
    return out


# ----------------------------------------------------------------------------
# summary


@pytest.mark.parametrize("build, expected, total, size", [
    (seed_000_model, SEED_000, "93,322", "364.54 KB"),
    (seed_003_model, SEED_003, "412,778", "1.57 MB"),
])
def test_summary_matches_keras(build, expected, total, size):
    lines = summary_lines(build())
    assert lines[0] == 'Model: "sequential"'
    assert summary_rows(lines) == expected
    assert f" Total params: {total} ({size})" in lines
    assert f" Trainable params: {total} ({size})" in lines
    assert " Non-trainable params: 0 (0.00 B)" in lines


def test_summary_of_the_first_five_layers_matches_seed_000():
    """The notebook's first summary, before the classifier is added: 55,744."""
    model = seed_000_model()
    for _ in range(3):
        model.pop()
    lines = summary_lines(model)
    assert summary_rows(lines) == SEED_000[:5]
    assert " Total params: 55,744 (217.75 KB)" in lines


def test_summary_prints_to_stdout_by_default(capsys):
    seed_000_model().summary()
    out = capsys.readouterr().out
    assert "(None, 26, 26, 32)" in out and "Total params: 93,322 (364.54 KB)" in out


def test_summary_counts_frozen_weights_as_non_trainable():
    model = models.Sequential([layers.Dense(4, input_shape=(3,)),
                               layers.Dense(2, trainable=False)])
    lines = summary_lines(model)
    # 3*4+4 = 16 trainable, 4*2+2 = 10 frozen, float32: 4 bytes each.
    assert " Total params: 26 (104.00 B)" in lines
    assert " Trainable params: 16 (64.00 B)" in lines
    assert " Non-trainable params: 10 (40.00 B)" in lines


def test_summary_of_an_unbuilt_model_says_what_to_do():
    model = models.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="not been built"):
        model.summary()


# ----------------------------------------------------------------------------
# building Sequential models


def layer_list():
    return [layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(3, activation="softmax")]


def test_the_ways_to_give_the_input_shape_build_the_same_model():
    fastconv.backend.clear_session()
    with_list = models.Sequential([layers.Conv2D(4, 3, activation="relu",
                                                 input_shape=(8, 8, 2)), *layer_list()[1:]])
    fastconv.backend.clear_session()
    with_input = models.Sequential([fastconv.Input((8, 8, 2)), *layer_list()])
    fastconv.backend.clear_session()
    with_add = models.Sequential()
    with_add.add(fastconv.Input(shape=(8, 8, 2)))
    for layer in layer_list():
        with_add.add(layer)
    expected = [("conv2d (Conv2D)", "(None, 6, 6, 4)", 3 * 3 * 2 * 4 + 4),
                ("max_pooling2d (MaxPooling2D)", "(None, 3, 3, 4)", 0),
                ("flatten (Flatten)", "(None, 36)", 0),
                ("dense (Dense)", "(None, 3)", 36 * 3 + 3)]
    for model in (with_list, with_input, with_add):
        assert model.built
        assert summary_rows(summary_lines(model)) == expected
        assert model.input_shape == (None, 8, 8, 2)
        assert model.output_shape == (None, 3)


def test_layers_inputs_outputs_and_layer_output():
    model = seed_000_model()
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]
    assert len(model.inputs) == 1 and model.inputs[0].shape == (None, 28, 28, 1)
    assert len(model.outputs) == 1 and model.outputs[0].shape == (None, 10)
    assert model.outputs[0] is model.layers[-1].output
    assert model.layers[0].output.shape == (None, 26, 26, 32)
    assert model.layers[5].output.shape == (None, 576)
    kernel, bias = model.layers[0].get_weights()  # seed 002's show_filters
    assert kernel.shape == (3, 3, 1, 32) and bias.shape == (32,)
    assert not bias.any()  # Keras' default bias initializer: zeros
    assert model.get_layer("dense_1") is model.layers[-1]
    assert model.count_params() == 93_322


def test_deferred_build_from_the_data_in_predict():
    model = models.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not been built"):
        model.inputs
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out = model.predict(x, verbose=0)
    assert model.built and model.input_shape == (None, 3)
    assert model.layers[0].output.shape == (None, 4)
    (w1, b1), (w2, b2) = model.layers[0].get_weights(), model.layers[1].get_weights()
    assert w1.shape == (3, 4) and w2.shape == (4, 2)
    np.testing.assert_allclose(out, np.maximum(x @ w1 + b1, 0) @ w2 + b2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict(np.zeros((2, 4), np.float32), verbose=0)


def test_deferred_build_from_the_data_in_fit():
    model = models.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 5, 5, 1)), np.zeros((4, 2)), epochs=1, verbose=0)
    assert model.input_shape == (None, 5, 5, 1)
    assert [tuple(w.shape) for w in model.get_weights()] == [(3, 3, 1, 2), (2,), (18, 2), (2,)]


def test_add_rejects_what_is_not_a_layer():
    model = models.Sequential()
    with pytest.raises(TypeError, match="Layer"):
        model.add("dense")
    dense = layers.Dense(2)
    model.add(dense)
    with pytest.raises(ValueError, match="already"):
        model.add(dense)


# ----------------------------------------------------------------------------
# the functional idiom of seed 002


def test_feature_map_model_of_seed_002():
    import fastconv as tf

    model = seed_000_model()
    model_1 = tf.keras.Model(inputs=model.inputs, outputs=model.layers[0].output)
    assert model_1.layers[1] is model.layers[0]
    img = np.random.default_rng(1).random((28, 28, 1)).astype(np.float32)
    img = np.expand_dims(img, axis=0)
    feature_maps = model_1.predict(img, verbose=0)
    assert feature_maps.shape == (1, 26, 26, 32)
    kernel, bias = model.layers[0].get_weights()
    expected = np.maximum(conv2d_valid(img, kernel, bias), 0)
    np.testing.assert_allclose(feature_maps, expected, rtol=1e-5, atol=1e-6)
    # The same as applying layer 0 alone.
    np.testing.assert_array_equal(feature_maps, model.layers[0](img))


def test_feature_map_model_shares_weights_with_the_model():
    model = seed_000_model()
    model_1 = fastconv.Model(inputs=model.inputs, outputs=model.layers[0].output)
    img = np.random.default_rng(2).random((2, 28, 28, 1)).astype(np.float32)
    before = model_1.predict(img, verbose=0)
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([2 * kernel, bias + 0.5])
    np.testing.assert_allclose(model_1.predict(img, verbose=0),
                               np.maximum(conv2d_valid(img, 2 * kernel, bias + 0.5), 0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(model_1.predict(img, verbose=0), before)
    # Training the full model moves the sub-model's output too.
    model.compile("sgd", "sparse_categorical_crossentropy")
    snapshot = model_1.predict(img, verbose=0)
    model.train_on_batch(img, np.array([1, 2]))
    assert not np.array_equal(model_1.predict(img, verbose=0), snapshot)


def test_functional_model_from_input():
    inputs = fastconv.Input(shape=(4,))
    hidden = layers.Dense(3, activation="relu")(inputs)
    outputs = layers.Dense(2)(hidden)
    model = fastconv.Model(inputs=inputs, outputs=outputs)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert model.inputs == [inputs] and model.outputs == [outputs]
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    (w1, b1), (w2, b2) = model.layers[1].get_weights(), model.layers[2].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.maximum(x @ w1 + b1, 0) @ w2 + b2, rtol=1e-5, atol=1e-6)
    rows = summary_rows(summary_lines(model))
    assert [r[2] for r in rows] == [0, 4 * 3 + 3, 3 * 2 + 2]


def test_functional_model_rejects_unconnected_tensors():
    a, b = fastconv.Input((3,)), fastconv.Input((3,))
    out = layers.Dense(2)(a)
    with pytest.raises(ValueError, match="not connected"):
        fastconv.Model(inputs=b, outputs=out)


# ----------------------------------------------------------------------------
# the seed programs' imports and utilities


def test_seed_import_idioms():
    import fastconv as tf
    from fastconv import backend as K
    from fastconv import keras
    from fastconv.datasets import mnist
    from fastconv.utils import to_categorical

    assert tf.keras.Sequential is models.Sequential
    assert tf.keras.Model is models.Model
    assert tf.keras.layers.Conv2D is layers.Conv2D
    assert keras.datasets.fashion_mnist.load_data is fastconv.datasets.fashion_mnist.load_data
    assert callable(mnist.load_data) and callable(to_categorical)
    assert K.clear_session() is None


def test_seed_002_program_on_generated_mnist(tmp_path):
    """Seed 002 end to end with `import fastconv as tf`, on a small mnist.npz
    written here (MNIST itself is not on this machine)."""
    import fastconv as tf

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz",
             x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 64, dtype=np.uint8),
             x_test=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, 16, dtype=np.uint8))
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(
        path=tmp_path / "mnist.npz")
    x_train = (x_train / 255.0).reshape(-1, 28, 28, 1)
    x_test = (x_test / 255.0).reshape(-1, 28, 28, 1)
    y_train = tf.keras.utils.to_categorical(y_train, 10)
    y_test = tf.keras.utils.to_categorical(y_test, 10)
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    filters, biases = model.layers[0].get_weights()
    assert filters[:, :, :, 0][:, :, 0].shape == (3, 3)
    model_1 = tf.keras.Model(inputs=model.inputs, outputs=model.layers[0].output)
    feature_maps = model_1.predict(np.expand_dims(x_train[0], axis=0), verbose=0)
    assert feature_maps[0, :, :, 7].shape == (26, 26)
    model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    assert len(score) == 2 and 0.0 <= score[1] <= 1.0 and np.isfinite(score[0])


def test_seed_003_program_on_the_fashion_mnist_sample(capsys):
    """Seed 003 with `import fastconv as tf` / `from fastconv import keras`, on
    the first 256 images of the bundled sample (one epoch, 8 steps)."""
    from fastconv import keras

    fashion_mnist = keras.datasets.fashion_mnist
    (train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_sample()
    train_images, train_labels = train_images[:256] / 255.0, train_labels[:256]
    test_images, test_labels = test_images[:64] / 255.0, test_labels[:64]
    w, h = 28, 28
    train_images = train_images.reshape(train_images.shape[0], w, h, 1)
    test_images = test_images.reshape(test_images.shape[0], w, h, 1)
    model = seed_003_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    capsys.readouterr()
    history = model.fit(train_images, train_labels, batch_size=32, epochs=1, verbose=2)
    test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
    predictions = model.predict(test_images, verbose=0)
    out = capsys.readouterr().out.splitlines()
    # One epoch: no "Epoch 1/1" line, as Keras 3.
    assert out[0].startswith("8/8 - ")
    assert out[1].startswith("2/2 - ") and out[1].endswith(f"loss: {test_loss:.4f}")
    assert len(history.history["loss"]) == 1
    assert predictions.shape == (64, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    assert test_acc == pytest.approx(np.mean(predictions.argmax(1) == test_labels))


def test_clear_session_restarts_names_and_leaves_models_working():
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    x = np.ones((1, 3), np.float32)
    before = model.predict(x, verbose=0)
    fastconv.backend.clear_session()
    assert layers.Dense(1).name == "dense"
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)


@pytest.mark.parametrize("labels, num_classes, expected", [
    ([0, 2, 1], None, [[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
    ([1, 0], 4, [[0, 1, 0, 0], [1, 0, 0, 0]]),
    ([[2], [0]], None, [[0, 0, 1], [1, 0, 0]]),  # (N, 1) labels: Keras drops the 1
    (np.array([3.0, 0.0]), None, [[0, 0, 0, 1], [1, 0, 0, 0]]),
    (np.array([1, 0], np.uint8), 2, [[0, 1], [1, 0]]),
])
def test_to_categorical(labels, num_classes, expected):
    from fastconv.utils import to_categorical

    out = to_categorical(labels, num_classes)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array(expected, np.float32))


def test_to_categorical_keeps_leading_axes():
    from fastconv.utils import to_categorical

    labels = np.array([[0, 1, 2], [2, 1, 0]])
    out = to_categorical(labels)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.argmax(axis=-1), labels)
    np.testing.assert_array_equal(out.sum(axis=-1), np.ones((2, 3)))


@pytest.mark.parametrize("labels, num_classes, error", [
    ([0, -1], None, ValueError),
    ([0, 3], 3, ValueError),  # label 3 needs num_classes >= 4
    ([0.5, 1.0], None, ValueError),
    (["a", "b"], None, TypeError),
])
def test_to_categorical_rejects_bad_labels(labels, num_classes, error):
    from fastconv.utils import to_categorical

    with pytest.raises(error, match="Invalid"):
        to_categorical(labels, num_classes)


def test_model_trainable_false_freezes_every_layer():
    from fastconv import layers, models

    model = models.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    model.trainable = False
    assert model.trainable is False and model.trainable_weights == []
    model.train_on_batch(np.ones((5, 4), np.float32), np.zeros((5, 2), np.float32))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.trainable = True
    assert len(model.trainable_weights) == 4

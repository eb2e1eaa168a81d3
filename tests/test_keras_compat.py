"""Keras idioms found in the seed programs and in Keras 3's documented
behaviour: import paths, data formats, symbolic reuse, saved metrics,
regularization rules and argument aliases."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import layers, models
from fastconv.testing import check_gradients


def test_fastconv_keras_import_forms():
    code = "\n".join([
        "from fastconv.keras import backend as K",           # seed 003
        "from fastconv.keras.datasets import mnist",         # seed 000
        "from fastconv.keras.layers import Dense, Conv2D",
        "from fastconv.keras import layers, models",
        "from fastconv.keras.utils import to_categorical",
        "import fastconv as tf",
        "assert tf.keras.layers.Dense is Dense and tf.keras.Sequential is models.Sequential",
        "assert mnist.load_data is tf.datasets.mnist.load_data",
        "K.clear_session()",
        "print('ok')",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ,
                              "PYTHONPATH": str(__import__("pathlib").Path(
                                  fastconv.__file__).resolve().parent.parent)})
    assert out.stdout.strip() == "ok", out.stderr


def test_channels_first_activation_runs_over_the_last_axis_as_keras():
    # Keras applies a Conv2D's activation to its output in the layer's own
    # layout: with channels_first, softmax normalises over the width axis.
    fastconv.utils.set_random_seed(0)
    conv = layers.Conv2D(3, 2, activation="softmax", data_format="channels_first",
                         dtype="float64")
    x = np.random.default_rng(0).random((2, 2, 5, 4))
    y = conv(x)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    model = models.Sequential([layers.Conv2D(4, 3, activation="softmax", dtype="float64",
                                             data_format="channels_first",
                                             input_shape=(2, 6, 6))])
    model.compile("sgd", "categorical_crossentropy")
    target = np.zeros((3, 4, 4, 4))
    target[..., 1] = 1
    check_gradients(model, np.random.default_rng(1).random((3, 2, 6, 6)), target)


def test_activity_regularizer_on_the_softmax_output_trains_with_correct_gradients():
    model = models.Sequential([layers.Dense(3, activation="softmax", activity_regularizer="l2",
                                            input_dim=4, dtype="float64")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((5, 4)), np.array([0, 1, 2, 1, 0])
    check_gradients(model, x, y)
    rows = model.profile(x, y, repeat=1, verbose=0)
    assert rows[0]["backward_ms"] > 0


def test_penalties_follow_keras_3():
    # Keras 3 (3.15's Layer.__call__) divides each activity penalty by the
    # output's batch size, and counts the weight penalties of trainable
    # weights only.
    from fastconv import regularizers

    frozen = layers.Dense(2, kernel_regularizer=regularizers.L2(1.0), trainable=False,
                          kernel_initializer="ones", use_bias=False)
    active = layers.Dense(2, activity_regularizer=regularizers.L2(1.0),
                          kernel_initializer="ones", use_bias=False)
    model = models.Sequential([frozen, active])
    model.compile("sgd", "mse")
    x = np.ones((3, 2), np.float32)
    y = np.zeros((3, 2), np.float32)
    # frozen output: 2 per unit; active output: 4 per unit; mse = 16.
    # activity penalty: sum(4^2 over 3 x 2) / 3 = 32; the frozen kernel's 4.0 is ignored.
    assert model.evaluate(x, y, verbose=0) == pytest.approx(16.0 + 32.0)


def test_reusing_a_model_on_a_new_input_keeps_the_feature_map_idiom():
    model = models.Sequential([layers.Conv2D(2, 3, input_shape=(8, 8, 1)), layers.Flatten(),
                               layers.Dense(2)])
    model(fastconv.Input((8, 8, 1)))
    feature_maps = fastconv.Model(inputs=model.inputs, outputs=model.layers[0].output)
    x = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(feature_maps.predict(x, verbose=0), model.layers[0](x))


def test_a_saved_custom_metric_comes_back(tmp_path):
    from fastconv import metrics

    model = models.Sequential([layers.Dense(3, activation="softmax", input_dim=4)])
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=[metrics.SparseCategoricalAccuracy(name="sacc")])
    x, y = np.random.default_rng(0).random((6, 4)).astype(np.float32), np.arange(6) % 3
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras")
    assert loaded.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "sacc"}


def test_keras_argument_aliases():
    assert layers.InputLayer(input_shape=(28, 28, 1)).batch_input_shape == (None, 28, 28, 1)
    model = models.Sequential([layers.Dense(2, input_dim=3)], trainable=False)
    assert model.built and model.trainable is False and model.trainable_weights == []


def test_evaluate_without_targets_is_a_clear_error():
    model = models.Sequential([layers.Dense(2, input_dim=3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="`y`"):
        model.evaluate(np.ones((2, 3), np.float32))

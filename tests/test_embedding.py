"""Integer inputs and the Embedding layer: integers flow unconverted from an
integer Input to an Embedding and are cast by float layers; the lookup, its
deterministic scatter-add gradient, Keras' config and errors; a small text
model that trains, saves, loads and clones."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastconv
from fastconv import layers, models
from fastconv.testing import check_gradients

KERAS_CONFIG_KEYS = {"name", "trainable", "dtype", "input_dim", "output_dim",
                     "embeddings_initializer", "embeddings_regularizer", "activity_regularizer",
                     "embeddings_constraint", "mask_zero", "quantization_config"}


def table(n: int = 5, d: int = 3) -> np.ndarray:
    return np.arange(n * d, dtype=np.float32).reshape(n, d) / 10


# ----------------------------------------------------------------------------
# the layer


def test_lookup_returns_the_rows_of_the_indices():
    layer = layers.Embedding(5, 3, weights=table())
    idx = np.array([[0, 4, 4], [2, 1, 0]], dtype=np.int32)
    y = layer(idx)
    assert y.shape == (2, 3, 3) and y.dtype == np.float32
    for n in range(2):
        for t in range(3):
            np.testing.assert_array_equal(y[n, t], table()[idx[n, t]])
    assert layer.compute_output_shape((None, 7)) == (None, 7, 3)
    assert [w.name for w in layer.weights] == [f"{layer.name}/embeddings"]
    assert layer.weights[0].shape == (5, 3)


def test_any_index_shape_and_whole_float_indices():
    layer = layers.Embedding(5, 3, weights=[table()])
    np.testing.assert_array_equal(layer(np.array([3])), table()[[3]])
    np.testing.assert_array_equal(layer(np.array([[[1.0, 2.0]]])), table()[[[[1, 2]]]])
    np.testing.assert_array_equal(layer(np.array([1, 2], np.uint8)), table()[[1, 2]])


def test_default_initializer_is_keras_uniform():
    fastconv.utils.set_random_seed(1)
    layer = layers.Embedding(400, 50)
    layer.build((None, 2))
    w = layer.get_weights()[0]
    assert w.min() >= -0.05 and w.max() <= 0.05 and w.std() > 0.02


@pytest.mark.parametrize("bad, message", [
    (np.array([[0, -1]]), "received -1"),
    (np.array([[5, 0]]), "received 5"),
    (np.array([[0.5, 1.0]]), "integer indices"),
    (np.array([[np.nan]]), "integer indices"),
])
def test_bad_indices_raise_clear_errors(bad, message):
    layer = layers.Embedding(5, 3)
    with pytest.raises(ValueError, match=message):
        layer(bad)
    model = models.Sequential([fastconv.Input((bad.shape[1],), dtype="int64"
                                              if bad.dtype.kind == "i" else "float32"),
                               layers.Embedding(5, 3)])
    with pytest.raises(ValueError):
        model.predict(bad, verbose=0)


@pytest.mark.parametrize("kwargs, name", [
    ({"input_dim": 0, "output_dim": 2}, "input_dim"),
    ({"input_dim": 2.5, "output_dim": 2}, "input_dim"),
    ({"input_dim": 3, "output_dim": True}, "output_dim"),
    ({"input_dim": 3, "output_dim": 2, "mask_zero": True}, "mask_zero"),
    ({"input_dim": 3, "output_dim": 2, "lora_rank": 2}, "lora_rank"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        layers.Embedding(**kwargs)


def test_mask_zero_is_not_supported_and_says_so():
    with pytest.raises(ValueError, match="does not propagate masks"):
        layers.Embedding(10, 2, mask_zero=True)


def test_config_has_keras_keys_and_round_trips():
    layer = layers.Embedding(7, 4, embeddings_regularizer="l2", embeddings_constraint="non_neg",
                             name="emb")
    config = json.loads(json.dumps(layer.get_config()))
    assert set(config) == KERAS_CONFIG_KEYS
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    clone = layers.Embedding.from_config(config)
    assert clone.get_config() == config
    with pytest.warns(UserWarning, match="input_length"):
        layers.Embedding(7, 4, input_length=3)


def test_gradient_is_a_scatter_add_of_repeated_indices():
    layer = layers.Embedding(6, 2, weights=table(6, 2))
    idx = np.array([[1, 3, 1], [1, 0, 5]])
    dy = np.random.default_rng(0).standard_normal((2, 3, 2)).astype(np.float32)
    _, ctx = layer.forward(idx)
    assert layer.backward(ctx, dy) is None  # indices take no gradient
    expected = np.zeros((6, 2), np.float32)
    for n in range(2):
        for t in range(3):
            expected[idx[n, t]] += dy[n, t]
    np.testing.assert_allclose(layer.embeddings.grad, expected, rtol=1e-6)
    first = layer.embeddings.grad.copy()
    for _ in range(3):  # the same bits every time
        layer.embeddings.zero_grad()
        layer.backward(layer.forward(idx)[1], dy)
        assert np.array_equal(layer.embeddings.grad, first)


def test_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    w = np.random.default_rng(1).standard_normal((9, 4))
    idx = np.random.default_rng(2).integers(0, 9, (3, 7))
    dy = np.random.default_rng(3).standard_normal((3, 7, 4))
    layer = layers.Embedding(9, 4, weights=w, dtype="float64")
    y, ctx = layer.forward(idx)
    layer.backward(ctx, dy)
    tw = torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(idx), tw)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(layer.embeddings.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_model_gradients_match_finite_differences():
    inputs = fastconv.Input((4,), dtype="int32")
    h = layers.Embedding(6, 3, dtype="float64", embeddings_regularizer="l2")(inputs)
    h = layers.Conv1D(2, 2, dtype="float64")(h)
    outputs = layers.Dense(1, dtype="float64")(layers.Flatten(dtype="float64")(h))
    model = models.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mean_squared_error")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, (5, 4)).astype(np.int32)
    errors = check_gradients(model, x, rng.standard_normal((5, 1)))
    assert set(errors) == {w.name for w in model.trainable_weights}


# ----------------------------------------------------------------------------
# integer inputs through models


def test_integer_input_layer_dtype_and_config():
    x = fastconv.Input((3,), dtype="int64", name="tokens")
    assert x.dtype == "int64"
    layer = x.operation
    assert layer.get_config()["dtype"] == "int64"
    with pytest.raises(ValueError, match="`dtype`"):
        fastconv.Input((3,), dtype="complex64")
    with pytest.raises(ValueError, match="`dtype`"):
        fastconv.Input((3,), dtype="float16")


def test_integers_reach_the_embedding_unconverted():
    seen = []

    class Spy(layers.Embedding):
        def forward(self, x, training=False):
            seen.append(np.asarray(x).dtype)
            return super().forward(x, training)

    inputs = fastconv.Input((3,), dtype="int32")
    model = models.Model(inputs, Spy(50, 2)(inputs))
    big = np.array([[49, 0, 17]], dtype=np.int64)
    model.predict(big, verbose=0)
    model(big)
    model.compile("sgd", "mse")
    model.fit(big, np.zeros((1, 3, 2)), verbose=0)
    model.evaluate(big, np.zeros((1, 3, 2)), verbose=0)
    assert seen and all(d == np.int32 for d in seen)
    with pytest.raises(ValueError, match="non-integer"):
        model.predict(np.array([[1.5, 0, 0]]), verbose=0)
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 0, 2]]), verbose=0),
                                  model.predict(np.array([[1, 0, 2]]), verbose=0))


def test_float_layers_fed_integers_compute_in_float():
    inputs = fastconv.Input((3,), dtype="int32")
    dense = layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")
    model = models.Model(inputs, dense(inputs))
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    expected = np.array([[7.0, 7.0], [16.0, 16.0]], np.float32)
    for y in (model.predict(x, verbose=0), model(x), dense(x)):
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, expected)
    model.compile("sgd", "mse")
    model.fit(x, expected, verbose=0)  # a float layer on integers trains


def text_model() -> models.Model:
    inputs = fastconv.Input((8,), dtype="int32")
    h = layers.Embedding(30, 8)(inputs)
    h = layers.Conv1D(6, 3, activation="relu")(h)
    h = layers.GlobalMaxPooling1D()(h)
    return models.Model(inputs, layers.Dense(2, activation="softmax")(h))


def test_text_model_trains_saves_loads_and_clones(tmp_path):
    fastconv.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 30, (64, 8)).astype(np.int32)
    y = (x.max(axis=1) > 25).astype(np.int64)
    model = text_model()
    model.compile(optimizer=fastconv.optimizers.Adam(0.02),
                  loss="sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0) < before
    model.save(tmp_path / "text.keras")
    loaded = models.load_model(tmp_path / "text.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.inputs[0].dtype == "int32"
    clone = models.clone_model(model)
    assert clone.inputs[0].dtype == "int32"
    assert clone.predict(x, verbose=0).shape == (64, 2)


def test_sequential_without_an_input_takes_index_data():
    model = models.Sequential([layers.Embedding(10, 2), layers.Flatten(), layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).integers(0, 10, (6, 4))
    model.fit(x, np.zeros((6, 1)), verbose=0)
    assert model.predict(x, verbose=0).shape == (6, 1)

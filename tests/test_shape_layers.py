"""Permute, RepeatVector and Identity: values against NumPy written out by
hand, gradients against central differences in float64, output shapes,
configs, saving, cloning and bad arguments."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layer_helpers import F64, assert_gradients, check_input_gradient, rand

import fastconv
from fastconv import layers, models
from fastconv.testing import check_gradients

# ----------------------------------------------------------------------------
# Permute


def test_permute_swaps_axes_as_keras_docstring():
    x = fastconv.Input((10, 64))
    assert tuple(layers.Permute((2, 1))(x).shape) == (None, 64, 10)


def test_permute_values_by_hand():
    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    y = layers.Permute((2, 1))(x)
    assert y.shape == (2, 3, 2)
    for n, i, j in itertools.product(range(2), range(3), range(2)):
        assert y[n, i, j] == x[n, j, i]


@settings(max_examples=20, deadline=None)
@given(st.permutations([1, 2, 3]), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
def test_permute_moves_each_axis(dims, a, b, c):
    x = rand((2, a, b, c)).astype(np.float32)
    layer = layers.Permute(tuple(dims))
    y = layer(x)
    assert layer.compute_output_shape((None, a, b, c)) == (None, *(x.shape[d] for d in dims))
    assert y.shape == (2, *(x.shape[d] for d in dims))
    for idx in np.ndindex(x.shape):
        n, rest = idx[0], idx[1:]
        assert y[(n, *(rest[d - 1] for d in dims))] == x[idx]
    assert y.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("dims, shape", [((2, 1), (2, 3, 4)), ((3, 1, 2), (2, 2, 3, 4)),
                                         ((1,), (3, 5)), ((2, 4, 1, 3), (1, 2, 3, 2, 2))])
def test_permute_input_gradient(dims, shape):
    check_input_gradient(layers.Permute(dims, dtype=F64), rand(shape))


def test_permute_backward_by_hand():
    layer = layers.Permute((3, 1, 2), dtype=F64)
    dy = rand((2, 5, 3, 4))  # the output of an input (2, 3, 4, 5)
    dx = layer.backward(None, dy)
    assert dx.shape == (2, 3, 4, 5)
    for n, i, j, k in np.ndindex(dx.shape):
        assert dx[n, i, j, k] == dy[n, k, i, j]


def test_permute_keeps_unknown_sizes():
    assert layers.Permute((2, 1)).compute_output_shape((None, None, 4)) == (None, 4, None)


@pytest.mark.parametrize("dims", [(0, 1), (1, 1), (1, 3), (2, 3), (-1, 1), "21", (1.0, 2.0),
                                  (True, 2), None, 2])
def test_permute_rejects_bad_dims(dims):
    with pytest.raises(ValueError, match="`dims`"):
        layers.Permute(dims)


def test_permute_rejects_an_input_of_the_wrong_rank():
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.Permute((2, 1))(fastconv.Input((2, 3, 4)))
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.Permute((2, 1))(np.ones((2, 3)))


# ----------------------------------------------------------------------------
# RepeatVector


def test_repeat_vector_shape_as_keras_docstring():
    assert tuple(layers.RepeatVector(3)(fastconv.Input((32,))).shape) == (None, 3, 32)
    assert layers.RepeatVector(3).compute_output_shape((None, None)) == (None, 3, None)


def test_repeat_vector_values_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    y = layers.RepeatVector(3)(x)
    np.testing.assert_array_equal(y, [[[1, 2]] * 3, [[3, 4]] * 3])


def test_repeat_vector_backward_sums_the_copies():
    layer = layers.RepeatVector(3, dtype=F64)
    dy = np.arange(12.0).reshape(2, 3, 2)
    np.testing.assert_array_equal(layer.backward(None, dy), [[0 + 2 + 4, 1 + 3 + 5],
                                                             [6 + 8 + 10, 7 + 9 + 11]])


@pytest.mark.parametrize("n", [1, 4])
def test_repeat_vector_input_gradient(n):
    check_input_gradient(layers.RepeatVector(n, dtype=F64), rand((3, 4)))


@pytest.mark.parametrize("n, error", [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                      ("3", TypeError), (True, TypeError), (None, TypeError)])
def test_repeat_vector_rejects_bad_n(n, error):
    with pytest.raises(error, match="`n`"):
        layers.RepeatVector(n)


def test_repeat_vector_needs_a_2d_input():
    with pytest.raises(ValueError, match="expected ndim=2"):
        layers.RepeatVector(2)(fastconv.Input((3, 4)))


# ----------------------------------------------------------------------------
# Identity


def test_identity_returns_its_input_and_gradient():
    x = rand((3, 4, 2))
    layer = layers.Identity(dtype=F64)
    y, ctx = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(ctx, 2 * x), 2 * x)
    assert layer.compute_output_shape((None, 4, 2)) == (None, 4, 2)
    check_input_gradient(layer, x)


def test_identity_passes_a_list_of_tensors():
    a, b = fastconv.Input((3,)), fastconv.Input((2, 2))
    out_a, out_b = layers.Identity()([a, b])
    assert tuple(out_a.shape) == (None, 3) and tuple(out_b.shape) == (None, 2, 2)
    model = fastconv.Model([a, b], layers.Concatenate()([out_a, layers.Flatten()(out_b)]))
    xa, xb = rand((2, 3)).astype(np.float32), rand((2, 2, 2), 1).astype(np.float32)
    np.testing.assert_array_equal(model.predict([xa, xb], verbose=0),
                                  np.concatenate([xa, xb.reshape(2, 4)], axis=1))


def test_gradients_flow_through_identity_on_a_list():
    a, b = fastconv.Input((3,), dtype=F64), fastconv.Input((3,), dtype=F64)
    ha, hb = layers.Dense(2, dtype=F64)(a), layers.Dense(2, dtype=F64)(b)
    ia, ib = layers.Identity(dtype=F64)([ha, hb])
    model = fastconv.Model([a, b], layers.Dense(1, dtype=F64)(layers.Multiply(dtype=F64)([ia, ib])))
    model.compile("sgd", "mse")
    errors = check_gradients(model, [rand((4, 3)), rand((4, 3), 1)], rand((4, 1), 2))
    assert len(errors) == 6  # every kernel and bias was checked


def test_identity_takes_no_arguments_of_its_own():
    with pytest.raises(TypeError, match="units"):
        layers.Identity(units=3)


# ----------------------------------------------------------------------------
# in models: gradients, configs, saving, cloning


def test_weight_gradients_through_the_shape_layers():
    assert_gradients([layers.Dense(4, dtype=F64), layers.RepeatVector(3, dtype=F64),
                      layers.Permute((2, 1), dtype=F64), layers.Identity(dtype=F64),
                      layers.Dense(2, dtype=F64), layers.Flatten(dtype=F64),
                      layers.Dense(2, dtype=F64)], (3, 5), (3, 2))


@pytest.mark.parametrize("make, expected", [
    (lambda: layers.Permute((3, 1, 2)), {"dims": [3, 1, 2]}),
    (lambda: layers.RepeatVector(4), {"n": 4}),
    (lambda: layers.Identity(), {}),
])
def test_config_follows_keras_and_round_trips(make, expected):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    assert set(config) == {"name", "trainable", "dtype", *expected}
    for key, value in expected.items():
        assert config[key] == value
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def shape_model():
    inputs = fastconv.Input((4, 3))
    h = layers.Permute((2, 1))(inputs)
    h = layers.Identity()(h)
    h = layers.Flatten()(h)
    h = layers.RepeatVector(2)(h)
    h = layers.Permute((2, 1))(h)
    return fastconv.Model(inputs, layers.Dense(2)(layers.Flatten()(h)))


def test_save_and_load_round_trip(tmp_path):
    model = shape_model()
    x = rand((3, 4, 3)).astype(np.float32)
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_clone_model_and_training():
    model = shape_model()
    clone = models.clone_model(model)
    assert clone.get_config() == model.get_config()
    clone.compile("adam", "mse")
    x, y = rand((8, 4, 3)).astype(np.float32), rand((8, 2), 1).astype(np.float32)
    history = clone.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

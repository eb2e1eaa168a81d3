"""The pooling layers of every rank (MaxPooling1D/2D/3D, AveragePooling1D/2D/3D
and their Keras aliases): values against NumPy windows and by hand, Keras'
output shapes, gradients, errors and configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from layer_helpers import F64, assert_gradients, check_input_gradient
from nd_helpers import keras_conv_length, naive_pool, rand, to_first, to_last

import fastconv
from fastconv import layers

POOLS = {("max", 1): layers.MaxPooling1D, ("max", 2): layers.MaxPooling2D,
         ("max", 3): layers.MaxPooling3D, ("average", 1): layers.AveragePooling1D,
         ("average", 2): layers.AveragePooling2D, ("average", 3): layers.AveragePooling3D}

CASES = [
    # x_shape, pool_size, strides, padding
    ((2, 9, 3), 2, None, "valid"),
    ((2, 9, 3), 2, None, "same"),
    ((1, 10, 2), 3, 1, "same"),
    ((1, 11, 2), 3, 2, "valid"),
    ((1, 7, 2), 7, None, "valid"),  # window = input
    ((2, 7, 6, 3), (3, 2), (2, 1), "same"),
    ((2, 5, 6, 4, 2), 2, None, "valid"),
    ((1, 5, 6, 4, 2), (2, 3, 2), (1, 2, 3), "same"),
    ((1, 4, 5, 5, 3), 3, 2, "same"),
    ((1, 3, 4, 4, 2), (3, 4, 4), None, "valid"),  # window = input
]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("x_shape, pool, strides, padding", CASES)
def test_pooling_values(x_shape, pool, strides, padding, data_format, mode):
    x = rand(x_shape, 4)
    layer = POOLS[mode, len(x_shape) - 2](pool, strides=strides, padding=padding,
                                          data_format=data_format, dtype=F64)
    first = data_format == "channels_first"
    got = to_last(layer(to_first(x))) if first else layer(x)
    np.testing.assert_allclose(got, naive_pool(x, pool, strides, padding, mode),
                               rtol=1e-12, atol=1e-12)


def test_pooling_by_hand():
    x = np.array([1.0, 5, 2, 4, 3, 3, 0]).reshape(1, 7, 1)
    np.testing.assert_array_equal(layers.MaxPooling1D()(x)[0, :, 0], [5, 4, 3])
    np.testing.assert_array_equal(layers.MaxPooling1D(padding="same")(x)[0, :, 0],
                                  [5, 4, 3, 0])
    # "same" averages only the elements inside the sequence
    np.testing.assert_array_equal(layers.AveragePooling1D(2, padding="same")(x)[0, :, 0],
                                  [3, 3, 3, 0])
    np.testing.assert_array_equal(layers.AveragePooling1D(3, strides=2)(x)[0, :, 0],
                                  np.float32([8 / 3, 3, 2]))
    cube = np.arange(8.0).reshape(1, 2, 2, 2, 1)
    assert layers.MaxPooling3D()(cube).reshape(-1).tolist() == [7]
    assert layers.AveragePooling3D(2)(cube).reshape(-1).tolist() == [3.5]


def test_max_pooling_gradient_goes_to_the_first_maximum():
    layer = layers.MaxPooling1D(3, strides=1, dtype=F64)
    x = np.array([2.0, 2.0, 1.0, 2.0]).reshape(1, 4, 1)
    y, ctx = layer.forward(x)
    np.testing.assert_array_equal(layer.backward(ctx, np.ones_like(y))[0, :, 0], [1, 1, 0, 0])


@pytest.mark.parametrize("spatial", [(9,), (None,), (7, 8), (None, 6), (5, None, 6)])
@pytest.mark.parametrize("pool, strides", [(2, None), (3, 1), (3, 2)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pooling_output_shape_is_keras(spatial, pool, strides, padding, mode):
    rank = len(spatial)
    want = tuple(keras_conv_length(n, pool, strides or pool, 1, padding) for n in spatial)
    for data_format in ("channels_last", "channels_first"):
        layer = POOLS[mode, rank](pool, strides=strides, padding=padding,
                                  data_format=data_format)
        first = data_format == "channels_first"
        shape = (None, 3, *spatial) if first else (None, *spatial, 3)
        assert layer.compute_output_shape(shape) == ((None, 3, *want) if first
                                                     else (None, *want, 3))
    if None not in spatial:
        assert POOLS[mode, rank](pool, strides=strides, padding=padding)(
            rand((2, *spatial, 3))).shape == (2, *want, 3)


@pytest.fixture
def one_thread():
    """Kernels on one thread: finite differences make hundreds of tiny calls,
    for which waking threads costs more than the work."""
    threads = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(threads)


@pytest.mark.parametrize("make, x_shape", [
    (lambda: layers.MaxPooling1D(2, dtype=F64), (2, 7, 2)),
    (lambda: layers.MaxPooling1D(3, strides=2, padding="same", data_format="channels_first",
                                 dtype=F64), (1, 2, 8)),
    (lambda: layers.AveragePooling1D(3, strides=1, padding="same", dtype=F64), (2, 6, 2)),
    (lambda: layers.MaxPooling3D(2, dtype=F64), (1, 4, 4, 3, 2)),
    (lambda: layers.MaxPooling3D((2, 1, 2), padding="same", data_format="channels_first",
                                 dtype=F64), (1, 2, 3, 3, 3)),
    (lambda: layers.AveragePooling3D(2, strides=1, padding="same", dtype=F64), (1, 3, 3, 2, 2)),
])
@pytest.mark.usefixtures("one_thread")
def test_input_gradient(make, x_shape):
    check_input_gradient(make(), rand(x_shape, 9))


@pytest.mark.usefixtures("one_thread")
def test_gradients_through_pooling_in_a_model():
    assert_gradients([layers.Conv1D(3, 2, dtype=F64), layers.MaxPooling1D(dtype=F64),
                      layers.AveragePooling1D(2, dtype=F64), layers.Flatten(dtype=F64)],
                     (2, 10, 2), (2, 6))
    assert_gradients([layers.Conv3D(2, 2, padding="same", dtype=F64),
                      layers.MaxPooling3D(dtype=F64), layers.Flatten(dtype=F64)],
                     (2, 4, 4, 2, 1), (2, 8))


@pytest.mark.parametrize("make, argument", [
    (lambda: layers.MaxPooling1D(0), "pool_size"),
    (lambda: layers.MaxPooling1D((2, 2)), "pool_size"),
    (lambda: layers.AveragePooling3D((2, 2)), "pool_size"),
    (lambda: layers.MaxPooling3D(2, strides=(1, 0, 1)), "strides"),
    (lambda: layers.AveragePooling1D(2, padding="causal"), "padding"),
    (lambda: layers.MaxPooling3D(data_format="channels_middle"), "data_format"),
    (lambda: layers.MaxPooling1D(2, pool_mode="max"), "pool_mode"),
])
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises((ValueError, TypeError), match=f"`{argument}`|{argument}"):
        make()


def test_wrong_rank_and_too_small_inputs_are_rejected():
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=4"):
        layers.MaxPooling1D()(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="expected ndim=5"):
        layers.AveragePooling3D()(fastconv.Input((4, 4, 1)))
    with pytest.raises(ValueError, match="smaller than"):
        layers.MaxPooling1D(4).compute_output_shape((None, 3, 1))


def test_any_shape_of_the_right_rank_once_built():
    pool = layers.MaxPooling1D()
    assert pool(rand((1, 8, 2))).shape == (1, 4, 2)
    assert pool(rand((3, 5, 2))).shape == (3, 2, 2)  # Keras checks only the rank
    assert pool(fastconv.Input((None, 7))).shape == (None, None, 7)
    with pytest.raises(ValueError, match="incompatible"):
        pool(rand((3, 5, 2, 1)))


@pytest.mark.parametrize("layer, x_shape", [
    (layers.MaxPooling1D(3, strides=2, padding="same", dtype=F64), (2, 7, 2)),
    (layers.AveragePooling1D(2, data_format="channels_first", dtype=F64), (2, 2, 6)),
    (layers.MaxPooling3D((1, 2, 2), dtype=F64), (1, 2, 4, 4, 2)),
    (layers.AveragePooling3D(2, strides=(1, 2, 2), padding="same", dtype=F64), (1, 3, 4, 4, 1)),
])
def test_config_round_trip(layer, x_shape):
    x = rand(x_shape, 2)
    y = layer(x)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(clone(x), y)


def test_keras_names_defaults_and_aliases():
    fastconv.backend.clear_session()
    assert [cls().name for cls in (layers.MaxPooling1D, layers.MaxPooling3D,
                                   layers.AveragePooling1D, layers.AveragePooling3D)] == [
        "max_pooling1d", "max_pooling3d", "average_pooling1d", "average_pooling3d"]
    assert layers.MaxPooling1D().get_config()["pool_size"] == [2]
    assert layers.MaxPooling3D().get_config()["strides"] == [2, 2, 2]
    assert (layers.MaxPool1D, layers.MaxPool3D, layers.AvgPool1D, layers.AvgPool3D) == (
        layers.MaxPooling1D, layers.MaxPooling3D, layers.AveragePooling1D,
        layers.AveragePooling3D)
    from fastconv.layers import registry
    assert registry.resolve("AvgPool3D") is layers.AveragePooling3D
    assert layers.MaxPooling1D().get_weights() == []

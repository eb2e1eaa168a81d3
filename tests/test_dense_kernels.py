"""The dense layer's compiled products (fastconv.ops.dense) against NumPy in
float64, and the bitwise contracts the chunked training relies on: a row of
a product does not depend on the other rows, a chunk run alone gives its
share of the batch's weight gradient, and the thread count and the register
blocks change no bit."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers
from fastconv.ops import dense
from fastconv.runtime import batch

# Rows, inputs, units: the vector and register-block tails (4 rows, 2
# vectors of columns) and a CNN head's sizes.
SHAPES = [(1, 1, 1), (7, 3, 1), (5, 9, 16), (33, 17, 35), (64, 576, 64), (64, 64, 10),
          (19, 40, 33)]
ISAS = fastconv.supported_isas()


def _data(m, k, u, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, u)).astype(dtype),
            rng.standard_normal(u).astype(dtype), rng.standard_normal((m, u)).astype(dtype))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, u", SHAPES)
def test_products_match_numpy_in_float64(isa, dtype, m, k, u, restore_settings):
    fastconv.set_isa(isa)
    x, w, b, dz = _data(m, k, u, dtype)
    x64, w64, dz64 = x.astype(np.float64), w.astype(np.float64), dz.astype(np.float64)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dense.linear(x, w, b), x64 @ w64 + b, rtol=rtol,
                               atol=rtol * np.sqrt(k))
    np.testing.assert_allclose(dense.linear(x, w), x64 @ w64, rtol=rtol, atol=rtol * np.sqrt(k))
    np.testing.assert_allclose(dense.linear_input_gradient(dz, w), dz64 @ w64.T, rtol=rtol,
                               atol=rtol * np.sqrt(u))
    np.testing.assert_allclose(dense.linear_weight_gradient(x, dz), x64.T @ dz64, rtol=rtol,
                               atol=rtol * np.sqrt(m))


def test_a_hand_computed_case():
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    w = np.array([[1.0, 0.5, -2.0], [4.0, 1.0, 0.0]], np.float32)
    assert dense.linear(x, w, np.array([1.0, 0.0, 0.5], np.float32)).tolist() == [
        [10.0, 2.5, -1.5], [0.0, 0.5, -5.5]]
    dz = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], np.float32)
    assert dense.linear_input_gradient(dz, w).tolist() == [[-3.0, 4.0], [-1.5, 1.0]]
    assert dense.linear_weight_gradient(x, dz).tolist() == [[1.0, 3.0, 5.0],
                                                            [2.0, -1.0, 3.0]]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, u", [(33, 17, 35), (64, 576, 64), (300, 200, 40)])
def test_bits_do_not_depend_on_threads_rows_or_chunking(isa, dtype, m, k, u,
                                                        restore_settings, monkeypatch):
    fastconv.set_isa(isa)
    # Every size worth a second thread, so the thread counts really differ.
    monkeypatch.setattr(dense, "_WORK_PER_THREAD", 1)
    x, w, b, dz = _data(m, k, u, dtype, seed=1)
    results = []
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results.append((dense.linear(x, w, b), dense.linear_input_gradient(dz, w),
                        dense.linear_weight_gradient(x, dz)))
    for got in results[1:]:
        for a, e in zip(got, results[0]):
            np.testing.assert_array_equal(a, e)
    forward, backward, _ = results[0]
    for r0, r1 in [(0, 1), (3, 4), (5, 12), (m - 1, m), (1, m)]:
        np.testing.assert_array_equal(dense.linear(x[r0:r1], w, b), forward[r0:r1])
        np.testing.assert_array_equal(dense.linear_input_gradient(dz[r0:r1], w),
                                      backward[r0:r1])
    parts = []
    for j, (s, e) in enumerate(batch.chunk_bounds(m)):
        with batch.chunk_of(m, j):
            parts.append(dense.linear_weight_gradient(x[s:e], dz[s:e]))
    np.testing.assert_array_equal(batch.fold(parts), results[0][2])


def test_samples_of_several_rows_chunk_by_sample():
    """A Dense on (batch, steps, features): the chunks are the batch's, each
    sample's rows staying in one chunk."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 3, 5)).astype(np.float32)
    dz = rng.standard_normal((20, 3, 4)).astype(np.float32)
    whole = dense.linear_weight_gradient(x.reshape(-1, 5), dz.reshape(-1, 4), 20)
    parts = []
    for j, (s, e) in enumerate(batch.chunk_bounds(20)):
        with batch.chunk_of(20, j):
            parts.append(dense.linear_weight_gradient(x[s:e].reshape(-1, 5),
                                                      dz[s:e].reshape(-1, 4), e - s))
    np.testing.assert_array_equal(batch.fold(parts), whole)
    np.testing.assert_allclose(whole, np.einsum("ntk,ntu->ku", x.astype(np.float64), dz),
                               rtol=2e-5, atol=1e-5)


def test_empty_sides():
    assert dense.linear(np.zeros((0, 3), np.float32), np.ones((3, 2), np.float32)).shape == (0, 2)
    out = dense.linear(np.zeros((2, 0), np.float32), np.ones((0, 2), np.float32),
                       np.array([1.0, 2.0], np.float32))
    assert out.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    assert dense.linear_weight_gradient(np.zeros((0, 3)), np.zeros((0, 2))).tolist() == [
        [0.0, 0.0]] * 3


def test_only_one_float_dtype_of_2_d_arrays_is_taken():
    f32, f64 = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float64)
    assert dense.supported(f32, f32) and dense.supported(f64, f64)
    assert not dense.supported(f32, f64)
    assert not dense.supported(np.zeros((2, 2), np.float16), np.zeros((2, 2), np.float16))
    assert not dense.supported(np.zeros((2, 2, 2), np.float32), f32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_dense_layer_gives_numpys_values_and_gradients(dtype):
    """Through the layer, on 3-D inputs, with the bias and an activation."""
    rng = np.random.default_rng(3)
    layer = layers.Dense(6, activation="tanh", dtype=dtype)
    x = rng.standard_normal((9, 4, 5)).astype(dtype)
    layer.build(x.shape)
    w = layer.kernel.value.astype(np.float64)
    b = rng.standard_normal(6)
    layer.bias.value[...] = b
    b = layer.bias.value.astype(np.float64)
    y, ctx = layer.forward(x, training=True)
    z = x.astype(np.float64) @ w + b
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(y, np.tanh(z), rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    layer.kernel.grad = np.zeros_like(layer.kernel.value)
    layer.bias.grad = np.zeros_like(layer.bias.value)
    dx = layer.backward(ctx, dy)
    dz = dy.astype(np.float64) * (1 - np.tanh(z) ** 2)
    np.testing.assert_allclose(dx, dz @ w.T, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(layer.kernel.grad, np.einsum("ntk,ntu->ku", x, dz),
                               rtol=10 * tol, atol=10 * tol * 6)
    np.testing.assert_allclose(layer.bias.grad, dz.sum(axis=(0, 1)), rtol=10 * tol,
                               atol=10 * tol * 6)

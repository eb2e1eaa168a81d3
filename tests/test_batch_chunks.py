"""The batch-chunk contract (fastconv.runtime.batch): a layer run on one
chunk of a batch inside ``chunk_of`` gives that chunk's rows of the whole
batch's output and input gradient bit for bit, and the chunks' weight
gradients added in chunk order give the whole batch's."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import layers
from fastconv.runtime import batch


def test_chunk_bounds_cover_the_batch_in_order():
    assert batch.chunk_bounds(5) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    bounds = batch.chunk_bounds(100)
    assert len(bounds) == batch.CHUNKS
    assert bounds[0][0] == 0 and bounds[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert {e - b for b, e in bounds} == {6, 7}


def test_chunk_of_rejects_an_index_outside_the_batch():
    with pytest.raises(ValueError, match="index"):
        with batch.chunk_of(10, 10):
            pass


@pytest.mark.parametrize("n, features, units", [(64, 576, 64), (37, 64, 10), (256, 300, 33)])
def test_dense_on_one_chunk_matches_the_whole_batch(n, features, units):
    rng = np.random.default_rng(n)
    layer = layers.Dense(units, activation="relu")
    layer.build((None, features))
    layer.bias.value[...] = rng.standard_normal(units)
    x = rng.standard_normal((n, features)).astype(np.float32)
    dy = rng.standard_normal((n, units)).astype(np.float32)

    layer.kernel.zero_grad(), layer.bias.zero_grad()
    y, ctx = layer.forward(x, training=True)
    dx = layer.backward(ctx, dy)
    dw_full, db_full = layer.kernel.grad.copy(), layer.bias.grad.copy()

    dw_parts, db_parts = [], []
    for j, (b, e) in enumerate(batch.chunk_bounds(n)):
        with batch.chunk_of(n, j):
            layer.kernel.zero_grad(), layer.bias.zero_grad()
            y_j, ctx_j = layer.forward(np.array(x[b:e]), training=True)
            dx_j = layer.backward(ctx_j, np.array(dy[b:e]))
        np.testing.assert_array_equal(y_j, y[b:e])
        np.testing.assert_array_equal(dx_j, dx[b:e])
        dw_parts.append(layer.kernel.grad.copy())
        db_parts.append(layer.bias.grad.copy())
    dw, db = dw_parts[0], db_parts[0]
    for p, q in zip(dw_parts[1:], db_parts[1:]):
        dw, db = dw + p, db + q
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
    # and the chunked sum is the true one, to float32 rounding
    np.testing.assert_allclose(dw_full, x.T.astype(np.float64) @ (dy * (y > 0)),
                               rtol=1e-4, atol=1e-3)


# (x shape, kernel shape, strides, padding, dilation): kernels whose dw goes by
# blocks of its elements (whole output-channel blocks: 32, 64), by chunks
# (a channel tail: 40; few taps x channels: C_in 1), a chunk of more rows
# than one cache tile (the 40x40 images), and a 3-D kernel.
CONV_CASES = [
    ((64, 5, 5, 64), (3, 3, 64, 64), 1, "valid", 1),
    ((37, 9, 11, 20), (3, 2, 20, 32), (2, 1), "same", 1),
    ((19, 8, 8, 13), (3, 3, 13, 64), 1, "same", 2),
    ((20, 7, 7, 16), (3, 3, 16, 40), 1, "valid", 1),
    ((33, 12, 12, 1), (3, 3, 1, 32), 1, "valid", 1),
    ((3, 40, 40, 16), (3, 3, 16, 32), 1, "valid", 1),
    ((17, 5, 6, 6, 8), (2, 3, 3, 8, 32), 1, "same", 1),
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilation", CONV_CASES)
def test_conv_weight_gradient_of_the_chunks_adds_up_to_the_whole_batch(
        x_shape, w_shape, strides, padding, dilation, threads, isa, restore_settings):
    import fastconv
    from fastconv import ops, reference

    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(len(x_shape) * 100 + x_shape[0])
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    y = ops.conv_nd(x, w, None, strides, padding, dilation)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _, dw_full, db_full = ops.conv_nd_backward(dy, x, w, strides, padding, dilation,
                                               need_dx=False)
    n = len(x)
    dw = db = None
    for j, (b, e) in enumerate(batch.chunk_bounds(n)):
        with batch.chunk_of(n, j):
            _, dw_j, db_j = ops.conv_nd_backward(np.array(dy[b:e]), np.array(x[b:e]), w,
                                                 strides, padding, dilation, need_dx=False)
        dw, db = (dw_j, db_j) if dw is None else (dw + dw_j, db + db_j)
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
    _, dw_ref, db_ref = reference.conv_nd_backward(dy.astype(np.float64), x.astype(np.float64),
                                                   w.astype(np.float64), strides, padding,
                                                   dilation, need_dx=False)
    np.testing.assert_allclose(dw_full, dw_ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(db_full, db_ref, rtol=1e-4, atol=1e-3)

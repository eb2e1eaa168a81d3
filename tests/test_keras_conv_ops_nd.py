"""Keras' convolution and pooling ops of rank 1 to 3 (conv, depthwise_conv,
separable_conv, conv_transpose, max_pool, average_pool): values against
torch and NumPy, symbolic shapes, gradients through the executor against
finite differences, and the layers' values."""

from __future__ import annotations

import numpy as np
import pytest
from nd_helpers import (
    naive_pool,
    rand,
    to_first,
    to_last,
    torch_conv,
    torch_conv_transpose,
    torch_depthwise,
)

import fastconv
from fastconv import layers, ops
from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor

TOL = {"rtol": 1e-10, "atol": 1e-10}


def both_formats(op, x, *args, **kwargs):
    """op's channels-last result, checked equal to its channels_first one."""
    y = op(x, *args, **kwargs)
    first = op(to_first(x), *args, **kwargs, data_format="channels_first")
    np.testing.assert_allclose(to_last(first), y, rtol=1e-12, atol=1e-12)
    return y


@pytest.mark.parametrize("x_shape, kernel, strides, padding, dilation", [
    ((2, 9, 4), (3, 2, 6), 1, "valid", 1),  # 2 groups
    ((1, 10, 3), (2, 3, 4), 2, "same", 1),
    ((1, 6, 7, 4), (3, 2, 1, 8), (2, 1), "same", 1),  # depthwise by groups
    ((2, 4, 5, 5, 2), (2, 3, 2, 2, 3), 1, "same", (1, 2, 1)),
    ((1, 5, 4, 6, 4), (2, 2, 2, 2, 4), (1, 2, 2), "valid", 1),
])
def test_conv(x_shape, kernel, strides, padding, dilation):
    x, w = rand(x_shape, 1), rand(kernel, 2)
    got = both_formats(ops.conv, x, w, strides, padding, dilation_rate=dilation)
    want = torch_conv(x, w, None, strides, padding, dilation, x_shape[-1] // kernel[-2])
    np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("x_shape, m, strides, padding, dilation", [
    ((2, 9, 3), 2, 1, "same", 1), ((1, 8, 2), 1, 2, "valid", 1),
    ((1, 6, 7, 3), 2, (2, 1), "same", 1), ((1, 7, 7, 2), 3, 1, "valid", 2),
])
def test_depthwise_and_separable_conv(x_shape, m, strides, padding, dilation):
    rank, c = len(x_shape) - 2, x_shape[-1]
    x, dw, pw = rand(x_shape, 1), rand((*(2,) * rank, c, m), 2), rand((*(1,) * rank, c * m, 5), 3)
    got = both_formats(ops.depthwise_conv, x, dw, strides, padding, dilation_rate=dilation)
    want = torch_depthwise(x, dw, None, strides, padding, dilation)
    np.testing.assert_allclose(got, want, **TOL)
    got = both_formats(ops.separable_conv, x, dw, pw, strides, padding, dilation_rate=dilation)
    np.testing.assert_allclose(got, torch_conv(want, pw), **TOL)


@pytest.mark.parametrize("x_shape, kernel, strides, padding, output_padding", [
    ((2, 5, 3), (3, 4, 3), 2, "valid", None), ((1, 4, 2), (4, 3, 2), 2, "same", 1),
    ((1, 3, 4, 2), (3, 3, 2, 2), 2, "same", None), ((2, 3, 3, 2), (2, 3, 3, 2), (3, 2), "valid",
                                                     (1, 0)),
    ((1, 2, 3, 2, 2), (2, 2, 2, 3, 2), 2, "same", (1, 0, 1)),
])
def test_conv_transpose(x_shape, kernel, strides, padding, output_padding):
    x, w = rand(x_shape, 1), rand(kernel, 2)
    got = both_formats(ops.conv_transpose, x, w, strides, padding, output_padding)
    np.testing.assert_allclose(got, torch_conv_transpose(x, w, None, strides, padding,
                                                         output_padding), **TOL)


@pytest.mark.parametrize("x_shape, pool, strides, padding", [
    ((2, 9, 3), 2, None, "valid"), ((1, 10, 2), 3, 2, "same"),
    ((2, 5, 6, 4, 2), 2, None, "valid"), ((1, 5, 4, 6, 2), (2, 3, 2), (1, 2, 3), "same"),
])
def test_pools(x_shape, pool, strides, padding):
    x = rand(x_shape, 1)
    np.testing.assert_allclose(both_formats(ops.max_pool, x, pool, strides, padding),
                               naive_pool(x, pool, strides, padding, "max"), **TOL)
    np.testing.assert_allclose(both_formats(ops.average_pool, x, pool, strides, padding),
                               naive_pool(x, pool, strides, padding, "average"), **TOL)


def test_ops_compute_what_the_layers_do():
    x = rand((2, 9, 4), 3).astype(np.float32)
    layer = layers.Conv1D(6, 3, groups=2, use_bias=False)
    np.testing.assert_array_equal(layer(x), ops.conv(x, layer.kernel))
    depthwise = layers.DepthwiseConv1D(3, depth_multiplier=2, use_bias=False)
    np.testing.assert_array_equal(depthwise(x), ops.depthwise_conv(x, depthwise.kernel))
    transpose = layers.Conv1DTranspose(3, 3, strides=2, use_bias=False)
    np.testing.assert_array_equal(transpose(x), ops.conv_transpose(x, transpose.kernel, 2))
    np.testing.assert_array_equal(layers.MaxPooling1D()(x), ops.max_pool(x, 2))


def test_symbolic_shapes():
    seq, vol = KerasTensor((None, None, 4)), KerasTensor((None, 6, None, 6, 2))
    assert ops.conv(seq, np.ones((3, 2, 6)), padding="same").shape == (None, None, 6)
    assert ops.conv(vol, np.ones((2, 2, 2, 2, 3)), 2).shape == (None, 3, None, 3, 3)
    assert ops.depthwise_conv(seq, np.ones((2, 4, 3))).shape == (None, None, 12)
    assert ops.separable_conv(seq, np.ones((2, 4, 1)), np.ones((1, 4, 5)),
                              padding="same").shape == (None, None, 5)
    assert ops.conv_transpose(KerasTensor((None, 3, 4)), np.ones((3, 5, 4)), 2,
                              output_padding=1).shape == (None, 8, 5)
    assert ops.max_pool(vol, 2).shape == (None, 3, None, 3, 2)
    assert ops.average_pool(seq, 3, 1, "same").shape == (None, None, 4)


def test_bad_arguments_name_the_argument():
    seq = np.zeros((1, 8, 4))
    for call, match in [
        (lambda: ops.conv(seq, np.zeros((3, 3, 2))), "`kernel` of `conv`.*multiple"),
        (lambda: ops.conv(seq, np.zeros((3, 3, 4, 2))), "`kernel` of `conv`.*rank-3"),
        (lambda: ops.conv(seq, np.zeros((3, 4, 2)), strides=(1, 1)), "`strides` of `conv`"),
        (lambda: ops.depthwise_conv(seq, np.zeros((3, 3, 2))), "`kernel` of `depthwise_conv`"),
        (lambda: ops.separable_conv(seq, np.zeros((3, 4, 2)), np.zeros((1, 7, 2))),
         "`pointwise_kernel`"),
        (lambda: ops.conv_transpose(seq, np.zeros((3, 2, 3))), "`kernel` of `conv_transpose`"),
        (lambda: ops.conv_transpose(seq, np.zeros((3, 2, 4)), 2, output_padding=2),
         "`output_padding`"),
        (lambda: ops.conv_transpose(seq, np.zeros((3, 2, 4)), padding="causal"), "`padding`"),
        (lambda: ops.max_pool(seq, (2, 2)), "`pool_size` of `max_pool`"),
        (lambda: ops.average_pool(np.zeros((1, 2, 2, 2, 2, 1)), 2), "`inputs`"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


# ----------------------------------------------------------------------------
# gradients through the executor against finite differences


@pytest.fixture
def one_thread():
    """Kernels on one thread: finite differences make hundreds of tiny calls,
    for which waking threads costs more than the work."""
    threads = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(threads)


def check_gradients(build, values):
    """Inputs' gradients of sum(dy * build(*inputs)) against central differences."""
    tensors = [KerasTensor((None, *v.shape[1:]) if i == 0 else v.shape, "float64")
               for i, v in enumerate(values)]
    plan = Plan(Function(tensors, [build(*tensors)]))
    (out,), tape = plan.forward(values, training=True, record=True)
    dy = rand(out.shape, 7)
    grads = plan.backward(tape, [dy], input_grads=True)
    for value, grad in zip(values, grads):
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            saved = value[i]
            value[i] = saved + 1e-6
            up = np.sum(dy * plan.forward(values, training=False)[0][0])
            value[i] = saved - 1e-6
            down = np.sum(dy * plan.forward(values, training=False)[0][0])
            value[i] = saved
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("build, shapes", [
    (lambda x, w: ops.conv(x, w, 2, "same"), [(2, 7, 4), (3, 2, 4)]),
    (lambda x, w: ops.conv(x, w, data_format="channels_first"), [(1, 2, 3, 4, 3), (2, 2, 2, 2, 2)]),
    (lambda x, w: ops.depthwise_conv(x, w, padding="same"), [(1, 5, 4, 2), (2, 2, 2, 2)]),
    (lambda x, w: ops.conv_transpose(x, w, 2, "same", 1), [(1, 4, 2), (3, 3, 2)]),
    (lambda x, w: ops.conv_transpose(x, w, 2, data_format="channels_first"),
     [(1, 2, 2, 3), (2, 2, 3, 2)]),
    (lambda x: ops.max_pool(x, 2, 1, "same"), [(2, 5, 2)]),
    (lambda x: ops.average_pool(x, 2, padding="same"), [(1, 3, 3, 3, 2)]),
])
def test_gradients(build, shapes):
    check_gradients(build, [rand(s, i + 1) for i, s in enumerate(shapes)])


@pytest.mark.usefixtures("one_thread")
def test_separable_conv_gradients():
    check_gradients(lambda x, d, p: ops.separable_conv(x, d, p, 2, "same"),
                    [rand((1, 7, 2), 1), rand((3, 2, 2), 2), rand((1, 4, 3), 3)])


def test_unknown_sizes_take_windows_larger_than_any_probe():
    # The output shape of an unknown size comes from Keras' formula, not from
    # running the op on a small probe the window would not fit.
    seq = KerasTensor((None, None, 2))
    assert ops.conv(seq, np.ones((9, 2, 3))).shape == (None, None, 3)
    assert ops.conv(seq, np.ones((3, 2, 3)), dilation_rate=5).shape == (None, None, 3)
    assert ops.max_pool(seq, 8).shape == (None, None, 2)
    assert ops.depthwise_conv(KerasTensor((None, 9, None, 2)), np.ones((9, 9, 2, 2))).shape == (
        None, 1, None, 4)
    with pytest.raises(ValueError, match="larger than the input"):
        ops.conv(KerasTensor((None, 4, None, 2)), np.ones((5, 1, 2, 3)))


@pytest.mark.parametrize("call", [
    lambda x: ops.conv(x, np.ones((3, 2, 3, 4)), (2, 1), "same", "channels_first"),
    lambda x: ops.depthwise_conv(x, np.ones((2, 3, 3, 2)), 1, "valid", None, (2, 1)),
    lambda x: ops.conv_transpose(x, np.ones((3, 2, 5, 3)), 2, "same", 1),
    lambda x: ops.conv_transpose(x, np.ones((2, 3, 5, 3)), (3, 2), "valid"),
    lambda x: ops.max_pool(x, (3, 2), 2, "same"),
    lambda x: ops.average_pool(x, 2, 1, "valid", "channels_first"),
])
def test_the_shape_rule_agrees_with_the_op(call):
    x = rand((2, 3, 9, 3), 1)
    unknown = call(KerasTensor((None, 3, None, 3), "float64"))
    known = call(x)
    assert unknown.shape == tuple(None if u is None else k
                                  for u, k in zip(unknown.shape, known.shape))
    assert unknown.shape[1] == known.shape[1] and unknown.dtype == known.dtype.name


def test_a_keras_style_layer_with_ops_conv_trains_on_any_length():
    class CausalConv(layers.Layer):
        def __init__(self, filters, kernel_size, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.kernel_size = filters, kernel_size

        def build(self, input_shape):
            self.kernel = self.add_weight((self.kernel_size, input_shape[-1], self.filters))

        def call(self, x):
            pad = ops.zeros_like(x[:, : self.kernel_size - 1])
            return ops.relu(ops.conv(ops.concatenate([pad, x], axis=1), self.kernel))

    fastconv.utils.set_random_seed(0)
    inputs = fastconv.Input((None, 1))
    model = fastconv.Model(inputs, layers.Conv1D(1, 1)(CausalConv(4, 9)(inputs)))
    assert model.output_shape == (None, None, 1)
    model.compile(optimizer="adam", loss="mse")
    for length in (12, 20):
        x = rand((4, length, 1), length).astype(np.float32)
        model.fit(x, x, epochs=1, verbose=0)
        assert model.predict(x, verbose=0).shape == (4, length, 1)

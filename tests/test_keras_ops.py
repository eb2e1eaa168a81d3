"""fastconv.ops' Keras ops: eager values against NumPy, gradients through the
graph executor against central finite differences, symbolic shapes, operator
overloads on KerasTensor, conv/pooling against the kernel functions, and
argument errors.

Only the graph interface (node, function, executor), Variable and the kernel
functions are used besides the ops themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import ops
from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor
from fastconv.layers.base import Variable

RNG = np.random.default_rng(0)
DTYPES = ["float32", "float64"]


def away_from_zero(shape: tuple) -> np.ndarray:
    """Random values with |v| >= 0.2: no kink of abs/relu/max within the FD step."""
    r = RNG.standard_normal(shape)
    return np.sign(r) * (0.2 + np.abs(r))


def positive(shape: tuple) -> np.ndarray:
    return RNG.uniform(0.5, 2.0, shape)


def run(inputs: list, outputs: list, values: list, dys: list | None = None):
    """Forward and backward through a Plan: (outputs, input gradients)."""
    plan = Plan(Function(inputs, outputs))
    outs, tape = plan.forward(values, training=True, record=True)
    if dys is None:
        return outs, None
    return outs, plan.backward(tape, dys, input_grads=True)


def numerical_gradient(f, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f at ``value``."""
    grad = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        old = value[i]
        value[i] = old + eps
        up = f()
        value[i] = old - eps
        down = f()
        value[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def check_gradients(build, values: list, shapes: list | None = None, atol: float = 1e-6):
    """Build ``y = build(*tensors)`` on KerasTensors (batch None), then compare
    the executor's input gradients with finite differences of sum(dy * y)."""
    shapes = shapes or [(None,) + v.shape[1:] for v in values]
    tensors = [KerasTensor(s, "float64") for s in shapes]
    y = build(*tensors)
    plan = Plan(Function(tensors, [y]))
    (out,), tape = plan.forward(values, training=True, record=True)
    dy = RNG.standard_normal(out.shape)
    grads = plan.backward(tape, [dy], input_grads=True)

    def loss():
        return float(np.sum(dy * plan.forward(values, training=False)[0][0]))

    for value, grad in zip(values, grads):
        expected = numerical_gradient(loss, value)
        if grad is None:
            grad = np.zeros_like(value)
        assert grad.shape == value.shape and grad.dtype == value.dtype
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=atol)


# ----------------------------------------------------------------------------
# eager values

X = away_from_zero((2, 3, 4))
P = positive((2, 3, 4))
W = RNG.standard_normal((4, 5))
V4 = RNG.standard_normal(4)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


EAGER = {
    "add": (lambda x, p: ops.add(x, 2), lambda x, p: x + 2),
    "subtract": (lambda x, p: ops.subtract(x, p), lambda x, p: x - p),
    "multiply": (lambda x, p: ops.multiply(x, p), lambda x, p: x * p),
    "divide": (lambda x, p: ops.divide(x, p), lambda x, p: x / p),
    "true_divide": (lambda x, p: ops.true_divide(x, p), lambda x, p: x / p),
    "negative": (lambda x, p: ops.negative(x), lambda x, p: -x),
    "abs": (lambda x, p: ops.abs(x), lambda x, p: np.abs(x)),
    "absolute": (lambda x, p: ops.absolute(x), lambda x, p: np.abs(x)),
    "square": (lambda x, p: ops.square(x), lambda x, p: x * x),
    "sqrt": (lambda x, p: ops.sqrt(p), lambda x, p: p ** 0.5),
    "exp": (lambda x, p: ops.exp(x), lambda x, p: np.exp(x)),
    "log": (lambda x, p: ops.log(p), lambda x, p: np.log(p)),
    "log1p": (lambda x, p: ops.log1p(p), lambda x, p: np.log(1 + p)),
    "tanh": (lambda x, p: ops.tanh(x), lambda x, p: np.tanh(x)),
    "power": (lambda x, p: ops.power(p, x), lambda x, p: p ** x),
    "maximum": (lambda x, p: ops.maximum(x, 0.5), lambda x, p: np.where(x > 0.5, x, 0.5)),
    "minimum": (lambda x, p: ops.minimum(x, p), lambda x, p: np.where(x < p, x, p)),
    "clip": (lambda x, p: ops.clip(x, -0.5, 0.5), lambda x, p: np.minimum(np.maximum(x, -.5), .5)),
    "where": (lambda x, p: ops.where(x > 0, x, p), lambda x, p: np.where(x > 0, x, p)),
    "sign": (lambda x, p: ops.sign(x), lambda x, p: (x > 0) * 1.0 - (x < 0)),
    "floor": (lambda x, p: ops.floor(3 * x), lambda x, p: np.floor(3 * x)),
    "ceil": (lambda x, p: ops.ceil(3 * x), lambda x, p: np.ceil(3 * x)),
    "round": (lambda x, p: ops.round(x, 1), lambda x, p: np.round(x, 1)),
    "sum": (lambda x, p: ops.sum(x, axis=(0, 2)), lambda x, p: x.sum(0).sum(-1)),
    "mean": (lambda x, p: ops.mean(x, axis=1, keepdims=True),
             lambda x, p: x.sum(1, keepdims=True) / 3),
    "max": (lambda x, p: ops.max(x, axis=-1), lambda x, p: np.maximum.reduce(x, axis=-1)),
    "min": (lambda x, p: ops.min(x), lambda x, p: np.minimum.reduce(x.ravel())),
    "logsumexp": (lambda x, p: ops.logsumexp(x, axis=1), lambda x, p: np.log(np.exp(x).sum(1))),
    "var": (lambda x, p: ops.var(x, axis=2),
            lambda x, p: ((x - x.mean(2, keepdims=True)) ** 2).mean(2)),
    "std": (lambda x, p: ops.std(x), lambda x, p: np.sqrt(((x - x.mean()) ** 2).mean())),
    "matmul": (lambda x, p: ops.matmul(x, W.astype(x.dtype)),
               lambda x, p: np.einsum("bij,jk->bik", x, W)),
    "dot": (lambda x, p: ops.dot(x, V4.astype(x.dtype)), lambda x, p: (x * V4).sum(-1)),
    "einsum": (lambda x, p: ops.einsum("bij,bij->bj", x, p), lambda x, p: (x * p).sum(1)),
    "tensordot": (lambda x, p: ops.tensordot(x, p, axes=([0, 1], [0, 1])),
                  lambda x, p: np.einsum("abi,abj->ij", x, p)),
    "reshape": (lambda x, p: ops.reshape(x, (-1, 6)), lambda x, p: x.ravel().reshape(4, 6)),
    "transpose": (lambda x, p: ops.transpose(x, (2, 0, 1)), lambda x, p: np.moveaxis(x, 2, 0)),
    "expand_dims": (lambda x, p: ops.expand_dims(x, 1), lambda x, p: x[:, None]),
    "squeeze": (lambda x, p: ops.squeeze(x[:, :1]), lambda x, p: x[:, 0]),
    "concatenate": (lambda x, p: ops.concatenate([x, p], axis=1), lambda x, p: np.hstack([x, p])),
    "stack": (lambda x, p: ops.stack([x, p], axis=1), lambda x, p: np.array([x, p]).swapaxes(0, 1)),
    "getitem": (lambda x, p: ops.getitem(x, (slice(None), 0, [1, 1])),
                lambda x, p: x[:, 0][:, [1, 1]]),
    "take": (lambda x, p: ops.take(x, [2, 0], axis=2), lambda x, p: x[:, :, [2, 0]]),
    "tile": (lambda x, p: ops.tile(x, (1, 2)), lambda x, p: np.concatenate([x, x], axis=2)),
    "repeat": (lambda x, p: ops.repeat(x, 2, axis=1), lambda x, p: x[:, [0, 0, 1, 1, 2, 2]]),
    "broadcast_to": (lambda x, p: ops.broadcast_to(x[0], (2, 3, 4)),
                     lambda x, p: np.array([x[0], x[0]])),
    "zeros_like": (lambda x, p: ops.zeros_like(x), lambda x, p: 0 * x),
    "ones_like": (lambda x, p: ops.ones_like(x), lambda x, p: 0 * x + 1),
    "cast": (lambda x, p: ops.cast(ops.cast(x, "float16"), x.dtype),
             lambda x, p: x.astype("float16").astype(x.dtype)),
    "convert_to_tensor": (lambda x, p: ops.convert_to_tensor(x), lambda x, p: x),
    "relu": (lambda x, p: ops.relu(x), lambda x, p: x * (x > 0)),
    "relu6": (lambda x, p: ops.relu6(4 * x), lambda x, p: np.clip(4 * x, 0, 6)),
    "sigmoid": (lambda x, p: ops.sigmoid(x), lambda x, p: _sigmoid(x)),
    "hard_sigmoid": (lambda x, p: ops.hard_sigmoid(2 * x),
                     lambda x, p: np.clip(2 * x / 6 + 0.5, 0, 1)),
    "softmax": (lambda x, p: ops.softmax(x, axis=1), lambda x, p: _softmax(x, 1)),
    "log_softmax": (lambda x, p: ops.log_softmax(x), lambda x, p: np.log(_softmax(x))),
    "gelu": (lambda x, p: ops.gelu(x),
             lambda x, p: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (lambda x, p: ops.silu(x), lambda x, p: x * _sigmoid(x)),
    "swish": (lambda x, p: ops.swish(x), lambda x, p: x * _sigmoid(x)),
    "leaky_relu": (lambda x, p: ops.leaky_relu(x), lambda x, p: np.where(x > 0, x, 0.2 * x)),
    "elu": (lambda x, p: ops.elu(x, alpha=0.5),
            lambda x, p: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    "selu": (lambda x, p: ops.selu(x),
             lambda x, p: 1.0507009873554805 * np.where(x > 0, x,
                                                        1.6732632423543772 * np.expm1(x))),
    "softplus": (lambda x, p: ops.softplus(x), lambda x, p: np.log(1 + np.exp(x))),
    "softsign": (lambda x, p: ops.softsign(x), lambda x, p: x / (1 + np.abs(x))),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EAGER))
def test_eager_against_numpy(name, dtype):
    op, expected = EAGER[name]
    x, p = X.astype(dtype), P.astype(dtype)
    got = op(x, p)
    assert isinstance(got, np.ndarray)
    assert got.dtype == dtype
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected(x, p), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_comparisons_give_booleans(dtype):
    x, p = X.astype(dtype), P.astype(dtype)
    for op, expected in ((ops.greater, x > p), (ops.greater_equal, x >= p), (ops.less, x < p),
                         (ops.less_equal, x <= p), (ops.equal, x == p), (ops.not_equal, x != p)):
        got = op(x, p)
        assert got.dtype == bool
        np.testing.assert_array_equal(got, expected)


def test_eager_integer_results_and_misc():
    np.testing.assert_array_equal(ops.argmax(X, axis=-1), X.argmax(-1))
    assert ops.argmax(X, axis=-1).dtype == np.int32
    np.testing.assert_array_equal(ops.argmin(X), X.argmin())
    np.testing.assert_array_equal(ops.one_hot(np.array([2, 0, 5]), 3),
                                  [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    assert ops.one_hot([1], 3).dtype == np.float32
    np.testing.assert_array_equal(ops.one_hot(np.array([1, 2]), 3, axis=0, dtype="int32"),
                                  [[0, 0], [1, 0], [0, 1]])
    assert ops.shape(X) == (2, 3, 4)
    parts = ops.split(X, [1, 3], axis=2)
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 2), (2, 3, 1)]
    assert ops.convert_to_tensor(1.5).dtype == np.float32
    assert ops.convert_to_tensor([1, 2]).dtype == np.int32
    np.testing.assert_array_equal(ops.where(np.array([0, 3, 0, 1]))[0], [1, 3])
    # Python scalars keep float32 float32 (NumPy 2's weak scalars).
    assert ops.multiply(X.astype("float32"), 2.0).dtype == np.float32
    assert ops.sqrt(np.array([4])).dtype == np.float32


def test_eager_variables_count_as_their_values():
    w = Variable(W.copy(), "w")
    np.testing.assert_allclose(ops.matmul(X, w), X @ W)
    np.testing.assert_allclose(ops.add(w, 1), W + 1)
    copy = ops.convert_to_tensor(w)
    copy[0, 0] = 99.0
    assert w.value[0, 0] == W[0, 0]


def test_gelu_exact_and_activations_module_agree():
    from fastconv import activations

    np.testing.assert_array_equal(ops.gelu(X, approximate=False), activations.gelu(X))
    np.testing.assert_array_equal(ops.softmax(X), activations.softmax(X))


# ----------------------------------------------------------------------------
# gradients through the executor

M34 = RNG.standard_normal((3, 4))
W33 = RNG.standard_normal((3, 3))

UNARY = {
    "negative": (ops.negative, away_from_zero),
    "abs": (ops.abs, away_from_zero),
    "absolute": (ops.absolute, away_from_zero),
    "square": (ops.square, away_from_zero),
    "sqrt": (ops.sqrt, positive),
    "exp": (ops.exp, away_from_zero),
    "log": (ops.log, positive),
    "log1p": (ops.log1p, positive),
    "tanh": (ops.tanh, away_from_zero),
    "power_base": (lambda x: ops.power(x, 2.5), positive),
    "power_exponent": (lambda x: ops.power(1.7, x), away_from_zero),
    "maximum": (lambda x: ops.maximum(x, 0.1), away_from_zero),
    "minimum": (lambda x: ops.minimum(0.1, x), away_from_zero),
    "clip": (lambda x: ops.clip(x, -0.5, 0.5), away_from_zero),
    "where": (lambda x: ops.where(x > 0, ops.square(x), 3.0 * x), away_from_zero),
    "divide": (lambda x: ops.divide(1.0, x), positive),
    "true_divide": (lambda x: ops.true_divide(x, 3.0), away_from_zero),
    "sign": (ops.sign, away_from_zero),
    "floor": (ops.floor, away_from_zero),
    "ceil": (ops.ceil, away_from_zero),
    "round": (ops.round, away_from_zero),
    "sum": (lambda x: ops.sum(x, axis=(1, 2)), away_from_zero),
    "sum_all": (ops.sum, away_from_zero),
    "mean": (lambda x: ops.mean(x, axis=-1, keepdims=True), away_from_zero),
    "max": (lambda x: ops.max(x, axis=1), away_from_zero),
    "min": (lambda x: ops.min(x, axis=(0, 2)), away_from_zero),
    "logsumexp": (lambda x: ops.logsumexp(x, axis=2), away_from_zero),
    "var": (lambda x: ops.var(x, axis=1), away_from_zero),
    "std": (lambda x: ops.std(x, axis=-1, keepdims=True), away_from_zero),
    "matmul": (lambda x: ops.matmul(x, W), away_from_zero),
    "matmul_left": (lambda x: ops.matmul(W33, x), away_from_zero),
    "matmul_vector": (lambda x: ops.matmul(x, V4), away_from_zero),
    "dot": (lambda x: ops.dot(x, W), away_from_zero),
    "einsum": (lambda x: ops.einsum("bij,jk->bki", x, W), away_from_zero),
    "einsum_implicit": (lambda x: ops.einsum("bij,ij", x, M34), away_from_zero),
    "einsum_summed_axis": (lambda x: ops.einsum("bij->b", x), away_from_zero),
    "einsum_self": (lambda x: ops.einsum("bij,bkj->bik", x, x), away_from_zero),
    "tensordot": (lambda x: ops.tensordot(x, M34, 2), away_from_zero),
    "reshape": (lambda x: ops.reshape(x, (-1, 2, 6)), away_from_zero),
    "transpose": (lambda x: ops.transpose(x, (0, 2, 1)), away_from_zero),
    "transpose_all": (ops.transpose, away_from_zero),
    "expand_dims": (lambda x: ops.expand_dims(x, -1), away_from_zero),
    "squeeze": (lambda x: ops.squeeze(ops.expand_dims(x, 2), axis=2), away_from_zero),
    "concatenate": (lambda x: ops.concatenate([x, ops.square(x)], axis=1), away_from_zero),
    "stack": (lambda x: ops.stack([x, ops.exp(x)], axis=-1), away_from_zero),
    "split": (lambda x: ops.concatenate(ops.split(x, [1, 3], axis=2)[::-1], axis=2),
              away_from_zero),
    "getitem": (lambda x: x[:, 0], away_from_zero),
    "getitem_slices": (lambda x: x[:, ::2, 1:], away_from_zero),
    "getitem_repeated": (lambda x: x[..., [0, 0, 2]], away_from_zero),
    "getitem_newaxis": (lambda x: x[:, None, 1], away_from_zero),
    "take": (lambda x: ops.take(x, [[0, 2], [2, 2]], axis=2), away_from_zero),
    "take_flat": (lambda x: ops.take(x[0], [5, 5, 0]), away_from_zero),
    "tile": (lambda x: ops.tile(x, (1, 2, 3)), away_from_zero),
    "repeat": (lambda x: ops.repeat(x, 2, axis=2), away_from_zero),
    "repeat_counts": (lambda x: ops.repeat(x, [1, 0, 2], axis=1), away_from_zero),
    "repeat_flat": (lambda x: ops.repeat(x, 2), away_from_zero),
    "broadcast_to": (lambda x: ops.broadcast_to(x[0, :1], (2, 3, 4)), away_from_zero),
    "cast": (lambda x: ops.cast(x, "float64"), away_from_zero),
    "relu": (ops.relu, away_from_zero),
    "relu6": (ops.relu6, away_from_zero),
    "sigmoid": (ops.sigmoid, away_from_zero),
    "hard_sigmoid": (ops.hard_sigmoid, away_from_zero),
    "softmax": (ops.softmax, away_from_zero),
    "softmax_axis": (lambda x: ops.softmax(x, axis=1), away_from_zero),
    "log_softmax": (ops.log_softmax, away_from_zero),
    "gelu": (ops.gelu, away_from_zero),
    "gelu_exact": (lambda x: ops.gelu(x, approximate=False), away_from_zero),
    "silu": (ops.silu, away_from_zero),
    "swish": (ops.swish, away_from_zero),
    "leaky_relu": (lambda x: ops.leaky_relu(x, negative_slope=0.3), away_from_zero),
    "elu": (ops.elu, away_from_zero),
    "selu": (ops.selu, away_from_zero),
    "softplus": (ops.softplus, away_from_zero),
    "softsign": (ops.softsign, away_from_zero),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_gradient_matches_finite_differences(name):
    build, sample = UNARY[name]
    check_gradients(build, [sample((2, 3, 4))])


def test_step_functions_have_zero_gradient():
    x = KerasTensor((None, 3, 4), "float64")
    for op in (ops.floor, ops.sign, ops.round):
        _, (dx,) = run([x], [op(x)], [X.copy()], [np.ones((2, 3, 4))])
        np.testing.assert_array_equal(dx, 0)


@pytest.mark.parametrize("op", [ops.add, ops.subtract, ops.multiply, ops.divide,
                                ops.maximum, ops.minimum, ops.power])
def test_broadcast_binary_gradients_to_both_inputs(op):
    a = positive((2, 3, 4))
    b = away_from_zero((4,)) if op is not ops.divide else positive((4,))
    check_gradients(op, [a, b], shapes=[(None, 3, 4), (4,)])


def test_where_gradients_to_both_branches():
    check_gradients(lambda x1, x2: ops.where(x1 > 0, x1, x2), [away_from_zero((2, 3, 4)),
                                                               away_from_zero((3, 1))],
                    shapes=[(None, 3, 4), (3, 1)])


def test_stop_gradient_blocks_its_branch():
    x = KerasTensor((None, 3, 4), "float64")
    _, (dx,) = run([x], [ops.stop_gradient(x) * x], [X.copy()], [np.ones((2, 3, 4))])
    np.testing.assert_array_equal(dx, X)


def test_variable_second_input_receives_its_gradient():
    x = KerasTensor((None, 3, 4), "float64")
    w = Variable(away_from_zero((4,)), "w")
    m = Variable(away_from_zero((4, 2)), "m")
    assert w.is_trainable()
    y = ops.matmul(x * w, m)
    assert y.node.inputs[0].node.inputs[1] is w
    xv = away_from_zero((2, 3, 4))
    dy = RNG.standard_normal((2, 3, 2))
    plan = Plan(Function([x], [y]))
    w.zero_grad()
    m.zero_grad()
    _, tape = plan.forward([xv], training=True, record=True)
    plan.backward(tape, [dy])

    def loss():
        return float(np.sum(dy * plan.forward([xv], training=False)[0][0]))

    np.testing.assert_allclose(w.grad, numerical_gradient(loss, w.value), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(m.grad, numerical_gradient(loss, m.value), rtol=1e-6, atol=1e-8)


def test_integer_and_boolean_inputs_get_no_gradient():
    x = KerasTensor((None, 3, 4), "float64")
    idx = KerasTensor((2,), "int64")
    y = ops.take(x, idx, axis=2) * ops.cast(x[:, :, :2] > 0, "float64")
    _, (dx, didx) = run([x, idx], [y], [X.copy(), np.array([3, 1])], [np.ones((2, 3, 2))])
    assert didx is None
    expected = np.zeros((2, 3, 4))
    expected[:, :, [3, 1]] = X[:, :, :2] > 0
    np.testing.assert_array_equal(dx, expected)


def test_gradient_dtype_follows_each_input():
    x = KerasTensor((None, 4), "float32")
    y = ops.cast(x, "float64") * 2.0
    _, (dx,) = run([x], [y], [np.ones((2, 4), np.float32)], [np.ones((2, 4))])
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, 2)


# ----------------------------------------------------------------------------
# symbolic shapes, nodes and operator overloads

def test_symbolic_shape_inference_with_unknown_dimensions():
    x = KerasTensor((None, 3, 4))
    s = KerasTensor((None, None, 8))
    cases = [
        (ops.sum(x, axis=0), (3, 4)), (ops.mean(x, axis=-1), (None, 3)),
        (ops.reshape(x, (-1, 12)), (None, 12)), (ops.reshape(x, (-1,)), (None,)),
        (ops.transpose(x), (4, 3, None)), (ops.expand_dims(x, 0), (1, None, 3, 4)),
        (ops.concatenate([x, x], axis=0), (None, 3, 4)),
        (ops.concatenate([x, x], axis=2), (None, 3, 8)),
        (ops.stack([x, x], axis=1), (None, 2, 3, 4)), (ops.matmul(x, W), (None, 3, 5)),
        (ops.einsum("bij,bik->bjk", x, x), (None, 4, 4)), (ops.argmax(x, axis=1), (None, 4)),
        (ops.one_hot(ops.argmax(x), 10), (10,)), (ops.tile(x, (2, 1, 1)), (None, 3, 4)),
        (ops.mean(s, axis=1), (None, 8)), (s[:, 2:4], (None, 2, 8)),
        (ops.matmul(s, np.ones((8, 2))), (None, None, 2)),
        (ops.split(x, 2, axis=0)[0], (None, 3, 4)), (ops.split(x, [1], axis=1)[1], (None, 2, 4)),
        (ops.conv(ops.reshape(x, (-1, 3, 4, 1)), np.ones((2, 2, 1, 5)), padding="same"),
         (None, 3, 4, 5)),
        (ops.max_pool(ops.reshape(x, (-1, 3, 4, 1)), 2), (None, 1, 2, 1)),
    ]
    for got, shape in cases:
        assert isinstance(got, KerasTensor)
        assert got.shape == shape, (got, shape)
    assert ops.shape(s) == (None, None, 8)
    assert ops.argmax(x).dtype == "int32"
    assert (x > 0).dtype == "bool"
    assert ops.one_hot(ops.argmax(x, axis=-1), 3).dtype == "float32"
    assert ops.cast(x, "float16").dtype == "float16"
    assert ops.add(x, 2.0).dtype == "float32"


def test_operator_overloads_record_the_ops():
    x = KerasTensor((None, 3, 4))
    y = KerasTensor((None, 3, 4))
    w = np.ones((4, 2), np.float32)
    cases = [
        (x + 1, "add", [x]), (1 + x, "add", [x]), (2 * x, "multiply", [x]),
        (x - y, "subtract", [x, y]), (-x, "negative", [x]), (abs(x), "abs", [x]),
        (x[:, 0], "getitem", [x]), (x @ w, "matmul", [x]), (x / y, "divide", [x, y]),
        (x ** 2, "power", [x]), (2 ** x, "power", [x]), (x > y, "greater", [x, y]),
        (x >= 0, "greater_equal", [x]), (x < 0, "less", [x]), (x <= y, "less_equal", [x, y]),
        (x.T, "transpose", [x]),
    ]
    for out, name, inputs in cases:
        node = out.node
        assert node.operation.name.split("_")[0] == name.split("_")[0], node.operation.name
        assert node.operation.primitive.name == name
        assert node.inputs == inputs
        assert node.structure == ("list", len(inputs))
        assert node.outputs == [out] and out.history == (node, 0)
        assert node.operation.trainable_weights == []
    assert (x[:, 0]).shape == (None, 4) and (x @ w).shape == (None, 3, 2)
    assert (x + 1).node.operation.get_config()["x2"] == 1
    assert ops.sum(x, axis=1).node.operation.get_config()["axis"] == 1


def test_overloads_compute_through_the_executor():
    x = KerasTensor((None, 3, 4), "float64")
    y = (2 * x + 1) ** 2 / (1 + abs(x)) - x[:, :1] @ np.ones((4, 4))
    (out,), _ = run([x], [y], [X])
    np.testing.assert_allclose(out, (2 * X + 1) ** 2 / (1 + np.abs(X)) - X[:, :1] @ np.ones((4, 4)))


# ----------------------------------------------------------------------------
# conv and pooling on the kernels

IMAGES = away_from_zero((2, 5, 6, 2))
FILTERS = away_from_zero((3, 2, 2, 3))


@pytest.fixture
def one_thread():
    """Kernels on one thread: finite differences make hundreds of tiny calls,
    for which waking threads on a busy machine costs more than the work."""
    threads = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strides,padding,dilation", [(1, "valid", 1), (2, "same", 1),
                                                      ((1, 2), "same", (2, 1))])
def test_conv_equals_the_kernel_function(dtype, strides, padding, dilation):
    x, w = IMAGES.astype(dtype), FILTERS.astype(dtype)
    got = ops.conv(x, w, strides=strides, padding=padding, dilation_rate=dilation)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, ops.conv2d(x, w, None, strides, padding, dilation))
    first = ops.conv(x.transpose(0, 3, 1, 2), w, strides, padding, "channels_first", dilation)
    np.testing.assert_array_equal(first, got.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pools_equal_the_kernel_functions(dtype):
    x = IMAGES.astype(dtype)
    np.testing.assert_array_equal(ops.max_pool(x, 2), ops.max_pool2d(x, 2)[0])
    np.testing.assert_array_equal(ops.max_pool(x, (3, 2), 1, "same"),
                                  ops.max_pool2d(x, (3, 2), 1, "same")[0])
    np.testing.assert_array_equal(ops.average_pool(x, 2, padding="same"),
                                  ops.avg_pool2d(x, 2, None, "same"))
    first = ops.average_pool(x.transpose(0, 3, 1, 2), 2, data_format="channels_first")
    np.testing.assert_array_equal(first, ops.avg_pool2d(x, 2).transpose(0, 3, 1, 2))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("strides,padding,dilation", [(1, "valid", 1), (2, "same", (2, 1))])
def test_conv_gradients(strides, padding, dilation):
    check_gradients(lambda x, w: ops.conv(x, w, strides, padding, dilation_rate=dilation),
                    [IMAGES.copy(), FILTERS.copy()], shapes=[(None, 5, 6, 2), (3, 2, 2, 3)])


@pytest.mark.usefixtures("one_thread")
def test_conv_gradients_channels_first_with_a_variable_kernel():
    kernel = Variable(FILTERS.copy(), "kernel")
    kernel.zero_grad()
    check_gradients(lambda x: ops.conv(x, kernel, data_format="channels_first"),
                    [IMAGES.transpose(0, 3, 1, 2).copy()])
    assert np.any(kernel.grad != 0)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("pool", [ops.max_pool, ops.average_pool])
@pytest.mark.parametrize("size,strides,padding", [(2, None, "valid"), ((2, 3), 1, "same")])
def test_pool_gradients(pool, size, strides, padding):
    check_gradients(lambda x: pool(x, size, strides, padding), [IMAGES.copy()])


# ----------------------------------------------------------------------------
# bad arguments

def test_bad_arguments_raise_clear_errors():
    x = KerasTensor((None, 3, 4))
    images = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="`inputs` of `conv`.*rank 3 or 4 or 5"):
        ops.conv(np.zeros((1, 4)), np.zeros((2, 1, 1)))
    with pytest.raises(ValueError, match="`inputs` of `max_pool`.*rank 3 or 4 or 5"):
        ops.max_pool(KerasTensor((None, 3, 4, 1, 1, 1)), 2)
    with pytest.raises(ValueError, match="`padding`.*'valid' or 'same'.*'full'"):
        ops.conv(images, np.zeros((2, 2, 1, 1)), padding="full")
    with pytest.raises(ValueError, match="`strides`.*positive int.*0"):
        ops.average_pool(images, 2, strides=0)
    with pytest.raises(ValueError, match="`data_format`"):
        ops.max_pool(images, 2, data_format="NHWC")
    with pytest.raises(ValueError, match="`kernel`.*rank-4"):
        ops.conv(images, np.zeros((2, 2, 1)))
    with pytest.raises(TypeError, match="`axis`.*received axis='a'"):
        ops.sum(x, axis="a")
    with pytest.raises(ValueError, match="`newshape`.*one may be -1"):
        ops.reshape(x, (-1, -1))
    with pytest.raises(ValueError, match="`num_classes`.*positive int.*0"):
        ops.one_hot(np.array([1]), 0)
    with pytest.raises(ValueError, match="names 2 operands, received 1"):
        ops.einsum("ij,jk->ik", x)
    with pytest.raises(TypeError, match="`x2` of `add`.*'abc'"):
        ops.add(x, "abc")
    with pytest.raises(TypeError, match="symbolic tensor"):
        x[x > 0]
    with pytest.raises(ValueError, match="`indices_or_sections`.*size 3"):
        ops.split(x, 2, axis=1)
    with pytest.raises(ValueError, match="both `x1` and `x2` or neither"):
        ops.where(x > 0, x)
    with pytest.raises(ValueError, match="depends on the values"):
        ops.where(x > 0)
    with pytest.raises(ValueError, match="`axes` of `transpose`.*permutation"):
        ops.transpose(x, (0, 0, 1))
    with pytest.raises(ValueError, match=r"`add` \(x1: shape \(None, 3, 4\), x2: shape \(5,\)\)"):
        ops.add(x, KerasTensor((5,)))
    with pytest.raises(ValueError, match="`matmul`.*scalar"):
        ops.matmul(x, 2.0)
    with pytest.raises(TypeError, match="`dtype`"):
        ops.cast(x, "not-a-dtype")
    with pytest.raises(TypeError, match="`approximate`"):
        ops.gelu(x, approximate="yes")
    with pytest.raises(TypeError, match="`xs` of `concatenate`"):
        ops.concatenate(x)


def test_einsum_gradient_with_ellipsis_is_refused():
    x = KerasTensor((None, 3, 4), "float64")
    y = ops.einsum("...j,jk->...k", x, W)
    plan = Plan(Function([x], [y]))
    (out,), tape = plan.forward([X], training=True, record=True)
    np.testing.assert_allclose(out, X @ W)
    with pytest.raises(NotImplementedError, match=r"'\.\.\.'"):
        plan.backward(tape, [np.ones_like(out)], input_grads=True)

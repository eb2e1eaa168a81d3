"""fastconv.losses: values by hand, gradients by finite differences, stability, errors.

Gradients are checked in float64 against central differences with step
``H = 1e-6``; the truncation error is O(H**2) and the rounding error about
``1e-16 / H``, so ``rtol = atol = 1e-6`` is a safe bound for these
well-conditioned inputs, which keep every probability inside the clip range
[1e-7, 1 - 1e-7].
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastconv import losses
from fastconv.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

H = 1e-6
FD_TOL = 1e-6
EPS = 1e-7


def numerical_gradient(f, x):
    """Central differences of the scalar function ``f`` at every entry of ``x``."""
    x = x.astype(np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + H
        up = f(x)
        x[i] = saved - H
        down = f(x)
        x[i] = saved
        grad[i] = (up - down) / (2 * H)
    return grad


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


rng = np.random.default_rng(0)


def positive(shape):
    """Unnormalised positive scores, far from the clip range after normalising."""
    return rng.uniform(0.2, 1.0, size=shape)


# ----------------------------------------------------------------------------
# values by hand


def test_categorical_keras_example():
    y_true = np.array([[0, 1, 0], [0, 0, 1]])
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], dtype=np.float32)
    # The 0 is clipped to 1e-7 but carries no target weight.
    expected = -(np.log(0.95) + np.log(0.1)) / 2  # 1.177 in Keras' docstring
    assert CategoricalCrossentropy()(y_true, y_pred) == pytest.approx(expected, rel=1e-6)
    assert SparseCategoricalCrossentropy()([1, 2], y_pred) == pytest.approx(expected, rel=1e-6)


def test_categorical_normalises_and_clips():
    y_pred = np.array([[2.0, 6.0, 2.0], [0.0, 3.0, 1.0]])
    expected = -(np.log(0.2) + np.log(EPS)) / 2  # row 2's true class has probability 0
    assert SparseCategoricalCrossentropy()([0, 0], y_pred) == pytest.approx(expected, rel=1e-12)
    assert CategoricalCrossentropy()(np.eye(3)[[0, 0]], y_pred) == pytest.approx(
        expected, rel=1e-12)


def test_binary_keras_examples():
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]], dtype=np.float32)
    expected = (-3 * np.log(0.4) - np.log(0.6)) / 4  # mean of Keras' [0.916, 0.714]
    assert BinaryCrossentropy()([[0, 1], [0, 0]], y_pred) == pytest.approx(expected, rel=1e-6)
    logits = np.array([-18.6, 0.51, 2.94, -12.8], dtype=np.float32)
    assert BinaryCrossentropy(from_logits=True)([0, 1, 0, 0], logits) == pytest.approx(
        0.8654, abs=1e-4)


def test_binary_clips_probabilities():
    y_pred = np.array([[1.0], [0.0], [0.5]])
    expected = (-np.log(EPS) - np.log(EPS) - np.log(0.5)) / 3
    assert BinaryCrossentropy()([0, 1, 1], y_pred) == pytest.approx(expected, rel=1e-9)


def test_binary_averages_over_every_entry():
    y_true = np.array([[[1, 0, 1]], [[0, 0, 1]]])
    y_pred = np.array([[[0.9, 0.2, 0.6]], [[0.3, 0.1, 0.8]]])
    elementwise = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
    assert BinaryCrossentropy()(y_true, y_pred) == pytest.approx(elementwise.mean(), rel=1e-12)


def test_mean_squared_error():
    assert MeanSquaredError()([[1.0, 2.0], [3.0, 4.0]], np.array([[1.5, 2.0], [2.0, 6.0]])) == (
        pytest.approx((0.25 + 0 + 1 + 4) / 4))
    # (N,) targets against (N, 1) outputs, as Keras' squeeze_or_expand_to_same_rank.
    assert MeanSquaredError()([1.0, 2.0], np.array([[0.0], [0.0]])) == pytest.approx(2.5)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64,
                                         np.float32, np.float64])
def test_sparse_label_dtypes_and_shapes(label_dtype):
    y_pred = softmax(rng.standard_normal((4, 5)))
    labels = np.array([0, 4, 2, 2])
    expected = -np.mean(np.log(y_pred[np.arange(4), labels]))
    loss = SparseCategoricalCrossentropy()
    assert loss(labels.astype(label_dtype), y_pred) == pytest.approx(expected, rel=1e-12)
    assert loss(labels.astype(label_dtype)[:, None], y_pred) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 4), (5,)])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_gradient(shape, from_logits):
    y_pred = rng.standard_normal(shape) if from_logits else positive(shape)
    # Soft targets exercise sum(t) != 1 in the logits formula.
    y_true = rng.uniform(0, 1, size=shape)
    loss = CategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred),
                               numerical_gradient(lambda p: loss(y_true, p), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 4)])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("trailing_one", [False, True])
def test_sparse_categorical_gradient(shape, from_logits, trailing_one):
    y_pred = rng.standard_normal(shape) if from_logits else positive(shape)
    labels = rng.integers(0, shape[-1], size=shape[:-1] + ((1,) if trailing_one else ()))
    loss = SparseCategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(loss.gradient(labels, y_pred),
                               numerical_gradient(lambda p: loss(labels, p), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("shape", [(6, 1), (3, 4), (2, 2, 3), (5,)])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_gradient(shape, from_logits):
    y_pred = 3 * rng.standard_normal(shape) if from_logits else rng.uniform(0.05, 0.95, shape)
    y_true = rng.uniform(0, 1, size=shape)
    loss = BinaryCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred),
                               numerical_gradient(lambda p: loss(y_true, p), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("shape", [(4,), (3, 2), (2, 2, 3)])
def test_mean_squared_error_gradient(shape):
    y_pred, y_true = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = MeanSquaredError()
    np.testing.assert_allclose(loss.gradient(y_true, y_pred),
                               numerical_gradient(lambda p: loss(y_true, p), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


def test_clipped_entries_pass_no_gradient():
    grad = BinaryCrossentropy().gradient([[0.0, 1.0, 1.0]], np.array([[0.0, 1.0, 0.5]]))
    np.testing.assert_array_equal(grad[0, :2], [0.0, 0.0])
    assert grad[0, 2] == pytest.approx((0.5 - 1) / (0.25 * 3))
    # The true class's probability is 0, below the clip: the loss is flat in y_pred.
    grad = SparseCategoricalCrossentropy().gradient([0], np.array([[0.0, 0.5, 0.5]]))
    np.testing.assert_array_equal(grad, np.zeros((1, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", [SparseCategoricalCrossentropy(), CategoricalCrossentropy(),
                                  BinaryCrossentropy(), MeanSquaredError(),
                                  SparseCategoricalCrossentropy(from_logits=True),
                                  BinaryCrossentropy(from_logits=True)], ids=repr)
def test_gradient_keeps_dtype_and_shape(loss, dtype):
    y_pred = positive((3, 4)).astype(dtype)
    y_true = [0, 3, 1] if isinstance(loss, SparseCategoricalCrossentropy) else np.eye(4)[[0, 3, 1]]
    grad = loss.gradient(y_true, y_pred)
    assert grad.dtype == dtype and grad.shape == y_pred.shape
    assert isinstance(loss(y_true, y_pred), float)


# ----------------------------------------------------------------------------
# the fused gradient and the two parametrisations


@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 2, 5)])
def test_softmax_logits_gradient(shape):
    z = rng.standard_normal(shape)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    soft = rng.uniform(0, 1, size=shape)
    for loss, y_true in ((SparseCategoricalCrossentropy(), labels),
                         (CategoricalCrossentropy(), soft)):
        np.testing.assert_allclose(
            loss.logits_gradient(y_true, softmax(z)),
            numerical_gradient(lambda x, loss=loss, y_true=y_true: loss(y_true, softmax(x)), z),
            rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("shape", [(6, 1), (3, 4)])
def test_sigmoid_logits_gradient(shape):
    z = rng.standard_normal(shape)
    y_true = rng.integers(0, 2, size=shape)
    loss = BinaryCrossentropy()
    np.testing.assert_allclose(
        loss.logits_gradient(y_true, sigmoid(z)),
        numerical_gradient(lambda x: loss(y_true, sigmoid(x)), z),
        rtol=FD_TOL, atol=FD_TOL)
    # (N,) labels against (N, 1) outputs.
    if shape[-1] == 1:
        np.testing.assert_array_equal(loss.logits_gradient(y_true[:, 0], sigmoid(z)),
                                      loss.logits_gradient(y_true, sigmoid(z)))


@pytest.mark.parametrize("probs, logits, activation, y_true", [
    (SparseCategoricalCrossentropy(), SparseCategoricalCrossentropy(from_logits=True), softmax,
     np.array([2, 0, 1])),
    (CategoricalCrossentropy(), CategoricalCrossentropy(from_logits=True), softmax,
     np.eye(3)[[2, 0, 1]]),
    (BinaryCrossentropy(), BinaryCrossentropy(from_logits=True), sigmoid,
     np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]])),
], ids=["sparse", "categorical", "binary"])
def test_logits_and_probabilities_agree(probs, logits, activation, y_true):
    z = 2 * rng.standard_normal((3, 3))
    assert probs(y_true, activation(z)) == pytest.approx(logits(y_true, z), rel=1e-12)
    np.testing.assert_allclose(probs.logits_gradient(y_true, activation(z)),
                               logits.gradient(y_true, z), rtol=1e-12, atol=1e-15)


def test_logits_gradient_needs_probabilities():
    with pytest.raises(ValueError, match="from_logits=True"):
        SparseCategoricalCrossentropy(from_logits=True).logits_gradient([0], np.ones((1, 2)))
    with pytest.raises(NotImplementedError, match="gradient()"):
        MeanSquaredError().logits_gradient([0.0], np.ones(1))
    assert MeanSquaredError.fused_activation is None
    assert CategoricalCrossentropy.fused_activation == "softmax"
    assert BinaryCrossentropy.fused_activation == "sigmoid"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_are_stable(dtype):
    z = np.array([[1000, -1000, 0], [-1000, 1000, 0]], dtype=dtype)
    # exp of a very negative number underflowing to 0 is expected and harmless.
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        sparse = SparseCategoricalCrossentropy(from_logits=True)
        assert sparse([0, 0], z) == pytest.approx(1000.0)  # (0 + 2000) / 2
        np.testing.assert_allclose(sparse.gradient([0, 0], z),
                                   [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)
        categorical = CategoricalCrossentropy(from_logits=True)
        assert categorical(np.eye(3)[[1, 1]], z) == pytest.approx(1000.0)
        binary = BinaryCrossentropy(from_logits=True)
        assert binary([[0, 1, 1], [1, 1, 0]], z) == pytest.approx(
            (1000 + 1000 + np.log(2) + 1000 + 0 + np.log(2)) / 6, rel=1e-6)
        grad = binary.gradient([[0, 1, 1], [1, 1, 0]], z)
        np.testing.assert_allclose(grad * 6, [[1, -1, -0.5], [-1, 0, 0.5]], atol=1e-7)
        # Saturated softmax probabilities (exact 0 and 1) in the fused gradient.
        np.testing.assert_allclose(
            SparseCategoricalCrossentropy().logits_gradient([0, 0], softmax(z)),
            [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)
        for g in (sparse.gradient([0, 0], z), categorical.gradient(np.eye(3)[[1, 1]], z), grad):
            assert g.dtype == dtype and np.isfinite(g).all()


# ----------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("labels, match", [
    ([0, 3], r"\[0, 3\).*\[0, 3\]"),
    ([-1, 0], r"\[0, 3\).*\[-1, 0\]"),
    ([0.0, 1.5], "integer class indices, received 1.5"),
    ([0.0, np.nan], "integer class indices, received nan"),
    ([[0, 1]], r"shape \(2,\) or \(2, 1\).*received shape \(1, 2\)"),
    ([0, 1, 2], r"received shape \(3,\)"),
])
def test_bad_sparse_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        SparseCategoricalCrossentropy()(labels, np.full((2, 3), 1 / 3))


def test_bad_label_dtype():
    with pytest.raises(TypeError, match="`y_true`.*dtype <U1"):
        SparseCategoricalCrossentropy()(np.array(["a", "b"]), np.full((2, 3), 1 / 3))


@pytest.mark.parametrize("loss", [CategoricalCrossentropy(), BinaryCrossentropy(),
                                  MeanSquaredError()], ids=repr)
def test_dense_shape_mismatch(loss):
    with pytest.raises(ValueError, match=r"`y_true`.*\(2, 3\).*received shape \(3, 2\)"):
        loss(np.zeros((3, 2)), np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"received shape \(2,\)"):
        loss(np.zeros(2), np.full((2, 3), 0.5))


@pytest.mark.parametrize("y_pred, error, match", [
    (np.ones((2, 3), dtype=np.int64), TypeError, "float32 or float64, received dtype int64"),
    (np.ones((2, 3), dtype=np.float16), TypeError, "received dtype float16"),
    (np.zeros((0, 3)), ValueError, r"non-empty.*\(0, 3\)"),
    (np.float64(0.5), ValueError, r"received shape \(\)"),
])
def test_bad_predictions(y_pred, error, match):
    with pytest.raises(error, match=f"`y_pred`.*{match}"):
        SparseCategoricalCrossentropy()(np.zeros(2, dtype=int), y_pred)


def test_categorical_warns_for_one_class():
    with pytest.warns(UserWarning, match="binary cross-entropy"):
        CategoricalCrossentropy()(np.ones((2, 1)), np.ones((2, 1)))


def test_bad_from_logits():
    with pytest.raises(TypeError, match="from_logits"):
        BinaryCrossentropy(from_logits="yes")


# ----------------------------------------------------------------------------
# get and serialize


@pytest.mark.parametrize("identifier, cls, name", [
    ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy,
     "sparse_categorical_crossentropy"),
    ("categorical_crossentropy", CategoricalCrossentropy, "categorical_crossentropy"),
    ("binary_crossentropy", BinaryCrossentropy, "binary_crossentropy"),
    ("mean_squared_error", MeanSquaredError, "mean_squared_error"),
    ("mse", MeanSquaredError, "mse"),
    ("SparseCategoricalCrossentropy", SparseCategoricalCrossentropy,
     "sparse_categorical_crossentropy"),
    ("MeanSquaredError", MeanSquaredError, "mean_squared_error"),
    (BinaryCrossentropy, BinaryCrossentropy, "binary_crossentropy"),
])
def test_get_by_name(identifier, cls, name):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.name == name and loss.from_logits is False


@pytest.mark.parametrize("loss", [SparseCategoricalCrossentropy(from_logits=True, name="s"),
                                  CategoricalCrossentropy(), BinaryCrossentropy(True),
                                  MeanSquaredError(name="m")], ids=repr)
def test_serialize_round_trip(loss):
    assert losses.get(loss) is loss
    again = losses.get(losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


def test_keras_config_loads():
    keras_config = {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                    "from_logits": True, "label_smoothing": 0.0, "axis": -1}
    loss = losses.get({"class_name": "CategoricalCrossentropy", "config": keras_config})
    assert loss.from_logits is True
    with pytest.raises(ValueError, match="unknown keys.*'ignore_class'"):
        CategoricalCrossentropy.from_config({**keras_config, "ignore_class": 1})


@pytest.mark.parametrize("identifier", ["Mse", "hingee", 3, {"class_name": "Hubber"}])
def test_get_rejects_unknown(identifier):
    with pytest.raises(ValueError, match="'binary_crossentropy'.*'mse'"):
        losses.get(identifier)

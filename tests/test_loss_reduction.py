"""Sample weights and reductions of fastconv.losses, against Keras 3's
``reduce_weighted_values`` written out in NumPy here, Keras' documented
examples, and float64 finite differences for the gradients."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, losses, models
from fastconv.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

H = 1e-6
FD_TOL = 1e-6
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]

rng = np.random.default_rng(7)


def numerical_gradient(f, x):
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


def keras_reduce(values, sample_weight, reduction):
    """Keras 3's reduce_weighted_values, restated for per-sample losses and
    weights of the same rank or weights (N,) against losses (N, 1)."""
    values = np.asarray(values, dtype=np.float64)
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        values = values * w
    if reduction in (None, "none"):
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = np.sum(sample_weight)
    else:
        divisor = values.size
    return total / divisor if divisor else 0.0


def scalar(loss, y_true, sample_weight=None):
    """The loss as a scalar function of y_pred (summed if unreduced)."""
    return lambda p: float(np.sum(loss(y_true, p, sample_weight=sample_weight)))


def cases():
    """(loss, y_true, y_pred, per-sample losses by hand) for batches of 4."""
    probs = rng.uniform(0.2, 1.0, (4, 3))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.array([0, 2, 1, 2])
    soft = rng.uniform(0, 1, (4, 3))
    binary_p = rng.uniform(0.1, 0.9, (4, 2))
    binary_t = rng.integers(0, 2, (4, 2)).astype(float)
    reg_p, reg_t = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    logits = rng.standard_normal((4, 3))
    log_sm = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return [
        (SparseCategoricalCrossentropy(), labels, probs, -np.log(probs[np.arange(4), labels])),
        (CategoricalCrossentropy(), soft, probs, -(soft * np.log(probs)).sum(axis=1)),
        (CategoricalCrossentropy(from_logits=True), soft, logits, -(soft * log_sm).sum(axis=1)),
        (BinaryCrossentropy(), binary_t, binary_p,
         -(binary_t * np.log(binary_p) + (1 - binary_t) * np.log(1 - binary_p)).mean(axis=1)),
        (MeanSquaredError(), reg_t, reg_p, ((reg_t - reg_p) ** 2).mean(axis=1)),
    ]


CASES = cases()
IDS = ["sparse", "categorical", "categorical_logits", "binary", "mse"]


def with_reduction(loss, reduction):
    return type(loss).from_config({**loss.get_config(), "reduction": reduction})


# ----------------------------------------------------------------------------
# Keras' documented examples


def test_keras_docstring_examples():
    y_true = np.array([1, 2])
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    assert SparseCategoricalCrossentropy()(y_true, y_pred, sample_weight=np.array(
        [0.3, 0.7])) == pytest.approx(0.814, abs=1e-3)
    assert SparseCategoricalCrossentropy(reduction="sum")(y_true, y_pred) == pytest.approx(
        2.354, abs=1e-3)
    np.testing.assert_allclose(SparseCategoricalCrossentropy(reduction=None)(y_true, y_pred),
                               [0.0513, 2.303], atol=1e-3)
    y_true, y_pred = [[0.0, 1.0], [0.0, 0.0]], np.array([[1.0, 1.0], [1.0, 0.0]])
    assert MeanSquaredError()(y_true, y_pred) == pytest.approx(0.5)
    assert MeanSquaredError()(y_true, y_pred, sample_weight=[0.7, 0.3]) == pytest.approx(0.25)
    assert MeanSquaredError(reduction="sum")(y_true, y_pred) == pytest.approx(1.0)
    np.testing.assert_allclose(MeanSquaredError(reduction="none")(y_true, y_pred), [0.5, 0.5])


# ----------------------------------------------------------------------------
# every reduction, with and without weights


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", [None, "scalar", "vector", "column"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reductions_and_weights(case, weights, reduction):
    loss, y_true, y_pred, per_sample = case
    loss = with_reduction(loss, reduction)
    sw = {None: None, "scalar": 2.5, "vector": np.array([0.5, 0.0, 2.0, 1.5]),
          "column": np.array([[0.5], [0.0], [2.0], [1.5]])}[weights]
    expected = keras_reduce(per_sample, None if sw is None else np.ravel(sw) if np.ndim(sw)
                            else sw, reduction)
    value = loss(y_true, y_pred, sample_weight=sw)
    if reduction in (None, "none"):
        assert isinstance(value, np.ndarray) and value.dtype == y_pred.dtype
        # (N, 1) weights against (N,) losses: Keras expands the losses to (N, 1).
        expected = expected[:, None] if weights == "column" else expected
        np.testing.assert_allclose(value, expected, rtol=1e-12)
    else:
        assert isinstance(value, float)
        assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred, sample_weight=sw),
                               numerical_gradient(scalar(loss, y_true, sw), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_zero_weights_give_zero(case, reduction):
    loss, y_true, y_pred, _ = case
    loss = with_reduction(loss, reduction)
    zeros = np.zeros(4)
    assert loss(y_true, y_pred, sample_weight=zeros) == 0.0
    np.testing.assert_array_equal(loss.gradient(y_true, y_pred, sample_weight=zeros), 0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weight_two_is_a_duplicated_sample_under_sum(case):
    loss, y_true, y_pred, _ = case
    loss = with_reduction(loss, "sum")
    y_true = np.asarray(y_true)
    sw = np.array([1.0, 2.0, 1.0, 1.0])
    dup = [0, 1, 1, 2, 3]
    assert loss(y_true, y_pred, sample_weight=sw) == pytest.approx(
        loss(y_true[dup], y_pred[dup]), rel=1e-12)
    g_dup = loss.gradient(y_true[dup], y_pred[dup])
    expected = np.stack([g_dup[0], g_dup[1] + g_dup[2], g_dup[3], g_dup[4]])
    np.testing.assert_allclose(loss.gradient(y_true, y_pred, sample_weight=sw), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unit_weights_change_nothing(case):
    loss, y_true, y_pred, _ = case
    assert loss(y_true, y_pred, sample_weight=np.ones(4)) == loss(y_true, y_pred)
    np.testing.assert_array_equal(loss.gradient(y_true, y_pred, sample_weight=1),
                                  loss.gradient(y_true, y_pred))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fused_gradients_with_weights(reduction):
    z = rng.standard_normal((5, 3))
    sw = rng.uniform(0, 2, 5)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, 5)
    for loss, y_true in ((SparseCategoricalCrossentropy(reduction=reduction), labels),
                         (CategoricalCrossentropy(reduction=reduction), np.eye(3)[labels])):
        def f(x, loss=loss, y_true=y_true):
            ex = np.exp(x - x.max(axis=1, keepdims=True))
            return float(np.sum(loss(y_true, ex / ex.sum(axis=1, keepdims=True), sw)))
        np.testing.assert_allclose(loss.logits_gradient(y_true, probs, sample_weight=sw),
                                   numerical_gradient(f, z), rtol=FD_TOL, atol=FD_TOL)
    t = rng.integers(0, 2, (5, 2))
    loss = BinaryCrossentropy(reduction=reduction)
    np.testing.assert_allclose(
        loss.logits_gradient(t, 1 / (1 + np.exp(-z[:, :2])), sample_weight=sw),
        numerical_gradient(lambda x: float(np.sum(loss(t, 1 / (1 + np.exp(-x)), sw))),
                           z[:, :2]), rtol=FD_TOL, atol=FD_TOL)


# ----------------------------------------------------------------------------
# shapes of weights against per-pixel losses


def test_per_pixel_weights():
    y_pred = rng.uniform(0.2, 1.0, (2, 3, 2, 4))
    labels = rng.integers(0, 4, (2, 3, 2))
    per_pixel = -np.log(np.take_along_axis(
        y_pred / y_pred.sum(-1, keepdims=True), labels[..., None], -1))[..., 0]
    loss = SparseCategoricalCrossentropy()
    full = rng.uniform(0, 2, (2, 3, 2))
    assert loss(labels, y_pred, full) == pytest.approx((per_pixel * full).mean(), rel=1e-12)
    per_image = np.array([0.5, 2.0]).reshape(2, 1, 1)
    assert loss(labels, y_pred, per_image) == pytest.approx(
        (per_pixel * per_image).mean(), rel=1e-12)
    # mean_with_sample_weight divides by the sum of the weights as given.
    msw = SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")
    assert msw(labels, y_pred, per_image) == pytest.approx(
        (per_pixel * per_image).sum() / 2.5, rel=1e-12)
    for sw in (full, per_image):
        np.testing.assert_allclose(loss.gradient(labels, y_pred, sw),
                                   numerical_gradient(scalar(loss, labels, sw), y_pred),
                                   rtol=FD_TOL, atol=FD_TOL)
    # (N,) weights against (N, H, W) losses broadcast on the trailing axis, as
    # in Keras: here W == N == 2, so they weigh the columns.
    columns = np.array([1.0, 3.0])
    assert loss(labels, y_pred, columns) == pytest.approx((per_pixel * columns).mean(),
                                                          rel=1e-12)


def test_one_dimensional_predictions():
    # y_pred (N,): Keras' per-sample MSE is one 0-d value, returned as is,
    # and a (N,) weight broadcasts it: mean(sw) * mse.
    t, p = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    mse = (1 + 0 + 4) / 3
    sw = np.array([1.0, 2.0, 0.0])
    assert MeanSquaredError()(t, p) == pytest.approx(mse)
    assert MeanSquaredError(reduction="sum")(t, p) == pytest.approx(mse)
    assert MeanSquaredError()(t, p, sw) == pytest.approx(mse * sw.mean())
    loss = MeanSquaredError(reduction="sum")
    np.testing.assert_allclose(loss.gradient(t, p, sw),
                               numerical_gradient(scalar(loss, t, sw), p), rtol=FD_TOL)
    # (N, 1) targets with (N,) outputs: Keras expands y_pred to (N, 1), so
    # there is one loss per sample.
    assert MeanSquaredError(reduction="sum")(t[:, None], p) == pytest.approx(5.0)
    assert MeanSquaredError(reduction="sum").gradient(t[:, None], p).shape == (3,)


def test_float32_and_bool_weights():
    loss, y_true, y_pred, per_sample = CASES[0]
    value = loss(y_true, y_pred.astype(np.float32), sample_weight=np.array([1, 0, 1, 0],
                                                                          dtype=bool))
    assert value == pytest.approx((per_sample[0] + per_sample[2]) / 4, rel=1e-6)
    g = loss.gradient(y_true, y_pred.astype(np.float32), sample_weight=[1, 0, 1, 0])
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g[[1, 3]], 0)


# ----------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize("sw", [np.ones(3), np.ones((4, 2, 5)), np.ones((4, 3))])
def test_bad_sample_weight_shape(sw):
    loss, y_true, y_pred, _ = CASES[1]
    with pytest.raises(ValueError, match=r"`sample_weight`.*\(4,\).*received shape"):
        loss(y_true, y_pred, sample_weight=sw)
    with pytest.raises(ValueError, match="`sample_weight`"):
        loss.gradient(y_true, y_pred, sample_weight=sw)


@pytest.mark.parametrize("sw", [np.array(["a"] * 4), np.array([1j] * 4), [None] * 4])
def test_bad_sample_weight_dtype(sw):
    loss, y_true, y_pred, _ = CASES[4]
    with pytest.raises(TypeError, match="`sample_weight`.*numbers.*received dtype"):
        loss(y_true, y_pred, sample_weight=sw)


@pytest.mark.parametrize("reduction", ["auto", "average", "SUM", 0, True])
def test_bad_reduction(reduction):
    with pytest.raises(ValueError, match=r"`reduction`.*'sum_over_batch_size'.*received"):
        MeanSquaredError(reduction=reduction)


@pytest.mark.parametrize("dtype", ["float16", "int32", "bogus"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="`dtype`"):
        BinaryCrossentropy(dtype=dtype)


def test_dtype_casts_the_computation():
    _, y_true, y_pred, per_sample = CASES[4]
    value = MeanSquaredError(dtype="float32")(y_true, y_pred)
    assert value == pytest.approx(per_sample.mean(), rel=1e-6)
    g = MeanSquaredError(dtype="float32").gradient(y_true, y_pred)
    assert g.dtype == np.float64  # y_pred's dtype


# ----------------------------------------------------------------------------
# config and the tape


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduction_round_trips(reduction):
    for loss in (MeanSquaredError(reduction=reduction),
                 SparseCategoricalCrossentropy(reduction=reduction, ignore_class=3)):
        again = losses.get(losses.serialize(loss))
        assert again.reduction == reduction and again.get_config() == loss.get_config()


def test_keras_config_keys():
    assert MeanSquaredError().get_config() == {"name": "mean_squared_error",
                                               "reduction": "sum_over_batch_size"}
    assert CategoricalCrossentropy().get_config() == {
        "name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
        "from_logits": False, "label_smoothing": 0.0, "axis": -1}
    assert SparseCategoricalCrossentropy().get_config() == {
        "name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size",
        "from_logits": False, "ignore_class": None, "axis": -1}


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_gradient_tape_with_sample_weight(reduction):
    fastconv.utils.set_random_seed(3)
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    sw = np.array([0.0, 1.0, 2.0, 0.5], dtype=np.float32)
    loss_fn = MeanSquaredError(reduction=reduction)
    with fastconv.GradientTape() as tape:
        y_pred = model(x, training=True)
        value = loss_fn(y, y_pred, sample_weight=sw)
    kernel, bias = model.trainable_weights
    dk, db = tape.gradient(value, [kernel, bias])
    d_pred = loss_fn.gradient(y, y_pred, sample_weight=sw)
    np.testing.assert_allclose(dk, x.T @ d_pred, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, d_pred.sum(axis=0), rtol=1e-5, atol=1e-7)
    # Sample 0 has weight 0: its row of d_pred is 0.
    np.testing.assert_array_equal(d_pred[0], 0)

"""fastconv.metrics: running means by hand, Keras' docstring examples, "accuracy" resolution."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import losses, metrics
from fastconv.metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    Mean,
    SparseCategoricalAccuracy,
)

# ----------------------------------------------------------------------------
# Mean


def test_mean_unweighted_and_weighted():
    m = Mean()
    m.update_state([1, 3, 5, 7])
    assert m.result() == 4.0
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0


def test_mean_of_batch_losses_weighted_by_batch_size():
    # The model's running loss: a batch of 3 with mean loss 2, then a batch of 1 with 4.
    m = Mean(name="loss")
    m.update_state(np.float32(2.0), sample_weight=3)
    m.update_state(4.0, sample_weight=1)
    assert m.result() == pytest.approx((3 * 2 + 4) / 4)
    assert m.name == "loss"


def test_mean_averages_each_sample_first():
    m = Mean()
    m.update_state([[1.0, 3.0], [5.0, 9.0]])  # per-sample means 2 and 7
    m.update_state([10.0])
    assert m.result() == pytest.approx((2 + 7 + 10) / 3)
    m.reset_state()
    m.update_state([[1.0, 3.0], [5.0, 9.0]], sample_weight=[3.0, 1.0])
    assert m.result() == pytest.approx((3 * 2 + 7) / 4)
    m.reset_state()
    # Scalar weight: every sample gets it.
    m.update_state([1.0, 2.0, 6.0], sample_weight=2.0)
    assert m.result() == pytest.approx(3.0)


def test_mean_scalar_without_weight_counts_once():
    m = Mean()
    m.update_state(5.0)
    m.update_state([1.0, 3.0])
    assert m.result() == pytest.approx(3.0)


def test_mean_empty_is_zero():
    m = Mean()
    assert m.result() == 0.0
    m.update_state([1.0, 2.0], sample_weight=[0.0, 0.0])
    assert m.result() == 0.0


def test_mean_bad_weights():
    with pytest.raises(ValueError, match=r"`sample_weight`.*received shape \(3,\)"):
        Mean().update_state([1.0, 2.0], sample_weight=[1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="`values`"):
        Mean().update_state(["a"])


# ----------------------------------------------------------------------------
# accuracies: Keras' docstring examples and hand-counted cases


def test_accuracy_keras_examples():
    m = Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
    assert m.result() == pytest.approx(0.5)
    assert m.name == "accuracy"


def test_accuracy_rank_one_counts_every_sample():
    m = Accuracy()
    m.update_state([1, 2, 3], [1, 0, 3])
    m.update_state([5], [5])
    assert m.result() == pytest.approx(3 / 4)


def test_binary_accuracy_keras_examples():
    m = BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(0.5)


def test_binary_accuracy_threshold_and_shapes():
    m = BinaryAccuracy(threshold=0.7)
    # (N,) labels against (N, 1) outputs; exactly 0.7 is not above the threshold.
    m.update_state(np.array([1, 0, 0]), np.array([[0.7], [0.71], [0.1]], dtype=np.float32))
    assert m.result() == pytest.approx(1 / 3)
    m.reset_state()
    # Several outputs per sample: each sample scores its fraction of matches.
    m.update_state([[1, 0], [1, 1]], [[0.9, 0.9], [0.8, 0.75]])
    assert m.result() == pytest.approx((0.5 + 1.0) / 2)
    assert m.get_config() == {"name": "binary_accuracy", "dtype": "float32", "threshold": 0.7}


def test_binary_accuracy_threshold_zero_for_logits():
    # Keras takes any threshold; 0.0 is the usual one for logits.
    m = BinaryAccuracy(threshold=0.0)
    m.update_state([[1], [0], [1]], [[2.0], [-1.0], [-0.5]])
    assert m.result() == pytest.approx(2 / 3)


@pytest.mark.parametrize("threshold, error", [(float("nan"), ValueError), ("0.5", TypeError),
                                              (True, TypeError)])
def test_binary_accuracy_bad_threshold(threshold, error):
    with pytest.raises(error, match="`threshold`"):
        BinaryAccuracy(threshold=threshold)


def test_categorical_accuracy_keras_examples():
    m = CategoricalAccuracy()
    y_true, y_pred = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]
    m.update_state(y_true, y_pred)
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state(y_true, y_pred, sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)


def test_categorical_accuracy_ties_go_to_first_index():
    m = CategoricalAccuracy()
    m.update_state([[1, 0, 0], [0, 1, 0]], [[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])
    assert m.result() == pytest.approx(0.5)


def test_sparse_categorical_accuracy_keras_examples():
    m = SparseCategoricalAccuracy()
    y_pred = [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]
    m.update_state([[2], [1]], y_pred)
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    m.update_state([[2], [1]], y_pred, sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int64, np.float32])
def test_sparse_categorical_accuracy_accumulates_batches(label_dtype):
    m = SparseCategoricalAccuracy()
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    m.update_state(np.array([0, 2, 2], dtype=label_dtype), logits)  # 2 of 3
    m.update_state(np.array([1], dtype=label_dtype), logits[1:2])  # 1 of 1
    assert m.result() == pytest.approx(3 / 4)


def test_sparse_categorical_accuracy_per_pixel():
    # (N, H, W) labels against (N, H, W, K) scores: each image scores its pixel accuracy.
    y_pred = np.zeros((2, 1, 2, 3))
    y_pred[0, 0, 0, 1] = y_pred[0, 0, 1, 2] = y_pred[1, 0, 0, 0] = y_pred[1, 0, 1, 0] = 1.0
    y_true = np.array([[[1, 0]], [[0, 0]]])
    m = SparseCategoricalAccuracy()
    m.update_state(y_true, y_pred, sample_weight=[1.0, 3.0])
    assert m.result() == pytest.approx((1 * 0.5 + 3 * 1.0) / 4)


@pytest.mark.parametrize("metric, y_true, y_pred", [
    (SparseCategoricalAccuracy(), np.zeros((2, 3)), np.zeros((2, 4))),
    (CategoricalAccuracy(), np.zeros((2, 3)), np.zeros((2, 4))),
    (BinaryAccuracy(), np.zeros((3,)), np.zeros((2, 1))),
    (Accuracy(), np.zeros((2, 2)), np.zeros((2, 3))),
], ids=lambda x: type(x).__name__ if isinstance(x, metrics.Metric) else "")
def test_shape_mismatch(metric, y_true, y_pred):
    with pytest.raises(ValueError, match=r"`y_true`.*received shape"):
        metric.update_state(y_true, y_pred)


# ----------------------------------------------------------------------------
# resolving "accuracy"


@pytest.mark.parametrize("y_true_shape, y_pred_shape, cls", [
    ((8,), (8, 1), BinaryAccuracy),
    ((8, 1), (8, 1), BinaryAccuracy),
    ((8,), (8, 10), SparseCategoricalAccuracy),
    ((8, 1), (8, 10), SparseCategoricalAccuracy),
    ((8, 5, 5), (8, 5, 5, 3), SparseCategoricalAccuracy),
    ((8, 10), (8, 10), CategoricalAccuracy),
    ((8, 5, 5, 3), (8, 5, 5, 3), CategoricalAccuracy),
])
@pytest.mark.parametrize("identifier", ["accuracy", "acc"])
def test_accuracy_resolution(y_true_shape, y_pred_shape, cls, identifier):
    m = metrics.get(identifier, loss=losses.MeanSquaredError(), y_true_shape=y_true_shape,
                    y_pred_shape=y_pred_shape)
    assert type(m) is cls and m.name == identifier


@pytest.mark.parametrize("loss, cls", [
    ("sparse_categorical_crossentropy", SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy(from_logits=True), CategoricalAccuracy),
    (losses.BinaryCrossentropy(), BinaryAccuracy),
])
def test_accuracy_from_loss_without_shapes(loss, cls):
    m = metrics.get("accuracy", loss=loss)
    assert type(m) is cls and m.name == "accuracy"


def test_accuracy_unresolvable():
    with pytest.raises(ValueError, match="Cannot resolve 'accuracy'"):
        metrics.get("accuracy")
    with pytest.raises(ValueError, match="Cannot resolve 'accuracy'"):
        metrics.get("accuracy", loss="mse", y_true_shape=(4,))


@pytest.mark.parametrize("identifier, cls", [
    ("sparse_categorical_accuracy", SparseCategoricalAccuracy),
    ("categorical_accuracy", CategoricalAccuracy),
    ("binary_accuracy", BinaryAccuracy),
    ("BinaryAccuracy", BinaryAccuracy),
    ("Mean", Mean),
])
def test_get_by_name(identifier, cls):
    m = metrics.get(identifier)
    assert type(m) is cls and m.name == identifier


def test_get_instance_and_dict():
    m = BinaryAccuracy(threshold=0.3, name="b")
    assert metrics.get(m) is m
    again = metrics.get({"class_name": "BinaryAccuracy", "config": m.get_config()})
    assert type(again) is BinaryAccuracy and again.get_config() == m.get_config()


@pytest.mark.parametrize("identifier", ["precission", 3, {"class_name": "Nope"}, "logcosh"])
def test_get_rejects_unknown(identifier):
    with pytest.raises(ValueError, match="'accuracy'.*'sparse_categorical_accuracy'"):
        metrics.get(identifier)

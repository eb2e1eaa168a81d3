"""Keras 3's metrics beyond the accuracies: docstring examples, NumPy formulas
written here, weighting, accumulation, AUC against its own integration, names
and log keys through compile/fit/evaluate, bad arguments, config round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv as keras
from fastconv import layers, metrics
from fastconv.metrics import (
    AUC,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    F1Score,
    FalseNegatives,
    FalsePositives,
    FBetaScore,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    Precision,
    Recall,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    SparseTopKCategoricalAccuracy,
    SquaredHinge,
    Sum,
    TopKCategoricalAccuracy,
    TrueNegatives,
    TruePositives,
)

EPS = 1e-7

# ----------------------------------------------------------------------------
# Keras' docstring examples: (metric, y_true, y_pred, unweighted, sample_weight, weighted)

YT = [[0, 1], [0, 0]]
YP = [[1, 1], [0, 0]]
YP2 = [[0.6, 0.4], [0.4, 0.6]]
CCE_T = [[0, 1, 0], [0, 0, 1]]
CCE_P = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]

DOC_EXAMPLES = [
    (MeanSquaredError, YT, YP, 0.25, [1, 0], 0.5),
    (MeanAbsoluteError, YT, YP, 0.25, [1, 0], 0.5),
    (MeanAbsolutePercentageError, YT, YP, 250000000.0, [1, 0], 500000000.0),
    (MeanSquaredLogarithmicError, YT, YP, 0.12011322, [1, 0], 0.24022643),
    (RootMeanSquaredError, YT, YP, 0.5, [1, 0], 0.70710677),
    (lambda: CosineSimilarity(axis=1), [[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]],
     0.49999997, [0.3, 0.7], 0.6999999),
    (LogCoshError, YT, YP, 0.10844523, [1, 0], 0.21689045),
    (KLDivergence, YT, YP2, 0.45814306, [1, 0], 0.9162892),
    (Poisson, YT, YP, 0.49999997, [0, 0], 0.0),
    (BinaryCrossentropy, YT, YP2, 0.81492424, [1, 0], 0.9162905),
    (CategoricalCrossentropy, CCE_T, CCE_P, 1.1769392, [0.3, 0.7], 1.6271976),
    (SparseCategoricalCrossentropy, [1, 2], CCE_P, 1.1769392, [0.3, 0.7], 1.6271976),
    (Hinge, YT, YP2, 1.3, [1, 0], 1.1),
    (SquaredHinge, YT, YP2, 1.86, [1, 0], 1.46),
    (CategoricalHinge, YT, YP2, 1.4000001, [1, 0], 1.2),
    (lambda: TopKCategoricalAccuracy(k=1), [[0, 0, 1], [0, 1, 0]],
     [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], 0.5, [0.7, 0.3], 0.3),
    (lambda: SparseTopKCategoricalAccuracy(k=1), [2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]],
     0.5, [0.7, 0.3], 0.3),
    (FalsePositives, [0, 1, 0, 0], [0, 0, 1, 1], 2.0, [0, 0, 1, 0], 1.0),
    (FalseNegatives, [0, 1, 1, 1], [0, 1, 0, 0], 2.0, [0, 0, 1, 0], 1.0),
    (TrueNegatives, [0, 1, 0, 0], [1, 1, 0, 0], 2.0, [0, 0, 1, 0], 1.0),
    (TruePositives, [0, 1, 1, 1], [1, 0, 1, 1], 2.0, [0, 0, 1, 0], 1.0),
    (Precision, [0, 1, 1, 1], [1, 0, 1, 1], 0.6666667, [0, 0, 1, 0], 1.0),
    (Recall, [0, 1, 1, 1], [1, 0, 1, 1], 0.6666667, [0, 0, 1, 0], 1.0),
    (lambda: AUC(num_thresholds=3), [0, 0, 1, 1], [0, 0.5, 0.3, 0.9], 0.75, [1, 0, 0, 1], 1.0),
]


@pytest.mark.parametrize("make, y_true, y_pred, plain, weights, weighted", DOC_EXAMPLES,
                         ids=[str(i) for i in range(len(DOC_EXAMPLES))])
def test_keras_docstring_examples(make, y_true, y_pred, plain, weights, weighted):
    m = make()
    m.update_state(y_true, y_pred)
    assert m.result() == pytest.approx(plain, rel=1e-5)
    m.reset_state()
    m.update_state(y_true, y_pred, sample_weight=weights)
    assert m.result() == pytest.approx(weighted, rel=1e-5, abs=1e-6)


def test_poisson_weighted_by_hand():
    # Per sample: mean(p - t log(p + eps)): [(1 - log(1 + eps) + 1) / 2, 0].
    m = Poisson()
    m.update_state(YT, YP, sample_weight=[3.0, 1.0])
    assert m.result() == pytest.approx(3 * (2 - math.log(1 + EPS)) / 2 / 4, rel=1e-6)


def test_sum_keras_example():
    m = Sum()
    m.update_state([1, 3, 5, 7])
    assert m.result() == 16.0
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 4.0
    m.update_state([[1.0, 2.0]], sample_weight=[2.0])  # per-sample sum 3, weight 2
    assert m.result() == 10.0
    assert [v.shape for v in m.variables] == [()]


# ----------------------------------------------------------------------------
# running means against the formulas, over several batches with weights


def _np_formulas():
    def softplus(x):
        return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)

    def unit(x):
        n = np.sqrt((x * x).sum(-1, keepdims=True))
        return x / np.maximum(n, EPS)

    return {
        MeanSquaredError: lambda t, p: ((t - p) ** 2).mean(-1),
        MeanAbsoluteError: lambda t, p: np.abs(t - p).mean(-1),
        MeanAbsolutePercentageError: lambda t, p: 100 * (
            np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
        MeanSquaredLogarithmicError: lambda t, p: (
            (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1),
        LogCoshError: lambda t, p: np.log(np.cosh(p - t)).mean(-1),
        CosineSimilarity: lambda t, p: (unit(t) * unit(p)).sum(-1),
        Hinge: lambda t, p: np.maximum(1 - t * p, 0).mean(-1),
        SquaredHinge: lambda t, p: (np.maximum(1 - t * p, 0) ** 2).mean(-1),
        Poisson: lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
        BinaryCrossentropy: lambda t, p: -(t * np.log(np.clip(p, EPS, 1 - EPS)) + (1 - t)
                                          * np.log(1 - np.clip(p, EPS, 1 - EPS))).mean(-1),
        "bce_logits": lambda t, p: (t * softplus(-p) + (1 - t) * softplus(p)).mean(-1),
    }


@pytest.mark.parametrize("key", list(_np_formulas()), ids=lambda k: getattr(k, "__name__", k))
def test_running_mean_matches_formula_over_batches(key):
    rng = np.random.default_rng(0)
    formula = _np_formulas()[key]
    make = (lambda: BinaryCrossentropy(from_logits=True)) if key == "bce_logits" else key
    m = make()
    num, den = 0.0, 0.0
    for batch in (5, 3):
        t = rng.uniform(0.05, 1.0, size=(batch, 4))
        if key in (Hinge, SquaredHinge):
            t = np.where(t > 0.5, 1.0, -1.0)
        p = rng.uniform(0.05, 1.0, size=(batch, 4)) * (3 if key == "bce_logits" else 1)
        w = rng.uniform(0.5, 2.0, size=batch)
        m.update_state(t, p, sample_weight=w)
        num += float((formula(t, p) * w).sum())
        den += float(w.sum())
    assert m.result() == pytest.approx(num / den, rel=1e-5)
    m.reset_state()
    assert m.result() == 0.0


def test_rmse_over_batches_and_per_entry_weights():
    t1, p1 = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.5, 2.0], [2.0, 4.0]])
    t2, p2 = np.array([[0.0, 0.0]]), np.array([[2.0, 0.0]])
    m = RootMeanSquaredError()
    m.update_state(t1, p1, sample_weight=[1.0, 2.0])
    m.update_state(t2, p2)
    # Per-sample mean squared errors 0.125, 0.5, 2 with weights 1, 2, 1.
    assert m.result() == pytest.approx(math.sqrt((0.125 + 2 * 0.5 + 2.0) / 4))


def test_mean_per_entry_weights_follow_keras_reduction():
    m = MeanAbsoluteError()
    # values (2, 3) reduced over the last axis -> (2,), weights (2,) per sample.
    m.update_state([[0, 0, 0], [0, 0, 0]], [[1, 2, 3], [4, 5, 6]], sample_weight=[[1], [0]])
    assert m.result() == pytest.approx(2.0)


def test_categorical_crossentropy_logits_and_label_smoothing():
    z = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    s = 0.3
    ts = t * (1 - s) + s / 3
    log_softmax = z - np.log(np.exp(z).sum(-1, keepdims=True))
    m = CategoricalCrossentropy(from_logits=True, label_smoothing=s)
    m.update_state(t, z)
    assert m.result() == pytest.approx(float(-(ts * log_softmax).sum(-1).mean()), rel=1e-6)


def test_binary_crossentropy_label_smoothing():
    t, p = np.array([[1.0], [0.0]]), np.array([[0.8], [0.3]])
    s = 0.2
    ts = t * (1 - s) + 0.5 * s
    m = BinaryCrossentropy(label_smoothing=s)
    m.update_state(t, p)
    expected = -(ts * np.log(p) + (1 - ts) * np.log(1 - p)).mean()
    assert m.result() == pytest.approx(float(expected), rel=1e-6)


def test_sparse_crossentropy_ignore_class_leaves_positions_out():
    p = np.array([[[0.7, 0.3], [0.2, 0.8]], [[0.5, 0.5], [0.9, 0.1]]])  # (2, 2, 2)
    y = np.array([[0, -1], [-1, 0]])
    m = SparseCategoricalCrossentropy(ignore_class=-1)
    m.update_state(y, p)
    # Keras' mask: each image's mean over its valid pixels (weight 1/2 each), i.e.
    # (-log .7 * 0.5 + -log .9 * 0.5) / (0.5 + 0.5).
    assert m.result() == pytest.approx((-math.log(0.7) - math.log(0.9)) / 2, rel=1e-6)


def test_hinge_keeps_signed_targets():
    m = Hinge()
    m.update_state([[-1.0, 1.0]], [[0.5, 0.25]])
    assert m.result() == pytest.approx((1.5 + 0.75) / 2)


# ----------------------------------------------------------------------------
# top-k


def test_top_k_ties_at_the_boundary_count_as_hits():
    # Keras' in_top_k: score >= k-th largest.
    m = SparseTopKCategoricalAccuracy(k=2)
    m.update_state([2, 0, 3], [[0.1, 0.5, 0.5, 0.5], [0.1, 0.5, 0.4, 0.3],
                               [0.4, 0.3, 0.2, 0.1]])
    assert m.result() == pytest.approx(1 / 3)


def test_top_k_default_and_k_at_least_classes():
    m = TopKCategoricalAccuracy()  # k=5 > 3 classes: always a hit
    m.update_state([[0, 0, 1], [1, 0, 0]], [[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]])
    assert m.result() == 1.0 and m.k == 5 and m.name == "top_k_categorical_accuracy"


def test_top_k_per_position_and_accumulation():
    m = SparseTopKCategoricalAccuracy(k=1)
    scores = np.zeros((2, 2, 3))
    scores[0, 0, 1] = scores[0, 1, 2] = scores[1, 0, 0] = scores[1, 1, 0] = 1.0
    m.update_state(np.array([[1, 0], [0, 0]]), scores)  # image hits 1/2 and 2/2
    m.update_state([[2]], [[0.2, 0.3, 0.5]])
    assert m.result() == pytest.approx((0.5 + 1.0 + 1.0) / 3)


def test_sparse_top_k_from_sorted_ids():
    m = SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    m.update_state([7, 4, 1], [[3, 7, 1], [4, 4, 9], [2, 5, 1]])
    assert m.result() == pytest.approx(2 / 3)
    assert m.get_config()["from_sorted_ids"] is True
    assert "from_sorted_ids" not in SparseTopKCategoricalAccuracy().get_config()


# ----------------------------------------------------------------------------
# confusion counts, precision and recall


def test_counts_several_thresholds_and_accumulation():
    t = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.6, 0.4, 0.2, 0.7])
    m = TruePositives(thresholds=[0.3, 0.65])
    m.update_state(t, p)
    m.update_state([1], [0.5])
    # threshold 0.3: tp 0.9, 0.4, 0.7, then 0.5 -> 4; threshold 0.65: 0.9, 0.7 -> 2.
    np.testing.assert_allclose(m.result(), [4.0, 2.0])
    fp = FalsePositives(thresholds=[0.3, 0.65])
    fp.update_state(t, p, sample_weight=[1, 2, 1, 3, 1])
    np.testing.assert_allclose(fp.result(), [2.0, 0.0])
    tn = TrueNegatives(thresholds=[0.3, 0.65])
    tn.update_state(t, p, sample_weight=[1, 2, 1, 3, 1])
    np.testing.assert_allclose(tn.result(), [3.0, 5.0])
    m.reset_state()
    np.testing.assert_allclose(m.result(), [0.0, 0.0])


def test_prediction_equal_to_threshold_is_negative():
    m = Precision(thresholds=0.5)
    m.update_state([1, 0, 1], [0.5, 0.5, 0.51])
    assert m.result() == 1.0
    r = Recall()
    r.update_state([1, 0, 1], [0.5, 0.5, 0.51])
    assert r.result() == pytest.approx(0.5)


def test_precision_recall_class_id_and_top_k():
    y_true = np.array([[0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 0]])
    y_pred = np.array([[0.1, 0.3, 0.6, 0.7], [0.8, 0.2, 0.9, 0.1], [0.2, 0.9, 0.7, 0.4]])
    # class 2 above 0.5: rows 0, 1, 2; true in row 0 only.
    p = Precision(class_id=2)
    p.update_state(y_true, y_pred)
    assert p.result() == pytest.approx(1 / 3)
    r = Recall(class_id=0)
    r.update_state(y_true, y_pred)
    assert r.result() == 1.0
    # top_k=1: predicted classes 3, 2, 1; correct only in row 2.
    p1 = Precision(top_k=1)
    p1.update_state(y_true, y_pred)
    assert p1.result() == pytest.approx(1 / 3)
    r1 = Recall(top_k=1)
    r1.update_state(y_true, y_pred)
    assert r1.result() == pytest.approx(1 / 4)
    # top_k with a threshold: the top 2 and above 0.75.
    p2 = Precision(top_k=2, thresholds=0.75)
    p2.update_state(y_true, y_pred)  # kept: row 1: 0.8 (true), 0.9 (false); row 2: 0.9 (true)
    assert p2.result() == pytest.approx(2 / 3)


def test_precision_per_sample_weights_and_empty():
    p = Precision()
    assert p.result() == 0.0
    p.update_state([[1, 0], [0, 1]], [[0.9, 0.8], [0.7, 0.6]], sample_weight=[2.0, 1.0])
    # positives: all four entries; tp: (row0, col0) w2, (row1, col1) w1 -> 3 / 6
    assert p.result() == pytest.approx(0.5)
    assert [v.shape for v in p.variables] == [(1,), (1,)]


def test_precision_evenly_spaced_thresholds_use_keras_buckets():
    # [0, 0.5, 1] is evenly spaced: p = 0 is not above threshold 0, p = 1 is above 0.5.
    m = TruePositives(thresholds=[0.0, 0.5, 1.0])
    m.update_state([1, 1, 1, 1], [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(m.result(), [3.0, 2.0, 0.0])


# ----------------------------------------------------------------------------
# AUC against an independent computation


def _curve_counts(t, p, w, thresholds):
    """(T,) weighted tp, fp, tn, fn with an explicit loop over thresholds."""
    tp, fp, tn, fn = [], [], [], []
    for th in thresholds:
        pos = p > th
        tp.append(float(((t == 1) & pos) @ w))
        fp.append(float(((t == 0) & pos) @ w))
        tn.append(float(((t == 0) & ~pos) @ w))
        fn.append(float(((t == 1) & ~pos) @ w))
    return map(np.array, (tp, fp, tn, fn))


def _keras_thresholds(n):
    return [-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS]


def _roc_trapezoid(tp, fp, tn, fn):
    tpr = tp / np.maximum(tp + fn, 1e-300)
    fpr = fp / np.maximum(fp + tn, 1e-300)
    return sum((fpr[i] - fpr[i + 1]) * (tpr[i] + tpr[i + 1]) / 2 for i in range(len(tp) - 1))


def _pr_interpolated_by_quadrature(tp, fp, fn, steps=20000):
    """Area under precision over recall, TP and P = TP + FP varying linearly
    between thresholds (Davis & Goadrich), integrated with the midpoint rule."""
    total_pos = tp[0] + fn[0]
    area = 0.0
    s = (np.arange(steps) + 0.5) / steps
    for i in range(len(tp) - 1):
        d_tp = tp[i] - tp[i + 1]
        if d_tp <= 0:
            continue
        tps = tp[i + 1] + s * d_tp
        ps = (tp[i + 1] + fp[i + 1]) + s * ((tp[i] + fp[i]) - (tp[i + 1] + fp[i + 1]))
        area += float(np.mean(tps / ps)) * d_tp / total_pos
    return area


@pytest.mark.parametrize("num_thresholds", [3, 11, 200])
def test_auc_roc_matches_trapezoid_over_batches(num_thresholds):
    rng = np.random.default_rng(1)
    t = (rng.random(60) < 0.4).astype(float)
    p = np.clip(0.3 * t + rng.random(60) * 0.7, 0, 1)
    w = rng.uniform(0.2, 2.0, 60)
    m = AUC(num_thresholds=num_thresholds)
    m.update_state(t[:25], p[:25], sample_weight=w[:25])
    m.update_state(t[25:], p[25:], sample_weight=w[25:])
    thresholds = _keras_thresholds(num_thresholds)
    expected = _roc_trapezoid(*_curve_counts(t, p.astype(np.float32), w,
                                             np.float32(thresholds)))
    assert m.result() == pytest.approx(expected, rel=1e-6)
    assert m.thresholds == pytest.approx(thresholds)
    assert m.true_positives.shape == (num_thresholds,)


def test_auc_pr_interpolation_matches_quadrature():
    rng = np.random.default_rng(2)
    t = (rng.random(80) < 0.5).astype(float)
    p = np.clip(0.35 * t + 0.65 * rng.random(80), 0, 1)
    m = AUC(num_thresholds=9, curve="PR")
    m.update_state(t, p)
    tp, fp, _, fn = _curve_counts(t, p.astype(np.float32), np.ones(80),
                                  np.float32(_keras_thresholds(9)))
    assert m.result() == pytest.approx(_pr_interpolated_by_quadrature(tp, fp, fn), rel=1e-4)


def test_auc_minoring_majoring_and_pr_riemann():
    t = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.35, 0.8, 0.55, 0.3])
    tp, fp, tn, fn = _curve_counts(t, p, np.ones(6), _keras_thresholds(5))
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    prec = np.divide(tp, tp + fp, out=np.zeros(5), where=(tp + fp) > 0)
    for method, h in (("minoring", np.minimum), ("majoring", np.maximum)):
        m = AUC(num_thresholds=5, summation_method=method)
        m.update_state(t, p)
        assert m.result() == pytest.approx(float(((fpr[:-1] - fpr[1:]) * h(tpr[:-1], tpr[1:]))
                                                 .sum()))
        pr = AUC(num_thresholds=5, curve="PR", summation_method=method)
        pr.update_state(t, p)
        assert pr.result() == pytest.approx(float(((tpr[:-1] - tpr[1:])
                                                   * h(prec[:-1], prec[1:])).sum()))


def test_auc_perfect_and_reversed_rankings():
    m = AUC()
    m.update_state([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert m.result() == pytest.approx(1.0)
    m.reset_state()
    m.update_state([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert m.result() == pytest.approx(0.0)
    m.reset_state()
    assert m.result() == 0.0


def test_auc_given_thresholds_and_logits():
    t = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.7, 0.45, 0.5, 0.9])
    m = AUC(thresholds=[0.6, 0.4])  # uneven: compared one by one
    m.update_state(t, p)
    expected = _roc_trapezoid(*_curve_counts(t, p, np.ones(5), [-EPS, 0.4, 0.6, 1 + EPS]))
    assert m.result() == pytest.approx(expected)
    assert m.num_thresholds == 4 and m.get_config()["thresholds"] == [0.4, 0.6]
    z = np.log(p / (1 - p))
    logit = AUC(thresholds=[0.4, 0.6], from_logits=True)
    logit.update_state(t, z)
    assert logit.result() == pytest.approx(expected)


def test_auc_multi_label_and_label_weights():
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.3, 0.4], [0.6, 0.9], [0.4, 0.7]])
    th = _keras_thresholds(6)
    per_label = [_roc_trapezoid(*_curve_counts(t[:, j], p[:, j], np.ones(4), th))
                 for j in range(2)]
    m = AUC(num_thresholds=6, multi_label=True)
    m.update_state(t, p)
    assert m.result() == pytest.approx(np.mean(per_label))
    assert m.true_positives.shape == (6, 2)
    weighted = AUC(num_thresholds=6, multi_label=True, label_weights=[3.0, 1.0], num_labels=2)
    weighted.update_state(t, p)
    assert weighted.result() == pytest.approx((3 * per_label[0] + per_label[1]) / 4)
    flat = AUC(num_thresholds=6)
    flat.update_state(t, p)
    assert flat.result() == pytest.approx(
        _roc_trapezoid(*_curve_counts(t.ravel(), p.ravel(), np.ones(8), th)))


# ----------------------------------------------------------------------------
# F-scores


YT3 = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.int32)
YP3 = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32)


def test_fbeta_keras_examples():
    f = FBetaScore(beta=2.0, threshold=0.5)
    f.update_state(YT3, YP3)
    np.testing.assert_allclose(f.result(), [0.3846154, 0.90909094, 0.8333334], rtol=1e-5)
    f1 = F1Score(threshold=0.5)
    f1.update_state(YT3, YP3)
    np.testing.assert_allclose(f1.result(), [0.5, 0.8, 0.6666667], rtol=1e-5)


def _f1_by_hand(tp, fp, fn):
    prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    return 2 * prec * rec / (prec + rec + EPS)


def test_f1_averages_by_hand():
    pred = (YP3 > 0.5).astype(float)
    tp = (pred * YT3).sum(0)
    fp = (pred * (1 - YT3)).sum(0)
    fn = ((1 - pred) * YT3).sum(0)
    per_class = _f1_by_hand(tp, fp, fn)
    support = YT3.sum(0)
    expected = {
        "micro": _f1_by_hand(tp.sum(), fp.sum(), fn.sum()),
        "macro": per_class.mean(),
        "weighted": (per_class * support / (support.sum() + EPS)).sum(),
    }
    for average, value in expected.items():
        m = F1Score(average=average, threshold=0.5)
        m.update_state(YT3[:2], YP3[:2])
        m.update_state(YT3[2:], YP3[2:])
        assert m.result() == pytest.approx(float(value), rel=1e-6), average


def test_f1_argmax_without_threshold_and_weights():
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]])
    y_pred = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.0, 0.0, 0.0]])
    m = F1Score(average="micro")
    m.update_state(y_true, y_pred, sample_weight=[1.0, 2.0, 1.0, 1.0])
    # predicted: row0 class0 (tp w1), row1 class0 (fp w2, fn w2), row2 class2 (tp w1),
    # row3 all zero (fn w1).
    assert m.result() == pytest.approx(float(_f1_by_hand(2.0, 2.0, 3.0)), rel=1e-6)
    m.reset_state()
    assert m.result() == pytest.approx(0.0)


# ----------------------------------------------------------------------------
# names, string identifiers and log keys


@pytest.mark.parametrize("identifier, cls", [
    ("mae", MeanAbsoluteError), ("MAE", MeanAbsoluteError),
    ("mean_absolute_error", MeanAbsoluteError), ("MeanAbsoluteError", MeanAbsoluteError),
    ("mse", MeanSquaredError), ("mape", MeanAbsolutePercentageError),
    ("msle", MeanSquaredLogarithmicError), ("bce", BinaryCrossentropy),
    ("root_mean_squared_error", RootMeanSquaredError),
    ("top_k_categorical_accuracy", TopKCategoricalAccuracy),
    ("sparse_top_k_categorical_accuracy", SparseTopKCategoricalAccuracy),
    ("auc", AUC), ("precision", Precision), ("recall", Recall),
    ("true_positives", TruePositives), ("f1_score", F1Score), ("f_beta_score", FBetaScore),
    ("kl_divergence", KLDivergence), ("log_cosh_error", LogCoshError),
    ("categorical_hinge", CategoricalHinge), ("sum", Sum),
])
def test_get_resolves_keras_names(identifier, cls):
    m = metrics.get(identifier)
    assert type(m) is cls and m.name == identifier


def test_get_class_instance_function_and_unsupported():
    assert type(metrics.get(AUC)) is AUC
    m = metrics.get(metrics.mean_absolute_error)
    assert isinstance(m, metrics.MeanMetricWrapper) and m.name == "mean_absolute_error"
    m.update_state([[1.0, 3.0]], [[2.0, 1.0]])
    assert m.result() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="'R2Score'.*not supported"):
        metrics.get("R2Score")
    with pytest.raises(ValueError, match="not supported"):
        metrics.get("mean_io_u")


def test_automatic_names_are_unique_until_clear_session():
    keras.backend.clear_session()
    assert [Precision().name, Precision().name, AUC().name] == ["precision", "precision_1",
                                                                 "auc"]
    assert TruePositives().name == "true_positives"
    assert MeanAbsoluteError().name == "mean_absolute_error"  # fixed default names
    assert MeanAbsoluteError().name == "mean_absolute_error"
    keras.backend.clear_session()
    assert Precision().name == "precision"


def _tiny_binary_model():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype(np.float32)
    y = (rng.random((12, 1)) > 0.5).astype(np.float32)
    return model, x, y


def test_log_keys_through_compile_fit_evaluate():
    model, x, y = _tiny_binary_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[
        "mae", MeanAbsoluteError(), "acc", "auc", "precision", Recall(), "mse", "msle",
        BinaryCrossentropy(), "mape"])
    keys = ["mae", "mean_absolute_error", "acc", "auc", "precision", "recall", "mse", "msle",
            "binary_crossentropy", "mape"]
    history = model.fit(x, y, epochs=2, batch_size=4, validation_data=(x, y), verbose=0)
    assert set(history.history) == {"loss", *keys, *(f"val_{k}" for k in ["loss", *keys])}
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(logs) == {"loss", *keys}
    p = model.predict(x, verbose=0)
    assert logs["mae"] == pytest.approx(float(np.abs(p - y).mean()), rel=1e-5)
    assert logs["mean_absolute_error"] == pytest.approx(logs["mae"])
    assert logs["mse"] == pytest.approx(float(((p - y) ** 2).mean()), rel=1e-5)
    assert logs["acc"] == pytest.approx(float(((p > 0.5) == y).mean()))
    tp = float(((p > 0.5) & (y == 1)).sum())
    assert logs["precision"] == pytest.approx(tp / max(float((p > 0.5).sum()), 1))
    assert logs["recall"] == pytest.approx(tp / float((y == 1).sum()))


def test_top_k_log_keys_multiclass():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="softmax")])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    labels = rng.integers(0, 6, size=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_top_k_categorical_accuracy", "accuracy",
                           SparseTopKCategoricalAccuracy(k=2, name="top2")])
    logs = model.evaluate(x, labels, return_dict=True, verbose=0)
    assert set(logs) == {"loss", "sparse_top_k_categorical_accuracy", "accuracy", "top2"}
    p = model.predict(x, verbose=0)
    rank = (p > p[np.arange(10), labels][:, None]).sum(1)  # classes scored strictly higher
    assert logs["top2"] == pytest.approx(float((rank < 2).mean()))
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(float((rank < 5).mean()))


# ----------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize("make, error, argument", [
    (lambda: TopKCategoricalAccuracy(k=0), ValueError, "k"),
    (lambda: TopKCategoricalAccuracy(k=2.5), TypeError, "k"),
    (lambda: SparseTopKCategoricalAccuracy(from_sorted_ids="yes"), TypeError, "from_sorted_ids"),
    (lambda: Precision(thresholds=1.5), ValueError, "thresholds"),
    (lambda: Recall(thresholds=[0.2, -0.1]), ValueError, "thresholds"),
    (lambda: Precision(top_k=0), ValueError, "top_k"),
    (lambda: Recall(class_id=-1), ValueError, "class_id"),
    (lambda: TruePositives(thresholds="0.5"), ValueError, "thresholds"),
    (lambda: AUC(num_thresholds=1), ValueError, "num_thresholds"),
    (lambda: AUC(curve="DET"), ValueError, "curve"),
    (lambda: AUC(summation_method="simpson"), ValueError, "summation_method"),
    (lambda: AUC(num_labels=3), ValueError, "num_labels"),
    (lambda: AUC(label_weights=[1.0, -1.0]), ValueError, "label_weights"),
    (lambda: AUC(thresholds=[0.5, 2.0]), ValueError, "thresholds"),
    (lambda: F1Score(average="samples"), ValueError, "average"),
    (lambda: F1Score(threshold=0.0), ValueError, "threshold"),
    (lambda: FBetaScore(beta=0.0), ValueError, "beta"),
    (lambda: FBetaScore(beta="2"), TypeError, "beta"),
    (lambda: CategoricalCrossentropy(axis=1), ValueError, "axis"),
    (lambda: BinaryCrossentropy(label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: BinaryCrossentropy(from_logits=1), TypeError, "from_logits"),
    (lambda: SparseCategoricalCrossentropy(ignore_class=1.5), TypeError, "ignore_class"),
    (lambda: MeanSquaredError(dtype="int32"), ValueError, "dtype"),
    (lambda: MeanSquaredError(name=""), TypeError, "name"),
    (lambda: CosineSimilarity(axis="last"), TypeError, "axis"),
])
def test_bad_constructor_arguments(make, error, argument):
    with pytest.raises(error, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize("metric, y_true, y_pred, argument", [
    (MeanSquaredError(), np.zeros((2, 3)), np.zeros((2, 4)), "y_true"),
    (TopKCategoricalAccuracy(), np.zeros((2, 3)), np.zeros((2, 4)), "y_true"),
    (SparseTopKCategoricalAccuracy(), np.zeros(3), np.zeros((2, 4)), "y_true"),
    (SparseCategoricalCrossentropy(), np.array([0, 5]), np.full((2, 3), 1 / 3), "y_true"),
    (Precision(), np.zeros(3), np.zeros(4), "y_true"),
    (Precision(class_id=4), np.zeros((2, 3)), np.zeros((2, 3)), "class_id"),
    (Recall(class_id=0), np.zeros(3), np.zeros(3), "y_pred"),
    (AUC(multi_label=True), np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), "y_pred"),
    (F1Score(), np.zeros(3), np.zeros(3), "y_true"),
    (MeanAbsoluteError(), np.array(["a"]), np.zeros(1), "y_true"),
])
def test_bad_batches(metric, y_true, y_pred, argument):
    with pytest.raises((ValueError, TypeError), match=f"`{argument}`"):
        metric.update_state(y_true, y_pred)


def test_bad_sample_weight_shape():
    with pytest.raises(ValueError, match="`sample_weight`"):
        Precision().update_state([0, 1], [0.2, 0.8], sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="`sample_weight`"):
        MeanAbsoluteError().update_state([[0.0], [1.0]], [[0.0], [1.0]], sample_weight=[1, 2, 3])


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        AUC.from_config({"name": "auc", "num_thresholds": 10, "bogus": 1})


# ----------------------------------------------------------------------------
# config round trips


ALL_CONFIGURED = [
    MeanSquaredError(name="m1", dtype="float64"), RootMeanSquaredError(), MeanAbsoluteError(),
    MeanAbsolutePercentageError(), MeanSquaredLogarithmicError(), LogCoshError(),
    CosineSimilarity(axis=0), TopKCategoricalAccuracy(k=3),
    SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True),
    Precision(thresholds=[0.3, 0.6], class_id=1, name="p"), Recall(top_k=2, name="r"),
    TruePositives(thresholds=0.2, name="tp"), FalseNegatives(name="fn"),
    AUC(num_thresholds=17, curve="PR", summation_method="minoring", name="a"),
    AUC(thresholds=[0.2, 0.7], multi_label=True, num_labels=2, label_weights=[1.0, 2.0],
        from_logits=True, name="a2"),
    F1Score(average="macro", threshold=0.4), FBetaScore(average="weighted", beta=0.5),
    Hinge(), SquaredHinge(), CategoricalHinge(), KLDivergence(), Poisson(),
    BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    CategoricalCrossentropy(label_smoothing=0.2),
    SparseCategoricalCrossentropy(from_logits=True, ignore_class=3), Sum(name="s"),
    metrics.Accuracy(), metrics.BinaryAccuracy(threshold=0.0),
]


@pytest.mark.parametrize("metric", ALL_CONFIGURED, ids=lambda m: type(m).__name__)
def test_config_round_trip(metric):
    config = metric.get_config()
    assert {"name", "dtype"} <= set(config)
    again = type(metric).from_config(config)
    assert type(again) is type(metric) and again.get_config() == config
    rebuilt = metrics.get({"class_name": type(metric).__name__, "config": config})
    assert rebuilt.get_config() == config


def test_keras_config_keys():
    assert Precision(name="p").get_config() == {"name": "p", "dtype": "float32",
                                                "thresholds": None, "top_k": None,
                                                "class_id": None}
    assert AUC(name="a").get_config() == {
        "name": "a", "dtype": "float32", "num_thresholds": 200, "curve": "ROC",
        "summation_method": "interpolation", "multi_label": False, "num_labels": None,
        "label_weights": None, "from_logits": False}
    assert F1Score().get_config() == {"name": "f1_score", "dtype": "float32", "average": None,
                                      "threshold": None}
    assert LogCoshError().get_config() == {"name": "logcosh", "dtype": "float32"}


def test_round_trip_keeps_results():
    t = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.8, 0.3], [0.4, 0.6], [0.55, 0.2]])
    for metric in (AUC(num_thresholds=7, name="x"), Precision(thresholds=[0.5, 0.25], name="y"),
                   F1Score(average="weighted", threshold=0.5)):
        again = type(metric).from_config(metric.get_config())
        metric.update_state(t, p)
        again.update_state(t, p)
        np.testing.assert_allclose(again.result(), metric.result())


def test_call_updates_and_returns_result():
    m = MeanAbsoluteError()
    assert m([[1.0]], [[3.0]]) == pytest.approx(2.0)
    assert m([[1.0]], [[1.0]]) == pytest.approx(1.0)
    assert [v.shape for v in m.variables] == [(), ()]


def test_vector_results_in_logs_and_history():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 9)]
    model.compile(optimizer="sgd", loss="categorical_crossentropy",
                  metrics=[F1Score(), TruePositives(thresholds=[0.2, 0.5], dtype="float64")])
    history = model.fit(x, y, epochs=2, batch_size=9, verbose=0)
    assert [np.shape(v) for v in history.history["f1_score"]] == [(3,), (3,)]
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    p = model.predict(x, verbose=0)
    hits = (p >= p.max(1, keepdims=True))
    tp, fp, fn = (hits * y).sum(0), (hits * (1 - y)).sum(0), ((1 - hits) * y).sum(0)
    np.testing.assert_allclose(logs["f1_score"], _f1_by_hand(tp, fp, fn), rtol=1e-5)
    np.testing.assert_allclose(logs["true_positives"],
                               [((p > 0.2) * y).sum(), ((p > 0.5) * y).sum()])
    # Progress lines show the mean, as Keras' progress bar does.
    assert f"{logs['f1_score']:.4f}" == f"{float(np.mean(logs['f1_score'])):.4f}"
    # Logged arrays are copies: later batches do not change the history.
    first = np.array(history.history["true_positives"][0])
    model.evaluate(x[:2], y[:2], verbose=0)
    np.testing.assert_array_equal(history.history["true_positives"][0], first)


def test_compiled_metrics_survive_save_and_load(tmp_path):
    model, x, y = _tiny_binary_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=["mae", AUC(num_thresholds=5, name="auc5"), "precision",
                           F1Score(average="micro", threshold=0.5)])
    before = model.evaluate(x, y, return_dict=True, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    after = loaded.evaluate(x, y, return_dict=True, verbose=0)
    assert set(after) == {"loss", "mae", "auc5", "precision", "f1_score"}
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-6), key


class _BinaryTruePositives(metrics.Metric):
    """Keras' example of a metric written by subclassing (keras/src/metrics/metric.py)."""

    def __init__(self, name="binary_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), initializer="zeros",
                                                name="true_positives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "bool")
        y_pred = keras.ops.cast(keras.ops.greater(y_pred, 0.5), "bool")
        values = keras.ops.cast(keras.ops.equal(y_true, True) & keras.ops.equal(y_pred, True),
                                self.dtype)
        if sample_weight is not None:
            values = keras.ops.multiply(values, keras.ops.broadcast_to(
                keras.ops.cast(sample_weight, self.dtype), keras.ops.shape(values)))
        self.true_positives.assign(self.true_positives + keras.ops.sum(values))

    def result(self):
        return self.true_positives


def test_subclassed_metric_with_add_variable():
    m = _BinaryTruePositives()
    m.update_state(np.array([[1], [0], [1]]), np.array([[0.9], [0.8], [0.7]]),
                   sample_weight=np.array([[1.0], [1.0], [3.0]]))
    assert float(m.result()) == 4.0
    (variable,) = m.variables
    assert variable.name == "true_positives" and variable.path == "binary_true_positives/true_positives"
    assert variable.shape == () and variable.dtype == np.float32
    m.reset_state()
    assert float(m.result()) == 0.0
    model, x, y = _tiny_binary_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[_BinaryTruePositives()])
    logs = model.evaluate(x, y, batch_size=5, return_dict=True, verbose=0)
    p = model.predict(x, verbose=0)
    assert logs["binary_true_positives"] == float(((p > 0.5) & (y == 1)).sum())


def test_unimplemented_keras_classes_say_so():
    with pytest.raises(AttributeError, match="R2Score is not supported"):
        metrics.R2Score  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        metrics.Nonsense  # noqa: B018

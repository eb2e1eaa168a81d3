"""The losses beyond the cross-entropies: values against Keras' documented
examples and formulas (restated in NumPy below), gradients by float64
central differences (step 1e-6; rtol = atol = 1e-6, see test_losses.py),
PyTorch as oracle where it has the same loss, configs, names and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastconv import losses
from fastconv.losses import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)

H = 1e-6
FD_TOL = 1e-6
EPS = 1e-7

rng = np.random.default_rng(11)


def numerical_gradient(f, x):
    x = np.array(x, dtype=np.float64)
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


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# ----------------------------------------------------------------------------
# Keras' formulas, restated (per-sample losses, last axis reduced)


def ref_mae(t, p):
    return np.abs(t - p).mean(-1)


def ref_mape(t, p):
    return 100 * (np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1)


def ref_msle(t, p):
    return ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1)


def ref_huber(t, p, delta=1.0):
    e = np.abs(p - t)
    return np.where(e <= delta, 0.5 * e ** 2, delta * e - 0.5 * delta ** 2).mean(-1)


def ref_log_cosh(t, p):
    return np.log(np.cosh(p - t)).mean(-1)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return (t * np.log(t / p)).sum(-1)


def ref_poisson(t, p):
    return (p - t * np.log(p + EPS)).mean(-1)


def ref_hinge(t, p, squared=False):
    if np.all((t == 0) | (t == 1)):
        t = 2 * t - 1
    h = np.maximum(1 - t * p, 0)
    return (h ** 2 if squared else h).mean(-1)


def ref_categorical_hinge(t, p):
    return np.maximum(((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0)


def ref_cosine(t, p):
    tn = t / np.linalg.norm(t, axis=-1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=-1, keepdims=True)
    return -(tn * pn).sum(-1)


def ref_cfce(t, p, alpha=0.25, gamma=2.0):
    c = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return (alpha * (1 - c) ** gamma * -t * np.log(c)).sum(-1)


def ref_bfce(t, p, gamma=2.0, alpha=0.25, balance=False):
    c = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(c) + (1 - t) * np.log(1 - c))
    p_t = t * p + (1 - t) * (1 - p)
    w = alpha * t + (1 - alpha) * (1 - t) if balance else 1.0
    return (w * (1 - p_t) ** gamma * bce).mean(-1)


def positive(shape, low=0.1, high=0.9):
    return rng.uniform(low, high, shape)


def onehot(shape):
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]


def away_from(x, kinks, margin=0.02):
    """Move entries of ``x`` off ``kinks`` so central differences are not
    taken across a kink."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + margin * np.where(x[near] >= k, 2, -2)
    return x


# (loss, y_true, y_pred, reference) for a (4, 3) batch, inputs away from kinks.
def regression_cases():
    t = rng.standard_normal((4, 3))
    p = t + away_from(rng.standard_normal((4, 3)), [0.0])
    t_pos, p_pos = positive((4, 3), 0.5, 3.0), positive((4, 3), 0.5, 3.0)
    t_prob = softmax(rng.standard_normal((4, 3)))
    p_prob = softmax(rng.standard_normal((4, 3)))
    signs = rng.choice([-1.0, 1.0], (4, 3))
    margins = signs * away_from(rng.uniform(-1, 3, (4, 3)), [1.0])
    labels01 = rng.integers(0, 2, (4, 3)).astype(float)
    hinge_p = away_from(rng.standard_normal((4, 3)), [-1.0, 1.0])
    oh = onehot((4, 3))
    return [
        ("mae", MeanAbsoluteError(), t, p, ref_mae),
        ("mape", MeanAbsolutePercentageError(), t_pos, p_pos, ref_mape),
        ("msle", MeanSquaredLogarithmicError(), t_pos, p_pos, ref_msle),
        ("huber", Huber(), t, p, ref_huber),
        ("huber_delta", Huber(delta=0.4), t, t + away_from(p - t, [-0.4, 0.4]),
         lambda a, b: ref_huber(a, b, 0.4)),
        ("log_cosh", LogCosh(), t, p, ref_log_cosh),
        ("kld", KLDivergence(), t_prob, p_prob, ref_kld),
        ("poisson", Poisson(), t_pos, p_pos, ref_poisson),
        ("hinge", Hinge(), signs, margins / 1.0, ref_hinge),
        ("hinge01", Hinge(), labels01, hinge_p, ref_hinge),
        ("squared_hinge", SquaredHinge(), signs, margins,
         lambda a, b: ref_hinge(a, b, True)),
        ("categorical_hinge", CategoricalHinge(), oh, rng.standard_normal((4, 3)) * 0.3,
         ref_categorical_hinge),
        ("cosine", CosineSimilarity(), t, p, ref_cosine),
        ("cfce", CategoricalFocalCrossentropy(), t_prob, positive((4, 3)), ref_cfce),
        ("cfce_gamma", CategoricalFocalCrossentropy(alpha=0.7, gamma=0.5), oh,
         positive((4, 3)), lambda a, b: ref_cfce(a, b, 0.7, 0.5)),
        ("bfce", BinaryFocalCrossentropy(), labels01, positive((4, 3)), ref_bfce),
        ("bfce_balanced", BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3,
                                                   gamma=1.5),
         rng.uniform(0, 1, (4, 3)), positive((4, 3)),
         lambda a, b: ref_bfce(a, b, 1.5, 0.3, True)),
    ]


CASES = regression_cases()
IDS = [c[0] for c in CASES]


# ----------------------------------------------------------------------------
# Keras' documented examples


def test_keras_docstring_examples():
    assert MeanAbsoluteError()([1.0, 0.3, 1.0], np.array([1.9, 0.3, 1.8])) == pytest.approx(
        0.5666667, rel=1e-6)
    assert MeanAbsolutePercentageError()([100.0, 200.0, 300.0], np.array(
        [90.0, 210.0, 310.0])) == pytest.approx(6.111111, rel=1e-6)
    assert MeanSquaredError()([1.0, 0.0, 1.0], np.array([0.9, 0.1, 0.8])) == pytest.approx(0.02)
    np.testing.assert_allclose(losses.cosine_similarity(
        [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]], np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]])),
        [0.0, -1.0, 1.0], atol=1e-7)
    assert np.mean(losses.huber([[0, 1], [0, 0]], np.array([[0.6, 0.4], [0.4, 0.6]]))) == (
        pytest.approx(0.155))
    assert np.mean(losses.log_cosh([[0.0, 1.0], [0.0, 0.0]], np.array(
        [[1.0, 1.0], [0.0, 0.0]]))) == pytest.approx(0.108, abs=1e-3)
    y_true = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], dtype=np.float32)
    cfce = CategoricalFocalCrossentropy()
    assert cfce(y_true, y_pred) == pytest.approx(0.23315276, rel=1e-5)
    assert cfce(y_true, y_pred, sample_weight=np.array([0.3, 0.7])) == pytest.approx(
        0.1632, abs=1e-4)
    assert CategoricalFocalCrossentropy(reduction="sum")(y_true, y_pred) == pytest.approx(
        0.46631, rel=1e-4)
    np.testing.assert_allclose(CategoricalFocalCrossentropy(reduction=None)(y_true, y_pred),
                               [3.2058331e-05, 4.6627346e-01], rtol=1e-4)


@pytest.mark.parametrize("kwargs, y_true, y_pred, sw, expected", [
    ({"gamma": 2}, [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8], None, 0.691),
    ({"gamma": 2, "apply_class_balancing": True}, [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8],
     None, 0.51),
    ({"gamma": 3}, [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]], None, 0.647),
    ({"gamma": 3, "apply_class_balancing": True}, [[0, 1], [0, 0]],
     [[-18.6, 0.51], [2.94, -12.8]], None, 0.482),
    ({"gamma": 3}, [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]], [0.8, 0.2], 0.133),
    ({"gamma": 3, "apply_class_balancing": True}, [[0, 1], [0, 0]],
     [[-18.6, 0.51], [2.94, -12.8]], [0.8, 0.2], 0.097),
    ({"gamma": 4, "reduction": "sum"}, [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]], None,
     1.222),
    ({"gamma": 4, "reduction": "sum", "apply_class_balancing": True}, [[0, 1], [0, 0]],
     [[-18.6, 0.51], [2.94, -12.8]], None, 0.914),
    ({"gamma": 5, "reduction": None}, [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]], None,
     [0.0017, 1.1561]),
    ({"gamma": 5, "reduction": None, "apply_class_balancing": True}, [[0, 1], [0, 0]],
     [[-18.6, 0.51], [2.94, -12.8]], None, [0.0004, 0.8670]),
])
def test_binary_focal_keras_examples(kwargs, y_true, y_pred, sw, expected):
    loss = BinaryFocalCrossentropy(from_logits=True, **kwargs)
    value = loss(y_true, np.array(y_pred, dtype=np.float32), sample_weight=sw)
    np.testing.assert_allclose(value, expected, atol=1e-3)


def test_binary_keras_examples_with_weights():
    y_true, y_pred = [[0, 1], [0, 0]], np.array([[-18.6, 0.51], [2.94, -12.8]])
    bce = BinaryCrossentropy(from_logits=True)
    assert bce(y_true, y_pred) == pytest.approx(0.8654, abs=1e-4)
    assert bce(y_true, y_pred, sample_weight=[0.8, 0.2]) == pytest.approx(0.243, abs=1e-3)
    assert BinaryCrossentropy(from_logits=True, reduction="sum")(y_true, y_pred) == (
        pytest.approx(1.730, abs=1e-3))


# ----------------------------------------------------------------------------
# values and gradients against the restated formulas


@pytest.mark.parametrize("name, loss, y_true, y_pred, reference", CASES, ids=IDS)
def test_values(name, loss, y_true, y_pred, reference):
    np.testing.assert_allclose(type(loss).from_config({**loss.get_config(), "reduction": None})(
        y_true, y_pred), reference(y_true, y_pred), rtol=1e-12, atol=1e-14)
    assert loss(y_true, y_pred) == pytest.approx(reference(y_true, y_pred).mean(), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name, loss, y_true, y_pred, reference", CASES, ids=IDS)
def test_gradients(name, loss, y_true, y_pred, reference, weighted):
    sw = rng.uniform(0, 2, 4) if weighted else None
    np.testing.assert_allclose(loss.gradient(y_true, y_pred, sw),
                               numerical_gradient(lambda p: loss(y_true, p, sw), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)
    zero = loss.gradient(y_true, y_pred, np.zeros(4))
    np.testing.assert_array_equal(zero, 0)


@pytest.mark.parametrize("loss", [CategoricalFocalCrossentropy(from_logits=True),
                                  CategoricalFocalCrossentropy(from_logits=True, gamma=0.0,
                                                               label_smoothing=0.2),
                                  BinaryFocalCrossentropy(from_logits=True),
                                  BinaryFocalCrossentropy(from_logits=True, gamma=0.7,
                                                          apply_class_balancing=True,
                                                          label_smoothing=0.1)], ids=repr)
def test_focal_from_logits_and_fused(loss):
    z = 2 * rng.standard_normal((4, 3))
    binary = isinstance(loss, BinaryFocalCrossentropy)
    y_true = rng.integers(0, 2, (4, 3)).astype(float) if binary else onehot((4, 3))
    activation = sigmoid if binary else softmax
    sw = rng.uniform(0, 2, 4)
    np.testing.assert_allclose(loss.gradient(y_true, z, sw),
                               numerical_gradient(lambda x: loss(y_true, x, sw), z),
                               rtol=FD_TOL, atol=FD_TOL)
    on_probs = type(loss).from_config({**loss.get_config(), "from_logits": False})
    assert on_probs(y_true, activation(z), sw) == pytest.approx(loss(y_true, z, sw), rel=1e-12)
    np.testing.assert_allclose(on_probs.logits_gradient(y_true, activation(z), sw),
                               loss.gradient(y_true, z, sw), rtol=1e-10, atol=1e-14)
    assert on_probs.fused_activation == ("sigmoid" if binary else "softmax")


def test_focal_with_gamma_zero_is_cross_entropy():
    p, t = positive((3, 4)), onehot((3, 4))
    assert CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0)(t, p) == pytest.approx(
        CategoricalCrossentropy()(t, p), rel=1e-12)
    b = rng.integers(0, 2, (3, 4))
    assert BinaryFocalCrossentropy(gamma=0.0)(b, p) == pytest.approx(
        BinaryCrossentropy()(b, p), rel=1e-12)


def test_binary_focal_saturated_probabilities_stay_finite():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for gamma in (0.5, 1.0, 2.0):
            loss = BinaryFocalCrossentropy(gamma=gamma)
            g = loss.gradient([[1.0, 0.0]], np.array([[1.0, 0.0]]))
            assert np.isfinite(g).all()
            assert loss.logits_gradient([[1.0, 0.0]], np.array([[1.0, 0.0]])).tolist() == [
                [0.0, 0.0]]


def test_kinks_take_the_one_sided_rule():
    # |e| at 0: sign(0) = 0; max(1 - t p, 0) at 0: no gradient.
    np.testing.assert_array_equal(MeanAbsoluteError().gradient([[1.0, 2.0]], np.array(
        [[1.0, 3.0]])), [[0.0, 0.5]])
    np.testing.assert_array_equal(Hinge().gradient([[1.0, -1.0]], np.array([[1.0, 0.0]])),
                                  [[0.0, 0.5]])
    # KL divergence: p clipped below 1e-7 has no gradient.
    assert KLDivergence().gradient([[0.5, 0.5]], np.array([[0.0, 0.5]]))[0, 0] == 0
    # A tie in the categorical hinge's max shares the gradient.
    g = CategoricalHinge().gradient([[1.0, 0.0, 0.0]], np.array([[0.0, 0.5, 0.5]]))
    np.testing.assert_allclose(g, [[-1.0, 0.5, 0.5]])


def test_hinge_label_conversion_is_per_batch():
    p = np.array([[0.3, -0.2]])
    # 0/1 labels become -1/1; once a -1 is present, labels stay as given.
    assert Hinge()([[0.0, 1.0]], p) == pytest.approx(((1 + 0.3) + (1 + 0.2)) / 2)
    assert Hinge()([[-1.0, 1.0]], p) == pytest.approx(((1 + 0.3) + (1 + 0.2)) / 2)
    assert Hinge()([[0.5, 1.0]], p) == pytest.approx(((1 - 0.15) + (1 + 0.2)) / 2)


def test_cosine_similarity_axis_and_zero_vector():
    t = rng.standard_normal((3, 4, 2))
    p = rng.standard_normal((3, 4, 2))
    loss = CosineSimilarity(axis=1, reduction=None)
    np.testing.assert_allclose(loss(t, p), ref_cosine(np.moveaxis(t, 1, -1),
                                                      np.moveaxis(p, 1, -1)), rtol=1e-12)
    mean_loss = CosineSimilarity(axis=1)
    np.testing.assert_allclose(mean_loss.gradient(t, p),
                               numerical_gradient(lambda x: mean_loss(t, x), p),
                               rtol=FD_TOL, atol=FD_TOL)
    zero = CosineSimilarity(reduction=None)([[1.0, 0.0]], np.zeros((1, 2)))
    assert zero.tolist() == [0.0]
    assert np.isfinite(CosineSimilarity().gradient([[1.0, 0.0]], np.zeros((1, 2)))).all()


# ----------------------------------------------------------------------------
# label smoothing and axis of the cross-entropies


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_label_smoothing_and_axis(from_logits):
    z = rng.standard_normal((2, 4, 3))
    y_pred = z if from_logits else softmax(z, axis=1)
    y_true = np.moveaxis(onehot((2, 3, 4)), -1, 1)  # classes on axis 1
    loss = CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.3, axis=1,
                                   reduction=None)
    smooth = y_true * 0.7 + 0.3 / 4
    expected = -(smooth * np.log(softmax(z, axis=1))).sum(axis=1)
    np.testing.assert_allclose(loss(y_true, y_pred), expected, rtol=1e-10)
    mean_loss = CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.3, axis=1)
    sw = rng.uniform(0, 1, (2, 3))
    np.testing.assert_allclose(mean_loss.gradient(y_true, y_pred, sw),
                               numerical_gradient(lambda x: mean_loss(y_true, x, sw), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)
    if not from_logits:
        np.testing.assert_allclose(
            mean_loss.logits_gradient(y_true, y_pred, sw),
            numerical_gradient(lambda x: mean_loss(y_true, softmax(x, axis=1), sw), z),
            rtol=FD_TOL, atol=FD_TOL)


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_label_smoothing_and_axis(from_logits):
    z = rng.standard_normal((3, 2, 4))
    y_pred = z if from_logits else sigmoid(z)
    y_true = rng.integers(0, 2, (3, 2, 4)).astype(float)
    loss = BinaryCrossentropy(from_logits=from_logits, label_smoothing=0.2, axis=1,
                              reduction=None)
    t = y_true * 0.8 + 0.1
    elements = -(t * np.log(sigmoid(z)) + (1 - t) * np.log(1 - sigmoid(z)))
    np.testing.assert_allclose(loss(y_true, y_pred), elements.mean(axis=1), rtol=1e-10)
    mean_loss = BinaryCrossentropy(from_logits=from_logits, label_smoothing=0.2, axis=1)
    np.testing.assert_allclose(mean_loss.gradient(y_true, y_pred),
                               numerical_gradient(lambda x: mean_loss(y_true, x), y_pred),
                               rtol=FD_TOL, atol=FD_TOL)


def test_sparse_has_no_label_smoothing_but_ignore_class_and_axis():
    with pytest.raises(TypeError, match="label_smoothing"):
        SparseCategoricalCrossentropy(label_smoothing=0.1)
    z = rng.standard_normal((2, 3, 4))  # classes on axis 1
    labels = np.array([[0, 2, 255, 1], [255, 255, 1, 0]])
    loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=255, axis=1)
    log_p = np.log(softmax(z, axis=1))
    valid = labels != 255
    picked = np.take_along_axis(log_p, np.where(valid, labels, 0)[:, None], axis=1)[:, 0]
    # Ignored pixels are masked out of the mean (Keras' mask).
    assert loss(labels, z) == pytest.approx(-(picked * valid).sum() / valid.sum(), rel=1e-12)
    none = SparseCategoricalCrossentropy(from_logits=True, ignore_class=255, axis=1,
                                         reduction=None)(labels, z)
    np.testing.assert_allclose(none, -(picked * valid), rtol=1e-12)
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        r = SparseCategoricalCrossentropy(from_logits=True, ignore_class=255, axis=1,
                                          reduction=reduction)
        sw = rng.uniform(0.5, 2, (2, 4))
        g = r.gradient(labels, z, sw)
        np.testing.assert_allclose(g, numerical_gradient(lambda x, r=r, sw=sw: r(labels, x, sw),
                                                         z), rtol=FD_TOL, atol=FD_TOL)
        np.testing.assert_array_equal(g[~np.broadcast_to(valid[:, None], z.shape)], 0)
    with pytest.raises(ValueError, match=r"\[0, 3\) \(or ignore_class=255\)"):
        loss(np.array([[0, 9, 1, 1], [0, 0, 0, 0]]), z)


# ----------------------------------------------------------------------------
# PyTorch as oracle


def test_torch_oracle_values_and_gradients():
    torch = pytest.importorskip("torch")
    t = rng.standard_normal((5, 3))
    p = t + rng.standard_normal((5, 3))
    pos_t, pos_p = positive((5, 3), 0.2, 3.0), positive((5, 3), 0.2, 3.0)
    prob_t, prob_p = softmax(rng.standard_normal((5, 3))), softmax(rng.standard_normal((5, 3)))
    F = torch.nn.functional

    def check(loss, y_true, y_pred, torch_fn):
        x = torch.tensor(y_pred, requires_grad=True)
        value = torch_fn(torch.tensor(y_true), x)
        value.backward()
        assert loss(y_true, y_pred) == pytest.approx(value.item(), rel=1e-10)
        np.testing.assert_allclose(loss.gradient(y_true, y_pred), x.grad.numpy(),
                                   rtol=1e-10, atol=1e-14)

    check(Huber(delta=0.7), t, p, lambda a, b: F.huber_loss(b, a, delta=0.7))
    check(MeanAbsoluteError(), t, p, lambda a, b: F.l1_loss(b, a))
    check(MeanSquaredError(), t, p, lambda a, b: F.mse_loss(b, a))
    check(KLDivergence(reduction="sum"), prob_t, prob_p,
          lambda a, b: F.kl_div(torch.log(b), a, reduction="sum"))
    check(Poisson(), pos_t, pos_p,
          lambda a, b: F.poisson_nll_loss(b, a, log_input=False, eps=EPS))
    check(CosineSimilarity(), t, p, lambda a, b: -F.cosine_similarity(a, b, dim=-1).mean())
    labels = rng.integers(0, 3, 5)
    check(CategoricalCrossentropy(from_logits=True, label_smoothing=0.25), np.eye(3)[labels], p,
          lambda a, b: F.cross_entropy(b, a.argmax(-1), label_smoothing=0.25))
    check(BinaryCrossentropy(from_logits=True, label_smoothing=0.3), (t > 0).astype(float), p,
          lambda a, b: F.binary_cross_entropy_with_logits(b, a * 0.7 + 0.15))
    sw = rng.uniform(0, 2, 5)
    x = torch.tensor(p, requires_grad=True)
    value = (F.cross_entropy(x, torch.tensor(labels), reduction="none") * torch.tensor(sw)).sum()
    value.backward()
    loss = SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    assert loss(labels, p, sw) == pytest.approx(value.item(), rel=1e-10)
    np.testing.assert_allclose(loss.gradient(labels, p, sw), x.grad.numpy(), rtol=1e-10)


def test_torch_oracle_focal_gradients():
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((4, 3))
    t = rng.integers(0, 2, (4, 3)).astype(float)
    x = torch.tensor(z, requires_grad=True)
    # torchvision's sigmoid_focal_loss, written out: alpha-balanced, gamma=2.
    prob = torch.sigmoid(x)
    tt = torch.tensor(t)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, tt, reduction="none")
    p_t = prob * tt + (1 - prob) * (1 - tt)
    alpha_t = 0.25 * tt + 0.75 * (1 - tt)
    value = (alpha_t * ce * (1 - p_t) ** 2).mean()
    value.backward()
    loss = BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True)
    assert loss(t, z) == pytest.approx(value.item(), rel=1e-9)
    np.testing.assert_allclose(loss.gradient(t, z), x.grad.numpy(), rtol=1e-8, atol=1e-14)


# ----------------------------------------------------------------------------
# names, functions and configs


@pytest.mark.parametrize("identifier, cls, name", [
    ("mae", MeanAbsoluteError, "mae"), ("MAE", MeanAbsoluteError, "MAE"),
    ("mean_absolute_error", MeanAbsoluteError, "mean_absolute_error"),
    ("mape", MeanAbsolutePercentageError, "mape"),
    ("msle", MeanSquaredLogarithmicError, "msle"),
    ("kld", KLDivergence, "kld"), ("KLD", KLDivergence, "KLD"),
    ("kl_divergence", KLDivergence, "kl_divergence"),
    ("kullback_leibler_divergence", KLDivergence, "kullback_leibler_divergence"),
    ("huber", Huber, "huber"), ("Huber", Huber, "huber_loss"),
    ("log_cosh", LogCosh, "log_cosh"), ("logcosh", LogCosh, "logcosh"),
    ("poisson", Poisson, "poisson"), ("hinge", Hinge, "hinge"),
    ("squared_hinge", SquaredHinge, "squared_hinge"),
    ("categorical_hinge", CategoricalHinge, "categorical_hinge"),
    ("cosine_similarity", CosineSimilarity, "cosine_similarity"),
    ("categorical_focal_crossentropy", CategoricalFocalCrossentropy,
     "categorical_focal_crossentropy"),
    ("binary_focal_crossentropy", BinaryFocalCrossentropy, "binary_focal_crossentropy"),
    ("BinaryFocalCrossentropy", BinaryFocalCrossentropy, "binary_focal_crossentropy"),
    (losses.huber, Huber, "huber"), (losses.mean_absolute_error, MeanAbsoluteError,
                                     "mean_absolute_error"),
])
def test_get_by_name_alias_and_function(identifier, cls, name):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.name == name
    assert loss.reduction == "sum_over_batch_size"


@pytest.mark.parametrize("name", ["dice", "Tversky", "ctc", "circle"])
def test_keras_losses_not_implemented(name):
    with pytest.raises(ValueError, match=f"{name!r} is not supported"):
        losses.get(name)


@pytest.mark.parametrize("fn, cls, kwargs", [
    (losses.huber, Huber, {"delta": 0.5}),
    (losses.cosine_similarity, CosineSimilarity, {"axis": 0}),
    (losses.categorical_crossentropy, CategoricalCrossentropy, {"label_smoothing": 0.1}),
    (losses.binary_focal_crossentropy, BinaryFocalCrossentropy, {"gamma": 1.0}),
    (losses.poisson, Poisson, {}),
    (losses.squared_hinge, SquaredHinge, {}),
])
def test_function_forms_give_per_sample_losses(fn, cls, kwargs):
    t, p = positive((3, 4)), positive((3, 4))
    np.testing.assert_allclose(fn(t, p, **kwargs), cls(reduction=None, **kwargs)(t, p),
                               rtol=1e-15)
    assert np.shape(fn(t, p, **kwargs)) == ((4,) if kwargs.get("axis") == 0 else (3,))


@pytest.mark.parametrize("loss", [
    Huber(delta=2.0, reduction="sum", name="h"), MeanAbsoluteError(),
    MeanAbsolutePercentageError(reduction=None), MeanSquaredLogarithmicError(),
    LogCosh(), KLDivergence(), Poisson(), Hinge(), SquaredHinge(), CategoricalHinge(),
    CosineSimilarity(axis=1), CategoricalFocalCrossentropy(alpha=0.5, gamma=1.0,
                                                           from_logits=True,
                                                           label_smoothing=0.1, axis=0),
    BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=3.0),
    CategoricalCrossentropy(label_smoothing=0.2, axis=1),
    BinaryCrossentropy(from_logits=True, label_smoothing=0.05, reduction="mean"),
], ids=repr)
def test_config_round_trip(loss):
    again = losses.get(losses.serialize(loss))
    assert type(again) is type(loss) and again.get_config() == loss.get_config()
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()


def test_keras_config_keys():
    assert Huber().get_config() == {"name": "huber_loss", "reduction": "sum_over_batch_size",
                                    "delta": 1.0}
    assert CosineSimilarity().get_config() == {"name": "cosine_similarity",
                                               "reduction": "sum_over_batch_size", "axis": -1}
    assert LogCosh().get_config() == {"name": "log_cosh", "reduction": "sum_over_batch_size"}
    assert KLDivergence().name == "kl_divergence" and Poisson().name == "poisson"
    assert set(CategoricalFocalCrossentropy().get_config()) == {
        "name", "reduction", "from_logits", "label_smoothing", "axis", "alpha", "gamma"}
    assert set(BinaryFocalCrossentropy().get_config()) == {
        "name", "reduction", "from_logits", "label_smoothing", "axis",
        "apply_class_balancing", "alpha", "gamma"}
    # A Keras 3 config with dtype=None loads.
    assert Huber.from_config({"name": "huber_loss", "reduction": "sum", "delta": 1.5,
                              "dtype": None}).delta == 1.5


# ----------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize("make, error, match", [
    (lambda: Huber(delta=0.0), ValueError, r"`delta`.*\(0.0, inf\).*delta=0.0"),
    (lambda: Huber(delta=-1), ValueError, "`delta`"),
    (lambda: Huber(delta="1"), TypeError, "`delta`.*finite float"),
    (lambda: Huber(delta=np.inf), TypeError, "`delta`"),
    (lambda: CategoricalFocalCrossentropy(gamma=-1.0), ValueError, "`gamma`"),
    (lambda: CategoricalFocalCrossentropy(alpha=[0.2, 0.8]), TypeError, "`alpha`"),
    (lambda: BinaryFocalCrossentropy(apply_class_balancing=1), TypeError,
     "`apply_class_balancing`"),
    (lambda: BinaryCrossentropy(label_smoothing=1.5), ValueError,
     r"`label_smoothing`.*\[0.0, 1.0\].*1.5"),
    (lambda: CategoricalCrossentropy(axis=1.0), TypeError, "`axis`"),
    (lambda: CosineSimilarity(axis=True), TypeError, "`axis`"),
    (lambda: SparseCategoricalCrossentropy(ignore_class="x"), TypeError, "`ignore_class`"),
    (lambda: Poisson(reduction="auto"), ValueError, "`reduction`"),
    (lambda: LogCosh(name=""), TypeError, "`name`"),
])
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("loss", [MeanAbsoluteError(), Huber(), KLDivergence(), Hinge(),
                                  CategoricalHinge(), CosineSimilarity(),
                                  CategoricalFocalCrossentropy(), BinaryFocalCrossentropy()],
                         ids=repr)
def test_bad_inputs(loss):
    with pytest.raises(ValueError, match=r"`y_true`.*received shape \(3, 2\)"):
        loss(np.zeros((3, 2)), np.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="`y_pred`.*int64"):
        loss(np.zeros((2, 3)), np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="`y_true`.*dtype <U1"):
        loss(np.full((2, 3), "a"), np.full((2, 3), 0.5))


def test_axis_out_of_range():
    with pytest.raises(ValueError, match=r"`axis`.*\[-2, 2\).*axis=2"):
        CosineSimilarity(axis=2)(np.ones((2, 3)), np.ones((2, 3)))


def test_function_form_rejects_symbolic_tensors():
    from fastconv.graph.node import KerasTensor

    yt, yp = KerasTensor((None, 3), "float32"), KerasTensor((None, 3), "float32")
    with pytest.raises(TypeError, match=r"fastconv.losses.huber computes on arrays.*Huber\(\)"):
        losses.huber(yt, yp)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", None])
@pytest.mark.parametrize("name, loss, y_true, y_pred, reference", CASES, ids=IDS)
def test_float32_stays_float32(name, loss, y_true, y_pred, reference, reduction):
    loss = type(loss).from_config({**loss.get_config(), "reduction": reduction})
    p32 = y_pred.astype(np.float32)
    with warnings.catch_warnings(), np.errstate(divide="raise", invalid="raise",
                                                over="raise"):
        warnings.simplefilter("error")
        value = loss(y_true, p32, sample_weight=np.float32(0.5))
        grad = loss.gradient(y_true, p32, sample_weight=np.ones(4, np.float32))
    if reduction is None:
        assert value.dtype == np.float32 and value.shape == (4,)
        np.testing.assert_allclose(value, 0.5 * reference(y_true, y_pred), rtol=2e-5,
                                   atol=1e-6)
    else:
        assert isinstance(value, float)
        assert value == pytest.approx(0.5 * reference(y_true, y_pred).mean(), rel=2e-5)
    assert grad.dtype == np.float32 and grad.shape == p32.shape
    np.testing.assert_allclose(grad, loss.gradient(y_true, y_pred), rtol=1e-3, atol=1e-5)

"""Every loss through ``compile`` + ``fit`` and in a ``GradientTape`` loop on
a one-layer model, where one SGD step is checked by hand: the kernel moves
by ``-lr * x.T @ d loss / d y_pred`` (``d loss / d y_pred`` is checked by
finite differences in test_loss_values.py), and a save/load round trip
keeps the loss's arguments."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, losses, models

LR = 0.1
rng = np.random.default_rng(5)
X = rng.standard_normal((8, 4)).astype(np.float32)


def targets(kind):
    if kind == "sparse":
        return rng.integers(0, 3, 8)
    if kind == "onehot":
        return np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    if kind == "binary":
        return rng.integers(0, 2, (8, 3)).astype(np.float32)
    if kind == "positive":
        return rng.uniform(0.5, 2, (8, 3)).astype(np.float32)
    if kind == "signs":
        return rng.choice([-1.0, 1.0], (8, 3)).astype(np.float32)
    return rng.standard_normal((8, 3)).astype(np.float32)


# (compile's loss, activation of the output layer, kind of targets)
CASES = [
    ("mae", None, "real"), ("mape", None, "positive"), ("msle", "softplus", "positive"),
    (losses.Huber(delta=0.5), None, "real"), ("log_cosh", None, "real"),
    ("kld", "softmax", "onehot"), ("poisson", "softplus", "positive"),
    ("hinge", "tanh", "signs"), ("squared_hinge", None, "signs"),
    ("categorical_hinge", None, "onehot"), (losses.CosineSimilarity(), None, "real"),
    ("categorical_focal_crossentropy", "softmax", "onehot"),
    (losses.CategoricalFocalCrossentropy(from_logits=True), None, "onehot"),
    ("binary_focal_crossentropy", "sigmoid", "binary"),
    (losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=True), None,
     "binary"),
    (losses.CategoricalCrossentropy(label_smoothing=0.1), "softmax", "onehot"),
    (losses.BinaryCrossentropy(label_smoothing=0.2), "sigmoid", "binary"),
    (losses.SparseCategoricalCrossentropy(ignore_class=2), "softmax", "sparse"),
    (losses.huber, None, "real"), (losses.kl_divergence, "softmax", "onehot"),
]
IDS = [c if isinstance(c, str) else getattr(c, "__name__", None) or repr(c)
       for c, _, _ in CASES]


def make(activation):
    fastconv.utils.set_random_seed(2)
    return models.Sequential([layers.Dense(3, activation=activation, input_shape=(4,))])


@pytest.mark.parametrize("loss, activation, kind", CASES, ids=IDS)
def test_one_sgd_step_by_hand_and_fit(loss, activation, kind):
    y = targets(kind)
    model = make(activation)
    model.compile(optimizer=fastconv.optimizers.SGD(LR), loss=loss)
    kernel, bias = (w.copy() for w in model.get_weights())
    z = X @ kernel + bias
    act = {None: lambda v: v, "softmax": lambda v: np.exp(v) / np.exp(v).sum(1, keepdims=True),
           "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh,
           "softplus": lambda v: np.log1p(np.exp(v))}[activation]
    # d loss / d z through the activation by central differences in float64.
    resolved = losses.get(loss)
    y_pred = act(z.astype(np.float64))
    dz = np.zeros_like(y_pred)
    h = 1e-6
    for i in np.ndindex(z.shape):
        up, down = z.astype(np.float64), z.astype(np.float64)
        up[i] += h
        down[i] -= h
        dz[i] = (resolved(y, act(up)) - resolved(y, act(down))) / (2 * h)
    model.train_on_batch(X, y)
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - LR * X.T @ dz, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(new_bias, bias - LR * dz.sum(axis=0), rtol=1e-3, atol=1e-5)
    history = model.fit(X, y, epochs=3, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("loss, activation, kind", CASES[:6] + CASES[11:13], ids=IDS[:6] + IDS[11:13])
def test_gradient_tape_loop_matches_fit(loss, activation, kind):
    y = targets(kind)
    sw = rng.uniform(0, 2, 8).astype(np.float32)
    looped = make(activation)
    loss_fn = losses.get(loss)
    optimizer = fastconv.optimizers.SGD(LR)
    with fastconv.GradientTape() as tape:
        y_pred = looped(X, training=True)
        value = loss_fn(y, y_pred, sample_weight=sw)
    grads = tape.gradient(value, looped.trainable_weights)
    d_pred = loss_fn.gradient(y, y_pred, sample_weight=sw)
    if activation is None:
        np.testing.assert_allclose(grads[0], X.T @ d_pred, rtol=1e-4, atol=1e-6)
    optimizer.apply_gradients(zip(grads, looped.trainable_weights))
    # Without weights the loop takes the step train_on_batch takes.
    looped, fitted = make(activation), make(activation)
    optimizer = fastconv.optimizers.SGD(LR)
    with fastconv.GradientTape() as tape:
        value = loss_fn(y, looped(X, training=True))
    optimizer.apply_gradients(zip(tape.gradient(value, looped.trainable_weights),
                                  looped.trainable_weights))
    fitted.compile(optimizer=fastconv.optimizers.SGD(LR), loss=loss)
    fitted.train_on_batch(X, y)
    for a, b in zip(looped.get_weights(), fitted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", [losses.Huber(delta=2.0), losses.huber, "logcosh",
                                  losses.BinaryFocalCrossentropy(gamma=3.0, alpha=0.4,
                                                                 apply_class_balancing=True)],
                         ids=["Huber", "huber", "logcosh", "bfce"])
def test_save_load_keeps_the_loss(tmp_path, loss):
    model = make("sigmoid")
    model.compile(optimizer="sgd", loss=loss)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = models.load_model(path)
    expected = losses.get(loss)
    assert type(loaded.loss) is type(expected)
    assert loaded.loss.get_config() == expected.get_config()
    y = targets("binary")
    assert loaded.evaluate(X, y, verbose=0) == pytest.approx(model.evaluate(X, y, verbose=0),
                                                            rel=1e-6)


class SquaredError(losses.Loss):
    """A custom loss as Keras users write it: ``call`` with Keras ops."""

    def call(self, y_true, y_pred):
        from fastconv import ops
        return ops.mean(ops.square(y_pred - y_true), axis=-1)


def squared_error(y_true, y_pred):
    from fastconv import ops
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
@pytest.mark.parametrize("custom", [lambda r: SquaredError(reduction=r),
                                    lambda r: losses.FunctionLoss(squared_error, reduction=r)],
                         ids=["subclass", "function"])
def test_custom_losses_weigh_and_reduce(custom, reduction):
    y, p = targets("real").astype(np.float64), rng.standard_normal((8, 3))
    sw = rng.uniform(0, 2, 8)
    loss, reference = custom(reduction), losses.MeanSquaredError(reduction=reduction)
    np.testing.assert_allclose(loss(y, p, sw), reference(y, p, sw), rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(y, p, sw), reference.gradient(y, p, sw),
                               rtol=1e-12)
    # (N,) targets against (N, 1) outputs, as Keras' wrapper aligns them.
    if isinstance(loss, losses.FunctionLoss):
        np.testing.assert_allclose(loss(y[:, 0], p[:, :1]), reference(y[:, 0], p[:, :1]))


def test_custom_loss_subclass_trains():
    y = targets("real")
    fitted, reference = make(None), make(None)
    fitted.compile(optimizer=fastconv.optimizers.SGD(LR), loss=SquaredError())
    reference.compile(optimizer=fastconv.optimizers.SGD(LR), loss="mse")
    fitted.train_on_batch(X, y)
    reference.train_on_batch(X, y)
    for a, b in zip(fitted.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert SquaredError().name == "squared_error"
    assert SquaredError().get_config() == {"name": "squared_error",
                                           "reduction": "sum_over_batch_size"}


def test_loss_without_call_says_so():
    with pytest.raises(NotImplementedError, match=r"must implement call\(y_true, y_pred\)"):
        losses.Loss()(np.zeros((2, 1)), np.zeros((2, 1)))

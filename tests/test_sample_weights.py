"""sample_weight, class_weight and weighted_metrics through fit / evaluate /
train_on_batch / test_on_batch, checked in float64 against facts that do not
come from the code under test:

- all-zero weights make the loss and its gradient zero, so plain SGD leaves
  the weights as they were;
- with Keras' ``sum_over_batch_size`` reduction (sum of weighted losses over
  the number of samples), a sample of weight 2 in a batch of N equals that
  sample duplicated in a batch of N + 1 trained with a learning rate
  ``(N + 1) / N`` times larger;
- the hand-written gradient of weighted softmax cross-entropy;
- ``class_weight`` is the ``sample_weight`` that its classes give.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import callbacks, layers, metrics, models, optimizers, utils

F64 = "float64"
LR = 0.2


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def data(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


# loss -> (output activation, units, targets from integer labels)
LOSSES = {
    "sparse_categorical_crossentropy": ("softmax", 3, lambda y: y),
    "categorical_crossentropy": ("softmax", 3, lambda y: utils.to_categorical(y, 3)),
    "binary_crossentropy": ("sigmoid", 1, lambda y: (y == 1).astype(np.float64)[:, None]),
    "mean_squared_error": ("linear", 3, lambda y: utils.to_categorical(y, 3)),
}


def model(loss="sparse_categorical_crossentropy", lr=LR, metrics=None,
          weighted_metrics=None) -> models.Sequential:
    activation, units, _ = LOSSES[loss]
    net = models.Sequential([fastconv.Input((4,), dtype=F64),
                             layers.Dense(5, activation="tanh", dtype=F64),
                             layers.Dense(units, activation=activation, dtype=F64)])
    rng = np.random.default_rng(3)
    net.set_weights([rng.standard_normal(w.shape) * 0.7 for w in net.get_weights()])
    net.compile(optimizer=optimizers.SGD(learning_rate=lr), loss=loss, metrics=metrics,
                weighted_metrics=weighted_metrics)
    return net


def assert_same_weights(a, b, atol=1e-13):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=atol)


# ----------------------------------------------------------------------------
# the loss weighting, end to end


@pytest.mark.parametrize("loss", LOSSES)
def test_zero_weights_leave_sgd_weights_unchanged(loss):
    x, labels = data()
    y = LOSSES[loss][2](labels)
    net = model(loss)
    before = net.get_weights()
    value = net.train_on_batch(x, y, sample_weight=np.zeros(len(x)))
    assert value == 0.0
    history = net.fit(x, y, sample_weight=np.zeros(len(x)), batch_size=4, epochs=2, verbose=0)
    assert history.history["loss"] == [0.0, 0.0]
    for w, w0 in zip(net.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_weight_of_two_equals_the_sample_duplicated(loss):
    x, labels = data()
    y = LOSSES[loss][2](labels)
    n = len(x)
    weighted = model(loss)
    weights = np.ones(n)
    weights[2] = 2.0
    weighted.train_on_batch(x, y, sample_weight=weights)
    duplicated = model(loss, lr=LR * (n + 1) / n)
    duplicated.train_on_batch(np.concatenate([x, x[2:3]]), np.concatenate([y, y[2:3]]))
    assert_same_weights(weighted, duplicated)


def test_weighted_sgd_step_equals_the_hand_written_gradient():
    x, y = data()
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 1.5])
    net = models.Sequential([fastconv.Input((4,), dtype=F64),
                             layers.Dense(3, activation="softmax", dtype=F64)])
    kernel, bias = net.get_weights()
    net.compile(optimizer=optimizers.SGD(learning_rate=LR),
                loss="sparse_categorical_crossentropy")
    z = x @ kernel + bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected_loss = np.sum(w * -np.log(p[np.arange(len(y)), y])) / len(y)
    dz = w[:, None] * (p - np.eye(3)[y]) / len(y)
    got = net.train_on_batch(x, y, sample_weight=w)
    np.testing.assert_allclose(got, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(net.get_weights()[0], kernel - LR * x.T @ dz, atol=1e-13)
    np.testing.assert_allclose(net.get_weights()[1], bias - LR * dz.sum(0), atol=1e-13)


def test_evaluate_with_sample_weight_is_the_batch_size_weighted_mean():
    # Keras: each batch's loss is sum(w * l) / batch_rows; the logged loss is
    # the mean of those, weighted by the batch's rows.
    x, y = data(10)
    w = np.linspace(0.0, 2.0, 10)
    net = model()
    p = net.predict(x, verbose=0)
    per_sample = -np.log(np.clip(p[np.arange(10), y], 1e-7, 1 - 1e-7)) * w
    batch_losses = [per_sample[:4].sum() / 4, per_sample[4:8].sum() / 4, per_sample[8:].sum() / 2]
    expected = (4 * batch_losses[0] + 4 * batch_losses[1] + 2 * batch_losses[2]) / 10
    got = net.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(net.test_on_batch(x, y, sample_weight=w),
                               per_sample.sum() / 10, rtol=1e-12)


def test_fit_with_sample_weight_equals_train_on_batch_steps():
    x, y = data(10)
    w = np.linspace(0.1, 2.0, 10)
    ref = model()
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):
        ref.train_on_batch(x[rows], y[rows], sample_weight=w[rows])
    net = model()
    net.fit(x, y, sample_weight=w, batch_size=4, shuffle=False, verbose=0)
    assert_same_weights(ref, net)


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_sample_weights_from_a_generator_and_a_py_dataset_equal_arrays():
    x, y = data(10)
    w = np.linspace(0.1, 2.0, 10)
    ref = model()
    ref.fit(x, y, sample_weight=w, batch_size=4, shuffle=False, verbose=0)
    batches = [(x[i:i + 4], y[i:i + 4], w[i:i + 4]) for i in range(0, 10, 4)]
    net = model()
    net.fit(iter(batches), verbose=0)
    assert_same_weights(ref, net)

    class Weighted(utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    net = model()
    net.fit(Weighted(), shuffle=False, verbose=0)
    assert_same_weights(ref, net)


# ----------------------------------------------------------------------------
# class_weight


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy",
                                  "categorical_crossentropy"])
def test_class_weight_equals_the_sample_weights_of_its_classes(loss):
    x, labels = data(10)
    y = LOSSES[loss][2](labels)
    class_weight = {0: 0.5, 1: 3.0}  # class 2 is missing: weight 1
    sample_weight = np.array([{0: 0.5, 1: 3.0, 2: 1.0}[c] for c in labels])
    by_class, by_sample = model(loss), model(loss)
    h1 = by_class.fit(x, y, class_weight=class_weight, batch_size=4, epochs=2, shuffle=False,
                      verbose=0)
    h2 = by_sample.fit(x, y, sample_weight=sample_weight, batch_size=4, epochs=2,
                       shuffle=False, verbose=0)
    assert_same_weights(by_class, by_sample)
    assert h1.history == h2.history
    a, b = model(loss), model(loss)
    assert a.train_on_batch(x, y, class_weight=class_weight) == b.train_on_batch(
        x, y, sample_weight=sample_weight)
    assert_same_weights(a, b)


def test_class_weight_with_a_py_dataset_and_a_column_of_labels():
    x, labels = data(8)
    sample_weight = np.where(labels == 2, 4.0, 1.0)
    ref = model()
    ref.fit(x, labels, sample_weight=sample_weight, batch_size=4, shuffle=False, verbose=0)

    class Columns(utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return x[4 * i:4 * i + 4], labels[4 * i:4 * i + 4, None]

    net = model()
    net.fit(Columns(), class_weight={2: 4.0}, shuffle=False, verbose=0)
    assert_same_weights(ref, net)


def test_class_weight_errors_as_keras():
    x, y = data()
    with pytest.raises(ValueError, match="cannot `class_weight` and `sample_weight`"):
        model().fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(6), verbose=0)
    with pytest.raises(ValueError, match="`sample_weight` and `class_weight` cannot be"):
        model().train_on_batch(x, y, class_weight={0: 1.0}, sample_weight=np.ones(6))
    with pytest.raises(ValueError, match="dict-like mapping"):
        model().fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="integer keys"):
        model().fit(x, y, class_weight={"zero": 1.0}, verbose=0)
    with pytest.raises(ValueError, match="only supported for Models with a single output"):
        two_outputs().fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


# ----------------------------------------------------------------------------
# weighted_metrics


def test_metrics_ignore_weights_weighted_metrics_use_them():
    x, y = data(10)
    w = np.linspace(0.0, 2.0, 10)
    true_prob = metrics.MeanMetricWrapper(
        lambda t, p: p[np.arange(len(t)), t.astype(int)], name="true_prob")
    net = model(metrics=["accuracy"], weighted_metrics=["accuracy", true_prob])
    logs = net.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0, return_dict=True)
    p = net.predict(x, verbose=0)
    hit = (p.argmax(1) == y).astype(float)
    assert sorted(logs) == ["accuracy", "loss", "true_prob", "weighted_accuracy"]
    np.testing.assert_allclose(logs["accuracy"], hit.mean(), rtol=1e-12)
    np.testing.assert_allclose(logs["weighted_accuracy"], (w * hit).sum() / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(logs["true_prob"], (w * p[np.arange(10), y]).sum() / w.sum(),
                               rtol=1e-12)
    assert net.metrics_names == ["loss", "accuracy", "weighted_accuracy", "true_prob"]
    values = net.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0)
    assert values == [logs["loss"], logs["accuracy"], logs["weighted_accuracy"],
                      logs["true_prob"]]
    # Without sample weights a weighted metric equals its unweighted twin.
    logs = net.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["weighted_accuracy"] == logs["accuracy"]


def test_weighted_metrics_are_logged_by_fit_and_validation():
    x, y = data(10)
    w = np.linspace(0.0, 2.0, 10)
    history = model(weighted_metrics=["accuracy"]).fit(
        x, y, sample_weight=w, epochs=1, verbose=0, validation_data=(x, y, w))
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]


def two_outputs(weighted_metrics=None):
    inputs = fastconv.Input((4,), dtype=F64)
    hidden = layers.Dense(5, activation="tanh", dtype=F64)(inputs)
    first = layers.Dense(3, activation="softmax", name="first", dtype=F64)(hidden)
    second = layers.Dense(3, activation="softmax", name="second", dtype=F64)(hidden)
    net = fastconv.Model(inputs, [first, second])
    net.compile(optimizer=optimizers.SGD(LR), loss="sparse_categorical_crossentropy",
                metrics=[["accuracy"], ["accuracy"]], weighted_metrics=[["accuracy"], []])
    return net


def test_two_outputs_take_one_weight_array_a_list_or_a_dict():
    x, y = data()
    w = np.linspace(0.0, 2.0, 6)
    net = two_outputs()
    logs = net.evaluate(x, [y, y], sample_weight=w, verbose=0, return_dict=True)
    assert "first_weighted_accuracy" in logs and "second_accuracy" in logs
    by_list = net.evaluate(x, [y, y], sample_weight=[w, w], verbose=0, return_dict=True)
    by_dict = net.evaluate(x, {"first": y, "second": y}, sample_weight={"first": w, "second": w},
                           verbose=0, return_dict=True)
    assert logs == by_list == by_dict
    only_first = net.evaluate(x, [y, y], sample_weight=[w, np.ones(6)], verbose=0,
                              return_dict=True)
    assert only_first["first_loss"] == logs["first_loss"]
    assert only_first["second_loss"] == net.evaluate(x, [y, y], verbose=0,
                                                     return_dict=True)["second_loss"]
    with pytest.raises(ValueError, match="one `sample_weight` array per output"):
        net.train_on_batch(x, [y, y], sample_weight=[w])
    with pytest.raises(ValueError, match="one scalar score per sample"):
        net.fit(x, [y, y], sample_weight=np.ones((6, 3)), verbose=0)


# ----------------------------------------------------------------------------
# the train_on_batch / test_on_batch / evaluate forms


def test_return_dict_forms():
    x, y = data()
    net = model(metrics=["accuracy"])
    logs = net.train_on_batch(x, y, sample_weight=np.ones(6), return_dict=True)
    assert sorted(logs) == ["accuracy", "loss"]
    values = net.test_on_batch(x, y, sample_weight=np.ones(6))
    logs = net.test_on_batch(x, y, sample_weight=np.ones(6), return_dict=True)
    assert values == [logs["loss"], logs["accuracy"]]
    assert net.evaluate(x, y, return_dict=True, verbose=0) == logs


def test_a_custom_train_step_gets_the_sample_weights_only_when_given():
    seen = []

    class Custom(fastconv.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            seen.append(len(data))
            return {"loss": 0.0}

    x, y = data()
    net = Custom()
    net.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    net.fit(x, y, verbose=0, epochs=1)
    net.fit(x, y, sample_weight=np.ones(6), verbose=0, epochs=1)
    net.fit(x, y, class_weight={0: 2.0}, verbose=0, epochs=1)
    assert seen == [2, 3, 3]


def test_test_batch_logs_of_a_weighted_evaluate():
    x, y = data(8)
    w = np.arange(8.0)
    logs = []
    net = model()
    net.evaluate(x, y, sample_weight=w, batch_size=4, verbose=0, callbacks=[
        callbacks.LambdaCallback(on_test_batch_end=lambda b, lg: logs.append(lg["loss"]))])
    assert logs[0] == net.test_on_batch(x[:4], y[:4], sample_weight=w[:4])


def test_a_gradient_tape_train_step_with_sample_weights_equals_the_built_in_step():
    class Taped(fastconv.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(5, activation="tanh", dtype=F64)
            self.out = layers.Dense(3, activation="softmax", dtype=F64)

        def call(self, x):
            return self.out(self.hidden(x))

        def train_step(self, data):
            x, y, sample_weight = data
            with fastconv.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": loss}

    x, y = data()
    w = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0])
    taped = Taped()
    taped.compile(optimizer=optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
    taped.predict(x[:1], verbose=0)  # builds the weights
    ref = model()
    taped.set_weights(ref.get_weights())
    logs = taped.train_on_batch(x, y, sample_weight=w, return_dict=True)
    assert logs["loss"] == pytest.approx(ref.train_on_batch(x, y, sample_weight=w), rel=1e-12)
    assert_same_weights(ref, taped)

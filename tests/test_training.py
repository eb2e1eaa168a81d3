"""compile / fit / evaluate / predict / train_on_batch, checked against the
same computations written out here in NumPy: forward passes, cross-entropy,
analytic gradients and SGD updates."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import fastconv
from fastconv import layers, losses, models, optimizers, utils
from fastconv.training.progress import Progbar, format_duration, format_step_time
from fastconv.training.trainer import Trainer
from fastconv.testing import check_gradients



@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def cross_entropy(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample -log p[label], with Keras' clipping to [1e-7, 1 - 1e-7]."""
    return -np.log(np.clip(p[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7))


def mlp(n_in: int, n_hidden: int | None, n_out: int, activation: str = "softmax",
        dtype: str = "float64", seed: int = 0) -> models.Sequential:
    """Dense(relu) -> Dense(activation) (or a single Dense) with random weights."""
    stack = [fastconv.Input((n_in,), dtype=dtype)]
    if n_hidden:
        stack.append(layers.Dense(n_hidden, activation="relu", dtype=dtype))
    stack.append(layers.Dense(n_out, activation=activation, dtype=dtype))
    model = models.Sequential(stack)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape) * 0.7 for w in model.get_weights()])
    return model


def classification_data(n: int, n_in: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.integers(0, n_classes, n)


# ----------------------------------------------------------------------------
# one step against the analytic gradient


def test_train_on_batch_equals_hand_computed_sgd_step():
    model = mlp(5, 4, 3)
    x, y = classification_data(6, 5, 3)
    w1, b1, w2, b2 = model.get_weights()
    lr = 0.1
    model.compile(optimizer=optimizers.SGD(learning_rate=lr),
                  loss="sparse_categorical_crossentropy")

    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    p = softmax(h @ w2 + b2)
    loss = cross_entropy(p, y).mean()
    dz2 = (p - np.eye(3)[y]) / len(x)
    dz1 = (dz2 @ w2.T) * (z1 > 0)
    expected = [w1 - lr * x.T @ dz1, b1 - lr * dz1.sum(0),
                w2 - lr * h.T @ dz2, b2 - lr * dz2.sum(0)]

    got_loss = model.train_on_batch(x, y)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_train_on_batch_returns_loss_and_metrics_when_compiled_with_metrics():
    """Keras returns [loss, accuracy] here, measured on this batch before the step."""
    model = mlp(4, None, 3)
    x, y = classification_data(8, 4, 3, seed=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    p = softmax(x @ model.get_weights()[0] + model.get_weights()[1])
    result = model.train_on_batch(x, y)
    assert isinstance(result, list) and len(result) == 2
    assert result[0] == pytest.approx(cross_entropy(p, y).mean(), rel=1e-12)
    assert result[1] == pytest.approx(np.mean(p.argmax(1) == y))


def fused_output(model):
    """Whether the model's output activation is fused with its loss."""
    return Trainer._fused_step(model._graph_plan(), 0, model.loss) is not None


def fit_one_step(model, loss, x, y, lr=0.5):
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss=loss)
    model.train_on_batch(x, y)
    return model.get_weights()


@pytest.mark.parametrize("sparse", [True, False])
def test_fused_softmax_cross_entropy_equals_the_unfused_chain_rule(sparse, monkeypatch):
    x, labels = classification_data(7, 4, 3, seed=2)
    y = labels if sparse else utils.to_categorical(labels, 3)
    loss = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"
    start = mlp(4, None, 3, seed=3).get_weights()

    in_layer = mlp(4, None, 3, seed=3)  # Dense(softmax): fused
    separate = models.Sequential([fastconv.Input((4,), dtype="float64"),
                                  layers.Dense(3, dtype="float64"),
                                  layers.Activation("softmax", dtype="float64")])
    separate.set_weights(start)
    logits = models.Sequential([fastconv.Input((4,), dtype="float64"),
                                layers.Dense(3, dtype="float64")])
    logits.set_weights(start)
    logits_loss = (losses.SparseCategoricalCrossentropy(from_logits=True) if sparse
                   else losses.CategoricalCrossentropy(from_logits=True))
    unfused = mlp(4, None, 3, seed=3)

    results = [fit_one_step(in_layer, loss, x, y), fit_one_step(separate, loss, x, y),
               fit_one_step(logits, logits_loss, x, y)]
    assert fused_output(in_layer) and fused_output(separate)
    # Force the generic path: the loss's gradient w.r.t. the probabilities,
    # then the softmax's Jacobian.
    monkeypatch.setattr(Trainer, "_fused_step", staticmethod(lambda plan, k, loss: None))
    results.append(fit_one_step(unfused, loss, x, y))

    w, b = start
    dz = (softmax(x @ w + b) - np.eye(3)[labels]) / len(x)
    expected = [w - 0.5 * x.T @ dz, b - 0.5 * dz.sum(0)]
    for weights in results:
        for got, want in zip(weights, expected):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_fused_sigmoid_binary_cross_entropy_equals_the_unfused_chain_rule(monkeypatch):
    x, labels = classification_data(6, 3, 2, seed=4)
    y = labels.reshape(-1, 1).astype(np.float64)
    start = mlp(3, None, 1, activation="sigmoid", seed=6).get_weights()
    fused = mlp(3, None, 1, activation="sigmoid", seed=6)
    logits = models.Sequential([fastconv.Input((3,), dtype="float64"),
                                layers.Dense(1, dtype="float64")])
    logits.set_weights(start)
    results = [fit_one_step(fused, "binary_crossentropy", x, y),
               fit_one_step(logits, losses.BinaryCrossentropy(from_logits=True), x, y)]
    assert fused_output(fused)
    monkeypatch.setattr(Trainer, "_fused_step", staticmethod(lambda plan, k, loss: None))
    results.append(fit_one_step(mlp(3, None, 1, activation="sigmoid", seed=6),
                                "binary_crossentropy", x, y))
    w, b = start
    dz = (sigmoid(x @ w + b) - y) / len(x)
    expected = [w - 0.5 * x.T @ dz, b - 0.5 * dz.sum(0)]
    for weights in results:
        for got, want in zip(weights, expected):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------
# fit: the loop, History, validation


def test_fit_equals_hand_written_minibatch_sgd():
    """No shuffling: batches [0:4], [4:8], [8:10]; each epoch's loss and
    accuracy are the sample-weighted means over the batches, measured before
    each batch's update (Keras' running averages)."""
    model = mlp(3, None, 4)
    x, y = classification_data(10, 3, 4, seed=7)
    w, b = model.get_weights()
    lr = 0.3
    model.compile(optimizer=optimizers.SGD(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)

    losses_, accs = [], []
    for _ in range(3):
        total_loss = total_hits = 0.0
        for start in range(0, 10, 4):
            xb, yb = x[start:start + 4], y[start:start + 4]
            p = softmax(xb @ w + b)
            total_loss += cross_entropy(p, yb).sum()
            total_hits += (p.argmax(1) == yb).sum()
            dz = (p - np.eye(4)[yb]) / len(xb)
            w, b = w - lr * xb.T @ dz, b - lr * dz.sum(0)
        losses_.append(total_loss / 10)
        accs.append(total_hits / 10)

    assert history is model.history
    assert history.epoch == [0, 1, 2]
    assert sorted(history.history) == ["accuracy", "loss"]
    np.testing.assert_allclose(history.history["loss"], losses_, rtol=1e-10)
    np.testing.assert_allclose(history.history["accuracy"], accs)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-10)
    np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("how", ["validation_split", "validation_data"])
def test_fit_reports_validation_metrics_on_the_held_out_samples(how):
    model = mlp(3, 5, 3)
    x, y = classification_data(20, 3, 3, seed=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if how == "validation_split":
        # Keras holds out the last 25 % of the samples, before shuffling.
        history = model.fit(x, y, batch_size=4, epochs=2, validation_split=0.25, verbose=0)
    else:
        history = model.fit(x[:15], y[:15], batch_size=4, epochs=2,
                            validation_data=(x[15:], y[15:]), verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 2 for v in history.history.values())
    p = model.predict(x[15:], verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(cross_entropy(p, y[15:]).mean())
    assert history.history["val_accuracy"][-1] == pytest.approx(np.mean(p.argmax(1) == y[15:]))


def test_fit_checks_its_arguments():
    model = mlp(3, None, 2)
    x, y = classification_data(4, 3, 2)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="cardinality"):
        model.fit(x, y[:3], verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.0, verbose=0)


# ----------------------------------------------------------------------------
# compile: optimizers, losses, metrics


@pytest.mark.parametrize("name, cls", [("sgd", optimizers.SGD), ("adam", optimizers.Adam),
                                       ("rmsprop", optimizers.RMSprop)])
def test_compile_resolves_optimizer_names_with_keras_defaults(name, cls):
    model = mlp(3, None, 2)
    x, y = classification_data(5, 3, 2, seed=9)
    w, b = model.get_weights()
    model.compile(optimizer=name, loss="sparse_categorical_crossentropy")
    assert type(model.optimizer) is cls
    model.train_on_batch(x, y)
    g = x.T @ ((softmax(x @ w + b) - np.eye(2)[y]) / len(x))
    # First steps from zero state: SGD(0.01): -0.01 g; Adam(0.001):
    # -0.001 sign(g); RMSprop(0.001, rho=0.9): -0.001 g / sqrt(0.1 g^2).
    expected = {"sgd": -0.01 * g, "adam": -0.001 * np.sign(g),
                "rmsprop": -0.001 * np.sign(g) / np.sqrt(0.1)}[name]
    np.testing.assert_allclose(model.get_weights()[0] - w, expected, rtol=1e-4)


@pytest.mark.parametrize("name, cls", [
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy),
    ("mse", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError),
])
def test_compile_resolves_loss_names(name, cls):
    model = mlp(3, None, 2)
    model.compile(optimizer="sgd", loss=name)
    assert type(model.loss) is cls


def test_evaluate_mean_squared_error():
    model = mlp(3, 4, 2, activation=None)
    x = np.random.default_rng(18).standard_normal((7, 3))
    y = np.random.default_rng(19).standard_normal((7, 2))
    model.compile(optimizer="sgd", loss="mse")
    p = model.predict(x, verbose=0)
    assert model.evaluate(x, y, batch_size=3, verbose=0) == pytest.approx(
        np.mean((p - y) ** 2), rel=1e-12)


def test_compile_keeps_an_optimizer_object():
    model = mlp(3, None, 2)
    opt = optimizers.Adam(learning_rate=0.05)
    model.compile(optimizer=opt, loss="categorical_crossentropy")
    assert model.optimizer is opt
    assert isinstance(model.loss, losses.CategoricalCrossentropy)


@pytest.mark.parametrize("batch_size", [3, 10, None])
def test_evaluate_sparse_labels_equals_mean_over_the_data(batch_size):
    model = mlp(4, 6, 3)
    x, y = classification_data(10, 4, 3, seed=10)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=batch_size, verbose=0)
    assert loss == pytest.approx(cross_entropy(p, y).mean(), rel=1e-12)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y))
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {
        "accuracy": pytest.approx(acc), "loss": pytest.approx(loss)}


def test_evaluate_one_hot_labels_uses_categorical_accuracy():
    from fastconv.utils import to_categorical

    model = mlp(4, 6, 3)
    x, labels = classification_data(9, 4, 3, seed=11)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    loss, acc = model.evaluate(x, to_categorical(labels), batch_size=4, verbose=0)
    assert loss == pytest.approx(cross_entropy(p, labels).mean(), rel=1e-12)
    assert acc == pytest.approx(np.mean(p.argmax(1) == labels))


def test_evaluate_binary_uses_binary_accuracy():
    model = mlp(3, 4, 1, activation="sigmoid")
    x, labels = classification_data(12, 3, 2, seed=12)
    y = labels.reshape(-1, 1)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    p = np.clip(model.predict(x, verbose=0), 1e-7, 1 - 1e-7)
    loss, acc = model.evaluate(x, y, batch_size=5, verbose=0)
    assert loss == pytest.approx(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))), rel=1e-10)
    assert acc == pytest.approx(np.mean((p > 0.5) == y))


def test_an_interrupted_pass_leaves_no_stale_metric_counts():
    """A KeyboardInterrupt in the middle of evaluate or fit (a notebook's stop
    button) must not leak its counts into the next call."""
    model = mlp(3, None, 2)
    x, y = classification_data(8, 3, 2, seed=20)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    class Interrupt(fastconv.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

        on_train_batch_end = on_test_batch_end

    with pytest.raises(KeyboardInterrupt):
        model.evaluate(x, y, batch_size=2, verbose=0, callbacks=[Interrupt()])
    p = model.predict(x, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(np.mean(p.argmax(1) == y))
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=2, verbose=0, callbacks=[Interrupt()])
    p = model.predict(x, verbose=0)
    history = model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert history.history["accuracy"] == [pytest.approx(np.mean(p.argmax(1) == y))]


def test_evaluate_without_metrics_returns_a_scalar():
    model = mlp(3, None, 2)
    x, y = classification_data(5, 3, 2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, float)
    assert result == pytest.approx(cross_entropy(model.predict(x, verbose=0), y).mean())


def test_predict_is_batched():
    model = models.Sequential([layers.Conv2D(3, 3, activation="relu", input_shape=(7, 7, 2)),
                               layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(4)])
    x = np.random.default_rng(13).random((11, 7, 7, 2)).astype(np.float32)
    full = model.predict_on_batch(x)
    for batch_size in (1, 4, 11, 64):
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size, verbose=0), full,
                                   rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------
# progress lines


def small_fit(verbose, capsys, **kwargs):
    model = mlp(3, None, 3)
    x, y = classification_data(10, 3, 3, seed=14)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    capsys.readouterr()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=verbose, **kwargs)
    return model, history, capsys.readouterr().out


def test_verbose_0_prints_nothing(capsys):
    model, _, out = small_fit(0, capsys)
    x, y = classification_data(10, 3, 3, seed=14)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert out == "" and capsys.readouterr().out == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    _, history, out = small_fit(2, capsys)
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    for epoch, line in enumerate(lines[1::2]):
        match = re.fullmatch(r"3/3 - \S+ - \S+/step - accuracy: (\S+) - loss: (\S+)", line)
        assert match, line
        assert match.group(1) == f"{history.history['accuracy'][epoch]:.4f}"
        assert match.group(2) == f"{history.history['loss'][epoch]:.4f}"


def test_verbose_1_prints_progress_lines(capsys):
    _, history, out = small_fit(1, capsys)
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and "Epoch 2/2" in lines
    last = lines[-1]
    assert re.match(r"3/3 ━{20} \S+ \S+/step - accuracy: ", last), last
    assert "step" in last
    assert f"accuracy: {history.history['accuracy'][-1]:.4f}" in last
    assert f"loss: {history.history['loss'][-1]:.4f}" in last


def test_verbose_1_with_validation_shows_the_val_metrics(capsys):
    _, history, out = small_fit(1, capsys, validation_split=0.2)
    last = out.splitlines()[-1]
    assert last.startswith("2/2 ")
    assert last.endswith(f"val_accuracy: {history.history['val_accuracy'][-1]:.4f} - "
                         f"val_loss: {history.history['val_loss'][-1]:.4f}")


def test_evaluate_verbose_prints_the_result(capsys):
    """Seed 003 calls evaluate(..., verbose=2): Keras prints one summary line."""
    model = mlp(3, None, 3)
    x, y = classification_data(10, 3, 3, seed=15)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=4, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(rf"3/3 - \S+ - \S+/step - accuracy: {acc:.4f} - loss: {loss:.4f}",
                        lines[0]), lines
    model.evaluate(x, y, batch_size=4, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("3/3 ━") and f"loss: {loss:.4f}" in lines[-1]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_one_line_on_a_terminal():
    stream = FakeTerminal()
    bar = Progbar(4, verbose=1, stream=stream)
    bar.interval = 0.0
    bar.update(1, {"loss": 0.5})
    bar.update(4, {"loss": 0.25}, done=True)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    first, last = text[1:-1].split("\r")
    assert first.startswith("1/4 ━━━━━     ") and first.endswith(" - loss: 0.5000")
    assert last.startswith("4/4 " + "━" * 20 + " ") and last.endswith(" - loss: 0.2500")


@pytest.mark.parametrize("seconds, duration, per_step", [
    (0.0004, "0s", "400us/step"),
    (0.013, "0s", "13ms/step"),
    (12.4, "12s", "12s/step"),
    (75.0, "1:15", "75s/step"),
    (3725.0, "1:02:05", "3725s/step"),
])
def test_progress_time_formats(seconds, duration, per_step):
    assert format_duration(seconds) == duration
    assert format_step_time(seconds) == per_step


# ----------------------------------------------------------------------------
# reproducibility and gradient checks


def seeded_run(seed: int) -> list[np.ndarray]:
    utils.set_random_seed(seed)
    model = models.Sequential([fastconv.Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"),
                               layers.Flatten(), layers.Dropout(0.5),
                               layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    data = np.random.default_rng(16)
    x, y = data.random((24, 6, 6, 1)), data.integers(0, 3, 24)
    model.fit(x, y, epochs=2, batch_size=5, shuffle=True, verbose=0)
    return model.get_weights()


def test_set_random_seed_makes_training_bitwise_reproducible():
    first, again, other = seeded_run(7), seeded_run(7), seeded_run(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first[::2], other[::2]))


def test_set_random_seed_rejects_bad_seeds():
    with pytest.raises(ValueError, match="seed"):
        utils.set_random_seed(-1)


def gradient_model() -> models.Sequential:
    utils.set_random_seed(3)
    model = models.Sequential([
        fastconv.Input((6, 6, 2), dtype="float64"),
        layers.Conv2D(3, 3, activation="tanh", dtype="float64"),
        layers.MaxPooling2D(2, dtype="float64"),
        layers.Flatten(dtype="float64"),
        layers.Dense(4, activation="softmax", dtype="float64"),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


def gradient_data():
    rng = np.random.default_rng(17)
    return rng.standard_normal((3, 6, 6, 2)), utils.to_categorical([0, 3, 1], 4)


def test_check_gradients_passes_on_a_conv_model():
    errors = check_gradients(gradient_model(), *gradient_data())
    assert set(errors) == {"conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"}
    assert max(errors.values()) < 1e-5


def test_check_gradients_catches_a_wrong_kernel_gradient(monkeypatch):
    fastconv.backend.clear_session()
    model = gradient_model()
    original = layers.Conv2D.backward

    def scaled_backward(self, *args, **kwargs):
        dx = original(self, *args, **kwargs)
        self.kernel.grad *= 1.01
        return dx

    monkeypatch.setattr(layers.Conv2D, "backward", scaled_backward)
    with pytest.raises(AssertionError, match="kernel"):
        check_gradients(model, *gradient_data())


# ----------------------------------------------------------------------------
# the seed CNN learns


def test_seed_cnn_loss_decreases_on_the_fashion_mnist_sample():
    from fastconv import keras

    (x_train, y_train), _ = keras.datasets.fashion_mnist.load_sample()
    x = (x_train[:512].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    y = y_train[:512]
    utils.set_random_seed(0)
    model = models.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loss_before, _ = model.evaluate(x, y, verbose=0)
    assert loss_before == pytest.approx(np.log(10), rel=0.05)  # an untrained 10-way guess
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)  # 32 steps
    loss_after, acc_after = model.evaluate(x, y, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    assert loss_after < 0.7 * loss_before
    assert acc_after > 0.5


def test_a_custom_train_step_compiles_without_a_loss():
    class Own(models.Model):
        def train_step(self, data):
            x, y = data
            with fastconv.GradientTape() as tape:
                loss = losses.MeanSquaredError()(y, self(x, training=True))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": loss}

    inputs = layers.Input((3,))
    model = Own(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer=optimizers.SGD(0.1))
    x = np.ones((4, 3), np.float32)
    history = model.fit(x, np.zeros((4, 1), np.float32), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    # evaluate has no loss to compute without a compiled one.
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(x, np.zeros((4, 1), np.float32), verbose=0)

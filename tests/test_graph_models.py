"""Models as graphs: functional models with branches, merges and several
inputs and outputs, shared layers, nested and subclassed models, custom
layers and losses written with Keras ops. Gradients are checked against
central differences in float64; values against NumPy written here."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, losses, models, ops
from fastconv.testing import check_gradients

F64 = "float64"


def rng(seed=0):
    return np.random.default_rng(seed)


def compiled(model, loss="mean_squared_error", **kwargs):
    model.compile(optimizer="sgd", loss=loss, **kwargs)
    return model


def assert_all_checked(model, x, y):
    errors = check_gradients(model, x, y)
    assert set(errors) == {w.name for w in model.trainable_weights}
    return errors


# ----------------------------------------------------------------------------
# merge layers


def two_branch_model(merge):
    inputs = fastconv.Input((4,), dtype=F64)
    a = layers.Dense(3, activation="tanh", dtype=F64)(inputs)
    b = layers.Dense(3, activation="sigmoid", dtype=F64)(inputs)
    return compiled(fastconv.Model(inputs, layers.Dense(2, dtype=F64)(merge([a, b]))))


@pytest.mark.parametrize("merge", [
    layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum,
    layers.Minimum, layers.Concatenate, lambda **kw: layers.Dot(axes=1, **kw),
    lambda **kw: layers.Dot(axes=1, normalize=True, **kw),
], ids=["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot",
        "dot-normalized"])
def test_gradients_through_every_merge_layer(merge):
    model = two_branch_model(lambda ts: merge(dtype=F64)(ts))
    assert_all_checked(model, rng().standard_normal((5, 4)), rng(1).standard_normal((5, 2)))


def test_merge_values_against_numpy():
    a = rng().standard_normal((3, 4))
    b = rng(1).standard_normal((3, 4))
    c = rng(2).standard_normal((3, 4))
    cases = [(layers.Add(), [a, b, c], a + b + c), (layers.Subtract(), [a, b], a - b),
             (layers.Multiply(), [a, b, c], a * b * c), (layers.Average(), [a, b, c],
                                                          (a + b + c) / 3),
             (layers.Maximum(), [a, b, c], np.maximum(np.maximum(a, b), c)),
             (layers.Minimum(), [a, b], np.minimum(a, b)),
             (layers.Concatenate(axis=1), [a, b], np.concatenate([a, b], 1)),
             (layers.Dot(axes=1), [a, b], np.sum(a * b, 1, keepdims=True))]
    for layer, inputs, want in cases:
        np.testing.assert_allclose(layer([x.astype(np.float32) for x in inputs]), want,
                                   rtol=1e-5, atol=1e-6)
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(layers.Dot(axes=1, normalize=True)([a, b]),
                               np.sum(na * nb, 1, keepdims=True), rtol=1e-5)
    x3, y3 = rng(3).standard_normal((2, 3, 4)), rng(4).standard_normal((2, 5, 4))
    np.testing.assert_allclose(layers.Dot(axes=(2, 2))([x3, y3]),
                               np.einsum("bik,bjk->bij", x3, y3), rtol=1e-5)


def test_functional_forms_and_merge_shapes():
    a, b = fastconv.Input((2, 3)), fastconv.Input((2, 5))
    assert layers.concatenate([a, b]).shape == (None, 2, 8)
    assert layers.add([a, a]).shape == (None, 2, 3)
    assert layers.dot([a, b], axes=1).shape == (None, 3, 5)
    for fn in (layers.add, layers.subtract, layers.multiply, layers.average, layers.maximum,
               layers.minimum):
        assert fn([a, a]).shape == (None, 2, 3)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        layers.Add()([a])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        layers.Subtract()([a, a, a])
    with pytest.raises(ValueError, match="differ"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match="concatenation axis"):
        layers.Concatenate(axis=1)([a, b])


def test_maximum_gives_ties_to_the_first_input():
    x = np.array([[1.0, 2.0]])
    layer = layers.Maximum(dtype=F64)
    y, ctx = layer.forward([x, x.copy()])
    dx0, dx1 = layer.backward(ctx, np.ones_like(y))
    np.testing.assert_array_equal(dx0, [[1.0, 1.0]])
    np.testing.assert_array_equal(dx1, [[0.0, 0.0]])


# ----------------------------------------------------------------------------
# shared layers, residual blocks, nested models


def test_shared_layer_lists_its_weights_once_and_sums_its_gradients():
    left, right = fastconv.Input((4,), dtype=F64), fastconv.Input((4,), dtype=F64)
    shared = layers.Dense(3, activation="tanh", dtype=F64)
    merged = layers.Subtract(dtype=F64)([shared(left), shared(right)])
    model = compiled(fastconv.Model([left, right], layers.Dense(1, dtype=F64)(merged)))
    assert len(model.weights) == 4 and model.count_params() == 15 + 4
    x = [rng().standard_normal((6, 4)), rng(1).standard_normal((6, 4))]
    y = rng(2).standard_normal((6, 1))
    assert_all_checked(model, x, y)
    # By hand: the gradient of the shared kernel is the sum of both calls'.
    outputs, state = model.compute_forward(x)
    model.compute_gradients(state, y, outputs)
    w, b = shared.kernel.value, shared.bias.value
    w2 = model.layers[-1].kernel.value
    d = 2 * (outputs[0] - y) / y.size @ w2.T
    hl, hr = np.tanh(x[0] @ w + b), np.tanh(x[1] @ w + b)
    want = x[0].T @ (d * (1 - hl ** 2)) - x[1].T @ (d * (1 - hr ** 2))
    np.testing.assert_allclose(shared.kernel.grad, want, rtol=1e-10)


def residual_model():
    inputs = fastconv.Input((6, 6, 3), dtype=F64)
    h = layers.Conv2D(3, 3, padding="same", activation="relu", dtype=F64)(inputs)
    h = layers.Conv2D(3, 3, padding="same", dtype=F64)(h)
    h = layers.Activation("relu", dtype=F64)(layers.Add(dtype=F64)([h, inputs]))
    h = layers.MaxPooling2D(2, dtype=F64)(h)
    outputs = layers.Dense(4, activation="softmax", dtype=F64)(layers.Flatten(dtype=F64)(h))
    return fastconv.Model(inputs, outputs)


def test_residual_block_gradients():
    model = compiled(residual_model(), "sparse_categorical_crossentropy")
    x = rng().standard_normal((3, 6, 6, 3))
    assert_all_checked(model, x, np.array([0, 3, 1]))


def test_a_conv_feeding_two_readers_is_not_fused():
    inputs = fastconv.Input((6, 6, 1))
    conv = layers.Conv2D(2, 3, activation="relu")(inputs)
    outputs = layers.Add()([layers.MaxPooling2D(2)(conv), layers.AveragePooling2D(2)(conv)])
    model = fastconv.Model(inputs, outputs)
    assert all(len(step.layers) == 1 for step in model._graph_plan().steps)
    chain = models.Sequential([layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
                               layers.MaxPooling2D(2)])
    assert [len(step.layers) for step in chain._graph_plan().steps] == [2]


def test_nested_models_as_layers():
    inner = models.Sequential([layers.Dense(3, activation="tanh", input_shape=(4,), dtype=F64)],
                              name="inner")
    outer = compiled(models.Sequential([inner, layers.Dense(2, dtype=F64)]))
    assert outer.layers[0] is inner and len(outer.weights) == 4
    x, y = rng().standard_normal((5, 4)), rng(1).standard_normal((5, 2))
    assert_all_checked(outer, x, y)
    inputs = fastconv.Input((4,), dtype=F64)
    graph = compiled(fastconv.Model(inputs, layers.Dense(2, dtype=F64)(inner(inputs))))
    assert_all_checked(graph, x, y)
    # The nested model shares its weights with the model that calls it.
    np.testing.assert_allclose(inner.predict(x, verbose=0),
                               np.tanh(x @ inner.layers[0].kernel.value
                                       + inner.layers[0].bias.value))
    # An unbuilt Sequential nested in another is built by the outer's data.
    late = models.Sequential([models.Sequential([layers.Dense(3, dtype=F64)]),
                              layers.Dense(2, dtype=F64)])
    late.compile(optimizer="sgd", loss="mse")
    late.fit(x, y, verbose=0)
    assert len(late.weights) == 4 and late.layers[0].built
    softmaxed = models.Sequential([inner, layers.Softmax(dtype=F64)])
    np.testing.assert_allclose(softmaxed.predict(x, verbose=0).sum(axis=1), 1.0)


# ----------------------------------------------------------------------------
# subclassed models and custom layers written with Keras ops


class Scale(layers.Layer):
    """y = x * w + b with weights made in build, written with Keras ops."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")
        self.b = self.add_weight(shape=(input_shape[-1],), initializer="random_normal",
                                 name="offset")

    def call(self, x):
        return ops.tanh(x * self.w + self.b) + ops.mean(x, axis=-1, keepdims=True)


class Branchy(fastconv.Model):
    def __init__(self):
        super().__init__()
        self.a = layers.Dense(4, activation="relu", dtype=F64)
        self.scale = Scale(dtype=F64)
        self.out = layers.Dense(2, dtype=F64)

    def call(self, x, training=None):
        h = self.scale(self.a(x))
        if training:
            h = h * 0.5
        return self.out(h)


def test_subclassed_model_with_an_if_in_call():
    model = compiled(Branchy())
    x, y = rng().standard_normal((5, 3)), rng(1).standard_normal((5, 2))
    assert_all_checked(model, x, y)
    names = [w.name for w in model.weights]
    assert [n.split("/")[1] for n in names] == ["kernel", "bias", "variable", "offset",
                                                 "kernel", "bias"]
    a, s, o = model.a, model.scale, model.out

    def by_hand(scale):
        h = np.maximum(x @ a.kernel.value + a.bias.value, 0)
        h = np.tanh(h * s.w.value + s.b.value) + h.mean(-1, keepdims=True)
        return (h * scale) @ o.kernel.value + o.bias.value

    np.testing.assert_allclose(model.predict(x, verbose=0), by_hand(1.0), rtol=1e-12)
    np.testing.assert_allclose(model(x, training=True), by_hand(0.5), rtol=1e-12)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def test_subclass_with_a_functional_init():
    class Wrapped(fastconv.Model):
        def __init__(self):
            inputs = fastconv.Input((3,), dtype=F64)
            super().__init__(inputs, layers.Dense(2, dtype=F64)(inputs), name="wrapped")

        def scale(self):
            return 2.0

    model = compiled(Wrapped())
    assert isinstance(model, models.Functional) and model.scale() == 2.0
    assert model.name == "wrapped" and len(model.weights) == 2
    assert_all_checked(model, rng().standard_normal((4, 3)), rng(1).standard_normal((4, 2)))


def test_custom_layer_weights_and_gradients_inside_a_sequential():
    model = compiled(models.Sequential([fastconv.Input((4,), dtype=F64), Scale(dtype=F64),
                                        layers.Dense(2, dtype=F64)]))
    assert [w.name for w in model.layers[0].weights][1].endswith("offset")
    assert_all_checked(model, rng().standard_normal((5, 4)), rng(1).standard_normal((5, 2)))


def test_lambda_layer_and_keras_op_operators():
    inputs = fastconv.Input((4,), dtype=F64)
    h = layers.Dense(4, dtype=F64)(inputs)
    h = layers.Lambda(lambda t: ops.square(t) - 0.5 * t, dtype=F64)(h)
    outputs = layers.Dense(1, dtype=F64)(h)
    model = compiled(fastconv.Model(inputs, outputs))
    assert_all_checked(model, rng().standard_normal((5, 4)), rng(1).standard_normal((5, 1)))


def test_custom_loss_written_with_keras_ops():
    def huberish(y_true, y_pred):
        d = y_pred - y_true
        return ops.mean(ops.sqrt(1.0 + ops.square(d)) - 1.0, axis=-1)

    model = models.Sequential([layers.Dense(2, input_shape=(3,), dtype=F64)])
    model.compile(optimizer="sgd", loss=huberish)
    x, y = rng().standard_normal((6, 3)), rng(1).standard_normal((6, 2))
    assert_all_checked(model, x, y)
    d = model.predict(x, verbose=0) - y
    assert model.evaluate(x, y, verbose=0) == pytest.approx(np.mean(np.sqrt(1 + d ** 2) - 1))


def test_metric_functions_are_tracked_and_reload_through_custom_objects(tmp_path):
    def mean_abs_error(y_true, y_pred):
        return ops.mean(ops.abs(y_true - y_pred), axis=-1)

    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=[mean_abs_error])
    x = rng().standard_normal((8, 3)).astype(np.float32)
    y = rng(1).standard_normal((8, 2)).astype(np.float32)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    want = np.mean(np.abs(y - model.predict(x, verbose=0)))
    assert logs["mean_abs_error"] == pytest.approx(want, rel=1e-5)
    assert "mean_abs_error" in model.fit(x, y, epochs=1, verbose=0).history
    want = np.mean(np.abs(y - model.predict(x, verbose=0)))
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip",
                               custom_objects={"mean_abs_error": mean_abs_error})
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["mean_abs_error"] == (
        pytest.approx(want, rel=1e-5))


def test_gradient_tape_training_loop_matches_fit():
    def make():
        fastconv.utils.set_random_seed(4)
        return models.Sequential([layers.Dense(3, activation="tanh", input_shape=(4,)),
                                  layers.Dense(2)])

    x = rng().standard_normal((8, 4)).astype(np.float32)
    y = rng(1).standard_normal((8, 2)).astype(np.float32)
    looped = make()
    optimizer, loss_fn = fastconv.optimizers.SGD(0.1), losses.MeanSquaredError()
    for _ in range(3):
        with fastconv.GradientTape() as tape:
            loss = loss_fn(y, looped(x, training=True))
        grads = tape.gradient(loss, looped.trainable_weights)
        optimizer.apply_gradients(zip(grads, looped.trainable_weights))
    fitted = make()
    fitted.compile(optimizer=fastconv.optimizers.SGD(0.1), loss="mse")
    for _ in range(3):
        fitted.train_on_batch(x, y)
    for a, b in zip(looped.get_weights(), fitted.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_step_override_with_a_gradient_tape():
    class Custom(fastconv.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            with fastconv.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss, "custom": 1.0}

    model = Custom()
    model.compile(optimizer=fastconv.optimizers.SGD(0.05), loss="mse")
    x = rng().standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["custom"] == [1.0] * 5
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_keras3_train_step_pattern_with_model_metrics():
    class Custom(fastconv.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            with fastconv.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    model = Custom()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = rng().standard_normal((16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"]
    assert [m.name for m in model.metrics] == ["loss", "accuracy"]
    # The epoch's logs are means over its batches: the loss tracker restarts
    # every epoch, as Keras resets metrics.
    model.reset_metrics()
    assert model.metrics[0].result() == 0.0


# ----------------------------------------------------------------------------
# several inputs and outputs


def two_output_model():
    fastconv.backend.clear_session()
    image, extra = fastconv.Input((4,), name="image", dtype=F64), fastconv.Input(
        (2,), name="extra", dtype=F64)
    h = layers.Concatenate(dtype=F64)([layers.Dense(3, activation="tanh", dtype=F64)(image),
                                       extra])
    cls = layers.Dense(3, activation="softmax", name="cls", dtype=F64)(h)
    reg = layers.Dense(1, name="reg", dtype=F64)(h)
    return fastconv.Model({"image": image, "extra": extra}, {"cls": cls, "reg": reg})


def test_multi_output_losses_weights_and_log_names():
    model = two_output_model()
    model.compile(optimizer="sgd",
                  loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 2.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})
    x = {"image": rng().standard_normal((6, 4)), "extra": rng(1).standard_normal((6, 2))}
    y = {"cls": np.array([0, 1, 2, 0, 1, 2]), "reg": rng(2).standard_normal((6, 1))}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert set(p) == {"cls", "reg"}
    ce = -np.mean(np.log(p["cls"][np.arange(6), y["cls"]]))
    mse = np.mean((p["reg"] - y["reg"]) ** 2)
    assert logs["cls_loss"] == pytest.approx(ce, rel=1e-6)
    assert logs["reg_loss"] == pytest.approx(mse, rel=1e-6)
    assert logs["loss"] == pytest.approx(2.0 * ce + 0.5 * mse, rel=1e-6)
    assert logs["cls_accuracy"] == pytest.approx(np.mean(p["cls"].argmax(1) == y["cls"]))
    assert sorted(logs) == ["cls_accuracy", "cls_loss", "loss", "reg_loss"]
    assert_all_checked(model, x, y)
    history = model.fit([x["image"], x["extra"]], [y["cls"], y["reg"]], epochs=2, verbose=0)
    assert sorted(history.history) == ["cls_accuracy", "cls_loss", "loss", "reg_loss"]


def test_multi_output_loss_lists_and_errors():
    model = two_output_model()
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.0])
    x = [rng().standard_normal((4, 4)), rng(1).standard_normal((4, 2))]
    y = [np.array([0, 1, 2, 0]), rng(2).standard_normal((4, 1))]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["cls_loss"])
    with pytest.raises(ValueError, match="one entry per output"):
        model.compile(optimizer="sgd", loss=["mse"])
        model.evaluate(x, y, verbose=0)
    model.compile(optimizer="sgd", loss={"nope": "mse"})
    with pytest.raises(ValueError, match="not output names"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match="inputs named"):
        model.predict({"image": x[0]}, verbose=0)


# ----------------------------------------------------------------------------
# saving, cloning, summary


@fastconv.saving.register_keras_serializable(package="tests")
class Doubler(fastconv.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x) * 2.0

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@fastconv.saving.register_keras_serializable(package="tests")
class Reordered(fastconv.Model):
    """Layers assigned in one order and called in the other, with equal shapes:
    loading must put each stored weight back on its own layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.second = layers.Dense(4, activation="tanh")
        self.first = layers.Dense(4)

    def call(self, x):
        return self.second(self.first(x))


def test_weights_load_onto_their_layers_whatever_the_build_order(tmp_path):
    model = Reordered()
    model.build((None, 4))
    x = rng().standard_normal((3, 4)).astype(np.float32)
    model.save(tmp_path / "r.zip")
    loaded = models.load_model(tmp_path / "r.zip")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def graph_kinds():
    fastconv.utils.set_random_seed(0)
    left, right = fastconv.Input((4,)), fastconv.Input((4,))
    shared = layers.Dense(3)
    siamese = fastconv.Model([left, right], layers.Add()([shared(left), shared(right)]))
    inner = models.Sequential([layers.Dense(3, input_shape=(4,))])
    inputs = fastconv.Input((4,))
    nested = fastconv.Model(inputs, layers.Dense(2)(inner(inputs)))
    subclassed = Doubler(units=2)
    subclassed.build((None, 4))
    return {"siamese": siamese, "nested": nested, "sequential-nested": models.Sequential(
        [models.Sequential([layers.Dense(3, input_shape=(4,))]), layers.Dense(2)]),
        "subclassed": subclassed}


@pytest.mark.parametrize("kind", ["siamese", "nested", "sequential-nested", "subclassed"])
def test_save_load_gives_identical_predictions(kind, tmp_path):
    model = graph_kinds()[kind]
    x = rng().standard_normal((5, 4)).astype(np.float32)
    data = [x, x[::-1].copy()] if kind == "siamese" else x
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))
    assert len(loaded.weights) == len(model.weights)
    clone = models.clone_model(model)
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


def test_functional_config_records_every_edge():
    model = graph_kinds()["siamese"]
    config = model.get_config()
    dense = next(entry for entry in config["layers"] if entry["class_name"] == "Dense")
    assert len(dense["inbound_nodes"]) == 2
    histories = [node["args"][0]["config"]["keras_history"] for node in dense["inbound_nodes"]]
    assert [h[0] for h in histories] == [t.operation.name for t in model.inputs]
    add = next(entry for entry in config["layers"] if entry["class_name"] == "Add")
    assert [t["config"]["keras_history"] for t in add["inbound_nodes"][0]["args"][0]] == [
        [dense["name"], 0, 0], [dense["name"], 1, 0]]


def test_loading_an_unregistered_class_names_it(tmp_path):
    class Unregistered(layers.Layer):
        def call(self, x):
            return x

    model = models.Sequential([layers.Dense(2, input_shape=(3,)), Unregistered()])
    with pytest.raises(ValueError, match="register_keras_serializable"):
        model.save(tmp_path / "m.zip")

    class Dense(layers.Dense):  # a user class named like fastconv's own
        def forward(self, x, training=False):
            y, ctx = super().forward(x, training)
            return 2 * y, ctx

    with pytest.raises(ValueError, match="Layer class Dense cannot be saved"):
        models.Sequential([Dense(2, input_shape=(3,))]).save(tmp_path / "d.zip")


def test_summary_of_a_branching_model_has_keras_connected_to_column():
    fastconv.backend.clear_session()
    inputs = fastconv.Input((8,), name="img")
    a = layers.Dense(4, name="left")(inputs)
    b = layers.Dense(4, name="right")(inputs)
    model = fastconv.Model(inputs, layers.Add(name="add")([a, b]), name="branchy")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    expected = """\
Model: "branchy"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃ Param # ┃ Connected to         ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━┩
│ img (InputLayer)    │ (None, 8)         │       0 │ -                    │
├─────────────────────┼───────────────────┼─────────┼──────────────────────┤
│ left (Dense)        │ (None, 4)         │      36 │ img[0][0]            │
├─────────────────────┼───────────────────┼─────────┼──────────────────────┤
│ right (Dense)       │ (None, 4)         │      36 │ img[0][0]            │
├─────────────────────┼───────────────────┼─────────┼──────────────────────┤
│ add (Add)           │ (None, 4)         │       0 │ left[0][0],          │
│                     │                   │         │ right[0][0]          │
└─────────────────────┴───────────────────┴─────────┴──────────────────────┘
 Total params: 72 (288.00 B)
 Trainable params: 72 (288.00 B)
 Non-trainable params: 0 (0.00 B)"""
    assert "\n".join(lines) == expected


# ----------------------------------------------------------------------------
# errors


def test_graph_errors_name_the_layer_and_tensors():
    a, b = fastconv.Input((3,), name="a"), fastconv.Input((3,), name="b")
    out = layers.Add(name="plus")([a, b])
    with pytest.raises(ValueError, match="disconnected.*'b'|disconnected.*b feeds layer 'plus'"):
        fastconv.Model(a, out)
    with pytest.raises(ValueError, match="given twice"):
        fastconv.Model([a, a], out)
    c = fastconv.Input((3,), name="a")
    with pytest.raises(ValueError, match="named 'a'"):
        fastconv.Model([a, c], layers.Add()([a, c]))
    with pytest.raises(ValueError, match="conv2d_bad.*ndim=4"):
        layers.Conv2D(2, 3, name="conv2d_bad")(a)
    with pytest.raises(ValueError, match="used by two layers"):
        fastconv.Model(a, layers.Dense(2, name="same")(layers.Dense(2, name="same")(a)))


def test_a_layer_without_backward_says_so_when_trained():
    class ForwardOnly(layers.Layer):
        def forward(self, x, training=False):
            return x * 2.0, None

    model = models.Sequential([layers.Dense(2, input_shape=(3,)), ForwardOnly()])
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0),
                               2 * model.layers[0](np.ones((1, 3))), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="ForwardOnly.*no `backward`"):
        model.fit(np.ones((2, 3)), np.ones((2, 2)), verbose=0)


def test_symbolic_tensor_has_no_truth_value():
    class DataDependent(layers.Layer):
        def call(self, x):
            return x if ops.mean(x) > 0 else -x

    with pytest.raises(TypeError, match="truth value"):
        DataDependent()(fastconv.Input((3,)))


def test_gradient_tape_records_eager_ops_on_variables_and_recorded_values():
    w = layers.Dense(2)
    x = rng().standard_normal((3, 4)).astype(np.float32)
    w.build(x.shape)
    with fastconv.GradientTape() as tape:
        y = w(x)
        penalty = ops.sum(ops.square(w.kernel))  # an op on a Variable
        loss = ops.add(ops.mean(ops.square(y)), penalty)  # ops on a layer's output
    dk, db = tape.gradient(loss, [w.kernel, w.bias])
    z = x @ w.kernel.numpy() + w.bias.numpy()
    dz = 2 * z / z.size
    np.testing.assert_allclose(dk, x.T @ dz + 2 * w.kernel.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, dz.sum(0), rtol=1e-5, atol=1e-6)
    # The gradients are read out, the weights' own gradients left as they were.
    assert w.kernel._grad_is_zero


def test_gradient_tape_mean_of_a_per_sample_loss():
    dense = layers.Dense(1, use_bias=False)
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    y = np.zeros((2, 1), np.float32)
    dense.build(x.shape)
    dense.kernel.assign(np.array([[1.0], [1.0]], np.float32))
    with fastconv.GradientTape() as tape:
        loss = ops.mean(losses.mean_squared_error(y, dense(x)))
    (dk,) = tape.gradient(loss, [dense.kernel])
    # loss = mean((x @ k)^2) = (3^2 + 7^2) / 2; d/dk = x.T @ (x @ k) = [24, 34].
    np.testing.assert_allclose(dk[:, 0], [24.0, 34.0], rtol=1e-6)

"""Keras 3 CNN programs in the style of keras.io's examples and tutorials,
with only their imports changed, on tiny synthetic data. Each result is
checked against an independent computation: NumPy formulas, counts by hand,
a falling loss, deterministic and reload-stable predictions."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import fastconv as keras
from fastconv import layers, ops

RNG = np.random.default_rng(1234)


def images(n: int, h: int = 8, w: int = 8, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def separable_labels(x: np.ndarray, classes: int = 2) -> np.ndarray:
    """Labels a small CNN can learn: which quantile the image's mean falls in."""
    means = x.reshape(len(x), -1).mean(axis=1)
    edges = np.quantile(means, np.linspace(0, 1, classes + 1)[1:-1])
    return np.searchsorted(edges, means).astype(np.int64)


def roundtrip(model, tmp_path, name: str = "model.keras", **kwargs):
    path = tmp_path / name
    model.save(path)
    return keras.models.load_model(path, **kwargs)


# --- 1. VGG-style CIFAR net with BatchNormalization ---------------------------


def vgg_block(x, filters):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    return layers.Dropout(0.2)(x)


def build_vgg():
    inputs = keras.Input(shape=(8, 8, 3))
    x = vgg_block(inputs, 8)
    x = vgg_block(x, 16)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="vgg")


def test_vgg_cifar_style_with_batchnorm_trains_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    x = images(48)
    y = separable_labels(x, 3)
    model = build_vgg()
    # Each BatchNormalization has 2 trainable and 2 non-trainable weights per channel.
    bn_params = 2 * 4 * 8 + 2 * 4 * 16
    conv_params = 3 * 3 * 3 * 8 + 3 * 3 * 8 * 8 + 3 * 3 * 8 * 16 + 3 * 3 * 16 * 16
    assert model.count_params() == conv_params + bn_params + 16 * 3 + 3
    assert len(model.non_trainable_weights) == 8
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    p1 = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, model.predict(x, verbose=0))
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, rtol=1e-5)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(result) == ["accuracy", "loss"]
    expected_loss = -np.mean(np.log(p1[np.arange(len(y)), y]))
    np.testing.assert_allclose(result["loss"], expected_loss, rtol=1e-4)
    np.testing.assert_allclose(result["accuracy"], np.mean(p1.argmax(1) == y), rtol=1e-6)
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), p1, rtol=1e-5, atol=1e-6)


# --- 2. BatchNormalization against its formulas -------------------------------


def test_batchnorm_training_and_inference_match_numpy():
    x = RNG.standard_normal((6, 4, 4, 3)).astype(np.float32) * 2 + 1
    bn = layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    bn.build(x.shape)
    gamma = np.array([1.0, 2.0, 0.5], np.float32)
    beta = np.array([0.0, -1.0, 0.25], np.float32)
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    out = np.asarray(bn(x, training=True))
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-3) + beta,
                               rtol=1e-4, atol=1e-5)
    # Keras: moving = moving * momentum + batch * (1 - momentum), with the biased variance.
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
    inf = np.asarray(bn(x, training=False))
    mm, mv = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(inf, gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta,
                               rtol=1e-4, atol=1e-5)
    assert [w.path for w in bn.weights] == [
        f"{bn.name}/{n}" for n in ("gamma", "beta", "moving_mean", "moving_variance")]


@pytest.mark.xfail(strict=True, reason=(
    "fastconv's Variable.name is the layer-qualified path ('batch_normalization/gamma'); "
    "Keras 3 has name='gamma' and path='batch_normalization/gamma'. Many tests and "
    "the weight-file keys rely on the qualified name."))
def test_variable_name_is_unqualified_as_in_keras():
    bn = layers.BatchNormalization()
    bn.build((None, 3))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_dense_batchnorm_folded_predict_matches_numpy():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4),
                              layers.BatchNormalization(), layers.Activation("relu")])
    dense, bn = model.layers[0], model.layers[1]
    bn.moving_mean.assign(RNG.standard_normal(4).astype(np.float32))
    bn.moving_variance.assign(RNG.random(4).astype(np.float32) + 0.5)
    bn.gamma.assign(RNG.standard_normal(4).astype(np.float32))
    bn.beta.assign(RNG.standard_normal(4).astype(np.float32))
    x = RNG.standard_normal((7, 5)).astype(np.float32)
    w, b = dense.kernel.numpy(), dense.bias.numpy()
    z = x @ w + b
    z = bn.gamma.numpy() * (z - bn.moving_mean.numpy()) / np.sqrt(
        bn.moving_variance.numpy() + bn.epsilon) + bn.beta.numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), np.maximum(z, 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.maximum(z, 0),
                               rtol=1e-4, atol=1e-5)


def test_conv_batchnorm_folded_predict_matches_torch():
    torch = pytest.importorskip("torch")
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input(shape=(6, 6, 2)),
                              layers.Conv2D(3, 3, padding="same"),
                              layers.BatchNormalization(epsilon=1e-3)])
    conv, bn = model.layers
    for var in (bn.moving_mean, bn.beta, bn.gamma):
        var.assign(RNG.standard_normal(3).astype(np.float32))
    bn.moving_variance.assign(RNG.random(3).astype(np.float32) + 0.1)
    x = RNG.standard_normal((2, 6, 6, 2)).astype(np.float32)
    tconv = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2),
        torch.from_numpy(conv.kernel.numpy()).permute(3, 2, 0, 1),
        torch.from_numpy(conv.bias.numpy()), padding=1)
    tbn = torch.nn.functional.batch_norm(
        tconv, torch.from_numpy(bn.moving_mean.numpy()),
        torch.from_numpy(bn.moving_variance.numpy()),
        torch.from_numpy(bn.gamma.numpy()), torch.from_numpy(bn.beta.numpy()),
        training=False, eps=1e-3)
    expected = tbn.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


# --- 3. MobileNet-style inverted residual block -------------------------------


def inverted_residual(x, expansion, filters):
    channels = x.shape[-1]
    m = layers.Conv2D(expansion * channels, 1, padding="same", use_bias=False)(x)
    m = layers.BatchNormalization()(m)
    m = layers.ReLU(max_value=6.0)(m)
    m = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(m)
    m = layers.BatchNormalization()(m)
    m = layers.Activation("relu6")(m)
    m = layers.Conv2D(filters, 1, padding="same", use_bias=False)(m)
    m = layers.BatchNormalization()(m)
    if channels == filters:
        return layers.Add()([m, x])
    return m


def build_mobilenet():
    inputs = keras.Input(shape=(8, 8, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = inverted_residual(x, 2, 8)
    x = inverted_residual(x, 2, 12)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(2)(x)
    return keras.Model(inputs, outputs)


def test_mobilenet_style_block_trains_and_reloads(tmp_path):
    keras.utils.set_random_seed(3)
    x = images(32)
    y = separable_labels(x)
    model = build_mobilenet()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    before = model.predict(x, verbose=0)
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-5)
    assert reloaded.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "acc"}


# --- 4. "Image classification from scratch" -----------------------------------


def make_xception_mini(input_shape, num_classes):
    data_augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)],
        name="data_augmentation")
    inputs = keras.Input(shape=input_shape)
    x = data_augmentation(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [8, 16]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(16, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)


def test_image_classification_from_scratch(tmp_path):
    keras.utils.set_random_seed(4)
    x = (images(32, 12, 12, 3) * 255).astype(np.float32)
    y = separable_labels(x).astype(np.float32)
    model = make_xception_mini((12, 12, 3), 2)
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "save_at_{epoch}.keras"))]
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="acc")])
    history = model.fit(x, y, epochs=2, batch_size=8, callbacks=callbacks,
                        validation_data=(x[:8], y[:8]), verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["save_at_1.keras", "save_at_2.keras"]
    # Augmentation is off in inference: predictions are repeatable and
    # the last checkpoint predicts as the model does.
    p = model.predict(x, verbose=0)
    np.testing.assert_array_equal(p, model.predict(x, verbose=0))
    last = keras.models.load_model(tmp_path / "save_at_2.keras")
    np.testing.assert_allclose(last.predict(x, verbose=0), p, rtol=1e-5, atol=1e-5)
    score = float(ops.sigmoid(p[0][0]))
    assert 0.0 < score < 1.0


def test_augmentation_layers_are_active_only_in_training():
    x = images(4, 6, 6, 3)
    aug = keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=1),
                            layers.RandomRotation(0.2, seed=2),
                            layers.RandomZoom(0.2, seed=3),
                            layers.RandomTranslation(0.1, 0.1, seed=4),
                            layers.RandomContrast(0.3, seed=5)])
    np.testing.assert_allclose(np.asarray(aug(x, training=False)), x, rtol=1e-6)
    assert not np.allclose(np.asarray(aug(x, training=True)), x)
    flip = layers.RandomFlip("horizontal", seed=0)
    out = np.asarray(flip(x, training=True))
    # Each image is either itself or its left-right mirror.
    for o, i in zip(out, x):
        assert np.allclose(o, i) or np.allclose(o, i[:, ::-1])


# --- 5. Text classification with Embedding + Conv1D ---------------------------


def test_text_cnn_with_embedding_and_conv1d(tmp_path):
    keras.utils.set_random_seed(5)
    max_features, sequence_length, embedding_dim = 50, 20, 8
    rng = np.random.default_rng(5)
    tokens = rng.integers(1, max_features, (40, sequence_length))
    y = (tokens < 10).any(axis=1).astype(np.float32)
    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(16, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(16, 3, padding="valid", activation="relu", strides=1)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(tokens, y, batch_size=8, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    p = model.predict(tokens, verbose=0)
    assert p.shape == (40, 1) and np.all((p > 0) & (p < 1))
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(tokens, verbose=0), p, rtol=1e-5, atol=1e-6)


def test_embedding_output_is_a_row_lookup():
    emb = layers.Embedding(10, 3)
    ids = np.array([[1, 2, 9], [0, 0, 4]], np.int32)
    out = np.asarray(emb(ids))
    np.testing.assert_array_equal(out, emb.embeddings.numpy()[ids])
    assert emb.compute_output_shape((2, 3)) == (2, 3, 3)


# --- 6. Timeseries classification from scratch --------------------------------


def make_fcn(input_shape, num_classes):
    input_layer = keras.layers.Input(input_shape)
    x = input_layer
    for _ in range(3):
        x = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    gap = keras.layers.GlobalAveragePooling1D()(x)
    output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)
    return keras.models.Model(inputs=input_layer, outputs=output_layer)


def test_timeseries_classification_fcn(tmp_path):
    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    n, t = 40, 24
    y = rng.integers(0, 2, n)
    base = np.sin(np.linspace(0, 4 * np.pi, t))[None, :] * np.where(y[:, None] == 1, 1, -1)
    x = (base + 0.3 * rng.standard_normal((n, t))).astype(np.float32)[..., None]
    model = make_fcn(x.shape[1:], 2)
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best_model.keras"),
                                        save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                          min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, verbose=0),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=6, callbacks=callbacks,
                        validation_split=0.2, verbose=0)
    assert {"loss", "sparse_categorical_accuracy", "val_loss",
            "val_sparse_categorical_accuracy", "learning_rate"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    best = keras.models.load_model(tmp_path / "best_model.keras")
    # validation_split holds out the last 20% of the rows, before shuffling.
    test_loss, test_acc = best.evaluate(x[-8:], y[-8:], verbose=0)
    np.testing.assert_allclose(test_loss, min(history.history["val_loss"]), rtol=1e-4)
    best_epoch = int(np.argmin(history.history["val_loss"]))
    np.testing.assert_allclose(test_acc,
                               history.history["val_sparse_categorical_accuracy"][best_epoch],
                               rtol=1e-6)


# --- 7. Two outputs, loss_weights and sample_weight ---------------------------


def build_two_headed():
    image = keras.Input(shape=(6, 6, 1), name="image")
    x = layers.Conv2D(4, 3, activation="relu")(image)
    x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    score = layers.Dense(1, name="score")(x)
    label = layers.Dense(3, activation="softmax", name="label")(x)
    return keras.Model(inputs=image, outputs={"score": score, "label": label})


def test_two_outputs_loss_weights_and_sample_weight():
    keras.utils.set_random_seed(7)
    x = images(20, 6, 6, 1)
    y_score = x.mean(axis=(1, 2, 3))[:, None].astype(np.float32)
    y_label = separable_labels(x, 3)
    model = build_two_headed()
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss={"score": keras.losses.MeanSquaredError(),
                        "label": keras.losses.SparseCategoricalCrossentropy()},
                  loss_weights={"score": 2.0, "label": 0.5})
    sw = np.linspace(0.1, 2.0, 20).astype(np.float32)
    history = model.fit(x, {"score": y_score, "label": y_label},
                        sample_weight={"score": sw, "label": sw},
                        batch_size=10, epochs=3, verbose=0)
    assert {"loss", "score_loss", "label_loss"} <= set(history.history)
    result = model.evaluate(x, {"score": y_score, "label": y_label}, batch_size=20,
                            verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    mse = np.mean((p["score"] - y_score) ** 2)
    cce = -np.mean(np.log(p["label"][np.arange(20), y_label]))
    np.testing.assert_allclose(result["score_loss"], mse, rtol=1e-4)
    np.testing.assert_allclose(result["label_loss"], cce, rtol=1e-4)
    np.testing.assert_allclose(result["loss"], 2.0 * mse + 0.5 * cce, rtol=1e-4)
    weighted = model.evaluate(x, {"score": y_score, "label": y_label},
                              sample_weight={"score": sw, "label": sw}, batch_size=20,
                              verbose=0, return_dict=True)
    # sum_over_batch_size: sum(w * l) / N
    mse_w = np.sum(sw * ((p["score"] - y_score) ** 2)[:, 0]) / 20
    np.testing.assert_allclose(weighted["score_loss"], mse_w, rtol=1e-4)


# --- 8. A subclassed model with its own train_step ----------------------------


class CustomModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = keras.losses.mean_squared_error(y, y_pred)
            loss = ops.mean(loss)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_custom_train_step_with_gradient_tape():
    keras.utils.set_random_seed(8)
    inputs = keras.Input(shape=(6, 6, 2))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = layers.Flatten()(x)
    outputs = layers.Dense(1)(x)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    x_train = images(32, 6, 6, 2)
    y_train = x_train.sum(axis=(1, 2, 3))[:, None] / 72
    history = model.fit(x_train, y_train, epochs=4, batch_size=8, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_gradient_tape_matches_numpy_gradient_of_dense():
    dense = layers.Dense(2, use_bias=True)
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    dense.build(x.shape)
    with keras.GradientTape() as tape:
        y = dense(x)
        loss = ops.sum(ops.square(y))
    dw, db = tape.gradient(loss, [dense.kernel, dense.bias])
    z = x @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(np.asarray(dw), x.T @ (2 * z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(db), (2 * z).sum(0), rtol=1e-5, atol=1e-6)


# --- 9. class_weight on imbalanced data ---------------------------------------


def test_class_weight_on_imbalanced_data():
    keras.utils.set_random_seed(9)
    x = images(16, 4, 4, 1)
    y = np.array([0] * 14 + [1] * 2, np.float32)[:, None]
    model = keras.Sequential([keras.Input(shape=(4, 4, 1)), layers.Conv2D(2, 3),
                              layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    # One batch: the epoch's loss is that of the weights before the step.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    p = np.clip(model.predict(x, verbose=0), 1e-7, 1 - 1e-7)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))[:, 0]
    neg, pos = 14, 2
    class_weight = {0: (1 / neg) * 16 / 2.0, 1: (1 / pos) * 16 / 2.0}
    history = model.fit(x, y, batch_size=16, epochs=1, class_weight=class_weight, verbose=0)
    w = np.where(y[:, 0] == 1, class_weight[1], class_weight[0])
    np.testing.assert_allclose(history.history["loss"][0], np.sum(w * bce) / 16, rtol=1e-4)


# --- 10. Callbacks together ----------------------------------------------------


def small_classifier(seed=10):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(shape=(6, 6, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(2, activation="softmax"),
    ])


def test_callbacks_scheduler_csvlogger_reduce_lr_early_stopping(tmp_path):
    x = images(24, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    def scheduler(epoch, lr):
        return lr if epoch < 2 else lr * math.exp(-0.5)

    seen = []
    callbacks = [
        keras.callbacks.LearningRateScheduler(scheduler),
        keras.callbacks.CSVLogger(str(tmp_path / "training.log")),
        keras.callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch)),
    ]
    history = model.fit(x, y, epochs=4, batch_size=8, callbacks=callbacks, verbose=0)
    lrs = history.history["learning_rate"]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1 * math.exp(-0.5), 0.1 * math.exp(-1.0)],
                               rtol=1e-5)
    assert seen == [0, 1, 2, 3]
    with open(tmp_path / "training.log") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # Keras' CSVLogger adds the val_ columns when the first epoch has none.
    assert list(rows[0]) == ["epoch", "accuracy", "learning_rate", "loss", "val_accuracy",
                             "val_learning_rate", "val_loss"]
    assert rows[0]["val_loss"] == "NA"
    np.testing.assert_allclose([float(r["loss"]) for r in rows], history.history["loss"],
                               rtol=1e-5)


def test_reduce_lr_on_plateau_reduces_when_loss_is_flat():
    x = images(8, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier()
    # A zero-gradient situation: SGD with lr tiny so the loss plateaus.
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="sparse_categorical_crossentropy")
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                           min_delta=1e-3, min_lr=1e-12)
    history = model.fit(x, y, epochs=5, batch_size=8, callbacks=[cb], verbose=0)
    lrs = history.history["learning_rate"]
    assert lrs[0] == pytest.approx(1e-9) and lrs[-1] < lrs[0]


# --- 11. Learning-rate schedules ----------------------------------------------


def test_exponential_decay_schedule_in_optimizer():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    model = small_classifier()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy")
    x = images(16, 6, 6, 1)
    model.fit(x, separable_labels(x), batch_size=4, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4
    # staircase: 0.1 * 0.5 ** floor(4 / 2)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.025, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(3)), 0.05, rtol=1e-6)


def test_cosine_decay_with_warmup_and_piecewise_values():
    cos = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=10, alpha=0.1,
                                                 warmup_target=1.0, warmup_steps=5)
    np.testing.assert_allclose(float(cos(0)), 0.0, atol=1e-7)
    np.testing.assert_allclose(float(cos(5)), 1.0, rtol=1e-6)
    step = 5
    cosine = 0.5 * (1 + math.cos(math.pi * step / 10))
    np.testing.assert_allclose(float(cos(10)), (1 - 0.1) * cosine + 0.1, rtol=1e-6)
    pw = keras.optimizers.schedules.PiecewiseConstantDecay([3, 6], [1.0, 0.5, 0.1])
    assert [float(pw(s)) for s in (0, 3, 4, 6, 7)] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.1])


# --- 12. A custom layer with keras.ops ----------------------------------------


@keras.saving.register_keras_serializable(package="programs")
class InstanceNorm(keras.layers.Layer):
    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")
        self.offset = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                      name="offset")

    def call(self, x):
        mean, variance = ops.moments(x, axes=[1, 2], keepdims=True)
        return self.scale * (x - mean) / ops.sqrt(variance + self.epsilon) + self.offset

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


def test_custom_layer_with_ops_moments_matches_numpy_and_reloads(tmp_path):
    keras.utils.set_random_seed(12)
    inputs = keras.Input(shape=(5, 5, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)
    x = InstanceNorm(name="inorm")(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    x_train = images(16, 5, 5, 3)
    y_train = x_train[..., 0].mean(axis=(1, 2))[:, None]
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x_train, y_train, epochs=5, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    layer = model.get_layer("inorm")
    probe = RNG.standard_normal((2, 3, 3, 4)).astype(np.float32)
    m = probe.mean(axis=(1, 2), keepdims=True)
    v = probe.var(axis=(1, 2), keepdims=True)
    expected = layer.scale.numpy() * (probe - m) / np.sqrt(v + 1e-5) + layer.offset.numpy()
    np.testing.assert_allclose(np.asarray(layer(probe)), expected, rtol=1e-4, atol=1e-5)
    reloaded = roundtrip(model, tmp_path)
    assert isinstance(reloaded.get_layer("inorm"), InstanceNorm)
    np.testing.assert_allclose(reloaded.predict(x_train, verbose=0),
                               model.predict(x_train, verbose=0), rtol=1e-5, atol=1e-6)


def test_custom_layer_gradients_match_finite_differences():
    layer = InstanceNorm()
    x = RNG.standard_normal((1, 3, 3, 2)).astype(np.float64)
    layer.build(x.shape)
    layer.scale.assign(np.array([1.5, -0.5]))

    def f(xv):
        return float(np.sum(np.asarray(layer(xv.astype(np.float32))) * np.arange(18).reshape(
            1, 3, 3, 2)))

    with keras.GradientTape() as tape:
        y = layer(x.astype(np.float32))
        loss = ops.sum(ops.multiply(y, np.arange(18, dtype=np.float32).reshape(1, 3, 3, 2)))
    grads = tape.gradient(loss, [layer.scale, layer.offset])
    eps = 1e-2
    for gi, var in zip(grads, [layer.scale, layer.offset]):
        base = var.numpy()
        numeric = []
        for i in range(2):
            up, down = base.copy(), base.copy()
            up[i] += eps
            down[i] -= eps
            var.assign(up)
            fu = f(x)
            var.assign(down)
            fd = f(x)
            var.assign(base)
            numeric.append((fu - fd) / (2 * eps))
        np.testing.assert_allclose(np.asarray(gi), numeric, rtol=1e-2, atol=1e-2)


# --- 13. Metrics through evaluate(return_dict=True) ---------------------------


def test_binary_metrics_match_numpy_counts():
    keras.utils.set_random_seed(13)
    x = images(30, 4, 4, 1)
    y = separable_labels(x).astype(np.float32)[:, None]
    model = keras.Sequential([keras.Input(shape=(4, 4, 1)), layers.Flatten(),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[keras.metrics.Precision(name="precision"),
                           keras.metrics.Recall(name="recall"),
                           keras.metrics.AUC(name="auc", num_thresholds=1000),
                           keras.metrics.BinaryAccuracy(name="acc")])
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    result = model.evaluate(x, y, batch_size=30, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)[:, 0]
    t = y[:, 0]
    pred = p > 0.5
    tp = np.sum(pred & (t == 1))
    precision = tp / max(pred.sum(), 1)
    recall = tp / (t == 1).sum()
    np.testing.assert_allclose(result["precision"], precision, rtol=1e-5)
    np.testing.assert_allclose(result["recall"], recall, rtol=1e-5)
    np.testing.assert_allclose(result["acc"], np.mean(pred == (t == 1)), rtol=1e-6)
    # The exact ROC AUC: the fraction of (positive, negative) pairs ranked right.
    pos, neg = p[t == 1], p[t == 0]
    exact = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    np.testing.assert_allclose(result["auc"], exact, atol=0.02)


def test_multiclass_metrics_topk_f1_rmse():
    y_true = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    y_pred = np.array([[0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]],
                      np.float32)
    top2 = keras.metrics.TopKCategoricalAccuracy(k=2)
    top2.update_state(y_true, y_pred)
    # ranks of the true class: 1st, 2nd, 2nd, 1st -> all within the top 2
    assert float(top2.result()) == pytest.approx(1.0)
    top1 = keras.metrics.TopKCategoricalAccuracy(k=1)
    top1.update_state(y_true, y_pred)
    assert float(top1.result()) == pytest.approx(0.5)
    f1 = keras.metrics.F1Score(average="macro", threshold=0.5)
    f1.update_state(y_true, y_pred)
    # Thresholded at 0.5: class 0: pred [0,1,0,0] true [0,0,1,0] -> f1 0;
    # class 1: pred [0,0,1,1] true [0,1,0,1] -> p=.5 r=.5 f1=.5; class 2: pred [1,0,0,0] -> f1 1.
    np.testing.assert_allclose(float(f1.result()), (0 + 0.5 + 1.0) / 3, rtol=1e-5)
    rmse = keras.metrics.RootMeanSquaredError()
    rmse.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(rmse.result()), np.sqrt(np.mean((y_true - y_pred) ** 2)),
                               rtol=1e-6)


# --- 14. PyDataset and generators ---------------------------------------------


class ImageSequence(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        low = idx * self.batch_size
        high = min(low + self.batch_size, len(self.x))
        return self.x[low:high], self.y[low:high]


class PredictSequence(ImageSequence):
    def __getitem__(self, idx):
        return super().__getitem__(idx)[0]


def test_fit_evaluate_predict_on_a_pydataset():
    x = images(26, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(14)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(ImageSequence(x, y, 8), epochs=3,
                        validation_data=ImageSequence(x[:8], y[:8], 4), verbose=0)
    assert len(history.history["val_loss"]) == 3
    p = model.predict(PredictSequence(x, y, 8), verbose=0)
    assert p.shape == (26, 2)
    np.testing.assert_allclose(p, model.predict(x, batch_size=5, verbose=0), rtol=1e-5,
                               atol=1e-6)
    ds_result = model.evaluate(ImageSequence(x, y, 8), verbose=0, return_dict=True)
    arr_result = model.evaluate(x, y, batch_size=26, verbose=0, return_dict=True)
    np.testing.assert_allclose(ds_result["loss"], arr_result["loss"], rtol=1e-5)
    np.testing.assert_allclose(ds_result["accuracy"], arr_result["accuracy"], rtol=1e-6)


def test_fit_on_a_python_generator_with_steps_per_epoch():
    x = images(32, 6, 6, 1)
    y = separable_labels(x)

    def batches():
        while True:
            for i in range(0, 32, 8):
                yield x[i:i + 8], y[i:i + 8]

    model = small_classifier(15)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    history = model.fit(batches(), steps_per_epoch=4, epochs=4, verbose=0)
    assert int(model.optimizer.iterations) == 16
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_validation_freq_and_initial_epoch():
    x = images(16, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(16)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (e, "val_loss" in logs)))
    history = model.fit(x, y, epochs=6, initial_epoch=2, validation_data=(x, y),
                        validation_freq=2, batch_size=8, callbacks=[cb], verbose=0)
    assert history.epoch == [2, 3, 4, 5]
    # validation_freq counts epochs from 1: epochs 4 and 6 (indices 3 and 5).
    assert seen == [(2, False), (3, True), (4, False), (5, True)]
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2


# --- 15. Normalization layers against their formulas ---------------------------


def test_layer_group_unit_normalization_match_numpy():
    x = RNG.standard_normal((2, 4, 4, 6)).astype(np.float32) * 3 + 1
    ln = layers.LayerNormalization(epsilon=1e-3)
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(ln(x)), (x - m) / np.sqrt(v + 1e-3), rtol=1e-4,
                               atol=1e-5)
    gn = layers.GroupNormalization(groups=3, epsilon=1e-3)
    g = x.reshape(2, 4, 4, 3, 2)
    gm, gv = g.mean(axis=(1, 2, 4), keepdims=True), g.var(axis=(1, 2, 4), keepdims=True)
    np.testing.assert_allclose(np.asarray(gn(x)), ((g - gm) / np.sqrt(gv + 1e-3)).reshape(
        x.shape), rtol=1e-4, atol=1e-5)
    un = layers.UnitNormalization(axis=-1)
    np.testing.assert_allclose(np.asarray(un(x)), x / np.linalg.norm(x, axis=-1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_layernorm_cnn_trains_and_reloads(tmp_path):
    keras.utils.set_random_seed(17)
    x = images(24, 6, 6, 2)
    y = separable_labels(x)
    model = keras.Sequential([
        keras.Input(shape=(6, 6, 2)),
        layers.Conv2D(8, 3, padding="same"),
        layers.GroupNormalization(groups=4),
        layers.Activation("gelu"),
        layers.Conv2D(8, 3),
        layers.LayerNormalization(),
        layers.LeakyReLU(negative_slope=0.1),
        layers.GlobalMaxPooling2D(),
        layers.UnitNormalization(),
        layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.AdamW(1e-2, weight_decay=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert reloaded.optimizer.get_config()["weight_decay"] == pytest.approx(1e-3)


# --- 16. Activation layers and strings ----------------------------------------


def test_activation_layers_match_formulas():
    x = np.linspace(-3, 3, 13, dtype=np.float32).reshape(1, 13)
    np.testing.assert_allclose(np.asarray(layers.LeakyReLU(negative_slope=0.2)(x)),
                               np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layers.ELU(alpha=0.5)(x)),
                               np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-5, atol=1e-7)
    prelu = layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25))
    np.testing.assert_allclose(np.asarray(prelu(x)), np.where(x > 0, x, 0.25 * x), rtol=1e-6)
    assert prelu.weights[0].shape == (13,)
    np.testing.assert_allclose(np.asarray(layers.ReLU(max_value=2.0, negative_slope=0.1,
                                                      threshold=0.5)(x)),
                               # Keras: x above the threshold (strictly) is kept.
                               np.where(x > 0.5, np.minimum(x, 2.0), 0.1 * (x - 0.5)),
                               rtol=1e-6, atol=1e-7)
    sm = np.asarray(layers.Softmax()(x))
    np.testing.assert_allclose(sm, np.exp(x) / np.exp(x).sum(), rtol=1e-5)


@pytest.mark.parametrize("name, formula", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", np.tanh),
    ("softplus", lambda x: np.log1p(np.exp(x))),
    ("softsign", lambda x: x / (1 + np.abs(x))),
    ("selu", lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(x))),
    ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
    ("swish", lambda x: x / (1 + np.exp(-x))),
    ("silu", lambda x: x / (1 + np.exp(-x))),
    # keras.activations.gelu defaults to the exact (erf) form
    ("gelu", lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))),
    ("hard_sigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    ("relu6", lambda x: np.clip(x, 0, 6)),
    ("exponential", np.exp),
    ("linear", lambda x: x),
    ("mish", lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    ("log_softmax", lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
])
def test_activation_strings_in_dense_layers(name, formula):
    x = np.linspace(-4, 4, 10, dtype=np.float64).reshape(2, 5).astype(np.float32)
    out = np.asarray(layers.Activation(name)(x))
    np.testing.assert_allclose(out, formula(x.astype(np.float64)), rtol=1e-4, atol=1e-5)
    dense = layers.Dense(5, activation=name, kernel_initializer="identity",
                         bias_initializer="zeros")
    np.testing.assert_allclose(np.asarray(dense(x)), out, rtol=1e-5, atol=1e-6)


# --- 17. Preprocessing inside the model ---------------------------------------


def test_normalization_adapt_then_train_and_reload(tmp_path):
    keras.utils.set_random_seed(18)
    x = (images(32, 6, 6, 3) * np.array([10.0, 1.0, 0.1], np.float32)
         + np.array([5.0, -2.0, 0.0], np.float32))
    y = separable_labels(x)
    normalizer = layers.Normalization()
    normalizer.adapt(x)
    np.testing.assert_allclose(np.ravel(normalizer.mean), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(np.ravel(normalizer.variance), x.var(axis=(0, 1, 2)), rtol=1e-4)
    normed = np.asarray(normalizer(x))
    np.testing.assert_allclose(normed.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(normed.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)
    inputs = keras.Input(shape=(6, 6, 3))
    h = normalizer(inputs)
    h = layers.Conv2D(4, 3, activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    outputs = layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_normalization_with_given_mean_and_invert():
    norm = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.25])
    x = np.array([[3.0, 2.5], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(norm(x)), [[1.0, 1.0], [0.0, -2.0]], rtol=1e-5)
    inv = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.25], invert=True)
    np.testing.assert_allclose(np.asarray(inv(norm(x))), x, rtol=1e-5)


def test_resizing_rescaling_center_crop_pipeline():
    x = np.arange(2 * 8 * 8 * 1, dtype=np.float32).reshape(2, 8, 8, 1)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        layers.CenterCrop(4, 4),
        layers.Rescaling(scale=1 / 127.5, offset=-1),
        layers.Resizing(2, 2, interpolation="nearest"),
    ])
    out = model.predict(x, verbose=0)
    assert out.shape == (2, 2, 2, 1)
    crop = x[:, 2:6, 2:6, :] / 127.5 - 1
    # Nearest resize 4 -> 2 samples one pixel of each 2x2 block.
    blocks = crop.reshape(2, 2, 2, 2, 2, 1).transpose(0, 1, 3, 2, 4, 5).reshape(2, 2, 2, 4)
    assert np.min(np.abs(blocks - out), axis=-1).max() < 1e-6
    bilinear = layers.Resizing(4, 4)(x)
    # Halving by bilinear interpolation with half-pixel centres averages 2x2 blocks.
    np.testing.assert_allclose(np.asarray(bilinear),
                               x.reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4)), rtol=1e-5)


# --- 18. Regularization and shape layers ---------------------------------------


def test_regularization_layers_are_identity_in_inference():
    x = images(4, 6, 6, 4)
    for layer in [layers.SpatialDropout2D(0.5), layers.GaussianNoise(0.3),
                  layers.GaussianDropout(0.3), layers.AlphaDropout(0.3), layers.Dropout(0.5),
                  layers.Identity()]:
        np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    sd = layers.SpatialDropout2D(0.5, seed=1)
    out = np.asarray(sd(x, training=True))
    # Whole feature maps are dropped; the kept ones are scaled by 1 / (1 - rate).
    per_map = out.reshape(4, 36, 4)
    for n in range(4):
        for c in range(4):
            m = per_map[n, :, c]
            assert np.allclose(m, 0) or np.allclose(m, x.reshape(4, 36, 4)[n, :, c] * 2)
    noisy = np.asarray(layers.GaussianNoise(0.1, seed=2)(x, training=True))
    assert 0.05 < np.std(noisy - x) < 0.15


def test_activity_regularization_adds_to_the_loss():
    x = np.ones((4, 3), np.float32)
    model = keras.Sequential([keras.Input(shape=(3,)),
                              layers.Dense(2, kernel_initializer="ones", use_bias=False),
                              layers.ActivityRegularization(l1=0.01, l2=0.1)])
    model.compile(optimizer="sgd", loss="mse")
    y = np.zeros((4, 2), np.float32)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    out = np.full((4, 2), 3.0)
    # Keras: the penalty is summed over the batch, then divided by the batch size.
    penalty = (0.01 * np.abs(out).sum() + 0.1 * np.square(out).sum()) / 4
    np.testing.assert_allclose(result["loss"], np.mean(out ** 2) + penalty, rtol=1e-5)


def test_permute_repeat_vector_reshape_model():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    inputs = keras.Input(shape=(3, 4))
    p = layers.Permute((2, 1))(inputs)
    flat = layers.Flatten()(p)
    rep = layers.RepeatVector(2)(flat)
    model = keras.Model(inputs, [p, rep])
    out_p, out_r = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out_p, x.transpose(0, 2, 1))
    np.testing.assert_array_equal(out_r, np.repeat(x.transpose(0, 2, 1).reshape(2, 1, 12), 2, 1))
    assert model.output_shape == [(None, 4, 3), (None, 2, 12)]


# --- 19. Losses against their formulas -----------------------------------------


def test_losses_match_formulas():
    y_true = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
    y_pred = np.array([[0.2, 0.7], [0.6, 0.1], [0.3, 0.9]], np.float32)
    err = y_pred - y_true
    huber = np.where(np.abs(err) <= 0.5, 0.5 * err ** 2, 0.5 * (np.abs(err) - 0.25))
    np.testing.assert_allclose(keras.losses.Huber(delta=0.5)(y_true, y_pred), huber.mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(keras.losses.Huber(reduction="sum")(y_true, y_pred),
                               np.where(np.abs(err) <= 1, 0.5 * err ** 2,
                                        np.abs(err) - 0.5).mean(-1).sum(), rtol=1e-5)
    np.testing.assert_allclose(keras.losses.Huber(reduction=None)(y_true, y_pred),
                               np.where(np.abs(err) <= 1, 0.5 * err ** 2,
                                        np.abs(err) - 0.5).mean(-1), rtol=1e-5)
    p = np.array([[0.2, 0.3, 0.5]], np.float32)
    q = np.array([[0.1, 0.6, 0.3]], np.float32)
    np.testing.assert_allclose(keras.losses.KLDivergence()(p, q), np.sum(p * np.log(p / q)),
                               rtol=1e-5)
    # Label smoothing: y * (1 - s) + s / num_classes.
    y1 = np.array([[0.0, 0.0, 1.0]], np.float32)
    smoothed = y1 * 0.9 + 0.1 / 3
    np.testing.assert_allclose(
        keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(y1, q),
        -np.sum(smoothed * np.log(q)), rtol=1e-5)
    # Binary focal crossentropy: -(1 - p_t) ** gamma * log(p_t), no alpha balancing by default.
    yt = np.array([[1.0], [0.0]], np.float32)
    yp = np.array([[0.8], [0.3]], np.float32)
    pt = np.where(yt == 1, yp, 1 - yp)
    np.testing.assert_allclose(keras.losses.BinaryFocalCrossentropy(gamma=2.0)(yt, yp),
                               np.mean(-((1 - pt) ** 2) * np.log(pt)), rtol=1e-4)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    logits = np.array([[1.0, 2.0, 0.5]], np.float32)
    np.testing.assert_allclose(sparse(np.array([1]), logits),
                               -np.log(np.exp(2.0) / np.exp(logits).sum()), rtol=1e-5)


def test_huber_regression_cnn_trains():
    keras.utils.set_random_seed(19)
    x = images(32, 6, 6, 1)
    y = (x.mean(axis=(1, 2, 3)) * 4)[:, None].astype(np.float32)
    model = keras.Sequential([keras.Input(shape=(6, 6, 1)), layers.Conv2D(4, 3),
                              layers.PReLU(), layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Nadam(1e-2), loss=keras.losses.Huber(),
                  metrics=[keras.metrics.RootMeanSquaredError(), "mae"])
    history = model.fit(x, y, epochs=6, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert {"root_mean_squared_error", "mae"} <= set(history.history)


# --- 20. Optimizers ------------------------------------------------------------


def one_step(optimizer, w0, g):
    """A (1, n) kernel after one ``optimizer.apply`` of gradient ``g``."""
    layer = layers.Dense(len(w0), use_bias=False)
    layer.build((None, 1))
    layer.kernel.assign(np.array([w0], np.float32))
    optimizer.apply([np.array([g], np.float32)], [layer.kernel])
    return layer.kernel.numpy()[0]


def test_optimizer_first_steps_match_formulas():
    w0, g = [1.0, -2.0, 0.5], [0.5, -1.0, 2.0]
    w, gr = np.array(w0), np.array(g)
    # AdamW: decoupled decay w -= lr * wd * w, then Adam's first step lr * sign-like m/sqrt(v).
    out = one_step(keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5), w0, g)
    m, v = 0.1 * gr, 0.001 * gr ** 2
    m_hat, v_hat = m / 0.1, v / 0.001
    expected = w * (1 - 0.1 * 0.5) - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-7)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # Lion: w -= lr * sign(beta_1 * m + (1 - beta_1) * g), m = 0 at first.
    out = one_step(keras.optimizers.Lion(learning_rate=0.01), w0, g)
    np.testing.assert_allclose(out, w - 0.01 * np.sign(gr), rtol=1e-6)
    # Adagrad: accumulator starts at 0.1; w -= lr * g / sqrt(acc + g^2).
    out = one_step(keras.optimizers.Adagrad(learning_rate=0.1), w0, g)
    np.testing.assert_allclose(out, w - 0.1 * gr / np.sqrt(0.1 + gr ** 2), rtol=1e-4)
    # SGD with clipnorm: the gradient is rescaled to norm 1.
    out = one_step(keras.optimizers.SGD(learning_rate=1.0, clipnorm=1.0), w0, g)
    np.testing.assert_allclose(out, w - gr / np.linalg.norm(gr), rtol=1e-5)
    # clipvalue clips elementwise.
    out = one_step(keras.optimizers.SGD(learning_rate=1.0, clipvalue=0.75), w0, g)
    np.testing.assert_allclose(out, w - np.clip(gr, -0.75, 0.75), rtol=1e-6)
    # Adamax: m = (1-b1) g, u = |g|; w -= lr / (1 - b1) * m / (u + eps).
    out = one_step(keras.optimizers.Adamax(learning_rate=0.1), w0, g)
    np.testing.assert_allclose(out, w - 0.1 * np.sign(gr), rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nadam", "rmsprop", "adagrad",
                                       "adadelta", "adamax", "lion", "sgd"])
def test_every_optimizer_string_trains_a_cnn_and_reloads(optimizer, tmp_path):
    x = images(16, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(20)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    reloaded = roundtrip(model, tmp_path)
    assert type(reloaded.optimizer) is type(model.optimizer)
    # The optimizer's state comes back too: one more step matches.
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    reloaded.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_zero_learning_rate_is_accepted():
    opt = keras.optimizers.SGD(learning_rate=0.0)
    assert float(opt.learning_rate) == 0.0


@pytest.mark.xfail(strict=True, raises=NotImplementedError, reason=(
    "keras.callbacks.SwapEMAWeights is not implemented (it raises NotImplementedError), "
    "although the optimizers now keep the moving averages with use_ema=True."))
def test_ema_weights_are_swapped_in_for_evaluation():
    x = images(16, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(21)
    model.compile(optimizer=keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    seen = {}

    class Grab(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen["test"] = [w.copy() for w in self.model.get_weights()]

        def on_epoch_end(self, epoch, logs=None):
            seen["train"] = [w.copy() for w in self.model.get_weights()]

    model.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=0,
              callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True), Grab()])
    # During evaluation the weights are the EMA ones, then the trained ones come back.
    assert any(not np.allclose(a, b) for a, b in zip(seen["test"], seen["train"]))


# --- 21. BackupAndRestore and ModelCheckpoint ----------------------------------


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("Interrupting!")


def test_backup_and_restore_resumes_after_an_interruption(tmp_path):
    x = images(16, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(22)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    backup = keras.callbacks.BackupAndRestore(backup_dir=str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="Interrupting"):
        model.fit(x, y, epochs=5, batch_size=8, callbacks=[backup, InterruptAt(2)], verbose=0)
    history = model.fit(x, y, epochs=5, batch_size=8, callbacks=[backup], verbose=0)
    # Two epochs were done before the interruption: training resumes at epoch 2.
    assert len(history.history["loss"]) == 3
    assert int(model.optimizer.iterations) == 5 * 2


def test_model_checkpoint_best_weights_only(tmp_path):
    x = images(16, 6, 6, 1)
    y = separable_labels(x)
    model = small_classifier(23)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    path = str(tmp_path / "best.weights.h5")
    cb = keras.callbacks.ModelCheckpoint(path, monitor="val_accuracy", mode="max",
                                         save_best_only=True, save_weights_only=True)
    history = model.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), callbacks=[cb],
                        verbose=0)
    fresh = small_classifier(99)
    fresh.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    fresh.load_weights(path)
    best = fresh.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    np.testing.assert_allclose(best, max(history.history["val_accuracy"]), rtol=1e-6)


# --- 22. Transfer learning: a frozen base with BatchNormalization ---------------


def test_fine_tuning_a_frozen_base_keeps_batchnorm_statistics():
    keras.utils.set_random_seed(24)
    x = images(24, 8, 8, 3)
    y = separable_labels(x)
    base = build_mobilenet()
    base_model = keras.Model(base.input, base.layers[-2].output, name="base")
    base_model.trainable = False
    inputs = keras.Input(shape=(8, 8, 3))
    h = base_model(inputs, training=False)
    h = layers.Dropout(0.2)(h)
    outputs = layers.Dense(2)(h)
    model = keras.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2
    before = [w.copy() for w in base_model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(before, base_model.get_weights()):
        np.testing.assert_array_equal(a, b)  # moving statistics included
    # Unfreeze and fine-tune with a low learning rate, BN still in inference mode.
    base_model.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    bn = [layer for layer in base_model.layers if isinstance(layer, layers.BatchNormalization)]
    for layer in bn:
        i = base_model.weights.index(layer.moving_mean)
        np.testing.assert_array_equal(layer.moving_mean.numpy(), before[i])
    assert any(not np.array_equal(a, b) for a, b in zip(before, base_model.get_weights()))


# --- 23. A convolutional denoising autoencoder --------------------------------


def test_conv_autoencoder_with_transpose_convolutions(tmp_path):
    keras.utils.set_random_seed(25)
    clean = images(24, 8, 8, 1)
    noisy = np.clip(clean + 0.2 * np.random.default_rng(25).standard_normal(clean.shape),
                    0, 1).astype(np.float32)
    inputs = keras.Input(shape=(8, 8, 1))
    h = layers.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    h = layers.MaxPooling2D((2, 2), padding="same")(h)
    h = layers.Conv2D(8, 3, activation="relu", padding="same")(h)
    h = layers.BatchNormalization()(h)
    h = layers.Conv2DTranspose(8, 3, strides=2, activation="relu", padding="same")(h)
    h = layers.UpSampling2D(1)(h)
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same")(h)
    autoencoder = keras.Model(inputs, outputs)
    assert autoencoder.output_shape == (None, 8, 8, 1)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    history = autoencoder.fit(noisy, clean, epochs=4, batch_size=8, shuffle=True,
                              validation_data=(noisy, clean), verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    reloaded = roundtrip(autoencoder, tmp_path)
    np.testing.assert_allclose(reloaded.predict(noisy, verbose=0),
                               autoencoder.predict(noisy, verbose=0), rtol=1e-5, atol=1e-6)


# --- 24. Several inputs -----------------------------------------------------------


def test_image_and_metadata_inputs_by_name(tmp_path):
    keras.utils.set_random_seed(26)
    img = keras.Input(shape=(6, 6, 1), name="image")
    meta = keras.Input(shape=(3,), name="meta")
    tokens = keras.Input(shape=(5,), dtype="int32", name="tokens")
    a = layers.Conv2D(4, 3, activation="relu")(img)
    a = layers.GlobalAveragePooling2D()(a)
    b = layers.Dense(4, activation="relu")(meta)
    c = layers.Embedding(10, 4)(tokens)
    c = layers.GlobalAveragePooling1D()(c)
    h = layers.concatenate([a, b, c])
    out = layers.Dense(1, activation="sigmoid", name="out")(h)
    model = keras.Model(inputs=[img, meta, tokens], outputs=out)
    x_img = images(20, 6, 6, 1)
    x_meta = np.random.default_rng(1).random((20, 3)).astype(np.float32)
    x_tok = np.random.default_rng(2).integers(0, 10, (20, 5)).astype(np.int32)
    y = (x_meta[:, 0] > 0.5).astype(np.float32)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit({"image": x_img, "meta": x_meta, "tokens": x_tok}, y, epochs=3, batch_size=5,
              verbose=0)
    by_name = model.predict({"image": x_img, "meta": x_meta, "tokens": x_tok}, verbose=0)
    by_order = model.predict([x_img, x_meta, x_tok], verbose=0)
    np.testing.assert_array_equal(by_name, by_order)
    reloaded = roundtrip(model, tmp_path)
    np.testing.assert_allclose(reloaded.predict([x_img, x_meta, x_tok], verbose=0), by_order,
                               rtol=1e-5, atol=1e-6)


# --- 25. Reproducibility and cloning ---------------------------------------------


def test_set_random_seed_makes_training_reproducible():
    x = images(16, 8, 8, 3)
    y = separable_labels(x, 3)

    def run():
        keras.utils.set_random_seed(42)
        model = build_vgg()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_clone_model_and_model_from_json():
    model = build_mobilenet()
    x = images(4)
    clone = keras.models.clone_model(model)
    assert [type(a) for a in clone.layers] == [type(b) for b in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    rebuilt = keras.models.model_from_json(model.to_json())
    assert rebuilt.count_params() == model.count_params()
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_use_ema_leaves_the_moving_average_in_the_weights_after_fit():
    x = np.ones((4, 1), np.float32)
    y = np.zeros((4, 1), np.float32)
    model = keras.Sequential([keras.Input(shape=(1,)),
                              layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(optimizer=keras.optimizers.SGD(0.25, use_ema=True, ema_momentum=0.5),
                  loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    # mse gradient 2 * w: w goes 1 -> 0.5 -> 0.25. The average starts at the first
    # updated value (momentum 0 on the first step): 0.5, then 0.5 * 0.5 + 0.5 * 0.25.
    np.testing.assert_allclose(model.get_weights()[0], [[0.375]], rtol=1e-6)

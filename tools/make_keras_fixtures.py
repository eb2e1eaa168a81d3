"""Write the Keras 3 fixture files of tests/fixtures/keras/, and check that
Keras 3 loads the files fastconv writes.

Needs TensorFlow and Keras 3, which fastconv's tests never do; run it in a
virtual environment of its own::

    python -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 keras==3.15.1 h5py
    /tmp/tfvenv/bin/python tools/make_keras_fixtures.py make

Each model NAME becomes ``NAME.keras`` (Keras 3's archive), ``NAME.weights.h5``
(``save_weights``), ``NAME.legacy.h5`` for the models Keras 3 still writes in
the Keras 2 HDF5 format, and ``NAME.npz`` holding an input batch ``x`` (or
``x0``, ``x1``... for several inputs) and Keras' predictions ``y``.

``make-keras2`` writes ``keras2_*.h5`` with tf.keras 2 (``pip install
tf-keras~=2.21.0`` in the same environment).

The other direction, in two steps::

    PYTHONPATH=src python tools/make_keras_fixtures.py write-fastconv /tmp/fc
    /tmp/tfvenv/bin/python tools/make_keras_fixtures.py check-fastconv /tmp/fc

The first (fastconv, no Keras) saves each fastconv-built fixture model as
``.keras``, ``.weights.h5`` and legacy ``.h5`` with its input and prediction;
the second loads them with ``keras.models.load_model`` / ``load_weights``, compares
Keras' predictions and writes the outcome to
``tests/fixtures/keras/fastconv_written_check.json``.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                        "fixtures", "keras")


def _models(keras):
    L = keras.layers
    rng = np.random.default_rng(0)

    def x(*shape):
        return rng.standard_normal((2, *shape)).astype("float32")

    models = {}

    seq = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu"),
                            L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                            L.Dropout(0.25), L.Dense(3, activation="softmax")],
                           name="seq_cnn")
    models["sequential_cnn"] = (seq, [x(8, 8, 3)], "train")

    inp = keras.Input((8, 8, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(4, 1, padding="same")(inp)
    c = L.Add()([a, b])
    d = L.Concatenate()([c, a])
    d = L.GlobalAveragePooling2D()(d)
    out = L.Dense(2)(d)
    models["functional_branches"] = (keras.Model(inp, out, name="branches"), [x(8, 8, 3)],
                                     "train")

    inner = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3), L.ReLU()], name="inner")
    inp = keras.Input((6, 6, 2))
    h = inner(inp)
    h = L.Flatten()(h)
    out = L.Dense(2)(h)
    models["nested"] = (keras.Model(inp, out, name="outer"), [x(6, 6, 2)], "train")

    inp1, inp2 = keras.Input((5,), name="a"), keras.Input((5,), name="b")
    outs = [L.Add()([inp1, inp2]), L.Subtract()([inp1, inp2]), L.Multiply()([inp1, inp2]),
            L.Average()([inp1, inp2]), L.Maximum()([inp1, inp2]), L.Minimum()([inp1, inp2]),
            L.Dot(axes=1)([inp1, inp2])]
    out = L.Dense(2)(L.Concatenate()(outs))
    models["merges"] = (keras.Model([inp1, inp2], out, name="merges"), [x(5), x(5)], None)

    models["conv1d"] = (keras.Sequential([
        keras.Input((10, 3)), L.Conv1D(4, 3, padding="causal", dilation_rate=2),
        L.Conv1DTranspose(3, 3, strides=2), L.DepthwiseConv1D(3, depth_multiplier=2),
        L.SeparableConv1D(2, 3, padding="same"), L.MaxPooling1D(), L.AveragePooling1D(2),
        L.GlobalMaxPooling1D()], name="conv1d"), [x(10, 3)], "train")
    models["conv2d"] = (keras.Sequential([
        keras.Input((9, 9, 2)), L.Conv2D(3, 3, strides=2, padding="same", use_bias=False),
        L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="tanh"),
        L.DepthwiseConv2D(3, depth_multiplier=2), L.SeparableConv2D(3, 3, padding="same"),
        L.AveragePooling2D(2), L.UpSampling2D(), L.ZeroPadding2D(1), L.Cropping2D(1),
        L.GlobalMaxPooling2D()], name="conv2d"), [x(9, 9, 2)], "train")
    models["conv3d"] = (keras.Sequential([
        keras.Input((5, 5, 5, 2)), L.Conv3D(3, 2), L.Conv3DTranspose(2, 2, strides=2),
        L.MaxPooling3D(), L.AveragePooling3D(pool_size=2, padding="same"),
        L.GlobalAveragePooling3D()], name="conv3d"), [x(5, 5, 5, 2)], None)
    models["normalization"] = (keras.Sequential([
        keras.Input((4, 4, 6)), L.BatchNormalization(momentum=0.9, epsilon=1e-3),
        L.LayerNormalization(), L.GroupNormalization(groups=3), L.UnitNormalization(),
        L.Flatten(), L.Dense(2)], name="normalization"), [x(4, 4, 6)], "train")
    models["activations"] = (keras.Sequential([
        keras.Input((6,)), L.Dense(6), L.ReLU(max_value=2.0), L.Dense(6), L.LeakyReLU(0.2),
        L.Dense(6), L.ELU(), L.Dense(6), L.PReLU(), L.Activation("swish"), L.Dense(4),
        L.Softmax()], name="activations"), [x(6)], "train")
    models["reshaping"] = (keras.Sequential([
        keras.Input((4, 6)), L.Reshape((6, 4)), L.Permute((2, 1)), L.Flatten(),
        L.RepeatVector(2), L.Flatten(), L.Dense(3)], name="reshaping"), [x(4, 6)], None)

    tokens = rng.integers(0, 20, size=(2, 7)).astype("int32")
    models["embedding"] = (keras.Sequential([
        keras.Input((7,), dtype="int32"), L.Embedding(20, 4), L.GlobalAveragePooling1D(),
        L.Dense(2)], name="embedding"), [tokens], None)

    norm = L.Normalization()
    norm.adapt(rng.standard_normal((16, 3)).astype("float32") * 3 + 1)
    models["preprocessing"] = (keras.Sequential([
        keras.Input((10, 10, 3)), L.Rescaling(1 / 255.0, offset=-0.5), L.Resizing(8, 8),
        L.CenterCrop(6, 6), L.RandomFlip(), norm, L.Flatten(), L.Dense(2)],
        name="preprocessing"), [x(10, 10, 3)], None)

    for model, _, _ in models.values():
        model.summary(print_fn=lambda *a, **k: None)
    return models


def _compile_and_train(keras, model, inputs):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    y = model.predict(inputs, verbose=0)
    model.train_on_batch(inputs, np.zeros_like(y))


def _npz(path, inputs, y):
    arrays = {"x": inputs[0]} if len(inputs) == 1 else {f"x{i}": a for i, a in enumerate(inputs)}
    np.savez(path, y=y, **arrays)


# The fixtures stay small: every model as .keras, a few also in the other
# formats (HDF5 files carry some 20 KB of structure each).
WEIGHTS_H5 = ("sequential_cnn", "functional_branches")
LEGACY_H5 = ("sequential_cnn", "functional_branches")


def make(keras):
    os.makedirs(FIXTURES, exist_ok=True)
    legacy_written = {}
    for name, (model, inputs, train) in _models(keras).items():
        if train:
            _compile_and_train(keras, model, inputs)
        feed = inputs[0] if len(inputs) == 1 else inputs
        y = model.predict(feed, verbose=0)
        base = os.path.join(FIXTURES, name)
        model.save(base + ".keras")
        if name in WEIGHTS_H5:
            model.save_weights(base + ".weights.h5")
        if name in LEGACY_H5:
            try:
                model.save(base + ".legacy.h5")
                legacy_written[name] = True
            except Exception as exc:  # noqa: BLE001 (recorded: what Keras 3 cannot write)
                legacy_written[name] = f"{type(exc).__name__}: {exc}"[:200]
                if os.path.exists(base + ".legacy.h5"):
                    os.unlink(base + ".legacy.h5")
        _npz(base + ".npz", inputs, y)
        # The files must read back in Keras itself.
        again = keras.models.load_model(base + ".keras")
        np.testing.assert_allclose(again.predict(feed, verbose=0), y, rtol=1e-5, atol=1e-6)
    # Lambda: Keras stores Python bytecode in the config; fastconv must refuse it.
    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)],
                           name="lambda")
    lam.save(os.path.join(FIXTURES, "lambda.keras"))
    with open(os.path.join(FIXTURES, "legacy_written.json"), "w") as f:
        json.dump({"keras_version": keras.__version__, "legacy_h5": legacy_written}, f,
                  indent=1, sort_keys=True)


def make_keras2():
    """Keras 2 full-model HDF5 files, written by tf.keras 2 (package tf-keras,
    ``pip install tf-keras~=2.21.0`` beside TensorFlow)."""
    import tf_keras as k2

    L = k2.layers
    rng = np.random.default_rng(2)
    seq = k2.Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 3)),
                         L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                         L.Dropout(0.2), L.Dense(3, activation="softmax")])
    inp = k2.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.DepthwiseConv2D(3, padding="same")(inp)
    c = L.Concatenate()([a, b])
    c = L.AveragePooling2D()(c)
    out = L.Dense(2)(L.GlobalMaxPooling2D()(c))
    func = k2.Model(inp, out)
    for name, model in (("keras2_sequential", seq), ("keras2_functional", func)):
        x = rng.standard_normal((2, 8, 8, 3)).astype("float32")
        model.compile(optimizer="adam", loss="mse")
        model.train_on_batch(x, np.zeros_like(model.predict(x, verbose=0)))
        base = os.path.join(FIXTURES, name)
        model.save(base + ".h5", save_format="h5")
        np.savez(base + ".npz", x=x, y=model.predict(x, verbose=0))


def _save_legacy_h5(model, path):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the format is legacy: known
        model.save(path)


def _check_legacy_h5(keras, path, feed, expected, record):
    """Keras' load_model of the legacy .h5 file fastconv wrote."""
    try:
        model = keras.models.load_model(path)
        y = model.predict(feed, verbose=0)
        record["legacy_h5_max_abs_diff"] = float(np.max(np.abs(y - expected)))
        record["legacy_h5_compiled"] = bool(getattr(model, "compiled", False))
        record["legacy_h5_optimizer_iterations"] = (
            int(model.optimizer.iterations) if record["legacy_h5_compiled"] else 0)
        return record["legacy_h5_max_abs_diff"] < 1e-4
    except Exception as exc:  # noqa: BLE001 (the outcome is the record)
        record["legacy_h5_error"] = f"{type(exc).__name__}: {exc}"[:500]
        return False


def write_fastconv(directory):
    """fastconv side of the reverse check: no Keras here."""
    import fastconv
    from fastconv import layers as L

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(1)
    models = {
        "fc_sequential": (fastconv.Sequential([
            fastconv.Input((8, 8, 3)), L.Conv2D(4, 3, activation="relu"),
            L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dropout(0.25),
            L.Dense(3, activation="softmax")]), (8, 8, 3), True),
        "fc_conv_family": (fastconv.Sequential([
            fastconv.Input((9, 9, 2)), L.Conv2DTranspose(3, 3, strides=2, padding="same"),
            L.DepthwiseConv2D(3), L.SeparableConv2D(3, 3), L.LayerNormalization(),
            L.GlobalAveragePooling2D(), L.Dense(2)]), (9, 9, 2), True),
    }
    models["fc_rmsprop"] = (fastconv.Sequential([
        fastconv.Input((5, 5, 2)), L.Conv2D(2, 3), L.Flatten(), L.Dense(2)]), (5, 5, 2),
        fastconv.optimizers.RMSprop(momentum=0.5, centered=True))
    inp = fastconv.Input((6, 6, 2))
    a = L.Conv2D(3, 3, padding="same")(inp)
    b = L.Conv2D(3, 1, padding="same")(inp)
    inner = fastconv.Sequential([fastconv.Input((6, 6, 3)), L.Conv2D(2, 3), L.ReLU()])
    h = L.Flatten()(inner(L.Add()([a, b])))
    models["fc_functional_nested"] = (fastconv.Model(inp, L.Dense(2)(h)), (6, 6, 2), False)
    for name, (model, shape, train) in models.items():
        xb = rng.standard_normal((2, *shape)).astype("float32")
        if train:
            model.compile(optimizer="adam" if train is True else train, loss="mse")
            model.train_on_batch(xb, np.zeros_like(model.predict(xb, verbose=0)))
        base = os.path.join(directory, name)
        model.save(base + ".keras")
        model.save_weights(base + ".weights.h5")
        _save_legacy_h5(model, base + ".h5")
        np.savez(base + ".npz", x=xb, y=model.predict(xb, verbose=0))
    # Every Keras fixture, read by fastconv and written again.
    for entry in sorted(os.listdir(FIXTURES)):
        if not entry.endswith(".npz") or entry.startswith("keras2_"):
            continue
        name = entry[:-4]
        model = fastconv.models.load_model(os.path.join(FIXTURES, name + ".keras"))
        data = dict(np.load(os.path.join(FIXTURES, entry)))
        base = os.path.join(directory, "resaved_" + name)
        model.save(base + ".keras")
        model.save_weights(base + ".weights.h5")
        _save_legacy_h5(model, base + ".h5")
        np.savez(base + ".npz", **data)


def check_fastconv(keras, directory):
    results = {"keras_version": keras.__version__, "models": {}}
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".npz"):
            continue
        name = entry[:-4]
        data = np.load(os.path.join(directory, entry))
        base = os.path.join(directory, name)
        record = {}
        try:
            model = keras.models.load_model(base + ".keras")
            xs = [data[k] for k in sorted(data.files) if k.startswith("x")]
            feed = xs[0] if len(xs) == 1 else xs
            y = model.predict(feed, verbose=0)
            record["load_model_max_abs_diff"] = float(np.max(np.abs(y - data["y"])))
            record["compiled"] = bool(getattr(model, "compiled", False))
            record["optimizer_variables"] = (len(model.optimizer.variables)
                                             if record["compiled"] else 0)
            record["optimizer_iterations"] = (int(model.optimizer.iterations)
                                              if record["compiled"] else 0)
            record["optimizer"] = (type(model.optimizer).__name__ if record["compiled"]
                                   else None)
            fresh = keras.models.clone_model(model)
            if record["compiled"]:
                fresh.compile(optimizer=type(model.optimizer).from_config(
                    model.optimizer.get_config()), loss="mse")
                fresh.optimizer.build(fresh.trainable_variables)
            fresh.load_weights(base + ".weights.h5")
            y2 = fresh.predict(feed, verbose=0)
            record["load_weights_max_abs_diff"] = float(np.max(np.abs(y2 - data["y"])))
            record["ok"] = (record["load_model_max_abs_diff"] < 1e-4
                            and record["load_weights_max_abs_diff"] < 1e-4)
            if os.path.exists(base + ".h5"):
                record["ok"] = (_check_legacy_h5(keras, base + ".h5", feed, data["y"], record)
                                and record["ok"])
        except Exception as exc:  # noqa: BLE001 (the outcome is the record)
            record["ok"] = False
            record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        results["models"][name] = record
        print(name, record)
    with open(os.path.join(FIXTURES, "fastconv_written_check.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    return all(r["ok"] for r in results["models"].values())


def main(argv):
    if len(argv) < 1 or argv[0] not in ("make", "make-keras2", "write-fastconv",
                                        "check-fastconv"):
        print(__doc__)
        return 2
    if argv[0] == "write-fastconv":
        write_fastconv(argv[1])
        return 0
    if argv[0] == "make-keras2":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        make_keras2()
        return 0
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    keras.utils.set_random_seed(0)
    if argv[0] == "make":
        make(keras)
        return 0
    return 0 if check_fastconv(keras, argv[1]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

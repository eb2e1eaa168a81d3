"""Keras 3's own files (.keras, .weights.h5) and Keras 2's legacy .h5.

The fixtures in tests/fixtures/keras/ were written by Keras 3.15.1 with
TensorFlow (tools/make_keras_fixtures.py); each NAME.npz holds the input
batch and Keras' own predictions, so every comparison here is against Keras.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import fastconv
from fastconv import layers, models

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
NAMES = sorted(f[:-4] for f in os.listdir(FIXTURES)
               if f.endswith(".npz") and not f.startswith("keras2_"))
COMPILED = ("sequential_cnn", "functional_branches", "nested", "conv1d", "conv2d",
            "normalization", "activations")


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


def inputs_and_keras_output(name: str):
    data = np.load(fixture(name + ".npz"))
    xs = [data[k] for k in sorted(data.files) if k.startswith("x")]
    return (xs[0] if len(xs) == 1 else xs), data["y"]


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2e-6)


def h5_layout(f) -> dict:
    """path -> (shape, dtype) of every dataset, and path -> name of every
    vars group."""
    out = {}

    def visit(path, node):
        if isinstance(node, h5py.Dataset):
            out[path] = (tuple(node.shape), node.dtype.str)
        elif "name" in node.attrs:
            out[path] = ("name", str(node.attrs["name"]))
    f.visititems(visit)
    return out


def archive_h5(path) -> h5py.File:
    with zipfile.ZipFile(path) as archive:
        return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")


# ----------------------------------------------------------------------------
# files written by Keras


@pytest.mark.parametrize("name", NAMES)
def test_keras_archive_predicts_as_keras(name):
    x, expected = inputs_and_keras_output(name)
    model = models.load_model(fixture(name + ".keras"))
    assert_close(model.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", [n for n in NAMES if os.path.exists(fixture(n + ".legacy.h5"))])
def test_legacy_h5_predicts_as_keras(name):
    x, expected = inputs_and_keras_output(name)
    model = models.load_model(fixture(name + ".legacy.h5"))
    assert_close(model.predict(x, verbose=0), expected)
    assert model.compiled == (name in COMPILED)


@pytest.mark.parametrize("name", ["keras2_sequential", "keras2_functional"])
def test_tf_keras_2_h5_predicts_as_keras(name):
    """Written by tf.keras 2 (Keras 2 configs: batch_input_shape, list-style
    inbound nodes, BatchNormalization axis lists, "Custom>Adam")."""
    x, expected = inputs_and_keras_output(name)
    model = models.load_model(fixture(name + ".h5"))
    assert_close(model.predict(x, verbose=0), expected)
    assert model.compiled and type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(1e-3)
    weights_only = models.load_model(fixture(name + ".h5"), compile=False)
    for w in weights_only.weights:
        w.value[...] = 0
    weights_only.load_weights(fixture(name + ".h5"))
    assert_close(weights_only.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", [n for n in NAMES if os.path.exists(fixture(n + ".weights.h5"))])
def test_keras_weights_file_loads(name):
    x, expected = inputs_and_keras_output(name)
    model = models.load_model(fixture(name + ".keras"), compile=False)
    for w in model.weights:
        w.value[...] = 0
    model.load_weights(fixture(name + ".weights.h5"))
    assert_close(model.predict(x, verbose=0), expected)


@pytest.mark.parametrize("name", ["sequential_cnn", "nested", "conv2d"])
def test_optimizer_state_is_read_from_keras_archive(name):
    model = models.load_model(fixture(name + ".keras"))
    assert model.compiled and type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.iterations == 1
    state = model.optimizer.get_state()
    with archive_h5(fixture(name + ".keras")) as f:
        stored = f["optimizer/vars"]
        assert model.optimizer.learning_rate == pytest.approx(float(stored["1"][()]))
        # Keras' order: iterations, learning rate, then (momentum, velocity)
        # of each trainable weight in turn.
        for i in range(len(model.trainable_weights)):
            np.testing.assert_array_equal(state[f"momentum_{i}"], stored[str(2 + 2 * i)][()])
            np.testing.assert_array_equal(state[f"velocity_{i}"], stored[str(3 + 2 * i)][()])


def test_keras_compile_config_is_applied():
    model = models.load_model(fixture("sequential_cnn.keras"))
    x, _ = inputs_and_keras_output("sequential_cnn")
    logs = model.evaluate(x, np.zeros((2, 3), np.float32), verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mae"}
    uncompiled = models.load_model(fixture("sequential_cnn.keras"), compile=False)
    assert not uncompiled.compiled


# ----------------------------------------------------------------------------
# files written by fastconv


@pytest.mark.parametrize("name", ["sequential_cnn", "functional_branches", "nested", "conv1d",
                                  "conv2d", "merges", "preprocessing"])
def test_written_archive_has_keras_layout(name, tmp_path):
    """Re-saved by fastconv, a Keras model's archive holds the same members,
    weight paths, shapes, dtypes and object classes as Keras' own."""
    model = models.load_model(fixture(name + ".keras"))
    out = tmp_path / "again.keras"
    model.save(out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json",
                                              "model.weights.h5"]
        ours = json.loads(archive.read("config.json"))
        assert set(json.loads(archive.read("metadata.json"))) >= {"keras_version",
                                                                  "date_saved"}
    with zipfile.ZipFile(fixture(name + ".keras")) as archive:
        theirs = json.loads(archive.read("config.json"))
    with archive_h5(out) as a, archive_h5(fixture(name + ".keras")) as b:
        assert h5_layout(a) == h5_layout(b)

    def classes(spec):
        if isinstance(spec, dict):
            here = [(spec.get("module"), spec["class_name"])] if "module" in spec else []
            return here + [c for k, v in spec.items() if k not in ("inbound_nodes",)
                           for c in classes(v)]
        if isinstance(spec, list):
            return [c for v in spec for c in classes(v)]
        return []
    assert classes(ours["config"]) == classes(theirs["config"])
    assert ours["class_name"] == theirs["class_name"]
    assert bool(ours["compile_config"]) == bool(theirs["compile_config"])
    if theirs["compile_config"]:
        assert (classes(ours["compile_config"]["optimizer"])
                == classes(theirs["compile_config"]["optimizer"]))
    assert ours.get("build_config") == theirs.get("build_config")


def test_keras_loaded_what_fastconv_wrote():
    """tools/make_keras_fixtures.py check-fastconv: Keras 3 loaded fastconv's
    .keras and .weights.h5 files and predicted the same."""
    with open(fixture("fastconv_written_check.json")) as f:
        record = json.load(f)
    assert record["keras_version"].startswith("3.")
    # fastconv-built models, and every Keras fixture read and written again
    # by fastconv (whose Keras predictions are those of the .npz).
    assert set(record["models"]) == {"fc_sequential", "fc_conv_family", "fc_rmsprop",
                                     "fc_functional_nested"} | {f"resaved_{n}" for n in NAMES}
    for result in record["models"].values():
        assert result["ok"], result
        assert result["load_model_max_abs_diff"] < 1e-4
    assert record["models"]["fc_sequential"]["optimizer_iterations"] == 1
    # RMSprop(momentum, centered): iterations, learning rate, 3 slots x 4 weights.
    assert record["models"]["fc_rmsprop"]["optimizer_variables"] == 14


def small_model():
    fastconv.backend.clear_session()
    inp = fastconv.Input((6, 6, 2))
    a = layers.Conv2D(3, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(3, 1, padding="same")(inp)
    h = layers.BatchNormalization()(layers.Add()([a, b]))
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(h))
    model = fastconv.Model(inp, out)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).standard_normal((4, 6, 6, 2)).astype(np.float32)
    model.fit(x, np.ones((4, 2), np.float32), epochs=2, verbose=0)
    return model, x


def test_keras_round_trip_keeps_predictions_and_optimizer_state(tmp_path):
    model, x = small_model()
    model.save(tmp_path / "m.keras")
    again = models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.optimizer.iterations == model.optimizer.iterations == 2
    for key, value in model.optimizer.get_state().items():
        np.testing.assert_allclose(again.optimizer.get_state()[key], value, rtol=1e-7)
    # Training goes on identically from the restored state.
    y = np.ones((4, 2), np.float32)
    model.train_on_batch(x, y)
    again.train_on_batch(x, y)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)


def test_weights_h5_round_trip(tmp_path):
    model, x = small_model()
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r") as f:
        assert "layers/conv2d/vars/0" in f and "layers/conv2d_1/vars/0" in f
        assert f["layers/batch_normalization/vars/3"].shape == (3,)
        assert "optimizer/vars/0" in f  # a compiled model's, as Keras
    fresh = models.clone_model(model)
    fresh.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_fastconv_format_keeps_its_extension(tmp_path):
    model, x = small_model()
    model.save(tmp_path / "m.fastconv")
    with zipfile.ZipFile(tmp_path / "m.fastconv") as archive:
        assert "weights.npz" in archive.namelist()
    # A fastconv archive named .keras (as fastconv wrote before) loads by content.
    shutil.copy(tmp_path / "m.fastconv", tmp_path / "old.keras")
    for path in ("m.fastconv", "old.keras"):
        again = models.load_model(tmp_path / path)
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("call, path, match", [
    ("save", "m.bin", "must end in one of"),
    ("save", "m", "must end in one of"),
    ("save_weights", "w.h5", r"\.weights\.h5"),
    ("save_weights", "w.keras", "must end in one of"),
])
def test_unknown_or_mismatched_extension_is_refused(call, path, match, tmp_path):
    model, _ = small_model()
    with pytest.raises(ValueError, match=match):
        getattr(model, call)(tmp_path / path)
    assert not os.listdir(tmp_path)


def test_load_with_unknown_extension_is_refused(tmp_path):
    shutil.copy(fixture("nested.keras"), tmp_path / "nested.txt")
    with pytest.raises(ValueError, match="extension decides the format"):
        models.load_model(tmp_path / "nested.txt")


def test_keras_write_is_atomic(tmp_path, monkeypatch):
    model, _ = small_model()
    model.save(tmp_path / "m.keras")
    before = (tmp_path / "m.keras").read_bytes()
    writestr = zipfile.ZipFile.writestr

    def failing(self, name, data, *args, **kwargs):
        if name == "model.weights.h5":
            raise OSError("disk full")
        return writestr(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").read_bytes() == before
    assert os.listdir(tmp_path) == ["m.keras"]


def test_without_h5py_the_error_says_what_to_install(tmp_path, monkeypatch):
    model, _ = small_model()
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'pip install "fastconv\[keras-files\]"'):
        model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ImportError, match=r'pip install "fastconv\[keras-files\]"'):
        models.load_model(fixture("nested.keras"))


# ----------------------------------------------------------------------------
# hostile and corrupt files


def rewrite_config(tmp_path, name, edit):
    """A copy of a Keras fixture whose config.json ``edit`` changed."""
    with zipfile.ZipFile(fixture(name + ".keras")) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    path = tmp_path / "crafted.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for n, payload in members.items():
            archive.writestr(n, payload)
    return path


def conv_layer(config):
    return next(s for s in config["config"]["layers"] if s["class_name"] == "Conv2D")


@pytest.mark.parametrize("edit, match", [
    (lambda c: conv_layer(c).update(class_name="NoSuchLayer"), "Unknown layer class 'NoSuchLayer'"),
    (lambda c: conv_layer(c).update(class_name="os.system"), "'os.system'"),
    (lambda c: conv_layer(c).update(module="builtins", class_name="eval"), "module 'builtins'"),
    (lambda c: conv_layer(c).update(module="os", class_name="system"), "module 'os'"),
    (lambda c: conv_layer(c)["config"]["kernel_initializer"].update(module="os",
                                                                     class_name="system"),
     "module 'os'"),
    (lambda c: conv_layer(c)["config"].update(quantization_config={"mode": "int8"}),
     "quantization_config"),
    (lambda c: conv_layer(c)["config"].update(
        dtype={"module": "keras", "class_name": "DTypePolicy",
               "config": {"name": "mixed_float16"}}), "mixed_float16"),
    (lambda c: c.update(class_name="subprocess.Popen"), "subprocess.Popen"),
])
def test_crafted_config_is_refused(tmp_path, edit, match):
    path = rewrite_config(tmp_path, "sequential_cnn", edit)
    with pytest.raises(ValueError, match=match) as info:
        models.load_model(path)
    assert "crafted.keras" in str(info.value)


def test_lambda_layer_is_refused_without_running_it():
    with pytest.raises(ValueError, match="Lambda.*bytecode") as info:
        models.load_model(fixture("lambda.keras"))
    assert "lambda.keras" in str(info.value)


def copy_h5(tmp_path, edit):
    path = tmp_path / "edited.weights.h5"
    shutil.copy(fixture("sequential_cnn.weights.h5"), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def keras_model():
    return models.load_model(fixture("sequential_cnn.keras"))


def test_truncated_weights_file_is_refused(tmp_path):
    with open(fixture("sequential_cnn.weights.h5"), "rb") as f:
        data = f.read()
    for cut in (100, len(data) // 2, len(data) - 10):
        (tmp_path / "cut.weights.h5").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.weights.h5"):
            keras_model().load_weights(tmp_path / "cut.weights.h5")


def test_wrong_shape_and_missing_weight_are_refused(tmp_path):
    def reshape(f):
        del f["layers/conv2d/vars/0"]
        f["layers/conv2d/vars/0"] = np.zeros((3, 3, 3, 5), np.float32)
    with pytest.raises(ValueError, match=r"edited.weights.h5.*\(3, 3, 3, 5\)"):
        keras_model().load_weights(copy_h5(tmp_path, reshape))

    def drop(f):
        del f["layers/dense"]
    with pytest.raises(ValueError, match="edited.weights.h5 holds no weights for layer 'dense'"):
        keras_model().load_weights(copy_h5(tmp_path, drop))

    def text(f):
        del f["layers/conv2d/vars/1"]
        f["layers/conv2d/vars/1"] = np.array([b"a", b"b", b"c", b"d"])
    with pytest.raises(ValueError, match="edited.weights.h5.*stored as"):
        keras_model().load_weights(copy_h5(tmp_path, text))


def test_failed_load_weights_leaves_model_unchanged(tmp_path):
    model = keras_model()
    before = [w.value.copy() for w in model.weights]

    def reshape(f):
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.zeros(7, np.float32)
    with pytest.raises(ValueError):
        model.load_weights(copy_h5(tmp_path, reshape))
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.value, b)


def test_corrupt_archive_members_are_refused(tmp_path):
    with zipfile.ZipFile(fixture("nested.keras")) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members["model.weights.h5"] = members["model.weights.h5"][:2000]
    with zipfile.ZipFile(tmp_path / "cut.keras", "w") as archive:
        for n, payload in members.items():
            archive.writestr(n, payload)
    with pytest.raises(ValueError, match="cut.keras"):
        models.load_model(tmp_path / "cut.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.keras"):
        models.load_model(tmp_path / "junk.keras")


def test_legacy_h5_with_hostile_config_is_refused(tmp_path):
    path = tmp_path / "hostile.h5"
    shutil.copy(fixture("sequential_cnn.legacy.h5"), path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = "Lambda"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="hostile.h5.*Lambda"):
        models.load_model(path)
    shutil.copy(fixture("sequential_cnn.weights.h5"), tmp_path / "weights_only.h5")
    with pytest.raises(ValueError, match="weights_only.h5.*no model_config"):
        models.load_model(tmp_path / "weights_only.h5")


@pytest.mark.parametrize("optimizer", [
    fastconv.optimizers.SGD(0.01, momentum=0.9), fastconv.optimizers.RMSprop(centered=True,
                                                                              momentum=0.5),
    fastconv.optimizers.Adagrad(), fastconv.optimizers.Adamax(), fastconv.optimizers.Adam(
        amsgrad=True)])
def test_optimizer_state_round_trip_in_keras_layout(optimizer, tmp_path):
    model, x = small_model()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, np.ones((4, 2), np.float32), epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    again = models.load_model(tmp_path / "m.keras")
    state, restored = model.optimizer.get_state(), again.optimizer.get_state()
    assert set(state) == set(restored)
    for key, value in state.items():
        np.testing.assert_allclose(restored[key], value, rtol=1e-7)


def test_nadam_state_in_keras_order(tmp_path):
    # Keras 3.15's Nadam variables (read off keras.optimizers.Nadam after a
    # step): iteration, learning_rate, then momentum and velocity per weight,
    # then its running product.
    model, x = small_model()
    model.compile(optimizer=fastconv.optimizers.Nadam(), loss="mse")
    model.fit(x, np.ones((4, 2), np.float32), epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    state = model.optimizer.get_state()
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
            group = f["optimizer/vars"]
            n = len(model.trainable_weights)
            assert len(group) == 2 + 2 * n + 1
            np.testing.assert_array_equal(group["2"][()], state["momentum_0"])
            np.testing.assert_array_equal(group["3"][()], state["velocity_0"])
            assert group[str(2 + 2 * n)][()] == pytest.approx(float(state["u_product"]))
    again = models.load_model(tmp_path / "m.keras")
    loaded = again.optimizer.get_state()
    assert sorted(loaded) == sorted(state)
    for key in state:
        np.testing.assert_allclose(loaded[key], state[key], rtol=1e-7)


def test_subclassed_model_is_refused_for_keras_format(tmp_path):
    @fastconv.saving.register_keras_serializable("KerasFilesTest")
    class Net(fastconv.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="Net cannot be saved in Keras' format.*fastconv"):
        model.save(tmp_path / "net.keras")
    assert not os.listdir(tmp_path)
    model.save(tmp_path / "net.fastconv")

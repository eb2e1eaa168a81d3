"""``model.save("m.h5")``: the legacy HDF5 file Keras 3 writes.

The layout is compared with tests/fixtures/keras/*.legacy.h5, written by
Keras 3.15.1 (tools/make_keras_fixtures.py): a model loaded from such a file
and saved again by fastconv must give the same groups, attributes, weight
names, dtypes and (bitwise) values.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import fastconv
from fastconv import layers, models, optimizers
from fastconv.saving import legacy_h5

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
LEGACY = ("sequential_cnn", "functional_branches")


def fixture(name: str) -> str:
    return os.path.join(FIXTURES, name)


def save_quietly(model, path, **kwargs):
    with pytest.warns(UserWarning, match="legacy"):
        model.save(path, **kwargs)


def rng_batch(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal((4, *shape)).astype("float32")


def sequential_cnn():
    model = fastconv.Sequential([
        fastconv.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dropout(0.25), layers.Dense(3, activation="softmax")], name="seq_cnn")
    return model, rng_batch(8, 8, 3)


def functional_branches():
    inp = fastconv.Input((8, 8, 3), name="image")
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(4, 1, padding="same")(inp)
    c = layers.Concatenate()([layers.Add()([a, b]), a])
    out = layers.Dense(2)(layers.GlobalAveragePooling2D()(c))
    return fastconv.Model(inp, out, name="branches"), rng_batch(8, 8, 3)


def nested():
    inner = fastconv.Sequential([fastconv.Input((6, 6, 2)), layers.Conv2D(3, 3, name="conv"),
                                 layers.BatchNormalization(name="bn"), layers.ReLU()],
                                name="inner")
    inp = fastconv.Input((6, 6, 2))
    out = layers.Dense(2)(layers.Flatten()(inner(inp)))
    return fastconv.Model(inp, out, name="outer"), rng_batch(6, 6, 2)


def trained(build, optimizer="adam"):
    model, x = build()
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    y = np.zeros_like(model.predict(x, verbose=0))
    model.train_on_batch(x, y + 0.5)  # moves the moving statistics and moments
    return model, x


# ----------------------------------------------------------------------------
# round trip in fastconv


@pytest.mark.parametrize("build", [sequential_cnn, functional_branches, nested])
@pytest.mark.parametrize("compiled", [True, False])
def test_round_trip_predicts_bitwise(build, compiled, tmp_path):
    model, x = trained(build) if compiled else build()
    save_quietly(model, tmp_path / "m.h5")
    again = models.load_model(tmp_path / "m.h5")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [w.path for w in again.weights] == [w.path for w in model.weights]
    for a, b in zip(again.weights, model.weights):
        np.testing.assert_array_equal(a.value, b.value)
    assert bool(getattr(again, "compiled", False)) is compiled
    # A fresh model of the same architecture takes the weights of the file.
    fresh = build()[0]
    fresh.load_weights(tmp_path / "m.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_hdf5_extension_is_written_too(tmp_path):
    model, x = sequential_cnn()
    save_quietly(model, tmp_path / "m.hdf5")
    with h5py.File(tmp_path / "m.hdf5", "r") as f:
        assert "model_config" in f.attrs
    np.testing.assert_array_equal(models.load_model(tmp_path / "m.hdf5").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_compile_settings_and_optimizer_state_round_trip(tmp_path):
    opt = optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)
    model, x = trained(functional_branches, opt)
    save_quietly(model, tmp_path / "m.h5")
    again = models.load_model(tmp_path / "m.h5")
    assert type(again.optimizer) is optimizers.SGD
    config = model.optimizer.get_config()
    # As in Keras, the learning rate comes back from its float32 variable.
    config["learning_rate"] = float(np.float32(0.05))
    assert again.optimizer.get_config() == config
    assert again._compile_config == model._compile_config
    state, restored = model.optimizer.get_state(), again.optimizer.get_state()
    assert sorted(state) == sorted(restored)
    for key in state:
        np.testing.assert_array_equal(restored[key], state[key])
    # Training continues as it would have without the file in between.
    y = np.ones((4, 2), np.float32)
    model.train_on_batch(x, y)
    again.train_on_batch(x, y)
    for a, b in zip(again.weights, model.weights):
        np.testing.assert_array_equal(a.value, b.value)
    assert not models.load_model(tmp_path / "m.h5", compile=False).__dict__.get("compiled")


def test_uncompiled_model_has_no_training_config(tmp_path):
    model, _ = nested()
    save_quietly(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "training_config" not in f.attrs
        assert "optimizer_weights" not in f
    assert not getattr(models.load_model(tmp_path / "m.h5"), "compiled", False)


def test_nadam_state_with_its_running_product(tmp_path):
    # Keras 3.15's Nadam: its slots, then an unnamed scalar variable (u_product).
    model, x = trained(sequential_cnn, optimizers.Nadam())
    with pytest.warns(UserWarning, match="legacy"):
        model.save(tmp_path / "m.h5")
    state = model.optimizer.get_state()
    with h5py.File(tmp_path / "m.h5", "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["optimizer_weights"].attrs["weight_names"]]
        assert names[-1] == "nadam/variable"
        assert f["optimizer_weights"][names[-1]][()] == pytest.approx(float(state["u_product"]))
    again = models.load_model(tmp_path / "m.h5")
    assert type(again.optimizer) is optimizers.Nadam
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded = again.optimizer.get_state()
    assert sorted(loaded) == sorted(state)
    np.testing.assert_allclose(loaded["u_product"], state["u_product"], rtol=1e-7)


# ----------------------------------------------------------------------------
# the layout Keras writes


def _layout(f) -> dict:
    """path -> attributes (names and string kinds) of every group, and
    path -> (shape, dtype) of every dataset."""
    out = {}

    def attrs(node):
        result = {}
        for key in node.attrs:
            dtype = node.attrs.get_id(key).dtype
            value = node.attrs[key]
            if key in ("model_config", "training_config", "backend"):
                value = None  # compared on their own
            elif isinstance(value, np.ndarray):
                value = [str(v) for v in value]
            result[key] = (dtype.kind, h5py.check_string_dtype(dtype) is not None, value)
        return result

    def visit(path, node):
        if isinstance(node, h5py.Dataset):
            out[path] = (tuple(node.shape), node.dtype.str)
        else:
            out[path] = attrs(node)
    out["/"] = attrs(f)
    f.visititems(visit)
    return out


@pytest.mark.parametrize("name", LEGACY)
def test_layout_matches_keras(name, tmp_path):
    model = models.load_model(fixture(name + ".legacy.h5"))
    save_quietly(model, tmp_path / "m.h5")
    with h5py.File(fixture(name + ".legacy.h5"), "r") as keras_file, \
            h5py.File(tmp_path / "m.h5", "r") as ours:
        assert _layout(ours) == _layout(keras_file)
        assert str(ours.attrs["keras_version"]) == str(keras_file.attrs["keras_version"])
        assert str(ours.attrs["backend"]) == "fastconv"
        # Every stored value as Keras stored it: weights and optimizer state.
        def compare(path, node):
            if isinstance(node, h5py.Dataset):
                np.testing.assert_array_equal(ours[path][()], node[()], err_msg=path)
        keras_file.visititems(compare)
        ours_training = json.loads(ours.attrs["training_config"])
        keras_training = json.loads(keras_file.attrs["training_config"])
        assert ours_training.keys() == keras_training.keys()
        assert ours_training["optimizer_config"] == keras_training["optimizer_config"]
        assert ours_training["metrics"] == keras_training["metrics"]
        ours_config = json.loads(ours.attrs["model_config"])
        keras_config = json.loads(keras_file.attrs["model_config"])
    # Layer entries in Keras' legacy form: same keys, names and graph.
    assert ours_config.keys() == keras_config.keys()
    assert ours_config["class_name"] == keras_config["class_name"]
    assert ours_config["config"].keys() == keras_config["config"].keys()
    for mine, theirs in zip(ours_config["config"]["layers"], keras_config["config"]["layers"],
                            strict=True):
        assert mine.keys() == theirs.keys()
        assert mine["class_name"] == theirs["class_name"]
        assert mine["config"]["name"] == theirs["config"]["name"]
        assert mine.get("inbound_nodes") == theirs.get("inbound_nodes")
        assert mine["config"].get("dtype") == theirs["config"].get("dtype")
    for key in ("build_input_shape", "input_layers", "output_layers", "name"):
        assert ours_config["config"].get(key) == keras_config["config"].get(key)


@pytest.mark.parametrize("name", LEGACY)
def test_optimizer_state_of_keras_file_is_read(name):
    """The .keras and .legacy.h5 fixtures hold the same trained model: their
    optimizer states, read by the two readers, agree."""
    from_h5 = models.load_model(fixture(name + ".legacy.h5")).optimizer.get_state()
    from_keras = models.load_model(fixture(name + ".keras")).optimizer.get_state()
    assert sorted(from_h5) == sorted(from_keras)
    assert int(from_h5["iterations"]) == 1
    for key in from_keras:
        np.testing.assert_array_equal(from_h5[key], from_keras[key])


def test_nested_model_weights_are_in_one_group(tmp_path):
    model, _ = trained(nested)
    save_quietly(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        group = f["model_weights"]
        assert [str(n) for n in group.attrs["layer_names"]] == [
            layer.name for layer in model.layers]
        # Keras' paths: a Sequential names its layers' weights under its own name.
        assert [str(n) for n in group["inner"].attrs["weight_names"]] == [
            "inner/conv/kernel", "inner/conv/bias", "inner/bn/gamma", "inner/bn/beta",
            "inner/bn/moving_mean", "inner/bn/moving_variance"]
        names = [str(n) for n in f["optimizer_weights"].attrs["weight_names"]]
        assert names[:4] == ["adam/iteration", "adam/learning_rate",
                             "adam/inner_conv_kernel_momentum",
                             "adam/inner_conv_kernel_velocity"]
        inner = json.loads(f.attrs["model_config"])["config"]["layers"][1]
    assert inner["class_name"] == "Sequential" and "module" not in inner
    assert inner["config"]["build_input_shape"] == [None, 6, 6, 2]
    assert all(set(entry) == {"class_name", "config"} for entry in inner["config"]["layers"])


# ----------------------------------------------------------------------------
# the write itself


def test_warning_says_legacy_and_recommends_keras(tmp_path):
    model, _ = sequential_cnn()
    with pytest.warns(UserWarning, match=r"considered legacy.*\.keras") as record:
        model.save(tmp_path / "m.h5")
    assert record[0].filename == __file__  # points at the caller's save


def test_failure_mid_write_keeps_the_existing_file(tmp_path, monkeypatch):
    model, _ = sequential_cnn()
    path = tmp_path / "m.h5"
    path.write_bytes(b"previous contents")

    def broken(f, model):
        f.attrs["keras_version"] = "3.15.1"
        f.create_group("model_weights")
        raise RuntimeError("disk gone")

    monkeypatch.setattr(legacy_h5, "write_model", broken)
    with pytest.raises(RuntimeError, match="disk gone"), pytest.warns(UserWarning):
        model.save(path)
    assert path.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["m.h5"]


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    model, _ = sequential_cnn()
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(FileExistsError), pytest.warns(UserWarning):
        model.save(tmp_path / "m.h5", overwrite=False)
    assert (tmp_path / "m.h5").read_bytes() == b"x"


def test_without_h5py_the_install_hint_is_raised(tmp_path, monkeypatch):
    model, _ = sequential_cnn()
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'pip install "fastconv\[keras-files\]"'), \
            pytest.warns(UserWarning):
        model.save(tmp_path / "m.h5")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("path", ["w.h5", "w.hdf5", "W.H5"])
def test_save_weights_to_legacy_h5_is_refused_as_keras_does(path, tmp_path):
    model, _ = sequential_cnn()
    with pytest.raises(ValueError, match=r"^The filename must end in `\.weights\.h5`\. "
                                         r"Received: filepath=.*" + path.replace(".", r"\.")):
        model.save_weights(tmp_path / path)
    assert not os.listdir(tmp_path)


def test_subclassed_model_is_refused(tmp_path):
    class Custom(fastconv.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Custom()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError), pytest.warns(UserWarning):
        model.save(tmp_path / "m.h5")
    assert not os.listdir(tmp_path)


def test_keras_loaded_the_legacy_h5_files_fastconv_wrote():
    """tools/make_keras_fixtures.py check-fastconv: keras.models.load_model
    read every legacy .h5 file fastconv wrote, predicted the same and, for a
    compiled model, restored the optimizer state (one training step)."""
    with open(fixture("fastconv_written_check.json")) as f:
        record = json.load(f)
    assert record["keras_version"].startswith("3.")
    for name, result in record["models"].items():
        assert "legacy_h5_error" not in result, (name, result)
        assert result["legacy_h5_max_abs_diff"] < 1e-4, name
        assert result["legacy_h5_compiled"] == result["compiled"], name
        assert result["legacy_h5_optimizer_iterations"] == result["optimizer_iterations"], name


def test_load_weights_into_another_architecture_is_refused(tmp_path):
    model, _ = sequential_cnn()
    save_quietly(model, tmp_path / "m.h5")
    other, _ = functional_branches()  # three layers with weights, as the file
    with pytest.raises(ValueError, match=r"m\.h5: layer 'conv2d.*' has 2 weights in the model "
                                         r"but layer 'batch_normalization.*' has 4"):
        other.load_weights(tmp_path / "m.h5")
    small = fastconv.Sequential([fastconv.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"m\.h5: layer count mismatch: the model has 1"):
        small.load_weights(tmp_path / "m.h5")


def test_optimizer_state_that_does_not_fit_is_skipped_with_warning(tmp_path):
    model, x = trained(sequential_cnn)
    save_quietly(model, tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        group = f["optimizer_weights"]
        del group[str(group.attrs["weight_names"][-1])]
    with pytest.warns(UserWarning, match="freshly initialized optimizer"):
        again = models.load_model(tmp_path / "m.h5")
    assert int(again.optimizer.get_state().get("iterations", 0)) == 0
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))

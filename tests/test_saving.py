"""model.save / load_model / save_weights / load_weights: exact round trips,
compile settings and optimizer state, file formats without pickles, clear
errors on bad files, and atomic writes."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest

import fastconv
from fastconv import layers, models, optimizers


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


def conv_model(filters: int = 3) -> models.Sequential:
    model = models.Sequential([
        layers.Conv2D(filters, 3, activation="relu", input_shape=(8, 8, 1)),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data(n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 4, n)


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))  # hidden files included


def arrays_equal(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------
# round trips


def test_save_and_load_model_predict_exactly_the_same(tmp_path):
    model = conv_model()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "model.zip")
    loaded = models.load_model(tmp_path / "model.zip")
    assert type(loaded) is models.Sequential and loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert arrays_equal(loaded.get_weights(), model.get_weights())
    assert loaded.layers[2].rate == 0.25


def test_functional_model_round_trip(tmp_path):
    inputs = fastconv.Input((5,))
    outputs = layers.Dense(2, activation="sigmoid")(layers.Dense(3, activation="relu")(inputs))
    model = fastconv.Model(inputs=inputs, outputs=outputs)
    model.save(tmp_path / "f.zip")
    loaded = models.load_model(tmp_path / "f.zip")
    assert type(loaded) is models.Functional  # what Model(inputs, outputs) makes, as in Keras
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not loaded.compiled


def test_every_layer_class_round_trips(tmp_path):
    inputs = fastconv.Input((6, 6, 2))
    h = inputs
    for layer in [layers.Conv2D(3, 2, padding="same", strides=1, activation="tanh",
                                kernel_regularizer="l2", bias_constraint="non_neg"),
                  layers.BatchNormalization(momentum=0.8, center=False),
                  layers.AveragePooling2D(2), layers.ReLU(max_value=0.5, negative_slope=0.1),
                  layers.MaxPooling2D(pool_size=(1, 1)), layers.Reshape((9, 3)),
                  layers.Flatten(), layers.Dropout(0.1, seed=3),
                  layers.Dense(4, use_bias=False), layers.Activation("sigmoid")]:
        h = layer(h)
    sequences, volumes = fastconv.Input((12, 2)), fastconv.Input((4, 4, 4, 2))
    s, v = sequences, volumes
    for layer in [layers.Conv1D(3, 3, padding="causal", dilation_rate=2, groups=1),
                  layers.Conv1DTranspose(2, 3, strides=2, output_padding=1),
                  layers.DepthwiseConv1D(3, depth_multiplier=2),
                  layers.SeparableConv1D(4, 2, depth_multiplier=2), layers.MaxPooling1D(),
                  layers.AveragePooling1D(2, padding="same"), layers.Flatten()]:
        s = layer(s)
    for layer in [layers.Conv3D(4, 2, padding="same", groups=2),
                  layers.Conv3DTranspose(2, 2, strides=2), layers.MaxPooling3D(),
                  layers.AveragePooling3D(2), layers.Flatten()]:
        v = layer(v)
    images = inputs
    for layer in [layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
                  layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
                  layers.SeparableConv2D(4, 2), layers.Flatten()]:
        images = layer(images)
    h = layers.Concatenate()([h, s, v, images])
    a, b = layers.Dense(3)(h), layers.Dense(3)(h)
    merged = [layers.Add()([a, b]), layers.Subtract()([a, b]), layers.Multiply()([a, b]),
              layers.Average()([a, b]), layers.Maximum()([a, b]), layers.Minimum()([a, b]),
              layers.Dot(axes=1, normalize=True)([a, b])]
    # The resampling layers, at every rank, from the (6, 6, 2) input.
    images = layers.Cropping2D(((1, 2), 3))(
        layers.UpSampling2D(2, interpolation="bilinear")(layers.ZeroPadding2D(1)(inputs)))
    steps = layers.Cropping1D(2)(
        layers.UpSampling1D(2)(layers.ZeroPadding1D(1)(layers.Reshape((36, 2))(inputs))))
    cubes = layers.Cropping3D(1)(layers.UpSampling3D((1, 1, 2))(
        layers.ZeroPadding3D(1)(layers.Reshape((6, 6, 2, 1))(inputs))))
    merged += [layers.GlobalAveragePooling2D()(images), layers.GlobalMaxPooling2D()(images),
               layers.GlobalAveragePooling1D()(steps), layers.GlobalMaxPooling1D()(steps),
               layers.GlobalAveragePooling3D()(cubes), layers.GlobalMaxPooling3D()(cubes)]
    # The regularization and shape layers.
    maps = layers.GaussianNoise(0.1)(layers.SpatialDropout2D(0.2, seed=1)(inputs))
    maps = layers.AlphaDropout(0.1)(layers.GaussianDropout(0.1)(maps))
    rows = layers.SpatialDropout1D(0.1)(layers.Permute((2, 1))(layers.Reshape((36, 2))(maps)))
    cubes = layers.SpatialDropout3D(0.1, data_format="channels_first")(cubes)
    merged += [layers.ActivityRegularization(l2=0.01)(layers.Identity()(
        layers.Flatten()(layers.RepeatVector(2)(layers.GlobalMaxPooling1D()(rows))))),
        layers.GlobalMaxPooling3D()(cubes)]
    # The preprocessing layers on the images, an Embedding on integer tokens.
    tokens, pre = fastconv.Input((5,), dtype="int32"), inputs
    for layer in [layers.Rescaling(0.5, 1.0), layers.Normalization(), layers.Resizing(7, 7),
                  layers.CenterCrop(6, 6), layers.RandomFlip(), layers.RandomRotation(0.1),
                  layers.RandomZoom(0.1), layers.RandomTranslation(0.1, 0.1),
                  layers.RandomContrast(0.1), layers.RandomBrightness(0.1),
                  layers.RandomCrop(4, 4)]:
        pre = layer(pre)
    merged += [layers.GlobalAveragePooling2D()(pre),
               layers.Flatten()(layers.Embedding(9, 2)(tokens))]
    # The activation and normalization layers.
    acts = layers.PReLU(shared_axes=[1, 2])(layers.ELU(0.5)(layers.LeakyReLU(0.1)(inputs)))
    merged.append(layers.Flatten()(layers.UnitNormalization()(layers.GroupNormalization(2)(
        layers.LayerNormalization()(acts)))))
    outputs = layers.Softmax()(layers.Concatenate()(merged))
    model = fastconv.Model([inputs, sequences, volumes, tokens], outputs)
    # Every layer class but Lambda, which wraps Python code and is never saved.
    assert {type(layer).__name__ for layer in model.layers} | {"Lambda"} == {
        name for name in layers.__all__
        if isinstance(getattr(layers, name), type) and getattr(layers, name).__name__ == name
        and issubclass(getattr(layers, name), layers.Layer) and name != "Layer"}
    model.save(tmp_path / "all.zip")
    loaded = models.load_model(tmp_path / "all.zip")
    rng = np.random.default_rng(5)
    x = [rng.standard_normal(shape).astype(np.float32)
         for shape in [(3, 6, 6, 2), (3, 12, 2), (3, 4, 4, 4, 2)]] + [rng.integers(0, 9, (3, 5))]
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()


def test_model_built_from_data_round_trips(tmp_path):
    model = models.Sequential([layers.Dense(3), layers.Dense(2)])
    x = np.ones((2, 4), np.float32)
    out = model.predict(x, verbose=0)
    model.save(tmp_path / "d.zip")
    assert np.array_equal(models.load_model(tmp_path / "d.zip").predict(x, verbose=0), out)


def test_load_model_restores_the_compile_settings(tmp_path):
    model = conv_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.02, rho=0.8),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.learning_rate = 0.005  # changed after compile, as schedules do
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert type(loaded.optimizer) is optimizers.RMSprop
    assert loaded.optimizer.learning_rate == pytest.approx(0.005)
    assert loaded.optimizer.get_config()["rho"] == pytest.approx(0.8)
    assert type(loaded.loss).__name__ == "CategoricalCrossentropy"
    x, labels = data()
    y = fastconv.utils.to_categorical(labels, 4)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    uncompiled = models.load_model(tmp_path / "m.zip", compile=False)
    assert not uncompiled.compiled


def test_model_saved_before_training_reloads_and_trains(tmp_path):
    model = conv_model()  # compiled with Adam, no step taken yet
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    assert loaded.optimizer.iterations == 0
    x, y = data()
    fastconv.utils.set_random_seed(4)
    model.train_on_batch(x, y)
    fastconv.utils.set_random_seed(4)
    loaded.train_on_batch(x, y)
    assert arrays_equal(loaded.get_weights(), model.get_weights())


def continue_training(model, steps: int = 3) -> list[np.ndarray]:
    x, y = data(8, seed=3)
    for _ in range(steps):
        model.train_on_batch(x, y)  # Dropout draws from the global generator:
    return model.get_weights()      # callers reseed it before each run


def test_training_continues_identically_after_reload(tmp_path):
    model = conv_model()
    x, y = data()
    fastconv.utils.set_random_seed(1)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)  # Adam moments and step count
    model.save(tmp_path / "m.zip")
    loaded = models.load_model(tmp_path / "m.zip")
    fresh_optimizer = models.load_model(tmp_path / "m.zip", compile=False)
    fresh_optimizer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6

    fastconv.utils.set_random_seed(2)
    expected = continue_training(model)
    fastconv.utils.set_random_seed(2)
    assert arrays_equal(continue_training(loaded), expected)
    fastconv.utils.set_random_seed(2)
    assert not arrays_equal(continue_training(fresh_optimizer), expected)


def test_save_weights_and_load_weights_round_trip(tmp_path):
    model = conv_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.npz")
    other = conv_model()
    assert not arrays_equal(other.get_weights(), model.get_weights())
    other.load_weights(tmp_path / "w.npz")
    assert np.array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    # load_weights also reads the weights out of a whole-model file.
    model.save(tmp_path / "m.zip")
    third = conv_model()
    third.load_weights(tmp_path / "m.zip")
    assert arrays_equal(third.get_weights(), model.get_weights())


# ----------------------------------------------------------------------------
# formats


def test_weights_file_is_an_npz_without_pickles(tmp_path):
    model = conv_model()
    model.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        arrays = [npz[name] for name in sorted(npz.files)]
    assert arrays_equal(arrays, model.get_weights())
    assert [a.dtype for a in arrays] == [np.float32] * 4


def test_model_file_is_a_zip_of_json_and_npz(tmp_path):
    model = conv_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        assert sorted(archive.namelist()) == ["config.json", "weights.npz"]
        config = json.loads(archive.read("config.json"))
        npz = np.load(io.BytesIO(archive.read("weights.npz")), allow_pickle=False)
        arrays = {name: npz[name] for name in npz.files}
    assert config["class_name"] == "Sequential"
    assert [layer["class_name"] for layer in config["config"]["layers"]] == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense"]
    assert arrays_equal([arrays[k] for k in sorted(arrays) if k.startswith("weight_")],
                        model.get_weights())
    assert int(arrays["optimizer/iterations"]) == 1  # 12 samples: one batch of 32
    assert sorted(k for k in arrays if k.startswith("optimizer/m")) == [
        f"optimizer/momentum_{i}" for i in range(4)]  # Adam's first moments
    assert all(a.dtype != object for a in arrays.values())


def test_saved_files_get_the_usual_permissions(tmp_path):
    """Files are created through the umask like any other (mkstemp's 0600
    would make saved models unreadable to the group)."""
    old = os.umask(0o022)
    try:
        model = conv_model()
        model.save(tmp_path / "m.zip")
        model.save_weights(tmp_path / "w.npz")
    finally:
        os.umask(old)
    for name in ("m.zip", "w.npz"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644


# ----------------------------------------------------------------------------
# bad files


def rewrite_archive(source, target, config=None, weights=None, drop=()):
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        members["config.json"] = config
    if weights is not None:
        members["weights.npz"] = weights
    with zipfile.ZipFile(target, "w") as archive:
        for name, payload in members.items():
            if name not in drop:
                archive.writestr(name, payload)
    return target


@pytest.fixture
def saved(tmp_path):
    model = conv_model()
    model.save(tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as archive:
        spec = json.loads(archive.read("config.json"))
    return tmp_path / "good.zip", spec


def test_load_model_rejects_truncated_and_garbage_files(saved, tmp_path):
    good, _ = saved
    payload = good.read_bytes()
    (tmp_path / "truncated.zip").write_bytes(payload[:len(payload) // 2])
    (tmp_path / "garbage.zip").write_bytes(b"\x00\x01not a model" * 50)
    (tmp_path / "empty.zip").write_bytes(b"")
    for name in ("truncated.zip", "garbage.zip", "empty.zip"):
        with pytest.raises(ValueError, match="not a fastconv model file"):
            models.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "missing.zip")


@pytest.mark.parametrize("config, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2, 3]", "does not describe a model"),
    (json.dumps({"class_name": "Sequential", "config": {}}), "format"),
])
def test_load_model_rejects_bad_json(saved, tmp_path, config, message):
    good, _ = saved
    with pytest.raises(ValueError, match=message):
        models.load_model(rewrite_archive(good, tmp_path / "bad.zip", config=config))


def edit(spec: dict, **changes) -> bytes:
    return json.dumps({**spec, **changes}).encode()


def with_layer(spec: dict, layer: dict) -> bytes:
    """The saved model's InputLayer followed by ``layer``."""
    return edit(spec, config={"layers": [spec["config"]["layers"][0], layer]})


BAD_CONFIGS = {
    "no layers": lambda spec: edit(spec, config={"name": "m"}),
    "unknown layer": lambda spec: with_layer(spec, {"class_name": "Lambda", "config": {}}),
    "unknown argument": lambda spec: with_layer(
        spec, {"class_name": "Dense", "config": {"units": 2, "bogus": 1}}),
    "bad argument": lambda spec: with_layer(
        spec, {"class_name": "Dense", "config": {"units": -2}}),
    "unknown model class": lambda spec: edit(spec, class_name="Subclassed"),
    "bad compile settings": lambda spec: edit(spec, compile_config={"optimizer": "adam"}),
}


@pytest.mark.parametrize("what", sorted(BAD_CONFIGS))
def test_load_model_rejects_bad_model_configs(saved, tmp_path, what):
    good, spec = saved
    config = BAD_CONFIGS[what](spec)
    with pytest.raises(ValueError):
        models.load_model(rewrite_archive(good, tmp_path / "bad.zip", config=config))


def test_load_model_rejects_missing_or_mismatched_weights(saved, tmp_path):
    good, _ = saved
    with pytest.raises(ValueError, match="weights.npz"):
        models.load_model(rewrite_archive(good, tmp_path / "a.zip", drop=("weights.npz",)))
    few = io.BytesIO()
    np.savez(few, weight_0000=np.zeros((3, 3, 1, 3), np.float32))
    with pytest.raises(ValueError, match="another architecture"):
        models.load_model(rewrite_archive(good, tmp_path / "b.zip", weights=few.getvalue()))
    with pytest.raises(ValueError, match="npz"):
        models.load_model(rewrite_archive(good, tmp_path / "c.zip", weights=b"garbage"))


def test_load_weights_rejects_another_architecture(tmp_path):
    conv_model(filters=3).save_weights(tmp_path / "w3.npz")
    model = conv_model(filters=5)
    before = model.get_weights()
    with pytest.raises(ValueError, match="shape"):
        model.load_weights(tmp_path / "w3.npz")
    assert arrays_equal(model.get_weights(), before)  # nothing half-loaded
    models.Sequential([layers.Dense(2, input_shape=(3,))]).save_weights(tmp_path / "d.npz")
    with pytest.raises(ValueError, match="another architecture"):
        model.load_weights(tmp_path / "d.npz")


def test_load_weights_rejects_bad_files(tmp_path):
    model = conv_model()
    model.save_weights(tmp_path / "w.npz")
    payload = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(payload[:len(payload) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"garbage bytes" * 10)
    np.save(tmp_path / "single.npy", np.zeros(3))
    for name in ("truncated.npz", "garbage.npz"):
        with pytest.raises(ValueError, match="not a readable .npz"):
            model.load_weights(tmp_path / name)
    with pytest.raises(ValueError, match="the extension decides the format"):
        model.load_weights(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------
# atomic writes and overwrite


def failing_on_call(original, n):
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise OSError("disk full")
        return original(*args, **kwargs)

    return wrapper


def test_interrupted_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.zip"
    model = conv_model()
    model.save(path)
    before = path.read_bytes()
    changed = conv_model()
    # The archive's second member fails halfway through the write.
    monkeypatch.setattr(zipfile.ZipFile, "writestr",
                        failing_on_call(zipfile.ZipFile.writestr, 2))
    with pytest.raises(OSError, match="disk full"):
        changed.save(path)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["m.zip"]
    monkeypatch.undo()
    assert arrays_equal(models.load_model(path).get_weights(), model.get_weights())


def test_interrupted_save_weights_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    model = conv_model()
    model.save_weights(path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", failing_on_call(np.savez, 1))
    with pytest.raises(OSError, match="disk full"):
        conv_model().save_weights(path)
    assert path.read_bytes() == before and listing(tmp_path) == ["w.npz"]


def test_failure_while_writing_the_file_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    conv_model().save_weights(path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", failing_on_call(os.fsync, 1))
    with pytest.raises(OSError, match="disk full"):
        conv_model().save_weights(path)
    assert path.read_bytes() == before and listing(tmp_path) == ["w.npz"]


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    model = conv_model()
    model.save(tmp_path / "m.zip")
    model.save_weights(tmp_path / "w.npz")
    before = {name: (tmp_path / name).read_bytes() for name in ("m.zip", "w.npz")}
    other = conv_model()
    with pytest.raises(FileExistsError):
        other.save(tmp_path / "m.zip", overwrite=False)
    with pytest.raises(FileExistsError):
        other.save_weights(tmp_path / "w.npz", overwrite=False)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    other.save(tmp_path / "new.zip", overwrite=False)  # a new file is fine
    assert listing(tmp_path) == ["m.zip", "new.zip", "w.npz"]


def test_a_crashed_save_leaves_a_named_temporary_that_the_next_save_removes(tmp_path):
    path = tmp_path / "m.zip"
    stale = tmp_path / ".m.zip.fastconv-0123456789abcdef.tmp"
    fresh = tmp_path / ".m.zip.fastconv-fedcba9876543210.tmp"
    other = tmp_path / ".n.zip.fastconv-0123456789abcdef.tmp"  # another target's
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"half a model")
    old = os.path.getmtime(stale) - 3600
    for leftover in (stale, other):
        os.utime(leftover, (old, old))
    conv_model().save(path)
    # Only the old temporary of this very target goes: a recent one may be
    # another process's save in progress.
    assert listing(tmp_path) == [fresh.name, other.name, "m.zip"]


def test_save_syncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    conv_model().save(tmp_path / "m.zip")
    assert synced == [False, True]


def test_save_through_a_symbolic_link_writes_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.zip"
    link = tmp_path / "link.zip"
    link.symlink_to(target)
    model = conv_model()
    model.save(link)
    model.save(link)  # over the existing target too
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert arrays_equal(models.load_model(target).get_weights(), model.get_weights())
    model.save_weights(tmp_path / "w.npz")
    (tmp_path / "wlink.npz").symlink_to(tmp_path / "w.npz")
    model.save_weights(tmp_path / "wlink.npz")
    assert (tmp_path / "wlink.npz").is_symlink()

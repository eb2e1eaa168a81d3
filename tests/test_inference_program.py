"""The inference program (fastconv.graph.inference): predict, predict_on_batch
and calls on arrays run the compiled steps in one parallel region, and give
the bits of the executor's plain forward pass (Plan.forward), whatever the
batch, the thread count, the weights' changes and the steps in between."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv
from fastconv import layers, models, reference
from fastconv._kernels import program as _program
from fastconv.cli.train import fashion_cnn, seed_cnn
from fastconv.graph import inference
from fastconv.layers import use_backend


def _inputs(model, x):
    arrays, structure = model._flat_inputs(x)
    return arrays, model._plan_for(arrays, structure, False)


def _plain(model, x):
    """The executor's forward pass, the program's oracle (and the reference's)."""
    arrays, plan = _inputs(model, x)
    return plan.forward(arrays, False)[0]


def _programs(model, x):
    _, plan = _inputs(model, x)
    return plan.memo.get("inference", {})


def _program_for(model, x):
    """The program built for inputs of x's shape (False: none compiles)."""
    programs = [p for key, p in _programs(model, x).items() if key[0][0][0] == x.shape]
    assert len(programs) == 1
    return programs[0]


def _compiled(model, x) -> int:
    """How many steps the program for inputs like x compiles."""
    program = _program_for(model, x)
    return program.n_native if program else 0


def _conv1d_model():
    return models.Sequential([
        layers.Input((40, 3)),
        layers.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu"),
        layers.MaxPooling1D(2),
        layers.Conv1D(6, 3, strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(5, activation="tanh"),
    ])


def _sequence_dense_model():
    return models.Sequential([
        layers.Input((7, 12)),
        layers.Dense(9, activation="relu"),
        layers.Dense(4),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])


def _branching_model():
    """A convolution read by two steps, Python steps (BatchNormalization folded
    into a linear conv, Add) between compiled ones, a global pooling, and two
    outputs, one of them a compiled step's."""
    inp = layers.Input((12, 12, 2))
    a = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = layers.MaxPooling2D(2)(a)
    c = layers.Conv2D(8, 3, strides=2, padding="same")(a)
    c = layers.BatchNormalization()(c)
    d = layers.Add()([b, c])
    e = layers.Conv2D(4, 2, activation="relu")(d)
    pooled = layers.GlobalAveragePooling2D()(e)
    out = layers.Dense(3, activation="softmax")(pooled)
    return models.Model(inp, [out, e])


def _aliasing_model():
    """Python steps that return their input or a view of it (Identity, a
    linear Activation, a reshape in a Lambda) between compiled steps of the
    same sizes, which could otherwise take the buffer still read through
    them."""
    return models.Sequential([
        layers.Input((8, 8, 3)),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.Identity(),
        layers.Conv2D(8, 3, padding="same"),
        layers.Activation("linear"),
        layers.Lambda(lambda t: fastconv.ops.reshape(t, (-1, 8, 8, 8))),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.Identity(),
        layers.Flatten(),
        layers.Dense(512),
    ])


MODELS = {
    "aliasing": (_aliasing_model, (8, 8, 3), 4),
    "seed": (seed_cnn, (28, 28, 1), 5),
    "fashion": (fashion_cnn, (28, 28, 1), 4),
    "conv1d": (_conv1d_model, (40, 3), 3),
    "sequence_dense": (_sequence_dense_model, (7, 12), 3),
    "branching": (_branching_model, (12, 12, 2), 5),
}


def _built(name):
    fastconv.utils.set_random_seed(0)
    build, shape, _ = MODELS[name]
    model = build()
    rng = np.random.default_rng(1)
    # Non-zero biases and moving statistics, so every term counts.
    model.set_weights([w + rng.standard_normal(w.shape).astype(w.dtype) * 0.1
                       for w in model.get_weights()])
    return model, shape


def _data(shape, n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def _assert_equal(got, want):
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_predict_on_batch_gives_the_plain_forward_bits(name, threads, restore_settings,
                                                      monkeypatch):
    # Every program on all the threads, however small (see the size rule's test).
    monkeypatch.setattr(inference, "SINGLE_THREAD_WORK", 0)
    fastconv.set_num_threads(threads)
    model, shape = _built(name)
    for n in (1, 2, 3, 17):
        x = _data(shape, n, seed=n)
        want = _plain(model, x)
        for _ in range(2):  # the first call builds the program, the second runs it
            _assert_equal(model.predict_on_batch(x), want)
        assert _compiled(model, x) == MODELS[name][2]


def test_small_programs_run_on_one_thread(restore_settings):
    """The seed CNN on one image (2.8 million multiply-adds) runs on one
    thread, on 64 images on all of them (one without OpenMP); both give the
    plain bits."""
    fastconv.set_num_threads(2)
    model, shape = _built("seed")
    for n, team in ((1, 1), (64, fastconv.get_num_threads())):
        x = _data(shape, n)
        model.predict_on_batch(x)
        _assert_equal(model.predict_on_batch(x), _plain(model, x))
        assert _program_for(model, x).team == team


@pytest.mark.parametrize("name", ["seed", "branching"])
def test_predict_and_calls_on_arrays_give_the_plain_bits(name):
    model, shape = _built(name)
    x = _data(shape, 70)
    want = [np.concatenate(parts) for parts in zip(
        *(_plain(model, x[i:i + 32]) for i in range(0, 70, 32)))]
    for _ in range(2):
        got = model.predict(x, batch_size=32, verbose=0)  # 32, 32, then 6 rows
        _assert_equal(got, want)
    _assert_equal(model(x[:5]), _plain(model, x[:5]))
    _assert_equal(model(x[:5]), _plain(model, x[:5]))


def test_the_program_agrees_with_the_reference_backend():
    model, shape = _built("seed")
    x = _data(shape, 4)
    got = model.predict_on_batch(x)
    got = model.predict_on_batch(x)
    with use_backend(reference):
        want = model.predict_on_batch(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_reference_backend_runs_no_program():
    model, shape = _built("seed")
    x = _data(shape, 2)
    with use_backend(reference):
        model.predict_on_batch(x)
        model.predict_on_batch(x)
    assert _programs(model, x) == {}


def test_float64_models_run_the_plain_forward():
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((6, 6, 1), dtype="float64"),
                               layers.Conv2D(2, 3, dtype="float64"), layers.Flatten(),
                               layers.Dense(2, dtype="float64")])
    x = np.random.default_rng(0).standard_normal((3, 6, 6, 1))
    got = model.predict_on_batch(x)
    assert got.dtype == np.float64
    _assert_equal(model.predict_on_batch(x), _plain(model, x))
    assert _programs(model, x) == {}


def test_changed_weights_are_seen_by_the_next_run():
    model, shape = _built("seed")
    x = _data(shape, 3)
    model.predict_on_batch(x)
    model.predict_on_batch(x)
    # A new array for every weight (set_weights), then changes in place
    # (as optimizers make them), including the padded Dense(10).
    model.set_weights([w * 0.5 for w in model.get_weights()])
    _assert_equal(model.predict_on_batch(x), _plain(model, x))
    for layer in model.layers:
        for var in layer.weights:
            var.value[...] = var.value * 1.25 + 0.01
    _assert_equal(model.predict_on_batch(x), _plain(model, x))


def test_training_between_predictions_is_seen():
    model, shape = _built("fashion")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = _data(shape, 16)
    y = np.arange(16) % 10
    before = model.predict_on_batch(x)
    model.predict_on_batch(x)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = model.predict_on_batch(x)
    assert not np.array_equal(before, after)
    _assert_equal(after, _plain(model, x))


def test_returned_outputs_are_the_callers_own():
    model, shape = _built("branching")
    x1, x2 = _data(shape, 2, seed=1), _data(shape, 2, seed=2)
    model.predict_on_batch(x1)
    first = model.predict_on_batch(x1)
    kept = [a.copy() for a in first]
    model.predict_on_batch(x2)
    _assert_equal(first, kept)
    first[1][...] = 7.0  # writing into a result leaves the next one alone
    _assert_equal(model.predict_on_batch(x1), kept)


def test_concurrent_predictions_are_each_right():
    model, shape = _built("seed")
    inputs = [_data(shape, 5, seed=s) for s in range(4)]
    wanted = [_plain(model, x)[0] for x in inputs]
    model.predict_on_batch(inputs[0])
    errors = []

    def work(k):
        try:
            for _ in range(30):
                np.testing.assert_array_equal(model.predict_on_batch(inputs[k]), wanted[k])
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_smaller_openmp_team_still_runs_every_share():
    """OpenMP may give the program's region fewer threads than it asks for
    (OMP_THREAD_LIMIT here): every block of work must still run once."""
    script = (
        "import numpy as np, fastconv\n"
        "from fastconv.cli.train import seed_cnn\n"
        "fastconv.set_num_threads(3)\n"
        "fastconv.utils.set_random_seed(0)\n"
        "m = seed_cnn()\n"
        "x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)\n"
        "a, s = m._flat_inputs(x)\n"
        "want = m._plan_for(a, s, False).forward(a, False)[0][0]\n"
        "m.predict_on_batch(x)\n"
        "assert np.array_equal(m.predict_on_batch(x), want)\n"
        "assert np.array_equal(m.predict_on_batch(x[:1]), want[:1])\n"
        "assert np.array_equal(m.predict_on_batch(x[:1]), want[:1])\n"
        "print('ok')\n")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_binding_a_wrong_array_is_refused_with_its_tensor():
    program = _program.Program([4, 8], 1, fastconv.runtime.settings.isa_code())
    with pytest.raises(ValueError, match="tensor 1: expected a C-contiguous float32 array "
                                         "of at least 8 elements, received float32"):
        program.bind(1, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="received float64"):
        program.bind(0, np.zeros(4))
    with pytest.raises(ValueError, match="C-contiguous: False"):
        program.bind(1, np.zeros((8, 2), np.float32)[:, 0])
    with pytest.raises(ValueError, match=r"tensor number in \[0, 2\), received i=2"):
        program.bind(2, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="Tensor 0 of the program is not bound"):
        program.run()


@pytest.mark.parametrize("replace", ["fortran", "float64", "shape"])
def test_a_weight_replaced_by_another_kind_of_array_runs_on_the_executor(replace):
    model, shape = _built("seed")
    x = _data(shape, 3)
    model.predict_on_batch(x)
    model.predict_on_batch(x)
    for layer in (model.layers[0], model.layers[-1]):  # a conv kernel, the padded Dense(10)
        value = layer.kernel.value
        if replace == "fortran":
            layer.kernel.value = np.asfortranarray(value * 0.5)
        elif replace == "float64":
            if layer is model.layers[-1]:  # a float64 conv is refused by its op
                layer.kernel.value = value.astype(np.float64) * 0.5
                layer.bias.value = layer.bias.value.astype(np.float64) + 0.25
        else:
            layer.kernel.value = value.reshape(-1, *value.shape[-1:]).copy()
    if replace == "shape":
        with pytest.raises(ValueError):
            _plain(model, x)
        with pytest.raises(ValueError):
            model.predict_on_batch(x)
        return
    want = _plain(model, x)
    for _ in range(2):
        _assert_equal(model.predict_on_batch(x), want)


def test_a_dense_relu_in_the_program_gives_the_executors_bits():
    """The ReLU of a Dense runs in the program (and a kernel of 3, 7 or 19
    columns is padded there): its bits are np.maximum's, NaN and infinities
    included, and no -0 where the executor has +0."""
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((6,)), layers.Dense(7, activation="relu"),
                               layers.Dense(19, activation="relu"), layers.Dense(3)])
    x = _data((6,), 9)
    x[1, 2] = np.nan
    x[2, 0] = np.inf
    x[3, :] = -np.inf
    x[4, :] = 0.0
    model.layers[0].bias.value[:] = 0.0  # exact zeros before the ReLU in row 4
    want = _plain(model, x)[0]
    model.predict_on_batch(x)
    got = model.predict_on_batch(x)
    assert _compiled(model, x) == 3 and len(_program_for(model, x).actions) == 1
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.isnan(got[1]).all() and np.isnan(got[3]).any()


def test_later_calls_go_straight_to_the_program(monkeypatch):
    """Once a call has built the program for an input shape, predict_on_batch
    and model(x) on a float32 array of that shape run it without their
    front; anything else still takes the front, whose checks then run."""
    model, shape = _built("seed")
    x = _data(shape, 2)
    want = _plain(model, x)[0]
    model.predict_on_batch(x)
    fronts = []
    for name in ("_flat_inputs", "_predict_on_batch"):
        real = getattr(model, name)
        monkeypatch.setattr(model, name, lambda *a, _real=real, _name=name, **k: (
            fronts.append(_name), _real(*a, **k))[1])
    _assert_equal(model.predict_on_batch(x), [want])
    _assert_equal(model(x), [want])
    assert fronts == []
    # A non-contiguous array of that shape is fine as it is.
    strided = np.repeat(x, 2, axis=2)[:, :, ::2]
    assert not strided.flags.c_contiguous
    _assert_equal(model.predict_on_batch(strided), [want])
    assert fronts == []
    # Other dtypes, nested inputs and other shapes take the front.
    _assert_equal(model.predict_on_batch(x.astype(np.float64)), [want])
    _assert_equal(model.predict_on_batch([x]), [want])
    assert fronts == ["_predict_on_batch", "_flat_inputs"] * 2
    with pytest.raises(ValueError, match="incompatible|expected"):
        model.predict_on_batch(_data((27, 28, 1), 2))


def test_a_call_on_a_gradient_tape_is_recorded_not_programmed():
    model, shape = _built("seed")
    x = _data(shape, 2)
    model(x)
    model(x)
    with fastconv.GradientTape() as tape:
        loss = fastconv.ops.sum(model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == len(model.trainable_weights)
    assert all(g is not None and np.abs(np.asarray(g)).sum() > 0 for g in grads)


def _nested_model(activity_regularizer=None):
    """A Sequential inside a functional model, between compiled steps (as a
    data-augmentation or feature-extractor model sits in Keras programs)."""
    inner = models.Sequential([
        layers.Input((12, 12, 4)),
        layers.Conv2D(6, 3, padding="same", activation="relu",
                      activity_regularizer=activity_regularizer),
        layers.BatchNormalization(),
    ])
    inp = layers.Input((14, 14, 2))
    x = layers.Conv2D(4, 3, activation="relu")(inp)
    x = inner(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    out = layers.Dense(5, activation="relu")(x)
    return models.Model(inp, out)


def test_a_nested_model_runs_between_compiled_steps():
    fastconv.utils.set_random_seed(0)
    model = _nested_model()
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.standard_normal(w.shape).astype(w.dtype) * 0.1
                       for w in model.get_weights()])
    for n in (1, 3):
        x = _data((14, 14, 2), n, seed=n)
        want = _plain(model, x)
        model.predict_on_batch(x)
        _assert_equal(model.predict_on_batch(x), want)
        _assert_equal(model(x), want)
        assert _compiled(model, x) == 3  # the outer conv, the pool and the Dense


def test_a_nested_model_with_an_activity_penalty_runs_on_the_executor():
    fastconv.utils.set_random_seed(0)
    model = _nested_model(activity_regularizer="l2")
    x = _data((14, 14, 2), 2)
    want = _plain(model, x)
    model.predict_on_batch(x)
    _assert_equal(model.predict_on_batch(x), want)
    assert _programs(model, x) == {}


@pytest.mark.parametrize("change", ["padding", "strides", "activation"])
def test_a_conv_reassigned_after_the_program_is_built_is_read_again(change):
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((9, 9, 2)),
                               layers.Conv2D(4, 3, activation="relu"), layers.Flatten()])
    conv = model.layers[0]
    x = _data((9, 9, 2), 2)
    model.predict_on_batch(x)
    model.predict_on_batch(x)
    if change == "padding":
        conv.padding = "same"
    elif change == "strides":
        conv.strides = (2, 2)
    else:
        conv.activation = fastconv.activations.get("linear")
    want = _plain(model, x)
    _assert_equal(model.predict_on_batch(x), want)
    _assert_equal(model.predict_on_batch(x), want)  # on the program built for it


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_pooling_in_the_program_gives_the_executors_bits(threads, restore_settings,
                                                         monkeypatch):
    """Global average and max pooling, over 1 to 3 spatial axes, with and
    without keepdims, and average pooling (its "same" borders divide by the
    elements inside), NaN included (the maximum's first NaN wins)."""
    monkeypatch.setattr(inference, "SINGLE_THREAD_WORK", 0)
    fastconv.set_num_threads(threads)
    fastconv.utils.set_random_seed(0)
    cases = [
        ((20, 3), [layers.Conv1D(5, 3, activation="relu"), layers.GlobalMaxPooling1D()]),
        ((9, 9, 2), [layers.Conv2D(40, 3), layers.GlobalAveragePooling2D(keepdims=True),
                     layers.Flatten(), layers.Dense(3)]),
        ((9, 9, 2), [layers.Conv2D(17, 3, activation="relu"), layers.GlobalMaxPooling2D()]),
        ((4, 5, 6, 3), [layers.GlobalAveragePooling3D(), layers.Dense(4, activation="relu")]),
        ((4, 5, 6, 3), [layers.GlobalMaxPooling3D(keepdims=True)]),
        ((11, 10, 3), [layers.Conv2D(8, 3, activation="relu"),
                       layers.AveragePooling2D(3, strides=2, padding="same"), layers.Flatten()]),
        ((21, 4), [layers.AveragePooling1D(2), layers.Conv1D(6, 2), layers.AveragePooling1D(3)]),
    ]
    for shape, stack in cases:
        model = models.Sequential([layers.Input(shape), *stack])
        for n in (1, 2, 5):
            x = _data(shape, n, seed=n)
            x.flat[::7] = np.nan
            want = _plain(model, x)
            model.predict_on_batch(x)
            got = model.predict_on_batch(x)
            got = got if isinstance(got, list) else [got]
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32))
            # Every layer is a compiled step (a Flatten is a view of one).
            assert _compiled(model, x) == sum(not isinstance(layer, layers.Flatten)
                                              for layer in stack)

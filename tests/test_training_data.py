"""The data fit / evaluate / predict accept besides arrays: Python
generators and iterators, ``utils.PyDataset`` (threads or not), with Keras
3's rules for ``steps_per_epoch``, ``validation_*``, ``initial_epoch``, the
callback hooks they fire and the errors for data they do not take.

Equivalence is checked against the same training on NumPy arrays with
``shuffle=False`` (the batches are then the same rows in the same order), in
float64, so the weights must agree exactly."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import callbacks, layers, models, optimizers, utils
from fastconv.training import data_adapters


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


N, BATCH = 20, 6  # four batches, the last one of 2 rows


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, 4)), rng.integers(0, 3, N)


def model(metrics=("accuracy",)) -> models.Sequential:
    net = models.Sequential([fastconv.Input((4,), dtype="float64"),
                             layers.Dense(5, activation="relu", dtype="float64"),
                             layers.Dense(3, activation="softmax", dtype="float64")])
    rng = np.random.default_rng(7)
    net.set_weights([rng.standard_normal(w.shape) * 0.5 for w in net.get_weights()])
    net.compile(optimizer=optimizers.SGD(learning_rate=0.1),
                loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return net


def batches(x, y, passes: int = 1):
    for _ in range(passes):
        for start in range(0, len(x), BATCH):
            yield x[start:start + BATCH], y[start:start + BATCH]


class Batches(utils.PyDataset):
    """The rows of (x, y) in batches of BATCH, counting epoch-end calls."""

    def __init__(self, x, y, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, y
        self.epoch_ends = 0
        self.fetched: list[int] = []

    def __len__(self):
        return (len(self.x) + BATCH - 1) // BATCH

    def __getitem__(self, i):
        self.fetched.append(i)
        rows = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self.epoch_ends += 1


class Endless(utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.inner = Batches(x, y)

    @property
    def num_batches(self):
        return None

    def __getitem__(self, i):
        return self.inner[i % len(self.inner)]


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12)


def reference_fit(x, y, epochs=2, **kwargs):
    ref = model()
    history = ref.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, **kwargs)
    return ref, history


# ----------------------------------------------------------------------------
# the same training as on arrays


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_fit_on_a_generator_equals_fit_on_arrays():
    x, y = data()
    ref, ref_history = reference_fit(x, y)
    net = model()
    history = net.fit(batches(x, y, passes=2), epochs=2, steps_per_epoch=4, verbose=0)
    assert_same_weights(ref, net)
    assert history.history == ref_history.history


@pytest.mark.parametrize("workers", [1, 3])
def test_fit_on_a_py_dataset_equals_fit_on_arrays(workers):
    x, y = data()
    ref, ref_history = reference_fit(x, y, validation_data=(x[:8], y[:8]))
    net = model()
    history = net.fit(Batches(x, y, workers=workers, max_queue_size=2), epochs=2,
                      shuffle=False, verbose=0, validation_data=(x[:8], y[:8]),
                      validation_batch_size=BATCH)
    assert_same_weights(ref, net)
    assert history.history == ref_history.history


def test_use_multiprocessing_loads_in_threads_with_the_same_result():
    x, y = data()
    ref, _ = reference_fit(x, y)
    net = model()
    net.fit(Batches(x, y, workers=2, use_multiprocessing=True), epochs=2, shuffle=False,
            verbose=0)
    assert_same_weights(ref, net)


def test_sequence_is_py_dataset():
    assert utils.Sequence is utils.PyDataset


def test_generator_of_three_tuples_and_of_bare_inputs():
    x, y = data()
    ref = model()
    expected_eval = ref.evaluate(x, y, batch_size=BATCH, verbose=0)
    got = model().evaluate(((xb, yb, None) for xb, yb in batches(x, y)), verbose=0)
    assert got == expected_eval
    predicted = ref.predict((xb for xb, _ in batches(x, y)), verbose=0)
    # (the same batches: a Dense row's rounding may depend on its batch's rows)
    np.testing.assert_array_equal(predicted, ref.predict(x, batch_size=BATCH, verbose=0))
    # predict ignores the targets of (x, y) batches, and `steps` cuts the pass.
    assert ref.predict(Batches(x, y), steps=2, verbose=0).shape == (2 * BATCH, 3)


def test_an_iterator_is_accepted_like_a_generator():
    x, y = data()
    expected = model().evaluate(x, y, batch_size=BATCH, verbose=0)
    assert model().evaluate(iter(list(batches(x, y))), verbose=0) == expected


def test_py_dataset_shuffle_changes_the_batch_order_not_the_batches():
    x, y = data()
    dataset = Batches(x, y)
    model().fit(dataset, epochs=3, verbose=0)
    epochs = [dataset.fetched[k * 4:(k + 1) * 4] for k in range(3)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in epochs)
    assert len({tuple(order) for order in epochs}) > 1


def test_on_epoch_end_is_called_as_keras():
    # Keras' epoch iterator calls it once when fit starts, then after every epoch.
    x, y = data()
    dataset = Batches(x, y)
    model().fit(dataset, epochs=3, shuffle=False, verbose=0)
    assert dataset.epoch_ends == 4


# ----------------------------------------------------------------------------
# steps_per_epoch, validation_*, initial_epoch


def test_steps_per_epoch_continues_the_pass_in_the_next_epoch():
    # 4 batches, 3 steps an epoch: epoch 1 takes batches 0-2, epoch 2 batch 3
    # (the data then runs out: a warning), epoch 3 starts a new pass.
    x, y = data()
    dataset = Batches(x, y)
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model().fit(dataset, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0)
    assert dataset.fetched == [0, 1, 2, 3, 0, 1, 2]
    assert history.epoch == [0, 1, 2]


def test_steps_without_batch_size_split_the_arrays_evenly_as_keras():
    # Keras: batch_size = ceil(samples / steps) when only the steps are given.
    x, y = data()
    ref = model()
    ref.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    net = model()
    net.fit(x, y, steps_per_epoch=2, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(ref, net)
    assert net.evaluate(x, y, steps=3, verbose=0) == net.evaluate(x, y, batch_size=7, verbose=0)


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_an_endless_py_dataset_needs_steps_per_epoch():
    x, y = data()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model().fit(Endless(x, y), verbose=0)
    with pytest.raises(ValueError, match="`steps`"):
        model().evaluate(Endless(x, y), verbose=0)
    ref, _ = reference_fit(x, y)
    net = model()
    net.fit(Endless(x, y), epochs=2, steps_per_epoch=4, verbose=0)
    assert_same_weights(ref, net)


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_a_generator_without_steps_runs_until_exhausted_then_training_stops():
    x, y = data()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model().fit(batches(x, y), epochs=3, verbose=0)
    assert history.epoch == [0]


def test_validation_freq_and_validation_steps():
    x, y = data()
    seen = []

    class CountTestBatches(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

    history = model().fit(x, y, batch_size=BATCH, epochs=4, verbose=0, shuffle=False,
                          validation_data=(x, y), validation_freq=2, validation_steps=2,
                          validation_batch_size=3, callbacks=[CountTestBatches()])
    assert len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2  # after epochs 2 and 4
    assert seen == [0, 1, 0, 1]
    history = model().fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
                          validation_freq=[1, 3])
    assert len(history.history["val_loss"]) == 2


def test_validation_on_six_rows_with_validation_steps_equals_evaluate():
    x, y = data()
    net = model()
    history = net.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False,
                      validation_data=Batches(x, y), validation_steps=1)
    loss, accuracy = net.evaluate(x[:BATCH], y[:BATCH], verbose=0)
    assert history.history["val_loss"] == [loss]
    assert history.history["val_accuracy"] == [accuracy]


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_validation_data_as_a_generator_with_validation_steps():
    x, y = data()
    net = model()
    history = net.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False,
                      validation_data=batches(x, y, passes=2), validation_steps=2)
    assert len(history.history["val_loss"]) == 2


def test_initial_epoch_and_a_resuming_callback():
    x, y = data()
    history = model().fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]

    class Resume(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model._initial_epoch = 2

    epochs = []
    history = model().fit(x, y, epochs=4, verbose=0, callbacks=[
        Resume(), callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))])
    assert epochs == [2, 3] and history.epoch == [2, 3]


def test_validation_split_holds_out_the_last_rows_of_the_sample_weights_too():
    x, y = data()
    ref = model()
    ref.fit(x[:15], y[:15], epochs=1, batch_size=5, shuffle=False, verbose=0)
    net = model()
    history = net.fit(x, y, epochs=1, batch_size=5, shuffle=False, verbose=0,
                      validation_split=0.25)
    assert_same_weights(ref, net)
    assert history.history["val_loss"] == [ref.evaluate(x[15:], y[15:], verbose=0)[0]]


# ----------------------------------------------------------------------------
# callbacks


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def _log(self, name, *args):
        self.events.append((name, *args))


for _hook in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
              "on_predict_begin", "on_predict_end"):
    setattr(Recorder, _hook, lambda self, logs=None, _h=_hook: self._log(_h))
for _hook in ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
              "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
              "on_predict_batch_end"):
    setattr(Recorder, _hook, lambda self, i, logs=None, _h=_hook: self._log(_h, i))


def test_hook_order_of_fit_with_validation_as_keras():
    x, y = data()
    recorder = Recorder()
    model().fit(x[:8], y[:8], batch_size=4, epochs=1, verbose=0, validation_data=(x[:6], y[:6]),
                validation_batch_size=4, callbacks=[recorder])
    assert recorder.events == [
        ("on_train_begin",), ("on_epoch_begin", 0),
        ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
        ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
        ("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
        ("on_test_batch_begin", 1), ("on_test_batch_end", 1), ("on_test_end",),
        ("on_epoch_end", 0), ("on_train_end",)]


def test_epoch_logs_and_predict_batch_outputs():
    x, y = data()
    epoch_logs, outputs = [], []
    cb = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: epoch_logs.append(sorted(logs)),
        on_predict_batch_end=lambda b, logs: outputs.append(logs["outputs"]))
    net = model()
    net.fit(Batches(x, y), epochs=1, verbose=0, validation_data=(x, y), callbacks=[cb])
    assert epoch_logs == [["accuracy", "loss", "val_accuracy", "val_loss"]]
    predicted = net.predict(Batches(x, y), callbacks=[cb], verbose=0)
    np.testing.assert_array_equal(np.concatenate(outputs), predicted)
    assert [len(o) for o in outputs] == [6, 6, 6, 2]


def test_stop_training_ends_fit_on_a_py_dataset():
    x, y = data()

    class Stop(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    dataset = Batches(x, y)
    history = model().fit(dataset, epochs=3, shuffle=False, verbose=0, callbacks=[Stop()])
    assert history.epoch == [0] and dataset.fetched == [0, 1]


def test_stop_evaluating_and_stop_predicting_end_the_pass():
    x, y = data()
    seen = []

    class Stop(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)
            self.model.stop_evaluating = True

        def on_predict_batch_end(self, batch, logs=None):
            self.model.stop_predicting = True

    net = model()
    assert net.evaluate(x, y, batch_size=BATCH, verbose=0, callbacks=[Stop()]) == net.evaluate(
        x[:BATCH], y[:BATCH], verbose=0)
    assert seen == [0]
    assert net.predict(x, batch_size=BATCH, verbose=0, callbacks=[Stop()]).shape == (BATCH, 3)


# ----------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("bad", ["some text", ["a", "b"], object(), {"x": "text"}])
def test_unsupported_data_names_its_type_and_what_is_supported(bad):
    _, y = data()
    with pytest.raises(TypeError, match=r"generator.*PyDataset.*received"):
        model().fit(bad, y, verbose=0)


def test_a_tf_dataset_like_object_is_refused_by_its_type():
    class DatasetV2:  # iterable but not an iterator, as tf.data.Dataset
        def __iter__(self):
            return iter([])

    with pytest.raises(TypeError, match="DatasetV2"):
        model().evaluate(DatasetV2(), verbose=0)


def test_keras_errors_for_arguments_the_data_does_not_take():
    x, y = data()
    with pytest.raises(ValueError, match="`y` should not be passed"):
        model().fit(batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="`sample_weights` should not be passed"):
        model().fit(Batches(x, y), sample_weight=np.ones(N), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model().fit(Batches(x, y), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model().predict(batches(x, y), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="class_weight.*not supported for Python generator"):
        model().fit(batches(x, y), class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="validation_split.*only supported"):
        model().fit(batches(x, y), validation_split=0.5, verbose=0)


@pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")
def test_bad_batches_and_bad_arguments():
    x, y = data()
    with pytest.raises(ValueError, match=r"`\(x, y, sample_weight\)`"):
        model().fit(iter([(x, y, None, None)]), verbose=0)
    with pytest.raises(ValueError, match=r"PyDataset.*received"):
        class Strings(Batches):
            def __getitem__(self, i):
                return "batch"
        model().fit(Strings(x, y), verbose=0)
    for name, value in (("steps_per_epoch", 0), ("validation_steps", -1),
                        ("validation_batch_size", 1.5), ("validation_freq", 0),
                        ("initial_epoch", -1)):
        with pytest.raises(ValueError, match=f"`{name}`"):
            model().fit(x, y, verbose=0, validation_data=(x, y), **{name: value})
    with pytest.raises(ValueError, match="validation_data"):
        model().fit(x, y, verbose=0, validation_data=(x, y, None, None))
    with pytest.raises(ValueError, match="cardinality"):
        model().fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match="not sufficient to split"):
        model().fit(x[:1], y[:1], verbose=0, validation_split=0.5)


def test_py_dataset_arguments_are_checked_and_a_missing_super_init_warns():
    with pytest.raises(ValueError, match="`workers`"):
        utils.PyDataset(workers=-1)
    with pytest.raises(ValueError, match="`max_queue_size`"):
        utils.PyDataset(max_queue_size=0)

    class NoSuper(utils.PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return data()

    with pytest.warns(UserWarning, match="super"):
        assert NoSuper().workers == 1


def test_unpack_x_y_sample_weight():
    x = np.zeros(2)
    assert data_adapters.unpack_x_y_sample_weight(x)[1:] == (None, None)
    assert data_adapters.unpack_x_y_sample_weight((x, 1)) == (x, 1, None)
    assert data_adapters.unpack_x_y_sample_weight([x, 1, 2]) == (x, 1, 2)
    with pytest.raises(ValueError, match="found a tuple of 4"):
        data_adapters.unpack_x_y_sample_weight((x, 1, 2, 3))

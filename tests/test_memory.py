"""fastconv.runtime.allocator.retained_heap: glibc's thresholds raised once for nested
calls, set back on the way out, the heap trimmed after fit-like calls but not
after per-batch ones; FASTCONV_MALLOC=default turns it all off."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import fastconv
from fastconv import layers, models
from fastconv.runtime import allocator as _memory


class FakeGlibc:
    """Records the mallopt and malloc_trim calls retained_heap makes."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("trim", pad))
        return 1


def fake_glibc(monkeypatch) -> FakeGlibc:
    fake = FakeGlibc()
    monkeypatch.setattr(_memory, "_glibc", lambda: (fake.mallopt, fake.malloc_trim))
    return fake


RAISED = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.MMAP_THRESHOLD),
          ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.TRIM_THRESHOLD)]
LOWERED = [("mallopt", _memory.M_MMAP_THRESHOLD, _memory.AFTER_MMAP_THRESHOLD),
           ("mallopt", _memory.M_TRIM_THRESHOLD, _memory.AFTER_TRIM_THRESHOLD)]


def test_nested_uses_set_the_thresholds_once_and_trim_at_the_end(monkeypatch):
    fake = fake_glibc(monkeypatch)
    with _memory.retained_heap():
        with _memory.retained_heap(trim=False):
            assert fake.calls == RAISED
        assert fake.calls == RAISED
    assert fake.calls == RAISED + LOWERED + [("trim", 0)]


def test_per_batch_use_leaves_the_heap_untrimmed(monkeypatch):
    fake = fake_glibc(monkeypatch)
    with _memory.retained_heap(trim=False):
        pass
    assert fake.calls == RAISED + LOWERED


def test_model_calls_trim_after_fit_but_not_after_a_batch(monkeypatch):
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1)),
                               layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((4, 6, 6, 1), dtype=np.float32)
    y = np.zeros((4, 2), np.float32)
    fake = fake_glibc(monkeypatch)
    for step in (lambda: model.train_on_batch(x, y), lambda: model.test_on_batch(x, y),
                 lambda: model.predict_on_batch(x)):
        fake.calls.clear()
        step()
        assert fake.calls == RAISED + LOWERED
    for call in (lambda: model.fit(x, y, epochs=1, verbose=0),
                 lambda: model.evaluate(x, y, verbose=0), lambda: model.predict(x, verbose=0)):
        fake.calls.clear()
        call()
        assert fake.calls == RAISED + LOWERED + [("trim", 0)]


def test_fastconv_malloc_default_turns_it_off():
    code = "from fastconv.runtime import allocator; print(allocator.enabled())"
    env = {**os.environ, "FASTCONV_MALLOC": "default"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"

"""model.profile, the layer backend switch, the FMA peak and memory-bandwidth
probes, the allocator setting and the bench command (with its convolution
family section)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import layers, reference
from fastconv._kernels import _runtime


def seed_model():
    from fastconv.cli.train import seed_cnn

    fastconv.utils.set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model


def test_profile_reports_every_layer_with_hand_counted_flops(capsys):
    model = seed_model()
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    y = np.arange(4) % 10
    before = model.get_weights()
    rows = model.profile(x, y, repeat=2)
    assert [r["layer"] for r in rows] == [layer.name for layer in model.layers]
    # Each max pool runs inside its convolution's calls, timed there.
    fused = {r["layer"]: r["fused_into"] for r in rows if r["fused_into"]}
    assert fused == {model.layers[1].name: model.layers[0].name,
                     model.layers[3].name: model.layers[2].name}
    for r in rows:
        assert (r["forward_ms"] == 0 and r["backward_ms"] == 0) == (r["layer"] in fused)
        assert r["layer"] in fused or (r["forward_ms"] > 0 and r["backward_ms"] > 0)
    conv1 = 2.0 * 4 * 26 * 26 * 3 * 3 * 1 * 32 / 1e9
    conv2 = 2.0 * 4 * 11 * 11 * 3 * 3 * 32 * 64 / 1e9
    dense1 = 2.0 * 4 * 576 * 64 / 1e9
    assert rows[0]["forward_gflop"] == pytest.approx(conv1)
    assert rows[0]["backward_gflop"] == pytest.approx(conv1)  # no dx for the first layer
    assert rows[2]["backward_gflop"] == pytest.approx(2 * conv2)
    assert rows[6]["forward_gflop"] == pytest.approx(dense1)
    assert rows[1]["forward_gflop"] == 0
    out = capsys.readouterr().out
    assert f"{model.layers[2].name} (Conv2D)" in out and f"in {model.layers[2].name}" in out
    for a, b in zip(before, model.get_weights()):  # profiling does not train
        np.testing.assert_array_equal(a, b)


def test_use_backend_runs_the_same_model_on_the_reference():
    model = seed_model()
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    fast = model.predict(x, verbose=0)
    with layers.use_backend(reference):
        assert layers.kernels() is reference
        slow = model.predict(x, verbose=0)
    assert layers.kernels() is fastconv.ops
    np.testing.assert_allclose(slow, fast, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="`module`.*lacks"), layers.use_backend(np):
        pass


def test_fma_peak_probe_measures_a_positive_rate():
    rate = _runtime.fma_peak_gflops("generic", 1, seconds=0.02)
    # Two FLOPs per lane per multiply-add: any CPU of the last 20 years does
    # more than 1 GFLOP/s even on the portable path.
    assert 1.0 < rate < 1e5


def test_triad_probe_measures_a_positive_bandwidth():
    for threads in (1, 2):
        rate = _runtime.triad_gbps(threads, mib=1.0, passes=2)
        # 12 bytes an element: any machine moves between 0.1 GB/s and 10 TB/s.
        assert 0.1 < rate < 1e4
    with pytest.raises(ValueError, match="n_threads >= 1"):
        _runtime.triad_gbps(0)


def test_family_cases_agree_with_the_reference_and_pytorch():
    """Each named shape, at batch 1, computes the same on every backend."""
    from fastconv.cli.bench_family import CASES, make_case

    pytest.importorskip("torch")
    for name in CASES:
        case = make_case(name, 1)
        results = [case.calls(b)[0]() for b in ("fastconv", "reference", "torch")]
        fast, ref, theirs = (r[0] if isinstance(r, tuple) else r for r in results)
        theirs = np.moveaxis(theirs.numpy(), 1, -1) if theirs.ndim > 2 else theirs.numpy()
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(fast, theirs, rtol=1e-4, atol=1e-4, err_msg=name)
        for step in (case.calls(b)[1] for b in ("fastconv", "reference", "torch")):
            step()


def test_allocator_setting_can_be_declined():
    code = "import fastconv.runtime.allocator as m; print(m.enabled())"
    env = {**os.environ, "FASTCONV_MALLOC": "default"}
    root = str(Path(fastconv.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"


def test_bench_command_prints_layers_and_the_training_step(tmp_path):
    root = str(Path(fastconv.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "fastconv", "bench", "--batch", "4",
                          "--repeat", "1", "--family", "--family-batch", "1", "--reference",
                          "--load", "1"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "FMA peak" in text and "conv2d_1 (11, 11, 64)" in text
    assert "training step (fwd + bwd + rmsprop)" in text and "% peak" in text
    assert "residual CNN" in text and "training step: fastconv" in text
    assert "STREAM triad" in text and "GB/s" in text.splitlines()[0]
    family = text[text.index("convolution family"):].splitlines()
    for column in ("ms", "torch ms", "fc/torch", "GFLOP/s", "% peak", "GB/s", "% triad",
                   "ref ms"):
        assert column in family[1]
    from fastconv.cli.bench_family import CASES

    for name in CASES:
        assert any(line.startswith(name) for line in family), name
    assert any("depthwise part" in line for line in family)
    assert "Conv1D classifier" in text and "MobileNet-style net" in text
    busy = text[text.index("busy machine: 1 other CPU-bound process beside"):].splitlines()
    assert "busy / 1 thread quiet" in busy[1]
    assert any(line.startswith("fastconv, 1 thread") for line in busy)


def test_busy_processes_end_with_the_block():
    from fastconv.cli.bench_load import busy_processes

    def spinners() -> set[int]:
        found = set()
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"while True: pass" in f.read():
                        found.add(int(pid))
            except (OSError, ValueError):
                continue
        return found

    before = spinners()
    with busy_processes(2):
        assert len(spinners() - before) == 2
    assert spinners() - before == set()


def test_a_negative_load_is_refused():
    out = subprocess.run([sys.executable, "-m", "fastconv", "bench", "--load", "-1"],
                         env={**os.environ, "PYTHONPATH": str(
                             Path(fastconv.__file__).resolve().parent.parent)},
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "--load: expected an int >= 0, received -1" in out.stderr


def test_blas_threads_are_restored_after_nested_and_concurrent_calls():
    import threading

    from fastconv.runtime import blas as _blas

    if not _blas._openblas_controls():
        pytest.skip("no OpenBLAS loaded")
    before = _blas.blas_threads()
    model = seed_model()
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    seen = []
    inner = fastconv.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append((_blas.blas_threads(),
                                                      model.predict(x, verbose=0).shape)))
    model.fit(x, np.arange(8) % 10, epochs=1, verbose=0, callbacks=[inner])
    assert seen and all(n == 1 for n in seen[0][0]) and seen[0][1] == (8, 10)
    assert _blas.blas_threads() == before
    workers = [threading.Thread(target=lambda: [model.predict(x, verbose=0) for _ in range(5)])
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert _blas.blas_threads() == before


def test_fit_with_profile_keeps_and_prints_the_rows(capsys):
    model = seed_model()
    x = np.random.default_rng(2).random((6, 28, 28, 1), dtype=np.float32)
    y = np.arange(6) % 10
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=1, profile=True)
    assert [r["layer"] for r in history.profile] == [layer.name for layer in model.layers]
    conv1 = 2.0 * 4 * 26 * 26 * 3 * 3 * 1 * 32 / 1e9  # the first batch: 4 images
    assert history.profile[0]["forward_gflop"] == pytest.approx(conv1)
    assert "conv2d" in capsys.readouterr().out
    assert not hasattr(model.fit(x, y, epochs=1, verbose=0), "profile")
    with pytest.raises(TypeError, match="`profile`"):
        model.fit(x, y, epochs=1, verbose=0, profile="yes")

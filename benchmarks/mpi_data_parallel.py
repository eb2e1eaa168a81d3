"""Data-parallel training of the seed CNN over MPI: compute, communication, bytes.

    python benchmarks/mpi_data_parallel.py [--ranks 1 2 4] [--steps 6] [--batch 256]

launches ``mpirun -n K`` (oversubscribed, one thread per rank) for each rank
count and each reduction (``exact``, ``allreduce``) and prints, per training
step of the seed CNN (Conv2D(32, 3, relu) -> MaxPool -> Conv2D(64, 3, relu) ->
MaxPool -> Flatten -> Dense(10), 28x28x1 inputs, RMSprop) at the global
batch: the wall time, the compute time (forward, loss, backward and update
on the rank's chunks), the communication time (the collectives) and the
bytes a rank receives. A plain single-process ``fit`` (no strategy) is the
baseline. The first step (weights broadcast, warm-up) is not counted.
On a machine with fewer cores than ranks the ranks share cores, so compute
times stop falling there. A projection to 8-64 machines follows, from the
measured one-rank compute time and gradient size and an alpha-beta network
model (``exchange_seconds``). ``--worker`` is the program each rank runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _model(fastconv):
    from fastconv import layers
    model = fastconv.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    return model


def worker(reduction: str, steps: int, batch: int) -> None:
    import fastconv
    fastconv.set_num_threads(1)
    fastconv.utils.set_random_seed(0)
    data = np.random.default_rng(0)
    x = data.standard_normal((batch * (steps + 1), 28, 28, 1)).astype("float32")
    y = data.integers(0, 10, len(x))
    if reduction == "plain":
        model = _model(fastconv)
        strategy = None
    else:
        strategy = fastconv.distribute.MPIDataParallel(reduction=reduction)
        with strategy.scope():
            model = _model(fastconv)
    times: list[float] = []

    class Clock(fastconv.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()
            if batch == 1 and strategy is not None:  # step 0 is the warm-up
                strategy.timings.update(compute=0.0, communicate=0.0, bytes=0, steps=0)

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[Clock()])
    wall = float(np.mean(times[1:]))
    if strategy is None:
        result = {"wall": wall, "compute": wall, "communicate": 0.0, "bytes": 0}
    else:
        t = strategy.timings
        mine = {k: t[k] / t["steps"] for k in ("compute", "communicate", "bytes")}
        every = strategy.comm.gather(mine, root=0)
        if strategy.rank != 0:
            return
        result = {"wall": wall, **{k: max(r[k] for r in every) for k in mine}}
    n_params = sum(w.value.size for w in model.trainable_weights)
    print(json.dumps({**result, "params": int(n_params)}))


def _mpirun() -> str:
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if found is None:
        sys.exit("mpirun not found: pip install \"fastconv[mpi]\"")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--worker", choices=["plain", "exact", "allreduce"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.batch)
        return
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    try:  # the ranks import the same fastconv (installed, or the tree's in place)
        import fastconv
        src = str(Path(fastconv.__file__).resolve().parent.parent)
    except ImportError:
        src = str(Path(__file__).resolve().parents[1] / "src")
        sys.path.insert(0, src)  # the projection reads the segment rule
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    me = [sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps),
          "--batch", str(args.batch), "--worker"]
    runs = [("plain", 1)] + [(r, k) for k in args.ranks for r in ("exact", "allreduce")]
    print(f"seed CNN, global batch {args.batch}, {args.steps} timed steps, 1 thread a rank, "
          f"{os.cpu_count()} cores")
    print(f"{'reduction':>10} {'ranks':>5} {'step ms':>8} {'compute ms':>10} "
          f"{'comm ms':>8} {'KB recv':>8}")
    measured = {}
    for reduction, ranks in runs:
        cmd = me + [reduction]
        if reduction != "plain":
            cmd = [_mpirun(), "--oversubscribe", "-n", str(ranks), "-x", "PYTHONPATH", "-x",
                   "OMP_NUM_THREADS", *cmd]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(done.stdout + done.stderr)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        measured[reduction, ranks] = r
        print(f"{reduction:>10} {ranks:>5} {1e3 * r['wall']:8.1f} {1e3 * r['compute']:10.1f} "
              f"{1e3 * r['communicate']:8.2f} {r['bytes'] / 1024:8.0f}")
    if ("exact", 1) in measured:
        _projection(measured["exact", 1], args.batch)


# The network model of the projection: each collective step costs a latency
# alpha plus bytes / beta (the alpha-beta model), one rank per machine.
NETWORKS = {"10 GbE": (25e-6, 1.25e9), "100 Gb/s InfiniBand": (2e-6, 12.5e9)}


def exchange_seconds(reduction: str, machines: int, chunks: int, vector_bytes: float,
                     alpha: float, beta: float) -> float:
    """Modelled time of one step's gradient exchange among ``machines``.

    ``allreduce``: a ring, 2 (P - 1) steps each moving 1/P of the vector.
    ``exact``: the chain of the C = min(P, chunks) machines that run chunks,
    the vector in S segments (``fastconv.distribute.mpi._segments``): S + C - 2
    pipeline steps of one segment; then a broadcast of the total as a
    scatter and a ring allgather (log2 P + P - 1 latencies, 2 (P - 1) / P of
    the vector).
    """
    from fastconv.distribute.mpi import _segments
    p = machines
    if p == 1:
        return 0.0
    if reduction == "allreduce":
        return 2 * (p - 1) * alpha + 2 * (p - 1) / p * vector_bytes / beta
    c = min(p, chunks)
    s = len(_segments(int(vector_bytes // 4), c, 4))
    chain = (s + c - 2) * (alpha + vector_bytes / s / beta)
    broadcast = (np.log2(p) + p - 1) * alpha + 2 * (p - 1) / p * vector_bytes / beta
    return chain + broadcast


def _projection(one_rank: dict, batch: int) -> None:
    """Step time on 8 to 64 machines from the measured one-rank compute."""
    chunks = min(batch, 16)
    per_chunk = one_rank["compute"] / chunks
    vector = 4.0 * one_rank["params"]
    print(f"\nprojection, one rank of 1 thread per machine: a chunk computes in "
          f"{1e3 * per_chunk:.2f} ms (measured: the 1-rank compute / {chunks} chunks), "
          f"gradient {vector / 1024:.0f} KB; the network is the alpha-beta model of "
          "exchange_seconds()")
    print(f"{'network':>20} {'machines':>8} {'reduction':>10} {'step ms':>8} "
          f"{'comm ms':>8} {'speed-up':>8}")
    for network, (alpha, beta) in NETWORKS.items():
        for machines in (1, 8, 16, 32, 64):
            for reduction in ("exact", "allreduce"):
                compute = -(-chunks // min(machines, chunks)) * per_chunk
                comm = exchange_seconds(reduction, machines, chunks, vector, alpha, beta)
                print(f"{network:>20} {machines:>8} {reduction:>10} "
                      f"{1e3 * (compute + comm):8.2f} {1e3 * comm:8.3f} "
                      f"{one_rank['compute'] / (compute + comm):8.1f}")


if __name__ == "__main__":
    main()

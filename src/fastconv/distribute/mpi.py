"""Data-parallel training over MPI: one model per process, one global batch.

How a step is shared out
------------------------
Every rank iterates the same global batches (the shuffling generator is
broadcast from rank 0 when ``fit`` begins). The engine sums every weight
gradient over fixed chunks of a batch (``fastconv.runtime.batch``): a batch
of ``n`` rows has ``G = min(n, 16)`` chunks, chunk ``j`` holding rows
``[n * j // G, n * (j + 1) // G)``. Rank ``r`` of ``k`` owns the chunks
``[G * r // k, G * (r + 1) // k)`` and runs forward, loss and backward on
each of them alone, inside ``batch.chunk_of(n, j)``: its kernels then sum
the chunk as the whole batch's kernels would, and its loss divides by ``n``.

The weight gradient of the step is ``g_0 + g_1 + ... + g_{G-1}``, added in
chunk order, as on one process. With ``reduction="exact"`` the ranks that
run chunks form a chain in rank order: each receives the sum of the chunks
before its own, adds its chunks and sends the sum on (in segments, a
pipeline), and the last broadcasts the total. So the bits depend neither on the number of
ranks nor on the MPI library: k ranks give the weights of a plain ``fit`` on
one process, for any k (a rank with no chunk only listens). With
``reduction="allreduce"`` each rank adds its own chunks and one
``Allreduce`` adds the ranks' sums in an order the MPI library chooses.

Random layers draw by chunks too (``fastconv.runtime.random``): the keys of
a step are taken once, in the order a plain forward pass takes them, and
replayed for each chunk, so a chunk's dropout mask does not depend on which
rank runs it.

The losses, per-output losses and outputs of the chunks are gathered too, so
every rank updates its metrics with the whole batch and logs global values.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastconv.distribute import _scope
from fastconv.distribute._watchdog import Watchdog
from fastconv.runtime import batch as _batch
from fastconv.runtime import random as _random
from fastconv.training import data_adapters

_REDUCTIONS = ("exact", "allreduce")


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError("fastconv.distribute.MPIDataParallel needs mpi4py and an MPI "
                          "library: pip install \"fastconv[mpi]\"") from err
    return MPI


def owned_chunks(n_chunks: int, rank: int, size: int) -> range:
    """The chunks rank ``rank`` of ``size`` computes: a contiguous block."""
    return range(n_chunks * rank // size, n_chunks * (rank + 1) // size)


_CHAIN_TAG = 17
_SEGMENT_BYTES = 1 << 18


def _segments(n: int, chain: int, itemsize: int) -> list[tuple[int, int]]:
    """The pieces a chained sum sends the vector in: at least one per rank
    of the chain (so all of them work at once) and about 256 KB each."""
    count = max(chain, -(-n * itemsize // _SEGMENT_BYTES))
    count = max(1, min(count, n))
    return [(n * s // count, n * (s + 1) // count) for s in range(count)]


def _offsets(counts: list[int]) -> list[int]:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()


class MPIDataParallel:
    """Synchronous data parallelism over MPI ranks (``mpirun -n K python train.py``).

    Models compiled inside ``strategy.scope()`` train, evaluate and predict
    on every rank: ``fit(x, y, batch_size=B)`` takes global batches of ``B``
    rows and shares each one out among the ranks. Every rank must hold the
    same data and build the same model; rank 0's initial weights and random
    state are broadcast when ``fit`` begins. Only rank 0 prints progress and
    runs the callbacks that write files (``ModelCheckpoint``, ``CSVLogger``,
    ``ProgbarLogger``); every rank gets the global loss and metrics, the full
    ``evaluate`` result and the full ``predict`` output.

    Parameters
    ----------
    reduction : {"exact", "allreduce"}
        How the ranks' gradients are combined. ``"exact"`` (the default)
        adds the gradients of the batch chunks in chunk order (a pipelined
        chain of the ranks, then a broadcast of the total), so any
        number of ranks gives the bits of a plain ``fit`` on one process;
        ``"allreduce"`` sends a rank's sum through one ``MPI_Allreduce``,
        whose order of addition belongs to the MPI library.
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.
    abort_on_error : bool
        Install a ``sys.excepthook`` that calls ``MPI_Abort`` after printing
        an uncaught exception, so a rank that fails outside a collective
        ends the whole job instead of leaving the others waiting.
    timeout : float or None, default 600
        The longest a rank waits, in seconds, for the others in one exchange
        (the wait includes the slowest rank's share of a step, or its
        callbacks between epochs). Past it the rank prints which exchange
        timed out and ends the job with ``MPI_Abort``, so a rank that hangs
        without failing cannot stall the job for ever. ``None``: no bound.

    Notes
    -----
    A batch has at most 16 chunks, so at most 16 ranks share its work; more
    ranks only listen. Each chunk is one forward and backward call, so a
    rank running several chunks pays the per-call cost of each.
    Bitwise equal to one process needs, besides ``reduction="exact"``: each
    weight used by one layer call per step (a layer shared by two calls
    adds its two gradients per chunk, not per batch). Not supported, with a
    clear error: a model's own ``train_step``, layers whose forward pass
    updates state (``BatchNormalization``'s moving statistics), losses that
    divide by a count of the whole batch other than its rows (a mask, or
    ``reduction="mean_with_sample_weight"``), weights of several dtypes,
    ``evaluate`` and ``predict`` assume the ranks hold the same
    weights (as after ``fit``, or a model loaded from one file). A rank that
    raises inside a step makes every rank raise the same ``RuntimeError``;
    one that raises elsewhere, uncaught, ends the job through ``MPI_Abort``;
    one that dies is reported by ``mpirun``, which ends the others; one
    that hangs ends the job after ``timeout`` seconds.
    ``BackupAndRestore`` backs up from rank 0 and every rank resumes from
    rank 0's backup (read by rank 0 and broadcast: the ranks need not share
    a file system), so a resumed run gives the bits of an uninterrupted one.
    """

    def __init__(self, reduction: str = "exact", comm: Any = None,
                 abort_on_error: bool = True, timeout: float | None = 600.0) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`: expected one of "
                             f"{_REDUCTIONS}, received reduction={reduction!r}.")
        if not isinstance(abort_on_error, bool):
            raise TypeError(f"Invalid value for argument `abort_on_error`: expected a bool, "
                            f"received abort_on_error={abort_on_error!r}.")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(
                timeout, (int, float)) or not timeout > 0):
            raise ValueError(f"Invalid value for argument `timeout`: expected a positive "
                             f"number of seconds or None, received timeout={timeout!r}.")
        self.MPI = _mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.reduction = reduction
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timings = {"compute": 0.0, "communicate": 0.0, "bytes": 0, "steps": 0}
        self._fresh = True
        self._watchdog = Watchdog(None if timeout is None else float(timeout), self.rank,
                                  lambda: self.comm.Abort(1))
        if abort_on_error:
            self._install_excepthook()

    @property
    def num_replicas_in_sync(self) -> int:
        """The number of ranks (Keras' name)."""
        return self.size

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @contextlib.contextmanager
    def scope(self) -> Iterator[MPIDataParallel]:
        """Models compiled inside train with this strategy."""
        _scope.push(self)
        try:
            yield self
        finally:
            _scope.pop(self)

    # -- faults ------------------------------------------------------------

    def _install_excepthook(self) -> None:
        previous = sys.excepthook
        comm, rank = self.comm, self.rank

        def hook(kind: Any, value: Any, tb: Any) -> None:
            sys.stderr.write(f"fastconv.distribute: rank {rank} failed, aborting the job:\n")
            previous(kind, value, tb)
            sys.stderr.flush()
            sys.stdout.flush()
            comm.Abort(1)

        sys.excepthook = hook

    def _exchange(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """One collective call, timed and bounded by the watchdog."""
        t0 = time.perf_counter()
        with self._watchdog.waiting(what):
            result = call(*args, **kwargs)
        self.timings["communicate"] += time.perf_counter() - t0
        return result

    def _agree(self, ok: bool, message: str, payload: Any = None) -> list:
        """Every rank's payload; raises on every rank if one of them failed."""
        got = self._exchange("the exchange of the step's results", self.comm.allgather,
                             (ok, message, payload))
        failed = [(r, m) for r, (o, m, _) in enumerate(got) if not o]
        if failed:
            lines = "; ".join(f"rank {r}: {m}" for r, m in failed)
            raise RuntimeError(f"fastconv.distribute: a step failed on {len(failed)} of "
                               f"{self.size} ranks, every rank stops: {lines}")
        return [p for _, _, p in got]

    def from_root(self, read: Any) -> Any:
        """``read()`` run on rank 0 alone, its result given to every rank
        (an error it raises is raised on every rank)."""
        ok, value = True, None
        if self.is_root:
            try:
                value = read()
            except Exception as err:  # noqa: BLE001 - re-raised on every rank below
                ok, value = False, err
        ok, value = self._exchange("the broadcast of rank 0's files", self.comm.bcast,
                                   (ok, value), root=0)
        if not ok:
            raise value
        return value

    # -- the trainer's hooks -----------------------------------------------

    def begin(self, model: Any, what: str, verbose: int, callbacks: Any,
              batch_size: Any) -> tuple[int, list]:
        """Called as ``fit`` / ``evaluate`` / ``predict`` starts: checks that
        the ranks agree, broadcasts rank 0's random state (``fit``) and
        keeps output and file-writing callbacks to rank 0."""
        if what == "fit" and model._custom_train_step():
            raise ValueError(f"MPIDataParallel does not support a custom train_step "
                             f"({type(model).__name__}.train_step); use the default one.")
        callbacks = list(callbacks or [])
        from fastconv import callbacks as cb
        signature = (what, batch_size, self.reduction,
                     type(model.optimizer).__name__
                     if getattr(model, "optimizer", None) is not None else None)
        got = self._exchange(f"the start of {what}", self.comm.allgather, signature)
        for r, s in enumerate(got):
            if s != got[0]:
                raise ValueError(f"fastconv.distribute: rank {r} called {s[0]} with "
                                 f"batch_size={s[1]}, reduction={s[2]!r}, optimizer {s[3]} "
                                 f"where rank 0 has batch_size={got[0][1]}, reduction="
                                 f"{got[0][2]!r}, optimizer {got[0][3]}: every rank must run "
                                 "the same program on the same data.")
        if what == "fit":
            state = self._exchange("the broadcast of the random state", self.comm.bcast,
                                   _random.generator().bit_generator.state, root=0)
            _random.generator().bit_generator.state = state
            self._fresh = True
        if not self.is_root:
            writers = (cb.ModelCheckpoint, cb.CSVLogger, cb.ProgbarLogger)
            callbacks = [c for c in callbacks if not isinstance(c, writers)]
            verbose = 0
        return verbose, callbacks

    def _sync_model(self, model: Any, n_rows: int) -> None:
        """Before the first step of a fit: the same architecture and global
        batch on every rank, then rank 0's weights everywhere."""
        weights = model.weights
        dtypes = {v.value.dtype for v in model.trainable_weights}
        if len(dtypes) > 1:
            raise ValueError(f"MPIDataParallel needs one dtype for every trainable weight, "
                             f"received {sorted(str(d) for d in dtypes)}.")
        for layer in model._unique_layers():
            if hasattr(layer, "moving_mean"):
                raise ValueError(f"MPIDataParallel does not support layer '{layer.name}' "
                                 f"({type(layer).__name__}): its forward pass updates moving "
                                 "statistics, which the chunks of a step would each "
                                 "update on a different rank.")
        signature = (n_rows, [(v.name, tuple(v.value.shape), str(v.value.dtype))
                              for v in weights])
        got = self._exchange("the check of the models", self.comm.allgather, signature)
        for r, s in enumerate(got):
            if s[0] != got[0][0]:
                raise ValueError(f"fastconv.distribute: the global batch has {s[0]} rows on "
                                 f"rank {r} and {got[0][0]} on rank 0; every rank must read "
                                 "the same data with the same batch_size.")
            if s[1] != got[0][1]:
                raise ValueError(f"fastconv.distribute: the model on rank {r} has weights "
                                 f"{s[1]} where rank 0's has {got[0][1]}; every rank must "
                                 "build the same model.")
        for v in weights:
            value = np.ascontiguousarray(v.value)
            self._exchange("the broadcast of the weights", self.comm.Bcast, value, root=0)
            v.value[...] = value
        self._fresh = False

    # -- gathering -----------------------------------------------------------

    def _gather_rows(self, local: np.ndarray, counts: list[int]) -> np.ndarray:
        """Every rank's rows (``local``, counts[r] rows on rank r) in rank order."""
        row = int(np.prod(local.shape[1:], dtype=np.int64))
        out = np.empty((sum(counts), *local.shape[1:]), dtype=local.dtype)
        if self.size == 1:
            out[...] = local
            return out
        sizes = [c * row for c in counts]
        self._exchange("the gathering of the outputs", self.comm.Allgatherv,
                       np.ascontiguousarray(local), [out, (sizes, _offsets(sizes))])
        self.timings["bytes"] += out.nbytes - local.nbytes
        return out

    # -- one training step ---------------------------------------------------

    def train_step(self, model: Any, data: Any) -> tuple[float, list]:
        x, y, sample_weight = data_adapters.unpack_x_y_sample_weight(data)
        n = len(data_adapters.leaves(x)[0])
        if self._fresh:
            self._sync_model(model, n)
        bounds = _batch.chunk_bounds(n)
        mine = owned_chunks(len(bounds), self.rank, self.size)
        keys = _random.KeyRecord()
        variables = model.trainable_weights
        dtype = variables[0].value.dtype if variables else np.dtype(np.float32)
        n_params = sum(v.value.size for v in variables)
        parts = np.empty((len(mine), n_params), dtype=dtype)
        records, outputs = [], []
        ok, message = True, ""
        regularization = 0.0
        t0 = time.perf_counter()
        try:
            regularization = float(model.regularization_loss())
            for slot, j in enumerate(mine):
                xj, yj, swj = self._chunk(bounds[j], x, y, sample_weight)
                with _batch.chunk_of(n, j), keys.replay():
                    out_j, state = model.compute_forward(xj, training=True)
                    model._last_penalty = state[1].penalty
                    # Each chunk's loss is its share of the batch's mean; the
                    # weights' penalties count once per step.
                    loss_j = float(model.compute_loss(xj, yj, out_j, swj)) - regularization
                    per_output = [float(v) for v in model._last_output_losses]
                    model.backpropagate_loss(state, yj, out_j, swj)
                offset = 0
                for v in variables:
                    parts[slot, offset:offset + v.value.size] = v.grad.reshape(-1)
                    offset += v.value.size
                records.append([loss_j, *per_output])
                outputs.append(out_j)
            if not mine:
                # The random layers' generators advance as on the other ranks.
                xj = data_adapters.take_rows(x, slice(*bounds[0]))
                with _batch.chunk_of(n, 0), keys.replay():
                    model.compute_forward(xj, training=True)
        except Exception as err:  # noqa: BLE001 - every rank must hear of it, or the others wait
            ok, message = False, f"{type(err).__name__}: {err}"
            failure = err
        self.timings["compute"] += time.perf_counter() - t0
        try:
            gathered = self._agree(ok, message, records)
        except RuntimeError as err:
            if not ok:
                raise err from failure
            raise
        records = [rec for per_rank in gathered for rec in per_rank]
        counts = [len(owned_chunks(len(bounds), r, self.size)) for r in range(self.size)]
        total = self._combine(parts, counts, n_params, dtype)
        offset = 0
        for v in variables:
            v.grad[...] = total[offset:offset + v.value.size].reshape(v.value.shape)
            offset += v.value.size
        t0 = time.perf_counter()
        model.add_regularization_gradients()
        model.apply_gradients()
        self.timings["compute"] += time.perf_counter() - t0
        self.timings["steps"] += 1
        loss, model._last_output_losses = self._summed(records)
        return loss + regularization, self._gather_outputs(outputs, bounds, counts)

    @staticmethod
    def _chunk(rows: tuple[int, int], x: Any, y: Any, sample_weight: Any) -> tuple:
        part = slice(*rows)
        return (data_adapters.take_rows(x, part), data_adapters.take_rows(y, part),
                data_adapters.take_rows(sample_weight, part))

    @staticmethod
    def _summed(records: list) -> tuple[float, list]:
        """The batch's loss and per-output losses: the chunks' shares added
        in chunk order."""
        totals = [0.0] * (len(records[0]) if records else 1)
        for rec in records:
            totals = [t + v for t, v in zip(totals, rec)]
        return totals[0], totals[1:]

    def _combine(self, parts: np.ndarray, counts: list[int], n_params: int,
                 dtype: np.dtype) -> np.ndarray:
        if self.reduction == "exact":
            return self._exact_sum(parts, counts, n_params, dtype)
        local = np.zeros(n_params, dtype=dtype)
        if len(parts):
            local[...] = parts[0]
            for g in parts[1:]:
                local += g
        if self.size == 1:
            return local
        total = np.empty_like(local)
        self._exchange("the allreduce of the gradients", self.comm.Allreduce, local, total,
                       op=self.MPI.SUM)
        # A ring or tree allreduce moves about twice the vector per rank.
        self.timings["bytes"] += 2 * (self.size - 1) * local.nbytes // self.size
        return total

    def _exact_sum(self, parts: np.ndarray, counts: list[int], n_params: int,
                   dtype: np.dtype) -> np.ndarray:
        """The chunks' gradients added in chunk order, along a chain of the
        ranks that run chunks: each receives the sum of the chunks before
        its own, adds its chunks one by one and passes the sum on; the last
        one broadcasts the total. The vector travels in segments, so the
        ranks of the chain work at once on different segments (a pipeline).
        Each element is the same sum in the same order as on one process,
        and a rank receives about two vectors a step, as in a ring
        allreduce."""
        chain = [r for r, c in enumerate(counts) if c]
        total = np.empty(n_params, dtype=dtype)
        if self.size == 1:
            total[...] = parts[0]
            for g in parts[1:]:
                total += g
            return total
        t0 = time.perf_counter()
        where = chain.index(self.rank) if self.rank in chain else None
        received = 0
        if where is not None:
            before = chain[where - 1] if where > 0 else None
            after = chain[where + 1] if where + 1 < len(chain) else None
            for a, b in _segments(n_params, len(chain), dtype.itemsize):
                part = total[a:b]
                if before is None:
                    part[...] = parts[0, a:b]
                    rest = parts[1:, a:b]
                else:
                    with self._watchdog.waiting("the chained sum of the gradients"):
                        self.comm.Recv(part, source=before, tag=_CHAIN_TAG)
                    received += part.nbytes
                    rest = parts[:, a:b]
                for g in rest:
                    part += g
                if after is not None:
                    with self._watchdog.waiting("the chained sum of the gradients"):
                        self.comm.Send(part, dest=after, tag=_CHAIN_TAG)
        with self._watchdog.waiting("the broadcast of the summed gradients"):
            self.comm.Bcast(total, root=chain[-1])
        if self.rank != chain[-1]:
            received += total.nbytes
        self.timings["communicate"] += time.perf_counter() - t0
        self.timings["bytes"] += received
        return total

    def _gather_outputs(self, outputs: list, bounds: list, counts: list[int]) -> list:
        """The whole batch's outputs on every rank, from each rank's chunks."""
        n_out = len(outputs[0]) if outputs else None
        n_out = self._exchange("the gathering of the outputs", self.comm.allreduce,
                               n_out or 0, op=self.MPI.MAX)
        row_counts = []
        start = 0
        for c in counts:
            row_counts.append(sum(e - b for b, e in bounds[start:start + c]))
            start += c
        shapes = self._exchange("the gathering of the outputs", self.comm.allgather,
                                [(o.shape[1:], o.dtype.str) for o in outputs[0]]
                                if outputs else None)
        shapes = next(s for s in shapes if s is not None)
        full = []
        for k in range(n_out):
            local = (np.concatenate([o[k] for o in outputs]) if outputs else
                     np.empty((0, *shapes[k][0]), dtype=np.dtype(shapes[k][1])))
            full.append(self._gather_rows(local, row_counts))
        return full

    # -- evaluate / predict ----------------------------------------------------

    def test_batch(self, model: Any, x: Any, y: Any, sample_weight: Any) -> tuple[float, list]:
        """The loss and outputs of one evaluation batch, shared out like a
        training step."""
        n = len(data_adapters.leaves(x)[0])
        bounds = _batch.chunk_bounds(n)
        mine = owned_chunks(len(bounds), self.rank, self.size)
        records, outputs = [], []
        ok, message = True, ""
        regularization = 0.0
        try:
            regularization = float(model.regularization_loss())
            for j in mine:
                xj, yj, swj = self._chunk(bounds[j], x, y, sample_weight)
                with _batch.chunk_of(n, j):
                    loss_j, out_j = model._local_test_batch(xj, yj, swj)
                records.append([loss_j - regularization,
                                *[float(v) for v in model._last_output_losses]])
                outputs.append(out_j)
        except Exception as err:  # noqa: BLE001 - reported to every rank by _agree
            ok, message = False, f"{type(err).__name__}: {err}"
        gathered = self._agree(ok, message, records)
        records = [rec for per_rank in gathered for rec in per_rank]
        counts = [len(owned_chunks(len(bounds), r, self.size)) for r in range(self.size)]
        loss, model._last_output_losses = self._summed(records)
        return loss + regularization, self._gather_outputs(outputs, bounds, counts)

    def predict_batch(self, model: Any, x: Any) -> tuple[list, Any]:
        """The outputs of one batch, shared out by chunks as a training step
        (each chunk run alone, so any number of ranks gives the same bits);
        returns them and the plan (for the output structure)."""
        n = len(data_adapters.leaves(x)[0])
        bounds = _batch.chunk_bounds(n)
        mine = owned_chunks(len(bounds), self.rank, self.size)
        ok, message, outputs, plan = True, "", [], None
        try:
            for j in mine:
                arrays, structure = model._flat_inputs(
                    data_adapters.take_rows(x, slice(*bounds[j])))
                plan = model._plan_for(arrays, structure, False)
                with _batch.chunk_of(n, j):
                    outputs.append(plan.forward(arrays, False)[0])
            if plan is None:  # a rank with no chunk: the plan of one row gives the structure
                arrays, structure = model._flat_inputs(data_adapters.take_rows(x, slice(0, 1)))
                plan = model._plan_for(arrays, structure, False)
        except Exception as err:  # noqa: BLE001 - reported to every rank by _agree
            ok, message = False, f"{type(err).__name__}: {err}"
        self._agree(ok, message)
        counts = [len(owned_chunks(len(bounds), r, self.size)) for r in range(self.size)]
        return self._gather_outputs(outputs, bounds, counts), plan

"""The inference program: a plan's forward pass without a tape, compiled once
per input signature, so a prediction runs with almost no Python per layer.

``InferenceProgram(plan, arrays, training)`` runs the plan's inference pass
once on ``arrays`` (its result is ``first_outputs``), noting every tensor's
shape, then turns each run of consecutive steps the compiled kernels can
take into one ``fastconv._kernels.program.Program``, which executes all of
their kernel calls in one OpenMP parallel region:

- a Conv1D/Conv2D (channels_last, no groups, a linear or relu activation),
  and the Conv + MaxPooling pair the plan fuses (image by image when the
  batch has at least as many images as threads, else the two kernels one
  after the other, as ``fastconv.ops`` does);
- a MaxPooling1D/2D or AveragePooling1D/2D (channels_last);
- a Dense on float32, with its ReLU in the kernel (the executor's
  ``np.maximum(z, 0)``, bit for bit); another activation runs as a Python
  step on the kernel's output. A kernel whose columns are not a multiple
  of the vector width is copied into its zero-padded buffer by the
  program itself at each run;
- a GlobalAveragePooling or GlobalMaxPooling (channels_last, 1-3 spatial
  axes, with or without keepdims);
- Flatten, Reshape and Dropout (at inference) on an output of the above:
  views, no work.

Every other step runs as the executor runs it (``Plan.run_step``), between
programs. The compiled calls are the kernels ``fastconv.ops`` calls, on the
same geometry, so the outputs are bitwise those of ``Plan.forward``.

The buffers of the compiled steps' outputs are allocated once and reused
from run to run, and a buffer whose tensor is dead serves a later one (a
run holds about the live activations, as ``Plan.forward`` does); a Python
step's outputs count as reads of the buffers its inputs live in, since it
may return a view of them. Weights are read at each run (a new array is
bound, and a padded copy is refreshed in the program), so a program sees
weights changed by training or ``set_weights``. A weight replaced by an
array of another dtype or shape, or not C-contiguous, and a compiled
layer's activation, weight Variable or geometry reassigned, send the pass
to the executor (``StaleProgram``) and the program is dropped (the next
call builds one). The outputs are copies: nothing returned aliases a
buffer. A program is used by one thread at a time (``lock``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from fastconv import _validation as v
from fastconv._kernels import program as _program
from fastconv.graph.node import SINGLE
from fastconv.ops import spatial as _spatial

_FLOAT32 = np.dtype(np.float32)

SINGLE_THREAD_WORK = 4_000_000
"""Multiply-adds below which a program runs on one thread. Its other
threads would sleep between runs, and waking them costs more than they
save: on this 2-core machine the seed CNN's kernels on one image (2.8
million) took 90 us on one thread and 59 us on two when the second core
answered at once, while in an hour when the host was slow to wake it
``predict_on_batch`` took 200 us on one thread and 1,060 us on two."""


class _Buffers:
    """Flat float32 buffers handed out to tensors and taken back when they die."""

    def __init__(self) -> None:
        self.free: list[np.ndarray] = []

    def take(self, size: int) -> np.ndarray:
        fits = [i for i, b in enumerate(self.free) if b.size >= size]
        if fits:
            return self.free.pop(min(fits, key=lambda i: self.free[i].size))
        return np.empty(max(size, 1), dtype=_FLOAT32)

    def give(self, buffer: np.ndarray) -> None:
        self.free.append(buffer)


class _Segment:
    """One compiled run of steps: a Program, and what to bind before each run."""

    def __init__(self, team: int, isa: int) -> None:
        self.team, self.isa = team, isa
        self.ops: list[tuple] = []       # ("conv", args...) until built
        self.tensors: dict[Any, int] = {}
        self.sizes: list[int] = []
        self.external: list[tuple[int, int]] = []   # (tensor, slot) bound per run
        self.weights: list[tuple] = []  # (tensor, Variable, its shape)
        self.padded: list[tuple] = []   # (tensor, buffer): a weight with zero columns added
        self.owned: list[tuple[int, Any]] = []      # (tensor, key) of a program buffer
        self.bound: dict[int, Any] = {}
        self.program: Any = None

    def tensor(self, key: Any, size: int) -> int:
        """The number of the tensor ``key``, of at least ``size`` elements."""
        if key not in self.tensors:
            self.tensors[key] = len(self.sizes)
            self.sizes.append(size)
        i = self.tensors[key]
        self.sizes[i] = max(self.sizes[i], size)
        return i


class InferenceProgram:
    """A plan's inference pass for one input signature (module docstring)."""

    def __init__(self, plan: Any, arrays: list, training: bool, team: int, isa: int) -> None:
        self.plan = plan
        self.training = training
        self.lock = threading.Lock()
        values: list[Any] = [None] * plan.n_slots
        for s, a in zip(plan.input_slots, arrays):
            values[s] = a
        meta: dict[int, tuple] = {}
        for s, a in zip(plan.input_slots, arrays):
            meta[s] = (a.shape, a.dtype)
        for i, step in enumerate(plan.steps):
            plan.run_step(i, values, training)
            for s in step.out_slots:
                if isinstance(values[s], np.ndarray):
                    meta[s] = (values[s].shape, values[s].dtype)
        self.first_outputs = [np.array(values[s]) for s in plan.output_slots]
        self.team = team
        self._compile(meta, team, isa)
        if team > 1 and self.work < SINGLE_THREAD_WORK:
            self.team = 1
            self._compile(meta, 1, isa)

    # -- building ------------------------------------------------------------

    def _compile(self, meta: dict, team: int, isa: int) -> None:
        plan = self.plan
        # Actions: ("native", segment) or ("python", step index).
        actions: list[tuple] = []
        native_slots: dict[int, tuple] = {}  # slot -> (root key, shape)
        segment: _Segment | None = None
        self.n_native = 0
        self.work = 0  # multiply-adds of the compiled steps
        # (layer, attribute, the object it held): a compiled step's layer
        # whose weights, activation or geometry was reassigned since.
        self.guards: list[tuple] = []

        def current() -> _Segment:
            nonlocal segment
            if segment is None:
                segment = _Segment(team, isa)
                actions.append(("native", segment))
            return segment

        def close() -> None:
            nonlocal segment
            segment = None

        pseudo = [plan.n_slots]  # keys of buffers no slot names (pre-activations)

        def new_key() -> int:
            pseudo[0] += 1
            return pseudo[0]

        for i, step in enumerate(plan.steps):
            mode = self.training if step.training is None else step.training
            compiled = _compiled_step(step, mode, meta, native_slots, team)
            if compiled is None:
                close()
                actions.append(("python", i))
                continue
            kind = compiled[0]
            for layer in step.layers:
                self.guards.extend((layer, name, getattr(layer, name))
                                   for name in _GUARDED if hasattr(layer, name))
            if kind == "view":
                src = step.in_refs[0]
                root, _ = native_slots[src]
                native_slots[step.out_slots[0]] = (root, meta[step.out_slots[0]][0])
                continue
            self.n_native += 1
            self.work += _multiply_adds(compiled, meta[step.in_refs[0]][0])
            seg = current()
            out = step.out_slots[0]
            if kind == "dense_activation":
                # The kernel writes the pre-activation; the layer's activation
                # runs in Python on it (the layer's own function, its bits).
                z_key = new_key()
                z_shape = (*meta[out][0][:-1], compiled[1].units)
                seg.ops.append(("dense", compiled[1], False, step.in_refs[0], z_key))
                native_slots[z_key] = (z_key, z_shape)
                close()
                actions.append(("activation", compiled[1], z_key, out))
                continue
            if kind == "conv_then_pool":
                _, conv, geom, threads, pool_geom, pool_threads = compiled
                c_key = new_key()
                seg.ops.append(("conv", conv, geom, True, threads, step.in_refs[0], c_key))
                native_slots[c_key] = (c_key, geom.output_shape)
                seg.ops.append(("pool", pool_geom, pool_threads, c_key, out))
                native_slots[out] = (out, meta[out][0])
                continue
            seg.ops.append((kind, *compiled[1:], step.in_refs[0], out))
            native_slots[out] = (out, meta[out][0])
        self.actions = actions
        # Without a step of the executor's in it, a run calls no BLAS and
        # allocates only its activations' outputs and its results.
        self.self_contained = all(action[0] != "python" for action in actions)
        self._allocate(actions, native_slots, meta)

    def _allocate(self, actions: list, native_slots: dict, meta: dict) -> None:
        """Buffers for the compiled steps' outputs (reused once dead), then
        each segment's Program."""
        plan = self.plan
        # The action at which each buffer (root key) is last read.
        last: dict[Any, int] = {}
        first: dict[Any, int] = {}

        # A Python step may return its input or a view of it (Identity, a
        # linear activation, a reshape op): its outputs live in the buffers
        # of its inputs, so reading them reads those buffers.
        aliases: dict[Any, set] = {}

        def roots(slot: Any) -> set:
            return {native_slots[slot][0]} if slot in native_slots else aliases.get(slot, set())

        def read(slot: Any, at: int) -> set:
            found = roots(slot)
            for root in found:
                last[root] = max(last.get(root, at), at)
            return found

        for a, action in enumerate(actions):
            if action[0] == "native":
                for op in action[1].ops:
                    read(op[-2], a)
                    first.setdefault(op[-1], a)
            elif action[0] == "activation":
                aliases[action[3]] = read(action[2], a)
            else:
                step = plan.steps[action[1]]
                under = set()
                for ref in step.in_refs:
                    if type(ref) is int:
                        under |= read(ref, a)
                for s in step.out_slots:
                    aliases[s] = under
        for s in plan.output_slots:
            read(s, len(actions))
        sizes: dict[Any, int] = {}
        for slot, (root, shape) in native_slots.items():
            sizes[root] = max(sizes.get(root, 0), int(np.prod(shape)))
        pool = _Buffers()
        buffers: dict[Any, np.ndarray] = {}
        dying: dict[int, list] = {}
        for root, at in last.items():
            dying.setdefault(at, []).append(root)
        # An action takes the buffers of what it produces before it gives back
        # those of what it reads for the last time: within one action (whose
        # operations run in order) no two tensors share memory.
        for a in range(len(actions)):
            for root, at in first.items():
                if at == a and root in sizes:
                    buffers[root] = pool.take(sizes[root])
            for root in dying.get(a, []):
                if root in buffers:
                    pool.give(buffers[root])
        self.views: dict[int, np.ndarray] = {}
        for slot, (root, shape) in native_slots.items():
            if root in buffers:
                self.views[slot] = buffers[root][:int(np.prod(shape))].reshape(shape)
        # The values a run starts from: every slot a compiled step writes,
        # viewing its buffer.
        self.start = [None] * plan.n_slots
        for slot, view in self.views.items():
            if slot < plan.n_slots:
                self.start[slot] = view
        for action in actions:
            if action[0] == "native":
                self._build_segment(action[1], native_slots, buffers, meta)

    def _build_segment(self, seg: _Segment, native_slots: dict, buffers: dict,
                       meta: dict) -> None:
        def activation(slot: int) -> int:
            if slot in native_slots:
                root, shape = native_slots[slot]
                i = seg.tensor(("buffer", root), int(np.prod(shape)))
                seg.owned.append((i, root))
                return i
            i = seg.tensor(("slot", slot), int(np.prod(meta[slot][0])))
            if (i, slot) not in seg.external:
                seg.external.append((i, slot))
            return i

        def weight(var: Any) -> int:
            i = seg.tensor(("weight", id(var)), var.value.size)
            if all(i != j for j, _, _ in seg.weights):
                seg.weights.append((i, var, var.value.shape))
            return i

        specs = []
        for op in seg.ops:
            kind, x_slot, y_slot = op[0], op[-2], op[-1]
            x = activation(x_slot)
            y = activation(y_slot)
            if kind in ("conv", "conv_pool"):
                layer = op[1]
                w = weight(layer.kernel)
                b = weight(layer.bias) if layer.use_bias else -1
                specs.append((kind, op, x, w, b, y))
            elif kind in ("pool", "avg_pool", "global_pool"):
                specs.append((kind, op, x, y))
            else:  # dense
                layer = op[1]
                lanes = _program.lanes(seg.isa)
                units = layer.units
                width = -(-units // lanes) * lanes
                pads = []  # (rows, weight tensor, its padded copy)

                def padded(var: Any, rows: int) -> int:
                    if width == units:
                        return weight(var)
                    i = seg.tensor(("padded", id(var)), rows * width)
                    if all(i != j for j, _ in seg.padded):
                        seg.padded.append((i, np.zeros(rows * width, _FLOAT32)))
                    pads.append((rows, weight(var), i))
                    return i

                w = padded(layer.kernel, layer.kernel.shape[0])
                b = padded(layer.bias, 1) if layer.use_bias else -1
                specs.append((kind, op, x, w, b, y, width, pads))
        argmax = scratch = None
        for spec in specs:
            kind, op = spec[0], spec[1]
            if kind in ("pool", "conv_pool") or (kind == "global_pool" and op[1]):
                pooled = int(np.prod(meta[op[-1]][0]))
                argmax = seg.tensor("argmax", pooled)
            if kind == "conv_pool":
                scratch = seg.tensor("scratch", op[4] * int(np.prod(op[2].output_shape[1:])))
        program = _program.Program(seg.sizes, seg.team, seg.isa)
        for spec in specs:
            kind, op = spec[0], spec[1]
            if kind == "conv":
                _, layer, geom, relu, threads, _, _ = op
                program.add_conv(geom, relu, spec[2], spec[3], spec[4], spec[5], threads)
            elif kind == "conv_pool":
                _, layer, geom, pool_geom, threads, _, _ = op
                program.add_conv_max_pool(geom, pool_geom, spec[2], spec[3], spec[4], spec[5],
                                          argmax, scratch, threads)
            elif kind == "pool":
                _, geom, threads, _, _ = op
                program.add_max_pool(geom, spec[2], spec[3], argmax, threads)
            elif kind == "avg_pool":
                _, geom, threads, _, _ = op
                program.add_avg_pool(geom, spec[2], spec[3], threads)
            elif kind == "global_pool":
                _, maximum, n, positions, channels, block, threads, _, _ = op
                program.add_global_pool(maximum, n, positions, channels, block, spec[2],
                                        spec[3], argmax if maximum else -1, threads)
            else:
                _, layer, relu, _, _ = op
                rows = int(np.prod(meta[op[-2]][0][:-1]))
                width = spec[6]
                for pad_rows, src, dst in spec[7]:
                    program.add_pad_columns(pad_rows, layer.units, width, src, dst)
                program.add_dense(rows, layer.kernel.shape[0], layer.units, width, relu,
                                  spec[2], spec[3], spec[4], spec[5], seg.team)
        for i, root in seg.owned:
            program.bind(i, buffers[root])
        for i, buffer in seg.padded:
            program.bind(i, buffer)
        if argmax is not None:
            program.bind(argmax, np.empty(seg.sizes[argmax], dtype=np.int32))
        if scratch is not None:
            program.bind(scratch, np.empty(seg.sizes[scratch], dtype=_FLOAT32))
        seg.program = program

    # -- running -------------------------------------------------------------

    def run(self, arrays: list) -> list:
        """The plan's flat outputs for ``arrays`` (of the signature built for)."""
        for layer, name, held in self.guards:
            if getattr(layer, name, None) is not held:
                raise StaleProgram
        plan = self.plan
        values = self.start.copy()
        for s, a in zip(plan.input_slots, arrays):
            values[s] = a
        extra = self.views
        for action in self.actions:
            kind = action[0]
            if kind == "native":
                seg = action[1]
                program = seg.program
                for i, slot in seg.external:
                    program.bind(i, np.ascontiguousarray(values[slot], dtype=_FLOAT32))
                bound = seg.bound
                for i, var, shape in seg.weights:
                    value = var.value
                    if bound.get(i) is not value:
                        _check_weight(value, shape)
                        program.bind(i, value)
                        bound[i] = value
                program.run()
            elif kind == "activation":
                _, layer, z_key, out = action
                values[out] = layer.activation.forward(extra[z_key])
            else:
                plan.run_step(action[1], values, self.training)
        return [np.array(values[s]) for s in plan.output_slots]


class StaleProgram(Exception):
    """A weight no longer is what the program was built for (another dtype or
    shape, or not C-contiguous), or a compiled layer's attribute was
    reassigned (its activation, a weight's Variable, its geometry): the pass
    must run on the executor."""


# The attributes of a compiled step's layers that its program has read.
_GUARDED = ("kernel", "bias", "use_bias", "activation", "units", "strides", "padding",
            "dilation_rate", "kernel_size", "groups", "data_format", "pool_size",
            "target_shape")


def _check_weight(value: np.ndarray, shape: tuple) -> None:
    if value.dtype != _FLOAT32 or value.shape != shape or not value.flags.c_contiguous:
        raise StaleProgram


def _compiled_step(step: Any, mode: bool, meta: dict, native_slots: dict,
                   team: int) -> tuple | None:
    """How the program computes ``step``, or None when it runs in Python:
    ("view",), ("conv", layer, geom, relu, threads), ("conv_pool", layer,
    geom, pool_geom, threads), ("pool", geom, threads), ("avg_pool", geom,
    threads), ("global_pool", maximum, n,
    positions, channels, block, threads), ("dense", layer, relu) or
    ("dense_activation", layer), ("conv_then_pool", conv, geom, threads,
    pool_geom, pool_threads)."""
    from fastconv import activations
    from fastconv.graph.passes import ConvMaxPool, runs_as
    from fastconv.layers import Dense, Dropout, Flatten, Reshape
    from fastconv.layers.convolutional import BaseConv
    from fastconv.layers.global_pooling import _GlobalAveragePooling, _GlobalMaxPooling
    from fastconv.layers.pooling import BasePooling

    if (len(step.layers) > 2 or step.structure != SINGLE or step.output_structure != SINGLE
            or type(step.in_refs[0]) is not int or step.activity is not None
            or step.inner_penalty is not None):
        return None
    x_slot, out = step.in_refs[0], step.out_slots[0]
    if x_slot not in meta or out not in meta:
        return None
    x_shape, x_dtype = meta[x_slot]
    y_shape, y_dtype = meta[out]
    if x_dtype != _FLOAT32 or y_dtype != _FLOAT32 or 0 in x_shape:
        return None
    op = step.operation
    if isinstance(op, ConvMaxPool):
        conv, pool = op.conv, op.pool
        if not _conv_compiles(conv):
            return None
        geom, pool_geom = _conv_pool_geometry(conv, pool, x_shape)
        if geom.n >= team:
            return ("conv_pool", conv, geom, pool_geom, team)
        # Fewer images than threads: the two kernels one after the other, on
        # rows, as fastconv.ops runs them then.
        return ("conv_then_pool", conv, geom, _threads(geom.n * geom.oh, team), pool_geom,
                _threads(pool_geom.n * pool_geom.oh, team))
    layer = step.layers[0]
    if len(step.layers) != 1:
        return None
    if (runs_as(layer, Flatten) and not layer._channels_first(len(x_shape))) or (
            runs_as(layer, Reshape)) or (runs_as(layer, Dropout) and not mode):
        return ("view",) if x_slot in native_slots else None
    if runs_as(layer, BaseConv) and _conv_compiles(layer):
        geom = _conv_geometry(layer, x_shape)
        return ("conv", layer, geom, layer._fused_relu(), _threads(geom.n * geom.oh, team))
    if (runs_as(layer, BasePooling) and layer.rank <= 2
            and layer.data_format == "channels_last"):
        geom = _pool_geometry(layer, x_shape)
        kind = "pool" if layer.pool_mode == "max" else "avg_pool"
        return (kind, geom, _threads(geom.n * geom.oh, team))
    if (runs_as(layer, _GlobalAveragePooling) or runs_as(layer, _GlobalMaxPooling)) and (
            layer.data_format == "channels_last"):
        n, channels = x_shape[0], x_shape[-1]
        # Whole images per work item when they go round the team, else
        # blocks of channels (global_pool.h: the bits are the same).
        block = channels if n >= team else -(-channels // -(-team // n))
        items = n * -(-channels // block)
        return ("global_pool", runs_as(layer, _GlobalMaxPooling), n,
                int(np.prod(x_shape[1:-1])), channels, block, _threads(items, team))
    if runs_as(layer, Dense) and _weights_compile(layer) and x_shape[-1]:
        if layer.activation.name == "linear":
            return ("dense", layer, False)
        if layer.activation is activations.get("relu"):
            return ("dense", layer, True)
        return ("dense_activation", layer)
    return None


def _threads(items: int, team: int) -> int:
    return max(1, min(team, items))


def _multiply_adds(compiled: tuple, x_shape: tuple) -> int:
    """The multiply-adds of a compiled step (pooling and views count none)."""
    kind = compiled[0]
    if kind in ("conv", "conv_pool", "conv_then_pool"):
        g = compiled[2]
        return g.n * g.od * g.oh * g.ow * g.kd * g.kh * g.kw * g.c_in * g.c_out
    if kind in ("dense", "dense_activation"):
        return int(np.prod(x_shape)) * compiled[1].units
    return 0


def _weights_compile(layer: Any) -> bool:
    """Whether the kernels can read the layer's kernel and bias as they are."""
    weights = [layer.kernel] + ([layer.bias] if layer.use_bias else [])
    return all(w.value.dtype == _FLOAT32 and w.value.flags.c_contiguous for w in weights)


def _conv_compiles(conv: Any) -> bool:
    return (conv.rank <= 2 and conv.groups == 1 and conv.data_format == "channels_last"
            and _weights_compile(conv)
            and (conv._fused_relu() or conv.activation.name == "linear"))


def _image_args(conv: Any, x_shape: tuple) -> tuple:
    """The 2-D kernels' arguments for ``conv`` on an input of ``x_shape``."""
    rank = conv.rank
    x = np.empty(x_shape if rank == 2 else (x_shape[0], 1, *x_shape[1:]), _FLOAT32)
    w_shape = conv.kernel.value.shape
    w = np.empty(w_shape if rank == 2 else (1, *w_shape), _FLOAT32)
    padding = _spatial._image_padding(conv.padding, tuple(conv.kernel_size),
                                      tuple(conv.dilation_rate))
    return (x, w, _spatial._pair(tuple(conv.strides), rank), padding,
            _spatial._pair(tuple(conv.dilation_rate), rank))


def _conv_geometry(conv: Any, x_shape: tuple) -> Any:
    x, w, strides, padding, dilation = _image_args(conv, x_shape)
    return v.check_conv2d(x, w, None, strides, padding, dilation)[3]


def _pool_geometry(pool: Any, x_shape: tuple) -> Any:
    rank = pool.rank
    x = np.empty(x_shape if rank == 2 else (x_shape[0], 1, *x_shape[1:]), _FLOAT32)
    check = v.check_max_pool2d if pool.pool_mode == "max" else v.check_pool2d
    return check(x, _spatial._pair(tuple(pool.pool_size), rank),
                 _spatial._pair(tuple(pool.strides), rank), pool.padding)[1]


def _conv_pool_geometry(conv: Any, pool: Any, x_shape: tuple) -> tuple:
    x, w, strides, padding, dilation = _image_args(conv, x_shape)
    rank = conv.rank
    _, _, _, geom, pool_geom = v.check_conv2d_max_pool2d(
        x, w, None, strides, padding, dilation, _spatial._pair(tuple(pool.pool_size), rank),
        _spatial._pair(tuple(pool.strides), rank), pool.padding)
    return geom, pool_geom


_PROGRAMS_PER_PLAN = 4  # input signatures kept (a last, smaller batch is one more)


def inference_outputs(plan: Any, arrays: list, training: bool = False) -> list:
    """``plan.forward(arrays, training)[0]``, through the plan's inference
    program for these inputs' shapes (built on first use) when the compiled
    kernels can run some of its steps."""
    from fastconv import ops
    from fastconv.layers.backend import kernels
    from fastconv.runtime import settings

    if training or kernels() is not ops or not _programmable(plan, arrays):
        return plan.forward(arrays, training)[0]
    plan.last_penalty = 0.0  # no step has a penalty (_programmable)
    team, isa = settings.get_num_threads(), settings.isa_code()
    key = (tuple((a.shape, a.dtype.str) for a in arrays), team, isa)
    programs = plan.memo.setdefault("inference", {})
    program = programs.get(key)
    if program is None:
        program = InferenceProgram(plan, arrays, training, team, isa)
        if len(programs) >= _PROGRAMS_PER_PLAN:
            programs.pop(next(iter(programs), None), None)  # the oldest built
        programs[key] = program if program.n_native else False
        return program.first_outputs
    outputs = _run(programs, key, arrays)
    return outputs if outputs is not None else plan.forward(arrays, training)[0]


def _run(programs: dict, key: tuple, arrays: list) -> list | None:
    """The outputs of the program ``programs[key]`` on ``arrays``, or None
    when there is none, another thread is running it, or it is stale (then
    dropped: the next call builds one for the layers as they are)."""
    program = programs.get(key)
    if not program or not program.lock.acquire(blocking=False):
        return None
    try:
        return program.run(arrays)
    except StaleProgram:
        programs.pop(key, None)
        return None
    finally:
        program.lock.release()


def programmed_call(model: Any, x: Any) -> Any:
    """``model``'s inference outputs on the array ``x`` by the program built
    for its shape, or None when there is none (the caller then takes its
    full path, which builds one).

    This skips the front of ``predict_on_batch`` and of ``model(x)``, which
    a one-image prediction feels: the program exists only for inputs that
    passed that front before (a float32 array of this shape, for this plan,
    whose checks and conversions then leave ``x`` as it is), and a program
    with no step of the executor's in it needs neither the BLAS nor the
    allocator settings the front makes (``self_contained``)."""
    from fastconv import ops
    from fastconv.graph.node import unflatten
    from fastconv.layers.backend import kernels
    from fastconv.runtime import settings

    if type(x) is not np.ndarray or x.dtype != _FLOAT32 or model._defines_call():
        return None
    plan = getattr(model, "_plan", None)
    programs = None if plan is None else plan.memo.get("inference")
    if not programs:
        return None
    key = (((x.shape, x.dtype.str),), settings.get_num_threads(), settings.isa_code())
    program = programs.get(key)
    if not program or not program.self_contained or kernels() is not ops:
        return None
    outputs = _run(programs, key, [x])
    if outputs is None:
        return None
    plan.last_penalty = 0.0
    return unflatten(outputs, plan.function.output_structure)


def _penalty_free(model: Any) -> bool:
    """Whether a nested model has no activity penalty to report (none of its
    layers, at any depth, has an activity regularizer): the program may then
    run it as a step of the executor's, whose penalty is 0."""
    return all(getattr(layer, "activity_regularizer", None) is None
               for layer in [model, *model._unique_layers()])


def _programmable(plan: Any, arrays: list) -> bool:
    """Whether an inference program may compute this pass: float32 array
    inputs and no step whose penalty the pass must also compute (a nested
    model runs as a Python step when it has none)."""
    ok = plan.memo.get("programmable")
    if ok is None:
        ok = plan.memo["programmable"] = all(
            step.activity is None and (step.inner_penalty is None
                                       or _penalty_free(step.operation))
            for step in plan.steps)
    return ok and all(type(a) is np.ndarray and a.dtype == _FLOAT32 for a in arrays)

"""Random models against the inference program's contract
(fastconv.graph.inference): predict, predict_on_batch and model(x) on
float32 arrays give the bits of the executor's plain forward pass
(Plan.forward), NaN payloads, infinities and signed zeros included.

Hypothesis draws Sequential models and small functional graphs (a trunk, two
branches merged by Add or Concatenate, maybe the same layers twice, a head,
two outputs) of the layers the program compiles (Conv1D/Conv2D, max pooling,
Dense, and the views Flatten, Reshape, Dropout) and Python steps between
them; the batch, the thread count, the SIMD level, the input's values and
memory layout, and the way the model is called. Each example is checked on
the first call (which builds the program) and the second (which runs it),
after new weights (set_weights), after changes in place, and on another
thread count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import activations, layers, models
from fastconv.graph import inference

# A layer as plain data, so that a failing example prints as code: its class
# name in fastconv.layers and its arguments.
Spec = tuple[str, dict]

THREADS = [1, 2, 3]
CONV_ACTIVATIONS = [None, "relu", "tanh", "linear"]
DENSE_ACTIVATIONS = [None, "relu", "softmax", "sigmoid"]
ACTIVATIONS = ["relu", "tanh", "linear", "sigmoid", "softmax"]
# NaN (np.nan's, x86's default one with its sign bit, with payloads, a
# signalling one), infinities, -0, the smallest and the largest subnormal
# (the smallest makes products that underflow to -0), the largest float.
SPECIAL_BITS = [0x7FC00000, 0xFFC00000, 0x7FC0BEEF, 0xFF80BEEF, 0x7F800000, 0xFF800000,
                0x80000000, 0x00000001, 0x007FFFFF, 0x7F7FFFFF]


def _itself(t):
    return t


def _halved(t):
    return t * 0.5


def _reversed_channels(t):
    return t[..., ::-1]  # a view, not C-contiguous


def _layer(spec: Spec):
    name, kwargs = spec
    if name == "Sequential":  # a nested model: ("Sequential", {"input": ..., "layers": ...})
        return models.Sequential([layers.Input(kwargs["input"]),
                                  *map(_layer, kwargs["layers"])])
    return getattr(layers, name)(**kwargs)


def _chain(specs: list[Spec], t):
    for spec in specs:
        t = _layer(spec)(t)
    return t


def _or_skip(build, *args):
    """``build(*args)``; an example whose geometry a layer refuses (a window
    larger than its input, branches of different sizes, ...) is skipped."""
    try:
        return build(*args)
    except ValueError:
        assume(False)


# -- layers ---------------------------------------------------------------------

def _window(draw, sizes: tuple, upto: int = 3):
    """A kernel or pool size for these spatial sizes (an int or a tuple)."""
    window = tuple(draw(st.integers(1, max(1, min(upto, s)))) for s in sizes)
    return window[0] if len(set(window)) == 1 and draw(st.booleans()) else window


def _conv(draw, shape: tuple, filters: int | None = None, keep_size: bool = False) -> Spec:
    rank = len(shape) - 1
    strides = 1 if keep_size else draw(st.sampled_from([1, 1, 2, 3]))
    paddings = ["same"] + ["causal"] * (rank == 1) + ["valid"] * (not keep_size)
    return (f"Conv{rank}D", dict(
        filters=filters or draw(st.one_of(st.integers(1, 10),
                                          st.sampled_from([16, 17, 31, 32, 40]))),
        kernel_size=_window(draw, shape[:-1]),
        strides=strides,
        padding=draw(st.sampled_from(paddings)),
        dilation_rate=draw(st.sampled_from([1, 2])) if strides == 1 else 1,
        activation=draw(st.sampled_from(CONV_ACTIVATIONS)),
        use_bias=draw(st.booleans()),
        # The model then runs on the executor (its penalty is needed).
        activity_regularizer=draw(st.sampled_from([None] * 9 + ["l2"]))))


def _pool(draw, shape: tuple, keep_size: bool = False) -> Spec:
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["Max", "Max", "Average"] if rank == 2 else ["Max"]))
    return (f"{kind}Pooling{rank}D", dict(
        pool_size=_window(draw, shape[:-1]),
        strides=1 if keep_size else draw(st.sampled_from([None, 1, 2, 3])),
        padding="same" if keep_size else draw(st.sampled_from(["valid", "same"]))))


def _dense(draw, units: int | None = None) -> Spec:
    return ("Dense", dict(units=units or draw(st.integers(1, 40)),
                          activation=draw(st.sampled_from(DENSE_ACTIVATIONS)),
                          use_bias=draw(st.booleans())))


def _same_shape(draw) -> Spec:
    """A Python step of its input's shape (some return their input, or a view of it)."""
    return draw(st.sampled_from([
        ("BatchNormalization", {}), ("Identity", {}), ("Dropout", dict(rate=0.5)),
        ("ReLU", {}), ("Lambda", dict(function=_itself)), ("Lambda", dict(function=_halved)),
        ("Lambda", dict(function=_reversed_channels)),
        *(("Activation", dict(activation=a)) for a in ACTIVATIONS)]))


def _reshape(shape: tuple, to_image: bool) -> Spec:
    """A Reshape to another rank: an image to a sequence; a sequence or a
    vector to an image of one channel, or to a sequence of one."""
    size = int(np.prod(shape))
    if len(shape) == 3:
        return ("Reshape", dict(target_shape=(shape[0] * shape[1], shape[2])))
    if to_image:
        return ("Reshape", dict(target_shape=(*shape, 1) if len(shape) == 2 else (size, 1, 1)))
    return ("Reshape", dict(target_shape=(size, 1)))


def _any_layer(draw, shape: tuple, nested: bool = True) -> Spec:
    """A layer for an input of ``shape`` (without the batch); ``nested``: or
    a Sequential of such layers."""
    rank = len(shape) - 1
    kinds = ["dense", "dense", "same_shape", "dropout"] + ["nested"] * nested + {
        2: ["conv"] * 5 + ["pool"] * 3 + ["padding", "global", "flatten", "reshape"],
        1: ["conv"] * 5 + ["pool"] * 3 + ["padding", "global", "flatten", "reshape"],
        0: ["reshape"],
    }[rank]
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        return _conv(draw, shape)
    if kind == "pool":
        return _pool(draw, shape)
    if kind == "dense":
        return _dense(draw)
    if kind == "dropout":  # a view when it reads a compiled step's output
        return ("Dropout", dict(rate=0.25))
    if kind == "padding":
        return (f"ZeroPadding{rank}D", dict(padding=draw(st.sampled_from(
            [1, 2, (1, 0)] + [((0, 1), (2, 0))] * (rank == 2)))))
    if kind == "global":
        return (draw(st.sampled_from([f"GlobalAveragePooling{rank}D",
                                      f"GlobalMaxPooling{rank}D"])), {})
    if kind == "flatten":
        return ("Flatten", {})
    if kind == "reshape":
        return _reshape(shape, draw(st.booleans()))
    if kind == "nested":
        inner, _ = _layers(draw, layers.Input(shape), most=3, fewest=1, nested=False)
        return ("Sequential", dict(input=shape, layers=inner))
    return _same_shape(draw)


def _same_size_layer(draw, shape: tuple, channels: int | None) -> Spec:
    """A layer keeping the spatial size of its input (and its channels, for Add)."""
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["dense", "same_shape"] + ["conv", "pool"] * (rank > 0)))
    if kind == "conv":
        return _conv(draw, shape, channels, keep_size=True)
    if kind == "pool":
        return _pool(draw, shape, keep_size=True)
    if kind == "dense":
        return _dense(draw, channels)
    return _same_shape(draw)


def _layers(draw, t, most: int, fewest: int = 0, pick=_any_layer,
            **kwargs) -> tuple[list[Spec], object]:
    """``fewest`` to ``most`` layers drawn one by one for the shape they receive,
    and the tensor they give from ``t``."""
    specs = []
    for _ in range(draw(st.integers(fewest, most))):
        spec = pick(draw, tuple(t.shape[1:]), **kwargs)
        t = _or_skip(_chain, [spec], t)
        specs.append(spec)
    return specs, t


# -- models ---------------------------------------------------------------------

def _input_shape(draw) -> tuple:
    small, large = st.integers(3, 10), st.integers(11, 40)
    return draw(st.one_of(
        st.tuples(small, small, st.integers(1, 4)),
        st.tuples(st.one_of(small, large), st.integers(1, 4)),
        st.tuples(st.integers(1, 24)),
        st.tuples(large, st.integers(3, 16), st.integers(1, 3)),
    ))


@st.composite
def sequential_recipes(draw) -> dict:
    shape = _input_shape(draw)
    specs, _ = _layers(draw, layers.Input(shape), most=6, fewest=1)
    return dict(input=shape, layers=specs)


@st.composite
def graph_recipes(draw) -> dict:
    """A trunk, two branches of the trunk's spatial size (the second maybe
    the first's very layers, shared) merged by Add or Concatenate, and a head
    after the merge; the outputs are the head's and the first branch's."""
    shape = _input_shape(draw)
    trunk, t = _layers(draw, layers.Input(shape), most=3)
    merge = draw(st.sampled_from(["Add", "Concatenate"]))
    channels = t.shape[-1] if merge == "Add" else None
    a, _ = _layers(draw, t, most=2, pick=_same_size_layer, channels=channels)
    shared = bool(a) and draw(st.booleans())
    b = [] if shared else _layers(draw, t, most=2, pick=_same_size_layer, channels=channels)[0]
    recipe = dict(input=shape, trunk=trunk, a=a, b=b, shared=shared, merge=merge)
    _, merged, _ = _or_skip(_graph_tensors, recipe)
    recipe["head"], _ = _layers(draw, merged, most=3)
    return recipe


def _graph_tensors(recipe: dict) -> tuple:
    """The input, the merge and the first branch of a graph recipe."""
    inp = layers.Input(recipe["input"])
    t = _chain(recipe["trunk"], inp)
    first = [_layer(spec) for spec in recipe["a"]]
    second = first if recipe["shared"] else [_layer(spec) for spec in recipe["b"]]
    a, b = t, t
    for layer in first:
        a = layer(a)
    for layer in second:
        b = layer(b)
    return inp, getattr(layers, recipe["merge"])()([a, b]), a


def _build_graph(recipe: dict):
    inp, merged, a = _graph_tensors(recipe)
    return models.Model(inp, [_chain(recipe["head"], merged), a])


def _build_sequential(recipe: dict):
    return models.Sequential([layers.Input(recipe["input"]), *map(_layer, recipe["layers"])])


def _build(recipe: dict, seed: int):
    fastconv.utils.set_random_seed(seed)
    model = _or_skip(_build_sequential if "layers" in recipe else _build_graph, recipe)
    _set_new_weights(model, np.random.default_rng(seed))
    return model


def _set_new_weights(model, rng) -> None:
    """New arrays for every weight: non-zero biases, betas and moving
    statistics, positive moving variances."""
    new = []
    for var, w in zip(model.weights, model.get_weights()):
        w = w + rng.standard_normal(w.shape).astype(w.dtype) * 0.3
        new.append(np.abs(w) + 0.1 if var.name.endswith("moving_variance") else w)
    model.set_weights(new)


def _edit_weights_in_place(model) -> None:
    """Changes in place, as an optimizer makes them (variances stay positive)."""
    for var in model.weights:
        var.value[...] = var.value * 0.75 + 0.0625


# -- inputs, settings, calls and the oracle ------------------------------------

@st.composite
def inputs(draw, shape: tuple) -> np.ndarray:
    """A batch of 1, 2, 3 or 17, sometimes with special values or a sample of
    zeros, C-contiguous, in Fortran order or a strided view."""
    n = draw(st.sampled_from([1, 2, 3, 17]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    for _ in range(draw(st.sampled_from([0, 0, 1, 3]))):
        x.view(np.uint32).flat[rng.integers(x.size)] = draw(st.sampled_from(SPECIAL_BITS))
    if draw(st.integers(0, 3)) == 0:
        x[rng.integers(n)] = draw(st.sampled_from([0.0, -0.0]))
    layout = draw(st.sampled_from(["C", "C", "F", "strided"]))
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        return np.repeat(x, 2, axis=-1)[..., ::2]
    return x


@contextlib.contextmanager
def _running_on(threads: int, isa: str, every_program_parallel: bool) -> Iterator[None]:
    """The thread count and SIMD level set, and (every_program_parallel) the
    small programs on all the threads too; all put back after."""
    saved = fastconv.get_num_threads(), fastconv.get_isa(), inference.SINGLE_THREAD_WORK
    fastconv.set_num_threads(threads)
    fastconv.set_isa(isa)
    if every_program_parallel:
        inference.SINGLE_THREAD_WORK = 0
    try:
        with np.errstate(all="ignore"):  # inf - inf, exp(inf) ...
            yield
    finally:
        fastconv.set_num_threads(saved[0])
        fastconv.set_isa(saved[1])
        inference.SINGLE_THREAD_WORK = saved[2]


def _caller(how: str, batch_size: int | None):
    if how == "predict":
        return lambda model, x: model.predict(x, batch_size=batch_size, verbose=0)
    if how == "predict_on_batch":
        return lambda model, x: model.predict_on_batch(x)
    return lambda model, x: model(x)


def _plain(model, x) -> list:
    """The executor's forward pass: the program's oracle."""
    arrays, structure = model._flat_inputs(x)
    return model._plan_for(arrays, structure, False).forward(arrays, False)[0]


def _oracle(model, x, batch_size: int | None = None) -> list:
    """The plain pass's flat outputs (batch by batch, as predict runs),
    checked to give the same bits twice."""
    step = batch_size or len(x)

    def plain():
        parts = [_plain(model, x[i:i + step]) for i in range(0, len(x), step)]
        return [np.concatenate(outputs) for outputs in zip(*parts)]

    want = plain()
    _assert_same_bits(plain(), want, "the plain forward pass is not deterministic")
    return want


def _assert_same_bits(got, want: list, what: str) -> None:
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.dtype == w.dtype == np.float32 and g.shape == w.shape, what
        np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32), err_msg=what)


def _compiled_steps(model) -> int:
    programs = [p for p in model._plan.memo.get("inference", {}).values() if p]
    return max((p.n_native for p in programs), default=0)


# -- the contract -----------------------------------------------------------------

def _check_contract(data, recipe: dict) -> None:
    x = data.draw(inputs(recipe["input"]), label="x")
    threads = data.draw(st.sampled_from(THREADS), label="threads")
    isa = data.draw(st.sampled_from(fastconv.supported_isas()), label="isa")
    parallel = data.draw(st.booleans(), label="every_program_parallel")
    how = data.draw(st.sampled_from(["predict", "predict_on_batch", "call"]), label="how")
    batch_size = (data.draw(st.integers(1, len(x)), label="batch_size")
                  if how == "predict" else None)  # 17 by 5: 5, 5, 5 then 2 rows
    then_threads = data.draw(st.sampled_from(THREADS), label="then_threads")
    call = _caller(how, batch_size)
    with _running_on(threads, isa, parallel):
        model = _build(recipe, seed=data.draw(st.integers(0, 99), label="seed"))
        want = _oracle(model, x, batch_size)
        # The first call builds the program (and returns the plain pass's
        # outputs), the second runs it.
        for attempt in ("first call", "second call"):
            _assert_same_bits(call(model, x), want, attempt)
        event(f"compiled steps: {min(_compiled_steps(model), 3)} (3: or more)")
        _set_new_weights(model, np.random.default_rng(7))
        _assert_same_bits(call(model, x), _oracle(model, x, batch_size), "after set_weights")
        _edit_weights_in_place(model)
        _assert_same_bits(call(model, x), _oracle(model, x, batch_size), "after edits in place")
        fastconv.set_num_threads(then_threads)
        want = _oracle(model, x, batch_size)
        for attempt in ("first call", "second call"):
            _assert_same_bits(call(model, x), want, f"{attempt} on {then_threads} threads")


@settings(max_examples=100, deadline=None)
@given(sequential_recipes(), st.data())
def test_random_sequential_models_give_the_plain_bits(recipe, data):
    _check_contract(data, recipe)


@settings(max_examples=100, deadline=None)
@given(graph_recipes(), st.data())
def test_random_graphs_give_the_plain_bits(recipe, data):
    _check_contract(data, recipe)


# -- cases the tests above found, shrunk ---------------------------------------

def test_a_dense_relu_of_minus_zero_gives_the_executors_plus_zero():
    """Shrunk from test_random_graphs_give_the_plain_bits (an input holding
    the smallest subnormal, a Dense(relu, use_bias=False) on one feature)."""
    model = models.Sequential([layers.Input((1,)),
                               layers.Dense(2, activation="relu", use_bias=False)])
    model.set_weights([np.array([[-0.5, 0.5]], np.float32)])
    x = np.array([[1.4e-45], [-1e-45]], np.float32)  # x * -0.5 rounds to -0 in row 0
    simd = [isa for isa in fastconv.supported_isas() if isa != "generic"]
    if not simd:
        pytest.skip("the generic kernels' sums give +0")
    isa = simd[-1]
    with _running_on(1, isa, every_program_parallel=False):
        want = _oracle(model, x)
        for attempt in ("first call", "second call"):
            _assert_same_bits(model.predict_on_batch(x), want, attempt)


@pytest.mark.parametrize("change", ["activation", "kernel variable"])
def test_a_layer_changed_after_the_program_is_built_is_seen(change):
    """The program read the layer when it was built; a reassigned activation
    or weight Variable sends the pass back to the executor, which reads the
    layer at every pass."""
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((6,)), layers.Dense(4, activation="relu")])
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    model.predict_on_batch(x)
    model.predict_on_batch(x)  # the program runs from here on
    dense = model.layers[0]
    if change == "activation":  # as for a saliency map: the logits, not the ReLU
        dense.activation = activations.get("linear")
    else:
        dense.kernel = layers.Variable(dense.kernel.value * 2, "kernel")
    _assert_same_bits(model.predict_on_batch(x), _oracle(model, x), f"after the {change}")

"""Random models against the inference program's contract (fastconv.graph.inference):
predict, predict_on_batch and model(x) on float32 arrays give the bits of
the executor's plain forward pass (Plan.forward), NaN payloads included.

Hypothesis draws Sequential models and small functional graphs (a trunk, two
branches merged by Add or Concatenate, a head, two outputs) of compiled
layers (Conv1D/Conv2D, max pooling, Dense) and Python ones between them, the
batch, the thread count, the SIMD level, inputs with NaN and infinities,
and the way the model is called; the weights then change, by set_weights and
in place, and the thread count changes, and every result is compared with
the oracle again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import layers, models
from fastconv.graph import inference

# A layer as plain data, so a failing example prints as code: its class name
# in fastconv.layers and its arguments.
Spec = tuple[str, dict]

CONV_ACTIVATIONS = [None, "relu", "tanh", "linear"]
DENSE_ACTIVATIONS = [None, "relu", "softmax", "sigmoid"]
ACTIVATIONS = ["relu", "tanh", "linear", "sigmoid", "softmax"]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30]


def _layer(spec: Spec):
    name, kwargs = spec
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


# -- strategies ---------------------------------------------------------------

def _windows(draw, rank: int, sizes: tuple, upto: int = 3):
    """A kernel or pool size of ``rank`` dimensions (an int or a tuple)."""
    window = tuple(draw(st.integers(1, max(1, min(upto, s)))) for s in sizes)
    return window[0] if draw(st.booleans()) and len(set(window)) == 1 else window


def _conv(draw, shape: tuple, filters: int | None = None, keep_size: bool = False) -> Spec:
    rank = len(shape) - 1
    strides = 1 if keep_size else draw(st.sampled_from([1, 1, 2, 3]))
    paddings = ["same"] + ["causal"] * (rank == 1) + ["valid"] * (not keep_size)
    return (f"Conv{rank}D", dict(
        filters=filters or draw(st.integers(1, 10)),
        kernel_size=_windows(draw, rank, shape[:-1]),
        strides=strides,
        padding=draw(st.sampled_from(paddings)),
        dilation_rate=draw(st.sampled_from([1, 2])) if strides == 1 else 1,
        activation=draw(st.sampled_from(CONV_ACTIVATIONS)),
        use_bias=draw(st.booleans())))


def _pool(draw, shape: tuple, keep_size: bool = False) -> Spec:
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["Max", "Max", "Average"] if rank == 2 else ["Max"]))
    return (f"{kind}Pooling{rank}D", dict(
        pool_size=_windows(draw, rank, shape[:-1]),
        strides=1 if keep_size else draw(st.sampled_from([None, 1, 2, 3])),
        padding="same" if keep_size else draw(st.sampled_from(["valid", "same"]))))


def _dense(draw, units: int | None = None) -> Spec:
    return ("Dense", dict(units=units or draw(st.integers(1, 40)),
                          activation=draw(st.sampled_from(DENSE_ACTIVATIONS)),
                          use_bias=draw(st.booleans())))


def _elementwise(draw) -> Spec:
    return draw(st.sampled_from([
        ("BatchNormalization", {}), ("Identity", {}), ("Dropout", dict(rate=0.5)),
        *(("Activation", dict(activation=a)) for a in ACTIVATIONS)]))


def _reshape(shape: tuple, to_image: bool) -> Spec:
    """A Reshape to another rank: an image to a sequence, a sequence (or a
    vector) to an image of one channel or a sequence of one."""
    size = int(np.prod(shape))
    if len(shape) == 3:
        return ("Reshape", dict(target_shape=(shape[0] * shape[1], shape[2])))
    if to_image:
        return ("Reshape", dict(target_shape=(*shape, 1) if len(shape) == 2 else (size, 1, 1)))
    return ("Reshape", dict(target_shape=(size, 1)))


def _any_layer(draw, shape: tuple) -> Spec:
    """A layer for an input of ``shape`` (without the batch)."""
    rank = len(shape) - 1
    kinds = ["dense", "elementwise"] + {
        2: ["conv"] * 3 + ["pool"] * 2 + ["zero_padding", "global", "flatten", "reshape"],
        1: ["conv"] * 3 + ["pool"] * 2 + ["flatten", "reshape"],
        0: ["reshape"],
    }[rank]
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        return _conv(draw, shape)
    if kind == "pool":
        return _pool(draw, shape)
    if kind == "dense":
        return _dense(draw)
    if kind == "zero_padding":
        return ("ZeroPadding2D", dict(padding=draw(st.sampled_from(
            [1, 2, (1, 0), ((0, 1), (2, 0))]))))
    if kind == "global":
        return (draw(st.sampled_from(["GlobalAveragePooling2D", "GlobalMaxPooling2D"])), {})
    if kind == "flatten":
        return ("Flatten", {})
    if kind == "reshape":
        return _reshape(shape, draw(st.booleans()))
    return _elementwise(draw)


def _same_size_layer(draw, shape: tuple, channels: int | None) -> Spec:
    """A layer keeping the spatial size of its input (and its channels, for Add)."""
    rank = len(shape) - 1
    kind = draw(st.sampled_from(["dense", "elementwise"] + ["conv", "pool"] * (rank > 0)))
    if kind == "conv":
        return _conv(draw, shape, channels, keep_size=True)
    if kind == "pool":
        return _pool(draw, shape, keep_size=True)
    if kind == "dense":
        return _dense(draw, channels)
    return _elementwise(draw)


def _input_shape(draw) -> tuple:
    return draw(st.sampled_from([
        st.tuples(st.integers(3, 10), st.integers(3, 10), st.integers(1, 4)),
        st.tuples(st.integers(3, 24), st.integers(1, 4)),
        st.tuples(st.integers(1, 24)),
    ]).flatmap(lambda s: s))


def _layers(draw, t, most: int, fewest: int = 0, pick=_any_layer,
            **kwargs) -> tuple[list[Spec], object]:
    """``fewest`` to ``most`` layers drawn one by one for the shape they receive."""
    specs = []
    for _ in range(draw(st.integers(fewest, most))):
        spec = pick(draw, tuple(t.shape[1:]), **kwargs)
        t = _or_skip(_chain, [spec], t)
        specs.append(spec)
    return specs, t


@st.composite
def sequential_recipes(draw) -> dict:
    shape = _input_shape(draw)
    specs, _ = _layers(draw, fastconv.Input(shape), most=6, fewest=1)
    return dict(input=shape, layers=specs)


@st.composite
def graph_recipes(draw) -> dict:
    """A trunk, two branches of the trunk's spatial size merged by Add or
    Concatenate, a head after the merge; the outputs are the head's and the
    first branch's."""
    shape = _input_shape(draw)
    trunk, t = _layers(draw, fastconv.Input(shape), most=3)
    merge = draw(st.sampled_from(["Add", "Concatenate"]))
    channels = t.shape[-1] if merge == "Add" else None
    a, _ = _layers(draw, t, most=2, pick=_same_size_layer, channels=channels)
    b, _ = _layers(draw, t, most=2, pick=_same_size_layer, channels=channels)
    recipe = dict(input=shape, trunk=trunk, a=a, b=b, merge=merge)
    _, merged, _ = _or_skip(_graph_tensors, recipe)
    recipe["head"], _ = _layers(draw, merged, most=3)
    return recipe


# -- models, settings and the oracle -----------------------------------------

def _graph_tensors(recipe: dict) -> tuple:
    inp = layers.Input(recipe["input"])
    t = _chain(recipe["trunk"], inp)
    a, b = _chain(recipe["a"], t), _chain(recipe["b"], t)
    return inp, getattr(layers, recipe["merge"])()([a, b]), a


def _build_graph(recipe: dict):
    inp, merged, a = _graph_tensors(recipe)
    return models.Model(inp, [_chain(recipe["head"], merged), a])


def _build(recipe: dict, seed: int):
    fastconv.utils.set_random_seed(seed)
    if "layers" in recipe:
        model = _or_skip(lambda: models.Sequential([layers.Input(recipe["input"]),
                                                    *map(_layer, recipe["layers"])]))
    else:
        model = _or_skip(_build_graph, recipe)
    _set_new_weights(model, np.random.default_rng(seed))
    return model


def _set_new_weights(model, rng) -> None:
    """New arrays for every weight: non-zero biases, moving statistics and
    betas, positive moving variances."""
    new = []
    for var, w in zip(model.weights, model.get_weights()):
        w = w + rng.standard_normal(w.shape).astype(w.dtype) * 0.3
        new.append(np.abs(w) + 0.1 if var.name.endswith("moving_variance") else w)
    model.set_weights(new)


def _edit_weights_in_place(model) -> None:
    """Changes in place, as an optimizer makes them (variances stay positive)."""
    for var in model.weights:
        var.value[...] = var.value * 0.75 + 0.0625


@st.composite
def inputs(draw, shape: tuple) -> np.ndarray:
    n = draw(st.sampled_from([1, 2, 3, 17]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    for _ in range(draw(st.sampled_from([0, 0, 1, 3]))):  # NaN, infinities, signed zeros
        x.flat[rng.integers(x.size)] = draw(st.sampled_from(SPECIAL))
    return x


@contextlib.contextmanager
def _running_on(threads: int, isa: str, every_program_parallel: bool) -> Iterator[None]:
    """The thread count and SIMD level set, and (every_program_parallel) small
    programs on all the threads too; all put back after."""
    saved = fastconv.get_num_threads(), fastconv.get_isa(), inference.SINGLE_THREAD_WORK
    fastconv.set_num_threads(threads)
    fastconv.set_isa(isa)
    if every_program_parallel:
        inference.SINGLE_THREAD_WORK = 0
    try:
        yield
    finally:
        fastconv.set_num_threads(saved[0])
        fastconv.set_isa(saved[1])
        inference.SINGLE_THREAD_WORK = saved[2]


def _plain(model, x) -> list:
    arrays, structure = model._flat_inputs(x)
    return model._plan_for(arrays, structure, False).forward(arrays, False)[0]


def _oracle(model, x, batch_size: int | None = None) -> list:
    """The plain forward pass's flat outputs (batch by batch, as predict
    runs), checked to give the same bits twice."""
    step = batch_size or len(x)
    parts = [_plain(model, x[i:i + step]) for i in range(0, len(x), step)]
    want = [np.concatenate(outputs) for outputs in zip(*parts)]
    again = [np.concatenate(outputs) for outputs in
             zip(*(_plain(model, x[i:i + step]) for i in range(0, len(x), step)))]
    _assert_same_bits(again, want, "the plain forward pass is not deterministic")
    return want


def _assert_same_bits(got, want: list, what: str = "") -> None:
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g = np.asarray(g)
        assert g.dtype == w.dtype == np.float32 and g.shape == w.shape, what
        np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32), err_msg=what)


def _caller(how: str, batch_size: int):
    if how == "predict":
        return lambda model, x: model.predict(x, batch_size=batch_size, verbose=0)
    if how == "predict_on_batch":
        return lambda model, x: model.predict_on_batch(x)
    return lambda model, x: model(x)


def _compiled_steps(model) -> int:
    plan = model._plan
    programs = [p for p in plan.memo.get("inference", {}).values() if p]
    return max((p.n_native for p in programs), default=0)


# -- the contract ---------------------------------------------------------------

def _check_contract(data, recipe: dict) -> None:
    shape = recipe["input"]
    x = data.draw(inputs(shape), label="x")
    threads = data.draw(st.integers(1, 3), label="threads")
    isa = data.draw(st.sampled_from(fastconv.supported_isas()), label="isa")
    parallel = data.draw(st.booleans(), label="every_program_parallel")
    how = data.draw(st.sampled_from(["predict", "predict_on_batch", "call"]), label="how")
    batch_size = data.draw(st.integers(1, len(x)), label="batch_size") if how == "predict" \
        else None
    then_threads = data.draw(st.integers(1, 3), label="then_threads")
    call = _caller(how, batch_size)
    with _running_on(threads, isa, parallel):
        model = _build(recipe, seed=data.draw(st.integers(0, 99), label="seed"))
        want = _oracle(model, x, batch_size)
        # The first call builds the program (and returns the plain pass's
        # outputs), the second runs it.
        for attempt in ("first call", "second call"):
            _assert_same_bits(call(model, x), want, attempt)
        event(f"compiled steps: {min(_compiled_steps(model), 3)}+")
        _set_new_weights(model, np.random.default_rng(7))
        _assert_same_bits(call(model, x), _oracle(model, x, batch_size), "after set_weights")
        _edit_weights_in_place(model)
        _assert_same_bits(call(model, x), _oracle(model, x, batch_size), "after in-place edits")
        fastconv.set_num_threads(then_threads)
        want = _oracle(model, x, batch_size)
        for attempt in ("first call", "second call"):
            _assert_same_bits(call(model, x), want, f"{attempt} on {then_threads} threads")


@settings(max_examples=40, deadline=None)
@given(sequential_recipes(), st.data())
def test_random_sequential_models_give_the_plain_bits(recipe, data):
    _check_contract(data, recipe)


@settings(max_examples=40, deadline=None)
@given(graph_recipes(), st.data())
def test_random_graphs_give_the_plain_bits(recipe, data):
    _check_contract(data, recipe)

"""Pictures of models and training: ``plot_model`` / ``model_to_dot`` (pydot and
Graphviz) and ``plot_history`` (matplotlib).

The graph tests read the pydot graph back as (source name, destination name)
edges and box labels, so each expected edge set is written by hand from the
model's definition. Tests skip when pydot, Graphviz's ``dot`` or matplotlib
is missing; the tests of the "missing" messages need none of them.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import fastconv
from fastconv import layers, models, utils, visualization

needs_pydot = pytest.mark.skipif(not visualization.check_pydot(), reason="pydot is missing")
needs_graphviz = pytest.mark.skipif(not visualization.check_graphviz(),
                                    reason="pydot or Graphviz's `dot` is missing")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def fresh_names():
    fastconv.backend.clear_session()
    yield


# ----------------------------------------------------------------------------
# models


def sequential() -> models.Sequential:
    return models.Sequential([fastconv.Input((8, 8, 1)),
                              layers.Conv2D(2, 3, activation="relu", name="conv"),
                              layers.Flatten(name="flat"), layers.Dense(3, name="head")],
                             name="seq")


def branching() -> models.Model:
    """x -> left, right -> cat -> out: a fork and a merge."""
    x = fastconv.Input((4,), name="x")
    left = layers.Dense(3, name="left")(x)
    right = layers.Dense(5, name="right")(x)
    cat = layers.Concatenate(name="cat")([left, right])
    out = layers.Dense(1, name="out")(cat)
    return models.Model(x, out, name="branchy")


def nested() -> models.Model:
    """inp -> inner (functional: a -> d1 -> d2) -> tail (Sequential: t1 -> t2)."""
    a = fastconv.Input((4,), name="a")
    inner = models.Model(a, layers.Dense(3, name="d2")(layers.Dense(6, name="d1")(a)),
                         name="inner")
    tail = models.Sequential([layers.Dense(2, name="t1"), layers.Dense(1, name="t2")],
                             name="tail")
    inp = fastconv.Input((4,), name="inp")
    return models.Model(inp, tail(inner(inp)), name="outer")


# ----------------------------------------------------------------------------
# reading a pydot graph back


def all_nodes(graph):
    found = [n for n in graph.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in graph.get_subgraphs():
        found += all_nodes(sub)
    return found


def all_edges(graph):
    found = list(graph.get_edges())
    for sub in graph.get_subgraphs():
        found += all_edges(sub)
    return found


def names_by_id(model) -> dict[str, str]:
    """Box id (str(id(layer))) -> layer name, through nested models."""
    table = {str(id(model)): model.name}
    for layer in getattr(model, "layers", []):
        table.update(names_by_id(layer))
    if hasattr(model, "_function") and model._function is not None:
        for t in model._function.inputs:
            table[str(id(t.operation))] = t.operation.name
    return table


def boxes(dot, model) -> dict[str, str]:
    """Layer name -> its box's label."""
    names = names_by_id(model)
    return {names[n.get_name()]: n.get("label") for n in all_nodes(dot)}


def edges(dot, model) -> set[tuple[str, str]]:
    names = names_by_id(model)
    return {(names[e.get_source()], names[e.get_destination()]) for e in all_edges(dot)}


# ----------------------------------------------------------------------------
# model_to_dot


@needs_pydot
def test_sequential_is_a_chain_without_an_input_box():
    model = sequential()
    dot = utils.model_to_dot(model)
    assert set(boxes(dot, model)) == {"conv", "flat", "head"}
    assert edges(dot, model) == {("conv", "flat"), ("flat", "head")}
    labels = boxes(dot, model)
    assert "<b>conv</b> (Conv2D)" in labels["conv"]
    assert "<b>head</b> (Dense)" in labels["head"]
    assert "shape" not in labels["conv"]


@needs_pydot
def test_branching_functional_edges_follow_the_graph():
    model = branching()
    dot = utils.model_to_dot(model)
    assert set(boxes(dot, model)) == {"x", "left", "right", "cat", "out"}
    assert edges(dot, model) == {("x", "left"), ("x", "right"), ("left", "cat"),
                                 ("right", "cat"), ("cat", "out")}
    assert "(InputLayer)" in boxes(dot, model)["x"]


@needs_pydot
def test_show_shapes_writes_input_and_output_shapes():
    model = branching()
    labels = boxes(utils.model_to_dot(model, show_shapes=True), model)
    assert "Output shape: <b>(None, 4)</b>" in labels["x"]
    assert "Input shape" not in labels["x"]  # an input layer has only its output
    assert "Input shape: <b>(None, 4)</b>" in labels["left"]
    assert "Output shape: <b>(None, 5)</b>" in labels["right"]
    assert "Input shape: <b>[(None, 3), (None, 5)]</b>" in labels["cat"]
    assert "Output shape: <b>(None, 8)</b>" in labels["cat"]
    seq = sequential()
    labels = boxes(utils.model_to_dot(seq, show_shapes=True), seq)
    assert "Input shape: <b>(None, 8, 8, 1)</b>" in labels["conv"]
    assert "Output shape: <b>(None, 6, 6, 2)</b>" in labels["conv"]
    assert "Output shape: <b>(None, 72)</b>" in labels["flat"]


@needs_pydot
def test_other_cells_and_names_off():
    model = sequential()
    model.get_layer("head").trainable = False
    labels = boxes(utils.model_to_dot(model, show_dtype=True, show_layer_activations=True,
                                      show_trainable=True, show_layer_names=False), model)
    assert "<b>Conv2D</b>" in labels["conv"] and "conv</b>" not in labels["conv"]
    assert "Activation: <b>relu</b>" in labels["conv"]
    assert "Output dtype: <b>float32</b>" in labels["flat"]
    assert "<b>Trainable</b>" in labels["conv"]
    assert "<b>Non-trainable</b>" in labels["head"]
    assert "Trainable" not in labels["flat"]  # no weights, no cell
    assert "Activation" not in labels["flat"]


@needs_pydot
@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_rankdir_and_graph_attributes(rankdir):
    dot = utils.model_to_dot(sequential(), rankdir=rankdir, dpi=96)
    assert dot.get("rankdir") == rankdir
    assert f"rankdir={rankdir};" in dot.to_string()
    assert str(dot.get("dpi")) == "96"
    assert dot.get("splines") == "ortho"


@needs_pydot
def test_nested_models_collapsed_are_single_boxes():
    model = nested()
    dot = utils.model_to_dot(model, show_shapes=True)
    labels = boxes(dot, model)
    assert set(labels) == {"inp", "inner", "tail"}
    assert "(Functional)" in labels["inner"] and "(Sequential)" in labels["tail"]
    assert "Input shape: <b>(None, 3)</b>" in labels["tail"]
    assert edges(dot, model) == {("inp", "inner"), ("inner", "tail")}
    assert dot.get_subgraphs() == []


@needs_pydot
def test_nested_models_expanded_are_clusters_wired_inside():
    model = nested()
    dot = utils.model_to_dot(model, expand_nested=True)
    clusters = {sub.get_name(): sub for sub in dot.get_subgraphs()}
    assert set(clusters) == {"cluster_inner", "cluster_tail"}
    assert clusters["cluster_inner"].get("style") == "dashed"
    assert clusters["cluster_inner"].get("label") == "inner"
    assert set(boxes(clusters["cluster_inner"], model)) == {"a", "d1", "d2"}
    assert set(boxes(clusters["cluster_tail"], model)) == {"t1", "t2"}
    assert set(boxes(dot, model)) == {"inp", "a", "d1", "d2", "t1", "t2"}
    # into the inner model's input layer, out of its last layer, into the
    # Sequential's first layer
    assert edges(dot, model) == {("inp", "a"), ("a", "d1"), ("d1", "d2"), ("d2", "t1"),
                                 ("t1", "t2")}


@needs_pydot
def test_sequential_inside_sequential_and_a_two_output_model():
    inner = models.Sequential([layers.Dense(3, name="i1"), layers.Dense(2, name="i2")],
                              name="inner")
    model = models.Sequential([fastconv.Input((4,)), inner, layers.Dense(1, name="o")])
    assert edges(utils.model_to_dot(model), model) == {("inner", "o")}
    assert edges(utils.model_to_dot(model, expand_nested=True), model) == {
        ("i1", "i2"), ("i2", "o")}

    a = fastconv.Input((4,), name="a")
    two = models.Model(a, [layers.Dense(2, name="p")(a), layers.Dense(3, name="q")(a)],
                       name="two")
    x = fastconv.Input((4,), name="x")
    p, q = two(x)
    model = models.Model(x, layers.Concatenate(name="c")([q, p]))
    dot = utils.model_to_dot(model, show_shapes=True, show_dtype=True)
    assert edges(dot, model) == {("x", "two"), ("two", "c")}
    label = boxes(dot, model)["two"]
    assert "Output shape: <b>[(None, 2), (None, 3)]</b>" in label
    assert "Output dtype: <b>['float32', 'float32']</b>" in label
    # each output leaves from the layer inside that makes it
    assert edges(utils.model_to_dot(model, expand_nested=True), model) == {
        ("x", "a"), ("a", "p"), ("a", "q"), ("p", "c"), ("q", "c")}


@needs_pydot
def test_keras_op_in_a_graph_is_a_box():
    x = fastconv.Input((4,), name="x")
    y = layers.Dense(4, name="d")(x)
    model = models.Model(x, y * 2.0, name="scaled")
    dot = utils.model_to_dot(model, show_shapes=True)
    names = names_by_id(model)
    op = model._function.nodes[-1].operation
    names[str(id(op))] = op.name
    found = {(names[e.get_source()], names[e.get_destination()]) for e in dot.get_edges()}
    assert found == {("x", "d"), ("d", op.name)}
    label = next(n.get("label") for n in dot.get_nodes() if n.get_name() == str(id(op)))
    assert "(Multiply)" in label and "Input shape: <b>(None, 4)</b>" in label


@needs_pydot
def test_subclassed_model_is_one_box():
    class Tiny(models.Model):
        def __init__(self):
            super().__init__(name="tiny")
            self.dense = layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Tiny()
    model(np.zeros((1, 3), np.float32))
    dot = utils.model_to_dot(model)
    nodes = all_nodes(dot)
    assert len(nodes) == 1 and "(Tiny)" in nodes[0].get("label")
    assert all_edges(dot) == []


@needs_pydot
def test_model_to_dot_rejects_bad_arguments():
    model = sequential()
    with pytest.raises(ValueError, match="`rankdir`.*received rankdir='UP'"):
        utils.model_to_dot(model, rankdir="UP")
    with pytest.raises(ValueError, match="`dpi`"):
        utils.model_to_dot(model, dpi=0)
    with pytest.raises(TypeError, match="`show_shapes`"):
        utils.model_to_dot(model, show_shapes="yes")
    with pytest.raises(ValueError, match="`splines`"):
        utils.model_to_dot(model, splines="wavy")
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        utils.model_to_dot(model, colour="red")
    with pytest.raises(ValueError, match="`layer_range` is no longer supported"):
        utils.model_to_dot(model, layer_range=["conv", "head"])
    unbuilt = models.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        utils.model_to_dot(unbuilt)


def test_signatures_are_keras():
    # Keras 3.16: keras/src/utils/model_visualization.py
    drawing = [("show_shapes", False), ("show_dtype", False)]
    assert [(p.name, p.default) for p in
            inspect.signature(utils.plot_model).parameters.values()][:-1] == [
        ("model", inspect.Parameter.empty), ("to_file", "model.png"), *drawing,
        ("show_layer_names", False), ("rankdir", "TB"), ("expand_nested", False),
        ("dpi", 200), ("show_layer_activations", False), ("show_trainable", False),
        ("splines", "ortho")]
    assert [(p.name, p.default) for p in
            inspect.signature(utils.model_to_dot).parameters.values()][:-1] == [
        ("model", inspect.Parameter.empty), *drawing, ("show_layer_names", True),
        ("rankdir", "TB"), ("expand_nested", False), ("dpi", 200), ("subgraph", False),
        ("show_layer_activations", False), ("show_trainable", False), ("splines", "ortho")]


# ----------------------------------------------------------------------------
# plot_model: files


@needs_graphviz
def test_png_is_written(tmp_path):
    path = tmp_path / "model.png"
    utils.plot_model(branching(), to_file=str(path), show_shapes=True)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 100
    # the IHDR chunk: a picture with a real width and height
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 50 and height > 50


@needs_graphviz
def test_no_extension_means_png_and_paths_are_accepted(tmp_path):
    path = tmp_path / "model"
    utils.plot_model(sequential(), to_file=path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


@needs_graphviz
def test_svg_and_dot_are_written(tmp_path):
    utils.plot_model(nested(), to_file=str(tmp_path / "m.svg"), show_layer_names=True,
                     expand_nested=True)
    svg = (tmp_path / "m.svg").read_text()
    assert "<svg" in svg and "d1" in svg and "t2" in svg
    utils.plot_model(sequential(), to_file=str(tmp_path / "m.dot"), rankdir="LR")
    text = (tmp_path / "m.dot").read_text()
    assert text.lstrip().startswith("digraph") and "rankdir=LR" in text


@needs_graphviz
def test_plot_model_rejects_bad_arguments(tmp_path):
    model = sequential()
    path = tmp_path / "model.xyz"
    with pytest.raises(ValueError, match=r"`to_file`.*model\.xyz"):
        utils.plot_model(model, to_file=str(path))
    assert not path.exists()
    with pytest.raises(TypeError, match="`to_file`"):
        utils.plot_model(model, to_file=3)
    with pytest.raises(ValueError, match="`rankdir`"):
        utils.plot_model(model, to_file=str(tmp_path / "m.png"), rankdir="down")
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        utils.plot_model(model, to_file=str(tmp_path / "m.png"), colour="red")
    with pytest.raises(ValueError, match="not yet been built"):
        utils.plot_model(models.Sequential([layers.Dense(2)]), to_file=str(tmp_path / "m.png"))


def test_missing_pydot_or_graphviz_says_what_to_install(monkeypatch, tmp_path):
    model = sequential()
    monkeypatch.setattr(visualization, "pydot", None)
    with pytest.raises(ImportError, match=r"pip install pydot"):
        utils.plot_model(model, to_file=str(tmp_path / "m.png"))
    with pytest.raises(ImportError, match=r"pip install pydot"):
        utils.model_to_dot(model)
    monkeypatch.undo()
    monkeypatch.setattr(visualization, "check_pydot", lambda: True)
    monkeypatch.setattr(visualization, "check_graphviz", lambda: False)
    with pytest.raises(ImportError, match="install graphviz"):
        utils.plot_model(model, to_file=str(tmp_path / "m.png"))
    assert not (tmp_path / "m.png").exists()


def test_missing_graphviz_in_a_notebook_prints_instead(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(visualization, "check_pydot", lambda: True)
    monkeypatch.setattr(visualization, "check_graphviz", lambda: False)
    monkeypatch.setattr(visualization, "_in_notebook", lambda: True)
    assert utils.plot_model(sequential(), to_file=str(tmp_path / "m.png")) is None
    assert "install graphviz" in capsys.readouterr().out
    assert not (tmp_path / "m.png").exists()


# ----------------------------------------------------------------------------
# plot_history and the History object


@pytest.fixture(scope="module")
def history():
    fastconv.backend.clear_session()
    fastconv.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = models.Sequential([fastconv.Input((3,)), layers.Dense(4, activation="relu"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)


@pytest.fixture
def plt():
    plt = pytest.importorskip("matplotlib.pyplot")
    yield plt
    plt.close("all")


def test_history_supports_the_tutorial_idiom(history, plt):
    assert history.epoch == [0, 1, 2]
    assert history.params["epochs"] == 3 and history.params["steps"] == 3
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    (line,) = plt.plot(history.history["loss"])
    np.testing.assert_array_equal(line.get_ydata(), history.history["loss"])
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
    plt.plot(history.epoch, history.history["val_accuracy"])


def test_plot_history_lines_hold_the_logged_values(history, plt, tmp_path):
    path = tmp_path / "history.png"
    fig = utils.plot_history(history, to_file=str(path))
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 100
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    for ax in axes:
        name = ax.get_title()
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"train", "validation"}
        np.testing.assert_allclose(lines["train"].get_ydata(), history.history[name])
        np.testing.assert_allclose(lines["validation"].get_ydata(),
                                   history.history[f"val_{name}"])
        np.testing.assert_array_equal(lines["train"].get_xdata(), [1, 2, 3])


def test_plot_history_selects_metrics_and_takes_a_dict(history, plt):
    fig = utils.plot_history(history.history, metrics="accuracy")
    (ax,) = fig.get_axes()
    assert ax.get_title() == "accuracy"
    hand = {"loss": [3.0, 2.0, 1.5, 1.25]}
    (ax,) = utils.plot_history(hand).get_axes()
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 2.0, 1.5, 1.25])
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    assert not os.path.exists("model.png")


def test_plot_history_rejects_bad_arguments(history, plt):
    with pytest.raises(ValueError, match=r"`metrics`.*'mae'"):
        utils.plot_history(history, metrics="mae")
    with pytest.raises(TypeError, match="`metrics`"):
        utils.plot_history(history, metrics=[])
    with pytest.raises(TypeError, match="`history`"):
        utils.plot_history([1.0, 2.0])
    with pytest.raises(ValueError, match="no epochs"):
        utils.plot_history({})
    with pytest.raises(ValueError, match="one value per epoch"):
        utils.plot_history({"loss": [1.0, 2.0], "val_loss": [1.0]})
    with pytest.raises(TypeError, match="`to_file`"):
        utils.plot_history(history, to_file=5)

"""Pictures of a model's graph and of its training, with Keras 3's functions.

``model_to_dot`` turns a model into a ``pydot.Dot`` graph: one box per layer
(an HTML-like table: name and class, then optional activation, input/output
shapes, output dtype and trainable cells, as Keras draws them) and one edge
per tensor a call reads. ``plot_model`` renders that graph with Graphviz's
``dot`` into a file whose extension picks the format (png, svg, pdf, dot,
...). Both need ``pydot`` and Graphviz (``pip install pydot``; the
``graphviz`` system package) and say so when they are missing.

Edges come from the graph fastconv records (``fastconv.graph``): each node of
the model's ``Function`` is one call, and each of its input tensors knows the
operation that produced it. A nested model is one box, or with
``expand_nested=True`` a dashed cluster of its own boxes, the outer edges
then reaching into it (to its input layer, or a Sequential's first layer)
and out of it (from the layer that makes the output used).

``plot_history`` draws ``fit``'s per-epoch logs with matplotlib.
"""

from __future__ import annotations

import itertools
import os
import sys
from html import escape as _html_escape
from typing import Any

from fastconv.graph.node import KerasTensor, flatten, unflatten

try:
    import pydot
except ImportError:
    pydot = None

_RANKDIRS = ("TB", "LR", "BT", "RL")
_SPLINES = ("ortho", "curved", "polyline", "spline", "line", "true", "false", "none")


def check_pydot() -> bool:
    """Whether pydot can be imported."""
    return pydot is not None


def check_graphviz() -> bool:
    """Whether pydot and Graphviz's ``dot`` program both work (rendering an
    empty graph is the only reliable test of the program)."""
    if not check_pydot():
        return False
    try:
        pydot.Dot.create(pydot.Dot())
        return True
    except (OSError, pydot.PydotException):
        return False


def _not_built_error() -> ValueError:
    return ValueError("This model has not yet been built. Build the model first by calling "
                      "`build()` or by calling the model on a batch of data.")


def _is_sequential(layer: Any) -> bool:
    from fastconv.models.sequential import Sequential
    return isinstance(layer, Sequential)


def _is_graph_model(layer: Any) -> bool:
    """A model with a graph of its own (Functional, and Sequential, which is
    one in fastconv); a subclassed model is drawn as a single box."""
    from fastconv.models.functional import Functional
    return isinstance(layer, Functional) and getattr(layer, "_function", None) is not None


def _operations(model: Any) -> list:
    """What the model's graph draws, each once: input layers first, then the
    called layers and Keras ops in call order (a Sequential's input layer is
    not drawn, as Keras lists a Sequential's layers without it)."""
    if _is_sequential(model):
        return model.layers
    found, seen = [], set()
    fn = model._function
    for op in [t.operation for t in fn.inputs] + [node.operation for node in fn.nodes]:
        if op is not None and id(op) not in seen:
            seen.add(id(op))
            found.append(op)
    return found


def _first_nodes(model: Any) -> dict[int, Any]:
    """Each operation's first call in this model's graph: its boxes show the
    shapes of that call (Keras shows a layer's first call)."""
    first: dict[int, Any] = {}
    fn = getattr(model, "_function", None)
    if fn is None:
        return first
    for t in fn.inputs:
        first.setdefault(id(t.operation), t.node)
    for node in fn.nodes:
        first.setdefault(id(node.operation), node)
    return first


def _class_name(op: Any) -> str:
    primitive = getattr(op, "primitive", None)
    if primitive is not None:  # a Keras op called on symbolic tensors
        return "".join(part.capitalize() for part in primitive.name.split("_"))
    return type(op).__name__


def _activation_name(layer: Any) -> str:
    activation = layer.activation
    if hasattr(activation, "name"):
        return str(activation.name)
    if hasattr(activation, "__name__"):
        return activation.__name__
    return str(activation)


def _escape(text: str) -> str:
    """Text safe inside Graphviz's HTML-like labels (quotes may stay)."""
    return _html_escape(text, quote=False)


def _format(value: Any) -> str:
    """Keras' cell text: a tuple as Python prints it, a list of them, a dict
    as ``key: value`` pairs, "?" when unknown."""
    if value is None:
        return "?"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def _call_io(op: Any, node: Any) -> tuple[Any, Any, Any]:
    """(input shapes, output shapes, output dtypes) of one call, nested as
    the call's arguments and results are; Nones when nothing is known (a
    subclassed model never called symbolically)."""
    if node is not None:
        ins, in_structure = node.inputs, node.structure
        outs, out_structure = node.outputs, node.output_structure
    else:
        if getattr(op, "output", None) is None:
            return None, None, None
        ins, in_structure = flatten(op.input) if op.input is not None else ([], None)
        outs, out_structure = flatten(op.output)

    def nested(values: list, structure: Any) -> Any:
        value = unflatten(values, structure)
        # Several tensors print as a list, as Keras prints them.
        return list(value) if isinstance(value, tuple) and structure != "single" else value

    shapes_in = None
    if ins and all(isinstance(t, KerasTensor) for t in ins) and not hasattr(op, "primitive"):
        shapes_in = nested([tuple(t.shape) for t in ins], in_structure)
    elif ins:  # a Keras op (which may also read weights): its tensor inputs
        tensors = [tuple(t.shape) for t in ins if isinstance(t, KerasTensor)]
        shapes_in = tensors[0] if len(tensors) == 1 else tensors
    return (shapes_in, nested([tuple(t.shape) for t in outs], out_structure),
            nested([t.dtype for t in outs], out_structure))


def _cell(text: str, bgcolor: str = "white", color: str | None = None,
          colspan: int | None = None) -> str:
    span = f' colspan="{colspan}"' if colspan is not None else ""
    font_color = f' color="{color}"' if color else ""
    return (f'<td bgcolor="{bgcolor}"{span}><font point-size="14"{font_color}>{text}'
            "</font></td>")


def _label(op: Any, node: Any, options: dict[str, bool]) -> str:
    """The box of one layer: Keras' HTML-like table."""
    class_name = _class_name(op)
    colspan = max(1, int(options["show_dtype"]) + int(options["show_trainable"])
                  + 2 * int(options["show_shapes"]))
    title = (f"<b>{_escape(op.name)}</b> ({class_name})" if options["show_layer_names"]
             else f"<b>{class_name}</b>")
    rows = [(f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" '
             f'color="white">{title}</font></td></tr>')]
    if options["show_layer_activations"] and getattr(op, "activation", None) is not None:
        rows.append("<tr>" + _cell(f"Activation: <b>{_escape(_activation_name(op))}</b>",
                                   colspan=colspan) + "</tr>")
    shapes_in, shapes_out, dtypes_out = _call_io(op, node)
    cols = []
    if options["show_shapes"]:
        if not getattr(op, "is_input_layer", False):
            cols.append(_cell(f"Input shape: <b>{_escape(_format(shapes_in))}</b>"))
        cols.append(_cell(f"Output shape: <b>{_escape(_format(shapes_out))}</b>"))
    if options["show_dtype"]:
        cols.append(_cell(f"Output dtype: <b>{_escape(_format(dtypes_out))}</b>"))
    if options["show_trainable"] and getattr(op, "weights", None):
        cols.append(_cell("<b>Trainable</b>", "forestgreen", "white") if op.trainable
                    else _cell("<b>Non-trainable</b>", "firebrick", "white"))
    if cols:
        rows.append("<tr>" + "".join(cols) + "</tr>")
    return ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
            + "".join(rows) + "</table>>")


def _add_node(dot: Any, op: Any, node: Any, options: dict[str, bool]) -> None:
    box = pydot.Node(str(id(op)), label=_label(op, node, options))
    box.set("fontname", "Helvetica")
    box.set("border", "0")
    box.set("margin", "0")
    dot.add_node(box)


def _add_edge(dot: Any, source: Any, destination: Any) -> None:
    src, dst = str(id(source)), str(id(destination))
    if not dot.get_edge(src, dst):
        edge = pydot.Edge(src, dst)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _check_flag(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"Invalid value for argument `{name}`: expected True or False, "
                        f"received {name}={value!r}.")


def _check_drawing_arguments(flags: dict[str, Any], rankdir: Any, dpi: Any,
                             splines: Any) -> None:
    for name, value in flags.items():
        _check_flag(value, name)
    if rankdir not in _RANKDIRS:
        raise ValueError(f"Invalid value for argument `rankdir`: expected one of "
                         f"{', '.join(repr(r) for r in _RANKDIRS)}, received rankdir={rankdir!r}.")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"Invalid value for argument `dpi`: expected a number > 0, "
                         f"received dpi={dpi!r}.")
    if splines not in _SPLINES:
        raise ValueError(f"Invalid value for argument `splines`: expected one of "
                         f"{', '.join(repr(s) for s in _SPLINES)}, received splines={splines!r}.")


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")


def model_to_dot(model: Any, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB",
                 expand_nested: bool = False, dpi: float = 200, subgraph: bool = False,
                 show_layer_activations: bool = False, show_trainable: bool = False,
                 splines: str = "ortho", **kwargs: Any) -> Any:
    """The model's graph as a ``pydot.Dot`` (``keras.utils.model_to_dot``).

    Parameters
    ----------
    model : Model
        A built model: Sequential, functional, or subclassed (one box).
    show_shapes : bool
        Add each layer's input and output shapes, batch dimension first:
        ``Input shape: (None, 28, 28, 1)``, a list for several inputs.
    show_dtype : bool
        Add the output dtype.
    show_layer_names : bool
        Title each box "name (Class)" rather than "Class".
    rankdir : {"TB", "LR", "BT", "RL"}
        Graphviz's direction: "TB" top to bottom, "LR" left to right.
    expand_nested : bool
        Draw nested models as dashed clusters of their layers.
    dpi : float
        Resolution of rendered images.
    subgraph : bool
        Return a ``pydot.Cluster`` (used for nested models).
    show_layer_activations : bool
        Add the activation of layers that have one.
    show_trainable : bool
        Add a "Trainable" / "Non-trainable" cell to layers with weights.
    splines : str
        How Graphviz draws edges: "ortho" (right angles, the default),
        "curved", "polyline", "spline", "line".

    Returns
    -------
    pydot.Dot, or pydot.Cluster when ``subgraph=True``

    Raises
    ------
    ValueError
        The model is not built, or an argument is invalid.
    ImportError
        pydot is not installed.
    """
    if not model.built:
        raise _not_built_error()
    if not check_pydot():
        raise ImportError("You must install pydot (`pip install pydot`) for model_to_dot to "
                          "work.")
    options = {"show_shapes": show_shapes, "show_dtype": show_dtype,
               "show_layer_names": show_layer_names,
               "show_layer_activations": show_layer_activations,
               "show_trainable": show_trainable}
    _check_drawing_arguments({**options, "expand_nested": expand_nested,
                              "subgraph": subgraph}, rankdir, dpi, splines)
    _check_kwargs(dict(kwargs))

    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")

    if not _is_graph_model(model):
        _add_node(dot, model, None, options)
        return dot

    operations = _operations(model)
    first = _first_nodes(model)
    for op in operations:
        if expand_nested and _is_graph_model(op):
            dot.add_subgraph(model_to_dot(
                op, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested,
                dpi, subgraph=True, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable, splines=splines))
        else:
            _add_node(dot, op, first.get(id(op)), options)

    if _is_sequential(model) and not expand_nested:
        for a, b in itertools.pairwise(operations):
            _add_edge(dot, a, b)
        return dot

    for node in model._function.nodes:
        for input_index, tensor in enumerate(node.input_tensors):
            source, output_index = tensor.operation, tensor.history[1]
            if _is_sequential(model) and getattr(source, "is_input_layer", False):
                continue  # a Sequential's input layer has no box
            destination = node.operation
            if expand_nested:
                # Models have no boxes of their own once expanded: an edge
                # leaves from the layer inside that makes the output used ...
                while _is_graph_model(source):
                    inner = source.outputs[output_index]
                    source, output_index = inner.operation, inner.history[1]
                # ... and enters at the input layer it feeds (a Sequential's
                # first layer, as its input layer is not drawn).
                while _is_graph_model(destination):
                    if _is_sequential(destination):
                        destination = destination.layers[0]
                    else:
                        destination = destination.inputs[input_index].operation
            _add_edge(dot, source, destination)
    return dot


def _output_format(to_file: str) -> str:
    extension = os.path.splitext(to_file)[1][1:].lower()
    if not extension:
        return "png"
    formats = sorted(set(pydot.Dot().formats) - {"xlib"})  # xlib opens a window, no file
    if extension not in formats:
        raise ValueError(f"Invalid value for argument `to_file`: expected a file name whose "
                         f"extension is a Graphviz output format (png, svg, pdf, dot, ... "
                         f"one of {', '.join(formats)}), received to_file={to_file!r}.")
    return extension


def _in_notebook() -> bool:
    """Whether an IPython shell is running (imported IPython alone is not one)."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


def _missing(message: str) -> None:
    # A missing optional program must not stop a notebook: Keras prints the
    # message there and raises everywhere else.
    if _in_notebook():
        print(message)
        return
    raise ImportError(message)


def plot_model(model: Any, to_file: str | os.PathLike = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = False, rankdir: str = "TB",
               expand_nested: bool = False, dpi: float = 200,
               show_layer_activations: bool = False, show_trainable: bool = False,
               splines: str = "ortho", **kwargs: Any) -> Any:
    """Draw the model's graph into a file (``keras.utils.plot_model``).

    The arguments are :func:`model_to_dot`'s; ``to_file``'s extension picks
    the format Graphviz writes: ``.png`` (also with no extension), ``.svg``,
    ``.pdf``, ``.dot`` (the laid-out graph as text), or any other Graphviz
    output format. As in Keras 3, ``show_layer_names`` defaults to False here
    (and to True in ``model_to_dot``).

    Returns
    -------
    IPython.display.Image, IPython.display.SVG or None
        The picture, for display in a notebook, when IPython is installed
        and the format is one it shows (png, jpg, gif, svg).

    Raises
    ------
    ValueError
        The model is not built, the extension is not a Graphviz format, or
        another argument is invalid.
    ImportError
        pydot or Graphviz's ``dot`` is missing (in a notebook the message is
        printed instead and None returned).

    Examples
    --------
    >>> fastconv.utils.plot_model(model, "model.png", show_shapes=True)
    """
    if not model.built:
        raise _not_built_error()
    if not check_pydot():
        return _missing("You must install pydot (`pip install pydot`) for `plot_model` to work.")
    if not check_graphviz():
        return _missing("You must install graphviz (see instructions at "
                        "https://graphviz.gitlab.io/download/; on Debian and Ubuntu `apt-get "
                        "install graphviz`) for `plot_model` to work.")
    _check_kwargs(dict(kwargs))
    if not isinstance(to_file, (str, os.PathLike)):
        raise TypeError(f"Invalid value for argument `to_file`: expected a file name (str or "
                        f"path), received to_file={to_file!r}.")
    to_file = os.fspath(to_file)
    extension = _output_format(to_file)
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, splines=splines)
    dot.write(to_file, format=extension)
    try:
        from IPython import display
    except ImportError:
        return None
    if extension == "svg":
        return display.SVG(filename=to_file)
    if extension in ("png", "jpg", "jpeg", "gif"):
        return display.Image(filename=to_file, format=extension)
    return None


# ----------------------------------------------------------------------------
# training curves


def _history_logs(history: Any) -> tuple[dict[str, list], list[int]]:
    """(logs, epochs) from a History (``fit``'s result) or its ``.history`` dict."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(f"Invalid value for argument `history`: expected the History that "
                        f"`fit` returns or its `history` dict, received "
                        f"{type(history).__name__}.")
    lengths = {len(v) for v in logs.values()}
    if len(lengths) > 1:
        raise ValueError(f"Invalid value for argument `history`: every log needs one value "
                         f"per epoch, received lists of lengths "
                         f"{ {k: len(v) for k, v in logs.items()} }.")
    n = lengths.pop() if lengths else 0
    epochs = list(getattr(history, "epoch", []) or [])
    if len(epochs) != n:
        epochs = list(range(n))
    return logs, epochs


def _use_agg_without_display() -> None:
    """Pick the file-only Agg backend on a Linux machine without a display,
    unless pyplot is already in use or the user chose a backend."""
    import matplotlib
    if ("matplotlib.pyplot" not in sys.modules and sys.platform.startswith("linux")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
            and not os.environ.get("MPLBACKEND")):
        matplotlib.use("Agg")


def plot_history(history: Any, metrics: str | list[str] | None = None,
                 to_file: str | os.PathLike | None = None) -> Any:
    """Draw the loss and metrics of each epoch of ``fit``: one panel per
    metric, with its training curve and, when ``fit`` had validation data,
    its ``val_`` curve.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returns, or its ``history`` dict (``{"loss": [...],
        "val_loss": [...], ...}``).
    metrics : str or list of str, optional
        The logs to draw (without the ``val_`` prefix, which is added when
        present). Default: every training log, ``loss`` first.
    to_file : str or path, optional
        Save the figure there too (the format follows the extension; PNG
        for ``.png``).

    Returns
    -------
    matplotlib.figure.Figure
        The x axis is the epoch number counted from 1 (``history.epoch``
        plus one); each line's data are the logged values.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    ValueError
        A requested metric was not logged, or the history is empty.
    """
    logs, epochs = _history_logs(history)
    available = sorted((k for k in logs if not k.startswith("val_")), key=lambda k: k != "loss")
    available += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in logs]
    if metrics is None:
        names = available
    else:
        names = [metrics] if isinstance(metrics, str) else metrics
        if (not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(n, str) for n in names)):
            raise TypeError(f"Invalid value for argument `metrics`: expected a metric name or "
                            f"a non-empty list of them, received metrics={metrics!r}.")
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"Invalid value for argument `metrics`: expected names among the "
                             f"logged {available}, received metrics={metrics!r}.")
    if not names or not epochs:
        raise ValueError("Invalid value for argument `history`: it holds no epochs to plot "
                         f"(received logs {sorted(logs)} with {len(epochs)} epochs).")
    if to_file is not None and not isinstance(to_file, (str, os.PathLike)):
        raise TypeError(f"Invalid value for argument `to_file`: expected a file name (str or "
                        f"path), received to_file={to_file!r}.")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("You must install matplotlib (`pip install matplotlib`) for "
                          "`plot_history` to work.") from None
    _use_agg_without_display()
    import matplotlib.pyplot as plt

    x = [e + 1 for e in epochs]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                ax.plot(x, [float(v) for v in logs[key]], marker="o", label=label)
        ax.set_title(name)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(name)
        ax.legend()
    fig.tight_layout()
    if to_file is not None:
        fig.savefig(os.fspath(to_file))
    return fig


__all__ = ["check_graphviz", "check_pydot", "model_to_dot", "plot_history", "plot_model"]

"""``model.summary()``: Keras 3's table of layers, output shapes and parameters.

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
    └─────────────────────────────────┴────────────────────────┴───────────────┘
     Total params: 320 (1.25 KB)
     Trainable params: 320 (1.25 KB)
     Non-trainable params: 0 (0.00 B)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

WIDTHS = (33, 24, 15)


def format_size(n_bytes: float) -> str:
    """Keras' memory figures: 364.54 KB, 1.25 MB, 0.00 B."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _rule(left: str, fill: str, middle: str, right: str) -> str:
    return left + middle.join(fill * w for w in WIDTHS) + right


def _row(cells: tuple[str, str, str], bar: str) -> list[str]:
    """One table row; long cells wrap onto further lines."""
    width = [w - 2 for w in WIDTHS]
    pieces = [[c[i:i + w] for i in range(0, max(len(c), 1), w)] for c, w in zip(cells, width)]
    lines = []
    for k in range(max(len(p) for p in pieces)):
        name, shape, params = (p[k] if k < len(p) else "" for p in pieces)
        lines.append(f"{bar} {name:<{width[0]}} {bar} {shape:<{width[1]}} {bar} "
                     f"{params:>{width[2]}} {bar}")
    return lines


def _wrap(text: str, width: int) -> list[str]:
    """Words onto lines of ``width`` (a word longer than a line is cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = word if not current else f"{current} {word}"
        if len(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return lines


def _graph_row(cells: tuple[str, ...], bar: str, widths: tuple[int, ...],
               right_aligned: int) -> list[str]:
    pieces = [_wrap(c, w - 2) for c, w in zip(cells, widths)]
    lines = []
    for k in range(max(len(p) for p in pieces)):
        parts = []
        for i, (p, w) in enumerate(zip(pieces, widths)):
            text = p[k] if k < len(p) else ""
            parts.append(f" {text:>{w - 2}} " if i == right_aligned else f" {text:<{w - 2}} ")
        lines.append(bar + bar.join(parts) + bar)
    return lines


GRAPH_WIDTHS = (21, 19, 9, 22)


def _is_chain(model: Any) -> bool:
    """Keras prints the plain table for a Sequential and for graphs that are
    a chain: one input, one output, each call reading one tensor that no
    other call reads."""
    fn = getattr(model, "_function", None)
    if fn is None or type(model).__name__ == "Sequential":
        return True
    if len(fn.inputs) != 1 or len(fn.outputs) != 1:
        return False
    readers: dict[int, int] = {}
    for node in fn.nodes:
        if len(node.inputs) != 1:
            return False
        key = id(node.inputs[0])
        readers[key] = readers.get(key, 0) + 1
        if readers[key] > 1:
            return False
    return True


def _connections(model: Any) -> dict[int, list[str]]:
    """For each layer: the tensors its calls read, as Keras writes them
    (``layer[node][tensor]``)."""
    fn = model._function
    index: dict[int, int] = {}
    per_layer: dict[int, int] = {}
    for t in fn.inputs:
        index[id(t.node)] = 0
    for node in fn.nodes:
        k = per_layer.get(id(node.operation), 0)
        per_layer[id(node.operation)] = k + 1
        index[id(node)] = k
    result: dict[int, list[str]] = {}
    for node in fn.nodes:
        refs = [f"{t.operation.name}[{index.get(id(t.node), 0)}][{t.history[1]}]"
                for t in node.input_tensors]
        result.setdefault(id(node.operation), []).extend(refs)
    return result


def _counts_lines(model: Any) -> list[str]:
    trainable = sum(w.value.size for w in model.trainable_weights)
    frozen = sum(w.value.size for w in model.non_trainable_weights)
    itemsize = 8 if model._dtype() == "float64" else 4
    return [f" {label} params: {count:,} ({format_size(count * itemsize)})"
            for label, count in (("Total", trainable + frozen), ("Trainable", trainable),
                                 ("Non-trainable", frozen))]


def _shape_text(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return str(tuple(shape) if shape is not None else "?").replace(",)", ")")


def print_summary(model: Any, print_fn: Callable[[str], Any]) -> None:
    if not _is_chain(model):
        _print_graph_summary(model, print_fn)
        return
    lines = [f'Model: "{model.name}"', _rule("┏", "━", "┳", "┓")]
    lines += _row(("Layer (type)", "Output Shape", "Param #"), "┃")
    lines.append(_rule("┡", "━", "╇", "┩"))
    shown = model.layers
    for i, layer in enumerate(shown):
        shape = _shape_text(layer.output_shape)
        lines += _row((f"{layer.name} ({type(layer).__name__})", shape,
                       f"{layer.count_params():,}"), "│")
        if i + 1 < len(shown):
            lines.append(_rule("├", "─", "┼", "┤"))
    lines.append(_rule("└", "─", "┴", "┘"))
    lines += _counts_lines(model)
    for line in lines:
        print_fn(line)


def _print_graph_summary(model: Any, print_fn: Callable[[str], Any]) -> None:
    """Keras' table for graphs with branches, merges or several inputs and
    outputs, with the "Connected to" column."""
    w = GRAPH_WIDTHS

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * x for x in w) + right

    connections = _connections(model)
    lines = [f'Model: "{model.name}"', rule("┏", "━", "┳", "┓")]
    lines += _graph_row(("Layer (type)", "Output Shape", "Param #", "Connected to"), "┃", w, 2)
    lines.append(rule("┡", "━", "╇", "┩"))
    shown = model.layers
    for i, layer in enumerate(shown):
        connected = ", ".join(connections.get(id(layer), [])) or "-"
        lines += _graph_row((f"{layer.name} ({type(layer).__name__})",
                             _shape_text(layer.output_shape), f"{layer.count_params():,}",
                             connected), "│", w, 2)
        if i + 1 < len(shown):
            lines.append(rule("├", "─", "┼", "┤"))
    lines.append(rule("└", "─", "┴", "┘"))
    lines += _counts_lines(model)
    for line in lines:
        print_fn(line)

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


def print_summary(model: Any, print_fn: Callable[[str], Any]) -> None:
    lines = [f'Model: "{model.name}"', _rule("┏", "━", "┳", "┓")]
    lines += _row(("Layer (type)", "Output Shape", "Param #"), "┃")
    lines.append(_rule("┡", "━", "╇", "┩"))
    shown = model.layers
    for i, layer in enumerate(shown):
        shape = str(layer.output_shape).replace(",)", ")")
        lines += _row((f"{layer.name} ({type(layer).__name__})", shape,
                       f"{layer.count_params():,}"), "│")
        if i + 1 < len(shown):
            lines.append(_rule("├", "─", "┼", "┤"))
    lines.append(_rule("└", "─", "┴", "┘"))
    trainable = sum(w.value.size for w in model.trainable_weights)
    frozen = sum(w.value.size for w in model.non_trainable_weights)
    itemsize = 8 if model._dtype() == "float64" else 4
    for label, count in (("Total", trainable + frozen), ("Trainable", trainable),
                         ("Non-trainable", frozen)):
        lines.append(f" {label} params: {count:,} ({format_size(count * itemsize)})")
    for line in lines:
        print_fn(line)

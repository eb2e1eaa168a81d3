"""``Rescaling``: ``x * scale + offset``, e.g. pixels in [0, 255] to [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.layers.base import Layer


def _number_or_array(value: Any, name: str) -> Any:
    """A float, or an array of floats (per channel) kept as a NumPy array."""
    if isinstance(value, dict) and value.get("class_name") == "__numpy__":  # Keras' config
        value = value.get("config", {}).get("value")
    arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b" or not np.all(np.isfinite(arr)):
        raise ValueError(f"Invalid value for argument `{name}`: expected a finite number or an "
                         f"array of finite numbers, received {name}={value!r}.")
    return float(arr) if arr.ndim == 0 else arr.astype(np.float64)


def _serialize(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": value.tolist(), "dtype": value.dtype.name}}
    return value


class Rescaling(Layer):
    """Multiplies the inputs by ``scale`` and adds ``offset``, as Keras'
    ``keras.layers.Rescaling``: ``Rescaling(1 / 255)`` maps [0, 255] to
    [0, 1], ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1].

    Parameters
    ----------
    scale : float or array
        A number, or an array broadcast against the input's last axes (one
        value per channel).
    offset : float or array
        Added after scaling.

    Any input shape; integer inputs (e.g. uint8 pixels) are cast to the
    layer's float dtype. The gradient is ``dy * scale``.
    """

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _number_or_array(scale, "scale")
        self.offset = _number_or_array(offset, "offset")

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, None]:
        x = np.asarray(x).astype(self.dtype, copy=False)
        scale = np.asarray(self.scale, self.dtype)
        return (x * scale + np.asarray(self.offset, self.dtype)).astype(self.dtype), None

    def backward(self, ctx: None, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return (dy * np.asarray(self.scale, dy.dtype)).astype(dy.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": _serialize(self.scale),
                "offset": _serialize(self.offset)}

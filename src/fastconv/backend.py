"""Keras' backend helpers that programs call (``K.clear_session()`` ...)."""

from __future__ import annotations

from fastconv.layers.base import reset_names


def clear_session() -> None:
    """Restart automatic layer names ("conv2d", "conv2d_1", ...). fastconv keeps
    no other global graph state, so this is all there is to clear."""
    reset_names()


def image_data_format() -> str:
    return "channels_last"


def floatx() -> str:
    return "float32"


def epsilon() -> float:
    return 1e-7

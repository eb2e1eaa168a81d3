"""Models: ``Model`` (functional or subclassed), ``Sequential``, and the
functions that load, describe and copy them."""

from __future__ import annotations

import json
from typing import Any

from fastconv.models.functional import Functional
from fastconv.models.model import Model
from fastconv.models.sequential import Sequential


def load_model(filepath: str, custom_objects: dict | None = None, compile: bool = True) -> Model:
    """Load a model file; its extension names the format:

    - ``.keras``: Keras 3's archive, written by Keras or by fastconv (a
      fastconv archive written under this name before is read by content);
    - ``.fastconv`` / ``.zip``: fastconv's own archive;
    - ``.h5`` / ``.hdf5``: Keras 2 / tf.keras full-model HDF5 files.

    Architecture, weights, compile settings and (for ``.keras`` and
    fastconv's files) the optimizer state are restored. Loading never
    imports a module or runs code a file names: classes resolve only through
    fastconv's registry and ``custom_objects``; Lambda layers (Python
    bytecode) and foreign modules are refused with a ValueError naming the
    file. Keras' HDF5 formats need h5py (``pip install "fastconv[keras-files]"``).
    """
    from fastconv import saving
    return saving.load_model(filepath, compile=compile, custom_objects=custom_objects)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """A new model (fresh weights) from ``model.to_json()``."""
    from fastconv import saving
    return saving.model_from_config(saving.parse_json(json_string, "the JSON string"),
                                    custom_objects, "the JSON string")


def clone_model(model: Model, input_tensors: Any = None, custom_objects: dict | None = None) -> Model:
    """A model with the same architecture and fresh weights."""
    from fastconv import saving
    if input_tensors is not None:
        raise ValueError("clone_model(input_tensors=...) is not supported; call the clone "
                         "on the new tensors instead.")
    return saving.model_from_config(json.loads(model.to_json()), custom_objects)


__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json"]

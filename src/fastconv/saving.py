"""Model and weight files: JSON for the architecture, .npz for the arrays.

- ``model.save(path)`` writes one zip archive holding ``config.json`` (the
  architecture and compile settings) and ``weights.npz`` (every weight and
  the optimizer's state).
- ``model.save_weights(path)`` writes the weights alone as ``.npz``.

Loading reads JSON and arrays with ``allow_pickle=False``, so opening a file
never executes code. Every write goes to a temporary file in the target's
directory, which is then renamed over the target: a crash halfway leaves the
previous file intact. Corrupt or mismatched files raise ``ValueError``.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import zipfile
from typing import Any

import numpy as np

import fastconv
from fastconv import layers as layers_module
from fastconv import losses, optimizers

FORMAT = "fastconv.model"
FORMAT_VERSION = 1

LAYER_CLASSES = {
    name: getattr(layers_module, name)
    for name in ("InputLayer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dense",
                 "Flatten", "Dropout", "Activation", "ReLU", "Softmax", "Reshape")
}


def _atomic_write(filepath: str, overwrite: bool, write: Any) -> None:
    """Call ``write(file)`` on a temporary file, then rename it to ``filepath``."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False.")
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600) and the rename would
    # keep that mode; mode 0666 lets the umask decide, as for any new file.
    tmp = os.path.join(directory, f".fastconv-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------
# architecture


def serialize_layer(layer: Any) -> dict[str, Any]:
    name = type(layer).__name__
    if name not in LAYER_CLASSES:
        raise ValueError(f"Layer class {name} cannot be saved: supported classes are "
                         f"{sorted(LAYER_CLASSES)}.")
    return {"class_name": name, "config": layer.get_config()}


def deserialize_layer(spec: Any) -> Any:
    if not isinstance(spec, dict) or spec.get("class_name") not in LAYER_CLASSES:
        got = spec.get("class_name") if isinstance(spec, dict) else spec
        raise ValueError(f"Unknown layer {got!r} in the model config; supported classes are "
                         f"{sorted(LAYER_CLASSES)}.")
    config = dict(spec.get("config", {}))
    cls = LAYER_CLASSES[spec["class_name"]]
    if cls is layers_module.InputLayer:
        return cls(batch_shape=tuple(config["batch_shape"]), name=config.get("name"),
                   dtype=config.get("dtype"))
    if "batch_input_shape" in config:
        config["batch_input_shape"] = tuple(config["batch_input_shape"])
    return cls.from_config(config)


def parse_json(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"{what} does not describe a model (expected keys 'class_name' "
                         "and 'config').")
    return config


def model_from_config(spec: dict[str, Any]) -> Any:
    from fastconv.models import Model, Sequential

    kind, config = spec.get("class_name"), spec.get("config", {})
    try:
        built = [deserialize_layer(layer) for layer in config["layers"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"The model config is incomplete or malformed: {exc!r}") from None
    if kind == "Sequential":
        return Sequential(built, name=config.get("name"))
    if kind == "Functional":
        if not built or not isinstance(built[0], layers_module.InputLayer):
            raise ValueError("A functional model config must start with its InputLayer.")
        tensor = built[0].output
        for layer in built[1:]:
            tensor = layer(tensor)
        return Model(built[0].output, tensor, name=config.get("name"))
    raise ValueError(f"Unknown model class {kind!r}; expected 'Sequential' or 'Functional'.")


# ----------------------------------------------------------------------------
# weights


def _weight_arrays(model: Any) -> dict[str, np.ndarray]:
    return {f"weight_{i:04d}": w.value for i, w in enumerate(model.weights)}


def _assign_weights(model: Any, arrays: Any, source: str) -> None:
    variables = model.weights
    names = sorted(k for k in arrays if k.startswith("weight_"))
    if len(names) != len(variables):
        raise ValueError(f"{source} holds {len(names)} weight arrays but the model has "
                         f"{len(variables)}; the file belongs to another architecture.")
    values = [arrays[name] for name in names]
    for var, value in zip(variables, values):
        if value.shape != var.shape:
            raise ValueError(f"{source}: weight {var.name} has shape {value.shape} in the file "
                             f"but {var.shape} in the model.")
    for var, value in zip(variables, values):
        var.value[...] = value


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_npz(data: Any, source: str) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(data, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
            raise ValueError("it holds a single array, not named weight arrays")
        with loaded as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{source} is not a readable .npz weights file: {exc}") from None


def save_weights(model: Any, filepath: str, overwrite: bool = True) -> None:
    model._require_built("save_weights")
    payload = _npz_bytes(_weight_arrays(model))
    _atomic_write(filepath, overwrite, lambda f: f.write(payload))


def load_weights(model: Any, filepath: str) -> None:
    model._require_built("load_weights")
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No weights file at {filepath}.")
    if zipfile.is_zipfile(filepath) and _is_model_archive(filepath):
        with zipfile.ZipFile(filepath) as archive:
            arrays = _read_npz(io.BytesIO(archive.read("weights.npz")), filepath)
    else:
        arrays = _read_npz(filepath, filepath)
    _assign_weights(model, arrays, filepath)


# ----------------------------------------------------------------------------
# whole models


def _is_model_archive(filepath: str) -> bool:
    try:
        with zipfile.ZipFile(filepath) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def save_model(model: Any, filepath: str, overwrite: bool = True) -> None:
    model._require_built("save")
    spec = json.loads(model.to_json())
    arrays = _weight_arrays(model)
    if getattr(model, "compiled", False):
        # The optimizer's config is taken now, not at compile time: its
        # learning rate may have been changed since.
        spec["compile_config"] = {"optimizer": optimizers.serialize(model.optimizer),
                                  **model._compile_config}
        for name, value in model.optimizer.get_state().items():
            arrays[f"optimizer/{name}"] = value
    spec["format"] = FORMAT
    spec["format_version"] = FORMAT_VERSION
    spec["fastconv_version"] = fastconv.__version__
    config_bytes = json.dumps(spec, indent=1).encode()
    weights_bytes = _npz_bytes(arrays)

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("config.json", config_bytes)
            archive.writestr("weights.npz", weights_bytes)

    _atomic_write(filepath, overwrite, write)


def load_model(filepath: str, compile: bool = True) -> Any:
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No model file at {filepath}.")
    try:
        with zipfile.ZipFile(filepath) as archive:
            config_bytes = archive.read("config.json")
            weights_bytes = archive.read("weights.npz")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise ValueError(f"{filepath} is not a fastconv model file (saved by model.save) or "
                         f"is corrupt: {exc}") from None
    spec = parse_json(config_bytes, filepath)
    if spec.get("format") != FORMAT:
        raise ValueError(f"{filepath} is not a fastconv model file (format "
                         f"{spec.get('format')!r}).")
    model = model_from_config(spec)
    arrays = _read_npz(io.BytesIO(weights_bytes), filepath)
    _assign_weights(model, arrays, filepath)
    compile_config = spec.get("compile_config")
    if compile and compile_config:
        try:
            optimizer, loss = compile_config["optimizer"], compile_config["loss"]
            metrics = compile_config["metrics"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{filepath}: the compile settings are malformed: {exc!r}") from None
        model.compile(optimizer=optimizers.get(optimizer),
                      loss=losses.get(loss) if loss else None, metrics=metrics)
        state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        if state:
            model.optimizer.set_state(state)
    return model

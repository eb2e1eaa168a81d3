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
from fastconv.layers.registry import register_keras_serializable  # noqa: F401  (public)

FORMAT = "fastconv.model"
FORMAT_VERSION = 1

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
    """``{"class_name", "config"}`` of a layer or model (a subclassed model
    also records the input shape it was built for)."""
    from fastconv.layers import registry
    from fastconv.models import Functional, Model, Sequential

    cls = type(layer)
    name = "Functional" if cls is Functional else cls.__name__
    try:
        registry.resolve(name, None, registry.registered_name(cls))
    except ValueError:
        raise ValueError(
            f"Layer class {name} cannot be saved: it is not a fastconv class; register it "
            "with fastconv.saving.register_keras_serializable (and give it get_config) so "
            "that loading can find it.") from None
    spec: dict[str, Any] = {"class_name": name, "config": layer.get_config()}
    registered = registry.registered_name(cls)
    if registered:
        spec["registered_name"] = registered
    if isinstance(layer, Model) and not isinstance(layer, (Functional, Sequential)):
        shape = layer._build_input_shape
        if shape is not None:
            spec["build_config"] = {"input_shape": [list(s) for s in shape]
                                    if isinstance(shape, list) else list(shape)}
    return spec


def deserialize_layer(spec: Any, custom_objects: dict | None = None) -> Any:
    from fastconv.layers import registry
    from fastconv.models import Model

    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"Malformed layer entry in the model config: {spec!r}.")
    cls = registry.resolve(spec.get("class_name"), custom_objects, spec.get("registered_name"))
    config = dict(spec.get("config", {}))
    if cls is layers_module.InputLayer:
        return cls(batch_shape=tuple(config["batch_shape"]), name=config.get("name"),
                   dtype=config.get("dtype"))
    if "batch_input_shape" in config:
        config["batch_input_shape"] = tuple(config["batch_input_shape"])
    try:
        if isinstance(cls, type) and issubclass(cls, Model):
            obj = cls.from_config(config, custom_objects)
        else:
            obj = cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"The config of layer class {spec.get('class_name')!r} does not "
                         f"fit its constructor: {exc}") from None
    build = spec.get("build_config")
    if isinstance(obj, Model) and isinstance(build, dict) and build.get("input_shape"):
        shape = build["input_shape"]
        obj.build([tuple(s) for s in shape] if shape and isinstance(shape[0], list)
                  else tuple(shape))
    return obj


def parse_json(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"{what} does not describe a model (expected keys 'class_name' "
                         "and 'config').")
    return config


def model_from_config(spec: dict[str, Any], custom_objects: dict | None = None) -> Any:
    from fastconv.models import Model

    model = deserialize_layer(spec, custom_objects)
    if not isinstance(model, Model):
        raise ValueError(f"The config describes a {type(model).__name__}, not a model.")
    return model


def _compiled_loss(spec: Any, custom_objects: dict | None) -> Any:
    """The saved loss(es): configs, built-in names, or loss functions named and
    given back through ``custom_objects``."""
    if isinstance(spec, dict) and "class_name" not in spec:
        return {k: _compiled_loss(v, custom_objects) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_compiled_loss(v, custom_objects) for v in spec]
    if isinstance(spec, str) and custom_objects and spec in custom_objects:
        return custom_objects[spec]
    return losses.get(spec) if spec else None


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


def load_model(filepath: str, compile: bool = True, custom_objects: dict | None = None) -> Any:
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
    model = model_from_config(spec, custom_objects)
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
                      loss=_compiled_loss(loss, custom_objects), metrics=metrics,
                      loss_weights=compile_config.get("loss_weights"))
        state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        if state:
            model.optimizer.set_state(state)
    return model

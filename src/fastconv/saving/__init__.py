"""Model and weight files: JSON for the architecture, .npz for the arrays.

- ``model.save(path)`` writes one zip archive holding ``config.json`` (the
  architecture and compile settings) and ``weights.npz`` (every weight and
  the optimizer's state).
- ``model.save_weights(path)`` writes the weights alone as ``.npz``.

Loading reads JSON and arrays with ``allow_pickle=False``, so opening a file
never executes code. Every write goes to a temporary file in the target's
directory, which is then renamed over the target: a crash halfway leaves the
previous file intact. Corrupt, crafted or mismatched files raise
``ValueError`` naming the file; no file makes loading allocate more than its
checked arrays need (README.md, "Saving and loading").
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import secrets
import shutil
import struct
import tempfile
import time
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

import fastconv
from fastconv import _restore, losses, optimizers
from fastconv import layers as layers_module
from fastconv.layers.registry import register_keras_serializable  # noqa: F401 (public)

FORMAT = "fastconv.model"
FORMAT_VERSION = 1

# A save writes ".<name>.fastconv-<16 hex digits>.tmp" next to its target.
# One left by a crash is removed by a later save to the same target once it
# has not been written to for STALE_TEMPORARY_SECONDS (a younger one may be
# another process's save in progress).
STALE_TEMPORARY_SECONDS = 600


def _temporary_pattern(basename: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(basename)}\.fastconv-[0-9a-f]{{16}}\.tmp")


def _remove_stale_temporaries(directory: str, basename: str) -> None:
    pattern = _temporary_pattern(basename)
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for entry in os.scandir(directory):
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except FileNotFoundError:  # removed meanwhile by another save
            pass


def _fsync_directory(directory: str) -> None:
    """Make the rename durable: the directory entry is data of its own."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a directory; its renames need no sync
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system without it
            raise
    finally:
        os.close(fd)


def _atomic_write(filepath: str, overwrite: bool, write: Any) -> None:
    """Call ``write(file)`` on a temporary file, then rename it to ``filepath``."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False.")
    # Through a symbolic link to its target: renaming over the link itself
    # would replace it with a regular file.
    target = os.path.realpath(filepath)
    directory, basename = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temporaries(directory, basename)
    # Not tempfile.mkstemp: its files are private (0600) and the rename would
    # keep that mode; mode 0666 lets the umask decide, as for any new file.
    tmp = os.path.join(directory, f".{basename}.fastconv-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    _fsync_directory(directory)


# ----------------------------------------------------------------------------
# architecture


def serialize_layer(layer: Any) -> dict[str, Any]:
    """``{"class_name", "config"}`` of a layer or model (a subclassed model
    also records the input shape it was built for)."""
    from fastconv.layers import registry

    cls = type(layer)
    name = cls.__name__
    try:
        known = registry.resolve(name, None, registry.registered_name(cls)) is cls
    except ValueError:
        known = False
    if not known:
        raise ValueError(
            f"Layer class {name} cannot be saved: it is not a fastconv class; register it "
            "with fastconv.saving.register_keras_serializable (and give it get_config) so "
            "that loading can find it.")
    spec: dict[str, Any] = {"class_name": name, "config": layer.get_config()}
    registered = registry.registered_name(cls)
    if registered:
        spec["registered_name"] = registered
    # A subclassed model records the input shape its build traced.
    shape = getattr(layer, "_build_input_shape", None)
    if shape is not None:
        spec["build_config"] = {"input_shape": [list(s) for s in shape]
                                if isinstance(shape, list) else list(shape)}
    return spec


def deserialize_layer(spec: Any, custom_objects: dict | None = None) -> Any:
    from fastconv.layers import registry

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
        if getattr(cls, "from_config_takes_custom_objects", False):  # models: nested layers
            obj = cls.from_config(config, custom_objects)
        else:
            obj = cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"The config of layer class {spec.get('class_name')!r} does not "
                         f"fit its constructor: {exc}") from None
    build = spec.get("build_config")
    if isinstance(build, dict) and build.get("input_shape"):
        shape = build["input_shape"]
        obj.build([tuple(s) for s in shape] if shape and isinstance(shape[0], list)
                  else tuple(shape))
    return obj


def parse_json(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is not valid JSON: it is nested too deeply") from None
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"{what} does not describe a model (expected keys 'class_name' "
                         "and 'config').")
    return config


def model_from_config(spec: dict[str, Any], custom_objects: dict | None = None,
                      source: str = "the model config") -> Any:
    """The model ``spec`` describes; any flaw in it is a ValueError naming ``source``."""
    try:
        model = deserialize_layer(spec, custom_objects)
    except ValueError as exc:
        if source in str(exc):  # already says which file (a stored weight's check)
            raise
        raise ValueError(f"{source}: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        # The config is arbitrary JSON: a wrong type anywhere in it surfaces
        # as one of these from the layers' constructors.
        raise ValueError(f"{source}: the model config is incomplete or malformed: "
                         f"{exc!r}") from None
    if not callable(getattr(model, "fit", None)):
        raise ValueError(f"{source}: the config describes a {type(model).__name__}, not a "
                         "model.")
    return model


def _with_custom_objects(spec: Any, custom_objects: dict | None) -> Any:
    """Saved metric identifiers, with the names of metric functions given back
    through ``custom_objects``."""
    if isinstance(spec, dict) and "class_name" not in spec:
        return {k: _with_custom_objects(v, custom_objects) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_with_custom_objects(v, custom_objects) for v in spec]
    if isinstance(spec, str) and custom_objects and spec in custom_objects:
        return custom_objects[spec]
    return spec


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

# Checked before anything is decompressed (loading never allocates more
# than a file's stored arrays need, and those only once they are known to
# fit the architecture): config.json may hold this many bytes; a deflated
# member may not claim more than deflate can expand to (1032 times its
# compressed size); a stored member holds exactly the bytes it declares.
MAX_CONFIG_BYTES = 16 * 2**20
DEFLATE_MAX_RATIO = 1032

# The exceptions the parsers (zipfile, zlib, numpy.lib.format) raise on
# malformed bytes. Their input is always in memory or a private temporary
# file here, so these come from the content, never from the file system.
_DECODE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                  NotImplementedError, RuntimeError, struct.error, OverflowError, KeyError,
                  IndexError, TypeError, SyntaxError, tokenize.TokenError, RecursionError)


@contextlib.contextmanager
def _content_errors(source: str, what: str) -> Iterator[None]:
    """Raise any error of the parsers as ValueError naming ``source``."""
    try:
        yield
    except _DECODE_ERRORS as exc:
        raise ValueError(f"{source} {what}: {exc}") from None


def _checked_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members, once their declared sizes fit the archive."""
    members = archive.infolist()
    for info in members:
        if info.flag_bits & 0x1:
            raise ValueError(f"member {info.filename!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise ValueError(f"member {info.filename!r} is stored uncompressed but declares "
                                 f"{info.file_size} bytes for {info.compress_size} stored")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
                raise ValueError(f"member {info.filename!r} declares {info.file_size} bytes, "
                                 f"more than deflate can expand its {info.compress_size} to")
        else:
            raise ValueError(f"member {info.filename!r} uses compression method "
                             f"{info.compress_type}; expected stored (0) or deflated (8)")
    return members


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


class _StoredArrays:
    """The arrays of an .npz file: names, dtypes and shapes (checked against
    the members' sizes) are read first, the data only on request."""

    def __init__(self, fileobj: Any, source: str) -> None:
        self.source = source
        self._zip = zipfile.ZipFile(fileobj)
        self.headers: dict[str, tuple[zipfile.ZipInfo, tuple, np.dtype, bool, int]] = {}
        for info in _checked_members(self._zip):
            if not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename!r} is not a .npy array")
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in _NPY_HEADER_READERS:
                    raise ValueError(f"array {info.filename!r} has .npy version {version}; "
                                     "expected 1.0 or 2.0")
                shape, fortran, dtype = _NPY_HEADER_READERS[version](f)
                offset = f.tell()
            if dtype.hasobject:
                raise ValueError(f"array {info.filename!r} holds Python objects")
            if math.prod(shape) * dtype.itemsize != info.file_size - offset:
                raise ValueError(f"array {info.filename!r} declares shape {shape} of {dtype} "
                                 f"but holds {info.file_size - offset} bytes of data")
            self.headers[info.filename[:-4]] = (info, shape, dtype, fortran, offset)

    def shape(self, name: str) -> tuple:
        return self.headers[name][1]

    def dtype(self, name: str) -> np.dtype:
        return self.headers[name][2]

    def read(self, name: str) -> np.ndarray:
        info, shape, dtype, fortran, offset = self.headers[name]
        with _content_errors(self.source, f"has a corrupt array {name!r}"):
            with self._zip.open(info) as f:
                f.seek(offset)
                data = f.read(info.file_size - offset)
                if f.read(1) or len(data) != info.file_size - offset:
                    raise ValueError("its size does not match its header")
        array = np.frombuffer(data, dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _open_arrays(fileobj: Any, source: str) -> _StoredArrays:
    with _content_errors(source, "is not a readable .npz weights file"):
        return _StoredArrays(fileobj, source)


def _weight_names(arrays: _StoredArrays) -> list[str]:
    return sorted(k for k in arrays.headers if k.startswith("weight_"))


def _check_weight(arrays: _StoredArrays, key: str, name: str, shape: tuple) -> None:
    """A stored weight must have the model's shape and a floating-point
    dtype (float16/32/64 are cast to the layer's; anything else would lose
    information or make no sense as a weight)."""
    stored_shape, dtype = arrays.shape(key), arrays.dtype(key)
    if stored_shape != shape:
        raise ValueError(f"{arrays.source}: weight {name} has shape {stored_shape} in the file "
                         f"but {shape} in the model.")
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise ValueError(f"{arrays.source}: weight {name} is stored as {dtype}; expected "
                         "float16, float32 or float64.")


def _to_layer_dtype(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.array(array, dtype=dtype, order="C")


def _count_error(arrays: _StoredArrays, model_count: Any) -> ValueError:
    return ValueError(f"{arrays.source} holds {len(_weight_names(arrays))} weight arrays but "
                      f"the model has {model_count}; the file belongs to another architecture.")


class _StoredShapes:
    """While a model is rebuilt (fastconv._restore), each ``add_weight`` must
    claim a stored array of its shape before anything is allocated, so a
    config cannot ask for weights the file does not hold. Layers may build in
    another order than ``model.weights`` lists them (a subclassed model
    builds in call order), so the claim is by shape; the values are assigned
    in model order afterwards (``_assign_weights``)."""

    def __init__(self, arrays: _StoredArrays) -> None:
        self.arrays = arrays
        self.free: dict[tuple, int] = {}
        for key in _weight_names(arrays):
            self.free[arrays.shape(key)] = self.free.get(arrays.shape(key), 0) + 1

    def next_weight(self, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
        if not self.free.get(shape):
            raise ValueError(f"{self.arrays.source}: the config asks for weight {name} of "
                             f"shape {shape}, which the file does not hold; the file belongs "
                             "to another architecture.")
        self.free[shape] -= 1
        return np.zeros(shape, dtype)  # the stored value is assigned once all are built


def _assign_weights(model: Any, arrays: _StoredArrays) -> None:
    """Every stored weight into the built ``model``: all are checked, then
    read, before any is assigned (a failure leaves the model as it was)."""
    variables, names = model.weights, _weight_names(arrays)
    if len(names) != len(variables):
        raise _count_error(arrays, len(variables))
    for var, key in zip(variables, names):
        _check_weight(arrays, key, var.name, var.shape)
    values = [_to_layer_dtype(arrays.read(key), var.dtype) for var, key in zip(variables, names)]
    for var, value in zip(variables, values):
        var.value[...] = value


def _weight_arrays(model: Any) -> dict[str, np.ndarray]:
    return {f"weight_{i:04d}": w.value for i, w in enumerate(model.weights)}


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_file(filepath: str, what: str) -> bytes:
    """The file's bytes; only the file system's own errors are OSError."""
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No {what} at {filepath}.")
    with open(filepath, "rb") as f:
        return f.read()


# The extension decides the format of a file.
MODEL_EXTENSIONS = {".keras": "keras", ".fastconv": "fastconv", ".zip": "fastconv",
                    ".h5": "legacy_h5", ".hdf5": "legacy_h5"}
WEIGHTS_EXTENSIONS = {".weights.h5": "keras", ".npz": "npz"}


def _format_of(filepath: str, table: dict[str, str], what: str) -> str:
    name = os.path.basename(os.fspath(filepath)).lower()
    for ext in sorted(table, key=len, reverse=True):
        if name.endswith(ext):
            return table[ext]
    raise ValueError(f"Invalid value for argument `filepath`: the {what} file name must end "
                     f"in one of {sorted(table)} (the extension decides the format), "
                     f"received filepath={os.fspath(filepath)!r}.")


def _assign_pairs(pairs: list) -> None:
    values = [_to_layer_dtype(value, var.dtype) for var, value in pairs]
    for (var, _), value in zip(pairs, values):
        var.value[...] = value


def save_weights(model: Any, filepath: str, overwrite: bool = True) -> None:
    model._require_built("save_weights")
    name = os.path.basename(os.fspath(filepath)).lower()
    if name.endswith((".h5", ".hdf5")) and not name.endswith(".weights.h5"):
        # Keras 3 writes weights to .weights.h5 only, with this message.
        raise ValueError("The filename must end in `.weights.h5`. "
                         f"Received: filepath={os.fspath(filepath)}")
    kind = _format_of(filepath, WEIGHTS_EXTENSIONS, "weights")
    if kind == "keras":
        from fastconv.saving import _h5, keras_v3
        # As Keras' save_weights: a compiled model's optimizer state too.
        payload = _h5.h5_bytes(lambda f: keras_v3.write_weights(
            f, model, getattr(model, "compiled", False)))
    else:
        payload = _npz_bytes(_weight_arrays(model))
    _atomic_write(filepath, overwrite, lambda f: f.write(payload))


def load_weights(model: Any, filepath: str) -> None:
    model._require_built("load_weights")
    filepath = os.fspath(filepath)
    try:
        kind = "weights_" + _format_of(filepath, WEIGHTS_EXTENSIONS, "weights")
    except ValueError:
        kind = _format_of(filepath, MODEL_EXTENSIONS, "weights or model")
    data = _read_file(filepath, "weights file")
    if kind in ("weights_keras", "legacy_h5"):
        from fastconv.saving import _h5, keras_v3, legacy_h5
        with _h5.open_h5(data, filepath) as f:
            if "model_weights" in f or "layer_names" in f.attrs:
                pairs = legacy_h5.read_weights(f, model, filepath)
            else:
                pairs = keras_v3.read_weights(f, model, filepath)
                if getattr(model, "compiled", False):
                    state = keras_v3.read_optimizer_state(f, model, filepath)
                    if state:
                        compile_state(model, state, filepath)
        _assign_pairs(pairs)
        return
    if kind == "keras" and _keras_archive_config(data, filepath) is not None:
        from fastconv.saving import _h5, keras_v3
        with _h5.open_h5(_keras_member(data, filepath, "model.weights.h5"), filepath) as f:
            _assign_pairs(keras_v3.read_weights(f, model, filepath))
        return
    if data.startswith(b"PK") and _model_archive(data, filepath, check=False) is not None:
        with _open_model_archive(data, filepath) as (_, arrays):
            _assign_weights(model, arrays)
    else:
        _assign_weights(model, _open_arrays(io.BytesIO(data), filepath))


# ----------------------------------------------------------------------------
# whole models


def _model_archive(data: bytes, filepath: str, check: bool = True) -> Any:
    """The ZipFile of a model file (one holding config.json): its member
    sizes checked, unless ``check`` is False; None for another file when
    ``check`` is False."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if "config.json" not in archive.namelist():
            raise KeyError("There is no item named 'config.json' in the archive")
        if check:
            _checked_members(archive)
        return archive
    except _DECODE_ERRORS as exc:
        if not check:
            return None
        raise ValueError(f"{filepath} is not a fastconv model file (saved by model.save) or "
                         f"is corrupt: {exc}") from None


def _read_member(archive: zipfile.ZipFile, name: str, filepath: str) -> Any:
    """A seekable file of the member's bytes: in memory when stored (as many
    bytes as the file holds), in a temporary file when deflated (model files
    written before weights.npz was stored uncompressed)."""
    with _content_errors(filepath, f"is not a fastconv model file or is corrupt ({name})"):
        info = archive.getinfo(name)
        if name == "config.json" and info.file_size > MAX_CONFIG_BYTES:
            raise ValueError(f"config.json declares {info.file_size} bytes, more than "
                             f"the {MAX_CONFIG_BYTES} allowed")
        if info.compress_type == zipfile.ZIP_STORED or name == "config.json":
            return io.BytesIO(archive.read(info))
        spill = tempfile.TemporaryFile()
        try:
            with archive.open(info) as member:
                shutil.copyfileobj(member, spill)
            spill.seek(0)
        except BaseException:
            spill.close()
            raise
        return spill


@contextlib.contextmanager
def _open_model_archive(data: bytes, filepath: str) -> Iterator[tuple[dict, _StoredArrays]]:
    """(the parsed config, the stored arrays) of a model file."""
    archive = _model_archive(data, filepath)
    spec = parse_json(_read_member(archive, "config.json", filepath).getvalue(), filepath)
    if spec.get("format") != FORMAT:
        raise ValueError(f"{filepath} is not a fastconv model file (format "
                         f"{spec.get('format')!r}).")
    with _read_member(archive, "weights.npz", filepath) as weights:
        yield spec, _open_arrays(weights, filepath)


def save_model(model: Any, filepath: str, overwrite: bool = True) -> None:
    model._require_built("save")
    kind = _format_of(filepath, MODEL_EXTENSIONS, "model")
    if kind == "legacy_h5":
        from fastconv.saving import _h5, legacy_h5
        warnings.warn(legacy_h5.LEGACY_WARNING, UserWarning, stacklevel=3)
        payload = _h5.h5_bytes(lambda f: legacy_h5.write_model(f, model))
        _atomic_write(filepath, overwrite, lambda f: f.write(payload))
        return
    if kind == "keras":
        from fastconv.saving import keras_v3
        _atomic_write(filepath, overwrite, keras_v3.archive_writer(model))
        return
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
            # Stored: float weights hardly compress, and a stored member
            # cannot expand when read (see _checked_members).
            archive.writestr("weights.npz", weights_bytes, zipfile.ZIP_STORED)

    _atomic_write(filepath, overwrite, write)


def load_model(filepath: str, compile: bool = True, custom_objects: dict | None = None) -> Any:
    filepath = os.fspath(filepath)
    data = _read_file(filepath, "model file")
    kind = _format_of(filepath, MODEL_EXTENSIONS, "model")
    if kind == "legacy_h5":
        from fastconv.saving import legacy_h5
        return legacy_h5.load_model(data, filepath, compile, custom_objects)
    # A .keras file fastconv wrote before it wrote Keras' format is read by
    # its content.
    if kind == "keras":
        spec = _keras_archive_config(data, filepath)
        if spec is not None:
            return _load_keras_archive(data, spec, filepath, compile, custom_objects)
    with _open_model_archive(data, filepath) as (spec, arrays):
        with _restore.restoring(_StoredShapes(arrays)):
            model = model_from_config(spec, custom_objects, filepath)
        _assign_weights(model, arrays)
        state = {k.split("/", 1)[1]: arrays.read(k) for k in arrays.headers
                 if k.startswith("optimizer/")}
    if compile:
        compile_from_config(model, spec.get("compile_config"), state, custom_objects, filepath)
    return model


def compile_state(model: Any, state: dict, filepath: str) -> None:
    """Give the compiled model's optimizer a stored state."""
    state = dict(state)
    try:
        if "__learning_rate__" in state:
            model.optimizer.learning_rate = state.pop("__learning_rate__")
        model.optimizer.set_state(state)
        model.optimizer.check_state_for([v.value for v in model.trainable_weights])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{filepath}: the optimizer state does not fit the model's "
                         f"optimizer: {exc!r}") from None


def compile_from_config(model: Any, compile_config: Any, state: dict | Any,
                        custom_objects: dict | None, filepath: str) -> None:
    """Compile ``model`` as ``compile_config`` says and give its optimizer
    ``state`` (a dict, or a callable taking the compiled model)."""
    if compile_config:
        try:
            optimizer, loss = compile_config["optimizer"], compile_config["loss"]
            metrics = compile_config["metrics"]
            optimizer = (optimizers.deserialize(optimizer, custom_objects)
                         if isinstance(optimizer, dict) else optimizers.get(optimizer))
            model.compile(optimizer=optimizer,
                          loss=_compiled_loss(loss, custom_objects),
                          metrics=_with_custom_objects(metrics, custom_objects),
                          loss_weights=compile_config.get("loss_weights"))
            if callable(state):
                state = state(model)
            if state:
                compile_state(model, state, filepath)
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise ValueError(f"{filepath}: the compile settings or optimizer state are "
                             f"malformed: {exc!r}") from None


# ----------------------------------------------------------------------------
# Keras 3's .keras archive


def _keras_archive_config(data: bytes, filepath: str) -> dict | None:
    """The config of a Keras 3 archive (config.json and model.weights.h5);
    None for a fastconv archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except _DECODE_ERRORS as exc:
        raise ValueError(f"{filepath} is not a .keras model file (a zip archive) or is "
                         f"corrupt: {exc}") from None
    if "config.json" not in names:
        raise ValueError(f"{filepath} is not a .keras model file: it holds no config.json.")
    if "weights.npz" in names and "model.weights.h5" not in names:
        return None
    spec = parse_json(_read_member(archive, "config.json", filepath).getvalue(), filepath)
    if spec.get("format") == FORMAT:
        return None
    if "model.weights.h5" not in names:
        raise ValueError(f"{filepath} is not a .keras model file: it holds no "
                         "model.weights.h5.")
    return spec


def _keras_member(data: bytes, filepath: str, name: str) -> bytes:
    with _content_errors(filepath, f"is a corrupt .keras archive ({name})"):
        archive = zipfile.ZipFile(io.BytesIO(data))
        _checked_members(archive)
        return archive.read(name)


class _H5Shapes:
    """As _StoredShapes, for the datasets of a Keras weights file."""

    def __init__(self, f: Any, source: str) -> None:
        from fastconv.saving import _h5
        self.source = source
        self.free: dict[tuple, int] = {}
        module = _h5.h5py()
        layers = f.get("layers")

        def visit(_: str, node: Any) -> None:
            if isinstance(node, module.Dataset):
                shape = tuple(node.shape)
                self.free[shape] = self.free.get(shape, 0) + 1
        if isinstance(layers, module.Group):
            layers.visititems(visit)

    def next_weight(self, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
        if not self.free.get(shape):
            raise ValueError(f"{self.source}: the config asks for weight {name} of "
                             f"shape {shape}, which the file does not hold; the file belongs "
                             "to another architecture.")
        self.free[shape] -= 1
        return np.zeros(shape, dtype)


def _load_keras_archive(data: bytes, spec: dict, filepath: str, compile: bool,
                        custom_objects: dict | None) -> Any:
    from fastconv.saving import _h5, keras_v3

    fc_spec = keras_v3.keras_to_fastconv(spec, filepath, custom_objects)
    weights = _keras_member(data, filepath, "model.weights.h5")
    with _h5.open_h5(weights, filepath) as f:
        with _restore.restoring(_H5Shapes(f, filepath)):
            model = model_from_config(fc_spec, custom_objects, filepath)
        _assign_pairs(keras_v3.read_weights(f, model, filepath))
        if compile:
            compile_from_config(
                model, fc_spec.get("compile_config"),
                lambda m: keras_v3.read_optimizer_state(f, m, filepath), custom_objects,
                filepath)
    return model

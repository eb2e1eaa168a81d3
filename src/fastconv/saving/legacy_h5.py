"""Keras 2 / tf.keras full-model HDF5 files (``model.save("m.h5")``), read and
written as Keras 3 writes them (its legacy format).

The file's attribute ``model_config`` holds the architecture as JSON (Keras 2
or Keras 3 style configs), ``training_config`` the compile settings, and the
group ``model_weights`` one group per top-level layer, whose attribute
``weight_names`` lists its datasets in the order of the layer's trainable,
then non-trainable, weights (a nested model's weights all in one group);
``optimizer_weights`` the optimizer's variables, read from files of Keras 3
(or fastconv) only.
Classes resolve as for ``.keras`` files: fastconv's registry only.

Writing follows Keras 3's ``save_model_to_hdf5``: the root attributes
``keras_version``, ``backend``, ``model_config`` (layer entries in Keras'
legacy form, ``{"class_name", "config"}`` without ``module``) and, for a
compiled model, ``training_config``; ``model_weights`` as above plus an empty
``top_level_model_weights`` group; ``optimizer_weights`` with the optimizer's
variables in Keras' order.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

from fastconv.saving import _h5, keras_v3

# Recorded as the file's backend: Keras' loader reads the attribute but
# nothing depends on its value.
BACKEND = "fastconv"

LEGACY_WARNING = (
    "You are saving your model as an HDF5 file via `model.save()` or "
    "`fastconv.saving.save_model(model)`. This file format is considered legacy. We "
    "recommend using instead the native Keras format, e.g. `model.save('my_model.keras')` "
    "or `fastconv.saving.save_model(model, 'my_model.keras')`.")


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _keras2_tensor(ref: Any, source: str) -> dict:
    if not isinstance(ref, list) or len(ref) < 3 or not isinstance(ref[0], str):
        raise ValueError(f"{source}: malformed inbound node {ref!r} in the model config.")
    return {"class_name": "__keras_tensor__",
            "config": {"keras_history": [ref[0], int(ref[1]), int(ref[2])]}}


def _upgrade_layer(spec: Any, source: str) -> Any:
    """A Keras 2 layer entry in Keras 3's form."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        return spec
    spec = dict(spec)
    config = dict(spec["config"])
    if spec.get("class_name") == "InputLayer" and "batch_input_shape" in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    if spec.get("class_name") in ("Sequential", "Functional", "Model"):
        layers = [_upgrade_layer(s, source) for s in config.get("layers", [])]
        first = layers[0] if layers else None
        if (spec.get("class_name") == "Sequential" and isinstance(first, dict)
                and first.get("class_name") != "InputLayer"
                and "batch_input_shape" in first.get("config", {})):
            first_config = dict(first["config"])
            layers.insert(0, {"class_name": "InputLayer", "config": {
                "batch_shape": first_config.pop("batch_input_shape"),
                "dtype": first_config.get("dtype", "float32"),
                "name": f"{first_config.get('name', 'input')}_input"}})
            layers[1] = {**first, "config": first_config}
        config["layers"] = layers
        if spec.get("class_name") == "Model":
            spec["class_name"] = "Functional"
    if spec.get("class_name") != "InputLayer":
        config.pop("batch_input_shape", None)
    _upgrade_config(spec.get("class_name"), config, source)
    nodes = spec.get("inbound_nodes")
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], list):
        upgraded = []
        for node in nodes:
            tensors = [_keras2_tensor(ref, source) for ref in node]
            upgraded.append({"args": [tensors[0] if len(tensors) == 1 else tensors],
                             "kwargs": {}})
        spec["inbound_nodes"] = upgraded
    spec["config"] = config
    return spec


def _upgrade_config(class_name: Any, config: dict, source: str) -> None:
    """Keras 2 arguments that Keras 3 spells otherwise."""
    if class_name in ("BatchNormalization", "LayerNormalization") and isinstance(
            config.get("axis"), list) and len(config["axis"]) == 1:
        config["axis"] = config["axis"][0]  # Keras 2 saved the axis as a list
    if class_name in ("DepthwiseConv1D", "DepthwiseConv2D") and config.get("groups") == 1:
        del config["groups"]  # inherited from Conv in Keras 2, meaningless here
    if config.get("fused") is not None or config.get("virtual_batch_size") is not None:
        raise ValueError(f"{source}: {class_name} with fused or virtual_batch_size is not "
                         "supported.")
    config.pop("fused", None)
    config.pop("virtual_batch_size", None)
    config.pop("adjustment", None)


def _legacy_weights(layer: Any) -> list:
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def read_weights(f: Any, model: Any, source: str) -> list[tuple[Any, np.ndarray]]:
    """(variable, value) for the model's weights from ``model_weights`` (or
    the file's root, as Keras 2's ``save_weights`` wrote it)."""
    module = _h5.h5py()
    root = f.get("model_weights", f)
    if not isinstance(root, module.Group) or "layer_names" not in root.attrs:
        raise ValueError(f"{source} is not a Keras 2 weights file: no layer_names attribute.")
    # As Keras' load_weights_from_hdf5_group: the layers holding weights pair
    # with the file's layers holding weights by position, whatever their names.
    stored = []
    for name in (_text(n) for n in root.attrs["layer_names"]):
        group = root.get(name)
        if not isinstance(group, module.Group):
            raise ValueError(f"{source}: the group of layer '{name}' is missing.")  # noqa: TRY004
        weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
        if weight_names:
            stored.append((name, group, weight_names))
    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    if len(stored) != len(layers):
        raise ValueError(f"{source}: layer count mismatch: the model has {len(layers)} layers "
                         f"with weights but the file {len(stored)}; the file belongs to "
                         "another architecture.")
    pairs = []
    for layer, (name, group, weight_names) in zip(layers, stored):
        weights = _legacy_weights(layer)
        if len(weight_names) != len(weights):
            raise ValueError(f"{source}: layer '{layer.name}' has {len(weights)} weights in "
                             f"the model but layer '{name}' has {len(weight_names)} in the "
                             "file.")
        for w, wname in zip(weights, weight_names):
            if wname not in group:
                raise ValueError(f"{source}: weight {wname} of layer '{name}' is missing.")
            pairs.append((w, _h5.read_dataset(group[wname], source, f"weight {wname}",
                                              tuple(w.shape))))
    return pairs


def _compile_config(training: dict, source: str) -> dict:
    optimizer = training.get("optimizer_config")
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        # tf.keras 2 names its optimizers "Custom>Adam" and records settings
        # of its own; the optimizer state is not read from Keras 2 files.
        class_name = optimizer.get("class_name")
        if isinstance(class_name, str) and class_name.startswith("Custom>"):
            class_name = class_name[len("Custom>"):]
        config = dict(optimizer["config"])
        if config.pop("is_legacy_optimizer", False):
            raise ValueError(f"{source}: a legacy (Keras 1-style) optimizer is not "
                             "supported.")
        config.pop("jit_compile", None)
        optimizer = {"class_name": class_name, "config": config}
    return {"optimizer": optimizer, "loss": training.get("loss"),
            "metrics": training.get("metrics"), "loss_weights": training.get("loss_weights")}


def _optimizer_state(f: Any, model: Any, source: str) -> dict[str, Any] | None:
    """fastconv's optimizer state from ``optimizer_weights`` of a file Keras 3
    (or fastconv) wrote, or None. Keras 2's optimizers lay their variables out
    otherwise and are not read; a state that does not fit the optimizer is
    skipped with a warning, as Keras' loader does."""
    module = _h5.h5py()
    group = f.get("optimizer_weights")
    if not isinstance(group, module.Group) or not _text(
            f.attrs.get("keras_version", "")).startswith("3."):
        return None
    names = [_text(n) for n in group.attrs.get("weight_names", [])]
    optimizer = model.optimizer
    slots = keras_v3._slot_groups(optimizer)
    trained = model.trainable_weights
    has_lr = isinstance(optimizer._learning_rate, (int, float))
    scalars = optimizer._scalar_names()
    expected = (None if slots is None
                else 1 + has_lr + sum(len(g) for g in slots) * len(trained) + len(scalars))
    if expected is None or len(names) != expected or not all(n in group for n in names):
        warnings.warn(f"{source}: the saved state of optimizer {type(optimizer).__name__} "
                      "does not fit this model's optimizer (or fastconv does not map its "
                      "Keras variables); training starts with a freshly initialized "
                      "optimizer.", stacklevel=7)
        return None
    values = [_h5.read_dataset(group[n], source, f"optimizer variable {n}") for n in names]
    state: dict[str, Any] = {"iterations": np.asarray(int(values[0]), dtype=np.int64)}
    k = 1
    if has_lr:
        state["__learning_rate__"] = float(values[1])
        k = 2
    for group_slots in slots:
        for i, w in enumerate(trained):
            for slot in group_slots:
                if values[k].shape != tuple(w.shape):
                    raise ValueError(f"{source}: optimizer variable {names[k]} has shape "
                                     f"{values[k].shape} but weight {w.name} has "
                                     f"{tuple(w.shape)}.")
                state[f"{slot}_{i}"] = np.asarray(values[k], dtype=np.float32)
                k += 1
    for name in scalars:
        if values[k].shape != ():
            raise ValueError(f"{source}: optimizer variable {names[k]} ({name}) has shape "
                             f"{values[k].shape}, expected a scalar.")
        state[name] = np.asarray(values[k], dtype=np.float32)
        k += 1
    return state


def load_model(data: bytes, source: str, compile: bool, custom_objects: dict | None) -> Any:
    from fastconv import saving

    with _h5.open_h5(data, source) as f:
        if "model_config" not in f.attrs:
            raise ValueError(f"{source} is not a Keras full-model HDF5 file: it has no "
                             "model_config attribute (a weights-only file loads with "
                             "model.load_weights).")
        spec = saving.parse_json(_text(f.attrs["model_config"]), source)
        spec = _upgrade_layer(spec, source)
        fc_spec = keras_v3.keras_to_fastconv(spec, source, custom_objects)
        model = saving.model_from_config(fc_spec, custom_objects, source)
        saving._assign_pairs(read_weights(f, model, source))
        if compile and "training_config" in f.attrs:
            try:
                training = json.loads(_text(f.attrs["training_config"]))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"{source}: training_config is not valid JSON: {exc}"
                                 ) from None
            if isinstance(training, dict) and training.get("optimizer_config"):
                compile_config = keras_v3._plain(_compile_config(training, source), source,
                                                 custom_objects)
                saving.compile_from_config(
                    model, compile_config, lambda m: _optimizer_state(f, m, source),
                    custom_objects, source)
    return model


# ----------------------------------------------------------------------------
# writing


def _legacy_layer(spec: dict) -> dict:
    """A layer entry of Keras 3's ``config.json`` in the legacy form Keras
    writes to ``.h5`` files: no ``module``, ``registered_name`` or
    ``build_config`` at the layer level (nested objects such as initializers
    and dtype policies keep theirs); a Sequential records the batch shape of
    its input as ``build_input_shape``."""
    out = {"class_name": spec["class_name"], "config": dict(spec["config"])}
    config = out["config"]
    if "layers" in config:
        config["layers"] = [_legacy_layer(s) for s in config["layers"]]
        first = config["layers"][0] if config["layers"] else None
        if (spec["class_name"] == "Sequential" and first is not None
                and first["class_name"] == "InputLayer"):
            config["build_input_shape"] = first["config"]["batch_shape"]
        for key in ("input_layers", "output_layers"):
            # One input (output) is recorded as itself, not as a list of one,
            # as Keras does for a model called on a single tensor.
            refs = config.get(key)
            if isinstance(refs, list) and len(refs) == 1 and isinstance(refs[0], list):
                config[key] = refs[0]
    for extra in ("name", "inbound_nodes"):
        if extra in spec:
            out[extra] = spec[extra]
    return out


def model_config(model: Any) -> dict:
    """``{"class_name", "config"}`` of the model as Keras' legacy writer
    records it in ``model_config``."""
    return _legacy_layer(keras_v3.fastconv_to_keras(model))


def training_config(model: Any) -> dict:
    """The ``training_config`` attribute of a compiled model: the compile
    arguments, and the optimizer as ``optimizer_config``."""
    from fastconv import optimizers

    compiled = model._compile_config
    optimizer = optimizers.serialize(model.optimizer)
    return {"loss": compiled.get("loss"), "loss_weights": compiled.get("loss_weights"),
            "metrics": compiled.get("metrics"),
            "weighted_metrics": compiled.get("weighted_metrics"),
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
            "optimizer_config": {"class_name": optimizer["class_name"],
                                 "config": optimizer["config"]}}


def _weight_paths(model: Any, prefix: str = "") -> dict[int, str]:
    """Keras' path of every variable: a Sequential builds its layers under
    its own name, a functional model under none."""
    if type(model).__name__ == "Sequential":
        prefix = f"{prefix}{model.name}/"
    paths = {}
    for layer in model.layers:
        if keras_v3._is_model(layer):
            paths.update(_weight_paths(layer, prefix))
        else:
            for w in layer.weights:
                paths[id(w)] = prefix + w.path
    return paths


def _string_list(values: list[str]) -> Any:
    # As Keras' save_attributes_to_hdf5_group: an empty list is stored as
    # an empty float array.
    return [v.encode("utf8") for v in values] if values else np.asarray([])


def _write_datasets(group: Any, names: list[str], values: list[np.ndarray]) -> None:
    group.attrs["weight_names"] = _string_list(names)
    for name, value in zip(names, values):
        group.create_dataset(name, data=value)


def _weight_value(layer: Any, w: Any) -> np.ndarray:
    value = np.asarray(w.value)
    if type(layer).__name__ == "Normalization" and w.name.endswith("count"):
        value = value.astype(np.int64)  # Keras' dtype for the sample count
    return value


def write_model(f: Any, model: Any) -> None:
    """Fill the open HDF5 file ``f`` as Keras 3's ``save_model_to_hdf5``
    does (configs are taken now, so a later change does not reach them)."""
    f.attrs["keras_version"] = keras_v3.KERAS_VERSION
    f.attrs["backend"] = BACKEND
    f.attrs["model_config"] = json.dumps(model_config(model)).encode("utf8")
    compiled = getattr(model, "compiled", False)
    if compiled:
        f.attrs["training_config"] = json.dumps(training_config(model)).encode("utf8")
    root = f.create_group("model_weights")
    root.attrs["layer_names"] = _string_list([layer.name for layer in model.layers])
    root.attrs["backend"] = BACKEND.encode("utf8")
    root.attrs["keras_version"] = keras_v3.KERAS_VERSION.encode("utf8")
    paths = _weight_paths(model)
    # Sorted by name, as Keras creates them (no group name is a prefix
    # issue for HDF5's ordering).
    for layer in sorted(model.layers, key=lambda layer: layer.name):
        weights = _legacy_weights(layer)
        _write_datasets(root.create_group(layer.name), [paths[id(w)] for w in weights],
                        [_weight_value(layer, w) for w in weights])
    # A model's own variables (none in fastconv: every weight belongs to a layer).
    _write_datasets(root.create_group("top_level_model_weights"), [], [])
    if compiled:
        _write_optimizer(f, model)


def _optimizer_names(model: Any) -> list[str]:
    """Keras' paths of the optimizer's variables, in the order of
    ``keras_v3._optimizer_arrays``."""
    optimizer = model.optimizer
    prefix = optimizer.name
    names = [f"{prefix}/iteration"]
    if isinstance(optimizer._learning_rate, (int, float)):
        names.append(f"{prefix}/learning_rate")
    paths = _weight_paths(model)
    for group in keras_v3._slot_groups(optimizer):
        for w in model.trainable_weights:
            base = paths[id(w)].replace("/", "_")
            names.extend(f"{prefix}/{base}_{slot}" for slot in group)
    # The rule's scalars (Nadam's running product): unnamed Keras variables.
    names.extend(f"{prefix}/variable" if i == 0 else f"{prefix}/variable_{i}"
                 for i, _ in enumerate(optimizer._scalar_names()))
    return names


def _write_optimizer(f: Any, model: Any) -> None:
    arrays = keras_v3._optimizer_arrays(model)
    if arrays is None:
        warnings.warn(f"The state of optimizer {type(model.optimizer).__name__} is not "
                      "written to the .h5 file (fastconv does not map its Keras variables); "
                      "the compile settings are.", stacklevel=7)
        return
    _write_datasets(f.create_group("optimizer_weights"), _optimizer_names(model), arrays)

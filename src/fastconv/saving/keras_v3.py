"""Keras 3's own files: the ``.keras`` archive and ``.weights.h5``.

A ``.keras`` file is a zip of ``metadata.json`` (Keras version, date),
``config.json`` (``keras.saving.serialize_keras_object`` of the model:
every object as ``{"module", "class_name", "config", "registered_name"}``)
and ``model.weights.h5``. The HDF5 file stores each layer's variables under
the path of the attributes that lead to it: ``layers/<snake_case class
name, numbered _1, _2... among its siblings>/vars/<index>``, nested models
repeating ``layers/...`` below their own path, and the optimizer's under
``optimizer/vars`` (iterations, learning rate, then its slots). Each
``vars`` group carries the owner's name as attribute ``name``.

Reading never imports a module or runs code a file names: ``module`` must
be Keras' own (or the class registered with fastconv / given in
``custom_objects``), class names resolve only through fastconv's registry,
and Lambda layers (whose config holds Python bytecode) are refused.
"""

from __future__ import annotations

import datetime
import json
import re
import warnings
import zipfile
from typing import Any

import numpy as np

import fastconv
from fastconv.saving import _h5

KERAS_VERSION = "3.15.1"  # the Keras version whose layout the files follow

# Keras-only config keys fastconv accepts when they hold these values (what
# fastconv computes anyway); any other value is refused as not supported.
_NEUTRAL_KEYS: dict[str, Any] = {
    "quantization_config": None, "input_axes": None, "output_axes": None,
    "sparse": False, "ragged": False, "optional": False, "lora_rank": None,
    "lora_alpha": None, "synchronized": False,
}
_ALWAYS_DROPPED = ("shared_object_id", "build_input_shape")
_SUPPORTED_DTYPES = ("float16", "float32", "float64", "int32", "int64", "uint8", "bool")


def _snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: the weight-file name of a class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ----------------------------------------------------------------------------
# config: Keras -> fastconv


def _check_class(entry: dict, source: str, custom_objects: dict | None) -> None:
    """Refuse an object whose class is not Keras' own or known to fastconv."""
    from fastconv.layers import registry

    class_name, module = entry.get("class_name"), entry.get("module")
    registered = entry.get("registered_name")
    if not isinstance(class_name, str) or not class_name:
        raise ValueError(f"{source}: an object of the config has no class name: "
                         f"{str(entry)[:200]}.")
    if class_name == "__lambda__" or class_name == "Lambda":
        raise ValueError(f"{source}: the config holds a Lambda layer or Python function "
                         f"({class_name!r}); Keras stores it as Python bytecode, which "
                         "fastconv never runs. Rebuild the model with the function as a "
                         "registered layer.")
    known = False
    for key in (registered, class_name):
        if isinstance(key, str) and ((custom_objects and key in custom_objects)
                                     or key in registry._REGISTERED):
            known = True
    if module is not None and not known and (
            not isinstance(module, str) or not (module == "keras" or module.startswith("keras."))):
        raise ValueError(f"{source}: class {class_name!r} of module {module!r} is not a Keras "
                         "or fastconv class (nor registered with fastconv, nor given in "
                         "`custom_objects`); fastconv imports no module a file names.")
    if "." in class_name or class_name.startswith("__") and class_name not in (
            "__keras_tensor__", "__tuple__"):
        raise ValueError(f"{source}: class name {class_name!r} in the config is not a Keras "
                         "class name; fastconv resolves no such path.")


def _plain(value: Any, source: str, custom_objects: dict | None, key: str = "") -> Any:
    """A Keras config value as fastconv writes it: nested objects stripped
    of ``module``/``registered_name``, dtype policies as their dtype name."""
    if isinstance(value, list):
        return [_plain(v, source, custom_objects) for v in value]
    if not isinstance(value, dict):
        return value
    if "class_name" in value and "config" in value:
        if value["class_name"] == "__keras_tensor__":
            return {"class_name": "__keras_tensor__",
                    "config": _plain(value["config"], source, custom_objects)}
        _check_class(value, source, custom_objects)
        config = value["config"]
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            name = config.get("name") if isinstance(config, dict) else config
            if name not in _SUPPORTED_DTYPES:
                raise ValueError(f"{source}: dtype policy {name!r} is not supported (mixed "
                                 "precision and quantized policies are not).")
            return name
        if value["class_name"] == "__tuple__":
            return _plain(config.get("value", []), source, custom_objects)
        if not isinstance(config, dict):
            raise ValueError(f"{source}: the config of {value['class_name']!r} is not a "
                             "dict.")
        out = {"class_name": value["class_name"],
               "config": _plain_config(config, source, custom_objects, value["class_name"])}
        if isinstance(value.get("registered_name"), str) and ">" in value["registered_name"]:
            out["registered_name"] = value["registered_name"]
        # No build_config: layers of a model are built by the model's graph
        # (building twice would add their weights twice).
        for extra in ("name", "inbound_nodes"):
            if extra in value:
                out[extra] = _plain(value[extra], source, custom_objects)
        return out
    return {k: _plain(v, source, custom_objects, k) for k, v in value.items()}


def _plain_config(config: dict, source: str, custom_objects: dict | None,
                  class_name: str) -> dict:
    out = {}
    for key, value in config.items():
        if key in _ALWAYS_DROPPED:
            continue
        if key in _NEUTRAL_KEYS:
            if value != _NEUTRAL_KEYS[key]:
                raise ValueError(f"{source}: {class_name} with {key}={value!r} is not "
                                 "supported by fastconv.")
            continue
        out[key] = _plain(value, source, custom_objects, key)
    return out


def keras_to_fastconv(spec: Any, source: str, custom_objects: dict | None = None) -> dict:
    """The fastconv model spec of a Keras 3 ``config.json``."""
    if not isinstance(spec, dict) or "class_name" not in spec or "config" not in spec:
        raise ValueError(f"{source} does not describe a model (expected keys 'class_name' "
                         "and 'config').")
    out = _plain({k: v for k, v in spec.items() if k != "compile_config"}, source,
                 custom_objects)
    if spec.get("class_name") not in ("Sequential", "Functional") and isinstance(
            spec.get("build_config"), dict):
        out["build_config"] = spec["build_config"]  # a subclassed model's traced input
    if isinstance(spec.get("compile_config"), dict) and spec["compile_config"]:
        out["compile_config"] = _plain(spec["compile_config"], source, custom_objects)
    return out


# ----------------------------------------------------------------------------
# config: fastconv -> Keras

_NESTED_MODULES = {"initializer": "keras.initializers", "regularizer": "keras.regularizers",
                   "constraint": "keras.constraints"}


def _keras_object(class_name: str, config: Any, module: str | None,
                  registered: str | None = None) -> dict:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": registered}


def _dtype_policy(name: str) -> dict:
    return _keras_object("DTypePolicy", {"name": name}, "keras")


def _keras_value(key: str, value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        suffix = key.rsplit("_", 1)[-1]
        module = _NESTED_MODULES.get(suffix)
        if key == "learning_rate":
            module = "keras.optimizers.schedules"
        return _keras_object(value["class_name"], _keras_config(value["config"]), module,
                             value.get("registered_name"))
    if isinstance(value, list):
        return [_keras_value("", v) for v in value]
    return value


def _keras_config(config: dict) -> dict:
    return {k: (_dtype_policy(v) if k == "dtype" and isinstance(v, str) else _keras_value(k, v))
            for k, v in config.items()}


def _keras_layer(spec: dict) -> dict:
    class_name, config = spec["class_name"], dict(spec["config"])
    registered = spec.get("registered_name")
    if class_name in ("Sequential", "Functional"):
        layers = [_keras_layer(s) for s in config.pop("layers")]
        if class_name == "Sequential" and "dtype" not in config:
            config["dtype"] = "float32"
        module = "keras" if class_name == "Sequential" else "keras.src.models.functional"
        out = _keras_object(class_name, {**_keras_config(config), "layers": layers}, module,
                            registered)
    elif registered:
        out = _keras_object(class_name, _keras_config(config), None, registered)
    elif class_name == "InputLayer":
        config = {"batch_shape": config["batch_shape"], "dtype": config.get("dtype", "float32"),
                  "sparse": False, "ragged": False, "name": config["name"], "optional": False}
        out = _keras_object(class_name, config, "keras.layers")
    else:
        out = _keras_object(class_name, _keras_config(config), "keras.layers")
    for extra in ("build_config", "name", "inbound_nodes"):
        if extra in spec:
            out[extra] = spec[extra]
    return out


def _keras_compile_config(model: Any) -> dict:
    from fastconv import optimizers

    def losses_and_metrics(value: Any, module: str) -> Any:
        if isinstance(value, dict) and "class_name" in value:
            return _keras_object(value["class_name"], value["config"], module)
        if isinstance(value, dict):
            return {k: losses_and_metrics(v, module) for k, v in value.items()}
        if isinstance(value, list):
            return [losses_and_metrics(v, module) for v in value]
        return value

    opt = optimizers.serialize(model.optimizer)
    compiled = model._compile_config
    return {"optimizer": _keras_object(opt["class_name"], _keras_config(opt["config"]),
                                       "keras.optimizers", opt.get("registered_name")),
            "loss": losses_and_metrics(compiled.get("loss"), "keras.losses"),
            "loss_weights": compiled.get("loss_weights"),
            "metrics": losses_and_metrics(compiled.get("metrics"), "keras.metrics"),
            "weighted_metrics": losses_and_metrics(compiled.get("weighted_metrics"),
                                                   "keras.metrics"),
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _input_shape(model: Any) -> Any:
    fn = getattr(model, "_function", None)
    if fn is None:
        return None
    shapes = [list(t.shape) for t in fn.inputs]
    return shapes[0] if len(shapes) == 1 else shapes


def fastconv_to_keras(model: Any) -> dict:
    """The Keras 3 ``config.json`` of a fastconv model."""
    spec = json.loads(model.to_json())
    if spec["class_name"] not in ("Sequential", "Functional"):
        # Keras finds a subclassed model's weights by its attribute names,
        # which fastconv does not track.
        raise ValueError(f"Model class {spec['class_name']} cannot be saved in Keras' "
                         "format: only Sequential and functional models can; save it as "
                         ".fastconv instead.")
    out = _keras_layer(spec)
    # As Keras writes them: a functional model rebuilds from its graph
    # (input_shape None), a Sequential from its input shape.
    if spec["class_name"] == "Functional":
        out["registered_name"] = "Functional"
        out["build_config"] = {"input_shape": None}
    else:
        out["build_config"] = {"input_shape": _input_shape(model)}
    out["compile_config"] = (_keras_compile_config(model) if getattr(model, "compiled", False)
                             else {})
    return out


# ----------------------------------------------------------------------------
# weights: the paths of Keras' HDF5 weight files


def _children(model: Any) -> list:
    return list(model.layers)


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and callable(getattr(layer, "fit", None))


def _own_weights(layer: Any) -> list:
    """A layer's variables in Keras' order (trainable, then non-trainable),
    without those of nested layers."""
    if _is_model(layer):
        return []
    weights = list(layer.weights)
    trainable = {id(w) for w in layer.trainable_weights}
    return ([w for w in weights if id(w) in trainable]
            + [w for w in weights if id(w) not in trainable])


def layer_paths(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path of the ``vars`` group's parent, layer) for every layer, as
    Keras' ``_save_container_state`` names them."""
    used: dict[str, int] = {}
    out = []
    for layer in _children(model):
        name = _snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        path = f"{prefix}layers/{name}"
        out.append((path, layer))
        if _is_model(layer):
            out.extend(layer_paths(layer, path + "/"))
    return out


# Keras' optimizer variables after iterations and learning rate: for each
# group, the group's slots of every trained variable, interleaved per
# variable (``add_optimizer_variables(var_list, [...])``).
def _slot_groups(optimizer: Any) -> list[tuple[str, ...]] | None:
    name = type(optimizer).__name__
    if name in ("Adam", "AdamW"):
        return [("momentum", "velocity")] + ([("velocity_hat",)] if optimizer.amsgrad else [])
    if name == "SGD":
        return [("momentum",)] if optimizer.momentum else []
    if name in ("Adagrad",):
        return [("accumulator",)]
    if name == "RMSprop":
        return ([("velocity",)] + ([("momentum",)] if optimizer.momentum > 0 else [])
                + ([("average_gradient",)] if optimizer.centered else []))
    if name == "Adadelta":
        return [("accumulated_grad", "accumulated_delta_var")]
    if name == "Adamax":
        return [("momentum", "norm")]
    if name in ("Lion",):
        return [("momentum",)]
    if name == "Nadam":  # and its running product, a scalar after the slots
        return [("momentum", "velocity")]
    return None


def _optimizer_arrays(model: Any) -> list[np.ndarray] | None:
    """The optimizer's variables in Keras' order, or None when fastconv does
    not know Keras' layout for it."""
    optimizer = model.optimizer
    groups = _slot_groups(optimizer)
    if groups is None:
        return None
    state = optimizer.get_state()
    arrays = [np.asarray(int(state.get("iterations", 0)), dtype=np.int64)]
    if isinstance(optimizer._learning_rate, (int, float)):
        arrays.append(np.asarray(optimizer._learning_rate, dtype=np.float32))
    count = len(model.trainable_weights)
    for group in groups:
        for i in range(count):
            for slot in group:
                key = f"{slot}_{i}"
                if key not in state:  # never trained: Keras' zeros
                    state[key] = np.zeros(model.trainable_weights[i].shape, np.float32)
                arrays.append(np.asarray(state[key]))
    # Scalars of the rule (Nadam's u_product), created by Keras after the slots.
    for name in optimizer._scalar_names():
        arrays.append(np.asarray(state.get(name, 1.0), dtype=np.float32))
    return arrays


def write_weights(f: Any, model: Any, with_optimizer: bool) -> None:
    """Fill the open HDF5 file ``f`` as Keras' ``save_weights`` does."""
    f.create_group("layers")
    top = f.create_group("vars")
    top.attrs["name"] = model.name
    for path, layer in layer_paths(model):
        group = f.create_group(path).create_group("vars")
        group.attrs["name"] = layer.name
        for i, w in enumerate(_own_weights(layer)):
            value = np.asarray(w.value)
            if type(layer).__name__ == "Normalization" and w.name.endswith("count"):
                value = value.astype(np.int64)  # Keras' dtype for the sample count
            group.create_dataset(str(i), data=value)
    if with_optimizer:
        arrays = _optimizer_arrays(model)
        if arrays is None:
            warnings.warn(f"The state of optimizer {type(model.optimizer).__name__} is not "
                          "written to Keras' format (fastconv does not map its Keras "
                          "variables); the compile settings are.", stacklevel=4)
        else:
            group = f.create_group("optimizer").create_group("vars")
            group.attrs["name"] = model.optimizer.name
            for i, a in enumerate(arrays):
                group.create_dataset(str(i), data=a)


def _vars_group(f: Any, path: str) -> Any:
    module = _h5.h5py()
    node = f.get(path)
    if node is None:
        return None
    if not isinstance(node, module.Group) or not isinstance(node.get("vars"), module.Group):
        return None
    return node["vars"]


def read_weights(f: Any, model: Any, source: str) -> list[tuple[Any, np.ndarray]]:
    """(variable, value) for every weight of ``model`` in the open HDF5 file
    ``f``, all checked before any is assigned."""
    pairs = []
    for path, layer in layer_paths(model):
        weights = _own_weights(layer)
        group = _vars_group(f, path)
        if group is None:
            if weights:
                raise ValueError(f"{source} holds no weights for layer '{layer.name}' "
                                 f"(expected group {path}/vars); the file belongs to another "
                                 "architecture.")
            continue
        if len(group.keys()) != len(weights):
            raise ValueError(f"{source}: layer '{layer.name}' ({path}) has {len(weights)} "
                             f"weights in the model but {len(group.keys())} in the file.")
        for i, w in enumerate(weights):
            if str(i) not in group:
                raise ValueError(f"{source}: weight {path}/vars/{i} is missing.")
            value = _h5.read_dataset(group[str(i)], source, f"weight {w.name} ({path}/vars/{i})",
                                     tuple(w.shape))
            pairs.append((w, value))
    return pairs


def read_optimizer_state(f: Any, model: Any, source: str) -> dict[str, Any] | None:
    """fastconv's optimizer state from ``optimizer/vars``, or None."""
    group = _vars_group(f, "optimizer")
    groups = _slot_groups(model.optimizer)
    if group is None or not len(group.keys()):
        return None
    if groups is None:
        warnings.warn(f"{source}: the state of optimizer {type(model.optimizer).__name__} is "
                      "not read (fastconv does not map its Keras variables); training "
                      "restarts its moments.", stacklevel=4)
        return None
    trained = model.trainable_weights
    has_lr = isinstance(model.optimizer._learning_rate, (int, float))
    scalars = model.optimizer._scalar_names()
    expected = 1 + has_lr + sum(len(g) for g in groups) * len(trained) + len(scalars)
    if len(group.keys()) != expected:
        raise ValueError(f"{source}: the optimizer state holds {len(group.keys())} variables "
                         f"but a {type(model.optimizer).__name__} of this model has {expected}.")
    values = [_h5.read_dataset(group[str(i)], source, f"optimizer variable {i}",
                               kinds="fiu") if str(i) in group else None
              for i in range(expected)]
    if any(v is None for v in values):
        raise ValueError(f"{source}: the optimizer state has missing variables.")
    state: dict[str, Any] = {"iterations": np.asarray(int(values[0]), dtype=np.int64)}
    k = 1
    if has_lr:
        state["__learning_rate__"] = float(values[1])
        k = 2
    for group_slots in groups:
        for i, w in enumerate(trained):
            for slot in group_slots:
                if values[k].shape != tuple(w.shape):
                    raise ValueError(f"{source}: optimizer variable {k} has shape "
                                     f"{values[k].shape} but weight {w.name} has {w.shape}.")
                state[f"{slot}_{i}"] = np.asarray(values[k], dtype=np.float32)
                k += 1
    for name in scalars:
        if values[k].shape != ():
            raise ValueError(f"{source}: optimizer variable {k} ({name}) has shape "
                             f"{values[k].shape}, expected a scalar.")
        state[name] = np.asarray(values[k], dtype=np.float32)
        k += 1
    return state


# ----------------------------------------------------------------------------
# the .keras archive


def archive_writer(model: Any) -> Any:
    """A function writing the model's ``.keras`` archive to an open file
    (config and weights are taken now; the file is written by the call)."""
    config = json.dumps(fastconv_to_keras(model))
    metadata = json.dumps({"keras_version": KERAS_VERSION,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                           "fastconv_version": fastconv.__version__})
    weights = _h5.h5_bytes(lambda f: write_weights(f, model, getattr(model, "compiled", False)))

    def write(f: Any) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", metadata)
            archive.writestr("config.json", config)
            # Stored, as Keras stores it: float weights hardly compress.
            archive.writestr("model.weights.h5", weights, zipfile.ZIP_STORED)

    return write

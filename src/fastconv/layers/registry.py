"""The classes a model file may name: fastconv's own layers and models,
registered as they are defined, and user classes registered with
``register_keras_serializable`` or passed as ``custom_objects``.

Loading resolves a config's ``class_name`` here and nowhere else, so a file
can never make fastconv import a module or run code it names.
"""

from __future__ import annotations

from typing import Any

_BUILT_IN: dict[str, type] = {}
_REGISTERED: dict[str, type] = {}


def register_builtin(cls: type, *aliases: str) -> None:
    """Called for every fastconv layer class as it is defined."""
    for name in (cls.__name__, *aliases):
        _BUILT_IN.setdefault(name, cls)


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Any:
    """Decorator registering a user class under ``package>name`` (and its
    plain name), as Keras' ``keras.saving.register_keras_serializable``."""
    def decorate(cls: type) -> type:
        registered = name or cls.__name__
        _REGISTERED[f"{package}>{registered}"] = cls
        _REGISTERED.setdefault(registered, cls)
        cls._registered_name = f"{package}>{registered}"
        return cls
    return decorate


def registered_name(cls: type) -> str | None:
    return getattr(cls, "_registered_name", None) if cls.__dict__.get(
        "_registered_name") else None


def resolve(class_name: Any, custom_objects: dict | None = None,
            registered: Any = None) -> type:
    """The class a config names; ValueError naming it when none is known."""
    for key in (registered, class_name):
        if not isinstance(key, str):
            continue
        if custom_objects and key in custom_objects:
            return custom_objects[key]
        if key in _REGISTERED:
            return _REGISTERED[key]
        if key in _BUILT_IN:
            return _BUILT_IN[key]
    raise ValueError(
        f"Unknown layer class {class_name!r} in the model config: it is neither a fastconv "
        "layer nor registered (fastconv.saving.register_keras_serializable) nor given in "
        f"`custom_objects`. Known classes: {sorted(_BUILT_IN)}.")

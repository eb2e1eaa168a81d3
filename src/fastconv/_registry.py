"""Keras' identifier and config rules, shared by initializers, regularizers,
constraints, losses and optimizers.

``get(identifier)`` in each of those modules accepts None, a name, Keras'
serialized dict ``{"class_name": ..., "config": {...}}``, a class, an
instance or a plain function; ``serialize`` gives the dict back. The rules
and the error messages live here once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


def lookup(identifier: Any, by_name: dict[str, type], base: type, allowed: str,
           wrap_function: Callable[[Callable], Any] | None = None) -> Any:
    """Resolve ``identifier`` against the classes of ``by_name`` (subclasses of
    ``base``). ``allowed`` describes a plain function's signature for the error
    message; ``wrap_function`` (if given) wraps plain functions."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier not in by_name:
            raise ValueError(_unknown(identifier, by_name, base, allowed))
        return by_name[identifier]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        config = identifier.get("config", {})
        if name not in by_name or not isinstance(config, dict):
            raise ValueError(_unknown(identifier, by_name, base, allowed))
        return by_name[name].from_config(config)
    if isinstance(identifier, type):
        if issubclass(identifier, base):
            return identifier()
        raise TypeError(_unknown(identifier, by_name, base, allowed))
    if isinstance(identifier, base):
        return identifier
    if callable(identifier):
        return wrap_function(identifier) if wrap_function else identifier
    raise TypeError(_unknown(identifier, by_name, base, allowed))


def _unknown(identifier: Any, by_name: dict[str, type], base: type, allowed: str) -> str:
    article = "an" if base.__name__[0] in "AEIOU" else "a"
    return (
        f"Invalid value for argument `identifier`: expected None, {article} {base.__name__}, "
        f"a callable {allowed}, a dict {{'class_name': ..., 'config': {{...}}}} or one of "
        f"{sorted(by_name)}, received identifier={identifier!r}."
    )


def serialize(obj: Any, base: type, argument: str, exclude: tuple[type, ...] = ()) -> Any:
    """``{"class_name": ..., "config": {...}}`` for an instance of ``base``;
    None for None; TypeError for plain functions (and ``exclude`` types),
    which have no config to save."""
    if obj is None:
        return None
    if not isinstance(obj, base) or isinstance(obj, exclude):
        article = "an" if base.__name__[0] in "AEIOU" else "a"
        raise TypeError(
            f"Invalid value for argument `{argument}`: expected {article} {base.__name__} "
            f"or None (a plain function cannot be serialized), received {argument}={obj!r}."
        )
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def from_keras_config(cls: type, config: Any, keras_only: Mapping[str, object],
                      what: str) -> Any:
    """``cls(**config)`` for a config from ``get_config`` or from Keras 3.

    Keys of ``keras_only`` (features fastconv lacks) are accepted only with
    the value fastconv implements; any other unknown key is an error. ``what``
    names the kind of object in messages ("losses", "optimizers").
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"Invalid value for argument `config`: expected a dict, received "
            f"{type(config).__name__}."
        )
    config = dict(config)
    for key, supported in keras_only.items():
        if key in config:
            value = config.pop(key)
            if value != supported:
                raise ValueError(
                    f"Invalid value for config key `{key}`: fastconv {what} support only "
                    f"{key}={supported!r}, received {key}={value!r}."
                )
    allowed = sorted(inspect.signature(cls.__init__).parameters.keys() - {"self"})
    unknown = sorted(config.keys() - set(allowed))
    if unknown:
        raise ValueError(
            f"Invalid config for {cls.__name__}: allowed keys are {allowed}, "
            f"received unknown keys {unknown}."
        )
    return cls(**config)

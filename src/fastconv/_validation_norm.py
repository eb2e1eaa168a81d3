"""Argument checking of the batch normalization ops, shared by every backend.

``fastconv.ops.normalization`` and ``fastconv.reference_norm`` both call these
functions, so the two backends accept exactly the same arguments and raise
exactly the same errors. Each ``check_*`` function validates once and returns
clean values: C-contiguous arrays of one float dtype, the normalized axis as
a non-negative int and epsilon as a float.

Shapes: x has any rank >= 2 and one normalized (channel) axis, ``axis``; the
per-channel vectors (gamma, beta, mean, variance) have shape (C,), C =
x.shape[axis]. The statistics are taken over every other axis.
"""

from __future__ import annotations

import math

import numpy as np

from fastconv._validation import _is_int, check_array, check_flag, check_same_dtype


def check_axis(axis: object, ndim: int) -> int:
    """``axis`` as an index into a shape of ``ndim`` dimensions."""
    if not _is_int(axis) or not -ndim <= axis < ndim:
        raise ValueError(
            f"Invalid value for argument `axis`: expected an int in [{-ndim}, {ndim}) for "
            f"an input of {ndim} dimensions, received axis={axis!r}."
        )
    return int(axis) % ndim


def check_epsilon(epsilon: object) -> float:
    if (not isinstance(epsilon, (int, float, np.floating, np.integer))
            or isinstance(epsilon, bool) or not math.isfinite(epsilon) or epsilon < 0):
        raise ValueError(
            f"Invalid value for argument `epsilon`: expected a finite float >= 0, "
            f"received epsilon={epsilon!r}."
        )
    return float(epsilon)


def _check_input(x: object, name: str = "x") -> np.ndarray:
    x = check_array(x, name, None)
    if x.ndim < 2:
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected at least 2 dimensions "
            f"(a batch axis and a channel axis), received shape {x.shape}."
        )
    return x


def _check_vector(value: object, name: str, c: int, optional: bool) -> np.ndarray | None:
    if value is None and optional:
        return None
    value = check_array(value, name, 1)
    if value.shape != (c,):
        raise ValueError(
            f"Invalid shape for argument `{name}`: expected ({c},), one value per channel "
            f"of the normalized axis, received shape {value.shape}."
        )
    return value


def _check_statistics_over(x: np.ndarray, axis: int) -> None:
    if x.size == 0:
        raise ValueError(
            f"Invalid shape for argument `x`: the batch statistics need at least one "
            f"value per channel, received shape {x.shape} (axis={axis})."
        )


def check_batch_norm(x: object, gamma: object, beta: object, epsilon: object, axis: object
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float, int]:
    x = _check_input(x)
    axis = check_axis(axis, x.ndim)
    c = x.shape[axis]
    gamma = _check_vector(gamma, "gamma", c, True)
    beta = _check_vector(beta, "beta", c, True)
    check_same_dtype(x=x, gamma=gamma, beta=beta)
    _check_statistics_over(x, axis)
    return x, gamma, beta, check_epsilon(epsilon), axis


def check_batch_norm_inference(
        x: object, mean: object, variance: object, gamma: object, beta: object,
        epsilon: object, axis: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, float,
           int]:
    x = _check_input(x)
    axis = check_axis(axis, x.ndim)
    c = x.shape[axis]
    mean = _check_vector(mean, "mean", c, False)
    variance = _check_vector(variance, "variance", c, False)
    gamma = _check_vector(gamma, "gamma", c, True)
    beta = _check_vector(beta, "beta", c, True)
    check_same_dtype(x=x, mean=mean, variance=variance, gamma=gamma, beta=beta)
    return x, mean, variance, gamma, beta, check_epsilon(epsilon), axis


def check_batch_norm_backward(
        dy: object, x: object, mean: object, variance: object, gamma: object,
        epsilon: object, axis: object, training: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float, int,
           bool]:
    dy = _check_input(dy, "dy")
    x = _check_input(x)
    if dy.shape != x.shape:
        raise ValueError(
            f"Invalid shape for argument `dy`: expected the shape of x, {x.shape}, "
            f"received shape {dy.shape}."
        )
    axis = check_axis(axis, x.ndim)
    c = x.shape[axis]
    mean = _check_vector(mean, "mean", c, False)
    variance = _check_vector(variance, "variance", c, False)
    gamma = _check_vector(gamma, "gamma", c, True)
    check_same_dtype(dy=dy, x=x, mean=mean, variance=variance, gamma=gamma)
    training = check_flag(training, "training")
    if training:
        _check_statistics_over(x, axis)
    return dy, x, mean, variance, gamma, check_epsilon(epsilon), axis, training

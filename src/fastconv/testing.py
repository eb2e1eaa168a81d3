"""Whole-model gradient check: backpropagation against central differences.

    model = Sequential([...layers with dtype="float64"...])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    errors = check_gradients(model, x, y)   # raises AssertionError when off

Use float64 layers (``dtype="float64"``) and inputs away from kinks (no exact
ties in max pooling, no pre-activations at exactly 0 for ReLU).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastconv.runtime import random as _random


def _fix_randomness(model: Any, seed: int) -> None:
    """Make every forward pass draw the same dropout masks."""
    _random.set_seed(seed)
    for layer in model._unique_layers():
        layer.restart_random_state()


def _loss(model: Any, x: Any, y: Any, seed: int) -> float:
    _fix_randomness(model, seed)
    outputs, state = model.compute_forward(x, training=True)
    model._last_penalty = state[1].penalty
    return float(model.compute_loss(x, y, outputs))


def check_gradients(model: Any, x: Any, y: Any, epsilon: float = 1e-6, rtol: float = 1e-5,
                    atol: float = 1e-8, max_entries: int = 12, seed: int = 0) -> dict[str, float]:
    """Compare each weight's backpropagated gradient with central differences.

    Parameters
    ----------
    model : a compiled, built fastconv model (float64 layers recommended)
    x, y : one batch of inputs and targets (lists or dicts for several
        inputs or outputs, as ``fit`` takes them)
    epsilon : float
        Step of the central difference (L(w + eps) - L(w - eps)) / (2 eps).
    rtol, atol : float
        An entry passes when |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|).
    max_entries : int
        Entries checked per weight (chosen at random, plus the largest gradient).

    Returns
    -------
    dict mapping each weight's name to its largest relative error.
    """
    model._require_compiled("check_gradients")
    _fix_randomness(model, seed)
    outputs, state = model.compute_forward(x, training=True)
    model._last_penalty = state[1].penalty
    model.compute_loss(x, y, outputs)
    model.compute_gradients(state, y, outputs)
    rng = np.random.default_rng(seed)
    errors: dict[str, float] = {}
    failures = []
    analytic_of = {id(var): var.grad.copy() for var in model.trainable_weights}
    for var in model.trainable_weights:
        analytic = analytic_of[id(var)]
        flat = var.value.reshape(-1)
        picks = set(rng.choice(flat.size, size=min(max_entries, flat.size), replace=False))
        picks.add(int(np.argmax(np.abs(analytic))))
        worst = 0.0
        for k in sorted(picks):
            saved = flat[k]
            flat[k] = saved + epsilon
            up = _loss(model, x, y, seed)
            flat[k] = saved - epsilon
            down = _loss(model, x, y, seed)
            flat[k] = saved
            numeric = (up - down) / (2 * epsilon)
            got = analytic.reshape(-1)[k]
            scale = max(abs(numeric), abs(got))
            error = abs(numeric - got) / scale if scale > 0 else 0.0
            worst = max(worst, error)
            if abs(numeric - got) > atol + rtol * scale:
                failures.append(f"{var.name}[{np.unravel_index(k, var.shape)}]: backprop {got:.6e}, "
                                f"finite difference {numeric:.6e}")
        errors[var.name] = worst
    if failures:
        raise AssertionError("Gradient check failed:\n" + "\n".join(failures[:20]))
    return errors

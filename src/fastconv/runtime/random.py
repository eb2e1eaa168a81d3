"""The random generator every fastconv component draws from.

Weight initialisers, dropout masks and the shuffling in ``fit`` all use
``generator()``, so ``fastconv.utils.set_random_seed(seed)`` makes a whole
training run reproducible bit for bit.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    """The process-wide generator (re-created by ``set_seed``)."""
    return _generator


def set_seed(seed: int) -> None:
    """Restart the process-wide generator from ``seed``."""
    global _generator
    _generator = np.random.default_rng(seed)

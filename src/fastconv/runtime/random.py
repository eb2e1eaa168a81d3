"""The random numbers fastconv draws.

Weight initialisers, random layers and the shuffling in ``fit`` all start
from ``generator()``, so ``fastconv.utils.set_random_seed(seed)`` makes a
whole training run reproducible bit for bit.

Random layers (dropout, noise, augmentation) draw by batch chunks
(``fastconv.runtime.batch``), so the numbers a row gets depend on its chunk
and not on how the batch is shared out. Each training call of such a layer
takes one key from its own generator (when seeded) or from ``generator()``;
chunk ``j`` then draws from the Philox stream of that key and counter word
``j``, and draws that are not per row (a crop window, a mask broadcast
over the batch) from stream ``CHUNKS``. A process running one chunk of a
larger batch draws its chunk's numbers with the key the whole batch would
use: the keys of a step are recorded once (``KeyRecord``) and replayed for
each chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

from fastconv.runtime import batch as _batch

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    """The process-wide generator (re-created by ``set_seed``)."""
    return _generator


def set_seed(seed: int) -> None:
    """Restart the process-wide generator from ``seed``."""
    global _generator
    _generator = np.random.default_rng(seed)


class KeyRecord:
    """The keys random layers take during one training step. Each pass
    inside ``replay()`` gets the same keys in the same order: the first
    pass draws them, the next ones reuse them."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self._next = 0

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        self._next = 0
        _records.append(self)
        try:
            yield
        finally:
            _records.pop()

    def _key(self, own: np.random.Generator | None) -> int:
        if self._next == len(self.keys):
            self.keys.append(_draw_key(own))
        self._next += 1
        return self.keys[self._next - 1]


_records: list[KeyRecord] = []


def _draw_key(own: np.random.Generator | None) -> int:
    return int((own or _generator).integers(2**63))


def layer_key(own: np.random.Generator | None) -> int:
    """The key of one training call of a random layer whose own generator
    is ``own`` (None: the process-wide one)."""
    return _records[-1]._key(own) if _records else _draw_key(own)


# One Philox generator serves every stream: a stream is its key and counter.
_bits = np.random.Philox(key=0)
_shared = np.random.Generator(_bits)


class LayerDraws:
    """The random numbers of one training call of a random layer over a
    batch of ``rows`` rows. The key is taken at the first draw, so a call
    that draws nothing takes none."""

    def __init__(self, own: np.random.Generator | None, rows: int) -> None:
        self._own = own
        self._rows = rows
        self._key: int | None = None
        self._states: dict[int, dict] = {}

    def _draw(self, stream: int, draw: Callable[[np.random.Generator], np.ndarray]
              ) -> np.ndarray:
        if self._key is None:
            self._key = layer_key(self._own)
        state = self._states.get(stream)
        if state is None:
            state = {"bit_generator": "Philox",
                     "state": {"counter": np.array([0, 0, stream, 0], dtype=np.uint64),
                               "key": np.array([self._key, 0], dtype=np.uint64)},
                     "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4,
                     "has_uint32": 0, "uinteger": 0}
        _bits.state = state
        out = draw(_shared)
        self._states[stream] = _bits.state
        return out

    def per_row(self, draw: Callable[[np.random.Generator, tuple], np.ndarray],
                shape: tuple) -> np.ndarray:
        """An array of ``shape`` (``shape[0]`` the batch rows), each chunk's
        rows drawn from the chunk's stream: ``draw(generator, chunk_shape)``."""
        shape = tuple(shape)
        if shape[0] != self._rows:
            raise ValueError(f"Invalid value for argument `shape`: per-row draws need "
                             f"{self._rows} rows, received shape {shape}.")
        pieces = [self._draw(j, lambda g, m=e - b: draw(g, (m, *shape[1:])))
                  for (b, e), j in zip(_batch.row_ranges(shape[0]),
                                       _batch.chunk_indices(shape[0]))]
        if not pieces:
            return self.whole(lambda g: draw(g, shape))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def whole(self, draw: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
        """Numbers not drawn per row (the same for every chunk):
        ``draw(generator)``."""
        return self._draw(_batch.CHUNKS, draw)


def uniform_mask(draws: LayerDraws, shape: tuple, noise_shape: tuple | None) -> np.ndarray:
    """Uniform float32 numbers in [0, 1) of a dropout mask's ``shape``: per
    row, unless ``noise_shape`` broadcasts the mask over the batch (its
    first entry is 1)."""
    def uniform(g: np.random.Generator, s: tuple) -> np.ndarray:
        return g.random(s, dtype=np.float32)

    if noise_shape is not None and noise_shape[0] == 1:
        return draws.whole(lambda g: uniform(g, shape))
    return draws.per_row(uniform, shape)

"""``Embedding``: integer indices to rows of a trainable matrix.

Forward is a gather, ``embeddings[indices]``; backward is the transpose, a
scatter-add of the output gradient into the rows the batch used. The
scatter sorts the indices (a stable sort) and sums each run of equal
indices with one ``np.add.reduceat``, so repeated indices add in a fixed
order and the gradient is the same bit for bit on every run.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fastconv import constraints as constraints_module
from fastconv import initializers as initializers_module
from fastconv import regularizers as regularizers_module
from fastconv.layers.base import Layer, Shape
from fastconv.runtime import batch as _batch


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


class Embedding(Layer):
    """Turns non-negative integers (indices) into dense vectors, as Keras'
    ``keras.layers.Embedding``.

    Parameters
    ----------
    input_dim : int
        Size of the vocabulary: the largest index + 1.
    output_dim : int
        Size of each vector.
    embeddings_initializer : str or initializer
        Default "uniform" (``RandomUniform(-0.05, 0.05)``), as Keras.
    embeddings_regularizer, embeddings_constraint : optional
        Applied to the ``embeddings`` weight.
    mask_zero : bool
        Must be False: fastconv has no mask propagation, so ``mask_zero=True``
        (which makes Keras' following layers skip the padding steps) raises
        ``ValueError`` rather than be silently ignored.
    weights : array, optional
        The initial ``(input_dim, output_dim)`` matrix.

    Input shape: any, e.g. ``(N, T)``, holding integers (an integer dtype, or
    floats with whole values, which are converted as Keras casts them).
    Indices outside ``[0, input_dim)`` raise ``ValueError``.

    Output shape: ``(*input_shape, output_dim)``, in the layer's float dtype.

    Weight: ``embeddings`` of shape ``(input_dim, output_dim)``.
    """

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer: Any = "uniform", embeddings_regularizer: Any = None,
                 embeddings_constraint: Any = None, mask_zero: bool = False,
                 weights: Any = None, lora_rank: int | None = None,
                 lora_alpha: float | None = None, quantization_config: Any = None,
                 **kwargs: Any) -> None:
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.",
                          stacklevel=2)
        if not _is_positive_int(input_dim):
            raise ValueError(f"Invalid value for argument `input_dim`: expected a positive "
                             f"int, received input_dim={input_dim!r}.")
        if not _is_positive_int(output_dim):
            raise ValueError(f"Invalid value for argument `output_dim`: expected a positive "
                             f"int, received output_dim={output_dim!r}.")
        if mask_zero:
            raise ValueError(
                "Invalid value for argument `mask_zero`: fastconv does not propagate masks, "
                "so only mask_zero=False is supported, received mask_zero=True.")
        if lora_rank is not None or lora_alpha is not None:
            raise ValueError("Invalid value for argument `lora_rank`: LoRA is not supported "
                             f"by fastconv, received lora_rank={lora_rank!r}.")
        if quantization_config is not None:
            raise ValueError("Invalid value for argument `quantization_config`: quantization "
                             "is not supported by fastconv.")
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = initializers_module.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers_module.get(embeddings_regularizer)
        self.embeddings_constraint = constraints_module.get(embeddings_constraint)
        self.mask_zero = False
        self.embeddings = None
        if weights is not None:
            self.build(None)
            self.built = True
            values = weights[0] if isinstance(weights, list) and len(weights) == 1 else weights
            self.set_weights([np.asarray(values)])

    def build(self, input_shape: Shape | None) -> None:
        if self.embeddings is not None:
            return
        self.embeddings = self.add_weight(
            (self.input_dim, self.output_dim), self.embeddings_initializer,
            regularizer=self.embeddings_regularizer, constraint=self.embeddings_constraint,
            name="embeddings")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def _accepts_shape(self, input_shape: Any) -> bool:
        return True  # a lookup works on indices of any shape, as in Keras

    def _casts_integer_inputs(self) -> bool:
        return False

    def _as_array(self, value: Any) -> np.ndarray:
        return np.asarray(value.value if hasattr(value, "accumulate_grad") else value)

    def _indices(self, x: np.ndarray) -> np.ndarray:
        """``x`` as checked indices (intp)."""
        if x.dtype.kind == "f":
            if x.size and (not np.all(np.isfinite(x)) or np.any(x != np.floor(x))):
                bad = x[~np.isfinite(x) | (x != np.floor(x))].flat[0]
                raise ValueError(
                    f"Invalid input of layer '{self.name}' (Embedding): expected integer "
                    f"indices, received a {x.dtype} array holding {bad!r}.")
        elif x.dtype.kind not in "biu":
            raise TypeError(f"Invalid input of layer '{self.name}' (Embedding): expected "
                            f"integer indices, received dtype {x.dtype}.")
        if x.size:
            low, high = x.min(), x.max()
            if low < 0 or high >= self.input_dim:
                bad = low if low < 0 else high
                raise ValueError(
                    f"Invalid input of layer '{self.name}' (Embedding): expected indices in "
                    f"[0, {self.input_dim}) (input_dim={self.input_dim}), received "
                    f"{bad.item()!r}.")
        return x.astype(np.intp, copy=False)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, np.ndarray]:
        # x: (...) indices; output: (..., output_dim)
        idx = self._indices(np.asarray(x))
        return self.embeddings.value[idx], idx

    def backward(self, idx: np.ndarray, dy: np.ndarray, need_dx: bool = True) -> None:
        """Scatter-add ``dy`` (..., output_dim) into the rows ``idx`` (...)
        read; indices carry no gradient, so nothing is returned."""
        if self.trainable and self.embeddings.is_trainable():
            self.embeddings.accumulate_grad(self._scatter_by_chunks(idx, dy))

    def _scatter_by_chunks(self, idx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """The embeddings' gradient summed by batch chunks
        (fastconv.runtime.batch): each chunk scattered alone, the chunks'
        sums added in chunk order on the rows some chunk read."""
        ranges = _batch.row_ranges(len(idx)) if idx.ndim else [(0, 1)]
        if len(ranges) == 1:
            return scatter_rows(idx.ravel(), dy.reshape(-1, self.output_dim), self.input_dim)
        read = np.unique(idx)
        parts = [scatter_rows(np.searchsorted(read, idx[b:e].ravel()),
                              dy[b:e].reshape(-1, self.output_dim), len(read))
                 for b, e in ranges]
        out = np.zeros((self.input_dim, self.output_dim), dy.dtype)
        out[read] = _batch.fold(parts)
        return out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        return {
            **config,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers_module.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers_module.serialize(self.embeddings_regularizer),
            "activity_regularizer": config.get("activity_regularizer"),
            "embeddings_constraint": constraints_module.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "quantization_config": None,
        }


def scatter_rows(idx: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``out[idx[k]] += rows[k]`` for every k, into an ``(n, D)`` array of
    zeros; equal indices are summed in their original order (deterministic)."""
    out = np.zeros((n, rows.shape[1]), rows.dtype)
    if idx.size == 0:
        return out
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_idx[1:] != sorted_idx[:-1])))
    out[sorted_idx[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out

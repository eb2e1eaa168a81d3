"""Independent computations for the tests of the 1-, 2- and 3-D convolution
and pooling layers: torch (float64) for convolutions, NumPy windows for
pooling, and Keras' output-size formulas written out by hand. Arrays are
channels-last, as fastconv's kernels take them; kernels in Keras' layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional


def per_axis(value, rank: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def tf_pads(sizes, extents, strides, padding) -> list[tuple[int, int]]:
    """(before, after) per axis as TensorFlow and Keras pad; "causal" all before."""
    if padding == "valid":
        return [(0, 0)] * len(sizes)
    if padding == "causal":
        return [(e - 1, 0) for e in extents]
    pads = []
    for n, e, s in zip(sizes, extents, strides):
        total = max((math.ceil(n / s) - 1) * s + e - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _pad(t, pads, value=0.0):
    return F.pad(t, [p for pair in reversed(pads) for p in pair], value=value)


def _channels_first(a: np.ndarray):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64).movedim(-1, 1)


def _channels_last(t) -> np.ndarray:
    return t.movedim(1, -1).contiguous().numpy()


def _kernel(w: np.ndarray):
    """(*k, a, b) as torch's (b, a, *k)."""
    return torch.tensor(w, dtype=torch.float64).movedim(-1, 0).movedim(-1, 1)


def torch_conv(x, w, b=None, strides=1, padding="valid", dilation=1, groups=1) -> np.ndarray:
    """Keras' convolution: x (N, *spatial, C_in), w (*k, C_in // groups, C_out)."""
    rank = x.ndim - 2
    steps, dils = per_axis(strides, rank), per_axis(dilation, rank)
    extents = [(k - 1) * d + 1 for k, d in zip(w.shape[:rank], dils)]
    xt = _pad(_channels_first(x), tf_pads(x.shape[1:-1], extents, steps, padding))
    conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
    bt = None if b is None else torch.tensor(b, dtype=torch.float64)
    return _channels_last(conv(xt, _kernel(w), bt, stride=steps, dilation=dils, groups=groups))


def torch_depthwise(x, kernel, b=None, strides=1, padding="valid", dilation=1) -> np.ndarray:
    """Keras' depthwise kernel (*k, C_in, m): output channel c * m + j."""
    k, c, m = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    return torch_conv(x, kernel.reshape(*k, 1, c * m), b, strides, padding, dilation, c)


def keras_transpose_pads(size, k, s, d, padding, output_padding) -> tuple[int, int]:
    """(output length, offset into the full scatter) of Keras 3's transposed
    convolution along one axis (its JAX backend's left_pad / right_pad)."""
    e = (k - 1) * d + 1
    if padding == "valid":
        extra = max(e, s) - e if output_padding is None else output_padding
        left, right = e - 1, e - 1 + extra
    else:
        total = s + e - 2 if output_padding is None else e + e % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, e - 1)
        right = total - left
    return (size - 1) * s + 1 + left + right - e + 1, e - 1 - left


def torch_conv_transpose(x, w, b=None, strides=1, padding="valid", output_padding=None,
                         dilation=1) -> np.ndarray:
    """Keras' transposed convolution: x (N, *spatial, C_in), w (*k, filters, C_in).
    The full scatter of torch (no padding), cropped (and zero-extended) to
    Keras' output positions."""
    rank = x.ndim - 2
    steps, dils = per_axis(strides, rank), per_axis(dilation, rank)
    extra = None if output_padding is None else per_axis(output_padding, rank)
    convt = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    wt = torch.tensor(w, dtype=torch.float64).movedim(-1, 0).movedim(-1, 1)  # (C_in, filters, *k)
    full = convt(_channels_first(x), wt, stride=steps, dilation=dils)
    index = [slice(None), slice(None)]
    pads = []
    for a in range(rank):
        length, offset = keras_transpose_pads(x.shape[1 + a], w.shape[a], steps[a], dils[a],
                                              padding, None if extra is None else extra[a])
        have = full.shape[2 + a]
        pads.append((0, max(offset + length - have, 0)))
        index.append(slice(offset, offset + length))
    y = _channels_last(_pad(full, pads)[tuple(index)])
    return y if b is None else y + b


def naive_pool(x, pool, strides, padding, mode) -> np.ndarray:
    """NumPy pooling of any rank; "same" pads with NaN, which neither max nor
    mean counts (Keras)."""
    rank = x.ndim - 2
    pool, strides = per_axis(pool, rank), per_axis(strides or pool, rank)
    pads = tf_pads(x.shape[1:-1], pool, strides, padding)
    x = np.pad(x.astype(np.float64), [(0, 0), *pads, (0, 0)], constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(x, pool, axis=tuple(range(1, rank + 1)))
    windows = windows[(slice(None), *(slice(None, None, s) for s in strides))]
    reduce = np.nanmax if mode == "max" else np.nanmean
    return reduce(windows, axis=tuple(range(-rank, 0)))


def keras_conv_length(n, k, s, d, padding):
    """Keras' documented output size: ceil(n / s) for "same" and "causal",
    floor((n - (k - 1) d - 1) / s) + 1 for "valid"; None stays None."""
    if n is None:
        return None
    if padding in ("same", "causal"):
        return math.ceil(n / s)
    return (n - (k - 1) * d - 1) // s + 1


def to_first(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, -1, 1)


def to_last(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1)


def rand(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)

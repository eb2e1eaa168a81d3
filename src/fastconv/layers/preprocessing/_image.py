"""What the image preprocessing layers share: the layer base (data format,
rank-4 inputs, random draws) and the resampling they are built from.

Every image layer computes in channels_last (a channels_first input is
transposed in and out) and is linear in its input once its random draw is
fixed, so its backward pass is the transpose of its forward map:

- resizing is separable: ``y = Rh @ x @ Rw^T`` per image and channel, with
  ``Rh`` / ``Rw`` the ``(out, in)`` interpolation matrices of TensorFlow's
  ``resize`` (half-pixel centers, no antialiasing); backward multiplies by
  the transposes;
- affine warps (rotation, zoom, translation) read every output pixel from
  up to four input pixels (``Sampler``): forward is a gather, backward the
  matching scatter-add (``np.bincount``, which adds in a fixed order);
- flips and crops move pixels, contrast and brightness scale and shift them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastconv.layers.base import Layer, Shape, check_ndim, normalize_data_format
from fastconv.runtime import random as _random

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def check_choice(value: Any, name: str, allowed: tuple) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"Invalid value for argument `{name}`: expected one of "
                         f"{list(allowed)}, received {name}={value!r}.")
    return value


def check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`: expected a positive int, "
                         f"received {name}={value!r}.")
    return int(value)


def check_seed(seed: Any) -> int | None:
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
                             or seed < 0):
        raise ValueError(f"Invalid value for argument `seed`: expected a non-negative int or "
                         f"None, received seed={seed!r}.")
    return None if seed is None else int(seed)


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(value))


def factor_range(value: Any, name: str, low: float, high: float, low_open: bool = False,
                 symmetric_floor: float | None = None) -> tuple[float, float]:
    """Keras' ``factor`` arguments: a number f gives (-|f|, |f|) (the lower end
    raised to ``symmetric_floor`` when given), a pair gives its sorted values;
    every number must lie in [low, high] (low excluded with ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low}, {high}]"

    def bad() -> ValueError:
        return ValueError(f"Invalid value for argument `{name}`: expected a number or a pair "
                          f"of numbers in {interval}, received {name}={value!r}.")

    def inside(v: Any) -> bool:
        return is_number(v) and (v > low if low_open else v >= low) and v <= high

    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not all(inside(v) for v in value):
            raise bad()
        lower, upper = sorted(float(v) for v in value)
        return lower, upper
    if not inside(value):
        raise bad()
    f = abs(float(value))
    lower = -f if symmetric_floor is None else max(-f, symmetric_floor)
    return lower, f


class BaseImageLayer(Layer):
    """Base of the image layers: ``(N, H, W, C)`` inputs (``(N, C, H, W)``
    with ``data_format="channels_first"``), computed channels_last."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)

    def _hw_axes(self) -> tuple[int, int]:
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def output_size(self, height: int | None, width: int | None) -> tuple:
        """(height, width) of the output for an input of that size."""
        return height, width

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_ndim(self, input_shape, 4)
        h_axis, w_axis = self._hw_axes()
        shape = list(input_shape)
        shape[h_axis], shape[w_axis] = self.output_size(shape[h_axis], shape[w_axis])
        return tuple(shape)

    def _accepts_shape(self, input_shape: Any) -> bool:
        # As Keras: any image size, the rank and channels of the first call.
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            return False
        axis = 1 if self.data_format == "channels_first" else 3
        known, given = self.input_shape[axis], input_shape[axis]
        return known is None or given is None or known == given

    def _to_nhwc(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            check_ndim(self, x.shape, 4)
        x = x.astype(self.dtype, copy=False)
        return x.transpose(0, 2, 3, 1) if self.data_format == "channels_first" else x

    def _from_nhwc(self, y: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_first":
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        y, ctx = self.forward_nhwc(self._to_nhwc(x), bool(training))
        return self._from_nhwc(y), ctx

    def backward(self, ctx: Any, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        return self._from_nhwc(self.backward_nhwc(ctx, self._to_nhwc(dy)))

    def forward_nhwc(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward_nhwc(self, ctx: Any, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class BaseRandomImageLayer(BaseImageLayer):
    """An augmentation: random in training (``fit``, or ``training=True``),
    the identity at inference. Draws come from the layer's own generator
    when it has a ``seed``, else from fastconv's global one, so
    ``fastconv.utils.set_random_seed`` makes them reproducible."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)
        self._draws: _random.LayerDraws | None = None

    def restart_random_state(self) -> None:
        if self.seed is not None:
            self._rng = np.random.default_rng(self.seed)

    def forward(self, x: np.ndarray, training: bool = False) -> tuple[np.ndarray, Any]:
        # The draws of this call, by batch chunks (fastconv.runtime.random).
        self._draws = _random.LayerDraws(self._rng, len(x))
        try:
            return super().forward(x, training)
        finally:
            self._draws = None

    def uniform(self, low: float, high: float, size: int | None) -> Any:
        """Uniform numbers in [low, high): one per image for ``size`` (the
        batch's rows), or a single float for None."""
        if size is None:
            return float(self._draws.whole(lambda g: g.uniform(low, high, None)))
        return self._draws.per_row(lambda g, shape: g.uniform(low, high, shape), (size,))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


# ----------------------------------------------------------------------------
# resizing: TensorFlow's resize (half-pixel centers, antialias=False)


def resize_matrix(n_in: int, n_out: int, interpolation: str, dtype: Any) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of a 1-D resize along one axis.

    Bilinear: output o reads ``c = (o + 0.5) * n_in / n_out - 0.5`` from
    pixels ``max(floor(c), 0)`` and ``min(ceil(c), n_in - 1)`` with weights
    ``1 - (c - floor(c))`` and ``c - floor(c)``. Nearest: pixel
    ``min(floor((o + 0.5) * n_in / n_out), n_in - 1)``.
    """
    scale = n_in / n_out
    o = np.arange(n_out)
    m = np.zeros((n_out, n_in), np.float64)
    if interpolation == "nearest":
        src = np.minimum(np.floor((o + 0.5) * scale).astype(np.int64), n_in - 1)
        m[o, np.maximum(src, 0)] = 1.0
        return m.astype(dtype)
    c = (o + 0.5) * scale - 0.5
    floor = np.floor(c)
    lerp = c - floor
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(c).astype(np.int64), n_in - 1)
    np.add.at(m, (o, lower), 1.0 - lerp)
    np.add.at(m, (o, upper), lerp)
    return m.astype(dtype)


def resize(x: np.ndarray, rh: np.ndarray, rw: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, OH, OW, C)`` with ``rh (OH, H)``, ``rw (OW, W)``."""
    y = np.einsum("oh,nhwc->nowc", rh, x, optimize=True)
    return np.einsum("pw,nowc->nopc", rw, y, optimize=True)


def resize_backward(dy: np.ndarray, rh: np.ndarray, rw: np.ndarray) -> np.ndarray:
    """The transpose of :func:`resize`: ``(N, OH, OW, C)`` -> ``(N, H, W, C)``."""
    d = np.einsum("pw,nopc->nowc", rw, dy, optimize=True)
    return np.einsum("oh,nowc->nhwc", rh, d, optimize=True)


def aspect_crop(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """Keras' centered crop of the target aspect ratio (``smart_resize``,
    ``crop_to_aspect_ratio``): (top, left, crop height, crop width)."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


class CropResize:
    """A crop of ``(top, left, crop_h, crop_w)`` then a resize to
    ``(out_h, out_w)`` (Keras' ``smart_resize`` and the Resizing layer)."""

    def __init__(self, in_size: tuple[int, int], box: tuple[int, ...], out_size: tuple[int, int],
                 interpolation: str, dtype: Any) -> None:
        self.in_size, self.box = in_size, box
        self.rh = resize_matrix(box[2], out_size[0], interpolation, dtype)
        self.rw = resize_matrix(box[3], out_size[1], interpolation, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        top, left, h, w = self.box
        return resize(x[:, top:top + h, left:left + w], self.rh, self.rw)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        top, left, h, w = self.box
        dx = np.zeros((dy.shape[0], *self.in_size, dy.shape[3]), dy.dtype)
        dx[:, top:top + h, left:left + w] = resize_backward(dy, self.rh, self.rw)
        return dx


# ----------------------------------------------------------------------------
# affine warps: Keras' affine_transform


def _fix_index(i: np.ndarray, n: int, fill_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer coordinates ``i`` along an axis of length ``n`` mapped into
    [0, n) as the fill mode extends the image, and (for "constant") which
    were inside.

    reflect (d c b a | a b c d | d c b a), wrap (a b c d | a b c d | a b c d),
    nearest (a a a a | a b c d | d d d d), constant (k k k k | a b c d | k k k k).
    """
    if fill_mode == "constant":
        inside = (i >= 0) & (i < n)
        return np.clip(i, 0, n - 1), inside
    if fill_mode == "nearest":
        return np.clip(i, 0, n - 1), None
    if fill_mode == "wrap":
        return np.mod(i, n), None
    period = np.mod(i, 2 * n)  # reflect: period 2n, the second half mirrored
    return np.where(period < n, period, 2 * n - 1 - period), None


class Sampler:
    """Per-image affine warps of an ``(N, H, W, C)`` batch, as Keras'
    ``ops.image.affine_transform``: output pixel (row i, column j) of image
    n reads the input at ``x = a0 j + a1 i + a2``, ``y = b0 j + b1 i + b2``
    (``transforms[n] = (a0, a1, a2, b0, b1, b2, 0, 0)``), interpolated
    ("bilinear", or "nearest" with TensorFlow's rounding of halves away from
    zero) over the image extended by ``fill_mode``.

    Forward is ``sum_k weight_k * x[index_k]`` (+ the fill value times the
    weight of points outside, for "constant"); backward scatters ``dy``
    through the same indices and weights.
    """

    def __init__(self, shape: tuple[int, ...], transforms: np.ndarray, interpolation: str,
                 fill_mode: str, fill_value: float, dtype: Any) -> None:
        n, h, w, _ = shape
        self.shape, self.dtype = shape, np.dtype(dtype)
        t = np.asarray(transforms, np.float64).reshape(n, 8)
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                                 indexing="ij")
        xs = (t[:, 0, None, None] * cols + t[:, 1, None, None] * rows + t[:, 2, None, None])
        ys = (t[:, 3, None, None] * cols + t[:, 4, None, None] * rows + t[:, 5, None, None])
        base = (np.arange(n) * (h * w))[:, None, None]
        if interpolation == "nearest":
            def rounded(c: np.ndarray) -> np.ndarray:
                return (np.sign(c) * np.floor(np.abs(c) + 0.5)).astype(np.int64)
            corners = [(rounded(ys), rounded(xs), np.ones_like(xs))]
        else:
            y0, x0 = np.floor(ys), np.floor(xs)
            wy, wx = ys - y0, xs - x0
            y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
            corners = [(y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx),
                       (y0 + 1, x0, wy * (1 - wx)), (y0 + 1, x0 + 1, wy * wx)]
        self.index, self.weight = [], []
        outside = np.zeros_like(xs)
        for yi, xi, wk in corners:
            yi, inside_y = _fix_index(yi, h, fill_mode)
            xi, inside_x = _fix_index(xi, w, fill_mode)
            if inside_y is not None:
                inside = inside_y & inside_x
                outside += np.where(inside, 0.0, wk)
                wk = np.where(inside, wk, 0.0)
            self.index.append((base + yi * w + xi).ravel())
            self.weight.append(wk.ravel().astype(self.dtype))
        self.fill = None
        if fill_mode == "constant" and fill_value != 0:
            self.fill = (fill_value * outside).astype(self.dtype)[..., None]

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = self.shape
        flat = x.reshape(n * h * w, c)
        y = np.zeros((n * h * w, c), self.dtype)
        for idx, wk in zip(self.index, self.weight):
            y += wk[:, None] * flat[idx]
        y = y.reshape(n, h, w, c)
        return y if self.fill is None else y + self.fill

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self.shape
        size = n * h * w
        flat = dy.reshape(size, c)
        dx = np.empty((size, c), dy.dtype)
        index = np.concatenate(self.index)
        for ch in range(c):
            weights = np.concatenate([wk * flat[:, ch] for wk in self.weight])
            dx[:, ch] = np.bincount(index, weights=weights, minlength=size)
        return dx.reshape(n, h, w, c)

"""The test helper that checks ``fastconv.ops`` against ``fastconv.reference``.

:func:`check_op` runs one op, forward and backward, in both backends with the
same arguments and compares every output; each parametrized test is then a
line of shapes and hyper-parameters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np

import fastconv
from fastconv import ops, reference

# Relative tolerance per dtype; the absolute tolerance is the same number
# times the largest magnitude of the expected output, because every output is
# a sum of products whose rounding error grows with the size of its terms.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def random_array(
    shape: tuple[int, ...], dtype: type, seed: int, integers: bool = False
) -> np.ndarray:
    """Standard-normal values, or small ints in [-3, 3] whose sums stay exact in float32."""
    rng = np.random.default_rng(seed)
    if integers:
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def conv_inputs(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], dtype: type, bias: bool = True,
    integers: bool = False,
) -> dict[str, np.ndarray | None]:
    """Random ``x``, ``w`` and ``b`` for :func:`check_op` ("conv2d")."""
    return {
        "x": random_array(x_shape, dtype, 1, integers),
        "w": random_array(w_shape, dtype, 2, integers),
        "b": random_array(w_shape[3:], dtype, 3, integers) if bias else None,
    }


@contextlib.contextmanager
def use_isa(isa: str | None) -> Iterator[None]:
    """Run the kernels at SIMD level ``isa`` (None: leave it) and restore it after."""
    previous = fastconv.get_isa()
    if isa is not None:
        fastconv.set_isa(isa)
    try:
        yield
    finally:
        fastconv.set_isa(previous)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True entry of ``mask``."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def assert_matches(
    name: str, got: np.ndarray | None, want: np.ndarray | None, dtype: np.dtype, exact: bool,
    context: str,
) -> None:
    """``got`` equals ``want`` within the tolerance of ``dtype``, NaN and Inf included."""
    if want is None or got is None:
        assert got is None and want is None, f"{context}: {name} is {got!r}, reference {want!r}"
        return
    assert isinstance(got, np.ndarray), f"{context}: {name} is a {type(got).__name__}"
    assert got.shape == want.shape, (
        f"{context}: {name} has shape {got.shape}, reference {want.shape}"
    )
    if name == "argmax":
        assert got.dtype == np.int32, f"{context}: argmax has dtype {got.dtype}"
        wrong = got != want
        assert not wrong.any(), (
            f"{context}: argmax differs from the reference at {int(wrong.sum())} of "
            f"{got.size} entries, first at {_first(wrong)}: ops {got[_first(wrong)]}, "
            f"reference {want[_first(wrong)]}"
        )
        return
    assert got.dtype == dtype, f"{context}: {name} has dtype {got.dtype}, expected {dtype}"
    if not got.size:
        return
    g = got.astype(np.float64)
    e = want.astype(np.float64)
    special = ~np.isfinite(e) | ~np.isfinite(g)
    wrong = special & ~((g == e) | (np.isnan(g) & np.isnan(e)))
    assert not wrong.any(), (
        f"{context}: {name} has {int(wrong.sum())} NaN/Inf entries unlike the reference, "
        f"first at {_first(wrong)}: ops {g[_first(wrong)]}, reference {e[_first(wrong)]}"
    )
    g, e = np.where(special, 0.0, g), np.where(special, 0.0, e)
    diff = np.abs(g - e)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    if exact:
        assert diff[worst] == 0, (
            f"{context}: {name} is not exactly the float64 reference: max |diff| "
            f"{diff[worst]:.3g} at {worst} (ops {g[worst]}, reference {e[worst]})"
        )
        return
    tol = TOLERANCE[dtype]
    atol = tol * max(1.0, float(np.abs(e).max()))
    bad = diff > atol + tol * np.abs(e)
    assert not bad.any(), (
        f"{context}: {name} differs from the reference at {int(bad.sum())} of {diff.size} "
        f"entries: max |diff| {diff[worst]:.3g} at {worst} (ops {g[worst]}, reference "
        f"{e[worst]}); allowed atol {atol:.3g} + rtol {tol:.0e} * |reference|"
    )


def check_op(
    op: str,
    x: np.ndarray,
    w: np.ndarray | None = None,
    b: np.ndarray | None = None,
    *,
    dy: np.ndarray | None = None,
    layout: Callable[[np.ndarray], np.ndarray] | None = None,
    exact: bool = False,
    **params: object,
) -> dict[str, np.ndarray | None]:
    """Check ``op`` and its gradient in ``fastconv.ops`` against ``fastconv.reference``.

    Parameters
    ----------
    op : {"conv2d", "max_pool2d", "avg_pool2d"}
        The forward op; its ``*_backward`` is checked too.
    x : ndarray of shape (N, H, W, C)
    w : ndarray of shape (KH, KW, C, C_out), for "conv2d"
    b : ndarray of shape (C_out,), optional, for "conv2d"
    dy : ndarray of shape (N, OH, OW, C_out), optional
        Output gradient for the backward pass; random of the dtype of ``x``
        (small ints when ``exact``) if not given.
    layout : callable, optional
        Applied to every array handed to ``fastconv.ops`` (for instance a
        Fortran-ordered or read-only copy); the reference gets the originals.
    exact : bool
        Run the reference in float64 and require ``fastconv.ops`` to match it
        exactly: for integer-valued inputs whose results are exact in float32.
    **params
        Hyper-parameters, passed to both backends as keywords.

    Returns
    -------
    dict
        The ``fastconv.ops`` outputs by name: y, argmax, dx, dw, db.
    """
    dtype = x.dtype
    shapes = f"x {x.shape}" + (f", w {w.shape}, bias {b is not None}" if w is not None else "")
    context = f"{op}({dtype}, {shapes}, {params})"

    def for_ops(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or layout is None else layout(a)

    def for_ref(a: np.ndarray | None) -> np.ndarray | None:
        return a.astype(np.float64) if exact and a is not None else a

    inputs = {"x": x, "w": w, "b": b, "dy": dy}
    copies = {name: a.copy() for name, a in inputs.items() if a is not None}
    got: dict[str, np.ndarray | None] = {}
    want: dict[str, np.ndarray | None] = {}
    if op == "conv2d":
        got["y"] = ops.conv2d(for_ops(x), for_ops(w), for_ops(b), **params)
        want["y"] = reference.conv2d(for_ref(x), for_ref(w), for_ref(b), **params)
    elif op == "max_pool2d":
        got["y"], got["argmax"] = ops.max_pool2d(for_ops(x), **params)
        want["y"], want["argmax"] = reference.max_pool2d(for_ref(x), **params)
    elif op == "avg_pool2d":
        got["y"] = ops.avg_pool2d(for_ops(x), **params)
        want["y"] = reference.avg_pool2d(for_ref(x), **params)
    else:
        raise ValueError(f"unknown op {op!r}")

    if dy is None:
        dy = inputs["dy"] = random_array(want["y"].shape, dtype, 4, integers=exact)
        copies["dy"] = dy.copy()
    if op == "conv2d":
        got["dx"], got["dw"], got["db"] = ops.conv2d_backward(
            for_ops(dy), for_ops(x), for_ops(w), **params
        )
        want["dx"], want["dw"], want["db"] = reference.conv2d_backward(
            for_ref(dy), for_ref(x), for_ref(w), **params
        )
    elif op == "max_pool2d":
        # Both backends route dy through the reference's argmax, so a wrong
        # argmax (reported on its own) does not also show up as a wrong dx;
        # ops with the windows' geometry (a gather where they are disjoint)
        # and without (the scatter).
        got["dx"] = ops.max_pool2d_backward(for_ops(dy), for_ops(want["argmax"]), x.shape,
                                            **params)
        got["dx_scatter"] = ops.max_pool2d_backward(for_ops(dy), for_ops(want["argmax"]),
                                                    x.shape)
        want["dx"] = reference.max_pool2d_backward(for_ref(dy), want["argmax"], x.shape,
                                                   **params)
        want["dx_scatter"] = want["dx"]
    else:
        got["dx"] = ops.avg_pool2d_backward(for_ops(dy), x.shape, **params)
        want["dx"] = reference.avg_pool2d_backward(for_ref(dy), x.shape, **params)

    for name in want:
        assert_matches(name, got[name], want[name], dtype, exact, context)
    for name, copy in copies.items():
        np.testing.assert_array_equal(
            inputs[name], copy, err_msg=f"{context}: a backend modified its input {name}"
        )
    return got

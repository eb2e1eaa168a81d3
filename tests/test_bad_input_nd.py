"""Random, mostly valid arguments with one or two broken ones for the
rank-generic ops: arrays or a clean ValueError/TypeError, the same from
fastconv.ops and fastconv.reference, never a crash or another exception."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastconv import ops, reference
from test_bad_input import JUNK, KIND, outcome

ND_KIND = {**KIND, "groups": "pair", "output_padding": "pair"}
ND_OPS = ["conv_nd", "conv_nd_backward", "conv_transpose_nd", "conv_transpose_nd_backward",
          "max_pool_nd", "max_pool_nd_backward", "avg_pool_nd", "avg_pool_nd_backward"]


def _output_or_x(forward, kwargs, x, rng):
    try:
        y = forward(**kwargs)
    except (ValueError, TypeError):
        return x.copy(), None
    y = y[0] if isinstance(y, tuple) else y
    return rng.standard_normal(y.shape).astype(x.dtype), y


@st.composite
def plausible(draw: st.DrawFn, op: str) -> dict[str, object]:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rank = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    x = rng.standard_normal((draw(st.integers(0, 2)), *(draw(st.integers(1, 5))
                                                        for _ in range(rank)), c)).astype(dtype)
    strides = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank)))
    flags = {name: draw(st.booleans()) for name in ("need_dx", "need_dw", "need_db")}
    if op.startswith("conv_nd"):
        groups = draw(st.sampled_from([1, c]))
        w = rng.standard_normal((*(draw(st.integers(1, 3)) for _ in range(rank)), c // groups,
                                 groups * draw(st.integers(1, 3)))).astype(dtype)
        hyper = dict(strides=strides, dilation=draw(st.integers(1, 2)), groups=groups,
                     padding=draw(st.sampled_from(["valid", "same", 1] +
                                                  (["causal"] if rank == 1 else []))))
        if op == "conv_nd":
            return dict(x=x, w=w, b=rng.standard_normal(w.shape[-1]).astype(dtype),
                        activation=draw(st.sampled_from([None, "relu"])), **hyper)
        dy, _ = _output_or_x(reference.conv_nd, dict(x=x, w=w, **hyper), x, rng)
        return dict(dy=dy, x=x, w=w, **hyper, **flags)
    if op.startswith("conv_transpose"):
        w = rng.standard_normal((*(draw(st.integers(1, 3)) for _ in range(rank)),
                                 draw(st.integers(1, 3)), c)).astype(dtype)
        hyper = dict(strides=strides, padding=draw(st.sampled_from(["valid", "same"])),
                     output_padding=draw(st.one_of(st.none(), st.integers(0, 1))),
                     dilation=draw(st.integers(1, 2)))
        if op == "conv_transpose_nd":
            return dict(x=x, w=w, b=rng.standard_normal(w.shape[-2]).astype(dtype), **hyper)
        dy, _ = _output_or_x(reference.conv_transpose_nd, dict(x=x, w=w, **hyper), x, rng)
        return dict(dy=dy, x=x, w=w, **hyper, **flags)
    hyper = dict(pool_size=draw(st.integers(1, 3)),
                 strides=draw(st.one_of(st.none(), st.just(strides))),
                 padding=draw(st.sampled_from(["valid", "same", 0])))
    if op in ("max_pool_nd", "avg_pool_nd"):
        return dict(x=x, **hyper)
    dy, y = _output_or_x(reference.max_pool_nd, dict(x=x, **hyper), x, rng)
    if op == "avg_pool_nd_backward":
        return dict(dy=dy, x_shape=x.shape, **hyper)
    argmax = (reference.max_pool_nd(x, **hyper)[1] if y is not None
              else np.zeros(x.shape, np.int32))
    return dict(dy=dy, argmax=argmax, x_shape=x.shape, **hyper)


@settings(max_examples=400, deadline=None)
@given(op=st.sampled_from(ND_OPS), data=st.data())
def test_random_arguments_give_arrays_or_a_clean_error(op, data):
    kwargs = data.draw(plausible(op), label="plausible")
    for name in data.draw(st.sets(st.sampled_from(sorted(kwargs)), max_size=2), label="broken"):
        kwargs[name] = data.draw(JUNK[ND_KIND[name]], label=name)
    results = {m.__name__: outcome(getattr(m, op), kwargs) for m in (ops, reference)}
    assert results["fastconv.ops"] == results["fastconv.reference"], results

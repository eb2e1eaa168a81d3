"""Threads and SIMD levels: settings, real team sizes, bitwise determinism
across thread counts, and every SIMD level against the reference."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv
from fastconv import ops, reference
from fastconv._kernels import conv as conv_kernels
from fastconv._kernels import conv_pool as conv_pool_kernels
from fastconv._kernels import pool as pool_kernels


def run_python(code: str, **env: str) -> tuple[str, str]:
    """(stdout, stderr) of ``code`` run in a fresh interpreter with ``env``."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FASTCONV_ISA")}
    full_env.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip(), out.stderr


def test_built_with_openmp():
    # Builds made with FASTCONV_NO_OPENMP=1 are single-threaded by design.
    if os.environ.get("FASTCONV_NO_OPENMP", "") not in ("", "0"):
        pytest.skip("this build was made without OpenMP on purpose")
    assert fastconv.openmp_enabled()


@pytest.mark.parametrize("bad", [0, -1, 1025, 2**31, 100000])
def test_set_num_threads_rejects_out_of_range(bad, restore_settings):
    with pytest.raises(ValueError, match=r"`n`.*\[1, 1024\]"):
        fastconv.set_num_threads(bad)


def test_huge_omp_num_threads_is_capped():
    code = "import fastconv; print(fastconv.get_num_threads())"
    expected = "1024" if fastconv.openmp_enabled() else "1"
    assert run_python(code, OMP_NUM_THREADS="100000")[0] == expected


def test_tiny_calls_use_no_more_threads_than_rows(restore_settings):
    if not fastconv.openmp_enabled():
        pytest.skip("built without OpenMP")
    fastconv.set_num_threads(3)
    x = np.ones((1, 2, 4, 3), np.float32)  # one image, 2 output rows below
    ops.conv2d(x, np.ones((1, 1, 3, 5), np.float32))
    assert conv_kernels.last_team_size() == 2


@pytest.mark.parametrize("bad", [2.0, "2", None, True])
def test_set_num_threads_rejects_non_int(bad, restore_settings):
    with pytest.raises(TypeError, match="`n`"):
        fastconv.set_num_threads(bad)


def test_set_and_get_num_threads(restore_settings):
    fastconv.set_num_threads(3)
    assert fastconv.get_num_threads() == (3 if fastconv.openmp_enabled() else 1)


def test_default_threads_follow_omp_num_threads():
    code = "import fastconv; print(fastconv.get_num_threads())"
    expected = "3" if fastconv.openmp_enabled() else "1"
    assert run_python(code, OMP_NUM_THREADS="3")[0] == expected
    assert run_python(code, OMP_NUM_THREADS="2,1")[0] == ("2" if fastconv.openmp_enabled() else "1")


def test_default_threads_are_the_available_cores():
    if not fastconv.openmp_enabled():
        pytest.skip("without OpenMP the count is always 1")
    code = "import fastconv; print(fastconv.get_num_threads())"
    assert run_python(code)[0] == str(len(os.sched_getaffinity(0)))


WAIT_STATE = ("import os, fastconv; from fastconv.runtime import openmp_wait; "
              "print(openmp_wait.state(), '|', os.environ.get('GOMP_SPINCOUNT'))")


def test_idle_threads_spin_briefly_and_the_environment_is_left_as_it_was():
    if not fastconv.openmp_enabled():
        pytest.skip("no libgomp without OpenMP")
    from fastconv.runtime.openmp_wait import SPIN_ROUNDS
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", WAIT_STATE], env=clean, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == f"GOMP_SPINCOUNT={SPIN_ROUNDS} (fastconv's) | None"


def test_the_users_wait_policy_wins():
    assert run_python(WAIT_STATE, OMP_WAIT_POLICY="active")[0].startswith(
        "the user's (OMP_WAIT_POLICY=active)")
    assert run_python(WAIT_STATE, GOMP_SPINCOUNT="5")[0] == "the user's (GOMP_SPINCOUNT=5) | 5"


def test_a_libgomp_loaded_before_fastconv_keeps_its_setting():
    if not fastconv.openmp_enabled():
        pytest.skip("no libgomp without OpenMP")
    code = "import ctypes; ctypes.CDLL('libgomp.so.1'); " + WAIT_STATE
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",
                                                              "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.startswith("libgomp's default (libgomp was loaded before fastconv)")


def test_fastconv_isa_environment_variable():
    code = "import fastconv; print(fastconv.get_isa())"
    assert run_python(code, FASTCONV_ISA="generic")[0] == "generic"
    out, err = run_python(code, FASTCONV_ISA="sse9")
    assert out == fastconv.supported_isas()[-1]
    assert "RuntimeWarning: FASTCONV_ISA='sse9'" in err


def test_set_isa_rejects_unknown_and_unsupported(restore_settings):
    with pytest.raises(ValueError, match="`isa`"):
        fastconv.set_isa("sse9")
    assert fastconv.supported_isas()[0] == "generic"


def test_kernels_use_the_requested_threads(restore_settings):
    if not fastconv.openmp_enabled():
        pytest.skip("built without OpenMP")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 12, 12, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    y = ops.conv2d(x, w)
    p, a = ops.max_pool2d(x, 2)
    fused_p, fused_a = ops.conv2d_max_pool2d(x, w)
    calls = [
        (conv_kernels, lambda: ops.conv2d(x, w)),
        (conv_kernels, lambda: ops.conv2d_backward(y, x, w)),
        (conv_kernels, lambda: ops.conv2d_backward(y, x, w, need_dx=False)),
        (pool_kernels, lambda: ops.max_pool2d(x, 2)),
        (pool_kernels, lambda: ops.max_pool2d_backward(p, a, x.shape)),
        (pool_kernels, lambda: ops.avg_pool2d(x, 2)),
        (pool_kernels, lambda: ops.avg_pool2d_backward(p, x.shape, 2)),
        (conv_pool_kernels, lambda: ops.conv2d_max_pool2d(x, w, activation="relu")),
        (conv_pool_kernels, lambda: ops.conv2d_max_pool2d_backward(fused_p, fused_a, x, w)),
    ]
    # Alternating counts, so a team size left over from an earlier call
    # cannot pass for the current one.
    for threads in (1, 2, 1, 2):
        fastconv.set_num_threads(threads)
        for i, (module, call) in enumerate(calls):
            call()
            assert module.last_team_size() == threads, f"call {i} with {threads} threads"


# (C_in, C_out, kernel, strides, padding, dilation) of convolutions that,
# between them, take every path of the kernels: register-blocked pixels and
# channels at every SIMD width (C_out 33, 65), channel tails (19), one output
# channel (dot products), the unit-stride data gradient on the flipped
# forward kernel (with more clipped tap ranges than open blocks, 5x5 "valid"),
# and the strided data gradient.
CONV_PATHS = [
    (17, 19, (3, 2), (2, 1), "same", (1, 2)),
    (33, 65, (3, 3), 1, "same", 1),
    (65, 33, (5, 5), 1, "valid", 1),
    (40, 1, (3, 3), 1, "same", 1),
    (1, 33, (3, 3), 2, "valid", 1),
    (2, 64, (2, 3), 1, "same", 1),
]


def _all_outputs(dtype, rng):
    """Every op's outputs (forward and gradients) on shapes that split unevenly."""
    outs = []
    for n in (5, 37):  # fewer and more images than the weight-gradient chunks
        for c_in, c_out, k, s, pad, d in CONV_PATHS:
            x = rng.standard_normal((n, 11, 9, c_in)).astype(dtype)
            w = rng.standard_normal((*k, c_in, c_out)).astype(dtype)
            b = rng.standard_normal(c_out).astype(dtype)
            y = ops.conv2d(x, w, b, s, pad, d)
            dy = rng.standard_normal(y.shape).astype(dtype)
            p, a = ops.conv2d_max_pool2d(x, w, b, s, pad, d, "relu", 2)
            outs += [y, ops.conv2d(x, w, b, s, pad, d, activation="relu"), p, a,
                     *ops.conv2d_backward(dy, x, w, s, pad, d),
                     *ops.conv2d_max_pool2d_backward(p, a, x, w, s, pad, d, "relu", y=p)]
        x = rng.standard_normal((n, 11, 9, 17)).astype(dtype)
        p, a = ops.max_pool2d(x, 3, 2, "same")
        outs += [p, a, ops.max_pool2d_backward(p, a, x.shape)]
        q = ops.avg_pool2d(x, (2, 3), 1, ((1, 0), (0, 2)))
        outs += [q, ops.avg_pool2d_backward(q, x.shape, (2, 3), 1, ((1, 0), (0, 2)))]
    return outs


@pytest.mark.parametrize("isa", fastconv.supported_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_1_2_3_threads(isa, dtype, restore_settings):
    fastconv.set_isa(isa)
    results = {}
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        results[threads] = _all_outputs(dtype, np.random.default_rng(42))
    for threads in (2, 3):
        for i, (a, b) in enumerate(zip(results[1], results[threads])):
            assert a.tobytes() == b.tobytes(), f"output {i} differs with {threads} threads"


@pytest.mark.parametrize("isa", fastconv.supported_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_simd_level_matches_the_reference(isa, dtype, restore_settings):
    fastconv.set_isa(isa)
    rng = np.random.default_rng(7)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    # The second line: few taps x input channels (the weight gradient's
    # one-pass path), with borders to add afterwards.
    for cin, cout, k, s, pad, d in [(1, 32, 3, 1, "valid", 1), (17, 33, 3, 2, "same", 1),
                                    (64, 16, 2, 1, "same", 2), (3, 64, 5, 3, 2, 1),
                                    (1, 64, 3, 1, "same", 1), (3, 33, 2, 1, "same", 2)]:
        x = rng.standard_normal((3, 13, 11, cin)).astype(dtype)
        w = rng.standard_normal((k, k, cin, cout)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype)
        y = ops.conv2d(x, w, b, s, pad, d)
        np.testing.assert_allclose(y, reference.conv2d(x, w, b, s, pad, d), **tol)
        dy = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(ops.conv2d_backward(dy, x, w, s, pad, d),
                             reference.conv2d_backward(dy, x, w, s, pad, d)):
            np.testing.assert_allclose(got, want, **tol)
        p, a = ops.max_pool2d(x, 3, 2, "same")
        p_ref, a_ref = reference.max_pool2d(x, 3, 2, "same")
        np.testing.assert_array_equal(p, p_ref)
        np.testing.assert_array_equal(a, a_ref)
        np.testing.assert_allclose(ops.max_pool2d_backward(p, a, x.shape),
                                   reference.max_pool2d_backward(p, a, x.shape), **tol)
        q = ops.avg_pool2d(x, 2, 1, "same")
        np.testing.assert_allclose(q, reference.avg_pool2d(x, 2, 1, "same"), **tol)
        np.testing.assert_allclose(ops.avg_pool2d_backward(q, x.shape, 2, 1, "same"),
                                   reference.avg_pool2d_backward(q, x.shape, 2, 1, "same"),
                                   **tol)


@pytest.mark.parametrize("isa", fastconv.supported_isas())
def test_nan_gradients_keep_their_bits_across_thread_counts(isa, restore_settings):
    # The chunk sums add NaN to NaN; their sign and payload must not depend
    # on where the thread shares of the reduction begin.
    fastconv.set_isa(isa)
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.standard_normal((18, 9, 8, 3)).astype(np.float32)
        special = rng.random(x.shape) < 0.02
        x[special] = rng.choice([np.nan, -0.0, np.inf, -np.inf], size=special.sum())
        w = rng.standard_normal((3, 1, 3, 9)).astype(np.float32)
        dy = rng.standard_normal((18, 9, 4, 9)).astype(np.float32)
        grads = set()
        for threads in (1, 2, 3):
            fastconv.set_num_threads(threads)
            grads.add(ops.conv2d_backward(dy, x, w, (1, 2), "same")[1].tobytes())
        assert len(grads) == 1


def _forked_child_work(_: int) -> tuple[int, list[np.ndarray]]:
    """In a forked child: the thread count it runs with and some kernel results."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 12, 12, 3), dtype=np.float32)
    w = rng.random((3, 3, 3, 8), dtype=np.float32)
    y = ops.conv2d(x, w)
    pooled, _ = ops.max_pool2d(y, 2)
    model = fastconv.Sequential([fastconv.layers.Conv2D(4, 3, input_shape=(12, 12, 3)),
                                 fastconv.layers.MaxPooling2D(2), fastconv.layers.Flatten(),
                                 fastconv.layers.Dense(2)])
    model.set_weights([np.full(v.shape, 0.1, np.float32) for v in model.get_weights()])
    return fastconv.get_num_threads(), [y, pooled, model.predict(x, verbose=0)]


def test_forked_children_run_the_kernels_after_the_parent_used_threads(restore_settings):
    # libgomp's pool of worker threads does not survive fork(): without the
    # at-fork handler the children's first multi-threaded kernel never returns.
    import multiprocessing

    fastconv.set_num_threads(2)
    expected = _forked_child_work(0)  # starts this thread's OpenMP workers
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map_async(_forked_child_work, range(4)).get(timeout=60)
    for threads, arrays in results:
        assert threads == expected[0]
        for got, want in zip(arrays, expected[1]):
            np.testing.assert_array_equal(got, want)
    # The parent's kernels still run (on new worker threads).
    np.testing.assert_array_equal(_forked_child_work(0)[1][0], expected[1][0])

"""fastconv.ops's kernel functions (fastconv.ops.kernels, .convolution,
.pooling, .resample and .normalization) and fastconv.reference (with
fastconv.reference_nd, fastconv.reference_resample and
fastconv.reference_norm) export the same functions, same signatures."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from fastconv import ops, reference, reference_nd, reference_norm, reference_resample
from fastconv.ops import convolution, kernels, normalization, pooling, resample

OPS = [
    "conv2d",
    "conv2d_backward",
    "conv2d_max_pool2d",
    "conv2d_max_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu_backward",
]

# The rank-generic ops (fastconv.ops.convolution and .pooling; their NumPy
# twins in fastconv.reference_nd, re-exported by fastconv.reference).
OPS_ND = [
    "conv_nd",
    "conv_nd_backward",
    "conv_transpose_nd",
    "conv_transpose_nd_backward",
    "max_pool_nd",
    "max_pool_nd_backward",
    "avg_pool_nd",
    "avg_pool_nd_backward",

]

RESAMPLE_OPS = [
    "global_avg_pool",
    "global_avg_pool_backward",
    "global_max_pool",
    "global_max_pool_backward",
    "upsample",
    "upsample_backward",
    "zero_pad",
    "zero_pad_backward",
    "crop",
    "crop_backward",
]

NORM_OPS = ["batch_norm", "batch_norm_backward", "batch_norm_inference"]


def public_functions(module: ModuleType) -> set[str]:
    """Names of the public functions defined in ``module`` itself."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(value)
        and value.__module__ == module.__name__
    }


def test_reference_exports_exactly_the_ops():
    assert public_functions(reference) == set(OPS)
    assert public_functions(reference_nd) == set(OPS_ND)
    assert all(getattr(reference, name) is getattr(reference_nd, name) for name in OPS_ND)
    assert public_functions(reference_resample) == set(RESAMPLE_OPS)
    assert public_functions(reference_norm) == set(NORM_OPS)
    assert sorted(reference.__all__) == sorted(OPS + OPS_ND + RESAMPLE_OPS + NORM_OPS)


def test_kernels_export_exactly_the_reference_functions():
    assert public_functions(kernels) == public_functions(reference)
    assert public_functions(convolution) | public_functions(pooling) == set(OPS_ND)
    assert public_functions(resample) == public_functions(reference_resample)
    assert sorted(resample.__all__) == sorted(RESAMPLE_OPS)
    assert public_functions(normalization) == set(NORM_OPS) == set(normalization.__all__)


@pytest.mark.parametrize("name", OPS + OPS_ND)
def test_ops_reexports_the_kernel_functions(name):
    module = kernels if name in OPS else convolution if "conv" in name else pooling
    assert getattr(ops, name) is getattr(module, name)


@pytest.mark.parametrize("name", RESAMPLE_OPS)
def test_ops_and_reference_reexport_the_resampling_functions(name):
    assert getattr(ops, name) is getattr(resample, name)
    assert getattr(reference, name) is getattr(reference_resample, name)
    assert name in ops.__all__


@pytest.mark.parametrize("name", NORM_OPS)
def test_ops_and_reference_reexport_the_normalization_functions(name):
    assert getattr(ops, name) is getattr(normalization, name)
    assert getattr(reference, name) is getattr(reference_norm, name)
    assert name in ops.__all__


@pytest.mark.parametrize("name", OPS + OPS_ND + RESAMPLE_OPS + NORM_OPS)
def test_same_signature(name):
    assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(reference, name))


@pytest.mark.parametrize("name", OPS + OPS_ND + RESAMPLE_OPS + NORM_OPS)
def test_documented(name):
    for module in (ops, reference):
        assert "Returns" in (getattr(module, name).__doc__ or ""), f"{module.__name__}.{name}"

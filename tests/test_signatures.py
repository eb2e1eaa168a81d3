"""fastconv.ops's kernel functions (fastconv.ops.kernels) and fastconv.reference
export the same functions, same signatures."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from fastconv import ops, reference
from fastconv.ops import kernels

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
    assert sorted(reference.__all__) == sorted(OPS)


def test_kernels_export_exactly_the_reference_functions():
    assert public_functions(kernels) == public_functions(reference)


@pytest.mark.parametrize("name", OPS)
def test_ops_reexports_the_kernel_functions(name):
    assert getattr(ops, name) is getattr(kernels, name)


@pytest.mark.parametrize("name", OPS)
def test_same_signature(name):
    assert inspect.signature(getattr(ops, name)) == inspect.signature(getattr(reference, name))


@pytest.mark.parametrize("name", OPS)
def test_documented(name):
    for module in (ops, reference):
        assert "Returns" in (getattr(module, name).__doc__ or ""), f"{module.__name__}.{name}"

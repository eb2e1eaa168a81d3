"""Shared fixtures (the SIMD levels of the compiled kernels, the thread and
SIMD settings restored after a test) and Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

import fastconv
from helpers import use_isa

# CI replays the same examples on every run, so a red build is never luck;
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(params=fastconv.supported_isas())
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each instruction-set level this CPU runs, selected for the test's duration."""
    with use_isa(request.param):
        yield request.param


@pytest.fixture
def restore_settings() -> Iterator[None]:
    """Put the thread count and SIMD level back as they were after the test."""
    threads, isa = fastconv.get_num_threads(), fastconv.get_isa()
    yield
    fastconv.set_num_threads(threads)
    fastconv.set_isa(isa)

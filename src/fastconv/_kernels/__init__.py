"""The compiled kernels. The first of them to load brings in libgomp, whose
idle threads' wait policy is read once, then (``fastconv.runtime.openmp_wait``)."""

from fastconv.runtime import openmp_wait

with openmp_wait.apply():
    from fastconv._kernels import _runtime  # noqa: F401 - loads libgomp

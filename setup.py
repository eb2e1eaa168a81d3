"""Build of fastconv's compiled kernels (metadata lives in pyproject.toml).

OpenMP is used when a probe compiles and links with it under the build's
own flags (CFLAGS and LDFLAGS included), and the build log says which; set
FASTCONV_NO_OPENMP=1 to build without it (the kernels then run on one
thread). No -march flag is passed: the SIMD variants are selected at run time
(src_c/fc_dispatch.h), so the built package runs on any CPU of its
architecture.
"""
import glob
import os
import shutil
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
    }
    """
)


def report(message: str) -> None:
    """A line of the build log (stderr: pip shows it with -v, or on failure)."""
    print(f"fastconv: {message}", file=sys.stderr, flush=True)


def openmp_flags(compiler) -> list[str] | None:
    """The flag that enables OpenMP for `compiler`, or None if it has none.

    The probe is compiled and linked exactly as the extensions are (the
    compiler object's commands carry the environment's CFLAGS and LDFLAGS,
    e.g. sanitizer options), into a shared object like theirs: probing
    with other flags could find OpenMP where the real build has none, or
    (as an executable linked without -fsanitize) miss it where it has."""
    if os.environ.get("FASTCONV_NO_OPENMP", "") not in ("", "0"):
        report("FASTCONV_NO_OPENMP is set, building without OpenMP")
        return None
    flag = "/openmp" if compiler.compiler_type == "msvc" else "-fopenmp"
    tmp = tempfile.mkdtemp(prefix="fastconv-omp-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
        compiler.link_shared_object(objects, os.path.join(tmp, "probe.so"),
                                    extra_postargs=[flag])
    except Exception as exc:  # any compile or link failure means no OpenMP
        report(f"WARNING: OpenMP not found (the probe failed: {exc}); building without "
               "OpenMP, the kernels will run on one thread")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(f"OpenMP found, building with it ({flag})")
    return [flag]


class BuildExt(build_ext):
    def build_extensions(self):
        omp = openmp_flags(self.compiler)
        # Object files built with the other OpenMP choice must not be reused.
        marker = os.path.join(self.build_temp, "fastconv-openmp")
        choice = "on" if omp else "off"
        if not os.path.exists(marker) or open(marker).read() != choice:
            self.force = True
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            if msvc:  # the GCC-style options kernel_extension added
                ext.extra_compile_args = [a for a in ext.extra_compile_args if a[0] != "-"]
            else:
                ext.extra_compile_args += ["-O3"]
            if omp:
                ext.extra_compile_args += omp
                ext.extra_link_args += omp
        # conv2d.c and pool2d.c are compiled into two extensions each, to the
        # same object files: built in parallel, two compilers could write one.
        self.parallel = None
        super().build_extensions()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(marker, "w") as f:
            f.write(choice)


def kernel_extension(name: str, c_sources: list[str], gcc_flags: list[str] = ()) -> Extension:
    """``gcc_flags``: options for GCC and Clang (dropped for MSVC)."""
    return Extension(
        f"fastconv._kernels.{name}",
        sources=[f"src/fastconv/_kernels/{name}.pyx"] + [f"src_c/{s}" for s in c_sources],
        include_dirs=["src_c", np.get_include()],
        # The templates are #included: rebuild when any header changes.
        depends=sorted(glob.glob("src_c/*.h")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=list(gcc_flags),
    )


extensions = [
    kernel_extension("_runtime", ["fc_cpu.c", "fc_peak.c"]),
    kernel_extension("conv", ["conv2d.c"]),
    kernel_extension("pool", ["pool2d.c"]),
    kernel_extension("conv_pool", ["conv2d.c", "pool2d.c"]),
    kernel_extension("depthwise", ["depthwise.c", "conv2d.c"]),
    kernel_extension("global_pool", ["global_pool.c"]),
    kernel_extension("resize", ["resize.c"]),
    kernel_extension("margins", ["margins.c"]),
    kernel_extension("dense", ["dense.c"]),
    kernel_extension("program", ["conv2d.c", "pool2d.c", "dense.c", "global_pool.c"]),
    # Every instruction set rounding alike: no fused multiply-adds.
    kernel_extension("batchnorm", ["batchnorm.c"], ["-ffp-contract=off"]),
    # NumPy's rounding, bit for bit: no fused multiply-adds; and no errno from
    # sqrt, which would keep the loops from being vectorised.
    kernel_extension("optim", ["optim.c"], ["-ffp-contract=off", "-fno-math-errno"]),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
)

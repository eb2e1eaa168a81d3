"""The build's OpenMP probe uses the flags the real build uses."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "setup.py"

# setup.py's definitions (everything before the extension list), then its
# probe run on a compiler configured as build_ext configures it.
PROBE = f"""
source = open({str(SETUP)!r}).read()
exec(compile(source[:source.index("extensions = [")], "setup.py", "exec"))
from setuptools._distutils.ccompiler import new_compiler
from setuptools._distutils.sysconfig import customize_compiler
compiler = new_compiler()
customize_compiler(compiler)
print(openmp_flags(compiler))
"""


def test_openmp_probe_honours_sanitizer_cflags_and_ldflags():
    if not SETUP.exists() or shutil.which("gcc") is None:
        pytest.skip("needs the source tree's setup.py and gcc")
    pytest.importorskip("setuptools")  # Python 3.12's venvs come without it
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("gcc has no AddressSanitizer runtime")
    flags = "-fsanitize=address,undefined -fno-omit-frame-pointer"
    env = {**os.environ, "CC": "gcc", "CFLAGS": flags, "LDFLAGS": flags}
    env.pop("FASTCONV_NO_OPENMP", None)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['-fopenmp']", out.stderr
    assert "OpenMP found" in out.stderr

"""The build: OpenMP present, SIMD dispatch, no process-wide floating-point side effects."""
import os

import pytest
from conftest import run_python

import fastlstm


def test_build_info_reports_the_build():
    info = fastlstm.build_info()
    assert info["version"] == fastlstm.__version__
    assert isinstance(info["openmp"], bool)
    assert info["max_threads"] >= 1 and info["num_threads"] >= 1 and info["omp_max_threads"] >= 1
    assert info["blas"]["name"]
    assert isinstance(info["compiler_flags"], str) and "-O3" in info["compiler_flags"]
    assert info["simd"] in info["simd_supported"]


@pytest.mark.skipif(os.environ.get("FASTLSTM_SKIP_OPENMP_CHECK") == "1",
                    reason="FASTLSTM_SKIP_OPENMP_CHECK=1: this build may lack OpenMP")
def test_built_with_openmp():
    info = fastlstm.build_info()
    assert info["openmp"], "fastlstm was built without OpenMP: kernels run single-threaded"
    assert "-fopenmp" in info["compiler_flags"]


def test_dispatcher_picks_the_widest_supported_level():
    info = fastlstm.build_info()
    assert info["simd"] == info["simd_supported"][-1]


def test_import_and_kernels_keep_subnormals():
    """No flush-to-zero / denormals-are-zero leaks into the process (fast-math startup code)."""
    script = """
import numpy as np
import fastlstm
x = np.ones((2, 3, 1), np.float32)
fastlstm.functional.lstm_forward(x, np.ones((1, 4), np.float32), np.ones((1, 4), np.float32),
                                 np.zeros(4, np.float32))
tiny = np.float32(1e-38)
survives = np.float32(1e-40) != 0 and tiny * np.float32(0.01) != 0 and np.float32(1e-40) * np.float32(2) != 0
print(bool(survives))
"""
    assert run_python(script) == "True"


def test_an_unbuilt_source_tree_says_how_to_build(tmp_path):
    """The Python files without their compiled modules: importing says so.
    (-S: without site-packages, whose editable-install finder would supply
    the built modules of the checkout.)"""
    import pathlib
    import shutil
    import subprocess
    import sys

    source = pathlib.Path(fastlstm.__file__).parent
    shutil.copytree(source, tmp_path / "fastlstm", ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    script = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import fastlstm"
    result = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: fastlstm's compiled kernels (fastlstm._recurrent) are "
                                "not built in")
    assert "pip install" in last_line and "circular" not in result.stderr

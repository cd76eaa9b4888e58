"""The README's Python examples run as written."""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest
from conftest import mpiexec

import fastlstm

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if README.exists() else []
# Examples of an optional extra run where it is installed (CI installs all but torch).
OPTIONAL = ("torch", "onnxruntime", "onnx", "h5py", "mpi4py", "dask", "pandas")


@pytest.mark.parametrize("code", [c for c in EXAMPLES if not c.lstrip().startswith(">>>")],
                         ids=lambda c: c.splitlines()[0][:40])
def test_readme_example_runs(code):
    for module in re.findall(r"^(?:import|from) (\w+)", code, re.M):
        if module in OPTIONAL:
            pytest.importorskip(module)
    if "to_keras(" in code or "from_keras(" in code:
        pytest.importorskip("h5py")
    if "DataParallel(" in code:
        run_on_two_mpi_processes(code)
    else:
        exec(compile(code, str(README), "exec"), {})


def run_on_two_mpi_processes(code):
    """An MPI training script of the README, as its text says to run it."""
    command = mpiexec()
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastlstm.__file__)))
    env.pop("OMP_NUM_THREADS", None)
    with tempfile.TemporaryDirectory() as cwd:
        pathlib.Path(cwd, "train.py").write_text(code)
        result = subprocess.run([command, "-n", "2", sys.executable, "train.py"], cwd=cwd,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert pathlib.Path(cwd, "model.fastlstm").exists()


def test_readme_has_examples():
    assert len(EXAMPLES) >= 2

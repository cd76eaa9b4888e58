"""The README's Python examples run as written."""
import pathlib
import re

import pytest

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
    exec(compile(code, str(README), "exec"), {})


def test_readme_has_examples():
    assert len(EXAMPLES) >= 2

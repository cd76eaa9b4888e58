"""Shared helpers: random LSTM problems and error measures."""
import numpy as np
import pytest

import fastlstm

# Relative error allowed between a kernel and the float64 reference.
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def pytest_report_header(config):
    info = fastlstm.build_info()
    return (f"fastlstm {info['version']} from {fastlstm.__file__}: openmp={info['openmp']} "
            f"simd={info['simd']} threads={info['num_threads']} blas={info['blas'].get('version')}")


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (0 when both are empty or zero)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    if expected.size == 0:
        return 0.0
    scale = np.max(np.abs(expected))
    diff = np.max(np.abs(actual - expected))
    return diff / scale if scale > 0 else diff


class Problem:
    """Random inputs of one LSTM forward/backward problem."""

    def __init__(self, batch, time, features, units, dtype=np.float64, seed=0,
                 with_state=True, scale=0.5):
        rng = np.random.default_rng(seed)

        def rand(*shape, s=1.0):
            return (s * rng.standard_normal(shape)).astype(dtype)

        self.shape = (batch, time, features, units)
        self.x = rand(batch, time, features)
        self.kernel = rand(features, 4 * units, s=scale / np.sqrt(features))
        self.recurrent_kernel = rand(units, 4 * units, s=scale / np.sqrt(units))
        self.bias = rand(4 * units, s=0.3)
        self.h0 = rand(batch, units) if with_state else None
        self.c0 = rand(batch, units) if with_state else None
        self.dy = rand(batch, time, units)
        self.dh_n = rand(batch, units)
        self.dc_n = rand(batch, units)

    @property
    def inputs(self):
        return (self.x, self.kernel, self.recurrent_kernel, self.bias, self.h0, self.c0)

    @property
    def output_grads(self):
        return (self.dy, self.dh_n, self.dc_n)

    def as_float64(self):
        """A copy of this problem with every array in float64."""
        other = object.__new__(Problem)
        other.__dict__ = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v)
                          for k, v in self.__dict__.items()}
        return other


def run(module, problem, **forward_kwargs):
    """Forward with cache and backward through `module`; returns (y, h_n, c_n, grads)."""
    y, h_n, c_n, cache = module.lstm_forward(*problem.inputs, return_cache=True,
                                             **forward_kwargs)
    grads = module.lstm_backward(cache, *problem.output_grads)
    return y, h_n, c_n, grads


@pytest.fixture(autouse=True)
def full_teams(monkeypatch):
    """Kernels run on the thread counts the tests ask for, even when the
    machine is busy enough that fastlstm would fall back to one thread for a
    while (fastlstm._teams): the tests check every team size."""
    from fastlstm import _teams

    monkeypatch.setattr(_teams, "team_size", lambda requested: requested)


@pytest.fixture
def restore_threads():
    previous = fastlstm._threads._num_threads
    yield
    fastlstm._threads._num_threads = previous


def measured(load, path):
    """load(path) under tracemalloc: (its result or exception, seconds, peak bytes)."""
    import time
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    try:
        outcome = load(path)
    except Exception as e:  # judged by the caller
        outcome = e
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, seconds, peak


def load_script(path):
    """The module of the Python file at `path` (a script of tests/data)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mpiexec():
    """The mpiexec beside this interpreter (the mpi extra's MPICH), or skip
    when mpi4py is not installed."""
    import os
    import shutil
    import sys

    pytest.importorskip("mpi4py")
    found = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
             or shutil.which("mpiexec"))
    if found is None:
        pytest.skip("mpi4py is installed without an mpiexec")
    return found


def run_python(script, env=None, timeout=120):
    """Run `script` in a fresh interpreter outside the source tree (so that
    `import fastlstm` finds the installed package); returns its stdout."""
    import os
    import subprocess
    import sys
    import tempfile

    full_env = dict(os.environ, **(env or {}))
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=full_env,
                                capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()

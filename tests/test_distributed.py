"""fastlstm.distributed: a fit over MPI processes gives the one-process
weights bitwise, a failing process ends the job, and Dask's partitions give
the local predictions."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import distributed_fit
from conftest import mpiexec
import fastlstm
from fastlstm import distributed
from fastlstm._threads import _usable_cpu_count_now
from fastlstm.layers import LSTM, Dense

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_fit.py")
MPI_TIMEOUT_SECONDS = 60


def run_job(processes, data, out, *options):
    """`mpiexec -n processes` of distributed_fit.py, with fastlstm's threads
    left to DataParallel's default."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fastlstm.__file__)))
    env.pop("OMP_NUM_THREADS", None)
    return subprocess.run([mpiexec(), "-n", str(processes), sys.executable, SCRIPT, str(data),
                           str(out), *options], capture_output=True, text=True, env=env,
                          timeout=MPI_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("distributed_data")
    distributed_fit.make_data(directory)
    return directory


@pytest.fixture(scope="module")
def one_process(data):
    """The plain fit's weights and history, on 2 threads."""
    with fastlstm.threads(2):
        return distributed_fit.train(*distributed_fit.load_data(data))


@pytest.mark.parametrize("processes", [2, 3])
def test_a_fit_over_mpi_processes_is_bitwise_the_one_process_fit(processes, data, one_process,
                                                                 tmp_path, monkeypatch):
    """Masking, Bidirectional, LSTM with and without peepholes, GRU, dropout
    of every kind, TimeDistributed Dense, EarlyStopping and validation; the
    last batch has 2 sample blocks, so with 3 processes one of them has no
    rows."""
    out = tmp_path / "weights.npz"
    job = run_job(processes, data, out)
    assert job.returncode == 0, job.stderr
    saved = np.load(out)
    weights, history = one_process
    for i, expected in enumerate(weights):
        np.testing.assert_array_equal(saved[f"arr_{i}"].view(np.uint32),
                                      expected.view(np.uint32))
    assert json.loads(str(saved["history"])) == history
    assert int(saved["processes"]) == processes
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # as the job ran
    assert int(saved["threads"]) == max(1, _usable_cpu_count_now() // processes)
    assert (tmp_path / "weights.npz.checkpoint.npz").exists()  # ModelCheckpoint on process 0


def test_a_failing_process_ends_the_whole_job(data, tmp_path):
    job = run_job(2, data, tmp_path / "never.npz", "--fail-rank", "1")
    assert job.returncode != 0
    assert "process 1 of 2 failed; aborting the job" in job.stderr
    assert "a deliberate failure in process 1" in job.stderr
    assert not (tmp_path / "never.npz").exists()


def test_data_parallel_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "fastlstm\[mpi\]"'):
        distributed.DataParallel()


def test_fit_refuses_a_distributed_that_is_not_a_data_parallel():
    model = distributed_fit.model()
    with pytest.raises(TypeError, match="DataParallel"):
        model.fit(np.zeros((4, 6, 3)), np.zeros((4, 1)), distributed="mpi")


# -------------------------------------------------------------------- Dask

def small_model():
    fastlstm.set_random_seed(0)
    model = fastlstm.Sequential([LSTM(5, return_sequences=True, input_shape=(None, 3)),
                                 LSTM(4), Dense(2)])
    model.compile("adam", "mse")
    model.build()
    return model


def forecast_group(model, group):
    """A map_series function: each series' prediction, from one batch."""
    names = list(group)
    predictions = model.predict(np.stack([group[name] for name in names]))
    return dict(zip(names, predictions))


class Unpicklable:
    def __reduce_ex__(self, protocol):
        raise AssertionError("a model was pickled into the task graph")


def test_dask_partitions_predict_what_the_local_model_predicts(monkeypatch):
    da = pytest.importorskip("dask.array")
    dask_distributed = pytest.importorskip("dask.distributed")
    model = small_model()
    x = np.random.default_rng(1).standard_normal((30, 7, 3)).astype(np.float32)
    lazy = distributed.predict_dask(model, da.from_array(x, chunks=(8, 4, 3)), threads=1)
    # The model travels as its saved file's bytes: no Sequential in the graph.
    monkeypatch.setattr(fastlstm.Sequential, "__reduce_ex__", Unpicklable.__reduce_ex__)
    pickle.dumps(dict(lazy.__dask_graph__()))
    series = {f"series_{i}": x[i] for i in range(5)}
    with dask_distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None) as cluster, \
            dask_distributed.Client(cluster):
        predicted = lazy.compute()
        forecasts = distributed.map_series(forecast_group, series, model=model, partitions=2)
    # The same bits as the model run here on the same partitions (a BLAS
    # rounds a row according to the rows beside it in a call).
    expected = np.concatenate([model.predict(x[i:i + 8]) for i in range(0, 30, 8)])
    assert predicted.shape == expected.shape == (30, 2)
    np.testing.assert_array_equal(predicted, expected)
    assert list(forecasts) == list(series)
    names = list(series)
    for group in (names[:2], names[2:]):
        for name, values in forecast_group(model, {n: series[n] for n in group}).items():
            np.testing.assert_array_equal(forecasts[name], values)


def test_predict_dask_refuses_what_it_cannot_run():
    da = pytest.importorskip("dask.array")
    model = small_model()
    with pytest.raises(TypeError, match="dask.array.Array"):
        distributed.predict_dask(model, np.zeros((2, 7, 3)))
    with pytest.raises(ValueError, match="shape"):
        distributed.predict_dask(model, da.zeros((2, 7), chunks=2))
    with pytest.raises(ValueError, match="threads"):
        distributed.predict_dask(model, da.zeros((2, 7, 3), chunks=2), threads=0)
    with pytest.raises(ValueError, match="partitions"):
        distributed.map_series(forecast_group, {"a": np.zeros((7, 3))}, model, partitions=0)


def test_many_series_get_their_own_forecaster_on_dask_workers():
    dask_distributed = pytest.importorskip("dask.distributed")
    from fastlstm.forecast import Forecaster

    t = np.arange(60)
    series = {"a": 10 + np.sin(t / 3), "b": 5 + 0.1 * t + np.cos(t / 2), "c": np.cos(t / 5) + 3}
    forecaster = Forecaster(transform="diff", window=8, units=4, epochs=2, threads=1)
    # One in-process worker: fits running at once in threads of one process
    # would share its random stream (worker processes each have their own).
    with dask_distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None) as cluster, \
            dask_distributed.Client(cluster):
        results = distributed.backtest_dask(forecaster, series, partitions=2, start=0.8)
        forecasts = distributed.forecast_dask(forecaster, series, steps=3, partitions=2)
    assert list(results) == list(forecasts) == list(series)
    for name, values in series.items():
        local = Forecaster(**forecaster.get_params()).backtest(values, start=0.8)
        np.testing.assert_array_equal(results[name].forecasts["model"], local.forecasts["model"])
        assert results[name].errors == local.errors
        fitted = Forecaster(**forecaster.get_params()).fit(values)
        np.testing.assert_array_equal(forecasts[name].values, fitted.predict(3).values)


def test_a_forecaster_with_its_own_model_callable_does_not_travel():
    from fastlstm.forecast import Forecaster

    with pytest.raises(ValueError, match="own model callable"):
        distributed.backtest_dask(Forecaster(model=lambda shape, outputs: None), {"a": [1.0]})

"""Inference fanned out over Dask's partitions, the model shipped as the
bytes of its saved file (see fastlstm.distributed)."""
import contextlib
import functools
import os
import tempfile

import numpy as np

from ._threads import threads as _threads

__all__ = ["predict_dask", "predict_block", "model_bytes", "map_series", "backtest_dask",
           "forecast_dask"]


def model_bytes(model):
    """The bytes of `model`'s saved file (``model.save``): how a model
    travels to Dask's workers, read back there by ``load_model`` without
    unpickling anything."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.npz")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


@functools.lru_cache(maxsize=4)
def _model_from_bytes(data):
    """The model saved as `data`, loaded once per process and payload."""
    from .models import load_model

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.npz")
        with open(path, "wb") as f:
            f.write(data)
        return load_model(path, compile=False)


def _threads_scope(n_threads):
    return contextlib.nullcontext() if n_threads is None else _threads(n_threads)


def predict_block(block, data, batch_size=None, n_threads=None):
    """``model.predict(block)`` for the model saved as `data` (see
    ``model_bytes``), on `n_threads` fastlstm threads (None: the process'
    default): the function ``predict_dask`` maps over a Dask array's
    blocks, usable with ``dask.array.map_blocks`` directly.

    Parameters
    ----------
    block : ndarray of shape (samples, *input_shape)
    data : bytes
    batch_size : int, optional
    n_threads : int, optional

    Returns
    -------
    ndarray of shape (samples, *output_shape), float32
    """
    model = _model_from_bytes(data)
    with _threads_scope(n_threads):
        return model.predict(np.asarray(block), batch_size=batch_size)


def _dask():
    try:
        import dask
        import dask.array
    except ImportError as error:
        raise ImportError('fastlstm.distributed\'s Dask functions need Dask: '
                          'pip install "fastlstm[dask]"') from error
    return dask


def predict_dask(model, array, batch_size=None, threads=None):
    """The model's predictions for a Dask array, one partition per task.

    Parameters
    ----------
    model : Sequential
        A built model; it travels once, as the bytes of its saved file.
    array : dask.array.Array of shape (samples, *input_shape)
        Cut along the samples only (other axes are joined into one chunk
        first).
    batch_size : int, optional
        ``predict``'s batch size within a partition.
    threads : int, optional
        fastlstm threads per task. Dask's worker processes start with
        OMP_NUM_THREADS=1, so by default each task runs on one thread;
        give a worker of w cores and t threads ``threads = w // t``.

    Returns
    -------
    dask.array.Array of shape (samples, *output_shape), float32, lazy:
        ``.compute()`` runs it on the current scheduler or Client.
    """
    dask = _dask()
    if not isinstance(array, dask.array.Array):
        raise TypeError(f"array must be a dask.array.Array, got {type(array).__name__}; "
                        "for a NumPy array call model.predict")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    input_shape = model.input_shape
    if array.ndim != 1 + len(input_shape):
        raise ValueError(f"array must have shape (samples, {', '.join(map(str, input_shape))})"
                         f", got {array.shape}")
    array = array.rechunk({axis: -1 for axis in range(1, array.ndim)})
    output_shape = model._output_shape_for(np.empty((0,) + array.shape[1:], np.float32))
    payload = dask.delayed(model_bytes(model), pure=True)
    chunks = (array.chunks[0],) + tuple((size,) for size in output_shape)
    extra = len(output_shape) - (array.ndim - 1)
    options = {}
    if extra < 0:
        options["drop_axis"] = list(range(array.ndim + extra, array.ndim))
    elif extra > 0:
        options["new_axis"] = list(range(array.ndim, array.ndim + extra))
    return array.map_blocks(predict_block, payload, batch_size, threads, dtype=np.float32,
                            chunks=chunks, **options)


def _partition_call(function, data, names, values, n_threads):
    model = None if data is None else _model_from_bytes(data)
    with _threads_scope(n_threads):
        return function(model, dict(zip(names, values)))


def map_series(function, series, model=None, partitions=None, threads=None, scheduler=None):
    """Fan a function of a model and a group of series out over Dask.

    The series are cut into `partitions` groups of consecutive entries; each
    group runs ``function(model, group)`` in a Dask task (group: a dict of
    name to series), with the model loaded from its saved bytes on the
    worker. The groups' results (dicts) are merged in order. For many
    series' forecasts, backtests or fits: a function that predicts all of
    its group's series in one batch keeps each task's kernels busy.

    Parameters
    ----------
    function : callable (model or None, dict) -> dict
        Importable by the workers (defined in a module, not in ``__main__``,
        when they are other processes).
    series : dict of name -> array_like
    model : Sequential, optional
        Sent to every task once, as the bytes of its saved file.
    partitions : int, optional
        Default: one per series, up to 64.
    threads : int, optional
        fastlstm threads per task (see ``predict_dask``).
    scheduler : optional
        Passed to ``dask.compute`` (default: the current Client or
        scheduler).

    Returns
    -------
    dict
        The merged results of every group, in the series' order.
    """
    dask = _dask()
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    if not isinstance(series, dict):
        raise TypeError(f"series must be a dict of name -> series, got {type(series).__name__}")
    names = list(series)
    if partitions is None:
        partitions = max(1, min(len(names), 64))
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive int, got {partitions!r}")
    data = None if model is None else dask.delayed(model_bytes(model), pure=True)
    partitions = min(partitions, len(names))
    tasks = []
    for k in range(partitions):
        group = names[k * len(names) // partitions:(k + 1) * len(names) // partitions]
        tasks.append(dask.delayed(_partition_call, pure=True)(
            function, data, group, [series[name] for name in group], threads))
    merged = {}
    options = {} if scheduler is None else {"scheduler": scheduler}
    for result in dask.compute(*tasks, **options):
        merged.update(result)
    return merged


def _forecaster_settings(forecaster):
    """The Forecaster's constructor arguments as plain data, to rebuild it
    on the workers (a custom model callable would have to be pickled)."""
    from .forecast import Forecaster

    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"forecaster must be a fastlstm Forecaster, got "
                        f"{type(forecaster).__name__}")
    if forecaster.model is not None:
        raise ValueError("a Forecaster with its own model callable cannot travel to the "
                         "workers without pickling code; use the default model")
    return forecaster.get_params()


def _backtest_group(settings, options, model, group):
    from .forecast import Forecaster

    return {name: Forecaster(**settings).backtest(values, **options)
            for name, values in group.items()}


def _forecast_group(settings, steps, quantiles, model, group):
    from .forecast import Forecaster

    return {name: Forecaster(**settings).fit(values).predict(steps, quantiles=quantiles)
            for name, values in group.items()}


def backtest_dask(forecaster, series, partitions=None, threads=None, scheduler=None,
                  **options):
    """Backtest a forecaster of `forecaster`'s settings on each of many
    series, the series fanned out over Dask (see ``map_series``).

    Each series gets its own model, fitted and tested on a worker exactly as
    ``Forecaster(**forecaster.get_params()).backtest(values, **options)``
    would locally. Fits draw on their process' random stream (seeded by the
    forecaster's seed): run the workers as processes (Dask's default) or
    one thread per process, so that two fits never share a stream at once.

    Parameters
    ----------
    forecaster : fastlstm.forecast.Forecaster
        Its settings only; it need not be fitted.
    series : dict of name -> array_like of shape (n,) or a dated series
    partitions, threads, scheduler
        As for ``map_series``.
    **options
        ``backtest``'s arguments (start, horizon, stride, refit, quantiles).

    Returns
    -------
    dict of name -> fastlstm.evaluation.BacktestResult
    """
    settings = _forecaster_settings(forecaster)
    return map_series(functools.partial(_backtest_group, settings, options), series,
                      partitions=partitions, threads=threads, scheduler=scheduler)


def forecast_dask(forecaster, series, steps, quantiles=None, partitions=None, threads=None,
                  scheduler=None):
    """Fit a forecaster of `forecaster`'s settings on each of many series and
    forecast `steps` values of each, the series fanned out over Dask.

    Returns
    -------
    dict of name -> fastlstm.forecast.Forecast
    """
    settings = _forecaster_settings(forecaster)
    return map_series(functools.partial(_forecast_group, settings, steps, quantiles), series,
                      partitions=partitions, threads=threads, scheduler=scheduler)

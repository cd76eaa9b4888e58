"""fastlstm on distributed engines: MPI for data-parallel training, Dask for
fanning inference out over partitions.

Training (``pip install "fastlstm[mpi]"``): run one process per share of
the work, ``mpiexec -n 4 python train.py``, where train.py calls
``model.fit(x, y, ..., distributed=fastlstm.distributed.DataParallel())``.
Every process passes the same x and y (a NumPy memmap is fine: a process
reads only the rows it trains on). Each batch is cut into fixed blocks of
samples (fastlstm._sample_blocks), each process computes the weight
gradients of its run of whole blocks, and every process adds all the
blocks' gradients in block order and takes the same optimizer step. The
weights after fit are bitwise those of a fit in one process with the same
seed and batch size, for any number of processes (on machines that run the
same SIMD level of fastlstm's kernels and the same BLAS).

Inference (``pip install "fastlstm[dask]"``): ``predict_dask(model,
array)`` runs ``model.predict`` on every partition of a Dask array, on the
workers, and ``map_series`` fans any function of a model and a group of
series out the same way; ``backtest_dask`` and ``forecast_dask`` give each
of many series its own Forecaster on the workers. The model travels as the bytes of its saved file
(``model.save``), read back without unpickling, never as a pickled object.

The runner lives in fastlstm._data_parallel, the Dask functions in
fastlstm._dask_partitions; neither imports mpi4py or Dask until used.
"""
from ._dask_partitions import (backtest_dask, forecast_dask, map_series, model_bytes,
                               predict_block, predict_dask)
from ._data_parallel import DataParallel

__all__ = ["DataParallel", "predict_dask", "predict_block", "model_bytes", "map_series",
           "backtest_dask", "forecast_dask"]

"""fastlstm: fast LSTMs on the CPU.

- ``Sequential``, ``fastlstm.layers`` (LSTM, GRU, SimpleRNN, Dense, Dropout),
  ``optimizers``, ``losses``, ``callbacks``, ``load_model``: the Keras-like
  model API.
- ``fastlstm.timeseries`` and ``fastlstm.datasets``: windows, scalers,
  forecasting loops; shipped series and a CSV loader.
- ``fastlstm.metrics``: error measures shared by models and forecasts.
- ``fastlstm.convert``: models from and to Keras files and objects, and
  between file formats (``convert_file``; ``fastlstm convert IN OUT``).
- ``fastlstm.functional``: LSTM, GRU and simple RNN forward and backward on
  the compiled kernels.
- ``fastlstm.reference``: the same in plain NumPy, written to be read.
- ``fastlstm.distributed``: data-parallel fit over MPI, inference over Dask.
- ``set_num_threads`` / ``get_num_threads`` / ``threads``: thread control.
- ``set_random_seed``: reproducible initialization, dropout and shuffling.
- ``build_info()``: how this copy was built.
"""
from importlib.util import find_spec as _find_spec
from os.path import dirname as _dirname

for _module in ("fastlstm._recurrent", "fastlstm._checks", "fastlstm._build",
                "fastlstm._elementwise"):
    if _find_spec(_module) is None:
        raise ImportError(
            f"fastlstm's compiled kernels ({_module}) are not built in {_dirname(__file__)}. "
            "Install the package with `pip install .` (a source checkout: `pip install -e .`, "
            "which compiles them in place), and from a checkout run `pytest`, not "
            "`python -m pytest`, which puts the unbuilt source folder first.")
del _module

from . import (calendar, callbacks, convert, datasets, distributed, functional, layers, losses,
               metrics, optimizers, reference, timeseries)
from ._build_info import build_info
from ._random import set_random_seed
from ._threads import get_num_threads, set_num_threads, threads
from ._types import LSTMGrads
from ._version import __version__
from .layers import Input
from .models import Sequential, load_model

__all__ = ["Sequential", "Input", "load_model", "layers", "optimizers", "losses", "metrics", "callbacks",
           "timeseries", "datasets", "calendar", "convert", "functional", "reference",
           "distributed", "build_info",
           "get_num_threads", "set_num_threads", "threads", "set_random_seed", "LSTMGrads",
           "__version__"]

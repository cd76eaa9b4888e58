"""fastlstm: fast LSTMs on the CPU.

- ``fastlstm.functional``: LSTM forward and backward on the compiled kernels.
- ``fastlstm.reference``: the same in plain NumPy, written to be read.
- ``set_num_threads`` / ``get_num_threads`` / ``threads``: thread control.
- ``build_info()``: how this copy was built.
"""
from . import functional, reference
from ._build_info import build_info
from ._threads import get_num_threads, set_num_threads, threads
from ._types import LSTMGrads
from ._version import __version__

__all__ = ["functional", "reference", "build_info", "get_num_threads", "set_num_threads",
           "threads", "LSTMGrads", "__version__"]

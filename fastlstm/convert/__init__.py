"""Models in and out of other frameworks' formats.

- ``from_keras`` / ``to_keras``: Keras 3 ``.keras`` files, legacy ``.h5``
  files and live ``keras.Model`` objects (fastlstm.convert.keras).
- ``from_torch`` / ``to_torch``: PyTorch modules, state_dicts and ``.pt``
  checkpoints (fastlstm.convert.torch; torch is needed only for modules
  and files).
- ``from_onnx`` / ``to_onnx``: ONNX graphs of the standard recurrent
  operators (fastlstm.convert.onnx).
- ``convert_file(in_path, out_path)``: between any registered formats, by
  extension (fastlstm.convert.files; ``fastlstm convert IN OUT``).

Importing this package imports every format module, which registers its
extensions; no optional extra (h5py, ...) is imported until a format needs it.
"""
from . import files, keras, onnx, torch  # noqa: F401  (each format module registers its extensions)
from ._registry import ConversionError, Converters, UnsupportedLayerError
from .files import UnsupportedFormatError, convert_file
from .keras import from_keras, to_keras
from .onnx import from_onnx, to_onnx
from .torch import from_torch, to_torch

__all__ = ["from_keras", "to_keras", "from_torch", "to_torch", "from_onnx", "to_onnx",
           "convert_file", "files", "ConversionError",
           "UnsupportedLayerError", "UnsupportedFormatError", "Converters"]

"""Models in and out of other frameworks' formats."""
from ._registry import ConversionError, Converters, UnsupportedLayerError

__all__ = ["ConversionError", "Converters", "UnsupportedLayerError"]

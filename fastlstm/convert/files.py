"""Model file formats by extension, and conversion between them.

Each format module registers its extension once, at import::

    files.register(".keras", "Keras 3 model", read=from_keras, write=to_keras)

with ``read(path) -> Sequential`` and ``write(model, path)`` (either may
be None: a format fastlstm only reads, or only writes). fastlstm.convert
imports every format module, so importing it makes all formats known.
The native ``.fastlstm`` format (fastlstm.saving) is registered here.
"""
import os
from typing import Callable, NamedTuple, Optional

from .. import saving
from ._registry import ConversionError

__all__ = ["ModelFormat", "UnsupportedFormatError", "register", "formats", "format_of",
           "read_model", "write_model", "convert_file"]


class UnsupportedFormatError(ConversionError):
    """A file extension no registered format reads (or writes)."""


class ModelFormat(NamedTuple):
    extension: str              # lower case, with its dot: ".keras"
    description: str
    read: Optional[Callable]    # path -> Sequential
    write: Optional[Callable]   # (model, path) -> None


_FORMATS = {}


def register(extension, description, read=None, write=None):
    """Make `extension` readable with `read` and writable with `write`.

    Parameters
    ----------
    extension : str
        With its dot, e.g. ".onnx"; matched case-insensitively.
    description : str
        What the format is, as listings show it.
    read : callable, optional
        ``read(path) -> Sequential``.
    write : callable, optional
        ``write(model, path)``.
    """
    if not isinstance(extension, str) or not extension.startswith(".") or len(extension) < 2:
        raise ValueError(f"extension must be a string like '.keras', got {extension!r}")
    if read is None and write is None:
        raise ValueError(f"{extension}: register a read or a write function, or both")
    _FORMATS[extension.lower()] = ModelFormat(extension.lower(), description, read, write)


def formats():
    """The registered formats, by extension."""
    return tuple(_FORMATS[extension] for extension in sorted(_FORMATS))


def _listing(action):
    names = [f.extension for f in formats() if getattr(f, action) is not None]
    return ", ".join(names) or "none"


def format_of(path, action="read"):
    """The registered format of `path` (by its extension) that can `action`
    ("read" or "write") it.

    Raises
    ------
    UnsupportedFormatError
        No format for the extension, or one that cannot `action` it.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    found = _FORMATS.get(extension)
    if found is None or getattr(found, action) is None:
        what = f"'{extension}' files" if extension else "files without an extension"
        how = "cannot be read" if action == "read" else "cannot be written"
        raise UnsupportedFormatError(f"{path}: {what} {how}; fastlstm {action}s "
                                     f"{_listing(action)}")
    return found


def read_model(path):
    """The model in the file at `path`, read by its extension's format."""
    return format_of(path, "read").read(path)


def write_model(model, path):
    """Write `model` to `path` in its extension's format."""
    format_of(path, "write").write(model, path)


def convert_file(in_path, out_path):
    """Read the model in `in_path` and write it to `out_path`, each in the
    format its extension names; returns the model.

    Both formats are looked up before anything is read, and the model is
    read completely before anything is written.

    Raises
    ------
    UnsupportedFormatError
        An extension fastlstm does not read or write.
    UnsupportedLayerError
        A layer or option one of the formats cannot express.
    ConversionError
        A damaged, foreign or hostile input file.
    ImportError
        A format whose optional extra is not installed; the message says
        what to install.
    FileNotFoundError
    """
    reader = format_of(in_path, "read")
    writer = format_of(out_path, "write")
    model = reader.read(in_path)
    writer.write(model, out_path)
    return model


def _load_native(path):
    try:
        return saving.load_model(path)
    except FileNotFoundError:
        raise
    except ValueError as e:
        raise ConversionError(str(e)) from None


register(".fastlstm", "fastlstm model (fastlstm.saving)", read=_load_native,
         write=saving.save_model)

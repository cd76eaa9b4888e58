"""HDF5 access through h5py for files that may be hostile.

h5py is an optional extra, imported when a function here first needs it.
Everything a hostile file could use to reach outside itself or to inflate
is refused before data is read: links other than hard links (an external
link opens another file), datasets stored in external files or assembled
from other datasets (virtual), filters that need a plugin library, and
compressed data that would inflate far beyond its stored size. A
dataset's shape and type are compared with what the caller expects from
the metadata alone, before its data is read.
"""
import numpy as np

from ..saving import MAX_INFLATION_RATIO
from ._registry import ConversionError

__all__ = ["H5PY_MISSING", "require_h5py", "open_file", "member", "read_weight",
           "read_text_attribute", "read_name_list", "is_hdf5", "HDF5_SIGNATURE"]

H5PY_MISSING = 'Keras files are HDF5 inside; reading or writing them needs h5py: ' \
               'pip install "fastlstm[keras]"'
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Filters HDF5 and h5py implement themselves: deflate, shuffle, fletcher32
# and LZF. Any other filter would make HDF5 look for a plugin library.
BUILT_IN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
# A dataset that inflates to more than MAX_INFLATION_RATIO (the model
# file's) times its stored bytes is refused, once it is larger than the
# floor (small arrays of zeros compress well and honestly).
INFLATION_FLOOR_BYTES = 1 << 20


def require_h5py():
    """The h5py module, or an ImportError that says how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(H5PY_MISSING) from None
    return h5py


def is_hdf5(head):
    """Whether the first bytes of a file, `head`, are HDF5's signature."""
    return bytes(head[:len(HDF5_SIGNATURE)]) == HDF5_SIGNATURE


def open_file(source, what):
    """`source` (a path or a binary file object) opened read-only as HDF5.

    Raises
    ------
    ConversionError
        Not an HDF5 file, or a damaged one; the message names `what`.
    """
    h5py = require_h5py()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise ConversionError(f"{what} is not a readable HDF5 file ({e})") from None


def member(group, path, what):
    """The object at `path` (parts separated by "/") below `group`,
    reached through hard links only.

    Raises
    ------
    ConversionError
        A part is missing or is a soft or external link.
    """
    h5py = require_h5py()
    node = group
    for part in path.split("/"):
        if not isinstance(node, h5py.Group):
            raise ConversionError(f"{what}: {node.name} is not a group, so it has no {part!r}")
        try:
            link = node.get(part, getlink=True)
        except (KeyError, OSError, ValueError):
            link = None
        if link is None:
            raise ConversionError(f"{what}: there is no {path!r} below {group.name}")
        if not isinstance(link, h5py.HardLink):
            raise ConversionError(f"{what}: {node.name}/{part} is a {type(link).__name__}; "
                                  "only objects stored in the file itself are read")
        node = node[part]
    return node


def _check_storage(dataset, what):
    """Refuse a dataset whose data lives outside the file, needs a plugin,
    or inflates suspiciously."""
    h5py = require_h5py()
    plist = dataset.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise ConversionError(f"{what} is a virtual dataset; only data stored in the file "
                              "is read")
    if plist.get_external_count():
        raise ConversionError(f"{what} keeps its data in external files; only data stored "
                              "in the file is read")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in BUILT_IN_FILTERS:
            raise ConversionError(f"{what} is stored through HDF5 filter {code}, which needs a "
                                  f"plugin; readable filters: {sorted(BUILT_IN_FILTERS.values())}")
    data_bytes = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if data_bytes > INFLATION_FLOOR_BYTES and data_bytes > MAX_INFLATION_RATIO * stored:
        raise ConversionError(f"{what} would inflate {stored:,} stored bytes to "
                              f"{data_bytes:,}; refused")


def read_weight(group, path, shape, what):
    """The float32 array of the dataset at `path` below `group`, whose
    shape must be `shape`; shape, type and storage are checked before any
    data is read.

    Returns
    -------
    ndarray of shape `shape`, float32, finite

    Raises
    ------
    ConversionError
        Missing, of another shape or type, not finite, or refused storage.
    """
    h5py = require_h5py()
    dataset = member(group, path, what)
    if not isinstance(dataset, h5py.Dataset):
        raise ConversionError(f"{what}: {dataset.name} is not a dataset")
    if dataset.dtype.kind != "f":
        raise ConversionError(f"{what} ({dataset.name}) has dtype {dataset.dtype}; a floating "
                              "dtype is required")
    if tuple(dataset.shape) != tuple(shape):
        raise ConversionError(f"{what} ({dataset.name}) has shape {tuple(dataset.shape)}; the "
                              f"layer its config describes needs {tuple(shape)}")
    _check_storage(dataset, f"{what} ({dataset.name})")
    try:
        array = dataset[()]
    except (OSError, ValueError) as e:
        raise ConversionError(f"{what} ({dataset.name}) cannot be read ({e})") from None
    with np.errstate(over="ignore"):
        array = np.asarray(array).astype(np.float32)
    if not np.isfinite(array).all():
        raise ConversionError(f"{what} ({dataset.name}) contains NaN or infinity (or a value "
                              "beyond float32's range)")
    return array


def _attribute(obj, name, max_items, what):
    """The value of attribute `name` of `obj` (None when absent), refused
    when it holds more than `max_items` elements or is not text."""
    if name not in obj.attrs:
        return None
    attribute = obj.attrs.get_id(name)
    count = int(np.prod(attribute.shape, dtype=np.int64)) if attribute.shape else 1
    if count > max_items:
        raise ConversionError(f"{what}: attribute {name!r} of {obj.name} holds {count:,} "
                              f"values; at most {max_items:,} are read")
    if attribute.dtype.kind not in "SUO":
        raise ConversionError(f"{what}: attribute {name!r} of {obj.name} is not text")
    try:
        return obj.attrs[name]
    except (OSError, TypeError, ValueError) as e:
        raise ConversionError(f"{what}: attribute {name!r} of {obj.name} cannot be read "
                              f"({e})") from None


def _text(value, what):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConversionError(f"{what} is not UTF-8 text") from None
    if isinstance(value, str):
        return value
    raise ConversionError(f"{what} is not text")


def read_text_attribute(obj, name, max_bytes, what):
    """Attribute `name` of `obj` as one string of at most `max_bytes`, or
    None when absent. Its data lives in the file uncompressed, so reading
    it reads no more than the file holds."""
    value = _attribute(obj, name, 1, what)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    text = _text(value, f"{what} (attribute {name!r})")
    if len(text) > max_bytes:
        raise ConversionError(f"{what}: attribute {name!r} holds {len(text):,} characters; "
                              f"at most {max_bytes:,} are read")
    return text


def read_name_list(obj, name, max_items, what):
    """Attribute `name` of `obj` as a list of strings, also when Keras split
    it into ``name0``, ``name1``, ... attributes; [] when absent."""
    value = _attribute(obj, name, max_items, what)
    if value is not None:
        values = list(np.atleast_1d(value))
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in obj.attrs and len(values) <= max_items:
            values += list(np.atleast_1d(_attribute(obj, f"{name}{chunk}", max_items, what)))
            chunk += 1
    if len(values) > max_items:
        raise ConversionError(f"{what}: {obj.name} lists more than {max_items:,} {name}")
    return [_text(v, f"{what} ({name} of {obj.name})") for v in values]

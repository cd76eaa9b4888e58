"""The model file: one .npz archive that is read without unpickling.

The weights file (``save_weights``) is the same archive with a config that
holds ``format`` "fastlstm-weights" and the weights' shapes; ``load_weights``
reads either file's weights into a model of the same architecture.

Entries: ``config.npy``, a UTF-8 JSON document stored as a uint8 array,
and ``weight_0.npy .. weight_{n-1}.npy`` in ``get_weights()`` order. The
JSON holds ``format``, ``format_version``, ``fastlstm_version``, ``model``
(name, input shape, and each layer as ``{"class", "config"}``), ``compile``
(optimizer and loss as ``{"class", "config"}``, and the metric names) and
``metadata`` (any JSON the caller passed, e.g. a scaler's parameters).

Reading trusts nothing in the file. The JSON is bounded in size and
nesting; every class is looked up by name (fastlstm.serialization), never
imported; the model is assembled without weights, and every weight entry's
header (shape, dtype) and stored size are checked against what that model
needs before a byte of weight data is inflated or any array allocated.
"""
import contextlib
import json
import zipfile

import numpy as np

from . import losses, metrics, optimizers, serialization
from ._version import __version__
from ._validation import refuse_unsupported
from .layers import Layer, check_weight_sizes, checked_sample_shape

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]

FILE_FORMAT = "fastlstm-model"
WEIGHTS_FORMAT = "fastlstm-weights"
FILE_FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_CONFIG_BYTES = 16 * 2**20
# A stored entry is never smaller than its data; a deflated one this many
# times smaller than what it inflates to is refused as a zip bomb.
MAX_INFLATION_RATIO = 200


class ModelFileError(ValueError):
    """A model file that is damaged, foreign or hostile."""


def save_model(model, path, metadata=None):
    """Write `model` (a built Sequential) and `metadata` to `path`."""
    config = {"format": FILE_FORMAT, "format_version": FILE_FORMAT_VERSION,
              "fastlstm_version": __version__, "model": model.get_config(),
              "compile": _compile_config(model), "metadata": metadata}
    encoded = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    arrays = {f"weight_{i}": w for i, w in enumerate(model.weights)}
    with open(path, "wb") as f:
        np.savez(f, config=encoded, **arrays)


def save_weights(model, path):
    """Write the weights of `model` (built) to `path`."""
    config = {"format": WEIGHTS_FORMAT, "format_version": 1, "fastlstm_version": __version__,
              "shapes": [list(w.shape) for w in model.weights]}
    encoded = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)
    arrays = {f"weight_{i}": w for i, w in enumerate(model.weights)}
    with open(path, "wb") as f:
        np.savez(f, config=encoded, **arrays)


def load_weights(model, path):
    """Read the weights of a weights file or a model file at `path` into
    `model`, which must have the same weights' shapes. Nothing is changed
    unless every weight reads and checks.

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    ValueError
        The file is damaged or foreign, or its weights do not fit the model.
    """
    expected = [w.shape for w in model.weights]
    with _reading(path, "weights"), zipfile.ZipFile(path) as archive:
        config = _read_json(archive)
        if not isinstance(config, dict) or config.get("format") not in (WEIGHTS_FORMAT,
                                                                      FILE_FORMAT):
            raise ModelFileError("not a fastlstm weights or model file")
        _check_entries(archive, len(expected))
        entries = [_weight_entry(archive, i, shape) for i, shape in enumerate(expected)]
        arrays = [_read_weight(archive, i, entry) for i, entry in enumerate(entries)]
    for weight, array in zip(model.weights, arrays):
        weight[...] = array


@contextlib.contextmanager
def _reading(path, kind):
    """Turn what reading a `kind` ("model", "weights") file at `path` can
    raise into FileNotFoundError or a ValueError that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise FileNotFoundError(f"no {kind} file at {path}") from None
    except ModelFileError as e:
        raise ValueError(f"{path}: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise ValueError(f"{path} is not a readable fastlstm {kind} file "
                         f"({type(e).__name__}: {e})") from None


def _compile_config(model):
    if model.optimizer is None:
        return None
    return {"optimizer": serialization.serialize(model.optimizer),
            "loss": serialization.serialize(model.loss), "metrics": list(model.metrics)}


def load_model(path, custom_objects=None, compile=True, **unsupported):
    """Load a model written by ``Sequential.save``.

    Parameters
    ----------
    path : str or path-like
    custom_objects : dict, optional
        name -> class for layers, losses and optimizers of your own that are
        not registered in this process (see fastlstm.serialization).
    compile : bool
        Restore the optimizer, loss and metrics. With False the model comes
        back with its weights only, as in Keras; call ``compile`` to train.

    Returns
    -------
    Sequential
        With ``model.metadata``, the JSON saved with it (or None).

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    ValueError
        The file is corrupt, truncated, foreign, or describes something
        this fastlstm cannot or will not build; the message says what.
    """
    from .models import Sequential

    refuse_unsupported("load_model", unsupported)
    with _reading(path, "model"):
        try:
            with zipfile.ZipFile(path) as archive:
                config = _read_config(archive)
                model, input_shape = _assemble(config["model"], Sequential, custom_objects)
                expected = _expected_weight_shapes(model.layers, input_shape)
                _check_entries(archive, len(expected))
                entries = [_weight_entry(archive, i, shape) for i, shape in enumerate(expected)]
                model.build(input_shape)
                for i, (weight, entry) in enumerate(zip(model.weights, entries)):
                    weight[...] = _read_weight(archive, i, entry)
            if compile and config.get("compile"):
                _restore_compile(model, config["compile"], custom_objects,
                                 config["format_version"])
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelFileError(f"the model description is damaged "
                                 f"({type(e).__name__}: {e})") from None
    model.metadata = config.get("metadata")
    return model


def checked_zip_entry(archive, name, error, missing, inflating):
    """The ZipInfo of `name` in the zipfile `archive`, refusing a missing
    entry or one that inflates suspiciously (more than MAX_INFLATION_RATIO
    times its stored size) with `error`: its message is `missing`, or
    `inflating` followed by the sizes."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise error(missing) from None
    if (info.compress_type != zipfile.ZIP_STORED
            and info.file_size > MAX_INFLATION_RATIO * max(info.compress_size, 4096)):
        raise error(f"{inflating} would inflate {info.compress_size:,} bytes to "
                    f"{info.file_size:,}; refused")
    return info


def _entry(archive, name):
    return checked_zip_entry(archive, name, ModelFileError, f"the archive has no entry {name!r}",
                             f"entry {name!r}")


def _read_header(handle, name):
    """(shape, fortran_order, dtype) from a .npy header, without reading data."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(handle, max_header_size=10000)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(handle, max_header_size=10000)
    except ValueError as e:
        raise ModelFileError(f"entry {name!r} is not a NumPy array ({e})") from None
    raise ModelFileError(f"entry {name!r} has .npy format version {version}")


def _read_config(archive):
    config = _read_json(archive)
    if not isinstance(config, dict) or config.get("format") != FILE_FORMAT:
        raise ModelFileError("not a fastlstm model file")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(f"model format version {config.get('format_version')!r}; this "
                             f"fastlstm reads versions {list(READABLE_VERSIONS)}")
    if not isinstance(config.get("model"), dict):
        raise ModelFileError("the config has no model description")
    return config


def _read_json(archive):
    """The JSON document of the archive's config entry, bounded in size."""
    info = _entry(archive, "config.npy")
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"the config entry holds {info.file_size:,} bytes; "
                             f"at most {MAX_CONFIG_BYTES:,} are read")
    with archive.open(info) as handle:
        shape, _, dtype = _read_header(handle, "config.npy")
        if dtype != np.uint8 or len(shape) != 1:
            raise ModelFileError("the config entry is not a 1-D uint8 array")
        raw = handle.read(shape[0])
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"the config is not valid JSON ({type(e).__name__})") from None


def _assemble(spec, sequential, custom_objects):
    """The model with its layers, unbuilt, and the input shape to build it for."""
    entries = spec["layers"]
    if not isinstance(entries, list) or not entries:
        raise ModelFileError("the model description has no layers")
    name = spec.get("name", "sequential")
    if not isinstance(name, str):
        raise ModelFileError("the model's name is not a string")
    model = sequential(name=name)
    for entry in entries:
        model.add(serialization.deserialize("layer", entry, custom_objects, base=Layer))
    return model, checked_sample_shape(spec["input_shape"])


def _expected_weight_shapes(layers, input_shape):
    """Every weight's shape, layer by layer, computed without allocating."""
    shapes, sample = [], input_shape
    for layer in layers:
        layer_shapes = [tuple(s) for s in layer.weight_shapes(sample)]
        check_weight_sizes(layer, layer_shapes)
        shapes += layer_shapes
        sample = layer.compute_output_shape(sample)
    return shapes


def _check_entries(archive, n_weights):
    expected = {"config.npy"} | {f"weight_{i}.npy" for i in range(n_weights)}
    unexpected = sorted(set(archive.namelist()) - expected)
    if unexpected:
        raise ModelFileError(f"the archive holds entries the model does not use: "
                             f"{unexpected[:5]}")


def _weight_entry(archive, i, shape):
    """The ZipInfo of weight i, its header and stored size checked against `shape`."""
    name = f"weight_{i}.npy"
    info = _entry(archive, name)
    with archive.open(info) as handle:
        stored_shape, _, dtype = _read_header(handle, name)
        header_bytes = handle.tell()
    if dtype.kind != "f" or dtype.hasobject:
        raise ModelFileError(f"weight {i} has dtype {dtype}; a real floating dtype is required")
    if tuple(stored_shape) != tuple(shape):
        raise ModelFileError(f"weight {i} has shape {tuple(stored_shape)}; the model described "
                             f"needs {tuple(shape)}")
    data_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.file_size != header_bytes + data_bytes:
        raise ModelFileError(f"weight {i} holds {info.file_size - header_bytes:,} bytes of "
                             f"data; shape {tuple(shape)} of {dtype} needs {data_bytes:,}")
    return info


def _read_weight(archive, i, info):
    with archive.open(info) as handle:
        array = np.lib.format.read_array(handle, allow_pickle=False)
    with np.errstate(over="ignore"):  # too large for float32: inf, refused here
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ModelFileError(f"weight {i} contains NaN or infinity (or a value beyond "
                             "float32's range)")
    return array


def _restore_compile(model, compiled, custom_objects, version):
    if version == 1:
        # The first format wrote the optimizer as {"name": class, **config}
        # and the loss by name.
        options = dict(compiled["optimizer"])
        optimizer = {"class": options.pop("name"), "config": options}
        loss = losses.get(compiled["loss"])
    else:
        optimizer = compiled["optimizer"]
        loss = serialization.deserialize("loss", compiled["loss"], custom_objects,
                                         base=losses.Loss)
    optimizer = serialization.deserialize("optimizer", optimizer, custom_objects,
                                          base=optimizers.Optimizer)
    names = compiled.get("metrics") or []
    if not isinstance(names, list):
        raise ModelFileError("the compiled metrics are not a list of names")
    model.compile(optimizer, loss, [metrics.canonical_name(m) for m in names])

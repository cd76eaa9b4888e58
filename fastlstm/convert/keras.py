"""Keras models in and out: ``.keras`` files, legacy ``.h5`` files and live objects.

``from_keras`` reads a Keras 3 ``.keras`` file (a zip of ``config.json``,
``metadata.json`` and ``model.weights.h5``), a legacy HDF5 model file
(``model_config`` attribute and ``model_weights`` group, as written by
Keras 2 and by Keras 3's ``model.save("x.h5")``), or a built ``keras.Model``
(through its ``get_config()`` and its layers' ``get_weights()``). The
model must be a Sequential, or a Functional model whose layers form one
chain from its input to its output, of the layers in
fastlstm.convert._keras_layers. ``to_keras`` writes a ``.keras`` file that
Keras 3 loads with ``keras.saving.load_model``.

Keras is never imported. The HDF5 parts need h5py (``pip install
"fastlstm[keras]"``), imported when first needed.

Reading trusts nothing in the file. The JSON is bounded in size and
nesting; layers are looked up by class name among Keras' built-in layers,
never imported, and their options checked one by one (an option fastlstm
cannot express is refused by name, never dropped); the whole model is
assembled without weights, and each weight's shape, type and storage are
checked against what that model needs before its data is read (see
fastlstm.convert._h5). Compile settings (optimizer, loss) are not carried
over in either direction.
"""
import contextlib
import io
import json
import os
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from .._version import __version__
from ..layers import Input, check_weight_sizes
from ..models import Sequential
from ..saving import checked_zip_entry
from . import _h5, files
from ._keras_layers import ZEROS, input_entry, read_layer, write_layer
from ._keras_models import model_chain, storage_names
from ._registry import ConversionError, UnsupportedLayerError

__all__ = ["from_keras", "to_keras"]

CONFIG_ENTRY = "config.json"
METADATA_ENTRY = "metadata.json"
WEIGHTS_ENTRY = "model.weights.h5"
MAX_CONFIG_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64
# At most this many weights per layer are read from a legacy file.
MAX_WEIGHTS_PER_LAYER = 64
# The Keras version whose loader the written files were checked against.
KERAS_FORMAT_VERSION = "3.15.1"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


class Part(NamedTuple):
    """A converted layer and where its weights come from."""

    keras_name: str     # the Keras layer's name (its group in a legacy .h5 file)
    storage: str        # its group below "layers/" in a .keras weights file
    variables: list     # its variables' paths below that group (ZEROS: not stored)
    shapes: list        # the shapes fastlstm needs, in get_weights() order


# ------------------------------------------------------------ bounded JSON

def _json_depth(value):
    """The nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, (list, tuple)):
            deepest = max(deepest, depth + 1)
            if depth + 1 > MAX_JSON_DEPTH:
                break
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _checked_depth(value, what):
    if _json_depth(value) > MAX_JSON_DEPTH:
        raise ConversionError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels; refused")
    return value


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _as_json(config, what):
    """A live object's config as it would read from a file: tuples become
    lists, NumPy scalars numbers; anything else that is not JSON is refused."""
    try:
        text = json.dumps(config, default=_json_scalar)
    except (TypeError, ValueError, RecursionError) as e:
        raise ConversionError(f"{what} is not JSON ({e})") from None
    return _parse_json(text, what)


def _parse_json(text, what):
    """The JSON document `text` (str or bytes), bounded in size and nesting."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConversionError(f"{what} holds {len(text):,} bytes; at most "
                              f"{MAX_CONFIG_BYTES:,} are read")
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConversionError(f"{what} is not valid JSON ({type(e).__name__})") from None
    return _checked_depth(value, what)


# ------------------------------------------------------------ assembling

def _assemble(description, what):
    """The fastlstm model (unbuilt) a Keras model config describes, its
    input shape, and each weighted layer's Part."""
    try:
        name, chain = model_chain(description, what)
    except (TypeError, AttributeError, KeyError, IndexError) as e:
        raise ConversionError(f"{what}: the model config is malformed "
                              f"({type(e).__name__}: {e})") from None
    model = Sequential(name=name)
    parts, sample = [], None
    for position, keras_layer in enumerate(chain):
        try:
            layer, variables = read_layer(keras_layer.entry)
        except ConversionError as e:  # the same error, naming the file too
            raise type(e)(f"{what}: {e}") from None
        keras_name = keras_layer.entry["config"].get("name")
        if isinstance(layer, Input):
            if position:
                raise UnsupportedLayerError(f"{what}: an InputLayer inside the chain")
            model.add(layer)
            sample = layer.shape
            continue
        try:
            model.add(layer)
            shapes = [tuple(s) for s in layer.weight_shapes(sample)]
            check_weight_sizes(layer, shapes)
            sample = tuple(layer.compute_output_shape(sample))
        except (TypeError, ValueError) as e:
            raise UnsupportedLayerError(f"{what}: Keras layer {keras_name!r} "
                                        f"({keras_layer.entry['class_name']}): {e}") from None
        if len(shapes) != len(variables):
            raise ConversionError(f"{what}: Keras layer {keras_name!r} has {len(variables)} "
                                  f"variables where fastlstm's layer has {len(shapes)} weights")
        if shapes:
            parts.append(Part(keras_name, keras_layer.storage, variables, shapes))
    if not model.layers:
        raise ConversionError(f"{what}: the model has no layers after its input")
    return model, parts


def _finish(model, arrays):
    model.build()
    model.set_weights(arrays)
    return model


# ------------------------------------------------------------ weight sources

def _stored_count(part):
    """How many of the part's weights Keras stores (not ZEROS)."""
    return sum(variable is not ZEROS for variable in part.variables)


def _with_zeros(part, stored):
    """The part's weights: the `stored` arrays in order, zeros where Keras
    stores none."""
    stored = iter(stored)
    return [np.zeros(shape, np.float32) if variable is ZEROS else next(stored)
            for variable, shape in zip(part.variables, part.shapes)]


def _archive_weights(h5, parts, what):
    """The weights of `parts` from a .keras weights file (its root `h5`)."""
    layers = _h5.member(h5, "layers", what)
    return [np.zeros(shape, np.float32) if variable is ZEROS else
            _h5.read_weight(layers, f"{part.storage}/{variable}", shape,
                            f"{what}: weight {variable} of Keras layer {part.keras_name!r}")
            for part in parts for variable, shape in zip(part.variables, part.shapes)]


def _legacy_weights(group, parts, what):
    """The weights of `parts` from a legacy file's model_weights `group`:
    each layer's group lists its datasets in its weight_names attribute."""
    arrays = []
    for part in parts:
        layer_group = _h5.member(group, part.keras_name, what)
        names = _h5.read_name_list(layer_group, "weight_names", MAX_WEIGHTS_PER_LAYER, what)
        if len(names) != _stored_count(part):
            raise ConversionError(f"{what}: Keras layer {part.keras_name!r} stores "
                                  f"{len(names)} weights; its config describes "
                                  f"{_stored_count(part)}")
        shapes = [shape for variable, shape in zip(part.variables, part.shapes)
                  if variable is not ZEROS]
        arrays += _with_zeros(part, [
            _h5.read_weight(layer_group, name, shape,
                            f"{what}: weight {name!r} of Keras layer {part.keras_name!r}")
            for name, shape in zip(names, shapes)])
    return arrays


def _live_weights(keras_model, parts, what):
    """The weights of `parts` from a live Keras model's layers."""
    by_name = {getattr(layer, "name", None): layer for layer in keras_model.layers}
    arrays = []
    for part in parts:
        if part.keras_name not in by_name:
            raise ConversionError(f"{what}: the model has no layer {part.keras_name!r}")
        values = by_name[part.keras_name].get_weights()
        if len(values) != _stored_count(part):
            raise ConversionError(f"{what}: Keras layer {part.keras_name!r} has {len(values)} "
                                  f"weights; its config describes {_stored_count(part)} (is "
                                  "the model built?)")
        shapes = [shape for variable, shape in zip(part.variables, part.shapes)
                  if variable is not ZEROS]
        stored = []
        for i, (value, shape) in enumerate(zip(values, shapes)):
            array = np.asarray(value)
            if array.dtype.kind != "f" or array.shape != tuple(shape):
                raise ConversionError(f"{what}: weight {i} of Keras layer "
                                      f"{part.keras_name!r} is {array.dtype} {array.shape}; "
                                      f"float {tuple(shape)} is needed")
            stored.append(array.astype(np.float32))
        arrays += _with_zeros(part, stored)
    return arrays


# ------------------------------------------------------------ reading

def _zip_member(archive, name, what):
    """The ZipInfo of `name`, refusing one that inflates suspiciously."""
    return checked_zip_entry(archive, name, ConversionError, f"{what} has no {name}",
                             f"{what}: {name}")


def _read_archive(path, what):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise ConversionError(f"{what} is not a readable .keras archive ({e})") from None
    with archive:
        info = _zip_member(archive, CONFIG_ENTRY, what)
        if info.file_size > MAX_CONFIG_BYTES:
            raise ConversionError(f"{what}: {CONFIG_ENTRY} holds {info.file_size:,} bytes; at "
                                  f"most {MAX_CONFIG_BYTES:,} are read")
        with archive.open(info) as handle:
            description = _parse_json(handle.read(MAX_CONFIG_BYTES + 1),
                                      f"{what}: {CONFIG_ENTRY}")
        model, parts = _assemble(description, what)
        names = set(archive.namelist())
        if WEIGHTS_ENTRY not in names and "model.weights.npz" in names:
            raise ConversionError(f"{what} keeps its weights in model.weights.npz, whose "
                                  "entries are pickled objects; fastlstm does not unpickle. "
                                  "Save the model with Keras' default weights format")
        with archive.open(_zip_member(archive, WEIGHTS_ENTRY, what)) as handle, \
                _h5.open_file(handle, f"{what}: {WEIGHTS_ENTRY}") as h5:
            arrays = _archive_weights(h5, parts, f"{what}: {WEIGHTS_ENTRY}")
    return _finish(model, arrays)


def _read_legacy(path, what):
    with _h5.open_file(path, what) as h5:
        text = _h5.read_text_attribute(h5, "model_config", MAX_CONFIG_BYTES, what)
        if text is None:
            raise ConversionError(f"{what} holds no model_config: it is a weights file "
                                  "(model.save_weights); save the whole model with "
                                  "model.save()")
        model, parts = _assemble(_parse_json(text, f"{what}: model_config"), what)
        group = _h5.member(h5, "model_weights", what) if "model_weights" in h5 else h5
        arrays = _legacy_weights(group, parts, what)
    return _finish(model, arrays)


def _read_live(keras_model):
    what = f"Keras model {getattr(keras_model, 'name', '')!r}"
    try:
        config = keras_model.get_config()
    except Exception as e:  # a subclassed Model's get_config may raise anything
        raise UnsupportedLayerError(f"{what}: get_config() failed ({type(e).__name__}: "
                                    f"{e}); fastlstm converts Sequential and Functional "
                                    "models") from None
    description = {"class_name": type(keras_model).__name__,
                   "config": _as_json(config, f"{what}: get_config()")}
    model, parts = _assemble(description, what)
    return _finish(model, _live_weights(keras_model, parts, what))


@contextlib.contextmanager
def _damage_reported(what):
    """Turn what zipfile, zlib and HDF5 raise on a damaged file (a bad CRC,
    a broken B-tree, an address past the end...) into a ConversionError."""
    try:
        yield
    except ConversionError:
        raise
    except (OSError, EOFError, KeyError, RuntimeError, NotImplementedError, ValueError,
            zipfile.BadZipFile, zlib.error) as e:
        raise ConversionError(f"{what} is damaged ({type(e).__name__}: {e})") from None


def _is_live_model(obj):
    return all(callable(getattr(obj, method, None)) for method in ("get_config", "get_weights")) \
        and hasattr(obj, "layers")


def from_keras(source):
    """The fastlstm Sequential equivalent to a Keras model.

    Parameters
    ----------
    source : str, path-like or keras.Model
        A ``.keras`` file, a legacy HDF5 model file (told apart by their
        first bytes, whatever the name), or a built Keras Sequential or
        Functional model.

    Returns
    -------
    Sequential
        Built, with the Keras model's weights; predicts what Keras predicts
        (to float32 rounding). Not compiled.

    Raises
    ------
    UnsupportedLayerError
        A layer, an option of one, or a model structure fastlstm cannot
        express; the message names it.
    ConversionError
        A damaged, foreign or hostile file, or weights that do not fit the
        model the config describes.
    ImportError
        A file whose HDF5 part needs h5py, which is missing.
    FileNotFoundError
    """
    if _is_live_model(source):
        return _read_live(source)
    try:
        path = os.fspath(source)
    except TypeError:
        raise TypeError(f"from_keras takes a file path or a keras.Model, got "
                        f"{type(source).__name__}") from None
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise FileNotFoundError(f"no Keras model file at {path}") from None
    what = str(path)
    if head[:4] in ZIP_SIGNATURES:
        with _damage_reported(what):
            return _read_archive(path, what)
    if _h5.is_hdf5(head):
        with _damage_reported(what):
            return _read_legacy(path, what)
    raise ConversionError(f"{what} is neither a .keras archive (zip) nor a Keras HDF5 (.h5) "
                          "model file")


# ------------------------------------------------------------ writing

def _with_batch_size(value, batch_size):
    """`value` (a layer entry, or part of one) with `batch_size` as the batch
    axis of every build_config's input shape: Keras builds a stateful layer
    for that batch size only."""
    if isinstance(value, list):
        return [_with_batch_size(item, batch_size) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _with_batch_size(item, batch_size) for key, item in value.items()}
    shape = (value.get("build_config") or {}).get("input_shape")
    if shape:
        value["build_config"] = {**value["build_config"], "input_shape": [batch_size, *shape[1:]]}
    return value


def _keras_config(model, entries, batch_size):
    batch_shape = [batch_size, *model.input_shape]
    entries = [_with_batch_size(entry, batch_size) for entry in entries]
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": model.name, "trainable": True, "dtype": "float32",
                       "layers": [input_entry(model.input_shape, batch_size,
                                              {layer.name for layer in model.layers}),
                                  *entries],
                       "build_input_shape": batch_shape},
            "registered_name": None, "build_config": {"input_shape": batch_shape}}


def _weights_file(model, written):
    """The bytes of a .keras weights file holding `model`'s layers, each
    written as (entry, variable paths)."""
    h5py = _h5.require_h5py()
    buffer = io.BytesIO()
    storage = storage_names([entry for entry, _ in written])
    with h5py.File(buffer, "w") as h5:
        h5.create_group("vars").attrs["name"] = model.name
        for layer, name, (_, variables) in zip(model.layers, storage, written):
            group = h5.create_group(f"layers/{name}")
            group.create_group("vars").attrs["name"] = layer.name
            for path, weight in zip(variables, layer.weights):
                group.create_dataset(path, data=weight, track_times=False)
    return buffer.getvalue()


def _zip_entry(name):
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.compress_type = zipfile.ZIP_STORED
    return info


def to_keras(model, path, *, batch_size=None):
    """Write `model` as a ``.keras`` file that Keras 3 loads
    (``keras.saving.load_model``) and predicts with as fastlstm does.

    Parameters
    ----------
    model : Sequential
        Built. Its compile settings are not written.
    path : str or path-like
    batch_size : int, optional
        The fixed batch size Keras needs for stateful layers (their states
        are per sample of a batch); None for a model without them.

    Raises
    ------
    UnsupportedLayerError
        A layer Keras has no form of (a peephole LSTM, a layer class of
        your own); nothing is written then.
    ValueError
        An unbuilt model, or a stateful one without `batch_size`.
    ImportError
        h5py is missing.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"to_keras writes a fastlstm Sequential, got {type(model).__name__}")
    if not model.built:
        model.build()  # from its Input; a ValueError says so when it has none
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
    stateful = [layer.name for layer in model.layers if getattr(layer, "stateful", False)]
    if stateful and batch_size is None:
        raise ValueError(f"layers {stateful} are stateful, and Keras keeps states for a fixed "
                         "batch size: pass batch_size")
    for layer in model.layers:
        if "/" in layer.name:
            raise ValueError(f"layer name {layer.name!r}: Keras refuses names with '/'")
    written = [write_layer(layer) for layer in model.layers]
    config = _keras_config(model, [entry for entry, _ in written],
                           None if batch_size is None else int(batch_size))
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "fastlstm_version": __version__}
    weights = _weights_file(model, written)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(_zip_entry(METADATA_ENTRY), json.dumps(metadata))
        archive.writestr(_zip_entry(CONFIG_ENTRY), json.dumps(config))
        archive.writestr(_zip_entry(WEIGHTS_ENTRY), weights)


files.register(".keras", "Keras 3 model", read=from_keras, write=to_keras)
files.register(".h5", "Keras HDF5 model (legacy)", read=from_keras)

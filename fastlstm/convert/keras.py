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
import io
import json
import os
import re
import zipfile
from typing import NamedTuple

import numpy as np

from .._version import __version__
from ..layers import Input, check_weight_sizes
from ..models import Sequential
from . import _h5, files
from ._keras_layers import input_entry, read_layer, write_layer
from ._registry import ConversionError, UnsupportedLayerError

__all__ = ["from_keras", "to_keras"]

CONFIG_ENTRY = "config.json"
METADATA_ENTRY = "metadata.json"
WEIGHTS_ENTRY = "model.weights.h5"
MAX_CONFIG_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64
# A deflated zip entry this many times smaller than what it inflates to is
# refused as a zip bomb (Keras itself stores entries uncompressed).
MAX_INFLATION_RATIO = 200
# At most this many layers, and weights per layer, are read from a file.
MAX_LAYERS = 10_000
MAX_WEIGHTS_PER_LAYER = 64
# The Keras version whose loader the written files were checked against.
KERAS_FORMAT_VERSION = "3.15.1"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


class KerasLayer(NamedTuple):
    """One layer of a Keras model's chain."""

    entry: dict         # the layer's entry in the model config
    storage: str        # its group below "layers/" in a .keras weights file


class Part(NamedTuple):
    """A converted layer and where its weights come from."""

    keras_name: str     # the Keras layer's name (its group in a legacy .h5 file)
    storage: str        # its group below "layers/" in a .keras weights file
    variables: list     # its variables' paths below that group
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


# ------------------------------------------------------------ the model's chain

def _storage_name(class_name):
    """Keras' snake-case name of a layer class: "SimpleRNN" -> "simple_rnn"."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _storage_names(entries):
    """Each entry's group in a .keras weights file, by position: its class
    in snake case, numbered from the second of a class on ("dense_1")."""
    used, names = {}, []
    for entry in entries:
        base = _storage_name(entry["class_name"])
        count = used.get(base, -1) + 1
        used[base] = count
        names.append(base if count == 0 else f"{base}_{count}")
    return names


def _layer_entries(config, what):
    entries = config.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ConversionError(f"{what}: the model config lists no layers")
    if len(entries) > MAX_LAYERS:
        raise ConversionError(f"{what}: the model has {len(entries):,} layers; at most "
                              f"{MAX_LAYERS:,} are read")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
                or not isinstance(entry.get("config"), dict):
            raise ConversionError(f"{what}: a layer entry must be {{'class_name': str, "
                                  f"'config': {{...}}}}, got {entry!r:.200}")
    return entries


def _with_input_first(entries, declared_shape, what):
    """A Sequential's entries with an InputLayer first: its own, or one made
    from the batch shape the first layer or the model declares. Keras 2
    also wrote that shape into layer configs, where it changes nothing."""
    layers = []
    for entry in entries:
        if entry["class_name"] != "InputLayer":
            config = dict(entry["config"])
            shape = config.pop("batch_input_shape", None)
            if not layers and shape is not None:
                declared_shape = shape
            entry = {**entry, "config": config}
        layers.append(entry)
    if layers[0]["class_name"] == "InputLayer":
        return layers
    if declared_shape is None:
        declared_shape = (layers[0].get("build_config") or {}).get("input_shape")
    if declared_shape is None:
        raise ConversionError(f"{what}: the model declares no input shape (no InputLayer, "
                              "batch_input_shape or build_config); it has not been built")
    synthetic = {"class_name": "InputLayer", "config": {"batch_shape": declared_shape}}
    return [synthetic] + layers


def _sequential_chain(config, what):
    entries = _layer_entries(config, what)
    storage = _storage_names(entries)
    chain = _with_input_first(entries, config.get("build_input_shape"), what)
    storage = ([""] if len(chain) > len(entries) else []) + storage
    return [KerasLayer(entry, name) for entry, name in zip(chain, storage)]


def _tensor_source(tensor, layer, what):
    """The layer name a tensor reference points at, from Keras 3's
    ``{"class_name": "__keras_tensor__", "config": {"keras_history": [...]}}``
    or Keras 2's ``[name, node, index, kwargs]``."""
    if isinstance(tensor, dict):
        history = (tensor.get("config") or {}).get("keras_history")
        kwargs = {}
    elif isinstance(tensor, list) and len(tensor) in (3, 4):
        history, kwargs = tensor[:3], (tensor[3] if len(tensor) == 4 else {})
    else:
        history = kwargs = None
    if not isinstance(history, list) or len(history) != 3 or not isinstance(history[0], str):
        raise UnsupportedLayerError(f"{what}: Keras layer {layer!r} takes an input fastlstm "
                                    f"cannot follow ({tensor!r:.200}); it converts a plain "
                                    "chain of layers")
    if history[1:] != [0, 0]:
        raise UnsupportedLayerError(f"{what}: Keras layer {layer!r} takes output "
                                    f"{history[1:]} of {history[0]!r}; fastlstm converts a "
                                    "plain chain of layers, each called once")
    return history[0], kwargs


def _inbound_source(node, layer, what):
    """The single layer feeding `layer` through its inbound `node`."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        tensors = args if isinstance(args, list) else [args]
    elif isinstance(node, list):  # Keras 2: [[name, node, index, kwargs], ...]
        tensors, kwargs = node, {}
    else:
        tensors, kwargs = [node], {}
    if len(tensors) != 1:
        raise UnsupportedLayerError(f"{what}: Keras layer {layer!r} takes {len(tensors)} "
                                    "inputs; fastlstm converts a plain chain of layers")
    source, tensor_kwargs = _tensor_source(tensors[0], layer, what)
    kwargs = {**(tensor_kwargs or {}), **kwargs} if isinstance(kwargs, dict) else kwargs
    if not isinstance(kwargs, dict):
        raise ConversionError(f"{what}: Keras layer {layer!r} has malformed call arguments")
    for argument, value in kwargs.items():
        if not ((argument == "training" and value in (None, False))
                or (argument == "mask" and value is None)):
            raise UnsupportedLayerError(f"{what}: Keras layer {layer!r} is called with "
                                        f"{argument}={value!r:.100}, which fastlstm's "
                                        "Sequential cannot express")
    return source


def _references(value, what):
    """A Functional config's input_layers or output_layers as layer names."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, list) and v
                                              and isinstance(v[0], str) for v in value):
        raise ConversionError(f"{what}: malformed input_layers or output_layers")
    return [v[0] for v in value]


def _functional_chain(config, what):
    entries = _layer_entries(config, what)
    storage = dict(zip((id(entry) for entry in entries), _storage_names(entries)))
    by_name = {}
    for entry in entries:
        name = entry.get("name", entry["config"].get("name"))
        if not isinstance(name, str) or name in by_name:
            raise ConversionError(f"{what}: layer names must be unique strings, got {name!r}")
        by_name[name] = entry
    inputs = _references(config.get("input_layers"), what)
    outputs = _references(config.get("output_layers"), what)
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(f"{what}: the model has {len(inputs)} input(s) and "
                                    f"{len(outputs)} output(s); fastlstm converts a plain "
                                    "chain of layers, one input to one output")
    source_of = {}
    for name, entry in by_name.items():
        nodes = entry.get("inbound_nodes") or []
        if entry["class_name"] == "InputLayer":
            continue
        if not isinstance(nodes, list) or len(nodes) != 1:
            raise UnsupportedLayerError(f"{what}: Keras layer {name!r} is called "
                                        f"{len(nodes) if isinstance(nodes, list) else '?'} "
                                        "times; fastlstm converts a plain chain of layers, "
                                        "each called once")
        source_of[name] = _inbound_source(nodes[0], name, what)
    chain = [outputs[0]]
    while chain[-1] in source_of and len(chain) <= len(by_name):
        chain.append(source_of[chain[-1]])
    chain.reverse()
    if chain[0] != inputs[0] or len(chain) > len(by_name) or any(n not in by_name for n in chain):
        raise ConversionError(f"{what}: the layers do not lead from the input {inputs[0]!r} "
                              f"to the output {outputs[0]!r}")
    off_chain = sorted(set(by_name) - set(chain))
    if off_chain:
        raise UnsupportedLayerError(f"{what}: layers {off_chain[:5]} lie off the path from "
                                    "input to output; fastlstm converts a plain chain of layers")
    return [KerasLayer(by_name[name], storage[id(by_name[name])]) for name in chain]


def _is_keras_module(module, package):
    """Whether `module` (an entry's "module"; None in legacy configs) is
    Keras' own `package` ("models", "layers"), not a module of someone's."""
    return module in (None, "keras", f"keras.{package}") or (
        isinstance(module, str) and module.startswith(f"keras.src.{package}."))


_MODEL_CHAINS = {"Sequential": _sequential_chain, "Functional": _functional_chain,
                 "Model": _functional_chain}


def _model_chain(description, what):
    """The model's name and its layers from input to output."""
    if not isinstance(description, dict) or not isinstance(description.get("config"), dict):
        raise ConversionError(f"{what}: the model config is not {{'class_name': ..., "
                              "'config': {...}}")
    class_name, module = description.get("class_name"), description.get("module")
    if class_name not in _MODEL_CHAINS or description.get("registered_name") not in (
            None, class_name) or not _is_keras_module(module, "models"):
        raise UnsupportedLayerError(f"{what}: a model of class {class_name!r}; fastlstm "
                                    "converts Keras' Sequential and Functional models")
    config = description["config"]
    name = config.get("name")
    return (name if isinstance(name, str) else "sequential",
            _MODEL_CHAINS[class_name](config, what))


# ------------------------------------------------------------ assembling

def _assemble(description, what):
    """The fastlstm model (unbuilt) a Keras model config describes, its
    input shape, and each weighted layer's Part."""
    name, chain = _model_chain(description, what)
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

def _archive_weights(h5, parts, what):
    """The weights of `parts` from a .keras weights file (its root `h5`)."""
    layers = _h5.member(h5, "layers", what)
    return [_h5.read_weight(layers, f"{part.storage}/{variable}", shape,
                            f"{what}: weight {variable} of Keras layer {part.keras_name!r}")
            for part in parts for variable, shape in zip(part.variables, part.shapes)]


def _legacy_weights(group, parts, what):
    """The weights of `parts` from a legacy file's model_weights `group`:
    each layer's group lists its datasets in its weight_names attribute."""
    arrays = []
    for part in parts:
        layer_group = _h5.member(group, part.keras_name, what)
        names = _h5.read_name_list(layer_group, "weight_names", MAX_WEIGHTS_PER_LAYER, what)
        if len(names) != len(part.shapes):
            raise ConversionError(f"{what}: Keras layer {part.keras_name!r} stores "
                                  f"{len(names)} weights; its config describes "
                                  f"{len(part.shapes)}")
        arrays += [_h5.read_weight(layer_group, name, shape,
                                   f"{what}: weight {name!r} of Keras layer {part.keras_name!r}")
                   for name, shape in zip(names, part.shapes)]
    return arrays


def _live_weights(keras_model, parts, what):
    """The weights of `parts` from a live Keras model's layers."""
    by_name = {getattr(layer, "name", None): layer for layer in keras_model.layers}
    arrays = []
    for part in parts:
        if part.keras_name not in by_name:
            raise ConversionError(f"{what}: the model has no layer {part.keras_name!r}")
        values = by_name[part.keras_name].get_weights()
        if len(values) != len(part.shapes):
            raise ConversionError(f"{what}: Keras layer {part.keras_name!r} has {len(values)} "
                                  f"weights; its config describes {len(part.shapes)} (is the "
                                  "model built?)")
        for i, (value, shape) in enumerate(zip(values, part.shapes)):
            array = np.asarray(value)
            if array.dtype.kind != "f" or array.shape != tuple(shape):
                raise ConversionError(f"{what}: weight {i} of Keras layer "
                                      f"{part.keras_name!r} is {array.dtype} {array.shape}; "
                                      f"float {tuple(shape)} is needed")
            arrays.append(array.astype(np.float32))
    return arrays


# ------------------------------------------------------------ reading

def _zip_member(archive, name, what):
    """The ZipInfo of `name`, refusing one that inflates suspiciously."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ConversionError(f"{what} has no {name}") from None
    if (info.compress_type != zipfile.ZIP_STORED
            and info.file_size > MAX_INFLATION_RATIO * max(info.compress_size, 4096)):
        raise ConversionError(f"{what}: {name} would inflate {info.compress_size:,} bytes to "
                              f"{info.file_size:,}; refused")
    return info


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
        return _read_archive(path, what)
    if _h5.is_hdf5(head):
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
                       "layers": [input_entry(model.input_shape, batch_size), *entries],
                       "build_input_shape": batch_shape},
            "registered_name": None, "build_config": {"input_shape": batch_shape}}


def _weights_file(model, written):
    """The bytes of a .keras weights file holding `model`'s layers, each
    written as (entry, variable paths)."""
    h5py = _h5.require_h5py()
    buffer = io.BytesIO()
    storage = _storage_names([entry for entry, _ in written])
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

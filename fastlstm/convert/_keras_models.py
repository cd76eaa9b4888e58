"""A Keras model config as the chain of its layers, input to output.

A Sequential config lists its layers in order (Keras 2 also wrote the
input shape into the first one, and up to Keras 2.2 the config was that
list itself). A Functional config lists its layers with the tensors each
was called on; fastlstm takes it when those calls form one chain from the
single input to the single output, each layer called once on the one
before, with no arguments but ``training=False`` and a mask: None, or the
mask of a Masking layer. Keras 3 records that mask as two operations of
their own, ``NotEqual(x, mask_value)`` then ``Any(axis=-1)`` on the
Masking's input ``x``; they compute what fastlstm's Masking computes, so
they are dropped from the chain, and a layer may take ``mask=`` their
result.

Each layer also gets its group in a ``.keras`` weights file: Keras names
those groups after the layer's class in snake case, numbered in config
order ("lstm", "lstm_1"), not after the layer's name.
"""
import re
from typing import NamedTuple

from ._registry import ConversionError, UnsupportedLayerError

__all__ = ["KerasLayer", "model_chain", "storage_names", "MAX_LAYERS"]

# At most this many layers are read from a file.
MAX_LAYERS = 10_000


class KerasLayer(NamedTuple):
    """One layer of a Keras model's chain."""

    entry: dict         # the layer's entry in the model config
    storage: str        # its group below "layers/" in a .keras weights file


def _storage_name(class_name):
    """Keras' snake-case name of a layer class: "SimpleRNN" -> "simple_rnn"."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def storage_names(entries):
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
    storage = storage_names(entries)
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


def _node_arguments(node):
    """The positional arguments and keyword arguments of an inbound `node`."""
    if isinstance(node, dict):  # Keras 3: {"args": [tensor], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        return (args if isinstance(args, list) else [args]), kwargs
    if isinstance(node, list):  # Keras 2: [[name, node, index, kwargs], ...]
        return node, {}
    return [node], {}


def _is_mask_source(value, masks, layer, what):
    """Whether a mask= argument is the mask of a Masking layer (one of the
    `masks`, names of Any operations)."""
    if value is None:
        return True
    if not masks or not isinstance(value, dict):
        return False
    try:
        source, _ = _tensor_source(value, layer, what)
    except UnsupportedLayerError:
        return False
    return source in masks


def _inbound_source(node, layer, what, masks=()):
    """The single layer feeding `layer` through its inbound `node`; `masks`
    are the names of the operations computing a Masking's mask, which the
    layer may take as mask=."""
    tensors, kwargs = _node_arguments(node)
    if len(tensors) != 1:
        raise UnsupportedLayerError(f"{what}: Keras layer {layer!r} takes {len(tensors)} "
                                    "inputs; fastlstm converts a plain chain of layers")
    source, tensor_kwargs = _tensor_source(tensors[0], layer, what)
    if not isinstance(kwargs, dict) or not isinstance(tensor_kwargs, dict):
        raise ConversionError(f"{what}: Keras layer {layer!r} has malformed call arguments")
    kwargs = {**tensor_kwargs, **kwargs}
    for argument, value in kwargs.items():
        if not ((argument == "training" and value in (None, False))
                or (argument == "mask" and _is_mask_source(value, masks, layer, what))):
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


def _single_node(entry, name, what):
    nodes = entry.get("inbound_nodes") or []
    if not isinstance(nodes, list) or len(nodes) != 1:
        raise UnsupportedLayerError(f"{what}: Keras layer {name!r} is called "
                                    f"{len(nodes) if isinstance(nodes, list) else '?'} "
                                    "times; fastlstm converts a plain chain of layers, "
                                    "each called once")
    return nodes[0]


def _is_keras_operation(entry, class_name):
    """Whether `entry` is Keras' own operation `class_name` (legacy .h5
    configs name no module)."""
    module = entry.get("module")
    return (entry["class_name"] == class_name
            and entry.get("registered_name") in (None, class_name)
            and (module is None or isinstance(module, str)
                 and module.startswith("keras.src.ops.")))


def _operation_input(entry, name, what, constants):
    """The layer name an operation entry takes as its one tensor, followed
    by `constants` (its other positional arguments), or None when it
    takes anything else."""
    args, kwargs = _node_arguments(_single_node(entry, name, what))
    if kwargs or len(args) != 1 + len(constants):
        return None
    for value, constant in zip(args[1:], constants):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != constant:
            return None
    try:
        return _tensor_source(args[0], name, what)[0]
    except UnsupportedLayerError:
        return None


def _masking_operations(by_name, what):
    """The NotEqual and Any operations by which Keras 3 records the masks of
    Masking layers: (the names of both, the names of the Any operations)."""
    masking_inputs = {}
    for name, entry in by_name.items():
        if entry["class_name"] == "Masking":
            mask_value = entry["config"].get("mask_value", 0.0)
            source = _operation_input(entry, name, what, ())
            if source is not None and isinstance(mask_value, (int, float)) \
                    and not isinstance(mask_value, bool):
                masking_inputs.setdefault(source, set()).add(mask_value)
    not_equal = {}
    for name, entry in by_name.items():
        if _is_keras_operation(entry, "NotEqual"):
            args, _ = _node_arguments(_single_node(entry, name, what))
            constant = args[1] if len(args) == 2 else None
            source = _operation_input(entry, name, what, (constant,))
            if source in masking_inputs and constant in masking_inputs[source]:
                not_equal[name] = source
    masks = set()
    for name, entry in by_name.items():
        if _is_keras_operation(entry, "Any") \
                and entry["config"].get("axis") in (-1, [-1]) \
                and entry["config"].get("keepdims", False) is False \
                and _operation_input(entry, name, what, ()) in not_equal:
            masks.add(name)
    used = {_operation_input(by_name[name], name, what, ()) for name in masks}
    return used | masks, masks


def _functional_chain(config, what):
    entries = _layer_entries(config, what)
    storage = dict(zip((id(entry) for entry in entries), storage_names(entries)))
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
    operations, masks = _masking_operations(by_name, what)
    by_name = {name: entry for name, entry in by_name.items() if name not in operations}
    source_of = {}
    for name, entry in by_name.items():
        if entry["class_name"] == "InputLayer":
            continue
        source_of[name] = _inbound_source(_single_node(entry, name, what), name, what, masks)
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


def model_chain(description, what):
    """The model's name and its layers from input to output."""
    if isinstance(description, dict) and description.get("class_name") == "Sequential" \
            and isinstance(description.get("config"), list):
        # Keras up to 2.2 wrote a Sequential's config as the list of its layers.
        description = {**description, "config": {"layers": description["config"]}}
    if not isinstance(description, dict) or not isinstance(description.get("config"), dict):
        raise ConversionError(f"{what}: the model config is not {{'class_name': ..., "
                              "'config': {...}}")
    class_name, module = description.get("class_name"), description.get("module")
    if not isinstance(class_name, str) or class_name not in _MODEL_CHAINS \
            or description.get("registered_name") not in (None, class_name) \
            or not _is_keras_module(module, "models"):
        raise UnsupportedLayerError(f"{what}: a model of class {class_name!r}; fastlstm "
                                    "converts Keras' Sequential and Functional models")
    config = description["config"]
    name = config.get("name")
    return (name if isinstance(name, str) else "sequential",
            _MODEL_CHAINS[class_name](config, what))

"""fastlstm models to and from PyTorch: modules, state_dicts and .pt files.

Weights. fastlstm keeps Keras' layouts (see fastlstm.convert._gates):
PyTorch's ``weight_ih_l{k}`` (gates * units, features) is the transpose of
a kernel with its gate blocks reordered (GRU r, z, n against z, r, h; LSTM
i, f, g, o is fastlstm's i, f, c, o). PyTorch's GRU is Keras'
``reset_after=True``: its two biases are the rows of fastlstm's (2, 3 * units)
bias. An LSTM or simple RNN has one bias in fastlstm: reading adds
PyTorch's two, writing puts it in ``bias_ih`` and zeros in ``bias_hh``.

What a Linear after a recurrent module reads is not in the weights, so
``from_torch`` asks (``read``):

- ``"last_step"``: ``linear(out[:, -1])`` (``out[-1]`` without batch_first),
  the usual PyTorch code. Unidirectional, that is the final state:
  fastlstm's ``return_sequences=False``. Bidirectional, the backward half of
  the last step is the backward pass after a single step, which no fastlstm
  layer returns: refused (UnsupportedLayerError).
- ``"final_state"``: ``linear(h_n[-1])``, or for a bidirectional module
  ``linear(torch.cat([h_n[-2], h_n[-1]], dim=1))``: ``return_sequences=False``
  (Bidirectional with merge_mode "concat").
- ``"all_steps"``: ``linear(out)``: ``return_sequences=True`` and a Dense
  over every step.

fastlstm models always take (batch, time, features), whatever a module's
``batch_first``.

The .pt checkpoint ``write_torch_file`` writes is a dict of plain data and
tensors, read by ``torch.load(path, weights_only=True)``:

- ``"format"``: ``"fastlstm-torch"``, ``"format_version"``: 1;
- ``"state_dict"``: ``to_torch(model).state_dict()``, so
  ``to_torch(model).load_state_dict(checkpoint["state_dict"])`` works;
- ``"fastlstm_model"``: ``model.get_config()`` (lists, dicts, strings,
  numbers), which ``read_torch_file`` rebuilds the model from.

``read_torch_file`` also reads a bare state_dict whose structure can be
inferred, or ``{"state_dict": ..., "torch_layers": [...], "read": ...,
"nonlinearity": ...}`` with the arguments of ``from_torch``.
"""
import functools
import pickle
import re
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .. import layers, serialization
from ..models import Sequential
from . import _gates, files
from ._registry import (ConversionError, Converters, UnsupportedLayerError,
                        refuse_stateful)

__all__ = ["READ_MODES", "from_torch", "to_torch", "read_torch_file", "write_torch_file"]

READ_MODES = ("last_step", "final_state", "all_steps")
CHECKPOINT_FORMAT = "fastlstm-torch"
CHECKPOINT_VERSION = 1

# fastlstm layer class -> the PyTorch modules that compute it; PyTorch
# module type -> the fastlstm layers that compute it.
converters = Converters("PyTorch")
# fastlstm layer class name -> its weights from the modules ``to_torch`` made.
_checkpoint_readers = Converters("fastlstm's PyTorch checkpoint")

_RECURRENT_TYPES = ("LSTM", "GRU", "RNN")
_ACTIVATION_MODULES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
# The fields of a module's plain description, by PyTorch type, with defaults.
_DESCRIPTION_FIELDS = {
    "LSTM": {"input_size": None, "hidden_size": None, "num_layers": 1, "bias": True,
             "bidirectional": False, "dropout": 0.0, "proj_size": 0, "batch_first": False},
    "GRU": {"input_size": None, "hidden_size": None, "num_layers": 1, "bias": True,
            "bidirectional": False, "dropout": 0.0, "batch_first": False},
    "RNN": {"input_size": None, "hidden_size": None, "num_layers": 1, "bias": True,
            "bidirectional": False, "dropout": 0.0, "batch_first": False,
            "nonlinearity": None},
    "Linear": {"in_features": None, "out_features": None, "bias": True},
    "Dropout": {"p": 0.5},
    "ReLU": {}, "Tanh": {}, "Sigmoid": {}, "Identity": {},
}


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError('PyTorch conversion needs PyTorch: pip install "fastlstm[torch]" '
                          "(a CPU-only build is enough: add --index-url "
                          "https://download.pytorch.org/whl/cpu)") from None
    return torch


class _Module(NamedTuple):
    """A PyTorch module to build, as plain data."""

    kind: str       # "recurrent" or a torch.nn class name
    options: dict   # constructor arguments
    params: dict    # state_dict name within the module -> float32 array


class _Entry(NamedTuple):
    """A PyTorch module to read: its description, parameters and where it came from."""

    description: dict
    params: dict    # state_dict name within the module -> float32 array
    where: str


# ------------------------------------------------------------------ weights


def _direction_params(layer, suffix):
    """One direction of a fastlstm recurrent layer as PyTorch's parameters
    (``weight_ih_l0{suffix}`` ...)."""
    kind = _gates.cell_kind(layer)
    order = _gates.TORCH_ORDER[kind]
    kernel, recurrent_kernel = layer.weights[0], layer.weights[1]
    params = {f"weight_ih_l0{suffix}": _gates.to_rows(kernel, order),
              f"weight_hh_l0{suffix}": _gates.to_rows(recurrent_kernel, order)}
    if layer.use_bias:
        rows = layer.weights[2].reshape(-1, kernel.shape[1])
        input_bias = rows[0]
        recurrent_bias = rows[1] if len(rows) == 2 else np.zeros_like(input_bias)
        params[f"bias_ih_l0{suffix}"] = _gates.reorder_vector(input_bias, order)
        params[f"bias_hh_l0{suffix}"] = _gates.reorder_vector(recurrent_bias, order)
    return params


def _direction_weights(kind, params, name_suffix, bias):
    """fastlstm's weights of one direction from PyTorch's parameters.

    Parameters
    ----------
    kind : {"LSTM", "GRU", "RNN"}
    params : dict
        PyTorch parameter name -> array, shapes already checked.
    name_suffix : str
        ``"l0"``, ``"l1_reverse"`` ...
    bias : bool
        Whether the module has biases. An LSTM without them gets a zero bias.

    Returns
    -------
    list of ndarray
        kernel (features, gates * units), recurrent_kernel (units, gates *
        units), then the bias unless a GRU or RNN has none.
    """
    order = _gates.TORCH_ORDER[kind]
    weights = [_gates.from_rows(params[f"weight_ih_{name_suffix}"], order),
               _gates.from_rows(params[f"weight_hh_{name_suffix}"], order)]
    if bias:
        input_bias = _gates.restore_vector(params[f"bias_ih_{name_suffix}"], order)
        recurrent_bias = _gates.restore_vector(params[f"bias_hh_{name_suffix}"], order)
        weights.append(np.stack([input_bias, recurrent_bias]) if kind == "GRU"
                       else input_bias + recurrent_bias)
    elif kind == "LSTM":
        weights.append(np.zeros(weights[0].shape[1], np.float32))
    return weights


# ------------------------------------------------------------------ writing


def _recurrent_module(layer, options):
    """The module spec of one fastlstm recurrent layer (one direction)."""
    features = layer.input_shape[-1]
    params = {"rnn." + name: value for name, value in _direction_params(layer, "").items()}
    return _Module("recurrent", {"cell": _gates.cell_kind(layer), "input_size": features,
                                 "hidden_size": layer.units, "bias": layer.use_bias,
                                 "bidirectional": False, "reverse_input": layer.go_backwards,
                                 "return_sequences": layer.return_sequences,
                                 "merge_mode": None, **options}, params)


@converters.writer(layers.LSTM)
def _write_lstm(layer):
    if layer.peephole:
        raise UnsupportedLayerError(f"PyTorch's nn.LSTM has no peepholes: layer {layer.name!r} "
                                    "(LSTM with peephole=True) cannot be written")
    return [_recurrent_module(layer, {})]


@converters.writer(layers.GRU)
def _write_gru(layer):
    if not layer.reset_after:
        raise UnsupportedLayerError(f"PyTorch's nn.GRU applies the reset gate after the "
                                    f"recurrent product: layer {layer.name!r} (GRU with "
                                    "reset_after=False) cannot be written")
    return [_recurrent_module(layer, {})]


@converters.writer(layers.SimpleRNN)
def _write_simple_rnn(layer):
    return [_recurrent_module(layer, {"nonlinearity": layer.activation})]


@converters.writer(layers.Bidirectional)
def _write_bidirectional(layer):
    directions = []
    for direction in (layer.forward_layer, layer.backward_layer):
        (module,) = converters.writer_for(direction)(direction)
        directions.append(module)
    forward, backward = directions
    params = {**forward.params, **{name + "_reverse": value
                                   for name, value in backward.params.items()}}
    # PyTorch's reverse direction runs the input backwards, as the backward
    # layer does; an inner go_backwards reverses the input of both.
    options = {**forward.options, "bidirectional": True,
               "reverse_input": layer.layer.go_backwards, "merge_mode": layer.merge_mode}
    return [_Module("recurrent", options, params)]


@converters.writer(layers.Dense)
def _write_dense(layer):
    params = {"weight": np.ascontiguousarray(layer.weights[0].T)}
    if layer.use_bias:
        params["bias"] = layer.weights[1].copy()
    modules = [_Module("Linear", {"in_features": layer.weights[0].shape[0],
                                  "out_features": layer.units, "bias": layer.use_bias}, params)]
    if layer.activation != "linear":
        modules.append(_Module(_ACTIVATION_MODULES[layer.activation], {}, {}))
    return modules


@converters.writer(layers.TimeDistributed)
def _write_time_distributed(layer):
    return converters.writer_for(layer.layer)(layer.layer)


@converters.writer(layers.Dropout)
def _write_dropout(layer):
    return [_Module("Dropout", {"p": layer.rate}, {})]


def _module_specs(model):
    """The specs of the modules that compute `model`, in order, one list per layer."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastlstm Sequential, got {type(model).__name__}")
    if not model.built:
        model.build()  # from its Input; a ValueError says so when it has none
    refuse_stateful(model, "a PyTorch module", "a module starts each call from the states "
                    "it is given: convert a copy of the model built with stateful=False")
    return [converters.writer_for(layer)(layer) for layer in model.layers]


@functools.lru_cache(maxsize=None)
def _recurrent_block_class(torch):
    """The nn.Module that runs a fastlstm recurrent or Bidirectional layer."""
    merges = {"concat": lambda f, b: torch.cat([f, b], dim=-1),
              "sum": lambda f, b: f + b,
              "mul": lambda f, b: f * b,
              "ave": lambda f, b: (f + b) / 2}

    class RecurrentBlock(torch.nn.Module):
        """A fastlstm recurrent layer: input (batch, time, features), output
        (batch, time, units) with return_sequences, else (batch, units);
        a Bidirectional's two directions merged by its merge_mode."""

        def __init__(self, cell, input_size, hidden_size, bias, bidirectional, reverse_input,
                     return_sequences, merge_mode, nonlinearity=None):
            super().__init__()
            extra = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
            self.rnn = getattr(torch.nn, cell)(input_size, hidden_size, bias=bias,
                                               batch_first=True, bidirectional=bidirectional,
                                               **extra)
            self.hidden_size = hidden_size
            self.reverse_input = reverse_input
            self.return_sequences = return_sequences
            self.merge_mode = merge_mode

        def forward(self, x):
            if self.reverse_input:
                x = torch.flip(x, dims=(1,))
            out, state = self.rnn(x)
            h = state[0] if isinstance(state, tuple) else state
            if not self.rnn.bidirectional:
                return out if self.return_sequences else h[0]
            if self.return_sequences:
                forward, backward = out[..., :self.hidden_size], out[..., self.hidden_size:]
            else:
                forward, backward = h[0], h[1]
            return merges[self.merge_mode](forward, backward)

        def extra_repr(self):
            return (f"reverse_input={self.reverse_input}, "
                    f"return_sequences={self.return_sequences}, merge_mode={self.merge_mode!r}")

    return RecurrentBlock


def _build_module(torch, spec):
    if spec.kind == "recurrent":
        return _recurrent_block_class(torch)(**spec.options)
    return getattr(torch.nn, spec.kind)(**spec.options)


def to_torch(model):
    """An equivalent PyTorch module, in eval mode.

    Parameters
    ----------
    model : fastlstm.Sequential
        Built. Its layers: LSTM (without peepholes), GRU (reset_after=True),
        SimpleRNN, Bidirectional of those (any merge mode), Dense,
        TimeDistributed(Dense), Dropout.

    Returns
    -------
    torch.nn.Sequential
        Input (batch, time, features) float32; ``module(x)`` gives what
        ``model.predict(x)`` gives (from zero states, as after
        ``reset_states()`` for a stateful model). Its ``state_dict()`` is
        what ``write_torch_file`` stores. A recurrent layer's dropout and
        recurrent_dropout act in training only and are not carried.

    Raises
    ------
    UnsupportedLayerError
        A layer or option PyTorch cannot express (Masking, a peephole LSTM,
        GRU reset_after=False), named.
    """
    specs = [spec for layer_specs in _module_specs(model) for spec in layer_specs]
    torch = _import_torch()
    modules = []
    for spec in specs:
        module = _build_module(torch, spec)
        module.load_state_dict({name: torch.from_numpy(np.array(value, np.float32))
                                for name, value in spec.params.items()})
        modules.append(module)
    return torch.nn.Sequential(*modules).eval()


# ------------------------------------------------------------------ reading


def _float_array(value, where):
    """`value` (a tensor or array) as a new float32 array, or a ConversionError."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):
        if not value.is_floating_point():
            raise ConversionError(f"{where} holds a tensor of dtype {value.dtype}, not floats")
        value = value.detach().cpu().float().numpy()
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ConversionError(f"{where} must be a float array or tensor, got "
                              f"{type(value).__name__} of dtype {array.dtype}")
    return np.array(array, dtype=np.float32)


def _checked_description(description, where):
    """A module description with its defaults filled in, or a ConversionError."""
    if not isinstance(description, Mapping) or not isinstance(description.get("type"), str):
        raise ConversionError(f"{where}: a layer description is a dict with a 'type' (one of "
                              f"{sorted(_DESCRIPTION_FIELDS)}), got {description!r:.200}")
    kind = description["type"]
    fields = _DESCRIPTION_FIELDS.get(kind)
    if fields is None:
        converters.reader_for(kind)  # raises, naming what is readable
    unknown = set(description) - set(fields) - {"type", "prefix"}
    if unknown:
        raise ConversionError(f"{where}: unknown field(s) {sorted(unknown)} for a {kind}; "
                              f"it takes {sorted(fields)}")
    filled = {**fields, **description}
    missing = [name for name, value in filled.items() if value is None and name != "prefix"]
    if missing:
        hint = ("; the nonlinearity of an nn.RNN is not in its weights: give "
                "nonlinearity='tanh' or 'relu'") if "nonlinearity" in missing else ""
        raise ConversionError(f"{where}: the {kind} description needs {missing}{hint}")
    return filled


def _describe_module(module, index):
    """The plain description of a torch.nn module (one of the known types)."""
    kind = type(module).__name__
    if kind not in _DESCRIPTION_FIELDS or not type(module).__module__.startswith("torch.nn"):
        raise UnsupportedLayerError(
            f"module {index} is a {type(module).__module__}.{kind}; fastlstm reads "
            f"torch.nn {', '.join(sorted(_DESCRIPTION_FIELDS))}")
    description = {"type": kind}
    for field in _DESCRIPTION_FIELDS[kind]:
        value = getattr(module, field)
        description[field] = (value is not None) if kind == "Linear" and field == "bias" \
            else value
    return description


def _flattened(torch, modules):
    """The modules, with nn.Sequential and nn.ModuleList opened into their children."""
    for module in modules:
        if type(module) in (torch.nn.Sequential, torch.nn.ModuleList):
            yield from _flattened(torch, module.children())
        else:
            yield module


def _entries_from_modules(modules):
    entries = []
    for index, module in enumerate(modules):
        where = f"module {index} ({type(module).__name__})"
        params = {name: _float_array(value, f"{where} {name}")
                  for name, value in module.state_dict().items()}
        entries.append(_Entry(_checked_description(_describe_module(module, index), where),
                              params, where))
    return entries


def _groups(state_dict):
    """The state_dict's entries grouped by module prefix, in order."""
    groups = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise ConversionError(f"state_dict keys must be strings, got {key!r:.100}")
        prefix, _, name = key.rpartition(".")
        prefix = prefix + "." if prefix else ""
        groups.setdefault(prefix, {})[name] = _float_array(value, f"state_dict[{key!r}]")
    return groups


def _infer_description(prefix, params, nonlinearity):
    """The description of the module whose parameters are `params`, or a ConversionError."""
    names = set(params)
    where = f"state_dict entries {prefix}*"
    if "weight_ih_l0" in names and "weight_hh_l0" in names:
        hh = params["weight_hh_l0"]
        projection = params.get("weight_hr_l0")
        hidden = projection.shape[1] if projection is not None and projection.ndim == 2 \
            else hh.shape[-1]
        gate_rows = hh.shape[0] if hh.ndim == 2 else 0
        kinds = {4: "LSTM", 3: "GRU", 1: "RNN"}
        kind = kinds.get(gate_rows // hidden) if hidden and gate_rows % hidden == 0 else None
        if kind is None:
            raise ConversionError(f"{where}: weight_hh_l0 of shape {hh.shape} fits no LSTM, "
                                  "GRU or RNN")
        description = {"type": kind, "input_size": params["weight_ih_l0"].shape[-1],
                       "hidden_size": hidden,
                       "num_layers": 1 + max(int(n.split("_l")[1].split("_")[0])
                                             for n in names if n.startswith("weight_ih_l")),
                       "bias": "bias_ih_l0" in names,
                       "bidirectional": "weight_ih_l0_reverse" in names}
        if projection is not None:
            description["proj_size"] = projection.shape[0]
        if kind == "RNN":
            description["nonlinearity"] = nonlinearity
        return _checked_description(description, where)
    weight = params.get("weight")
    if names <= {"weight", "bias"} and weight is not None and weight.ndim == 2:
        return {"type": "Linear", "in_features": weight.shape[1],
                "out_features": weight.shape[0], "bias": "bias" in names}
    raise ConversionError(f"{where} ({sorted(names)}) belong to no module fastlstm can "
                          "infer (LSTM, GRU, RNN, Linear); describe the modules with "
                          "layers=[...]")


def _entries_from_state_dict(state_dict, descriptions, nonlinearity):
    groups = _groups(state_dict)
    if descriptions is None:
        return [_Entry(_infer_description(prefix, params, nonlinearity), params,
                       f"state_dict entries {prefix}*") for prefix, params in groups.items()]
    if isinstance(descriptions, (str, bytes, Mapping)) or not hasattr(descriptions, "__iter__"):
        raise TypeError(f"layers must be a list of dicts, got {type(descriptions).__name__}")
    entries, unused = [], list(groups)
    for index, description in enumerate(descriptions):
        where = f"layers[{index}]"
        if isinstance(description, Mapping) and description.get("type") == "RNN" \
                and nonlinearity is not None and "nonlinearity" not in description:
            description = {**description, "nonlinearity": nonlinearity}
        description = _checked_description(description, where)
        takes_params = description["type"] in _RECURRENT_TYPES + ("Linear",)
        prefix = description.get("prefix")
        if takes_params and prefix is None:
            if not unused:
                raise ConversionError(f"{where}: no state_dict entries left for this "
                                      f"{description['type']}")
            prefix = unused[0]
        if takes_params:
            if prefix not in unused:
                raise ConversionError(f"{where}: no unused state_dict entries under prefix "
                                      f"{prefix!r}")
            unused.remove(prefix)
        entries.append(_Entry(description, groups.get(prefix, {}) if takes_params else {},
                              f"{where} ({description['type']}, state_dict entries "
                              f"{prefix or ''}*)"))
    if unused:
        raise ConversionError(f"state_dict entries under {unused} match no described layer")
    return entries


def _check_params(entry, expected):
    """Every parameter present with its expected shape, and nothing else."""
    params = entry.params
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        raise ConversionError(f"{entry.where}: missing parameters {missing}, unexpected "
                              f"{extra}" if missing else
                              f"{entry.where}: unexpected parameters {extra}")
    for name, shape in expected.items():
        if params[name].shape != shape:
            raise ConversionError(f"{entry.where}: {name} has shape {params[name].shape}, "
                                  f"expected {shape}")


_LAYER_BUILDERS = {
    "LSTM": lambda d, units, sequences: layers.LSTM(units, return_sequences=sequences),
    "GRU": lambda d, units, sequences: layers.GRU(units, reset_after=True, use_bias=d["bias"],
                                                  return_sequences=sequences),
    "RNN": lambda d, units, sequences: layers.SimpleRNN(units, activation=d["nonlinearity"],
                                                        use_bias=d["bias"],
                                                        return_sequences=sequences),
}


@converters.reader(*_RECURRENT_TYPES)
def _read_recurrent(entry, stack, read):
    d = entry.description
    kind, units, depth = d["type"], d["hidden_size"], d["num_layers"]
    if d.get("proj_size"):
        raise UnsupportedLayerError(f"{entry.where}: an LSTM with proj_size={d['proj_size']} "
                                    "projects its hidden state; fastlstm's LSTM has no "
                                    "projection")
    if kind == "RNN" and d["nonlinearity"] not in ("tanh", "relu"):
        raise ConversionError(f"{entry.where}: nonlinearity must be 'tanh' or 'relu', got "
                              f"{d['nonlinearity']!r}")
    if not 0.0 <= d["dropout"] < 1.0:
        raise ConversionError(f"{entry.where}: dropout must be in [0, 1), got {d['dropout']!r}")
    directions = ("", "_reverse") if d["bidirectional"] else ("",)
    rows = _gates.GATES[kind] * units
    expected = {}
    for k in range(depth):
        features = d["input_size"] if k == 0 else units * len(directions)
        for s in directions:
            expected[f"weight_ih_l{k}{s}"] = (rows, features)
            expected[f"weight_hh_l{k}{s}"] = (rows, units)
            if d["bias"]:
                expected[f"bias_ih_l{k}{s}"] = (rows,)
                expected[f"bias_hh_l{k}{s}"] = (rows,)
    _check_params(entry, expected)
    for k in range(depth):
        layer_read = read if k == depth - 1 else "all_steps"
        layer = _LAYER_BUILDERS[kind](d, units, layer_read == "all_steps")
        weights = [w for s in directions
                   for w in _direction_weights(kind, entry.params, f"l{k}{s}", d["bias"])]
        if d["bidirectional"]:
            if layer_read == "last_step":
                raise UnsupportedLayerError(
                    f"{entry.where}: read='last_step' of a bidirectional {kind} reads "
                    "out[:, -1], whose backward half is the backward pass after one step; "
                    "fastlstm's Bidirectional returns each direction's final state "
                    "(read='final_state': torch.cat([h_n[-2], h_n[-1]], 1)) or every step "
                    "(read='all_steps')")
            layer = layers.Bidirectional(layer, merge_mode="concat")
        stack.append((layer, weights))
        if d["dropout"] and k < depth - 1:
            stack.append((layers.Dropout(d["dropout"]), []))


@converters.reader("Linear")
def _read_linear(entry, stack, read):
    d = entry.description
    expected = {"weight": (d["out_features"], d["in_features"])}
    if d["bias"]:
        expected["bias"] = (d["out_features"],)
    _check_params(entry, expected)
    weights = [entry.params["weight"].T.copy()]
    if d["bias"]:
        weights.append(entry.params["bias"])
    stack.append((layers.Dense(d["out_features"], use_bias=d["bias"]), weights))


@converters.reader(*_ACTIVATION_MODULES.values())
def _read_activation(entry, stack, read):
    activation = {module: name for name, module in _ACTIVATION_MODULES.items()}[
        entry.description["type"]]
    previous = stack[-1][0] if stack else None
    if type(previous) is not layers.Dense or previous.activation != "linear":
        raise UnsupportedLayerError(f"{entry.where}: fastlstm applies {activation} only as "
                                    "the activation of a Dense, right after its Linear")
    stack[-1] = (layers.Dense(previous.units, activation=activation,
                              use_bias=previous.use_bias), stack[-1][1])


@converters.reader("Dropout")
def _read_dropout(entry, stack, read):
    p = entry.description["p"]
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConversionError(f"{entry.where}: p must be in [0, 1), got {p!r}")
    stack.append((layers.Dropout(p), []))


@converters.reader("Identity")
def _read_identity(entry, stack, read):
    pass


def _input_features(entry):
    d = entry.description
    return d.get("input_size", d.get("in_features"))


def _model_from_entries(entries, read):
    if read not in READ_MODES:
        raise ValueError(f"read must be one of {list(READ_MODES)}, got {read!r}")
    if not entries:
        raise ConversionError("there are no modules to read")
    last_recurrent = max((i for i, e in enumerate(entries)
                          if e.description["type"] in _RECURRENT_TYPES), default=-1)
    stack = []
    for index, entry in enumerate(entries):
        reader = converters.reader_for(entry.description["type"])
        reader(entry, stack, read if index == last_recurrent else "all_steps")
    features = next((_input_features(e) for e in entries if _input_features(e) is not None),
                    None)
    if features is None or not stack:
        raise ConversionError("the modules hold no LSTM, GRU, RNN or Linear")
    model = Sequential([layer for layer, _ in stack])
    try:
        model.build((None, features))
    except ValueError as e:
        raise ConversionError(f"the modules do not chain into one model: {e}") from None
    for layer, weights in stack:
        needed = [tuple(w.shape) for w in layer.weights]
        found = [tuple(np.shape(w)) for w in weights]
        if found != needed:
            raise ConversionError(f"the modules do not chain into one model: fastlstm's "
                                  f"{type(layer).__name__} there needs weights of shapes "
                                  f"{needed}, the module has {found}")
        try:
            layer.set_weights(weights)
        except ValueError as e:
            raise ConversionError(f"the modules' weights do not load into fastlstm's "
                                  f"{type(layer).__name__} ({e})") from None
    return model


# The probe input that checks a module with a forward of its own: its
# shape (batch, time) and how far the outputs may differ.
_PROBE_SHAPE = (16, 6)
_PROBE_TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}


def _has_own_forward(torch, module):
    """Whether `module` computes through a forward of its own, not by
    running its children in order (nn.Sequential) or being one layer."""
    return type(module) not in (torch.nn.Sequential, torch.nn.ModuleList) \
        and any(True for _ in module.children())


def _probe_outputs(torch, module, model, entries):
    """The module's and the model's outputs on a seeded probe input, both
    batch first, or None when the module's forward cannot take it."""
    features = model.input_shape[-1]
    x = np.random.default_rng(0).standard_normal((*_PROBE_SHAPE, features)).astype(np.float32)
    batch_first = next((e.description["batch_first"] for e in entries
                        if e.description["type"] in _RECURRENT_TYPES), True)
    parameter = next(module.parameters(), None)
    probe = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    if parameter is not None:
        probe = probe.to(device=parameter.device, dtype=parameter.dtype)
    training = module.training
    try:
        module.eval()
        with torch.no_grad():
            output = module(probe)
    except Exception:  # a forward that wants other arguments may raise anything
        return None
    finally:
        module.train(training)
    if not isinstance(output, torch.Tensor):
        return None
    output = output.detach().cpu().float().numpy()
    if not batch_first and output.ndim == 3:
        output = output.transpose(1, 0, 2)
    return output, model.predict(x)


def _check_forward(torch, module, model, entries):
    """Refuse a module whose forward computes something other than `model`,
    the module's children run in order."""
    outputs = _probe_outputs(torch, module, model, entries)
    if outputs is not None and outputs[0].shape == outputs[1].shape \
            and np.allclose(*outputs, **_PROBE_TOLERANCE):
        return
    if outputs is None:
        found = "it does not return one tensor for an input (batch, time, features)"
    elif outputs[0].shape != outputs[1].shape:
        found = (f"on a probe input it returns shape {outputs[0].shape}, its children in "
                 f"order {outputs[1].shape}")
    else:
        found = (f"on a probe input it differs from its children run in order by up to "
                 f"{float(np.max(np.abs(outputs[0] - outputs[1]))):.3g}")
    names = ", ".join(f"module.{name}" for name, _ in module.named_children())
    raise ConversionError(
        f"{type(module).__name__}'s forward computes something else than its children in "
        f"order ({found}): the order they were registered in, or operations in forward, "
        f"are not in the weights. Pass the modules that run, in order, as a list, e.g. "
        f"from_torch([{names}], read=...)")


def from_torch(source, *, layers=None, read="last_step", nonlinearity=None):
    """A fastlstm model computing what PyTorch modules compute.

    Parameters
    ----------
    source : torch.nn.Module, list of torch.nn.Module, or state_dict
        - a module whose children run in order (an nn.Sequential, or a
          module holding e.g. ``self.rnn``, ``self.fc``), or a module that
          is itself an nn.LSTM, nn.GRU or nn.RNN. A module with a forward
          of its own is run (in eval mode, without gradients) on a small
          seeded input beside the converted model, and refused when the two
          differ: its forward may call its children in another order than
          they were registered in, or compute more between them;
        - a list of modules, run in order;
        nn.Sequential and nn.ModuleList among them are opened into their
        children.
        - a state_dict (str -> tensor or float array): its entries grouped
          by prefix (``rnn.weight_ih_l0`` -> ``rnn.``) are the modules, in
          order. nn.LSTM, nn.GRU, nn.RNN and nn.Linear are inferred from the
          names and shapes (num_layers, bidirectional, bias, sizes);
          activations, dropout and an nn.RNN's nonlinearity are not in the
          weights: pass `nonlinearity`, or describe the modules in `layers`.
          NumPy arrays need no PyTorch installed.
        Module types read: LSTM, GRU, RNN (any num_layers, bidirectional,
        batch_first either way; dropout between layers becomes Dropout
        layers; proj_size is refused), Linear, ReLU/Tanh/Sigmoid right
        after a Linear (its activation), Dropout, Identity.
    layers : list of dict, optional
        With a state_dict: one plain description per module, in order,
        e.g. ``{"type": "LSTM", "input_size": 3, "hidden_size": 8,
        "num_layers": 2, "bidirectional": True}``, ``{"type": "RNN", ...,
        "nonlinearity": "relu"}``, ``{"type": "Linear", "in_features": 16,
        "out_features": 1}``, ``{"type": "ReLU"}``, ``{"type": "Dropout",
        "p": 0.2}``, fields as the torch.nn constructors name them (defaults
        theirs). A module with weights takes the next prefix of the
        state_dict, or the one its ``"prefix"`` names.
    read : {"last_step", "final_state", "all_steps"}
        What the layers after the last recurrent module read (see the
        module's docstring); inner layers of a stack pass every step on.
    nonlinearity : {"tanh", "relu"}, optional
        Of the nn.RNN modules of a state_dict.

    Returns
    -------
    fastlstm.Sequential
        Built for inputs (batch, time, features), whatever batch_first.

    Raises
    ------
    UnsupportedLayerError
        A module or option fastlstm cannot express, named.
    ConversionError
        Weights missing, of the wrong shape or dtype, modules that do not
        chain, or a module whose forward computes something else than its
        children in order.
    """
    if isinstance(source, Mapping):
        entries = _entries_from_state_dict(source, layers, nonlinearity)
    else:
        if layers is not None:
            raise TypeError("layers describes a state_dict's modules; modules describe "
                            "themselves")
        torch = _import_torch()
        if isinstance(source, (list, tuple)):
            modules = list(source)
        elif isinstance(source, torch.nn.Module):
            modules = list(source.children()) or [source]
        else:
            raise TypeError(f"source must be a torch.nn.Module, a list of them or a "
                            f"state_dict, got {type(source).__name__}")
        entries = _entries_from_modules(list(_flattened(torch, modules)))
        if isinstance(source, torch.nn.Module) and _has_own_forward(torch, source):
            model = _model_from_entries(entries, read)
            _check_forward(torch, source, model, entries)
            return model
    return _model_from_entries(entries, read)


# ------------------------------------------------------------------ files


def write_torch_file(model, path):
    """Write `model` to a .pt checkpoint (see the module docstring for its layout).

    Raises
    ------
    UnsupportedLayerError
        A layer PyTorch cannot express (see ``to_torch``).
    """
    torch = _import_torch()
    module = to_torch(model)
    checkpoint = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                  "fastlstm_model": model.get_config(),
                  "state_dict": dict(module.state_dict())}
    torch.save(checkpoint, path)


def _checkpoint_params(specs, state_dict, index):
    """The state_dict's parameters of one layer's modules, checked against `specs`."""
    found = []
    for spec in specs:
        params = {}
        for name, value in spec.params.items():
            key = f"{index}.{name}"
            if key not in state_dict:
                raise ConversionError(f"the checkpoint's state_dict has no {key!r}")
            array = _float_array(state_dict[key], f"state_dict[{key!r}]")
            if array.shape != value.shape:
                raise ConversionError(f"state_dict[{key!r}] has shape {array.shape}, "
                                      f"expected {value.shape}")
            params[name] = array
        found.append(params)
        index += 1
    return found, index


@_checkpoint_readers.reader("LSTM", "GRU", "SimpleRNN")
def _recurrent_from_checkpoint(layer, params):
    return _direction_weights(_gates.cell_kind(layer), _strip(params[0], "rnn."), "l0",
                              layer.use_bias)[:len(layer.weights)]


@_checkpoint_readers.reader("Bidirectional")
def _bidirectional_from_checkpoint(layer, params):
    kind = _gates.cell_kind(layer.forward_layer)
    rnn = _strip(params[0], "rnn.")
    use_bias = layer.forward_layer.use_bias
    n = len(layer.forward_layer.weights)
    return (_direction_weights(kind, rnn, "l0", use_bias)[:n]
            + _direction_weights(kind, rnn, "l0_reverse", use_bias)[:n])


@_checkpoint_readers.reader("Dense")
def _dense_from_checkpoint(layer, params):
    linear = params[0]
    return [linear["weight"].T.copy()] + ([linear["bias"]] if layer.use_bias else [])


@_checkpoint_readers.reader("TimeDistributed")
def _time_distributed_from_checkpoint(layer, params):
    return _checkpoint_readers.reader_for(type(layer.layer).__name__)(layer.layer, params)


@_checkpoint_readers.reader("Dropout")
def _dropout_from_checkpoint(layer, params):
    return []


def _strip(params, prefix):
    return {name[len(prefix):]: value for name, value in params.items()
            if name.startswith(prefix)}


def _expected_size(model_layers, input_shape):
    """The number of weights `model_layers` need, computed without allocating."""
    total, sample = 0, input_shape
    for layer in model_layers:
        total += sum(int(np.prod(shape, dtype=object)) for shape in layer.weight_shapes(sample))
        sample = layer.compute_output_shape(sample)
    return total


def _model_from_fastlstm_checkpoint(checkpoint):
    if checkpoint.get("format") != CHECKPOINT_FORMAT \
            or checkpoint.get("format_version") != CHECKPOINT_VERSION:
        raise ConversionError(f"a checkpoint with fastlstm_model must have format "
                              f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}, got "
                              f"{checkpoint.get('format')!r} {checkpoint.get('format_version')!r}")
    spec, state_dict = checkpoint["fastlstm_model"], checkpoint.get("state_dict")
    if not isinstance(spec, Mapping) or not isinstance(state_dict, Mapping):
        raise ConversionError("the checkpoint's fastlstm_model and state_dict must be dicts")
    try:
        model = Sequential(name=str(spec.get("name", "sequential")))
        for entry in spec["layers"]:
            model.add(serialization.deserialize("layer", entry, base=layers.Layer))
        input_shape = layers.checked_sample_shape(spec["input_shape"])
        stored = sum(int(np.prod(getattr(v, "shape", ()), dtype=object))
                     for v in state_dict.values())
        if _expected_size(model.layers, input_shape) > stored:
            raise ConversionError("the checkpoint's state_dict holds fewer weights than its "
                                  "fastlstm_model needs")
        model.build(input_shape)
    except ConversionError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"the checkpoint's fastlstm_model does not describe a model "
                              f"({type(e).__name__}: {e})") from None
    index, used = 0, set()
    for layer, specs in zip(model.layers, _module_specs(model)):
        params, next_index = _checkpoint_params(specs, state_dict, index)
        used.update(f"{i}.{name}" for i, s in enumerate(specs, index) for name in s.params)
        index = next_index
        weights = _checkpoint_readers.reader_for(type(layer).__name__)(layer, params)
        try:
            layer.set_weights(weights)
        except ValueError as e:
            raise ConversionError(f"the checkpoint's weights of layer {layer.name!r} do not "
                                  f"fit: {e}") from None
    extra = sorted(set(state_dict) - used)
    if extra:
        raise ConversionError(f"the checkpoint's state_dict has entries no layer reads: "
                              f"{extra[:5]}")
    return model


def _model_from_checkpoint(checkpoint):
    """The model a loaded .pt object describes."""
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(f"a .pt file must hold a state_dict or a checkpoint dict, got "
                              f"{type(checkpoint).__name__}")
    if "fastlstm_model" in checkpoint:
        return _model_from_fastlstm_checkpoint(checkpoint)
    if "state_dict" in checkpoint:
        unknown = set(checkpoint) - {"state_dict", "torch_layers", "read", "nonlinearity"}
        if unknown:
            raise ConversionError(f"the checkpoint has keys fastlstm does not read: "
                                  f"{sorted(map(str, unknown))[:5]}")
        state_dict = checkpoint["state_dict"]
        if not isinstance(state_dict, Mapping):
            raise ConversionError("the checkpoint's state_dict must be a dict")
        read = checkpoint.get("read", "last_step")
        if read not in READ_MODES:
            raise ConversionError(f"the checkpoint's read must be one of {list(READ_MODES)}, "
                                  f"got {read!r:.100}")
        try:
            return from_torch(state_dict, layers=checkpoint.get("torch_layers"), read=read,
                              nonlinearity=checkpoint.get("nonlinearity"))
        except TypeError as e:
            raise ConversionError(f"the checkpoint's torch_layers: {e}") from None
    return from_torch(checkpoint)


def read_torch_file(path):
    """The fastlstm model in a .pt file, loaded without unpickling any code.

    Parameters
    ----------
    path : str or path-like
        A checkpoint ``write_torch_file`` wrote, a bare state_dict whose
        modules can be inferred (see ``from_torch``), or a dict
        ``{"state_dict": ..., "torch_layers": [...], "read": ...,
        "nonlinearity": ...}``.

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    ConversionError
        The file is damaged, holds pickled code or objects other than
        tensors and plain data, or weights that do not fit.
    """
    torch = _import_torch()
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refused file is an error below, not a warning
            loaded = torch.load(f, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        # PyTorch's message suggests weights_only=False: running the file's code.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        named = f" (it names {found.group(1)})" if found else ""
        raise ConversionError(f"{path}: not a .pt file of tensors and plain data: it holds "
                              f"pickled objects other than those{named}, or is damaged; "
                              "fastlstm does not unpickle objects, which could run code") \
            from None
    except Exception as e:  # the zip reader and the loader raise many kinds
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConversionError(f"{path}: not a .pt file that loads as tensors and plain data "
                              f"({type(e).__name__}: {message:.300})") from None
    return _model_from_checkpoint(loaded)


files.register(".pt", "PyTorch state_dict checkpoint", read=read_torch_file,
               write=write_torch_file)

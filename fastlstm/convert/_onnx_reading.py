"""Reading ONNX graphs into fastlstm layers, by following the graph's values
symbolically; nothing in the graph is run.

Every tensor of the graph gets a symbolic value: a constant (_Const), a
shape vector whose entries may be symbols (_Dims), zeros of some
data-dependent shape (_Zeros), a value computed from sequence_lens
(_Lengths), a state input (_StateInput), or the model's data (_Data),
which knows the fastlstm layers computed so far and what each of its
axes holds. A recurrent node's outputs stay pending (_Part) until the
glue after them says which fastlstm layer they are: every step or the
final state, which direction, which merge. Each operator's reader is
registered in fastlstm.convert.onnx's ``converters``.
"""
from typing import NamedTuple

import numpy as np

from .. import layers
from . import _gates
from ._registry import ConversionError, UnsupportedLayerError
from .onnx import converters

__all__ = ["read_graph"]

class _Const(NamedTuple):
    array: np.ndarray


class _Dims(NamedTuple):
    """A shape (or one entry of it, `scalar`): ints and symbolic axis names."""

    entries: tuple
    scalar: bool = False


class _Zeros(NamedTuple):
    """Zeros whose shape depends on the input (initial states PyTorch builds)."""


class _StateInput(NamedTuple):
    """A graph input that feeds initial states."""

    name: str


class _Lengths(NamedTuple):
    """sequence_lens (`raw`), or an index or mask of steps computed from it
    or from the input's shape."""

    raw: bool


class _Unreadable(NamedTuple):
    """An output no fastlstm layer computes; using it is refused with `reason`."""

    reason: str


class _Rnn(NamedTuple):
    """A recurrent node read, waiting for the glue after it."""

    kind: str                # "LSTM", "GRU" or "RNN"
    name: str                # the node's name, for messages
    direction: str           # "forward", "reverse" or "bidirectional"
    units: int
    options: dict            # the fastlstm layer's cell options
    weights: tuple           # one fastlstm weight list per direction
    base: tuple              # the (layer, weights) pairs before it
    input_reversed: bool     # its input runs last step first (against the model's order)
    lengths: bool            # runs with sequence_lens


class _Part(NamedTuple):
    """What a slice of a feature axis (or one entry of a directions axis) holds."""

    rnn: _Rnn
    direction: object        # 0 or 1, or the merge "sum", "mul", "ave" of both
    when: object             # "seq" (every step), "final" (final state) or ("step", index)
    repeat: bool = False     # past each length, the last output (a Where on the lengths)


class _Data(NamedTuple):
    """The model's data: the layers so far and the tensor's axes.

    Axes are named "batch", "time", "feature", "dir" (a recurrent output's
    directions), ("step", i) (one step kept by a Slice), or "x0", "x1"
    (the input's axes until a recurrent node or a Gemm says which is which).
    """

    layers: tuple            # (layer, weights) pairs
    axes: tuple
    sizes: tuple             # int, or None when dynamic
    reversed: bool = False   # the time axis runs against the model's order
    parts: tuple = None      # pending recurrent outputs along the feature axis
    dirs: tuple = None       # pending recurrent outputs along the "dir" axis
    dense: dict = None       # a pending Dense: kernel, bias, activation


_MAX_NODES = 100_000
# The most values an Expand of constants may make.
_MAX_EXPANDED_CONSTANT = 2**20


class _Reading:
    """The state of one graph's reading: values by name, roles of the input axes."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.values = {}
        self.roles = {}
        self.lengths = False

    def role(self, label):
        return self.roles.get(label, label) if isinstance(label, str) else label

    def bind(self, data, expected, where):
        """Check (binding the input's open axes) that `data`'s axes are `expected`."""
        roles = [self.role(a) for a in data.axes]
        if len(roles) != len(expected):
            raise ConversionError(f"{where}: expects axes {expected}, got {tuple(roles)}")
        for label, want in zip(roles, expected):
            if label in ("x0", "x1") and want in ("batch", "time"):
                taken = set(self.roles.values())
                if want in taken:
                    raise ConversionError(f"{where}: the input's axes cannot be both {want}")
                self.roles[label] = want
            elif label != want:
                raise ConversionError(f"{where}: expects axes {tuple(expected)}, got "
                                      f"{tuple(self.role(a) for a in data.axes)}")
        return data._replace(axes=tuple(expected))


def _where(node):
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def _attributes(onnx, node, allowed):
    """The node's attributes as Python values; any other is refused by name."""
    found = {}
    for attribute in node.attribute:
        if attribute.name not in allowed:
            raise UnsupportedLayerError(f"{_where(node)}: attribute {attribute.name!r} is not "
                                        f"supported (supported: {sorted(allowed)})")
        if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise UnsupportedLayerError(f"{_where(node)}: subgraphs are not supported")
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        elif isinstance(value, onnx.TensorProto):
            value = _tensor_array(onnx, value, _where(node))
        found[attribute.name] = value
    return found


def _tensor_array(onnx, tensor, where):
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ConversionError(f"{where}: tensor {tensor.name!r} keeps its data in an external "
                              "file, which fastlstm does not open")
    try:
        return onnx.numpy_helper.to_array(tensor)
    except Exception as e:  # damaged raw data, unknown dtype
        raise ConversionError(f"{where}: tensor {tensor.name!r} does not decode "
                              f"({type(e).__name__}: {e})") from None


def _const(value, node, what):
    if not isinstance(value, _Const):
        raise UnsupportedLayerError(f"{_where(node)}: {what} must be a constant")
    return value.array


def _ints(value, node, what):
    array = _const(value, node, what)
    if array.dtype.kind not in "iu":
        raise ConversionError(f"{_where(node)}: {what} must be integers")
    return [int(v) for v in array.reshape(-1)]


def _axis(axis, rank, node):
    if not -rank <= axis < rank:
        raise ConversionError(f"{_where(node)}: axis {axis} is out of range for rank {rank}")
    return axis % rank


# ------------------------------------------------------------ settling


def _settle(reading, data, where):
    """`data` with its pending Dense or recurrent outputs made layers."""
    if data.dense is not None:
        dense = data.dense
        layer = layers.Dense(dense["kernel"].shape[1], activation=dense["activation"],
                             use_bias=dense["bias"] is not None)
        weights = [dense["kernel"]] + ([dense["bias"]] if dense["bias"] is not None else [])
        data = data._replace(layers=data.layers + ((layer, weights),), dense=None)
    if data.dirs is not None:
        raise UnsupportedLayerError(
            f"{where}: reads a recurrent node's output with its directions axis still in it; "
            "fastlstm's layers output one direction, or both merged")
    if data.parts is not None:
        base, layer, weights = _recurrent_layer(data, where)
        data = data._replace(layers=base + ((layer, weights),), parts=None, reversed=False)
    return data


def _normalized_when(part, where):
    """"seq" or "final" for a part: one kept step is the final state when
    it is the last step its direction runs."""
    rnn, when = part.rnn, part.when
    if not isinstance(when, tuple):
        return when
    position = when[1]
    if rnn.direction == "bidirectional":
        raise UnsupportedLayerError(
            f"{where}: reads the {position} step of the bidirectional {rnn.kind} node "
            f"{rnn.name!r}; one step of both directions is no fastlstm output (its "
            "Bidirectional returns each direction's final state, or every step)")
    if rnn.lengths:
        raise UnsupportedLayerError(f"{where}: reads one step of {rnn.name!r}, which runs "
                                    "with sequence_lens: past a row's length that step is not "
                                    "its final state")
    final = "last" if rnn.direction == "forward" else "first"
    if position != final:
        raise UnsupportedLayerError(
            f"{where}: reads the {position} step of the {rnn.direction} {rnn.kind} node "
            f"{rnn.name!r}, which is not its final state; fastlstm returns the final state "
            "or every step")
    return "final"


def _recurrent_layer(data, where):
    """The fastlstm layer that data's pending recurrent parts are."""
    parts = data.parts
    rnn = parts[0].rnn
    if any(p.rnn is not rnn for p in parts):
        raise UnsupportedLayerError(f"{where}: mixes the outputs of several recurrent nodes")
    whens = {_normalized_when(p, where) for p in parts}
    if len(whens) != 1:
        raise UnsupportedLayerError(f"{where}: mixes steps and final states of {rnn.name!r}")
    when = whens.pop()
    shape = tuple(p.direction for p in parts)
    if rnn.direction == "bidirectional":
        merges = {(0, 1): "concat", ("sum",): "sum", ("mul",): "mul", ("ave",): "ave"}
        if shape not in merges:
            raise UnsupportedLayerError(
                f"{where}: reads the directions {shape} of the bidirectional node "
                f"{rnn.name!r}; fastlstm's Bidirectional gives both, forward first, "
                "concatenated, summed, multiplied or averaged")
        go_backwards = rnn.input_reversed
    else:
        if shape != (0,):
            raise UnsupportedLayerError(f"{where}: reads {shape} of the one-direction node "
                                        f"{rnn.name!r}")
        go_backwards = (rnn.direction == "reverse") != rnn.input_reversed
    sequences = when == "seq"
    if sequences:
        if data.reversed != go_backwards:
            raise UnsupportedLayerError(
                f"{where}: reads every step of {rnn.name!r} "
                + ("last step first" if data.reversed else "in time order")
                + "; fastlstm returns them in the order its layer runs them "
                + ("(last step first with go_backwards)" if go_backwards else "(time order)"))
        if rnn.lengths and rnn.direction == "forward" and not parts[0].repeat:
            raise UnsupportedLayerError(
                f"{where}: reads every step of {rnn.name!r}, which runs with "
                "sequence_lens, as zeros past each length; fastlstm repeats the last output "
                "there")
    cell = _CELL_LAYERS[rnn.kind](rnn.units, rnn.options, sequences, go_backwards)
    if rnn.direction == "bidirectional":
        layer = layers.Bidirectional(cell, merge_mode=merges[shape])
        weights = list(rnn.weights[0]) + list(rnn.weights[1])
    else:
        layer, weights = cell, list(rnn.weights[0])
    return rnn.base, layer, weights


_CELL_LAYERS = {
    "LSTM": lambda units, o, sequences, backwards: layers.LSTM(
        units, peephole=o["peephole"], return_sequences=sequences, go_backwards=backwards),
    "GRU": lambda units, o, sequences, backwards: layers.GRU(
        units, reset_after=o["reset_after"], use_bias=o["use_bias"],
        return_sequences=sequences, go_backwards=backwards),
    "RNN": lambda units, o, sequences, backwards: layers.SimpleRNN(
        units, activation=o["activation"], use_bias=o["use_bias"],
        return_sequences=sequences, go_backwards=backwards),
}


# ------------------------------------------------------------ recurrent nodes

_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_RECURRENT_ATTRIBUTES = {"LSTM": {"hidden_size", "direction", "layout", "activations",
                                  "input_forget"},
                         "GRU": {"hidden_size", "direction", "layout", "activations",
                                 "linear_before_reset"},
                         "RNN": {"hidden_size", "direction", "layout", "activations"}}


def _cell_options(kind, attributes, node, has_bias, has_peephole, count):
    """The fastlstm cell options a recurrent node's attributes mean."""
    activations = attributes.get("activations")
    options = {"use_bias": has_bias, "peephole": has_peephole}
    if kind == "RNN":
        names = activations or ["Tanh"] * count
        if len(names) != count or len(set(names)) != 1 or names[0] not in ("Tanh", "Relu"):
            raise UnsupportedLayerError(f"{_where(node)}: activations {names} (fastlstm's "
                                        "SimpleRNN computes Tanh or Relu, the same both ways)")
        options["activation"] = names[0].lower()
    elif activations is not None and activations != _DEFAULT_ACTIVATIONS[kind] * count:
        raise UnsupportedLayerError(f"{_where(node)}: activations {activations}; fastlstm "
                                    f"computes {_DEFAULT_ACTIVATIONS[kind]}")
    if attributes.get("input_forget", 0):
        raise UnsupportedLayerError(f"{_where(node)}: input_forget=1 couples the input and "
                                    "forget gates, which fastlstm's LSTM does not")
    if kind == "GRU":
        options["reset_after"] = bool(attributes.get("linear_before_reset", 0))
    return options


def _checked_initializer(value, node, what, shape):
    array = _const(value, node, what)
    if array.shape != shape:
        raise ConversionError(f"{_where(node)}: {what} has shape {array.shape}, expected "
                              f"{shape}")
    if array.dtype.kind != "f":
        raise ConversionError(f"{_where(node)}: {what} must be floats, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ConversionError(f"{_where(node)}: {what} contains NaN or infinity")
    return array.astype(np.float32)


def _direction_weights(kind, options, W, R, B, P, units):
    """fastlstm's weights of one direction from ONNX's W, R, B (or None), P (or None)."""
    order = _gates.ONNX_ORDER[kind]
    weights = [_gates.from_rows(W, order), _gates.from_rows(R, order)]
    if B is not None:
        input_bias, recurrent_bias = (_gates.restore_vector(b, order) for b in np.split(B, 2))
        if kind == "GRU" and options["reset_after"]:
            weights.append(np.stack([input_bias, recurrent_bias]))
        else:
            weights.append(input_bias + recurrent_bias)
    elif kind == "LSTM":
        weights.append(np.zeros(weights[0].shape[1], np.float32))
    if P is not None:
        weights.append(np.stack([P[:units], P[2 * units:], P[units:2 * units]]))
    return weights


def _initial_states_ok(value):
    """Whether initial states are zeros (built for any shape, or constant:
    PyTorch's export without dynamic axes) or a graph input."""
    return value is None or isinstance(value, (_Zeros, _StateInput)) or (
        isinstance(value, _Const) and not np.any(value.array != 0))


@converters.reader("LSTM", "GRU", "RNN")
def _read_recurrent(reading, node, inputs):
    kind = node.op_type
    attributes = _attributes(reading.onnx, node, _RECURRENT_ATTRIBUTES[kind])
    units = attributes.get("hidden_size")
    if not isinstance(units, int) or not 1 <= units <= layers.MAX_UNITS:
        raise ConversionError(f"{_where(node)}: hidden_size must be an int in "
                              f"[1, {layers.MAX_UNITS}], got {units!r}")
    direction = attributes.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ConversionError(f"{_where(node)}: direction {direction!r}")
    layout = attributes.get("layout", 0)
    if layout not in (0, 1):
        raise ConversionError(f"{_where(node)}: layout {layout!r}")
    count = 2 if direction == "bidirectional" else 1
    inputs = inputs + [None] * (8 - len(inputs))
    x, W, R, B, lengths, h0, c0, P = inputs
    if not isinstance(x, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: its input X is not the model's data")
    x = _settle(reading, x, _where(node))
    x = reading.bind(x, ("time", "batch", "feature") if layout == 0
                     else ("batch", "time", "feature"), _where(node))
    features = x.sizes[2]
    gates = _gates.GATES[kind] * units
    W = _checked_initializer(W, node, "W", (count, gates, features))
    R = _checked_initializer(R, node, "R", (count, gates, units))
    B = None if B is None else _checked_initializer(B, node, "B", (count, 2 * gates))
    if kind != "LSTM" and (c0 is not None or P is not None):
        raise ConversionError(f"{_where(node)}: a {kind} node has no initial_c or P input")
    P = None if P is None else _checked_initializer(P, node, "P", (count, 3 * units))
    if not (_initial_states_ok(h0) and _initial_states_ok(c0)):
        raise UnsupportedLayerError(f"{_where(node)}: initial states must be zeros or graph "
                                    "inputs (a fastlstm model starts from zeros)")
    if lengths is not None and not (isinstance(lengths, _Lengths) and lengths.raw):
        raise UnsupportedLayerError(f"{_where(node)}: sequence_lens must be the graph's "
                                    "sequence_lens input")
    if lengths is not None and x.reversed:
        raise UnsupportedLayerError(f"{_where(node)}: runs a reversed input with "
                                    "sequence_lens, which reverses the padding too")
    reading.lengths = reading.lengths or lengths is not None
    options = _cell_options(kind, attributes, node, B is not None, P is not None, count)
    weights = tuple(_direction_weights(kind, options, W[d], R[d],
                                       None if B is None else B[d],
                                       None if P is None else P[d], units)
                    for d in range(count))
    rnn = _Rnn(kind, node.name or kind, direction, units, options, weights, x.layers,
               x.reversed, lengths is not None)
    batch, time = x.sizes[1], x.sizes[0]
    if layout == 1:
        batch, time = time, batch
    entries = tuple(_Part(rnn, d, "seq") for d in range(count))
    finals = tuple(_Part(rnn, d, "final") for d in range(count))
    pending = dict(layers=(), reversed=x.reversed)
    if layout == 0:
        y = _Data(axes=("time", "dir", "batch", "feature"), sizes=(time, count, batch, units),
                  dirs=entries, **pending)
        y_h = _Data(axes=("dir", "batch", "feature"), sizes=(count, batch, units), dirs=finals,
                    **pending)
    else:
        y = _Data(axes=("batch", "time", "dir", "feature"), sizes=(batch, time, count, units),
                  dirs=entries, **pending)
        y_h = _Data(axes=("batch", "dir", "feature"), sizes=(batch, count, units), dirs=finals,
                    **pending)
    return [y, y_h, _Unreadable(f"{_where(node)}: its cell states Y_c feed no fastlstm "
                                "layer")]


# ------------------------------------------------------------ axis glue


def _select_dirs(data, entries, keep_axis, axis):
    """`data` with its "dir" axis cut to `entries` (kept as an axis or dropped)."""
    if keep_axis:
        sizes = data.sizes[:axis] + (len(entries),) + data.sizes[axis + 1:]
        return data._replace(dirs=tuple(entries), sizes=sizes)
    if len(entries) != 1:
        raise ConversionError("a dropped directions axis must hold one direction")
    return data._replace(axes=data.axes[:axis] + data.axes[axis + 1:],
                         sizes=data.sizes[:axis] + data.sizes[axis + 1:],
                         dirs=None, parts=(entries[0],))


def _keep_step(data, axis, index, node):
    """`data` with its time axis `axis` cut to step `index` (and dropped)."""
    if data.parts is None:
        raise UnsupportedLayerError(f"{_where(node)}: keeps one step of data that no "
                                    "recurrent node just made; fastlstm has no such layer")
    time = data.sizes[axis]
    if index == -1 or (time is not None and index == time - 1):
        position = "last"
    elif index == 0 or (time is not None and index == -time):
        position = "first"
    else:
        raise UnsupportedLayerError(f"{_where(node)}: keeps step {index}; fastlstm reads the "
                                    "final state of a recurrent node, or every step")
    parts = []
    for part in data.parts:
        # The position in the order the node ran its input.
        flipped = data.reversed != part.rnn.input_reversed
        run_position = {"last": "first", "first": "last"}[position] if flipped else position
        parts.append(part._replace(when=("step", run_position)))
    return data._replace(axes=data.axes[:axis] + data.axes[axis + 1:],
                         sizes=data.sizes[:axis] + data.sizes[axis + 1:], parts=tuple(parts),
                         reversed=False)


def _gather_data(reading, node, data, index, axis):
    role = reading.role(data.axes[axis])
    if index.ndim != 0:
        raise UnsupportedLayerError(f"{_where(node)}: gathers several indices of the model's "
                                    "data")
    i = int(index)
    if role == "dir":
        if not -len(data.dirs) <= i < len(data.dirs):
            raise ConversionError(f"{_where(node)}: index {i} is out of range")
        return _select_dirs(data, [data.dirs[i]], False, axis)
    if role == "time":
        return _keep_step(data, axis, i, node)
    raise UnsupportedLayerError(f"{_where(node)}: gathers from the {role} axis of the model's "
                                "data")


@converters.reader("Gather")
def _read_gather(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"axis"})
    source, index = inputs[0], _const(inputs[1], node, "the indices")
    axis = attributes.get("axis", 0)
    if isinstance(source, _Const):
        return [_Const(np.take(source.array, index, axis=axis))]
    if isinstance(source, _Dims):
        picked = np.asarray(source.entries, dtype=object)[index]
        if index.ndim == 0:
            return [_Dims((picked,), scalar=True)]
        return [_Dims(tuple(picked))]
    if isinstance(source, (_Zeros, _StateInput)):
        return [source]
    if isinstance(source, _Data):
        source = _settle_dense(reading, source, node)
        return [_gather_data(reading, node, source, index, _axis(axis, len(source.axes), node))]
    raise UnsupportedLayerError(f"{_where(node)}: gathers from an unsupported value")


def _settle_dense(reading, data, node):
    return _settle(reading, data, _where(node)) if data.dense is not None else data


@converters.reader("Shape")
def _read_shape(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"start", "end"})
    source = inputs[0]
    if isinstance(source, _Const):
        entries = source.array.shape
    elif isinstance(source, _Data):
        entries = tuple(size if size is not None else reading.role(label)
                        for label, size in zip(source.axes, source.sizes))
    else:
        raise UnsupportedLayerError(f"{_where(node)}: takes the shape of an unsupported value")
    start, end = attributes.get("start", 0), attributes.get("end", len(entries))
    entries = tuple(entries[start:end])
    if all(isinstance(e, int) for e in entries):
        return [_Const(np.array(entries, np.int64))]
    return [_Dims(entries)]


def _as_dims(value, node):
    if isinstance(value, _Dims):
        return value
    if isinstance(value, _Const) and value.array.ndim <= 1 and value.array.dtype.kind in "iu":
        return _Dims(tuple(int(v) for v in value.array.reshape(-1)), value.array.ndim == 0)
    raise UnsupportedLayerError(f"{_where(node)}: expects a shape")


@converters.reader("Unsqueeze", "Squeeze")
def _read_squeeze(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"axes"})
    source = inputs[0]
    axes = attributes.get("axes")
    if axes is None and len(inputs) > 1 and inputs[1] is not None:
        axes = _ints(inputs[1], node, "axes")
    if isinstance(source, (_Zeros, _StateInput, _Lengths)):
        return [source if not isinstance(source, _Lengths) else _Lengths(False)]
    if isinstance(source, _Const):
        array = source.array
        if node.op_type == "Unsqueeze":
            return [_Const(np.expand_dims(array, tuple(axes)))]
        return [_Const(np.squeeze(array, axis=None if axes is None else tuple(axes)))]
    if isinstance(source, _Dims):
        if node.op_type == "Unsqueeze" and source.scalar and axes in ([0], [-1]):
            return [_Dims(source.entries)]
        raise UnsupportedLayerError(f"{_where(node)}: on a shape")
    if isinstance(source, _Data) and node.op_type == "Squeeze" and axes is not None:
        data = _settle_dense(reading, source, node)
        for axis in sorted((_axis(a, len(data.axes), node) for a in axes), reverse=True):
            data = _squeeze_axis(reading, node, data, axis)
        return [data]
    raise UnsupportedLayerError(f"{_where(node)}: on the model's data (only a Squeeze of "
                                "one direction or of one kept step)")


def _squeeze_axis(reading, node, data, axis):
    label = reading.role(data.axes[axis])
    if data.sizes[axis] not in (1, None) and label != "dir":
        raise ConversionError(f"{_where(node)}: squeezes an axis of size {data.sizes[axis]}")
    if label == "dir":
        if len(data.dirs) != 1:
            raise ConversionError(f"{_where(node)}: squeezes two directions")
        return _select_dirs(data, data.dirs, False, axis)
    if isinstance(label, tuple):  # a kept step
        return _keep_step(data._replace(axes=data.axes[:axis] + ("time",) + data.axes[axis + 1:]),
                          axis, label[1], node)
    raise UnsupportedLayerError(f"{_where(node)}: squeezes the {label} axis of the model's data")


@converters.reader("Concat")
def _read_concat(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"axis"})
    axis = attributes.get("axis")
    if any(v is None for v in inputs) or axis is None:
        raise ConversionError(f"{_where(node)}: needs its inputs and axis")
    if all(isinstance(v, (_Const, _Dims)) for v in inputs):
        if all(isinstance(v, _Const) for v in inputs):
            return [_Const(np.concatenate([v.array for v in inputs], axis=axis))]
        return [_Dims(tuple(e for v in inputs for e in _as_dims(v, node).entries))]
    if all(isinstance(v, (_Zeros, _StateInput)) for v in inputs):
        return [inputs[0]]
    if not all(isinstance(v, _Data) for v in inputs):
        raise UnsupportedLayerError(f"{_where(node)}: joins the model's data with other values")
    first = inputs[0]
    axis = _axis(axis, len(first.axes), node)
    label = reading.role(first.axes[axis])
    if any(len(v.axes) != len(first.axes) or reading.role(v.axes[axis]) != label
           for v in inputs):
        raise ConversionError(f"{_where(node)}: joins values of different axes")
    if label == "dir":
        entries = tuple(e for v in inputs for e in v.dirs)
        return [_select_dirs(first, entries, True, axis)]
    if label == "feature" and axis == len(first.axes) - 1 and all(v.parts for v in inputs):
        parts = tuple(p for v in inputs for p in v.parts)
        size = sum(v.sizes[axis] for v in inputs)
        return [first._replace(parts=parts, sizes=first.sizes[:axis] + (size,))]
    raise UnsupportedLayerError(f"{_where(node)}: joins the model's data along its {label} "
                                "axis; fastlstm joins only the two directions of a "
                                "recurrent node")


@converters.reader("Transpose")
def _read_transpose(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"perm"})
    source = inputs[0]
    if isinstance(source, (_Zeros, _StateInput, _Lengths)):
        return [source if not isinstance(source, _Lengths) else _Lengths(False)]
    if isinstance(source, _Const):
        return [_Const(np.transpose(source.array, attributes.get("perm")))]
    if not isinstance(source, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: on an unsupported value")
    data = _settle_dense(reading, source, node)
    perm = attributes.get("perm", list(range(len(data.axes)))[::-1])
    if sorted(perm) != list(range(len(data.axes))):
        raise ConversionError(f"{_where(node)}: perm {perm} does not fit rank "
                              f"{len(data.axes)}")
    if data.parts is None and data.dirs is None and reading.role(data.axes[-1]) == "feature" \
            and perm[-1] != len(perm) - 1:
        raise UnsupportedLayerError(f"{_where(node)}: moves the features off the last axis")
    return [data._replace(axes=tuple(data.axes[p] for p in perm),
                          sizes=tuple(data.sizes[p] for p in perm))]


def _resolve_target(reading, target, data, node, allow_zero):
    """The entries of a Reshape target: -1, 0 (copy) or sizes and axis names."""
    entries = []
    for i, entry in enumerate(target):
        if isinstance(entry, str):
            entry = reading.role(entry)
        elif entry == 0 and not allow_zero:
            entry = data.sizes[i] if data.sizes[i] is not None else reading.role(data.axes[i])
        entries.append(entry)
    return entries


@converters.reader("Reshape")
def _read_reshape(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"allowzero"})
    source = inputs[0]
    if isinstance(source, (_Zeros, _StateInput)):
        return [source]
    target = inputs[1]
    if isinstance(source, _Const):
        return [_Const(np.reshape(source.array, _ints(target, node, "the shape")))]
    if not isinstance(source, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: on an unsupported value")
    data = _settle_dense(reading, source, node)
    wanted = _resolve_target(reading, _as_dims(target, node).entries, data, node,
                             attributes.get("allowzero", 0))
    roles = [reading.role(a) for a in data.axes]
    if "dir" in roles:
        d = roles.index("dir")
        if d + 1 < len(roles) and roles[d + 1] == "feature":
            merged_axes = data.axes[:d] + ("feature",) + data.axes[d + 2:]
            merged_sizes = data.sizes[:d] + (data.sizes[d] * data.sizes[d + 1],) \
                + data.sizes[d + 2:]
            if _target_fits(reading, wanted, merged_axes, merged_sizes):
                return [data._replace(axes=merged_axes, sizes=merged_sizes, parts=data.dirs,
                                      dirs=None)]
    if _target_fits(reading, wanted, data.axes, data.sizes):
        return [data]
    raise UnsupportedLayerError(f"{_where(node)}: reshapes the model's data {tuple(roles)} to "
                                f"{wanted}; fastlstm joins only a directions axis into the "
                                "features after it")


def _target_fits(reading, wanted, axes, sizes):
    if len(wanted) != len(axes) or sum(1 for w in wanted if w == -1) > 1:
        return False
    return all(w == -1 or w == size or w == reading.role(label)
               for w, label, size in zip(wanted, axes, sizes))


@converters.reader("Slice")
def _read_slice(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    source = inputs[0]
    if isinstance(source, (_Zeros, _StateInput)):
        return [source]
    starts, ends = _ints(inputs[1], node, "starts"), _ints(inputs[2], node, "ends")
    axes = _ints(inputs[3], node, "axes") if len(inputs) > 3 and inputs[3] is not None \
        else list(range(len(starts)))
    steps = _ints(inputs[4], node, "steps") if len(inputs) > 4 and inputs[4] is not None \
        else [1] * len(starts)
    if isinstance(source, (_Const, _Dims)):
        array = source.array if isinstance(source, _Const) \
            else np.asarray(source.entries, dtype=object)
        index = [slice(None)] * array.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps):
            index[axis] = slice(start, end, step)
        result = array[tuple(index)]
        return [_Const(result) if isinstance(source, _Const) else _Dims(tuple(result))]
    if not isinstance(source, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: on an unsupported value")
    data = _settle_dense(reading, source, node)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(axis, len(data.axes), node)
        data = _slice_axis(reading, node, data, axis, start, end, step)
    return [data]


def _slice_axis(reading, node, data, axis, start, end, step):
    label, size = reading.role(data.axes[axis]), data.sizes[axis]
    if label in ("x0", "x1") and "time" not in reading.roles.values():
        reading.roles[label] = label = "time"  # only steps are sliced
    if label == "dir":
        entries = data.dirs[start:end:step]
        if not entries:
            raise ConversionError(f"{_where(node)}: keeps no direction")
        return _select_dirs(data, entries, True, axis)
    if label != "time":
        raise UnsupportedLayerError(f"{_where(node)}: slices the {label} axis of the model's "
                                    "data")
    huge = 2**31 - 1
    if step == -1 and start == -1 and end <= -(size or huge):
        return data._replace(reversed=not data.reversed)
    if step == 1 and (start == -1 or (size is not None and start == size - 1)) \
            and end >= (size or huge):
        return data._replace(axes=data.axes[:axis] + (("step", -1),) + data.axes[axis + 1:],
                             sizes=data.sizes[:axis] + (1,) + data.sizes[axis + 1:])
    if step == 1 and start in (0, -(size or -1)) and end >= (size or huge):
        return data
    raise UnsupportedLayerError(f"{_where(node)}: slices steps {start}:{end}:{step}; fastlstm "
                                "reads every step, the last one, or every step reversed")


# ------------------------------------------------------------ constants and shapes


@converters.reader("Constant")
def _read_constant(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"value", "value_float", "value_floats",
                                                  "value_int", "value_ints"})
    if len(attributes) != 1:
        raise ConversionError(f"{_where(node)}: needs exactly one value")
    (value,) = attributes.values()
    return [_Const(np.asarray(value))]


@converters.reader("ConstantOfShape")
def _read_constant_of_shape(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"value"})
    value = attributes.get("value", np.zeros(1, np.float32))
    if np.any(np.asarray(value) != 0):
        raise UnsupportedLayerError(f"{_where(node)}: fills with {value}; fastlstm reads "
                                    "zeros (initial states)")
    _as_dims(inputs[0], node)
    return [_Zeros()]


@converters.reader("Expand")
def _read_expand(reading, node, inputs):
    """Zeros broadcast to a shape: the initial states PyTorch's exporter
    builds without dynamic axes, read as ConstantOfShape's."""
    _attributes(reading.onnx, node, set())
    source, shape = inputs
    if isinstance(source, _Const) and isinstance(shape, _Const):
        dims = _ints(shape, node, "shape")
        if np.prod(np.maximum(dims, 1), dtype=float) > _MAX_EXPANDED_CONSTANT:
            raise ConversionError(f"{_where(node)}: expands a constant to shape {dims}; at "
                                  f"most {_MAX_EXPANDED_CONSTANT:,} values")
        return [_Const(source.array * np.ones(dims, source.array.dtype))]
    _as_dims(shape, node)
    if isinstance(source, _Zeros) or (isinstance(source, _Const)
                                      and not np.any(source.array != 0)):
        return [_Zeros()]
    raise UnsupportedLayerError(f"{_where(node)}: expands {type(source).__name__.strip('_')}; "
                                "fastlstm reads an Expand of zeros (initial states)")


@converters.reader("Cast")
def _read_cast(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"to", "saturate"})
    source = inputs[0]
    if isinstance(source, _Const):
        dtype = reading.onnx.helper.tensor_dtype_to_np_dtype(attributes["to"])
        return [_Const(source.array.astype(dtype))]
    if isinstance(source, _Data) and attributes.get("to") == reading.onnx.TensorProto.FLOAT:
        return [source]
    if isinstance(source, (_Dims, _Zeros, _StateInput, _Lengths)):
        return [source]
    raise UnsupportedLayerError(f"{_where(node)}: casts the model's data")


@converters.reader("Range", "Less", "Greater")
def _read_lengths_arithmetic(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    if any(isinstance(v, _Data) for v in inputs):
        raise UnsupportedLayerError(f"{_where(node)}: on the model's data")
    if all(isinstance(v, _Const) for v in inputs) and node.op_type != "Range":
        compare = np.less if node.op_type == "Less" else np.greater
        return [_Const(compare(inputs[0].array, inputs[1].array))]
    return [_Lengths(False)]


# ------------------------------------------------------------ dense and merges


@converters.reader("MatMul")
def _read_matmul(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    data, kernel = inputs
    if isinstance(data, _Const) and isinstance(kernel, _Const):
        return [_Const(np.matmul(data.array, kernel.array))]
    if not isinstance(data, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: multiplies a constant by the model's "
                                    "data (fastlstm's Dense takes the data first)")
    data = _settle(reading, data, _where(node))
    if reading.role(data.axes[-1]) != "feature" or len(data.axes) not in (2, 3):
        raise UnsupportedLayerError(f"{_where(node)}: multiplies data of axes {data.axes}; a "
                                    "Dense takes the features last")
    kernel = _checked_initializer(kernel, node, "the weight", (data.sizes[-1],
                                  _const(kernel, node, "the weight").shape[-1]))
    return [_dense(data, kernel)]


def _dense(data, kernel):
    return data._replace(dense={"kernel": kernel, "bias": None, "activation": "linear"},
                         sizes=data.sizes[:-1] + (kernel.shape[1],))


@converters.reader("Gemm")
def _read_gemm(reading, node, inputs):
    attributes = _attributes(reading.onnx, node, {"alpha", "beta", "transA", "transB"})
    if attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0 \
            or attributes.get("transA", 0):
        raise UnsupportedLayerError(f"{_where(node)}: alpha, beta other than 1 or transA: "
                                    "fastlstm's Dense computes x @ kernel + bias")
    data = inputs[0]
    if not isinstance(data, _Data):
        raise UnsupportedLayerError(f"{_where(node)}: its A is not the model's data")
    data = reading.bind(_settle(reading, data, _where(node)), ("batch", "feature"),
                        _where(node))
    weight = _const(inputs[1], node, "B")
    if weight.ndim != 2:
        raise ConversionError(f"{_where(node)}: B has shape {weight.shape}, expected 2 axes")
    kernel = weight.T if attributes.get("transB", 0) else weight
    kernel = _checked_initializer(_Const(kernel), node, "B (as the kernel)",
                                  (data.sizes[-1], kernel.shape[1]))
    dense = _dense(data, kernel)
    if len(inputs) > 2 and inputs[2] is not None:
        dense = _add_bias(node, dense, inputs[2])
    return [dense]


def _add_bias(node, data, value):
    units = data.dense["kernel"].shape[1]
    bias = _const(value, node, "the bias")
    if bias.size != units or bias.shape[-1:] != (units,):
        raise ConversionError(f"{_where(node)}: the bias has shape {bias.shape}, expected "
                              f"({units},)")
    bias = _checked_initializer(_Const(bias.reshape(units)), node, "the bias", (units,))
    return data._replace(dense={**data.dense, "bias": bias})


def _merge_of(node, a, b, merge):
    """Two single directions of one bidirectional node, merged."""
    if not (a.parts and b.parts and len(a.parts) == len(b.parts) == 1):
        return None
    (pa,), (pb,) = a.parts, b.parts
    if pa.rnn is not pb.rnn or {pa.direction, pb.direction} != {0, 1} or pa.when != pb.when \
            or a.axes != b.axes:
        return None
    if merge == "sum" or pa.direction == 0:
        return a._replace(parts=(pa._replace(direction=merge),))
    return b._replace(parts=(pb._replace(direction=merge),))


@converters.reader("Add", "Mul")
def _read_add_mul(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    a, b = inputs
    if isinstance(a, _Const) and isinstance(b, _Const):
        combine = np.add if node.op_type == "Add" else np.multiply
        return [_Const(combine(a.array, b.array))]
    if node.op_type == "Add" and isinstance(b, _Data) and isinstance(a, _Const):
        a, b = b, a
    if node.op_type == "Add" and isinstance(a, _Data) and isinstance(b, _Const) \
            and a.dense is not None and a.dense["bias"] is None \
            and a.dense["activation"] == "linear":
        return [_add_bias(node, a, b)]
    if node.op_type == "Mul" and isinstance(b, _Data) and isinstance(a, _Lengths):
        a, b = b, a
    if node.op_type == "Mul" and isinstance(a, _Data) and isinstance(b, _Lengths) \
            and not a.layers and a.parts is None and a.dense is None:
        return [a]  # Masking's zeros past the lengths
    if isinstance(a, _Data) and isinstance(b, _Data):
        merged = _merge_of(node, a, b, "sum" if node.op_type == "Add" else "mul")
        if merged is not None:
            return [merged]
    raise UnsupportedLayerError(f"{_where(node)}: is no Dense bias, Masking, or merge of a "
                                "bidirectional node's two directions")


@converters.reader("Div")
def _read_div(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    a, b = inputs
    if isinstance(a, _Const) and isinstance(b, _Const):
        return [_Const(np.divide(a.array, b.array))]
    if isinstance(a, _Data) and isinstance(b, _Const) and a.parts and len(a.parts) == 1 \
            and a.parts[0].direction == "sum" and np.all(b.array == 2):
        return [a._replace(parts=(a.parts[0]._replace(direction="ave"),))]
    raise UnsupportedLayerError(f"{_where(node)}: is no average of a bidirectional node's two "
                                "directions")


@converters.reader("Relu", "Tanh", "Sigmoid")
def _read_activation(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    data = inputs[0]
    if not (isinstance(data, _Data) and data.dense is not None
            and data.dense["activation"] == "linear"):
        raise UnsupportedLayerError(f"{_where(node)}: fastlstm applies {node.op_type} only "
                                    "as the activation of a Dense (after MatMul or Gemm)")
    return [data._replace(dense={**data.dense, "activation": node.op_type.lower()})]


@converters.reader("Where")
def _read_where(reading, node, inputs):
    _attributes(reading.onnx, node, set())
    condition, steps, final = inputs
    if isinstance(condition, _Lengths) and isinstance(steps, _Data) \
            and isinstance(final, _Data) and steps.parts and len(steps.parts) == 1 \
            and final.dirs and len(final.dirs) == 1:
        part, last = steps.parts[0], final.dirs[0]
        if part.rnn is last.rnn and part.when == "seq" and last.when == "final" \
                and part.direction == last.direction == 0:
            return [steps._replace(parts=(part._replace(repeat=True),))]
    raise UnsupportedLayerError(f"{_where(node)}: is no repeat of a recurrent node's last "
                                "output past each row's length")


@converters.reader("Identity", "Dropout")
def _read_identity(reading, node, inputs):
    _attributes(reading.onnx, node, {"seed"} if node.op_type == "Dropout" else set())
    if node.op_type == "Dropout" and len(inputs) > 2 and inputs[2] is not None:
        training = _const(inputs[2], node, "training_mode")
        if bool(np.any(training)):
            raise UnsupportedLayerError(f"{_where(node)}: runs in training mode")
    return [inputs[0], _Unreadable(f"{_where(node)}: its mask feeds no fastlstm layer")]


# ------------------------------------------------------------ the graph


def _graph_inputs(reading, graph):
    """Values of the graph's inputs: the data (the first float input not an
    initializer), sequence_lens (an int input) and state inputs."""
    onnx = reading.onnx
    initialized = {t.name for t in graph.initializer}
    data_seen = False
    for value_info in graph.input:
        if value_info.name in initialized:
            continue
        tensor_type = value_info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in tensor_type.shape.dim]
        if tensor_type.elem_type in (onnx.TensorProto.INT32, onnx.TensorProto.INT64):
            reading.values[value_info.name] = _Lengths(True)
        elif not data_seen:
            if tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) not in (2, 3) \
                    or dims[-1] is None:
                raise ConversionError(f"the graph's input {value_info.name!r} must be float32 "
                                      "(batch, time, features) or (batch, features) with a "
                                      "known feature count")
            axes = ("x0", "x1", "feature") if len(dims) == 3 else ("x0", "feature")
            reading.values[value_info.name] = _Data((), axes, tuple(dims))
            data_seen = True
        else:
            reading.values[value_info.name] = _StateInput(value_info.name)
    if not data_seen:
        raise ConversionError("the graph has no float input")


def _run_graph(reading, graph):
    for tensor in graph.initializer:
        reading.values[tensor.name] = _Const(_tensor_array(reading.onnx, tensor, "initializer"))
    _graph_inputs(reading, graph)
    if len(graph.node) > _MAX_NODES:
        raise ConversionError(f"the graph has {len(graph.node)} nodes; at most {_MAX_NODES}")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedLayerError(f"{_where(node)}: operator domain {node.domain!r}")
        inputs = []
        for name in node.input:
            if name == "":
                inputs.append(None)
            elif name not in reading.values:
                raise ConversionError(f"{_where(node)}: input {name!r} is not computed before "
                                      "it (the graph is not in order, or damaged)")
            else:
                inputs.append(reading.values[name])
        unreadable = next((v for v in inputs if isinstance(v, _Unreadable)), None)
        if unreadable is not None:
            if node.op_type != "Identity":  # an extra graph output may pass one on
                raise UnsupportedLayerError(unreadable.reason)
            reading.values[node.output[0]] = unreadable
            continue
        reader = converters.reader_for(node.op_type)
        try:
            outputs = reader(reading, node, inputs)
        except ConversionError:
            raise
        except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
            raise ConversionError(f"{_where(node)}: its inputs do not fit it "
                                  f"({type(e).__name__}: {e})") from None
        for name, value in zip(node.output, outputs):
            if name:
                reading.values[name] = value
    if not graph.output:
        raise ConversionError("the graph has no output")
    output = reading.values.get(graph.output[0].name)
    if not isinstance(output, _Data):
        raise ConversionError(f"the graph's output {graph.output[0].name!r} is not computed "
                              "from its input")
    return _settle(reading, output, f"the output {graph.output[0].name!r}")


def _input_features(graph, reading):
    """(features, has a time axis) of the graph's data input."""
    for value_info in graph.input:
        value = reading.values.get(value_info.name)
        if isinstance(value, _Data) and not value.layers and value.parts is None:
            dims = value_info.type.tensor_type.shape.dim
            return dims[-1].dim_value, len(dims) == 3
    raise ConversionError("the graph has no data input")


def read_graph(onnx, graph):
    """The layers an ONNX graph computes.

    Parameters
    ----------
    onnx : module
        The onnx package.
    graph : onnx.GraphProto

    Returns
    -------
    stack : list of (Layer, list of ndarray)
        The fastlstm layers, unbuilt, each with its weights.
    lengths : bool
        Whether the graph's recurrent nodes run with sequence_lens.
    features : int
        The input's feature count.
    has_time : bool
        Whether the input has a time axis.
    """
    reading = _Reading(onnx)
    data = _run_graph(reading, graph)
    features, has_time = _input_features(graph, reading)
    return list(data.layers), reading.lengths, features, has_time

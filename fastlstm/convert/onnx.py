"""fastlstm models to and from ONNX graphs.

Writing (``to_onnx``) uses the standard operators: a recurrent layer is one
LSTM, GRU or RNN node (time-major, ``layout`` 0) whose weights are
initializers in ONNX's gate order (see fastlstm.convert._gates): W
(directions, gates * units, features), R (directions, gates * units,
units), B = [Wb, Rb] (fastlstm's one bias in Wb and zeros in Rb; a
reset_after GRU's two rows in Wb and Rb) and an LSTM's peepholes in P
(rows i, o, f). A GRU's ``reset_after`` is ``linear_before_reset``, a
Bidirectional is ``direction="bidirectional"`` with its merge mode as
Concat, Add, Mul or Add then Div, ``go_backwards`` is ``direction="reverse"``
with the output sequence reversed by a Slice. A Dense is MatMul, Add and
its activation; Dropout is left out (inference). The graph takes ``x``
(batch, time, features) float32 with a dynamic batch axis and returns
``y``.

With ``lengths=True`` the graph also takes ``sequence_lens`` (batch,)
int32, the number of data steps of each row, in place of the model's
leading Masking layer (padding at the end; see ``to_onnx``). With
``states=True`` every recurrent layer's initial states are inputs and its
final states outputs, so the graph can be run a chunk of steps at a time
(layers running backwards are refused then).

The model's layer classes, names and Dropout rates go in the metadata
property ``fastlstm_layers`` (JSON); ``from_onnx`` takes from it what the
operators cannot say (names, TimeDistributed, Dropout, Masking's value)
when it agrees with the graph, and ignores it otherwise.

Reading (``from_onnx``) follows the graph's values symbolically, never
running anything: recurrent nodes, MatMul/Gemm/Add and activations become
layers; the glue around them (Transpose, Squeeze, Reshape, Gather or Slice
of the last step, Concat of directions, zero initial states built from
Shape and ConstantOfShape or Expand, as PyTorch's exporter writes) must compute what
some fastlstm layer computes, or the op is refused by name.
"""
import json
from typing import NamedTuple

import numpy as np

from .. import layers
from ..models import Sequential
from . import _gates, files
from ._registry import (ConversionError, Converters, UnsupportedLayerError,
                        refuse_stateful)

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "to_onnx", "from_onnx", "read_onnx_file",
           "write_onnx_file"]

DEFAULT_OPSET = 17
# Squeeze and Unsqueeze take their axes as inputs from 13, recurrent
# nodes have their layout attribute from 14.
MIN_OPSET = 14
METADATA_KEY = "fastlstm_layers"
_MERGE_OPS = {"concat": "Concat", "sum": "Add", "mul": "Mul", "ave": "Add"}
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
_INT64_MAX = np.iinfo(np.int64).max

converters = Converters("ONNX")


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError('ONNX conversion needs the onnx package: '
                          'pip install "fastlstm[onnx]"') from None
    return onnx


# ======================================================================
# Writing
# ======================================================================


class _Graph:
    """The nodes, initializers, inputs and outputs of the graph being written."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self._taken = set()

    def name(self, base):
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name

    def constant(self, array, base):
        name = self.name(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op, inputs, base, outputs=1, **attributes):
        """Append a node; returns its output name (a list when `outputs` > 1)."""
        names = [self.name(f"{base}/{op}" + (f"_{i}" if outputs > 1 else ""))
                 for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names,
                                                     name=self.name(f"{base}/{op}_node"),
                                                     **attributes))
        return names if outputs > 1 else names[0]

    def value_info(self, name, elem_type, shape):
        return self.onnx.helper.make_tensor_value_info(name, elem_type, shape)


class _Flow(NamedTuple):
    """The tensor between two layers and its axes: "btf" (batch, time,
    features), "tbf" (time-major) or "bf" (batch, features)."""

    tensor: str
    layout: str


class _Export:
    """What the layer writers share: the graph, the lengths input and the options."""

    def __init__(self, graph, lengths, states):
        self.graph = graph
        self.lengths = lengths          # name of the int32 sequence_lens input, or None
        self.states = states
        self.layer_index = 0
        self._int64_lengths = self._time_mask = None

    def const(self, array, base, dtype=np.int64):
        return self.graph.constant(np.asarray(array, dtype=dtype), base)

    def time_major(self, flow, base):
        if flow.layout == "tbf":
            return flow.tensor
        if flow.layout != "btf":
            raise UnsupportedLayerError(f"{base}: a recurrent layer needs steps; its input "
                                        "has none")
        return self.graph.add("Transpose", [flow.tensor], base, perm=[1, 0, 2])

    def batch_major(self, flow, base):
        if flow.layout != "tbf":
            return flow
        return _Flow(self.graph.add("Transpose", [flow.tensor], base, perm=[1, 0, 2]), "btf")

    def reverse_time(self, tensor, base):
        """`tensor` with its first axis (time) reversed."""
        g = self.graph
        return g.add("Slice", [tensor, self.const([-1], base + "_start"),
                               self.const([-_INT64_MAX], base + "_end"),
                               self.const([0], base + "_axes"),
                               self.const([-1], base + "_steps")], base)

    def time_mask(self, time_major_tensor, base):
        """(time, batch, 1) float32, 1 at the steps within each row's length."""
        if self._time_mask is None:
            g = self.graph
            shape = g.add("Shape", [time_major_tensor], base + "_mask")
            steps = g.add("Gather", [shape, self.const(0, base + "_time_axis")], base + "_mask",
                          axis=0)
            index = g.add("Range", [self.const(0, base + "_zero"), steps,
                                    self.const(1, base + "_one")], base + "_mask")
            index = g.add("Unsqueeze", [index, self.const([1], base + "_batch_axis")],
                          base + "_mask")
            lengths = g.add("Cast", [self.lengths], base + "_mask",
                            to=self.graph.onnx.TensorProto.INT64)
            inside = g.add("Less", [index, lengths], base + "_mask")
            inside = g.add("Cast", [inside], base + "_mask", to=self.graph.onnx.TensorProto.FLOAT)
            self._time_mask = g.add("Unsqueeze", [inside, self.const([2], base + "_unit_axis")],
                                    base + "_mask")
        return self._time_mask


def _onnx_direction(layer):
    """W, R, B (or None) and P (or None) of one direction, in ONNX's layouts."""
    kind = _gates.cell_kind(layer)
    order = _gates.ONNX_ORDER[kind]
    kernel, recurrent_kernel = layer.weights[0], layer.weights[1]
    weights = {"W": _gates.to_rows(kernel, order), "R": _gates.to_rows(recurrent_kernel, order),
               "B": None, "P": None}
    if layer.use_bias:
        rows = layer.weights[2].reshape(-1, kernel.shape[1])
        recurrent_bias = rows[1] if len(rows) == 2 else np.zeros_like(rows[0])
        weights["B"] = np.concatenate([_gates.reorder_vector(rows[0], order),
                                       _gates.reorder_vector(recurrent_bias, order)])
    if getattr(layer, "peephole", False):
        peephole = layer.weights[3]
        weights["P"] = np.concatenate([peephole[0], peephole[2], peephole[1]]).astype(np.float32)
    return weights


def _cell_attributes(layer, count):
    """The recurrent node's attributes that depend on the cell, for `count` directions."""
    kind = _gates.cell_kind(layer)
    if kind == "GRU":
        return {"linear_before_reset": int(layer.reset_after)}
    if kind == "RNN":
        return {"activations": [layer.activation.capitalize()] * count}
    return {}


def _recurrent_node(export, flow, directions, direction, base):
    """The LSTM/GRU/RNN node of one or two fastlstm directions.

    Returns
    -------
    y : str
        Y, (time, directions, batch, units).
    y_h : str
        Y_h, (directions, batch, units).
    """
    g, first = export.graph, directions[0]
    kind = _gates.cell_kind(first)
    weights = [_onnx_direction(layer) for layer in directions]
    x = export.time_major(flow, base)
    inputs = [x] + [g.constant(np.stack([w[key] for w in weights]), f"{base}/{key}")
                    for key in ("W", "R")]
    inputs.append("" if weights[0]["B"] is None
                  else g.constant(np.stack([w["B"] for w in weights]), f"{base}/B"))
    inputs.append(export.lengths or "")
    state_names = ("h", "c") if kind == "LSTM" else ("h",)
    count = len(directions)
    if export.states:
        for state in state_names:
            name = g.name(f"{base}_{state}")
            g.inputs.append(g.value_info(name, g.onnx.TensorProto.FLOAT,
                                         [count, "batch", first.units]))
            inputs.append(name)
    else:
        inputs.extend([""] * len(state_names))
    if weights[0]["P"] is not None:
        inputs.append(g.constant(np.stack([w["P"] for w in weights]), f"{base}/P"))
    while inputs[-1] == "":
        inputs.pop()
    outputs = g.add(kind, inputs, base, outputs=1 + len(state_names), direction=direction,
                    hidden_size=first.units, **_cell_attributes(first, count))
    if export.states:
        for state, tensor in zip(state_names, outputs[1:]):
            name = g.name(f"{base}_{state}_out")
            g.nodes.append(g.onnx.helper.make_node("Identity", [tensor], [name],
                                                   name=g.name(f"{base}/{state}_out")))
            g.outputs.append(g.value_info(name, g.onnx.TensorProto.FLOAT,
                                          [count, "batch", first.units]))
    return x, outputs[0], outputs[1]


def _refuse_backward_states(export, layer, what):
    """With states=True, a layer running backwards is refused: the graph is
    run a chunk at a time, and a chunk run backwards from its own last step
    is not a piece of the pass backwards from the sequence's last step."""
    if export.states:
        raise UnsupportedLayerError(
            f"layer {layer.name!r}: {what} runs backwards from the last step of the whole "
            "sequence; with states=True the graph is run in chunks, and a chunk run backwards "
            "on its own is not that pass. Export it without states=True")


def _squeeze(export, tensor, axis, base):
    return export.graph.add("Squeeze", [tensor, export.const([axis], base + "_axis")], base)


@converters.writer(layers.LSTM, layers.GRU, layers.SimpleRNN)
def _write_recurrent(layer, export, flow):
    base = layer.name
    if layer.go_backwards:
        _refuse_backward_states(export, layer, "a go_backwards layer")
    direction = "reverse" if layer.go_backwards else "forward"
    x, y, y_h = _recurrent_node(export, flow, [layer], direction, base)
    if not layer.return_sequences:
        return _Flow(_squeeze(export, y_h, 0, base), "bf")
    y = _squeeze(export, y, 1, base)
    if layer.go_backwards:  # fastlstm returns the steps in the order it ran them
        y = export.reverse_time(y, base + "_reversed")
    elif export.lengths is not None:  # past a row's length: its last output, not zeros
        y = export.graph.add("Where", [export.graph.add("Cast", [export.time_mask(x, base)], base,
                                                        to=export.graph.onnx.TensorProto.BOOL),
                                       y, y_h], base)
    return _Flow(y, "tbf")


@converters.writer(layers.Bidirectional)
def _write_bidirectional(layer, export, flow):
    base = layer.name
    _refuse_backward_states(export, layer, "a Bidirectional's backward direction")
    if layer.layer.go_backwards:
        if export.lengths is not None:
            raise UnsupportedLayerError(f"layer {layer.name!r}: a Bidirectional of a "
                                        "go_backwards layer reverses the padding too; ONNX's "
                                        "sequence_lens cannot express it")
        flow = _Flow(export.reverse_time(export.time_major(flow, base), base + "_reversed"),
                     "tbf")
    _, y, y_h = _recurrent_node(export, flow, [layer.forward_layer, layer.backward_layer],
                                "bidirectional", base)
    source, axis, layout = (y, 1, "tbf") if layer.return_sequences else (y_h, 0, "bf")
    g = export.graph
    halves = [g.add("Gather", [source, export.const(d, f"{base}_direction_{d}")], base,
                    axis=axis) for d in (0, 1)]
    merge = layer.merge_mode
    attributes = {"axis": -1} if merge == "concat" else {}
    merged = g.add(_MERGE_OPS[merge], halves, base, **attributes)
    if merge == "ave":
        merged = g.add("Div", [merged, export.const(2.0, base + "_two", np.float32)], base)
    return _Flow(merged, layout)


def _write_dense_on(dense, export, flow, base):
    g = export.graph
    y = g.add("MatMul", [flow.tensor, g.constant(dense.weights[0], f"{base}/kernel")], base)
    if dense.use_bias:
        y = g.add("Add", [y, g.constant(dense.weights[1], f"{base}/bias")], base)
    if dense.activation != "linear":
        y = g.add(_ACTIVATION_OPS[dense.activation], [y], base)
    return _Flow(y, flow.layout)


@converters.writer(layers.Dense)
def _write_dense(layer, export, flow):
    return _write_dense_on(layer, export, flow, layer.name)


@converters.writer(layers.TimeDistributed)
def _write_time_distributed(layer, export, flow):
    if flow.layout == "bf":
        raise UnsupportedLayerError(f"layer {layer.name!r}: TimeDistributed needs steps")
    inner = layer.layer
    if type(inner) is layers.Dropout:
        return flow
    if type(inner) is not layers.Dense:
        raise UnsupportedLayerError(f"ONNX export holds TimeDistributed(Dense) and "
                                    f"TimeDistributed(Dropout); layer {layer.name!r} wraps "
                                    f"{type(inner).__name__}")
    return _write_dense_on(inner, export, flow, layer.name)


@converters.writer(layers.Dropout)
def _write_dropout(layer, export, flow):
    return flow  # inference


@converters.writer(layers.Masking)
def _write_masking(layer, export, flow):
    if export.lengths is None or export.layer_index != 0:
        raise UnsupportedLayerError(
            f"layer {layer.name!r}: ONNX cannot express Masking's masks, computed from the "
            "data with any pattern of steps; for padding at the end, make Masking the first "
            "layer and export with to_onnx(model, path, lengths=True): the graph then takes "
            "sequence_lens, the number of data steps of each row")
    x = export.time_major(flow, layer.name)
    return _Flow(export.graph.add("Mul", [x, export.time_mask(x, layer.name)], layer.name),
                 "tbf")


def _layer_metadata(layer):
    entry = {"class": type(layer).__name__, "name": layer.name}
    if type(layer) is layers.Dropout:
        entry["rate"] = layer.rate
    if type(layer) is layers.Masking:
        entry["mask_value"] = layer.mask_value
    if type(layer) is layers.TimeDistributed:
        entry["layer"] = _layer_metadata(layer.layer)
    return entry


def to_onnx(model, path, opset=DEFAULT_OPSET, states=False, lengths=False):
    """Write `model` as an ONNX graph that ONNX Runtime runs like ``model.predict``.

    Parameters
    ----------
    model : fastlstm.Sequential
        Built. Layers: LSTM (peepholes too), GRU (either reset_after),
        SimpleRNN (tanh, relu), Bidirectional of those (any merge mode),
        Dense, TimeDistributed(Dense), Dropout (left out), and a leading
        Masking with ``lengths=True``.
    path : str or path-like
    opset : int
        The default-domain opset, at least 14.
    states : bool
        Every recurrent layer ``L`` gets inputs ``L_h`` (and ``L_c`` for an
        LSTM), (1, batch, units), its initial states, and outputs
        ``L_h_out`` (``L_c_out``), its final states: feed those back to
        run a long sequence in chunks. Layers that run backwards
        (``go_backwards``, Bidirectional) are refused then: a chunk run
        backwards on its own is not part of the pass backwards over the
        whole sequence.
    lengths : bool
        The graph takes ``sequence_lens`` (batch,) int32 in place of the
        model's leading Masking layer: for rows whose padding is at the
        end and equals the mask value (and no data step equals it
        everywhere), the graph with each row's count of data steps gives
        what ``model.predict`` gives. Lengths must be at least 1.

    Raises
    ------
    UnsupportedLayerError
        A layer ONNX cannot express (Masking without ``lengths``, or not
        first; a layer running backwards with ``states``), named.
    """
    onnx = _import_onnx()
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastlstm Sequential, got {type(model).__name__}")
    if not model.built:
        model.build()  # from its Input; a ValueError says so when it has none
    if not states:
        refuse_stateful(model, "an ONNX graph without state inputs", "write it with "
                        "states=True and feed each run's final states to the next")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset must be an int in [{MIN_OPSET}, "
                         f"{onnx.defs.onnx_opset_version()}], got {opset!r}")
    if lengths and not (model.layers and type(model.layers[0]) is layers.Masking):
        raise ValueError("lengths=True stands for the model's leading Masking layer; this "
                         "model has none")
    graph = _Graph(onnx)
    x = graph.name("x")
    time = model.input_shape[0] if model.input_shape[0] is not None else "time"
    sample = [time, model.input_shape[-1]] if len(model.input_shape) == 2 \
        else list(model.input_shape)
    graph.inputs.append(graph.value_info(x, onnx.TensorProto.FLOAT, ["batch"] + sample))
    layout = "btf" if len(model.input_shape) == 2 else "bf"
    lengths_name = None
    if lengths:
        lengths_name = graph.name("sequence_lens")
        graph.inputs.append(graph.value_info(lengths_name, onnx.TensorProto.INT32, ["batch"]))
    export = _Export(graph, lengths_name, bool(states))
    flow = _Flow(x, layout)
    for index, layer in enumerate(model.layers):
        export.layer_index = index
        flow = converters.writer_for(layer)(layer, export, flow)
    flow = export.batch_major(flow, "output")
    y = graph.name("y")
    graph.nodes.append(onnx.helper.make_node("Identity", [flow.tensor], [y],
                                             name=graph.name("output/Identity")))
    output_shape = ["batch"] + [("time" if d is None else d) for d in model.output_shape]
    graph.outputs.insert(0, graph.value_info(y, onnx.TensorProto.FLOAT, output_shape))
    onnx_graph = onnx.helper.make_graph(graph.nodes, model.name, graph.inputs, graph.outputs,
                                        graph.initializers)
    onnx_model = onnx.helper.make_model(onnx_graph, producer_name="fastlstm",
                                        opset_imports=[onnx.helper.make_opsetid("", opset)])
    onnx.helper.set_model_props(onnx_model, {METADATA_KEY: json.dumps(
        [_layer_metadata(layer) for layer in model.layers])})
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, path)


def write_onnx_file(model, path):
    """``to_onnx(model, path)`` with the default options, and
    ``lengths=True`` when the model's first layer is Masking: the graph then
    takes ``sequence_lens`` (batch,) int32 beside ``x``, each row's count of
    data steps (padding at the end), in place of the Masking."""
    leading_masking = isinstance(model, Sequential) and bool(model.layers) \
        and type(model.layers[0]) is layers.Masking
    to_onnx(model, path, lengths=leading_masking)


# ======================================================================
# Reading (the operators' readers are in fastlstm.convert._onnx_reading)
# ======================================================================


def _metadata(onnx_model):
    for prop in onnx_model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                entries = json.loads(prop.value)
            except (ValueError, RecursionError):
                return None
            return entries if isinstance(entries, list) else None
    return None


def _with_metadata(stack, entries):
    """The layers with the names, wrappers, Dropout and Masking the metadata
    records, if it agrees with the graph's layers; None otherwise."""
    result, renames, remaining = [], [], list(stack)
    try:
        for entry in entries:
            cls, name = entry["class"], str(entry["name"])
            inner = entry.get("layer") if cls == "TimeDistributed" else None
            if cls == "Dropout":
                result.append((layers.Dropout(entry["rate"], name=name), []))
            elif cls == "Masking":
                mask_value = entry["mask_value"]
                if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
                    return None
                result.append((layers.Masking(mask_value, name=name), []))
            elif inner is not None and inner["class"] == "Dropout":
                wrapped = layers.Dropout(inner["rate"], name=str(inner["name"]))
                result.append((layers.TimeDistributed(wrapped, name=name), []))
            elif inner is not None and inner["class"] == "Dense":
                layer, weights = remaining.pop(0)
                if type(layer) is not layers.Dense:
                    return None
                renames.append((layer, str(inner["name"])))
                result.append((layers.TimeDistributed(layer, name=name), weights))
            else:
                layer, weights = remaining.pop(0)
                if type(layer).__name__ != cls:
                    return None
                renames.append((layer, name))
                result.append((layer, weights))
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    if remaining:
        return None
    for layer, name in renames:
        layer.name = name
    return result


def _load(onnx, path):
    try:
        with open(path, "rb") as f:
            content = f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConversionError(f"{path}: cannot be read ({e})") from None
    try:
        model = onnx.load_from_string(content)
    except Exception as e:  # protobuf's decode errors
        raise ConversionError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.HasField("graph"):
        raise ConversionError(f"{path}: not an ONNX model (no graph)")
    return model


def from_onnx(path):
    """The fastlstm model an ONNX graph computes, read without running anything.

    Parameters
    ----------
    path : str or path-like
        An ONNX file: ``to_onnx``'s, PyTorch's exporter's (nn.LSTM, nn.GRU,
        nn.RNN stacked or bidirectional, batch_first either way, then
        Linear layers), or any graph of LSTM, GRU and RNN nodes (default
        activations; RNN Tanh or Relu), MatMul/Gemm with Add and Relu,
        Tanh or Sigmoid, and the glue between them.

    Returns
    -------
    fastlstm.Sequential
        Built; it takes (batch, time, features) and returns batch first,
        whatever the graph's layout. It computes the graph's first output
        (``graph.output[0]``; ``y`` in a graph ``to_onnx`` wrote): further
        outputs, such as the final states of ``states=True`` or an
        exported module's ``h_n``, are not read. Initial states the graph
        takes as inputs are zeros in fastlstm (what ``predict`` starts
        from).

    Raises
    ------
    FileNotFoundError
    UnsupportedLayerError
        An operator, attribute or use of one that fastlstm cannot express,
        named.
    ConversionError
        A damaged file, initializers of the wrong shape or values, a graph
        not computed from its input.
    """
    onnx = _import_onnx()
    onnx_model = _load(onnx, path)
    for opset in onnx_model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < 7:
            raise ConversionError(f"{path}: opset {opset.version} is older than fastlstm reads")
    stack, lengths, features, has_time = _onnx_reading.read_graph(onnx, onnx_model.graph)
    if not stack:
        raise ConversionError(f"{path}: the graph computes no layer")
    entries = _metadata(onnx_model)
    restored = _with_metadata(stack, entries) if entries is not None else None
    if lengths and (restored is None or type(restored[0][0]) is not layers.Masking):
        raise UnsupportedLayerError(
            f"{path}: the graph takes sequence_lens; fastlstm expresses lengths as a leading "
            "Masking layer, whose mask value only a graph fastlstm wrote records")
    if restored is not None:
        stack = restored
    model = Sequential([layer for layer, _ in stack])
    try:
        model.build((None, features) if has_time else (features,))
    except ValueError as e:
        raise ConversionError(f"{path}: the layers do not chain: {e}") from None
    for layer, weights in stack:
        try:
            layer.set_weights(weights)
        except ValueError as e:
            raise ConversionError(f"{path}: {e}") from None
    return model


def read_onnx_file(path):
    """``from_onnx(path)``."""
    return from_onnx(path)


from . import _onnx_reading  # noqa: E402  (registers the readers in `converters`)


files.register(".onnx", "ONNX graph", read=read_onnx_file, write=write_onnx_file)

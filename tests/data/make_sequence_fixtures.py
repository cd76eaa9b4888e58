"""Write sequence_fixtures.npz: variable-length batches through recurrent
layers of PyTorch (packed sequences), ONNX Runtime (sequence_lens) and
Keras 3 (masking), recorded on fixed inputs.

Run by hand where torch, keras (3.x), onnx and onnxruntime are installed
(tensorflow is not needed: Keras runs on its torch backend):

    python tests/data/make_sequence_fixtures.py

Everything is float32 (lengths int64/int32, masks bool) with fixed seeds and
non-zero biases; batch 4, time 6, features 3, units 5, row lengths
[6, 2, 4, 1] (unsorted). Arrays are stored in each framework's own layout;
the tests convert them. The file also holds the versions used, as
one-string arrays: ``torch_version``, ``keras_version``, ``onnx_version``
and ``onnxruntime_version``.

PyTorch, forward and gradients; prefixes ``torch_packed_bilstm``
(nn.LSTM, bidirectional), ``torch_packed_bigru`` (nn.GRU, bidirectional) and
``torch_packed_lstm`` (nn.LSTM, one direction). One layer, batch_first,
run on ``pack_padded_sequence(x, lengths, batch_first=True,
enforce_sorted=False)``; y comes from ``pad_packed_sequence(...,
total_length=6)``, so it is zero after each row's length. x is random
(non-zero) after each row's length too: those steps must be ignored.
Keys, D = 2 for the bidirectional modules and 1 otherwise:

    <prefix>_x (4, 6, 3)          <prefix>_lengths (4,) int64
    <prefix>_h0 (D, 4, 5)         <prefix>_c0 (D, 4, 5)         [LSTM only]
    <prefix>_y (4, 6, D*5)        <prefix>_h_n (D, 4, 5)
    <prefix>_c_n (D, 4, 5)                                      [LSTM only]
    <prefix>_gy, _gh, _gc         loss weights, shapes of y, h_n, c_n
    <prefix>_<name>               every named parameter under its torch name:
                                  weight_ih_l0, weight_hh_l0, bias_ih_l0,
                                  bias_hh_l0 and, when bidirectional, the
                                  same names with the suffix _reverse
    <prefix>_d_x, _d_h0, _d_c0, _d_<name>
                                  gradients of L = sum(y*gy) + sum(h_n*gh)
                                  (+ sum(c_n*gc)) from torch.autograd.grad

ONNX Runtime, forward only, opset 14, layout 0; prefixes
``onnx_seq_lstm_reverse`` (LSTM, direction="reverse"),
``onnx_seq_lstm_bidirectional`` (LSTM), ``onnx_seq_gru_bidirectional``
(GRU, linear_before_reset=1) and ``onnx_seq_rnn_reverse`` (RNN, tanh). The
arrays are exactly what the graph is fed and returns, D = num_directions,
G = 4 (LSTM; gate blocks i, o, f, c), 3 (GRU; z, r, h) or 1 (RNN):

    <prefix>_X (6, 4, 3)          time-major; random after each length
    <prefix>_W (D, G*5, 3)        <prefix>_R (D, G*5, 5)
    <prefix>_B (D, 2*G*5)         [Wb, Rb] per direction
    <prefix>_sequence_lens (4,) int32
    <prefix>_initial_h (D, 4, 5)  <prefix>_initial_c (D, 4, 5)  [LSTM only]
    <prefix>_Y (6, D, 4, 5)       <prefix>_Y_h (D, 4, 5)
    <prefix>_Y_c (D, 4, 5)                                      [LSTM only]

ONNX Runtime zeroes Y after each row's length; for the reverse direction
Y_h is the output at step 0 (and Y at step t < length is in input order).

A row of length 0: the same keys with prefixes ``onnx_len0_lstm_bidirectional``,
``onnx_len0_gru_bidirectional`` and ``onnx_len0_rnn_reverse`` and
sequence_lens [6, 0, 4, 1]. The ONNX operator specification does not say
what a length of 0 means. The onnxruntime recorded here accepts it and gives
zeros for that row in Y, Y_h and Y_c (not initial_h or initial_c); older
onnxruntime releases reject it ("All values must be > 0"). If the installed
onnxruntime rejects it, these keys are left out.

Keras 3, forward only, on the torch backend. Each fixture is its own small
model whose recurrent weights are drawn with numpy and set with
set_weights; masked steps are all-zero feature vectors and the model starts
with keras.layers.Masking(mask_value=0.0), except where said. Keys:

    <prefix>_x (4, 6, 3)          <prefix>_mask (4, 6) bool, x != 0 anywhere
    <prefix>_kernel, _recurrent_kernel, _bias
                                  layer.get_weights() of a bare layer
    <prefix>_forward_kernel, _forward_recurrent_kernel, _forward_bias,
    <prefix>_backward_kernel, _backward_recurrent_kernel, _backward_bias
                                  Bidirectional.get_weights(), in its order
    <prefix>_y                    the model output

LSTM kernel (3, 20), recurrent_kernel (5, 20), bias (20,), gate blocks
i, f, c, o. GRU (reset_after=True) kernel (3, 15), recurrent_kernel (5, 15),
bias (2, 15) = [input bias, recurrent bias], gate blocks z, r, h.

    keras_mask_lstm_post       LSTM(return_sequences=True), trailing padding;
                               y (4, 6, 5)
    keras_mask_lstm_pre        the same with leading padding (pad_sequences'
                               default); y (4, 6, 5)
    keras_mask_bilstm_concat   Bidirectional(LSTM(return_sequences=True)),
                               merge_mode "concat", trailing padding;
                               y (4, 6, 10)
    keras_mask_bigru_sum       Bidirectional(GRU(return_sequences=True),
                               merge_mode="sum"), trailing padding;
                               y (4, 6, 5)
    keras_mask_bilstm_last     Bidirectional(LSTM()) (return_sequences
                               False), "concat", trailing padding; y (4, 10)
    keras_mask_lstm_backwards  LSTM(return_sequences=True,
                               go_backwards=True), trailing padding;
                               y (4, 6, 5)
    keras_mask_gru_backwards   GRU(go_backwards=True) (return_sequences
                               False), trailing padding; y (4, 5)
    keras_mask_lstm_gap        LSTM(return_sequences=True), masked steps
                               inside rows: row 0 step 2, row 1 steps 1
                               and 3, row 2 none, row 3 steps 0 and 5;
                               y (4, 6, 5)
    keras_state_lstm_plain     LSTM(return_sequences=True, return_state=True)
                               called on x with initial_state=[h0, c0],
                               no mask; adds _h0, _c0, _h, _c (4, 5)
    keras_state_lstm_masked    the same layer call with the Masking mask
                               (mask=...) and rows 0, 1 padded at the end,
                               rows 2, 3 at the start; adds _h0, _c0, _h, _c

What Keras gives at masked steps (recorded as it is):
  * A bare layer with return_sequences=True repeats its previous output at a
    masked step and keeps its states unchanged. Before the first unmasked
    step the "previous output" is zeros, even when initial_state is not zero
    (keras_state_lstm_masked); the states still start from h0, c0.
    With return_sequences=False the output is the one at the last unmasked
    step.
  * Inside Bidirectional with return_sequences=True, both directions output
    zeros at masked steps (Bidirectional sets zero_output_for_mask on its
    layers). The backward half is flipped back to input order.
  * go_backwards=True: the layer reads the steps from last to first and
    returns its outputs in that reading order (not flipped back). With
    trailing padding the masked steps come first in that order, so the
    outputs there are zeros; the last output belongs to input step 0.

The tests then check fastlstm against these numbers without any framework.
"""
import os

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

BATCH, TIME, FEATURES, UNITS = 4, 6, 3, 5
LENGTHS = [6, 2, 4, 1]


def _random(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()


# --------------------------------------------------------------- PyTorch


def torch_packed_fixture(prefix, module, rng):
    """A one-layer batch_first torch LSTM or GRU run on a packed batch with
    initial states: inputs, parameters, outputs, loss weights, gradients."""
    lstm = isinstance(module, torch.nn.LSTM)
    directions = 2 if module.bidirectional else 1
    lengths = torch.tensor(LENGTHS, dtype=torch.int64)
    x = torch.tensor(_random(rng, BATCH, TIME, FEATURES), requires_grad=True)
    h0 = torch.tensor(_random(rng, directions, BATCH, UNITS), requires_grad=True)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    if lstm:
        c0 = torch.tensor(_random(rng, directions, BATCH, UNITS), requires_grad=True)
        packed_y, (h_n, c_n) = module(packed, (h0, c0))
    else:
        packed_y, h_n = module(packed, h0)
    y, _ = pad_packed_sequence(packed_y, batch_first=True, total_length=TIME)

    gy = _random(rng, BATCH, TIME, directions * UNITS)
    gh = _random(rng, directions, BATCH, UNITS)
    loss = (y * torch.from_numpy(gy)).sum() + (h_n * torch.from_numpy(gh)).sum()
    out = {"x": _numpy(x), "lengths": lengths.numpy().copy(), "h0": _numpy(h0),
           "y": _numpy(y), "h_n": _numpy(h_n), "gy": gy, "gh": gh}
    wrt = [x, h0]
    wrt_names = ["x", "h0"]
    if lstm:
        gc = _random(rng, directions, BATCH, UNITS)
        loss = loss + (c_n * torch.from_numpy(gc)).sum()
        out.update(c0=_numpy(c0), c_n=_numpy(c_n), gc=gc)
        wrt.append(c0)
        wrt_names.append("c0")
    for name, param in module.named_parameters():
        out[name] = _numpy(param)
        wrt.append(param)
        wrt_names.append(name)
    for name, grad in zip(wrt_names, torch.autograd.grad(loss, wrt)):
        out[f"d_{name}"] = _numpy(grad)
    return {f"{prefix}_{k}": v for k, v in out.items()}


def torch_fixtures(rng):
    torch.manual_seed(17)
    modules = {
        "torch_packed_bilstm": torch.nn.LSTM(FEATURES, UNITS, batch_first=True,
                                             bidirectional=True),
        "torch_packed_bigru": torch.nn.GRU(FEATURES, UNITS, batch_first=True,
                                           bidirectional=True),
        "torch_packed_lstm": torch.nn.LSTM(FEATURES, UNITS, batch_first=True),
    }
    out = {"torch_version": np.array([torch.__version__])}
    for prefix, module in modules.items():
        out.update(torch_packed_fixture(prefix, module, rng))
    return out


# ---------------------------------------------------------- ONNX Runtime

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def onnx_recurrent_model(op, direction, **attributes):
    """An ONNX graph of one LSTM, GRU or RNN node with inputs X, W, R, B,
    sequence_lens, initial_h (and initial_c); layout 0 (time-major)."""
    f = TensorProto.FLOAT
    d = 2 if direction == "bidirectional" else 1
    g = _GATES[op]
    inputs = [helper.make_tensor_value_info("X", f, [TIME, BATCH, FEATURES]),
              helper.make_tensor_value_info("W", f, [d, g * UNITS, FEATURES]),
              helper.make_tensor_value_info("R", f, [d, g * UNITS, UNITS]),
              helper.make_tensor_value_info("B", f, [d, 2 * g * UNITS]),
              helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [BATCH]),
              helper.make_tensor_value_info("initial_h", f, [d, BATCH, UNITS])]
    outputs = [helper.make_tensor_value_info("Y", f, [TIME, d, BATCH, UNITS]),
               helper.make_tensor_value_info("Y_h", f, [d, BATCH, UNITS])]
    if op == "LSTM":
        inputs.append(helper.make_tensor_value_info("initial_c", f, [d, BATCH, UNITS]))
        outputs.append(helper.make_tensor_value_info("Y_c", f, [d, BATCH, UNITS]))
    node = helper.make_node(op, [i.name for i in inputs], [o.name for o in outputs],
                            hidden_size=UNITS, direction=direction, **attributes)
    graph = helper.make_graph([node], f"{op.lower()}_{direction}", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def onnx_fixture(prefix, rng, op, direction, lengths, **attributes):
    """Inputs and outputs of one recurrent node run by ONNX Runtime, in ONNX
    layout; an empty dict if ONNX Runtime rejects the lengths."""
    d = 2 if direction == "bidirectional" else 1
    g = _GATES[op]
    feed = {"X": _random(rng, TIME, BATCH, FEATURES),
            "W": _random(rng, d, g * UNITS, FEATURES, scale=0.5),
            "R": _random(rng, d, g * UNITS, UNITS, scale=0.5),
            "B": _random(rng, d, 2 * g * UNITS, scale=0.3),
            "sequence_lens": np.array(lengths, dtype=np.int32),
            "initial_h": _random(rng, d, BATCH, UNITS)}
    if op == "LSTM":
        feed["initial_c"] = _random(rng, d, BATCH, UNITS)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = onnx_recurrent_model(op, direction, **attributes)
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    try:
        results = session.run(None, feed)
    except Exception as error:  # onnxruntime's own error types vary by release
        print(f"{prefix}: onnxruntime rejects sequence_lens {lengths}: {error}")
        return {}
    out = dict(feed)
    out.update(zip([o.name for o in session.get_outputs()], results))
    return {f"{prefix}_{k}": v for k, v in out.items()}


def onnx_fixtures(rng):
    cases = [("lstm_reverse", "LSTM", "reverse", {}),
             ("lstm_bidirectional", "LSTM", "bidirectional", {}),
             ("gru_bidirectional", "GRU", "bidirectional", {"linear_before_reset": 1}),
             ("rnn_reverse", "RNN", "reverse", {})]
    out = {"onnx_version": np.array([onnx.__version__]),
           "onnxruntime_version": np.array([onnxruntime.__version__])}
    for name, op, direction, attributes in cases:
        out.update(onnx_fixture(f"onnx_seq_{name}", rng, op, direction, LENGTHS,
                                **attributes))
    zero_length = [6, 0, 4, 1]
    for name, op, direction, attributes in [cases[1], cases[2], cases[3]]:
        fixture = onnx_fixture(f"onnx_len0_{name}", rng, op, direction, zero_length,
                               **attributes)
        if fixture:
            # The docstring describes this output; stop if a release differs.
            row = zero_length.index(0)
            for key in ("Y", "Y_h", "Y_c"):
                if f"onnx_len0_{name}_{key}" in fixture:
                    assert not fixture[f"onnx_len0_{name}_{key}"][..., row, :].any(), key
        out.update(fixture)
    return out


# ----------------------------------------------------------------- Keras


def _keras_x(rng, mask):
    """Random inputs with all-zero feature vectors where `mask` is False."""
    x = _random(rng, BATCH, TIME, FEATURES)
    x[~mask] = 0.0
    return x


def _post_mask():
    return np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None]


def _pre_mask():
    return np.arange(TIME)[None, :] >= TIME - np.array(LENGTHS)[:, None]


def _set_random_weights(layer, rng):
    """Give a built recurrent layer (or Bidirectional) numpy-drawn weights,
    biases included, and return them as layer.get_weights() gives them."""
    weights = [_random(rng, *w.shape, scale=0.3 if w.path.endswith("bias") else 0.5)
               for w in layer.weights]
    layer.set_weights(weights)
    return [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]


def _weight_names(layer):
    names = ["kernel", "recurrent_kernel", "bias"]
    if isinstance(layer, keras.layers.Bidirectional):
        # get_weights(): the forward layer's weights, then the backward one's.
        paths = [w.path for w in layer.weights]
        assert all("forward" in p for p in paths[:3]) and all("backward" in p for p in paths[3:])
        return [f"forward_{n}" for n in names] + [f"backward_{n}" for n in names]
    return names


def keras_masked_fixture(prefix, layer, rng, mask):
    """keras.Sequential of Masking(0.0) and `layer`, run on x whose steps
    where `mask` is False are all-zero vectors."""
    x = _keras_x(rng, mask)
    model = keras.Sequential([keras.Input((TIME, FEATURES)),
                              keras.layers.Masking(mask_value=0.0), layer])
    weights = _set_random_weights(layer, rng)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    out = {"x": x, "mask": (x != 0).any(axis=-1), "y": y}
    assert (out["mask"] == mask).all()
    out.update(zip(_weight_names(layer), weights))
    return {f"{prefix}_{k}": v for k, v in out.items()}


def keras_state_fixture(prefix, rng, mask=None):
    """LSTM(return_sequences=True, return_state=True) called on x with
    initial_state=[h0, c0], with the Masking mask if `mask` is given."""
    layer = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    layer.build((BATCH, TIME, FEATURES))
    weights = _set_random_weights(layer, rng)
    x = _random(rng, BATCH, TIME, FEATURES) if mask is None else _keras_x(rng, mask)
    h0, c0 = _random(rng, BATCH, UNITS), _random(rng, BATCH, UNITS)
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = keras.layers.Masking(mask_value=0.0).compute_mask(x)
    y, h, c = layer(x, initial_state=[h0, c0], training=False, **kwargs)
    out = {"x": x, "mask": (x != 0).any(axis=-1), "h0": h0, "c0": c0,
           "y": keras.ops.convert_to_numpy(y), "h": keras.ops.convert_to_numpy(h),
           "c": keras.ops.convert_to_numpy(c)}
    out.update(zip(_weight_names(layer), weights))
    return {f"{prefix}_{k}": v for k, v in out.items()}


def keras_fixtures(rng):
    keras.utils.set_random_seed(23)
    layers = keras.layers
    post, pre = _post_mask(), _pre_mask()
    gap = np.ones((BATCH, TIME), dtype=bool)
    gap[0, 2] = gap[1, 1] = gap[1, 3] = gap[3, 0] = gap[3, 5] = False
    mixed = np.concatenate([post[:2], pre[2:]])
    cases = [
        ("keras_mask_lstm_post", layers.LSTM(UNITS, return_sequences=True), post),
        ("keras_mask_lstm_pre", layers.LSTM(UNITS, return_sequences=True), pre),
        ("keras_mask_bilstm_concat",
         layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True),
                              merge_mode="concat"), post),
        ("keras_mask_bigru_sum",
         layers.Bidirectional(layers.GRU(UNITS, return_sequences=True),
                              merge_mode="sum"), post),
        ("keras_mask_bilstm_last",
         layers.Bidirectional(layers.LSTM(UNITS), merge_mode="concat"), post),
        ("keras_mask_lstm_backwards",
         layers.LSTM(UNITS, return_sequences=True, go_backwards=True), post),
        ("keras_mask_gru_backwards", layers.GRU(UNITS, go_backwards=True), post),
        ("keras_mask_lstm_gap", layers.LSTM(UNITS, return_sequences=True), gap),
    ]
    out = {"keras_version": np.array([keras.__version__])}
    for prefix, layer, mask in cases:
        out.update(keras_masked_fixture(prefix, layer, rng, mask))
    out.update(keras_state_fixture("keras_state_lstm_plain", rng))
    out.update(keras_state_fixture("keras_state_lstm_masked", rng, mixed))
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(2029)
    arrays = {**torch_fixtures(rng), **onnx_fixtures(rng), **keras_fixtures(rng)}
    assert all(a.dtype == np.float32 for a in arrays.values() if a.dtype.kind == "f")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sequence_fixtures.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): {len(arrays)} arrays")

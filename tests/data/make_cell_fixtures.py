"""Write cell_fixtures.npz: GRU, simple RNN and peephole LSTM outputs and
gradients recorded from PyTorch, Keras 3 and ONNX Runtime on fixed inputs.

Run by hand where torch, keras (3.x) and onnx with onnxruntime are installed
(tensorflow is not needed: Keras runs on its torch backend):

    python tests/data/make_cell_fixtures.py

Everything is float32 with fixed seeds and non-zero biases. For each
PyTorch and Keras layer the loss is L = sum(y * gy) + sum(h_n * gh), with gy
and gh random and stored; its gradients with respect to the inputs, the
initial state and every weight come from torch.autograd.grad (on Keras'
torch backend a layer call returns torch tensors and each weight's
``.value`` is a torch Parameter). Arrays are stored in each framework's own
layout; tests/test_reference_cells.py converts them. ONNX Runtime is
recorded forward only: its LSTM with peepholes (input P).

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

BATCH, TIME, FEATURES, UNITS = 3, 5, 3, 4


def _random(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _loss_weights(rng):
    """gy (batch, time, units) and gh (batch, units) of L = sum(y*gy) + sum(h_n*gh)."""
    return _random(rng, BATCH, TIME, UNITS), _random(rng, BATCH, UNITS)


def _gradients(y, h_n, gy, gh, tensors):
    """dL/d(each of `tensors`) as float32 arrays."""
    loss = (y * torch.from_numpy(gy)).sum() + (h_n * torch.from_numpy(gh)).sum()
    return [g.detach().numpy().copy() for g in torch.autograd.grad(loss, tensors)]


def torch_fixture(prefix, module, rng):
    """A one-layer batch_first torch RNN module with h0: its parameters, the
    inputs, outputs y and h_n, gy, gh and the gradients (d_ prefix)."""
    x = torch.tensor(_random(rng, BATCH, TIME, FEATURES), requires_grad=True)
    h0 = torch.tensor(_random(rng, 1, BATCH, UNITS), requires_grad=True)
    gy, gh = _loss_weights(rng)
    y, h_n = module(x, h0)
    names, params = zip(*module.named_parameters())
    grads = _gradients(y, h_n, gy, gh, [x, h0, *params])
    out = {"x": x.detach().numpy(), "h0": h0.detach().numpy()[0],
           "y": y.detach().numpy(), "h_n": h_n.detach().numpy()[0], "gy": gy, "gh": gh,
           "d_x": grads[0], "d_h0": grads[1][0]}
    for name, param, grad in zip(names, params, grads[2:]):
        out[name] = param.detach().numpy().copy()
        out[f"d_{name}"] = grad
    return {f"{prefix}_{k}": v for k, v in out.items()}


def torch_fixtures(rng):
    torch.manual_seed(5)
    gru = torch.nn.GRU(FEATURES, UNITS, batch_first=True)
    rnn_tanh = torch.nn.RNN(FEATURES, UNITS, nonlinearity="tanh", batch_first=True)
    rnn_relu = torch.nn.RNN(FEATURES, UNITS, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        # Most units active, so that the recorded gradients flow through relu.
        rnn_relu.bias_ih_l0 += 0.5
    return {**torch_fixture("torch_gru", gru, rng),
            **torch_fixture("torch_rnn_tanh", rnn_tanh, rng),
            **torch_fixture("torch_rnn_relu", rnn_relu, rng),
            "torch_version": np.array([torch.__version__])}


def keras_fixture(prefix, layer, rng):
    """A Keras recurrent layer with perturbed weights (biases non-zero), called
    with an initial state: weights in Keras' layout, inputs, outputs,
    gy, gh and the gradients (d_ prefix)."""
    x = torch.tensor(_random(rng, BATCH, TIME, FEATURES), requires_grad=True)
    h0 = torch.tensor(_random(rng, BATCH, UNITS), requires_grad=True)
    layer.build((BATCH, TIME, FEATURES))
    layer.set_weights([w + _random(rng, *w.shape, scale=0.2) for w in layer.get_weights()])
    gy, gh = _loss_weights(rng)
    y, h_n = layer(x, initial_state=[h0])
    weights = [w.value for w in layer.trainable_weights]
    grads = _gradients(y, h_n, gy, gh, [x, h0, *weights])
    names = ["kernel", "recurrent_kernel", "bias"]
    out = {"x": x.detach().numpy(), "h0": h0.detach().numpy(),
           "y": y.detach().cpu().numpy(), "h_n": h_n.detach().cpu().numpy(),
           "gy": gy, "gh": gh, "d_x": grads[0], "d_h0": grads[1]}
    for name, weight, grad in zip(names, layer.get_weights(), grads[2:]):
        out[name] = weight
        out[f"d_{name}"] = grad
    return {f"{prefix}_{k}": v for k, v in out.items()}


def keras_fixtures(rng):
    keras.utils.set_random_seed(11)
    options = dict(return_sequences=True, return_state=True)
    layers = {"keras_gru_reset_after": keras.layers.GRU(UNITS, reset_after=True, **options),
              "keras_gru_reset_before": keras.layers.GRU(UNITS, reset_after=False, **options),
              "keras_rnn_tanh": keras.layers.SimpleRNN(UNITS, activation="tanh", **options),
              "keras_rnn_relu": keras.layers.SimpleRNN(UNITS, activation="relu", **options)}
    out = {"keras_version": np.array([keras.__version__])}
    for prefix, layer in layers.items():
        out.update(keras_fixture(prefix, layer, rng))
    return out


def onnx_peephole_lstm_model():
    """An ONNX graph of one LSTM node with inputs X, W, R, B, (no sequence
    lengths), initial_h, initial_c and P; layout 0 (time-major)."""
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", f, [TIME, BATCH, FEATURES]),
              helper.make_tensor_value_info("W", f, [1, 4 * UNITS, FEATURES]),
              helper.make_tensor_value_info("R", f, [1, 4 * UNITS, UNITS]),
              helper.make_tensor_value_info("B", f, [1, 8 * UNITS]),
              helper.make_tensor_value_info("initial_h", f, [1, BATCH, UNITS]),
              helper.make_tensor_value_info("initial_c", f, [1, BATCH, UNITS]),
              helper.make_tensor_value_info("P", f, [1, 3 * UNITS])]
    outputs = [helper.make_tensor_value_info("Y", f, [TIME, 1, BATCH, UNITS]),
               helper.make_tensor_value_info("Y_h", f, [1, BATCH, UNITS]),
               helper.make_tensor_value_info("Y_c", f, [1, BATCH, UNITS])]
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "", "initial_h", "initial_c", "P"],
                            ["Y", "Y_h", "Y_c"], hidden_size=UNITS)
    graph = helper.make_graph([node], "peephole_lstm", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model


def onnx_fixture(rng):
    """ONNX Runtime's LSTM with peepholes, in ONNX layout: W (4u, I), R (4u, u)
    with gate blocks i, o, f, c; B = [Wb, Rb] (8u,); P (3u,) blocks i, o, f.
    x and the outputs are stored batch-first: Y (batch, time, units)."""
    x = _random(rng, BATCH, TIME, FEATURES)
    w = _random(rng, 4 * UNITS, FEATURES, scale=0.5)
    r = _random(rng, 4 * UNITS, UNITS, scale=0.5)
    b = _random(rng, 8 * UNITS, scale=0.3)
    p = _random(rng, 3 * UNITS, scale=0.5)
    h0, c0 = _random(rng, BATCH, UNITS), _random(rng, BATCH, UNITS)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_peephole_lstm_model().SerializeToString(),
                                           options, providers=["CPUExecutionProvider"])
    y, y_h, y_c = session.run(None, {
        "X": np.ascontiguousarray(x.transpose(1, 0, 2)), "W": w[None], "R": r[None],
        "B": b[None], "initial_h": h0[None], "initial_c": c0[None], "P": p[None]})
    return {"onnx_x": x, "onnx_W": w, "onnx_R": r, "onnx_B": b, "onnx_P": p,
            "onnx_initial_h": h0, "onnx_initial_c": c0,
            "onnx_Y": y[:, 0].transpose(1, 0, 2).copy(), "onnx_Y_h": y_h[0], "onnx_Y_c": y_c[0],
            "onnx_version": np.array([onnx.__version__]),
            "onnxruntime_version": np.array([onnxruntime.__version__])}


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(2027)
    arrays = {**torch_fixtures(rng), **keras_fixtures(rng), **onnx_fixture(rng)}
    assert all(a.dtype == np.float32 for a in arrays.values() if a.dtype.kind == "f")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cell_fixtures.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): {len(arrays)} arrays")

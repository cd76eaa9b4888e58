"""Lengths, reversed runs, masks, Bidirectional and go_backwards against
numbers recorded once from PyTorch (packed sequences, with gradients), ONNX
Runtime (sequence_lens, reverse and bidirectional) and Keras 3 (Masking)
in data/sequence_fixtures.npz, made by data/make_sequence_fixtures.py.
Both the reference and the engine are held to them."""
import pathlib

import numpy as np
import pytest
from conftest import relative_error

import fastlstm
from fastlstm import functional, reference
from fastlstm import layers as L

FIXTURES = np.load(pathlib.Path(__file__).resolve().parent / "data" / "sequence_fixtures.npz")
MODULES = [reference, functional]
TOLERANCE = 2e-5

# Keras' gate blocks as the other framework's: block k of Keras' layout is
# block KERAS_FROM[framework][cell][k] of the framework's.
KERAS_FROM = {"torch": {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2)},
              "onnx": {"lstm": (0, 2, 3, 1), "gru": (0, 1, 2), "rnn": (0,)}}


def fixture(prefix):
    return {k[len(prefix) + 1:]: FIXTURES[k] for k in FIXTURES.files
            if k.startswith(prefix + "_")}


def blocks(array, order):
    """`array`'s gate blocks along its last axis, taken in `order`."""
    parts = np.split(array, len(order), axis=-1)
    return np.concatenate([parts[k] for k in order], axis=-1)


def keras_weights(cell, order, w_input, w_recurrent, b_input, b_recurrent):
    """Keras' (kernel, recurrent_kernel, bias) from (G, features) and (G,
    units) matrices and the two bias vectors of another framework."""
    kernel, recurrent = blocks(w_input.T, order), blocks(w_recurrent.T, order)
    b_input, b_recurrent = blocks(b_input, order), blocks(b_recurrent, order)
    bias = np.stack([b_input, b_recurrent]) if cell == "gru" else b_input + b_recurrent
    return kernel, recurrent, bias


def forward(module, cell, x, weights, states, **options):
    if cell == "lstm":
        return module.lstm_forward(x, *weights, *states, **options)
    if cell == "gru":
        return module.gru_forward(x, *weights, *states, reset_after=True, **options)
    return module.simple_rnn_forward(x, *weights, *states, **options)


def backward(module, cell, cache, dy, state_grads):
    name = {"lstm": "lstm_backward", "gru": "gru_backward"}[cell]
    return getattr(module, name)(cache, dy, *state_grads)


def assert_close(actual, expected, what):
    assert relative_error(actual, expected) < TOLERANCE, what


# ------------------------------------------------------------ PyTorch


def torch_direction(f, cell, suffix):
    return keras_weights(cell, KERAS_FROM["torch"][cell], f["weight_ih_l0" + suffix],
                         f["weight_hh_l0" + suffix], f["bias_ih_l0" + suffix],
                         f["bias_hh_l0" + suffix])


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("prefix, cell, directions", [("torch_packed_bilstm", "lstm", 2),
                                                      ("torch_packed_bigru", "gru", 2),
                                                      ("torch_packed_lstm", "lstm", 1)])
def test_packed_sequences_match_pytorch_with_gradients(module, prefix, cell, directions):
    f = fixture(prefix)
    units = f["h0"].shape[2]
    state_keys = ["h0", "c0"] if cell == "lstm" else ["h0"]
    final_keys, grad_keys = ["h_n", "c_n"][:len(state_keys)], ["gh", "gc"][:len(state_keys)]
    dx = 0
    for d, suffix in enumerate(["", "_reverse"][:directions]):
        weights = tuple(w.astype(np.float64) for w in torch_direction(f, cell, suffix))
        columns = slice(d * units, (d + 1) * units)
        states = [f[k][d].astype(np.float64) for k in state_keys]
        y, *finals, cache = forward(module, cell, f["x"].astype(np.float64), weights, states,
                                    lengths=f["lengths"], reverse=d == 1, return_cache=True)
        assert_close(y, f["y"][..., columns], f"y, direction {d}")
        for final, key in zip(finals, final_keys):
            assert_close(final, f[key][d], f"{key}, direction {d}")
        grads = backward(module, cell, cache, f["gy"][..., columns].astype(np.float64),
                         [f[k][d].astype(np.float64) for k in grad_keys])
        dx = dx + grads.dx
        assert_close(grads.dh0, f["d_h0"][d], f"dh0, direction {d}")
        if cell == "lstm":
            assert_close(grads.dc0, f["d_c0"][d], f"dc0, direction {d}")
        order = KERAS_FROM["torch"][cell]
        assert_close(grads.dkernel, blocks(f["d_weight_ih_l0" + suffix].T, order), "dkernel")
        assert_close(grads.drecurrent_kernel, blocks(f["d_weight_hh_l0" + suffix].T, order),
                     "drecurrent_kernel")
        dbias_input = grads.dbias[0] if cell == "gru" else grads.dbias
        assert_close(dbias_input, blocks(f["d_bias_ih_l0" + suffix], order), "dbias")
    assert_close(dx, f["d_x"], "dx")
    assert not dx[np.arange(6) >= f["lengths"][:, None]].any()


# ------------------------------------------------------------ ONNX Runtime


def onnx_direction(f, cell, d):
    b_input, b_recurrent = np.split(f["B"][d], 2)
    return keras_weights(cell, KERAS_FROM["onnx"][cell], f["W"][d], f["R"][d], b_input,
                         b_recurrent)


ONNX_CASES = [("onnx_seq_lstm_reverse", "lstm", ["reverse"]),
              ("onnx_seq_lstm_bidirectional", "lstm", ["forward", "reverse"]),
              ("onnx_seq_gru_bidirectional", "gru", ["forward", "reverse"]),
              ("onnx_seq_rnn_reverse", "rnn", ["reverse"])]


def run_onnx_fixture(module, prefix, cell, directions):
    """Our y, h_n and c_n per direction for an ONNX fixture, in its layout."""
    f = fixture(prefix)
    x = f["X"].transpose(1, 0, 2)
    state_keys = ["initial_h", "initial_c"] if cell == "lstm" else ["initial_h"]
    outputs = []
    for d, direction in enumerate(directions):
        outputs.append(forward(module, cell, x, onnx_direction(f, cell, d),
                               [f[k][d] for k in state_keys], lengths=f["sequence_lens"],
                               reverse=direction == "reverse"))
    return f, outputs


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("prefix, cell, directions", ONNX_CASES)
def test_sequence_lens_match_onnx_runtime(module, prefix, cell, directions):
    f, outputs = run_onnx_fixture(module, prefix, cell, directions)
    for d, (y, h_n, *c_n) in enumerate(outputs):
        assert_close(y, f["Y"][:, d].transpose(1, 0, 2), f"Y, direction {d}")
        assert_close(h_n, f["Y_h"][d], f"Y_h, direction {d}")
        if c_n:
            assert_close(c_n[0], f["Y_c"][d], f"Y_c, direction {d}")


@pytest.mark.parametrize("prefix, cell, directions", [
    ("onnx_len0_lstm_bidirectional", "lstm", ["forward", "reverse"]),
    ("onnx_len0_gru_bidirectional", "gru", ["forward", "reverse"]),
    ("onnx_len0_rnn_reverse", "rnn", ["reverse"])])
def test_a_row_of_length_zero_keeps_its_initial_states(prefix, cell, directions):
    """Its outputs are zeros, as ONNX Runtime gives them; its final states
    are its initial states (no step changed them), where ONNX Runtime 1.32
    returns zeros, a case the ONNX specification leaves open."""
    f, outputs = run_onnx_fixture(functional, prefix, cell, directions)
    empty = f["sequence_lens"] == 0
    for d, (y, h_n, *c_n) in enumerate(outputs):
        assert_close(y, f["Y"][:, d].transpose(1, 0, 2), f"Y, direction {d}")
        assert_close(h_n[~empty], f["Y_h"][d][~empty], f"Y_h, direction {d}")
        np.testing.assert_array_equal(h_n[empty], f["initial_h"][d][empty])
        assert not f["Y_h"][d][empty].any()
        if c_n:
            np.testing.assert_array_equal(c_n[0][empty], f["initial_c"][d][empty])


# ------------------------------------------------------------ Keras


KERAS_NAMES = ("kernel", "recurrent_kernel", "bias")


def keras_layer(layer, f):
    layer.build(f["x"].shape[1:])
    layer.set_weights([f[k] for k in KERAS_NAMES])
    return layer


def masked_model(layer, f, weights):
    model = fastlstm.Sequential([L.Masking(0.0, input_shape=f["x"].shape[1:]), layer])
    model.build()
    layer.set_weights(weights)
    return model


@pytest.mark.parametrize("prefix, make", [
    ("keras_mask_lstm_post", lambda: L.LSTM(5, return_sequences=True)),
    ("keras_mask_lstm_pre", lambda: L.LSTM(5, return_sequences=True)),
    ("keras_mask_lstm_gap", lambda: L.LSTM(5, return_sequences=True)),
    ("keras_mask_lstm_backwards", lambda: L.LSTM(5, return_sequences=True, go_backwards=True)),
    ("keras_mask_gru_backwards", lambda: L.GRU(5, go_backwards=True)),
])
def test_masked_layers_match_keras(prefix, make):
    f = fixture(prefix)
    model = masked_model(make(), f, [f[k] for k in KERAS_NAMES])
    np.testing.assert_array_equal(model.layers[0].compute_mask(f["x"], None), f["mask"])
    assert_close(model.predict(f["x"]), f["y"], prefix)


@pytest.mark.parametrize("prefix, make", [
    ("keras_mask_bilstm_concat", lambda: L.Bidirectional(L.LSTM(5, return_sequences=True))),
    ("keras_mask_bigru_sum", lambda: L.Bidirectional(L.GRU(5, return_sequences=True), "sum")),
    ("keras_mask_bilstm_last", lambda: L.Bidirectional(L.LSTM(5))),
])
def test_masked_bidirectional_layers_match_keras(prefix, make):
    f = fixture(prefix)
    weights = [f[f"{direction}_{k}"] for direction in ("forward", "backward")
               for k in KERAS_NAMES]
    assert_close(masked_model(make(), f, weights).predict(f["x"]), f["y"], prefix)


@pytest.mark.parametrize("prefix", ["keras_state_lstm_plain", "keras_state_lstm_masked"])
def test_initial_and_returned_states_match_keras(prefix):
    f = fixture(prefix)
    layer = keras_layer(L.LSTM(5, return_sequences=True, return_state=True), f)
    y, h, c = layer(f["x"], initial_state=[f["h0"], f["c0"]], mask=f["mask"])
    assert_close(y, f["y"], "y")
    assert_close(h, f["h"], "h")
    assert_close(c, f["c"], "c")

"""The NumPy reference's GRU, simple RNN and peephole LSTM: against central
finite differences, against PyTorch, Keras 3 and ONNX Runtime
(data/cell_fixtures.npz, made by data/make_cell_fixtures.py where those
frameworks are installed), and their argument checks."""
import dataclasses
import functools
import pathlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import relative_error

from fastlstm import functional, reference
from fastlstm._types import GRUGrads, LSTMGrads, PeepholeLSTMGrads, SimpleRNNGrads
from fastlstm._validation import recurrent_inputs

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "cell_fixtures.npz"

# Modules whose cells are held to the framework fixtures: the reference and the engine.
MODULES = [reference, functional]


@dataclass
class Cell:
    """How to call one cell: its functions, options and argument shapes."""

    forward: object
    backward: object
    n_gates: int
    bias_rows: int = None
    options: dict = field(default_factory=dict)
    states: tuple = ("h0",)
    extras: tuple = ()      # names of keyword weights of shape (3, units)
    grads_type: type = None


CELLS = {
    "gru_reset_after": Cell(reference.gru_forward, reference.gru_backward, 3, 2,
                            {"reset_after": True}, grads_type=GRUGrads),
    "gru_reset_before": Cell(reference.gru_forward, reference.gru_backward, 3, None,
                             {"reset_after": False}, grads_type=GRUGrads),
    "rnn_tanh": Cell(reference.simple_rnn_forward, reference.simple_rnn_backward, 1, None,
                     {"activation": "tanh"}, grads_type=SimpleRNNGrads),
    "rnn_relu": Cell(reference.simple_rnn_forward, reference.simple_rnn_backward, 1, None,
                     {"activation": "relu"}, grads_type=SimpleRNNGrads),
    "peephole_lstm": Cell(reference.lstm_forward, reference.lstm_backward, 4,
                          states=("h0", "c0"), extras=("peephole",),
                          grads_type=PeepholeLSTMGrads),
}


def random_args(cell, batch, time, features, units, dtype=np.float64, seed=0):
    """Random forward arguments of `cell` by name, x first."""
    rng = np.random.default_rng(seed)

    def rand(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    width = cell.n_gates * units
    bias_shape = (width,) if cell.bias_rows is None else (cell.bias_rows, width)
    args = {"x": rand(batch, time, features),
            "kernel": rand(features, width, scale=0.6 / np.sqrt(features)),
            "recurrent_kernel": rand(units, width, scale=0.6 / np.sqrt(units)),
            "bias": rand(*bias_shape, scale=0.3)}
    args.update({name: rand(batch, units) for name in cell.states})
    args.update({name: rand(3, units, scale=0.5) for name in cell.extras})
    return args


def output_weights(cell, args, seed=1):
    """Random gradients with respect to y and each final state (the weights
    of the loss sum(y * wy) + sum(h_n * wh) [+ sum(c_n * wc)])."""
    rng = np.random.default_rng(seed)
    batch, time, _ = args["x"].shape
    units = args["recurrent_kernel"].shape[0]
    dtype = args["x"].dtype
    return ([rng.standard_normal((batch, time, units)).astype(dtype)]
            + [rng.standard_normal((batch, units)).astype(dtype) for _ in cell.states])


def forward(cell, args, **kwargs):
    positional = [args[n] for n in ("x", "kernel", "recurrent_kernel", "bias", *cell.states)]
    extras = {n: args[n] for n in cell.extras}
    return cell.forward(*positional, **extras, **cell.options, **kwargs)


def run(cell, args, weights, **backward_kwargs):
    """Forward with cache, then backward with `weights`; returns (outputs, grads)."""
    *outputs, cache = forward(cell, args, return_cache=True)
    return outputs, cell.backward(cache, *weights, **backward_kwargs)


def loss(cell, args, weights):
    return sum(np.sum(out * w) for out, w in zip(forward(cell, args), weights))


def numerical_gradient(cell, args, name, weights, eps=1e-6):
    args = {k: v.copy() for k, v in args.items()}
    target = args[name]
    grad = np.zeros_like(target)
    for pos in np.ndindex(target.shape):
        saved = target[pos]
        target[pos] = saved + eps
        plus = loss(cell, args, weights)
        target[pos] = saved - eps
        minus = loss(cell, args, weights)
        target[pos] = saved
        grad[pos] = (plus - minus) / (2 * eps)
    return grad


def relu_preactivations(args, y):
    """x_t @ kernel + h_{t-1} @ recurrent_kernel + bias at every step of a simple RNN."""
    h_prev = np.concatenate([args["h0"][:, None], y[:, :-1]], axis=1)
    return args["x"] @ args["kernel"] + h_prev @ args["recurrent_kernel"] + args["bias"]


# ------------------------------------------------------------ finite differences


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("shape", [(2, 4, 3, 3), (3, 3, 2, 4), (2, 5, 2, 3)])
def test_gradients_match_finite_differences(name, shape):
    cell = CELLS[name]
    args = random_args(cell, *shape, seed=sum(shape))
    weights = output_weights(cell, args)
    outputs, grads = run(cell, args, weights)
    if name == "rnn_relu":
        # Finite differences are only valid away from relu's kink.
        preactivations = relu_preactivations(args, outputs[0])
        assert np.min(np.abs(preactivations)) > 1e-3
        assert 0 < np.mean(preactivations > 0) < 1
    assert type(grads) is cell.grads_type
    for arg in args:
        numerical = numerical_gradient(cell, args, arg, weights)
        actual = getattr(grads, "d" + arg)
        assert relative_error(actual, numerical) < 1e-7, arg
        if arg == "bias" and actual.ndim == 2:
            for row in range(actual.shape[0]):
                assert relative_error(actual[row], numerical[row]) < 1e-7, f"bias row {row}"


def dropout_masks(batch, features, units, rate=0.4, seed=5):
    """Keras-style masks: each value kept with probability 1 - rate, scaled by 1 / (1 - rate)."""
    rng = np.random.default_rng(seed)
    return {"dropout_mask": (rng.random((batch, features)) >= rate) / (1 - rate),
            "recurrent_dropout_mask": (rng.random((batch, units)) >= rate) / (1 - rate)}


def with_options(cell, **options):
    """`cell` whose forward passes also takes `options`."""
    return dataclasses.replace(cell, forward=functools.partial(cell.forward, **options))


@pytest.mark.parametrize("name", list(CELLS))
def test_gradients_with_dropout_masks_match_finite_differences(name):
    batch, time, features, units = 3, 4, 3, 4
    cell = with_options(CELLS[name], **dropout_masks(batch, features, units))
    args = random_args(cell, batch, time, features, units, seed=11)
    if name == "rnn_relu":
        args["bias"] += 0.05
    weights = output_weights(cell, args)
    _, grads = run(cell, args, weights)
    for arg in args:
        numerical = numerical_gradient(cell, args, arg, weights)
        assert relative_error(getattr(grads, "d" + arg), numerical) < 1e-7, arg


@pytest.mark.parametrize("name", list(CELLS))
def test_dropout_masks_drop_what_they_say(name):
    """Masks of ones change nothing; a zero input mask is a zero input."""
    cell = CELLS[name]
    batch, time, features, units = 2, 3, 3, 4
    args = random_args(cell, batch, time, features, units, seed=2)
    plain = forward(cell, args)
    ones = forward(cell, args, dropout_mask=np.ones((batch, features)),
                   recurrent_dropout_mask=np.ones((batch, units)))
    for a, b in zip(plain, ones):
        np.testing.assert_array_equal(a, b)
    blind = forward(cell, args, dropout_mask=np.zeros((batch, features)))
    zero_x = forward(cell, {**args, "x": np.zeros_like(args["x"])})
    for a, b in zip(blind, zero_x):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_a_zero_recurrent_mask_cuts_the_recurrence_of_a_simple_rnn(activation):
    cell = CELLS["rnn_" + activation]
    args = random_args(cell, 2, 3, 3, 4, seed=4)
    y, _ = forward(cell, args, recurrent_dropout_mask=np.zeros((2, 4)))
    phi = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0))
    np.testing.assert_allclose(y, phi(args["x"] @ args["kernel"] + args["bias"]),
                               rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------- the equations


def logistic(v):
    return 1 / (1 + np.exp(-v))


def test_one_gru_step_with_the_reset_gate_after_the_product():
    args = random_args(CELLS["gru_reset_after"], 2, 1, 3, 2)
    y, h_n = reference.gru_forward(*args.values())
    x, h = args["x"][:, 0], args["h0"]
    xz, xr, xh = np.split(x @ args["kernel"] + args["bias"][0], 3, axis=1)
    rz, rr, rh = np.split(h @ args["recurrent_kernel"] + args["bias"][1], 3, axis=1)
    z, r = logistic(xz + rz), logistic(xr + rr)
    expected = z * h + (1 - z) * np.tanh(xh + r * rh)
    np.testing.assert_allclose(h_n, expected, rtol=1e-13)
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-13)


def test_one_gru_step_with_the_reset_gate_before_the_product():
    args = random_args(CELLS["gru_reset_before"], 2, 1, 3, 2)
    _, h_n = reference.gru_forward(*args.values(), reset_after=False)
    x, h = args["x"][:, 0], args["h0"]
    u_z, u_r, u_h = np.split(args["recurrent_kernel"], 3, axis=1)
    xz, xr, xh = np.split(x @ args["kernel"] + args["bias"], 3, axis=1)
    z, r = logistic(xz + h @ u_z), logistic(xr + h @ u_r)
    expected = z * h + (1 - z) * np.tanh(xh + (r * h) @ u_h)
    np.testing.assert_allclose(h_n, expected, rtol=1e-13)


@pytest.mark.parametrize("activation, phi", [("tanh", np.tanh),
                                             ("relu", lambda a: np.where(a > 0, a, 0.0))])
def test_one_simple_rnn_step(activation, phi):
    args = random_args(CELLS["rnn_tanh"], 3, 1, 2, 4)
    _, h_n = reference.simple_rnn_forward(*args.values(), activation=activation)
    expected = phi(args["x"][:, 0] @ args["kernel"] + args["h0"] @ args["recurrent_kernel"]
                   + args["bias"])
    np.testing.assert_allclose(h_n, expected, rtol=1e-13)


def test_one_peephole_lstm_step():
    args = random_args(CELLS["peephole_lstm"], 2, 1, 3, 2)
    _, h_n, c_n = forward(CELLS["peephole_lstm"], args)
    p, c_prev = args["peephole"], args["c0"]
    z = args["x"][:, 0] @ args["kernel"] + args["h0"] @ args["recurrent_kernel"] + args["bias"]
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
    c = logistic(z_f + p[1] * c_prev) * c_prev + logistic(z_i + p[0] * c_prev) * np.tanh(z_g)
    np.testing.assert_allclose(c_n, c, rtol=1e-13)
    np.testing.assert_allclose(h_n, logistic(z_o + p[2] * c) * np.tanh(c), rtol=1e-13)


def test_a_zero_peephole_is_no_peephole():
    cell = CELLS["peephole_lstm"]
    args = random_args(cell, 3, 4, 2, 3)
    args["peephole"] = np.zeros_like(args["peephole"])
    weights = output_weights(cell, args)
    with_outputs, with_grads = run(cell, args, weights)
    plain = dict(args)
    del plain["peephole"]
    without_outputs, without_grads = run(Cell(reference.lstm_forward, reference.lstm_backward,
                                              4, states=("h0", "c0")), plain, weights)
    assert type(without_grads) is LSTMGrads
    for a, b in zip(with_outputs + list(with_grads), without_outputs + list(without_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    assert with_grads.dpeephole.shape == (3, 3)


@pytest.mark.parametrize("name", list(CELLS))
def test_split_sequence_equals_whole_sequence(name):
    cell = CELLS[name]
    args = random_args(cell, 3, 6, 2, 4)
    y, *final = forward(cell, args)
    first = dict(args, x=args["x"][:, :2])
    y1, *middle = forward(cell, first)
    second = dict(args, x=args["x"][:, 2:], **dict(zip(cell.states, middle)))
    y2, *final2 = forward(cell, second)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, rtol=1e-14, atol=1e-14)
    for a, b in zip(final2, final):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", list(CELLS))
def test_input_grad_false_leaves_out_dx_only(name):
    cell = CELLS[name]
    args = random_args(cell, 2, 3, 2, 3)
    weights = output_weights(cell, args)
    _, grads = run(cell, args, weights)
    _, without = run(cell, args, weights, input_grad=False)
    assert without.dx is None
    for a, b in zip(grads[1:], without[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CELLS))
def test_float32_in_float32_out(name):
    cell = CELLS[name]
    args = random_args(cell, 2, 3, 2, 3, dtype=np.float32)
    outputs, grads = run(cell, args, output_weights(cell, args))
    assert all(a.dtype == np.float32 for a in outputs + list(grads))


def test_a_float64_peephole_makes_the_lstm_float64():
    cell = CELLS["peephole_lstm"]
    args = random_args(cell, 2, 3, 2, 3, dtype=np.float32)
    args["peephole"] = args["peephole"].astype(np.float64)
    y, h_n, c_n = forward(cell, args)
    assert y.dtype == h_n.dtype == c_n.dtype == np.float64


@pytest.mark.parametrize("name", list(CELLS))
def test_missing_initial_states_are_zeros(name):
    cell = CELLS[name]
    args = random_args(cell, 2, 3, 2, 3)
    zeros = dict(args, **{s: np.zeros_like(args[s]) for s in cell.states})
    missing = dict(args, **{s: None for s in cell.states})
    for a, b in zip(forward(cell, zeros), forward(cell, missing)):
        np.testing.assert_array_equal(a, b)


# -------------------------------------------------------- empty and unchanged


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("batch, time", [(0, 4), (3, 0), (0, 0)])
def test_empty_batch_or_time_give_shaped_results(name, batch, time):
    cell = CELLS[name]
    args = random_args(cell, batch, time, 2, 3)
    weights = output_weights(cell, args)
    (y, *final), grads = run(cell, args, weights)
    assert y.shape == (batch, time, 3)
    assert all(out.shape == (batch, 3) for out in final)
    for arg in args:
        assert getattr(grads, "d" + arg).shape == args[arg].shape, arg
    for arg in ("kernel", "recurrent_kernel", "bias", *cell.extras):
        np.testing.assert_array_equal(getattr(grads, "d" + arg), 0)
    if time == 0:
        # No step: the final states are the initial ones, and so are their gradients.
        for state, out, weight in zip(cell.states, final, weights[1:]):
            np.testing.assert_array_equal(out, args[state])
            np.testing.assert_array_equal(getattr(grads, "d" + state), weight)


@pytest.mark.parametrize("name", list(CELLS))
def test_the_callers_arrays_are_not_changed(name):
    cell = CELLS[name]
    args = random_args(cell, 3, 4, 2, 3)
    weights = output_weights(cell, args)
    before = {k: v.copy() for k, v in args.items()}
    weights_before = [w.copy() for w in weights]
    run(cell, args, weights)
    for k in args:
        np.testing.assert_array_equal(args[k], before[k], err_msg=k)
    for w, w_before in zip(weights, weights_before):
        np.testing.assert_array_equal(w, w_before)


@pytest.mark.parametrize("name", list(CELLS))
def test_arrays_changed_after_forward_do_not_change_the_gradients(name):
    cell = CELLS[name]
    args = random_args(cell, 3, 4, 2, 3)
    weights = output_weights(cell, args)
    _, expected = run(cell, args, weights)
    *_, cache = forward(cell, args, return_cache=True)
    for value in args.values():
        value[...] = 7.0
    for a, e in zip(cell.backward(cache, *weights), expected):
        np.testing.assert_array_equal(a, e)


# ------------------------------------------------------------------ bad input

BAD_SHAPES = [
    ("gru_reset_after", "kernel", (5, 12), r"kernel must have shape \(features, 3 \* units\) "
     r"= \(2, 3 \* units\) with units >= 1"),
    ("gru_reset_after", "kernel", (2, 10), r"\(features, 3 \* units\)"),
    ("gru_reset_after", "recurrent_kernel", (3, 12),
     r"recurrent_kernel must have shape \(units, 3 \* units\) = \(3, 9\)"),
    ("gru_reset_after", "bias", (9,), r"bias must have shape \(2, 3 \* units\) = \(2, 9\)"),
    ("gru_reset_before", "bias", (2, 9), r"bias must have shape \(3 \* units,\) = \(9,\)"),
    ("gru_reset_after", "h0", (4, 2), r"h0 must have shape \(batch, units\) = \(4, 3\)"),
    ("rnn_tanh", "kernel", (2, 4, 1),
     r"kernel must have shape \(features, units\) = \(2, units\) with units >= 1"),
    ("rnn_tanh", "recurrent_kernel", (3, 4),
     r"recurrent_kernel must have shape \(units, units\) = \(3, 3\)"),
    ("rnn_relu", "bias", (4,), r"bias must have shape \(units,\) = \(3,\)"),
    ("peephole_lstm", "peephole", (4, 3), r"peephole must have shape \(3, units\) = \(3, 3\)"),
    ("peephole_lstm", "peephole", (9,), r"peephole must have shape \(3, units\)"),
    ("peephole_lstm", "c0", (4,), r"c0 must have shape \(batch, units\) = \(4, 3\)"),
]


@pytest.mark.parametrize("name, arg, shape, message", BAD_SHAPES)
def test_wrong_shapes_name_the_argument_and_expected_shape(name, arg, shape, message):
    cell = CELLS[name]
    args = random_args(cell, 4, 5, 2, 3)
    args[arg] = np.zeros(shape)
    with pytest.raises(ValueError, match=message):
        forward(cell, args)


def _arg_cases():
    return [(name, arg) for name, cell in CELLS.items()
            for arg in random_args(cell, 1, 1, 1, 1)]


@pytest.mark.parametrize("name, arg", _arg_cases())
def test_non_finite_inputs_are_rejected_unless_asked_not_to(name, arg):
    cell = CELLS[name]
    args = random_args(cell, 4, 5, 2, 3)
    args[arg].flat[-1] = np.nan
    with pytest.raises(ValueError, match=f"{arg} contains NaN or infinity"):
        forward(cell, args)
    y = forward(cell, args, check_finite=False)[0]
    assert np.isnan(y).any()


@pytest.mark.parametrize("name, arg", _arg_cases())
def test_non_numeric_dtypes_are_type_errors(name, arg):
    cell = CELLS[name]
    args = random_args(cell, 4, 5, 2, 3)
    args[arg] = args[arg].astype(object)
    with pytest.raises(TypeError, match=f"{arg} must be a real numeric array"):
        forward(cell, args)


def test_nan_in_one_sequence_stays_in_that_sequence_without_the_check():
    cell = CELLS["gru_reset_after"]
    args = random_args(cell, 3, 4, 2, 3)
    args["x"][0, 0, 0] = np.nan
    y, _ = forward(cell, args, check_finite=False)
    assert np.isnan(y[0]).all()
    assert np.isfinite(y[1:]).all()


@pytest.mark.parametrize("name", ["gru_reset_after", "rnn_tanh", "peephole_lstm"])
@pytest.mark.parametrize("position, message", [
    (0, r"dy must have shape \(batch, time, units\) = \(4, 5, 3\)"),
    (1, r"dh_n must have shape \(batch, units\) = \(4, 3\)")])
def test_bad_output_gradients(name, position, message):
    cell = CELLS[name]
    args = random_args(cell, 4, 5, 2, 3)
    weights = output_weights(cell, args)
    *_, cache = forward(cell, args, return_cache=True)
    wrong = list(weights)
    wrong[position] = weights[position][..., :2]
    with pytest.raises(ValueError, match=message):
        cell.backward(cache, *wrong)
    wrong[position] = np.full_like(weights[position], np.inf)
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        cell.backward(cache, *wrong)
    with np.errstate(invalid="ignore"):
        grads = cell.backward(cache, *wrong, check_finite=False)
    assert not np.isfinite(grads.dkernel).all()


@pytest.mark.parametrize("activation", ["sigmoid", "Tanh", None, np.tanh])
def test_unknown_activations_are_rejected(activation):
    args = random_args(CELLS["rnn_tanh"], 2, 3, 2, 3)
    with pytest.raises(ValueError, match="activation must be one of 'relu', 'tanh', got"):
        reference.simple_rnn_forward(*args.values(), activation=activation)


def test_backward_rejects_a_cache_of_another_cell():
    caches = {name: forward(cell, random_args(cell, 2, 3, 2, 3), return_cache=True)[-1]
              for name, cell in CELLS.items()}
    dy = np.zeros((2, 3, 3))
    with pytest.raises(TypeError, match=r"fastlstm.reference.gru_forward\(.*SimpleRNN"):
        reference.gru_backward(caches["rnn_tanh"], dy)
    with pytest.raises(TypeError, match=r"fastlstm.reference.simple_rnn_forward\(.*LSTM"):
        reference.simple_rnn_backward(caches["peephole_lstm"], dy)
    with pytest.raises(TypeError, match=r"fastlstm.reference.lstm_forward\(.*GRU"):
        reference.lstm_backward(caches["gru_reset_after"], dy)


def test_recurrent_inputs_fills_missing_states_and_keeps_missing_extras():
    x = np.ones((2, 3, 1), np.float32)
    inputs = recurrent_inputs(x, np.ones((1, 3)), np.ones((1, 3)), np.zeros((2, 3)),
                              (("h0", None),), n_gates=3, bias_rows=2,
                              extras=(("peephole", None, (3, "units")),))
    assert inputs.dtype == np.float64
    np.testing.assert_array_equal(inputs.states[0], np.zeros((2, 1)))
    assert inputs.extras == {"peephole": None}
    assert all(a.flags.c_contiguous for a in (inputs.x, inputs.kernel, inputs.bias))


def test_sizes_past_32_bit_blas_are_rejected_with_the_gate_count():
    x = np.broadcast_to(np.float32(0), (2**16, 2**16, 1))  # no memory behind it
    with pytest.raises(ValueError, match=r"time\*3\*units .* below 2\*\*31"):
        reference.gru_forward(x, np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((2, 3)))


# ----------------------------------------------------------------- frameworks


@pytest.fixture(scope="module")
def fixtures():
    with np.load(FIXTURES, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_close(actual, expected):
    """Each named array of `actual` equals `expected`'s to rtol = atol = 1e-5."""
    assert actual.keys() == expected.keys()
    for name in actual:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def reorder_blocks(array, order, axis):
    """`array` with its equal blocks along `axis` taken in `order`."""
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[k] for k in order], axis=axis)


# nn.GRU's row blocks r, z, n, taken as Keras' column blocks z, r, h.
TORCH_GRU_TO_KERAS = (1, 0, 2)


def torch_gru_in_keras_layout(f, prefix):
    """kernel, recurrent_kernel and the (2, 3u) bias of an nn.GRU fixture;
    with prefix "d_" the gradients of the same, which map alike."""
    def weight(name):
        return reorder_blocks(f[f"torch_gru_{prefix}{name}"], TORCH_GRU_TO_KERAS, 0).T

    def bias(name):
        return reorder_blocks(f[f"torch_gru_{prefix}{name}"], TORCH_GRU_TO_KERAS, 0)

    return {"dkernel" if prefix else "kernel": weight("weight_ih_l0"),
            "drecurrent_kernel" if prefix else "recurrent_kernel": weight("weight_hh_l0"),
            "dbias" if prefix else "bias": np.stack([bias("bias_ih_l0"), bias("bias_hh_l0")])}


def grads_dict(grads):
    return {k: v for k, v in grads._asdict().items() if k != "dc0"}


@pytest.mark.parametrize("module", MODULES)
def test_pytorch_gru(fixtures, module):
    f = fixtures
    weights = torch_gru_in_keras_layout(f, "")
    y, h_n, cache = module.gru_forward(f["torch_gru_x"], *weights.values(), f["torch_gru_h0"],
                                       reset_after=True, return_cache=True)
    grads = module.gru_backward(cache, f["torch_gru_gy"], f["torch_gru_gh"])
    assert_close({"y": y, "h_n": h_n, **grads_dict(grads)},
                 {"y": f["torch_gru_y"], "h_n": f["torch_gru_h_n"], "dx": f["torch_gru_d_x"],
                  **torch_gru_in_keras_layout(f, "d_"), "dh0": f["torch_gru_d_h0"]})


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_pytorch_rnn(fixtures, module, activation):
    """nn.RNN's weights transposed; its two biases add up, and each one's
    gradient is the gradient of the sum."""
    f = fixture_case(fixtures, f"torch_rnn_{activation}")
    y, h_n, cache = module.simple_rnn_forward(
        f["x"], f["weight_ih_l0"].T, f["weight_hh_l0"].T, f["bias_ih_l0"] + f["bias_hh_l0"],
        f["h0"], activation=activation, return_cache=True)
    grads = module.simple_rnn_backward(cache, f["gy"], f["gh"])
    np.testing.assert_allclose(grads.dbias, f["d_bias_hh_l0"], rtol=1e-5, atol=1e-5)
    assert_close({"y": y, "h_n": h_n, **grads_dict(grads)},
                 {"y": f["y"], "h_n": f["h_n"], "dx": f["d_x"], "dkernel": f["d_weight_ih_l0"].T,
                  "drecurrent_kernel": f["d_weight_hh_l0"].T, "dbias": f["d_bias_ih_l0"],
                  "dh0": f["d_h0"]})


def fixture_case(fixtures, prefix):
    """The fixtures whose names start with `prefix` and "_", by the rest of their names."""
    return {k[len(prefix) + 1:]: v for k, v in fixtures.items() if k.startswith(prefix + "_")}


def expected_keras(f):
    return {"y": f["y"], "h_n": f["h_n"], "dx": f["d_x"], "dkernel": f["d_kernel"],
            "drecurrent_kernel": f["d_recurrent_kernel"], "dbias": f["d_bias"],
            "dh0": f["d_h0"]}


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru(fixtures, module, reset_after):
    f = fixture_case(fixtures, "keras_gru_reset_" + ("after" if reset_after else "before"))
    y, h_n, cache = module.gru_forward(f["x"], f["kernel"], f["recurrent_kernel"], f["bias"],
                                       f["h0"], reset_after=reset_after, return_cache=True)
    grads = module.gru_backward(cache, f["gy"], f["gh"])
    assert_close({"y": y, "h_n": h_n, **grads_dict(grads)}, expected_keras(f))


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_keras_simple_rnn(fixtures, module, activation):
    f = fixture_case(fixtures, f"keras_rnn_{activation}")
    y, h_n, cache = module.simple_rnn_forward(f["x"], f["kernel"], f["recurrent_kernel"],
                                              f["bias"], f["h0"], activation=activation,
                                              return_cache=True)
    grads = module.simple_rnn_backward(cache, f["gy"], f["gh"])
    assert_close({"y": y, "h_n": h_n, **grads_dict(grads)}, expected_keras(f))


# ONNX's gate blocks i, o, f, c taken as fastlstm's i, f, c, o; its peephole
# blocks i, o, f as rows i, f, o.
ONNX_GATES = (0, 2, 3, 1)
ONNX_PEEPHOLES = (0, 2, 1)


@pytest.mark.parametrize("module", MODULES)
def test_onnx_runtime_peephole_lstm(fixtures, module):
    f = fixture_case(fixtures, "onnx")
    w_bias, r_bias = np.split(f["B"], 2)
    peephole = reorder_blocks(f["P"], ONNX_PEEPHOLES, 0).reshape(3, -1)
    y, h_n, c_n = module.lstm_forward(
        f["x"], reorder_blocks(f["W"], ONNX_GATES, 0).T, reorder_blocks(f["R"], ONNX_GATES, 0).T,
        reorder_blocks(w_bias + r_bias, ONNX_GATES, 0), f["initial_h"], f["initial_c"],
        peephole=peephole)
    assert_close({"y": y, "h_n": h_n, "c_n": c_n},
                 {"y": f["Y"], "h_n": f["Y_h"], "c_n": f["Y_c"]})


def test_the_fixtures_record_their_framework_versions(fixtures):
    for name in ("torch_version", "keras_version", "onnx_version", "onnxruntime_version"):
        assert fixtures[name].shape == (1,) and fixtures[name][0], name

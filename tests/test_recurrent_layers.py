"""The recurrent layers LSTM (with and without peepholes), GRU and SimpleRNN:
against fastlstm.functional on their own weights, against Keras 3's
weights and outputs (data/cell_fixtures.npz), in Sequential models that
train, save and load, and their argument checks."""
import pathlib
from dataclasses import dataclass

import numpy as np
import pytest

import fastlstm
from fastlstm import functional, optimizers, serialization
from fastlstm.layers import GRU, LSTM, Dense, SimpleRNN
from fastlstm.timeseries import make_windows

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "cell_fixtures.npz"
BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5


@pytest.fixture(autouse=True)
def one_thread():
    """These tests are about the layers, whose numbers the kernels give
    bitwise alike on any number of threads (tests/test_functional.py); one
    thread keeps these tiny problems fast on a busy machine."""
    with fastlstm.threads(1):
        yield


@dataclass
class Case:
    """A layer and the functional calls it must reproduce on its weights."""

    make: object      # **layer options -> layer
    forward: object   # (x, weights, **options) -> functional forward's result
    backward: object  # the functional backward
    has_bias: bool = True
    has_peephole: bool = False


def _zero_bias(shape):
    return np.zeros(shape, np.float32)


# Random biases (and peepholes), so that every weight shapes the numbers.
RANDOM = {"bias_initializer": "glorot_uniform"}

CASES = {
    "lstm": Case(lambda **o: LSTM(UNITS, **RANDOM, **o),
                 lambda x, w, **o: functional.lstm_forward(x, *w, **o), functional.lstm_backward),
    "peephole_lstm": Case(
        lambda **o: LSTM(UNITS, **RANDOM, peephole=True, peephole_initializer="glorot_uniform",
                         **o),
        lambda x, w, **o: functional.lstm_forward(x, *w[:3], peephole=w[3], **o),
        functional.lstm_backward, has_peephole=True),
    "gru": Case(lambda **o: GRU(UNITS, **RANDOM, **o),
                lambda x, w, **o: functional.gru_forward(x, *w, **o), functional.gru_backward),
    "gru_reset_before": Case(
        lambda **o: GRU(UNITS, reset_after=False, **RANDOM, **o),
        lambda x, w, **o: functional.gru_forward(x, *w, reset_after=False, **o),
        functional.gru_backward),
    "gru_without_bias": Case(
        lambda **o: GRU(UNITS, use_bias=False, **o),
        lambda x, w, **o: functional.gru_forward(x, *w, _zero_bias((2, 3 * UNITS)), **o),
        functional.gru_backward, has_bias=False),
    "rnn_tanh": Case(lambda **o: SimpleRNN(UNITS, **RANDOM, **o),
                     lambda x, w, **o: functional.simple_rnn_forward(x, *w, **o),
                     functional.simple_rnn_backward),
    "rnn_relu": Case(lambda **o: SimpleRNN(UNITS, activation="relu", **RANDOM, **o),
                     lambda x, w, **o: functional.simple_rnn_forward(x, *w, activation="relu",
                                                                     **o),
                     functional.simple_rnn_backward),
    "rnn_without_bias": Case(
        lambda **o: SimpleRNN(UNITS, use_bias=False, **o),
        lambda x, w, **o: functional.simple_rnn_forward(x, *w, _zero_bias(UNITS), **o),
        functional.simple_rnn_backward, has_bias=False),
}


def built(case, seed=0, **options):
    fastlstm.set_random_seed(seed)
    layer = case.make(**options)
    layer.build((TIME, FEATURES))
    return layer


def random_array(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def expected_weight_grads(case, grads):
    names = ["dkernel", "drecurrent_kernel"] + ["dbias"] * case.has_bias
    names += ["dpeephole"] * case.has_peephole
    return [getattr(grads, name) for name in names]


def assert_all_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_forward_is_the_functional_forward_on_the_layers_weights(name, return_sequences):
    case = CASES[name]
    layer = built(case, return_sequences=return_sequences, return_state=True)
    x = random_array(BATCH, TIME, FEATURES)
    output, *states = layer(x)
    y, *expected_states = case.forward(x, layer.weights)
    np.testing.assert_array_equal(output, y if return_sequences else expected_states[0])
    assert len(states) == (2 if isinstance(layer, LSTM) else 1)
    assert_all_equal(states, expected_states)
    assert output.shape == (BATCH,) + layer.compute_output_shape((TIME, FEATURES))
    np.testing.assert_array_equal(layer.forward(x, training=True), output)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_backward_is_the_functional_backward(name, return_sequences):
    case = CASES[name]
    layer = built(case, return_sequences=return_sequences)
    x = random_array(BATCH, TIME, FEATURES)
    dy = random_array(BATCH, *layer.compute_output_shape((TIME, FEATURES)), seed=2)
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    *_, cache = case.forward(x, layer.weights, return_cache=True)
    grads = case.backward(cache, dy if return_sequences else None,
                          None if return_sequences else dy)
    np.testing.assert_array_equal(dx, grads.dx)
    assert_all_equal(layer.grads, expected_weight_grads(case, grads))
    assert [g.shape for g in layer.grads] == [w.shape for w in layer.weights]

    backward_grads = [g.copy() for g in layer.grads]
    layer.forward(x, training=True)
    assert layer.backward_weights(dy) is None
    assert_all_equal(layer.grads, backward_grads)


@pytest.mark.parametrize("name", CASES)
def test_initial_states_are_the_functional_ones(name):
    case = CASES[name]
    layer = built(case, return_sequences=True, return_state=True)
    x = random_array(BATCH, TIME, FEATURES)
    names = ["h0", "c0"] if isinstance(layer, LSTM) else ["h0"]
    states = {name: random_array(BATCH, UNITS, seed=3 + k) for k, name in enumerate(names)}
    actual = layer(x, initial_state=list(states.values()))
    assert_all_equal(actual, case.forward(x, layer.weights, **states))
    assert np.abs(actual[0] - layer(x)[0]).max() > 1e-3


@pytest.fixture(scope="module")
def keras():
    with np.load(FIXTURES, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if k.startswith("keras_")}


def keras_case(fixtures, prefix):
    return {k[len(prefix) + 1:]: v for k, v in fixtures.items() if k.startswith(prefix + "_")}


KERAS_LAYERS = {
    "keras_gru_reset_after": lambda **o: GRU(4, reset_after=True, **o),
    "keras_gru_reset_before": lambda **o: GRU(4, reset_after=False, **o),
    "keras_rnn_tanh": lambda **o: SimpleRNN(4, activation="tanh", **o),
    "keras_rnn_relu": lambda **o: SimpleRNN(4, activation="relu", **o),
}


@pytest.mark.parametrize("prefix", KERAS_LAYERS)
def test_keras_weights_load_unchanged_and_give_keras_outputs_and_gradients(keras, prefix):
    """The fixtures' loss is sum(y * gy) + sum(h_n * gh); h_n is y's last
    step, so the layer's dy is gy with gh added to its last step."""
    f = keras_case(keras, prefix)
    layer = KERAS_LAYERS[prefix](return_sequences=True, return_state=True)
    layer.build(f["x"].shape[1:])
    weights = [f["kernel"], f["recurrent_kernel"], f["bias"]]
    layer.set_weights(weights)
    assert_all_equal(layer.get_weights(), weights)

    y, h_n = layer(f["x"], initial_state=[f["h0"]])
    np.testing.assert_allclose(y, f["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_n, f["h_n"], rtol=1e-5, atol=1e-5)

    layer.forward(f["x"], training=True, initial_state=f["h0"])
    dy = f["gy"].copy()
    dy[:, -1] += f["gh"]
    dx = layer.backward(dy)
    assert len(layer.grads) == 3
    for actual, name in zip([dx, *layer.grads], ["d_x", "d_kernel", "d_recurrent_kernel",
                                                 "d_bias"]):
        np.testing.assert_allclose(actual, f[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_a_peephole_lstm_starts_as_the_plain_lstm_and_its_peepholes_act():
    x = random_array(BATCH, TIME, FEATURES)
    plain, peephole = built(CASES["lstm"]), built(CASES["lstm"], peephole=True)
    assert peephole.weight_shapes((TIME, FEATURES))[3] == (3, UNITS)
    np.testing.assert_array_equal(peephole.weights[3], np.zeros((3, UNITS)))
    assert_all_equal(peephole.weights[:3], plain.weights)
    np.testing.assert_allclose(peephole(x), plain(x), rtol=1e-6, atol=1e-7)
    peephole.weights[3][...] = 0.5
    assert np.abs(peephole(x) - plain(x)).max() > 1e-3


def sine_windows(n=300, window=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.3
    series = 0.5 + 0.4 * np.sin(t) + 0.02 * rng.standard_normal(n)
    return make_windows(series, window)


def train_save_and_load(layers, tmp_path, epochs):
    """Fit a model of `layers` on the series, save and load it (the loaded
    model predicts bitwise alike); returns the weights before and after
    training, the first and last epoch's loss and the final mse over the
    variance of y (predicting the mean scores 1)."""
    fastlstm.set_random_seed(0)
    x, y = sine_windows()
    model = fastlstm.Sequential(layers)
    model.compile(optimizers.Adam(0.01), "mse")
    initial = model.get_weights()
    losses = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0).history["loss"]
    model.save(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    assert_all_equal(loaded.get_weights(), model.get_weights())
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    return initial, model.get_weights(), losses[0], losses[-1], model.evaluate(x, y) / np.var(y)


@pytest.mark.parametrize("layers, epochs", [
    (lambda: [GRU(16, return_sequences=True, input_shape=(12, 1)), GRU(8, reset_after=False),
              Dense(1)], 8),
    (lambda: [SimpleRNN(8, input_shape=(12, 1)), Dense(1)], 6),
    (lambda: [LSTM(8, peephole=True, input_shape=(12, 1)), Dense(1)], 10),
], ids=["gru_stack", "simple_rnn", "peephole_lstm"])
def test_a_model_learns_a_noisy_sine_and_saves(layers, epochs, tmp_path):
    initial, trained, first, last, relative_mse = train_save_and_load(layers(), tmp_path, epochs)
    assert last < first / 10
    assert relative_mse < 0.25
    for before, after in zip(initial, trained):  # every weight trained, peepholes included
        assert np.abs(after - before).max() > 1e-3


def test_summary_counts_keras_parameters():
    f, t = 3, 7
    model = fastlstm.Sequential([GRU(6, return_sequences=True, input_shape=(t, f)),
                                 GRU(5, reset_after=False, return_sequences=True),
                                 SimpleRNN(4, return_sequences=True), GRU(3, use_bias=False),
                                 Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    expected = [3 * (f * 6 + 6 * 6 + 2 * 6), 3 * (6 * 5 + 5 * 5 + 5), 5 * 4 + 4 * 4 + 4,
                3 * (4 * 3 + 3 * 3), 3 + 1]
    assert [layer.count_params() for layer in model.layers] == expected
    assert "gru (GRU)" in text and "gru_1 (GRU)" in text and "simple_rnn (SimpleRNN)" in text
    assert "(None, 7, 6)" in text and "(None, 7, 4)" in text and "(None, 3)" in text
    assert f"Total params: {sum(expected):,}" in text
    assert [w.shape for w in model.layers[3].get_weights()] == [(4, 9), (3, 9)]

    peephole = fastlstm.Sequential([LSTM(4, peephole=True, input_shape=(t, f))])
    peephole.build()
    assert peephole.count_params() == 4 * (f * 4 + 4 * 4 + 4) + 3 * 4


@pytest.mark.parametrize("name", ["lstm", "peephole_lstm", "gru", "gru_reset_before", "rnn_tanh"])
def test_dropout_draws_one_mask_per_sequence_and_backward_uses_it(name):
    """A training pass draws the masks Keras would (kept with probability
    1 - rate, scaled), runs the cell with them, and backward differentiates
    that pass; inference uses no mask."""
    case = CASES[name]
    layer = built(case, return_sequences=True, dropout=0.3, recurrent_dropout=0.4)
    x = random_array(BATCH, TIME, FEATURES)
    dy = random_array(BATCH, TIME, UNITS, seed=2)
    fastlstm.set_random_seed(9)
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    fastlstm.set_random_seed(9)
    masks = layer._dropout_masks(BATCH, FEATURES)
    assert set(np.unique(masks["dropout_mask"])) <= {0.0, np.float32(1 / 0.7)}
    assert set(np.unique(masks["recurrent_dropout_mask"])) <= {0.0, np.float32(1 / 0.6)}
    expected_y, *_, cache = case.forward(x, layer.weights, return_cache=True, **masks)
    grads = case.backward(cache, dy)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(dx, grads.dx)
    assert_all_equal(layer.grads, expected_weight_grads(case, grads))
    np.testing.assert_array_equal(layer(x), case.forward(x, layer.weights)[0])
    assert not np.array_equal(y, layer(x))


def test_dropout_rates_are_checked_and_kept_in_the_config():
    for make in (lambda r: GRU(2, dropout=r), lambda r: LSTM(2, recurrent_dropout=r),
                 lambda r: SimpleRNN(2, dropout=r)):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
            make(1.0)
        with pytest.raises(ValueError, match="dropout must be a number"):
            make("0.2")
    layer = GRU(3, dropout=0.25, recurrent_dropout=0.5)
    rebuilt = serialization.deserialize("layer", serialization.serialize(layer))
    assert (rebuilt.dropout, rebuilt.recurrent_dropout) == (0.25, 0.5)
    assert "dropout" not in GRU(3).get_config()


def test_a_model_with_recurrent_dropout_still_learns(tmp_path):
    layers = [GRU(16, dropout=0.1, recurrent_dropout=0.1, input_shape=(12, 1)), Dense(1)]
    _, _, first, last, relative_mse = train_save_and_load(layers, tmp_path, 8)
    assert last < first / 5
    assert relative_mse < 0.3


LAYER_CONFIGS = [
    GRU(3, reset_after=False, use_bias=False, return_sequences=True, name="g",
        kernel_initializer="ones", recurrent_initializer="zeros", bias_initializer="ones"),
    SimpleRNN(2, activation="relu", return_state=True, use_bias=False),
    LSTM(4, peephole=True, peephole_initializer="ones", unit_forget_bias=False),
]


@pytest.mark.parametrize("layer", LAYER_CONFIGS, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    config = layer.get_config()
    rebuilt = serialization.deserialize("layer", serialization.serialize(layer))
    assert type(rebuilt) is type(layer) and rebuilt.get_config() == config
    for key, value in config.items():
        if not key.endswith("initializer"):  # the attribute is the function
            assert getattr(rebuilt, key) == value, key


def test_a_plain_lstm_config_has_no_peephole_and_reads_as_one():
    config = LSTM(3).get_config()
    assert "peephole" not in config and "peephole_initializer" not in config
    assert LSTM.from_config(config).peephole is False
    assert LSTM.from_config({"units": 3, "peephole": True}).peephole is True


def test_callable_initializers_are_used_and_saved_by_their_default_name():
    layer = GRU(2, kernel_initializer=lambda shape: np.full(shape, 0.25, np.float32))
    layer.build((3, 2))
    np.testing.assert_array_equal(layer.weights[0], np.full((2, 6), 0.25))
    assert layer.get_config()["kernel_initializer"] == "glorot_uniform"


@pytest.mark.parametrize("make, error, message", [
    (lambda: GRU(0), ValueError, r"units must be an int in \[1, "),
    (lambda: SimpleRNN(2.5), TypeError, "units must be an int"),
    (lambda: LSTM(-1), ValueError, "units must be an int"),
    (lambda: GRU(2, activation="relu"), ValueError, r"GRU: activation must be one of \['tanh'\]"),
    (lambda: GRU(2, recurrent_activation="hard_sigmoid"), ValueError,
     r"recurrent_activation must be one of \['sigmoid'\]"),
    (lambda: SimpleRNN(2, activation="sigmoid"), ValueError,
     r"activation must be one of \['tanh', 'relu'\]"),
    (lambda: SimpleRNN(2, activation=None), ValueError, "activation must be one of"),
    (lambda: GRU(2, kernel_initializer="he_normal"), ValueError,
     "kernel_initializer: unknown initializer 'he_normal'"),
    (lambda: LSTM(2, peephole=True, peephole_initializer="nope"), ValueError,
     "peephole_initializer: unknown initializer"),
])
def test_bad_arguments_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("layer", [GRU(2), SimpleRNN(2), LSTM(2, peephole=True)],
                         ids=lambda layer: type(layer).__name__)
def test_samples_must_be_time_by_features(layer):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name} expects samples of shape \(time, features\)"):
        layer.build((5,))
    with pytest.raises(ValueError, match=rf"{name} expects samples"):
        fastlstm.Sequential([layer]).build((2, 3, 4))
    with pytest.raises(ValueError, match=rf"{name} expects samples"):
        layer(np.zeros((2, 5), np.float32))


def test_initial_state_and_set_weights_mistakes_are_clear_errors():
    layer = LSTM(2)
    with pytest.raises(RuntimeError, match="set_weights needs a built layer"):
        layer.set_weights([])
    x = np.zeros((1, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"initial_state must be \[h, c\]"):
        layer(x, initial_state=[np.zeros((1, 2))])
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer(x, initial_state=[np.zeros((1, 2)), np.full((1, 2), np.nan)])
    with pytest.raises(ValueError, match="h0 must have shape"):
        GRU(2)(x, initial_state=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"weight 1 must be a real array of shape \(2, 8\)"):
        layer.set_weights([w if i != 1 else w[:1] for i, w in enumerate(layer.get_weights())])
    with pytest.raises(ValueError, match="expected 3 arrays, got 2"):
        layer.set_weights(layer.get_weights()[:2])
    with pytest.raises(ValueError, match="return_state=True returns several outputs"):
        fastlstm.Sequential([GRU(2, return_state=True)])

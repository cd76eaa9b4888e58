"""Sequences in the layers, with Keras' semantics: Masking and the masks it
passes on, go_backwards, Bidirectional, initial and returned states,
stateful layers, and streams (model.stream) against whole-sequence runs."""
import threading

import numpy as np
import pytest

import fastlstm
from fastlstm import layers as L
from fastlstm import reference

RECURRENT = {"lstm": lambda **kw: L.LSTM(5, **kw), "gru": lambda **kw: L.GRU(5, **kw),
             "simple_rnn": lambda **kw: L.SimpleRNN(5, **kw),
             "peephole": lambda **kw: L.LSTM(5, peephole=True, peephole_initializer="ones",
                                             **kw)}


def data(batch=4, time=6, features=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, time, features)).astype(np.float32)


def padded(x, masks):
    """x with the steps where `masks` is False set to zeros (Masking's padding)."""
    return x * np.asarray(masks, np.float32)[..., None]


MASKS = np.array([[1, 1, 1, 1, 0, 0],     # trailing padding
                  [0, 0, 1, 1, 1, 1],     # leading padding (pad_sequences' default)
                  [1, 0, 1, 1, 0, 1],     # gaps
                  [0, 0, 0, 0, 0, 0]], bool)


def keras_masked_outputs(layer, x, masks):
    """Keras' outputs of a bare recurrent layer under masks, built from
    runs of each row's unmasked steps alone: the last unmasked output
    repeated at masked steps, zeros before the first."""
    out = np.zeros(x.shape[:2] + (layer.units,), np.float32)
    for b, mask in enumerate(masks):
        steps = np.flatnonzero(mask)
        if not steps.size:
            continue
        alone = layer.forward(np.ascontiguousarray(x[b:b + 1, steps]))[0]
        source = np.cumsum(mask) - 1
        out[b] = np.where((source >= 0)[:, None], alone[np.maximum(source, 0)], 0)
    return out


@pytest.mark.parametrize("name", list(RECURRENT))
def test_masked_steps_keep_the_state_and_repeat_the_output(name):
    layer = RECURRENT[name](return_sequences=True)
    x = padded(data(), MASKS)
    model = fastlstm.Sequential([L.Masking(0.0, input_shape=x.shape[1:]), layer])
    model.build()
    expected = keras_masked_outputs(layer, x, MASKS)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(RECURRENT))
def test_the_last_output_under_a_mask_is_the_last_unmasked_steps(name):
    layer = RECURRENT[name]()
    x = padded(data(), MASKS)
    model = fastlstm.Sequential([L.Masking(input_shape=x.shape[1:]), layer])
    model.build()
    sequences = RECURRENT[name](return_sequences=True)
    sequences.build(x.shape[1:])
    sequences.set_weights(layer.get_weights())
    expected = keras_masked_outputs(sequences, x, MASKS)[:, -1]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)


def test_masks_pass_through_dropout_and_dense_over_steps():
    x = padded(data(), MASKS)
    lstm = L.LSTM(5, return_sequences=True)
    model = fastlstm.Sequential([L.Masking(input_shape=x.shape[1:]), L.Dropout(0.3),
                                 L.Dense(4), lstm])
    model.build()
    dense_out = model.layers[2].forward(x)
    expected = keras_masked_outputs(lstm, dense_out, MASKS)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(RECURRENT))
def test_training_under_a_mask_equals_training_on_the_unmasked_steps(name):
    """One step of SGD over a masked batch moves the weights as the mean
    gradient of each row's unmasked steps run alone."""
    x = padded(data(batch=3), MASKS[:3])
    y = np.random.default_rng(1).standard_normal((3, 1)).astype(np.float32)
    fastlstm.set_random_seed(3)
    masked = fastlstm.Sequential([L.Masking(input_shape=x.shape[1:]), RECURRENT[name](),
                                  L.Dense(1)])
    masked.compile(fastlstm.optimizers.SGD(0.1), "mse")
    start = masked.get_weights()
    masked.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    moved = [w - s for w, s in zip(masked.get_weights(), start)]
    total = [np.zeros_like(w) for w in start]
    for b in range(3):
        steps = np.flatnonzero(MASKS[b])
        alone = fastlstm.Sequential([RECURRENT[name](input_shape=(len(steps), 3)), L.Dense(1)])
        alone.build()
        alone.set_weights(start)
        alone.compile(fastlstm.optimizers.SGD(0.1), "mse")
        alone.fit(x[b:b + 1, steps], y[b:b + 1], batch_size=1, epochs=1, verbose=0)
        for t, w, s in zip(total, alone.get_weights(), start):
            t += (w - s) / 3
    for m, t in zip(moved, total):
        np.testing.assert_allclose(m, t, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(RECURRENT))
def test_go_backwards_runs_the_reversed_sequence_and_keeps_its_order(name):
    x = data()
    backwards = RECURRENT[name](return_sequences=True, go_backwards=True)
    forwards = RECURRENT[name](return_sequences=True)
    forwards.build(x.shape[1:])
    backwards.build(x.shape[1:])
    backwards.set_weights(forwards.get_weights())
    np.testing.assert_array_equal(backwards(x), forwards(x[:, ::-1]))


def test_go_backwards_with_trailing_padding_outputs_zeros_first():
    """Keras reverses the steps and the mask: the padding comes first."""
    x = padded(data(), MASKS[:1])
    layer = L.GRU(5, return_sequences=True, go_backwards=True)
    model = fastlstm.Sequential([L.Masking(input_shape=x.shape[1:]), layer])
    out = model.predict(x)
    assert not out[0, :2].any()
    forwards = L.GRU(5, return_sequences=True)
    forwards.build(x.shape[1:])
    forwards.set_weights(layer.get_weights())
    np.testing.assert_allclose(out[0, 2:], forwards(x[:1, 3::-1])[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ Bidirectional


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_both_directions(merge_mode):
    x = data()
    bi = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode=merge_mode)
    out = bi(x)
    forward_layer, backward_layer = L.LSTM(5, return_sequences=True), L.LSTM(5,
                                                                              return_sequences=True)
    for layer, weights in ((forward_layer, bi.get_weights()[:3]),
                           (backward_layer, bi.get_weights()[3:])):
        layer.build(x.shape[1:])
        layer.set_weights(weights)
    y_f, y_b = forward_layer(x), backward_layer(x[:, ::-1])[:, ::-1]
    expected = {"concat": np.concatenate([y_f, y_b], -1), "sum": y_f + y_b, "mul": y_f * y_b,
                "ave": (y_f + y_b) / 2, None: [y_f, y_b]}[merge_mode]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


def test_bidirectional_weights_are_the_forward_layers_then_the_backward_layers():
    bi = L.Bidirectional(L.GRU(4))
    bi.build((6, 3))
    assert [w.shape for w in bi.get_weights()] == [(3, 12), (4, 12), (2, 12)] * 2
    assert bi.forward_layer.go_backwards is False and bi.backward_layer.go_backwards is True


def test_bidirectional_masked_steps_output_zeros():
    x = padded(data(), MASKS)
    model = fastlstm.Sequential([L.Masking(input_shape=x.shape[1:]),
                                 L.Bidirectional(L.LSTM(5, return_sequences=True))])
    out = model.predict(x)
    assert not out[~MASKS].any()
    assert np.abs(out[MASKS]).min() > 0


@pytest.mark.parametrize("batch", [1, 2, 40])
def test_bidirectional_gives_the_same_bits_on_any_thread_count(batch):
    x = data(batch=batch, time=30, features=4)
    bi = L.Bidirectional(L.LSTM(64, return_sequences=True))
    bi.build(x.shape[1:])
    with fastlstm.threads(1):
        expected = bi(x)
    for n in (2, 3, 4):
        with fastlstm.threads(n):
            np.testing.assert_array_equal(bi(x), expected)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_trains_as_its_two_layers(merge_mode):
    """Its gradients are those of the two directions' layers."""
    x, dy_seed = data(batch=3), 4
    bi = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode=merge_mode)
    bi.build(x.shape[1:])
    out = bi.forward(x, training=True)
    dy = np.random.default_rng(dy_seed).standard_normal(out.shape).astype(np.float32)
    dx = bi.backward(dy)
    forward_layer, backward_layer = bi.forward_layer, bi.backward_layer
    y_f = forward_layer.forward(x, training=True)
    y_b = backward_layer.forward(x, training=True)[:, ::-1]
    dy_f, dy_b = {"concat": lambda: (dy[..., :5], dy[..., 5:]), "sum": lambda: (dy, dy),
                  "mul": lambda: (dy * y_b, dy * y_f),
                  "ave": lambda: (dy / 2, dy / 2)}[merge_mode]()
    grads = list(bi.grads)
    dx_expected = (forward_layer.backward(np.ascontiguousarray(dy_f))
                   + backward_layer.backward(np.ascontiguousarray(dy_b[:, ::-1])))
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-5, atol=1e-6)
    for g, e in zip(grads, forward_layer.grads + backward_layer.grads):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_bidirectional_states_forward_then_backward():
    x = data(batch=2)
    bi = L.Bidirectional(L.LSTM(5, return_state=True))
    out, h_f, c_f, h_b, c_b = bi(x)
    np.testing.assert_array_equal(out, np.concatenate([h_f, h_b], -1))
    states = [np.full((2, 5), 0.1, np.float32)] * 4
    again = bi(x, initial_state=states)
    assert not np.allclose(again[0], out)
    with pytest.raises(ValueError, match="4 arrays"):
        bi(x, initial_state=states[:2])


def test_bidirectional_saves_and_loads(tmp_path):
    model = fastlstm.Sequential([L.Masking(input_shape=(6, 3)),
                                 L.Bidirectional(L.GRU(4, return_sequences=True), "sum"),
                                 L.LSTM(3, go_backwards=True), L.Dense(1)])
    model.build()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastlstm.load_model(path)
    x = padded(data(), MASKS)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[1].merge_mode == "sum" and loaded.layers[2].go_backwards


def test_sequential_refuses_a_bidirectional_layer_with_two_outputs():
    with pytest.raises(ValueError, match="merge_mode=None"):
        fastlstm.Sequential([L.Bidirectional(L.LSTM(3), merge_mode=None)])


# ------------------------------------------------------------ states


def test_initial_state_and_return_state_on_a_layer_call():
    x = data(batch=2)
    layer = L.LSTM(5, return_sequences=True, return_state=True)
    h0, c0 = np.full((2, 5), 0.2, np.float32), np.full((2, 5), -0.1, np.float32)
    y, h, c = layer(x, initial_state=[h0, c0])
    weights = layer.get_weights()
    y_ref, h_ref, c_ref = reference.lstm_forward(x, *weights, h0, c0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h, y[:, -1])


@pytest.mark.parametrize("name", list(RECURRENT))
def test_a_stateful_model_continues_from_the_last_batch(name):
    x = data(batch=2, time=8)
    model = fastlstm.Sequential([RECURRENT[name](stateful=True, input_shape=(4, 3)), L.Dense(1)])
    model.build()
    first, second = model.predict(x[:, :4]), model.predict(x[:, 4:])
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x[:, :4]), first)
    whole = fastlstm.Sequential([RECURRENT[name](input_shape=(8, 3)), L.Dense(1)])
    whole.build()
    whole.set_weights(model.get_weights())
    np.testing.assert_array_equal(whole.predict(x), second)


def test_a_stateful_layer_refuses_another_batch_size():
    layer = L.GRU(3, stateful=True)
    layer(data(batch=2))
    with pytest.raises(ValueError, match="reset_states"):
        layer(data(batch=3))
    layer.reset_states()
    layer(data(batch=3))
    assert layer.states[0].shape == (3, 3)


# ------------------------------------------------------------ streams


def classic_model(layer):
    model = fastlstm.Sequential([layer, L.Dense(1)])
    model.build((None, 2))
    return model


@pytest.mark.parametrize("name", list(RECURRENT))
@pytest.mark.parametrize("batch", [1, 3])
def test_stepping_gives_the_whole_sequences_outputs_bitwise(name, batch):
    model = classic_model(RECURRENT[name]())
    x = data(batch=batch, time=12, features=2, seed=batch)
    stream = model.stream(batch_size=batch)
    for t in range(12):
        np.testing.assert_array_equal(stream.step(x[:, t]), model.predict(x[:, :t + 1]))


@pytest.mark.parametrize("units", [64, 300])
def test_stepping_a_stack_matches_predict_on_every_thread_count(units):
    model = fastlstm.Sequential([L.LSTM(units, return_sequences=True), L.Dropout(0.5),
                                 L.GRU(16), L.Dense(2, activation="tanh")])
    model.build((5, 3))
    x = data(batch=2, time=5, features=3)
    expected = model.predict(x)
    for n in (1, 2):
        with fastlstm.threads(n):
            stream = model.stream(batch_size=2)
            for t in range(5):
                out = stream.step(x[:, t])
        np.testing.assert_array_equal(out, expected)


def test_a_dense_head_over_every_step_agrees_to_rounding():
    model = fastlstm.Sequential([L.LSTM(8, return_sequences=True), L.Dense(1)])
    model.build((6, 2))
    x = data(batch=1, time=6, features=2)
    stream = model.stream()
    outs = np.stack([stream.step(x[:, t]) for t in range(6)], axis=1)
    np.testing.assert_allclose(outs, model.predict(x), rtol=1e-6, atol=1e-7)


def test_reset_and_states_of_a_stream():
    model = classic_model(L.LSTM(6))
    x = data(batch=1, time=12, features=2)
    stream = model.stream()
    for t in range(5):
        stream.step(x[:, t])
    saved = stream.states
    assert [s.shape for s in saved[0]] == [(1, 6), (1, 6)]
    rest = [stream.step(x[:, t]) for t in range(5, 12)]
    stream.states = saved
    np.testing.assert_array_equal([stream.step(x[:, t]) for t in range(5, 12)], rest)
    stream.reset()
    np.testing.assert_array_equal(stream.step(x[:, 0]), model.predict(x[:, :1]))
    with pytest.raises(ValueError, match="states"):
        stream.states = [[np.zeros((1, 6))]]


def test_a_stream_keeps_its_own_weights():
    model = classic_model(L.GRU(4))
    x = data(batch=1, time=12, features=2)
    stream = model.stream()
    before = model.predict(x[:, :1])
    model.set_weights([w + 1 for w in model.get_weights()])
    np.testing.assert_array_equal(stream.step(x[:, 0]), before)


def test_a_stream_refuses_bad_steps_and_layers_it_cannot_run():
    stream = classic_model(L.LSTM(4)).stream(batch_size=2)
    with pytest.raises(ValueError, match=r"\(batch_size, features\) = \(2, 2\)"):
        stream.step(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        stream.step(np.array([[0, np.nan], [0, 0]]))
    for layer in (L.LSTM(3, go_backwards=True), L.Bidirectional(L.LSTM(3))):
        with pytest.raises(ValueError, match="stream"):
            classic_model(layer).stream()


def test_a_stream_used_by_two_threads_at_once_raises():
    stream = classic_model(L.LSTM(4)).stream()
    inside, release = threading.Event(), threading.Event()
    first_layer = stream._layers[0]

    def blocking_layer(n_threads):
        inside.set()
        release.wait(5)
        first_layer(n_threads)

    stream._layers[0] = blocking_layer
    worker = threading.Thread(target=stream.step, args=(np.zeros((1, 2)),))
    worker.start()
    inside.wait(5)
    try:
        with pytest.raises(RuntimeError, match="one stream per thread"):
            stream.step(np.zeros((1, 2)))
    finally:
        release.set()
        worker.join()


def test_a_stateful_model_fits_whole_batches_and_validates_on_its_own_states():
    x = data(batch=16, time=4)
    y = np.random.default_rng(2).standard_normal((16, 1)).astype(np.float32)
    model = fastlstm.Sequential([L.LSTM(3, stateful=True, input_shape=(4, 3)), L.Dense(1)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="multiple of batch_size=5"):
        model.fit(x, y, batch_size=5, verbose=0)
    history = model.fit(x, y, batch_size=4, epochs=2, validation_split=0.25, shuffle=False,
                        verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert model.layers[0].states[0].shape == (4, 3)


def test_go_backwards_passes_the_mask_on_unchanged_as_keras_does():
    layer = L.LSTM(3, return_sequences=True, go_backwards=True)
    mask = MASKS[:1]
    np.testing.assert_array_equal(layer.compute_mask(None, mask), mask)


def test_a_stream_checks_out_before_stepping_and_states_in_float32():
    stream = classic_model(L.LSTM(4)).stream()
    with pytest.raises(ValueError, match="out must be a float32 array of shape"):
        stream.step(np.zeros((1, 2)), out=np.empty((1, 1)))
    states = stream.states
    with pytest.raises(ValueError, match="NaN or infinity"):
        stream.states = [[np.full((1, 4), 1e39), states[0][1]]]
    np.testing.assert_array_equal(stream.states[0][0], states[0][0])


def test_a_stepper_cannot_be_pointed_elsewhere():
    stream = classic_model(L.GRU(4)).stream()
    with pytest.raises(AttributeError):
        stream._steppers[0].output = np.zeros((1, 1), np.float32)


def test_the_loss_and_metrics_skip_masked_steps_as_keras_does():
    """The output over steps still carries the mask: the loss is the mean
    over the unmasked steps, and the targets at masked steps do not matter."""
    x = padded(data(batch=3), MASKS[:3])
    y = np.random.default_rng(5).standard_normal((3, 6, 1)).astype(np.float32)

    def trained(targets):
        fastlstm.set_random_seed(1)
        model = fastlstm.Sequential([L.Masking(input_shape=(6, 3)),
                                     L.GRU(4, return_sequences=True), L.Dense(1)])
        model.compile(fastlstm.optimizers.SGD(0.1), "mse", metrics=["mae"])
        history = model.fit(x, targets, batch_size=3, epochs=1, verbose=0)
        return model, history.history

    model, logs = trained(y)
    noisy = np.where(MASKS[:3, :, None], y, 1e3).astype(np.float32)
    other, other_logs = trained(noisy)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert logs == other_logs
    output = model.predict(x)
    error = (output.astype(np.float64) - y)[MASKS[:3]]
    loss, mae = model.evaluate(x, y)
    assert loss == pytest.approx(np.mean(error ** 2), rel=1e-6)
    assert mae == pytest.approx(np.mean(np.abs(error)), rel=1e-6)

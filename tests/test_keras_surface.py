"""The everyday Keras surface of Sequential and the layers: Input, input
shapes of any length and their checks, calling a model, weights files,
TimeDistributed, Dense's options, sample weights and initial_epoch, and
Keras arguments fastlstm does not take; sample weights, masks and metrics
against Keras 3 (data/keras_surface_fixtures.npz, made by
data/make_keras_surface_fixtures.py)."""
import pathlib

import numpy as np
import pytest

import fastlstm
from fastlstm import layers as L


def data(batch=4, time=6, features=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, time, features)).astype(np.float32)


def test_an_input_first_declares_the_samples_shape():
    model = fastlstm.Sequential([fastlstm.Input((6, 3)), L.LSTM(4), L.Dense(1)])
    assert model.get_weights()  # built as it is assembled, as Keras builds it
    assert model.input_shape == (6, 3) and model.output_shape == (1,)
    with pytest.raises(ValueError, match="Input comes first"):
        model.add(fastlstm.Input((6, 3)))


def test_a_model_for_fixed_lengths_refuses_others_and_says_how_to_take_any():
    model = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dense(1)])
    with pytest.raises(ValueError, match=r"built for sequences of 6 steps, not 3; declare "
                                         r"input_shape=\(None, 3\)"):
        model.predict(data(time=3))


def test_input_shape_none_takes_sequences_of_any_length(tmp_path):
    model = fastlstm.Sequential([L.GRU(4, input_shape=(None, 3)), L.Dense(1)])
    model.compile("adam", "mse")
    for time in (2, 7):
        model.fit(data(time=time), np.zeros((4, 1), np.float32), verbose=0)
    assert model.predict(data(time=11)).shape == (4, 1)
    path = tmp_path / "model.fastlstm"
    model.save(path)
    loaded = fastlstm.load_model(path)
    assert loaded.input_shape == (None, 3)
    np.testing.assert_array_equal(loaded.predict(data(time=5)), model.predict(data(time=5)))


def test_a_declared_feature_count_is_never_rebuilt_from_data():
    model = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dense(1)])
    with pytest.raises(ValueError, match=r"x must have shape \(samples, 6, 3\), got \(4, 6, 2\)"):
        model.predict(data(features=2))
    with pytest.raises(ValueError, match="None for any length, except in the last"):
        L.LSTM(4, input_shape=(6, None))


def test_calling_a_model_is_predict_in_one_batch():
    model = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dropout(0.5), L.Dense(2)])
    x = data()
    np.testing.assert_array_equal(model(x), model.predict(x))
    np.testing.assert_array_equal(model(x, training=False), model.predict(x))
    assert not np.array_equal(model(x, training=True), model.predict(x))  # dropout drops


def test_weights_files_round_trip_and_refuse_another_architecture(tmp_path):
    model = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dense(1)])
    path = tmp_path / "best.weights.h5"
    model.save_weights(path)
    other = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dense(1)])
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "model.fastlstm")
    again = fastlstm.Sequential([L.LSTM(4, input_shape=(6, 3)), L.Dense(1)])
    again.load_weights(tmp_path / "model.fastlstm")  # a model file's weights too
    np.testing.assert_array_equal(again.predict(data()), model.predict(data()))
    wider = fastlstm.Sequential([L.LSTM(5, input_shape=(6, 3)), L.Dense(1)])
    before = wider.get_weights()
    with pytest.raises(ValueError, match="needs"):
        wider.load_weights(path)
    for a, b in zip(wider.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable fastlstm weights file"):
        wider.load_weights(tmp_path / "junk")


def test_time_distributed_dense_is_a_dense_over_every_step():
    x = data()
    model = fastlstm.Sequential([L.LSTM(4, return_sequences=True, input_shape=(6, 3)),
                                 L.TimeDistributed(L.Dense(2, activation="tanh"))])
    plain = fastlstm.Sequential([L.LSTM(4, return_sequences=True, input_shape=(6, 3)),
                                 L.Dense(2, activation="tanh")])
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x), plain.predict(x), rtol=1e-6, atol=1e-7)
    for m in (model, plain):
        m.compile(fastlstm.optimizers.SGD(0.1), "mse")
        m.fit(x, np.ones((4, 6, 2), np.float32), batch_size=4, epochs=1, shuffle=False,
              verbose=0)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dense_without_bias_and_with_named_initializers():
    layer = L.Dense(3, use_bias=False, kernel_initializer="zeros")
    layer.build((2,))
    assert [w.shape for w in layer.get_weights()] == [(2, 3)]
    assert not layer(np.ones((1, 2))).any()
    layer.forward(np.ones((1, 2), np.float32), training=True)
    layer.backward(np.ones((1, 3), np.float32))
    assert len(layer.grads) == 1
    assert L.Dense.from_config(layer.get_config()).use_bias is False


def test_lstm_takes_keras_activation_arguments_it_computes():
    L.LSTM(3, activation="tanh", recurrent_activation="sigmoid")
    with pytest.raises(ValueError, match="activation must be one of"):
        L.LSTM(3, activation="relu")


@pytest.mark.parametrize("make, argument", [
    (lambda: L.LSTM(3, kernel_regularizer="l2"), "kernel_regularizer"),
    (lambda: L.GRU(3, unroll=True), "unroll"),
    (lambda: L.Dense(3, kernel_constraint="max_norm"), "kernel_constraint"),
    (lambda: L.Dropout(0.1, noise_shape=(1, 1)), "noise_shape"),
    (lambda: fastlstm.Sequential([], trainable=False), "trainable"),
])
def test_keras_arguments_fastlstm_lacks_are_named(make, argument):
    with pytest.raises(ValueError, match=f"{argument}=.* are not supported by fastlstm"):
        make()


def test_an_argument_keras_lacks_too_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        L.LSTM(3, colour="blue")


def test_time_distributed_and_bias_free_dense_save_and_load(tmp_path):
    model = fastlstm.Sequential([fastlstm.Input((None, 3)),
                                 L.GRU(4, return_sequences=True),
                                 L.TimeDistributed(L.Dense(2, use_bias=False))])
    path = tmp_path / "model.fastlstm"
    model.save(path)
    loaded = fastlstm.load_model(path)
    x = data(time=9)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_sample_weights_weigh_each_samples_loss_as_keras_does():
    """Keras' sum_over_batch_size: the mean over samples of weight * loss;
    a weight of 2 is the sample given twice in a batch of its own size."""
    x, y = data(batch=4), np.random.default_rng(3).standard_normal((4, 1)).astype(np.float32)
    model = fastlstm.Sequential([L.LSTM(3, input_shape=(6, 3)), L.Dense(1)])
    model.compile(fastlstm.optimizers.SGD(0.1), "mse")
    weights = np.array([0.0, 1.0, 2.0, 0.5])
    errors = (model.predict(x).astype(np.float64) - y)[:, 0] ** 2
    assert model.evaluate(x, y, sample_weight=weights) == pytest.approx(
        np.mean(weights * errors), rel=1e-6)
    start = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, sample_weight=weights)
    moved = [w - s for w, s in zip(model.get_weights(), start)]
    twice = fastlstm.Sequential([L.LSTM(3, input_shape=(6, 3)), L.Dense(1)])
    twice.set_weights(start)
    twice.compile(fastlstm.optimizers.SGD(0.1), "mse")
    # Sample 0 weighs nothing, sample 2 twice, sample 3 half: the same step
    # as the batch [1, 2, 2, 3 (halved)] of four, each weighing one.
    x4, y4 = x[[1, 2, 2, 3]], y[[1, 2, 2, 3]]
    twice.fit(x4, y4, batch_size=4, epochs=1, shuffle=False, verbose=0,
              sample_weight=[1.0, 1.0, 1.0, 0.5])
    for m, t in zip(moved, [w - s for w, s in zip(twice.get_weights(), start)]):
        np.testing.assert_allclose(m, t, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match=r"sample_weight must be a real array of shape \(4,\)"):
        model.fit(x, y, sample_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        model.fit(x, y, sample_weight=[1.0, -1.0, 1.0, 1.0], verbose=0)


def test_initial_epoch_resumes_the_epoch_count():
    model = fastlstm.Sequential([L.GRU(3, input_shape=(6, 3)), L.Dense(1)])
    model.compile("adam", "mse")
    seen = []

    class Epochs(fastlstm.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    history = model.fit(data(), np.zeros((4, 1)), epochs=5, initial_epoch=3, verbose=0,
                        callbacks=[Epochs()])
    assert seen == [3, 4] and len(history.history["loss"]) == 2
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(data(), np.zeros((4, 1)), epochs=2, initial_epoch=3, verbose=0)


@pytest.mark.parametrize("call, argument", [
    (lambda m: m.compile("adam", "mse", jit_compile=True), "jit_compile"),
    (lambda m: m.fit(data(), np.zeros((4, 1)), class_weight={0: 1}), "class_weight"),
    (lambda m: m.predict(data(), steps=1), "steps"),
    (lambda m: m.evaluate(data(), np.zeros((4, 1)), return_dict=True), "return_dict"),
])
def test_keras_arguments_of_the_model_methods_are_named(call, argument):
    model = fastlstm.Sequential([L.GRU(3, input_shape=(6, 3)), L.Dense(1)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=f"{argument}=.* are not supported by fastlstm"):
        call(model)


# ------------------------------------------------------------ against Keras

KERAS = np.load(pathlib.Path(__file__).resolve().parent / "data" / "keras_surface_fixtures.npz")


def keras_fixture(prefix):
    return {k[len(prefix) + 1:]: KERAS[k] for k in KERAS.files if k.startswith(prefix + "_")}


def weights_of(f, prefix="w"):
    return [f[f"{prefix}{i}"] for i in range(sum(1 for k in f if k.startswith(prefix)
                                                 and k[len(prefix):].isdigit()))]


def test_sample_weights_and_metrics_match_keras():
    f = keras_fixture("dense")
    model = fastlstm.Sequential([fastlstm.Input((6, 3)), L.LSTM(4), L.Dense(1)])
    model.set_weights(weights_of(f))
    model.compile("sgd", "mse", metrics=["mae"])
    np.testing.assert_allclose(model.evaluate(f["x"], f["y"]), f["evaluate_plain"], rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(f["x"], f["y"], sample_weight=f["sample_weight"]),
                               f["evaluate_weighted"], rtol=1e-5)


def test_masked_weighted_loss_metrics_and_training_step_match_keras():
    f = keras_fixture("masked")
    model = fastlstm.Sequential([fastlstm.Input((6, 3)), L.Masking(0.0),
                                 L.GRU(4, return_sequences=True), L.Dense(2)])
    model.set_weights(weights_of(f))
    model.compile(fastlstm.optimizers.SGD(0.1), "mse", metrics=["mae"])
    np.testing.assert_allclose(model.evaluate(f["x"], f["y"]), f["evaluate_plain"], rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(f["x"], f["y"], sample_weight=f["sample_weight"]),
                               f["evaluate_weighted"], rtol=1e-5)
    model.fit(f["x"], f["y"], sample_weight=f["sample_weight"], batch_size=5, epochs=1,
              shuffle=False, verbose=0)
    for a, e in zip(model.get_weights(), weights_of(f, "trained_w")):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------ callbacks' Keras arguments


class Scripted(fastlstm.callbacks.Callback):
    """Logs a scripted val_loss at each epoch's end, before the callbacks after it."""

    def __init__(self, values):
        super().__init__()
        self.values = list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def scripted_fit(values, *hooks):
    model = fastlstm.Sequential([L.GRU(2, input_shape=(6, 3)), L.Dense(1)])
    model.compile(fastlstm.optimizers.SGD(1.0), "mse")
    history = model.fit(data(), np.zeros((4, 1)), epochs=len(values), verbose=0,
                        callbacks=[Scripted(values), *hooks])
    return model, history


def test_reduce_lr_on_plateau_cools_down_and_stops_at_min_lr_as_keras_does(capsys):
    reduce = fastlstm.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2,
                                                  min_lr=0.2, verbose=1)
    model, history = scripted_fit([1.0] * 10, reduce)
    # The logs hold the rate each epoch ran with; reductions at the ends of
    # epochs 2, 4 and 6 (the cooldown's last epoch counts again), the last
    # one held at min_lr.
    assert history.history["learning_rate"] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2,
                                                0.2, 0.2]
    assert model.optimizer.learning_rate == 0.2
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out


def test_model_checkpoint_saves_weights_only_from_a_threshold(tmp_path, capsys):
    path = tmp_path / "best.weights"
    checkpoint = fastlstm.callbacks.ModelCheckpoint(
        str(path), monitor="val_loss", save_best_only=True, save_weights_only=True, verbose=1,
        initial_value_threshold=0.5)
    model, _ = scripted_fit([0.9, 0.4, 0.6], checkpoint)
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss did not improve from 0.50000" in out
    assert "Epoch 2: val_loss improved from 0.50000 to 0.40000, saving model to" in out
    again = fastlstm.Sequential([L.GRU(2, input_shape=(6, 3)), L.Dense(1)])
    again.load_weights(path)
    with pytest.raises(ValueError, match="not a fastlstm model file"):
        fastlstm.load_model(path)


@pytest.mark.parametrize("make, argument", [
    (lambda: fastlstm.optimizers.Adam(amsgrad=True), "amsgrad"),
    (lambda: fastlstm.optimizers.RMSprop(centered=True), "centered"),
    (lambda: fastlstm.callbacks.ModelCheckpoint("m", save_freq=10), "save_freq"),
])
def test_keras_arguments_of_optimizers_and_callbacks_are_named(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_keras_defaults_of_unsupported_arguments_pass():
    L.LSTM(3, kernel_regularizer=None, unroll=False, dtype=None, trainable=True)
    fastlstm.optimizers.Adam(amsgrad=False, name="adam")
    model = fastlstm.Sequential([L.GRU(3, input_shape=(6, 3)), L.Dense(1)])
    model.compile("adam", "mse", run_eagerly=False)
    model.fit(data(), np.zeros((4, 1)), verbose=0, class_weight=None, validation_freq=1)
    model.predict(data(), callbacks=None)


def test_sequence_outputs_of_any_length_train_and_evaluate():
    model = fastlstm.Sequential([fastlstm.Input((None, 3)), L.GRU(4, return_sequences=True),
                                 L.TimeDistributed(L.Dense(2))])
    model.compile("adam", "mse")
    for time in (3, 7):
        model.fit(data(time=time), np.zeros((4, time, 2)), verbose=0)
        assert np.isfinite(model.evaluate(data(time=time), np.zeros((4, time, 2))))
    assert model.predict(data(batch=0, time=5)).shape == (0, 5, 2)
    stream = model.stream()
    assert stream.step(np.zeros((1, 3))).shape == (1, 2)


def test_a_weight_beyond_float32_is_refused_on_load(tmp_path):
    model = fastlstm.Sequential([L.Dense(1, input_shape=(2,))])
    model.build()
    path = tmp_path / "w.npz"
    model.save_weights(path)
    import json
    import zipfile
    with zipfile.ZipFile(path) as archive:
        config = np.lib.format.read_array(archive.open("config.npy"))
    np.savez(path, config=config, weight_0=np.full((2, 1), 1e300), weight_1=np.zeros(1))
    assert json.loads(config.tobytes())["format"] == "fastlstm-weights"
    with pytest.raises(ValueError, match="beyond float32's range"):
        model.load_weights(path)


def test_a_stream_runs_bias_free_dense_heads():
    model = fastlstm.Sequential([L.LSTM(3), L.Dense(1, use_bias=False)])
    model.build((None, 2))
    x = data(batch=1, features=2)
    stream = model.stream()
    for t in range(6):
        out = stream.step(x[:, t])
    np.testing.assert_array_equal(out, model.predict(x))


def test_keras_arguments_of_summary_save_and_load_are_named(tmp_path):
    model = fastlstm.Sequential([L.GRU(3, input_shape=(6, 3)), L.Dense(1)])
    model.summary(print_fn=lambda line: None, expand_nested=False)
    model.save(tmp_path / "m.fastlstm", overwrite=True)
    fastlstm.load_model(tmp_path / "m.fastlstm", safe_mode=True)
    with pytest.raises(ValueError, match="line_length=80 are not supported"):
        model.summary(line_length=80)
    with pytest.raises(ValueError, match="skip_mismatch=True are not supported"):
        model.load_weights(tmp_path / "m.fastlstm", skip_mismatch=True)
    with pytest.raises(ValueError, match="safe_mode=False are not supported"):
        fastlstm.load_model(tmp_path / "m.fastlstm", safe_mode=False)

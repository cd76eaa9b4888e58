"""Sequential, layers, losses, optimizers and callbacks."""
import io

import numpy as np
import pytest

import fastlstm
from fastlstm import callbacks, losses, optimizers
from fastlstm.layers import LSTM, Dense, Dropout
from fastlstm.timeseries import make_windows


def sine_windows(n=400, window=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.15
    series = 0.5 + 0.4 * np.sin(t) + 0.02 * rng.standard_normal(n)
    return make_windows(series, window)


def small_model(activation="tanh", dropout=0.0):
    model = fastlstm.Sequential([LSTM(5, return_sequences=True, input_shape=(6, 3)),
                                 Dropout(dropout), LSTM(4), Dense(2, activation=activation)])
    model.compile("sgd", "mse")
    model.build()
    return model


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", None])
def test_whole_model_gradients_match_finite_differences(loss, activation):
    fastlstm.set_random_seed(1)
    model = small_model(activation)
    model.compile("sgd", loss)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)

    output = model._forward(x, training=True)
    grad = model.loss.gradient(y, output)
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    analytic = [g.copy() for layer in model.layers for g in layer.grads]

    def loss_value():
        return model.loss(y, model._forward(x, training=False))

    eps = 1e-2
    for weight, grad in zip(model.weights, analytic):
        for index in list(np.ndindex(weight.shape))[::max(1, weight.size // 6)]:
            saved = weight[index]
            weight[index] = saved + eps
            plus = loss_value()
            weight[index] = saved - eps
            minus = loss_value()
            weight[index] = saved
            numerical = (plus - minus) / (2 * eps)
            assert abs(grad[index] - numerical) <= 2e-3 + 2e-2 * abs(numerical), (weight.shape, index)


@pytest.mark.parametrize("first", ["lstm", "dense", "dropout"])
def test_backward_weights_stores_the_grads_backward_does(first):
    """A model's first layer skips dx (backward_weights); its weight
    gradients, and so a training step, are bitwise those of backward."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)

    def model():
        fastlstm.set_random_seed(5)
        head = {"lstm": LSTM(5, return_sequences=True, input_shape=(6, 3)),
                "dense": Dense(5, activation="tanh", input_shape=(6, 3)),
                "dropout": Dropout(0.3, input_shape=(6, 3))}[first]
        built = fastlstm.Sequential([head, LSTM(4), Dense(2)])
        built.compile("sgd", "mse")
        built.build()
        return built

    stepped, manual = model(), model()
    fastlstm.set_random_seed(7)
    stepped._train_step(x, y)
    fastlstm.set_random_seed(7)
    grad = manual.loss.gradient(y, manual._forward(x, training=True))
    for layer in reversed(manual.layers):
        grad = layer.backward(grad)
    assert grad.shape == x.shape
    manual.optimizer.apply(manual.weights, [g for layer in manual.layers for g in layer.grads])
    assert len(stepped.weights) == len(manual.weights)
    for a, e in zip(stepped.weights, manual.weights):
        np.testing.assert_array_equal(a, e)


def test_fit_lowers_the_loss_on_a_learnable_series():
    fastlstm.set_random_seed(0)
    x, y = sine_windows()
    model = fastlstm.Sequential([LSTM(16, input_shape=x.shape[1:]), Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    losses_ = history.history["loss"]
    assert len(losses_) == 8 and losses_[-1] < losses_[0] / 5
    assert set(history.history) == {"loss", "mae"}
    assert model.evaluate(x, y)[0] < np.var(y) / 2  # far better than predicting the mean


def test_the_classic_program_runs_as_written():
    fastlstm.set_random_seed(0)
    x_train, y_train = sine_windows(300, 60)
    scaler = fastlstm.timeseries.MinMaxScaler().fit(y_train)
    modell = fastlstm.Sequential()
    modell.add(LSTM(50, return_sequences=True, input_shape=(x_train.shape[1], 1)))
    modell.add(Dropout(0.2))
    modell.add(LSTM(100, return_sequences=False))
    modell.add(Dropout(0.2))
    modell.add(Dense(1))
    modell.compile(loss="mean_squared_error", optimizer="rmsprop")
    history = modell.fit(x_train, y_train, epochs=2, batch_size=64, verbose=0)
    predicted = scaler.inverse_transform(modell.predict(x_train[:10]))
    assert predicted.shape == (10, 1) and np.isfinite(predicted).all()
    assert history.history["loss"][1] < history.history["loss"][0]
    assert [layer.name for layer in modell.layers] == ["lstm", "dropout", "lstm_1", "dropout_1",
                                                       "dense"]


def test_model_without_input_shape_builds_from_its_first_data():
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(4), Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(RuntimeError, match="not built yet"):
        model.predict(x)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input_shape == (10, 1) and model.predict(x).shape == (len(x), 1)


def test_same_seed_same_training():
    x, y = sine_windows(200, 10)
    results = []
    for _ in range(2):
        fastlstm.set_random_seed(42)
        model = fastlstm.Sequential([LSTM(8, input_shape=(10, 1)), Dropout(0.3), Dense(1)])
        model.compile("rmsprop", "mse")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_dropout_is_inverted_and_only_active_in_training():
    fastlstm.set_random_seed(3)
    layer = Dropout(0.25)
    x = np.ones((2000, 50), np.float32)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    out = layer.forward(x, training=True)
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert abs(out.mean() - 1.0) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), out)


def test_weights_use_keras_layouts_and_initializers():
    fastlstm.set_random_seed(0)
    model = fastlstm.Sequential([LSTM(8, input_shape=(5, 3)), Dense(2)])
    model.build()
    kernel, recurrent, bias, dense_kernel, dense_bias = model.get_weights()
    assert (kernel.shape, recurrent.shape, bias.shape) == ((3, 32), (8, 32), (32,))
    assert (dense_kernel.shape, dense_bias.shape) == ((8, 2), (2,))
    assert np.abs(kernel).max() <= np.sqrt(6 / (3 + 32))
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(8), np.ones(8), np.zeros(16)])
    assert model.count_params() == 3 * 32 + 8 * 32 + 32 + 8 * 2 + 2


def test_set_weights_round_trip_and_errors():
    model = small_model()
    weights = [w + 1 for w in model.get_weights()]
    model.set_weights(weights)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="expected 8 arrays"):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError, match="weight 0 must have shape"):
        model.set_weights([np.zeros((1, 1))] + weights[1:])


def test_summary_lists_layers_shapes_and_parameters():
    lines = []
    small_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "lstm (LSTM)" in text and "(None, 6, 5)" in text and "(None, 2)" in text
    assert f"Total params: {small_model().count_params():,}" in text


def test_validation_split_takes_the_last_samples_before_shuffling():
    x, y = sine_windows(120, 10)
    seen = []

    class Spy(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs)

    model = fastlstm.Sequential([LSTM(4, input_shape=(10, 1)), Dense(1)])
    model.compile("sgd", "mse", metrics=["rmse"])
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[Spy()])
    split = int(len(x) * 0.75)
    expected = model.evaluate(x[split:], y[split:])
    assert history.history["val_loss"][-1] == pytest.approx(expected[0], rel=1e-6)
    assert set(seen[-1]) == {"loss", "rmse", "val_loss", "val_rmse"}


def test_verbose_fit_prints_a_progress_line_per_epoch(capsys):
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(4, input_shape=(10, 1)), Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=30, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "/step" in out and "\r" not in out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_early_stopping_restores_the_best_weights():
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(4, input_shape=(10, 1)), Dense(1)])
    model.compile(optimizers.SGD(learning_rate=0.5), "mse")
    values = iter([1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    snapshots = []

    class ScriptedLoss(callbacks.Callback):  # runs before EarlyStopping: sets its input
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)
            snapshots.append(self.model.get_weights())

    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[ScriptedLoss(), stopper])
    assert len(history.epoch) == 4 and stopper.stopped_epoch == 3
    for a, b in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_and_unknown_monitor():
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(4, input_shape=(10, 1)), Dense(1)])
    model.compile(optimizers.Adam(learning_rate=0.01), "mse")

    class Flat(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0

    model.fit(x, y, epochs=4, verbose=0,
              callbacks=[Flat(), callbacks.ReduceLROnPlateau(factor=0.5, patience=1)])
    assert model.optimizer.learning_rate == pytest.approx(0.01 * 0.5 ** 3)  # epochs 2, 3, 4
    with pytest.raises(KeyError, match="val_loss"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_model_checkpoint_saves_only_improvements(tmp_path):
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(4, input_shape=(10, 1)), Dense(1)])
    model.compile("sgd", "mse")
    values = iter([1.0, 2.0, 0.5])

    class Scripted(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(values)

    path = str(tmp_path / "model-{epoch}.fastlstm")
    model.fit(x, y, epochs=3, verbose=0,
              callbacks=[Scripted(), callbacks.ModelCheckpoint(path, save_best_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-1.fastlstm", "model-3.fastlstm"]


def test_save_and_load_give_identical_predictions(tmp_path):
    fastlstm.set_random_seed(5)
    x, y = sine_windows(100, 10)
    model = fastlstm.Sequential([LSTM(6, return_sequences=True, input_shape=(10, 1)),
                                 Dropout(0.1), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile(optimizers.RMSprop(learning_rate=0.002, clipnorm=1.0), "huber", ["mae"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.fastlstm"
    model.save(path, metadata={"scaler": [0.0, 1.0]})
    loaded = fastlstm.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.metadata == {"scaler": [0.0, 1.0]}
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.name == "huber" and loaded.metrics == ["mae"]


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable fastlstm model file"),
    (b"not a zip at all", "not a readable fastlstm model file"),
    ("truncated", "not a readable fastlstm model file"),
    ("foreign", "not a fastlstm model file"),
])
def test_bad_model_files(tmp_path, content, message):
    path = tmp_path / "model.fastlstm"
    if content == "truncated":
        small_model().save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif content == "foreign":
        with open(path, "wb") as f:
            np.savez(f, config=np.frombuffer(b'{"format": "other"}', np.uint8))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        fastlstm.load_model(path)
    with pytest.raises(FileNotFoundError):
        fastlstm.load_model(tmp_path / "absent.fastlstm")


@pytest.mark.parametrize("x, y, error, message", [
    (np.zeros((8, 6)), np.zeros((8, 2)), ValueError, r"x must have shape \(samples, 6, 3\)"),
    (np.zeros((8, 6, 2)), np.zeros((8, 2)), ValueError, r"x must have shape \(samples, 6, 3\)"),
    (np.zeros((8, 6, 3)), np.zeros((7, 2)), ValueError, "x has 8 samples but y has 7"),
    (np.zeros((8, 6, 3)), np.zeros((8, 3)), ValueError, r"the model outputs \(8, 2\)"),
    (np.full((8, 6, 3), np.nan), np.zeros((8, 2)), ValueError, "x contains NaN"),
    (np.zeros((8, 6, 3)), np.full((8, 2), np.inf), ValueError, "y contains NaN or infinity"),
    (np.zeros((8, 6, 3), dtype=object), np.zeros((8, 2)), TypeError, "x must be numeric"),
])
def test_bad_training_data(x, y, error, message):
    with pytest.raises(error, match=message):
        small_model().fit(x, y, verbose=0)


def test_unknown_names_list_the_valid_ones():
    model = small_model()
    with pytest.raises(ValueError, match=r"unknown loss 'l3'; valid names: \['Huber', 'LogCosh'"):
        model.compile("sgd", "l3")
    with pytest.raises(ValueError, match=r"unknown optimizer 'adadelta'; valid names: "
                                         r"\['adagrad', 'adam'"):
        model.compile("adadelta", "mse")
    with pytest.raises(ValueError, match="unknown metric 'r2'"):
        model.compile("sgd", "mse", metrics=["r2"])
    with pytest.raises(ValueError, match="unknown activation 'gelu'; valid: None, 'linear'"):
        Dense(3, activation="gelu")
    with pytest.raises(ValueError, match="unknown initializer 'he'"):
        LSTM(3, kernel_initializer="he")
    with pytest.raises(RuntimeError, match="compile"):
        fastlstm.Sequential([Dense(1, input_shape=(2,))]).fit(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="return_state"):
        fastlstm.Sequential([LSTM(2, return_state=True)])


def _one_step(optimizer, weight, grad, steps=1):
    weight = weight.copy()
    for _ in range(steps):
        optimizer.apply([weight], [grad])
    return weight


def test_optimizer_updates_follow_keras_formulas():
    w = np.array([1.0, -2.0, 3.0], np.float32)
    g = np.array([0.5, -1.0, 2.0], np.float32)
    np.testing.assert_allclose(_one_step(optimizers.SGD(0.1), w, g), w - 0.1 * g, rtol=1e-6)
    # momentum: v = m v - lr g; w += v (twice)
    v1 = -0.1 * g
    v2 = 0.9 * v1 - 0.1 * g
    np.testing.assert_allclose(_one_step(optimizers.SGD(0.1, momentum=0.9), w, g, 2),
                               w + v1 + v2, rtol=1e-6)
    np.testing.assert_allclose(_one_step(optimizers.SGD(0.1, momentum=0.9, nesterov=True), w, g),
                               w + 0.9 * v1 - 0.1 * g, rtol=1e-6)
    ms = 0.1 * g * g
    np.testing.assert_allclose(_one_step(optimizers.RMSprop(0.01), w, g),
                               w - 0.01 * g / np.sqrt(ms + 1e-7), rtol=1e-6)
    m, v = 0.1 * g, 0.001 * g * g
    step = 0.01 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(_one_step(optimizers.Adam(0.01), w, g),
                               w - step * m / (np.sqrt(v) + 1e-7), rtol=1e-5)


def _numpy_rmsprop(weight, grad, mean_square, lr, rho, eps):
    """The update as NumPy operations, in the compiled loop's order."""
    mean_square *= np.float32(rho)
    mean_square += np.float32(1.0 - rho) * grad * grad
    weight -= np.float32(lr) * grad / np.sqrt(mean_square + np.float32(eps))


def _numpy_adam(weight, grad, m, v, step, beta_1, beta_2, eps):
    m += np.float32(1.0 - beta_1) * (grad - m)
    v += np.float32(1.0 - beta_2) * (grad * grad - v)
    weight -= np.float32(step) * m / (np.sqrt(v) + np.float32(eps))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_updates_are_bitwise_the_numpy_formulas(dtype):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((37, 11)).astype(dtype)
    grads = [rng.standard_normal(weight.shape).astype(dtype) for _ in range(3)]
    rmsprop, adam = optimizers.RMSprop(0.01), optimizers.Adam(0.02)
    w_rms, w_adam, w_rms_np, w_adam_np = (weight.copy() for _ in range(4))
    mean_square = np.zeros_like(weight)
    m, v = np.zeros_like(weight), np.zeros_like(weight)
    for t, grad in enumerate(grads, start=1):
        rmsprop.apply([w_rms], [grad])
        adam.apply([w_adam], [grad])
        _numpy_rmsprop(w_rms_np, grad, mean_square, 0.01, 0.9, 1e-7)
        step = 0.02 * np.sqrt(1.0 - 0.999 ** t) / (1.0 - 0.9 ** t)
        _numpy_adam(w_adam_np, grad, m, v, step, 0.9, 0.999, 1e-7)
    assert w_rms.dtype == w_adam.dtype == dtype
    np.testing.assert_array_equal(w_rms, w_rms_np)
    np.testing.assert_array_equal(w_adam, w_adam_np)


def test_compiled_updates_reject_what_they_cannot_update_in_place():
    weight = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\); its weight has \(4, 3\)"):
        optimizers.RMSprop().apply([weight], [np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="C-contiguous"):
        optimizers.Adam().apply([weight.T], [np.zeros((3, 4), np.float32)])
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        optimizers.RMSprop().apply([np.zeros(3, np.int64)], [np.zeros(3)])
    np.testing.assert_array_equal(weight, 0)
    optimizer = optimizers.RMSprop()
    optimizer.apply([weight], [np.ones((4, 3), np.float32)])
    with pytest.raises(ValueError, match="mean_square has 12 elements, expected 20"):
        optimizer.apply([np.zeros((4, 5), np.float32)], [np.ones((4, 5), np.float32)])


def test_dropout_mask_is_applied_in_one_pass_like_x_times_mask():
    fastlstm.set_random_seed(1)
    layer = Dropout(0.3)
    x = np.random.default_rng(0).standard_normal((7, 5, 3)).astype(np.float32)
    x[0, 0, :] = [np.nan, np.inf, -np.inf]
    out = layer.forward(x, training=True)
    keep = layer._mask.reshape(x.shape) >= round(0.3 * 65536)
    with np.errstate(invalid="ignore"):
        expected = x * (keep * np.float32(1 / 0.7))
    np.testing.assert_array_equal(out, expected)  # NaN where x is NaN or a dropped inf
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dy), keep * np.float32(1 / 0.7))
    with pytest.raises(ValueError, match="mask was drawn for 105 values"):
        layer.backward(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"of shape \(7, 5, 3\)"):
        layer.backward(np.ones((3, 5, 7), np.float32))  # as many values, other shape


def test_gradient_clipping():
    w = np.zeros(2, np.float32)
    g = np.array([3.0, 4.0], np.float32)  # norm 5
    np.testing.assert_allclose(_one_step(optimizers.SGD(1.0, clipnorm=1.0), w, g), [-0.6, -0.8],
                               rtol=1e-6)
    np.testing.assert_allclose(_one_step(optimizers.SGD(1.0, clipvalue=3.5), w, g), [-3.0, -3.5])
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        optimizers.SGD(clipnorm=0)


def test_loss_values_and_gradients():
    y, p = np.array([[1.0], [2.0]]), np.array([[1.5], [0.0]], np.float32)
    assert losses.get("mse")(y, p) == pytest.approx((0.25 + 4) / 2)
    assert losses.get("mae")(y, p) == pytest.approx(1.25)
    assert losses.get("huber")(y, p) == pytest.approx((0.125 + 1.5) / 2)
    np.testing.assert_allclose(losses.get("mse").gradient(y, p), [[0.5], [-2.0]])
    np.testing.assert_allclose(losses.get("huber").gradient(y, p), [[0.25], [-0.5]])


def test_fit_progress_goes_to_stdout_only_when_verbose():
    buffer = io.StringIO()
    bar = fastlstm.models._ProgressBar(3, stream=buffer)
    bar.update(1, {"loss": 0.123456})
    bar.finish({"loss": 0.1})
    text = buffer.getvalue()
    assert "1/3" in text and "loss: 0.1235" in text and text.endswith("\n")


def test_direct_multi_output_forecasting_with_a_real_model():
    fastlstm.set_random_seed(0)
    t = np.arange(300) * 0.2
    series = 0.5 + 0.4 * np.sin(t)
    x, y = make_windows(series, window=15, horizon=3)
    model = fastlstm.Sequential([LSTM(12, input_shape=(15, 1)), Dense(3)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    forecast = fastlstm.timeseries.forecast_direct(model, series, window=15)
    assert forecast.shape == (3,)
    recursive = fastlstm.timeseries.forecast_recursive(model, series, steps=4, window=15)
    assert recursive.shape == (4,) and recursive[0] == pytest.approx(forecast[0], rel=1e-5)
    assert model.evaluate(x, y) < np.var(y) / 2


def test_models_with_callable_initializers_save_and_load(tmp_path):
    model = fastlstm.Sequential([LSTM(3, input_shape=(4, 2),
                                      kernel_initializer=lambda shape: np.full(shape, 0.1, np.float32)),
                                 Dense(1)])
    model.build()
    model.save(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)

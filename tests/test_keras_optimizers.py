"""AdamW, Adagrad and Nadam, and the MSLE and log-cosh losses: against
Keras 3 (data/keras_optimizer_fixtures.npz, made by
data/make_keras_optimizer_fixtures.py where Keras is installed), by name,
through a model file and in training; and a learning rate set between steps.
"""
import pathlib

import numpy as np
import pytest

import fastlstm
from fastlstm import losses, optimizers
from fastlstm.layers import LSTM, Dense

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "keras_optimizer_fixtures.npz"

# The hyper-parameters each fixture case gave the Keras optimizer.
CASES = {
    "adamw_defaults": (optimizers.AdamW, {}),
    "adamw": (optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.2, "beta_1": 0.8,
                                 "beta_2": 0.99, "epsilon": 1e-4}),
    "adamw_rate_change": (optimizers.AdamW, {"learning_rate": 0.05}),
    "adagrad_defaults": (optimizers.Adagrad, {}),
    "adagrad": (optimizers.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.5,
                                     "epsilon": 1e-3}),
    "nadam_defaults": (optimizers.Nadam, {}),
    "nadam": (optimizers.Nadam, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.95,
                                 "epsilon": 1e-4}),
    "nadam_rate_change": (optimizers.Nadam, {"learning_rate": 0.05}),
}

KERAS_MATCHED = [optimizers.AdamW, optimizers.Adagrad, optimizers.Nadam]
ALL_OPTIMIZERS = [optimizers.SGD, optimizers.RMSprop, optimizers.Adam, *KERAS_MATCHED]


@pytest.fixture(scope="module")
def keras_fixtures():
    with np.load(FIXTURES) as data:
        return {name: data[name] for name in data.files}


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_steps_match_keras(keras_fixtures, case):
    cls, kwargs = CASES[case]
    optimizer = cls(**kwargs)
    weight = keras_fixtures[f"{case}_w0"].copy()
    grads, expected = keras_fixtures[f"{case}_grads"], keras_fixtures[f"{case}_weights"]
    rates = keras_fixtures.get(f"{case}_rates")
    distance = 0.0
    for k, grad in enumerate(grads):
        if rates is not None:
            optimizer.learning_rate = float(rates[k])
        optimizer.apply([weight], [grad])
        distance += optimizer.learning_rate
        # Keras raises betas, held as float32, to the power t: its
        # 1 - float32(0.999) is 1.29e-5 short of 0.001, so its first Adam step
        # is 6.4e-6 shorter than the exact formula's; a few float32 roundings
        # of the weight come on top.
        tolerance = 1e-5 * distance + (k + 2) * np.spacing(np.abs(expected[k]).max())
        np.testing.assert_allclose(weight, expected[k], rtol=0, atol=tolerance,
                                   err_msg=f"{case}, step {k + 1}")
    assert weight.dtype == np.float32


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name, cls", [("msle", losses.MeanSquaredLogarithmicError),
                                       ("log_cosh", losses.LogCosh)])
def test_loss_value_and_gradient_match_keras(keras_fixtures, name, cls, masked):
    y_true, y_pred = keras_fixtures["loss_y_true"], keras_fixtures["loss_y_pred"]
    mask = keras_fixtures["loss_mask"] if masked else None
    key = f"{name}_masked" if masked else name
    loss = cls()
    assert loss(y_true, y_pred, mask=mask) == pytest.approx(float(keras_fixtures[f"{key}_value"]),
                                                       rel=1e-6)
    expected = keras_fixtures[f"{key}_grad"]
    gradient = loss.gradient(y_true, y_pred, mask=mask)
    assert gradient.dtype == np.float32 and gradient.shape == y_pred.shape
    np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_msle_clips_like_keras():
    epsilon = np.float32(1e-7)
    y_true = np.full((1, 4), 0.5, np.float32)
    y_pred = np.array([[-1.0, 0.0, epsilon, 2.0]], np.float32)
    gradient = losses.MeanSquaredLogarithmicError().gradient(y_true, y_pred)
    # No gradient below epsilon, half of it at epsilon (torch's maximum), all above.
    error = np.log1p(float(epsilon)) - np.log1p(0.5)
    full = 2 * error / (1 + float(epsilon)) / 4
    np.testing.assert_allclose(gradient[0, :3], [0.0, 0.0, full / 2], rtol=1e-6)
    assert gradient[0, 3] > 0
    # A target below epsilon counts as epsilon too.
    assert losses.get("msle")([[-3.0]], [[0.0]]) == 0.0


def test_log_cosh_stays_finite_for_huge_errors():
    loss = losses.LogCosh()
    error = np.array([[-1e6, -30.0, 0.0, 1e-4, 30.0, 1e6]])
    np.testing.assert_allclose(loss._elementwise(error),
                               [[1e6 - np.log(2), 30 - np.log(2), 0.0, 5e-9, 30 - np.log(2),
                                 1e6 - np.log(2)]], rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(loss.gradient(np.zeros((1, 6)), error) * 6,
                               [[-1, -1, 0, 1e-4, 1, 1]], rtol=1e-6)


@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_a_learning_rate_set_between_steps_scales_the_next_step(cls):
    rng = np.random.default_rng(3)
    start = rng.standard_normal((4, 3)).astype(np.float64)
    first, second = rng.standard_normal((2, 4, 3))
    steps = []
    for rate in (0.01, 0.03):
        optimizer, weight = cls(learning_rate=0.01), start.copy()
        optimizer.apply([weight], [first])
        optimizer.learning_rate = rate
        before = weight.copy()
        optimizer.apply([weight], [second])
        steps.append(weight - before)
    # Every one of these steps (AdamW's decay too) is proportional to the rate.
    np.testing.assert_allclose(steps[1], 3 * steps[0], rtol=1e-6)


@pytest.mark.parametrize("value", [-0.1, np.nan, np.inf, -np.inf, "0.1", None, True,
                                   [0.1], np.array([0.1])])
@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_bad_learning_rates_are_refused(cls, value):
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        cls(learning_rate=value)
    optimizer = cls(learning_rate=0.02)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = value
    assert optimizer.learning_rate == 0.02


def test_learning_rate_is_stored_as_a_float():
    optimizer = optimizers.Adam(np.float32(0.5))
    assert type(optimizer.learning_rate) is float
    optimizer.learning_rate = 2
    assert type(optimizer.learning_rate) is float
    assert optimizer.get_config()["learning_rate"] == 2.0


@pytest.mark.parametrize("make, message", [
    (lambda: optimizers.AdamW(weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
    (lambda: optimizers.AdamW(weight_decay=None), "weight_decay"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=np.nan), "initial_accumulator_value"),
])
def test_bad_hyper_parameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("cls, defaults", [
    (optimizers.AdamW, {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9,
                        "beta_2": 0.999, "epsilon": 1e-7}),
    (optimizers.Adagrad, {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                          "epsilon": 1e-7}),
    (optimizers.Nadam, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
                        "epsilon": 1e-7}),
])
def test_optimizer_defaults_are_keras(cls, defaults):
    config = cls().get_config()
    assert {k: config[k] for k in defaults} == defaults
    assert config["clipnorm"] is None and config["clipvalue"] is None


@pytest.mark.parametrize("names, cls", [
    (["adamw", "AdamW", "ADAMW"], optimizers.AdamW),
    (["adagrad", "Adagrad"], optimizers.Adagrad),
    (["nadam", "Nadam"], optimizers.Nadam),
])
def test_optimizers_by_name(names, cls):
    for name in names:
        assert type(optimizers.get(name)) is cls


@pytest.mark.parametrize("names, cls", [
    (["msle", "MSLE", "mean_squared_logarithmic_error", "MeanSquaredLogarithmicError"],
     losses.MeanSquaredLogarithmicError),
    (["log_cosh", "LogCosh", "logcosh"], losses.LogCosh),
    (["mse", "MSE", "mean_squared_error", "MeanSquaredError"], losses.MeanSquaredError),
    (["mae", "MAE", "mean_absolute_error", "MeanAbsoluteError"], losses.MeanAbsoluteError),
    (["huber", "Huber"], losses.Huber),
])
def test_losses_by_keras_names(names, cls):
    for name in names:
        assert type(losses.get(name)) is cls
    with pytest.raises(ValueError, match="unknown loss 'Msle'; valid names: .*'msle'"):
        losses.get("Msle")


@pytest.mark.parametrize("cls", KERAS_MATCHED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_are_in_place_in_the_weights_dtype(cls, dtype):
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((5, 3)).astype(dtype)
    view, grad = weight, rng.standard_normal((5, 3)).astype(np.float32)
    before = weight.copy()
    cls(learning_rate=0.1).apply([weight], [grad])
    assert weight is view and weight.dtype == dtype and not np.array_equal(weight, before)


@pytest.mark.parametrize("cls", KERAS_MATCHED)
def test_misfit_weights_and_gradients_are_refused_without_changing_the_weight(cls):
    weight = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\); its weight has \(4, 3\)"):
        cls().apply([weight], [np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="C-contiguous"):
        cls().apply([weight.T], [np.zeros((3, 4), np.float32)])
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        cls().apply([np.zeros(3, np.int64)], [np.zeros(3)])
    np.testing.assert_array_equal(weight, 1.0)


def _data(n=48, seed=0):
    """Windows of a positive, learnable series (MSLE needs targets >= 0)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, 6, 2)).astype(np.float32)
    y = (0.5 + x[:, -3:, 0].mean(axis=1, keepdims=True)).astype(np.float32)
    return x, y


def _model(optimizer, loss):
    fastlstm.set_random_seed(5)
    model = fastlstm.Sequential([LSTM(6, input_shape=(6, 2)), Dense(1)])
    model.compile(optimizer, loss)
    return model


COMPILED = [  # every optimizer and loss of this file at least once
    (optimizers.AdamW(0.02, weight_decay=0.01, beta_1=0.85), "msle"),
    (optimizers.Adagrad(0.1, initial_accumulator_value=0.2, epsilon=1e-6), "log_cosh"),
    (optimizers.Nadam(0.02, beta_2=0.99, clipnorm=1.0), "mse"),
    (optimizers.Adam(0.02), losses.MeanSquaredLogarithmicError()),
    (optimizers.RMSprop(0.01), losses.LogCosh()),
]
COMPILED_IDS = [f"{type(o).__name__}-{getattr(loss, 'name', loss)}" for o, loss in COMPILED]


@pytest.mark.parametrize("optimizer, loss", COMPILED,
                         ids=COMPILED_IDS)
def test_fit_lowers_the_loss(optimizer, loss):
    x, y = _data()
    model = _model(optimizer.from_config(optimizer.get_config()), loss)
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


@pytest.mark.parametrize("optimizer, loss", COMPILED,
                         ids=COMPILED_IDS)
def test_compiled_model_round_trips_through_a_file(tmp_path, optimizer, loss):
    x, y = _data(16)
    model = _model(optimizer.from_config(optimizer.get_config()), loss)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert type(loaded.loss) is type(model.loss)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_a_zero_or_0d_array_learning_rate_is_taken_as_keras_takes_it(cls):
    optimizer = cls(learning_rate=0.0)
    optimizer.learning_rate = np.array(0.01)
    assert optimizer.learning_rate == 0.01 and isinstance(optimizer.learning_rate, float)

"""AdamW, Adagrad and Nadam: against Keras 3
(data/keras_optimizer_fixtures.npz, made by
data/make_keras_optimizer_fixtures.py where Keras is installed) and by
name; and a learning rate set between steps.
"""
import pathlib

import numpy as np
import pytest

from fastlstm import optimizers

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


@pytest.mark.parametrize("value", [0, 0.0, -0.1, np.nan, np.inf, -np.inf, "0.1", None, True,
                                   [0.1], np.array([0.1])])
@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_bad_learning_rates_are_refused(cls, value):
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        cls(learning_rate=value)
    optimizer = cls(learning_rate=0.02)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = value
    assert optimizer.learning_rate == 0.02


def test_learning_rate_is_stored_as_a_float():
    optimizer = optimizers.Adam(np.float32(0.5))
    assert type(optimizer.learning_rate) is float
    optimizer.learning_rate = 2
    assert type(optimizer.learning_rate) is float and optimizer.get_config()["learning_rate"] == 2.0


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

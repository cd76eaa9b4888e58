"""fastlstm.timeseries: windows, scalers, splits, forecasting loops, metrics."""
import numpy as np
import pytest

from fastlstm import timeseries as ts


def test_windows_hold_the_right_indices():
    series = np.arange(10.0)
    x, y = ts.make_windows(series, window=3, horizon=2, stride=2)
    assert x.shape == (3, 3, 1) and y.shape == (3, 2)
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y, [[3, 4], [5, 6], [7, 8]])


def test_multivariate_windows_predict_the_target_column():
    series = np.stack([np.arange(6.0), 100 + np.arange(6.0)], axis=1)
    x, y = ts.make_windows(series, window=2, target=1)
    assert x.shape == (4, 2, 2)
    np.testing.assert_array_equal(y[:, 0], [102, 103, 104, 105])
    np.testing.assert_array_equal(x[0], [[0, 100], [1, 101]])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"window": 9}, ValueError, "shorter than window"),
    ({"window": 0}, ValueError, "window must be an int >= 1, got 0"),
    ({"window": 2.0}, TypeError, "window must be an int >= 1, got 2.0"),
    ({"window": 2, "horizon": 0}, ValueError, "horizon must be"),
    ({"window": 2, "stride": 1.5}, TypeError, "stride must be"),
    ({"window": True}, TypeError, "window must be"),
])
def test_bad_windows(kwargs, error, message):
    with pytest.raises(error, match=message):
        ts.make_windows(np.arange(8.0), **kwargs)


@pytest.mark.parametrize("target, error, message", [
    (1.5, TypeError, "target must be an int column index, got 1.5"),
    (True, TypeError, "target must be an int column index"),
    (2, ValueError, r"target 2 out of range: a column index must be in \[-2, 1\]"),
    (-3, ValueError, r"target -3 out of range"),
])
def test_bad_window_targets(target, error, message):
    with pytest.raises(error, match=message):
        ts.make_windows(np.zeros((8, 2)), window=2, target=target)
    _, y = ts.make_windows(np.arange(16.0).reshape(8, 2), window=2, target=-1)
    np.testing.assert_array_equal(y[:, 0], [5, 7, 9, 11, 13, 15])


def test_multivariate_windows_need_a_target():
    with pytest.raises(ValueError, match="pass target="):
        ts.make_windows(np.zeros((10, 2)), window=3)
    with pytest.raises(ValueError, match="NaN"):
        ts.make_windows(np.array([1.0, np.nan, 2.0, 3.0]), window=2)


@pytest.mark.parametrize("scaler", [ts.MinMaxScaler(), ts.MinMaxScaler((-1, 1)), ts.StandardScaler()])
def test_scalers_invert_exactly(scaler):
    rng = np.random.default_rng(0)
    data = rng.normal(50, 20, size=(200, 3))
    scaled = scaler.fit_transform(data)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), data, rtol=1e-13)
    np.testing.assert_allclose(scaler.inverse_transform(scaled[:, 2], column=2), data[:, 2],
                               rtol=1e-13)
    np.testing.assert_allclose(scaler.inverse_transform(scaled[:, 1:2], column=1),
                               data[:, 1:2], rtol=1e-13)


def test_min_max_scaler_maps_to_the_range_and_handles_constant_features():
    data = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    scaled = ts.MinMaxScaler((-1, 1)).fit_transform(data)
    np.testing.assert_allclose(scaled[:, 0], [-1, 1, 0])
    assert np.all(np.isfinite(scaled[:, 1]))


def test_standard_scaler_centres_and_scales():
    scaled = ts.StandardScaler().fit_transform(np.arange(10.0))
    assert scaled.shape == (10,)
    assert abs(scaled.mean()) < 1e-12 and abs(scaled.std() - 1) < 1e-12


def test_scaler_errors():
    with pytest.raises(RuntimeError, match="call fit first"):
        ts.MinMaxScaler().transform([1.0, 2.0])
    scaler = ts.MinMaxScaler().fit(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="expected 2 features"):
        scaler.transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="column 5 out of range"):
        scaler.inverse_transform([0.5], column=5)
    with pytest.raises(ValueError, match="low < high"):
        ts.MinMaxScaler((1, 0))
    with pytest.raises(ValueError, match="finite low < high"):
        ts.MinMaxScaler((0, np.inf))
    with pytest.raises(TypeError, match="feature_range must be a pair"):
        ts.MinMaxScaler(1)
    with pytest.raises(TypeError, match="feature_range must hold two numbers"):
        ts.MinMaxScaler(("0", "1"))
    with pytest.raises(TypeError, match="column must be an int column index"):
        scaler.inverse_transform([0.5], column=1.0)


def test_train_test_split_keeps_time_order():
    x, y = np.arange(10), np.arange(10) * 2
    x_train, x_test, y_train, y_test = ts.train_test_split(x, y, test_size=0.2)
    np.testing.assert_array_equal(x_train, np.arange(8))
    np.testing.assert_array_equal(x_test, [8, 9])
    np.testing.assert_array_equal(y_test, [16, 18])
    with pytest.raises(ValueError, match="different lengths"):
        ts.train_test_split(x, y[:5])


@pytest.mark.parametrize("test_size, n_test", [
    (1, 1), (3, 3), (np.int64(9), 9),                    # an int is a count
    (0.2, 2), (0.25, 3), (np.float32(0.5), 5), (0.01, 1),  # a float is a fraction, rounded up
])
def test_train_test_split_takes_an_int_as_a_count_and_a_float_as_a_fraction(test_size, n_test):
    train, test = ts.train_test_split(np.arange(10), test_size=test_size)
    np.testing.assert_array_equal(test, np.arange(10 - n_test, 10))
    assert len(train) == 10 - n_test


@pytest.mark.parametrize("test_size, error, message", [
    (1.0, ValueError, r"a fraction .* in \(0, 1\), got 1.0; for a count, pass the int 1"),
    (3.0, ValueError, "pass the int 3"),
    (0.0, ValueError, r"a fraction .* in \(0, 1\)"),
    (-0.5, ValueError, r"a fraction .* in \(0, 1\)"),
    (float("nan"), ValueError, r"a fraction .* in \(0, 1\)"),
    (0.95, ValueError, "test_size 0.95 of 10 samples leaves no training samples"),
    (0, ValueError, r"a count of samples and must be in \[1, 9\] for 10 samples, got 0"),
    (10, ValueError, r"\[1, 9\].*got 10"),
    (-1, ValueError, r"\[1, 9\].*got -1"),
    (True, TypeError, r"test_size must be an int \(a count\) or a float \(a fraction\)"),
    ("0.2", TypeError, "test_size must be an int"),
    (None, TypeError, "test_size must be an int"),
])
def test_train_test_split_refuses_ambiguous_or_impossible_sizes(test_size, error, message):
    with pytest.raises(error, match=message):
        ts.train_test_split(np.arange(10), test_size=test_size)


def test_train_test_split_needs_two_samples_with_a_length():
    with pytest.raises(ValueError, match="at least 2 samples"):
        ts.train_test_split(np.arange(1), test_size=0.5)
    with pytest.raises(TypeError, match="with a length"):
        ts.train_test_split(np.float64(3.0), test_size=0.5)


class NextValueModel:
    """Predicts the next value of a linear sequence: last + (last - previous)."""

    def __init__(self):
        self.inputs = []

    def predict(self, x):
        self.inputs.append(x.copy())
        return (2 * x[:, -1, 0] - x[:, -2, 0])[:, None]


def test_recursive_forecast_feeds_predictions_back():
    model = NextValueModel()
    forecast = ts.forecast_recursive(model, np.arange(10.0), steps=4, window=3)
    np.testing.assert_allclose(forecast, [10, 11, 12, 13])
    assert all(x.shape == (1, 3, 1) for x in model.inputs)
    np.testing.assert_array_equal(model.inputs[-1][0, :, 0], [10, 11, 12])


def test_recursive_forecast_errors():
    with pytest.raises(ValueError, match="univariate"):
        ts.forecast_recursive(NextValueModel(), np.zeros((5, 2)), steps=2)
    with pytest.raises(ValueError, match="fewer than the window"):
        ts.forecast_recursive(NextValueModel(), np.zeros(3), steps=2, window=5)
    with pytest.raises(ValueError, match="steps must be"):
        ts.forecast_recursive(NextValueModel(), np.zeros(5), steps=0)
    with pytest.raises(TypeError, match="steps must be an int >= 1, got 2.0"):
        ts.forecast_recursive(NextValueModel(), np.zeros(5), steps=2.0)


def recursive(model, history, window):
    return ts.forecast_recursive(model, history, steps=2, window=window)


@pytest.mark.parametrize("forecast", [recursive, ts.forecast_direct])
@pytest.mark.parametrize("window, error, message", [
    (0, ValueError, "window must be an int >= 1, got 0"),
    (-2, ValueError, "window must be an int >= 1, got -2"),
    (2.5, TypeError, "window must be an int >= 1, got 2.5"),
    (2.0, TypeError, "window must be an int >= 1, got 2.0"),
    (True, TypeError, "window must be an int >= 1, got True"),
])
def test_forecasts_refuse_a_window_that_is_not_a_positive_int(forecast, window, error, message):
    model = NextValueModel()
    with pytest.raises(error, match=message):
        forecast(model, np.arange(5.0), window=window)
    assert model.inputs == []


@pytest.mark.parametrize("forecast", [recursive, ts.forecast_direct])
@pytest.mark.parametrize("history", [[], np.zeros(0), np.zeros((0, 1))])
def test_forecasts_refuse_an_empty_history(forecast, history):
    model = NextValueModel()
    with pytest.raises(ValueError, match="history is empty"):
        forecast(model, history, window=None)
    assert model.inputs == []


def test_forecasts_refuse_a_model_that_predicts_nothing():
    class Empty:
        def predict(self, x):
            return np.zeros((len(x), 0))

    with pytest.raises(ValueError, match=r"model.predict returned no values for x of shape "
                                         r"\(1, 3, 1\)"):
        ts.forecast_recursive(Empty(), np.arange(5.0), steps=2, window=3)


def test_direct_forecast_reads_the_whole_horizon():
    class Horizon3:
        def predict(self, x):
            return x[:, -1, 0][:, None] + np.array([[1.0, 2.0, 3.0]])

    np.testing.assert_allclose(ts.forecast_direct(Horizon3(), np.arange(5.0), window=2),
                               [5, 6, 7])


def test_persistence_baseline_repeats_the_last_value():
    x, y = ts.make_windows(np.arange(8.0), window=3, horizon=2)
    baseline = ts.persistence_forecast(x, horizon=2)
    np.testing.assert_array_equal(baseline, np.repeat(x[:, -1, 0][:, None], 2, axis=1))
    assert ts.mae(y, baseline) == pytest.approx(1.5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"horizon": 0}, ValueError, "horizon must be an int >= 1, got 0"),
    ({"horizon": -1}, ValueError, "horizon must be an int >= 1, got -1"),
    ({"horizon": 1.5}, TypeError, "horizon must be an int >= 1, got 1.5"),
    ({"target": 5}, ValueError, r"target 5 out of range: a column index must be in \[-2, 1\]"),
    ({"target": 1.5}, TypeError, "target must be an int column index, got 1.5"),
    ({"target": None}, TypeError, "target must be an int column index, got None"),
])
def test_persistence_refuses_bad_horizons_and_targets(kwargs, error, message):
    x, _ = ts.make_windows(np.arange(16.0).reshape(8, 2), window=3, target=0)
    with pytest.raises(error, match=message):
        ts.persistence_forecast(x, **kwargs)
    np.testing.assert_array_equal(ts.persistence_forecast(x, target=-1)[:, 0], x[:, -1, 1])


def test_persistence_refuses_windows_it_cannot_read():
    with pytest.raises(ValueError, match=r"shape \(n, window, features\)"):
        ts.persistence_forecast(np.zeros((3, 0, 1)))
    with pytest.raises(TypeError, match="x must be numeric"):
        ts.persistence_forecast([[["a"]]])


@pytest.mark.parametrize("scaler", [ts.MinMaxScaler((-1, 2)), ts.StandardScaler()])
def test_scalers_survive_a_json_round_trip(scaler):
    import json

    data = np.random.default_rng(1).normal(size=(30, 2))
    scaler.fit(data)
    restored = ts.scaler_from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(data), scaler.transform(data))
    with pytest.raises(ValueError, match="not a saved scaler"):
        ts.scaler_from_dict({"class": "Nope"})


@pytest.mark.parametrize("change, message", [
    ({"scale": [0.0]}, r"scale must be > 0, got \[0.0\]"),
    ({"scale": [-1.0]}, r"scale must be > 0"),
    ({"scale": [float("nan")]}, r"scale must hold finite numbers, got \[nan\]"),
    ({"scale": [float("inf")]}, "scale must hold finite numbers"),
    ({"scale": ["2"]}, "scale must be a non-empty list of numbers"),
    ({"scale": [None]}, "scale must be a non-empty list of numbers"),
    ({"scale": [True]}, "scale must be a non-empty list of numbers"),
    ({"scale": []}, "scale must be a non-empty list of numbers"),
    ({"scale": 2.0}, "scale must be a non-empty list of numbers"),
    ({"scale": [[1.0], [1.0, 2.0]]}, "scale must be a non-empty list of numbers"),
    ({"scale": [1.0, 2.0]}, "offset has 1 values, scale 2"),
    ({"offset": [float("nan")]}, "offset must hold finite numbers"),
    ({"feature_range": [1.0, 0.0]}, "feature_range must be"),
    ({"feature_range": "a"}, "feature_range must be a pair"),
    ({"class": ["MinMaxScaler"]}, "class must be one of"),
])
def test_saved_scalers_with_impossible_parameters_are_refused(change, message):
    saved = {**ts.MinMaxScaler().fit(np.arange(5.0)).to_dict(), **change}
    with pytest.raises(ValueError, match="not a saved scaler: " + message):
        ts.scaler_from_dict(saved)


def test_saved_scalers_must_be_dicts_with_every_field():
    for data in ([1.0, 2.0], None, "MinMaxScaler"):
        with pytest.raises(ValueError, match="not a saved scaler: expected a dict"):
            ts.scaler_from_dict(data)
    with pytest.raises(ValueError, match="not a saved scaler: it has no 'scale'"):
        ts.scaler_from_dict({"class": "StandardScaler", "offset": [0.0]})


# ------------------------------------------------------- baselines and seasons

def test_baselines_on_hand_computed_values():
    history = [2.0, 4.0, 3.0, 8.0]
    np.testing.assert_array_equal(ts.naive_forecast(history, 3), [8, 8, 8])
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(history, 5, season=3), [4, 3, 8, 4, 3])
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(history, 2, season=1), [8, 8])
    # slope (8 - 2) / 3 = 2 per step
    np.testing.assert_array_equal(ts.drift_forecast(history, 3), [10, 12, 14])


@pytest.mark.parametrize("call, error, message", [
    (lambda: ts.naive_forecast([], 1), ValueError, "history has 0 values, fewer than the 1"),
    (lambda: ts.naive_forecast([1.0], 0), ValueError, "steps must be an int >= 1"),
    (lambda: ts.seasonal_naive_forecast([1.0, 2.0], 1, season=3), ValueError, "fewer than the 3"),
    (lambda: ts.drift_forecast([1.0], 2), ValueError, "fewer than the 2"),
    (lambda: ts.drift_forecast([1.0, np.nan], 2), ValueError, "NaN or infinity"),
    (lambda: ts.naive_forecast(["a"], 1), TypeError, "history must be numeric"),
    (lambda: ts.detect_season(np.arange(5.0)), ValueError, "fewer than the 8"),
    (lambda: ts.detect_season(np.arange(50.0), frequency="MS"), TypeError, "Frequency"),
])
def test_baseline_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _real(name):
    from pathlib import Path
    from fastlstm import datasets
    path = Path(__file__).parent / "data" / "seasonal" / name
    return datasets.load_csv(path)


@pytest.mark.parametrize("name, season", [
    ("nottem_monthly.csv", 12),
    ("uk_driver_deaths_monthly.csv", 12),
    ("uk_gas_quarterly.csv", 4),
])
def test_detect_season_on_real_seasonal_series(name, season):
    series = _real(name)
    values = series.values[:, 0]
    assert ts.detect_season(values) == season
    assert ts.detect_season(values, series.frequency) == season


def test_prices_and_sunspot_cycles_have_no_season():
    from fastlstm import datasets
    goog = datasets.load_goog()
    assert ts.detect_season(goog.column("Close"), goog.frequency) == 1
    sunspots = datasets.load_sunspots()
    assert ts.detect_season(sunspots.values[:, 0], sunspots.frequency) == 1


def test_detect_season_of_a_noisy_sine():
    steps = np.arange(300)
    values = np.sin(2 * np.pi * steps / 7) + 0.3 * np.random.default_rng(0).standard_normal(300)
    assert ts.detect_season(values) == 7
    assert ts.detect_season(np.ones(20)) == 1


def test_autocorrelation_through_the_fft_matches_the_sums_lag_by_lag():
    values = np.random.default_rng(3).standard_normal(257).cumsum()
    centred = values - values.mean()
    direct = [np.dot(centred[:len(centred) - lag], centred[lag:]) / np.dot(centred, centred)
              for lag in range(0, 100)]
    np.testing.assert_allclose(ts._autocorrelation(values, 99), direct, atol=1e-12)
    np.testing.assert_array_equal(ts._autocorrelation(np.full(10, 3.0), 4), [1, 0, 0, 0, 0])


def _seasons_found(make, seeds, frequency=None):
    return [ts.detect_season(make(np.random.default_rng(seed)), frequency) for seed in range(seeds)]


@pytest.mark.parametrize("length, period, amplitude, noise", [
    (1440, 24, 3.0, 1.0),   # hourly, a daily cycle
    (240, 12, 5.0, 2.0),    # monthly, a yearly cycle
])
def test_detect_season_finds_a_noisy_sine_without_a_frequency(length, period, amplitude, noise):
    steps = np.arange(length)
    found = _seasons_found(lambda rng: amplitude * np.sin(2 * np.pi * steps / period)
                           + noise * rng.standard_normal(length), 10)
    assert found.count(period) >= 9, found


def test_detect_season_rarely_finds_a_season_in_white_noise_or_a_trend():
    noise = _seasons_found(lambda rng: rng.standard_normal(200), 20)
    assert sum(season != 1 for season in noise) <= 1, noise
    steps = np.arange(300.0)
    trend = _seasons_found(lambda rng: 0.01 * steps ** 2 + rng.standard_normal(300), 5)
    assert trend == [1] * 5

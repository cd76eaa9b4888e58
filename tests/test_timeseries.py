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


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 9}, "shorter than window"),
    ({"window": 0}, "window must be an int >= 1"),
    ({"window": 2, "horizon": 0}, "horizon must be"),
    ({"window": 2, "stride": 1.5}, "stride must be"),
])
def test_bad_windows(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ts.make_windows(np.arange(8.0), **kwargs)


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


def test_train_test_split_keeps_time_order():
    x, y = np.arange(10), np.arange(10) * 2
    x_train, x_test, y_train, y_test = ts.train_test_split(x, y, test_size=0.2)
    np.testing.assert_array_equal(x_train, np.arange(8))
    np.testing.assert_array_equal(x_test, [8, 9])
    np.testing.assert_array_equal(y_test, [16, 18])
    a_train, a_test = ts.train_test_split(x, test_size=3)
    assert len(a_train) == 7 and len(a_test) == 3
    for bad in (0, 1.0, 10, -0.5, True):
        with pytest.raises(ValueError, match="test_size"):
            ts.train_test_split(x, test_size=bad)
    with pytest.raises(ValueError, match="different lengths"):
        ts.train_test_split(x, y[:5])


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


def test_train_test_split_keeps_time_order():
    x, y = np.arange(10), np.arange(10) * 2
    x_train, x_test, y_train, y_test = ts.train_test_split(x, y, test_size=0.2)
    np.testing.assert_array_equal(x_train, np.arange(8))
    np.testing.assert_array_equal(x_test, [8, 9])
    np.testing.assert_array_equal(y_test, [16, 18])
    a_train, a_test = ts.train_test_split(x, test_size=3)
    assert len(a_train) == 7 and len(a_test) == 3
    for bad in (0, 1.0, 10, -0.5, True):
        with pytest.raises(ValueError, match="test_size"):
            ts.train_test_split(x, test_size=bad)
    with pytest.raises(ValueError, match="different lengths"):
        ts.train_test_split(x, y[:5])


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


def test_metrics_on_known_values():
    true, pred = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])
    assert ts.mae(true, pred) == pytest.approx(1.0)
    assert ts.mse(true, pred) == pytest.approx(5 / 3)
    assert ts.rmse(true, pred) == pytest.approx(np.sqrt(5 / 3))
    assert ts.mape(true, pred) == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert ts.smape(true, pred) == pytest.approx(100 * (2 / 3 + 0 + 4 / 6) / 3)
    assert ts.smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert ts.mae(true[:, None], pred) == pytest.approx(1.0)  # (n, 1) vs (n,)
    with pytest.raises(ValueError, match="undefined where y_true is 0"):
        ts.mape([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="differ in size"):
        ts.mae([1.0, 2.0], [1.0])


@pytest.mark.parametrize("scaler", [ts.MinMaxScaler((-1, 2)), ts.StandardScaler()])
def test_scalers_survive_a_json_round_trip(scaler):
    import json

    data = np.random.default_rng(1).normal(size=(30, 2))
    scaler.fit(data)
    restored = ts.scaler_from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(data), scaler.transform(data))
    with pytest.raises(ValueError, match="not a saved scaler"):
        ts.scaler_from_dict({"class": "Nope"})

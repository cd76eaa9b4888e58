"""Forecaster: exact inverses through recursive forecasts, choices blind to
the test span, backtest indexing and MASE by hand, many series,
covariates, save/load, and clear errors for bad input. Tiny networks and
one or two epochs: these check the plumbing, not the accuracy (see
bench/forecast_goals.py for that)."""
import numpy as np
import pytest

from fastlstm import metrics
from fastlstm.forecast import ForecastError, Forecaster, candidate_transforms
from fastlstm.transforms import TargetTransform, kpss_statistic, level_stationary

TINY = dict(units=2, epochs=1, batch_size=64)
NAMES = ["level", "diff", "seasonal_diff", "log", "log+diff", "log+seasonal_diff+diff",
         "window_last", "diff+window_mean"]


def seasonal_series(n=120, season=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.2 * t + 8 * np.sin(2 * np.pi * t / season) + rng.normal(0, 1, n)


def monthly_dates(n, start="2000-01"):
    return (np.datetime64(start, "M") + np.arange(n)).astype("datetime64[D]")


class Oracle:
    """A "model" that outputs the true next model-space values of `values`:
    a recursive forecast through it must give back the series exactly."""

    def __init__(self, forecaster, values, origin):
        self.transform = forecaster.series_[0].transform
        self.z = self.transform.forward(values)
        self.window, self.horizon = forecaster.window_, forecaster.horizon
        self.next_time = origin  # the first time this call forecasts

    def predict(self, x):
        lost = self.transform.lost
        start = self.next_time - lost
        window = self.z[start - self.window:start][None]
        anchor = self.transform.anchors(window)
        self.next_time += self.horizon
        return (self.z[start:start + self.horizon][None] - anchor).astype(np.float64)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("horizon", [1, 3])
def test_every_transform_inverts_exactly_through_a_recursive_forecast(name, horizon):
    values = seasonal_series(150)
    forecaster = Forecaster(window=12, horizon=horizon, transform=name, season=12,
                            **TINY).fit(values[:100])
    forecaster.model_, forecaster.damping_ = Oracle(forecaster, values, 100), 1.0
    forecast = forecaster.predict(10, history=values[:100])
    np.testing.assert_allclose(forecast.values, values[100:110], rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_of_forward_gives_back_the_continuation(name):
    values = seasonal_series(80)
    transform = TargetTransform(name, season=12).fit(values[:50])
    z = transform.forward(values)
    back = transform.inverse(z[50 - transform.lost:], values[:50])
    np.testing.assert_allclose(back, values[50:], rtol=1e-13)
    paths = np.stack([z[50 - transform.lost:]] * 2)  # several paths at once
    np.testing.assert_allclose(transform.inverse(paths, values[:50])[1], values[50:], rtol=1e-13)


def test_kpss_tells_a_random_walk_from_noise():
    rng = np.random.default_rng(1)
    walk, noise = np.cumsum(rng.normal(size=300)), rng.normal(size=300)
    assert kpss_statistic(walk) > 1 and not level_stationary(walk)
    assert level_stationary(noise)
    assert "level" not in candidate_transforms([walk], 1)
    assert candidate_transforms([noise + 10], 12) == [
        "level", "diff", "seasonal_diff", "seasonal_diff+diff", "log", "log+diff",
        "log+seasonal_diff", "log+seasonal_diff+diff", "window_last"]


def test_auto_choices_never_look_at_the_test_span():
    values = seasonal_series(130)
    poisoned = values.copy()
    poisoned[104:] = np.linspace(1e4, -5e3, 26)  # the test span after start=0.8
    chosen = []
    for series in (values, poisoned):
        forecaster = Forecaster(window=6, season=12, **TINY)
        result = forecaster.backtest(series, start=0.8)
        chosen.append(result.chosen)
    assert chosen[0] == chosen[1]
    assert chosen[0]["transform"] in chosen[0]["validation_mase"]
    # Every candidate but the undifferenced ones, which the trend rules out.
    assert sorted(chosen[0]["validation_mase"]) == sorted(
        set(candidate_transforms([values[:80]], 12)) - {"level", "log"})


def test_backtest_origins_horizons_and_mase_by_hand():
    values = seasonal_series(100, season=4)
    forecaster = Forecaster(window=6, transform="diff", season=4, **TINY)
    result = forecaster.backtest(values, start=0.8, horizon=3, stride=2)
    origins = np.arange(80, 98, 2)
    np.testing.assert_array_equal(result.origins, origins)
    np.testing.assert_array_equal(result.actual, values[origins[:, None] + np.arange(3)])
    np.testing.assert_array_equal(result.forecasts["persistence"],
                                  np.repeat(values[origins - 1][:, None], 3, axis=1))
    np.testing.assert_array_equal(result.forecasts["seasonal_naive"][:, 2],
                                  values[origins - 4 + 2])
    scale = np.mean(np.abs(values[4:80] - values[:76]))  # in-sample seasonal naive MAE
    for name in ("model", "persistence", "drift"):
        expected = np.mean(np.abs(result.actual - result.forecasts[name])) / scale
        assert result.errors[name]["MASE"] == pytest.approx(expected, rel=1e-12)
    assert result.errors["model"]["MAE"] == pytest.approx(
        metrics.mae(result.actual, result.forecasts["model"]))
    low, high = result.quantiles[0.1], result.quantiles[0.9]
    assert (low <= high).all()
    inside = np.mean((result.actual >= low) & (result.actual <= high))
    assert result.coverage == {"80%": pytest.approx(inside)}
    report = result.to_dict()
    assert list(report) == ["model", "persistence", "seasonal_naive", "drift", "chosen"]


def test_predict_gives_dates_and_ordered_quantiles():
    values = seasonal_series(96)
    forecaster = Forecaster(window=12, transform="seasonal_diff", **TINY)
    pd = pytest.importorskip("pandas")
    series = pd.Series(values, index=pd.date_range("2001-01-01", periods=96, freq="MS"))
    forecast = forecaster.fit(series).predict(5, quantiles=[0.1, 0.5, 0.9])
    assert forecaster.season_ == 12 and forecaster.calendar_ == ("month",)
    np.testing.assert_array_equal(forecast.dates, monthly_dates(5, "2009-01"))
    assert (forecast.quantiles[0.1] <= forecast.quantiles[0.9]).all()
    frame = forecast.to_pandas()
    assert list(frame.columns) == ["series", "q0.1", "q0.5", "q0.9"]


def test_many_series_train_one_model_with_their_own_scaling():
    a = seasonal_series(80, seed=1)
    series = {"small": a, "large": 1000 * a}
    forecaster = Forecaster(window=12, transform="diff", season=12, **TINY).fit(series)
    small, large = forecaster.predict(3, series="small"), forecaster.predict(3, series="large")
    np.testing.assert_allclose(large.values, 1000 * small.values, rtol=1e-4)
    with pytest.raises(ValueError, match="knows 2 series: pass series= one of"):
        forecaster.predict(3)
    table = {"id": np.repeat(["small", "large"], 80), "y": np.concatenate([a, 1000 * a])}
    long = Forecaster(window=12, transform="diff", season=12, **TINY).fit(table, id_column="id")
    np.testing.assert_allclose(long.predict(3, series="large").values, large.values)
    new = forecaster.predict(3, history=10 * a)  # a series the model has not seen
    np.testing.assert_allclose(new.values, 10 * small.values, rtol=1e-4)


def test_past_covariates_and_calendar_features_reach_the_model():
    values = seasonal_series(90)
    driver = np.roll(values, 1)[:, None]
    forecaster = Forecaster(window=12, horizon=2, transform="diff", season=12, **TINY)
    forecaster.fit(values, covariates=driver)
    assert forecaster.model_.input_shape == (12, 2)
    assert len(forecaster.predict(2).values) == 2
    with pytest.raises(ForecastError, match="needs the past covariates after the origin"):
        forecaster.predict(3)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"y": values, "x": driver[:, 0]},
                         index=pd.date_range("2001-01-01", periods=90, freq="MS"))
    dated = Forecaster(window=12, transform="diff", **TINY).fit(frame, target="y")
    assert dated.model_.input_shape == (12, 1 + 1 + 2)  # value, covariate, sin/cos of the month
    assert dated.chosen_["covariates"] == ["x"]


def test_save_and_load_round_trip(tmp_path):
    values = seasonal_series(90)
    forecaster = Forecaster(window=12, season=12, transform="log+seasonal_diff", **TINY)
    forecaster.fit(values)
    forecaster.save(tmp_path / "f.fastlstm")
    loaded = Forecaster.load(tmp_path / "f.fastlstm")
    before, after = forecaster.predict(4, [0.1, 0.9]), loaded.predict(4, [0.1, 0.9])
    np.testing.assert_array_equal(before.values, after.values)
    np.testing.assert_array_equal(before.quantiles[0.9], after.quantiles[0.9])
    assert loaded.chosen_ == forecaster.chosen_ and loaded.column == forecaster.column


@pytest.mark.parametrize("kwargs, error, message", [
    ({"series": np.arange(30.0)}, ForecastError,
     r"the series has 30 values: window 12, differencing 12 \(season 12\) and horizon 1 need "
     r"at least"),
    ({"series": np.full(50, np.nan)}, ValueError, "NaN"),
    ({"series": np.r_[np.ones(40), np.nan, np.ones(9)]}, ValueError, "NaN or infinity at row 40"),
    ({"series": np.array(["1.0"] * 50)}, TypeError, "must be numeric"),
    ({"series": np.zeros((50, 2))}, ValueError, "pass target= the column to forecast"),
    ({"series": -np.arange(1.0, 51.0), "transform": "log"}, ForecastError,
     "takes the logarithm: values must be positive"),
])
def test_bad_input_is_a_clear_error(kwargs, error, message):
    kwargs = {"window": 12, "season": 12, "transform": "seasonal_diff", **TINY, **kwargs}
    series = kwargs.pop("series")
    with pytest.raises(error, match=message):
        Forecaster(**kwargs).fit(series)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"transform": "cube"}, ValueError, "transform 'cube': expected 'level' or steps"),
    ({"window": 0}, ValueError, "window must be an int >= 1, got 0"),
    ({"horizon": 1.5}, TypeError, "horizon must be an int >= 1, got 1.5"),
    ({"validation": 1.0}, ValueError, r"validation must be a fraction in \(0, 1\)"),
    ({"model": "lstm"}, TypeError, "model must be a callable"),
])
def test_bad_settings_are_refused_at_once(kwargs, error, message):
    with pytest.raises(error, match=message):
        Forecaster(**kwargs)


def test_a_non_numeric_column_of_a_table_is_named():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"y": np.arange(50.0), "label": ["a"] * 50})
    with pytest.raises(TypeError, match="'label' must be numeric"):
        Forecaster(**TINY).fit(frame, target="y")

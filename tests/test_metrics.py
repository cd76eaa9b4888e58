"""fastlstm.metrics: values by hand, clear errors, and the names compile takes."""
import numpy as np
import pytest

import fastlstm
from fastlstm import metrics


def test_metrics_on_known_values():
    true, pred = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])
    assert metrics.mae(true, pred) == pytest.approx(1.0)
    assert metrics.mse(true, pred) == pytest.approx(5 / 3)
    assert metrics.rmse(true, pred) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.mape(true, pred) == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert metrics.smape(true, pred) == pytest.approx(100 * (2 / 3 + 0 + 4 / 6) / 3)
    assert metrics.smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert metrics.mae(true[:, None], pred) == pytest.approx(1.0)  # (n, 1) vs (n,)


def test_the_time_series_toolkit_exports_the_same_functions():
    assert fastlstm.timeseries.mae is metrics.mae
    assert fastlstm.timeseries.smape is metrics.smape


@pytest.mark.parametrize("fn", [metrics.mae, metrics.mse, metrics.rmse, metrics.mape,
                                metrics.smape])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nan_or_inf_is_an_error_not_a_nan_result(fn, bad):
    with pytest.raises(ValueError, match="y_true contains NaN or infinity"):
        fn([1.0, bad], [1.0, 2.0])
    with pytest.raises(ValueError, match="y_pred contains NaN or infinity"):
        fn([1.0, 2.0], [bad, 2.0])


def test_bad_pairs_are_named():
    with pytest.raises(ValueError, match="undefined where y_true is 0"):
        metrics.mape([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="differ in size"):
        metrics.mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty y_true"):
        metrics.mae([], [])


def test_lookup_by_short_and_keras_names():
    assert metrics.get("mae") is metrics.mae
    assert metrics.get("mean_absolute_percentage_error") is metrics.mape
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metrics.get("accuracy")
    with pytest.raises(TypeError, match="by name"):
        metrics.get(3)


def test_compile_takes_one_metric_as_a_string():
    model = fastlstm.Sequential([fastlstm.layers.Dense(1, input_shape=(2,))])
    model.compile(metrics="mae")
    assert model.metrics == ["mae"]
    model.compile(metrics=["mean_squared_error", "rmse"])
    assert model.metrics == ["mse", "rmse"]


def test_mase_on_a_hand_computed_value():
    # In-sample naive errors at lag 1: |2-1|, |4-2|, |3-4| -> mean 4/3;
    # forecast errors |3-2|, |4-2| -> mean 3/2; MASE = (3/2) / (4/3) = 9/8.
    assert metrics.mase([3, 4], [2, 2], insample=[1, 2, 4, 3]) == pytest.approx(9 / 8)
    # Lag 2: |4-1|, |3-2| -> mean 2; MASE = (3/2) / 2.
    assert metrics.mase([3, 4], [2, 2], insample=[1, 2, 4, 3], season=2) == pytest.approx(3 / 4)
    # A column of history, as the baselines take it, is the same history.
    assert metrics.mase([3, 4], [2, 2], insample=[[1], [2], [4], [3]]) == pytest.approx(9 / 8)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"insample": [1.0, 2.0], "season": 2}, ValueError, "needs more than 2"),
    ({"insample": [5.0, 5.0, 5.0]}, ValueError, "MASE is undefined"),
    ({"insample": [1.0, np.nan, 2.0]}, ValueError, "insample contains NaN"),
    ({"insample": [1.0, 2.0], "season": 0}, ValueError, "season must be an int >= 1"),
    ({"insample": [[1.0, 2.0], [3.0, 4.0]]}, ValueError, r"shape \(n,\) or \(n, 1\)"),
])
def test_mase_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        metrics.mase([1.0], [1.0], **kwargs)

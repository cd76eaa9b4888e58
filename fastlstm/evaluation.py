"""Forecasts from many origins, scored beside the naive baselines.

A rolling-origin evaluation forecasts `horizon` values from each origin
(the number of values seen); ``forecast_errors`` scores a matrix of such
forecasts with MAE, RMSE, MAPE, sMAPE and MASE, the last scaled by the
in-sample error of the seasonal naive forecast. ``baseline_forecasts``
makes the same matrix for persistence, seasonal naive and drift, which any
model must be read against; ``BacktestResult`` holds it all.
"""
from dataclasses import dataclass, field

import numpy as np

from . import metrics, timeseries

__all__ = ["BASELINES", "baseline_forecasts", "forecast_errors", "interval_coverage",
           "BacktestResult", "METRICS"]

METRICS = ("MAE", "RMSE", "MAPE", "sMAPE", "MASE")


def _persistence(history, steps, season):
    return timeseries.naive_forecast(history, steps)


def _seasonal_naive(history, steps, season):
    return timeseries.seasonal_naive_forecast(history, steps, season)


def _drift(history, steps, season):
    return timeseries.drift_forecast(history, steps)


BASELINES = {"persistence": _persistence, "seasonal_naive": _seasonal_naive, "drift": _drift}


def baseline_forecasts(values, origins, horizon, season):
    """Each baseline's forecasts of `horizon` values from each origin.

    Parameters
    ----------
    values : ndarray of shape (n,)
    origins : ndarray of int, shape (n_origins,)
        Values seen at each forecast (at least `season` and 2).
    horizon : int
    season : int >= 1
        The seasonal naive forecast's lag (1: the same as persistence).

    Returns
    -------
    dict
        Baseline name -> ndarray of shape (n_origins, horizon).
    """
    return {name: np.array([baseline(values[:o], horizon, season) for o in origins],
                           dtype=np.float64).reshape(len(origins), horizon)
            for name, baseline in BASELINES.items()}


def _optional(measure, actual, predicted):
    """`measure`, or None where it is undefined (MAPE of a series with zeros)."""
    try:
        return measure(actual, predicted)
    except ValueError:
        return None


def forecast_errors(actual, predicted, insample, season):
    """Every error measure of `predicted` against `actual` over all values.

    Parameters
    ----------
    actual, predicted : ndarray of the same shape, e.g. (n_origins, horizon)
        Cells where `actual` is NaN (past the series' end) are left out.
    insample : ndarray of shape (n,)
        The training span: MASE divides by its seasonal naive MAE.
    season : int >= 1

    Returns
    -------
    dict
        MAE, RMSE, MAPE (None where an actual value is 0), sMAPE (percent),
        MASE.
    """
    known = ~np.isnan(actual)
    true, pred = actual[known], predicted[known]
    return {"MAE": metrics.mae(true, pred), "RMSE": metrics.rmse(true, pred),
            "MAPE": _optional(metrics.mape, true, pred), "sMAPE": metrics.smape(true, pred),
            "MASE": metrics.mase(true, pred, insample, season=season)}


def interval_coverage(actual, lower, upper):
    """The share of known `actual` values inside [lower, upper]."""
    known = ~np.isnan(actual)
    inside = (actual[known] >= lower[known]) & (actual[known] <= upper[known])
    return float(inside.mean())


@dataclass
class BacktestResult:
    """A rolling-origin evaluation.

    Attributes
    ----------
    origins : ndarray of int, shape (n_origins,)
        Values seen at each forecast; row i forecasts values
        ``origins[i] .. origins[i] + horizon - 1`` of the series.
    dates : ndarray of shape (n_origins, horizon) or None
        The date of each forecast value.
    actual : ndarray of shape (n_origins, horizon)
        The true values; NaN past the series' end.
    forecasts : dict
        "model" and each baseline -> ndarray of shape (n_origins, horizon).
    quantiles : dict
        Quantile level -> the model's ndarray of shape (n_origins, horizon).
    errors : dict
        "model" and each baseline -> {measure: value}.
    coverage : dict
        Interval name (e.g. "80%") -> share of actual values inside it.
    chosen : dict
        What the forecaster chose (transform, season, window, ...).
    """

    origins: np.ndarray
    dates: np.ndarray
    actual: np.ndarray
    forecasts: dict
    quantiles: dict
    errors: dict
    coverage: dict
    chosen: dict = field(default_factory=dict)

    def to_dict(self):
        """The errors, coverage and choices as JSON-ready data: "model" (with
        the coverage of each interval), each baseline, and "chosen"."""
        model = dict(self.errors["model"])
        model.update({f"coverage_{name}": value for name, value in self.coverage.items()})
        return {"model": model, **{name: dict(self.errors[name]) for name in BASELINES},
                "chosen": self.chosen}

    def table(self, unit=""):
        """The errors as text: one row per measure, one column per forecast."""
        columns = ["model", *BASELINES]
        lines = [f"{'':8}" + "".join(f"{name:>16}" for name in columns)]
        for measure in METRICS:
            cells = []
            for name in columns:
                value = self.errors[name][measure]
                text = "n/a" if value is None else f"{value:.4g}"
                if measure in ("MAPE", "sMAPE") and value is not None:
                    text += " %"
                elif measure in ("MAE", "RMSE") and unit:
                    text += f" {unit}"
                cells.append(f"{text:>16}")
            lines.append(f"{measure:8}" + "".join(cells))
        return "\n".join(lines)

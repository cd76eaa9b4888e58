"""Error measures between true values and predictions.

Each takes ``y_true`` and ``y_pred`` of the same size (any shape; a
prediction of another shape but the same size is reshaped to ``y_true``'s)
and returns a Python float. NaN or infinity in either is an error, not a
NaN result. ``get(name)`` looks a measure up by the name ``compile(metrics=...)``
takes. Each also takes ``mask``, a bool array of y_pred's shape without its
last axis: the mean then runs over the steps where it is True (Keras masks
a model's metrics as it masks its loss).

``mase`` also needs the in-sample history the forecast was made from, so it
is not one of the names ``compile`` takes.
"""
import numpy as np

__all__ = ["mae", "mse", "rmse", "mape", "smape", "mase", "get"]


def _pair(y_true, y_pred):
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape:
        if true.size == pred.size:
            pred = pred.reshape(true.shape)
        else:
            raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in size")
    if true.size == 0:
        raise ValueError("empty y_true")
    for name, array in (("y_true", true), ("y_pred", pred)):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinity")
    return true, pred


def _checked_mask(mask, shape):
    """`mask` as bool of `shape` without its last axis, or a ValueError."""
    mask = np.asarray(mask, bool)
    if mask.shape != shape[:-1]:
        raise ValueError(f"mask must have shape {shape[:-1]}, got {mask.shape}")
    return mask


def _mean(values, mask):
    """The mean of `values`, over the steps `mask` keeps when given (0 if none)."""
    if mask is None:
        return float(np.mean(values))
    mask = _checked_mask(mask, values.shape)
    return float(np.mean(values[mask])) if mask.any() else 0.0


def mae(y_true, y_pred, mask=None):
    """Mean absolute error."""
    true, pred = _pair(y_true, y_pred)
    return _mean(np.abs(true - pred), mask)


def mse(y_true, y_pred, mask=None):
    """Mean squared error."""
    true, pred = _pair(y_true, y_pred)
    return _mean((true - pred) ** 2, mask)


def rmse(y_true, y_pred, mask=None):
    """Root mean squared error."""
    true, pred = _pair(y_true, y_pred)
    return float(np.sqrt(_mean((true - pred) ** 2, mask)))


def mape(y_true, y_pred, mask=None):
    """Mean absolute percentage error, in percent (undefined where y_true is 0)."""
    true, pred = _pair(y_true, y_pred)
    counted = true if mask is None else true[_checked_mask(mask, true.shape)]
    if np.any(counted == 0):
        raise ValueError("mape is undefined where y_true is 0; use smape or mae")
    ratio = np.divide(np.abs(true - pred), np.abs(true), out=np.zeros_like(true),
                      where=true != 0)
    return 100 * _mean(ratio, mask)


def smape(y_true, y_pred, mask=None):
    """Symmetric MAPE in percent (0 to 200); a pair of zeros counts as 0 error."""
    true, pred = _pair(y_true, y_pred)
    denominator = np.abs(true) + np.abs(pred)
    ratio = np.divide(2 * np.abs(true - pred), denominator,
                      out=np.zeros_like(denominator), where=denominator != 0)
    return 100 * _mean(ratio, mask)


def mase(y_true, y_pred, insample, season=1):
    """Mean absolute scaled error (Hyndman and Koehler, 2006).

    The forecast's mean absolute error divided by the in-sample mean absolute
    error of the seasonal naive forecast, ``mean(|insample[t] - insample[t - season]|)``
    over t = season .. n - 1. Below 1, the forecast beats that naive forecast
    (made one step ahead on the history) on average.

    Parameters
    ----------
    y_true, y_pred : array_like of the same size
        The actual values after the history and their forecast.
    insample : array_like of shape (n,) or (n, 1), n > season
        The history the forecast was made from (training data).
    season : int >= 1
        Lag of the naive forecast: 1 for non-seasonal data, else the seasonal period.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        `insample` has `season` values or fewer, holds NaN or infinity, or is
        constant at lag `season` (its naive error is 0, so the scale is undefined).
    """
    from ._validation import checked_int
    season = checked_int("season", season, 1)
    history = np.asarray(insample, dtype=np.float64)
    if history.ndim == 2 and history.shape[1] == 1:
        history = history[:, 0]
    if history.ndim != 1:
        raise ValueError(f"insample must have shape (n,) or (n, 1), got {history.shape}")
    if len(history) <= season:
        raise ValueError(f"insample has {len(history)} values; the naive forecast at lag "
                         f"season={season} needs more than {season}")
    if not np.isfinite(history).all():
        raise ValueError("insample contains NaN or infinity")
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    if scale == 0:
        raise ValueError(f"insample repeats itself exactly at lag {season}, so the naive "
                         "forecast's error is 0 and MASE is undefined; use mae")
    return mae(y_true, y_pred) / scale


_BY_NAME = {"mae": mae, "mse": mse, "rmse": rmse, "mape": mape, "smape": smape}
_ALIASES = {"mean_absolute_error": "mae", "mean_squared_error": "mse",
            "root_mean_squared_error": "rmse", "mean_absolute_percentage_error": "mape"}


def canonical_name(name):
    """The short name of a metric given by its short or Keras long name."""
    if not isinstance(name, str):
        raise TypeError(f"a metric is given by name, got {type(name).__name__}")
    key = _ALIASES.get(name, name)
    if key not in _BY_NAME:
        raise ValueError(f"unknown metric {name!r}; valid: {sorted(_BY_NAME)} "
                         f"or {sorted(_ALIASES)}")
    return key


def get(name):
    """The metric function called `name` (short or Keras long name)."""
    return _BY_NAME[canonical_name(name)]

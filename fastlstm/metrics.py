"""Error measures between true values and predictions.

Each takes ``y_true`` and ``y_pred`` of the same size (any shape; a
prediction of another shape but the same size is reshaped to ``y_true``'s)
and returns a Python float. NaN or infinity in either is an error, not a
NaN result. ``get(name)`` looks a measure up by the name ``compile(metrics=...)``
takes.
"""
import numpy as np

__all__ = ["mae", "mse", "rmse", "mape", "smape", "get"]


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


def mae(y_true, y_pred):
    """Mean absolute error."""
    true, pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(true - pred)))


def mse(y_true, y_pred):
    """Mean squared error."""
    true, pred = _pair(y_true, y_pred)
    return float(np.mean((true - pred) ** 2))


def rmse(y_true, y_pred):
    """Root mean squared error."""
    true, pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def mape(y_true, y_pred):
    """Mean absolute percentage error, in percent (undefined where y_true is 0)."""
    true, pred = _pair(y_true, y_pred)
    if np.any(true == 0):
        raise ValueError("mape is undefined where y_true is 0; use smape or mae")
    return float(100 * np.mean(np.abs((true - pred) / true)))


def smape(y_true, y_pred):
    """Symmetric MAPE in percent (0 to 200); a pair of zeros counts as 0 error."""
    true, pred = _pair(y_true, y_pred)
    denominator = np.abs(true) + np.abs(pred)
    ratio = np.divide(2 * np.abs(true - pred), denominator,
                      out=np.zeros_like(denominator), where=denominator != 0)
    return float(100 * np.mean(ratio))


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

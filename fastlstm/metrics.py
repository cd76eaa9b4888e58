"""Error measures between true values and predictions.

Each takes ``y_true`` and ``y_pred`` of the same size (any shape; a
prediction of another shape but the same size is reshaped to ``y_true``'s)
and returns a Python float. NaN or infinity in either is an error, not a
NaN result. ``get(name)`` looks a measure up by the name ``compile(metrics=...)``
takes. Each also takes ``mask``, a bool array of y_pred's shape without its
last axis: the mean then runs over the steps where it is True (Keras masks
a model's metrics as it masks its loss).
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

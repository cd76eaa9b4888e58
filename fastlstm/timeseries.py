"""Time-series tools around a forecasting model.

- Windows: ``make_windows`` cuts a series into (inputs, targets) for a model.
- Scaling: ``MinMaxScaler`` and ``StandardScaler`` per feature, with an
  inverse transform for all features or for one target column.
- Splitting: ``train_test_split`` keeps time order (no shuffling).
- Forecasting: ``forecast_recursive`` feeds each prediction back as the next
  input; ``forecast_direct`` reads a multi-output (horizon > 1) model.
  One-step forecasting is just ``model.predict(x)``.
- Baseline: ``persistence_forecast``, the naive "tomorrow equals today"
  forecast any model must beat. The error measures (``mae``, ``rmse``, ...)
  live in ``fastlstm.metrics`` and are importable from here too.

A "model" here is anything with ``predict(x) -> (n, horizon)``, such as
fastlstm's Sequential or a Keras model.
"""
import numpy as np

from .metrics import mae, mape, mse, rmse, smape

__all__ = ["make_windows", "MinMaxScaler", "StandardScaler", "scaler_from_dict", "train_test_split",
           "forecast_recursive", "forecast_direct", "persistence_forecast",
           "mae", "mse", "rmse", "mape", "smape"]


def _as_2d_series(series, name="series"):
    """(n,) or (n, features) real and finite -> float64 (n, features)."""
    array = np.asarray(series)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, features), got {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return array


def make_windows(series, window, horizon=1, stride=1, target=None):
    """Cut a series into model inputs and the values that follow them.

    Window k holds rows ``k*stride .. k*stride + window - 1``; its target is
    the `horizon` values of the target column right after it.

    Parameters
    ----------
    series : array_like of shape (n,) or (n, features)
    window : int
        Time steps per input window.
    horizon : int
        Future steps to predict (1: next step only).
    stride : int
        Steps between the starts of consecutive windows.
    target : int, optional
        Column to predict; may be omitted for a univariate series.

    Returns
    -------
    x : ndarray of shape (n_windows, window, features)
    y : ndarray of shape (n_windows, horizon)
    """
    data = _as_2d_series(series)
    for name, value in (("window", window), ("horizon", horizon), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    n, features = data.shape
    if target is None:
        if features != 1:
            raise ValueError(f"series has {features} columns: pass target= the column to predict")
        target = 0
    if not -features <= target < features:
        raise ValueError(f"target column {target} out of range for {features} columns")
    if n < window + horizon:
        raise ValueError(f"series of length {n} is shorter than window + horizon = "
                         f"{window + horizon}")
    starts = np.arange(0, n - window - horizon + 1, stride)
    x = data[starts[:, None] + np.arange(window)]
    y = data[starts[:, None] + window + np.arange(horizon), target]
    return x, y


class _Scaler:
    """Shared fit / transform / inverse plumbing; subclasses set offset and scale."""

    def __init__(self):
        self.offset_ = None  # (features,): transform(x) = (x - offset_) / scale_
        self.scale_ = None

    def _check_fitted(self):
        if self.scale_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _check_features(self, data):
        if data.shape[1] != self.scale_.size:
            raise ValueError(f"expected {self.scale_.size} features (as in fit), "
                             f"got {data.shape[1]}")

    def fit(self, x):
        """Learn the per-feature parameters from x of shape (n,) or (n, features)."""
        data = _as_2d_series(x, "x")
        if len(data) == 0:
            raise ValueError("cannot fit a scaler on an empty series")
        self.offset_, scale = self._parameters(data)
        self.scale_ = np.where(scale == 0, 1.0, scale)  # constant feature: no division by 0
        return self

    def transform(self, x):
        """Scale x; returns the same shape as x."""
        self._check_fitted()
        shape = np.shape(x)
        data = _as_2d_series(x, "x")
        self._check_features(data)
        return ((data - self.offset_) / self.scale_).reshape(shape)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def to_dict(self):
        """The fitted parameters as JSON-ready data (see scaler_from_dict)."""
        self._check_fitted()
        return {"class": type(self).__name__, "offset": self.offset_.tolist(),
                "scale": self.scale_.tolist(), **self._init_params()}

    def _init_params(self):
        return {}

    def inverse_transform(self, x, column=None):
        """Undo transform.

        With `column`, x holds values of that one feature only (any shape,
        e.g. a model's (n, horizon) predictions of the target column).
        """
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        if column is not None:
            if not -self.scale_.size <= column < self.scale_.size:
                raise ValueError(f"column {column} out of range for {self.scale_.size} features")
            return x * self.scale_[column] + self.offset_[column]
        shape = x.shape
        data = x[:, None] if x.ndim == 1 else x
        if data.ndim != 2:
            raise ValueError(f"x must have shape (n,) or (n, features), got {shape}")
        self._check_features(data)
        return (data * self.scale_ + self.offset_).reshape(shape)


class MinMaxScaler(_Scaler):
    """Scale each feature to `feature_range` (default [0, 1]), like scikit-learn's."""

    def __init__(self, feature_range=(0.0, 1.0)):
        super().__init__()
        low, high = feature_range
        if not low < high:
            raise ValueError(f"feature_range must be (low, high) with low < high, got {feature_range}")
        self.feature_range = (float(low), float(high))

    def _init_params(self):
        return {"feature_range": list(self.feature_range)}

    def _parameters(self, data):
        low, high = self.feature_range
        data_min, data_max = data.min(axis=0), data.max(axis=0)
        scale = (data_max - data_min) / (high - low)
        return data_min - low * np.where(scale == 0, 1.0, scale), scale


class StandardScaler(_Scaler):
    """Scale each feature to zero mean and unit variance."""

    def _parameters(self, data):
        return data.mean(axis=0), data.std(axis=0)


def scaler_from_dict(data):
    """Rebuild a fitted scaler from ``scaler.to_dict()``."""
    classes = {"MinMaxScaler": MinMaxScaler, "StandardScaler": StandardScaler}
    try:
        scaler = classes[data["class"]](**({"feature_range": tuple(data["feature_range"])}
                                           if "feature_range" in data else {}))
        scaler.offset_ = np.asarray(data["offset"], dtype=np.float64)
        scaler.scale_ = np.asarray(data["scale"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a saved scaler: {e!r}") from None
    if scaler.offset_.shape != scaler.scale_.shape or scaler.scale_.ndim != 1:
        raise ValueError("not a saved scaler: offset and scale differ in shape")
    return scaler


def train_test_split(*arrays, test_size=0.2):
    """Split arrays at one point in time: the last part is the test set.

    Parameters
    ----------
    *arrays : array_like, all of the same length
    test_size : float in (0, 1) or int
        Fraction or number of the last samples that form the test set.

    Returns
    -------
    list
        ``train, test`` for each array, in order.
    """
    if not arrays:
        raise ValueError("pass at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
    if isinstance(test_size, float) and 0 < test_size < 1:
        n_test = int(np.ceil(n * test_size))
    elif isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool) and 0 < test_size < n:
        n_test = int(test_size)
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count in [1, {n - 1}], "
                         f"got {test_size!r}")
    split = n - n_test
    if split == 0:
        raise ValueError(f"test_size {test_size!r} leaves no training samples out of {n}")
    return [part for a in arrays for part in (a[:split], a[split:])]


def _last_window(history, window):
    data = _as_2d_series(history, "history")
    if data.shape[1] != 1:
        raise ValueError("recursive forecasting feeds predictions back as inputs, so it needs a "
                         f"univariate history; got {data.shape[1]} features")
    if window is None:
        window = len(data)
    if len(data) < window:
        raise ValueError(f"history has {len(data)} steps, fewer than the window {window}")
    return data[len(data) - window:, 0]


def forecast_recursive(model, history, steps, window=None):
    """Forecast `steps` values ahead, feeding each prediction back as input.

    Parameters
    ----------
    model : object with ``predict(x)``, x of shape (1, window, 1)
        A one-step model: the first output column is the next value.
    history : array_like of shape (n,) or (n, 1)
        The (scaled) series so far; its last `window` values start the loop.
    steps : int
    window : int, optional
        The model's input length; default: all of `history`.

    Returns
    -------
    ndarray of shape (steps,)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    values = list(_last_window(history, window))
    width = len(values)
    forecast = np.empty(steps)
    for k in range(steps):
        x = np.asarray(values[-width:], dtype=np.float64)[None, :, None]
        forecast[k] = np.asarray(model.predict(x)).reshape(-1)[0]
        values.append(forecast[k])
    return forecast


def forecast_direct(model, history, window=None):
    """Forecast a multi-output model's whole horizon from the last window.

    Returns
    -------
    ndarray of shape (horizon,)
    """
    last = _last_window(history, window)
    return np.asarray(model.predict(last[None, :, None])).reshape(-1)


def persistence_forecast(x, horizon=1, target=0):
    """The naive baseline: every future value equals the last one seen.

    Parameters
    ----------
    x : array_like of shape (n, window, features)
        Model input windows, as from ``make_windows``.

    Returns
    -------
    ndarray of shape (n, horizon)
    """
    windows = np.asarray(x, dtype=np.float64)
    if windows.ndim != 3:
        raise ValueError(f"x must have shape (n, window, features), got {windows.shape}")
    return np.repeat(windows[:, -1, target][:, None], horizon, axis=1)

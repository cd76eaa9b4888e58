"""Time-series tools around a forecasting model.

- Windows: ``make_windows`` cuts a series into (inputs, targets) for a model.
- Scaling: ``MinMaxScaler`` and ``StandardScaler`` per feature, with an
  inverse transform for all features or for one target column.
- Splitting: ``train_test_split`` keeps time order (no shuffling).
- Forecasting: ``forecast_recursive`` feeds each prediction back as the next
  input; ``forecast_direct`` reads a multi-output (horizon > 1) model.
  One-step forecasting is just ``model.predict(x)``.
- Baselines: ``persistence_forecast``, the naive "tomorrow equals today"
  forecast of model input windows any model must beat; over one history,
  ``naive_forecast``, ``seasonal_naive_forecast`` and ``drift_forecast``.
- Seasons: ``detect_season`` finds the seasonal period of a series.
  The error measures (``mae``, ``rmse``, ``mase``, ...) live in
  ``fastlstm.metrics`` and are importable from here too.

A "model" here is anything with ``predict(x) -> (n, horizon)``, such as
fastlstm's Sequential or a Keras model.
"""
import math
import numbers
import reprlib
import statistics

import numpy as np

from ._validation import checked_int
from .metrics import mae, mape, mase, mse, rmse, smape

__all__ = ["make_windows", "MinMaxScaler", "StandardScaler", "scaler_from_dict", "train_test_split",
           "forecast_recursive", "forecast_direct", "persistence_forecast",
           "naive_forecast", "seasonal_naive_forecast", "drift_forecast", "detect_season",
           "mae", "mse", "rmse", "mape", "smape", "mase"]


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


def _check_column(name, value, count):
    """`value` as a column index for `count` columns (negative counts from the end)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int column index, got {value!r}")
    if not -count <= value < count:
        raise ValueError(f"{name} {value!r} out of range: a column index must be in "
                         f"[{-count}, {count - 1}]")
    return int(value)


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
        Column to predict (negative counts from the end); may be omitted for
        a univariate series.

    Returns
    -------
    x : ndarray of shape (n_windows, window, features)
    y : ndarray of shape (n_windows, horizon)

    Raises
    ------
    TypeError
        `window`, `horizon`, `stride` or `target` is not an int, or the
        series is not numeric.
    ValueError
        One of them is out of range, or the series is too short.
    """
    data = _as_2d_series(series)
    window = checked_int("window", window, 1)
    horizon = checked_int("horizon", horizon, 1)
    stride = checked_int("stride", stride, 1)
    n, features = data.shape
    if target is None:
        if features != 1:
            raise ValueError(f"series has {features} columns: pass target= the column to predict")
        target = 0
    target = _check_column("target", target, features)
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
            column = _check_column("column", column, self.scale_.size)
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
        self.feature_range = _checked_feature_range(feature_range)

    def _init_params(self):
        return {"feature_range": list(self.feature_range)}

    def _parameters(self, data):
        low, high = self.feature_range
        data_min, data_max = data.min(axis=0), data.max(axis=0)
        scale = (data_max - data_min) / (high - low)
        return data_min - low * np.where(scale == 0, 1.0, scale), scale


def _checked_feature_range(feature_range):
    """`feature_range` as a pair of floats (low, high), low < high, both finite."""
    try:
        low, high = feature_range
    except (TypeError, ValueError):
        raise TypeError(f"feature_range must be a pair (low, high), "
                        f"got {feature_range!r}") from None
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (low, high)):
        raise TypeError(f"feature_range must hold two numbers, got {feature_range!r}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"feature_range must be (low, high) with finite low < high, "
                         f"got {feature_range!r}")
    return float(low), float(high)


class StandardScaler(_Scaler):
    """Scale each feature to zero mean and unit variance."""

    def _parameters(self, data):
        return data.mean(axis=0), data.std(axis=0)


def _saved_parameters(data, key):
    """``data[key]`` as a non-empty 1-D float64 array of finite numbers."""
    try:
        values = np.asarray(data[key])
    except ValueError:  # a ragged nested list
        values = np.asarray(None)
    if values.dtype.kind not in "iuf" or values.ndim != 1 or values.size == 0:
        raise ValueError(f"{key} must be a non-empty list of numbers, "
                         f"got {reprlib.repr(data[key])}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{key} must hold finite numbers, got {reprlib.repr(data[key])}")
    return values


def scaler_from_dict(data):
    """Rebuild a fitted scaler from ``scaler.to_dict()``.

    Raises
    ------
    ValueError
        `data` is not what ``to_dict`` makes: not a dict, an unknown class, a
        bad feature range, or an offset and a scale that are not lists of
        finite numbers of one length (every scale > 0).
    """
    classes = {"MinMaxScaler": MinMaxScaler, "StandardScaler": StandardScaler}
    if not isinstance(data, dict):
        raise ValueError(f"not a saved scaler: expected a dict, got {type(data).__name__}")
    name = data.get("class")
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"not a saved scaler: class must be one of {sorted(classes)}, "
                         f"got {reprlib.repr(name)}")
    try:
        scaler = (MinMaxScaler(data.get("feature_range", (0.0, 1.0))) if name == "MinMaxScaler"
                  else StandardScaler())
        offset, scale = _saved_parameters(data, "offset"), _saved_parameters(data, "scale")
    except KeyError as e:
        raise ValueError(f"not a saved scaler: it has no {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a saved scaler: {e}") from None
    if offset.shape != scale.shape:
        raise ValueError(f"not a saved scaler: offset has {offset.size} values, "
                         f"scale {scale.size}")
    if not (scale > 0).all():  # fit never stores 0: it would divide by zero in transform
        raise ValueError(f"not a saved scaler: scale must be > 0, "
                         f"got {reprlib.repr(data['scale'])}")
    scaler.offset_, scaler.scale_ = offset, scale
    return scaler


def _test_count(test_size, n):
    """How many of `n` samples `test_size` (an int count or a float fraction) holds out."""
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 1 <= test_size <= n - 1:
            raise ValueError(f"test_size as an int is a count of samples and must be in "
                             f"[1, {n - 1}] for {n} samples, got {test_size!r}")
        return int(test_size)
    if isinstance(test_size, (float, np.floating)):
        if not 0 < test_size < 1:
            hint = (f"; for a count, pass the int {int(test_size)}"
                    if test_size >= 1 and float(test_size).is_integer() else "")
            raise ValueError(f"test_size as a float is a fraction of the samples and must be "
                             f"in (0, 1), got {test_size!r}{hint}")
        n_test = math.ceil(n * test_size)
        if n_test >= n:
            raise ValueError(f"test_size {test_size!r} of {n} samples leaves no training samples")
        return n_test
    raise TypeError(f"test_size must be an int (a count) or a float (a fraction), "
                    f"got {test_size!r}")


def train_test_split(*arrays, test_size=0.2):
    """Split arrays at one point in time: the last part is the test set.

    Parameters
    ----------
    *arrays : array_like, all of the same length n >= 2
    test_size : int or float
        As in scikit-learn, the type decides: an int is the number of last
        samples to hold out, in [1, n - 1] (so ``test_size=1`` holds out one
        sample); a float is a fraction in (0, 1) of them, rounded up. A float
        such as ``1.0`` or ``3.0`` is refused rather than guessed at.

    Returns
    -------
    list
        ``train, test`` for each array, in order.

    Raises
    ------
    TypeError
        `test_size` is neither an int nor a float, or an array has no length.
    ValueError
        Arrays of different lengths, fewer than 2 samples, or a `test_size`
        that leaves no training or no test samples.
    """
    if not arrays:
        raise ValueError("pass at least one array")
    try:
        lengths = [len(a) for a in arrays]
    except TypeError:
        raise TypeError("arrays must be sequences or arrays with a length, got "
                        f"{[type(a).__name__ for a in arrays]}") from None
    if len(set(lengths)) != 1:
        raise ValueError(f"arrays have different lengths: {lengths}")
    n = lengths[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples to split into train and test, got {n}")
    split = n - _test_count(test_size, n)
    return [part for a in arrays for part in (a[:split], a[split:])]


def _last_window(history, window):
    data = _as_2d_series(history, "history")
    if len(data) == 0:
        raise ValueError("history is empty: forecasting starts from past values")
    if data.shape[1] != 1:
        raise ValueError("recursive forecasting feeds predictions back as inputs, so it needs a "
                         f"univariate history; got {data.shape[1]} features")
    window = len(data) if window is None else checked_int("window", window, 1)
    if len(data) < window:
        raise ValueError(f"history has {len(data)} steps, fewer than the window {window}")
    return data[len(data) - window:, 0]


def _predict(model, x):
    """The model's outputs for `x`, flattened; an error when there are none."""
    output = np.asarray(model.predict(x), dtype=np.float64).reshape(-1)
    if output.size == 0:
        raise ValueError(f"model.predict returned no values for x of shape {x.shape}")
    return output


def forecast_recursive(model, history, steps, window=None):
    """Forecast `steps` values ahead, feeding each prediction back as input.

    Parameters
    ----------
    model : object with ``predict(x)``, x of shape (1, window, 1)
        A one-step model: the first output column is the next value.
    history : array_like of shape (n,) or (n, 1), n >= 1
        The (scaled) series so far; its last `window` values start the loop.
    steps : int >= 1
    window : int >= 1, optional
        The model's input length, at most n; default: all of `history`.

    Returns
    -------
    ndarray of shape (steps,)

    Raises
    ------
    TypeError
        `steps` or `window` is not an int, or `history` is not numeric.
    ValueError
        `steps` or `window` < 1, an empty, multivariate or too short history.
    """
    steps = checked_int("steps", steps, 1)
    values = list(_last_window(history, window))
    width = len(values)
    forecast = np.empty(steps)
    for k in range(steps):
        x = np.asarray(values[-width:], dtype=np.float64)[None, :, None]
        forecast[k] = _predict(model, x)[0]
        values.append(forecast[k])
    return forecast


def forecast_direct(model, history, window=None):
    """Forecast a multi-output model's whole horizon from the last window.

    Parameters
    ----------
    model : object with ``predict(x)``, x of shape (1, window, 1)
    history : array_like of shape (n,) or (n, 1), n >= 1
    window : int >= 1, optional
        The model's input length, at most n; default: all of `history`.

    Returns
    -------
    ndarray of shape (horizon,)

    Raises
    ------
    TypeError, ValueError
        As for ``forecast_recursive``.
    """
    last = _last_window(history, window)
    return _predict(model, last[None, :, None])


def persistence_forecast(x, horizon=1, target=0):
    """The naive baseline: every future value equals the last one seen.

    Parameters
    ----------
    x : array_like of shape (n, window, features)
        Model input windows, as from ``make_windows``.
    horizon : int >= 1
        Future steps to forecast.
    target : int
        Column of x to forecast (negative counts from the end).

    Returns
    -------
    ndarray of shape (n, horizon)

    Raises
    ------
    TypeError
        `horizon` or `target` is not an int, or x is not numeric.
    ValueError
        x has another shape, `horizon` < 1 or `target` is out of range.
    """
    windows = np.asarray(x)
    if windows.dtype.kind not in "biuf":
        raise TypeError(f"x must be numeric, got dtype {windows.dtype}")
    if windows.ndim != 3 or 0 in windows.shape[1:]:
        raise ValueError(f"x must have shape (n, window, features) with window, features >= 1, "
                         f"got {windows.shape}")
    horizon = checked_int("horizon", horizon, 1)
    target = _check_column("target", target, windows.shape[2])
    last = windows[:, -1, target].astype(np.float64)
    return np.repeat(last[:, None], horizon, axis=1)


def _history(history, minimum):
    """A 1-D history of at least `minimum` finite values as float64."""
    array = np.asarray(history)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"history must be numeric, got dtype {array.dtype}")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"history must have shape (n,) or (n, 1), got {array.shape}")
    if len(array) < minimum:
        raise ValueError(f"history has {len(array)} values, fewer than the {minimum} needed")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("history contains NaN or infinity")
    return array


def naive_forecast(history, steps):
    """Every future value equals the last one seen.

    Parameters
    ----------
    history : array_like of shape (n,) or (n, 1), n >= 1
    steps : int >= 1

    Returns
    -------
    ndarray of shape (steps,)
    """
    steps = checked_int("steps", steps, 1)
    return np.full(steps, _history(history, 1)[-1])


def seasonal_naive_forecast(history, steps, season):
    """Each future value equals the value one season earlier.

    Step k (1-based) repeats ``history[n - season + (k - 1) % season]``: the
    last full season, over and over.

    Parameters
    ----------
    history : array_like of shape (n,) or (n, 1), n >= season
    steps : int >= 1
    season : int >= 1
        Seasonal period in steps (1 gives ``naive_forecast``).

    Returns
    -------
    ndarray of shape (steps,)
    """
    steps = checked_int("steps", steps, 1)
    season = checked_int("season", season, 1)
    last_season = _history(history, season)[-season:]
    return last_season[np.arange(steps) % season]


def drift_forecast(history, steps):
    """The line through the first and last values, extended.

    Step k is ``last + k * (last - first) / (n - 1)``: the naive forecast plus
    the average change per step.

    Parameters
    ----------
    history : array_like of shape (n,) or (n, 1), n >= 2
    steps : int >= 1

    Returns
    -------
    ndarray of shape (steps,)
    """
    steps = checked_int("steps", steps, 1)
    values = _history(history, 2)
    slope = (values[-1] - values[0]) / (len(values) - 1)
    return values[-1] + slope * np.arange(1, steps + 1)


def _autocorrelation(values, max_lag):
    """Sample autocorrelation at lags 0 .. max_lag (all 0 past lag 0 for a constant series).

    ``sum(c[t] c[t + lag]) / sum(c[t] ** 2)`` of the centred values c, for
    all lags at once through the FFT (zero-padded past twice the length, so
    the products do not wrap around): O(n log n) rather than O(n max_lag).
    """
    centred = values - values.mean()
    energy = float(np.dot(centred, centred))
    acf = np.zeros(max_lag + 1)
    acf[0] = 1.0
    if energy == 0:
        return acf
    size = 1 << (2 * len(centred) - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    products = np.fft.irfft(spectrum * spectrum.conj(), size)
    acf[1:] = products[1:max_lag + 1] / energy
    return acf


# The longest season detect_season searches unless told: a week of hourly
# steps (168) and a day of 5-minute steps (288) fit.
_LONGEST_DEFAULT_SEASON = 400


def _significance(n, lags, lag_one):
    """The autocorrelation a series of length n with no season exceeds at any
    of `lags` lags with probability 5% (a Bonferroni bound over the lags).

    Differencing leaves a lag-1 autocorrelation `lag_one` (-1/2 for white
    noise), which widens the spread of the sample autocorrelation at every
    longer lag by ``sqrt(1 + 2 lag_one ** 2)`` (Bartlett's formula for a
    series correlated at lag 1 only).
    """
    z = statistics.NormalDist().inv_cdf(1 - 0.05 / (2 * lags))
    return z * math.sqrt((1 + 2 * lag_one ** 2) / n)


def _season_strengths(acf, max_lag, bound):
    """How strongly each lag k (index k; 0 and 1 unused) peaks, and how far
    above the troughs between its peaks.

    A season peaks at its multiples k, 2k, ... too; a lag a step away from a
    season drifts further from its peaks at each multiple. The strength of k
    is the mean autocorrelation at its multiples up to max_lag over the 5%
    bound of such a mean (a mean of m lags varies sqrt(m) times less than
    one lag, so its bound is ``bound / sqrt(m)``); its contrast is the same
    for that mean less the mean at the lags half a period earlier (k - k//2,
    2k - k//2, ...). A trend in the changes lifts peaks and troughs alike.

    Returns
    -------
    means, strengths, contrasts : ndarray of shape (max_lag + 2,)
        The mean autocorrelation at the multiples, the strength and the
        contrast of each lag; -inf at lags 0, 1 and max_lag + 1.
    """
    means, strengths, contrasts = np.full((3, max_lag + 2), -np.inf)
    for lag in range(2, max_lag + 1):
        peaks = acf[lag:max_lag + 1:lag]
        troughs = acf[lag - lag // 2::lag][:len(peaks)]
        scale = math.sqrt(len(peaks)) / bound
        means[lag] = peaks.mean()
        strengths[lag] = means[lag] * scale
        contrasts[lag] = (means[lag] - troughs.mean()) * scale
    return means, strengths, contrasts


def _season_candidates(acf, max_lag, bound):
    """Lags that may be a season: {lag: (strength, mean)} (see _season_strengths).

    A candidate's strength and contrast are above 1, and its strength is
    above its neighbouring lags'.
    """
    means, strengths, contrasts = _season_strengths(acf, max_lag, bound)
    lags = np.arange(2, max_lag + 1)
    chosen = ((strengths[lags] > 1) & (contrasts[lags] > 1) &
              (strengths[lags] >= strengths[lags - 1]) & (strengths[lags] > strengths[lags + 1]))
    return {int(lag): (float(strengths[lag]), float(means[lag])) for lag in lags[chosen]}


def detect_season(values, frequency=None, max_lag=None):
    """The seasonal period of a series, in steps; 1 when it has none.

    The rule: difference the series once (so trends and slow wanderings such
    as stock prices do not read as seasons), then take its autocorrelation
    (ACF). A season peaks at its multiples too, so lag k is scored by the
    mean ACF at k, 2k, 3k, ... up to `max_lag`, over the 5% bound of that
    mean for a series without season: ``z sqrt((1 + 2 r1 ** 2) / (n m))``
    for a mean of m lags, ``z`` the normal quantile of
    ``1 - 0.05 / (2 max_lag)`` (Bonferroni over the lags searched), r1 the
    lag-1 ACF left by differencing. A candidate scores above 1 and above its
    neighbouring lags, and its mean ACF less the mean ACF half a period
    before each multiple scores above 1 too (a season peaks between troughs;
    a trend in the changes lifts both alike).

    1. With a `frequency` whose usual season m > 1 (12 for monthly, 4 for
       quarterly, 24 for hourly, ...): m when it is a candidate.
    2. Otherwise the shortest candidate with at least 0.8 of the score and
       of the mean ACF of the best-scoring one (a season of 12 also peaks at
       24, 36, ..., which can score nearly as high; half a season, peaking
       at every other multiple only, has half the mean ACF).
    3. 1 when there is no candidate.

    Irregular cycles are not seasons: monthly sunspot numbers, with their cycle
    of 9 to 14 years (about 130 months), give 1. The cycle's length varies, so
    after differencing its ACF peak is far below the bound, and a seasonal
    naive forecast 130 months back would not be a sound baseline.

    Parameters
    ----------
    values : array_like of shape (n,) or (n, 1), n >= 8, finite
    frequency : Frequency, optional
        The series' frequency (e.g. from ``fastlstm.calendar.infer_frequency``).
    max_lag : int >= 2, optional
        Longest season searched; default (n - 1) // 3 but at most 400 (a week
        of hours, a day of 5-minute steps); at most n - 3.

    Returns
    -------
    int
        The season, >= 2, or 1 for none.

    Raises
    ------
    TypeError, ValueError
        Non-numeric, non-finite or too short `values`; a bad `max_lag` or `frequency`.
    """
    changes = np.diff(_history(values, 8))
    n = len(changes)
    longest = n - 2
    if max_lag is None:
        max_lag = max(2, min(n // 3, longest, _LONGEST_DEFAULT_SEASON))
    else:
        max_lag = checked_int("max_lag", max_lag, 2, longest)
    if frequency is not None:
        from .calendar import Frequency
        if not isinstance(frequency, Frequency):
            raise TypeError(f"frequency must be a fastlstm.calendar.Frequency, got "
                            f"{type(frequency).__name__}")
    acf = _autocorrelation(changes, max_lag + 1)
    candidates = _season_candidates(acf, max_lag, _significance(n, max_lag, acf[1]))
    if frequency is not None and frequency.season in candidates:
        return frequency.season
    if not candidates:
        return 1
    strongest, its_mean = max(candidates.values())
    return min(lag for lag, (strength, mean) in candidates.items()
               if strength >= _NEAR_BEST * strongest and mean >= _NEAR_BEST * its_mean)


# A shorter season is preferred to a longer one up to this much stronger.
_NEAR_BEST = 0.8

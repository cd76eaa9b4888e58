"""The end-to-end forecasting job behind ``fastlstm demo`` and ``fastlstm train``.

Given a univariate series: Min-Max scale it (fitted on the training span
only, so the test set does not leak into the scaling), cut 60-step windows,
hold out the last windows as the test set, train the classic stacked LSTM,
and report test errors in the series' own units next to the persistence
baseline ("tomorrow equals today").
"""
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from . import metrics, timeseries
from ._random import set_random_seed
from ._validation import checked_int
from .layers import LSTM, Dense, Dropout
from .models import Sequential


# The model computes in float32: a scaled series must stay below its largest value.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class ForecastJobError(ValueError):
    """The series cannot make a forecasting job with these settings: too
    short for the window, a test fraction that leaves no windows to train
    on, or values too far apart to scale into float32."""


def classic_model(window, units=50, dropout=0.2):
    """``LSTM(units, seq) -> Dropout -> LSTM(2 * units) -> Dropout -> Dense(1)``,
    MSE and rmsprop: the network of the classic stock-forecasting tutorials
    (units=50 gives its 50 and 100)."""
    model = Sequential()
    model.add(LSTM(units, return_sequences=True, input_shape=(window, 1)))
    model.add(Dropout(dropout))
    model.add(LSTM(2 * units, return_sequences=False))
    model.add(Dropout(dropout))
    model.add(Dense(1))
    model.compile(loss="mean_squared_error", optimizer="rmsprop")
    return model


@dataclass
class ForecastRun:
    """A trained forecaster and how it did on the held-out windows."""

    model: Sequential
    scaler: timeseries.MinMaxScaler
    window: int
    test_true: np.ndarray         # (n_test,), series units
    test_predicted: np.ndarray    # (n_test,)
    test_persistence: np.ndarray  # (n_test,)
    test_start: int               # index in the series of the first test target
    train_seconds: float

    def errors(self):
        """MAE, RMSE and bias (mean error) of the model and of the persistence baseline."""
        def bias(true, predicted):
            return float(np.mean(predicted - true))

        return {name: {"model": fn(self.test_true, self.test_predicted),
                       "persistence": fn(self.test_true, self.test_persistence)}
                for name, fn in (("MAE", metrics.mae), ("RMSE", metrics.rmse),
                                 ("bias", bias))}

    def metadata(self):
        """What forecasting with the saved model needs besides its weights."""
        return {"window": self.window, "scaler": self.scaler.to_dict()}


def _checked_settings(window, test_fraction, seed):
    checked_int("window", window, 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")
    if seed is not None:
        checked_int("seed", seed, 0)


def _series_values(series):
    """A univariate series, (n,) or (n, 1), as float64 (n,)."""
    values = np.asarray(series)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"series must be numeric, got dtype {values.dtype}")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ForecastJobError(f"series must have shape (n,) or (n, 1), got {values.shape}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ForecastJobError("the series contains NaN or infinity")
    return values


def _test_window_count(n_values, window, test_fraction):
    """How many of the latest windows of a series of `n_values` values are held out."""
    if n_values < window + 2:
        raise ForecastJobError(f"the series has {n_values} values; window {window} needs at "
                               f"least {window + 2}")
    n_windows = n_values - window
    n_test = math.ceil(n_windows * test_fraction)
    if n_test >= n_windows:
        raise ForecastJobError(f"a test fraction of {test_fraction} holds out all {n_windows} "
                               f"windows of the series, leaving none to train on")
    return n_test


def _scaled(values, test_start):
    """The series Min-Max scaled on its training span, and the scaler."""
    scaler = timeseries.MinMaxScaler().fit(values[:test_start])
    scaled = scaler.transform(values)
    if not (np.isfinite(scaler.scale_).all() and np.all(np.abs(scaled) < _FLOAT32_MAX)):
        raise ForecastJobError("the series' values lie too far apart to scale into the "
                               "float32 range the model computes in")
    return scaled, scaler


def fit_forecaster(series, window=60, units=50, epochs=50, batch_size=64, test_fraction=0.2,
                   seed=0, verbose=1):
    """Train the classic network on a univariate series and test it.

    Parameters
    ----------
    series : array_like of shape (n,) or (n, 1)
    window : int
        Past steps the model sees.
    test_fraction : float in (0, 1)
        Share of the windows, the latest ones, held out for testing.
    seed : int >= 0 or None
        Seed of the weights, dropout and shuffling; None: not reproducible.

    Returns
    -------
    ForecastRun

    Raises
    ------
    ForecastJobError
        The series does not fit the settings (see the class).
    TypeError, ValueError
        A setting of the wrong type or out of range.
    """
    _checked_settings(window, test_fraction, seed)
    values = _series_values(series)
    n_test = _test_window_count(len(values), window, test_fraction)
    test_start = len(values) - n_test  # first test target
    scaled, scaler = _scaled(values, test_start)
    x, y = timeseries.make_windows(scaled, window)
    x_train, x_test, y_train, _ = timeseries.train_test_split(x, y, test_size=n_test)

    set_random_seed(seed)
    model = classic_model(window, units)
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    seconds = time.perf_counter() - start

    predicted = scaler.inverse_transform(model.predict(x_test), column=0).reshape(-1)
    persistence = scaler.inverse_transform(timeseries.persistence_forecast(x_test),
                                           column=0).reshape(-1)
    return ForecastRun(model, scaler, window, values[test_start:], predicted, persistence,
                       test_start, seconds)

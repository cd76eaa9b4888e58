"""The end-to-end forecasting job behind ``fastlstm demo`` and ``fastlstm train``.

Given a univariate series: Min-Max scale it (fitted on the training span
only, so the test set does not leak into the scaling), cut 60-step windows,
hold out the last windows as the test set, train the classic stacked LSTM,
and report test errors in the series' own units next to the persistence
baseline ("tomorrow equals today").
"""
import time
from dataclasses import dataclass

import numpy as np

from . import metrics, timeseries
from ._random import set_random_seed
from .layers import LSTM, Dense, Dropout
from .models import Sequential


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


def fit_forecaster(series, window=60, units=50, epochs=50, batch_size=64, test_fraction=0.2,
                   seed=0, verbose=1):
    """Train the classic network on a univariate series and test it.

    Parameters
    ----------
    series : array_like of shape (n,)
    window : int
        Past steps the model sees.
    test_fraction : float
        Share of the windows, the latest ones, held out for testing.

    Returns
    -------
    ForecastRun
    """
    values = np.asarray(series, dtype=np.float64).reshape(-1)
    if len(values) < window + 2:
        raise ValueError(f"the series has {len(values)} values; window {window} needs at "
                         f"least {window + 2}")
    n_windows = len(values) - window
    n_test = int(np.ceil(n_windows * test_fraction))
    if not 0 < n_test < n_windows:
        raise ValueError(f"test_fraction {test_fraction} leaves no training or test windows")
    test_start = len(values) - n_test  # first test target
    scaler = timeseries.MinMaxScaler().fit(values[:test_start])
    x, y = timeseries.make_windows(scaler.transform(values), window)
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

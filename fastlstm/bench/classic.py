"""End to end: the classic stacked forecasting network in fastlstm, PyTorch and Keras.

LSTM(50, return_sequences=True) -> Dropout(0.2) -> LSTM(100) -> Dropout(0.2)
-> Dense(1), MSE and rmsprop (Keras' defaults: lr 0.001, rho 0.9, eps 1e-7),
batch 64, on 60-step windows of GOOG's Close (shipped with fastlstm): one fit
epoch over the first 1670 windows and one predict over up to 430 after them
(the shipped series has 418). Each framework uses its natural calls (Keras:
fit / predict; PyTorch: the usual training loop). network_flops() counts the
arithmetic, so that each framework's time also reads as GFLOP/s against the
machine's sgemm peak.
"""
import numpy as np

from .. import datasets, timeseries
from .._random import set_random_seed
from ..layers import LSTM, Dense, Dropout
from ..models import Sequential
from .problems import lstm_forward_flops

TRAIN_WINDOWS, PREDICT_WINDOWS, WINDOW, BATCH = 1670, 430, 60, 64
UNITS = 50  # the first LSTM layer's; the second has 2 * UNITS
LSTM_LAYERS = ((1, UNITS), (UNITS, 2 * UNITS))  # (features, units) of each LSTM layer


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


def goog_windows(train_windows=TRAIN_WINDOWS, predict_windows=PREDICT_WINDOWS):
    """(x_train, y_train, x_predict) as float32, scaled to [0, 1]: the first
    `train_windows` windows and up to `predict_windows` after them."""
    close = datasets.load_goog().column("Close")
    x, y = timeseries.make_windows(timeseries.MinMaxScaler().fit_transform(close), WINDOW)
    x, y = x.astype(np.float32), y.astype(np.float32)
    end = train_windows + predict_windows
    return x[:train_windows], y[:train_windows], x[train_windows:end]


def network_flops(windows, training):
    """FLOPs of the two LSTM layers' products over `windows` windows.

    Forward only, or (training) forward plus a backward counted as twice the
    forward, as the grid counts it. The gate math, Dropout, Dense(1) and the
    optimizer are not counted, so the GFLOP/s derived from it are a floor.
    """
    forward = sum(lstm_forward_flops(windows, WINDOW, features, units)
                  for features, units in LSTM_LAYERS)
    return 3 * forward if training else forward


def fastlstm_runner(x, y, x_predict):
    """(fit one epoch, predict) callables."""
    set_random_seed(0)
    model = classic_model(WINDOW, units=UNITS)
    return (lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0),
            lambda: model.predict(x_predict))


def keras_runner(x, y, x_predict):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.Sequential([keras.Input((WINDOW, 1)),
                              keras.layers.LSTM(UNITS, return_sequences=True),
                              keras.layers.Dropout(0.2), keras.layers.LSTM(2 * UNITS),
                              keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    model.compile(loss="mean_squared_error", optimizer="rmsprop")
    return (lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0),
            lambda: model.predict(x_predict, verbose=0))


def torch_runner(x, y, x_predict):
    import torch

    class Classic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = torch.nn.LSTM(1, UNITS, batch_first=True)
            self.lstm2 = torch.nn.LSTM(UNITS, 2 * UNITS, batch_first=True)
            self.drop = torch.nn.Dropout(0.2)
            self.dense = torch.nn.Linear(2 * UNITS, 1)

        def forward(self, inputs):
            h = self.drop(self.lstm1(inputs)[0])
            h = self.drop(self.lstm2(h)[0][:, -1])
            return self.dense(h)

    model = Classic()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    xt, yt, xt_predict = map(torch.from_numpy, (x, y, x_predict))

    def epoch():
        model.train()
        for batch in torch.randperm(len(xt)).split(BATCH):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()

    def predict():
        model.eval()
        with torch.no_grad():
            return model(xt_predict).numpy()

    return epoch, predict


def import_failure(module):
    """None if `module` imports, else a one-line reason."""
    try:
        __import__(module)
    except ImportError as e:
        return f"{module} is not installed ({e.name} missing)"
    return None


RUNNERS = {"fastlstm": (None, fastlstm_runner), "torch": ("torch", torch_runner),
           "keras": ("keras", keras_runner)}

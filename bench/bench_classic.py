"""End to end: the classic stacked forecasting network in fastlstm, Keras and PyTorch.

LSTM(50, return_sequences=True) -> Dropout(0.2) -> LSTM(100) -> Dropout(0.2)
-> Dense(1), MSE + rmsprop (Keras' defaults: lr 0.001, rho 0.9, eps 1e-7),
batch 64, on 60-step windows of GOOG's Close: one fit epoch over the first
1670 windows, and one predict over 430. Each framework uses its own natural
calls (Keras: fit / predict; PyTorch: the usual training loop). Epochs are
interleaved between frameworks after a warm-up; medians are reported, and
ratios peer / fastlstm (above 1: fastlstm is faster).

    python bench/bench_classic.py [--repeats 5]

Keras (tensorflow-cpu) and PyTorch are optional; a missing one is skipped
with a message.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # see bench_lstm.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import fastlstm  # noqa: E402
from fastlstm import timeseries  # noqa: E402
from fastlstm.forecaster import classic_model  # noqa: E402

TRAIN, PREDICT, WINDOW, BATCH = 1670, 430, 60, 64


def data():
    close = fastlstm.datasets.load_goog().column("Close")
    x, y = timeseries.make_windows(timeseries.MinMaxScaler().fit_transform(close), WINDOW)
    return x[:TRAIN].astype(np.float32), y[:TRAIN].astype(np.float32), \
        x[TRAIN:TRAIN + PREDICT].astype(np.float32)


def fastlstm_runner(x, y, x_test):
    fastlstm.set_random_seed(0)
    model = classic_model(WINDOW)
    return (lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0),
            lambda: model.predict(x_test))


def keras_runner(x, y, x_test):
    import keras

    model = keras.Sequential([keras.Input((WINDOW, 1)),
                              keras.layers.LSTM(50, return_sequences=True),
                              keras.layers.Dropout(0.2), keras.layers.LSTM(100),
                              keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    model.compile(loss="mean_squared_error", optimizer="rmsprop")
    return (lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0),
            lambda: model.predict(x_test, verbose=0))


def torch_runner(x, y, x_test):
    import torch

    class Classic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = torch.nn.LSTM(1, 50, batch_first=True)
            self.lstm2 = torch.nn.LSTM(50, 100, batch_first=True)
            self.drop = torch.nn.Dropout(0.2)
            self.dense = torch.nn.Linear(100, 1)

        def forward(self, inputs):
            h = self.drop(self.lstm1(inputs)[0])
            h = self.drop(self.lstm2(h)[0][:, -1])
            return self.dense(h)

    model = Classic()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    xt, yt, xt_test = map(torch.from_numpy, (x, y, x_test))

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
            return model(xt_test).numpy()

    return epoch, predict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    x, y, x_test = data()
    runners = {"fastlstm": fastlstm_runner(x, y, x_test)}
    for name, make in (("keras", keras_runner), ("torch", torch_runner)):
        try:
            runners[name] = make(x, y, x_test)
        except ImportError:
            print(f"{name} is not installed: skipped")
    for fit, predict in runners.values():  # warm-up: graph tracing, allocations
        fit()
        predict()
    times = {name: {"fit": [], "predict": []} for name in runners}
    for _ in range(args.repeats):
        for name, (fit, predict) in runners.items():
            for label, fn in (("fit", fit), ("predict", predict)):
                time.sleep(0.05)
                start = time.perf_counter()
                fn()
                times[name][label].append(time.perf_counter() - start)
    ours = {label: statistics.median(times["fastlstm"][label]) for label in ("fit", "predict")}
    print(f"\n| framework | fit epoch ({TRAIN} windows) s | ratio | predict {PREDICT} ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name in runners:
        fit = statistics.median(times[name]["fit"])
        predict = statistics.median(times[name]["predict"])
        print(f"| {name} | {fit:.3f} | {fit / ours['fit']:.2f}x | {1e3 * predict:.1f} | "
              f"{predict / ours['predict']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

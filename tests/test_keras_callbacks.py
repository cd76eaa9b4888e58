"""Callbacks and fit's progress output, held to Keras 3's semantics."""
import io
import re
import sys

import numpy as np
import pytest

import fastlstm
from fastlstm import callbacks, optimizers
from fastlstm.layers import LSTM, Dense


def problem(samples=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 5, 2)).astype(np.float32)
    y = rng.standard_normal((samples, 1)).astype(np.float32)
    return x, y


def tiny_model(optimizer="sgd"):
    fastlstm.set_random_seed(0)
    model = fastlstm.Sequential([LSTM(3, input_shape=(5, 2)), Dense(1)])
    model.compile(optimizer, "mse")
    return model


class Recorder(callbacks.Callback):
    """Writes down every hook call as (hook, epoch or batch)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", None))


class Scripted(callbacks.Callback):
    """Replaces the monitored log with scripted values, one per epoch, and
    keeps each epoch's weights (runs before the callbacks that read them)."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values, self.key, self.weights = list(values), key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


class Poison(callbacks.Callback):
    """Makes the output layer's kernel infinite before one batch of one epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.layers[-1].weights[0][...] = np.inf


def assert_weights_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ batch hooks


def test_batch_hooks_run_around_every_batch_with_the_running_averages():
    x, y = problem()
    seen = []

    class Averages(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    recorder = Recorder()
    history = tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=0,
                               callbacks=[recorder, Averages()])
    per_epoch = [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1),
                 ("batch_begin", 2), ("batch_end", 2)]
    assert recorder.calls == (per_epoch + [("epoch_end", 0)] + per_epoch
                              + [("epoch_end", 1), ("train_end", None)])
    assert [set(logs) for logs in seen] == [{"loss"}] * 6
    # The last batch's running average is the epoch's loss.
    assert seen[2]["loss"] == pytest.approx(history.history["loss"][0], rel=1e-12)
    assert seen[5]["loss"] == pytest.approx(history.history["loss"][1], rel=1e-12)


def test_on_batch_hooks_stand_for_the_train_batch_hooks():
    x, y = problem()
    calls = []

    class Legacy(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch, logs))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, sorted(logs)))

    tiny_model().fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[Legacy()])
    assert calls == [("begin", 0, {}), ("end", 0, ["loss"]), ("begin", 1, {}),
                     ("end", 1, ["loss"])]


# --------------------------------------------------------------- TerminateOnNaN


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_ends_training_after_the_batch_that_broke_the_loss(capsys):
    x, y = problem()
    recorder = Recorder()
    history = tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0,
                               callbacks=[Poison(epoch=1, batch=1), recorder,
                                          callbacks.TerminateOnNaN()])
    # Epoch 1 stops after its batch 1; its end-of-epoch hooks still run.
    assert recorder.calls[-4:] == [("batch_begin", 1), ("batch_end", 1), ("epoch_end", 1),
                                   ("train_end", None)]
    assert history.epoch == [0, 1]
    assert np.isfinite(history.history["loss"][0])
    assert not np.isfinite(history.history["loss"][1])
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_can_raise_at_once_instead():
    x, y = problem()
    recorder = Recorder()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0,
                         callbacks=[Poison(epoch=0, batch=2), recorder,
                                    callbacks.TerminateOnNaN(raise_error=True)])
    assert recorder.calls[-1] == ("batch_end", 2)


def test_terminate_on_nan_lets_a_finite_run_finish(capsys):
    x, y = problem()
    history = tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0,
                               callbacks=[callbacks.TerminateOnNaN()])
    assert history.epoch == [0, 1, 2]
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- EarlyStopping

# Scripted val_loss per epoch, EarlyStopping's arguments, then what Keras 3's
# EarlyStopping(restore_best_weights=True, verbose=1) does with them: epochs
# run, stopped_epoch, best_epoch and the lines it prints.
EARLY_STOPPING_CASES = [
    ([1.0, 0.5, 0.7, 0.6, 0.9], dict(patience=10), 5, 0, 1,
     "Restoring model weights from the end of the best epoch: 2.\n"),
    ([1.0, 0.5, 0.7, 0.8, 0.9, 1.0], dict(patience=2), 4, 3, 1,
     "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"),
    ([0.1, 0.2, 1.0, 0.9, 0.95, 0.97], dict(patience=1, start_from_epoch=2), 5, 4, 3,
     "Epoch 5: early stopping\nRestoring model weights from the end of the best epoch: 4.\n"),
    ([1.0, 0.9, 0.95, 0.97, 0.99, 0.99], dict(patience=3, baseline=0.5), 3, 2, 1,
     "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"),
    ([1.0, 0.9, 0.95, 0.97, 0.99, 0.99], dict(patience=3), 5, 4, 1,
     "Epoch 5: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"),
    ([1.0, 0.95, 0.92, 0.91], dict(patience=2, min_delta=0.1), 3, 2, 0,
     "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 1.\n"),
    ([0.5, 0.5, 0.5], dict(patience=0), 2, 1, 0,
     "Epoch 2: early stopping\nRestoring model weights from the end of the best epoch: 1.\n"),
    ([0.2, 0.6, 0.7, 0.5], dict(patience=1, mode="max"), 4, 3, 2,
     "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 3.\n"),
]


@pytest.mark.parametrize("values, kwargs, epochs_run, stopped_epoch, best_epoch, printed",
                         EARLY_STOPPING_CASES)
def test_early_stopping_stops_and_restores_as_keras_does(capsys, values, kwargs, epochs_run,
                                                         stopped_epoch, best_epoch, printed):
    x, y = problem()
    scripted = Scripted(values)
    stopper = callbacks.EarlyStopping(restore_best_weights=True, verbose=1, **kwargs)
    model = tiny_model()
    history = model.fit(x, y, epochs=len(values), batch_size=10, verbose=0,
                        callbacks=[scripted, stopper])
    assert len(history.epoch) == epochs_run
    assert (stopper.stopped_epoch, stopper.best_epoch) == (stopped_epoch, best_epoch)
    assert stopper.best == values[best_epoch]
    assert capsys.readouterr().out == printed
    assert_weights_equal(model.get_weights(), scripted.weights[best_epoch])


def test_early_stopping_keeps_the_last_weights_unless_asked_to_restore(capsys):
    x, y = problem()
    scripted = Scripted([1.0, 0.5, 0.7])
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=10, verbose=0,
              callbacks=[scripted, callbacks.EarlyStopping(patience=5)])
    assert_weights_equal(model.get_weights(), scripted.weights[-1])
    assert capsys.readouterr().out == ""


def test_early_stopping_watches_nothing_during_its_warm_up():
    x, y = problem()
    scripted = Scripted([0.1, 0.2])
    stopper = callbacks.EarlyStopping(restore_best_weights=True, start_from_epoch=5)
    model = tiny_model()
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[scripted, stopper])
    assert stopper.best is None and stopper.best_weights is None
    assert_weights_equal(model.get_weights(), scripted.weights[-1])


def test_early_stopping_starts_over_on_every_fit():
    x, y = problem()
    stopper = callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    model = tiny_model()
    model.fit(x, y, epochs=3, batch_size=10, verbose=0,
              callbacks=[Scripted([1.0, 2.0, 3.0]), stopper])
    assert stopper.stopped_epoch == 1
    scripted = Scripted([3.0, 2.0, 1.0])
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[scripted, stopper])
    assert len(history.epoch) == 3
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.best) == (0, 2, 1.0)
    assert_weights_equal(model.get_weights(), scripted.weights[2])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_early_stopping_restores_a_diverged_best_epoch_without_failing():
    # The first watched value is the best one even when it is NaN, as in
    # Keras: later values never compare better.
    x, y = problem()
    stopper = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    model = tiny_model()
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0,
                        callbacks=[Poison(epoch=0, batch=0), stopper])
    assert history.epoch == [0, 1] and stopper.best_epoch == 0
    assert not np.isfinite(model.layers[-1].weights[0]).all()


# -------------------------------------------------------------------- CSVLogger


def read_bytes(path):
    with open(path, "rb") as file:
        return file.read().decode()


def test_csv_logger_writes_sorted_columns_and_full_precision_rows(tmp_path):
    x, y = problem()
    path = tmp_path / "log.csv"
    model = tiny_model()
    model.compile("sgd", "mse", metrics=["mae"])
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0,
                        callbacks=[callbacks.CSVLogger(path)])
    keys = ["loss", "mae", "val_loss", "val_mae"]
    expected = ["epoch," + ",".join(keys)]
    for epoch in range(2):
        expected.append(",".join([str(epoch)] + [repr(float(history.history[k][epoch]))
                                                 for k in keys]))
    assert read_bytes(path) == "\r\n".join(expected) + "\r\n"


def test_csv_logger_without_validation_adds_val_columns_of_na(tmp_path):
    x, y = problem()
    path = tmp_path / "log.csv"
    history = tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=0,
                               callbacks=[callbacks.CSVLogger(str(path))])
    losses = [repr(float(v)) for v in history.history["loss"]]
    assert read_bytes(path) == f"epoch,loss,val_loss\r\n0,{losses[0]},NA\r\n1,{losses[1]},NA\r\n"


def test_csv_logger_writes_values_as_keras_does(tmp_path):
    # Keras 3's CSVLogger given these logs writes these exact bytes.
    path = tmp_path / "log.csv"
    logger = callbacks.CSVLogger(path, separator=";")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"b": np.float32(0.1), "a": [1, 2], "c": "x"})
    logger.on_epoch_end(1, {"b": 2, "a": np.array([0.5, 3.0]), "c": "y", "d": 1.0})
    logger.on_train_end()
    assert read_bytes(path) == ('epoch;a;b;c;val_a;val_b;val_c\r\n'
                                '0;"""[1, 2]""";0.10000000149011612;x;NA;NA;NA\r\n'
                                '1;"""[0.5, 3.0]""";2.0;y;NA;NA;NA\r\n')
    assert logger.csv_file.closed


def test_csv_logger_appends_without_a_second_header(tmp_path):
    x, y = problem()
    path = tmp_path / "log.csv"
    model = tiny_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    rows = read_bytes(path).split("\r\n")
    assert rows[0] == "epoch,loss,val_loss" and rows[-1] == ""
    assert [row.split(",")[0] for row in rows[1:-1]] == ["0", "0", "1"]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    assert read_bytes(path).count("\r\n") == 2  # overwritten: header and one row


def test_csv_logger_appending_to_an_empty_file_writes_the_header(tmp_path):
    x, y = problem()
    path = tmp_path / "log.csv"
    path.write_text("")
    tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    assert read_bytes(path).startswith("epoch,loss,val_loss\r\n0,")


# -------------------------------------------------------- LearningRateScheduler


def test_learning_rate_scheduler_sets_the_rate_before_each_epoch(capsys):
    x, y = problem()
    rates_in_use = []

    class Watch(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates_in_use.append(self.model.optimizer.learning_rate)

    model = tiny_model(optimizers.SGD(learning_rate=0.1))
    scheduler = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5, verbose=1)
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[scheduler, Watch()])
    assert rates_in_use == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    assert history.history["learning_rate"] == [0.05, 0.025, 0.0125]
    assert model.optimizer.learning_rate == 0.0125
    assert capsys.readouterr().out == "".join(
        f"\nEpoch {epoch}: LearningRateScheduler setting learning rate to {rate}.\n"
        for epoch, rate in [(1, 0.05), (2, 0.025), (3, 0.0125)])


def test_learning_rate_scheduler_takes_a_schedule_of_the_epoch_alone():
    x, y = problem()
    scheduler = callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    history = tiny_model().fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[scheduler])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.1 / 3]


def test_learning_rate_scheduler_runs_keras_documented_example():
    import math

    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    x, y = problem()
    model = tiny_model(optimizers.SGD())
    assert round(model.optimizer.learning_rate, 5) == 0.01
    model.fit(x, y, epochs=15, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(scheduler)])
    assert round(model.optimizer.learning_rate, 5) == 0.00607


@pytest.mark.parametrize("rate", [1, "0.1", None, np.array([0.1])])
def test_learning_rate_scheduler_refuses_a_rate_that_is_not_a_float(rate):
    x, y = problem()
    model = tiny_model()
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: rate)])


def test_logs_added_by_callbacks_reach_history_and_later_callbacks(tmp_path):
    x, y = problem()
    path = tmp_path / "log.csv"
    ended = []

    class End(callbacks.Callback):
        def on_train_end(self, logs=None):
            ended.append(logs)

    history = tiny_model().fit(
        x, y, epochs=2, batch_size=10, validation_split=0.5, verbose=0,
        callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: 0.5 ** epoch),
                   callbacks.CSVLogger(path), End()])
    assert list(history.history) == ["loss", "val_loss", "learning_rate"]
    assert read_bytes(path).startswith("epoch,learning_rate,loss,val_loss\r\n0,1.0,")
    assert ended == [{key: values[-1] for key, values in history.history.items()}]


# ------------------------------------------------------------- progress output


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


FULL_BAR = r"3/3 \[={30}\]"
TIME_PER_STEP = r"\d+(s|ms|us)/step"
NUMBER = r"-?\d+\.\d{4}(e[-+]\d+)?"


def fit_output(monkeypatch, stream, verbose, epochs=2, **fit_kwargs):
    monkeypatch.setattr(sys, "stdout", stream)
    x, y = problem()
    tiny_model().fit(x, y, epochs=epochs, batch_size=8, verbose=verbose, **fit_kwargs)
    return stream.getvalue()


@pytest.mark.parametrize("verbose", [1, "auto", True])
def test_progress_off_a_terminal_is_one_plain_line_per_epoch(monkeypatch, verbose):
    text = fit_output(monkeypatch, io.StringIO(), verbose)
    lines = text.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    for line in lines[1], lines[3]:
        assert re.fullmatch(rf"{FULL_BAR} - \d+\.\ds {TIME_PER_STEP} - loss: {NUMBER}", line)
    assert "\r" not in text and "ETA" not in text


@pytest.mark.parametrize("verbose", [1, "auto"])
def test_progress_on_a_terminal_redraws_the_bar(monkeypatch, verbose):
    text = fit_output(monkeypatch, Terminal(), verbose, epochs=1)
    # One epoch: no "Epoch 1/1" heading, as in Keras.
    assert text.startswith("\r1/3 [==========>...................] - ETA: ")
    final = text.split("\r")[-1]
    assert text.endswith("\n")
    assert re.fullmatch(rf"{FULL_BAR} - \d+\.\ds {TIME_PER_STEP} - loss: {NUMBER} *\n", final)


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_verbose_2_writes_keras_short_line_per_epoch(monkeypatch, stream):
    text = fit_output(monkeypatch, stream(), 2, validation_split=0.4,
                      callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: 0.05)])
    lines = text.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    for line in lines[1], lines[3]:
        assert re.fullmatch(rf"2/2 - \d+s - {TIME_PER_STEP} - loss: {NUMBER} - "
                            rf"val_loss: {NUMBER} - learning_rate: 0\.0500", line)


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_verbose_0_writes_nothing(monkeypatch, stream):
    assert fit_output(monkeypatch, stream(), 0) == ""


@pytest.mark.parametrize("verbose", [3, -1, "yes", None, 1.5])
def test_an_unknown_verbose_is_refused_before_training(tmp_path, verbose):
    x, y = problem()
    path = tmp_path / "log.csv"
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        tiny_model().fit(x, y, verbose=verbose, callbacks=[callbacks.CSVLogger(path)])
    assert not path.exists()


def test_progress_numbers_take_keras_formats():
    bar = fastlstm.models._ProgressBar
    assert [bar._number(v) for v in [0.123456, -2.5, 1e-4, 0.0, float("nan"), "text"]] == [
        "0.1235", "-2.5000", "1.0000e-04", "0.0000e+00", "nan", "text"]
    assert [bar._per_step(s) for s in [2.4, 0.0123, 5e-5, 0.0]] == [
        "2s/step", "12ms/step", "50us/step", "0s/step"]


def test_only_a_stream_that_says_so_is_a_terminal(tmp_path):
    with open(tmp_path / "closed.txt", "w") as closed:
        pass
    is_terminal = fastlstm.models._ProgressBar.is_terminal
    assert is_terminal(Terminal()) and not is_terminal(io.StringIO())
    assert not is_terminal(closed) and not is_terminal(object())

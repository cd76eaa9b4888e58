"""Callbacks for Sequential.fit, as in Keras: hooks at the start and end of
training, of each epoch, with the epoch's logs (loss, val_loss, metrics), and
of each training batch, with the epoch's running averages so far."""
import csv
import inspect
import os

import numpy as np

from ._validation import refuse_unsupported

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
           "TerminateOnNaN", "CSVLogger", "LearningRateScheduler"]


class Callback:
    """Base class: subclass it and override the hooks you need.

    In a distributed fit (fastlstm.distributed) every process runs the
    callbacks with the same logs, except those whose ``first_process_only``
    is true (the ones that write files), which run in the first process
    alone.
    """

    first_process_only = False

    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch; runs ``on_batch_begin`` unless overridden."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch with the running averages of the
        epoch so far; runs ``on_batch_end`` unless overridden."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` etc."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """Compares the values of one logged quantity ("min" for losses and errors)."""

    def __init__(self, monitor, min_delta, mode):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.best = self._worst()

    def _worst(self):
        return np.inf if self.mode == "min" else -np.inf

    def _current(self, logs):
        if not logs or self.monitor not in logs:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which fit does not "
                           f"log; logged: {sorted(logs or {})} (val_* needs validation data)")
        return float(logs[self.monitor])

    def _is_improvement(self, value, reference):
        """Whether `value` beats `reference` by more than min_delta (any value
        beats None)."""
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def _improved(self, logs):
        current = self._current(logs)
        if self._is_improvement(current, self.best):
            self.best = current
            return True
        return False


class EarlyStopping(_Monitor):
    """Stop training when `monitor` has not improved for `patience` epochs.

    Parameters
    ----------
    monitor : str
        The logged quantity to watch.
    min_delta : float
        Smallest change that counts as an improvement.
    patience : int
        Epochs without improvement after which training stops.
    verbose : int
        1 prints the epoch training stopped at and the epoch whose weights
        are restored.
    mode : {"auto", "min", "max"}
        Whether the quantity should fall or rise ("auto": rise for
        accuracies, fall otherwise).
    baseline : float, optional
        Training stops after `patience` epochs unless the quantity beats
        this value (the best epoch is still the one restored).
    restore_best_weights : bool
        At the end of training, whether it stopped early or ran all its
        epochs, load the weights of the epoch with the best value (ties
        keep the earliest).
    start_from_epoch : int
        Epochs of warm-up before the quantity is watched.

    Attributes
    ----------
    best : float or None
        The best value watched.
    best_epoch : int
        The epoch (from 0) it came from.
    stopped_epoch : int
        The epoch training stopped at; 0 when it did not stop early.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, min_delta, mode)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self._keep_weights(epoch)
            # Patience starts over only for a value that also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _keep_weights(self, epoch):
        self.best_epoch = epoch
        if self.restore_best_weights:
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            # Copied in place: set_weights refuses non-finite values, which a
            # run that diverged before its first watched epoch keeps as best.
            for target, value in zip(self.model.weights, self.best_weights):
                np.copyto(target, value)


class ModelCheckpoint(_Monitor):
    """Save the model after every epoch, or only when `monitor` improves
    (Keras' ``keras.callbacks.ModelCheckpoint``).

    Parameters
    ----------
    filepath : str or path-like
        May hold ``{epoch}`` and any logged name (``{val_loss:.3f}``).
    monitor : str
    verbose : int
        1: a line per save, as Keras prints it.
    save_best_only : bool
    save_weights_only : bool
        Write ``model.save_weights`` files instead of whole models.
    mode : {"auto", "min", "max"}
    save_freq : "epoch"
        Only whole epochs are supported.
    initial_value_threshold : float, optional
        With save_best_only, a value the monitored quantity must beat first.
    """

    first_process_only = True

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None, **unsupported):
        refuse_unsupported("ModelCheckpoint", unsupported)
        super().__init__(monitor, 0.0, mode)
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: save_freq={save_freq!r} is not supported by "
                             "fastlstm; it saves at the end of epochs (save_freq='epoch')")
        self.filepath = filepath
        self.verbose = int(verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        # Kept across fit calls, as Keras keeps it: a later fit does not
        # overwrite a better checkpoint.
        self.best = (self._worst() if initial_value_threshold is None
                     else float(initial_value_threshold))

    def on_epoch_end(self, epoch, logs=None):
        path = str(self.filepath).format(epoch=epoch + 1, **(logs or {}))
        if self.save_best_only:
            previous = self.best
            if not self._improved(logs):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{previous:.5f}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous:.5f} to "
                      f"{self.best:.5f}, saving model to {path}")
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` after `patience` epochs without
    improvement (Keras' ``keras.callbacks.ReduceLROnPlateau``): never below
    `min_lr`, and after a reduction wait `cooldown` epochs before counting
    again. The logs gain ``learning_rate``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **unsupported):
        refuse_unsupported("ReduceLROnPlateau", unsupported)
        super().__init__(monitor, min_delta, mode)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.verbose, self.cooldown = int(verbose), int(cooldown)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = self._worst(), 0, 0

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = optimizer.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(logs):
            self.wait = 0
            return
        if self.cooldown_counter > 0:  # still cooling down after the decrement, as Keras
            return
        self.wait += 1
        if self.wait >= self.patience and optimizer.learning_rate > self.min_lr:
            optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{optimizer.learning_rate}.")
            self.cooldown_counter, self.wait = self.cooldown, 0


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch leaves the loss NaN or infinite.

    The epoch under way ends there: validation and ``on_epoch_end`` still
    run, with the averages of the batches trained.

    Parameters
    ----------
    raise_error : bool
        Raise a RuntimeError at once instead, so that no further hook
        (``on_epoch_end``, ``on_train_end``) runs.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                               f"Loss value: {loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file, in Keras' layout.

    The header is ``epoch`` and the first epoch's log names, sorted; without
    validation the ``val_`` names are added too and their cells hold
    ``NA``. Epochs count from 0 and rows end in ``\\r\\n``.

    Parameters
    ----------
    filename : str or path-like
    separator : str
        One character between cells.
    append : bool
        Add rows to an existing file (without repeating its header) instead
        of overwriting it.
    """

    first_process_only = True

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self.csv_file = None
        self._writer = None
        self._header = True

    def on_train_begin(self, logs=None):
        self._header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as existing:
                self._header = not existing.readline()
        self._close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys, self._writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self.keys = self._columns(logs)
            self._writer = csv.writer(self.csv_file, delimiter=self.sep)
            if self._header:
                self._writer.writerow(["epoch"] + self.keys)
        self._writer.writerow([epoch] + [_csv_cell(logs.get(key, "NA")) for key in self.keys])
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()

    @staticmethod
    def _columns(logs):
        keys = sorted(logs)
        if keys and not any(key.startswith("val_") for key in keys):
            keys += [f"val_{key}" for key in keys]
        return keys

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self._writer = None


def _csv_cell(value):
    """A log value as Keras writes it: numbers as Python floats (full
    precision), lists and arrays as a quoted ``[a, b]``."""
    if isinstance(value, str):
        return value
    if np.ndim(value) == 0:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return f'"[{", ".join(map(str, value))}]"'


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate before each epoch from a schedule.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr)`` (or ``schedule(epoch)``) returns the
        learning rate, a float, for `epoch` (from 0) given the current one.
    verbose : int
        1 prints each rate it sets.

    Each epoch's logs also get ``learning_rate``.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        rate = self._scheduled(epoch, float(optimizer.learning_rate))
        if not isinstance(rate, (float, np.floating)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {rate!r}")
        optimizer.learning_rate = float(rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(rate)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)

    def _scheduled(self, epoch, rate):
        if _accepts(self.schedule, epoch, rate):
            return self.schedule(epoch, rate)
        return self.schedule(epoch)


def _accepts(function, *args):
    """Whether `function` can be called with `args`; True when Python cannot tell."""
    try:
        inspect.signature(function).bind(*args)
    except TypeError:
        return False
    except ValueError:
        return True
    return True

"""Callbacks for Sequential.fit, as in Keras: hooks at the start and end of
training, of each epoch, with the epoch's logs (loss, val_loss, metrics), and
of each training batch, with the epoch's running averages so far."""
import numpy as np

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
           "TerminateOnNaN"]


class Callback:
    """Base class: subclass it and override the hooks you need."""

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
    """Tracks the best value of one logged quantity ("min" for losses and errors)."""

    def __init__(self, monitor, min_delta, mode):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = np.inf

    def _current(self, logs):
        if not logs or self.monitor not in logs:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which fit does not "
                           f"log; logged: {sorted(logs or {})} (val_* needs validation data)")
        return self.sign * float(logs[self.monitor])

    def _improved(self, logs):
        current = self._current(logs)
        if current < self.best - self.min_delta:
            self.best = current
            return True
        return False


class EarlyStopping(_Monitor):
    """Stop training when `monitor` has not improved for `patience` epochs."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        super().__init__(monitor, min_delta, mode)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.best_weights, self.stopped_epoch = np.inf, 0, None, None

    def on_epoch_end(self, epoch, logs=None):
        if self._improved(logs):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model after every epoch, or only when `monitor` improves."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__(monitor, 0.0, mode)
        self.filepath = filepath
        self.save_best_only = bool(save_best_only)

    def on_train_begin(self, logs=None):
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        if not self.save_best_only or self._improved(logs):
            self.model.save(str(self.filepath).format(epoch=epoch + 1, **(logs or {})))


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4,
                 min_lr=0.0, mode="auto"):
        super().__init__(monitor, min_delta, mode)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)

    def on_train_begin(self, logs=None):
        self.best, self.wait = np.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        if self._improved(logs):
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            optimizer = self.model.optimizer
            optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            self.wait = 0


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

"""Sequential: a stack of layers with Keras' compile / fit / predict workflow.

Training runs each LSTM's forward and backward through the compiled kernels;
everything else (Dense, Dropout, losses, optimizer steps) is vectorized
NumPy. No Python loop runs over time steps.
"""
import sys
import time

import numpy as np

from . import _sample_blocks, layers as layers_module
from . import losses, metrics as metrics_module, optimizers, serialization
from ._random import generator
from ._validation import checked_int, refuse_unsupported
from .callbacks import Callback, History
from .saving import load_model, load_weights, save_model, save_weights

__all__ = ["Sequential", "load_model"]

class _ProgressBar:
    """One epoch's progress, at Keras' verbose levels.

    verbose=1 redraws a bar after each step when `live` (on a terminal) and
    closes it with the time and the logs; verbose=2 writes only Keras' short
    closing line. Off a terminal every epoch is thus one plain line, readable
    in log files and CI output.
    """

    def __init__(self, steps, stream=None, width=30, verbose=1, live=True, interval=0.05):
        self.steps, self.width, self.verbose = steps, width, verbose
        self.live = live and verbose == 1
        self.interval = interval
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self._drawn_at = None
        self._last_length = 0

    @staticmethod
    def level(verbose):
        """fit's `verbose` as 0, 1 or 2; "auto" is 1, as in Keras."""
        if isinstance(verbose, str):
            if verbose == "auto":
                return 1
        elif verbose in (0, 1, 2):
            return int(verbose)
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")

    @staticmethod
    def is_terminal(stream):
        try:
            return bool(stream.isatty())
        except (AttributeError, OSError, ValueError):  # no isatty, or a closed stream
            return False

    def _write(self, line, end=""):
        if self.live:
            padding = " " * max(0, self._last_length - len(line))  # blank a longer previous line
            self._last_length = len(line)
            line = "\r" + line + padding
        self.stream.write(line + end)
        self.stream.flush()

    def _bar(self, step):
        done = int(self.width * step / self.steps)
        arrow = ">" if done < self.width else ""
        return f"{step}/{self.steps} [" + "=" * done + arrow + "." * (self.width - done - len(arrow)) + "]"

    @staticmethod
    def _logs(logs):
        return "".join(f" - {k}: {_ProgressBar._number(v)}" for k, v in logs.items())

    @staticmethod
    def _number(value):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
        return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"

    @staticmethod
    def _per_step(seconds):
        if seconds >= 1 or seconds == 0:
            return f"{seconds:.0f}s/step"
        if seconds >= 1e-3:
            return f"{seconds * 1e3:.0f}ms/step"
        return f"{seconds * 1e6:.0f}us/step"

    def update(self, step, logs):
        """Redraw the bar after `step` steps (live bars only, at most once per interval)."""
        tick = time.perf_counter()
        if not self.live or (self._drawn_at is not None and tick - self._drawn_at < self.interval):
            return
        self._drawn_at = tick
        eta = (tick - self.start) / step * (self.steps - step)
        self._write(f"{self._bar(step)} - ETA: {eta:.0f}s{self._logs(logs)}")

    def finish(self, logs):
        """End the epoch's line with its time and logs."""
        elapsed = time.perf_counter() - self.start
        per_step = self._per_step(elapsed / max(self.steps, 1))
        if self.verbose == 2:
            line = f"{self.steps}/{self.steps} - {elapsed:.0f}s - {per_step}"
        else:
            line = f"{self._bar(self.steps)} - {elapsed:.1f}s {per_step}"
        self._write(line + self._logs(logs), end="\n")


class _Totals:
    """The loss and metrics of an epoch (or an evaluation) over its batches,
    combined as Keras combines them: the loss as the mean of the batches'
    losses weighted by their sample counts; each metric over all the
    values (of unmasked steps) it counted, RMSE as the root of that mean
    squared error."""

    def __init__(self, loss, metric_names):
        self.loss, self.names = loss, list(metric_names)
        self.loss_sum, self.samples = 0.0, 0
        self.sums = dict.fromkeys(self.names, 0.0)
        self.counts = dict.fromkeys(self.names, 0)

    def add(self, y, output, mask, sample_weight):
        """One batch's targets (y), outputs, mask (or None) and sample weights (or None)."""
        self.loss_sum += self.loss(y, output, sample_weight, mask=mask) * len(y)
        self.samples += len(y)
        counted = y.size if mask is None else int(mask.sum()) * y.shape[-1]
        for name in self.names:
            measure = metrics_module.get("mse" if name == "rmse" else name)
            self.sums[name] += measure(y, output, mask) * counted
            self.counts[name] += counted

    def logs(self, prefix=""):
        logs = {prefix + "loss": self.loss_sum / max(self.samples, 1)}
        for name in self.names:
            mean = self.sums[name] / self.counts[name] if self.counts[name] else 0.0
            logs[prefix + name] = float(np.sqrt(mean)) if name == "rmse" else mean
        return logs


class Sequential:
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
        May start with ``fastlstm.Input(shape)``, the samples' shape.
    name : str
    """

    def __init__(self, layers=None, name="sequential", **unsupported):
        refuse_unsupported("Sequential", unsupported)
        self.name = name
        self._declared_shape = None
        self.layers = []
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.input_shape = None
        self.output_shape = None
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------ structure

    def add(self, layer):
        """Append a layer (or, first, a ``fastlstm.Input`` giving the samples' shape)."""
        if isinstance(layer, layers_module.Input):
            if self.layers or self._declared_shape is not None:
                raise ValueError("an Input comes first in a Sequential, and only once")
            self._declared_shape = layer.shape
            return
        if not isinstance(layer, layers_module.Layer):
            raise TypeError(f"expected a fastlstm layer, got {type(layer).__name__}")
        if layer.return_state:
            raise ValueError(f"{layer.name}: return_state=True returns several outputs; "
                             "Sequential passes only one on: use the layer on its own for its "
                             "states")
        if getattr(layer, "merge_mode", "") is None:
            raise ValueError(f"{layer.name}: merge_mode=None returns both directions' "
                             "outputs; Sequential passes only one on")
        if self.built:
            raise RuntimeError("cannot add layers to a model that is already built")
        taken = {existing.name for existing in self.layers}
        base, k = layer.name, 0
        while layer.name in taken:  # lstm, lstm_1, lstm_2 ... as Keras names them
            k += 1
            layer.name = f"{base}_{k}"
        self.layers.append(layer)

    @property
    def built(self):
        return self.input_shape is not None

    def build(self, input_shape=None):
        """Create all weights for samples of `input_shape` (no batch axis);
        defaults to the first layer's ``input_shape``."""
        if not self.layers:
            raise ValueError("the model has no layers: add some first")
        shape = input_shape if input_shape is not None else self._declared_input_shape()
        if shape is None:
            raise ValueError("the model does not know its input shape yet: pass input_shape to "
                             "the first layer, call build(input_shape), or fit/predict on data")
        input_shape = shape = layers_module.checked_sample_shape(shape)
        for layer in self.layers:
            shape = layer.build(shape)
        self.input_shape, self.output_shape = input_shape, tuple(shape)

    def _declared_input_shape(self):
        """The samples' shape an Input or the first layer's input_shape declares (or None)."""
        if self._declared_shape is not None:
            return self._declared_shape
        return self.layers[0].input_shape if self.layers else None

    def __call__(self, x, training=False, **unsupported):
        """The model's output for x (a batch), as ``predict`` computes it in
        one batch; with ``training``, as in a training pass (Dropout drops)."""
        refuse_unsupported("calling a model", unsupported)
        self._require_built("calling the model")
        return self._forward(self._check_x(x), training)

    def save_weights(self, path, **unsupported):
        """Write the weights alone to `path` (fastlstm's weights file, read
        without unpickling by ``load_weights``)."""
        refuse_unsupported("save_weights", unsupported)
        self._require_built("save_weights")
        save_weights(self, path)

    def load_weights(self, path, **unsupported):
        """Read weights ``save_weights`` wrote, into this model of the same
        architecture; every count, shape and value is checked first."""
        refuse_unsupported("load_weights", unsupported)
        self._require_built("load_weights")
        load_weights(self, path)

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self):
        """Copies of all weights, layer by layer, in Keras' order and layouts
        (none before the model is built)."""
        self._build_if_declared()
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Load weights as returned by get_weights (or by Keras' model.get_weights())."""
        self._require_built("set_weights")
        current = self.weights
        if isinstance(weights, np.ndarray) or not hasattr(weights, "__len__"):
            raise TypeError(f"weights must be a list of {len(current)} arrays, "
                            f"got {type(weights).__name__}")
        if len(weights) != len(current):
            raise ValueError(f"expected {len(current)} arrays, got {len(weights)}")
        for i, (target, value) in enumerate(zip(current, weights)):
            value = np.asarray(value)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"weight {i} must be a real numeric array, got dtype {value.dtype}")
            if value.shape != target.shape:
                raise ValueError(f"weight {i} must have shape {target.shape}, got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"weight {i} contains NaN or infinity")
        for target, value in zip(current, weights):
            np.copyto(target, np.asarray(value, dtype=np.float32))

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print, **unsupported):
        """Print each layer's type, output shape and parameter count."""
        refuse_unsupported("summary", unsupported)
        self._require_built("summary")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            shape = (None,) + layer.compute_output_shape(layer.input_shape)
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape),
                         f"{layer.count_params():,}"))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "-" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        for k, row in enumerate(rows):
            print_fn("".join(cell.ljust(w) for cell, w in zip(row, widths)))
            print_fn("=" * sum(widths) if k == 0 else line)
        print_fn(f"Total params: {self.count_params():,}")

    def _build_if_declared(self):
        """Build from the first layer's declared input_shape, as Keras builds
        such a model as it is assembled; False when nothing declares one."""
        if not self.built and self.layers and self._declared_input_shape() is not None:
            self.build()
        return self.built

    def _require_built(self, what):
        if not self._build_if_declared():
            raise RuntimeError(f"{what}: the model is not built yet; give the first layer an "
                               "input_shape, call build(), or fit on data first")

    # -------------------------------------------------------------- training

    def compile(self, optimizer="rmsprop", loss="mse", metrics=None, **unsupported):
        """Choose the optimizer (name or object), the loss and extra metrics."""
        refuse_unsupported("compile", unsupported)
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        if isinstance(metrics, str):
            metrics = [metrics]
        self.metrics = [metrics_module.canonical_name(m) for m in (metrics or [])]

    def _check_x(self, x, whole=True):
        """x as float32, checked against the model's input shape (which it
        builds the model for, if need be) and for NaN and infinity. With
        whole=False (a distributed fit, where each process reads only the
        rows it trains on) x is checked for its type and shape only, and
        comes back as it is; _rows_of reads and checks its rows."""
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"x must be numeric, got dtype {array.dtype}")
        if whole:
            array = array.astype(np.float32, copy=False)
        if not self._build_if_declared():
            self.build(array.shape[1:])
        expected = self.input_shape
        if array.ndim != 1 + len(expected) or any(
                e is not None and e != g for e, g in zip(expected, array.shape[1:])):
            raise ValueError(self._shape_mismatch(array.shape))
        if whole and not np.isfinite(array).all():
            raise ValueError("x contains NaN or infinity")
        return array

    @staticmethod
    def _rows_of(x, rows):
        """x[rows] as float32, for x that _check_x(x, whole=False) passed."""
        array = np.asarray(x[rows], dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError("x contains NaN or infinity")
        return array

    def _shape_mismatch(self, shape):
        """The message for x of `shape` that the model's input shape refuses."""
        expected = self.input_shape
        text = ", ".join("None" if d is None else str(d) for d in expected)
        message = f"x must have shape (samples, {text}), got {shape}"
        if len(shape) == 3 and len(expected) == 2 and expected[0] is not None \
                and shape[2] == expected[1] and shape[1] != expected[0]:
            message += (f": the model was built for sequences of {expected[0]} steps, not "
                        f"{shape[1]}; declare input_shape=(None, {expected[1]}) to take any "
                        "length")
        return message

    def _output_shape_for(self, x):
        """The output's sample shape for checked x: the model's output shape
        with any length it left open (None) taken from x."""
        shape = tuple(x.shape[1:])
        for layer in self.layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def _check_y(self, y, n, x=None):
        array = np.asarray(y)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"y must be numeric, got dtype {array.dtype}")
        if len(array) != n:
            raise ValueError(f"x has {n} samples but y has {len(array)}")
        output_shape = self.output_shape if x is None else self._output_shape_for(x)
        per_sample = int(np.prod(output_shape))
        if array.size != n * per_sample:
            raise ValueError(f"y has shape {array.shape}; the model outputs "
                             f"{(n,) + output_shape}")
        array = array.astype(np.float32).reshape((n,) + output_shape)
        if not np.isfinite(array).all():
            raise ValueError("y contains NaN or infinity")
        return array

    def _forward(self, x, training):
        return self._forward_with_mask(x, training)[0]

    def _forward_with_mask(self, x, training):
        """Run the layers, passing each the mask the layers before it made
        (see fastlstm.layers); returns the output and the mask it still
        carries (None when none), which the loss and metrics then apply."""
        mask = None
        for layer in self.layers:
            output = (layer.forward(x, training, mask=mask) if mask is not None and layer.takes_mask
                      else layer.forward(x, training))
            mask = layer.compute_mask(x, mask)
            x = output
        return x, mask

    def stream(self, batch_size=1):
        """A Stream that runs this model one time step per call (see
        fastlstm.streaming.Stream): for a sensor, a market feed, an online
        forecaster. It holds its own copy of the weights."""
        from .streaming import Stream
        return Stream(self, batch_size)

    def _stateful_layers(self):
        return [layer for layer in self.layers if getattr(layer, "stateful", False)]

    @staticmethod
    def _check_whole_batches(what, n, batch_size):
        if n % batch_size:
            raise ValueError(f"a stateful model runs whole batches of one size: {what} has "
                             f"{n} samples, not a multiple of batch_size={batch_size}")

    def reset_states(self):
        """Start every stateful layer from zero states again."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    def _largest_layer_bytes(self):
        """The bytes of the largest weights whose gradients one kernel call
        sums: a layer's, or one direction's of a Bidirectional."""
        return max((sum(w.nbytes for w in part.weights)
                    for layer in self.layers
                    for part in getattr(layer, "_directions", None) or [layer]), default=0)

    def _train_step(self, x, y, sample_weight=None, blocks=None, runner=None):
        """One optimizer step on the batch (x, y); returns its output and mask.

        With `blocks` (a _sample_blocks.StepBlocks), x holds this process'
        rows of the batch and y (and sample_weight) the whole batch's; the
        layers sum their weight gradients block by block, and `runner`
        gathers the whole batch's output and combines the gradients (see
        _sample_blocks.OneProcess).
        """
        with _sample_blocks.active(blocks):
            output, mask = self._forward_with_mask(x, training=True)
            if blocks is not None:
                output, mask = runner.gather(output, mask, blocks)
            grad = self.loss.gradient(y, output, sample_weight, mask=mask)
            if blocks is not None:
                grad = grad[blocks.rows]
            for layer in reversed(self.layers[1:]):
                grad = layer.backward(grad)
            self.layers[0].backward_weights(grad)
        weights = [w for layer in self.layers for w in layer.weights]
        grads = [g for layer in self.layers for g in layer.grads]
        if blocks is not None:
            grads = runner.combine(grads, blocks)
        self.optimizer.apply(weights, grads)
        return output, mask

    def fit(self, x, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
            shuffle=True, callbacks=None, verbose="auto", sample_weight=None, initial_epoch=0,
            distributed=None, **unsupported):
        """Train for `epochs` passes over (x, y).

        ``validation_split`` takes the last fraction of the samples (and of
        ``sample_weight``), before shuffling, as Keras does;
        ``validation_data`` is ``(x_val, y_val)`` or ``(x_val, y_val,
        weights)``. ``sample_weight`` (samples,), or (samples, steps) for a
        sequence output, weighs each sample's loss (Keras' semantics; the
        metrics stay unweighted). Training runs epochs ``initial_epoch`` to
        ``epochs - 1``. Returns a History whose ``history`` dict holds each
        epoch's loss, metrics and (with validation) val_ ones.

        Each batch's weight gradients are summed over fixed blocks of its
        samples, added in order (see fastlstm._sample_blocks): the weights
        after fit are bitwise the same for any thread count, and for any
        number of processes of ``distributed``.

        ``distributed``: a ``fastlstm.distributed.DataParallel()``, to train
        one model in several MPI processes (``mpiexec -n N python
        train.py``), each given the same arguments and computing a share of
        every batch; the weights come out as a one-process fit's.
        """
        refuse_unsupported("fit", unsupported)
        runner = _sample_blocks.OneProcess() if distributed is None else distributed
        if not hasattr(runner, "step_blocks"):
            raise TypeError(f"distributed must be a fastlstm.distributed.DataParallel, got "
                            f"{type(distributed).__name__}")
        with runner.running():
            return self._fit(x, y, epochs, batch_size, validation_split, validation_data,
                             shuffle, callbacks, verbose, sample_weight, initial_epoch, runner)

    def _fit(self, x, y, epochs, batch_size, validation_split, validation_data, shuffle,
             callbacks, verbose, sample_weight, initial_epoch, runner):
        """fit, run by `runner` (_sample_blocks.OneProcess or DataParallel)."""
        if self.optimizer is None:
            raise RuntimeError("call compile(optimizer, loss) before fit")
        checked_int("epochs", epochs, 0)
        checked_int("initial_epoch", initial_epoch, 0, epochs)
        checked_int("batch_size", batch_size, 1)
        whole = runner.size == 1
        x = self._check_x(x, whole=whole)
        y = self._check_y(y, len(x), x)
        sample_weight = self._check_sample_weight("sample_weight", sample_weight, y)
        if len(x) == 0:
            raise ValueError("x has no samples: fit needs at least one")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        w_val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or "
                                 "(x_val, y_val, sample_weight)")
            x_val, y_val, *w_val = validation_data
            x_val = self._check_x(x_val, whole=whole or runner.rank == 0)
            y_val = self._check_y(y_val, len(x_val), x_val)
            w_val = self._check_sample_weight("validation sample_weight",
                                              w_val[0] if w_val else None, y_val)
        elif validation_split:
            split = int(len(x) * (1.0 - validation_split))
            if split == 0 or split == len(x):
                raise ValueError(f"validation_split={validation_split} leaves an empty "
                                 f"training or validation set of {len(x)} samples")
            x, x_val, y, y_val = x[:split], x[split:], y[:split], y[split:]
            if sample_weight is not None:
                sample_weight, w_val = sample_weight[:split], sample_weight[split:]
        else:
            x_val = y_val = None
        stateful = self._stateful_layers()
        if stateful:
            if runner.size > 1:
                raise ValueError(f"{stateful[0].name}: a stateful layer carries states from "
                                 "batch to batch, which a distributed fit cannot split "
                                 "between processes; train it in one process")
            self._check_whole_batches("x", len(x), batch_size)
            if x_val is not None:
                self._check_whole_batches("the validation data", len(x_val), batch_size)

        verbose, live = _ProgressBar.level(verbose), _ProgressBar.is_terminal(sys.stdout)
        if runner.rank != 0:
            verbose = 0  # one progress bar, the first process'
        history = History()
        hooks = list(callbacks or []) + [history]  # History last sees the logs callbacks add
        for hook in hooks:  # every one checked before any starts (a CSVLogger opens its file)
            if not isinstance(hook, Callback):
                raise TypeError(f"callbacks must be fastlstm Callback objects, got {type(hook).__name__}")
        if runner.rank != 0:  # files are written by the first process alone
            hooks = [hook for hook in hooks if not hook.first_process_only]
        runner.check_data(x, y, sample_weight)
        runner.begin(self)
        for hook in hooks:
            hook.set_model(self)
            hook.on_train_begin({})
        self.stop_training = False
        n, steps = len(x), -(-len(x) // batch_size)
        weight_bytes = self._largest_layer_bytes()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            for hook in hooks:
                hook.on_epoch_begin(epoch, {})
            if verbose:
                if epochs > 1:  # Keras heads an epoch's line only when there are several
                    print(f"Epoch {epoch + 1}/{epochs}")
                bar = _ProgressBar(steps, verbose=verbose, live=live)
            order = generator().permutation(n) if shuffle else np.arange(n)
            totals = _Totals(self.loss, self.metrics)
            for step in range(steps):
                for hook in hooks:
                    hook.on_train_batch_begin(step, {})
                batch = order[step * batch_size:(step + 1) * batch_size]
                y_batch = y[batch]
                w_batch = None if sample_weight is None else sample_weight[batch]
                blocks = runner.step_blocks(_sample_blocks.sample_blocks(
                    len(batch), steps=x.shape[1] if x.ndim > 2 else 1,
                    weight_bytes=weight_bytes))
                x_batch = (x[batch[blocks.rows]] if runner.size == 1
                           else self._rows_of(x, batch[blocks.rows]))
                output, mask = self._train_step(x_batch, y_batch, w_batch, blocks, runner)
                totals.add(y_batch, output, mask, w_batch)
                batch_logs = totals.logs()
                for hook in hooks:
                    hook.on_train_batch_end(step, batch_logs)
                if verbose:
                    bar.update(step + 1, batch_logs)
                if self.stop_training:  # the epoch ends on the batches trained, as in Keras
                    break
            logs = totals.logs()
            if x_val is not None and stateful:
                # Validation runs on its own states; training goes on from its own.
                kept = [layer.states for layer in stateful]
                for layer in stateful:
                    layer.reset_states()
                logs.update(self._evaluate_logs(x_val, y_val, prefix="val_",
                                                batch_size=batch_size, sample_weight=w_val))
                for layer, states in zip(stateful, kept):
                    layer.reset_states(states)
            elif x_val is not None:
                logs.update(runner.validation_logs(
                    lambda: self._evaluate_logs(x_val, y_val, prefix="val_",
                                                sample_weight=w_val)))
            for hook in hooks:
                hook.on_epoch_end(epoch, logs)
            if verbose:  # after the callbacks, with the logs they add, as Keras' progress bar
                bar.finish(logs)
            if self.stop_training:
                break
        for hook in hooks:
            hook.on_train_end(logs)
        return history

    # ------------------------------------------------------------ inference

    def predict(self, x, batch_size=None, verbose=0, **unsupported):
        """Model outputs for x, in batches of `batch_size` (default 256).

        `verbose` is accepted for Keras compatibility; predict prints nothing.
        """
        refuse_unsupported("predict", unsupported)
        self._require_built("predict")
        x = self._check_x(x)
        batch_size = 256 if batch_size is None else checked_int("batch_size", batch_size, 1)
        outputs = [self._forward(x[i:i + batch_size], training=False)
                   for i in range(0, len(x), batch_size)]
        if not outputs:
            return np.empty((0,) + self._output_shape_for(x), np.float32)
        return np.concatenate(outputs)

    def _check_sample_weight(self, name, weights, y):
        """`weights` as float64 of shape (samples,) or y's shape without its
        last axis, finite and >= 0, or None."""
        if weights is None:
            return None
        array = np.asarray(weights)
        allowed = {(len(y),), y.shape[:-1]}
        if array.dtype.kind not in "biuf" or array.shape not in allowed:
            raise ValueError(f"{name} must be a real array of shape ({len(y)},) or "
                             f"{y.shape[:-1]}, got {array.dtype} {array.shape}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all() or (array < 0).any():
            raise ValueError(f"{name} must be finite and >= 0")
        return array

    def _evaluate_logs(self, x, y, prefix="", batch_size=None, sample_weight=None):
        """The loss and metrics on checked (x, y), batch by batch (Keras'
        default of 32 rows) and combined as fit combines them (see _Totals)."""
        batch_size = 32 if batch_size is None else batch_size
        totals = _Totals(self.loss, self.metrics)
        for i in range(0, len(x), batch_size):
            rows = slice(i, i + batch_size)
            output, mask = self._forward_with_mask(x[rows], training=False)
            totals.add(y[rows], output, mask, None if sample_weight is None else sample_weight[rows])
        return totals.logs(prefix)


    def evaluate(self, x, y, batch_size=None, verbose=0, sample_weight=None, **unsupported):
        """The loss on (x, y), or [loss, *metrics] when metrics were compiled;
        ``sample_weight`` weighs the loss as in ``fit``.

        `verbose` is accepted for Keras compatibility; evaluate prints nothing.
        """
        refuse_unsupported("evaluate", unsupported)
        if self.loss is None:
            raise RuntimeError("call compile(optimizer, loss) before evaluate")
        self._require_built("evaluate")
        x = self._check_x(x)
        y = self._check_y(y, len(x), x)
        sample_weight = self._check_sample_weight("sample_weight", sample_weight, y)
        logs = self._evaluate_logs(x, y, batch_size=batch_size, sample_weight=sample_weight)
        return logs["loss"] if not self.metrics else list(logs.values())

    # ---------------------------------------------------------- persistence

    def get_config(self):
        """The architecture: name, input shape and each layer's class and config."""
        self._require_built("get_config")
        return {"name": self.name, "input_shape": list(self.input_shape),
                "layers": [serialization.serialize(layer) for layer in self.layers]}

    def save(self, path, metadata=None, **unsupported):
        """Save architecture, weights and the compile settings to one file.

        The format (an .npz read back without unpickling) is described in
        fastlstm.saving; `metadata` is any JSON you pass (e.g. a scaler's
        parameters) and comes back as ``load_model(path).metadata``.
        """
        refuse_unsupported("save", unsupported)
        self._require_built("save")
        save_model(self, path, metadata)

"""Step-by-step inference: a model fed one time step at a time.

``Sequential.stream(batch_size)`` returns a ``Stream``: each ``step(x_t)``
runs one step through every layer and returns what ``predict`` would return
for the sequence seen so far (for a forecasting network, the next value).
The recurrent layers keep their states between steps in compiled steppers
(fastlstm._recurrent.Stepper) whose weights were copied and packed once,
when the stream was made.
"""
import threading

import numpy as np

from . import _checks, _recurrent, _teams
from ._threads import get_num_threads
from ._validation import checked_int
from .layers import Dense, Dropout, Recurrent, TimeDistributed, dense_into

__all__ = ["Stream"]


class Stream:
    """A model's layers run one time step per call, their states kept.

    Parameters
    ----------
    model : Sequential
        A built model of LSTM, GRU and SimpleRNN layers (not go_backwards),
        Dense and Dropout layers (Dropout passes steps through, as at
        inference).
    batch_size : int
        The rows of every step: independent sequences stepped together.

    Notes
    -----
    The stream holds its own copy of the weights: training or changing the
    model afterwards does not change a running stream (make a new one).
    Stepping a sequence gives bitwise the outputs ``predict`` gives for the
    whole sequence, for the same thread count and SIMD level, when the model
    outputs one value per sequence (its last recurrent layer returns the
    last state). A Dense layer over every step of a sequence computes a
    product of another shape in ``predict``, so there the two agree to
    float32 rounding.

    A step allocates nothing but the array it returns (none with ``out``)
    and checks the step's input, not the weights. One stream serves one
    thread at a time: a step while another thread is stepping raises
    RuntimeError. Make one stream per thread. A step stopped midway (an
    exception such as KeyboardInterrupt inside a layer) leaves the layers
    before it one step ahead of the rest: ``reset()`` or set ``states``
    before stepping again.
    """

    def __init__(self, model, batch_size=1):
        model._require_built("stream")
        self.batch_size = checked_int("batch_size", batch_size, 1)
        self.features = model.input_shape[-1]
        self._inputs = np.zeros((self.batch_size, self.features), np.float32)
        self._steppers = []
        self._layers = []  # callables taking the thread count, one per layer
        max_threads = get_num_threads()
        buffer = self._inputs
        for layer in model.layers:
            if isinstance(layer, Recurrent):
                buffer = self._add_recurrent(layer, buffer, max_threads)
            elif isinstance(layer, Dense):
                buffer = self._add_dense(layer, buffer)
            elif isinstance(layer, TimeDistributed) and isinstance(layer.layer, Dense):
                buffer = self._add_dense(layer.layer, buffer)  # one step: a Dense
            elif not isinstance(layer, Dropout):
                raise ValueError(f"{layer.name}: a stream runs LSTM, GRU, SimpleRNN, Dense and "
                                 f"Dropout layers, not {type(layer).__name__}")
        self._output = buffer
        self._steppers_check_inputs = bool(self._steppers) and \
            isinstance(model.layers[0], Recurrent)
        self._lock = threading.Lock()

    def _add_recurrent(self, layer, inputs, max_threads):
        if layer.go_backwards:
            raise ValueError(f"{layer.name}: a go_backwards layer needs the whole sequence "
                             "before its first output; it cannot be streamed")
        weights = layer._named_weights()
        stepper = _recurrent.Stepper(_recurrent.CELLS[layer.cell_name()], weights["kernel"],
                                     weights["recurrent_kernel"], weights["bias"],
                                     weights.get("peephole"), inputs, max_threads,
                                     check_inputs=inputs is self._inputs)
        self._steppers.append(stepper)

        def run_step(n_threads):
            team = stepper.team(n_threads)
            if team == 1:  # no OpenMP team: nothing for fastlstm._teams to watch
                stepper.step(1)
            else:
                _teams.run(stepper.step, n_threads=team)

        self._layers.append(run_step)
        return stepper.output

    def _add_dense(self, layer, inputs):
        kernel, bias = (w.copy() for w in layer._kernel_and_bias())
        out = np.empty((self.batch_size, layer.units), np.float32)
        activation = layer.activation
        self._layers.append(lambda n_threads: dense_into(inputs, kernel, bias, activation, out))
        return out

    def step(self, x_t, out=None):
        """Feed one time step; returns the model's output for the sequences so far.

        Parameters
        ----------
        x_t : array_like of shape (batch_size, features)
        out : ndarray of float32, optional
            Where to write the output (shaped like it); a new array otherwise.

        Returns
        -------
        ndarray of shape (batch_size, outputs), float32
        """
        x_t = np.asarray(x_t)
        if x_t.shape != self._inputs.shape or x_t.dtype.kind not in "biuf":
            raise ValueError(f"x_t must be a real array of shape (batch_size, features) = "
                             f"{self._inputs.shape}, got {x_t.dtype} {x_t.shape}")
        if out is not None and (not isinstance(out, np.ndarray) or out.shape !=
                                self._output.shape or out.dtype != np.float32):
            raise ValueError(f"out must be a float32 array of shape {self._output.shape}, got "
                             f"{getattr(out, 'dtype', type(out).__name__)} "
                             f"{getattr(out, 'shape', '')}")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this stream is being stepped by another thread; make one "
                               "stream per thread")
        try:
            np.copyto(self._inputs, x_t, casting="unsafe")
            # The first recurrent layer checks its inputs itself.
            if not self._steppers_check_inputs and \
                    not _checks.all_finite(self._inputs.reshape(-1)):
                raise ValueError("x_t contains NaN or infinity")
            n_threads = _teams.team_size(get_num_threads())
            for run_layer in self._layers:
                run_layer(n_threads)
            if out is None:
                return self._output.copy()
            np.copyto(out, self._output)
            return out
        finally:
            self._lock.release()

    def reset(self):
        """Start again from zero states."""
        with self._lock:
            for stepper in self._steppers:
                for state in stepper.states:
                    state.fill(0)

    @property
    def states(self):
        """Copies of each recurrent layer's states, in layer order: [h] or
        [h, c] per layer, each (batch_size, units)."""
        with self._lock:
            return [[state.copy() for state in stepper.states] for stepper in self._steppers]

    @states.setter
    def states(self, values):
        values = list(values)
        if len(values) != len(self._steppers):
            raise ValueError(f"states: expected one list per recurrent layer "
                             f"({len(self._steppers)}), got {len(values)}")
        checked = []
        for k, (stepper, layer_states) in enumerate(zip(self._steppers, values)):
            targets = stepper.states
            layer_states = list(layer_states)
            if len(layer_states) != len(targets):
                raise ValueError(f"states[{k}]: expected {len(targets)} arrays, "
                                 f"got {len(layer_states)}")
            for target, value in zip(targets, layer_states):
                value = np.asarray(value)
                if value.shape != target.shape or value.dtype.kind not in "biuf":
                    raise ValueError(f"states[{k}]: each state must be a real array of shape "
                                     f"{target.shape}, got {value.dtype} {value.shape}")
                with np.errstate(over="ignore"):  # too large for float32: inf, refused below
                    value = value.astype(np.float32)
                if not np.isfinite(value).all():
                    raise ValueError(f"states[{k}]: a state holds NaN or infinity (in float32)")
                checked.append((target, value))
        with self._lock:
            for target, value in checked:
                np.copyto(target, value)

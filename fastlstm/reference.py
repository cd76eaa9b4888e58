"""Pure-NumPy recurrent cells, written to be read: the oracle for every kernel.

One loop over time, the textbook equations, nothing fused. Weights are in
Keras' layouts, so Keras weights load unchanged: ``kernel`` (features,
n_gates * units) and ``recurrent_kernel`` (units, n_gates * units) hold one
block of columns per gate.

LSTM
----
For each step t, with the pre-activations of the four gates in Keras' order
i, f, g (the cell candidate, Keras' "c"), o::

    z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias   # (batch, 4 * units)
    i = sigmoid(z_i)        input gate
    f = sigmoid(z_f)        forget gate
    g = tanh(z_g)           cell candidate
    o = sigmoid(z_o)        output gate
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Backward (BPTT) walks the same steps in reverse. Given dh_t (from the output
y_t plus the next step's recurrence) and dc_t (from the next step)::

    dc_t += dh_t * o * (1 - tanh(c_t)**2)
    dz_i = dc_t * g * i * (1 - i)        dz_f = dc_t * c_{t-1} * f * (1 - f)
    dz_g = dc_t * i * (1 - g**2)         dz_o = dh_t * tanh(c_t) * o * (1 - o)
    dc_{t-1} = dc_t * f                  dh_{t-1} = dz_t @ recurrent_kernel.T

and the weight gradients are the sums over t of x_t.T @ dz_t,
h_{t-1}.T @ dz_t and dz_t.

With a peephole p (3, units), rows p_i, p_f, p_o, the gates also see the
cell state::

    i = sigmoid(z_i + p_i * c_{t-1})     f = sigmoid(z_f + p_f * c_{t-1})
    o = sigmoid(z_o + p_o * c_t)

so backward adds dz_o * p_o to dc_t before the other gates and
dz_i * p_i + dz_f * p_f to dc_{t-1}; dp is the sum over batch and time of
dz_i * c_{t-1}, dz_f * c_{t-1} and dz_o * c_t.

GRU
---
Gate blocks z (update), r (reset), h (candidate), Keras' order. With
``reset_after=True`` (Keras' default, and PyTorch's nn.GRU) the bias has
two rows, one added to the input product and one to the recurrent product,
and the reset gate scales the recurrent product::

    xz, xr, xh = x_t @ kernel + bias[0]
    rz, rr, rh = h_{t-1} @ recurrent_kernel + bias[1]
    z = sigmoid(xz + rz)    r = sigmoid(xr + rr)    hh = tanh(xh + r * rh)
    h_t = z * h_{t-1} + (1 - z) * hh

With ``reset_after=False`` the bias is one vector and the reset gate
scales the previous state before its product::

    xz, xr, xh = x_t @ kernel + bias
    z = sigmoid(xz + h_{t-1} @ U_z)    r = sigmoid(xr + h_{t-1} @ U_r)
    hh = tanh(xh + (r * h_{t-1}) @ U_h)
    h_t = z * h_{t-1} + (1 - z) * hh

where U_z, U_r, U_h are the blocks of recurrent_kernel.

Simple RNN
----------
One block, an activation phi (tanh or relu)::

    h_t = phi(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

fastlstm.functional has the same signatures and must give the same numbers.

Dropout
-------
As in Keras, one mask per sequence, drawn by the caller and scaled (each
value 0 or 1 / (1 - rate)): ``dropout_mask`` (batch, features) multiplies
x_t at every step, ``recurrent_dropout_mask`` (batch, units) multiplies
h_{t-1} where the products (and a GRU's r * h_{t-1}) read it; the GRU's
z * h_{t-1} and the outputs keep the state itself. Keras shares one input
mask among the gates when only ``dropout`` is set; here both masks are
shared among the gates always.

Lengths and direction
---------------------
With ``lengths`` (batch,), row b runs its first lengths[b] steps only: its
later outputs are zeros and its final states are those after its last
step. With ``reverse``, each row runs its steps last to first (within its
own length), y staying aligned with x's time axis. Both mean the same
thing: each row's steps, taken in the order they run, are an ordinary
sequence, run alone (``_forward_by_rows``).
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ._types import GRUGrads, LSTMGrads, PeepholeLSTMGrads, SimpleRNNGrads
from ._validation import checked_lengths, dropout_extras, output_gradient, recurrent_inputs

__all__ = ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "simple_rnn_forward", "simple_rnn_backward", "sigmoid", "LSTMGrads",
           "PeepholeLSTMGrads", "GRUGrads", "SimpleRNNGrads"]


def sigmoid(z):
    """Logistic function, 1 / (1 + exp(-z)), written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _check_cache(cache, cache_type, forward_name):
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must come from fastlstm.reference.{forward_name}("
                        f"..., return_cache=True), got {type(cache).__name__}")


def _state_gradients(cache_shape, units, dtype, dy, dh_n, check_finite):
    """Check dy (batch, time, units) and dh_n (batch, units); None stays None."""
    batch, time, _ = cache_shape
    dy = output_gradient("dy", dy, (batch, time, units), "(batch, time, units)",
                         dtype, check_finite)
    dh_n = output_gradient("dh_n", dh_n, (batch, units), "(batch, units)", dtype, check_finite)
    return dy, dh_n


def _zeros_or_copy(array, shape, dtype):
    return np.zeros(shape, dtype) if array is None else array.copy()


def _masked(array, mask):
    """array * mask, the mask broadcast over time for (batch, time, n) arrays;
    array itself without a mask."""
    if mask is None:
        return array
    return array * (mask[:, None, :] if array.ndim == 3 else mask)


# ---------------------------------------------------- lengths and direction


def _row_steps(length, reverse):
    """The time indices a row of `length` steps visits, in the order it runs."""
    steps = np.arange(length)
    return steps[::-1] if reverse else steps


@dataclass
class RowsReferenceCache:
    """A pass with lengths or reverse: what each row's own pass kept."""

    forward_name: str
    caches: list          # per row, its pass' cache; None for a row of length 0
    steps: list           # per row, the time indices it visited, in order
    shape: tuple          # x's (batch, time, features)
    dtype: np.dtype
    weight_shapes: dict   # gradient name -> shape, for a batch of empty rows


def _forward_by_rows(run_row, inputs, lengths, reverse, return_cache, forward_name):
    """Run every row alone over its own steps: ``run_row(x_row, states_row,
    masks_row)`` is the cell's forward pass of one row (batch 1)."""
    x = inputs.x
    batch, time, _ = x.shape
    lengths = np.full(batch, time) if lengths is None else checked_lengths(lengths, batch, time)
    units = inputs.recurrent_kernel.shape[0]
    masks = inputs.extras["dropout_mask"], inputs.extras["recurrent_dropout_mask"]
    y = np.zeros((batch, time, units), inputs.dtype)
    finals = [state.copy() for state in inputs.states]
    caches, visited = [], []
    for b in range(batch):
        steps = _row_steps(lengths[b], reverse)
        visited.append(steps)
        if not steps.size:
            caches.append(None)
            continue
        out = run_row(x[b:b + 1, steps], [state[b:b + 1] for state in inputs.states],
                      [None if mask is None else mask[b:b + 1] for mask in masks])
        y[b, steps] = out[0][0]
        for final, state in zip(finals, out[1:]):
            final[b] = state[0]
        caches.append(out[-1] if return_cache else None)
    if not return_cache:
        return (y, *finals)
    weight_shapes = {"dkernel": inputs.kernel.shape,
                     "drecurrent_kernel": inputs.recurrent_kernel.shape,
                     "dbias": inputs.bias.shape}
    if inputs.extras.get("peephole") is not None:
        weight_shapes["dpeephole"] = inputs.extras["peephole"].shape
    return (y, *finals, RowsReferenceCache(forward_name, caches, visited, x.shape,
                                           inputs.dtype, weight_shapes))


def _backward_by_rows(run_row, cache, dy, state_grads, check_finite, input_grad, grads_type):
    """Backward of ``_forward_by_rows``: ``run_row(row_cache, dy_row,
    state_grads_row)`` is the cell's backward pass of one row; the weight
    gradients are the sums over the rows."""
    batch, time, features = cache.shape
    units = cache.weight_shapes["drecurrent_kernel"][0]
    dtype = cache.dtype
    dy, _ = _state_gradients(cache.shape, units, dtype, dy, None, check_finite)
    state_grads = [output_gradient(name, grad, (batch, units), "(batch, units)", dtype,
                                   check_finite)
                   for name, grad in zip(("dh_n", "dc_n"), state_grads)]
    dx = np.zeros((batch, time, features), dtype) if input_grad else None
    sums = {name: np.zeros(shape, dtype) for name, shape in cache.weight_shapes.items()}
    # A row of length 0 passes the final states' gradients through.
    initial = [np.zeros((batch, units), dtype) if grad is None else grad.copy()
               for grad in state_grads]
    for b, (row_cache, steps) in enumerate(zip(cache.caches, cache.steps)):
        if row_cache is None:
            continue
        grads = run_row(row_cache, None if dy is None else dy[b:b + 1, steps],
                        [None if grad is None else grad[b:b + 1] for grad in state_grads])
        if input_grad:
            dx[b, steps] = grads.dx[0]
        for name in sums:
            sums[name] += getattr(grads, name)
        for grad, name in zip(initial, ("dh0", "dc0")):
            grad[b] = getattr(grads, name)[0]
    return grads_type(dx=dx, **sums, **dict(zip(("dh0", "dc0"), initial)))


def _check_rows_cache(cache, forward_name):
    if cache.forward_name != forward_name:
        raise TypeError(f"cache must come from fastlstm.reference.{forward_name}("
                        f"..., return_cache=True), got one from {cache.forward_name}")


# ----------------------------------------------------------------------- LSTM


@dataclass
class _LSTMStep:
    """What backward needs from one LSTM time step (each array (batch, units))."""

    x: np.ndarray       # x_t, (batch, features), after dropout
    h_prev: np.ndarray  # h_{t-1} as the product read it, after dropout
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray


@dataclass
class LSTMReferenceCache:
    """What reference.lstm_forward(..., return_cache=True) keeps for backward."""

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    peephole: Optional[np.ndarray]  # (3, units) or None
    shape: tuple            # (batch, time, features)
    dtype: np.dtype
    masks: tuple            # (dropout_mask, recurrent_dropout_mask), each or None
    steps: List[_LSTMStep] = field(default_factory=list)


def _lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, peephole):
    """One LSTM step; returns (h_t, c_t, gates i, f, g, o)."""
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
    if peephole is not None:
        z_i = z_i + peephole[0] * c_prev
        z_f = z_f + peephole[1] * c_prev
    i, f, g = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g)
    c = f * c_prev + i * g
    if peephole is not None:
        z_o = z_o + peephole[2] * c
    o = sigmoid(z_o)
    return o * np.tanh(c), c, (i, f, g, o)


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *, peephole=None,
                 dropout_mask=None, recurrent_dropout_mask=None, lengths=None, reverse=False,
                 return_cache=False, check_finite=True):
    """Run an LSTM over a batch of sequences.

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, 4 * units)
        Input weights, gate blocks i, f, g, o (Keras' ``kernel``).
    recurrent_kernel : array_like of shape (units, 4 * units)
    bias : array_like of shape (4 * units,)
    h0, c0 : array_like of shape (batch, units), optional
        Initial hidden and cell states; zeros when None.
    peephole : array_like of shape (3, units), optional
        Peephole weights, rows i, f, o: the input and forget gates see
        c_{t-1}, the output gate sees c_t. None: no peepholes.
    dropout_mask : array_like of shape (batch, features), optional
    recurrent_dropout_mask : array_like of shape (batch, units), optional
        Dropout's masks, one per sequence (see the module's docstring).
    lengths : array_like of ints, shape (batch,), optional
        Steps each row runs (see the module's docstring); all by default.
    reverse : bool
        Run each row's steps last to first.
    return_cache : bool
        Also return what ``lstm_backward`` needs.
    check_finite : bool
        Reject NaN and inf in the inputs.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
        The hidden state at every step.
    h_n, c_n : ndarray of shape (batch, units)
        The final hidden and cell states.
    cache : LSTMReferenceCache
        Only with ``return_cache=True``.
    """
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0), ("c0", c0)),
                              n_gates=4,
                              extras=(("peephole", peephole, (3, "units")),
                                      *dropout_extras(dropout_mask, recurrent_dropout_mask)),
                              check_finite=check_finite)
    if lengths is not None or reverse:
        def run_row(x_row, states_row, masks_row):
            return lstm_forward(x_row, kernel, recurrent_kernel, bias, *states_row,
                                peephole=peephole, dropout_mask=masks_row[0],
                                recurrent_dropout_mask=masks_row[1],
                                return_cache=return_cache, check_finite=False)
        return _forward_by_rows(run_row, inputs, lengths, reverse, return_cache, "lstm_forward")
    masks = inputs.extras["dropout_mask"], inputs.extras["recurrent_dropout_mask"]
    x = _masked(inputs.x, masks[0])
    kernel, recurrent_kernel, bias = inputs.kernel, inputs.recurrent_kernel, inputs.bias
    peephole = inputs.extras["peephole"]
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    cache = LSTMReferenceCache(kernel.copy(), recurrent_kernel.copy(),
                               None if peephole is None else peephole.copy(),
                               x.shape, inputs.dtype, masks)

    # Copies: the cache keeps h0 and c0, and the caller may change theirs
    # before backward.
    h, c = (state.copy() for state in inputs.states)
    y = np.empty((batch, time, units), dtype=inputs.dtype)
    for t in range(time):
        h_in, c_prev = _masked(h, masks[1]), c
        h, c, gates = _lstm_step(x[:, t], h_in, c_prev, kernel, recurrent_kernel, bias,
                                 peephole)
        y[:, t] = h
        if return_cache:
            cache.steps.append(_LSTMStep(x[:, t].copy(), h_in, c_prev, *gates, c))

    h_n, c_n = h.copy(), c.copy()
    return (y, h_n, c_n, cache) if return_cache else (y, h_n, c_n)


def _lstm_step_backward(s, dh, dc_next, peephole):
    """Gradients of one LSTM step: (dz (batch, 4 * units), dc_{t-1})."""
    tanh_c = np.tanh(s.c)
    dz_o = dh * tanh_c * s.o * (1 - s.o)
    dc = dc_next + dh * s.o * (1 - tanh_c**2)
    if peephole is not None:
        dc = dc + dz_o * peephole[2]
    dz_i = dc * s.g * s.i * (1 - s.i)
    dz_f = dc * s.c_prev * s.f * (1 - s.f)
    dz_g = dc * s.i * (1 - s.g**2)
    dc_prev = dc * s.f
    if peephole is not None:
        dc_prev = dc_prev + dz_i * peephole[0] + dz_f * peephole[1]
    return np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1), dc_prev


def _peephole_gradient(s, dz):
    """This step's share of dpeephole (3, units): rows i, f, o."""
    dz_i, dz_f, _, dz_o = np.split(dz, 4, axis=1)
    return np.stack([(dz_i * s.c_prev).sum(axis=0), (dz_f * s.c_prev).sum(axis=0),
                     (dz_o * s.c).sum(axis=0)])


def lstm_backward(cache, dy, dh_n=None, dc_n=None, *, check_finite=True, input_grad=True):
    """Backpropagate through the time steps recorded in `cache`.

    Parameters
    ----------
    cache : LSTMReferenceCache
        From ``lstm_forward(..., return_cache=True)``.
    dy : array_like of shape (batch, time, units) or None
        Gradient of the loss with respect to y (None: zero).
    dh_n, dc_n : array_like of shape (batch, units), optional
        Gradients with respect to the final states (None: zero).
    check_finite : bool
        Reject NaN and inf in the gradients.
    input_grad : bool
        Compute dx (None otherwise).

    Returns
    -------
    LSTMGrads or PeepholeLSTMGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``, and
        ``dpeephole`` (3, units) when the forward pass had a peephole.
    """
    if isinstance(cache, RowsReferenceCache):
        _check_rows_cache(cache, "lstm_forward")
        grads_type = LSTMGrads if "dpeephole" not in cache.weight_shapes else PeepholeLSTMGrads
        return _backward_by_rows(
            lambda row_cache, dy_row, grads_row: lstm_backward(
                row_cache, dy_row, *grads_row, check_finite=False, input_grad=input_grad),
            cache, dy, (dh_n, dc_n), check_finite, input_grad, grads_type)
    _check_cache(cache, LSTMReferenceCache, "lstm_forward")
    batch, time, features = cache.shape
    kernel, recurrent_kernel, peephole = cache.kernel, cache.recurrent_kernel, cache.peephole
    units = recurrent_kernel.shape[0]
    dtype = cache.dtype
    dy, dh_n = _state_gradients(cache.shape, units, dtype, dy, dh_n, check_finite)
    dc_n = output_gradient("dc_n", dc_n, (batch, units), "(batch, units)", dtype, check_finite)

    dx = np.zeros((batch, time, features), dtype) if input_grad else None
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(4 * units, dtype)
    dpeephole = None if peephole is None else np.zeros_like(peephole)
    dh_next = _zeros_or_copy(dh_n, (batch, units), dtype)
    dc_next = _zeros_or_copy(dc_n, (batch, units), dtype)

    for t in reversed(range(time)):
        s = cache.steps[t]
        dh = dh_next if dy is None else dh_next + dy[:, t]
        dz, dc_next = _lstm_step_backward(s, dh, dc_next, peephole)
        if input_grad:
            dx[:, t] = _masked(dz @ kernel.T, cache.masks[0])
        dkernel += s.x.T @ dz
        drecurrent_kernel += s.h_prev.T @ dz
        dbias += dz.sum(axis=0)
        if peephole is not None:
            dpeephole += _peephole_gradient(s, dz)
        dh_next = _masked(dz @ recurrent_kernel.T, cache.masks[1])

    if peephole is None:
        return LSTMGrads(dx, dkernel, drecurrent_kernel, dbias, dh_next, dc_next)
    return PeepholeLSTMGrads(dx, dkernel, drecurrent_kernel, dbias, dh_next, dc_next,
                             dpeephole)


# ------------------------------------------------------------------------ GRU


@dataclass
class _GRUStep:
    """What backward needs from one GRU time step (each array (batch, units))."""

    x: np.ndarray       # x_t, (batch, features), after dropout
    h_prev: np.ndarray
    h_in: np.ndarray    # h_{t-1} as the products read it, after dropout
    z: np.ndarray
    r: np.ndarray
    hh: np.ndarray      # the candidate state
    rh: np.ndarray      # reset_after: h_in @ U_h + bias[1, h]; else r * h_in


@dataclass
class GRUReferenceCache:
    """What reference.gru_forward(..., return_cache=True) keeps for backward."""

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    reset_after: bool
    shape: tuple            # (batch, time, features)
    dtype: np.dtype
    masks: tuple            # (dropout_mask, recurrent_dropout_mask), each or None
    steps: List[_GRUStep] = field(default_factory=list)


def _gru_step_reset_after(x_t, h_prev, h_in, kernel, recurrent_kernel, bias):
    """One GRU step with the reset gate after the recurrent product: (h_t, _GRUStep)."""
    xz, xr, xh = np.split(x_t @ kernel + bias[0], 3, axis=1)
    rz, rr, rh = np.split(h_in @ recurrent_kernel + bias[1], 3, axis=1)
    z, r = sigmoid(xz + rz), sigmoid(xr + rr)
    hh = np.tanh(xh + r * rh)
    return z * h_prev + (1 - z) * hh, _GRUStep(x_t, h_prev, h_in, z, r, hh, rh)


def _gru_step_reset_before(x_t, h_prev, h_in, kernel, recurrent_kernel, bias):
    """One GRU step with the reset gate on the previous state: (h_t, _GRUStep)."""
    units = h_prev.shape[1]
    xz, xr, xh = np.split(x_t @ kernel + bias, 3, axis=1)
    rz, rr = np.split(h_in @ recurrent_kernel[:, :2 * units], 2, axis=1)
    z, r = sigmoid(xz + rz), sigmoid(xr + rr)
    r_h = r * h_in
    hh = np.tanh(xh + r_h @ recurrent_kernel[:, 2 * units:])
    return z * h_prev + (1 - z) * hh, _GRUStep(x_t, h_prev, h_in, z, r, hh, r_h)


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, *, reset_after=True,
                dropout_mask=None, recurrent_dropout_mask=None, lengths=None, reverse=False,
                return_cache=False, check_finite=True):
    """Run a GRU over a batch of sequences.

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, 3 * units)
        Input weights, gate blocks z, r, h (Keras' ``kernel``).
    recurrent_kernel : array_like of shape (units, 3 * units)
    bias : array_like of shape (2, 3 * units) or (3 * units,)
        With ``reset_after=True`` two rows: the input bias and the recurrent
        bias. Otherwise one vector.
    h0 : array_like of shape (batch, units), optional
        Initial state; zeros when None.
    reset_after : bool
        Apply the reset gate after the recurrent product (Keras' default,
        PyTorch's convention) rather than before it.
    dropout_mask : array_like of shape (batch, features), optional
    recurrent_dropout_mask : array_like of shape (batch, units), optional
        Dropout's masks, one per sequence (see the module's docstring).
    lengths : array_like of ints, shape (batch,), optional
        Steps each row runs (see the module's docstring); all by default.
    reverse : bool
        Run each row's steps last to first.
    return_cache : bool
        Also return what ``gru_backward`` needs.
    check_finite : bool
        Reject NaN and inf in the inputs.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
        The state at every step.
    h_n : ndarray of shape (batch, units)
        The final state.
    cache : GRUReferenceCache
        Only with ``return_cache=True``.
    """
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0),), n_gates=3,
                              bias_rows=2 if reset_after else None,
                              extras=dropout_extras(dropout_mask, recurrent_dropout_mask),
                              check_finite=check_finite)
    if lengths is not None or reverse:
        def run_row(x_row, states_row, masks_row):
            return gru_forward(x_row, kernel, recurrent_kernel, bias, *states_row,
                               reset_after=reset_after, dropout_mask=masks_row[0],
                               recurrent_dropout_mask=masks_row[1],
                               return_cache=return_cache, check_finite=False)
        return _forward_by_rows(run_row, inputs, lengths, reverse, return_cache, "gru_forward")
    masks = inputs.extras["dropout_mask"], inputs.extras["recurrent_dropout_mask"]
    x = _masked(inputs.x, masks[0])
    kernel, recurrent_kernel, bias = inputs.kernel, inputs.recurrent_kernel, inputs.bias
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    step = _gru_step_reset_after if reset_after else _gru_step_reset_before
    cache = GRUReferenceCache(kernel.copy(), recurrent_kernel.copy(), bool(reset_after),
                              x.shape, inputs.dtype, masks)

    h = inputs.states[0].copy()
    y = np.empty((batch, time, units), dtype=inputs.dtype)
    for t in range(time):
        h, record = step(x[:, t].copy(), h, _masked(h, masks[1]), kernel, recurrent_kernel,
                         bias)
        y[:, t] = h
        if return_cache:
            cache.steps.append(record)

    h_n = h.copy()
    return (y, h_n, cache) if return_cache else (y, h_n)


def _gru_gate_gradients(s, dh):
    """Gradients of a GRU step's pre-activations: dz, and d(hh's pre-activation)."""
    dz = dh * (s.h_prev - s.hh) * s.z * (1 - s.z)
    dhh = dh * (1 - s.z) * (1 - s.hh**2)
    return dz, dhh


def _gru_step_backward_reset_after(s, dh, recurrent_kernel, mask):
    """One reset_after step: (input-side d, recurrent-side d, dh_{t-1}), the
    first two (batch, 3 * units)."""
    dz, dhh = _gru_gate_gradients(s, dh)
    dr = dhh * s.rh * s.r * (1 - s.r)
    d_input = np.concatenate([dz, dr, dhh], axis=1)
    d_recurrent = np.concatenate([dz, dr, dhh * s.r], axis=1)
    dh_prev = dh * s.z + _masked(d_recurrent @ recurrent_kernel.T, mask)
    return d_input, d_recurrent, dh_prev


def _gru_step_backward_reset_before(s, dh, recurrent_kernel, mask):
    """One reset_before step: (input-side d (batch, 3 * units), the gradient
    of recurrent_kernel's share (units, 3 * units), dh_{t-1})."""
    units = s.h_prev.shape[1]
    u_zr, u_h = recurrent_kernel[:, :2 * units], recurrent_kernel[:, 2 * units:]
    dz, dhh = _gru_gate_gradients(s, dh)
    d_r_h = dhh @ u_h.T                       # gradient of r * h_in
    dr = d_r_h * s.h_in * s.r * (1 - s.r)
    d_zr = np.concatenate([dz, dr], axis=1)
    drecurrent_kernel = np.concatenate([s.h_in.T @ d_zr, s.rh.T @ dhh], axis=1)
    dh_prev = dh * s.z + _masked(d_zr @ u_zr.T + d_r_h * s.r, mask)
    return np.concatenate([dz, dr, dhh], axis=1), drecurrent_kernel, dh_prev


def gru_backward(cache, dy, dh_n=None, *, check_finite=True, input_grad=True):
    """Backpropagate through the time steps recorded in `cache`.

    Parameters
    ----------
    cache : GRUReferenceCache
        From ``gru_forward(..., return_cache=True)``.
    dy : array_like of shape (batch, time, units) or None
        Gradient of the loss with respect to y (None: zero).
    dh_n : array_like of shape (batch, units), optional
        Gradient with respect to the final state (None: zero).
    check_finite : bool
        Reject NaN and inf in the gradients.
    input_grad : bool
        Compute dx (None otherwise).

    Returns
    -------
    GRUGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``, dbias shaped like
        the bias.
    """
    if isinstance(cache, RowsReferenceCache):
        _check_rows_cache(cache, "gru_forward")
        return _backward_by_rows(
            lambda row_cache, dy_row, grads_row: gru_backward(
                row_cache, dy_row, *grads_row, check_finite=False, input_grad=input_grad),
            cache, dy, (dh_n,), check_finite, input_grad, GRUGrads)
    _check_cache(cache, GRUReferenceCache, "gru_forward")
    batch, time, features = cache.shape
    kernel, recurrent_kernel = cache.kernel, cache.recurrent_kernel
    units = recurrent_kernel.shape[0]
    dtype = cache.dtype
    dy, dh_n = _state_gradients(cache.shape, units, dtype, dy, dh_n, check_finite)

    dx = np.zeros((batch, time, features), dtype) if input_grad else None
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros((2, 3 * units) if cache.reset_after else 3 * units, dtype)
    dh_next = _zeros_or_copy(dh_n, (batch, units), dtype)

    for t in reversed(range(time)):
        s = cache.steps[t]
        dh = dh_next if dy is None else dh_next + dy[:, t]
        if cache.reset_after:
            d_input, d_recurrent, dh_next = _gru_step_backward_reset_after(
                s, dh, recurrent_kernel, cache.masks[1])
            drecurrent_kernel += s.h_in.T @ d_recurrent
            dbias[0] += d_input.sum(axis=0)
            dbias[1] += d_recurrent.sum(axis=0)
        else:
            d_input, d_recurrent_kernel, dh_next = _gru_step_backward_reset_before(
                s, dh, recurrent_kernel, cache.masks[1])
            drecurrent_kernel += d_recurrent_kernel
            dbias += d_input.sum(axis=0)
        if input_grad:
            dx[:, t] = _masked(d_input @ kernel.T, cache.masks[0])
        dkernel += s.x.T @ d_input

    return GRUGrads(dx, dkernel, drecurrent_kernel, dbias, dh_next)


# ----------------------------------------------------------------- Simple RNN

# Each activation with its derivative written in terms of its output.
_ACTIVATIONS = {
    "relu": (lambda a: np.maximum(a, 0), lambda h: (h > 0).astype(h.dtype)),
    "tanh": (np.tanh, lambda h: 1 - h**2),
}


@dataclass
class _SimpleRNNStep:
    """What backward needs from one simple RNN time step."""

    x: np.ndarray       # x_t, (batch, features), after dropout
    h_prev: np.ndarray  # (batch, units), h_{t-1} as the product read it
    h: np.ndarray       # (batch, units)


@dataclass
class SimpleRNNReferenceCache:
    """What reference.simple_rnn_forward(..., return_cache=True) keeps for backward."""

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    activation: str
    shape: tuple            # (batch, time, features)
    dtype: np.dtype
    masks: tuple            # (dropout_mask, recurrent_dropout_mask), each or None
    steps: List[_SimpleRNNStep] = field(default_factory=list)


def _checked_activation(activation):
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, _ACTIVATIONS))}, "
                         f"got {activation!r}")
    return activation


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, *, activation="tanh",
                       dropout_mask=None, recurrent_dropout_mask=None, lengths=None,
                       reverse=False, return_cache=False, check_finite=True):
    """Run a fully connected RNN over a batch of sequences.

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, units)
    recurrent_kernel : array_like of shape (units, units)
    bias : array_like of shape (units,)
    h0 : array_like of shape (batch, units), optional
        Initial state; zeros when None.
    activation : {"tanh", "relu"}
    dropout_mask : array_like of shape (batch, features), optional
    recurrent_dropout_mask : array_like of shape (batch, units), optional
        Dropout's masks, one per sequence (see the module's docstring).
    lengths : array_like of ints, shape (batch,), optional
        Steps each row runs (see the module's docstring); all by default.
    reverse : bool
        Run each row's steps last to first.
    return_cache : bool
        Also return what ``simple_rnn_backward`` needs.
    check_finite : bool
        Reject NaN and inf in the inputs.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
        The state at every step.
    h_n : ndarray of shape (batch, units)
        The final state.
    cache : SimpleRNNReferenceCache
        Only with ``return_cache=True``.
    """
    phi, _ = _ACTIVATIONS[_checked_activation(activation)]
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0),), n_gates=1,
                              extras=dropout_extras(dropout_mask, recurrent_dropout_mask),
                              check_finite=check_finite)
    if lengths is not None or reverse:
        def run_row(x_row, states_row, masks_row):
            return simple_rnn_forward(x_row, kernel, recurrent_kernel, bias, *states_row,
                                      activation=activation, dropout_mask=masks_row[0],
                                      recurrent_dropout_mask=masks_row[1],
                                      return_cache=return_cache, check_finite=False)
        return _forward_by_rows(run_row, inputs, lengths, reverse, return_cache,
                                "simple_rnn_forward")
    masks = inputs.extras["dropout_mask"], inputs.extras["recurrent_dropout_mask"]
    x = _masked(inputs.x, masks[0])
    kernel, recurrent_kernel, bias = inputs.kernel, inputs.recurrent_kernel, inputs.bias
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    cache = SimpleRNNReferenceCache(kernel.copy(), recurrent_kernel.copy(), activation,
                                    x.shape, inputs.dtype, masks)

    h = inputs.states[0].copy()
    y = np.empty((batch, time, units), dtype=inputs.dtype)
    for t in range(time):
        h_in = _masked(h, masks[1])
        h = phi(x[:, t] @ kernel + h_in @ recurrent_kernel + bias)
        y[:, t] = h
        if return_cache:
            cache.steps.append(_SimpleRNNStep(x[:, t].copy(), h_in, h))

    h_n = h.copy()
    return (y, h_n, cache) if return_cache else (y, h_n)


def simple_rnn_backward(cache, dy, dh_n=None, *, check_finite=True, input_grad=True):
    """Backpropagate through the time steps recorded in `cache`.

    Parameters
    ----------
    cache : SimpleRNNReferenceCache
        From ``simple_rnn_forward(..., return_cache=True)``.
    dy : array_like of shape (batch, time, units) or None
        Gradient of the loss with respect to y (None: zero).
    dh_n : array_like of shape (batch, units), optional
        Gradient with respect to the final state (None: zero).
    check_finite : bool
        Reject NaN and inf in the gradients.
    input_grad : bool
        Compute dx (None otherwise).

    Returns
    -------
    SimpleRNNGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``.

    Notes
    -----
    relu's derivative is taken as 1 where the output is positive, else 0.
    """
    if isinstance(cache, RowsReferenceCache):
        _check_rows_cache(cache, "simple_rnn_forward")
        return _backward_by_rows(
            lambda row_cache, dy_row, grads_row: simple_rnn_backward(
                row_cache, dy_row, *grads_row, check_finite=False, input_grad=input_grad),
            cache, dy, (dh_n,), check_finite, input_grad, SimpleRNNGrads)
    _check_cache(cache, SimpleRNNReferenceCache, "simple_rnn_forward")
    batch, time, features = cache.shape
    kernel, recurrent_kernel = cache.kernel, cache.recurrent_kernel
    units = recurrent_kernel.shape[0]
    dtype = cache.dtype
    _, derivative = _ACTIVATIONS[cache.activation]
    dy, dh_n = _state_gradients(cache.shape, units, dtype, dy, dh_n, check_finite)

    dx = np.zeros((batch, time, features), dtype) if input_grad else None
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(units, dtype)
    dh_next = _zeros_or_copy(dh_n, (batch, units), dtype)

    for t in reversed(range(time)):
        s = cache.steps[t]
        dh = dh_next if dy is None else dh_next + dy[:, t]
        da = dh * derivative(s.h)
        if input_grad:
            dx[:, t] = _masked(da @ kernel.T, cache.masks[0])
        dkernel += s.x.T @ da
        drecurrent_kernel += s.h_prev.T @ da
        dbias += da.sum(axis=0)
        dh_next = _masked(da @ recurrent_kernel.T, cache.masks[1])

    return SimpleRNNGrads(dx, dkernel, drecurrent_kernel, dbias, dh_next)

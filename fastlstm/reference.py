"""A pure-NumPy LSTM, written to be read: the oracle for every kernel.

One loop over time, the textbook equations, nothing fused. For each step t,
with the pre-activations of the four gates in Keras' order i, f, g (the cell
candidate, Keras' "c"), o::

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

fastlstm.functional has the same signatures and must give the same numbers.
"""
from dataclasses import dataclass, field
from typing import List

import numpy as np

from ._types import LSTMGrads
from ._validation import lstm_inputs, output_gradient

__all__ = ["lstm_forward", "lstm_backward", "sigmoid", "LSTMGrads"]


def sigmoid(z):
    """Logistic function, 1 / (1 + exp(-z)), written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass
class _Step:
    """What backward needs from one time step (each array (batch, units))."""

    x: np.ndarray       # x_t, (batch, features)
    h_prev: np.ndarray
    c_prev: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray


@dataclass
class ReferenceCache:
    """What reference.lstm_forward(..., return_cache=True) keeps for backward."""

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    shape: tuple            # (batch, time, features)
    dtype: np.dtype
    steps: List[_Step] = field(default_factory=list)


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *,
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
    cache : ReferenceCache
        Only with ``return_cache=True``.
    """
    inputs = lstm_inputs(x, kernel, recurrent_kernel, bias, h0, c0, check_finite)
    x, kernel, recurrent_kernel, bias = (inputs.x, inputs.kernel,
                                         inputs.recurrent_kernel, inputs.bias)
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    cache = ReferenceCache(kernel.copy(), recurrent_kernel.copy(), x.shape, inputs.dtype)

    # Copies: the cache keeps h0 and c0, and the caller may change theirs
    # before backward.
    h, c = inputs.h0.copy(), inputs.c0.copy()
    y = np.empty((batch, time, units), dtype=inputs.dtype)
    for t in range(time):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=1)
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
        h_prev, c_prev = h, c
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        y[:, t] = h
        if return_cache:
            cache.steps.append(_Step(x[:, t].copy(), h_prev, c_prev, i, f, g, o, c))

    h_n, c_n = h.copy(), c.copy()
    return (y, h_n, c_n, cache) if return_cache else (y, h_n, c_n)


def lstm_backward(cache, dy, dh_n=None, dc_n=None, *, check_finite=True, input_grad=True):
    """Backpropagate through the time steps recorded in `cache`.

    Parameters
    ----------
    cache : ReferenceCache
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
    LSTMGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``.
    """
    if not isinstance(cache, ReferenceCache):
        raise TypeError("cache must come from fastlstm.reference.lstm_forward("
                        f"..., return_cache=True), got {type(cache).__name__}")
    batch, time, features = cache.shape
    kernel, recurrent_kernel = cache.kernel, cache.recurrent_kernel
    units = recurrent_kernel.shape[0]
    dtype = cache.dtype
    dy = output_gradient("dy", dy, (batch, time, units), "(batch, time, units)",
                         dtype, check_finite)
    dh_n = output_gradient("dh_n", dh_n, (batch, units), "(batch, units)", dtype, check_finite)
    dc_n = output_gradient("dc_n", dc_n, (batch, units), "(batch, units)", dtype, check_finite)

    dx = np.zeros((batch, time, features), dtype) if input_grad else None
    dkernel = np.zeros_like(kernel)
    drecurrent_kernel = np.zeros_like(recurrent_kernel)
    dbias = np.zeros(4 * units, dtype)
    dh_next = np.zeros((batch, units), dtype) if dh_n is None else dh_n.copy()
    dc_next = np.zeros((batch, units), dtype) if dc_n is None else dc_n.copy()

    for t in reversed(range(time)):
        s = cache.steps[t]
        dh = dh_next if dy is None else dh_next + dy[:, t]
        tanh_c = np.tanh(s.c)
        dc = dc_next + dh * s.o * (1 - tanh_c**2)
        dz = np.concatenate([dc * s.g * s.i * (1 - s.i),
                             dc * s.c_prev * s.f * (1 - s.f),
                             dc * s.i * (1 - s.g**2),
                             dh * tanh_c * s.o * (1 - s.o)], axis=1)
        if input_grad:
            dx[:, t] = dz @ kernel.T
        dkernel += s.x.T @ dz
        drecurrent_kernel += s.h_prev.T @ dz
        dbias += dz.sum(axis=0)
        dh_next = dz @ recurrent_kernel.T
        dc_next = dc * s.f

    return LSTMGrads(dx, dkernel, drecurrent_kernel, dbias, dh_next, dc_next)

"""LSTM forward and backward on the compiled kernels.

Same signatures and numbers as fastlstm.reference, computed by
fastlstm._lstm (Cython + OpenMP + BLAS, csrc/_lstm.pyx). This layer checks
the arguments, allocates every output and, when the backward pass calls BLAS
(for the input gradient of a layer with few features or a large kernel),
holds BLAS to one thread; the kernels do the rest without the GIL.
"""
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from . import _lstm, _teams, _workspace
from ._blas_control import blas_single_threaded
from ._threads import get_num_threads
from ._types import LSTMGrads
from ._validation import lstm_inputs, output_gradient

__all__ = ["lstm_forward", "lstm_backward", "LSTMCache", "LSTMGrads"]


@dataclass
class LSTMCache:
    """What ``lstm_forward(..., return_cache=True)`` keeps for ``lstm_backward``.

    Per (batch, time, unit) it holds 6 values: the four activated gates, the
    cell state and the hidden state, the last being the returned ``y``
    itself (24 bytes in float32, 48 in float64). Besides that, x
    (``features`` values per (batch, time)), the weights, h0 and c0: the
    caller's own arrays where forward could use them as given, not copies,
    so that the weights are not held twice. Of each such array it keeps a
    fingerprint, and ``lstm_backward`` refuses to run if one changed (as
    PyTorch refuses a tensor modified in place after its use). Backward
    overwrites the gates unless asked to retain them.
    """

    x: np.ndarray                 # (batch, time, features)
    kernel: np.ndarray            # (features, 4 * units)
    recurrent_kernel: np.ndarray  # (units, 4 * units)
    h0: np.ndarray                # (batch, units)
    c0: np.ndarray                # (batch, units)
    y: np.ndarray                 # (batch, time, units), read-only
    gates: Optional[np.ndarray]   # (batch, time, 4 * units); None once consumed
    cells: np.ndarray             # (batch, time, units)
    fingerprints: Dict[str, int]  # of the fields above that are the caller's arrays


def _all_finite(array):
    """One pass of the compiled check over a C-contiguous float array, without
    NumPy's temporary boolean array."""
    return _lstm.all_finite(array.reshape(-1))


def _fingerprint(array):
    """A 64-bit hash of a C-contiguous array's bytes."""
    return _lstm.fingerprint(array.reshape(-1).view(np.uint8))


def _callers_arrays(inputs, originals):
    """Fingerprints of the converted inputs that still share memory with the
    caller's arrays (the others are copies only the cache holds)."""
    return {name: _fingerprint(getattr(inputs, name)) for name, original in originals.items()
            if np.may_share_memory(getattr(inputs, name), original)}


def _check_unchanged(cache):
    for name, fingerprint in cache.fingerprints.items():
        if _fingerprint(getattr(cache, name)) != fingerprint:
            raise RuntimeError(
                f"{name} was modified after lstm_forward; lstm_backward needs the values "
                "forward used. Change it after backward (as an optimizer step does), "
                "or give lstm_forward a copy")


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *,
                 return_cache=False, check_finite=True, guard_inputs=True):
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
        Also return the cache ``lstm_backward`` needs. Without it the pass
        keeps only O(batch * units) state besides ``y``.
    check_finite : bool
        Reject NaN and inf in the inputs (like SciPy's ``check_finite``).
    guard_inputs : bool
        With ``return_cache``, fingerprint the caller's arrays that the
        cache refers to, so that ``lstm_backward`` refuses them if they
        changed. A caller that owns those arrays and leaves them alone until
        backward (as fastlstm's layers do) may pass False to skip the two
        hashing passes.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
        The hidden state at every step. With ``return_cache`` it is a
        read-only view whose write flag cannot be turned back on, because
        backward reads it.
    h_n, c_n : ndarray of shape (batch, units)
        The final hidden and cell states.
    cache : LSTMCache
        Only with ``return_cache=True``; see its docstring for its size.

    Notes
    -----
    float32 inputs give float32 results; anything else is computed in
    float64. The caller's arrays are never modified; the cache refers to
    them, so changing one before ``lstm_backward`` makes backward raise
    (see LSTMCache). Results are bitwise
    identical for every thread count. Inference reuses one scratch buffer
    per dtype from call to call (a few MB, never more than 64 MiB) instead
    of mapping fresh pages each time; training reuses the gates buffer of
    the last cache ``lstm_backward`` consumed (so an array taken from a
    consumed cache's ``gates`` may be overwritten by a later forward pass).
    """
    inputs = lstm_inputs(x, kernel, recurrent_kernel, bias, h0, c0, check_finite, _all_finite)
    batch, time, _ = inputs.x.shape
    units = inputs.recurrent_kernel.shape[0]
    dtype = inputs.dtype
    y = np.empty((batch, time, units), dtype)
    c_n = np.empty((batch, units), dtype)
    gates = _workspace.gates_buffer((batch, time, 4 * units), dtype) if return_cache else None
    cells = np.empty((batch, time, units), dtype) if return_cache else None
    kernel_args = (inputs.x, inputs.kernel, inputs.recurrent_kernel, inputs.bias,
                   inputs.h0, inputs.c0, y, c_n)

    if batch == 0 or time == 0:
        h_n, c_n = inputs.h0.copy(), inputs.c0.copy()
    else:
        # The forward pass calls no BLAS, so BLAS' threads are left alone.
        n_threads = _teams.team_size(get_num_threads())
        if return_cache:
            _teams.run(_lstm.forward_training, *kernel_args, gates, cells, n_threads=n_threads)
        else:
            size = _lstm.inference_workspace_size(batch, time, inputs.x.shape[2], units,
                                                  dtype.itemsize, n_threads)
            with _workspace.borrow(size, dtype) as workspace:
                _teams.run(_lstm.forward_inference, *kernel_args, workspace,
                           n_threads=n_threads)
        h_n = y[:, -1].copy()

    if not return_cache:
        return y, h_n, c_n
    originals = {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel,
                 "h0": h0, "c0": c0}
    cache = LSTMCache(
        x=inputs.x, kernel=inputs.kernel, recurrent_kernel=inputs.recurrent_kernel,
        h0=inputs.h0, c0=inputs.c0, y=y, gates=gates, cells=cells,
        fingerprints=_callers_arrays(inputs, originals) if guard_inputs else {})
    # The caller gets a view of y: NumPy will not make a view of a read-only
    # array writeable again, so the values backward reads stay as they were.
    y.flags.writeable = False
    return y.view(), h_n, c_n, cache


def lstm_backward(cache, dy, dh_n=None, dc_n=None, *, check_finite=True, retain_cache=False,
                  input_grad=True):
    """Backpropagate through an LSTM forward pass (BPTT).

    Parameters
    ----------
    cache : LSTMCache
        From ``lstm_forward(..., return_cache=True)``.
    dy : array_like of shape (batch, time, units) or None
        Gradient of the loss with respect to y (None: zero, e.g. when only
        the final state is used).
    dh_n, dc_n : array_like of shape (batch, units), optional
        Gradients with respect to the final states (None: zero).
    check_finite : bool
        Reject NaN and inf in the gradients.
    retain_cache : bool
        Keep the cache usable for another backward. By default backward
        writes its intermediate gradients over the cached gates to save
        memory, and a second backward through the same cache is an error.
    input_grad : bool
        Compute dx; with False, dx comes back None and costs nothing. A
        model's first layer passes False: its input is data.

    Returns
    -------
    LSTMGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``, shaped like
        ``x, kernel, recurrent_kernel, bias, h0, c0``. dkernel,
        drecurrent_kernel and dbias are views of consecutive rows of one
        (features + units + 1, 4 * units) array.

    Raises
    ------
    RuntimeError
        If the cache was consumed, or if x, a weight matrix, h0 or c0 was
        modified since the forward pass.
    """
    if not isinstance(cache, LSTMCache):
        raise TypeError("cache must come from fastlstm.functional.lstm_forward("
                        f"..., return_cache=True), got {type(cache).__name__}")
    if cache.gates is None:
        raise RuntimeError("this cache was already consumed by lstm_backward, which "
                           "overwrites it; pass retain_cache=True to backpropagate twice")
    batch, time, features = cache.x.shape
    units = cache.h0.shape[1]
    dtype = cache.x.dtype
    dy = output_gradient("dy", dy, (batch, time, units), "(batch, time, units)",
                         dtype, check_finite, _all_finite)
    dh_n = output_gradient("dh_n", dh_n, (batch, units), "(batch, units)", dtype, check_finite,
                           _all_finite)
    dc_n = output_gradient("dc_n", dc_n, (batch, units), "(batch, units)", dtype, check_finite,
                           _all_finite)

    _check_unchanged(cache)

    dz = cache.gates.copy() if retain_cache else cache.gates
    if not retain_cache:
        cache.gates = None
    # The three weight gradients are rows of one array: the kernel computes
    # them as one product (see _lstm.backward).
    weight_grads = np.empty((features + units + 1, 4 * units), dtype)
    grads = LSTMGrads(dx=np.empty((batch, time, features), dtype) if input_grad else None,
                      dkernel=weight_grads[:features],
                      drecurrent_kernel=weight_grads[features:features + units],
                      dbias=weight_grads[features + units],
                      dh0=np.empty((batch, units), dtype),
                      dc0=np.empty((batch, units), dtype))
    if batch == 0 or time == 0:
        if input_grad:
            grads.dx.fill(0)
        weight_grads.fill(0)
        grads.dh0[...] = 0 if dh_n is None else dh_n
        grads.dc0[...] = 0 if dc_n is None else dc_n
        return grads
    calls_blas = input_grad and _lstm.backward_calls_blas(features, units, dtype.itemsize)
    with blas_single_threaded() if calls_blas else nullcontext():
        _teams.run(_lstm.backward, dz, cache.x, cache.kernel, cache.recurrent_kernel,
                   cache.h0, cache.c0, cache.y, cache.cells, dy, dh_n, dc_n, grads.dx,
                   weight_grads, grads.dh0, grads.dc0,
                   n_threads=_teams.team_size(get_num_threads()))
    _workspace.recycle_gates(dz)
    return grads

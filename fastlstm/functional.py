"""Recurrent cells' forward and backward passes on the compiled engine.

Same signatures and numbers as fastlstm.reference, computed by the
recurrent driver fastlstm._recurrent (Cython + OpenMP, csrc/_recurrent.pyx),
one driver for every cell. This layer checks the arguments, allocates every
output and, when the backward pass calls BLAS (for the input gradient of a
layer with few features or a large kernel), holds BLAS to one thread; the
kernels do the rest without the GIL.
"""
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from . import _checks, _recurrent, _teams, _workspace
from ._sequences import RunOrder
from ._blas_control import blas_single_threaded
from ._threads import get_num_threads
from ._types import GRUGrads, LSTMGrads, PeepholeLSTMGrads, SimpleRNNGrads
from ._validation import (checked_lengths, checked_sample_blocks, dropout_extras,
                          output_gradient, recurrent_inputs)

__all__ = ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "simple_rnn_forward", "simple_rnn_backward", "LSTMCache", "GRUCache",
           "SimpleRNNCache", "LSTMGrads", "PeepholeLSTMGrads", "GRUGrads", "SimpleRNNGrads"]

_N_GATES = {"lstm": 4, "lstm_peephole": 4, "gru_reset_after": 3, "gru_reset_before": 3,
            "rnn_tanh": 1, "rnn_relu": 1}
_ACTIVATIONS = ("tanh", "relu")


@dataclass
class RecurrentCache:
    """What a forward pass with ``return_cache=True`` keeps for its backward.

    Besides the arrays below, x (``features`` values per (batch, time)), the
    weights, h0 and c0: the caller's own arrays where forward could use them
    as given, not copies, so that the weights are not held twice. Of each
    such array it keeps a fingerprint, and backward refuses to run if one
    changed (as PyTorch refuses a tensor modified in place after its use).
    Backward overwrites the gates unless asked to retain them. With lengths
    or reverse, the arrays of (batch, ...) are in the engine's run order
    (see fastlstm._sequences), copies of the caller's.
    """

    cell: str                     # the cell's name in fastlstm._recurrent.CELLS
    x: np.ndarray                 # (batch, time, features), after dropout
    kernel: np.ndarray            # (features, G), G = gates * units
    recurrent_kernel: np.ndarray  # (units, G)
    peephole: Optional[np.ndarray]  # (3, units), peephole LSTM only
    dropout_mask: Optional[np.ndarray]            # (batch, features)
    recurrent_dropout_mask: Optional[np.ndarray]  # (batch, units)
    h0: np.ndarray                # (batch, units)
    c0: Optional[np.ndarray]      # (batch, units), LSTM only
    y: np.ndarray                 # (batch, time, units), read-only
    gates: Optional[np.ndarray]   # (batch, time, G); None once consumed
    cells: Optional[np.ndarray]   # (batch, time, units), LSTM only
    aux: Optional[np.ndarray]     # (batch, time, units), GRU only
    fingerprints: Dict[str, int]  # of the fields above that are the caller's arrays
    order: RunOrder               # the rows' lengths and direction


class LSTMCache(RecurrentCache):
    """An LSTM's cache (with or without peepholes): 6 values per (batch,
    time, unit), the four activated gates, the cell state and the hidden
    state, the last being the returned ``y`` itself (24 bytes in float32, 48
    in float64)."""


class GRUCache(RecurrentCache):
    """A GRU's cache: 5 values per (batch, time, unit), the gates z, r and
    the candidate, one more value (reset after: the recurrent part of the
    candidate, p_h + c_h; reset before: r * h_{t-1}, the operand of its
    product), and the hidden state, the returned ``y`` (20 bytes in
    float32)."""


class SimpleRNNCache(RecurrentCache):
    """A simple RNN's cache: 2 values per (batch, time, unit), the
    pre-activations' buffer (which backward overwrites with their gradients)
    and the hidden state, the returned ``y`` (8 bytes in float32)."""


_CACHE_TYPES = {"lstm": LSTMCache, "lstm_peephole": LSTMCache, "gru_reset_after": GRUCache,
                "gru_reset_before": GRUCache, "rnn_tanh": SimpleRNNCache,
                "rnn_relu": SimpleRNNCache}


def batch_parts(cell, batch, units, n_threads, dtype=np.float32):
    """How many parts the engine cuts a forward pass' batch into for
    `n_threads` threads (fewer than n_threads: some threads would idle, or
    share one part's columns).

    Parameters
    ----------
    cell : str
        A name of fastlstm._recurrent.CELLS ("lstm", "gru_reset_after", ...).
    batch, units, n_threads : int
    dtype : numpy dtype
    """
    return _recurrent.parts(_recurrent.CELLS[cell], batch, units, np.dtype(dtype).itemsize,
                            n_threads)


def _all_finite(array):
    """One pass of the compiled check over a C-contiguous float array, without
    NumPy's temporary boolean array."""
    return _checks.all_finite(array.reshape(-1))


def _fingerprint(array):
    """A 64-bit hash of a C-contiguous array's bytes."""
    return _checks.fingerprint(array.reshape(-1).view(np.uint8))


def _callers_arrays(arrays, originals):
    """Fingerprints of the converted inputs that still share memory with the
    caller's arrays (the others are copies only the cache holds)."""
    return {name: _fingerprint(arrays[name]) for name, original in originals.items()
            if arrays[name] is not None and np.may_share_memory(arrays[name], original)}


def _originals(x, kernel, recurrent_kernel, h0, dropout_mask, recurrent_dropout_mask,
               c0=None, peephole=None):
    """The caller's arrays by the cache's names: those the cache may refer to,
    and so fingerprints (see _callers_arrays)."""
    return {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel,
            "peephole": peephole, "dropout_mask": dropout_mask,
            "recurrent_dropout_mask": recurrent_dropout_mask, "h0": h0, "c0": c0}


def _check_unchanged(cache, forward_name, backward_name):
    for name, fingerprint in cache.fingerprints.items():
        if _fingerprint(getattr(cache, name)) != fingerprint:
            raise RuntimeError(
                f"{name} was modified after {forward_name}; {backward_name} needs the values "
                "forward used. Change it after backward (as an optimizer step does), "
                f"or give {forward_name} a copy")


def _run_order(lengths, reverse, inputs):
    """The RunOrder of a forward pass' `lengths` and `reverse` arguments."""
    batch, time, _ = inputs.x.shape
    if lengths is not None:
        lengths = checked_lengths(lengths, batch, time)
    return RunOrder(lengths, batch, time, bool(reverse))


def _run_forward(cell, inputs, originals, return_cache, guard_inputs, order):
    """The engine's forward pass of `cell` over checked inputs, its rows run
    in `order`: y, the final states and, with `return_cache`, the cache."""
    code = _recurrent.CELLS[cell]
    dropout_mask = inputs.extras["dropout_mask"]
    recurrent_mask = order.states_to_run(inputs.extras["recurrent_dropout_mask"])
    # Input dropout is one multiply before the projection; the cache keeps
    # the product, the weight gradient's operand.
    x = inputs.x if dropout_mask is None else inputs.x * dropout_mask[:, None, :]
    x = order.to_run(x)
    kernel, recurrent_kernel = inputs.kernel, inputs.recurrent_kernel
    batch, time, features = x.shape
    units = recurrent_kernel.shape[0]
    dtype = inputs.dtype
    has_cell_state = len(inputs.states) == 2
    keeps_aux = _N_GATES[cell] == 3
    h0 = order.states_to_run(inputs.states[0])
    c0 = order.states_to_run(inputs.states[1]) if has_cell_state else None
    peephole = inputs.extras.get("peephole")
    y = np.empty((batch, time, units), dtype)
    c_n = np.empty((batch, units), dtype) if has_cell_state else None
    state_shape = (batch, time, units)
    gates = cells = aux = None
    if return_cache:
        gates = _workspace.gates_buffer((batch, time, kernel.shape[1]), dtype)
        cells = np.empty(state_shape, dtype) if has_cell_state else None
        aux = np.empty(state_shape, dtype) if keeps_aux else None

    if batch == 0 or time == 0:
        h_n = h0.copy()
        c_n = None if c0 is None else c0.copy()
    else:
        # The forward pass calls no BLAS, so BLAS' threads are left alone.
        n_threads = _teams.team_size(get_num_threads())
        args = (code, x, kernel, recurrent_kernel, inputs.bias.reshape(-1), peephole,
                recurrent_mask, h0, c0, y, c_n)
        if return_cache:
            _teams.run(_recurrent.forward_training, *args, gates, cells, aux,
                       n_threads=n_threads, lengths=order.run_lengths)
        else:
            size = _recurrent.inference_workspace_size(code, batch, time, features, units,
                                                       dtype.itemsize, n_threads)
            with _workspace.borrow(size, dtype) as workspace:
                _teams.run(_recurrent.forward_inference, *args, workspace, n_threads=n_threads,
                           lengths=order.run_lengths)
        h_n = order.last_outputs(y, h0)

    states = tuple(order.states_from_run(state) for state in (h_n, c_n)[:len(inputs.states)])
    if not return_cache:
        return (order.from_run(y), *states)
    arrays = {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel,
              "peephole": peephole, "dropout_mask": dropout_mask,
              "recurrent_dropout_mask": recurrent_mask, "h0": h0, "c0": c0}
    cache = _CACHE_TYPES[cell](
        cell=cell, x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, peephole=peephole,
        dropout_mask=dropout_mask, recurrent_dropout_mask=recurrent_mask,
        h0=h0, c0=c0, y=y, gates=gates, cells=cells, aux=aux,
        fingerprints=_callers_arrays(arrays, originals) if guard_inputs else {}, order=order)
    # The caller gets a view of y: NumPy will not make a view of a read-only
    # array writeable again, so the values backward reads stay as they were.
    y_out = order.from_run(y)
    y.flags.writeable = y_out.flags.writeable = False
    return (y_out.view(), *states, cache)


def _engine_blocks(sample_blocks, order):
    """The engine's sample blocks of the caller's `sample_blocks` (see
    _recurrent.backward): (members, bounds), block k's rows in run order."""
    if order.rows is None:
        members = np.arange(order.batch, dtype=np.intp)
    else:
        block_of_run_row = np.searchsorted(sample_blocks, order.rows, side="right") - 1
        members = np.argsort(block_of_run_row, kind="stable").astype(np.intp)
    return members, sample_blocks


def _run_backward(cache, dy, dh_n, dc_n, check_finite, retain_cache, input_grad, names,
                  sample_blocks=None, per_block=False):
    """The engine's backward pass through `cache`: (dx, the weight gradients'
    rows as one array, dh0, dc0, dpeephole); with `per_block`, the weight
    gradients' rows of every sample block, one block after the other, and
    dpeephole (3 n_blocks, units)."""
    forward_name, backward_name = names
    if cache.gates is None:
        raise RuntimeError(f"this cache was already consumed by {backward_name}, which "
                           "overwrites it; pass retain_cache=True to backpropagate twice")
    code = _recurrent.CELLS[cache.cell]
    order = cache.order
    batch, time, features = cache.x.shape
    units = cache.h0.shape[1]
    dtype = cache.x.dtype
    dy = output_gradient("dy", dy, (batch, time, units), "(batch, time, units)",
                         dtype, check_finite, _all_finite)
    dh_n = output_gradient("dh_n", dh_n, (batch, units), "(batch, units)", dtype, check_finite,
                           _all_finite)
    if cache.c0 is not None:
        dc_n = output_gradient("dc_n", dc_n, (batch, units), "(batch, units)", dtype,
                               check_finite, _all_finite)
    _check_unchanged(cache, forward_name, backward_name)
    dy, dh_n = order.to_run(dy), order.states_to_run(dh_n)
    dc_n = order.states_to_run(dc_n)

    blocks = None
    if sample_blocks is not None:
        blocks = _engine_blocks(checked_sample_blocks(sample_blocks, batch), order)
    elif per_block:
        raise ValueError("per_block=True needs sample_blocks")
    groups = len(blocks[1]) - 1 if per_block else 1

    dz = cache.gates.copy() if retain_cache else cache.gates
    if not retain_cache:
        cache.gates = None
    # The weight gradients are rows of one array: the kernel computes them
    # as one product where it can (see _recurrent.backward).
    rows = _recurrent.weight_grad_rows(code, features, units)
    weight_grads = np.empty((groups * rows, cache.kernel.shape[1]), dtype)
    dx = np.empty((batch, time, features), dtype) if input_grad else None
    dh0 = np.empty((batch, units), dtype)
    dc0 = np.empty((batch, units), dtype) if cache.c0 is not None else None
    dpeephole = np.empty((groups * 3, units), dtype) if cache.peephole is not None else None
    if batch == 0 or time == 0:
        for array in (dx, weight_grads, dpeephole):
            if array is not None:
                array.fill(0)
        dh0[...] = 0 if dh_n is None else dh_n
        if dc0 is not None:
            dc0[...] = 0 if dc_n is None else dc_n
        return dx, weight_grads, dh0, dc0, dpeephole
    calls_blas = input_grad and _recurrent.backward_calls_blas(code, features, units,
                                                               dtype.itemsize)
    n_threads = _teams.team_size(get_num_threads())
    # With sample blocks, the partial sums of the blocks take reused memory
    # (fresh pages of several copies of the gradients would cost more).
    scratch = 0 if blocks is None else _recurrent.weight_grad_scratch_size(
        code, batch, features, units, dtype.itemsize, n_threads, len(blocks[1]) - 1, per_block)
    with blas_single_threaded() if calls_blas else nullcontext(), \
            _workspace.borrow(scratch, dtype) if scratch else nullcontext() as grad_scratch:
        _teams.run(_recurrent.backward, code, dz, cache.x, cache.kernel, cache.recurrent_kernel,
                   cache.peephole, cache.recurrent_dropout_mask, cache.h0, cache.c0, cache.y,
                   cache.cells, cache.aux, dy, dh_n, dc_n, dx, weight_grads, dpeephole, dh0,
                   dc0, n_threads=n_threads, lengths=order.run_lengths, blocks=blocks,
                   per_block=per_block, grad_scratch=grad_scratch)
    dx = order.from_run(dx)
    if dx is not None and cache.dropout_mask is not None:
        dx *= cache.dropout_mask[:, None, :]
    _workspace.recycle_gates(dz)
    return dx, weight_grads, order.states_from_run(dh0), order.states_from_run(dc0), dpeephole


def _weight_rows(weights, per_block, rows):
    """Backward's weight gradients (rows, G), or with `per_block` the rows of
    every block one after the other, as (n_blocks, rows, G)."""
    return weights.reshape(-1, rows, weights.shape[-1]) if per_block else weights


def _check_cache(cache, cache_type, forward_name):
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must come from fastlstm.functional.{forward_name}("
                        f"..., return_cache=True), got {type(cache).__name__}")


def lstm_forward(x, kernel, recurrent_kernel, bias, h0=None, c0=None, *, peephole=None,
                 dropout_mask=None, recurrent_dropout_mask=None, lengths=None, reverse=False,
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
    peephole : array_like of shape (3, units), optional
        Peephole weights, rows i, f, o: i and f also see c_{t-1}, o sees c_t
        (Gers et al.; ONNX' P). None: a plain LSTM.
    dropout_mask : array_like of shape (batch, features), optional
    recurrent_dropout_mask : array_like of shape (batch, units), optional
        Dropout's masks, one per sequence, each value 0 or 1 / (1 - rate):
        the first multiplies x_t at every step, the second h_{t-1} where
        the recurrent products read it (Keras' dropout and
        recurrent_dropout, the mask shared by the gates).
    lengths : array_like of ints, shape (batch,), optional
        Steps each row runs, each in [0, time]: a row's later outputs are
        zeros and its final states are those after its last step (PyTorch's
        packed sequences, ONNX's sequence_lens; a row of length 0 keeps its
        initial states, where ONNX Runtime returns zeros). The engine runs rows longest
        first and drops finished rows from each step's products, so a batch
        costs the sum of its lengths. None: every row runs all steps.
    reverse : bool
        Run each row's steps last to first, within its own length; y stays
        aligned with x's time axis (ONNX's "reverse" direction).
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
    (see RecurrentCache). Results are bitwise identical for every thread
    count. Inference reuses one scratch buffer per dtype from call to call
    (a few MB, never more than 64 MiB) instead of mapping fresh pages each
    time; training reuses the gates buffer of the last cache a backward pass
    consumed (so an array taken from a consumed cache's ``gates`` may be
    overwritten by a later forward pass).
    """
    extras = (("peephole", peephole, (3, "units")),
              *dropout_extras(dropout_mask, recurrent_dropout_mask))
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0), ("c0", c0)),
                              n_gates=4, extras=extras, check_finite=check_finite,
                              all_finite=_all_finite)
    cell = "lstm" if peephole is None else "lstm_peephole"
    originals = _originals(x, kernel, recurrent_kernel, h0, dropout_mask,
                           recurrent_dropout_mask, c0=c0, peephole=peephole)
    return _run_forward(cell, inputs, originals, return_cache, guard_inputs,
                        _run_order(lengths, reverse, inputs))


def lstm_backward(cache, dy, dh_n=None, dc_n=None, *, check_finite=True, retain_cache=False,
                  input_grad=True, sample_blocks=None, per_block=False):
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
    sample_blocks : array_like of ints, shape (n_blocks + 1,), optional
        Cut the batch into blocks of samples, block k being samples
        ``sample_blocks[k]`` to ``sample_blocks[k + 1] - 1`` (from 0 to
        batch, never decreasing): the weight gradients are then summed over
        each block from zero and the blocks' sums added in block order. A
        block's sums depend on its own samples alone (not on the rest of the
        batch, its lengths' order, or the thread count), so a batch split
        between processes at block boundaries gives the same bits once the
        blocks' sums are added in the same order (fastlstm.distributed).
        None: the engine's own cut, which depends on the batch size.
    per_block : bool
        With ``sample_blocks``: return every block's weight gradients
        unsummed, each with a leading axis of n_blocks.

    Returns
    -------
    LSTMGrads or PeepholeLSTMGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``, shaped like
        ``x, kernel, recurrent_kernel, bias, h0, c0``, and ``dpeephole``
        (3, units) after a peephole LSTM's forward (with ``per_block`` the
        weight gradients have a leading axis of n_blocks). dkernel,
        drecurrent_kernel and dbias are views of consecutive rows of one
        (features + units + 1, 4 * units) array.

    Raises
    ------
    RuntimeError
        If the cache was consumed, or if x, a weight matrix, h0 or c0 was
        modified since the forward pass.
    """
    _check_cache(cache, LSTMCache, "lstm_forward")
    dx, weights, dh0, dc0, dpeephole = _run_backward(
        cache, dy, dh_n, dc_n, check_finite, retain_cache, input_grad,
        ("lstm_forward", "lstm_backward"), sample_blocks, per_block)
    features, units = cache.kernel.shape[0], cache.h0.shape[1]
    weights = _weight_rows(weights, per_block, features + units + 1)
    grads = (dx, weights[..., :features, :], weights[..., features:features + units, :],
             weights[..., features + units, :], dh0, dc0)
    if dpeephole is None:
        return LSTMGrads(*grads)
    return PeepholeLSTMGrads(*grads, _weight_rows(dpeephole, per_block, 3))


def gru_forward(x, kernel, recurrent_kernel, bias, h0=None, *, reset_after=True,
                dropout_mask=None, recurrent_dropout_mask=None, lengths=None, reverse=False,
                return_cache=False, check_finite=True, guard_inputs=True):
    """Run a GRU over a batch of sequences (Keras' layout and equations).

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, 3 * units)
        Input weights, gate blocks z (update), r (reset), h (candidate).
    recurrent_kernel : array_like of shape (units, 3 * units)
    bias : array_like of shape (2, 3 * units) with ``reset_after``, else (3 * units,)
        With ``reset_after``, the input row and the recurrent row.
    h0 : array_like of shape (batch, units), optional
        Initial state; zeros when None.
    reset_after : bool
        Apply the reset gate to the recurrent product (Keras' default,
        PyTorch's and cuDNN's form: one product per step), else to h_{t-1}
        before its product (Keras ``reset_after=False``, ONNX
        ``linear_before_reset=0``: two dependent products per step).
    dropout_mask, recurrent_dropout_mask : array_like, optional
        As for ``lstm_forward``; z * h_{t-1} keeps the state itself.
    lengths, reverse
        As for ``lstm_forward``.
    return_cache, check_finite, guard_inputs : bool
        As for ``lstm_forward``.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
    h_n : ndarray of shape (batch, units)
    cache : GRUCache
        Only with ``return_cache=True``; see its docstring for its size.
    """
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0),), n_gates=3,
                              bias_rows=2 if reset_after else None,
                              extras=dropout_extras(dropout_mask, recurrent_dropout_mask),
                              check_finite=check_finite, all_finite=_all_finite)
    cell = "gru_reset_after" if reset_after else "gru_reset_before"
    originals = _originals(x, kernel, recurrent_kernel, h0, dropout_mask, recurrent_dropout_mask)
    return _run_forward(cell, inputs, originals, return_cache, guard_inputs,
                        _run_order(lengths, reverse, inputs))


def gru_backward(cache, dy, dh_n=None, *, check_finite=True, retain_cache=False,
                 input_grad=True, sample_blocks=None, per_block=False):
    """Backpropagate through a GRU forward pass (BPTT).

    Parameters
    ----------
    cache : GRUCache
        From ``gru_forward(..., return_cache=True)``.
    dy : array_like of shape (batch, time, units) or None
    dh_n : array_like of shape (batch, units), optional
    check_finite, retain_cache, input_grad : bool
    sample_blocks, per_block
        As for ``lstm_backward``.

    Returns
    -------
    GRUGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``, shaped like ``x,
        kernel, recurrent_kernel, bias, h0``.
    """
    _check_cache(cache, GRUCache, "gru_forward")
    dx, weights, dh0, _, _ = _run_backward(cache, dy, dh_n, None, check_finite, retain_cache,
                                           input_grad, ("gru_forward", "gru_backward"),
                                           sample_blocks, per_block)
    features, units = cache.kernel.shape[0], cache.h0.shape[1]
    bias_rows = 2 if cache.cell == "gru_reset_after" else 1
    weights = _weight_rows(weights, per_block, features + units + bias_rows)
    bias = weights[..., features + units:, :]
    return GRUGrads(dx, weights[..., :features, :], weights[..., features:features + units, :],
                    bias if bias_rows == 2 else bias[..., 0, :], dh0)


def simple_rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, *, activation="tanh",
                       dropout_mask=None, recurrent_dropout_mask=None, lengths=None,
                       reverse=False, return_cache=False, check_finite=True,
                       guard_inputs=True):
    """Run a fully connected recurrent layer: h_t = act(x_t @ kernel + h_{t-1} @
    recurrent_kernel + bias).

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, units)
    recurrent_kernel : array_like of shape (units, units)
    bias : array_like of shape (units,)
    h0 : array_like of shape (batch, units), optional
    activation : {"tanh", "relu"}
    dropout_mask, recurrent_dropout_mask : array_like, optional
    lengths, reverse
        As for ``lstm_forward``.
    return_cache, check_finite, guard_inputs : bool
        As for ``lstm_forward``.

    Returns
    -------
    y : ndarray of shape (batch, time, units)
    h_n : ndarray of shape (batch, units)
    cache : SimpleRNNCache
        Only with ``return_cache=True``.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0),), n_gates=1,
                              extras=dropout_extras(dropout_mask, recurrent_dropout_mask),
                              check_finite=check_finite, all_finite=_all_finite)
    originals = _originals(x, kernel, recurrent_kernel, h0, dropout_mask, recurrent_dropout_mask)
    return _run_forward("rnn_" + activation, inputs, originals, return_cache, guard_inputs,
                        _run_order(lengths, reverse, inputs))


def simple_rnn_backward(cache, dy, dh_n=None, *, check_finite=True, retain_cache=False,
                        input_grad=True, sample_blocks=None, per_block=False):
    """Backpropagate through a simple RNN forward pass (BPTT).

    Returns
    -------
    SimpleRNNGrads
        ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``; the other
        parameters as for ``gru_backward``.
    """
    _check_cache(cache, SimpleRNNCache, "simple_rnn_forward")
    dx, weights, dh0, _, _ = _run_backward(cache, dy, dh_n, None, check_finite, retain_cache,
                                           input_grad,
                                           ("simple_rnn_forward", "simple_rnn_backward"),
                                           sample_blocks, per_block)
    features, units = cache.kernel.shape[0], cache.h0.shape[1]
    weights = _weight_rows(weights, per_block, features + units + 1)
    return SimpleRNNGrads(dx, weights[..., :features, :],
                          weights[..., features:features + units, :],
                          weights[..., features + units, :], dh0)

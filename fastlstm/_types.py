"""Types shared by the reference and the kernels."""
from typing import NamedTuple, Optional

import numpy as np


class LSTMGrads(NamedTuple):
    """Gradients of a loss with respect to every input of an LSTM forward pass.

    Attributes
    ----------
    dx : ndarray of shape (batch, time, features), or None
        None when backward was called with ``input_grad=False``.
    dkernel : ndarray of shape (features, 4 * units)
    drecurrent_kernel : ndarray of shape (units, 4 * units)
    dbias : ndarray of shape (4 * units,)
    dh0 : ndarray of shape (batch, units)
    dc0 : ndarray of shape (batch, units)
    """

    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray


class GRUGrads(NamedTuple):
    """Gradients of a loss with respect to every input of a GRU forward pass.

    Attributes
    ----------
    dx : ndarray of shape (batch, time, features), or None
        None when backward was called with ``input_grad=False``.
    dkernel : ndarray of shape (features, 3 * units)
    drecurrent_kernel : ndarray of shape (units, 3 * units)
    dbias : ndarray of shape (2, 3 * units) or (3 * units,)
        Shaped like the bias: two rows (input, recurrent) with
        ``reset_after=True``, one vector otherwise.
    dh0 : ndarray of shape (batch, units)
    """

    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray


class SimpleRNNGrads(NamedTuple):
    """Gradients of a loss with respect to every input of a simple RNN forward pass.

    Attributes
    ----------
    dx : ndarray of shape (batch, time, features), or None
        None when backward was called with ``input_grad=False``.
    dkernel : ndarray of shape (features, units)
    drecurrent_kernel : ndarray of shape (units, units)
    dbias : ndarray of shape (units,)
    dh0 : ndarray of shape (batch, units)
    """

    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray


class PeepholeLSTMGrads(NamedTuple):
    """Gradients of a loss with respect to every input of an LSTM forward pass
    with peephole connections.

    Attributes
    ----------
    dx : ndarray of shape (batch, time, features), or None
        None when backward was called with ``input_grad=False``.
    dkernel : ndarray of shape (features, 4 * units)
    drecurrent_kernel : ndarray of shape (units, 4 * units)
    dbias : ndarray of shape (4 * units,)
    dh0 : ndarray of shape (batch, units)
    dc0 : ndarray of shape (batch, units)
    dpeephole : ndarray of shape (3, units)
        Rows i, f, o, like the peephole.
    """

    dx: Optional[np.ndarray]
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray
    dh0: np.ndarray
    dc0: np.ndarray
    dpeephole: np.ndarray

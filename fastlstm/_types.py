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

"""Gate layouts of the recurrent cells in fastlstm, PyTorch and ONNX.

fastlstm keeps Keras' layout: kernel (features, gates * units) and
recurrent_kernel (units, gates * units), one column block per gate, LSTM
blocks i, f, c, o and GRU blocks z, r, h. PyTorch and ONNX keep the
transpose, one row block per gate: PyTorch's LSTM i, f, g, o and GRU
r, z, n; ONNX's LSTM i, o, f, c and GRU z, r, h. A simple RNN has one gate.

An order below lists, for each block of the foreign layout, the index of
the fastlstm block it holds.
"""
import numpy as np

from .. import layers

__all__ = ["GATES", "TORCH_ORDER", "ONNX_ORDER", "cell_kind", "to_rows", "from_rows",
           "reorder_vector", "restore_vector"]

# fastlstm's cell kinds by layer class, named as PyTorch names its modules.
_KINDS = {layers.LSTM: "LSTM", layers.GRU: "GRU", layers.SimpleRNN: "RNN"}

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
TORCH_ORDER = {"LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2), "RNN": (0,)}
ONNX_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (0, 1, 2), "RNN": (0,)}


def cell_kind(layer):
    """"LSTM", "GRU" or "RNN" for a fastlstm recurrent layer (by its exact class)."""
    return _KINDS[type(layer)]


def _blocks(array, n_blocks, axis):
    if array.shape[axis] % n_blocks:
        raise ValueError(f"an axis of {array.shape[axis]} does not split into {n_blocks} gates")
    return np.split(array, n_blocks, axis=axis)


def _inverse(order):
    return tuple(int(i) for i in np.argsort(order))


def to_rows(matrix, order):
    """A fastlstm kernel (n, gates * units) as foreign rows (gates * units, n).

    Parameters
    ----------
    matrix : ndarray of shape (n, gates * units)
    order : tuple of int
        For each foreign block, the fastlstm block it holds.

    Returns
    -------
    ndarray of shape (gates * units, n), float32, C-contiguous
    """
    blocks = _blocks(np.asarray(matrix), len(order), axis=1)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in order], axis=1).T,
                                dtype=np.float32)


def from_rows(rows, order):
    """The inverse of ``to_rows``: foreign rows (gates * units, n) as a
    fastlstm kernel (n, gates * units), float32."""
    blocks = _blocks(np.asarray(rows), len(order), axis=0)
    inverse = _inverse(order)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in inverse], axis=0).T,
                                dtype=np.float32)


def reorder_vector(vector, order):
    """A fastlstm bias (gates * units,) in a foreign gate order, float32."""
    blocks = _blocks(np.asarray(vector), len(order), axis=-1)
    return np.ascontiguousarray(np.concatenate([blocks[k] for k in order], axis=-1),
                                dtype=np.float32)


def restore_vector(vector, order):
    """The inverse of ``reorder_vector``."""
    return reorder_vector(vector, _inverse(order))

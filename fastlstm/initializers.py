"""Weight initializers with Keras' names and formulas.

Each takes a shape and returns a float32 array drawn from fastlstm's random
generator (see ``fastlstm.set_random_seed``).
"""
import numpy as np

from ._random import generator

__all__ = ["get", "glorot_uniform", "orthogonal", "zeros", "ones"]


def glorot_uniform(shape):
    """Uniform in ±sqrt(6 / (fan_in + fan_out)); fan_in, fan_out = shape of a 2-d kernel."""
    fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return generator().uniform(-limit, limit, size=shape).astype(np.float32)


def orthogonal(shape):
    """A matrix with orthonormal rows or columns (whichever are fewer), from a QR."""
    rows, cols = shape
    a = generator().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the result uniformly distributed
    return (q if rows >= cols else q.T).astype(np.float32)


def zeros(shape):
    return np.zeros(shape, np.float32)


def ones(shape):
    return np.ones(shape, np.float32)


_BY_NAME = {"glorot_uniform": glorot_uniform, "orthogonal": orthogonal, "zeros": zeros,
            "ones": ones}


def get(identifier):
    """An initializer from its name or a callable(shape) -> array."""
    if callable(identifier):
        return identifier
    try:
        return _BY_NAME[identifier]
    except (KeyError, TypeError):
        raise ValueError(f"unknown initializer {identifier!r}; "
                         f"valid names: {sorted(_BY_NAME)}") from None

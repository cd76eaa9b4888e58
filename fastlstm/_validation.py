"""Argument checks shared by the reference and the kernels.

Everything a kernel could trip over is caught here, in Python, before any
nogil code runs: ranks, shapes, dtypes, NaN/inf and sizes past 32-bit BLAS.
The checked arrays come back C-contiguous in one floating dtype; they may be
the caller's own arrays, so nothing downstream may write to them.

This module imports nothing compiled, so the NumPy reference can use it
without sharing code with the kernels it checks. The NaN/inf test is
NumPy's unless the caller passes another ``all_finite`` (fastlstm.functional
passes the compiled one-pass check).
"""
from typing import NamedTuple, Optional

import numpy as np

_BLAS_INT_MAX = 2**31 - 1


class LSTMInputs(NamedTuple):
    """Validated forward inputs, C-contiguous, all of dtype `dtype`."""

    x: np.ndarray                 # (batch, time, features)
    kernel: np.ndarray            # (features, 4 * units)
    recurrent_kernel: np.ndarray  # (units, 4 * units)
    bias: np.ndarray              # (4 * units,)
    h0: np.ndarray                # (batch, units)
    c0: np.ndarray                # (batch, units)
    dtype: np.dtype


def checked_int(name, value, minimum, maximum=None):
    """`value` as an int in [minimum, maximum], or an error that names it:
    TypeError for a non-integer (bools included), ValueError out of range."""
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int {bounds}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")
    return int(value)


def _real_array(name, value):
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array


def _check_shape(name, array, expected, description):
    if array.shape != expected:
        raise ValueError(f"{name} must have shape {description} = {expected}, "
                         f"got shape {array.shape}")


def compute_dtype(*arrays):
    """float32 when every input fits float32 exactly, else float64."""
    dtype = np.result_type(*[a.dtype for a in arrays], np.float32)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def numpy_all_finite(array):
    """Whether every value of `array` is finite."""
    return bool(np.isfinite(array).all())


def check_finite_arrays(all_finite=numpy_all_finite, **arrays):
    """Raise if an array holds NaN or infinity, as judged by `all_finite`
    (called with each array, C-contiguous float32 or float64 as
    lstm_inputs and output_gradient make them)."""
    for name, array in arrays.items():
        if array is not None and not all_finite(array):
            raise ValueError(f"{name} contains NaN or infinity "
                             "(pass check_finite=False to skip this check)")


def _check_blas_sizes(batch, time, features, units):
    largest = max(batch * time, time * 4 * units, time * features)
    if largest > _BLAS_INT_MAX:
        raise ValueError(
            f"x of shape {(batch, time, features)} with {units} units is too large: "
            f"batch*time, time*4*units and time*features must stay below 2**31 "
            f"(the BLAS index limit); split the batch or the sequence")


def lstm_inputs(x, kernel, recurrent_kernel, bias, h0=None, c0=None,
                check_finite=True, all_finite=numpy_all_finite) -> LSTMInputs:
    """Check and convert the arguments of an LSTM forward pass.

    Raises
    ------
    TypeError
        An argument is not a real numeric array.
    ValueError
        Wrong rank or shape (the message names the argument and the shape it
        must have), NaN or inf with ``check_finite``, or sizes past BLAS'
        32-bit indices.
    """
    x = _real_array("x", x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, time, features), got shape {x.shape}")
    batch, time, features = x.shape
    if features < 1:
        raise ValueError(f"x must have at least one feature, got shape {x.shape}")

    kernel = _real_array("kernel", kernel)
    if kernel.ndim != 2 or kernel.shape[0] != features or kernel.shape[1] % 4 or not kernel.shape[1]:
        raise ValueError(f"kernel must have shape (features, 4 * units) = ({features}, 4 * units) "
                         f"with units >= 1, got shape {kernel.shape}")
    units = kernel.shape[1] // 4
    recurrent_kernel = _real_array("recurrent_kernel", recurrent_kernel)
    _check_shape("recurrent_kernel", recurrent_kernel, (units, 4 * units), "(units, 4 * units)")
    bias = _real_array("bias", bias)
    _check_shape("bias", bias, (4 * units,), "(4 * units,)")
    states = {}
    for name, state in (("h0", h0), ("c0", c0)):
        if state is not None:
            state = _real_array(name, state)
            _check_shape(name, state, (batch, units), "(batch, units)")
        states[name] = state
    _check_blas_sizes(batch, time, features, units)

    given = [a for a in (x, kernel, recurrent_kernel, bias, *states.values()) if a is not None]
    dtype = compute_dtype(*given)
    converted = {name: (np.zeros((batch, units), dtype) if a is None
                        else np.ascontiguousarray(a, dtype=dtype))
                 for name, a in (("x", x), ("kernel", kernel),
                                 ("recurrent_kernel", recurrent_kernel), ("bias", bias),
                                 ("h0", states["h0"]), ("c0", states["c0"]))}
    if check_finite:
        check_finite_arrays(all_finite, **converted)
    return LSTMInputs(dtype=dtype, **converted)


def output_gradient(name, value, shape, description, dtype, check_finite,
                    all_finite=numpy_all_finite) -> Optional[np.ndarray]:
    """Check an incoming gradient (dy, dh_n, dc_n); None stays None (zero)."""
    if value is None:
        return None
    array = _real_array(name, value)
    _check_shape(name, array, shape, description)
    array = np.ascontiguousarray(array, dtype=dtype)
    if check_finite:
        check_finite_arrays(all_finite, **{name: array})
    return array

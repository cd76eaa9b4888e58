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


class RecurrentInputs(NamedTuple):
    """Validated forward inputs of a recurrent cell, C-contiguous, all of dtype `dtype`."""

    x: np.ndarray                 # (batch, time, features)
    kernel: np.ndarray            # (features, n_gates * units)
    recurrent_kernel: np.ndarray  # (units, n_gates * units)
    bias: np.ndarray              # (n_gates * units,) or (bias_rows, n_gates * units)
    states: tuple                 # initial states in the order given, each (batch, units)
    extras: dict                  # name -> array of its declared shape, or None
    dtype: np.dtype


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
    recurrent_inputs and output_gradient make them)."""
    for name, array in arrays.items():
        if array is not None and not all_finite(array):
            raise ValueError(f"{name} contains NaN or infinity "
                             "(pass check_finite=False to skip this check)")


def _gates_text(n_gates):
    """How a width of `n_gates` blocks of units reads in a message: "units", "3 * units"."""
    return "units" if n_gates == 1 else f"{n_gates} * units"


def _check_blas_sizes(batch, time, features, units, n_gates):
    largest = max(batch * time, time * n_gates * units, time * features)
    if largest > _BLAS_INT_MAX:
        gates = _gates_text(n_gates).replace(" ", "")
        raise ValueError(
            f"x of shape {(batch, time, features)} with {units} units is too large: "
            f"batch*time, time*{gates} and time*features must stay below 2**31 "
            f"(the BLAS index limit); split the batch or the sequence")


def _checked_x(x):
    x = _real_array("x", x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, time, features), got shape {x.shape}")
    if x.shape[2] < 1:
        raise ValueError(f"x must have at least one feature, got shape {x.shape}")
    return x


def _checked_kernel(kernel, features, n_gates):
    """`kernel` as an array of shape (features, n_gates * units), and units."""
    kernel = _real_array("kernel", kernel)
    width = kernel.shape[1] if kernel.ndim == 2 else 0
    if kernel.ndim != 2 or kernel.shape[0] != features or width % n_gates or not width:
        gates = _gates_text(n_gates)
        raise ValueError(f"kernel must have shape (features, {gates}) = ({features}, {gates}) "
                         f"with units >= 1, got shape {kernel.shape}")
    return kernel, width // n_gates


def _checked_bias(bias, units, n_gates, bias_rows):
    bias = _real_array("bias", bias)
    gates = _gates_text(n_gates)
    if bias_rows is None:
        _check_shape("bias", bias, (n_gates * units,), f"({gates},)")
    else:
        _check_shape("bias", bias, (bias_rows, n_gates * units), f"({bias_rows}, {gates})")
    return bias


def _shape_text(shape):
    """A shape of ints and size names as a message shows it: "(3, units)"."""
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def _checked_optional(name, value, shape, sizes):
    """An optional array of `shape`, written in ints and names of `sizes`
    (e.g. ``(3, "units")``); None stays None."""
    if value is None:
        return None
    array = _real_array(name, value)
    expected = tuple(sizes.get(d, d) for d in shape)
    _check_shape(name, array, expected, _shape_text(shape))
    return array


def recurrent_inputs(x, kernel, recurrent_kernel, bias, states, *, n_gates, bias_rows=None,
                     extras=(), check_finite=True,
                     all_finite=numpy_all_finite) -> RecurrentInputs:
    """Check and convert the arguments of a recurrent cell's forward pass.

    Parameters
    ----------
    x : array_like of shape (batch, time, features)
    kernel : array_like of shape (features, n_gates * units)
    recurrent_kernel : array_like of shape (units, n_gates * units)
    bias : array_like of shape (n_gates * units,) or (bias_rows, n_gates * units)
    states : sequence of (str, array_like of shape (batch, units) or None)
        The initial states by name, e.g. ``(("h0", h0), ("c0", c0))``; None
        becomes zeros.
    n_gates : int
        Blocks of units in the kernels' columns: 4 for an LSTM, 3 for a GRU,
        1 for a simple RNN.
    bias_rows : int, optional
        None for a bias vector; otherwise the number of bias rows (2 for a
        GRU that applies the reset gate after the recurrent product).
    extras : sequence of (str, array_like or None, tuple)
        Further optional weights by name, with their shape written in ints
        and the word "units", e.g. ``(("peephole", p, (3, "units")),)``.
    check_finite : bool
        Reject NaN and inf.
    all_finite : callable
        The NaN/inf test, called with each converted array.

    Returns
    -------
    RecurrentInputs
        C-contiguous arrays of one dtype: float32 when every given array fits
        float32 exactly, else float64. They may be the caller's own arrays.

    Raises
    ------
    TypeError
        An argument is not a real numeric array.
    ValueError
        Wrong rank or shape (the message names the argument and the shape it
        must have), NaN or inf with ``check_finite``, or sizes past BLAS'
        32-bit indices.
    """
    x = _checked_x(x)
    batch, time, features = x.shape
    kernel, units = _checked_kernel(kernel, features, n_gates)
    recurrent_kernel = _real_array("recurrent_kernel", recurrent_kernel)
    _check_shape("recurrent_kernel", recurrent_kernel, (units, n_gates * units),
                 f"(units, {_gates_text(n_gates)})")
    bias = _checked_bias(bias, units, n_gates, bias_rows)
    sizes = {"batch": batch, "units": units, "features": features}
    states = {name: _checked_optional(name, state, ("batch", "units"), sizes)
              for name, state in states}
    extras = {name: _checked_optional(name, value, shape, sizes)
              for name, value, shape in extras}
    _check_blas_sizes(batch, time, features, units, n_gates)

    weights = {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias}
    given = [a for a in (*weights.values(), *states.values(), *extras.values()) if a is not None]
    dtype = compute_dtype(*given)
    weights = {name: np.ascontiguousarray(a, dtype=dtype) for name, a in weights.items()}
    states = {name: (np.zeros((batch, units), dtype) if a is None
                     else np.ascontiguousarray(a, dtype=dtype)) for name, a in states.items()}
    extras = {name: (None if a is None else np.ascontiguousarray(a, dtype=dtype))
              for name, a in extras.items()}
    if check_finite:
        check_finite_arrays(all_finite, **weights, **states, **extras)
    return RecurrentInputs(states=tuple(states.values()), extras=extras, dtype=dtype, **weights)


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
    inputs = recurrent_inputs(x, kernel, recurrent_kernel, bias, (("h0", h0), ("c0", c0)),
                              n_gates=4, check_finite=check_finite, all_finite=all_finite)
    h0, c0 = inputs.states
    return LSTMInputs(inputs.x, inputs.kernel, inputs.recurrent_kernel, inputs.bias,
                      h0, c0, inputs.dtype)


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


def dropout_extras(dropout_mask, recurrent_dropout_mask):
    """The dropout masks as ``recurrent_inputs`` extras: (batch, features)
    for the inputs and (batch, units) for h_{t-1} before the products."""
    return (("dropout_mask", dropout_mask, ("batch", "features")),
            ("recurrent_dropout_mask", recurrent_dropout_mask, ("batch", "units")))


def checked_lengths(lengths, batch, time):
    """`lengths` as a new intp array (batch,) of ints in [0, time], or a
    ValueError naming ``lengths``."""
    array = np.asarray(lengths)
    if array.dtype.kind not in "iu":
        raise ValueError(f"lengths must be integers, got {array.dtype} values")
    if array.shape != (batch,):
        raise ValueError(f"lengths must have shape (batch,) = ({batch},), got shape "
                         f"{array.shape}")
    if array.size and (array.min() < 0 or array.max() > time):
        raise ValueError(f"lengths must lie in [0, time] = [0, {time}], got values from "
                         f"{array.min()} to {array.max()}")
    return array.astype(np.intp)


def checked_sample_blocks(sample_blocks, batch):
    """`sample_blocks` as a new intp array (n_blocks + 1,) of the blocks'
    first samples, from 0 to `batch`, never decreasing (just [0]: no block,
    for an empty batch); or a ValueError naming ``sample_blocks``."""
    array = np.asarray(sample_blocks)
    if array.dtype.kind not in "iu" or array.ndim != 1 or array.size < 1:
        raise ValueError(f"sample_blocks must be a 1-D array of integers (the blocks' first "
                         f"samples, then the batch), got {array.dtype} {array.shape}")
    starts = array.tolist()  # a few values: Python's comparisons beat NumPy's calls
    if starts[0] != 0 or starts[-1] != batch or any(b < a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"sample_blocks must run from 0 to the batch ({batch}) without "
                         f"decreasing, got {starts}")
    return array.astype(np.intp)


# Keyword arguments of Keras' layers, models, optimizers and callbacks that
# fastlstm does not take, with the value that makes each a no-op in Keras
# (the default): a Keras program passing that value is accepted, any other
# value is refused by name. ANY: every value is a no-op (a display name).
ANY = object()
NO_DEFAULT = object()
KERAS_DEFAULTS = {
    "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
    "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
    "bias_constraint": None, "seed": None, "unroll": False, "time_major": False,
    "implementation": 2, "use_cudnn": "auto", "dtype": None, "trainable": True,
    "autocast": True, "lora_rank": None, "lora_alpha": None, "quantization_config": None,
    "noise_shape": None, "sparse": False, "ragged": False, "tensor": None, "optional": False,
    "batch_size": None, "batch_shape": None, "input_dim": NO_DEFAULT,
    "batch_input_shape": NO_DEFAULT, "input_length": NO_DEFAULT,
    "zero_output_for_mask": NO_DEFAULT, "cell": NO_DEFAULT, "backward_layer": None,
    "weights": None, "loss_weights": None, "weighted_metrics": None, "run_eagerly": False,
    "steps_per_execution": 1, "jit_compile": "auto", "auto_scale_loss": True,
    "class_weight": None, "steps_per_epoch": None, "validation_steps": None,
    "validation_batch_size": None, "validation_freq": 1, "steps": None, "callbacks": None,
    "return_dict": False, "amsgrad": False, "weight_decay": None, "global_clipnorm": None,
    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
    "loss_scale_factor": None, "gradient_accumulation_steps": None, "name": ANY,
    "momentum": 0.0, "centered": False, "save_freq": "epoch", "overwrite": True,
    "zipped": None, "max_shard_size": None, "skip_mismatch": False, "safe_mode": True,
    "line_length": None, "positions": None, "expand_nested": False, "show_trainable": False,
    "layer_range": None, "mask": None,
}


def _is_default(name, value):
    default = KERAS_DEFAULTS[name]
    if default is ANY:
        return True
    if default is NO_DEFAULT:
        return False
    try:
        return bool(value == default) if value is not None or default is None else False
    except (TypeError, ValueError):
        return False


def refuse_unsupported(owner, arguments):
    """Raise for keyword `arguments` (a dict) that `owner` does not take: a
    ValueError naming those Keras knows and the value given (Keras' own
    defaults, which change nothing there, pass), else a TypeError as Python
    gives for an unexpected keyword."""
    unknown = [name for name in arguments if name not in KERAS_DEFAULTS]
    if unknown:
        raise TypeError(f"{owner} got unexpected keyword argument(s) "
                        f"{', '.join(map(repr, unknown))}")
    refused = [name for name, value in arguments.items() if not _is_default(name, value)]
    if refused:
        given = ", ".join(f"{name}={arguments[name]!r}" for name in refused)
        raise ValueError(f"{owner}: Keras' argument(s) {given} are not supported by fastlstm")

"""Bad input gets a clear error before any compiled code runs."""
import textwrap

import numpy as np
import pytest
from conftest import Problem, run_python

from fastlstm import functional, reference

MODULES = [functional, reference]
ARG_NAMES = ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0"]


def call_with(module, problem, **replace):
    args = dict(zip(ARG_NAMES, problem.inputs))
    args.update(replace)
    return module.lstm_forward(*[args[n] for n in ARG_NAMES])


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("name, bad, message", [
    ("x", np.zeros((2, 3)), r"x must have shape \(batch, time, features\)"),
    ("x", np.zeros((2, 3, 0)), "at least one feature"),
    ("kernel", np.zeros((5, 12)),
     r"kernel must have shape \(features, 4 \* units\) = \(2, 4 \* units\)"),
    ("kernel", np.zeros((2, 10)), r"kernel must have shape"),
    ("kernel", np.zeros((2, 0)), r"units >= 1"),
    ("recurrent_kernel", np.zeros((3, 3)),
     r"recurrent_kernel must have shape \(units, 4 \* units\) = \(3, 12\)"),
    ("bias", np.zeros((4, 3)), r"bias must have shape \(4 \* units,\) = \(12,\)"),
    ("h0", np.zeros((5, 3)), r"h0 must have shape \(batch, units\) = \(4, 3\)"),
    ("c0", np.zeros(3), r"c0 must have shape \(batch, units\) = \(4, 3\)"),
])
def test_wrong_shapes_name_the_argument_and_expected_shape(module, name, bad, message):
    with pytest.raises(ValueError, match=message):
        call_with(module, Problem(4, 5, 2, 3), **{name: bad})


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("name", ARG_NAMES)
@pytest.mark.parametrize("bad_dtype", [object, "U3", complex])
def test_non_numeric_dtypes_are_type_errors(module, name, bad_dtype):
    p = Problem(4, 5, 2, 3)
    value = dict(zip(ARG_NAMES, p.inputs))[name]
    with pytest.raises(TypeError, match=f"{name} must be a real numeric array"):
        call_with(module, p, **{name: value.astype(bad_dtype)})


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("name", ARG_NAMES)
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected(module, name, bad_value):
    p = Problem(4, 5, 2, 3)
    value = dict(zip(ARG_NAMES, p.inputs))[name].copy()
    value.flat[-1] = bad_value
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
        call_with(module, p, **{name: value})


def test_check_finite_false_skips_the_check_and_propagates_nan():
    p = Problem(20, 3, 2, 3)
    p.x[0, 0, 0] = np.nan
    y, _, _ = functional.lstm_forward(*p.inputs, check_finite=False)
    assert np.isnan(y[0]).all()
    assert np.isfinite(y[1:]).all()


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("name, bad, error, message", [
    ("dy", np.zeros((4, 5)), ValueError, r"dy must have shape \(batch, time, units\) = \(4, 5, 3\)"),
    ("dh_n", np.zeros((4, 2)), ValueError, r"dh_n must have shape \(batch, units\) = \(4, 3\)"),
    ("dc_n", np.zeros((3, 3)), ValueError, r"dc_n must have shape \(batch, units\) = \(4, 3\)"),
    ("dy", np.full((4, 5, 3), np.nan), ValueError, "dy contains NaN or infinity"),
    ("dh_n", np.full((4, 3), np.inf), ValueError, "dh_n contains NaN or infinity"),
    ("dc_n", np.zeros((4, 3), dtype=object), TypeError, "dc_n must be a real numeric array"),
])
def test_bad_output_gradients(module, name, bad, error, message):
    p = Problem(4, 5, 2, 3)
    _, _, _, cache = module.lstm_forward(*p.inputs, return_cache=True)
    grads = dict(zip(["dy", "dh_n", "dc_n"], p.output_grads))
    grads[name] = bad
    with pytest.raises(error, match=message):
        module.lstm_backward(cache, **grads)


def test_backward_rejects_a_foreign_cache():
    p = Problem(2, 3, 2, 3)
    reference_cache = reference.lstm_forward(*p.inputs, return_cache=True)[3]
    functional_cache = functional.lstm_forward(*p.inputs, return_cache=True)[3]
    with pytest.raises(TypeError, match="fastlstm.functional.lstm_forward"):
        functional.lstm_backward(reference_cache, p.dy)
    with pytest.raises(TypeError, match="fastlstm.reference.lstm_forward"):
        reference.lstm_backward(functional_cache, p.dy)
    with pytest.raises(TypeError):
        functional.lstm_backward({"gates": None}, p.dy)


def test_sizes_past_32_bit_blas_are_rejected_before_allocating():
    x = np.broadcast_to(np.float32(0), (2**16, 2**16, 1))  # no memory behind it
    kernel, recurrent_kernel, bias = np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="below 2\\*\\*31"):
        functional.lstm_forward(x, kernel, recurrent_kernel, bias)


def test_unallocatable_sizes_raise_memory_error():
    """Under a 3 GiB address-space limit, an 8 GB output is a MemoryError, not a crash."""
    script = textwrap.dedent("""
        import resource, numpy as np, fastlstm
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
        x = np.zeros((1000, 1000, 1), np.float32)
        w, b = np.zeros((1, 8000), np.float32), np.zeros(8000, np.float32)
        r = np.zeros((2000, 8000), np.float32)
        try:
            fastlstm.functional.lstm_forward(x, w, r, b)
        except MemoryError:
            print("MemoryError")
    """)
    assert run_python(script) == "MemoryError"

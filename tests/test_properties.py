"""Properties of the kernels and of models, checked on random problems.

Hypothesis draws the problems: shapes (an empty batch or sequence
included, and a few larger fixed shapes), input dtypes that the kernels
convert, memory layouts, optional initial states and output gradients, and
thread counts. On every one, fastlstm.functional must match
fastlstm.reference, give the same bits for every thread count, leave the
caller's arrays as they were, and refuse bad input with ValueError or
TypeError.

The examples are derandomized, so a run tests the same problems every time
(for one version of Hypothesis). ``FASTLSTM_HYPOTHESIS_SCALE=20 pytest
tests/test_properties.py`` draws 20 times as many, new ones on every run.
"""
import os
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import TOLERANCE, relative_error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastlstm
from fastlstm import functional, reference
from fastlstm.layers import LSTM, Dense, Dropout

INPUT_NAMES = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")
OUTPUT_GRAD_NAMES = ("dy", "dh_n", "dc_n")
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")
LAYOUTS = ("C", "F", "strided", "readonly", "reversed")
# Past the small ones: batches above a 16-row part and above the 8 rows a
# step reads the weights for as given, features enough for dx by BLAS,
# units past a SIMD vector and a 128-column panel.
LARGER_SHAPES = ((33, 5, 16, 37), (17, 3, 70, 20), (9, 4, 3, 129), (1, 12, 2, 64))

_SCALE = float(os.environ.get("FASTLSTM_HYPOTHESIS_SCALE", "1"))


def bounded(max_examples):
    """Settings that keep a property's examples few, fast and reproducible."""
    return settings(max_examples=max(1, round(max_examples * _SCALE)), deadline=None,
                    derandomize=_SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ------------------------------------------------------------------ problems

def _shapes(batch, time, features, units):
    return {"x": (batch, time, features), "kernel": (features, 4 * units),
            "recurrent_kernel": (units, 4 * units), "bias": (4 * units,),
            "h0": (batch, units), "c0": (batch, units), "dy": (batch, time, units),
            "dh_n": (batch, units), "dc_n": (batch, units)}


def _scales(features, units):
    """Standard deviations that keep most gates out of their flat tails."""
    return {"kernel": 0.5 / np.sqrt(features), "recurrent_kernel": 0.5 / np.sqrt(units),
            "bias": 0.3}


def _cast(values, dtype):
    """float64 `values` in `dtype`; integers are rounded, so weights become
    mostly 0 and +-1 and inputs small integers."""
    if np.dtype(dtype).kind in "iu":
        return np.rint(values).astype(dtype)
    return values.astype(dtype)


def _lay_out(array, layout):
    """The values of `array` in a fresh array of the given memory layout."""
    if layout == "C":
        return array.copy(order="C")
    if layout == "F":
        return array.copy(order="F")
    if layout == "strided":
        padded = np.zeros(tuple(2 * n + 1 for n in array.shape), array.dtype)
        view = padded[tuple(slice(1, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if layout == "readonly":
        copy = array.copy()
        copy.flags.writeable = False
        return copy
    if layout == "reversed":  # negative strides on every axis
        return np.flip(np.flip(array).copy())
    raise AssertionError(layout)


@dataclass
class Case:
    """One drawn problem: the caller's arrays and what was drawn to make them."""

    spec: dict
    arrays: dict  # name -> array, or None for an omitted state or gradient

    def __repr__(self):
        return f"Case({self.spec})"

    @property
    def forward_args(self):
        return [self.arrays[n] for n in INPUT_NAMES]

    @property
    def backward_args(self):
        return [self.arrays[n] for n in OUTPUT_GRAD_NAMES]

    @property
    def dtype(self):
        """float32 when every forward input promotes with float32 to float32,
        else float64: the dtype the kernels compute and return in."""
        given = [a.dtype for a in self.forward_args if a is not None]
        promoted = np.result_type(*given, np.float32)
        return np.dtype(np.float32 if promoted == np.float32 else np.float64)

    def in_float64(self):
        """The arrays as the kernels see them (converted to self.dtype), in float64."""
        return {name: None if a is None else np.asarray(a, self.dtype).astype(np.float64)
                for name, a in self.arrays.items()}


# The dtypes arrays may come in, by the dtype the kernels should compute in:
# mostly that dtype itself, else ones converted to it.
DTYPE_POOLS = {"float32": ("float32",) * 4 + ("float16", "int8"),
               "float64": ("float64",) * 4 + ("float32", "float16", "int8", "int32", "int64")}


@st.composite
def cases(draw, larger=True):
    """A Case: shape, seed, and per array a dtype, a layout and whether it is given."""
    if larger and draw(st.sampled_from([False] * 4 + [True])):
        shape = draw(st.sampled_from(LARGER_SHAPES))
    else:  # sampled_from draws an empty batch or sequence as often as any other size
        shape = (draw(st.sampled_from(range(9))), draw(st.sampled_from(range(7))),
                 draw(st.integers(1, 5)), draw(st.integers(1, 9)))
    dtype_choice = st.sampled_from(DTYPE_POOLS[draw(st.sampled_from(sorted(DTYPE_POOLS)))])
    spec = {"shape": shape, "seed": draw(st.integers(0, 2**32 - 1)), "dtypes": {},
            "layouts": {}, "omitted": []}
    for name in INPUT_NAMES + OUTPUT_GRAD_NAMES:
        if name in ("h0", "c0") + OUTPUT_GRAD_NAMES and not draw(st.booleans()):
            spec["omitted"].append(name)
            continue
        spec["dtypes"][name] = draw(dtype_choice)
        spec["layouts"][name] = draw(st.sampled_from(LAYOUTS))
    return make_case(spec)


def make_case(spec):
    """The Case that `spec` (as drawn by `cases`) describes."""
    batch, time, features, units = spec["shape"]
    rng = np.random.default_rng(spec["seed"])
    scales = _scales(features, units)
    arrays = {}
    for name, shape in _shapes(batch, time, features, units).items():
        values = scales.get(name, 1.0) * rng.standard_normal(shape)
        if name in spec["omitted"]:
            arrays[name] = None
        else:
            arrays[name] = _lay_out(_cast(values, spec["dtypes"][name]), spec["layouts"][name])
    return Case(spec, arrays)


# ------------------------------------------------------------------ running

def run_all(module, case, threads=1, input_grad=True):
    """Every result of forward with cache, backward and inference, by name
    (the kernels' on `threads` threads)."""
    args = case.forward_args if module is functional else _float64_args(case, INPUT_NAMES)
    grad_args = (case.backward_args if module is functional
                 else _float64_args(case, OUTPUT_GRAD_NAMES))
    with fastlstm.threads(threads):
        y, h_n, c_n, cache = module.lstm_forward(*args, return_cache=True)
        grads = module.lstm_backward(cache, *grad_args, input_grad=input_grad)
        inference = module.lstm_forward(*args)
    results = {"y": y, "h_n": h_n, "c_n": c_n, **grads._asdict()}
    results.update(zip(["inference y", "inference h_n", "inference c_n"], inference))
    return results


def _float64_args(case, names):
    converted = case.in_float64()
    return [converted[n] for n in names]


def snapshot(case):
    """Copies of the caller's arrays, with their layout and write flag."""
    return {name: (a.copy(), a.strides, a.flags.writeable)
            for name, a in case.arrays.items() if a is not None}


def assert_untouched(case, before):
    for name, (copy, strides, writeable) in before.items():
        array = case.arrays[name]
        assert array.dtype == copy.dtype and array.strides == strides, name
        assert array.flags.writeable == writeable, name
        assert array.tobytes() == copy.tobytes(), f"{name} was modified"


def assert_bitwise_equal(a, b, what):
    if a is None or b is None:
        assert a is None and b is None, what
        return
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert a.tobytes() == b.tobytes(), what


# ---------------------------------------------------- kernels vs reference

@bounded(400)
@given(case=cases(), threads=st.integers(1, 4))
def test_kernels_match_the_reference_and_leave_inputs_alone(case, threads):
    before = snapshot(case)
    actual = run_all(functional, case, threads)
    assert_untouched(case, before)
    expected = run_all(reference, case)
    batch, time, features, units = case.spec["shape"]
    shapes = _shapes(batch, time, features, units)
    shapes.update(y=shapes["dy"], h_n=shapes["h0"], c_n=shapes["c0"], dx=shapes["x"],
                  dkernel=shapes["kernel"], drecurrent_kernel=shapes["recurrent_kernel"],
                  dbias=shapes["bias"], dh0=shapes["h0"], dc0=shapes["c0"])
    for name, value in actual.items():
        assert value.dtype == case.dtype, name
        assert value.shape == shapes[name.split()[-1]], name
        assert relative_error(value, expected[name]) <= TOLERANCE[case.dtype.type], name


@bounded(300)
@given(case=cases(), threads=st.lists(st.integers(1, 4), min_size=2, max_size=2, unique=True),
       input_grad=st.booleans())
def test_results_are_bitwise_identical_for_every_thread_count(case, threads, input_grad):
    first, second = threads
    one = run_all(functional, case, first, input_grad)
    other = run_all(functional, case, second, input_grad)
    for name in one:
        assert_bitwise_equal(one[name], other[name], name)


@bounded(100)
@given(case=cases())
def test_backward_without_dx_or_with_a_retained_cache_gives_the_same_bits(case):
    full = run_all(functional, case)
    with fastlstm.threads(1):
        _, _, _, cache = functional.lstm_forward(*case.forward_args, return_cache=True)
        retained = functional.lstm_backward(cache, *case.backward_args, retain_cache=True)
        without_dx = functional.lstm_backward(cache, *case.backward_args, input_grad=False)
    assert without_dx.dx is None
    for name in GRAD_NAMES:
        assert_bitwise_equal(getattr(retained, name), full[name], name)
        if name != "dx":
            assert_bitwise_equal(getattr(without_dx, name), full[name], name)


@bounded(100)
@given(case=cases(larger=False), data=st.data())
def test_nan_in_one_sequence_stays_in_that_sequence(case, data):
    """With check_finite=False a NaN runs through the kernels without a
    crash: the sequence that holds it turns NaN from that step on, and every
    other sequence keeps its bits."""
    batch, time, features, units = case.spec["shape"]
    assume(batch >= 1 and time >= 1)
    b, t, f = (data.draw(st.integers(0, n - 1)) for n in (batch, time, features))
    clean = run_all(functional, case)
    x = np.array(case.arrays["x"], dtype=case.dtype)  # the values the kernels saw
    x[b, t, f] = np.nan
    case.arrays["x"] = x
    with fastlstm.threads(1):
        y, h_n, c_n, cache = functional.lstm_forward(*case.forward_args, return_cache=True,
                                                     check_finite=False)
        grads = functional.lstm_backward(cache, *case.backward_args, check_finite=False)
    assert np.isnan(y[b, t:]).all() and np.isnan(h_n[b]).all()
    others = np.arange(batch) != b
    for name, value in [("y", y), ("h_n", h_n), ("c_n", c_n), ("dx", grads.dx),
                        ("dh0", grads.dh0), ("dc0", grads.dc0)]:
        assert_bitwise_equal(value[others], clean[name][others], name)


BATCH_AXIS_NAMES = ("x", "h0", "c0", "dy", "dh_n", "dc_n")
PER_SEQUENCE_RESULTS = ("y", "h_n", "c_n", "dh0", "dc0",
                        "inference y", "inference h_n", "inference c_n")


@bounded(100)
@given(case=cases(), data=st.data())
def test_each_sequence_gets_the_same_bits_in_any_sub_batch(case, data):
    """Sequences are computed independently: a slice of the batch gives
    exactly the slice of the results. dx may come from one BLAS product
    over all batch * time rows, whose rounding BLAS chooses by the number of
    rows, so it is held to the tolerance instead (the weight gradients, sums
    over the batch, are not per sequence)."""
    batch = case.spec["shape"][0]
    assume(batch >= 2)
    start = data.draw(st.integers(0, batch - 1))
    stop = data.draw(st.integers(start + 1, batch))
    whole = run_all(functional, case)
    part = Case(case.spec, {name: (a[start:stop] if name in BATCH_AXIS_NAMES and a is not None
                                   else a) for name, a in case.arrays.items()})
    sliced = run_all(functional, part)
    for name in PER_SEQUENCE_RESULTS:
        assert_bitwise_equal(sliced[name], whole[name][start:stop], f"{name}[{start}:{stop}]")
    dx = whole["dx"][start:stop]
    assert sliced["dx"].shape == dx.shape
    assert relative_error(sliced["dx"], dx) <= TOLERANCE[case.dtype.type]


# ------------------------------------------------------------ bad input

def _wrong_shape(shape, mutation, axis):
    """`shape` with one more axis, one fewer, or one axis one longer."""
    if mutation == "extra axis":
        return shape + (1,)
    if mutation == "missing axis":
        return shape[:-1]
    grown = list(shape)
    grown[axis % len(shape)] += 1
    return tuple(grown)


# The axes whose growth no other argument can absorb: x's batch and time
# and kernel's 4 * units columns may change together with other arguments.
_GROWABLE_AXES = {"x": (2,), "kernel": (0, 1), "recurrent_kernel": (0, 1), "bias": (0,),
                  "h0": (0, 1), "c0": (0, 1), "dy": (0, 1, 2), "dh_n": (0, 1), "dc_n": (0, 1)}


@bounded(120)
@given(case=cases(larger=False), data=st.data())
def test_a_wrongly_shaped_argument_is_a_value_error(case, data):
    given_names = [n for n in INPUT_NAMES + OUTPUT_GRAD_NAMES if case.arrays[n] is not None]
    name = data.draw(st.sampled_from(given_names))
    mutation = data.draw(st.sampled_from(["extra axis", "missing axis", "longer axis"]))
    axis = data.draw(st.sampled_from(_GROWABLE_AXES[name]))
    good = case.arrays[name]
    case.arrays[name] = np.zeros(_wrong_shape(good.shape, mutation, axis), good.dtype)
    for module in (functional, reference):
        with pytest.raises(ValueError, match="shape") as error:
            _, _, _, cache = module.lstm_forward(*case.forward_args, return_cache=True)
            module.lstm_backward(cache, *case.backward_args)
        assert name in str(error.value) or (name == "x" and "kernel" in str(error.value))


@bounded(100)
@given(case=cases(larger=False), data=st.data())
def test_nan_or_infinity_is_a_value_error_when_checked(case, data):
    names = [n for n in INPUT_NAMES + OUTPUT_GRAD_NAMES
             if case.arrays[n] is not None and case.arrays[n].size]
    assume(names)
    name = data.draw(st.sampled_from(names))
    bad = np.array(case.arrays[name], dtype=case.dtype)
    bad.flat[data.draw(st.integers(0, bad.size - 1))] = data.draw(
        st.sampled_from([np.nan, np.inf, -np.inf]))
    case.arrays[name] = bad
    before = snapshot(case)
    for module in (functional, reference):
        with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
            _, _, _, cache = module.lstm_forward(*case.forward_args, return_cache=True)
            module.lstm_backward(cache, *case.backward_args)
    assert_untouched(case, before)


@bounded(60)
@given(case=cases(larger=False), data=st.data())
def test_a_non_real_dtype_is_a_type_error(case, data):
    given_names = [n for n in INPUT_NAMES + OUTPUT_GRAD_NAMES if case.arrays[n] is not None]
    name = data.draw(st.sampled_from(given_names))
    bad_dtype = data.draw(st.sampled_from([np.complex64, np.complex128, object, "U4"]))
    case.arrays[name] = case.arrays[name].astype(bad_dtype)
    for module in (functional, reference):
        with pytest.raises(TypeError, match=f"{name} must be a real numeric array"):
            _, _, _, cache = module.lstm_forward(*case.forward_args, return_cache=True)
            module.lstm_backward(cache, *case.backward_args)


# ------------------------------------------------------------------ models

@dataclass
class ModelCase:
    """A small random Sequential and inputs for it."""

    spec: dict

    def __repr__(self):
        return f"ModelCase({self.spec})"

    def build(self):
        spec = self.spec
        layers = []
        for k, (units, return_sequences, dropout) in enumerate(spec["lstms"]):
            shape = (spec["time"], spec["features"]) if k == 0 else None
            layers.append(LSTM(units, return_sequences=return_sequences, input_shape=shape))
            if dropout is not None:
                layers.append(Dropout(dropout))
        layers.append(Dense(spec["dense"], activation=spec["activation"]))
        model = fastlstm.Sequential(layers)
        rng = np.random.default_rng(spec["seed"])
        model.set_weights([0.6 * rng.standard_normal(w.shape) for w in model.get_weights()])
        x = rng.standard_normal((spec["samples"], spec["time"], spec["features"]))
        return model, x.astype(np.float32)


@st.composite
def model_cases(draw):
    n_lstms = draw(st.integers(1, 2))
    lstms = [(draw(st.integers(1, 9)), k < n_lstms - 1 or draw(st.booleans()),
              draw(st.sampled_from([None, 0.0, 0.5]))) for k in range(n_lstms)]
    samples = draw(st.integers(0, 24))
    return ModelCase({
        "time": draw(st.integers(1, 6)), "features": draw(st.integers(1, 4)), "lstms": lstms,
        "dense": draw(st.integers(1, 3)),
        "activation": draw(st.sampled_from([None, "relu", "tanh", "sigmoid"])),
        "samples": samples, "seed": draw(st.integers(0, 2**32 - 1)),
        "cuts": sorted(draw(st.lists(st.integers(0, samples), max_size=3))),
        "batch_size": draw(st.integers(1, 9))})


def _recurrent_outputs(model, x):
    """What the layers before the model's last (a Dense) pass it, at inference."""
    for layer in model.layers[:-1]:
        x = layer.forward(x, training=False)
    return x


def _dense_rounding_bound(dense, x, output):
    """How far two float32 evaluations of activation(x @ kernel + bias) that
    sum in different orders may differ: twice the classic bound of a dot
    product of n terms, (n + 1) eps (|x| @ |kernel| + |bias|), the
    activations being at most 1-Lipschitz, plus their own rounding."""
    kernel, bias = (w.astype(np.float64) for w in dense.weights)
    eps = np.finfo(np.float32).eps
    magnitude = np.abs(x.astype(np.float64)) @ np.abs(kernel) + np.abs(bias)
    return 2 * (kernel.shape[0] + 1) * eps * magnitude + 4 * eps * (1 + np.abs(output))


@bounded(100)
@given(case=model_cases())
def test_predict_is_the_same_for_any_thread_count_and_any_split_of_the_batch(case):
    """Bitwise for every thread count. Split into sub-batches, the LSTM
    layers give the same bits; the Dense head multiplies by NumPy's matmul,
    whose BLAS may round one row differently in a product of another number
    of rows (a matrix-vector product for one row), so the predictions are
    held to float32 rounding."""
    model, x = case.build()
    with fastlstm.threads(1):
        expected = model.predict(x)
    assert expected.shape == (len(x),) + model.output_shape
    with fastlstm.threads(2):
        assert_bitwise_equal(model.predict(x), expected, "2 threads")
    bounds = [0, *case.spec["cuts"], len(x)]
    recurrent = _recurrent_outputs(model, x)
    pieces = [_recurrent_outputs(model, x[a:b]) for a, b in zip(bounds, bounds[1:])]
    assert_bitwise_equal(np.concatenate(pieces), recurrent, f"LSTM outputs split at {bounds}")
    bound = _dense_rounding_bound(model.layers[-1], recurrent, expected)
    for split in ([model.predict(x[a:b]) for a, b in zip(bounds, bounds[1:])],
                  [model.predict(x, batch_size=case.spec["batch_size"])]):
        predicted = np.concatenate(split)
        assert predicted.dtype == expected.dtype and predicted.shape == expected.shape
        assert (np.abs(predicted - expected.astype(np.float64)) <= bound).all()

"""The compiled kernels (fastlstm.functional) against the NumPy reference."""
import contextlib

import numpy as np
import pytest
from conftest import TOLERANCE, Problem, relative_error, run

from fastlstm import _build, _recurrent, _workspace, functional, reference

GRAD_NAMES = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"]

# (batch, time, features, units): batch 1, batch below the thread count and
# above one batch part of 16 rows, time 1, features 1, and the units of the
# issue; many features; several parts at 1 thread; input projections over
# more than one row block; one feature too few for dx by the kernels' own
# product, and the fewest (15 and 16; see _recurrent.backward_calls_blas).
SHAPES = [
    (1, 1, 1, 1), (1, 5, 3, 3), (2, 1, 4, 17), (3, 4, 1, 50), (17, 3, 2, 3),
    (5, 3, 3, 100), (33, 4, 5, 17), (2, 3, 6, 129), (40, 2, 3, 50), (1, 6, 1, 129),
    (5, 3, 70, 9), (18, 4, 65, 33), (130, 3, 70, 20), (20, 30, 3, 80), (6, 3, 15, 24),
    (6, 3, 16, 24),
]


def assert_matches_reference(problem, dtype, **forward_kwargs):
    tolerance = TOLERANCE[dtype]
    expected = run(reference, problem.as_float64())
    actual = run(functional, problem, **forward_kwargs)
    for name, a, e in zip(["y", "h_n", "c_n"], actual[:3], expected[:3]):
        assert a.dtype == dtype, name
        assert relative_error(a, e) <= tolerance, name
    for name in GRAD_NAMES:
        a, e = getattr(actual[3], name), getattr(expected[3], name)
        assert a.dtype == dtype, name
        assert relative_error(a, e) <= tolerance, name
    inference = functional.lstm_forward(*problem.inputs)
    for name, a, e in zip(["y", "h_n", "c_n"], inference, expected[:3]):
        assert relative_error(a, e) <= tolerance, f"inference {name}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_gradients_match_reference(shape, dtype):
    assert_matches_reference(Problem(*shape, dtype=dtype, seed=len(shape) + shape[3]), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_without_initial_state(dtype):
    assert_matches_reference(Problem(4, 3, 2, 5, dtype=dtype, with_state=False), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturated_gates(dtype):
    """Large weights push sigmoid and tanh into their flat tails."""
    assert_matches_reference(Problem(3, 6, 4, 8, dtype=dtype, scale=40.0), dtype)


@pytest.mark.parametrize("level", _build.simd_levels())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_simd_level_matches_reference(level, dtype):
    _build.set_simd_level(level)
    try:
        assert_matches_reference(Problem(18, 4, 3, 37, dtype=dtype, seed=3), dtype)
    finally:
        _build.set_simd_level(None)


def test_long_inference_uses_time_blocks_and_stays_exact():
    """16 rows x 1024 gate columns in float32 exceed one 2 MiB block: several blocks."""
    problem = Problem(16, 40, 3, 256, dtype=np.float32, seed=5)
    expected = reference.lstm_forward(*problem.as_float64().inputs)
    actual = functional.lstm_forward(*problem.inputs)
    for a, e in zip(actual, expected):
        assert relative_error(a, e) <= TOLERANCE[np.float32]


# Batch 1, 8 (the most rows a step reads the weights as given) and 9
# (packed again); units whose columns end in a partial vector; 300 units
# in float32 are shared by 2 threads.
@pytest.mark.parametrize("batch, units", [(1, 37), (8, 100), (9, 50), (2, 300)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_step_calls_chain_to_the_whole_sequence_bitwise(batch, units, dtype, threads):
    """A one-step call multiplies by the weights as given, a longer one by
    packed weights: streaming a sequence step by step must still give the
    whole sequence's numbers exactly."""
    import fastlstm

    p = Problem(batch, 5, 3, units, dtype=dtype, seed=units)
    x, kernel, recurrent_kernel, bias, h0, c0 = p.inputs
    with fastlstm.threads(threads):
        y, h_n, c_n = functional.lstm_forward(*p.inputs)
        h, c = h0, c0
        for t in range(x.shape[1]):
            y_t, h, c = functional.lstm_forward(x[:, t:t + 1], kernel, recurrent_kernel,
                                                bias, h, c)
            np.testing.assert_array_equal(y_t[:, 0], y[:, t])
    np.testing.assert_array_equal(h, h_n)
    np.testing.assert_array_equal(c, c_n)


def test_dy_none_is_zero():
    p = Problem(4, 3, 2, 5)
    grads = []
    for dy in (None, np.zeros_like(p.dy)):
        _, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
        grads.append(functional.lstm_backward(cache, dy, p.dh_n, p.dc_n))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtypes, expected", [
    ((np.float32,) * 6, np.float32),
    ((np.float16,) + (np.float32,) * 5, np.float32),
    ((np.float32,) * 5 + (np.float64,), np.float64),
    ((np.int64,) + (np.float32,) * 5, np.float64),
    ((np.int32,) * 6, np.float64),
])
def test_dtype_conversion(dtypes, expected):
    p = Problem(2, 3, 2, 3)
    inputs = [a.astype(d) for a, d in zip(p.inputs, dtypes)]
    y, h_n, c_n, cache = functional.lstm_forward(*inputs, return_cache=True)
    grads = functional.lstm_backward(cache, p.dy, p.dh_n, p.dc_n)
    ref = reference.lstm_forward(*[a.astype(np.float64) for a in inputs])
    assert y.dtype == h_n.dtype == c_n.dtype == expected
    assert all(g.dtype == expected for g in grads)
    assert relative_error(y, ref[0]) <= TOLERANCE[expected]


def _odd_layouts(a):
    """The same values as `a` in Fortran order, as a strided view, read-only."""
    fortran = np.asfortranarray(a)
    padded = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    strided = padded[tuple(slice(None, None, 2) for _ in a.shape)]
    strided[...] = a
    readonly = a.copy()
    readonly.flags.writeable = False
    return {"fortran": fortran, "strided": strided, "readonly": readonly}


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_odd_layouts_give_the_contiguous_result(layout, dtype):
    p = Problem(20, 4, 3, 6, dtype=dtype)
    expected = run(functional, p)
    for name in ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "dy", "dh_n", "dc_n"]:
        setattr(p, name, _odd_layouts(getattr(p, name))[layout])
    actual = run(functional, p)
    for a, e in zip(actual[:3], expected[:3]):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(actual[3], expected[3]):
        np.testing.assert_array_equal(a, e)


def test_backward_holds_blas_to_one_thread_only_when_it_calls_blas(monkeypatch):
    """BLAS is held to one thread exactly when the kernel says backward calls
    it (for dx); otherwise threadpoolctl's limit (tens of us a call) is skipped."""
    decisions = {f: _recurrent.backward_calls_blas(_recurrent.CELLS["lstm"], f, 24, 4) for f in range(1, 65)}
    with_blas = next(f for f, calls in decisions.items() if calls)
    without_blas = next(f for f, calls in decisions.items() if not calls)
    held = []

    def recording_limit():
        held.append(True)
        return contextlib.nullcontext()

    monkeypatch.setattr(functional, "blas_single_threaded", recording_limit)
    for features, expected in [(with_blas, [True]), (without_blas, [])]:
        held.clear()
        problem = Problem(4, 3, features, 24, dtype=np.float32, seed=features)
        assert_matches_reference(problem, np.float32)
        assert held == expected, features


@pytest.mark.parametrize("module", [functional, reference])
@pytest.mark.parametrize("features", [3, 20])  # dx by BLAS, by the packed product
def test_backward_without_input_grad_gives_the_same_weight_grads(module, features, monkeypatch):
    """input_grad=False returns dx None, everything else bitwise as with dx,
    and (calling no BLAS) skips the BLAS thread limit."""
    held = []
    monkeypatch.setattr(functional, "blas_single_threaded",
                        lambda: held.append(True) or contextlib.nullcontext())
    p = Problem(5, 4, features, 24, dtype=np.float32, seed=features)
    _, _, _, full = run(module, p)
    cache = module.lstm_forward(*p.inputs, return_cache=True)[3]
    held.clear()
    partial = module.lstm_backward(cache, *p.output_grads, input_grad=False)
    assert partial.dx is None and held == []
    for name in GRAD_NAMES[1:]:
        np.testing.assert_array_equal(getattr(partial, name), getattr(full, name), name)


def test_caller_arrays_are_never_modified():
    p = Problem(20, 4, 3, 6, dtype=np.float32)
    arrays = list(p.inputs) + list(p.output_grads)
    before = [a.copy() for a in arrays]
    y, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    functional.lstm_backward(cache, *p.output_grads)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["x", "kernel", "recurrent_kernel", "h0", "c0"])
def test_backward_refuses_inputs_changed_after_forward(name):
    """The cache refers to the caller's arrays instead of copying them, so a
    change after forward, even of one ulp, must stop backward rather than
    bend the gradients."""
    p = Problem(5, 3, 2, 4)
    _, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    assert getattr(cache, name) is getattr(p, name)  # held, not copied
    changed = getattr(p, name)
    changed.flat[-1] = np.nextafter(changed.flat[-1], np.inf)
    with pytest.raises(RuntimeError, match=f"{name} was modified after lstm_forward"):
        functional.lstm_backward(cache, *p.output_grads)


def test_unguarded_forward_skips_the_fingerprints_and_gives_the_same_gradients():
    p = Problem(5, 3, 2, 4, dtype=np.float32)
    _, _, _, guarded = functional.lstm_forward(*p.inputs, return_cache=True)
    _, _, _, unguarded = functional.lstm_forward(*p.inputs, return_cache=True,
                                                 guard_inputs=False)
    assert guarded.fingerprints and not unguarded.fingerprints
    for a, e in zip(functional.lstm_backward(unguarded, *p.output_grads),
                    functional.lstm_backward(guarded, *p.output_grads)):
        np.testing.assert_array_equal(a, e)


def test_inputs_forward_converted_may_change_after_it():
    """float16 weights are converted, so the cache holds its own copy."""
    p = Problem(5, 3, 2, 4, dtype=np.float32)
    x, kernel, recurrent_kernel, bias, h0, c0 = p.inputs
    half = recurrent_kernel.astype(np.float16)
    _, _, _, cache = functional.lstm_forward(x, kernel, half, bias, h0, c0, return_cache=True)
    _, _, _, same = functional.lstm_forward(x, kernel, half.copy(), bias, h0, c0,
                                            return_cache=True)
    half[...] = 7.0
    for a, e in zip(functional.lstm_backward(cache, *p.output_grads),
                    functional.lstm_backward(same, *p.output_grads)):
        np.testing.assert_array_equal(a, e)


def test_y_is_read_only_while_cached_and_backward_consumes_the_cache():
    p = Problem(3, 2, 2, 3)
    y, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    with pytest.raises(ValueError, match="read-only"):
        y[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
        y.flags.writeable = True
    functional.lstm_backward(cache, p.dy)
    with pytest.raises(RuntimeError, match="retain_cache"):
        functional.lstm_backward(cache, p.dy)


def test_retain_cache_allows_a_second_identical_backward():
    p = Problem(18, 3, 2, 3)
    _, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    first = functional.lstm_backward(cache, *p.output_grads, retain_cache=True)
    second = functional.lstm_backward(cache, *p.output_grads)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def _grads_alone(problem):
    """The gradients of `problem` computed with no spare gates buffer around."""
    _workspace.drop_spare_gates()
    return run(functional, problem)[3]


def test_a_consumed_caches_gates_buffer_serves_the_next_forward_pass():
    first, second = Problem(6, 5, 3, 20, seed=1), Problem(6, 5, 3, 20, seed=2)
    expected = _grads_alone(second)
    _workspace.drop_spare_gates()
    _, _, _, cache = functional.lstm_forward(*first.inputs, return_cache=True)
    consumed = cache.gates
    functional.lstm_backward(cache, *first.output_grads)
    _, _, _, cache = functional.lstm_forward(*second.inputs, return_cache=True)
    assert np.shares_memory(cache.gates, consumed)
    for a, e in zip(functional.lstm_backward(cache, *second.output_grads), expected):
        np.testing.assert_array_equal(a, e)


def test_live_caches_never_share_a_gates_buffer():
    problems = [Problem(4, 3, 2, 8, seed=s) for s in range(3)]
    expected = [_grads_alone(p) for p in problems]
    _workspace.drop_spare_gates()
    a = functional.lstm_forward(*problems[0].inputs, return_cache=True)[3]
    b = functional.lstm_forward(*problems[1].inputs, return_cache=True)[3]
    assert not np.shares_memory(a.gates, b.gates)
    grads_a = functional.lstm_backward(a, *problems[0].output_grads)
    c = functional.lstm_forward(*problems[2].inputs, return_cache=True)[3]  # takes a's buffer
    assert not np.shares_memory(c.gates, b.gates)
    grads_b = functional.lstm_backward(b, *problems[1].output_grads)
    grads_c = functional.lstm_backward(c, *problems[2].output_grads)
    for got, want in zip([grads_a, grads_b, grads_c], expected):
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)


def test_a_retained_cache_keeps_its_gates_while_other_passes_run():
    p, other = Problem(5, 4, 3, 6, seed=3), Problem(5, 4, 3, 6, seed=4)
    _, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    first = functional.lstm_backward(cache, *p.output_grads, retain_cache=True)
    run(functional, other)  # recycles the retained backward's working copy, not the cache's gates
    _, _, _, other_cache = functional.lstm_forward(*other.inputs, return_cache=True)
    assert not np.shares_memory(other_cache.gates, cache.gates)
    second = functional.lstm_backward(cache, *p.output_grads)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_smaller_pass_uses_the_start_of_a_larger_spare_and_a_larger_one_gets_new_memory():
    _workspace.drop_spare_gates()
    run(functional, Problem(6, 5, 3, 20))
    spare = _workspace._spare_gates[np.dtype(np.float64)]
    _, _, _, small = functional.lstm_forward(*Problem(2, 3, 3, 10).inputs, return_cache=True)
    assert np.shares_memory(small.gates, spare) and small.gates.shape == (2, 3, 40)
    _, _, _, large = functional.lstm_forward(*Problem(7, 5, 3, 20).inputs, return_cache=True)
    assert not np.shares_memory(large.gates, spare)


@pytest.mark.parametrize("batch, time", [(0, 3), (3, 0), (0, 0)])
def test_empty_batch_or_time(batch, time):
    p = Problem(batch, time, 2, 4)
    y, h_n, c_n, cache = functional.lstm_forward(*p.inputs, return_cache=True)
    assert y.shape == (batch, time, 4)
    np.testing.assert_array_equal(h_n, p.h0)
    np.testing.assert_array_equal(c_n, p.c0)
    grads = functional.lstm_backward(cache, p.dy, p.dh_n, p.dc_n)
    expected = reference.lstm_backward(reference.lstm_forward(*p.inputs, return_cache=True)[3],
                                       p.dy, p.dh_n, p.dc_n)
    for name, a, e in zip(GRAD_NAMES, grads, expected):
        assert a.shape == e.shape, name
        np.testing.assert_array_equal(a, e)
    y_inference, h_inference, _ = functional.lstm_forward(*p.inputs)
    assert y_inference.shape == (batch, time, 4)
    np.testing.assert_array_equal(h_inference, p.h0)

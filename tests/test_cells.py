"""The engine's GRU (both reset conventions), simple RNN (tanh, relu) and
peephole LSTM (fastlstm.functional) against the NumPy reference: shapes,
dtypes, every SIMD level, thread counts (bitwise), shared parts, one-step
calls, odd layouts and the guards of the cache."""
import dataclasses

import numpy as np
import pytest
from conftest import TOLERANCE, relative_error
from test_reference_cells import CELLS as REFERENCE_CELLS
from test_reference_cells import (dropout_masks, forward, output_weights, random_args, run,
                                  with_options)

import fastlstm
from fastlstm import _build, functional

# The same cells, computed by the engine.
CELLS = {name: dataclasses.replace(cell, forward=getattr(functional, cell.forward.__name__),
                                   backward=getattr(functional, cell.backward.__name__))
         for name, cell in REFERENCE_CELLS.items()}

# (batch, time, features, units): single rows and steps, units below, at and
# across a vector's width, several batch parts, features past the kernels'
# own dx product, and inference over several time blocks.
SHAPES = [(1, 1, 1, 1), (1, 5, 3, 3), (2, 1, 4, 17), (3, 4, 1, 50), (17, 3, 2, 3),
          (33, 4, 5, 17), (2, 3, 6, 129), (6, 3, 16, 24), (20, 12, 3, 80), (16, 24, 3, 200)]


def reference_of(name, args, weights, options):
    """Outputs and gradients of the float64 reference."""
    args64 = {k: v.astype(np.float64) for k, v in args.items()}
    cell = with_options(REFERENCE_CELLS[name], **options)
    return run(cell, args64, [w.astype(np.float64) for w in weights])


def assert_close(name, args, weights, dtype, **options):
    """The engine's outputs and gradients (with forward `options`) against
    the reference's, and its inference pass."""
    expected_outputs, expected_grads = reference_of(name, args, weights, options)
    cell = with_options(CELLS[name], **options)
    outputs, grads = run(cell, args, weights)
    tolerance = TOLERANCE[dtype]
    for k, (a, e) in enumerate(zip(outputs, expected_outputs)):
        assert a.dtype == dtype
        assert relative_error(a, e) <= tolerance, f"output {k}"
    for field in type(grads)._fields:
        a, e = getattr(grads, field), getattr(expected_grads, field)
        assert a.dtype == dtype, field
        assert relative_error(a, e) <= tolerance, field
    inference = forward(cell, args)
    for k, (a, e) in enumerate(zip(inference, expected_outputs)):
        assert relative_error(a, e) <= tolerance, f"inference output {k}"


def masks_of(args, dtype):
    batch, _, features = args["x"].shape
    masks = dropout_masks(batch, features, args["recurrent_kernel"].shape[0])
    return {k: v.astype(dtype) for k, v in masks.items()}


def problem(name, shape, dtype, seed=0):
    args = random_args(REFERENCE_CELLS[name], *shape, dtype=dtype, seed=seed)
    if name == "rnn_relu":  # keep the pre-activations off relu's kink at 0
        args["bias"] = args["bias"] + np.asarray(0.05, dtype)
    return args, output_weights(REFERENCE_CELLS[name], args, seed=seed + 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(CELLS))
def test_forward_and_gradients_match_the_reference(name, shape, dtype):
    args, weights = problem(name, shape, dtype, seed=shape[3])
    assert_close(name, args, weights, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 3, 2, 3), (17, 4, 5, 20), (6, 3, 16, 24)], ids=str)
@pytest.mark.parametrize("name", list(CELLS))
def test_dropout_masks_match_the_reference(name, shape, dtype):
    args, weights = problem(name, shape, dtype, seed=shape[0])
    assert_close(name, args, weights, dtype, **masks_of(args, dtype))


@pytest.mark.parametrize("level", _build.simd_levels())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CELLS))
def test_every_simd_level_matches_the_reference(name, level, dtype):
    _build.set_simd_level(level)
    try:
        for shape in [(18, 4, 3, 37), (2, 3, 2, 5)]:  # a vector's tail; rows narrower than one
            args, weights = problem(name, shape, dtype, seed=3)
            assert_close(name, args, weights, dtype)
            assert_close(name, args, weights, dtype, **masks_of(args, dtype))
    finally:
        _build.set_simd_level(None)


def outputs_and_grads(cell, args, weights, threads):
    with fastlstm.threads(threads):
        outputs, grads = run(cell, args, weights)
        inference = forward(cell, args)
    return [*outputs, *(g for g in grads if g is not None), *inference]


# Batch parts at 1-4 threads; a small batch whose recurrent weights take
# more than 1 MiB (GRU at 300 units, a simple RNN at 520, in float32), which
# the threads share by splitting its columns and units.
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("shape", [(37, 6, 5, 21), (3, 4, 3, 300), (2, 3, 2, 520)], ids=str)
@pytest.mark.parametrize("name", list(CELLS))
def test_results_are_bitwise_identical_for_every_thread_count(name, shape, dropout):
    args, weights = problem(name, shape, np.float32, seed=7)
    cell = with_options(CELLS[name], **(masks_of(args, np.float32) if dropout else {}))
    expected = outputs_and_grads(cell, args, weights, 1)
    for threads in (2, 3, 4):
        for a, e in zip(outputs_and_grads(cell, args, weights, threads), expected):
            np.testing.assert_array_equal(a, e, err_msg=f"{threads} threads")


def states_of(name, args):
    return [args[n] for n in REFERENCE_CELLS[name].states]


@pytest.mark.parametrize("batch, units", [(1, 37), (8, 100), (9, 50), (2, 300)])
@pytest.mark.parametrize("name", list(CELLS))
def test_one_step_calls_chain_to_the_whole_sequence_bitwise(name, batch, units):
    """One step of a few rows reads the weights as given, longer calls read
    them packed: the numbers must not change."""
    cell = CELLS[name]
    args, _ = problem(name, (batch, 5, 3, units), np.float32, seed=units)
    whole = forward(cell, args)
    step_args = dict(args)
    for t in range(args["x"].shape[1]):
        step_args["x"] = args["x"][:, t:t + 1]
        y_t, *states = forward(cell, step_args)
        np.testing.assert_array_equal(y_t[:, 0], whole[0][:, t])
        step_args.update(zip(cell.states, states))
    for state, expected in zip(states, whole[1:]):
        np.testing.assert_array_equal(state, expected)


def odd_layout(array):
    """The same values in Fortran order (or strided, for vectors)."""
    if array.ndim == 1:
        return np.repeat(array, 2)[::2]
    return np.asfortranarray(array)


@pytest.mark.parametrize("name", list(CELLS))
def test_odd_layouts_give_the_contiguous_result(name):
    args, weights = problem(name, (5, 4, 3, 6), np.float32)
    expected = run(CELLS[name], args, weights)
    odd_args = {k: odd_layout(v) for k, v in args.items()}
    actual = run(CELLS[name], odd_args, [odd_layout(w) for w in weights])
    for a, e in zip(actual[0], expected[0]):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(actual[1], expected[1]):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("name", list(CELLS))
def test_the_callers_arrays_are_never_modified(name):
    args, weights = problem(name, (4, 3, 2, 5), np.float32)
    copies = {k: v.copy() for k, v in args.items()}
    weight_copies = [w.copy() for w in weights]
    run(CELLS[name], args, weights)
    for k in args:
        np.testing.assert_array_equal(args[k], copies[k], err_msg=k)
    for w, c in zip(weights, weight_copies):
        np.testing.assert_array_equal(w, c)


@pytest.mark.parametrize("name", list(CELLS))
def test_backward_refuses_inputs_changed_after_forward(name):
    args, weights = problem(name, (3, 4, 2, 5), np.float32)
    *_, cache = forward(CELLS[name], args, return_cache=True)
    args["recurrent_kernel"][0, 0] += 1
    with pytest.raises(RuntimeError, match="recurrent_kernel was modified"):
        CELLS[name].backward(cache, *weights)


@pytest.mark.parametrize("name", list(CELLS))
def test_a_cache_is_consumed_unless_retained(name):
    args, weights = problem(name, (3, 4, 2, 5), np.float32)
    *_, cache = forward(CELLS[name], args, return_cache=True)
    first = CELLS[name].backward(cache, *weights, retain_cache=True)
    second = CELLS[name].backward(cache, *weights)
    for a, b in zip(first, second):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="already consumed"):
        CELLS[name].backward(cache, *weights)


def test_backward_refuses_the_cache_of_another_cell():
    args, weights = problem("gru_reset_after", (3, 4, 2, 5), np.float32)
    *_, cache = forward(CELLS["gru_reset_after"], args, return_cache=True)
    with pytest.raises(TypeError, match="simple_rnn_forward"):
        functional.simple_rnn_backward(cache, weights[0])
    with pytest.raises(TypeError, match="lstm_forward"):
        functional.lstm_backward(cache, weights[0])


@pytest.mark.parametrize("batch, time", [(0, 3), (3, 0)])
@pytest.mark.parametrize("name", list(CELLS))
def test_empty_batch_or_time_give_shaped_results(name, batch, time):
    args, _ = problem(name, (batch, time, 2, 5), np.float32)
    *outputs, cache = forward(CELLS[name], args, return_cache=True)
    assert outputs[0].shape == (batch, time, 5)
    for state, name_ in zip(outputs[1:], REFERENCE_CELLS[name].states):
        np.testing.assert_array_equal(state, args[name_])
    grads = CELLS[name].backward(cache, np.zeros((batch, time, 5), np.float32))
    assert grads.dkernel.shape == args["kernel"].shape and not grads.dkernel.any()
    assert grads.dbias.shape == args["bias"].shape


@pytest.mark.parametrize("name", list(CELLS))
def test_nan_is_rejected_before_the_kernels(name):
    args, _ = problem(name, (3, 4, 2, 5), np.float32)
    args["recurrent_kernel"][1, 2] = np.nan
    with pytest.raises(ValueError, match="recurrent_kernel contains NaN"):
        forward(CELLS[name], args)


def test_wrong_bias_shape_names_the_argument_and_the_expected_shape():
    args, _ = problem("gru_reset_after", (3, 4, 2, 5), np.float32)
    args["bias"] = args["bias"][0]
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 3 \* units\)"):
        forward(CELLS["gru_reset_after"], args)


def test_the_engine_refuses_optional_arrays_of_another_dtype_or_size():
    """The compiled entry points check the arrays they take as plain objects
    (states, masks, caches) before any nogil code reads them."""
    from fastlstm import _recurrent

    batch, time, features, units = 2, 3, 2, 4
    args, _ = problem("peephole_lstm", (batch, time, features, units), np.float32)
    call = dict(cell=_recurrent.CELLS["lstm_peephole"], x=args["x"], kernel=args["kernel"],
                recurrent_kernel=args["recurrent_kernel"], bias=args["bias"],
                peephole=args["peephole"], recurrent_mask=None, h0=args["h0"], c0=args["c0"],
                y=np.empty((batch, time, units), np.float32),
                c_n=np.empty((batch, units), np.float32),
                workspace=np.empty(100000, np.float32), n_threads=1)
    _recurrent.forward_inference(*call.values())
    for name, bad in [("c0", args["c0"].astype(np.float64)), ("peephole", args["peephole"][:2]),
                      ("c_n", np.empty((batch, units - 1), np.float32)),
                      ("recurrent_mask", np.ones((batch, units), np.float64))]:
        with pytest.raises(ValueError, match="-byte elements"):
            _recurrent.forward_inference(*{**call, name: bad}.values())


@pytest.mark.parametrize("mask", ["dropout_mask", "recurrent_dropout_mask"])
def test_backward_refuses_a_dropout_mask_changed_after_forward(mask):
    args, weights = problem("gru_reset_after", (3, 4, 2, 5), np.float32)
    masks = masks_of(args, np.float32)
    cell = with_options(CELLS["gru_reset_after"], **masks)
    *_, cache = forward(cell, args, return_cache=True)
    masks[mask][0, 0] = 1 - masks[mask][0, 0]
    with pytest.raises(RuntimeError, match=f"{mask} was modified"):
        CELLS["gru_reset_after"].backward(cache, *weights)

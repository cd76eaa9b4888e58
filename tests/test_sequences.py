"""Sequences of different lengths and reversed runs, for every cell: the
reference against finite differences and its own definition (each row's
steps run alone), the engine against the reference, thread counts and batch
neighbours (bitwise), and the checks of ``lengths``."""
import dataclasses

import numpy as np
import pytest
from conftest import TOLERANCE, relative_error
from test_reference_cells import CELLS as REFERENCE_CELLS
from test_reference_cells import (Cell, forward, numerical_gradient, output_weights, random_args,
                                  run, with_options)

import fastlstm
from fastlstm import _build, functional, reference
from fastlstm._types import LSTMGrads

CELLS = {**REFERENCE_CELLS,
         "lstm": Cell(reference.lstm_forward, reference.lstm_backward, 4, states=("h0", "c0"),
                      grads_type=LSTMGrads)}
ENGINE_CELLS = {name: dataclasses.replace(cell, forward=getattr(functional, cell.forward.__name__),
                                          backward=getattr(functional, cell.backward.__name__))
                for name, cell in CELLS.items()}


def problem(name, shape, dtype=np.float64, seed=0):
    args = random_args(CELLS[name], *shape, dtype=dtype, seed=seed)
    if name == "rnn_relu":  # keep the pre-activations off relu's kink at 0
        args["bias"] = args["bias"] + np.asarray(0.05, dtype)
    return args, output_weights(CELLS[name], args, seed=seed + 1)


def random_lengths(batch, time, seed):
    """Lengths in [0, time], with a full-length and an empty row when there is room."""
    lengths = np.random.default_rng(seed).integers(0, time + 1, batch)
    lengths[0] = time
    if batch > 2:
        lengths[-1] = 0
    return lengths


# ------------------------------------------------------------- the reference


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", list(CELLS))
def test_reference_gradients_with_lengths_match_finite_differences(name, reverse):
    batch, time, features, units = 3, 4, 2, 3
    args, weights = problem(name, (batch, time, features, units), seed=21)
    cell = with_options(CELLS[name], lengths=[2, 4, 0], reverse=reverse)
    _, grads = run(cell, args, weights)
    for arg in args:
        numerical = numerical_gradient(cell, args, arg, weights)
        assert relative_error(getattr(grads, "d" + arg), numerical) < 1e-7, arg


@pytest.mark.parametrize("name", list(CELLS))
def test_reference_rows_run_their_own_steps(name):
    """Row b's outputs are those of its first lengths[b] steps run alone
    (last to first with reverse); later outputs are zeros; its final states
    are those after its last step; an empty row keeps its initial states."""
    args, _ = problem(name, (3, 5, 2, 4), seed=3)
    lengths = np.array([3, 5, 0])
    states = CELLS[name].states
    for reverse in (False, True):
        y, *finals = forward(with_options(CELLS[name], lengths=lengths, reverse=reverse), args)
        for b, length in enumerate(lengths):
            steps = np.arange(length)[::-1] if reverse else np.arange(length)
            row = {k: v[b:b + 1] for k, v in args.items() if k in ("x", *states)}
            row["x"] = args["x"][b:b + 1, steps]
            alone = forward(CELLS[name], {**args, **row})
            np.testing.assert_allclose(y[b, steps], alone[0][0], rtol=1e-12, atol=1e-14)
            assert not y[b, length:].any()
            for final, expected, initial in zip(finals, alone[1:], states):
                np.testing.assert_allclose(final[b], expected[0] if length else args[initial][b])


# ------------------------------------------------------------ the engine

SHAPES = [(1, 6, 3, 5), (5, 7, 3, 5), (37, 9, 5, 21), (3, 4, 3, 300), (20, 40, 16, 24)]


def assert_matches_reference(name, shape, dtype, lengths, reverse, **options):
    args, weights = problem(name, shape, dtype, seed=shape[0] + shape[3])
    cell_options = dict(lengths=lengths, reverse=reverse, **options)
    args64 = {k: v.astype(np.float64) for k, v in args.items()}
    expected_outputs, expected_grads = run(with_options(CELLS[name], **cell_options), args64,
                                           [w.astype(np.float64) for w in weights])
    engine = with_options(ENGINE_CELLS[name], **cell_options)
    outputs, grads = run(engine, args, weights)
    tolerance = TOLERANCE[dtype]
    for k, (a, e) in enumerate(zip(outputs, expected_outputs)):
        assert a.dtype == dtype
        assert relative_error(a, e) <= tolerance, f"output {k}"
    for field in type(grads)._fields:
        assert relative_error(getattr(grads, field), getattr(expected_grads, field)) \
            <= tolerance, field
    for k, (a, e) in enumerate(zip(forward(engine, args), expected_outputs)):
        assert relative_error(a, e) <= tolerance, f"inference output {k}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(CELLS))
def test_engine_with_lengths_matches_the_reference(name, shape, reverse, dtype):
    lengths = random_lengths(shape[0], shape[1], seed=shape[0])
    assert_matches_reference(name, shape, dtype, lengths, reverse)


@pytest.mark.parametrize("name", list(CELLS))
def test_engine_reversed_without_lengths_matches_the_reference(name):
    assert_matches_reference(name, (6, 5, 3, 7), np.float64, None, True)


@pytest.mark.parametrize("name", list(CELLS))
def test_engine_with_lengths_and_dropout_matches_the_reference(name):
    batch, time, features, units = 9, 6, 4, 11
    rng = np.random.default_rng(4)
    masks = {"dropout_mask": (rng.random((batch, features)) > 0.3) / 0.7,
             "recurrent_dropout_mask": (rng.random((batch, units)) > 0.3) / 0.7}
    assert_matches_reference(name, (batch, time, features, units), np.float64,
                             random_lengths(batch, time, 8), True, **masks)


@pytest.mark.parametrize("level", _build.simd_levels())
@pytest.mark.parametrize("name", ["lstm", "gru_reset_after", "rnn_tanh"])
def test_every_simd_level_runs_lengths(name, level):
    _build.set_simd_level(level)
    try:
        assert_matches_reference(name, (7, 6, 3, 19), np.float32, random_lengths(7, 6, 2), True)
    finally:
        _build.set_simd_level(None)


def engine_results(name, args, weights, threads, **options):
    cell = with_options(ENGINE_CELLS[name], **options)
    with fastlstm.threads(threads):
        outputs, grads = run(cell, args, weights)
        inference = forward(cell, args)
    return [*outputs, *(g for g in grads if g is not None), *inference]


@pytest.mark.parametrize("shape", [(37, 6, 5, 21), (3, 4, 3, 300), (70, 5, 3, 8)], ids=str)
@pytest.mark.parametrize("name", list(CELLS))
def test_lengths_give_bitwise_identical_results_for_every_thread_count(name, shape):
    args, weights = problem(name, shape, np.float32, seed=7)
    options = dict(lengths=random_lengths(shape[0], shape[1], 9), reverse=True)
    expected = engine_results(name, args, weights, 1, **options)
    for threads in (2, 3, 4):
        for a, e in zip(engine_results(name, args, weights, threads, **options), expected):
            np.testing.assert_array_equal(a, e, err_msg=f"{threads} threads")


@pytest.mark.parametrize("name", list(CELLS))
def test_a_rows_results_do_not_depend_on_the_rows_beside_it(name):
    """Each row's outputs and final states, bitwise, whether it runs with
    other rows of any lengths or alone."""
    batch, time = 12, 7
    args, _ = problem(name, (batch, time, 3, 33), np.float32, seed=5)
    lengths = random_lengths(batch, time, 6)
    cell = ENGINE_CELLS[name]
    together = forward(with_options(cell, lengths=lengths), args)
    for b in (0, 3, batch - 2):
        row = {k: v[b:b + 1] if k in ("x", *cell.states) else v for k, v in args.items()}
        alone = forward(with_options(cell, lengths=lengths[b:b + 1]), row)
        for a, e in zip(alone, together):
            np.testing.assert_array_equal(a[0], e[b])


@pytest.mark.parametrize("name", list(CELLS))
def test_full_lengths_are_no_lengths(name):
    args, weights = problem(name, (9, 5, 3, 10), np.float32, seed=2)
    plain = run(ENGINE_CELLS[name], args, weights)
    full = run(with_options(ENGINE_CELLS[name], lengths=np.full(9, 5)), args, weights)
    for a, e in zip(full[0], plain[0]):
        np.testing.assert_array_equal(a, e)
    for field in type(plain[1])._fields:
        np.testing.assert_allclose(getattr(full[1], field), getattr(plain[1], field),
                                   rtol=1e-5, atol=1e-6)


def test_lengths_leave_the_callers_arrays_alone():
    args, weights = problem("lstm", (5, 4, 3, 6), np.float32)
    lengths = np.array([1, 4, 0, 2, 3])
    copies = {k: v.copy() for k, v in args.items()}
    run(with_options(ENGINE_CELLS["lstm"], lengths=lengths, reverse=True), args, weights)
    np.testing.assert_array_equal(lengths, [1, 4, 0, 2, 3])
    for k in args:
        np.testing.assert_array_equal(args[k], copies[k], err_msg=k)


@pytest.mark.parametrize("module", [functional, reference])
@pytest.mark.parametrize("lengths, message", [
    ([3, 2], r"shape \(batch,\) = \(3,\)"),
    ([[3, 2, 1]], r"shape \(batch,\) = \(3,\)"),
    ([3, -1, 2], r"\[0, time\] = \[0, 4\]"),
    ([3, 5, 2], r"\[0, time\] = \[0, 4\]"),
    ([3.0, 2.0, 1.0], "must be integers"),
    ([True, False, True], "must be integers"),
    (["3", "2", "1"], "must be integers"),
])
def test_bad_lengths_are_value_errors_naming_lengths(module, lengths, message):
    args, _ = problem("lstm", (3, 4, 2, 5))
    with pytest.raises(ValueError, match="lengths") as error:
        module.lstm_forward(args["x"], args["kernel"], args["recurrent_kernel"], args["bias"],
                            lengths=lengths)
    assert error.match(message)


def test_the_kernels_refuse_unsorted_or_out_of_range_lengths():
    """The compiled entry points check the lengths they take themselves."""
    from fastlstm import _recurrent

    args, _ = problem("rnn_tanh", (3, 4, 2, 5), np.float32)
    y = np.empty((3, 4, 5), np.float32)
    call = (_recurrent.CELLS["rnn_tanh"], args["x"], args["kernel"], args["recurrent_kernel"],
            args["bias"], None, None, args["h0"], None, y, None, np.empty(10000, np.float32), 1)
    _recurrent.forward_inference(*call, lengths=np.array([4, 2, 1], np.intp))
    for bad in ([2, 4, 1], [5, 2, 1], [4, 2, -1], [4, 2]):
        with pytest.raises(ValueError, match="lengths"):
            _recurrent.forward_inference(*call, lengths=np.array(bad, np.intp))

"""Weight gradients summed over fixed sample blocks: the same bits whether
one process computes every block or several processes compute whole blocks
each (simulated here in one process), for every thread count."""
import numpy as np
import pytest

import fastlstm
from fastlstm import _sample_blocks, functional
from fastlstm._sample_blocks import StepBlocks, add_in_order, sample_blocks
from fastlstm.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Masking, SimpleRNN,
                             TimeDistributed)


def bits(array):
    array = np.ascontiguousarray(array)
    return array.view(np.uint32 if array.dtype == np.float32 else np.uint64)


def assert_bitwise(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(bits(actual), bits(expected))


def process_blocks(n_blocks, n_processes, rank):
    """The blocks process `rank` of n_processes takes (as DataParallel cuts them)."""
    return rank * n_blocks // n_processes, (rank + 1) * n_blocks // n_processes


# ------------------------------------------------------------- the kernels

def cell_problem(cell, batch, time, features, units, lengths, dropout, seed=0):
    rng = np.random.default_rng(seed)
    gates = {"lstm": 4, "peephole": 4, "gru": 3, "gru_before": 3, "rnn": 1}[cell]

    def rand(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    options = {}
    if cell == "peephole":
        options["peephole"] = rand(3, units)
    if lengths:
        options["lengths"] = rng.integers(0, time + 1, batch)
    if dropout:
        options["dropout_mask"] = (rng.random((batch, features)) > 0.3) / np.float32(0.7)
        options["recurrent_dropout_mask"] = (rng.random((batch, units)) > 0.3) / np.float32(0.7)
    arrays = (rand(batch, time, features), rand(features, gates * units, scale=features ** -0.5),
              rand(units, gates * units, scale=units ** -0.5),
              rand(*((2, gates * units) if cell == "gru" else (gates * units,))))
    return arrays, options, rand(batch, time, units)


def cell_grads(cell, problem, rows=slice(None), **blocks):
    (x, kernel, recurrent_kernel, bias), options, dy = problem
    options = {name: value[rows] if name != "peephole" else value
               for name, value in options.items()}
    if cell in ("lstm", "peephole"):
        *_, cache = functional.lstm_forward(x[rows], kernel, recurrent_kernel, bias,
                                            return_cache=True, **options)
        return functional.lstm_backward(cache, dy[rows], **blocks)
    if cell in ("gru", "gru_before"):
        *_, cache = functional.gru_forward(x[rows], kernel, recurrent_kernel, bias,
                                           reset_after=cell == "gru", return_cache=True,
                                           **options)
        return functional.gru_backward(cache, dy[rows], **blocks)
    *_, cache = functional.simple_rnn_forward(x[rows], kernel, recurrent_kernel, bias,
                                              return_cache=True, **options)
    return functional.simple_rnn_backward(cache, dy[rows], **blocks)


WEIGHT_GRADS = ("dkernel", "drecurrent_kernel", "dbias", "dpeephole")


@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "gru_before", "rnn"])
@pytest.mark.parametrize("shape", [(13, 6, 3, 5), (11, 4, 17, 16)])
@pytest.mark.parametrize("lengths, dropout", [(False, False), (True, True)])
def test_processes_with_whole_blocks_get_the_blocks_sums_bitwise(cell, shape, lengths,
                                                                 dropout):
    """Each block's weight gradients (per_block) are the same bits whether
    computed with the whole batch or with a process' rows alone, added in
    order they are the summed gradients, and dx, dh0, dc0 rows are the whole
    batch's rows. (13, 6, 3, 5): dx by BLAS; (11, 4, 17, 16): by our own
    product. Lengths put the rows out of order."""
    problem = cell_problem(cell, *shape, lengths, dropout)
    bounds = sample_blocks(shape[0])
    n_blocks = len(bounds) - 1
    with fastlstm.threads(2):
        summed = cell_grads(cell, problem, sample_blocks=bounds)
        blocks = cell_grads(cell, problem, sample_blocks=bounds, per_block=True)
    names = [name for name in WEIGHT_GRADS if getattr(summed, name, None) is not None]
    for name in names:
        assert_bitwise(add_in_order(getattr(blocks, name)), getattr(summed, name))
    for n_processes in (2, 3):
        for rank in range(n_processes):
            first, last = process_blocks(n_blocks, n_processes, rank)
            rows = slice(bounds[first], bounds[last])
            with fastlstm.threads(1):
                local = cell_grads(cell, problem, rows,
                                   sample_blocks=bounds[first:last + 1] - bounds[first],
                                   per_block=True)
            for name in names:
                assert_bitwise(getattr(local, name), getattr(blocks, name)[first:last])
            for name in ("dx", "dh0", "dc0"):
                if getattr(local, name, None) is not None:
                    assert_bitwise(getattr(local, name), getattr(summed, name)[rows])


@pytest.mark.parametrize("cell", ["lstm", "gru_before"])
def test_large_weight_gradients_summed_in_waves_give_the_same_bits(cell):
    """Copies of 7 blocks' weight gradients of 5 MB would take more than 32
    MB, so the blocks run in waves of fewer, each wave's sums added before
    the next; the bits stay those of the blocks' sums added in order, for
    1, 2 and 3 threads."""
    problem = cell_problem(cell, 9, 2, 400, 400, lengths=True, dropout=False)
    bounds = sample_blocks(9)
    with fastlstm.threads(1):
        blocks = cell_grads(cell, problem, sample_blocks=bounds, per_block=True)
    for n_threads in (1, 2, 3):
        with fastlstm.threads(n_threads):
            summed = cell_grads(cell, problem, sample_blocks=bounds)
        for name in ("dkernel", "drecurrent_kernel", "dbias"):
            assert_bitwise(add_in_order(getattr(blocks, name)), getattr(summed, name))


@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "rnn"])
def test_block_sums_are_bitwise_identical_for_every_thread_count(cell):
    problem = cell_problem(cell, 13, 6, 17, 16, lengths=True, dropout=True)
    bounds = sample_blocks(13)
    results = []
    for n_threads in (1, 2, 3):
        with fastlstm.threads(n_threads):
            results.append((cell_grads(cell, problem, sample_blocks=bounds),
                            cell_grads(cell, problem, sample_blocks=bounds, per_block=True)))
    for summed, blocks in results[1:]:
        for ours, theirs in ((summed, results[0][0]), (blocks, results[0][1])):
            for name in ours._fields:
                if getattr(ours, name) is not None:
                    assert_bitwise(getattr(ours, name), getattr(theirs, name))


def test_bad_sample_blocks_name_the_argument():
    problem = cell_problem("lstm", 5, 3, 2, 4, lengths=False, dropout=False)
    for bad in ([0, 3], [1, 5], [0, 4, 2, 5], [[0, 5]], [0.0, 5.0], [], [0]):
        with pytest.raises(ValueError, match="sample_blocks"):
            cell_grads("lstm", problem, sample_blocks=bad)
    with pytest.raises(ValueError, match="per_block"):
        cell_grads("lstm", problem, per_block=True)


# ---------------------------------------------------------------- the layers

def model_of(kind):
    fastlstm.set_random_seed(1)
    if kind == "recurrent":
        layers = [Masking(0.0, input_shape=(7, 3)),
                  Bidirectional(GRU(5, return_sequences=True, dropout=0.2)),
                  Dropout(0.25),
                  LSTM(6, return_sequences=True, peephole=True, recurrent_dropout=0.3),
                  TimeDistributed(Dense(4, activation="tanh")),
                  SimpleRNN(5, return_sequences=True),
                  GRU(4, reset_after=False), Dense(2)]
    else:
        layers = [Dense(5, activation="relu", input_shape=(7, 3)),
                  TimeDistributed(Dropout(0.3)), LSTM(8), Dropout(0.2),
                  Dense(3, activation="sigmoid"), Dense(2)]
    model = fastlstm.Sequential(layers)
    model.compile("sgd", "mse")
    model.build()
    return model


def batch_data(batch, seed=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 7, 3)).astype(np.float32)
    x[rng.random((batch, 7)) < 0.3] = 0.0  # steps Masking hides, all over the rows
    return x, rng.standard_normal((batch, 2)).astype(np.float32)


def forward(model, x, blocks):
    with _sample_blocks.active(blocks):
        return model._forward_with_mask(x, training=True)


def backward(model, grad, blocks):
    with _sample_blocks.active(blocks):
        for layer in reversed(model.layers[1:]):
            grad = layer.backward(grad)
        model.layers[0].backward_weights(grad)
    return [g for layer in model.layers for g in layer.grads]


def one_process_grads(kind, x, y):
    model = model_of(kind)
    blocks = StepBlocks.whole(sample_blocks(len(x)))
    fastlstm.set_random_seed(9)
    output, mask = forward(model, x, blocks)
    return output, backward(model, model.loss.gradient(y, output, mask=mask), blocks)


@pytest.mark.parametrize("kind", ["recurrent", "dense"])
@pytest.mark.parametrize("n_processes", [2, 3])
def test_a_step_split_between_processes_gives_the_one_process_gradients(kind, n_processes):
    """Every layer type: the processes' forward passes (each drawing the
    whole batch's dropout masks from the same random stream and keeping its
    rows), the loss on the gathered output, the processes' backward passes
    and their blocks' weight gradients added in order give the bits of one
    process with the whole batch, at 2 threads or 1."""
    x, y = batch_data(13)
    with fastlstm.threads(2):
        output, grads = one_process_grads(kind, x, y)
    bounds = sample_blocks(len(x))
    processes = []
    with fastlstm.threads(1):
        for rank in range(n_processes):
            first, last = process_blocks(len(bounds) - 1, n_processes, rank)
            blocks = StepBlocks(bounds, first, last, per_block=True)
            model = model_of(kind)
            fastlstm.set_random_seed(9)
            processes.append((model, blocks, forward(model, x[blocks.rows], blocks)))
        gathered = np.concatenate([local_output for _, _, (local_output, _) in processes])
        masks = [local_mask for _, _, (_, local_mask) in processes]
        mask = None if masks[0] is None else np.concatenate(masks)
        assert_bitwise(gathered, output)
        grad = processes[0][0].loss.gradient(y, gathered, mask=mask)
        per_process = [backward(model, grad[blocks.rows], blocks)
                       for model, blocks, _ in processes]
    for i, expected in enumerate(grads):
        blocks_of_weight = np.concatenate([local[i] for local in per_process])
        assert_bitwise(add_in_order(blocks_of_weight), expected)


def test_fit_is_bitwise_identical_for_every_thread_count():
    x, y = batch_data(40)
    weights = []
    for n_threads in (1, 2):
        model = model_of("recurrent")
        with fastlstm.threads(n_threads):
            model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        weights.append(model.get_weights())
    for ours, theirs in zip(*weights):
        assert_bitwise(ours, theirs)


def test_sample_blocks_depend_on_the_batch_and_the_model_alone():
    assert sample_blocks(64).tolist() == [0, 8, 16, 24, 32, 40, 48, 56, 64]
    assert sample_blocks(6).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert sample_blocks(13).tolist() == [0, 1, 3, 4, 6, 8, 9, 11, 13]
    assert sample_blocks(0).tolist() == [0, 0]
    # Layers above 4 MB: blocks of at least 128 (batch, time) rows.
    assert sample_blocks(8, steps=50, weight_bytes=8 << 20).tolist() == [0, 2, 5, 8]
    assert sample_blocks(64, steps=50, weight_bytes=8 << 20).tolist() == sample_blocks(64).tolist()
    assert sample_blocks(2, steps=10, weight_bytes=8 << 20).tolist() == [0, 2]
    assert sample_blocks(8, steps=50, weight_bytes=1 << 20).tolist() == sample_blocks(8).tolist()

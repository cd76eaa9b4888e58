"""Memory: nothing leaks across calls, and inference keeps O(batch x units) state."""
import textwrap
import tracemalloc

import numpy as np
from conftest import Problem, run_python

import fastlstm
from fastlstm import functional


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _one_training_step(problem):
    """Three kernel calls: inference, forward with cache, backward. On one
    thread: the allocations are the same for any team, and the tiny calls of
    a team would measure the scheduler when the cores are busy."""
    with fastlstm.threads(1):
        functional.lstm_forward(*problem.inputs)
        _, _, _, cache = functional.lstm_forward(*problem.inputs, return_cache=True)
        functional.lstm_backward(cache, *problem.output_grads)


# A problem small enough that a call costs tens of microseconds, so that
# many calls fit in a second and a small leak per call adds up.
TINY = dict(batch=2, time=3, features=2, units=4, dtype=np.float32)


def test_python_objects_do_not_accumulate_across_calls():
    """tracemalloc sees every Python allocation: 1 KiB kept by one of a
    step's three calls would add 1 MiB over these 1000 steps. The warm-up
    fills CPython's free lists first: the backward call's 20-argument tuples
    fill the one of their size up to its bound (2000 tuples, about 400 KiB)
    over the first 2000 calls, which tracemalloc counts as held."""
    p = Problem(**TINY)
    for _ in range(2100):
        _one_training_step(p)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(1000):
        _one_training_step(p)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert growth < 256 * 2**10, growth


def test_c_allocations_do_not_accumulate_across_calls():
    """Allocations of the compiled kernels show in the resident set only.
    Measured here: the resident set moves by under 16 KiB over these 5000
    steps, and by 4.4 MiB when one of a step's three calls keeps 1 KiB."""
    p = Problem(**TINY)
    for _ in range(200):
        _one_training_step(p)
    before = _rss_bytes()
    for _ in range(5000):
        _one_training_step(p)
    assert _rss_bytes() - before < 2 * 2**20


def test_inference_memory_does_not_grow_with_the_cached_activations():
    """Peak memory of a long inference stays near the size of y; training's does not."""
    # VmHWM, the peak RSS of this process image: unlike getrusage's ru_maxrss,
    # it does not start at the parent's peak (pytest's, after it imported torch).
    script = textwrap.dedent("""
        import sys, numpy as np, fastlstm

        def peak_rss_bytes():
            with open("/proc/self/status") as f:
                return 1024 * int(next(l.split()[1] for l in f if l.startswith("VmHWM:")))

        batch, time, units = 16, 4000, 64
        x = np.ones((batch, time, 1), np.float32)
        w = np.full((1, 4 * units), 0.1, np.float32)
        r = np.full((units, 4 * units), 0.01, np.float32)
        b = np.zeros(4 * units, np.float32)
        fastlstm.functional.lstm_forward(x[:, :10], w, r, b, return_cache=sys.argv[1] == "1")
        before = peak_rss_bytes()
        fastlstm.functional.lstm_forward(x, w, r, b, return_cache=sys.argv[1] == "1")
        after = peak_rss_bytes()
        print(after - before)
    """)
    y_bytes = 16 * 4000 * 64 * 4
    inference_growth = int(run_python(script.replace("sys.argv[1]", '"0"')))
    training_growth = int(run_python(script.replace("sys.argv[1]", '"1"')))
    assert inference_growth < y_bytes + 8 * 2**20
    # Training keeps gates (4 x y) and cells (1 x y) on top; the peak is measured
    # from an earlier, noisier high-water mark, so ask only for the gates.
    assert training_growth > inference_growth + 3 * y_bytes


def test_workspace_is_reused_and_never_shared_between_concurrent_callers():
    from fastlstm import _workspace

    with _workspace.borrow(1000, np.float32) as first:
        with _workspace.borrow(10, np.float32) as concurrent:
            assert not np.shares_memory(first, concurrent)
    with _workspace.borrow(500, np.float32) as again:
        assert np.shares_memory(first, again)
    with _workspace.borrow(_workspace.MAX_CACHED_BYTES, np.float32) as huge:
        assert huge.size == _workspace.MAX_CACHED_BYTES
    with _workspace.borrow(10, np.float32) as after_huge:
        assert np.shares_memory(first, after_huge)


def test_concurrent_python_threads_get_correct_results():
    from concurrent.futures import ThreadPoolExecutor

    problems = [Problem(20, 6, 3, 9, dtype=np.float32, seed=s) for s in range(8)]
    expected = [functional.lstm_forward(*p.inputs)[0] for p in problems]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            actual = list(pool.map(lambda p: functional.lstm_forward(*p.inputs)[0], problems))
            for a, e in zip(actual, expected):
                np.testing.assert_array_equal(a, e)

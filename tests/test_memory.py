"""Memory: nothing leaks across calls, and inference keeps O(batch x units) state."""
import textwrap

import numpy as np
from conftest import Problem, run_python

from fastlstm import functional


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_repeated_calls_do_not_grow_memory():
    p = Problem(64, 10, 4, 64, dtype=np.float32)

    def step():
        functional.lstm_forward(*p.inputs)
        _, _, _, cache = functional.lstm_forward(*p.inputs, return_cache=True)
        functional.lstm_backward(cache, *p.output_grads)

    for _ in range(50):
        step()
    before = _rss_bytes()
    for _ in range(1000):
        step()
    # A leaked scratch buffer per call (>= 8 KiB) would add >= 8 MB here.
    assert _rss_bytes() - before < 6 * 2**20


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

"""Interleaved timing, and the machine's own sgemm peak to compare against.

Fairness: after a call, a library's idle threads keep spinning for a while
(OpenBLAS about 0.1 s unless OPENBLAS_THREAD_TIMEOUT is small, OpenMP
runtimes a few ms (fastlstm's libgomp about 7 ms), ONNX Runtime's pool
40-60 ms by design) and would steal the cores from whichever library runs
next. So every call starts after a pause longer than an OpenMP runtime's
spin, and a peer that spins on purpose (ONNX Runtime) also gets time to
settle after its own calls.

Once those threads have gone to sleep, waking them is slow on a shared
2-core virtual machine: there, a 2-thread fastlstm call that takes 0.2 ms
back to back takes 7.7 ms after 0.2 s idle (4-7 ms per wake-up; on 1
thread the same call takes 0.17 and 0.32 ms). Interleaving lets every
library's pool fall asleep between its calls, so each timed call follows
an untimed call of the same callable: the grid measures back-to-back
speed for every library alike, not the wake-up latency of an idle machine.

Even warm, a call of a millisecond or two on 2 threads is at the mercy of
the host's scheduler: one call per sample, fastlstm's 2-thread forward at
(64, 60, 1, 50) can spread +-85% around a 4 ms median on that machine,
where the call takes 1.0 ms alone. So a sample is as many back-to-back
calls as fill MIN_SAMPLE_SECONDS (as timeit's autorange does), their mean
time per call; a call that long or longer is a sample of one.
"""
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .._blas_control import blas_controller

PAUSE_SECONDS = 0.015
MIN_SAMPLE_SECONDS = 0.02
MAX_CALLS_PER_SAMPLE = 1000


@dataclass
class Timing:
    """Seconds per call of one callable over interleaved rounds: one sample
    per round, each the mean of `calls` back-to-back calls."""

    samples: list
    calls: int = 1

    @property
    def median(self):
        return statistics.median(self.samples)

    @property
    def spread(self):
        """Interquartile range relative to the median (0.05 = +-5% around it)."""
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / self.median
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / self.median

    def to_dict(self):
        return {"median_s": self.median, "spread": self.spread, "n": len(self.samples),
                "calls_per_sample": self.calls}


def interleaved(functions, repeats, settle=None):
    """Time each callable, one sample of each per round, the order reversed
    every other round (A B C C B A ...) so that no callable always runs
    right after another one's leftovers in the caches and clocks.

    Parameters
    ----------
    functions : dict of name -> callable
    repeats : int
        Timed rounds, after one untimed warm-up round.
    settle : dict of name -> seconds, optional
        Extra pause after that callable's calls.

    Each sample is the mean time per call of calls_per_sample(fn)
    back-to-back calls, measured right after an untimed call of the same
    callable (see the module docstring).

    Returns
    -------
    dict of name -> Timing
    """
    settle = settle or {}
    for fn in functions.values():
        fn()
    calls = {name: calls_per_sample(fn) for name, fn in functions.items()}
    samples = {name: [] for name in functions}
    order = list(functions.items())
    for round_ in range(repeats):
        for name, fn in (order if round_ % 2 == 0 else order[::-1]):
            time.sleep(PAUSE_SECONDS)
            fn()  # wakes the callable's own threads
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / calls[name])
            time.sleep(settle.get(name, 0.0))
    return {name: Timing(s, calls[name]) for name, s in samples.items()}


def thread_speedup(timings, most):
    """Time on 1 thread / time on `most` threads.

    timings : dict with "1 threads" and f"{most} threads", each a Timing.to_dict().
    """
    return timings["1 threads"]["median_s"] / timings[f"{most} threads"]["median_s"]


def calls_per_sample(fn):
    """How many back-to-back calls of fn fill MIN_SAMPLE_SECONDS (at least
    1, at most MAX_CALLS_PER_SAMPLE), from the time of one call after an
    untimed one."""
    fn()
    calls = math.ceil(MIN_SAMPLE_SECONDS / max(_timed(fn), 1e-9))
    return int(min(MAX_CALLS_PER_SAMPLE, max(1, calls)))


def paired_ratio(peer, ours, confidence=0.95):
    """Median of the per-round ratios peer / ours, with a confidence interval.

    Rounds are interleaved, so a round's two calls saw the same machine
    state; dividing within a round cancels the slow drifts of a shared
    machine that make the two medians wander apart. The interval is the
    distribution-free one for a median: the order statistics k and n + 1 - k
    of the n ratios, k the largest with P(Binomial(n, 1/2) < k) <= (1 -
    confidence) / 2. With fewer than 6 rounds it cannot reach 95% and spans
    every ratio.

    Parameters
    ----------
    peer, ours : Timing
        The same number of rounds each, from one ``interleaved`` call.

    Returns
    -------
    dict with ``median``, ``low``, ``high`` (above 1: ours is faster)
    """
    ratios = sorted(p / o for p, o in zip(peer.samples, ours.samples))
    n = len(ratios)
    tail = (1 - confidence) / 2
    k, below = 0, 0.0  # below = P(Binomial(n, 1/2) < k + 1)
    while k < n // 2:
        below += math.comb(n, k) / 2 ** n
        if below > tail:
            break
        k += 1
    k = max(k, 1)
    return {"median": statistics.median(ratios), "low": ratios[k - 1], "high": ratios[n - k]}


def square_sgemm(size=1536):
    """A float32 GEMM of two random size x size matrices with SciPy's BLAS
    (the one fastlstm calls).

    Returns
    -------
    (call, flops) : a callable running the product once, and its FLOPs
    """
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((size, size), dtype=np.float32))
    return (lambda: sgemm(1.0, a, b)), 2 * size ** 3


def with_blas_threads(threads, fn):
    """fn, run with every BLAS library in the process (NumPy's, SciPy's) held
    to `threads` threads during each call, and only then."""
    def call():
        with blas_controller().limit(limits=threads, user_api="blas"):
            return fn()
    return call


def sgemm_peak(threads, size=1536, repeats=5):
    """GFLOP/s of square_sgemm(size) on `threads` threads.

    The best of ``repeats`` calls: a peak, what the cores can do when nothing
    else disturbs them.
    """
    product, flops = square_sgemm(size)
    with blas_controller().limit(limits=threads, user_api="blas"):
        product()
        best = min(_timed(product) for _ in range(repeats))
    return flops / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

"""Where a kernel's OpenMP team starts, and how large it is in practice: a
forked child never hangs, a busy machine never makes several threads
slower than one, and a call on Python's main thread stops at Ctrl-C.

GNU libgomp keeps a pool of worker threads for each OS thread that starts
teams, and the pool does not survive ``os.fork()``: in the child, the
thread that called fork (the child's only thread) still refers to the
parent's pool, whose workers do not exist there, and its next team of more
than one thread waits for them forever. A thread that starts its first
team in the child gets a pool of its own.

So a kernel that would start a team of several threads on a thread that
started teams before a fork runs, in the child, on a helper thread made in
the child (one per process, on first use) while the caller waits. Every
other call runs on the caller's thread. The thread count and therefore the
result are the same either way (the kernels are bitwise identical for any
thread count).

A team is as fast as its slowest member. When the cores are busy (another
process, more threads than cores) the scheduler takes members off their
cores for a time slice of milliseconds, and every other member waits at
the next barrier: without the fallback below, two threads ran 2.1-2.5x
slower than one beside one busy process on the 2-core machine
(bench/busy_process.py). The kernels measure how long their
threads were off their cores while they worked (csrc/preemption.h); when
that is a tenth of the call or more, the next calls run on one thread, which
loses nothing beside a busy core, for a back-off period that doubles while
trials with the full team stay contended (up to MAX_BACKOFF_SECONDS).
Results do not change: the kernels are bitwise identical for any thread
count.

Python runs signal handlers on its main thread only, so only a call made
there polls for them (``interruptible``, see csrc/interrupt_poll.h).
"""
import contextvars
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# A call is contended when its team spent this share of it off the cores.
CONTENDED_SHARE = 0.1
MIN_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0

_started_teams = threading.local()  # .yes: this thread has started a team
_stale_pool_thread = None  # the thread whose pool a fork left behind, in a child
_helper = None  # the child's ThreadPoolExecutor of one thread


class _Contention:
    """When the machine's cores were last seen busy, and for how long to
    run on one thread since (shared by the process' threads; a race only
    delays a back-off by one call)."""

    def __init__(self):
        self.until = -1.0
        self.backoff = MIN_BACKOFF_SECONDS

    def threads_for(self, requested):
        if requested > 1 and time.monotonic() < self.until:
            return 1
        return requested

    def record(self, lost_ns, seconds):
        """Note a call of the full team: its threads spent `lost_ns`
        nanoseconds off their cores in `seconds` of wall time."""
        if 1e-9 * lost_ns > CONTENDED_SHARE * seconds:
            self.until = time.monotonic() + self.backoff
            self.backoff = min(2 * self.backoff, MAX_BACKOFF_SECONDS)
        else:
            self.backoff = MIN_BACKOFF_SECONDS


_contention = _Contention()


def _after_fork_in_child():
    global _stale_pool_thread, _helper
    if getattr(_started_teams, "yes", False):
        _stale_pool_thread = threading.get_ident()
    _helper = None  # the parent's helper thread does not exist here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _helper_thread():
    global _helper
    if _helper is None:
        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastlstm-team")
    return _helper


def team_size(requested):
    """The threads a kernel call should use: `requested`, or one while the
    cores have lately been too busy for a team (see above)."""
    return _contention.threads_for(requested)


def run(kernel, *args, n_threads, **options):
    """``kernel(*args, n_threads, interruptible, **options)`` on a thread
    whose OpenMP pool is usable; interruptible when it runs on Python's main
    thread. `n_threads` comes from ``team_size``."""
    if n_threads == 1:
        return kernel(*args, 1, threading.current_thread() is threading.main_thread(),
                      **options)
    start = time.perf_counter()
    if threading.get_ident() == _stale_pool_thread:
        lost_ns = _helper_thread().submit(kernel, *args, n_threads, False, **options).result()
    else:
        _started_teams.yes = True
        lost_ns = kernel(*args, n_threads, threading.current_thread() is threading.main_thread(),
                         **options)
    _contention.record(lost_ns, time.perf_counter() - start)


def concurrently(first, second):
    """Run ``first()`` on the helper thread while ``second()`` runs on this
    one; returns both results. Each should release the GIL for most of its
    time (a kernel call)."""
    future = _helper_thread().submit(contextvars.copy_context().run, first)
    try:
        second_result = second()
    finally:
        first_result = future.result()  # waited for even when second() raised
    return first_result, second_result

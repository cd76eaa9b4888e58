"""Where a kernel's OpenMP team starts: a forked child never hangs, and a
call on Python's main thread stops at Ctrl-C.

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

Python runs signal handlers on its main thread only, so only a call made
there polls for them (``interruptible``, see csrc/interrupt_poll.h).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_started_teams = threading.local()  # .yes: this thread has started a team
_stale_pool_thread = None  # the thread whose pool a fork left behind, in a child
_helper = None  # the child's ThreadPoolExecutor of one thread


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


def run(kernel, *args, n_threads):
    """``kernel(*args, n_threads, interruptible)`` on a thread whose OpenMP
    pool is usable; interruptible when it runs on Python's main thread."""
    if n_threads > 1:
        if threading.get_ident() == _stale_pool_thread:
            return _helper_thread().submit(kernel, *args, n_threads, False).result()
        _started_teams.yes = True
    return kernel(*args, n_threads, threading.current_thread() is threading.main_thread())

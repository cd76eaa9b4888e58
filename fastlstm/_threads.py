"""How many threads fastlstm's kernels use.

The default is the number of CPUs this process may really use: the CPU
affinity mask, capped by a cgroup CPU quota (containers), or OMP_NUM_THREADS
when it is set. ``set_num_threads`` changes it for the whole process;
``threads(n)`` for the code inside its block, in this Python thread (and
asyncio task) only, as a context variable, so that two threads' blocks
never see or undo each other's counts. The choice never changes a result:
the kernels are bitwise identical for every thread count.
"""
import contextlib
import contextvars
import math
import operator
import os
import time

# Far more than any machine's cores; a count past it is a mistake, and an
# OpenMP team size must fit a C int.
MAX_THREADS = 4096

_num_threads = None  # set_num_threads' count; None: usable_cpu_count()
_block_threads = contextvars.ContextVar("fastlstm_threads", default=None)  # threads(n)

# Reading the cgroup files takes about 45 us, as long as a whole batch-1 step
# of the kernels, and every kernel call asks for the thread count; so the
# quota is read again only when the last reading is this old.
QUOTA_MAX_AGE_SECONDS = 1.0
_quota_reading = (-math.inf, None)  # (time.monotonic() when read, quota)
_count_reading = (-math.inf, None)  # (time.monotonic() when read, usable_cpu_count)


def _read_fields(path):
    with open(path) as f:
        return f.read().split()


def _cgroup_cpu_quota(root="/sys/fs/cgroup"):
    """CPUs allowed by a cgroup CPU quota (v2 cpu.max or v1 cfs files), or None."""
    try:
        quota, period = _read_fields(os.path.join(root, "cpu.max"))[:2]  # v2
    except (OSError, ValueError):
        quota = period = None
        for controller in ("cpu", "cpu,cpuacct"):
            base = os.path.join(root, controller)
            try:
                quota = _read_fields(os.path.join(base, "cpu.cfs_quota_us"))[0]
                period = _read_fields(os.path.join(base, "cpu.cfs_period_us"))[0]
                break
            except (OSError, IndexError):
                continue
    if quota is None or quota in ("max", "-1"):
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _recent_cgroup_cpu_quota():
    """_cgroup_cpu_quota(), at most QUOTA_MAX_AGE_SECONDS old."""
    global _quota_reading
    read_at, quota = _quota_reading
    now = time.monotonic()
    if now - read_at >= QUOTA_MAX_AGE_SECONDS:
        quota = _cgroup_cpu_quota()
        _quota_reading = (now, quota)
    return quota


def _omp_num_threads():
    """The first value of OMP_NUM_THREADS if it is a positive integer."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def usable_cpu_count():
    """Number of CPUs this process may use (at least 1), found again at most
    once every QUOTA_MAX_AGE_SECONDS (the lookups cost microseconds, a
    streaming step's budget).

    OMP_NUM_THREADS, when set, decides; otherwise the affinity mask, capped
    by a cgroup CPU quota.
    """
    global _count_reading
    read_at, count = _count_reading
    now = time.monotonic()
    if now - read_at >= QUOTA_MAX_AGE_SECONDS or count is None:
        count = _usable_cpu_count_now()
        _count_reading = (now, count)
    return count


def _usable_cpu_count_now():
    requested = _omp_num_threads()
    if requested is not None:
        return requested
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _recent_cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def _checked_thread_count(n):
    if isinstance(n, bool):
        raise TypeError(f"number of threads must be an int, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"number of threads must be an int, got {type(n).__name__}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"number of threads must be in [1, {MAX_THREADS}], got {n}")
    return n


def set_num_threads(n):
    """Use `n` threads (an int in [1, MAX_THREADS]) in fastlstm's kernels
    from now on, in every thread of the process outside ``threads`` blocks."""
    global _num_threads
    _num_threads = _checked_thread_count(n)


def get_num_threads():
    """Number of threads fastlstm's kernels use here: the innermost
    ``threads`` block's count in this context, else ``set_num_threads``',
    else the usable CPU count."""
    block = _block_threads.get()
    if block is not None:
        return block
    return usable_cpu_count() if _num_threads is None else _num_threads


@contextlib.contextmanager
def threads(n):
    """Context manager: use `n` threads inside the block, then restore.

    The count holds for the code in the block in this Python thread (and
    asyncio task); other threads keep theirs.

    Examples
    --------
    >>> with fastlstm.threads(1):
    ...     y, h, c = fastlstm.functional.lstm_forward(x, kernel, recurrent_kernel, bias)
    """
    token = _block_threads.set(_checked_thread_count(n))
    try:
        yield
    finally:
        _block_threads.reset(token)

"""How many threads fastlstm's kernels use.

The default is the number of CPUs this process may really use: the CPU
affinity mask, capped by a cgroup CPU quota (containers), or OMP_NUM_THREADS
when it is set. The choice never changes a result: the kernels are bitwise
identical for every thread count.
"""
import contextlib
import math
import operator
import os

_num_threads = None  # None: usable_cpu_count()


def _cgroup_cpu_quota():
    """CPUs allowed by a cgroup (v2 or v1) CPU quota, or None if unlimited."""
    candidates = [("/sys/fs/cgroup/cpu.max", None),
                  ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
                  ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
                   "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")]
    for quota_path, period_path in candidates:
        try:
            with open(quota_path) as f:
                fields = f.read().split()
            if period_path is not None:
                with open(period_path) as f:
                    fields.append(f.read().strip())
        except (OSError, ValueError):
            continue
        if len(fields) < 2 or fields[0] in ("max", "-1"):
            return None
        try:
            return int(fields[0]) / int(fields[1])
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _omp_num_threads():
    """The first value of OMP_NUM_THREADS if it is a positive integer."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def usable_cpu_count():
    """Number of CPUs this process may use (at least 1).

    OMP_NUM_THREADS, when set, decides; otherwise the affinity mask, capped
    by a cgroup CPU quota.
    """
    requested = _omp_num_threads()
    if requested is not None:
        return requested
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
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
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    return n


def set_num_threads(n):
    """Use `n` threads (an int >= 1) in fastlstm's kernels from now on."""
    global _num_threads
    _num_threads = _checked_thread_count(n)


def get_num_threads():
    """Number of threads fastlstm's kernels use."""
    return usable_cpu_count() if _num_threads is None else _num_threads


@contextlib.contextmanager
def threads(n):
    """Context manager: use `n` threads inside the block, then restore.

    Examples
    --------
    >>> with fastlstm.threads(1):
    ...     y, h, c = fastlstm.functional.lstm_forward(x, kernel, recurrent_kernel, bias)
    """
    global _num_threads
    n = _checked_thread_count(n)
    previous = _num_threads
    _num_threads = n
    try:
        yield
    finally:
        _num_threads = previous

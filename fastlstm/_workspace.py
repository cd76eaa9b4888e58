"""A scratch buffer the kernels reuse from call to call.

Inference needs a few MB of scratch per call. Allocated fresh each time,
that memory comes from new pages the kernel must map and zero, which cost
a third of the time of a mid-sized forward pass (measured). One cached
buffer per dtype avoids that. A caller that finds it in use (another Python
thread inside a kernel) gets a fresh array instead of waiting, and buffers
above MAX_CACHED_BYTES are never kept.
"""
import contextlib
import threading

import numpy as np

MAX_CACHED_BYTES = 64 * 2**20

_lock = threading.Lock()
_cached = {}  # dtype -> 1-d array


@contextlib.contextmanager
def borrow(size, dtype):
    """Context manager yielding a 1-d scratch array of at least `size` elements."""
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > MAX_CACHED_BYTES or not _lock.acquire(blocking=False):
        yield np.empty(size, dtype)
        return
    try:
        buffer = _cached.get(dtype)
        if buffer is None or buffer.size < size:
            buffer = _cached[dtype] = np.empty(size, dtype)
        yield buffer
    finally:
        _lock.release()

"""Buffers the kernels reuse from call to call.

Inference needs a few MB of scratch per call. Allocated fresh each time,
that memory comes from new pages the kernel must map and zero, which cost
a third of the time of a mid-sized forward pass (measured). One cached
buffer per dtype avoids that. A caller that finds it in use (another Python
thread inside a kernel) gets a fresh array instead of waiting, and buffers
above MAX_CACHED_BYTES are never kept.

Training pays the same cost for its largest array, the gates buffer (4
values per (batch, time, unit)). Backward overwrites it anyway, so once a
cache is consumed its gates buffer is kept for the next forward pass.
Measured paired in one process, that made a training step at (64, 50, 256,
256) 1.15x faster on 1 thread and 1.4x on 2 (both threads faulting fresh
pages in at once), and moved the other grid shapes by -2% to +5%.
"""
import contextlib
import math
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


_spare_gates = {}  # dtype -> 1-d array: the gates buffer of a consumed cache
_spare_lock = threading.Lock()  # not _lock: borrow holds that one while a kernel runs


def gates_buffer(shape, dtype):
    """An uninitialized array of `shape` for a training cache's gates.

    The spare buffer of a consumed cache when it is large enough (a view of
    its start), else a new array.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    with _spare_lock:
        spare = _spare_gates.get(dtype)
        if spare is not None and spare.size >= size:
            del _spare_gates[dtype]
            return spare[:size].reshape(shape)
    return np.empty(shape, dtype)


def recycle_gates(gates):
    """Keep the gates buffer of a consumed cache for the next gates_buffer call.

    Only a buffer this module or the forward pass allocated comes here, never
    a caller's array; one per dtype is kept, the larger one.
    """
    owner = gates if gates.base is None else gates.base
    if owner.nbytes > MAX_CACHED_BYTES or not owner.flags.c_contiguous:
        return
    flat = owner.reshape(-1)
    with _spare_lock:
        kept = _spare_gates.get(flat.dtype)
        if kept is None or kept.size < flat.size:
            _spare_gates[flat.dtype] = flat


def drop_spare_gates():
    """Forget the kept gates buffers (their memory goes back to the allocator)."""
    with _spare_lock:
        _spare_gates.clear()

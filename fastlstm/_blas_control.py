"""Hold scipy's BLAS to one thread while fastlstm's kernels run.

The kernels call BLAS from inside their own OpenMP threads. A multithreaded
BLAS there would start a second pool of threads on the same cores (and a
threaded GEMM rounds differently from a serial one), so for the duration of
a kernel every BLAS threadpool in the process is held to one thread.
threadpoolctl does the holding; a counter makes overlapping kernel calls
from several Python threads restore the limit only when the last one ends.
"""
import contextlib
import os
import threading

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_active_calls = 0
_limiter = None
_controller = None


def blas_controller():
    """The process's threadpools (NumPy's and SciPy's BLAS among them),
    found once: each limit() on it then costs microseconds, not the
    hundreds a new search would."""
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load scipy's BLAS first)
        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def blas_single_threaded():
    """Context manager: BLAS runs single-threaded inside the block."""
    global _active_calls, _limiter
    with _lock:
        if _active_calls == 0:
            _limiter = blas_controller().limit(limits=1, user_api="blas")
        _active_calls += 1
    try:
        yield
    finally:
        with _lock:
            _active_calls -= 1
            if _active_calls == 0:
                _limiter.restore_original_limits()
                _limiter = None


def scipy_blas_info():
    """What BLAS scipy.linalg.cython_blas calls: name, version, CPU kernels."""
    import scipy

    info = {}
    try:
        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info = {"name": blas.get("name"), "version": blas.get("version"),
                "configuration": blas.get("openblas configuration")}
    except Exception:  # show_config's layout is not a stable API
        pass
    scipy_dir = os.path.dirname(os.path.dirname(scipy.__file__))
    for lib in blas_controller().info():
        in_scipy = os.path.basename(os.path.dirname(lib["filepath"])).startswith("scipy")
        if lib["user_api"] == "blas" and lib["filepath"].startswith(scipy_dir) and in_scipy:
            info.update(internal_api=lib["internal_api"], architecture=lib.get("architecture"),
                        filepath=lib["filepath"])
    return info

# cython: language_level=3, boundscheck=False, wraparound=False
"""The argument checks' compiled passes: finiteness and the fingerprint by
which a cache sees its inputs change (finite_impl.h, fingerprint_impl.h)."""
from cython cimport floating
from libc.stdint cimport uint64_t

from _simd cimport fastlstm_products, fastlstm_simd_best_level, fastlstm_simd_products

cdef int _simd_level = fastlstm_simd_best_level()


def _use_simd_level(int level):
    """Run the kernels of SIMD level `level` (see fastlstm._build)."""
    global _simd_level
    _simd_level = level


def all_finite(const floating[::1] values):
    """Whether no value is NaN or infinite (the inputs' check_finite pass)."""
    cdef fastlstm_products kern = fastlstm_simd_products(_simd_level)
    cdef Py_ssize_t n = values.shape[0]
    cdef int finite = 1
    if n == 0:
        return True
    with nogil:
        if floating is float:
            finite = kern.all_finite_f32(n, &values[0])
        else:
            finite = kern.all_finite_f64(n, &values[0])
    return bool(finite)


def fingerprint(const unsigned char[::1] data):
    """A 64-bit hash of a contiguous buffer's bytes, for telling whether an
    array changed (fastlstm.functional's caches); not for security. A change
    of one 8-byte word always changes it; the value is the same at every SIMD
    level (see fingerprint_impl.h)."""
    cdef fastlstm_products kern = fastlstm_simd_products(_simd_level)
    cdef Py_ssize_t n = data.shape[0]
    cdef const unsigned char *raw = &data[0] if n > 0 else NULL
    cdef uint64_t result
    with nogil:
        result = kern.fingerprint(n, raw)
    return result

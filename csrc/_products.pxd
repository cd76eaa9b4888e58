# cython: language_level=3
"""The products of the recurrent driver, over the SIMD product table
(simd.h), for float and double (Cython's fused `floating`).

Every product sums each element over k in order in one accumulator, so a
row's result never depends on the rows beside it or on how the columns are
cut: what makes every output bitwise identical for any thread count. The
weights are packed once per call (packed_copy, packed_transpose), or kept
packed across calls by the caller (see PackedWeights in _recurrent.pyx).
"""
from cython cimport floating
from libc.stdlib cimport malloc, free

from _plan cimport PRODUCT_ROW_BLOCK
from _simd cimport (
    FASTLSTM_PACK_EXTRA, fastlstm_aligned_free, fastlstm_aligned_malloc,
    fastlstm_matmul_grad_scratch, fastlstm_prefetch_row, fastlstm_products,
    fastlstm_transpose_rows_f32, fastlstm_transpose_rows_f64)


cdef inline void matmul(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const floating *a, Py_ssize_t lda, const floating *b, Py_ssize_t ldb,
                         floating *c, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """c (m, n) = [c +] a (m, k) @ b (k, n), row-major; rows independent of m."""
    if floating is float:
        kern.matmul_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
    else:
        kern.matmul_f64(m, n, k, a, lda, b, ldb, c, ldc, accumulate)


cdef inline void matmul_grad(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n,
                              Py_ssize_t k, const floating *a, Py_ssize_t lda,
                              const floating *b, Py_ssize_t ldb, floating *c, Py_ssize_t ldc,
                              bint accumulate, floating *column_sums,
                              floating *scratch) noexcept nogil:
    """c (m, n) = [c +] a (m, k) @ b (k, n) for a long k (the weight
    gradients); each element summed over k in order, as matmul sums it.
    column_sums (n), unless NULL: [column_sums +] b's column sums. scratch:
    from alloc_matmul_grad_scratch(n, ldb), NULL when b needs no packing."""
    if floating is float:
        kern.matmul_grad_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate, column_sums,
                             scratch)
    else:
        kern.matmul_grad_f64(m, n, k, a, lda, b, ldb, c, ldc, accumulate, column_sums,
                             scratch)


cdef inline int alloc_matmul_grad_scratch(Py_ssize_t n, Py_ssize_t ldb,
                                    floating **scratch) noexcept nogil:
    """scratch[0] = aligned scratch for matmul_grad over n columns of b with
    rows ldb apart, or NULL when it needs none (free it with
    fastlstm_aligned_free). Returns -1 if out of memory."""
    cdef Py_ssize_t size = fastlstm_matmul_grad_scratch(n, ldb, sizeof(floating))
    scratch[0] = NULL
    if size > 0:
        scratch[0] = <floating *> fastlstm_aligned_malloc(size * sizeof(floating))
        if scratch[0] == NULL:
            return -1
    return 0


cdef inline void matmul_packed(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n,
                                Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                const floating *packed, floating *c, Py_ssize_t ldc,
                                bint accumulate) noexcept nogil:
    """matmul with b packed by packed_copy: the same numbers, b read contiguously."""
    if floating is float:
        kern.matmul_packed_f32(m, n, k, a, lda, packed, c, ldc, accumulate)
    else:
        kern.matmul_packed_f64(m, n, k, a, lda, packed, c, ldc, accumulate)


cdef inline floating *packed_copy(fastlstm_products kern, Py_ssize_t k, Py_ssize_t n,
                            const floating *b, Py_ssize_t ldb) except NULL:
    """A copy of b (k, n) in the product's packed layout, cache-line aligned.

    Packed once per call, it is read by every thread at every step; the
    caller frees it with fastlstm_aligned_free.
    """
    cdef floating *packed = <floating *> fastlstm_aligned_malloc(
        k * (n + FASTLSTM_PACK_EXTRA) * sizeof(floating))
    if packed == NULL:
        raise MemoryError("fastlstm: could not allocate the packed weights")
    if floating is float:
        kern.pack_f32(k, n, b, ldb, packed)
    else:
        kern.pack_f64(k, n, b, ldb, packed)
    return packed


cdef inline void transpose_rows(const floating **rows, Py_ssize_t n_rows, Py_ssize_t width,
                                 floating *a) noexcept nogil:
    """a (width, n_rows) = the n_rows rows of `width` values, transposed
    (transpose_rows.h)."""
    if floating is float:
        fastlstm_transpose_rows_f32(rows, n_rows, width, a)
    else:
        fastlstm_transpose_rows_f64(rows, n_rows, width, a)


cdef inline Py_ssize_t dot_columns(fastlstm_products kern, Py_ssize_t n, Py_ssize_t k,
                                     Py_ssize_t itemsize) noexcept nogil:
    """How many of the last of n columns of a product with transposed weights
    of k columns transposed_product takes as dot products (dot_impl.h)."""
    if itemsize == sizeof(float):
        return kern.dot_columns_f32(n, k)
    return kern.dot_columns_f64(n, k)


cdef inline void matmul_dot(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating *a, Py_ssize_t lda, const floating *w,
                             Py_ssize_t ldw, floating *c, Py_ssize_t ldc) noexcept nogil:
    if floating is float:
        kern.matmul_dot_f32(m, n, k, a, lda, w, ldw, c, ldc)
    else:
        kern.matmul_dot_f64(m, n, k, a, lda, w, ldw, c, ldc)


cdef inline floating *packed_transpose(fastlstm_products kern, Py_ssize_t rows, Py_ssize_t cols,
                                 const floating *b) except NULL:
    """packed_copy of the transpose (cols, rows) of b (rows, cols), but for
    its last dot_columns(rows, cols) columns, which transposed_product
    reads from b itself."""
    cdef Py_ssize_t n_packed = rows - dot_columns(kern, rows, cols, sizeof(floating))
    cdef floating *b_t = <floating *> malloc(max(1, n_packed * cols) * sizeof(floating))
    cdef const floating **row_starts = <const floating **> malloc(
        max(1, n_packed) * sizeof(floating *))
    cdef Py_ssize_t i
    if b_t == NULL or row_starts == NULL:
        free(b_t)
        free(row_starts)
        raise MemoryError("fastlstm: could not allocate the transposed weights")
    try:
        with nogil:
            for i in range(n_packed):
                row_starts[i] = b + i * cols
            transpose_rows(row_starts, n_packed, cols, b_t)
        return packed_copy(kern, cols, n_packed, b_t, n_packed)
    finally:
        free(b_t)
        free(row_starts)


cdef inline void transposed_product(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n,
                                     Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                     const floating *packed, const floating *w,
                                     floating *c, Py_ssize_t ldc) noexcept nogil:
    """c (m, n) = a (m, k) @ w^T for w (n, k) row-major: the first columns
    with packed (packed_transpose of w), the last dot_columns(n, k) as dot
    products with w's rows."""
    cdef Py_ssize_t n_dot = dot_columns(kern, n, k, sizeof(floating))
    if n > n_dot:
        matmul_packed(kern, m, n - n_dot, k, a, lda, packed, c, ldc, False)
    if n_dot > 0:
        matmul_dot(kern, m, n_dot, k, a, lda, w + (n - n_dot) * k, k, c + n - n_dot, ldc)


cdef inline const floating *weight_columns(const floating *w, Py_ssize_t ldw,
                                           Py_ssize_t k, Py_ssize_t j0) noexcept nogil:
    """Where columns j0.. of a weight matrix with k rows start: packed by
    packed_copy (ldw = 0; j0 at a group boundary) or row-major, rows ldw apart."""
    if ldw == 0:
        return w + k * j0
    return w + j0


cdef inline void weights_product(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n,
                                  Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                  const floating *w, Py_ssize_t ldw, floating *c,
                                  Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """c (m, n) = [c +] a @ w, w packed (ldw = 0) or row-major; the same
    numbers either way."""
    if ldw == 0:
        matmul_packed(kern, m, n, k, a, lda, w, c, ldc, accumulate)
    else:
        matmul(kern, m, n, k, a, lda, w, ldw, c, ldc, accumulate)


cdef inline void product_rows(fastlstm_products kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating *a, const floating *w, Py_ssize_t ldw, floating *c,
                        Py_ssize_t ldc) noexcept nogil:
    """c (m, n) = a (m, k) @ w (see weights_product), a contiguous,
    PRODUCT_ROW_BLOCK rows at a time."""
    cdef Py_ssize_t r0 = 0
    while r0 < m:
        weights_product(kern, min(PRODUCT_ROW_BLOCK, m - r0), n, k, a + r0 * k, k, w, ldw,
                         c + r0 * ldc, ldc, False)
        r0 += PRODUCT_ROW_BLOCK


cdef inline void prefetch_row(const floating *row, Py_ssize_t width) noexcept nogil:
    """Prefetch a row of `width` values into L2 (prefetch_rows.h)."""
    fastlstm_prefetch_row(row, width * sizeof(floating))



# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Test-only entry points: the driver's products and the LSTM's row kernels
called one at a time, with the checks a test needs and production code does
not. Nothing in fastlstm imports this module."""
from cython cimport floating
from libc.string cimport memset

cimport _products as products
from _simd cimport (
    FASTLSTM_CELL_LSTM, fastlstm_aligned_free, fastlstm_backward_row, fastlstm_cell,
    fastlstm_cell_kernels, fastlstm_forward_row, fastlstm_products, fastlstm_simd_best_level,
    fastlstm_simd_products)

cdef int _simd_level = fastlstm_simd_best_level()


def _use_simd_level(int level):
    """Run the kernels of SIMD level `level` (see fastlstm._build)."""
    global _simd_level
    _simd_level = level


def _check_product_operands(name, shapes_match, itemsize, views):
    """The test products' checks: shapes that match, each operand's rows with
    unit stride (they may be strided by rows), and no empty operand."""
    if not shapes_match:
        raise ValueError(f"{name}: shapes do not match")
    for label, view in views.items():
        if view.shape[1] > 1 and view.strides[1] != itemsize:
            raise ValueError(f"{name}: rows of {label} must be contiguous")
        if view.shape[0] == 0 or view.shape[1] == 0:
            raise ValueError(f"{name}: empty operands are not supported")


def matmul(const floating[:, :] a, const floating[:, ::1] b, floating[:, :] c, bint accumulate,
           bint packed=False):
    """c = [c +] a @ b with the recurrent loop's SIMD product (for tests).

    a and c may be strided by rows (unit stride along each row); packed=True
    packs b first, as the recurrent loops do.
    """
    _check_product_operands(
        "matmul", a.shape[1] == b.shape[0] and c.shape[0] == a.shape[0]
        and c.shape[1] == b.shape[1], sizeof(floating), {"a": a, "b": b, "c": c})
    cdef fastlstm_products kern = fastlstm_simd_products(_simd_level)
    cdef floating *b_packed
    if packed:
        b_packed = products.packed_copy(kern, b.shape[0], b.shape[1], &b[0, 0], b.shape[1])
        with nogil:
            products.matmul_packed(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
                           a.strides[0] // sizeof(floating), b_packed, &c[0, 0],
                           c.strides[0] // sizeof(floating), accumulate)
        fastlstm_aligned_free(b_packed)
        return
    with nogil:
        products.matmul(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
                a.strides[0] // sizeof(floating), &b[0, 0], b.shape[1], &c[0, 0],
                c.strides[0] // sizeof(floating), accumulate)


def transposed_product(const floating[:, :] a, const floating[:, ::1] w, floating[:, :] c):
    """c = a @ w.T as the backward pass takes its products with transposed
    weights (for tests): packed vectors, and dot products for the last
    dot_columns(n, k) columns."""
    _check_product_operands(
        "transposed_product", a.shape[1] == w.shape[1] and c.shape[0] == a.shape[0]
        and c.shape[1] == w.shape[0], sizeof(floating), {"a": a, "w": w, "c": c})
    cdef fastlstm_products kern = fastlstm_simd_products(_simd_level)
    cdef floating *packed = products.packed_transpose(kern, w.shape[0], w.shape[1], &w[0, 0])
    with nogil:
        products.transposed_product(kern, a.shape[0], w.shape[0], a.shape[1], &a[0, 0],
                            a.strides[0] // sizeof(floating), packed, &w[0, 0], &c[0, 0],
                            c.strides[0] // sizeof(floating))
    fastlstm_aligned_free(packed)


def dot_columns(Py_ssize_t n, Py_ssize_t k, Py_ssize_t itemsize):
    """How many of the last of n columns transposed_product takes as dot
    products at the current SIMD level, for a of k columns (for tests)."""
    return products.dot_columns(fastlstm_simd_products(_simd_level), n, k, itemsize)


def matmul_grad(const floating[:, :] a, const floating[:, :] b, floating[:, :] c,
                bint accumulate, floating[::1] sums=None):
    """c = [c +] a @ b with the weight gradients' product (for tests); sums
    (n,), if given, = [sums +] the column sums of b (the bias gradient).

    a (m, k), b (k, n) and c (m, n) may be strided by rows (unit stride along
    each row), as the backward pass reads a column block of dz.
    """
    _check_product_operands(
        "matmul_grad", a.shape[1] == b.shape[0] and c.shape[0] == a.shape[0]
        and c.shape[1] == b.shape[1], sizeof(floating), {"a": a, "b": b, "c": c})
    if sums is not None and sums.shape[0] != b.shape[1]:
        raise ValueError(f"matmul_grad: sums must have shape ({b.shape[1]},), "
                         f"got ({sums.shape[0]},)")
    cdef fastlstm_products kern = fastlstm_simd_products(_simd_level)
    cdef floating *sums_ptr = NULL if sums is None else &sums[0]
    cdef Py_ssize_t ldb = b.strides[0] // sizeof(floating)
    cdef floating *scratch
    if products.alloc_matmul_grad_scratch(b.shape[1], ldb, &scratch) < 0:
        raise MemoryError("matmul_grad: could not allocate the packing scratch")
    with nogil:
        products.matmul_grad(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
                     a.strides[0] // sizeof(floating), &b[0, 0], ldb, &c[0, 0],
                     c.strides[0] // sizeof(floating), accumulate, sums_ptr, scratch)
    fastlstm_aligned_free(scratch)


def gates_forward(floating[:, ::1] z, const floating[::1] bias, const floating[::1] c_prev,
                  floating[::1] c_out, floating[::1] h_out, Py_ssize_t start=0,
                  Py_ssize_t stop=-1):
    """The forward gate pass on one row (for tests).

    z (4, units) holds the pre-activations and is overwritten by the activated
    gates; c_out and h_out (units,) receive c and h. Only units [start, stop)
    are computed, as a thread of a shared small batch computes its slice.
    """
    cdef Py_ssize_t H = z.shape[1]
    if stop < 0:
        stop = H
    if z.shape[0] != 4 or bias.shape[0] != 4 * H or not (
            c_prev.shape[0] == c_out.shape[0] == h_out.shape[0] == H):
        raise ValueError("gates_forward: expected z (4, units), bias (4 * units,) "
                         "and c_prev, c_out, h_out (units,)")
    if not 0 <= start < stop <= H:
        raise ValueError("gates_forward: need 0 <= start < stop <= units")
    cdef fastlstm_cell cell = fastlstm_cell_kernels(_simd_level, FASTLSTM_CELL_LSTM)
    cdef fastlstm_forward_row row
    memset(&row, 0, sizeof(row))
    row.z, row.bias, row.c_prev = &z[0, start], &bias[start], &c_prev[start]
    row.c_out, row.h_out = &c_out[start], &h_out[start]
    with nogil:
        if floating is float:
            cell.phases[0].forward_f32(stop - start, H, &row)
        else:
            cell.phases[0].forward_f64(stop - start, H, &row)


def gates_backward(floating[:, ::1] gates, const floating[::1] c_prev, const floating[::1] c_t,
                   const floating[::1] dh, dy, floating[::1] dc):
    """The backward gate pass on one row (for tests).

    gates (4, units) holds the activated gates and is overwritten by the
    gradients of the pre-activations; dc (units,) is updated in place from
    the gradient of c_t to that of c_{t-1}. dy (units,) or None.
    """
    cdef Py_ssize_t H = gates.shape[1]
    if gates.shape[0] != 4 or not (c_prev.shape[0] == c_t.shape[0] == dh.shape[0]
                                   == dc.shape[0] == H):
        raise ValueError("gates_backward: expected gates (4, units) and rows of units")
    cdef const floating[::1] dy_view
    cdef const floating *dy_ptr = NULL
    if dy is not None:
        dy_view = dy
        if dy_view.shape[0] != H:
            raise ValueError("gates_backward: expected dy (units,)")
        dy_ptr = &dy_view[0]
    cdef fastlstm_cell cell = fastlstm_cell_kernels(_simd_level, FASTLSTM_CELL_LSTM)
    cdef fastlstm_backward_row row
    memset(&row, 0, sizeof(row))
    row.gates, row.c_prev, row.c_t, row.dh = &gates[0, 0], &c_prev[0], &c_t[0], &dh[0]
    row.dy, row.dc = dy_ptr, &dc[0]
    with nogil:
        if floating is float:
            cell.phases[0].backward_f32(H, &row)
        else:
            cell.phases[0].backward_f64(H, &row)

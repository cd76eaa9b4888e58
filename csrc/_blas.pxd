# Row-major GEMM over scipy's BLAS for float and double.
#
# BLAS is column-major. A row-major matrix with leading dimension ld is the
# transpose of the column-major one stored in the same memory, so the
# row-major product C = op(A) op(B) is computed as the column-major
# C^T = op(B)^T op(A)^T: swap the operands and their sizes, keep the
# transpose flags.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(char trans_a, char trans_b, int m, int n, int k,
                      floating alpha, const floating *a, int lda,
                      const floating *b, int ldb, floating beta,
                      floating *c, int ldc) noexcept nogil:
    """C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, row-major."""
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <float *> b, &ldb,
              <float *> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&trans_b, &trans_a, &n, &m, &k, &alpha, <double *> b, &ldb,
              <double *> a, &lda, &beta, c, &ldc)

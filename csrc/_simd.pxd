# cython: language_level=3
"""The C declarations of the compiled core, once: the SIMD product table
(simd.h), the cells' row kernels (cell.h) and the small C helpers. Every
module cimports them from here."""
from libc.stdint cimport uint64_t


cdef extern from "simd.h" nogil:
    ctypedef void (*matmul_f32_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *,
                                   Py_ssize_t, const float *, Py_ssize_t, float *, Py_ssize_t,
                                   int) noexcept nogil
    ctypedef void (*matmul_f64_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const double *,
                                   Py_ssize_t, const double *, Py_ssize_t, double *, Py_ssize_t,
                                   int) noexcept nogil
    ctypedef void (*pack_f32_fn)(Py_ssize_t, Py_ssize_t, const float *, Py_ssize_t,
                                 float *) noexcept nogil
    ctypedef void (*pack_f64_fn)(Py_ssize_t, Py_ssize_t, const double *, Py_ssize_t,
                                 double *) noexcept nogil
    ctypedef void (*matmul_packed_f32_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *,
                                          Py_ssize_t, const float *, float *, Py_ssize_t,
                                          int) noexcept nogil
    ctypedef void (*matmul_packed_f64_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const double *,
                                          Py_ssize_t, const double *, double *, Py_ssize_t,
                                          int) noexcept nogil
    ctypedef void (*matmul_grad_f32_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *,
                                        Py_ssize_t, const float *, Py_ssize_t, float *,
                                        Py_ssize_t, int, float *, float *) noexcept nogil
    ctypedef void (*matmul_grad_f64_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const double *,
                                        Py_ssize_t, const double *, Py_ssize_t, double *,
                                        Py_ssize_t, int, double *, double *) noexcept nogil
    ctypedef void (*matmul_dot_f32_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *,
                                       Py_ssize_t, const float *, Py_ssize_t, float *,
                                       Py_ssize_t) noexcept nogil
    ctypedef void (*matmul_dot_f64_fn)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const double *,
                                       Py_ssize_t, const double *, Py_ssize_t, double *,
                                       Py_ssize_t) noexcept nogil
    ctypedef Py_ssize_t (*dot_columns_fn)(Py_ssize_t, Py_ssize_t) noexcept nogil
    ctypedef int (*all_finite_f32_fn)(Py_ssize_t, const float *) noexcept nogil
    ctypedef int (*all_finite_f64_fn)(Py_ssize_t, const double *) noexcept nogil
    ctypedef uint64_t (*fingerprint_fn)(Py_ssize_t, const unsigned char *) noexcept nogil
    ctypedef struct fastlstm_products:
        matmul_f32_fn matmul_f32
        matmul_f64_fn matmul_f64
        pack_f32_fn pack_f32
        pack_f64_fn pack_f64
        matmul_packed_f32_fn matmul_packed_f32
        matmul_packed_f64_fn matmul_packed_f64
        matmul_grad_f32_fn matmul_grad_f32
        matmul_grad_f64_fn matmul_grad_f64
        matmul_dot_f32_fn matmul_dot_f32
        matmul_dot_f64_fn matmul_dot_f64
        dot_columns_fn dot_columns_f32
        dot_columns_fn dot_columns_f64
        all_finite_f32_fn all_finite_f32
        all_finite_f64_fn all_finite_f64
        fingerprint_fn fingerprint
    int FASTLSTM_PACK_EXTRA
    int FASTLSTM_K_BLOCK
    Py_ssize_t fastlstm_matmul_grad_scratch(Py_ssize_t n, Py_ssize_t ldb, Py_ssize_t itemsize)
    int fastlstm_simd_level_count()
    const char *fastlstm_simd_level_name(int level)
    int fastlstm_simd_level_supported(int level)
    int fastlstm_simd_best_level()
    fastlstm_products fastlstm_simd_products(int level)


cdef extern from "cell.h" nogil:
    ctypedef struct fastlstm_forward_row:
        void *z
        const void *rec
        const void *bias
        const void *h_prev
        const void *h_masked
        const void *c_prev
        void *c_out
        void *h_out
        void *aux
        const void *peephole
    ctypedef struct fastlstm_backward_row:
        void *gates
        void *dz_rec
        const void *aux
        const void *h_prev
        const void *h_masked
        const void *h_t
        const void *c_prev
        const void *c_t
        const void *dh
        const void *dy
        void *dc
        void *dh_carry
        const void *peephole
        void *d_operand
    ctypedef void (*fastlstm_forward_row_fn)(Py_ssize_t, Py_ssize_t,
                                             const fastlstm_forward_row *) noexcept nogil
    ctypedef void (*fastlstm_backward_row_fn)(Py_ssize_t,
                                              const fastlstm_backward_row *) noexcept nogil
    enum:
        FASTLSTM_CELL_LSTM
        FASTLSTM_CELL_LSTM_PEEPHOLE
        FASTLSTM_CELL_GRU_RESET_AFTER
        FASTLSTM_CELL_GRU_RESET_BEFORE
        FASTLSTM_CELL_RNN_TANH
        FASTLSTM_CELL_RNN_RELU
        FASTLSTM_CELL_COUNT
    enum:
        FASTLSTM_OPERAND_H_PREV
        FASTLSTM_OPERAND_AUX
    enum:
        FASTLSTM_PRODUCT_ADDED
        FASTLSTM_PRODUCT_APART
    ctypedef struct fastlstm_phase:
        int first_block
        int n_blocks
        int operand
        int product
        fastlstm_forward_row_fn forward_f32
        fastlstm_forward_row_fn forward_f64
        fastlstm_backward_row_fn backward_f32
        fastlstm_backward_row_fn backward_f64
    ctypedef struct fastlstm_cell:
        int n_gates
        int has_cell_state
        int bias_rows
        int keeps_aux
        int peephole_rows
        int n_phases
        fastlstm_phase phases[2]
    fastlstm_cell fastlstm_cell_kernels(int level, int cell)


cdef extern from "aligned_memory.h" nogil:
    void *fastlstm_aligned_malloc(size_t bytes)
    void fastlstm_aligned_free(void *memory)


cdef extern from "transpose_rows.h" nogil:
    void fastlstm_transpose_rows_f32(const float **rows, Py_ssize_t n_rows, Py_ssize_t width,
                                     float *a)
    void fastlstm_transpose_rows_f64(const double **rows, Py_ssize_t n_rows,
                                     Py_ssize_t width, double *a)


cdef extern from "prefetch_rows.h" nogil:
    void fastlstm_prefetch_row(const void *row, Py_ssize_t row_bytes)


cdef extern from "interrupt_poll.h" nogil:
    ctypedef struct fastlstm_interrupt:
        pass
    void fastlstm_interrupt_init(fastlstm_interrupt *it, int enabled)
    int fastlstm_interrupted(fastlstm_interrupt *it)
    int fastlstm_interrupt_stopped(const fastlstm_interrupt *it)
    int fastlstm_interrupt_reraise(fastlstm_interrupt *it) except -1


cdef extern from "preemption.h" nogil:
    ctypedef struct fastlstm_thread_clock:
        pass
    fastlstm_thread_clock fastlstm_thread_clock_now()
    void fastlstm_add_lost_time(long long *lost_ns, fastlstm_thread_clock start)


cdef extern from "openmp_compat.h" nogil:
    int fastlstm_openmp_enabled()
    int fastlstm_omp_max_threads()
    int fastlstm_omp_thread_num()
    int fastlstm_omp_num_threads()
    void fastlstm_omp_barrier()
    const char *fastlstm_compiler_flags()

# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""LSTM forward and backward (BPTT) kernels over a batch of sequences.

Nothing here validates: fastlstm.functional checks shapes, dtypes,
finiteness and sizes, allocates every output, holds BLAS to one thread when
backward calls it (backward_calls_blas), and only then calls in. All arrays
are C-contiguous, batch-major, non-empty, and their sizes fit BLAS' 32-bit
integers.

Layout (B batch, T time, I features, H units, G = 4H; gate blocks i, f, g, o)
    x (B, T, I); kernel (I, G); recurrent_kernel (H, G); bias (G,)
    y (B, T, H) the hidden states h_t; cells (B, T, H) the cell states c_t
    gates (B, T, G): pre-activations, then activated gates, then (after
    backward) the gradients of the pre-activations.

Work split. The forward pass' products (the input projection and the
per-step recurrent products) and backward's per-step product go to our own
kernel (lstm_matmul_impl.h) over weights packed once per call (a single
step of a few rows reads them as given): BLAS would repack them on every
call, and BLAS rounds a row differently depending on how many rows share
the call. Our kernel sums every element over k in order
in one accumulator, so a row's result never depends on the rows beside it.
The weight gradients, sums over all (batch, time) rows, go to the same
kernel (reading its first operand transposed), one block of gate columns
per thread. dx goes to the same kernel over the kernel weights packed
once, transposed, except for a layer with few features or a large kernel,
whose dx goes to BLAS (see OWN_DX_MIN_FEATURES); either way over fixed
blocks of (batch, time) rows that depend on the problem's size alone.

Parallel design. The batch is cut into one part per thread (more for a
large batch, PART_MAX_ROWS rows at most), and each thread runs its part
through all time steps, so there is no barrier per step and each step's
product uses every weight it loads for all of the part's rows. Because no
row's result depends on how the batch is cut, every output is bitwise
identical for any thread count. A small batch with weights too large for
one core's L2 shares one part among the threads instead, which split its
gate columns (see _split_units and _forward_part).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memset

from _blas cimport gemm


cdef extern from "lstm_simd.h" nogil:
    ctypedef void (*forward_f32_fn)(Py_ssize_t, Py_ssize_t, float *, const float *,
                                    const float *, float *, float *) noexcept nogil
    ctypedef void (*forward_f64_fn)(Py_ssize_t, Py_ssize_t, double *, const double *,
                                    const double *, double *, double *) noexcept nogil
    ctypedef void (*backward_f32_fn)(Py_ssize_t, float *, const float *, const float *,
                                     const float *, const float *, float *) noexcept nogil
    ctypedef void (*backward_f64_fn)(Py_ssize_t, double *, const double *, const double *,
                                     const double *, const double *, double *) noexcept nogil
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
    ctypedef struct lstm_simd_kernels:
        forward_f32_fn forward_f32
        forward_f64_fn forward_f64
        backward_f32_fn backward_f32
        backward_f64_fn backward_f64
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
    lstm_simd_kernels fastlstm_simd_kernels(int level)


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


# Batch rows per part at most: enough rows to reuse each weight the step's
# product loads many times, few enough that a step's pre-activations stay
# in L2 for the gate pass. Recurrent weights of at most SMALL_RECURRENT_BYTES
# stay in L1 anyway; parts of SMALL_PART_ROWS rows then keep the rows a step
# touches few (measured 8% faster at 50 units than parts of 64 rows).
cdef Py_ssize_t PART_MAX_ROWS = 128
cdef Py_ssize_t SMALL_RECURRENT_BYTES = 64 * 1024
cdef Py_ssize_t SMALL_PART_ROWS = 16
# At most about this many (batch, time) rows per block of dx's products
# (a block is one BLAS call, or PRODUCT_ROW_BLOCK-row products of our own).
# OpenBLAS' sgemm ran dx 5-10% faster on 1024-row blocks than on 256 (1
# thread, 1-1024 features); at 512 units 150 against 139 GFLOP/s.
cdef Py_ssize_t DX_ROW_BLOCK = 1024
# dx = dz @ kernel^T goes through the packed product when dx has at least
# OWN_DX_MIN_FEATURES columns (features), so that every SIMD level takes
# whole vectors of them, and the kernel takes at most OWN_DX_MAX_KERNEL_BYTES,
# so that its packed transpose stays in L2. Measured on 256-row blocks on 1
# thread, the packed product ran 1.08-1.49x faster than OpenBLAS' sgemm at
# 32-256 features; whole training steps 1.02-1.12x faster at up to 256
# units, 0.98x at 512. Otherwise dx goes to BLAS: its dot products beat the
# product's one-lane-at-a-time loop at a few features (at 1 feature 36
# against 4 GFLOP/s), and its blocking of the long k wins on larger kernels.
cdef Py_ssize_t OWN_DX_MIN_FEATURES = 16
cdef Py_ssize_t OWN_DX_MAX_KERNEL_BYTES = 2 << 20
# Inference keeps pre-activations for a block of time steps per part, not
# for the whole sequence: about this many bytes per part, so that the
# block's projection stays in L2 until the step loop reads it.
cdef Py_ssize_t INFERENCE_BLOCK_BYTES = 512 * 1024
# The input projection and dx run over this many rows at a time, so the
# rows being multiplied stay in L2 while every column panel passes them.
cdef Py_ssize_t PRODUCT_ROW_BLOCK = 256
# A single time step of at most this many rows (streaming, one step per
# call) reads the weights as given: packing them would read them twice and
# write them once more for products that use each weight once per row
# (measured: a one-step call at 512 units took 1.2 ms, nearly all packing).
cdef Py_ssize_t UNPACKED_STEP_ROWS = 8
# A batch of at most SPLIT_BATCH_MAX rows whose recurrent weights take at
# least SPLIT_WEIGHT_BYTES is shared by the threads, each taking whole
# multiples of SPLIT_COLUMNS gate columns: a multiple of every SIMD level's
# panel width, so each member's columns are a self-contained piece of the
# packed weights.
cdef Py_ssize_t SPLIT_BATCH_MAX = 16
cdef Py_ssize_t SPLIT_WEIGHT_BYTES = 1 << 20
cdef Py_ssize_t SPLIT_COLUMNS = 64
# The weight gradients cut the gate columns into about one block per
# thread: near-equal blocks cut at multiples of GRAD_COLUMNS (a whole number
# of vectors at every SIMD level). Their product sums each column alone, so
# the cut changes no bit.
cdef Py_ssize_t GRAD_COLUMNS = 16
# Weight gradients of at most GRAD_ROW_SPLIT_BYTES are also cut by rows:
# each of GRAD_ROW_PARTS parts of the batch is summed on its own, and the
# parts are added in order afterwards. The number of parts depends on the
# shape alone, so the result does not depend on the thread count. Measured
# in a C harness on 2 threads, column halves of the product ran 0.95-1.66x
# faster than one thread at 50-256 units, row halves 1.59-2.15x; at 512
# units and more both run 1.83-1.95x faster.
cdef Py_ssize_t GRAD_ROW_PARTS = 2
cdef Py_ssize_t GRAD_ROW_SPLIT_BYTES = 4 << 20
# The weight gradients' product reads GRAD_K_ROWS (batch, time) rows of
# [x_t, h_{t-1}] at a time, gathered transposed into one block: the
# product's own k block, so each call is one block of it.
cdef Py_ssize_t GRAD_K_ROWS = FASTLSTM_K_BLOCK

# The step loops prefetch the rows of the next step only when a row of gates
# takes at most a page (see prefetch_rows.h). A longer row is a stream the
# hardware prefetcher follows by itself: prefetching rows of 8 KiB (512
# units in float32, 256 in float64) measured 0.98-0.99x, rows of 4 KiB
# 1.00-1.03x.
cdef Py_ssize_t PREFETCH_MAX_ROW_BYTES = 4096

cdef int _simd_level = fastlstm_simd_best_level()


# ---------------------------------------------------------------- build facts

def openmp_enabled():
    """Whether this module was compiled with OpenMP."""
    return bool(fastlstm_openmp_enabled())


def omp_max_threads():
    """OpenMP's default team size (1 without OpenMP)."""
    return fastlstm_omp_max_threads()


def compiler_flags():
    """The extra flags setup.py compiled the kernels with."""
    return fastlstm_compiler_flags().decode()


def simd_levels():
    """Names of the SIMD kernel levels this CPU supports, lowest first."""
    return [fastlstm_simd_level_name(i).decode()
            for i in range(fastlstm_simd_level_count())
            if fastlstm_simd_level_supported(i)]


def get_simd_level():
    """Name of the SIMD level the kernels use."""
    return fastlstm_simd_level_name(_simd_level).decode()


def set_simd_level(name=None):
    """Use the SIMD kernels of level `name` (None: the best supported).

    For tests and benchmarks; not thread-safe against running kernels.
    """
    global _simd_level
    if name is None:
        _simd_level = fastlstm_simd_best_level()
        return
    for i in range(fastlstm_simd_level_count()):
        if fastlstm_simd_level_name(i).decode() == name:
            if not fastlstm_simd_level_supported(i):
                raise ValueError(f"SIMD level {name!r} is not supported by this CPU")
            _simd_level = i
            return
    raise ValueError(f"unknown SIMD level {name!r}; this CPU supports {simd_levels()}")


cdef inline bint _split_units(Py_ssize_t B, Py_ssize_t H, Py_ssize_t itemsize,
                              int n_threads) noexcept nogil:
    """Whether the threads share one part, splitting its gate columns.

    Sharing costs two barriers a step and pays when it keeps each thread's
    half of the weights in its own L2. Smaller weights stay in every core's
    L2 anyway: the threads then do better on parts of the batch, and a
    lone row on one thread. Measured paired on 2 threads (sharing against
    not): batch 1 at 64, 100, 128, 256, 512 units 0.57, 0.85, 1.05, 1.44,
    2.34x; batch 4 and 16 at 128 units 0.82 and 0.69x, batch 4 and 8 at 512
    units 1.51 and 1.27x.
    """
    return (n_threads > 1 and B <= SPLIT_BATCH_MAX
            and 4 * H * H * itemsize >= SPLIT_WEIGHT_BYTES)


cdef inline int _team_size(Py_ssize_t n_parts, int n_threads) noexcept nogil:
    """Threads for a loop over n_parts parts: no more than there are parts.
    A thread with no part would still have to wake up and reach the loop's
    closing barrier, and the call waits for it (measured paired on 2
    threads: batch-1 forward at 50 and 128 units 1.44x and 1.13x faster
    with a team of one)."""
    return <int> min(<Py_ssize_t> n_threads, n_parts)


def batch_parts(Py_ssize_t batch, Py_ssize_t units, Py_ssize_t itemsize, int n_threads,
                bint backward=False):
    """Number of parts the forward (or backward) pass cuts `batch` rows into."""
    if backward:
        return _batch_parts(batch, units, itemsize, n_threads)
    return _n_parts(batch, units, itemsize, n_threads)


cdef inline Py_ssize_t _batch_parts(Py_ssize_t B, Py_ssize_t H, Py_ssize_t itemsize,
                                    int n_threads) noexcept nogil:
    """At least one part per thread (and per row), of at most PART_MAX_ROWS
    rows, or SMALL_PART_ROWS when the recurrent weights are small."""
    cdef Py_ssize_t max_rows = PART_MAX_ROWS
    if 4 * H * H * itemsize <= SMALL_RECURRENT_BYTES:
        max_rows = SMALL_PART_ROWS
    return max(1, min(B, n_threads), (B + max_rows - 1) // max_rows)


cdef inline Py_ssize_t _n_parts(Py_ssize_t B, Py_ssize_t H, Py_ssize_t itemsize,
                                int n_threads) noexcept nogil:
    """The forward pass' parts: one part that the threads share, or batch parts.

    Backward always takes batch parts: its recurrence has no shared-part
    mode, and one part would leave it on one thread (measured paired on 2
    threads: backward at (16, 50, 512, 512), (8, 25, 1024, 1024) and
    (2, 100, 256, 256) 1.16x, 1.09x and 1.17x faster on batch parts)."""
    if _split_units(B, H, itemsize, n_threads):
        return 1
    return _batch_parts(B, H, itemsize, n_threads)


cdef inline Py_ssize_t _inference_block(Py_ssize_t B, Py_ssize_t T, Py_ssize_t H,
                                        Py_ssize_t itemsize, Py_ssize_t n_parts) noexcept nogil:
    """Time steps per inference block, from the largest part's rows."""
    cdef Py_ssize_t rows = (B + n_parts - 1) // n_parts
    return max(1, min(T, INFERENCE_BLOCK_BYTES // (rows * 4 * H * itemsize)))


cdef inline Py_ssize_t _inference_rows_size(Py_ssize_t block, Py_ssize_t I,
                                            Py_ssize_t H) noexcept nogil:
    """Scratch elements per batch row: a block of pre-activations and of
    inputs, and two cell states."""
    return block * (4 * H + I) + 2 * H


def inference_workspace_size(Py_ssize_t batch, Py_ssize_t time, Py_ssize_t features,
                             Py_ssize_t units, Py_ssize_t itemsize, int n_threads):
    """Elements of scratch forward_inference needs with n_threads threads."""
    cdef Py_ssize_t n_parts = _n_parts(batch, units, itemsize, n_threads)
    cdef Py_ssize_t block = _inference_block(batch, time, units, itemsize, n_parts)
    return batch * _inference_rows_size(block, features, units)


cdef inline Py_ssize_t _split(Py_ssize_t i, Py_ssize_t parts, Py_ssize_t size) noexcept nogil:
    """Start of part i when `size` items are cut into `parts` near-equal parts."""
    return i * size // parts


cdef inline Py_ssize_t _column_split(Py_ssize_t i, Py_ssize_t parts, Py_ssize_t G,
                                     Py_ssize_t unit) noexcept nogil:
    """Start of part i of G gate columns cut at multiples of `unit`; the last
    part takes the ragged end (part `parts` starts at G)."""
    if i == parts:
        return G
    return unit * _split(i, parts, G // unit)


# ------------------------------------------------------------------- forward

cdef inline void _gates_forward(lstm_simd_kernels kern, Py_ssize_t n, Py_ssize_t stride,
                                floating *z, const floating *bias, const floating *c_prev,
                                floating *c_out, floating *h_out) noexcept nogil:
    """Gate math of n units whose gate blocks in z and bias are stride apart."""
    if floating is float:
        kern.forward_f32(n, stride, z, bias, c_prev, c_out, h_out)
    else:
        kern.forward_f64(n, stride, z, bias, c_prev, c_out, h_out)


cdef inline void _matmul(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const floating *a, Py_ssize_t lda, const floating *b, Py_ssize_t ldb,
                         floating *c, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """c (m, n) = [c +] a (m, k) @ b (k, n), row-major; rows independent of m."""
    if floating is float:
        kern.matmul_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
    else:
        kern.matmul_f64(m, n, k, a, lda, b, ldb, c, ldc, accumulate)


cdef inline void _matmul_grad(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n,
                              Py_ssize_t k, const floating *a, Py_ssize_t lda,
                              const floating *b, Py_ssize_t ldb, floating *c, Py_ssize_t ldc,
                              bint accumulate, floating *column_sums,
                              floating *scratch) noexcept nogil:
    """c (m, n) = [c +] a (m, k) @ b (k, n) for a long k (the weight
    gradients); each element summed over k in order, as _matmul sums it.
    column_sums (n), unless NULL: [column_sums +] b's column sums. scratch:
    from _alloc_matmul_grad_scratch(n, ldb), NULL when b needs no packing."""
    if floating is float:
        kern.matmul_grad_f32(m, n, k, a, lda, b, ldb, c, ldc, accumulate, column_sums,
                             scratch)
    else:
        kern.matmul_grad_f64(m, n, k, a, lda, b, ldb, c, ldc, accumulate, column_sums,
                             scratch)


cdef int _alloc_matmul_grad_scratch(Py_ssize_t n, Py_ssize_t ldb,
                                    floating **scratch) noexcept nogil:
    """scratch[0] = aligned scratch for _matmul_grad over n columns of b with
    rows ldb apart, or NULL when it needs none (free it with
    fastlstm_aligned_free). Returns -1 if out of memory."""
    cdef Py_ssize_t size = fastlstm_matmul_grad_scratch(n, ldb, sizeof(floating))
    scratch[0] = NULL
    if size > 0:
        scratch[0] = <floating *> fastlstm_aligned_malloc(size * sizeof(floating))
        if scratch[0] == NULL:
            return -1
    return 0


cdef inline void _matmul_packed(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n,
                                Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                const floating *packed, floating *c, Py_ssize_t ldc,
                                bint accumulate) noexcept nogil:
    """_matmul with b packed by _packed_copy: the same numbers, b read contiguously."""
    if floating is float:
        kern.matmul_packed_f32(m, n, k, a, lda, packed, c, ldc, accumulate)
    else:
        kern.matmul_packed_f64(m, n, k, a, lda, packed, c, ldc, accumulate)


cdef floating *_packed_copy(lstm_simd_kernels kern, Py_ssize_t k, Py_ssize_t n,
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


cdef inline void _transpose_rows(const floating **rows, Py_ssize_t n_rows, Py_ssize_t width,
                                 floating *a) noexcept nogil:
    """a (width, n_rows) = the n_rows rows of `width` values, transposed
    (transpose_rows.h)."""
    if floating is float:
        fastlstm_transpose_rows_f32(rows, n_rows, width, a)
    else:
        fastlstm_transpose_rows_f64(rows, n_rows, width, a)


cdef inline Py_ssize_t _dot_columns(lstm_simd_kernels kern, Py_ssize_t n, Py_ssize_t k,
                                     Py_ssize_t itemsize) noexcept nogil:
    """How many of the last of n columns of a product with transposed weights
    of k columns _transposed_product takes as dot products (lstm_dot_impl.h)."""
    if itemsize == sizeof(float):
        return kern.dot_columns_f32(n, k)
    return kern.dot_columns_f64(n, k)


cdef inline void _matmul_dot(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating *a, Py_ssize_t lda, const floating *w,
                             Py_ssize_t ldw, floating *c, Py_ssize_t ldc) noexcept nogil:
    if floating is float:
        kern.matmul_dot_f32(m, n, k, a, lda, w, ldw, c, ldc)
    else:
        kern.matmul_dot_f64(m, n, k, a, lda, w, ldw, c, ldc)


cdef floating *_packed_transpose(lstm_simd_kernels kern, Py_ssize_t rows, Py_ssize_t cols,
                                 const floating *b) except NULL:
    """_packed_copy of the transpose (cols, rows) of b (rows, cols), but for
    its last _dot_columns(rows, cols) columns, which _transposed_product
    reads from b itself."""
    cdef Py_ssize_t n_packed = rows - _dot_columns(kern, rows, cols, sizeof(floating))
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
            _transpose_rows(row_starts, n_packed, cols, b_t)
        return _packed_copy(kern, cols, n_packed, b_t, n_packed)
    finally:
        free(b_t)
        free(row_starts)


cdef inline void _transposed_product(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n,
                                     Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                     const floating *packed, const floating *w,
                                     floating *c, Py_ssize_t ldc) noexcept nogil:
    """c (m, n) = a (m, k) @ w^T for w (n, k) row-major: the first columns
    with packed (_packed_transpose of w), the last _dot_columns(n, k) as dot
    products with w's rows."""
    cdef Py_ssize_t n_dot = _dot_columns(kern, n, k, sizeof(floating))
    if n > n_dot:
        _matmul_packed(kern, m, n - n_dot, k, a, lda, packed, c, ldc, False)
    if n_dot > 0:
        _matmul_dot(kern, m, n_dot, k, a, lda, w + (n - n_dot) * k, k, c + n - n_dot, ldc)


cdef inline const floating *_weight_columns(const floating *w, Py_ssize_t ldw,
                                           Py_ssize_t k, Py_ssize_t j0) noexcept nogil:
    """Where columns j0.. of a weight matrix with k rows start: packed by
    _packed_copy (ldw = 0; j0 at a group boundary) or row-major, rows ldw apart."""
    if ldw == 0:
        return w + k * j0
    return w + j0


cdef inline void _weights_product(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n,
                                  Py_ssize_t k, const floating *a, Py_ssize_t lda,
                                  const floating *w, Py_ssize_t ldw, floating *c,
                                  Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """c (m, n) = [c +] a @ w, w packed (ldw = 0) or row-major; the same
    numbers either way."""
    if ldw == 0:
        _matmul_packed(kern, m, n, k, a, lda, w, c, ldc, accumulate)
    else:
        _matmul(kern, m, n, k, a, lda, w, ldw, c, ldc, accumulate)


cdef void _product_rows(lstm_simd_kernels kern, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating *a, const floating *w, Py_ssize_t ldw, floating *c,
                        Py_ssize_t ldc) noexcept nogil:
    """c (m, n) = a (m, k) @ w (see _weights_product), a contiguous,
    PRODUCT_ROW_BLOCK rows at a time."""
    cdef Py_ssize_t r0 = 0
    while r0 < m:
        _weights_product(kern, min(PRODUCT_ROW_BLOCK, m - r0), n, k, a + r0 * k, k, w, ldw,
                         c + r0 * ldc, ldc, False)
        r0 += PRODUCT_ROW_BLOCK


cdef inline bint _prefetches_rows(Py_ssize_t G, Py_ssize_t itemsize) noexcept nogil:
    """Whether the step loops prefetch the next step's rows (prefetch_rows.h):
    only rows of gates of at most PREFETCH_MAX_ROW_BYTES."""
    return G * itemsize <= PREFETCH_MAX_ROW_BYTES


cdef inline void _prefetch_row(const floating *row, Py_ssize_t width) noexcept nogil:
    """Prefetch a row of `width` values into L2 (prefetch_rows.h)."""
    fastlstm_prefetch_row(row, width * sizeof(floating))


cdef void _gather_block(const floating *x, floating *x_block, Py_ssize_t T, Py_ssize_t I,
                       Py_ssize_t b0, Py_ssize_t nb, Py_ssize_t t0,
                       Py_ssize_t tb) noexcept nogil:
    """Copy the rows x[b0:b0 + nb, t0:t0 + tb] into x_block (nb * tb, I), so
    a time block's projection is one product over contiguous rows."""
    cdef Py_ssize_t r
    for r in range(nb):
        memcpy(x_block + r * tb * I, x + ((b0 + r) * T + t0) * I, tb * I * sizeof(floating))


cdef void _forward_part(
        const floating *x, const floating *kernel, const floating *recurrent_kernel,
        Py_ssize_t ldw, const floating *bias, const floating *h0, const floating *c0,
        floating *y, floating *c_n, floating *gates, floating *cells, floating *scratch,
        Py_ssize_t B, Py_ssize_t T, Py_ssize_t I, Py_ssize_t H,
        Py_ssize_t part, Py_ssize_t n_parts, lstm_simd_kernels kern,
        int member, int team, fastlstm_interrupt *interrupt) noexcept nogil:
    """Run one batch part through all time steps, or until `interrupt` stops
    the call (the outputs are then incomplete and the caller raises).

    The weights are packed by _packed_copy (ldw = 0) or as given, rows ldw
    apart (see _weights_product).

    Training (gates, cells not NULL) keeps every step's gates and cells for
    backward. Inference keeps a time block of pre-activations (and of the
    inputs) and two cell states in `scratch` (_inference_rows_size elements
    per row), so its memory does not grow with the sequence length.
    z holds the current block as (nb, tb, G).

    Called by one thread (team = 1) or by every thread of a team that shares
    the part (member = its rank): each then computes its own columns of the
    projection and of each step's product, and its own units of the gate
    math, with a barrier after each. Either way every number is computed the
    same way, so the result does not depend on the team's size.
    """
    cdef Py_ssize_t G = 4 * H
    cdef Py_ssize_t b0 = _split(part, n_parts, B)
    cdef Py_ssize_t nb = _split(part + 1, n_parts, B) - b0
    cdef bint training = gates != NULL
    cdef Py_ssize_t block, t0, tb, s, t, r, b, ld_h
    cdef floating *z
    cdef floating *x_block = NULL
    cdef floating *cell_pair = NULL
    cdef const floating *inputs
    cdef const floating *h_prev
    cdef const floating *c_prev_row
    cdef floating *c_row
    # This member's columns of the products and its units of the gate math.
    cdef Py_ssize_t j0 = _column_split(member, team, G, SPLIT_COLUMNS)
    cdef Py_ssize_t j1 = _column_split(member + 1, team, G, SPLIT_COLUMNS)
    cdef Py_ssize_t u0 = _split(member, team, H)
    cdef Py_ssize_t nu = _split(member + 1, team, H) - u0
    cdef bint prefetch = training and team == 1 and _prefetches_rows(G, sizeof(floating))

    if training:
        block = T
        z = gates + b0 * T * G
    else:
        block = _inference_block(B, T, H, sizeof(floating), n_parts)
        z = scratch + b0 * _inference_rows_size(block, I, H)
        x_block = z + nb * block * G
        cell_pair = x_block + nb * block * I

    t0 = 0
    while t0 < T:
        tb = min(block, T - t0)
        if tb == T:
            inputs = x + b0 * T * I  # the part's rows of x are already contiguous
        else:
            inputs = x_block
            if member == 0:
                _gather_block(x, x_block, T, I, b0, nb, t0, tb)
            if team > 1:
                fastlstm_omp_barrier()
        if j1 > j0:
            _product_rows(kern, nb * tb, j1 - j0, I, inputs,
                          _weight_columns(kernel, ldw, I, j0), ldw, z + j0, G)
        if team > 1:
            fastlstm_omp_barrier()
        for s in range(tb):
            t = t0 + s
            if t == 0:
                h_prev = h0 + b0 * H
                ld_h = H
            else:
                h_prev = y + (b0 * T + t - 1) * H
                ld_h = T * H
            if j1 > j0:
                _weights_product(kern, nb, j1 - j0, H, h_prev, ld_h,
                                 _weight_columns(recurrent_kernel, ldw, H, j0), ldw,
                                 z + s * G + j0, tb * G, True)
            if team > 1:
                fastlstm_omp_barrier()
            for r in range(nb):
                b = b0 + r
                if training:
                    c_row = cells + (b * T + t) * H
                else:
                    c_row = cell_pair + ((t % 2) * nb + r) * H
                if t == 0:
                    c_prev_row = c0 + b * H
                elif training:
                    c_prev_row = c_row - H
                else:
                    c_prev_row = cell_pair + (((t - 1) % 2) * nb + r) * H
                if nu > 0:
                    _gates_forward(kern, nu, H, z + (r * tb + s) * G + u0, bias + u0,
                                   c_prev_row + u0, c_row + u0, y + (b * T + t) * H + u0)
                if prefetch and s + 1 < tb:
                    # The next step's row of the projection, written long ago.
                    _prefetch_row(z + (r * tb + s + 1) * G, G)
            # Member 0 polls before the step's last barrier and the others
            # read its verdict after it, so a shared part's team leaves the
            # loop together.
            if member == 0:
                fastlstm_interrupted(interrupt)
            if team > 1:
                fastlstm_omp_barrier()
            if fastlstm_interrupt_stopped(interrupt):
                return
        t0 += tb

    if member != 0:
        return
    for r in range(nb):
        b = b0 + r
        if training:
            c_row = cells + (b * T + T - 1) * H
        else:
            c_row = cell_pair + (((T - 1) % 2) * nb + r) * H
        memcpy(c_n + b * H, c_row, H * sizeof(floating))


cdef long long _forward(const floating *x, const floating *kernel,
                 const floating *recurrent_kernel, const floating *bias,
                 const floating *h0, const floating *c0, floating *y,
                 floating *c_n, floating *gates, floating *cells, floating *scratch,
                 Py_ssize_t B, Py_ssize_t T, Py_ssize_t I, Py_ssize_t H,
                 int n_threads, bint interruptible) except -1:
    """Pack both weight matrices once (unless a single step of a small batch
    uses them), then run every batch part without the GIL. With
    `interruptible`, a signal handler's exception (KeyboardInterrupt) stops
    the parts within about 0.1 s and is raised here (see interrupt_poll.h).
    Returns the nanoseconds the threads spent off their cores while they
    worked (see preemption.h).

    A small batch with large weights is one part that the threads share
    (see _split_units and _forward_part).
    """
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef Py_ssize_t n_parts = _n_parts(B, H, sizeof(floating), n_threads)
    cdef Py_ssize_t part
    cdef floating *packed_kernel = NULL
    cdef floating *packed_recurrent = NULL
    cdef const floating *kernel_w = kernel
    cdef const floating *recurrent_w = recurrent_kernel
    cdef Py_ssize_t ldw = 4 * H  # as given; 0 once packed
    cdef fastlstm_interrupt interrupt
    # Time off the cores matters, and costs its clock reads, only in a team.
    cdef bint watch = n_threads > 1 and (n_parts > 1 or _split_units(B, H, sizeof(floating),
                                                                    n_threads))
    cdef long long lost_ns = 0
    cdef fastlstm_thread_clock start
    fastlstm_interrupt_init(&interrupt, interruptible)
    try:
        if T > 1 or B > UNPACKED_STEP_ROWS:
            packed_kernel = _packed_copy(kern, I, 4 * H, kernel, 4 * H)
            packed_recurrent = _packed_copy(kern, H, 4 * H, recurrent_kernel, 4 * H)
            kernel_w = packed_kernel
            recurrent_w = packed_recurrent
            ldw = 0
        with nogil:
            if _split_units(B, H, sizeof(floating), n_threads):
                with parallel(num_threads=n_threads):
                    if watch:
                        start = fastlstm_thread_clock_now()
                    _forward_part(x, kernel_w, recurrent_w, ldw, bias, h0, c0, y, c_n,
                                  gates, cells, scratch, B, T, I, H, 0, 1, kern,
                                  fastlstm_omp_thread_num(), fastlstm_omp_num_threads(),
                                  &interrupt)
                    if watch:
                        fastlstm_add_lost_time(&lost_ns, start)
            else:
                for part in prange(n_parts, schedule="static",
                                   num_threads=_team_size(n_parts, n_threads)):
                    if watch:
                        start = fastlstm_thread_clock_now()
                    _forward_part(x, kernel_w, recurrent_w, ldw, bias, h0, c0, y, c_n,
                                  gates, cells, scratch, B, T, I, H, part, n_parts, kern, 0, 1,
                                  &interrupt)
                    if watch:
                        fastlstm_add_lost_time(&lost_ns, start)
    finally:
        fastlstm_aligned_free(packed_kernel)
        fastlstm_aligned_free(packed_recurrent)
    fastlstm_interrupt_reraise(&interrupt)
    return lost_ns


def forward_inference(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                      const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                      const floating[:, ::1] h0, const floating[:, ::1] c0,
                      floating[:, :, ::1] y, floating[:, ::1] c_n,
                      floating[::1] workspace, int n_threads, bint interruptible=False):
    """Fill y (B, T, H) and c_n (B, H); keeps no per-step state.

    workspace: scratch of at least inference_workspace_size(...) elements.
    interruptible: poll for Ctrl-C (only for calls on Python's main thread).
    Returns the nanoseconds the team spent off its cores during the call.
    """
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1]
    if workspace.shape[0] < inference_workspace_size(B, T, I, H, sizeof(floating), n_threads):
        raise ValueError("forward_inference: workspace too small")
    return _forward(&x[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], &bias[0],
             &h0[0, 0], &c0[0, 0], &y[0, 0, 0], &c_n[0, 0], NULL, NULL,
             &workspace[0], B, T, I, H, n_threads, interruptible)


def forward_training(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                     const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                     const floating[:, ::1] h0, const floating[:, ::1] c0,
                     floating[:, :, ::1] y, floating[:, ::1] c_n,
                     floating[:, :, ::1] gates, floating[:, :, ::1] cells, int n_threads,
                     bint interruptible=False):
    """Fill y and c_n, and keep gates (B, T, G) and cells (B, T, H) for backward.
    interruptible and the return value: as for forward_inference."""
    return _forward(&x[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], &bias[0],
             &h0[0, 0], &c0[0, 0], &y[0, 0, 0], &c_n[0, 0], &gates[0, 0, 0],
             &cells[0, 0, 0], NULL, x.shape[0], x.shape[1], x.shape[2], h0.shape[1],
             n_threads, interruptible)


# ------------------------------------------------------------------ backward

cdef inline void _gates_backward(lstm_simd_kernels kern, Py_ssize_t n, floating *gates,
                                 const floating *c_prev, const floating *c_t,
                                 const floating *dh, const floating *dy,
                                 floating *dc) noexcept nogil:
    if floating is float:
        kern.backward_f32(n, gates, c_prev, c_t, dh, dy, dc)
    else:
        kern.backward_f64(n, gates, c_prev, c_t, dh, dy, dc)


cdef inline void _copy_rows_or_zero(floating *dst, const floating *src,
                                    Py_ssize_t n) noexcept nogil:
    if src == NULL:
        memset(dst, 0, n * sizeof(floating))
    else:
        memcpy(dst, src, n * sizeof(floating))


cdef int _backward_part(
        floating *dz, const floating *recurrent_kernel, const floating *packed_recurrent_t,
        const floating *c0, const floating *cells, const floating *dy,
        const floating *dh_n, const floating *dc_n,
        floating *dh0, floating *dc0, Py_ssize_t B, Py_ssize_t T, Py_ssize_t H,
        Py_ssize_t part, Py_ssize_t n_parts, lstm_simd_kernels kern,
        fastlstm_interrupt *interrupt) noexcept nogil:
    """Reverse time loop for one batch part, or until `interrupt` stops it.

    dz holds the part's activated gates and is overwritten with the
    gradients of the pre-activations. dy, dh_n, dc_n may be NULL (zero).
    Returns -1 if out of memory.
    """
    cdef Py_ssize_t G = 4 * H
    cdef Py_ssize_t b0 = _split(part, n_parts, B)
    cdef Py_ssize_t nb = _split(part + 1, n_parts, B) - b0
    cdef Py_ssize_t t, r, b
    cdef const floating *c_row
    cdef const floating *c_prev_row
    cdef const floating *dy_row = NULL
    cdef bint prefetch = _prefetches_rows(G, sizeof(floating))
    cdef floating *dh = <floating *> malloc(nb * H * sizeof(floating))
    cdef floating *dc = <floating *> malloc(nb * H * sizeof(floating))
    if dh == NULL or dc == NULL:
        free(dh)
        free(dc)
        return -1
    _copy_rows_or_zero(dh, NULL if dh_n == NULL else dh_n + b0 * H, nb * H)
    _copy_rows_or_zero(dc, NULL if dc_n == NULL else dc_n + b0 * H, nb * H)

    for t in range(T - 1, -1, -1):
        for r in range(nb):
            b = b0 + r
            c_row = cells + (b * T + t) * H
            c_prev_row = c0 + b * H if t == 0 else c_row - H
            if dy != NULL:
                dy_row = dy + (b * T + t) * H
            _gates_backward(kern, H, dz + (b * T + t) * G, c_prev_row, c_row,
                            dh + r * H, dy_row, dc + r * H)
            if prefetch and t > 0:  # the rows this sequence's next step reads
                _prefetch_row(dz + (b * T + t - 1) * G, G)
                if dy != NULL:
                    _prefetch_row(dy_row - H, H)
                if t > 1:
                    _prefetch_row(c_prev_row - H, H)
        # Gradient reaching h_{t-1} through the recurrence: dz_t @ R^T.
        _transposed_product(kern, nb, H, G, dz + (b0 * T + t) * G, T * G, packed_recurrent_t,
                            recurrent_kernel, dh, H)
        if fastlstm_interrupted(interrupt):
            break

    memcpy(dh0 + b0 * H, dh, nb * H * sizeof(floating))
    memcpy(dc0 + b0 * H, dc, nb * H * sizeof(floating))
    free(dh)
    free(dc)
    return 0


cdef inline Py_ssize_t _n_dx_blocks(Py_ssize_t BT) noexcept nogil:
    """Row blocks of dx: about DX_ROW_BLOCK rows each, their count a multiple
    of 4 so that 2 or 4 threads get equal shares; never fewer than 1 row."""
    cdef Py_ssize_t n = (BT + DX_ROW_BLOCK - 1) // DX_ROW_BLOCK
    return min(BT, (n + 3) // 4 * 4)


cdef inline bint _dx_by_blas(Py_ssize_t I, Py_ssize_t H, Py_ssize_t itemsize) noexcept nogil:
    return I < OWN_DX_MIN_FEATURES or I * 4 * H * itemsize > OWN_DX_MAX_KERNEL_BYTES


def backward_calls_blas(Py_ssize_t features, Py_ssize_t units, Py_ssize_t itemsize):
    """Whether backward computes dx with BLAS (then the caller must hold BLAS
    to one thread, see fastlstm._blas_control) rather than its own product."""
    return _dx_by_blas(features, units, itemsize)


cdef void _input_grads_block(lstm_simd_kernels kern, const floating *dz,
                             const floating *kernel, const floating *packed_kernel_t,
                             floating *dx, Py_ssize_t BT, Py_ssize_t I, Py_ssize_t G,
                             Py_ssize_t block, Py_ssize_t n_blocks) noexcept nogil:
    """One row block of dx = dz @ kernel^T, flattened over (batch, time): by
    _transposed_product over packed_kernel_t (_packed_transpose of kernel),
    PRODUCT_ROW_BLOCK rows at a time, or by BLAS when that is NULL. The
    blocks depend on BT alone, so BLAS rounds every row the same way for any
    thread count (our products' rows never depend on the rows beside them)."""
    cdef Py_ssize_t r0 = _split(block, n_blocks, BT)
    cdef Py_ssize_t r1 = _split(block + 1, n_blocks, BT)
    cdef Py_ssize_t r = r0
    if packed_kernel_t != NULL:
        while r < r1:
            _transposed_product(kern, min(PRODUCT_ROW_BLOCK, r1 - r), I, G, dz + r * G, G,
                                packed_kernel_t, kernel, dx + r * I, I)
            r += PRODUCT_ROW_BLOCK
    else:
        gemm(c'N', c'T', r1 - r0, I, G, <floating> 1, dz + r0 * G, G, kernel, G,
             <floating> 0, dx + r0 * I, I)


cdef inline Py_ssize_t _weight_grads_size(Py_ssize_t I, Py_ssize_t H) noexcept nogil:
    """Elements of the weight gradients: (I + H + 1, 4H), the rows of dkernel,
    drecurrent_kernel and dbias (see backward)."""
    return (I + H + 1) * 4 * H


cdef inline Py_ssize_t _grad_row_parts(Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                                       Py_ssize_t itemsize) noexcept nogil:
    """Parts of the batch whose weight gradients are summed separately (see
    GRAD_ROW_PARTS); a function of the shape alone."""
    if _weight_grads_size(I, H) * itemsize <= GRAD_ROW_SPLIT_BYTES:
        return min(B, GRAD_ROW_PARTS)
    return 1


cdef inline floating *_row_part_grads(floating *partials, Py_ssize_t row_part,
                                     Py_ssize_t I, Py_ssize_t H) noexcept nogil:
    """Row part row_part's (> 0) gradients in `partials`, each laid out as
    the weight gradients are (see backward)."""
    return partials + (row_part - 1) * _weight_grads_size(I, H)


cdef inline void _add_into(floating *total, const floating *part, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        total[i] += part[i]


cdef int _weight_grads_task(
        Py_ssize_t task, Py_ssize_t n_blocks, Py_ssize_t n_row_parts,
        const floating *dz, const floating *x, const floating *h0, const floating *y,
        floating *dweights, floating *partials,
        Py_ssize_t B, Py_ssize_t T, Py_ssize_t I, Py_ssize_t H,
        lstm_simd_kernels kern, fastlstm_interrupt *interrupt) noexcept nogil:
    """Task `task` of n_row_parts * n_blocks: one column block of one row
    part. Row part 0 writes the gradients themselves, part p > 0 its slice
    of `partials` (see _row_part_grads), which _add_partials sums in
    afterwards. Returns -1 if out of memory."""
    cdef Py_ssize_t row_part = task // n_blocks
    if row_part > 0:
        dweights = _row_part_grads(partials, row_part, I, H)
    return _weight_grads_block(dz, x, h0, y, dweights, B, T, I, H,
                               task % n_blocks, n_blocks, row_part, n_row_parts, kern, interrupt)


cdef void _add_partials(floating *dweights, floating *partials, Py_ssize_t n_row_parts,
                        Py_ssize_t I, Py_ssize_t H) noexcept nogil:
    """Add each row part's gradients (see _weight_grads_task), in order."""
    cdef Py_ssize_t part
    for part in range(1, n_row_parts):
        _add_into(dweights, _row_part_grads(partials, part, I, H), _weight_grads_size(I, H))


cdef void _gather_grad_operand(const floating *x, const floating *h0, const floating *y,
                               floating *a, const floating **rows, Py_ssize_t r0,
                               Py_ssize_t n_rows, Py_ssize_t T, Py_ssize_t I,
                               Py_ssize_t H) noexcept nogil:
    """a (I + H, n_rows) = [x_t, h_{t-1}]^T for the flattened (batch, time)
    rows r0.., the weight gradients' a operand: h_{t-1} is h0's row at each
    sequence's first step, else the row of y before. rows: room for n_rows
    row pointers."""
    cdef Py_ssize_t q, r
    for q in range(n_rows):
        rows[q] = x + (r0 + q) * I
    _transpose_rows(rows, n_rows, I, a)
    for q in range(n_rows):
        r = r0 + q
        rows[q] = h0 + (r // T) * H if r % T == 0 else y + (r - 1) * H
    _transpose_rows(rows, n_rows, H, a + I * n_rows)


cdef int _weight_grads_block(
        const floating *dz, const floating *x, const floating *h0, const floating *y,
        floating *dweights, Py_ssize_t B, Py_ssize_t T, Py_ssize_t I, Py_ssize_t H,
        Py_ssize_t block, Py_ssize_t n_blocks, Py_ssize_t row_part,
        Py_ssize_t n_row_parts, lstm_simd_kernels kern,
        fastlstm_interrupt *interrupt) noexcept nogil:
    """Column block `block` of n_blocks (cut by _column_split) of the weight
    gradients dweights (see backward), each a sum over the T rows of each
    sequence of row part `row_part` of n_row_parts (cut by _split).

    dkernel and drecurrent_kernel are one product, [x_t, h_{t-1}]^T dz_t
    summed over the (batch, time) rows, so dz is read once for both; dbias,
    dz's column sums, comes out of the same product while dz is in cache.
    Each block of GRAD_K_ROWS rows of [x_t, h_{t-1}] is copied once,
    transposed, where BLAS packed the long (batch, time) side of both
    operands again for every column block (about 40% of its time here).
    Stops early if `interrupt` does. Returns -1 if out of memory."""
    cdef Py_ssize_t G = 4 * H
    cdef Py_ssize_t M = I + H
    cdef Py_ssize_t b0 = _split(row_part, n_row_parts, B)
    cdef Py_ssize_t nb = _split(row_part + 1, n_row_parts, B) - b0
    cdef Py_ssize_t BT = nb * T
    cdef Py_ssize_t j0 = _column_split(block, n_blocks, G, GRAD_COLUMNS)
    cdef Py_ssize_t nc = _column_split(block + 1, n_blocks, G, GRAD_COLUMNS) - j0
    cdef Py_ssize_t r0, n_rows
    cdef Py_ssize_t max_rows = min(GRAD_K_ROWS, BT)
    cdef floating *operand = <floating *> malloc(max_rows * M * sizeof(floating))
    cdef const floating **rows = <const floating **> malloc(max_rows * sizeof(floating *))
    cdef floating *scratch
    cdef int scratch_failed = _alloc_matmul_grad_scratch(nc, G, &scratch)
    if operand == NULL or rows == NULL or scratch_failed:
        free(operand)
        free(rows)
        fastlstm_aligned_free(scratch)
        return -1
    # This part's sequences only: their rows of x, h0, y and dz.
    x += b0 * T * I
    h0 += b0 * H
    y += b0 * T * H
    dz += b0 * T * G
    r0 = 0
    while r0 < BT and not fastlstm_interrupted(interrupt):
        n_rows = min(GRAD_K_ROWS, BT - r0)
        _gather_grad_operand(x, h0, y, operand, rows, r0, n_rows, T, I, H)
        _matmul_grad(kern, M, nc, n_rows, operand, n_rows, dz + r0 * G + j0, G,
                     dweights + j0, G, r0 > 0, dweights + M * G + j0, scratch)
        r0 += n_rows
    free(operand)
    free(rows)
    fastlstm_aligned_free(scratch)
    return 0


def backward(floating[:, :, ::1] dz, const floating[:, :, ::1] x,
             const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel,
             const floating[:, ::1] h0, const floating[:, ::1] c0,
             const floating[:, :, ::1] y, const floating[:, :, ::1] cells,
             dy, dh_n, dc_n,
             floating[:, :, ::1] dx, floating[:, ::1] dweights,
             floating[:, ::1] dh0, floating[:, ::1] dc0, int n_threads,
             bint interruptible=False):
    """BPTT. dz: the activated gates kept by forward_training, destroyed here.

    recurrent_kernel is packed once, transposed, for the per-step product
    dz_t @ R^T; so is kernel for dx = dz @ kernel^T, unless dx is narrow
    enough to go to BLAS (see backward_calls_blas). Both products take their
    last columns as dot products when whole vectors would mostly waste them
    (_transposed_product).

    dy (B, T, H), dh_n and dc_n (B, H) are arrays of dz's dtype or None (zero).
    Fills dx, dh0, dc0 and dweights (I + H + 1, 4H): the rows of dkernel,
    then of drecurrent_kernel, then dbias. dx None skips the input gradient.
    interruptible: as for forward_inference; an interrupted call leaves the
    outputs incomplete and dz partly overwritten. Returns the nanoseconds the
    threads spent off their cores during the recurrence.
    """
    cdef const floating[:, :, ::1] dy_view
    cdef const floating[:, ::1] dh_n_view
    cdef const floating[:, ::1] dc_n_view
    cdef const floating *dy_ptr = NULL
    cdef const floating *dh_n_ptr = NULL
    cdef const floating *dc_n_ptr = NULL
    cdef floating *dx_ptr = NULL
    if dx is not None:
        dx_ptr = &dx[0, 0, 0]
    if dy is not None:
        dy_view = dy
        dy_ptr = &dy_view[0, 0, 0]
    if dh_n is not None:
        dh_n_view = dh_n
        dh_n_ptr = &dh_n_view[0, 0]
    if dc_n is not None:
        dc_n_view = dc_n
        dc_n_ptr = &dc_n_view[0, 0]

    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1]
    cdef Py_ssize_t n_parts = _batch_parts(B, H, sizeof(floating), n_threads)
    cdef Py_ssize_t n_dx_blocks = _n_dx_blocks(B * T)
    # The weight gradients' tasks: row parts (see GRAD_ROW_PARTS) times
    # blocks of gate columns, about one task per thread (see GRAD_COLUMNS).
    cdef Py_ssize_t n_row_parts = _grad_row_parts(B, I, H, sizeof(floating))
    cdef Py_ssize_t n_blocks = max(1, min((n_threads + n_row_parts - 1) // n_row_parts,
                                          4 * H // GRAD_COLUMNS))
    cdef Py_ssize_t n_tasks = n_row_parts * n_blocks
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef Py_ssize_t part, block, task
    cdef floating *partials = NULL
    cdef floating *packed_recurrent_t = NULL
    cdef floating *packed_kernel_t = NULL
    cdef int failed = 0
    cdef fastlstm_interrupt interrupt
    cdef bint watch = _team_size(n_parts, n_threads) > 1
    cdef long long lost_ns = 0
    cdef fastlstm_thread_clock start
    fastlstm_interrupt_init(&interrupt, interruptible)
    try:
        packed_recurrent_t = _packed_transpose(kern, H, 4 * H, &recurrent_kernel[0, 0])
        if dx_ptr != NULL and not _dx_by_blas(I, H, sizeof(floating)):
            packed_kernel_t = _packed_transpose(kern, I, 4 * H, &kernel[0, 0])
        if n_row_parts > 1:
            partials = <floating *> malloc((n_row_parts - 1) * _weight_grads_size(I, H)
                                           * sizeof(floating))
            if partials == NULL:
                raise MemoryError("fastlstm: could not allocate the weight gradients' "
                                  "partial sums")
        with nogil:
            for part in prange(n_parts, schedule="static",
                               num_threads=_team_size(n_parts, n_threads)):
                if watch:
                    start = fastlstm_thread_clock_now()
                failed += _backward_part(&dz[0, 0, 0], &recurrent_kernel[0, 0],
                                         packed_recurrent_t, &c0[0, 0],
                                         &cells[0, 0, 0], dy_ptr, dh_n_ptr, dc_n_ptr,
                                         &dh0[0, 0], &dc0[0, 0], B, T, H, part, n_parts, kern,
                                         &interrupt)
                if watch:
                    fastlstm_add_lost_time(&lost_ns, start)
        # The recurrence is done with the packed weights.
        fastlstm_aligned_free(packed_recurrent_t)
        packed_recurrent_t = NULL
        with nogil:
            if failed == 0 and dx_ptr != NULL:
                for block in prange(n_dx_blocks, schedule="static", num_threads=n_threads):
                    if not fastlstm_interrupted(&interrupt):
                        _input_grads_block(kern, &dz[0, 0, 0], &kernel[0, 0], packed_kernel_t,
                                           dx_ptr, B * T, I, 4 * H, block, n_dx_blocks)
            if failed == 0:
                for task in prange(n_tasks, schedule="static",
                                   num_threads=_team_size(n_tasks, n_threads)):
                    failed += _weight_grads_task(task, n_blocks, n_row_parts, &dz[0, 0, 0],
                                                 &x[0, 0, 0], &h0[0, 0], &y[0, 0, 0],
                                                 &dweights[0, 0], partials, B, T, I, H, kern,
                                                 &interrupt)
                if failed == 0 and not fastlstm_interrupted(&interrupt):
                    _add_partials(&dweights[0, 0], partials, n_row_parts, I, H)
    finally:
        fastlstm_aligned_free(packed_recurrent_t)
        fastlstm_aligned_free(packed_kernel_t)
        free(partials)
    fastlstm_interrupt_reraise(&interrupt)
    if failed:
        raise MemoryError("fastlstm: could not allocate the backward pass' scratch buffers")
    return lost_ns


# ------------------------------------------------------------- finiteness

def all_finite(const floating[::1] values):
    """Whether no value is NaN or infinite (the inputs' check_finite pass)."""
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
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


# --------------------------------------------------------------- fingerprint

def fingerprint(const unsigned char[::1] data):
    """A 64-bit hash of a contiguous buffer's bytes, for telling whether an
    array changed (fastlstm.functional's caches); not for security. A change
    of one 8-byte word always changes it; the value is the same at every SIMD
    level (see lstm_fingerprint_impl.h)."""
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef Py_ssize_t n = data.shape[0]
    cdef const unsigned char *raw = &data[0] if n > 0 else NULL
    cdef uint64_t result
    with nogil:
        result = kern.fingerprint(n, raw)
    return result


# ------------------------------------------------------------- test access

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
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef floating *b_packed
    if packed:
        b_packed = _packed_copy(kern, b.shape[0], b.shape[1], &b[0, 0], b.shape[1])
        with nogil:
            _matmul_packed(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
                           a.strides[0] // sizeof(floating), b_packed, &c[0, 0],
                           c.strides[0] // sizeof(floating), accumulate)
        fastlstm_aligned_free(b_packed)
        return
    with nogil:
        _matmul(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
                a.strides[0] // sizeof(floating), &b[0, 0], b.shape[1], &c[0, 0],
                c.strides[0] // sizeof(floating), accumulate)


def transposed_product(const floating[:, :] a, const floating[:, ::1] w, floating[:, :] c):
    """c = a @ w.T as the backward pass takes its products with transposed
    weights (for tests): packed vectors, and dot products for the last
    dot_columns(n, k) columns."""
    _check_product_operands(
        "transposed_product", a.shape[1] == w.shape[1] and c.shape[0] == a.shape[0]
        and c.shape[1] == w.shape[0], sizeof(floating), {"a": a, "w": w, "c": c})
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef floating *packed = _packed_transpose(kern, w.shape[0], w.shape[1], &w[0, 0])
    with nogil:
        _transposed_product(kern, a.shape[0], w.shape[0], a.shape[1], &a[0, 0],
                            a.strides[0] // sizeof(floating), packed, &w[0, 0], &c[0, 0],
                            c.strides[0] // sizeof(floating))
    fastlstm_aligned_free(packed)


def dot_columns(Py_ssize_t n, Py_ssize_t k, Py_ssize_t itemsize):
    """How many of the last of n columns transposed_product takes as dot
    products at the current SIMD level, for a of k columns (for tests)."""
    return _dot_columns(fastlstm_simd_kernels(_simd_level), n, k, itemsize)


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
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    cdef floating *sums_ptr = NULL if sums is None else &sums[0]
    cdef Py_ssize_t ldb = b.strides[0] // sizeof(floating)
    cdef floating *scratch
    if _alloc_matmul_grad_scratch(b.shape[1], ldb, &scratch) < 0:
        raise MemoryError("matmul_grad: could not allocate the packing scratch")
    with nogil:
        _matmul_grad(kern, a.shape[0], b.shape[1], a.shape[1], &a[0, 0],
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
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    with nogil:
        _gates_forward(kern, stop - start, H, &z[0, start], &bias[start], &c_prev[start],
                       &c_out[start], &h_out[start])


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
    cdef lstm_simd_kernels kern = fastlstm_simd_kernels(_simd_level)
    with nogil:
        _gates_backward(kern, H, &gates[0, 0], &c_prev[0], &c_t[0], &dh[0], dy_ptr, &dc[0])

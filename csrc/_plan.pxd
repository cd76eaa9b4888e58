# cython: language_level=3
"""Tuning constants and the partition policy of the recurrent driver: how a
call is cut into batch parts, time blocks, column blocks and row blocks.
Functions of the problem's shape and the thread count only (never of the
values), so every cut is known before any work starts and no result
depends on it. G is a cell's gate columns (n_gates * units), H its units.
"""
from _simd cimport FASTLSTM_K_BLOCK

# Batch rows per part at most: enough rows to reuse each weight the step's
# product loads many times, few enough that a step's pre-activations stay
# in L2 for the gate pass. Recurrent weights of at most SMALL_RECURRENT_BYTES
# stay in L1 anyway; parts of SMALL_PART_ROWS rows then keep the rows a step
# touches few (measured 8% faster at 50 units than parts of 64 rows).
cdef enum:
    PART_MAX_ROWS = 128
cdef enum:
    SMALL_RECURRENT_BYTES = 64 * 1024
cdef enum:
    SMALL_PART_ROWS = 16
# At most about this many (batch, time) rows per block of dx's products
# (a block is one BLAS call, or PRODUCT_ROW_BLOCK-row products of our own).
# OpenBLAS' sgemm ran dx 5-10% faster on 1024-row blocks than on 256 (1
# thread, 1-1024 features); at 512 units 150 against 139 GFLOP/s.
cdef enum:
    DX_ROW_BLOCK = 1024
# dx = dz @ kernel^T goes through the packed product when dx has at least
# OWN_DX_MIN_FEATURES columns (features), so that every SIMD level takes
# whole vectors of them, and the kernel takes at most OWN_DX_MAX_KERNEL_BYTES,
# so that its packed transpose stays in L2. Measured on 256-row blocks on 1
# thread, the packed product ran 1.08-1.49x faster than OpenBLAS' sgemm at
# 32-256 features; whole training steps 1.02-1.12x faster at up to 256
# units, 0.98x at 512. Otherwise dx goes to BLAS: its dot products beat the
# product's one-lane-at-a-time loop at a few features (at 1 feature 36
# against 4 GFLOP/s), and its blocking of the long k wins on larger kernels.
cdef enum:
    OWN_DX_MIN_FEATURES = 16
cdef enum:
    OWN_DX_MAX_KERNEL_BYTES = 2 << 20
# Inference keeps pre-activations for a block of time steps per part, not
# for the whole sequence: about this many bytes per part, so that the
# block's projection stays in L2 until the step loop reads it.
cdef enum:
    INFERENCE_BLOCK_BYTES = 512 * 1024
# The input projection and dx run over this many rows at a time, so the
# rows being multiplied stay in L2 while every column panel passes them.
cdef enum:
    PRODUCT_ROW_BLOCK = 256
# A single time step of at most this many rows (streaming, one step per
# call) reads the weights as given: packing them would read them twice and
# write them once more for products that use each weight once per row
# (measured: a one-step call at 512 units took 1.2 ms, nearly all packing).
cdef enum:
    UNPACKED_STEP_ROWS = 8
# A batch of at most SPLIT_BATCH_MAX rows whose recurrent weights take at
# least SPLIT_WEIGHT_BYTES is shared by the threads, each taking whole
# multiples of SPLIT_COLUMNS gate columns: a multiple of every SIMD level's
# panel width, so each member's columns are a self-contained piece of the
# packed weights.
cdef enum:
    SPLIT_BATCH_MAX = 16
cdef enum:
    SPLIT_WEIGHT_BYTES = 1 << 20
cdef enum:
    SPLIT_COLUMNS = 64
# The weight gradients cut the gate columns into about one block per
# thread: near-equal blocks cut at multiples of GRAD_COLUMNS (a whole number
# of vectors at every SIMD level). Their product sums each column alone, so
# the cut changes no bit.
cdef enum:
    GRAD_COLUMNS = 16
# Weight gradients of at most GRAD_ROW_SPLIT_BYTES are also cut by rows:
# each of GRAD_ROW_PARTS parts of the batch is summed on its own, and the
# parts are added in order afterwards. The number of parts depends on the
# shape alone, so the result does not depend on the thread count. Measured
# in a C harness on 2 threads, column halves of the product ran 0.95-1.66x
# faster than one thread at 50-256 units, row halves 1.59-2.15x; at 512
# units and more both run 1.83-1.95x faster.
cdef enum:
    GRAD_ROW_PARTS = 2
cdef enum:
    GRAD_ROW_SPLIT_BYTES = 4 << 20
# Sums of several row sets are added ADD_CHUNK elements at a time, each
# chunk's additions in set order. The copies of the sets' sums take at most
# about GRAD_PARTIAL_BYTES (see partial_slots): as many as 8 copies of 8 MB
# each cost more in fresh pages and memory traffic than the sums they hold
# (measured paired at (32, 50, 512, 512): a backward pass 1.17x slower).
cdef enum:
    ADD_CHUNK = 4096
cdef enum:
    GRAD_PARTIAL_BYTES = 32 << 20
# The weight gradients' product reads GRAD_K_ROWS (batch, time) rows of
# [x_t, h_{t-1}] at a time, gathered transposed into one block: the
# product's own k block (FASTLSTM_K_BLOCK, simd.h), so each call is one
# block of it.

# The step loops prefetch the rows of the next step only when a row of gates
# takes at most a page (see prefetch_rows.h). A longer row is a stream the
# hardware prefetcher follows by itself: prefetching rows of 8 KiB (512
# units in float32, 256 in float64) measured 0.98-0.99x, rows of 4 KiB
# 1.00-1.03x.
cdef enum:
    PREFETCH_MAX_ROW_BYTES = 4096


cdef inline bint split_units(Py_ssize_t B, Py_ssize_t G, Py_ssize_t H, Py_ssize_t itemsize,
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
            and G * H * itemsize >= SPLIT_WEIGHT_BYTES)


cdef inline int team_size(Py_ssize_t n_parts, int n_threads) noexcept nogil:
    """Threads for a loop over n_parts parts: no more than there are parts.
    A thread with no part would still have to wake up and reach the loop's
    closing barrier, and the call waits for it (measured paired on 2
    threads: batch-1 forward at 50 and 128 units 1.44x and 1.13x faster
    with a team of one)."""
    return <int> min(<Py_ssize_t> n_threads, n_parts)


cdef inline Py_ssize_t batch_parts(Py_ssize_t B, Py_ssize_t G, Py_ssize_t H,
                                   Py_ssize_t itemsize, int n_threads) noexcept nogil:
    """At least one part per thread (and per row), of at most PART_MAX_ROWS
    rows, or SMALL_PART_ROWS when the recurrent weights are small."""
    cdef Py_ssize_t max_rows = PART_MAX_ROWS
    if G * H * itemsize <= SMALL_RECURRENT_BYTES:
        max_rows = SMALL_PART_ROWS
    return max(1, min(B, n_threads), (B + max_rows - 1) // max_rows)


cdef inline Py_ssize_t forward_parts(Py_ssize_t B, Py_ssize_t G, Py_ssize_t H,
                                     Py_ssize_t itemsize, int n_threads) noexcept nogil:
    """The forward pass' parts: one part that the threads share, or batch parts.

    Backward always takes batch parts: its recurrence has no shared-part
    mode, and one part would leave it on one thread (measured paired on 2
    threads: backward at (16, 50, 512, 512), (8, 25, 1024, 1024) and
    (2, 100, 256, 256) 1.16x, 1.09x and 1.17x faster on batch parts)."""
    if split_units(B, G, H, itemsize, n_threads):
        return 1
    return batch_parts(B, G, H, itemsize, n_threads)


cdef inline Py_ssize_t inference_block(Py_ssize_t B, Py_ssize_t T, Py_ssize_t G,
                                        Py_ssize_t itemsize, Py_ssize_t n_parts) noexcept nogil:
    """Time steps per inference block, from the largest part's rows."""
    cdef Py_ssize_t rows = (B + n_parts - 1) // n_parts
    return max(1, min(T, INFERENCE_BLOCK_BYTES // (rows * G * itemsize)))


cdef inline Py_ssize_t inference_rows_size(Py_ssize_t block, Py_ssize_t I, Py_ssize_t G,
                                          Py_ssize_t H, Py_ssize_t step_values) noexcept nogil:
    """Scratch elements per batch row: a block of pre-activations and of
    inputs, two cell states, and the `step_values` a cell keeps for one step
    (a row of a product kept apart, an aux row)."""
    return block * (G + I) + 2 * H + step_values


cdef inline Py_ssize_t split(Py_ssize_t i, Py_ssize_t parts, Py_ssize_t size) noexcept nogil:
    """Start of part i when `size` items are cut into `parts` near-equal parts."""
    return i * size // parts


cdef inline void length_split(const Py_ssize_t *lengths, Py_ssize_t B, Py_ssize_t parts,
                              Py_ssize_t *bounds) noexcept nogil:
    """bounds[0..parts]: the starts of `parts` runs of rows holding near-equal
    shares of the sequences' total length (a row's steps are its cost), for
    lengths sorted longest first. Some parts may be empty."""
    cdef Py_ssize_t total = 0, done = 0, b, i = 1
    for b in range(B):
        total += lengths[b]
    bounds[0] = 0
    if total == 0:
        for i in range(1, parts + 1):
            bounds[i] = split(i, parts, B)
        return
    for b in range(B):
        done += lengths[b]
        while i < parts and done * parts >= i * total:
            bounds[i] = b + 1
            i += 1
    while i <= parts:
        bounds[i] = B
        i += 1


cdef inline Py_ssize_t column_split(Py_ssize_t i, Py_ssize_t parts, Py_ssize_t G,
                                     Py_ssize_t unit) noexcept nogil:
    """Start of part i of G gate columns cut at multiples of `unit`; the last
    part takes the ragged end (part `parts` starts at G)."""
    if i == parts:
        return G
    return unit * split(i, parts, G // unit)


cdef inline Py_ssize_t n_dx_blocks(Py_ssize_t BT) noexcept nogil:
    """Row blocks of dx: about DX_ROW_BLOCK rows each, their count a multiple
    of 4 so that 2 or 4 threads get equal shares; never fewer than 1 row."""
    cdef Py_ssize_t n = (BT + DX_ROW_BLOCK - 1) // DX_ROW_BLOCK
    return min(BT, (n + 3) // 4 * 4)


cdef inline Py_ssize_t dx_block_calls(Py_ssize_t rows) noexcept nogil:
    """BLAS calls of dx for one sample block of `rows` (batch, time) rows:
    about DX_ROW_BLOCK rows each, and no more (each call packs the kernel
    again: at (32, 50, 512, 512), blocks of 200 rows in 4 calls each made
    backward 1.15x slower than without blocks)."""
    return max(1, (rows + DX_ROW_BLOCK - 1) // DX_ROW_BLOCK)


cdef inline bint dx_by_blas(Py_ssize_t I, Py_ssize_t G, Py_ssize_t itemsize) noexcept nogil:
    """Whether dx = dz @ kernel^T goes to BLAS (see OWN_DX_MIN_FEATURES)."""
    return I < OWN_DX_MIN_FEATURES or I * G * itemsize > OWN_DX_MAX_KERNEL_BYTES


cdef inline bint prefetches_rows(Py_ssize_t G, Py_ssize_t itemsize) noexcept nogil:
    """Whether the step loops prefetch the next step's rows (prefetch_rows.h):
    only rows of gates of at most PREFETCH_MAX_ROW_BYTES."""
    return G * itemsize <= PREFETCH_MAX_ROW_BYTES




cdef inline Py_ssize_t grad_row_parts(Py_ssize_t B, Py_ssize_t grad_bytes) noexcept nogil:
    """Parts of the batch whose weight gradients (grad_bytes in all) are
    summed separately (see GRAD_ROW_PARTS); a function of the shape alone."""
    if grad_bytes <= GRAD_ROW_SPLIT_BYTES:
        return min(B, GRAD_ROW_PARTS)
    return 1


cdef inline Py_ssize_t wave_sets(Py_ssize_t n_sets, Py_ssize_t grad_bytes,
                                 int n_threads) noexcept nogil:
    """Row sets summed at a time when each needs its own copy of the weight
    gradients (grad_bytes each) until the copies are added: all of them when
    their copies fit in GRAD_PARTIAL_BYTES, else as many as fit, in whole
    multiples of the thread count (at least one per thread), so that every
    wave keeps the threads equally busy."""
    cdef Py_ssize_t fit = GRAD_PARTIAL_BYTES // max(1, grad_bytes)
    if n_sets - 1 <= fit:
        return n_sets
    return min(n_sets, max(<Py_ssize_t> n_threads, fit // n_threads * n_threads))


cdef inline Py_ssize_t partial_slots(Py_ssize_t n_sets, Py_ssize_t wave) noexcept nogil:
    """Copies of the weight gradients waves of `wave` sets need: one per set
    but the first (which writes the gradients themselves) in a single wave,
    one per set of a wave otherwise."""
    return n_sets - 1 if wave >= n_sets else wave

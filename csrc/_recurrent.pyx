# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""The recurrent driver: forward and backward (BPTT) of any cell (cell.h)
over a batch of sequences.

Nothing here validates: fastlstm.functional checks shapes, dtypes,
finiteness and sizes, allocates every output, holds BLAS to one thread when
backward calls it (backward_calls_blas), and only then calls in. All arrays
are C-contiguous, batch-major, non-empty, and their sizes fit BLAS' 32-bit
integers.

Layout (B batch, T time, I features, H units, G = n_gates * H)
    x (B, T, I); kernel (I, G); recurrent_kernel (H, G); bias (bias_rows, G)
    y (B, T, H) the hidden states h_t; cells (B, T, H) an LSTM's c_t
    gates (B, T, G): pre-activations, then what backward needs (the
    activated gates), then (after backward) their gradients.
    aux (B, T, H): one value per unit some cells keep (cell.h).

The driver owns every loop and knows no cell's math: a cell is a struct of
gate count, state count and phases (cell.h), and the driver calls each
phase's row kernel through a pointer once per (batch row, step).

Work split. The input projection, each step's recurrent products and
backward's per-step products go to our own product (matmul_impl.h) over
weights packed once per call (a single step of a few rows reads them as
given): BLAS would repack them on every call, and BLAS rounds a row
differently depending on how many rows share the call. Our product sums
every element over k in order in one accumulator, so a row's result never
depends on the rows beside it. The weight gradients, sums over all (batch,
time) rows, go to the same product (reading its first operand transposed),
one block of gate columns per thread. dx goes to the same product over the
kernel packed once, transposed, except for a layer with few features or a
large kernel, whose dx goes to BLAS (see OWN_DX_MIN_FEATURES); either way
over fixed blocks of (batch, time) rows that depend on the problem's size
alone.

Sample blocks. A caller may cut the batch into blocks of samples (backward's
blocks): the weight gradients are then summed over each block from zero and
the blocks' sums added in block order (or returned apart), and BLAS' dx
calls hold one block's rows. A block's numbers then depend on its own
samples alone, not on the others in the batch, so processes that each
compute whole blocks of a batch get the bits of one process computing all
of them (fastlstm.distributed).

Parallel design. The batch is cut into one part per thread (more for a
large batch, PART_MAX_ROWS rows at most), and each thread runs its part
through all time steps, so there is no barrier per step and each step's
product uses every weight it loads for all of the part's rows. Because no
row's result depends on how the batch is cut, every output is bitwise
identical for any thread count. A small batch with weights too large for
one core's L2 shares one part among the threads instead, which split its
gate columns (see split_units and _forward_part).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from cpython.buffer cimport (PyBUF_ANY_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from _blas cimport gemm
from _plan cimport (
    ADD_CHUNK, GRAD_COLUMNS, PRODUCT_ROW_BLOCK, SPLIT_COLUMNS, UNPACKED_STEP_ROWS,
    batch_parts, column_split, dx_block_calls, dx_by_blas, forward_parts, grad_row_parts,
    inference_block, inference_rows_size, length_split, n_dx_blocks, partial_slots,
    prefetches_rows, split, split_units, team_size, wave_sets)
from _products cimport (
    alloc_matmul_grad_scratch, matmul_grad, packed_copy, packed_transpose, prefetch_row,
    product_rows, transpose_rows, transposed_product, weight_columns, weights_product)
from _simd cimport (
    FASTLSTM_CELL_COUNT, FASTLSTM_CELL_GRU_RESET_AFTER, FASTLSTM_CELL_GRU_RESET_BEFORE,
    FASTLSTM_CELL_LSTM, FASTLSTM_CELL_LSTM_PEEPHOLE, FASTLSTM_CELL_RNN_RELU,
    FASTLSTM_CELL_RNN_TANH, FASTLSTM_K_BLOCK, FASTLSTM_OPERAND_AUX, FASTLSTM_OPERAND_H_PREV,
    FASTLSTM_PRODUCT_ADDED, FASTLSTM_PRODUCT_APART, fastlstm_add_lost_time,
    fastlstm_aligned_free, fastlstm_aligned_malloc, fastlstm_backward_row,
    fastlstm_backward_row_fn, fastlstm_cell, fastlstm_cell_kernels, fastlstm_forward_row,
    fastlstm_forward_row_fn, fastlstm_interrupt, fastlstm_interrupt_init,
    fastlstm_interrupt_reraise, fastlstm_interrupt_stopped, fastlstm_interrupted,
    fastlstm_omp_barrier, fastlstm_omp_num_threads, fastlstm_omp_thread_num, fastlstm_phase,
    fastlstm_products, fastlstm_simd_best_level, fastlstm_simd_products,
    fastlstm_thread_clock, fastlstm_thread_clock_now)

cdef int _simd_level = fastlstm_simd_best_level()


def _use_simd_level(int level):
    """Run the kernels of SIMD level `level` (see fastlstm._build)."""
    global _simd_level
    _simd_level = level


# ------------------------------------------------------------- the problem

ctypedef struct Weights:
    # One call's weights as the products read them: packed (ld 0) or as
    # given (rows G apart); recurrent[k] holds phase k's columns.
    const void *kernel
    const void *recurrent[2]
    Py_ssize_t ld
    void *owned[3]


ctypedef struct Sequences:
    # A forward pass: the cell, the shapes, and where everything lives.
    fastlstm_cell cell
    fastlstm_products kern
    Py_ssize_t B, T, H, G
    Py_ssize_t features  # I (a field named I would meet complex.h's macro)
    Weights w
    const void *x
    const void *bias
    const void *peephole
    const void *recurrent_mask
    const void *h0
    const void *c0
    const Py_ssize_t *lengths  # (B,) longest first, or NULL: every row T steps
    const Py_ssize_t *bounds   # with lengths: the parts' first rows (see length_split)
    void *y
    void *c_n
    void *gates
    void *cells
    void *aux
    void *scratch
    void *masked_h


ctypedef struct Gradients:
    # A backward pass: the forward's arrays, the incoming gradients, the
    # outputs, and the recurrent kernel's phase columns (H, n_cols each, row
    # by row, and packed transposed).
    fastlstm_cell cell
    fastlstm_products kern
    Py_ssize_t B, T, H, G
    Py_ssize_t features  # I (a field named I would meet complex.h's macro)
    const void *x
    const void *kernel
    const void *recurrent_cols[2]
    const void *recurrent_t[2]
    const void *kernel_t
    const void *peephole
    const void *recurrent_mask
    const void *h0
    const void *c0
    const Py_ssize_t *lengths
    const Py_ssize_t *bounds
    # With sample blocks (n_blocks > 0): block k's batch rows are
    # block_members[block_bounds[k]:block_bounds[k + 1]], ascending; the
    # weight gradients are summed per block, then the blocks added in order
    # (or, per_block, each block's sums kept apart).
    const Py_ssize_t *block_members
    const Py_ssize_t *block_bounds
    Py_ssize_t n_blocks
    bint per_block
    void *grad_scratch  # room for the weight gradients' partial sums, or NULL
    Py_ssize_t grad_scratch_size
    const void *y
    const void *cells
    const void *aux
    const void *dy
    const void *dh_n
    const void *dc_n
    void *dz_rec
    void *dx
    void *dweights
    void *dpeephole
    void *dh0
    void *dc0


cdef fastlstm_cell _cell(int cell) except *:
    if not 0 <= cell < FASTLSTM_CELL_COUNT:
        raise ValueError(f"unknown cell {cell}")
    return fastlstm_cell_kernels(_simd_level, cell)


cdef inline bint _has_apart_phase(const fastlstm_cell *cell) noexcept nogil:
    return cell.phases[0].product == FASTLSTM_PRODUCT_APART


cdef inline Py_ssize_t _step_values(const fastlstm_cell *cell, Py_ssize_t G,
                                    Py_ssize_t H) noexcept nogil:
    """Values per batch row that inference keeps for one step besides z and
    the cell states: a product kept apart (G), an aux row (H)."""
    return (G if _has_apart_phase(cell) else 0) + (H if cell.keeps_aux else 0)


cdef void *_address(object array, Py_ssize_t min_bytes, Py_ssize_t itemsize,
                    bint writable) except? NULL:
    """The data of an optional C-contiguous array (NULL for None) of
    `itemsize`-byte elements, which must hold at least min_bytes: the
    kernels' own check on the arrays the caller passes as plain objects."""
    cdef Py_buffer view
    cdef void *data
    if array is None:
        return NULL
    PyObject_GetBuffer(array, &view, PyBUF_ANY_CONTIGUOUS | (PyBUF_WRITABLE if writable else 0))
    data = view.buf
    PyBuffer_Release(&view)
    if view.len < min_bytes or view.itemsize != itemsize:
        raise ValueError(f"an array of {view.len} bytes of {view.itemsize}-byte elements where "
                         f"{min_bytes} bytes of {itemsize}-byte elements are needed")
    return data


cdef inline Py_ssize_t _part_start(const Py_ssize_t *bounds, Py_ssize_t part,
                                    Py_ssize_t n_parts, Py_ssize_t B) noexcept nogil:
    """First batch row of a part: cut by length_split when the rows have
    lengths, else into near-equal counts."""
    return split(part, n_parts, B) if bounds == NULL else bounds[part]


cdef inline Py_ssize_t _active_from(const Py_ssize_t *lengths, Py_ssize_t b0, Py_ssize_t na,
                                    Py_ssize_t t) noexcept nogil:
    """Rows of a part (from b0, longest first) still running at step t, of
    the na that ran at step t - 1: the running rows are always a prefix."""
    while na > 0 and lengths[b0 + na - 1] <= t:
        na -= 1
    return na


cdef inline Py_ssize_t _active_until(const Py_ssize_t *lengths, Py_ssize_t b0, Py_ssize_t nb,
                                     Py_ssize_t na, Py_ssize_t t) noexcept nogil:
    """Rows of a part running at step t, of which na ran at step t + 1 (the
    backward walk)."""
    while na < nb and lengths[b0 + na] > t:
        na += 1
    return na


cdef int _fill_bounds(const Py_ssize_t *lengths, Py_ssize_t B, Py_ssize_t n_parts,
                      Py_ssize_t **bounds) except -1:
    """bounds[0]: the parts' first rows by length (length_split), or NULL
    without lengths; the caller frees it."""
    bounds[0] = NULL
    if lengths == NULL:
        return 0
    bounds[0] = <Py_ssize_t *> malloc((n_parts + 1) * sizeof(Py_ssize_t))
    if bounds[0] == NULL:
        raise MemoryError("fastlstm: could not allocate the batch parts")
    length_split(lengths, B, n_parts, bounds[0])
    return 0


# --------------------------------------------------------------- policy

def inference_workspace_size(int cell, Py_ssize_t batch, Py_ssize_t time, Py_ssize_t features,
                             Py_ssize_t units, Py_ssize_t itemsize, int n_threads):
    """Elements of scratch forward_inference needs with n_threads threads."""
    cdef fastlstm_cell c = _cell(cell)
    cdef Py_ssize_t G = c.n_gates * units
    cdef Py_ssize_t n_parts = forward_parts(batch, G, units, itemsize, n_threads)
    cdef Py_ssize_t block = inference_block(batch, time, G, itemsize, n_parts)
    return batch * inference_rows_size(block, features, G, units, _step_values(&c, G, units))


def parts(int cell, Py_ssize_t batch, Py_ssize_t units, Py_ssize_t itemsize, int n_threads,
          bint backward=False):
    """Number of parts the forward (or backward) pass cuts `batch` rows into."""
    cdef Py_ssize_t G = _cell(cell).n_gates * units
    if backward:
        return batch_parts(batch, G, units, itemsize, n_threads)
    return forward_parts(batch, G, units, itemsize, n_threads)


def backward_calls_blas(int cell, Py_ssize_t features, Py_ssize_t units, Py_ssize_t itemsize):
    """Whether backward computes dx with BLAS (then the caller must hold BLAS
    to one thread, see fastlstm._blas_control) rather than its own product."""
    return dx_by_blas(features, _cell(cell).n_gates * units, itemsize)


def weight_grad_scratch_size(int cell, Py_ssize_t batch, Py_ssize_t features,
                             Py_ssize_t units, Py_ssize_t itemsize, int n_threads,
                             Py_ssize_t n_blocks=0, bint per_block=False):
    """Elements of the partial sums of the weight gradients that backward
    keeps with n_threads threads and n_blocks sample blocks (0: none):
    room for its grad_scratch."""
    cdef fastlstm_cell c = _cell(cell)
    cdef Py_ssize_t size = (features + units + c.bias_rows) * c.n_gates * units
    cdef Py_ssize_t n_sets = n_blocks if n_blocks > 0 else grad_row_parts(batch,
                                                                        size * itemsize)
    if per_block:
        return 0
    return partial_slots(n_sets, wave_sets(n_sets, size * itemsize, n_threads)) * size


def weight_grad_rows(int cell, Py_ssize_t features, Py_ssize_t units):
    """Rows of backward's dweights: those of dkernel, drecurrent_kernel, then
    the bias rows."""
    return features + units + _cell(cell).bias_rows


# ------------------------------------------------------------------- forward

cdef void _gather_block(const floating *x, floating *x_block, Py_ssize_t T, Py_ssize_t I,
                       Py_ssize_t b0, Py_ssize_t nb, Py_ssize_t t0,
                       Py_ssize_t tb) noexcept nogil:
    """Copy the rows x[b0:b0 + nb, t0:t0 + tb] into x_block (nb * tb, I), so
    a time block's projection is one product over contiguous rows."""
    cdef Py_ssize_t r
    for r in range(nb):
        memcpy(x_block + r * tb * I, x + ((b0 + r) * T + t0) * I, tb * I * sizeof(floating))


cdef inline const floating *_h_prev_row(const Sequences *p, const floating *y, Py_ssize_t b,
                                        Py_ssize_t t) noexcept nogil:
    """h_{t-1} of batch row b: h0's row at the first step, else y's."""
    if t == 0:
        return <const floating *> p.h0 + b * p.H
    return y + (b * p.T + t - 1) * p.H


cdef void _mask_rows(const Sequences *p, const floating *y, const floating *mask,
                     floating *masked, Py_ssize_t b0, Py_ssize_t nb, Py_ssize_t t,
                     Py_ssize_t u0, Py_ssize_t nu) noexcept nogil:
    """masked (nb, H), units [u0, u0 + nu) = h_{t-1} * mask for rows b0..."""
    cdef Py_ssize_t r, u, H = p.H
    cdef const floating *h
    cdef const floating *m
    for r in range(nb):
        h = _h_prev_row(p, y, b0 + r, t)
        m = mask + (b0 + r) * H
        for u in range(u0, u0 + nu):
            masked[r * H + u] = h[u] * m[u]


cdef void _forward_part(const Sequences *p, floating *y, Py_ssize_t part, Py_ssize_t n_parts,
                        int member, int team, fastlstm_interrupt *interrupt) noexcept nogil:
    """Run one batch part through all time steps, or until `interrupt` stops
    the call (the outputs are then incomplete and the caller raises).

    Training (p.gates not NULL) keeps every step's gates, cells and aux for
    backward. Inference keeps a time block of pre-activations (and of the
    inputs), two cell states, a row of a product kept apart and an aux row in
    p.scratch (inference_rows_size elements per batch row), so its memory
    does not grow with the sequence length. z holds the current block as
    (nb, tb, G).

    Called by one thread (team = 1) or by every thread of a team that shares
    the part (member = its rank): each then computes its own columns of the
    projection and of each phase's product, and its own units of each
    phase's row kernel, with a barrier after each. Either way every number is
    computed the same way, so the result does not depend on the team's size.
    """
    cdef Py_ssize_t B = p.B, T = p.T, I = p.features, H = p.H, G = p.G
    cdef const fastlstm_cell *cell = &p.cell
    cdef const floating *x = <const floating *> p.x
    cdef const floating *kernel_w = <const floating *> p.w.kernel
    cdef Py_ssize_t ld = p.w.ld
    cdef Py_ssize_t b0 = _part_start(p.bounds, part, n_parts, B)
    cdef Py_ssize_t nb = _part_start(p.bounds, part + 1, n_parts, B) - b0
    cdef const Py_ssize_t *lengths = p.lengths
    # Rows run while t < their length; na of them run at the current step.
    cdef Py_ssize_t steps = T if lengths == NULL or nb == 0 else lengths[b0]
    cdef Py_ssize_t na = nb
    cdef bint training = p.gates != NULL
    cdef Py_ssize_t block, t0, tb, s, t, r, b, ld_h, ld_aux, ld_target, k, first, n_cols
    cdef Py_ssize_t pj0, pj1
    cdef floating *z
    cdef floating *x_block = NULL
    cdef floating *cell_pair = NULL
    cdef floating *rec_rows = NULL
    cdef floating *aux_rows = NULL
    cdef floating *aux_kept = <floating *> p.aux
    cdef floating *aux_step
    cdef floating *target
    cdef floating *c_row
    cdef Py_ssize_t last
    cdef const floating *inputs
    cdef const floating *h_prev
    cdef const floating *operand
    cdef Py_ssize_t ld_operand
    cdef const fastlstm_phase *phase
    cdef fastlstm_forward_row_fn row_kernel
    cdef fastlstm_forward_row row
    # This member's columns of the projection and its units of the rows.
    cdef Py_ssize_t j0 = column_split(member, team, G, SPLIT_COLUMNS)
    cdef Py_ssize_t j1 = column_split(member + 1, team, G, SPLIT_COLUMNS)
    cdef Py_ssize_t u0 = split(member, team, H)
    cdef Py_ssize_t nu = split(member + 1, team, H) - u0
    cdef bint prefetch = training and team == 1 and prefetches_rows(G, sizeof(floating))
    cdef const floating *mask = <const floating *> p.recurrent_mask
    cdef floating *masked_rows = NULL

    if mask != NULL:
        masked_rows = <floating *> p.masked_h + b0 * H
    if training:
        block = T
        z = <floating *> p.gates + b0 * T * G
        if p.scratch != NULL:
            rec_rows = <floating *> p.scratch + b0 * G
    else:
        block = inference_block(B, T, G, sizeof(floating), n_parts)
        z = <floating *> p.scratch + b0 * inference_rows_size(block, I, G, H,
                                                              _step_values(cell, G, H))
        x_block = z + nb * block * G
        cell_pair = x_block + nb * block * I
        if _has_apart_phase(cell):
            rec_rows = cell_pair + 2 * nb * H
        if cell.keeps_aux:
            aux_rows = cell_pair + 2 * nb * H + (nb * G if rec_rows != NULL else 0)
    memset(&row, 0, sizeof(row))
    row.bias = <const floating *> p.bias + u0
    if p.peephole != NULL:
        row.peephole = <const floating *> p.peephole + u0

    t0 = 0
    while t0 < steps:
        tb = min(block, T - t0)
        if lengths != NULL:
            na = _active_from(lengths, b0, na, t0)
            if j1 > j0:
                # Each running row's steps of the block, read in place.
                for r in range(na):
                    product_rows(p.kern, min(lengths[b0 + r] - t0, tb), j1 - j0, I,
                                 x + ((b0 + r) * T + t0) * I,
                                 weight_columns(kernel_w, ld, I, j0), ld, z + r * tb * G + j0, G)
        else:
            if tb == T:
                inputs = x + b0 * T * I  # the part's rows of x are already contiguous
            else:
                inputs = x_block
                if member == 0:
                    _gather_block(x, x_block, T, I, b0, nb, t0, tb)
                if team > 1:
                    fastlstm_omp_barrier()
            if j1 > j0:
                product_rows(p.kern, nb * tb, j1 - j0, I, inputs,
                             weight_columns(kernel_w, ld, I, j0), ld, z + j0, G)
        if team > 1:
            fastlstm_omp_barrier()
        for s in range(tb):
            t = t0 + s
            if lengths != NULL:
                na = _active_from(lengths, b0, na, t)
                if na == 0:
                    break
            h_prev = _h_prev_row(p, y, b0, t)
            ld_h = H if t == 0 else T * H
            if mask != NULL:
                # The products' operand: h_{t-1} times the recurrent dropout mask.
                _mask_rows(p, y, mask, masked_rows, b0, na, t, u0, nu)
                if team > 1:
                    fastlstm_omp_barrier()
                h_prev, ld_h = masked_rows, H
            if training:
                aux_step = NULL if aux_kept == NULL else aux_kept + (b0 * T + t) * H
                ld_aux = T * H
            else:
                aux_step = aux_rows
                ld_aux = H
            for k in range(cell.n_phases):
                phase = &cell.phases[k]
                first = phase.first_block * H
                n_cols = phase.n_blocks * H
                pj0 = column_split(member, team, n_cols, SPLIT_COLUMNS)
                pj1 = column_split(member + 1, team, n_cols, SPLIT_COLUMNS)
                if phase.operand == FASTLSTM_OPERAND_H_PREV:
                    operand, ld_operand = h_prev, ld_h
                else:
                    operand, ld_operand = aux_step, ld_aux
                if phase.product == FASTLSTM_PRODUCT_ADDED:
                    target, ld_target = z + s * G + first, tb * G
                else:
                    target, ld_target = rec_rows, G
                if pj1 > pj0:
                    weights_product(p.kern, na, pj1 - pj0, H, operand, ld_operand,
                                    weight_columns(<const floating *> p.w.recurrent[k], ld, H,
                                                   pj0), ld,
                                    target + pj0, ld_target,
                                    phase.product == FASTLSTM_PRODUCT_ADDED)
                if team > 1:
                    fastlstm_omp_barrier()
                if floating is float:
                    row_kernel = phase.forward_f32
                else:
                    row_kernel = phase.forward_f64
                for r in range(na):
                    b = b0 + r
                    if nu > 0:
                        row.z = z + (r * tb + s) * G + u0
                        row.h_prev = _h_prev_row(p, y, b, t) + u0
                        if masked_rows != NULL:
                            row.h_masked = masked_rows + r * H + u0
                        row.h_out = y + (b * T + t) * H + u0
                        if rec_rows != NULL:
                            row.rec = rec_rows + r * G + u0
                        if aux_step != NULL:
                            row.aux = aux_step + (r * T * H if training else r * H) + u0
                        if cell.has_cell_state:
                            if training:
                                c_row = <floating *> p.cells + (b * T + t) * H
                                row.c_prev = (<const floating *> p.c0 + b * H if t == 0
                                              else c_row - H) + u0
                            else:
                                c_row = cell_pair + ((t % 2) * nb + r) * H
                                row.c_prev = (<const floating *> p.c0 + b * H if t == 0
                                              else cell_pair + (((t - 1) % 2) * nb + r) * H) + u0
                            row.c_out = c_row + u0
                        row_kernel(nu, H, &row)
                    if prefetch and s + 1 < tb and k + 1 == cell.n_phases:
                        # The next step's row of the projection, written long ago.
                        prefetch_row(z + (r * tb + s + 1) * G, G)
                if team > 1 and k + 1 < cell.n_phases:
                    fastlstm_omp_barrier()
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
        last = T - 1 if lengths == NULL else lengths[b] - 1
        if last + 1 < T:  # the steps past the row's length output zeros
            memset(y + (b * T + last + 1) * H, 0, (T - last - 1) * H * sizeof(floating))
        if not cell.has_cell_state:
            continue
        if last < 0:
            c_row = <floating *> p.c0 + b * H
        elif training:
            c_row = <floating *> p.cells + (b * T + last) * H
        else:
            c_row = cell_pair + ((last % 2) * nb + r) * H
        memcpy(<floating *> p.c_n + b * H, c_row, H * sizeof(floating))


cdef void _free_weights(Weights *w) noexcept nogil:
    cdef int i
    for i in range(3):
        fastlstm_aligned_free(w.owned[i])
        w.owned[i] = NULL


cdef int _prepare_weights(Sequences *p, const floating *kernel,
                          const floating *recurrent_kernel, bint one_call=True) except -1:
    """Pack the kernel and each phase's recurrent columns, unless they serve
    `one_call` that is a single step of a small batch (then they are read as
    given: packing would cost more than it saves)."""
    cdef Py_ssize_t k, first, n_cols
    cdef floating *packed
    memset(&p.w, 0, sizeof(Weights))
    if one_call and p.T == 1 and p.B <= UNPACKED_STEP_ROWS:
        p.w.ld = p.G
        p.w.kernel = kernel
        for k in range(p.cell.n_phases):
            p.w.recurrent[k] = recurrent_kernel + p.cell.phases[k].first_block * p.H
        return 0
    try:
        packed = packed_copy(p.kern, p.features, p.G, kernel, p.G)
        p.w.owned[0] = packed
        p.w.kernel = packed
        for k in range(p.cell.n_phases):
            first = p.cell.phases[k].first_block * p.H
            n_cols = p.cell.phases[k].n_blocks * p.H
            packed = packed_copy(p.kern, p.H, n_cols, recurrent_kernel + first, p.G)
            p.w.owned[1 + k] = packed
            p.w.recurrent[k] = packed
    except MemoryError:
        _free_weights(&p.w)
        raise
    return 0


cdef long long _forward_call(Sequences *p, floating *y, const floating *kernel,
                             const floating *recurrent_kernel, int n_threads,
                             bint interruptible) except -1:
    """_forward over weights prepared for this call alone."""
    _prepare_weights(p, kernel, recurrent_kernel)
    try:
        return _forward(p, y, n_threads, interruptible)
    finally:
        _free_weights(&p.w)


cdef long long _forward(Sequences *p, floating *y, int n_threads,
                        bint interruptible) except -1:
    """Run every batch part without the GIL, over the weights p.w. With
    `interruptible`, a signal handler's exception (KeyboardInterrupt) stops
    the parts within about 0.1 s and is raised here (see interrupt_poll.h).
    Returns the nanoseconds the threads spent off their cores while they
    worked (see preemption.h).

    A small batch with large weights is one part that the threads share
    (see split_units and _forward_part).
    """
    cdef Py_ssize_t n_parts = forward_parts(p.B, p.G, p.H, sizeof(floating), n_threads)
    cdef bint shared = split_units(p.B, p.G, p.H, sizeof(floating), n_threads)
    cdef Py_ssize_t part
    cdef fastlstm_interrupt interrupt
    # Time off the cores matters, and costs its clock reads, only in a team.
    cdef bint watch = n_threads > 1 and (n_parts > 1 or shared)
    cdef long long lost_ns = 0
    cdef fastlstm_thread_clock start
    cdef void *apart_rows = NULL
    cdef void *masked_h = NULL
    cdef Py_ssize_t *bounds = NULL
    fastlstm_interrupt_init(&interrupt, interruptible)
    try:
        _fill_bounds(p.lengths, p.B, n_parts, &bounds)
        p.bounds = bounds
        if p.recurrent_mask != NULL:
            masked_h = malloc(p.B * p.H * sizeof(floating))
            if masked_h == NULL:
                raise MemoryError("fastlstm: could not allocate the masked states")
            p.masked_h = masked_h
        if p.gates != NULL and _has_apart_phase(&p.cell):
            apart_rows = fastlstm_aligned_malloc(p.B * p.G * sizeof(floating))
            if apart_rows == NULL:
                raise MemoryError("fastlstm: could not allocate the recurrent products' rows")
            p.scratch = apart_rows
        with nogil:
            if shared:
                with parallel(num_threads=n_threads):
                    if watch:
                        start = fastlstm_thread_clock_now()
                    _forward_part(p, y, 0, 1, fastlstm_omp_thread_num(),
                                  fastlstm_omp_num_threads(), &interrupt)
                    if watch:
                        fastlstm_add_lost_time(&lost_ns, start)
            else:
                for part in prange(n_parts, schedule="static",
                                   num_threads=team_size(n_parts, n_threads)):
                    if watch:
                        start = fastlstm_thread_clock_now()
                    _forward_part(p, y, part, n_parts, 0, 1, &interrupt)
                    if watch:
                        fastlstm_add_lost_time(&lost_ns, start)
    finally:
        fastlstm_aligned_free(apart_rows)
        free(masked_h)
        free(bounds)
    fastlstm_interrupt_reraise(&interrupt)
    return lost_ns


cdef Sequences _sequences(int cell, Py_ssize_t B, Py_ssize_t T, Py_ssize_t I,
                          Py_ssize_t H) except *:
    cdef Sequences p
    memset(&p, 0, sizeof(Sequences))
    p.cell = _cell(cell)
    p.kern = fastlstm_simd_products(_simd_level)
    p.B, p.T, p.features, p.H = B, T, I, H
    p.G = p.cell.n_gates * H
    return p


def forward_inference(int cell, const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                      const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                      peephole, recurrent_mask, const floating[:, ::1] h0, c0,
                      floating[:, :, ::1] y, c_n, floating[::1] workspace, int n_threads,
                      bint interruptible=False, lengths=None):
    """Fill y (B, T, H) and, for a cell with a cell state, c_n (B, H); keeps
    no per-step state.

    bias: the bias rows, flattened. peephole (3, H), c0 and c_n: arrays of
    x's dtype, or None where the cell has none. recurrent_mask (B, H) or
    None: recurrent dropout's mask, by which the products' h_{t-1} is
    multiplied. workspace: scratch of at
    least inference_workspace_size(...) elements. interruptible: poll for
    Ctrl-C (only for calls on Python's main thread). lengths: None, or an
    intp array (B,) sorted longest first, each in [0, T]: a row runs its
    first lengths[b] steps, its later outputs are zeros and c_n is its state
    after its last step. Returns the nanoseconds the team spent off its
    cores during the call.
    """
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1]
    cdef Sequences p = _sequences(cell, B, T, I, H)
    if workspace.shape[0] < inference_workspace_size(cell, B, T, I, H, sizeof(floating),
                                                     n_threads):
        raise ValueError("forward_inference: workspace too small")
    _bind_forward(&p, &x[0, 0, 0], &bias[0], peephole, recurrent_mask, &h0[0, 0], c0,
                  &y[0, 0, 0], c_n, lengths)
    p.scratch = &workspace[0]
    return _forward_call(&p, &y[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], n_threads,
                         interruptible)


def forward_training(int cell, const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                     const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                     peephole, recurrent_mask, const floating[:, ::1] h0, c0,
                     floating[:, :, ::1] y, c_n, floating[:, :, ::1] gates, cells, aux,
                     int n_threads, bint interruptible=False, lengths=None):
    """Fill y and c_n, and keep gates (B, T, G), and for the cells that have
    them cells (B, T, H) and aux (B, T, H), for backward (None otherwise);
    with lengths, only their rows' running steps. The other arguments and
    the return value: as for forward_inference."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1]
    cdef Sequences p = _sequences(cell, B, T, I, H)
    cdef Py_ssize_t state_bytes = B * T * H * sizeof(floating)
    _bind_forward(&p, &x[0, 0, 0], &bias[0], peephole, recurrent_mask, &h0[0, 0], c0,
                  &y[0, 0, 0], c_n, lengths)
    p.gates = &gates[0, 0, 0]
    if p.cell.has_cell_state:
        p.cells = _address(cells, state_bytes, sizeof(floating), True)
    if p.cell.keeps_aux:
        p.aux = _address(aux, state_bytes, sizeof(floating), True)
    if (p.cell.has_cell_state and p.cells == NULL) or (p.cell.keeps_aux and p.aux == NULL):
        raise ValueError("forward_training: this cell needs its cells or aux array")
    return _forward_call(&p, &y[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], n_threads,
                         interruptible)


cdef const Py_ssize_t *_lengths(lengths, Py_ssize_t B, Py_ssize_t T) except? NULL:
    """The data of an intp array of B lengths in [0, T], longest first (NULL
    for None): the kernels' own check."""
    cdef const Py_ssize_t[::1] view
    cdef Py_ssize_t b
    if lengths is None:
        return NULL
    view = lengths
    if view.shape[0] != B:
        raise ValueError(f"lengths: {view.shape[0]} values for a batch of {B}")
    for b in range(B):
        if not 0 <= view[b] <= T or (b > 0 and view[b] > view[b - 1]):
            raise ValueError(f"lengths must lie in [0, {T}], longest first")
    return &view[0]


cdef Py_ssize_t _check_blocks(blocks, Py_ssize_t B, const Py_ssize_t **members,
                              const Py_ssize_t **bounds) except -1:
    """The number of sample blocks of `blocks` = (members, bounds), intp
    arrays, and their data: bounds (n_blocks + 1,) nondecreasing from 0 to
    B, members (B,) every batch row once, ascending within each block. The
    kernels' own check."""
    cdef const Py_ssize_t[::1] member_view
    cdef const Py_ssize_t[::1] bound_view
    cdef Py_ssize_t n, k, i, b
    cdef bytearray seen = bytearray(B)
    member_view, bound_view = blocks
    n = bound_view.shape[0] - 1
    if n < 1 or bound_view[0] != 0 or bound_view[n] != B or member_view.shape[0] != B:
        raise ValueError(f"blocks: bounds must run from 0 to the batch ({B}) and members "
                         "hold every batch row")
    for k in range(n):
        if bound_view[k + 1] < bound_view[k]:
            raise ValueError("blocks: bounds must not decrease")
        for i in range(bound_view[k], bound_view[k + 1]):
            b = member_view[i]
            if not 0 <= b < B or seen[b] or (i > bound_view[k] and b <= member_view[i - 1]):
                raise ValueError("blocks: members must hold every batch row once, "
                                 "ascending within each block")
            seen[b] = 1
    members[0] = &member_view[0] if B > 0 else NULL
    bounds[0] = &bound_view[0]
    return n


cdef int _bind_forward(Sequences *p, const floating *x, const floating *bias, peephole,
                       recurrent_mask, const floating *h0, c0, floating *y, c_n,
                       lengths) except -1:
    """Point the problem at its arrays; the optional ones must be there when
    the cell needs them."""
    cdef Py_ssize_t state_bytes = p.B * p.H * sizeof(floating)
    p.x, p.bias, p.h0, p.y = x, bias, h0, y
    p.lengths = _lengths(lengths, p.B, p.T)
    p.recurrent_mask = _address(recurrent_mask, state_bytes, sizeof(floating), False)
    if p.cell.peephole_rows:
        p.peephole = _address(peephole, p.cell.peephole_rows * p.H * sizeof(floating),
                              sizeof(floating), False)
        if p.peephole == NULL:
            raise ValueError("this cell needs its peephole weights")
    if p.cell.has_cell_state:
        p.c0 = _address(c0, state_bytes, sizeof(floating), False)
        p.c_n = _address(c_n, state_bytes, sizeof(floating), True)
        if p.c0 == NULL or p.c_n == NULL:
            raise ValueError("this cell needs c0 and c_n")
    return 0


# ------------------------------------------------------------------ backward

cdef inline void _copy_rows_or_zero(floating *dst, const floating *src,
                                    Py_ssize_t n) noexcept nogil:
    if src == NULL:
        memset(dst, 0, n * sizeof(floating))
    else:
        memcpy(dst, src, n * sizeof(floating))


cdef int _backward_part(const Gradients *p, floating *dz, Py_ssize_t part, Py_ssize_t n_parts,
                        fastlstm_interrupt *interrupt) noexcept nogil:
    """Reverse time loop for one batch part, or until `interrupt` stops it.

    dz holds the part's gates as forward kept them and is overwritten with
    the gradients of the pre-activations (and p.dz_rec, when the cell's
    recurrent kernel sees another gradient, with that). Each step runs the
    phases in reverse: a phase's row kernel, then its product with the
    transposed recurrent columns, which gives the gradient of h_{t-1} (or of
    the operand the phase before produced). A cell's gradient of h_{t-1}
    that bypasses the products (GRU's z * dh) is added last.
    Returns -1 if out of memory.
    """
    cdef Py_ssize_t B = p.B, T = p.T, H = p.H, G = p.G
    cdef const fastlstm_cell *cell = &p.cell
    cdef Py_ssize_t b0 = _part_start(p.bounds, part, n_parts, B)
    cdef Py_ssize_t nb = _part_start(p.bounds, part + 1, n_parts, B) - b0
    cdef const Py_ssize_t *lengths = p.lengths
    # Rows run while t < their length; na of them run at the current step.
    cdef Py_ssize_t steps = T if lengths == NULL or nb == 0 else lengths[b0]
    cdef Py_ssize_t na = nb if lengths == NULL else 0
    cdef Py_ssize_t t, r, b, k, i, first, n_cols
    cdef const floating *y = <const floating *> p.y
    cdef const floating *cells = <const floating *> p.cells
    cdef const floating *dy = <const floating *> p.dy
    cdef floating *dz_rec = <floating *> p.dz_rec
    cdef const floating *c_row
    cdef const fastlstm_phase *phase
    cdef fastlstm_backward_row_fn row_kernel
    cdef fastlstm_backward_row row
    cdef floating *out
    cdef bint prefetch = prefetches_rows(G, sizeof(floating))
    cdef bint carries = cell.n_phases > 1 or _has_apart_phase(cell)
    cdef floating *dh = <floating *> malloc(nb * H * sizeof(floating))
    cdef floating *dc = NULL
    cdef floating *carry = NULL
    cdef floating *d_operand = NULL
    cdef const floating *mask = <const floating *> p.recurrent_mask
    cdef floating *masked = NULL
    cdef const floating *h_row
    cdef bint failed = dh == NULL
    if nb == 0:
        free(dh)
        return 0
    if cell.has_cell_state:
        dc = <floating *> malloc(nb * H * sizeof(floating))
        failed = failed or dc == NULL
    if carries:
        carry = <floating *> malloc(nb * H * sizeof(floating))
        failed = failed or carry == NULL
    if cell.n_phases > 1:
        d_operand = <floating *> malloc(nb * H * sizeof(floating))
        failed = failed or d_operand == NULL
        if mask != NULL:
            masked = <floating *> malloc(nb * H * sizeof(floating))
            failed = failed or masked == NULL
    if failed:
        free(dh)
        free(dc)
        free(carry)
        free(d_operand)
        free(masked)
        return -1
    _copy_rows_or_zero(dh, NULL if p.dh_n == NULL else <const floating *> p.dh_n + b0 * H,
                       nb * H)
    if dc != NULL:
        _copy_rows_or_zero(dc, NULL if p.dc_n == NULL else <const floating *> p.dc_n + b0 * H,
                           nb * H)
    memset(&row, 0, sizeof(row))
    if p.peephole != NULL:
        row.peephole = p.peephole

    for t in range(steps - 1, -1, -1):
        if lengths != NULL:
            na = _active_until(lengths, b0, nb, na, t)
        if masked != NULL:
            for r in range(na):
                b = b0 + r
                h_row = <const floating *> p.h0 + b * H if t == 0 else y + (b * T + t - 1) * H
                for i in range(H):
                    masked[r * H + i] = h_row[i] * mask[b * H + i]
        for k in range(cell.n_phases - 1, -1, -1):
            phase = &cell.phases[k]
            if floating is float:
                row_kernel = phase.backward_f32
            else:
                row_kernel = phase.backward_f64
            for r in range(na):
                b = b0 + r
                row.gates = dz + (b * T + t) * G
                if dz_rec != dz:
                    row.dz_rec = dz_rec + (b * T + t) * G
                if p.aux != NULL:
                    row.aux = <const floating *> p.aux + (b * T + t) * H
                row.h_prev = (<const floating *> p.h0 + b * H if t == 0
                              else y + (b * T + t - 1) * H)
                row.h_t = y + (b * T + t) * H
                if cells != NULL:
                    c_row = cells + (b * T + t) * H
                    row.c_t = c_row
                    row.c_prev = <const floating *> p.c0 + b * H if t == 0 else c_row - H
                    row.dc = dc + r * H
                row.dh = dh + r * H
                row.dy = NULL if dy == NULL else dy + (b * T + t) * H
                if carry != NULL:
                    row.dh_carry = carry + r * H
                if d_operand != NULL:
                    row.d_operand = d_operand + r * H
                if masked != NULL:
                    row.h_masked = masked + r * H
                row_kernel(H, &row)
                if prefetch and t > 0 and k == 0:  # the rows this sequence's next step reads
                    prefetch_row(dz + (b * T + t - 1) * G, G)
                    if dy != NULL:
                        prefetch_row(dy + (b * T + t - 1) * H, H)
                    if cells != NULL and t > 1:
                        prefetch_row(cells + (b * T + t - 2) * H, H)
            # Gradient reaching the phase's operand through its product:
            # dz_t[:, phase columns] @ R[:, phase columns]^T.
            first = phase.first_block * H
            n_cols = phase.n_blocks * H
            out = dh if phase.operand == FASTLSTM_OPERAND_H_PREV else d_operand
            transposed_product(p.kern, na, H, n_cols, dz_rec + (b0 * T + t) * G + first, T * G,
                               <const floating *> p.recurrent_t[k],
                               <const floating *> p.recurrent_cols[k], out, H)
        # dh now holds the gradient of the products' operand; then the
        # gradient of h_{t-1} through the dropout mask, then the rest.
        if d_operand != NULL:
            for i in range(na * H):
                dh[i] = dh[i] + d_operand[i]
        if mask != NULL:
            for i in range(na * H):
                dh[i] = dh[i] * mask[b0 * H + i]
        if carry != NULL:
            for i in range(na * H):
                dh[i] = dh[i] + carry[i]
        if fastlstm_interrupted(interrupt):
            break

    memcpy(<floating *> p.dh0 + b0 * H, dh, nb * H * sizeof(floating))
    if dc != NULL:
        memcpy(<floating *> p.dc0 + b0 * H, dc, nb * H * sizeof(floating))
    free(dh)
    free(dc)
    free(carry)
    free(d_operand)
    free(masked)
    return 0


cdef void _input_grads_range(const Gradients *p, const floating *dz, floating *dx,
                             Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dx = dz @ kernel^T over the (batch, time) rows [r0, r1), flattened:
    by transposed_product over p.kernel_t (packed_transpose of the kernel),
    PRODUCT_ROW_BLOCK rows at a time, or by BLAS when that is NULL. With
    lengths, one product per sequence over its running steps, and zeros
    past its length."""
    cdef Py_ssize_t T = p.T
    cdef Py_ssize_t r = r0, end, valid_end
    if p.lengths == NULL:
        _input_grads_rows(p, dz, dx, r0, r1)
        return
    while r < r1:  # each sequence's running steps, then zeros past its length
        valid_end = (r // T) * T + p.lengths[r // T]
        end = min(r1, (r // T + 1) * T)
        if r < valid_end:
            _input_grads_rows(p, dz, dx, r, min(end, valid_end))
        if max(r, valid_end) < end:
            memset(dx + max(r, valid_end) * p.features, 0,
                   (end - max(r, valid_end)) * p.features * sizeof(floating))
        r = end


cdef bint _blocks_contiguous(const Gradients *p) noexcept nogil:
    """Whether every sample block's rows are one run of consecutive rows."""
    cdef Py_ssize_t i
    for i in range(1, p.B):
        if p.block_members[i] != p.block_members[i - 1] + 1:
            return False
    return True


cdef Py_ssize_t _dx_ranges(const Gradients *p, Py_ssize_t **ranges) noexcept nogil:
    """The row ranges of dx's products, flattened over (batch, time), as
    ranges[0][2 i], ranges[0][2 i + 1] (free it); returns how many, -1 if
    out of memory.

    Our products' rows never depend on the rows beside them, so any cut
    gives the same numbers: about DX_ROW_BLOCK rows per range (n_dx_blocks).
    BLAS rounds a row according to the call it is in, so with sample blocks
    its calls hold rows of one block only, as few as DX_ROW_BLOCK allows
    (BLAS packs the kernel again for each; see dx_block_calls), or one
    sequence per call with lengths or rows out of order: the same calls
    whichever other blocks share the batch. Without sample blocks, the
    ranges depend on the shape alone."""
    cdef Py_ssize_t BT = p.B * p.T, n = 0, k, i, n_sub, first, rows
    cdef bint by_rows = p.n_blocks > 0 and p.kernel_t == NULL
    cdef bint per_sequence = by_rows and (p.lengths != NULL or not _blocks_contiguous(p))
    if not by_rows:
        n = n_dx_blocks(BT)
    elif per_sequence:
        n = p.B
    else:
        for k in range(p.n_blocks):
            n += dx_block_calls((p.block_bounds[k + 1] - p.block_bounds[k]) * p.T)
    ranges[0] = <Py_ssize_t *> malloc(max(1, 2 * n) * sizeof(Py_ssize_t))
    if ranges[0] == NULL:
        return -1
    if not by_rows:
        for i in range(n):
            ranges[0][2 * i], ranges[0][2 * i + 1] = split(i, n, BT), split(i + 1, n, BT)
    elif per_sequence:
        for i in range(n):
            ranges[0][2 * i], ranges[0][2 * i + 1] = i * p.T, (i + 1) * p.T
    else:
        n = 0
        for k in range(p.n_blocks):
            if p.block_bounds[k + 1] == p.block_bounds[k]:
                continue
            first = p.block_members[p.block_bounds[k]] * p.T
            rows = (p.block_bounds[k + 1] - p.block_bounds[k]) * p.T
            n_sub = dx_block_calls(rows)
            for i in range(n_sub):
                ranges[0][2 * n] = first + split(i, n_sub, rows)
                ranges[0][2 * n + 1] = first + split(i + 1, n_sub, rows)
                n += 1
    return n


cdef void _input_grads_rows(const Gradients *p, const floating *dz, floating *dx,
                            Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dx = dz @ kernel^T for the flattened rows [r0, r1) (see _input_grads_range)."""
    cdef Py_ssize_t I = p.features, G = p.G
    cdef const floating *kernel = <const floating *> p.kernel
    cdef Py_ssize_t r = r0
    if p.kernel_t != NULL:
        while r < r1:
            transposed_product(p.kern, min(PRODUCT_ROW_BLOCK, r1 - r), I, G, dz + r * G, G,
                               <const floating *> p.kernel_t, kernel, dx + r * I, I)
            r += PRODUCT_ROW_BLOCK
    else:
        gemm(c'N', c'T', r1 - r0, I, G, <floating> 1, dz + r0 * G, G, kernel, G,
             <floating> 0, dx + r0 * I, I)


# The rows a weight gradient's first operand gathers, per (batch, time) row.
cdef enum:
    SOURCE_X
    SOURCE_H_PREV
    SOURCE_AUX


ctypedef struct GradProduct:
    # One product of the weight gradients: [sources]^T @ dz[:, columns],
    # summed over the (batch, time) rows, into dweights' rows from out_row
    # on (and dz's column sums into row sums_row, unless it is -1).
    int n_sources
    int sources[2]
    bint from_dz_rec
    Py_ssize_t first_column, n_columns, out_row, sums_row


cdef int _grad_products(const Gradients *p, GradProduct *products) noexcept nogil:
    """The products of a cell's weight gradients (dweights: rows of dkernel,
    drecurrent_kernel, then the bias rows); returns how many. dkernel and
    drecurrent_kernel are one product, [x_t, h_{t-1}]^T dz_t, when both see
    the same dz, so dz is read once for both; dbias, dz's column sums, comes
    out of the same product while dz is in cache."""
    cdef const fastlstm_cell *cell = &p.cell
    cdef Py_ssize_t I = p.features, H = p.H, G = p.G
    cdef int k
    memset(products, 0, 2 * sizeof(GradProduct))
    if _has_apart_phase(cell):
        # The recurrent kernel sees its own gradient (and has its own bias row).
        products[0].n_sources, products[0].sources[0] = 1, SOURCE_X
        products[0].n_columns, products[0].out_row, products[0].sums_row = G, 0, I + H
        products[1].n_sources, products[1].sources[0] = 1, SOURCE_H_PREV
        products[1].from_dz_rec = True
        products[1].n_columns, products[1].out_row, products[1].sums_row = G, I, I + H + 1
        return 2
    for k in range(cell.n_phases):
        products[k].n_sources = 2
        products[k].sources[0] = SOURCE_X
        products[k].sources[1] = (SOURCE_H_PREV if cell.phases[k].operand ==
                                  FASTLSTM_OPERAND_H_PREV else SOURCE_AUX)
        products[k].first_column = cell.phases[k].first_block * H
        products[k].n_columns = cell.phases[k].n_blocks * H
        products[k].out_row, products[k].sums_row = 0, I + H
    return cell.n_phases


cdef inline Py_ssize_t _source_width(const Gradients *p, int source) noexcept nogil:
    return p.features if source == SOURCE_X else p.H


cdef inline Py_ssize_t _grad_row(const Py_ssize_t *index, Py_ssize_t i) noexcept nogil:
    """The flattened (batch, time) row of the weight gradients' i-th summed
    row: every row in order, or with lengths only the running ones (index)."""
    return i if index == NULL else index[i]


cdef void _mask_columns(const floating *mask, floating *a, const Py_ssize_t *index,
                        Py_ssize_t r0, Py_ssize_t n_rows, Py_ssize_t T,
                        Py_ssize_t H) noexcept nogil:
    """a (H, n_rows), the transposed h_{t-1} of the summed rows r0..,
    times the recurrent dropout mask of each row's sequence."""
    cdef Py_ssize_t u, q
    for u in range(H):
        for q in range(n_rows):
            a[u * n_rows + q] *= mask[(_grad_row(index, r0 + q) // T) * H + u]


cdef void _gather_grad_operand(const Gradients *p, const GradProduct *product,
                               Py_ssize_t b0, floating *a, const floating **rows,
                               const Py_ssize_t *index, Py_ssize_t r0,
                               Py_ssize_t n_rows) noexcept nogil:
    """a (M, n_rows) = the product's sources, transposed, for the summed
    rows r0.. (see _grad_row) of the sequences from b0 on: x_t, h_{t-1}
    (h0's row at each sequence's first step, else the row of y before) or
    aux_t. rows: room for n_rows row pointers."""
    cdef Py_ssize_t T = p.T, H = p.H, I = p.features, q, r, width
    cdef const floating *x = <const floating *> p.x + b0 * T * I
    cdef const floating *h0 = <const floating *> p.h0 + b0 * H
    cdef const floating *y = <const floating *> p.y + b0 * T * H
    cdef const floating *aux = <const floating *> p.aux
    cdef int s, source
    for s in range(product.n_sources):
        source = product.sources[s]
        width = _source_width(p, source)
        for q in range(n_rows):
            r = _grad_row(index, r0 + q)
            if source == SOURCE_X:
                rows[q] = x + r * I
            elif source == SOURCE_H_PREV:
                rows[q] = h0 + (r // T) * H if r % T == 0 else y + (r - 1) * H
            else:
                rows[q] = aux + (b0 * T + r) * H
        transpose_rows(rows, n_rows, width, a)
        if source == SOURCE_H_PREV and p.recurrent_mask != NULL:
            _mask_columns(<const floating *> p.recurrent_mask + b0 * H, a, index, r0, n_rows,
                          T, H)
        a += width * n_rows


ctypedef struct RowSet:
    # Batch rows whose weight gradients are summed together: the rows
    # b0 .. b0 + nb - 1, or (members not NULL, b0 = 0) the nb rows
    # members[0..nb), ascending.
    Py_ssize_t b0, nb
    const Py_ssize_t *members


ctypedef struct GradTarget:
    # Where a task's sums go: rows as in dweights (the rows of dkernel,
    # drecurrent_kernel, then the bias rows), ld apart, holding the columns
    # from first_column on.
    void *base
    Py_ssize_t ld, first_column


cdef inline Py_ssize_t _set_row(const RowSet *rows, Py_ssize_t i) noexcept nogil:
    """Batch row i of a row set."""
    return rows.b0 + i if rows.members == NULL else rows.members[i]


cdef RowSet _row_part(const Gradients *p, const Py_ssize_t *row_bounds, Py_ssize_t part,
                      Py_ssize_t n_parts) noexcept nogil:
    """Row part `part` of n_parts (cut by split, or with lengths by
    row_bounds, so that the parts sum similar numbers of rows)."""
    cdef RowSet rows
    rows.b0 = _part_start(row_bounds, part, n_parts, p.B)
    rows.nb = _part_start(row_bounds, part + 1, n_parts, p.B) - rows.b0
    rows.members = NULL
    return rows


cdef RowSet _sample_block(const Gradients *p, Py_ssize_t k) noexcept nogil:
    """Sample block k's rows: a run of consecutive rows when they are one."""
    cdef RowSet rows
    cdef Py_ssize_t i
    cdef const Py_ssize_t *members = p.block_members + p.block_bounds[k]
    rows.nb = p.block_bounds[k + 1] - p.block_bounds[k]
    rows.b0 = 0
    rows.members = members
    for i in range(1, rows.nb):
        if members[i] != members[0] + i:
            return rows
    rows.b0 = members[0] if rows.nb > 0 else 0
    rows.members = NULL
    return rows


cdef int _weight_grads_block(const Gradients *p, const GradProduct *product,
                             const floating *dz, GradTarget target, Py_ssize_t block,
                             Py_ssize_t n_blocks, const RowSet *row_set,
                             fastlstm_interrupt *interrupt) noexcept nogil:
    """Column block `block` of n_blocks (cut by column_split) of one product
    of the weight gradients (see _grad_products), summed over the T rows (or
    with lengths the running steps) of each sequence of `row_set`, in order,
    into `target`.

    Each block of FASTLSTM_K_BLOCK rows of the sources is copied once,
    transposed, where BLAS packed the long (batch, time) side of both
    operands again for every column block (about 40% of its time here).
    With lengths or members, only the summed rows' dz is gathered too, a
    block at a time.
    Stops early if `interrupt` does. Returns -1 if out of memory."""
    cdef Py_ssize_t T = p.T, G = p.G
    cdef Py_ssize_t M = 0
    cdef int s
    for s in range(product.n_sources):
        M += _source_width(p, product.sources[s])
    cdef Py_ssize_t b0 = row_set.b0
    cdef Py_ssize_t j0 = column_split(block, n_blocks, product.n_columns, GRAD_COLUMNS)
    cdef Py_ssize_t nc = column_split(block + 1, n_blocks, product.n_columns, GRAD_COLUMNS) - j0
    cdef Py_ssize_t first = product.first_column + j0
    cdef Py_ssize_t *index = NULL
    cdef Py_ssize_t n_summed = _summed_rows(p, row_set, &index)
    cdef Py_ssize_t r0, n_rows, q
    cdef Py_ssize_t max_rows = max(1, min(<Py_ssize_t> FASTLSTM_K_BLOCK, n_summed))
    cdef floating *operand = <floating *> malloc(max_rows * M * sizeof(floating))
    cdef const floating **rows = <const floating **> malloc(max_rows * sizeof(floating *))
    cdef floating *dz_rows = NULL
    cdef Py_ssize_t ld_dz = G if index == NULL else nc
    cdef Py_ssize_t ld = target.ld
    cdef floating *scratch
    cdef floating *sums = NULL
    cdef floating *base = <floating *> target.base + (first - target.first_column)
    cdef floating *out = base + product.out_row * ld
    cdef int scratch_failed = alloc_matmul_grad_scratch(nc, ld_dz, &scratch)
    if index != NULL:
        dz_rows = <floating *> malloc(max_rows * nc * sizeof(floating))
    if (operand == NULL or rows == NULL or scratch_failed or n_summed < 0
            or (index != NULL and dz_rows == NULL)):
        free(operand)
        free(rows)
        free(index)
        free(dz_rows)
        fastlstm_aligned_free(scratch)
        return -1
    if product.from_dz_rec:
        dz = <const floating *> p.dz_rec
    dz += b0 * T * G  # this set's sequences only
    if product.sums_row >= 0:
        sums = base + product.sums_row * ld
    if n_summed == 0:  # every sequence of the set is empty
        for q in range(M):
            memset(out + q * ld, 0, nc * sizeof(floating))
        if sums != NULL:
            memset(sums, 0, nc * sizeof(floating))
    r0 = 0
    while r0 < n_summed and not fastlstm_interrupted(interrupt):
        n_rows = min(<Py_ssize_t> FASTLSTM_K_BLOCK, n_summed - r0)
        _gather_grad_operand(p, product, b0, operand, rows, index, r0, n_rows)
        if index == NULL:
            matmul_grad(p.kern, M, nc, n_rows, operand, n_rows, dz + r0 * G + first, G,
                        out, ld, r0 > 0, sums, scratch)
        else:
            for q in range(n_rows):
                memcpy(dz_rows + q * nc, dz + index[r0 + q] * G + first, nc * sizeof(floating))
            matmul_grad(p.kern, M, nc, n_rows, operand, n_rows, dz_rows, nc,
                        out, ld, r0 > 0, sums, scratch)
        r0 += n_rows
    free(operand)
    free(rows)
    free(index)
    free(dz_rows)
    fastlstm_aligned_free(scratch)
    return 0


cdef Py_ssize_t _summed_rows(const Gradients *p, const RowSet *row_set,
                             Py_ssize_t **index) noexcept nogil:
    """The number of (batch, time) rows of `row_set` that the weight
    gradients sum, sequence by sequence, each in time order. With lengths or
    members, index[0] lists them (flattened from row b0's first step; free
    it), else it stays NULL and they are the rows from b0's on. -1 if out of
    memory."""
    cdef Py_ssize_t n = 0, i, b, t, steps
    if p.lengths == NULL and row_set.members == NULL:
        return row_set.nb * p.T
    for i in range(row_set.nb):
        n += p.T if p.lengths == NULL else p.lengths[_set_row(row_set, i)]
    index[0] = <Py_ssize_t *> malloc(max(1, n) * sizeof(Py_ssize_t))
    if index[0] == NULL:
        return -1
    n = 0
    for i in range(row_set.nb):
        b = _set_row(row_set, i)
        steps = p.T if p.lengths == NULL else p.lengths[b]
        for t in range(steps):
            index[0][n] = (b - row_set.b0) * p.T + t
            n += 1
    return n


cdef void _add_in_order(floating *total, const floating *parts, Py_ssize_t n_parts,
                        Py_ssize_t size, int n_threads) noexcept nogil:
    """total[i] += parts[0][i], then parts[1][i], ... (parts: n_parts arrays
    of `size`, one after the other): each element's additions in that order,
    whatever the thread that makes them."""
    cdef Py_ssize_t chunk, n_chunks = (size + ADD_CHUNK - 1) // ADD_CHUNK
    cdef Py_ssize_t i, q, i0, i1
    if n_parts == 0:
        return
    if n_threads == 1 or n_chunks == 1:
        for q in range(n_parts):
            for i in range(size):
                total[i] = total[i] + parts[q * size + i]
        return
    for chunk in prange(n_chunks, schedule="static", num_threads=team_size(n_chunks, n_threads)):
        i0 = chunk * ADD_CHUNK
        i1 = min(size, i0 + ADD_CHUNK)
        for q in range(n_parts):
            for i in range(i0, i1):
                total[i] = total[i] + parts[q * size + i]


cdef void _peephole_sums(const Gradients *p, const floating *dz, const RowSet *row_set,
                         floating *dp) noexcept nogil:
    """dp (3, H), rows i, f, o: the sums over the running (batch, time) rows
    of `row_set`, sequence by sequence in time order, of dz_i * c_{t-1},
    dz_f * c_{t-1} and dz_o * c_t."""
    cdef Py_ssize_t T = p.T, H = p.H, G = p.G, r, u, i, b, t, steps
    cdef const floating *cells = <const floating *> p.cells
    cdef const floating *c_prev
    cdef const floating *c_t
    cdef const floating *dz_row
    memset(dp, 0, 3 * H * sizeof(floating))
    for i in range(row_set.nb):
        b = _set_row(row_set, i)
        steps = T if p.lengths == NULL else p.lengths[b]
        for t in range(steps):
            r = b * T + t
            c_t = cells + r * H
            c_prev = <const floating *> p.c0 + b * H if t == 0 else c_t - H
            dz_row = dz + r * G
            for u in range(H):
                dp[u] += dz_row[u] * c_prev[u]
                dp[H + u] += dz_row[H + u] * c_prev[u]
                dp[2 * H + u] += dz_row[3 * H + u] * c_t[u]


cdef int _peephole_grads(const Gradients *p, const floating *dz) except -1:
    """dpeephole: the sums over every sequence's running steps (see
    _peephole_sums); with sample blocks, each block's sums, added in block
    order (or, per_block, kept apart, block k's at dpeephole[3 k])."""
    cdef Py_ssize_t H = p.H, k
    cdef floating *dp = <floating *> p.dpeephole
    cdef floating *partial = NULL
    cdef RowSet rows
    if p.n_blocks == 0:
        rows.b0, rows.nb, rows.members = 0, p.B, NULL
        with nogil:
            _peephole_sums(p, dz, &rows, dp)
        return 0
    partial = <floating *> malloc(3 * H * sizeof(floating))
    if partial == NULL:
        raise MemoryError("fastlstm: could not allocate the peephole gradients' partial sums")
    with nogil:
        for k in range(p.n_blocks):
            rows = _sample_block(p, k)
            if p.per_block:
                _peephole_sums(p, dz, &rows, dp + 3 * H * k)
            elif k == 0:
                _peephole_sums(p, dz, &rows, dp)
            else:
                _peephole_sums(p, dz, &rows, partial)
                _add_in_order(dp, partial, 1, 3 * H, 1)
    free(partial)
    return 0


cdef int _weight_grads(Gradients *p, const floating *dz, int n_threads,
                       fastlstm_interrupt *interrupt) except -1:
    """All weight gradients, summed over row sets: GRAD_ROW_PARTS row parts
    (see grad_row_parts), or the sample blocks. Each set's sums start from
    zero, and the sets are added in order; per_block keeps each block's sums
    apart (block k's at dweights[k * rows]).

    Tasks of (product, row set, column block), about one per thread and
    product (see GRAD_COLUMNS): set 0 writes dweights itself, later sets
    their own copies (p.grad_scratch, or fresh memory), added in order after.
    When copies of every set would take more than GRAD_PARTIAL_BYTES, the
    sets run in waves (see wave_sets), each wave's copies added before the
    next starts. Raises MemoryError if out of memory."""
    cdef GradProduct products[2]
    cdef int n_products = _grad_products(p, products)
    cdef Py_ssize_t size = (p.features + p.H + p.cell.bias_rows) * p.G
    cdef Py_ssize_t n_sets, wave, slots, first, stop, q
    cdef Py_ssize_t *row_bounds = NULL
    cdef RowSet *sets = NULL
    cdef floating *partials = NULL
    cdef floating *owned = NULL
    if p.n_blocks == 0:
        n_sets = grad_row_parts(p.B, size * sizeof(floating))
        _fill_bounds(p.lengths, p.B, n_sets, &row_bounds)
    else:
        n_sets = p.n_blocks
    wave = n_sets if p.per_block else wave_sets(n_sets, size * sizeof(floating), n_threads)
    slots = 0 if p.per_block else partial_slots(n_sets, wave)
    sets = <RowSet *> malloc(n_sets * sizeof(RowSet))
    if sets == NULL:
        free(row_bounds)
        raise MemoryError("fastlstm: could not allocate the weight gradients' row sets")
    for q in range(n_sets):
        sets[q] = _row_part(p, row_bounds, q, n_sets) if p.n_blocks == 0 else _sample_block(p, q)
    try:
        if slots > 0:
            partials = <floating *> p.grad_scratch
            if p.grad_scratch_size < slots * size:
                partials = owned = <floating *> malloc(slots * size * sizeof(floating))
                if partials == NULL:
                    raise MemoryError("fastlstm: could not allocate the weight gradients' "
                                      "partial sums")
        first = 0
        while first < n_sets and not fastlstm_interrupted(interrupt):
            stop = min(n_sets, first + wave)
            _weight_grads_wave(p, products, n_products, sets, first, stop, dz, partials,
                               n_threads, interrupt)
            first = stop
    finally:
        free(owned)
        free(sets)
        free(row_bounds)
    return 0


cdef int _weight_grads_wave(Gradients *p, const GradProduct *products, int n_products,
                            const RowSet *sets, Py_ssize_t first, Py_ssize_t stop,
                            const floating *dz, floating *partials, int n_threads,
                            fastlstm_interrupt *interrupt) except -1:
    """Sets first .. stop - 1 by tasks of (product, set, column block), then
    (unless per_block) their copies added to dweights in order."""
    cdef Py_ssize_t size = (p.features + p.H + p.cell.bias_rows) * p.G
    cdef Py_ssize_t n_sets = stop - first
    cdef Py_ssize_t n_blocks[2]
    cdef Py_ssize_t n_tasks = 0, task
    cdef int failed = 0, k
    cdef bint uneven = p.lengths != NULL and p.n_blocks > 0
    cdef Py_ssize_t columns_cut = (n_threads + n_sets - 1) // n_sets
    if p.n_blocks > 0:
        # As many tasks per thread: sets' columns cut when the sets do not
        # share out evenly (the cut changes no bit, see GRAD_COLUMNS).
        columns_cut = max(columns_cut, n_threads // _gcd(n_sets, n_threads))
    for k in range(n_products):
        n_blocks[k] = max(1, min(columns_cut, products[k].n_columns // GRAD_COLUMNS))
        n_tasks += n_sets * n_blocks[k]
    with nogil:
        # Sample blocks' running steps may differ a lot with lengths: their
        # tasks go to whichever thread is free.
        if uneven:
            for task in prange(n_tasks, schedule="dynamic",
                               num_threads=team_size(n_tasks, n_threads)):
                failed += _weight_grads_task(p, products, n_blocks, first, n_sets, sets, dz,
                                             partials, size, task, interrupt)
        else:
            for task in prange(n_tasks, schedule="static",
                               num_threads=team_size(n_tasks, n_threads)):
                failed += _weight_grads_task(p, products, n_blocks, first, n_sets, sets, dz,
                                             partials, size, task, interrupt)
        if not p.per_block and failed == 0 and not fastlstm_interrupted(interrupt):
            _add_in_order(<floating *> p.dweights, partials, n_sets - (first == 0), size,
                          n_threads)
    if failed:
        raise MemoryError("fastlstm: could not allocate the weight gradients' scratch buffers")
    return 0


cdef inline Py_ssize_t _gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef int _weight_grads_task(const Gradients *p, const GradProduct *products,
                            const Py_ssize_t *n_blocks, Py_ssize_t first, Py_ssize_t n_sets,
                            const RowSet *sets, const floating *dz, floating *partials,
                            Py_ssize_t size, Py_ssize_t task,
                            fastlstm_interrupt *interrupt) noexcept nogil:
    """Task `task` of a wave from set `first`: product k, the wave's set q, a
    column block. Set 0's sums go to dweights, per_block's to the set's
    slice of dweights, the others' to the wave's copies in order."""
    cdef int k = 0
    cdef Py_ssize_t local = task, q
    cdef GradTarget target
    if local >= n_sets * n_blocks[0]:
        local = local - n_sets * n_blocks[0]
        k = 1
    q = local // n_blocks[k]
    target.ld, target.first_column = p.G, 0
    if p.per_block:
        target.base = <floating *> p.dweights + (first + q) * size
    elif first + q == 0:
        target.base = p.dweights
    else:
        target.base = partials + (q - (first == 0)) * size
    return _weight_grads_block(p, &products[k], dz, target, local % n_blocks[k], n_blocks[k],
                               &sets[first + q], interrupt)


cdef int _prepare_recurrent_t(Gradients *p, const floating *recurrent_kernel,
                              void **owned) except -1:
    """Each phase's recurrent columns as backward's products read them: (H,
    n_cols) row by row (the kernel itself when one phase takes all columns)
    and packed transposed. owned[0..3]: what the caller frees."""
    cdef Py_ssize_t k, i, first, n_cols
    cdef floating *columns
    for k in range(p.cell.n_phases):
        first = p.cell.phases[k].first_block * p.H
        n_cols = p.cell.phases[k].n_blocks * p.H
        if n_cols == p.G:
            p.recurrent_cols[k] = recurrent_kernel
        else:
            columns = <floating *> malloc(p.H * n_cols * sizeof(floating))
            if columns == NULL:
                raise MemoryError("fastlstm: could not allocate the recurrent columns")
            owned[2 * k] = columns
            for i in range(p.H):
                memcpy(columns + i * n_cols, recurrent_kernel + i * p.G + first,
                       n_cols * sizeof(floating))
            p.recurrent_cols[k] = columns
        owned[2 * k + 1] = packed_transpose(p.kern, p.H, n_cols,
                                            <const floating *> p.recurrent_cols[k])
        p.recurrent_t[k] = owned[2 * k + 1]
    return 0


cdef void _free_recurrent_t(void **owned) noexcept:
    cdef int k
    for k in range(2):
        free(owned[2 * k])
        fastlstm_aligned_free(owned[2 * k + 1])
        owned[2 * k] = owned[2 * k + 1] = NULL


def backward(int cell, floating[:, :, ::1] dz, const floating[:, :, ::1] x,
             const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel,
             peephole, recurrent_mask, const floating[:, ::1] h0, c0,
             const floating[:, :, ::1] y, cells, aux,
             dy, dh_n, dc_n, dx, floating[:, ::1] dweights, dpeephole,
             floating[:, ::1] dh0, dc0, int n_threads, bint interruptible=False,
             lengths=None, blocks=None, bint per_block=False, grad_scratch=None):
    """BPTT. dz: the gates kept by forward_training, destroyed here.

    Each phase's recurrent columns are packed once, transposed, for the
    per-step products; so is the kernel for dx = dz @ kernel^T, unless dx is
    narrow enough to go to BLAS (see backward_calls_blas). Both take their
    last columns as dot products when whole vectors would mostly waste them
    (transposed_product).

    peephole, recurrent_mask, c0, cells, aux: as forward_training had them
    (None where the cell has none). dy (B, T, H), dh_n and dc_n (B, H): arrays of dz's dtype
    or None (zero). Fills dx (None: skipped), dh0, dc0 (for a cell state),
    dpeephole (3, H) (for peepholes) and dweights (I + H + bias_rows, G):
    the rows of dkernel, drecurrent_kernel, then the bias rows.
    interruptible: as for forward_inference; an interrupted call leaves the
    outputs incomplete and dz partly overwritten. lengths: as forward had
    them; the steps past a row's length get no gradient and their dx is
    zero. Returns the nanoseconds the threads spent off their cores during
    the recurrence.

    blocks: None, or (members, bounds), intp arrays: the batch rows cut into
    sample blocks, block k's rows members[bounds[k]:bounds[k + 1]] in
    ascending order (see _check_blocks). The weight gradients (and
    dpeephole) are then summed over each block from zero and the blocks
    added in order, so a block's sums depend on its own rows alone; with
    per_block they are not added: dweights holds n_blocks of its (I + H +
    bias_rows, G) row groups, block k's at row k (I + H + bias_rows), and
    dpeephole (3 n_blocks, H) likewise. BLAS' dx calls then hold whole
    blocks' rows too (see _dx_ranges). grad_scratch: None, or a 1-d array of
    dz's dtype of at least weight_grad_scratch_size(...) elements, which
    the partial sums use instead of fresh memory.
    """
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], I = x.shape[2], H = h0.shape[1]
    cdef Gradients p
    cdef Py_ssize_t n_groups = 1
    cdef floating[::1] scratch_view
    cdef Py_ssize_t state_bytes = B * H * sizeof(floating)
    cdef Py_ssize_t sequence_bytes = B * T * H * sizeof(floating)
    memset(&p, 0, sizeof(Gradients))
    p.cell = _cell(cell)
    p.kern = fastlstm_simd_products(_simd_level)
    p.B, p.T, p.features, p.H = B, T, I, H
    p.G = p.cell.n_gates * H
    if blocks is not None:
        p.n_blocks = _check_blocks(blocks, B, &p.block_members, &p.block_bounds)
        p.per_block = per_block
        if per_block:
            n_groups = p.n_blocks
    elif per_block:
        raise ValueError("backward: per_block needs blocks")
    if grad_scratch is not None:
        scratch_view = grad_scratch
        if scratch_view.shape[0] > 0:
            p.grad_scratch, p.grad_scratch_size = &scratch_view[0], scratch_view.shape[0]
    if (dweights.shape[0] < n_groups * (I + H + p.cell.bias_rows)
            or dweights.shape[1] != p.G):
        raise ValueError("backward: dweights has the wrong shape")
    p.x, p.kernel, p.h0, p.y = &x[0, 0, 0], &kernel[0, 0], &h0[0, 0], &y[0, 0, 0]
    p.dweights, p.dh0 = &dweights[0, 0], &dh0[0, 0]
    p.lengths = _lengths(lengths, B, T)
    p.recurrent_mask = _address(recurrent_mask, state_bytes, sizeof(floating), False)
    p.dy = _address(dy, sequence_bytes, sizeof(floating), False)
    p.dh_n = _address(dh_n, state_bytes, sizeof(floating), False)
    p.dx = _address(dx, B * T * I * sizeof(floating), sizeof(floating), True)
    if p.cell.has_cell_state:
        p.c0 = _address(c0, state_bytes, sizeof(floating), False)
        p.cells = _address(cells, sequence_bytes, sizeof(floating), False)
        p.dc_n = _address(dc_n, state_bytes, sizeof(floating), False)
        p.dc0 = _address(dc0, state_bytes, sizeof(floating), True)
        if p.c0 == NULL or p.cells == NULL or p.dc0 == NULL:
            raise ValueError("backward: this cell needs c0, cells and dc0")
    if p.cell.keeps_aux:
        p.aux = _address(aux, sequence_bytes, sizeof(floating), False)
        if p.aux == NULL:
            raise ValueError("backward: this cell needs aux")
    if p.cell.peephole_rows:
        p.peephole = _address(peephole, 3 * H * sizeof(floating), sizeof(floating), False)
        p.dpeephole = _address(dpeephole, n_groups * 3 * H * sizeof(floating),
                               sizeof(floating), True)
        if p.peephole == NULL or p.dpeephole == NULL:
            raise ValueError("backward: this cell needs peephole and dpeephole")
    return _backward(&p, &dz[0, 0, 0], &recurrent_kernel[0, 0], n_threads, interruptible)


cdef long long _backward(Gradients *p, floating *dz, const floating *recurrent_kernel,
                         int n_threads, bint interruptible) except -1:
    cdef Py_ssize_t n_parts = batch_parts(p.B, p.G, p.H, sizeof(floating), n_threads)
    cdef Py_ssize_t n_ranges = 0
    cdef Py_ssize_t *ranges = NULL
    cdef Py_ssize_t part, block
    cdef void *owned[4]
    cdef floating *kernel_t = NULL
    cdef floating *dz_rec = NULL
    cdef int failed = 0
    cdef fastlstm_interrupt interrupt
    cdef bint watch = team_size(n_parts, n_threads) > 1
    cdef long long lost_ns = 0
    cdef fastlstm_thread_clock start
    cdef Py_ssize_t *bounds = NULL
    memset(owned, 0, sizeof(owned))
    fastlstm_interrupt_init(&interrupt, interruptible)
    try:
        _fill_bounds(p.lengths, p.B, n_parts, &bounds)
        p.bounds = bounds
        _prepare_recurrent_t(p, recurrent_kernel, owned)
        if p.dx != NULL and not dx_by_blas(p.features, p.G, sizeof(floating)):
            kernel_t = packed_transpose(p.kern, p.features, p.G, <const floating *> p.kernel)
            p.kernel_t = kernel_t
        p.dz_rec = dz
        if _has_apart_phase(&p.cell):
            dz_rec = <floating *> malloc(p.B * p.T * p.G * sizeof(floating))
            if dz_rec == NULL:
                raise MemoryError("fastlstm: could not allocate the recurrent gradients")
            p.dz_rec = dz_rec
        with nogil:
            for part in prange(n_parts, schedule="static",
                               num_threads=team_size(n_parts, n_threads)):
                if watch:
                    start = fastlstm_thread_clock_now()
                failed += _backward_part(p, dz, part, n_parts, &interrupt)
                if watch:
                    fastlstm_add_lost_time(&lost_ns, start)
        # The recurrence is done with the packed weights.
        _free_recurrent_t(owned)
        if failed:
            raise MemoryError("fastlstm: could not allocate the backward pass' scratch buffers")
        if p.dx != NULL:
            n_ranges = _dx_ranges(p, &ranges)
            if n_ranges < 0:
                raise MemoryError("fastlstm: could not allocate the input gradient's blocks")
        with nogil:
            if p.dx != NULL and p.lengths != NULL:
                # The ranges of the longest rows hold the most rows to compute;
                # a range's numbers do not depend on the thread that takes it.
                for block in prange(n_ranges, schedule="dynamic", num_threads=n_threads):
                    if not fastlstm_interrupted(&interrupt):
                        _input_grads_range(p, dz, <floating *> p.dx, ranges[2 * block],
                                           ranges[2 * block + 1])
            elif p.dx != NULL:
                for block in prange(n_ranges, schedule="static", num_threads=n_threads):
                    if not fastlstm_interrupted(&interrupt):
                        _input_grads_range(p, dz, <floating *> p.dx, ranges[2 * block],
                                           ranges[2 * block + 1])
        _weight_grads(p, dz, n_threads, &interrupt)
        if p.dpeephole != NULL and not fastlstm_interrupted(&interrupt):
            _peephole_grads(p, dz)
    finally:
        free(ranges)
        _free_recurrent_t(owned)
        fastlstm_aligned_free(kernel_t)
        free(dz_rec)
        free(bounds)
    fastlstm_interrupt_reraise(&interrupt)
    return lost_ns


# ---------------------------------------------------------------- stepping

cdef class Stepper:
    """A float32 recurrent layer run one time step per call over a fixed
    batch, for streaming: its weights are copied and packed once, its states
    kept between calls, and a call allocates nothing and checks nothing.

    Parameters
    ----------
    cell : int
        A value of CELLS.
    kernel, recurrent_kernel, bias, peephole
        As forward_inference takes them (peephole None unless the cell has
        one); copied.
    inputs : float32 array (B, I)
        The buffer each step reads x_t from (the caller fills it, or it is
        the previous layer's ``output``).
    n_threads : int
        The most threads a step will be given (sizes the workspace).
    check_inputs : bool
        Refuse a step whose inputs hold NaN or infinity (ValueError),
        before anything runs: for the first layer of a stream.

    Attributes
    ----------
    output : float32 array (B, H)
        h_t after each step.
    states : list of float32 arrays (B, H)
        h (and c): the states the next step starts from; write into them to
        set them.

    Steps give bitwise the outputs of forward_inference over the whole
    sequence (the products read packed weights either way). Not
    thread-safe: a step writes the stepper's own buffers without the GIL,
    so its caller serialises the calls (fastlstm.streaming.Stream does).
    """
    cdef Sequences p
    cdef object _arrays        # everything p points into, kept alive
    cdef float[:, ::1] _inputs
    cdef float[:, ::1] _h, _c, _h_next, _c_next
    cdef float[::1] _workspace
    cdef float[:, ::1] _out
    cdef readonly object output
    cdef int _max_threads
    cdef bint _check_inputs

    def __cinit__(self, int cell, kernel, recurrent_kernel, bias, peephole, inputs,
                  int n_threads, bint check_inputs=False):
        import numpy as np
        cdef const float[:, ::1] kernel_view = np.array(kernel, np.float32, order="C")
        cdef const float[:, ::1] recurrent_view = np.array(recurrent_kernel, np.float32,
                                                            order="C")
        cdef const float[::1] bias_view = np.array(bias, np.float32).reshape(-1)
        self._inputs = inputs
        cdef Py_ssize_t B = self._inputs.shape[0], I = self._inputs.shape[1]
        cdef Py_ssize_t H = recurrent_view.shape[0]
        if B < 1 or I < 1 or H < 1:
            raise ValueError(f"Stepper: needs at least one row, feature and unit, got "
                             f"batch {B}, features {I}, units {H}")
        self.p = _sequences(cell, B, 1, I, H)
        if kernel_view.shape[0] != I or kernel_view.shape[1] != self.p.G \
                or recurrent_view.shape[1] != self.p.G \
                or bias_view.shape[0] != self.p.cell.bias_rows * self.p.G:
            raise ValueError("Stepper: the weights do not fit the cell and the inputs")
        self._max_threads = max(1, n_threads)
        self._check_inputs = check_inputs
        self.output = np.zeros((B, H), np.float32)
        self._out = self.output
        self._h, self._h_next = np.zeros((B, H), np.float32), np.zeros((B, H), np.float32)
        self._c, self._c_next = np.zeros((B, H), np.float32), np.zeros((B, H), np.float32)
        self._workspace = np.empty(inference_workspace_size(cell, B, 1, I, H, 4,
                                                            self._max_threads), np.float32)
        peephole_copy = None if peephole is None else np.array(peephole, np.float32, order="C")
        self._arrays = (kernel_view, recurrent_view, bias_view, peephole_copy)
        _bind_forward(&self.p, <const float *> NULL, &bias_view[0], peephole_copy, None,
                      &self._h[0, 0], self._c.base, &self._h_next[0, 0], self._c_next.base,
                      None)
        self.p.scratch = &self._workspace[0]
        _prepare_weights(&self.p, &kernel_view[0, 0], &recurrent_view[0, 0], False)

    def __dealloc__(self):
        _free_weights(&self.p.w)

    @property
    def states(self):
        """[h] or [h, c]: the arrays the next step starts from."""
        if self.p.cell.has_cell_state:
            return [self._h.base, self._c.base]
        return [self._h.base]

    def team(self, int n_threads):
        """The threads a step given n_threads actually keeps busy: one
        unless the batch has several parts or the weights are large enough
        for the threads to share one part's columns."""
        n_threads = min(n_threads, self._max_threads)
        if split_units(self.p.B, self.p.G, self.p.H, sizeof(float), n_threads):
            return n_threads
        return min(n_threads, forward_parts(self.p.B, self.p.G, self.p.H, sizeof(float),
                                            n_threads))

    def step(self, int n_threads, bint interruptible=False):
        """Run one step from ``inputs`` and the states; fills ``output`` and
        moves the states on. Returns the nanoseconds the team spent off its
        cores (see forward_inference)."""
        n_threads = max(1, min(n_threads, self._max_threads))
        if self._check_inputs and not self.p.kern.all_finite_f32(
                self.p.B * self.p.features, &self._inputs[0, 0]):
            raise ValueError("x_t contains NaN or infinity")
        self.p.x = &self._inputs[0, 0]
        self.p.h0, self.p.y = &self._h[0, 0], &self._h_next[0, 0]
        if self.p.cell.has_cell_state:
            self.p.c0, self.p.c_n = &self._c[0, 0], &self._c_next[0, 0]
        cdef long long lost_ns = _forward(&self.p, <float *> self.p.y, n_threads, interruptible)
        # The new states become the current ones in place, so that the
        # arrays ``states`` handed out stay the live states.
        memcpy(&self._h[0, 0], &self._h_next[0, 0], self.p.B * self.p.H * sizeof(float))
        if self.p.cell.has_cell_state:
            memcpy(&self._c[0, 0], &self._c_next[0, 0], self.p.B * self.p.H * sizeof(float))
        memcpy(&self._out[0, 0], &self._h[0, 0], self.p.B * self.p.H * sizeof(float))
        return lost_ns


# The cells by name, as fastlstm.functional names them (cell.h).
CELLS = {"lstm": FASTLSTM_CELL_LSTM, "lstm_peephole": FASTLSTM_CELL_LSTM_PEEPHOLE,
         "gru_reset_after": FASTLSTM_CELL_GRU_RESET_AFTER,
         "gru_reset_before": FASTLSTM_CELL_GRU_RESET_BEFORE,
         "rnn_tanh": FASTLSTM_CELL_RNN_TANH, "rnn_relu": FASTLSTM_CELL_RNN_RELU}

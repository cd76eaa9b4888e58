/*
 * A recurrent cell as the driver (_recurrent.pyx) sees it: data, not code.
 *
 * The driver owns every loop: batch parts, time steps, the input projection
 * and the recurrent products, the state history and backward's products.
 * A cell tells it how many gate columns a step has, which columns of the
 * recurrent kernel each of its phases multiplies and where that product
 * goes, and which row kernels (one per phase, per dtype, per SIMD level)
 * turn a row of products into the next state. The driver calls a row kernel
 * once per (batch row, step, phase) over the row's units, through a pointer.
 *
 * Layout of one step of one batch row (H units, G = n_gates * H):
 *   z (G): the input projection x_t @ kernel, gate blocks H apart; a phase
 *     whose product is "added" adds h @ its recurrent columns into it. The
 *     row kernel turns it into what backward needs (the activated gates).
 *   rec (G): phase 0's product kept apart (GRU reset after), else unused.
 *   aux (H): one value per unit a cell keeps for backward or hands to its
 *     next phase (GRU: r * (h_prev @ U_h + b_rh), or r * h_prev).
 * A row kernel may be called on a slice of a row's units (a team of threads
 * sharing one batch part): its pointers then start at the slice and its
 * gate blocks stay `stride` (the layer's units) apart.
 */
#ifndef FASTLSTM_CELL_H
#define FASTLSTM_CELL_H

#include <stddef.h>

/* The rows a forward row kernel reads and writes; fields a cell does not
   use are NULL. Elements are float or double, as the kernel's dtype. */
typedef struct {
    void *z;              /* (n_gates blocks) pre-activations in, gates out */
    const void *rec;      /* (n_gates blocks) phase 0's product kept apart */
    const void *bias;     /* (n_gates blocks; a second row of them after the
                             first for GRU reset after) */
    const void *h_prev;   /* h_{t-1} */
    const void *h_masked; /* h_{t-1} times the recurrent dropout mask, the
                             operand of the products; NULL without one */
    const void *c_prev;   /* c_{t-1} */
    void *c_out;          /* c_t */
    void *h_out;          /* h_t: a row of y */
    void *aux;            /* see above */
    const void *peephole; /* (3 blocks: i, f, o) */
} fastlstm_forward_row;

/* The rows a backward row kernel reads and writes (one whole row: gate
   blocks n apart). */
typedef struct {
    void *gates;          /* what forward kept in; the gradient of z out */
    void *dz_rec;         /* the gradient the recurrent kernel sees, when it
                             differs from that of z (GRU reset after) */
    const void *aux;
    const void *h_prev;
    const void *h_masked; /* as forward's */
    const void *h_t;
    const void *c_prev;
    const void *c_t;
    const void *dh;       /* gradient reaching h_t through the recurrence */
    const void *dy;       /* gradient of y_t, NULL for zero */
    void *dc;             /* gradient of c_t in, of c_{t-1} out */
    void *dh_carry;       /* out: the gradient reaching h_{t-1} other than
                             through the recurrent products (GRU: dh * z) */
    const void *peephole;
    void *d_operand;      /* in: gradient of phase 1's operand (GRU reset
                             before: of r * h_masked), from its product;
                             out (phase 0): the gradient it passes on to
                             h_masked, which the driver adds to phase 0's
                             product */
} fastlstm_backward_row;

typedef void (*fastlstm_forward_row_fn)(ptrdiff_t n_units, ptrdiff_t stride,
                                        const fastlstm_forward_row *row);
typedef void (*fastlstm_backward_row_fn)(ptrdiff_t n_units, const fastlstm_backward_row *row);

enum {
    FASTLSTM_CELL_LSTM,
    FASTLSTM_CELL_LSTM_PEEPHOLE,
    FASTLSTM_CELL_GRU_RESET_AFTER,
    FASTLSTM_CELL_GRU_RESET_BEFORE,
    FASTLSTM_CELL_RNN_TANH,
    FASTLSTM_CELL_RNN_RELU,
    FASTLSTM_CELL_COUNT
};

/* The operand of a phase's recurrent product: h_{t-1}, or the aux row the
   phase before wrote. */
enum { FASTLSTM_OPERAND_H_PREV, FASTLSTM_OPERAND_AUX };

/* Where a phase's recurrent product goes: added into z, or kept apart in rec. */
enum { FASTLSTM_PRODUCT_ADDED, FASTLSTM_PRODUCT_APART };

typedef struct {
    int first_block;      /* recurrent kernel columns [first_block * H, */
    int n_blocks;         /*   (first_block + n_blocks) * H) */
    int operand;          /* FASTLSTM_OPERAND_* */
    int product;          /* FASTLSTM_PRODUCT_* */
    fastlstm_forward_row_fn forward_f32, forward_f64;
    fastlstm_backward_row_fn backward_f32, backward_f64;
} fastlstm_phase;

typedef struct {
    int n_gates;          /* G = n_gates * units */
    int has_cell_state;   /* an LSTM's c */
    int bias_rows;        /* 1, or 2 (input row, recurrent row) */
    int keeps_aux;        /* training keeps the aux row of every step */
    int peephole_rows;    /* 0, or 3 */
    int n_phases;         /* 1 or 2 */
    fastlstm_phase phases[2];
} fastlstm_cell;

/* The cell `cell` (FASTLSTM_CELL_*) with the row kernels of SIMD level
   `level` (simd.h); n_gates 0 for an unknown cell. */
fastlstm_cell fastlstm_cell_kernels(int level, int cell);

#endif

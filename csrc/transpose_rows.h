/*
 * a (width, n_rows) = n_rows rows of `width` values each, transposed: the
 * weight gradients' operand [x_t, h_{t-1}]^T and the recurrent weights'
 * transpose (see _lstm.pyx).
 *
 * FASTLSTM_TRANSPOSE_COLUMNS columns at a time, so that each cache line read
 * is used whole and the rows of a being written stay in L1 (a plain loop
 * writes to a new line at every element).
 *
 * In C rather than Cython so that it stays a function of its own: inlined
 * into the backward pass's parallel region, as GCC chose to do with the
 * Cython version, its loop kept its pointers on the stack once that region
 * held one more variable, and the backward pass at (64, 60, 1, 50) ran 7%
 * slower.
 */
#ifndef FASTLSTM_TRANSPOSE_ROWS_H
#define FASTLSTM_TRANSPOSE_ROWS_H

#include <stddef.h>

#if defined(__GNUC__)
#define FASTLSTM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define FASTLSTM_NOINLINE __declspec(noinline)
#else
#define FASTLSTM_NOINLINE
#endif

/* A cache line of float32. */
#define FASTLSTM_TRANSPOSE_COLUMNS 16

#define FASTLSTM_DEFINE_TRANSPOSE(T, SFX)                                      \
static FASTLSTM_NOINLINE void fastlstm_transpose_rows_##SFX(                   \
    const T *const *rows, ptrdiff_t n_rows, ptrdiff_t width, T *a)             \
{                                                                              \
    for (ptrdiff_t i0 = 0; i0 < width; i0 += FASTLSTM_TRANSPOSE_COLUMNS) {     \
        const ptrdiff_t i1 = width - i0 < FASTLSTM_TRANSPOSE_COLUMNS ?         \
            width : i0 + FASTLSTM_TRANSPOSE_COLUMNS;                           \
        for (ptrdiff_t q = 0; q < n_rows; ++q) {                               \
            const T *row = rows[q];                                            \
            for (ptrdiff_t i = i0; i < i1; ++i)                                \
                a[i * n_rows + q] = row[i];                                    \
        }                                                                      \
    }                                                                          \
}

FASTLSTM_DEFINE_TRANSPOSE(float, f32)
FASTLSTM_DEFINE_TRANSPOSE(double, f64)
#undef FASTLSTM_DEFINE_TRANSPOSE

#endif

/*
 * a (width, n_rows) = n_rows rows of `width` values each, transposed: the
 * weight gradients' operand [x_t, h_{t-1}]^T and the recurrent weights'
 * transpose (see _lstm.pyx).
 *
 * FASTLSTM_TRANSPOSE_COLUMNS columns at a time, so that each cache line read
 * is used whole and the rows of a being written stay in L1 (a plain loop
 * writes to a new line at every element).
 *
 * In C rather than Cython so that it stays a function of its own: GCC
 * inlines a Cython version into the backward pass's parallel region, where
 * its loop keeps its pointers on the stack once that region holds one more
 * variable, and the backward pass at (64, 60, 1, 50) runs 7% slower.
 */
#ifndef FASTLSTM_TRANSPOSE_ROWS_H
#define FASTLSTM_TRANSPOSE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FASTLSTM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define FASTLSTM_NOINLINE __declspec(noinline)
#else
#define FASTLSTM_NOINLINE
#endif

/* A cache line of float32; a multiple of the square blocks below. */
#define FASTLSTM_TRANSPOSE_COLUMNS 16

/*
 * Inside each group of columns, the rows are cut into square blocks of one
 * 16-byte vector a side (4 x 4 float, 2 x 2 double), each transposed in
 * registers and stored as whole vectors: float ran 1.9-2.3x and double
 * 1.3-1.4x faster than one element at a time at widths of 50 to 1024
 * (measured in a C harness on 128 rows). The vectors are GCC's generic ones
 * at SSE2's width, which every x86-64 has, so this needs no SIMD dispatch
 * (wider generic vectors ran 4-5x slower, split into SSE2 pieces). Other
 * compilers (no __builtin_shuffle) copy the same blocks one element at a
 * time. A copy, so any order gives the same bits.
 */
#define FASTLSTM_TRANSPOSE_SIDE_F32 4
#define FASTLSTM_TRANSPOSE_SIDE_F64 2

#if defined(__GNUC__) && !defined(__clang__)
typedef float fastlstm_quad_f32 __attribute__((vector_size(16)));
typedef float fastlstm_uquad_f32 __attribute__((vector_size(16), aligned(4), may_alias));
typedef int32_t fastlstm_quad_index_f32 __attribute__((vector_size(16)));
typedef double fastlstm_pair_f64 __attribute__((vector_size(16)));
typedef double fastlstm_upair_f64 __attribute__((vector_size(16), aligned(8), may_alias));
typedef int64_t fastlstm_pair_index_f64 __attribute__((vector_size(16)));

/* a's rows 0..3 (ld apart), columns 0..3 = rows[0..3][i..i + 4) transposed:
   interleave pairs of rows, then pairs of pairs. */
static inline void fastlstm_transpose_block_f32(const float *const *rows, ptrdiff_t i,
                                                float *a, ptrdiff_t ld)
{
    typedef fastlstm_quad_f32 quad;
    typedef fastlstm_uquad_f32 uquad;
    typedef fastlstm_quad_index_f32 index;
    const quad r0 = *(const uquad *)(rows[0] + i), r1 = *(const uquad *)(rows[1] + i);
    const quad r2 = *(const uquad *)(rows[2] + i), r3 = *(const uquad *)(rows[3] + i);
    const quad low01 = __builtin_shuffle(r0, r1, (index){0, 4, 1, 5});
    const quad low23 = __builtin_shuffle(r2, r3, (index){0, 4, 1, 5});
    const quad high01 = __builtin_shuffle(r0, r1, (index){2, 6, 3, 7});
    const quad high23 = __builtin_shuffle(r2, r3, (index){2, 6, 3, 7});
    *(uquad *)a = __builtin_shuffle(low01, low23, (index){0, 1, 4, 5});
    *(uquad *)(a + ld) = __builtin_shuffle(low01, low23, (index){2, 3, 6, 7});
    *(uquad *)(a + 2 * ld) = __builtin_shuffle(high01, high23, (index){0, 1, 4, 5});
    *(uquad *)(a + 3 * ld) = __builtin_shuffle(high01, high23, (index){2, 3, 6, 7});
}

/* a's rows 0..1 (ld apart), columns 0..1 = rows[0..1][i..i + 2) transposed. */
static inline void fastlstm_transpose_block_f64(const double *const *rows, ptrdiff_t i,
                                                double *a, ptrdiff_t ld)
{
    typedef fastlstm_pair_f64 pair;
    typedef fastlstm_upair_f64 upair;
    typedef fastlstm_pair_index_f64 index;
    const pair r0 = *(const upair *)(rows[0] + i), r1 = *(const upair *)(rows[1] + i);
    *(upair *)a = __builtin_shuffle(r0, r1, (index){0, 2});
    *(upair *)(a + ld) = __builtin_shuffle(r0, r1, (index){1, 3});
}
#else
#define FASTLSTM_DEFINE_TRANSPOSE_BLOCK(T, SFX, SIDE)                          \
static inline void fastlstm_transpose_block_##SFX(const T *const *rows, ptrdiff_t i, \
                                                  T *a, ptrdiff_t ld)          \
{                                                                              \
    for (ptrdiff_t c = 0; c < SIDE; ++c)                                       \
        for (ptrdiff_t r = 0; r < SIDE; ++r)                                   \
            a[c * ld + r] = rows[r][i + c];                                    \
}
FASTLSTM_DEFINE_TRANSPOSE_BLOCK(float, f32, FASTLSTM_TRANSPOSE_SIDE_F32)
FASTLSTM_DEFINE_TRANSPOSE_BLOCK(double, f64, FASTLSTM_TRANSPOSE_SIDE_F64)
#undef FASTLSTM_DEFINE_TRANSPOSE_BLOCK
#endif

#define FASTLSTM_DEFINE_TRANSPOSE(T, SFX, SIDE)                                \
static FASTLSTM_NOINLINE void fastlstm_transpose_rows_##SFX(                   \
    const T *const *rows, ptrdiff_t n_rows, ptrdiff_t width, T *a)             \
{                                                                              \
    for (ptrdiff_t i0 = 0; i0 < width; i0 += FASTLSTM_TRANSPOSE_COLUMNS) {     \
        const ptrdiff_t i1 = width - i0 < FASTLSTM_TRANSPOSE_COLUMNS ?         \
            width : i0 + FASTLSTM_TRANSPOSE_COLUMNS;                           \
        ptrdiff_t q = 0;                                                       \
        for (; q + SIDE <= n_rows; q += SIDE) {                                \
            ptrdiff_t i = i0;                                                  \
            for (; i + SIDE <= i1; i += SIDE)                                  \
                fastlstm_transpose_block_##SFX(rows + q, i, a + i * n_rows + q, n_rows); \
            for (; i < i1; ++i)                                                \
                for (ptrdiff_t s = 0; s < SIDE; ++s)                           \
                    a[i * n_rows + q + s] = rows[q + s][i];                    \
        }                                                                      \
        for (; q < n_rows; ++q)                                                \
            for (ptrdiff_t i = i0; i < i1; ++i)                                \
                a[i * n_rows + q] = rows[q][i];                                \
    }                                                                          \
}

FASTLSTM_DEFINE_TRANSPOSE(float, f32, FASTLSTM_TRANSPOSE_SIDE_F32)
FASTLSTM_DEFINE_TRANSPOSE(double, f64, FASTLSTM_TRANSPOSE_SIDE_F64)
#undef FASTLSTM_DEFINE_TRANSPOSE

#endif

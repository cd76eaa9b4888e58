/*
 * Runtime dispatch of the SIMD kernels (the cells' row kernels, the small
 * matrix product and dot products, the finiteness check, the fingerprint).
 *
 * A portable build may not assume AVX2 (no -march=native), yet these loops
 * are worth 2-8x more with wide vectors. So the kernels are compiled once per
 * level under `#pragma GCC target` and the best level the CPU supports is
 * chosen at run time. Lower levels stay callable so the tests can check each
 * against the reference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "aligned_memory.h"  /* FASTLSTM_CACHE_LINE */
#include "cell.h"
#include "cell_row_loop.h"
#include "simd.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FASTLSTM_X86_DISPATCH 1
#else
#define FASTLSTM_X86_DISPATCH 0
#endif

#if FASTLSTM_X86_DISPATCH
#include <immintrin.h>
#endif

/*
 * Per level: SIMD_NAME names its copies; SIMD_VECTOR_BYTES is its vector;
 * SIMD_TILE_VECTORS x SIMD_TILE_ROWS its product tile (matmul_impl.h).
 * On x86, SIMD_X86(op) names the level's intrinsic _mm*_op and SIMD_RCP_F32
 * its reciprocal estimate (vmath_impl.h); elsewhere the kernels use
 * plain vector arithmetic.
 */
#define SIMD_NAME(name) name##_baseline
#define SIMD_VECTOR_BYTES 16
#if FASTLSTM_X86_DISPATCH
#define SIMD_X86(op) _mm_##op
#define SIMD_RCP_F32 SIMD_X86(rcp_ps)
#endif
#define SIMD_TILE_VECTORS 2
#define SIMD_TILE_ROWS 4
#include "simd_level.h"

#if FASTLSTM_X86_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define SIMD_NAME(name) name##_avx2
#define SIMD_VECTOR_BYTES 32
#define SIMD_TILE_VECTORS 2
#define SIMD_TILE_ROWS 6
#define SIMD_X86(op) _mm256_##op
#define SIMD_RCP_F32 SIMD_X86(rcp_ps)
#include "simd_level.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512")
#define SIMD_NAME(name) name##_avx512
#define SIMD_VECTOR_BYTES 64
#define SIMD_TILE_VECTORS 4
#define SIMD_TILE_ROWS 6
#define SIMD_X86(op) _mm512_##op
#define SIMD_RCP_F32 SIMD_X86(rcp14_ps)
#include "simd_level.h"
#pragma GCC pop_options
#endif

#define PRODUCTS(sfx)                                                          \
    { fastlstm_matmul_f32_##sfx, fastlstm_matmul_f64_##sfx,                    \
      fastlstm_pack_f32_##sfx, fastlstm_pack_f64_##sfx,                        \
      fastlstm_matmul_packed_f32_##sfx, fastlstm_matmul_packed_f64_##sfx,      \
      fastlstm_matmul_grad_f32_##sfx, fastlstm_matmul_grad_f64_##sfx,          \
      fastlstm_matmul_dot_f32_##sfx, fastlstm_matmul_dot_f64_##sfx,            \
      fastlstm_dot_columns_f32_##sfx, fastlstm_dot_columns_f64_##sfx,          \
      fastlstm_all_finite_f32_##sfx, fastlstm_all_finite_f64_##sfx,            \
      fastlstm_fingerprint_##sfx }

static const fastlstm_products product_table[] = {
    PRODUCTS(baseline),
#if FASTLSTM_X86_DISPATCH
    PRODUCTS(avx2),
    PRODUCTS(avx512),
#endif
};

/* A phase of blocks [first, first + n) whose row kernels are name_*. */
#define PHASE(first, n, operand, product, name, sfx)                           \
    { first, n, FASTLSTM_OPERAND_##operand, FASTLSTM_PRODUCT_##product,        \
      name##_forward_f32_##sfx, name##_forward_f64_##sfx,                      \
      name##_backward_f32_##sfx, name##_backward_f64_##sfx }

/* n_gates, has_cell_state, bias_rows, keeps_aux, peephole_rows, phases */
#define CELLS(sfx)                                                             \
    {                                                                          \
        {4, 1, 1, 0, 0, 1, {PHASE(0, 4, H_PREV, ADDED, lstm, sfx)}},           \
        {4, 1, 1, 0, 3, 1, {PHASE(0, 4, H_PREV, ADDED, peephole, sfx)}},       \
        {3, 0, 2, 1, 0, 1, {PHASE(0, 3, H_PREV, APART, gru_ra, sfx)}},         \
        {3, 0, 1, 1, 0, 2, {PHASE(0, 2, H_PREV, ADDED, gru_rb0, sfx),          \
                            PHASE(2, 1, AUX, ADDED, gru_rb1, sfx)}},           \
        {1, 0, 1, 0, 0, 1, {PHASE(0, 1, H_PREV, ADDED, rnn_tanh, sfx)}},       \
        {1, 0, 1, 0, 0, 1, {PHASE(0, 1, H_PREV, ADDED, rnn_relu, sfx)}},       \
    }

static const fastlstm_cell cell_table[][FASTLSTM_CELL_COUNT] = {
    CELLS(baseline),
#if FASTLSTM_X86_DISPATCH
    CELLS(avx2),
    CELLS(avx512),
#endif
};

static const char *const level_names[] = {
#if defined(__x86_64__)
    "sse2",
#else
    "baseline",
#endif
#if FASTLSTM_X86_DISPATCH
    "avx2",
    "avx512",
#endif
};

#define LEVEL_COUNT ((int)(sizeof(product_table) / sizeof(product_table[0])))

int fastlstm_simd_level_count(void) { return LEVEL_COUNT; }

const char *fastlstm_simd_level_name(int level)
{
    return (level >= 0 && level < LEVEL_COUNT) ? level_names[level] : "";
}

int fastlstm_simd_level_supported(int level)
{
    if (level < 0 || level >= LEVEL_COUNT)
        return 0;
#if FASTLSTM_X86_DISPATCH
    __builtin_cpu_init();
    if (level == 1)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (level == 2)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#endif
    return 1;
}

int fastlstm_simd_best_level(void)
{
    int level = LEVEL_COUNT - 1;
    while (level > 0 && !fastlstm_simd_level_supported(level))
        --level;
    return level;
}

fastlstm_products fastlstm_simd_products(int level)
{
    if (!fastlstm_simd_level_supported(level))
        level = 0;
    return product_table[level];
}

fastlstm_cell fastlstm_cell_kernels(int level, int cell)
{
    fastlstm_cell none = {0};
    if (cell < 0 || cell >= FASTLSTM_CELL_COUNT)
        return none;
    if (!fastlstm_simd_level_supported(level))
        level = 0;
    return cell_table[level][cell];
}

/*
 * The weight gradients' product packs b's row blocks when its rows are a page
 * or more apart, and when they are a multiple of 512 bytes apart: L1 has 64
 * sets of 64-byte lines, so rows 2 KiB apart put a block's 128 rows of one
 * panel (256 bytes each) into 8 sets, which hold 96 of its 512 lines, and
 * every chunk of a reloads the block from L2. Packing such strides measured
 * 1.04x faster training steps at (32, 100, 32, 128) and (1, 100, 128, 128)
 * in float32 (2 KiB) and at 64 units in float32 and 32 in float64 (1 KiB);
 * 1.00-1.01x at 512 bytes, 1.5 KiB and 2 KiB in float64.
 */
ptrdiff_t fastlstm_matmul_grad_scratch(ptrdiff_t n, ptrdiff_t ldb, ptrdiff_t itemsize)
{
    enum { PAGE = 4096, ALIASING_STRIDE = 512 };
    const ptrdiff_t stride = ldb * itemsize;
    const int packs = stride >= PAGE || stride % ALIASING_STRIDE == 0;
    return packs ? FASTLSTM_K_BLOCK * (n + FASTLSTM_PACK_EXTRA) : 0;
}

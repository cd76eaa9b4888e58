/*
 * Runtime dispatch of the SIMD kernels (gate math, small matrix product and
 * dot products, the finiteness check, the fingerprint).
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
#include "lstm_simd.h"

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
 * SIMD_TILE_VECTORS x SIMD_TILE_ROWS its product tile (lstm_matmul_impl.h).
 * On x86, SIMD_X86(op) names the level's intrinsic _mm*_op and SIMD_RCP_F32
 * its reciprocal estimate (lstm_gates_impl.h); elsewhere the kernels use
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
#include "lstm_simd_level.h"

#if FASTLSTM_X86_DISPATCH
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define SIMD_NAME(name) name##_avx2
#define SIMD_VECTOR_BYTES 32
#define SIMD_TILE_VECTORS 2
#define SIMD_TILE_ROWS 6
#define SIMD_X86(op) _mm256_##op
#define SIMD_RCP_F32 SIMD_X86(rcp_ps)
#include "lstm_simd_level.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512")
#define SIMD_NAME(name) name##_avx512
#define SIMD_VECTOR_BYTES 64
#define SIMD_TILE_VECTORS 4
#define SIMD_TILE_ROWS 6
#define SIMD_X86(op) _mm512_##op
#define SIMD_RCP_F32 SIMD_X86(rcp14_ps)
#include "lstm_simd_level.h"
#pragma GCC pop_options
#endif

#define KERNELS(sfx)                                                           \
    { lstm_gates_forward_f32_##sfx, lstm_gates_forward_f64_##sfx,              \
      lstm_gates_backward_f32_##sfx, lstm_gates_backward_f64_##sfx,            \
      lstm_matmul_f32_##sfx, lstm_matmul_f64_##sfx,                            \
      lstm_pack_f32_##sfx, lstm_pack_f64_##sfx,                                \
      lstm_matmul_packed_f32_##sfx, lstm_matmul_packed_f64_##sfx,              \
      lstm_matmul_grad_f32_##sfx, lstm_matmul_grad_f64_##sfx,                  \
      lstm_matmul_dot_f32_##sfx, lstm_matmul_dot_f64_##sfx,                    \
      lstm_dot_columns_f32_##sfx, lstm_dot_columns_f64_##sfx,                  \
      lstm_all_finite_f32_##sfx, lstm_all_finite_f64_##sfx,                    \
      lstm_fingerprint_##sfx }

static const lstm_simd_kernels kernel_table[] = {
    KERNELS(baseline),
#if FASTLSTM_X86_DISPATCH
    KERNELS(avx2),
    KERNELS(avx512),
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

#define LEVEL_COUNT ((int)(sizeof(kernel_table) / sizeof(kernel_table[0])))

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

lstm_simd_kernels fastlstm_simd_kernels(int level)
{
    if (!fastlstm_simd_level_supported(level))
        level = 0;
    return kernel_table[level];
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

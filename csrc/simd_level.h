/*
 * Compiles every SIMD kernel once for the level that SIMD_NAME,
 * SIMD_VECTOR_BYTES, SIMD_TILE_VECTORS, SIMD_TILE_ROWS and, on x86, SIMD_X86
 * and SIMD_RCP_F32 describe (see simd_dispatch.c), then forgets them.
 * simd_dispatch.c includes it once per level (inside that level's
 * `#pragma GCC target`); no include guard on purpose.
 */

/* One hardware vector of the level; the uvec types may sit at any address. */
typedef float SIMD_NAME(vec_f32) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
typedef double SIMD_NAME(vec_f64) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
typedef float SIMD_NAME(uvec_f32)
    __attribute__((vector_size(SIMD_VECTOR_BYTES), aligned(sizeof(float)), may_alias));
typedef double SIMD_NAME(uvec_f64)
    __attribute__((vector_size(SIMD_VECTOR_BYTES), aligned(sizeof(double)), may_alias));

#include "vmath_impl.h"
#include "cell_lstm_impl.h"
#include "cell_gru_impl.h"
#include "cell_rnn_impl.h"
#include "matmul_impl.h"
#include "dot_impl.h"
#include "finite_impl.h"
#include "fingerprint_impl.h"
#undef SIMD_NAME
#undef SIMD_VECTOR_BYTES
#undef SIMD_TILE_VECTORS
#undef SIMD_TILE_ROWS
#undef SIMD_RCP_F32
#undef SIMD_X86
#undef VF32
#undef VF64
#undef BITS32
#undef BITS64

/*
 * Compiles every SIMD kernel once for the level that SIMD_NAME,
 * SIMD_VECTOR_BYTES, SIMD_TILE_VECTORS, SIMD_TILE_ROWS and, on x86, SIMD_X86
 * and SIMD_RCP_F32 describe (see lstm_simd.c), then forgets them.
 * lstm_simd.c includes it once per level (inside that level's
 * `#pragma GCC target`); no include guard on purpose.
 */

/* One hardware vector of the level; the uvec types may sit at any address. */
typedef float SIMD_NAME(vec_f32) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
typedef double SIMD_NAME(vec_f64) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
typedef float SIMD_NAME(uvec_f32)
    __attribute__((vector_size(SIMD_VECTOR_BYTES), aligned(sizeof(float)), may_alias));
typedef double SIMD_NAME(uvec_f64)
    __attribute__((vector_size(SIMD_VECTOR_BYTES), aligned(sizeof(double)), may_alias));

#include "lstm_gates_impl.h"
#include "lstm_matmul_impl.h"
#include "lstm_dot_impl.h"
#include "lstm_finite_impl.h"
#include "lstm_fingerprint_impl.h"
#undef SIMD_NAME
#undef SIMD_VECTOR_BYTES
#undef SIMD_TILE_VECTORS
#undef SIMD_TILE_ROWS
#undef SIMD_RCP_F32
#undef SIMD_X86

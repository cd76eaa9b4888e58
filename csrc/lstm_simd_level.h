/*
 * Compiles every SIMD kernel once for the level that SIMD_NAME,
 * SIMD_VECTOR_BYTES, SIMD_TILE_VECTORS and SIMD_TILE_ROWS describe, then
 * forgets those four. lstm_simd.c includes it once per level (inside that
 * level's `#pragma GCC target`); no include guard on purpose.
 */
#include "lstm_gates_impl.h"
#include "lstm_matmul_impl.h"
#undef SIMD_NAME
#undef SIMD_VECTOR_BYTES
#undef SIMD_TILE_VECTORS
#undef SIMD_TILE_ROWS

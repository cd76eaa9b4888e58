/*
 * The SIMD kernels every recurrent cell shares, in float and double:
 *
 * - the small-M matrix product of each step (matmul_impl.h), and dot
 *   products for the last columns of the backward's products with
 *   transposed weights (dot_impl.h);
 * - for the argument checks, whether an array is all finite
 *   (finite_impl.h);
 * - and the fingerprint by which a cache sees its inputs change
 *   (fingerprint_impl.h).
 *
 * Each cell's gate math has its own row kernels (cell.h, cell_*_impl.h).
 * simd_dispatch.c compiles all of them once per instruction set (baseline,
 * AVX2+FMA, AVX-512) and picks one at run time, so a portable build still
 * runs the widest vectors the CPU has.
 */
#ifndef FASTLSTM_SIMD_H
#define FASTLSTM_SIMD_H

#include <stddef.h>
#include <stdint.h>

/*
 * c (m, n) = [c +] a (m, k) @ b (k, n), row-major with leading dimensions
 * lda, ldb, ldc; accumulate = 0 overwrites c. Each element is summed over k
 * in order, so a row's result does not depend on m.
 */
typedef void (*fastlstm_matmul_f32_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                   const float *a, ptrdiff_t lda, const float *b,
                                   ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate);
typedef void (*fastlstm_matmul_f64_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                   const double *a, ptrdiff_t lda, const double *b,
                                   ptrdiff_t ldb, double *c, ptrdiff_t ldc, int accumulate);

/*
 * c (m, n) = [c +] a (m, k) @ b (k, n) for a long k, rows lda and ldb apart:
 * the weight gradients' sums over all (batch, time) rows, a holding the
 * activations transposed (one row per feature). Each element is summed over
 * k in order, as in fastlstm_matmul, so cutting the columns into blocks of at
 * least one vector does not change a bit (a narrower block goes through a
 * scalar loop, which the compiler rounds differently). column_sums (n),
 * unless NULL, receives [column_sums +] the sum of each column of b over
 * its k rows, added in order: the bias gradient, taken while b passes
 * through the cache. scratch holds fastlstm_matmul_grad_scratch(n, ldb,
 * sizeof(element)) elements, best cache-line aligned; NULL (when that is 0)
 * reads b in place. Either way the bits are the same.
 */
typedef void (*fastlstm_matmul_grad_f32_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                        const float *a, ptrdiff_t lda, const float *b,
                                        ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                        int accumulate, float *column_sums, float *scratch);
typedef void (*fastlstm_matmul_grad_f64_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                        const double *a, ptrdiff_t lda, const double *b,
                                        ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                        int accumulate, double *column_sums,
                                        double *scratch);

/* Rows of B per k block of the products: one tile's width of them fills
   about 2/3 of L1. fastlstm_matmul_grad is fastest fed one block of its long k
   per call (a's block is then a copy that stays in cache). */
#define FASTLSTM_K_BLOCK 128

/*
 * The same product with B packed once by pack_* (B's k, n and ldb), so each
 * step streams B contiguously instead of striding through it row by row.
 * The packed copy takes at most k * (n + FASTLSTM_PACK_EXTRA) elements; the
 * packed product rounds exactly like the unpacked one.
 */
#define FASTLSTM_PACK_EXTRA 16
typedef void (*fastlstm_pack_f32_fn)(ptrdiff_t k, ptrdiff_t n, const float *b, ptrdiff_t ldb,
                                 float *packed);
typedef void (*fastlstm_pack_f64_fn)(ptrdiff_t k, ptrdiff_t n, const double *b, ptrdiff_t ldb,
                                 double *packed);
typedef void (*fastlstm_matmul_packed_f32_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                          const float *a, ptrdiff_t lda, const float *packed,
                                          float *c, ptrdiff_t ldc, int accumulate);
typedef void (*fastlstm_matmul_packed_f64_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                          const double *a, ptrdiff_t lda, const double *packed,
                                          double *c, ptrdiff_t ldc, int accumulate);

/*
 * c (m, n) = a (m, k) @ w^T for w (n, k), rows lda, ldw and ldc apart,
 * overwriting c: each element a dot product of a row of a and a row of w
 * (dot_impl.h), so a row's result does not depend on m. The backward
 * pass takes the last dot_columns(n, k) columns of its products with
 * transposed weights this way, and the others with fastlstm_matmul_packed.
 */
typedef void (*fastlstm_matmul_dot_f32_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                       const float *a, ptrdiff_t lda, const float *w,
                                       ptrdiff_t ldw, float *c, ptrdiff_t ldc);
typedef void (*fastlstm_matmul_dot_f64_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                       const double *a, ptrdiff_t lda, const double *w,
                                       ptrdiff_t ldw, double *c, ptrdiff_t ldc);
typedef ptrdiff_t (*fastlstm_dot_columns_fn)(ptrdiff_t n, ptrdiff_t k);
/* 1 when none of the n values is NaN or infinite, else 0. */
typedef int (*fastlstm_all_finite_f32_fn)(ptrdiff_t n, const float *values);
typedef int (*fastlstm_all_finite_f64_fn)(ptrdiff_t n, const double *values);

/*
 * A 64-bit hash of n bytes (fingerprint_impl.h): the same value at
 * every SIMD level. Lane j of FASTLSTM_FINGERPRINT_LANES mixes in the words
 * j, j + lanes, ...: xor, multiply by FNV's 64-bit prime, then fold the high
 * bits down (without the fold a change in a word's top bit would be undone
 * by the same change in the lane's next word). Each lane then goes through
 * the avalanche before it is mixed into the result. data may be NULL when n
 * is 0.
 */
#define FASTLSTM_FINGERPRINT_LANES 64
#define FASTLSTM_FINGERPRINT_PRIME UINT64_C(0x100000001b3)
#define FASTLSTM_FINGERPRINT_SEED UINT64_C(0xcbf29ce484222325)
typedef uint64_t (*fastlstm_fingerprint_fn)(ptrdiff_t n, const unsigned char *data);

static inline uint64_t fastlstm_fingerprint_mix(uint64_t state, uint64_t word)
{
    state = (state ^ word) * FASTLSTM_FINGERPRINT_PRIME;
    return state ^ (state >> 31);
}

/* MurmurHash3's 64-bit finalizer, a bijection in which every input bit
   reaches every output bit. A lane's mix carries a change of a word's high
   bits into few other bits, and without it different changes in different
   lanes collided in the final sum far above chance: of a 1067-byte buffer,
   flipping bit 61 of word 65 and flipping it in word 128 gave equal
   values, and flipping bit 63 in each pair of 133 words 52 collisions among
   the 8778 pairs. */
static inline uint64_t fastlstm_fingerprint_avalanche(uint64_t lane)
{
    lane ^= lane >> 33;
    lane *= UINT64_C(0xff51afd7ed558ccd);
    lane ^= lane >> 33;
    lane *= UINT64_C(0xc4ceb9fe1a85ec53);
    return lane ^ (lane >> 33);
}

typedef struct {
    fastlstm_matmul_f32_fn matmul_f32;
    fastlstm_matmul_f64_fn matmul_f64;
    fastlstm_pack_f32_fn pack_f32;
    fastlstm_pack_f64_fn pack_f64;
    fastlstm_matmul_packed_f32_fn matmul_packed_f32;
    fastlstm_matmul_packed_f64_fn matmul_packed_f64;
    fastlstm_matmul_grad_f32_fn matmul_grad_f32;
    fastlstm_matmul_grad_f64_fn matmul_grad_f64;
    fastlstm_matmul_dot_f32_fn matmul_dot_f32;
    fastlstm_matmul_dot_f64_fn matmul_dot_f64;
    fastlstm_dot_columns_fn dot_columns_f32;
    fastlstm_dot_columns_fn dot_columns_f64;
    fastlstm_all_finite_f32_fn all_finite_f32;
    fastlstm_all_finite_f64_fn all_finite_f64;
    fastlstm_fingerprint_fn fingerprint;
} fastlstm_products;

/* SIMD levels, lowest first. */
int fastlstm_simd_level_count(void);
const char *fastlstm_simd_level_name(int level);
int fastlstm_simd_level_supported(int level);
/* The level the dispatcher picked for this CPU (the best supported one). */
int fastlstm_simd_best_level(void);
fastlstm_products fastlstm_simd_products(int level);
/* Elements of fastlstm_matmul_grad's scratch for n columns of b whose rows are
   ldb elements of `itemsize` bytes apart: room to pack one k block of b when
   its rows are a page or more apart, or a multiple of 512 bytes (they would
   fall into few L1 sets; see simd_dispatch.c), else 0 (b is read in place). */
ptrdiff_t fastlstm_matmul_grad_scratch(ptrdiff_t n, ptrdiff_t ldb, ptrdiff_t itemsize);

#endif

/*
 * The backward pass' products with transposed weights, c = a @ w^T (dz_t
 * times the recurrent weights for dh, dz times the input weights for dx),
 * for the columns that whole vectors would mostly waste: each element is a
 * dot product of a row of a with a row of w (w^T's column, contiguous), so
 * both operands are read as vectors along k.
 *
 * Why: fastlstm_matmul_packed covers n columns with whole vectors, the last one
 * ending at column n, and a product narrower than one vector with a scalar
 * loop. Training steps with the dot products against without them, 1
 * thread: 8 and 10 units 1.33-1.44x faster (every column of dh a dot
 * product instead of the scalar loop); 50 units or features (float32 on
 * AVX-512: the last 2 of 50 columns, where a vector does 16 columns' work
 * for 2) 1.01-1.02x. Longer tails do not gain (see DOT_TAIL_MAX): the dot
 * products read a a second time and end in a sum across lanes, so they
 * cost about as much as the vector they would stand in for.
 *
 * Each element is `lanes` partial sums, lane q summing the terms p = q,
 * q + lanes, ... in order (the last k % lanes terms in a zero-padded
 * vector), then the lanes added in a fixed tree. So a row's result depends
 * on neither m nor the rows beside it, and the backward pass stays bitwise
 * the same for every thread count (not across SIMD levels, whose lanes
 * differ).
 *
 * Included per SIMD level by simd_level.h; no include guard on purpose.
 */

/* Rows and columns of c per block: DOT_ROWS * DOT_COLUMNS independent sums
   keep both FMA ports busy through the FMA's latency, and the block's
   accumulators and operands fit in 16 vector registers (AVX2's count). */
#define DOT_ROWS 4
#define DOT_COLUMNS 2
_Static_assert(DOT_ROWS * DOT_COLUMNS == 8, "lane_sums sums a block's 8 accumulators");
/* Dot products take the columns past a row's last whole vector when they
   are at most DOT_TAIL_MAX(lanes) of a vector's `lanes` and k >= DOT_MIN_K.
   Measured against the overlapping last vector (whole training steps, 1
   thread, with and without the dot products): 2 columns of 16 at k = 200
   and 400, 1.01-1.02x; 4 of 16, level; 2 of 16 at k = 72, 0.95x, as the
   dot products' second pass over a and their sums cost more than a short
   vector. */
#define DOT_TAIL_MAX(lanes) ((lanes) / 8)
#define DOT_MIN_K 128

#define DOT_BLOCK_CASE(SFX, rows, cols)                                        \
    case (rows) * DOT_COLUMNS + (cols):                                        \
        SIMD_NAME(dot_block_##SFX)(rows, cols, k, a + i * lda, lda, w + j * ldw, \
                                   ldw, c + i * ldc + j, ldc);                 \
        break;

/* The lanes of v added in a fixed tree: lane q and lane q + half, halving
   down to one lane. lane_sums below takes the same tree 8 vectors at a time
   where it is written out; this is the other levels' one at a time. */
#define FASTLSTM_DEFINE_LANE_SUM(T, SFX)                                       \
static inline T SIMD_NAME(lane_sum_##SFX)(SIMD_NAME(vec_##SFX) v)              \
{                                                                              \
    enum { LANES = SIMD_VECTOR_BYTES / sizeof(T) };                            \
    T x[LANES];                                                                \
    memcpy(x, &v, sizeof x);                                                   \
    for (int width = LANES / 2; width > 0; width /= 2)                         \
        for (int q = 0; q < width; ++q)                                        \
            x[q] += x[q + width];                                              \
    return x[0];                                                               \
}

FASTLSTM_DEFINE_LANE_SUM(float, f32)
FASTLSTM_DEFINE_LANE_SUM(double, f64)
#undef FASTLSTM_DEFINE_LANE_SUM

/* lane_sum of each of 8 vectors, out[i] the sum of acc[i], in the same tree
   (so the same bits) but 8 at a time: each step adds the halves of every
   vector's remaining lanes across two vectors at once. Written out for 16 and
   8 lanes; other widths take lane_sum one vector at a time. */
#define LANE_SUMS_BY_ONE(T, SFX)                                               \
    for (int i = 0; i < 8; ++i)                                                \
        out[i] = SIMD_NAME(lane_sum_##SFX)(acc[i]);

#define LANE_SUMS_16(V)                                                        \
    V u[4], w[2], z;                                                           \
    for (int i = 0; i < 4; ++i)                                                \
        u[i] = __builtin_shufflevector(acc[2 * i], acc[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, \
                                       16, 17, 18, 19, 20, 21, 22, 23)         \
             + __builtin_shufflevector(acc[2 * i], acc[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, \
                                       15, 24, 25, 26, 27, 28, 29, 30, 31);    \
    for (int i = 0; i < 2; ++i)                                                \
        w[i] = __builtin_shufflevector(u[2 * i], u[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, \
                                       16, 17, 18, 19, 24, 25, 26, 27)         \
             + __builtin_shufflevector(u[2 * i], u[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, \
                                       20, 21, 22, 23, 28, 29, 30, 31);        \
    z = __builtin_shufflevector(w[0], w[1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, \
                                24, 25, 28, 29)                                \
      + __builtin_shufflevector(w[0], w[1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, \
                                26, 27, 30, 31);                               \
    z = __builtin_shufflevector(z, z, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14) \
      + __builtin_shufflevector(z, z, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15); \
    for (int i = 0; i < 8; ++i)                                                \
        out[i] = z[i];

#define LANE_SUMS_8(V)                                                         \
    V u[4], w[2], z;                                                           \
    for (int i = 0; i < 4; ++i)                                                \
        u[i] = __builtin_shufflevector(acc[2 * i], acc[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) \
             + __builtin_shufflevector(acc[2 * i], acc[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15); \
    for (int i = 0; i < 2; ++i)                                                \
        w[i] = __builtin_shufflevector(u[2 * i], u[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) \
             + __builtin_shufflevector(u[2 * i], u[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15); \
    z = __builtin_shufflevector(w[0], w[1], 0, 2, 4, 6, 8, 10, 12, 14)         \
      + __builtin_shufflevector(w[0], w[1], 1, 3, 5, 7, 9, 11, 13, 15);        \
    for (int i = 0; i < 8; ++i)                                                \
        out[i] = z[i];

static inline void SIMD_NAME(lane_sums_f32)(const SIMD_NAME(vec_f32) acc[8], float out[8])
{
#if SIMD_VECTOR_BYTES == 64
    LANE_SUMS_16(SIMD_NAME(vec_f32))
#elif SIMD_VECTOR_BYTES == 32
    LANE_SUMS_8(SIMD_NAME(vec_f32))
#else
    LANE_SUMS_BY_ONE(float, f32)
#endif
}

static inline void SIMD_NAME(lane_sums_f64)(const SIMD_NAME(vec_f64) acc[8], double out[8])
{
#if SIMD_VECTOR_BYTES == 64
    LANE_SUMS_8(SIMD_NAME(vec_f64))
#else
    LANE_SUMS_BY_ONE(double, f64)
#endif
}
#undef LANE_SUMS_BY_ONE
#undef LANE_SUMS_16
#undef LANE_SUMS_8

#define FASTLSTM_DEFINE_DOT(T, SFX)                                            \
/* A rows x cols block of c, both constants after inlining, so that the     \
   sums live in registers. */                                                \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(dot_block_##SFX)(                                               \
    const int rows, const int cols, ptrdiff_t k, const T *restrict a,          \
    ptrdiff_t lda, const T *restrict w, ptrdiff_t ldw, T *restrict c,          \
    ptrdiff_t ldc)                                                             \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) vec;                                          \
    typedef SIMD_NAME(uvec_##SFX) uvec;                                        \
    enum { LANES = SIMD_VECTOR_BYTES / sizeof(T) };                            \
    const ptrdiff_t k_vectors = k - k % LANES, rest = k - k_vectors;           \
    vec acc[DOT_ROWS * DOT_COLUMNS] = {0}; /* all 8 go to lane_sums */         \
    vec wv[DOT_COLUMNS];                                                       \
    for (ptrdiff_t p = 0; p < k_vectors; p += LANES) {                         \
        for (int j = 0; j < cols; ++j)                                         \
            wv[j] = *(const uvec *)(w + j * ldw + p);                          \
        for (int r = 0; r < rows; ++r) {                                       \
            const vec av = *(const uvec *)(a + r * lda + p);                   \
            for (int j = 0; j < cols; ++j)                                     \
                acc[r * DOT_COLUMNS + j] += av * wv[j];                        \
        }                                                                      \
    }                                                                          \
    if (rest > 0) { /* the last k % LANES terms, zero-padded to a vector */    \
        for (int j = 0; j < cols; ++j) {                                       \
            wv[j] = (vec){0};                                                  \
            memcpy(&wv[j], w + j * ldw + k_vectors, rest * sizeof(T));         \
        }                                                                      \
        for (int r = 0; r < rows; ++r) {                                       \
            vec av = {0};                                                      \
            memcpy(&av, a + r * lda + k_vectors, rest * sizeof(T));            \
            for (int j = 0; j < cols; ++j)                                     \
                acc[r * DOT_COLUMNS + j] += av * wv[j];                        \
        }                                                                      \
    }                                                                          \
    T sums[DOT_ROWS * DOT_COLUMNS];                                            \
    SIMD_NAME(lane_sums_##SFX)(acc, sums);                                     \
    for (int r = 0; r < rows; ++r)                                             \
        for (int j = 0; j < cols; ++j)                                         \
            c[r * ldc + j] = sums[r * DOT_COLUMNS + j];                        \
}                                                                              \
                                                                               \
void SIMD_NAME(fastlstm_matmul_dot_##SFX)(                                         \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *w, ptrdiff_t ldw, T *c, ptrdiff_t ldc)                            \
{                                                                              \
    for (ptrdiff_t i = 0; i < m; i += DOT_ROWS) {                              \
        const ptrdiff_t rows = m - i < DOT_ROWS ? m - i : DOT_ROWS;            \
        for (ptrdiff_t j = 0; j < n; j += DOT_COLUMNS) {                       \
            const ptrdiff_t cols = n - j < DOT_COLUMNS ? n - j : DOT_COLUMNS;  \
            switch (rows * DOT_COLUMNS + cols) {                               \
            DOT_BLOCK_CASE(SFX, 4, 2) DOT_BLOCK_CASE(SFX, 4, 1)                \
            DOT_BLOCK_CASE(SFX, 3, 2) DOT_BLOCK_CASE(SFX, 3, 1)                \
            DOT_BLOCK_CASE(SFX, 2, 2) DOT_BLOCK_CASE(SFX, 2, 1)                \
            DOT_BLOCK_CASE(SFX, 1, 2) DOT_BLOCK_CASE(SFX, 1, 1)                \
            default: break;                                                    \
            }                                                                  \
        }                                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
/* How many of the last of n columns of a @ w^T (w with k columns)        \
   fastlstm_matmul_dot takes rather than fastlstm_matmul_packed: all when n is       \
   narrower than a vector (else a scalar loop takes them); those past the    \
   last whole vector when they are at most DOT_TAIL_MAX of its lanes and k   \
   is at least DOT_MIN_K; else none. */                                      \
ptrdiff_t SIMD_NAME(fastlstm_dot_columns_##SFX)(ptrdiff_t n, ptrdiff_t k)          \
{                                                                              \
    enum { LANES = SIMD_VECTOR_BYTES / sizeof(T) };                            \
    if (n < LANES)                                                             \
        return n;                                                              \
    return n % LANES <= DOT_TAIL_MAX(LANES) && k >= DOT_MIN_K ? n % LANES : 0; \
}

FASTLSTM_DEFINE_DOT(float, f32)
FASTLSTM_DEFINE_DOT(double, f64)
#undef FASTLSTM_DEFINE_DOT
#undef DOT_BLOCK_CASE
#undef DOT_ROWS
#undef DOT_COLUMNS
#undef DOT_TAIL_MAX
#undef DOT_MIN_K

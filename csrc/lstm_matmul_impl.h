/*
 * Small-M matrix product for the recurrent step: C (m, n) = [C +] A (m, k) @ B (k, n),
 * all row-major, m being a batch chunk (a few to a few dozen rows).
 *
 * Why not BLAS: a BLAS call repacks B (the recurrent weights) every time,
 * which at these m costs more than the multiply, and BLAS rounds a row
 * differently depending on m. Here B is read in place, the tile of C stays
 * in registers across the k loop, and every element is summed over k in
 * order in one accumulator, so a row's result never depends on the rows
 * beside it (or on the thread that computes it).
 *
 * Included per SIMD level by lstm_simd.c with SIMD_NAME, SIMD_VECTOR_BYTES
 * (one hardware vector), SIMD_TILE_VECTORS (vectors per tile row) and
 * SIMD_TILE_ROWS (rows per tile, at most 7) defined; a tile's accumulators
 * must fit in the level's vector registers. No include guard on purpose.
 */

#define TILE_ROWS SIMD_TILE_ROWS
#define MAX_TILE_ROWS 8 /* accumulator array size, so every remainder case is valid */

#define REMAINDER_CASE(SFX, n)                                                 \
    case n: SIMD_NAME(matmul_tile_##SFX)(n, nvec, k, a + i * lda, lda, b, ldb, \
                                         c + i * ldc, ldc, accumulate); break;

#define FASTLSTM_DEFINE_MATMUL(T, SFX)                                         \
typedef T SIMD_NAME(vec_##SFX) __attribute__((vector_size(SIMD_VECTOR_BYTES))); \
typedef T SIMD_NAME(uvec_##SFX)                                                \
    __attribute__((vector_size(SIMD_VECTOR_BYTES), aligned(sizeof(T)), may_alias)); \
                                                                               \
/* One tile: `rows` rows x `nvec` vectors of C; both are constants after      \
   inlining, so the accumulators live in registers. */                        \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_tile_##SFX)(                                             \
    const int rows, const int nvec, ptrdiff_t k,                               \
    const T *restrict a, ptrdiff_t lda, const T *restrict b, ptrdiff_t ldb,    \
    T *restrict c, ptrdiff_t ldc, int accumulate)                              \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) vec;                                          \
    typedef SIMD_NAME(uvec_##SFX) uvec;                                        \
    const int lanes = SIMD_VECTOR_BYTES / sizeof(T);                           \
    vec acc[MAX_TILE_ROWS][SIMD_TILE_VECTORS];                                 \
    for (int r = 0; r < rows; ++r)                                             \
        for (int v = 0; v < nvec; ++v)                                         \
            acc[r][v] = accumulate ? (vec)*(const uvec *)(c + r * ldc + v * lanes) \
                                   : (vec){0};                                 \
    for (ptrdiff_t p = 0; p < k; ++p) {                                        \
        vec bv[SIMD_TILE_VECTORS];                                             \
        for (int v = 0; v < nvec; ++v)                                         \
            bv[v] = *(const uvec *)(b + p * ldb + v * lanes);                  \
        for (int r = 0; r < rows; ++r) {                                       \
            T s = a[r * lda + p];                                              \
            for (int v = 0; v < nvec; ++v)                                     \
                acc[r][v] += s * bv[v];                                        \
        }                                                                      \
    }                                                                          \
    for (int r = 0; r < rows; ++r)                                             \
        for (int v = 0; v < nvec; ++v)                                         \
            *(uvec *)(c + r * ldc + v * lanes) = acc[r][v];                    \
}                                                                              \
                                                                               \
/* All row groups of one column panel of `nvec` vectors. */                   \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_panel_##SFX)(                                            \
    const int nvec, ptrdiff_t m, ptrdiff_t k, const T *a, ptrdiff_t lda,       \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate)            \
{                                                                              \
    ptrdiff_t i = 0;                                                           \
    for (; i + TILE_ROWS <= m; i += TILE_ROWS)                                 \
        SIMD_NAME(matmul_tile_##SFX)(TILE_ROWS, nvec, k, a + i * lda, lda, b,  \
                                     ldb, c + i * ldc, ldc, accumulate);       \
    switch (m - i) { /* the rows left over, fewer than TILE_ROWS */            \
    REMAINDER_CASE(SFX, 7) REMAINDER_CASE(SFX, 6) REMAINDER_CASE(SFX, 5)       \
    REMAINDER_CASE(SFX, 4) REMAINDER_CASE(SFX, 3) REMAINDER_CASE(SFX, 2)       \
    REMAINDER_CASE(SFX, 1)                                                     \
    default: break;                                                            \
    }                                                                          \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_columns_##SFX)(                                          \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate)            \
{                                                                              \
    const ptrdiff_t lanes = SIMD_VECTOR_BYTES / sizeof(T);                     \
    const ptrdiff_t panel = SIMD_TILE_VECTORS * lanes;                         \
    ptrdiff_t j = 0;                                                           \
    for (; j + panel <= n; j += panel)                                         \
        SIMD_NAME(matmul_panel_##SFX)(SIMD_TILE_VECTORS, m, k, a, lda, b + j,  \
                                      ldb, c + j, ldc, accumulate);            \
    for (; j + lanes <= n; j += lanes)                                         \
        SIMD_NAME(matmul_panel_##SFX)(1, m, k, a, lda, b + j, ldb, c + j, ldc, \
                                      accumulate);                             \
    if (j < n && n >= lanes) {                                                 \
        /* Fewer than a vector of columns left: compute the vector that ends  \
           at column n into a buffer and keep only its new columns. */        \
        enum { GROUP = 64 };                                                   \
        T buffer[GROUP * SIMD_VECTOR_BYTES / sizeof(T)];                       \
        const ptrdiff_t start = n - lanes;                                     \
        for (ptrdiff_t i = 0; i < m; i += GROUP) {                             \
            const ptrdiff_t rows = m - i < GROUP ? m - i : GROUP;              \
            for (ptrdiff_t r = 0; r < rows && accumulate; ++r)                 \
                for (ptrdiff_t q = 0; q < lanes; ++q)                          \
                    buffer[r * lanes + q] = c[(i + r) * ldc + start + q];      \
            SIMD_NAME(matmul_panel_##SFX)(1, rows, k, a + i * lda, lda,        \
                                          b + start, ldb, buffer, lanes,       \
                                          accumulate);                         \
            for (ptrdiff_t r = 0; r < rows; ++r)                               \
                for (ptrdiff_t q = j - start; q < lanes; ++q)                  \
                    c[(i + r) * ldc + start + q] = buffer[r * lanes + q];      \
        }                                                                      \
        j = n;                                                                 \
    }                                                                          \
    /* Narrower than one vector: the same sum, one lane at a time. */         \
    for (; j < n; ++j)                                                         \
        for (ptrdiff_t r = 0; r < m; ++r) {                                    \
            T acc = accumulate ? c[r * ldc + j] : (T)0;                        \
            for (ptrdiff_t p = 0; p < k; ++p)                                  \
                acc += a[r * lda + p] * b[p * ldb + j];                        \
            c[r * ldc + j] = acc;                                              \
        }                                                                      \
}                                                                              \
                                                                               \
/* k is cut into blocks so that a panel of B (K_BLOCK rows of one tile's      \
   width) stays in L1 while every row tile uses it. A partial sum stored to   \
   c and reloaded is exact, so blocking does not change any rounding. */      \
void SIMD_NAME(lstm_matmul_##SFX)(                                             \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate)            \
{                                                                              \
    enum { K_BLOCK = 128 };                                                     \
    for (ptrdiff_t p = 0; p < k; p += K_BLOCK) {                               \
        ptrdiff_t kb = k - p < K_BLOCK ? k - p : K_BLOCK;                      \
        SIMD_NAME(matmul_columns_##SFX)(m, n, kb, a + p, lda, b + p * ldb,     \
                                        ldb, c, ldc, p > 0 || accumulate);     \
    }                                                                          \
}

FASTLSTM_DEFINE_MATMUL(float, f32)
FASTLSTM_DEFINE_MATMUL(double, f64)
#undef FASTLSTM_DEFINE_MATMUL
#undef REMAINDER_CASE
#undef MAX_TILE_ROWS
#undef TILE_ROWS

/*
 * Small-M matrix product for the recurrent step: C (m, n) = [C +] A (m, k) @ B (k, n),
 * all row-major, m being a batch chunk (a few to a few dozen rows); and, with
 * a long k, the weight gradients' sums over all (batch, time) rows.
 *
 * Why not BLAS: a BLAS call repacks B (the recurrent weights) every time,
 * which at these m costs more than the multiply, and BLAS rounds a row
 * differently depending on m. Here B is read in place, the tile of C stays
 * in registers across the k loop, and every element is summed over k in
 * order in one accumulator, so a row's result never depends on the rows
 * beside it (or on the thread that computes it).
 *
 * Included per SIMD level by simd_dispatch.c with SIMD_NAME, SIMD_VECTOR_BYTES
 * (one hardware vector), SIMD_TILE_VECTORS (vectors per tile row) and
 * SIMD_TILE_ROWS (rows per tile, at most 7) defined; a tile's accumulators
 * must fit in the level's vector registers. No include guard on purpose.
 */

#define TILE_ROWS SIMD_TILE_ROWS
/* Accumulator array sizes, so that every case of the switches is valid. */
#define MAX_TILE_ROWS 8
#define MAX_TILE_VECTORS 4
_Static_assert(SIMD_TILE_ROWS < MAX_TILE_ROWS && SIMD_TILE_VECTORS <= MAX_TILE_VECTORS,
               "a tile larger than the accumulator arrays and the switches cover");
#define K_BLOCK FASTLSTM_K_BLOCK
#define CACHE_LINE FASTLSTM_CACHE_LINE
/* B is fetched ahead when it has at least this many bytes (half of L2). */
#define FETCH_MIN_BYTES (1 << 20)
/* Bytes of b per column block of the weight-gradient product (half of L2). */
#define GRAD_BLOCK_BYTES (1 << 20)

#define TILE_CASE(SFX, n)                                                      \
    case n: SIMD_NAME(matmul_tile_##SFX)(n, nvec, k, a + i * lda, lda, b, ldb, \
                                         c + i * ldc, ldc, accumulate,         \
                                         fetch + CACHE_LINE * first_line,      \
                                         last_line - first_line, b_shift,      \
                                         c_shift); break;

/* A column group of n vectors (a constant, so its accumulators are
   registers; and so are the shifts of a group without a shifted vector, so
   that its tiles address B and C with no shift arithmetic); cases above the
   level's tile width are never taken. */
#define GROUP_CASE(SFX, n)                                                     \
    case n: if (n > SIMD_TILE_VECTORS) break;                                  \
        if (c_shift == 0)                                                      \
            SIMD_NAME(matmul_group_##SFX)(n, m, k, a, lda, rows, stride,      \
                                          c + v * lanes, ldc, accumulate,      \
                                          n == SIMD_TILE_VECTORS ? fetch_end : NULL, \
                                          0, 0);                               \
        else                                                                   \
            SIMD_NAME(matmul_group_##SFX)(n, m, k, a, lda, rows, stride,      \
                                          c + v * lanes, ldc, accumulate,      \
                                          n == SIMD_TILE_VECTORS ? fetch_end : NULL, \
                                          b_shift, c_shift);                   \
        break;

/* Vectors in the next column group when `left` of a row's vectors remain:
   a full panel, or all that are left. It depends on `left` alone, so a
   product over columns j0.. with j0 at a panel boundary groups them as the
   whole row's product does (the packed layout relies on it). */
static inline ptrdiff_t SIMD_NAME(group_vectors)(ptrdiff_t left)
{
    return left < SIMD_TILE_VECTORS ? left : SIMD_TILE_VECTORS;
}

/* Columns the last vector of the group of `nvec` vectors from vector v sits
   left of its place: nonzero only when it is the overlapping last vector of
   a row of n columns (n not a multiple of `lanes`), which ends at column n. */
static inline ptrdiff_t SIMD_NAME(group_shift)(ptrdiff_t v, ptrdiff_t nvec, ptrdiff_t n,
                                               ptrdiff_t lanes)
{
    const ptrdiff_t end = (v + nvec) * lanes;
    return end > n ? end - n : 0;
}

#define FASTLSTM_DEFINE_MATMUL(T, SFX)                                         \
/* One tile: `rows` rows x `nvec` vectors of C; both are constants after      \
   inlining, so the accumulators live in registers. The tile also fetches   \
   `fetch_lines` cache lines from `fetch` into L2, spread evenly over its k   \
   loop: issued in one burst they stall the tile on the memory system's      \
   queue (see matmul_group).                                                 \
   The last vector sits b_shift columns left of its place in b and c_shift   \
   in c (the overlapping last vector of a row, see matmul_columns). It then  \
   shares columns with the vector before it: both load them from c before    \
   either stores, and store the same sums. */                                \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_tile_##SFX)(                                             \
    const int rows, const int nvec, ptrdiff_t k,                               \
    const T *restrict a, ptrdiff_t lda, const T *restrict b, ptrdiff_t ldb,    \
    T *restrict c, ptrdiff_t ldc, int accumulate,                              \
    const char *fetch, ptrdiff_t fetch_lines, ptrdiff_t b_shift,               \
    ptrdiff_t c_shift)                                                         \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) vec;                                          \
    typedef SIMD_NAME(uvec_##SFX) uvec;                                        \
    const int lanes = SIMD_VECTOR_BYTES / sizeof(T);                           \
    ptrdiff_t b_at[MAX_TILE_VECTORS], c_at[MAX_TILE_VECTORS];                  \
    vec acc[MAX_TILE_ROWS][MAX_TILE_VECTORS];                                  \
    ptrdiff_t fetch_credit = 0; /* fetch_lines per step of p, k per line */   \
    for (int v = 0; v < nvec; ++v) {                                           \
        b_at[v] = v * lanes - (v == nvec - 1 ? b_shift : 0);                   \
        c_at[v] = v * lanes - (v == nvec - 1 ? c_shift : 0);                   \
    }                                                                          \
    for (int r = 0; r < rows; ++r)                                             \
        for (int v = 0; v < nvec; ++v)                                         \
            acc[r][v] = accumulate ? (vec)*(const uvec *)(c + r * ldc + c_at[v]) \
                                   : (vec){0};                                 \
    for (ptrdiff_t p = 0; p < k; ++p) {                                        \
        vec bv[MAX_TILE_VECTORS];                                              \
        for (fetch_credit += fetch_lines; fetch_credit >= k; fetch_credit -= k) { \
            __builtin_prefetch(fetch, 0, 2);                                   \
            fetch += CACHE_LINE;                                               \
        }                                                                      \
        for (int v = 0; v < nvec; ++v)                                         \
            bv[v] = *(const uvec *)(b + p * ldb + b_at[v]);                    \
        for (int r = 0; r < rows; ++r) {                                       \
            T s = a[r * lda + p];                                              \
            for (int v = 0; v < nvec; ++v)                                     \
                acc[r][v] += s * bv[v];                                        \
        }                                                                      \
    }                                                                          \
    for (int r = 0; r < rows; ++r)                                             \
        for (int v = 0; v < nvec; ++v)                                         \
            *(uvec *)(c + r * ldc + c_at[v]) = acc[r][v];                      \
}                                                                              \
                                                                               \
/* One row against two full column panels, b0's and b1's (rows of each      \
   `stride` apart), into c's columns 0..2 * panel. Each column's sum is the   \
   tile's, one accumulator over k in order, so the result is bitwise the     \
   same; but twice the independent accumulators keep both FMA ports busy,    \
   where one panel's are bound by the FMA latency. */                        \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_row_pair_##SFX)(                                         \
    ptrdiff_t k, const T *restrict a, const T *restrict b0,                    \
    const T *restrict b1, ptrdiff_t stride, T *restrict c, int accumulate)     \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) vec;                                          \
    typedef SIMD_NAME(uvec_##SFX) uvec;                                        \
    const int lanes = SIMD_VECTOR_BYTES / sizeof(T);                           \
    const int nvec = SIMD_TILE_VECTORS;                                        \
    vec acc[2 * SIMD_TILE_VECTORS];                                            \
    for (int v = 0; v < 2 * nvec; ++v)                                         \
        acc[v] = accumulate ? (vec)*(const uvec *)(c + v * lanes) : (vec){0};  \
    for (ptrdiff_t p = 0; p < k; ++p) {                                        \
        const T s = a[p];                                                      \
        for (int v = 0; v < nvec; ++v) {                                       \
            acc[v] += s * (vec)*(const uvec *)(b0 + p * stride + v * lanes);   \
            acc[nvec + v] += s * (vec)*(const uvec *)(b1 + p * stride + v * lanes); \
        }                                                                      \
    }                                                                          \
    for (int v = 0; v < 2 * nvec; ++v)                                         \
        *(uvec *)(c + v * lanes) = acc[v];                                     \
}                                                                              \
                                                                               \
/* All rows of one column panel of `nvec` vectors, in as few tiles as the    \
   tile height allows, of near-equal heights (no thin remainder tile). Each   \
   tile fetches its share of `fetch_lines` cache lines from `fetch` into L2   \
   (see matmul_group). */                                                    \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_panel_##SFX)(                                            \
    const int nvec, ptrdiff_t m, ptrdiff_t k, const T *a, ptrdiff_t lda,       \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate,            \
    const char *fetch, ptrdiff_t fetch_lines, ptrdiff_t b_shift,               \
    ptrdiff_t c_shift)                                                         \
{                                                                              \
    const ptrdiff_t tiles = (m + TILE_ROWS - 1) / TILE_ROWS;                   \
    for (ptrdiff_t t = 0; t < tiles; ++t) {                                    \
        const ptrdiff_t i = t * m / tiles;                                     \
        const ptrdiff_t first_line = t * fetch_lines / tiles;                  \
        const ptrdiff_t last_line = (t + 1) * fetch_lines / tiles;             \
        switch ((t + 1) * m / tiles - i) {                                     \
        TILE_CASE(SFX, 7) TILE_CASE(SFX, 6) TILE_CASE(SFX, 5)                  \
        TILE_CASE(SFX, 4) TILE_CASE(SFX, 3) TILE_CASE(SFX, 2)                  \
        TILE_CASE(SFX, 1)                                                      \
        default: break;                                                        \
        }                                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
/* Where the rows p.. of the column group starting at column `col` live, and   \
   their stride. Unpacked: inside B itself. Packed (packed_k = B's k > 0):     \
   each group is a (k, width) row-major block, the group that starts after    \
   `covered` columns at offset packed_k * covered (see fastlstm_pack). */         \
static inline __attribute__((always_inline))                                   \
const T *SIMD_NAME(group_rows_##SFX)(                                          \
    const T *b, ptrdiff_t ldb, ptrdiff_t packed_k, ptrdiff_t covered,          \
    ptrdiff_t col, ptrdiff_t p, ptrdiff_t width, ptrdiff_t *stride)            \
{                                                                              \
    if (packed_k > 0) {                                                        \
        *stride = width;                                                       \
        return b + packed_k * covered + p * width;                             \
    }                                                                          \
    *stride = ldb;                                                             \
    return b + p * ldb + col;                                                  \
}                                                                              \
                                                                               \
/* One column group of `nvec` vectors, its rows of B `stride` apart. k is    \
   cut into blocks so that the group's block of B (K_BLOCK rows of its width) \
   stays in L1 while every row tile uses it; a partial sum stored to c and    \
   reloaded is exact, so blocking changes no rounding. The blocks run inside  \
   the group: its columns of C stay in L2 between blocks, and packed B is     \
   read as one stream.                                                        \
   With fetch_end set, B is packed and the bytes after each block, up to      \
   fetch_end, are the next block in the order of use: they are fetched into   \
   L2 while the block is used, since B larger than L2 otherwise arrives from  \
   L3 at the speed of the first row tile's demand misses. */                  \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_group_##SFX)(                                            \
    const int nvec, ptrdiff_t m, ptrdiff_t k, const T *a, ptrdiff_t lda,       \
    const T *rows, ptrdiff_t stride, T *c, ptrdiff_t ldc, int accumulate,      \
    const T *fetch_end, ptrdiff_t b_shift, ptrdiff_t c_shift)                  \
{                                                                              \
    for (ptrdiff_t p = 0; p < k; p += K_BLOCK) {                               \
        const ptrdiff_t kb = k - p < K_BLOCK ? k - p : K_BLOCK;                \
        const T *next = rows + (p + kb) * stride;                              \
        ptrdiff_t fetch_lines = 0;                                             \
        if (fetch_end != NULL && next < fetch_end) {                           \
            ptrdiff_t bytes = (const char *)fetch_end - (const char *)next;    \
            if (bytes > kb * stride * (ptrdiff_t)sizeof(T))                    \
                bytes = kb * stride * (ptrdiff_t)sizeof(T);                    \
            fetch_lines = bytes / CACHE_LINE;                                  \
        }                                                                      \
        /* Two calls so that the tiles of a product that fetches nothing      \
           compile without the fetch loop (it cost 2-3% there). */            \
        if (fetch_lines > 0)                                                   \
            SIMD_NAME(matmul_panel_##SFX)(nvec, m, kb, a + p, lda, rows + p * stride, \
                                          stride, c, ldc, p > 0 || accumulate, \
                                          (const char *)next, fetch_lines,     \
                                          b_shift, c_shift);                   \
        else                                                                   \
            SIMD_NAME(matmul_panel_##SFX)(nvec, m, kb, a + p, lda, rows + p * stride, \
                                          stride, c, ldc, p > 0 || accumulate, \
                                          (const char *)next, 0, b_shift,      \
                                          c_shift);                            \
    }                                                                          \
}                                                                              \
                                                                               \
/* The row's shifted last vector in a group of its own: c (m, lanes) ends   \
   at column n, and the group before has written its first `lanes - fresh`    \
   columns already. Computed into a buffer, and only its `fresh` new columns  \
   kept, so that a k block never resumes from a column already finished.    */ \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_alone_##SFX)(                                            \
    ptrdiff_t m, ptrdiff_t k, const T *a, ptrdiff_t lda, const T *rows,        \
    ptrdiff_t stride, T *c, ptrdiff_t ldc, ptrdiff_t fresh, int accumulate)    \
{                                                                              \
    enum { GROUP = 64, LANES = SIMD_VECTOR_BYTES / sizeof(T) };                \
    T buffer[GROUP * LANES];                                                   \
    for (ptrdiff_t i = 0; i < m; i += GROUP) {                                 \
        const ptrdiff_t count = m - i < GROUP ? m - i : GROUP;                 \
        for (ptrdiff_t r = 0; r < count && accumulate; ++r)                    \
            memcpy(buffer + r * LANES, c + (i + r) * ldc, LANES * sizeof(T));  \
        SIMD_NAME(matmul_group_##SFX)(1, count, k, a + i * lda, lda, rows,     \
                                      stride, buffer, LANES, accumulate, NULL, \
                                      0, 0);                                   \
        for (ptrdiff_t r = 0; r < count; ++r)                                  \
            memcpy(c + (i + r) * ldc + LANES - fresh, buffer + r * LANES + LANES - fresh, \
                   fresh * sizeof(T));                                         \
    }                                                                          \
}                                                                              \
                                                                               \
/* Columns of C in groups of vectors (see group_vectors). When n is not a   \
   multiple of the vector, the last vector ends at column n, overlapping the  \
   one before it: in the same group it costs nothing (measured at 64 rows by  \
   50 columns: 1.3x faster than a half-panel group and a single-vector one   \
   for the tail); alone, it is computed into a buffer, since the group       \
   before has already written the overlap. When n is narrower than a vector,  \
   scalar columns. Rows p..p+k of B (a is already offset by p). fetch_end:    \
   see matmul_group (full panels only). Every group sums each column the same \
   way, so the grouping changes no bit. */                                   \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(matmul_columns_##SFX)(                                          \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, ptrdiff_t packed_k, ptrdiff_t p,                \
    T *c, ptrdiff_t ldc, int accumulate, const T *fetch_end)                   \
{                                                                              \
    const ptrdiff_t lanes = SIMD_VECTOR_BYTES / sizeof(T);                     \
    const ptrdiff_t panel = SIMD_TILE_VECTORS;                                 \
    const ptrdiff_t vectors = n >= lanes ? (n + lanes - 1) / lanes : 0;        \
    ptrdiff_t v = 0, stride;                                                   \
    const T *rows;                                                             \
    /* One row: no row tile to reuse B across, so k blocks gain nothing; two   \
       full panels at a time, neither holding a shifted last vector. */       \
    while (m == 1 && vectors - v >= 2 * panel + (n % lanes != 0)) {            \
        const ptrdiff_t j = v * lanes, next_j = j + panel * lanes;             \
        rows = SIMD_NAME(group_rows_##SFX)(b, ldb, packed_k, j, j, p, panel * lanes, &stride); \
        const T *next = SIMD_NAME(group_rows_##SFX)(b, ldb, packed_k, next_j, next_j, p, \
                                                    panel * lanes, &stride);   \
        SIMD_NAME(matmul_row_pair_##SFX)(k, a, rows, next, stride, c + j,      \
                                         accumulate);                          \
        v += 2 * panel;                                                        \
    }                                                                          \
    while (v < vectors) {                                                      \
        const ptrdiff_t nvec = SIMD_NAME(group_vectors)(vectors - v);          \
        const ptrdiff_t c_shift = SIMD_NAME(group_shift)(v, nvec, n, lanes);   \
        const ptrdiff_t b_shift = packed_k > 0 ? 0 : c_shift; /* packed: moved in place */ \
        if (nvec == 1 && c_shift > 0) {                                        \
            rows = SIMD_NAME(group_rows_##SFX)(b, ldb, packed_k, v * lanes, n - lanes, \
                                               p, lanes, &stride);             \
            SIMD_NAME(matmul_alone_##SFX)(m, k, a, lda, rows, stride,          \
                                          c + n - lanes, ldc, lanes - c_shift, \
                                          accumulate);                         \
            break;                                                             \
        }                                                                      \
        rows = SIMD_NAME(group_rows_##SFX)(b, ldb, packed_k, v * lanes, v * lanes, p, \
                                           nvec * lanes, &stride);            \
        switch (nvec) {                                                        \
        GROUP_CASE(SFX, 4) GROUP_CASE(SFX, 3) GROUP_CASE(SFX, 2)               \
        GROUP_CASE(SFX, 1)                                                     \
        default: break;                                                        \
        }                                                                      \
        v += nvec;                                                             \
    }                                                                          \
    /* Narrower than one vector: the same sum, one lane at a time. */         \
    if (vectors == 0) {                                                        \
        rows = SIMD_NAME(group_rows_##SFX)(b, ldb, packed_k, 0, 0, p, n, &stride); \
        for (ptrdiff_t col = 0; col < n; ++col)                                \
            for (ptrdiff_t r = 0; r < m; ++r) {                                \
                T acc = accumulate ? c[r * ldc + col] : (T)0;                  \
                for (ptrdiff_t q = 0; q < k; ++q)                              \
                    acc += a[r * lda + q] * rows[q * stride + col];            \
                c[r * ldc + col] = acc;                                        \
            }                                                                  \
    }                                                                          \
}                                                                              \
                                                                               \
void SIMD_NAME(fastlstm_matmul_##SFX)(                                             \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate)            \
{                                                                              \
    SIMD_NAME(matmul_columns_##SFX)(m, n, k, a, lda, b, ldb, 0, 0, c, ldc,     \
                                    accumulate, NULL);                         \
}                                                                              \
                                                                               \
/* B (k, n) into the packed layout: the column groups of matmul_columns in    \
   order, each as a contiguous (k, width) block, so the product streams it;   \
   the shifted last vector is copied from where it ends, at column n.  */     \
void SIMD_NAME(fastlstm_pack_##SFX)(ptrdiff_t k, ptrdiff_t n, const T *b,          \
                                ptrdiff_t ldb, T *packed)                      \
{                                                                              \
    const ptrdiff_t lanes = SIMD_VECTOR_BYTES / sizeof(T);                     \
    const ptrdiff_t vectors = n >= lanes ? (n + lanes - 1) / lanes : 0;        \
    if (vectors == 0)                                                          \
        for (ptrdiff_t p = 0; p < k; ++p)                                      \
            memcpy(packed + p * n, b + p * ldb, n * sizeof(T));                \
    for (ptrdiff_t v = 0, nvec; v < vectors; v += nvec) {                      \
        nvec = SIMD_NAME(group_vectors)(vectors - v);                          \
        const ptrdiff_t shift = SIMD_NAME(group_shift)(v, nvec, n, lanes);     \
        /* Columns of the group's vectors but the last, then where the last  \
           one starts in b. */                                                \
        const ptrdiff_t head = (nvec - 1) * lanes;                             \
        const ptrdiff_t last = v * lanes + head - shift;                       \
        T *dst = packed + k * v * lanes;                                       \
        for (ptrdiff_t p = 0; p < k; ++p) {                                    \
            T *row = dst + p * nvec * lanes;                                   \
            if (shift == 0) {                                                  \
                memcpy(row, b + p * ldb + v * lanes, nvec * lanes * sizeof(T)); \
                continue;                                                      \
            }                                                                  \
            memcpy(row, b + p * ldb + v * lanes, head * sizeof(T));            \
            memcpy(row + head, b + p * ldb + last, lanes * sizeof(T));         \
        }                                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
/* One block of fastlstm_matmul_grad's columns. Per block of K_BLOCK rows of b:  \
   b's block is packed into scratch, unless that is NULL (b is then read in   \
   place); a is taken M_CHUNK rows at a time, so that a chunk's block of a    \
   stays in L1 while b's block passes it. Either way each element is         \
   fastlstm_matmul's sum.                                                        \
   column_sums, unless NULL, gets [column_sums +] the sums of b's columns     \
   (the bias gradient), as a row of ones times each block while it is in     \
   cache: each sum is its column's values added in order. */                 \
static void SIMD_NAME(matmul_grad_columns_##SFX)(                              \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate,            \
    T *column_sums, T *b_packed)                                               \
{                                                                              \
    enum { M_CHUNK = 48 };                                                     \
    T ones[K_BLOCK];                                                           \
    for (ptrdiff_t q = 0; q < K_BLOCK; ++q)                                    \
        ones[q] = 1;                                                           \
    const ptrdiff_t chunks = (m + M_CHUNK - 1) / M_CHUNK;                      \
    for (ptrdiff_t p = 0; p < k; p += K_BLOCK) {                               \
        const ptrdiff_t kb = k - p < K_BLOCK ? k - p : K_BLOCK;                \
        /* This block of b as matmul_columns reads it: packed (its k = kb)    \
           or b itself from row p. */                                         \
        const T *block = b;                                                    \
        ptrdiff_t block_ldb = ldb, block_k = 0, block_p = p;                   \
        if (b_packed) {                                                        \
            SIMD_NAME(fastlstm_pack_##SFX)(kb, n, b + p * ldb, ldb, b_packed);     \
            block = b_packed;                                                  \
            block_ldb = 0;                                                     \
            block_k = kb;                                                      \
            block_p = 0;                                                       \
        }                                                                      \
        for (ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {                   \
            const ptrdiff_t i0 = chunk * m / chunks;                           \
            const ptrdiff_t mc = (chunk + 1) * m / chunks - i0;                \
            SIMD_NAME(matmul_columns_##SFX)(mc, n, kb, a + i0 * lda + p, lda,  \
                                            block, block_ldb, block_k, block_p, \
                                            c + i0 * ldc, ldc,                 \
                                            p > 0 || accumulate, NULL);        \
        }                                                                      \
        if (column_sums)                                                       \
            SIMD_NAME(matmul_columns_##SFX)(1, n, kb, ones, kb, block,         \
                                            block_ldb, block_k, block_p,       \
                                            column_sums, 0,                    \
                                            p > 0 || accumulate, NULL);        \
    }                                                                          \
}                                                                              \
                                                                               \
/* c (m, n) = [c +] a (m, k) @ b (k, n) for a long k: a weight gradient, the \
   sum over the (batch, time) rows of an activation (a holds it transposed,  \
   one row per feature) times its dz row; see matmul_grad_columns. The       \
   columns are taken in blocks whose K_BLOCK rows of b fill at most          \
   GRAD_BLOCK_BYTES, so that a block of b stays in L2 while every chunk of a \
   uses it (measured at 1024 units on 1 thread: 4096 columns in one block    \
   run 1.05-1.11x slower than in two). The blocks are cut at whole panels    \
   and the last one takes the ragged end, so no block is narrower than a     \
   vector: such a block would be summed by the scalar loop, which GCC rounds \
   differently. So cutting changes no bit. The blocks take turns with the   \
   scratch. */                                                               \
void SIMD_NAME(fastlstm_matmul_grad_##SFX)(                                        \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, int accumulate,            \
    T *column_sums, T *scratch)                                                \
{                                                                              \
    const ptrdiff_t width = GRAD_BLOCK_BYTES / (K_BLOCK * (ptrdiff_t)sizeof(T)); \
    const ptrdiff_t panel = SIMD_TILE_VECTORS * SIMD_VECTOR_BYTES / sizeof(T); \
    const ptrdiff_t panels = n / panel;                                        \
    ptrdiff_t blocks = (n + width - 1) / width;                                \
    if (blocks > panels)                                                       \
        blocks = panels > 1 ? panels : 1;                                      \
    for (ptrdiff_t i = 0; i < blocks; ++i) {                                   \
        const ptrdiff_t j0 = panel * (i * panels / blocks);                    \
        const ptrdiff_t j1 = i + 1 == blocks ? n : panel * ((i + 1) * panels / blocks); \
        SIMD_NAME(matmul_grad_columns_##SFX)(m, j1 - j0, k, a, lda, b + j0, ldb, \
                                             c + j0, ldc, accumulate,          \
                                             column_sums ? column_sums + j0 : NULL, \
                                             scratch);                         \
    }                                                                          \
}                                                                              \
                                                                               \
void SIMD_NAME(fastlstm_matmul_packed_##SFX)(                                      \
    ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t lda,          \
    const T *packed, T *c, ptrdiff_t ldc, int accumulate)                      \
{                                                                              \
    /* Fetched ahead when B is too large to stay in L2 and there is at least  \
       one full row tile (with fewer rows the fetches slowed the product). */ \
    const T *fetch_end = m >= TILE_ROWS &&                                     \
        k * n * (ptrdiff_t)sizeof(T) >= FETCH_MIN_BYTES ? packed + k * n : NULL; \
    SIMD_NAME(matmul_columns_##SFX)(m, n, k, a, lda, packed, 0, k, 0, c, ldc,  \
                                    accumulate, fetch_end);                    \
}

FASTLSTM_DEFINE_MATMUL(float, f32)
FASTLSTM_DEFINE_MATMUL(double, f64)
#undef FASTLSTM_DEFINE_MATMUL
#undef TILE_CASE
#undef GROUP_CASE
#undef FETCH_MIN_BYTES
#undef GRAD_BLOCK_BYTES
#undef CACHE_LINE
#undef K_BLOCK
#undef MAX_TILE_ROWS
#undef MAX_TILE_VECTORS
#undef TILE_ROWS


/*
 * LSTM row kernels (gate blocks i, f, g, o) and the peephole LSTM's.
 * simd_level.h includes this file once per SIMD level, each time under a
 * different `#pragma GCC target` and with SIMD_NAME(x) naming the copies
 * apart; there is deliberately no include guard.
 *
 * The math is written on whole vectors (GCC vector extensions), so every
 * unit goes through the same instructions in whichever lane it lands: a
 * row's tail is the vector that ends at its last unit, not a scalar loop.
 * That keeps the tail as fast as the body, and a unit's rounding does not
 * depend on where a slice of the row starts. sigmoid and tanh are
 * vmath_impl.h's.
 *
 * The forward pass is bound by latency more than by throughput: tanh(c)
 * waits on all four gates. forward_row therefore computes the next vector's
 * gates before this vector's state (measured 15-25% faster than in turn).
 */
/*
 * One template for both precisions: T is the element type, SFX the suffix
 * of vmath_impl.h's helpers.
 *
 * A kernel reads its operands at units [j, j + lanes) into vectors, computes
 * all outputs in registers, then stores them; the gate blocks are updated in
 * place. A row of n >= lanes units is covered by vectors at 0, lanes, ...
 * and, when lanes does not divide n, the vector at n - lanes: it overlaps
 * the one before, so it is computed before the loop overwrites its inputs
 * and stored after it, and the units in the overlap get the same bits twice.
 * A row narrower than one vector runs through a zero-padded copy.
 */
#define FASTLSTM_DEFINE_GATES(T, SFX)                                          \
enum { SIMD_NAME(lanes_##SFX) = SIMD_VECTOR_BYTES / sizeof(T) };               \
                                                                               \
static inline SIMD_NAME(vec_##SFX) SIMD_NAME(load_##SFX)(const T *p)             \
{                                                                              \
    return *(const SIMD_NAME(uvec_##SFX) *)p;                                  \
}                                                                              \
                                                                               \
static inline void SIMD_NAME(store_##SFX)(T *p, SIMD_NAME(vec_##SFX) v)          \
{                                                                              \
    *(SIMD_NAME(uvec_##SFX) *)p = v;                                           \
}                                                                              \
                                                                               \
/* The activated gates of one vector of units, from the pre-activations z   \
   and the bias (gate blocks `stride` apart). */                              \
typedef struct { SIMD_NAME(vec_##SFX) i, f, g, o; } SIMD_NAME(gates_##SFX);      \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(gates_##SFX)            \
SIMD_NAME(activate_vector_##SFX)(ptrdiff_t stride, const T *z, const T *bias)  \
{                                                                              \
    SIMD_NAME(gates_##SFX) out;                                                \
    out.i = SIMD_NAME(sigmoid_##SFX)(SIMD_NAME(load_##SFX)(z)                  \
                                     + SIMD_NAME(load_##SFX)(bias));           \
    out.f = SIMD_NAME(sigmoid_##SFX)(SIMD_NAME(load_##SFX)(z + stride)         \
                                     + SIMD_NAME(load_##SFX)(bias + stride));  \
    out.g = SIMD_NAME(tanh_##SFX)(SIMD_NAME(load_##SFX)(z + 2 * stride)        \
                                  + SIMD_NAME(load_##SFX)(bias + 2 * stride)); \
    out.o = SIMD_NAME(sigmoid_##SFX)(SIMD_NAME(load_##SFX)(z + 3 * stride)     \
                                     + SIMD_NAME(load_##SFX)(bias + 3 * stride)); \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(store_gates_##SFX)(SIMD_NAME(gates_##SFX) gates, ptrdiff_t stride, T *z) \
{                                                                              \
    SIMD_NAME(store_##SFX)(z, gates.i);                                        \
    SIMD_NAME(store_##SFX)(z + stride, gates.f);                               \
    SIMD_NAME(store_##SFX)(z + 2 * stride, gates.g);                           \
    SIMD_NAME(store_##SFX)(z + 3 * stride, gates.o);                           \
}                                                                              \
                                                                               \
/* c and h of one vector of units from its activated gates. */                \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(update_state_vector_##SFX)(SIMD_NAME(gates_##SFX) gates,             \
                                     const T *c_prev, T *c_out, T *h_out)      \
{                                                                              \
    SIMD_NAME(vec_##SFX) c = gates.f * SIMD_NAME(load_##SFX)(c_prev) + gates.i * gates.g; \
    SIMD_NAME(store_##SFX)(c_out, c);                                          \
    SIMD_NAME(store_##SFX)(h_out, gates.o * SIMD_NAME(tanh_##SFX)(c));         \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(forward_row_##SFX)(ptrdiff_t n, ptrdiff_t stride, T *z,              \
                             const T *bias, const T *c_prev, T *c_out,         \
                             T *h_out)                                         \
{                                                                              \
    const ptrdiff_t lanes = SIMD_NAME(lanes_##SFX);                            \
    const ptrdiff_t last = n - lanes;                                          \
    const int overlap = n % lanes != 0;                                        \
    SIMD_NAME(gates_##SFX) tail;                                               \
    if (overlap)                                                               \
        tail = SIMD_NAME(activate_vector_##SFX)(stride, z + last, bias + last); \
    /* Software-pipelined (see the top of this file). */                      \
    SIMD_NAME(gates_##SFX) gates = SIMD_NAME(activate_vector_##SFX)(stride, z, bias); \
    ptrdiff_t j = 0;                                                           \
    for (; j + 2 * lanes <= n; j += lanes) {                                   \
        SIMD_NAME(gates_##SFX) next =                                          \
            SIMD_NAME(activate_vector_##SFX)(stride, z + j + lanes, bias + j + lanes); \
        SIMD_NAME(store_gates_##SFX)(gates, stride, z + j);                    \
        SIMD_NAME(update_state_vector_##SFX)(gates, c_prev + j, c_out + j, h_out + j); \
        gates = next;                                                          \
    }                                                                          \
    SIMD_NAME(store_gates_##SFX)(gates, stride, z + j);                        \
    SIMD_NAME(update_state_vector_##SFX)(gates, c_prev + j, c_out + j, h_out + j); \
    if (overlap) {                                                             \
        SIMD_NAME(store_gates_##SFX)(tail, stride, z + last);                  \
        SIMD_NAME(update_state_vector_##SFX)(tail, c_prev + last, c_out + last, \
                                             h_out + last);                    \
    }                                                                          \
}                                                                              \
                                                                               \
static void SIMD_NAME(forward_short_##SFX)(                                    \
    ptrdiff_t n, ptrdiff_t stride, T *z, const T *bias, const T *c_prev,       \
    T *c_out, T *h_out)                                                        \
{                                                                              \
    enum { L = SIMD_NAME(lanes_##SFX) };                                       \
    T zb[4 * L] = {0}, bb[4 * L] = {0}, cb[L] = {0}, co[L], ho[L];             \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        for (int gate = 0; gate < 4; ++gate) {                                 \
            zb[gate * L + j] = z[gate * stride + j];                           \
            bb[gate * L + j] = bias[gate * stride + j];                        \
        }                                                                      \
        cb[j] = c_prev[j];                                                     \
    }                                                                          \
    SIMD_NAME(forward_row_##SFX)(L, L, zb, bb, cb, co, ho);                    \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        for (int gate = 0; gate < 4; ++gate)                                   \
            z[gate * stride + j] = zb[gate * L + j];                           \
        c_out[j] = co[j];                                                      \
        h_out[j] = ho[j];                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void SIMD_NAME(lstm_gates_forward_##SFX)(                                      \
    ptrdiff_t n, ptrdiff_t stride, T *z, const T *bias, const T *c_prev,       \
    T *c_out, T *h_out)                                                        \
{                                                                              \
    if (n < SIMD_NAME(lanes_##SFX))                                            \
        SIMD_NAME(forward_short_##SFX)(n, stride, z, bias, c_prev, c_out, h_out); \
    else                                                                       \
        SIMD_NAME(forward_row_##SFX)(n, stride, z, bias, c_prev, c_out, h_out); \
}                                                                              \
                                                                               \
/* Backward operands of one vector of units (gate blocks n apart). */         \
typedef struct { SIMD_NAME(vec_##SFX) di, df, dg, do_, dc; }                     \
    SIMD_NAME(backward_out_##SFX);                                             \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(backward_out_##SFX)     \
SIMD_NAME(backward_vector_##SFX)(ptrdiff_t n, const T *gates, const T *c_prev, \
                                 const T *c_t, const T *dh, const T *dy,       \
                                 const T *dc, int has_dy)                      \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) V;                                              \
    V i = SIMD_NAME(load_##SFX)(gates), f = SIMD_NAME(load_##SFX)(gates + n);  \
    V g = SIMD_NAME(load_##SFX)(gates + 2 * n);                                \
    V o = SIMD_NAME(load_##SFX)(gates + 3 * n);                                \
    V tc = SIMD_NAME(tanh_##SFX)(SIMD_NAME(load_##SFX)(c_t));                  \
    V dh_t = SIMD_NAME(load_##SFX)(dh);                                        \
    if (has_dy)                                                                \
        dh_t = dh_t + SIMD_NAME(load_##SFX)(dy);                               \
    V dc_t = SIMD_NAME(load_##SFX)(dc) + dh_t * o * ((T)1 - tc * tc);          \
    SIMD_NAME(backward_out_##SFX) out;                                         \
    out.di = dc_t * g * i * ((T)1 - i);                                        \
    out.df = dc_t * SIMD_NAME(load_##SFX)(c_prev) * f * ((T)1 - f);            \
    out.dg = dc_t * i * ((T)1 - g * g);                                        \
    out.do_ = dh_t * tc * o * ((T)1 - o);                                      \
    out.dc = dc_t * f;                                                         \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(backward_store_##SFX)(SIMD_NAME(backward_out_##SFX) out,             \
                                ptrdiff_t n, T *gates, T *dc)                  \
{                                                                              \
    SIMD_NAME(store_##SFX)(gates, out.di);                                     \
    SIMD_NAME(store_##SFX)(gates + n, out.df);                                 \
    SIMD_NAME(store_##SFX)(gates + 2 * n, out.dg);                             \
    SIMD_NAME(store_##SFX)(gates + 3 * n, out.do_);                            \
    SIMD_NAME(store_##SFX)(dc, out.dc);                                        \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(backward_row_##SFX)(ptrdiff_t n, T *gates, const T *c_prev,          \
                              const T *c_t, const T *dh, const T *dy, T *dc,   \
                              int has_dy)                                      \
{                                                                              \
    const ptrdiff_t lanes = SIMD_NAME(lanes_##SFX);                            \
    const ptrdiff_t last = n - lanes;                                          \
    const int overlap = n % lanes != 0;                                        \
    SIMD_NAME(backward_out_##SFX) tail;                                        \
    if (overlap)                                                               \
        tail = SIMD_NAME(backward_vector_##SFX)(n, gates + last, c_prev + last, \
            c_t + last, dh + last, dy + last, dc + last, has_dy);              \
    for (ptrdiff_t j = 0; j + lanes <= n; j += lanes)                          \
        SIMD_NAME(backward_store_##SFX)(                                       \
            SIMD_NAME(backward_vector_##SFX)(n, gates + j, c_prev + j, c_t + j, \
                                             dh + j, dy + j, dc + j, has_dy),  \
            n, gates + j, dc + j);                                             \
    if (overlap)                                                               \
        SIMD_NAME(backward_store_##SFX)(tail, n, gates + last, dc + last);     \
}                                                                              \
                                                                               \
static void SIMD_NAME(backward_short_##SFX)(                                   \
    ptrdiff_t n, T *gates, const T *c_prev, const T *c_t, const T *dh,         \
    const T *dy, T *dc)                                                        \
{                                                                              \
    enum { L = SIMD_NAME(lanes_##SFX) };                                       \
    T gb[4 * L] = {0}, cpb[L] = {0}, ctb[L] = {0}, dhb[L] = {0}, dyb[L] = {0}; \
    T dcb[L] = {0};                                                            \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        for (int gate = 0; gate < 4; ++gate)                                   \
            gb[gate * L + j] = gates[gate * n + j];                            \
        cpb[j] = c_prev[j]; ctb[j] = c_t[j]; dhb[j] = dh[j]; dcb[j] = dc[j];   \
        dyb[j] = dy ? dy[j] : (T)0;                                            \
    }                                                                          \
    SIMD_NAME(backward_row_##SFX)(L, gb, cpb, ctb, dhb, dyb, dcb, dy != NULL); \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        for (int gate = 0; gate < 4; ++gate)                                   \
            gates[gate * n + j] = gb[gate * L + j];                            \
        dc[j] = dcb[j];                                                        \
    }                                                                          \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void SIMD_NAME(lstm_gates_backward_##SFX)(                                     \
    ptrdiff_t n, T *gates, const T *c_prev, const T *c_t, const T *dh,         \
    const T *dy, T *dc)                                                        \
{                                                                              \
    if (n < SIMD_NAME(lanes_##SFX))                                            \
        SIMD_NAME(backward_short_##SFX)(n, gates, c_prev, c_t, dh, dy, dc);    \
    else if (dy)                                                               \
        SIMD_NAME(backward_row_##SFX)(n, gates, c_prev, c_t, dh, dy, dc, 1);   \
    else                                                                       \
        SIMD_NAME(backward_row_##SFX)(n, gates, c_prev, c_t, dh, dh, dc, 0);   \
}

FASTLSTM_DEFINE_GATES(float, f32)
FASTLSTM_DEFINE_GATES(double, f64)
#undef FASTLSTM_DEFINE_GATES


/*
 * The LSTM as the driver calls it (cell.h), and the peephole LSTM: i and f
 * also see c_{t-1}, o sees c_t, through per-unit weights p (rows i, f, o):
 *   i = sigmoid(z_i + p_i * c_{t-1}), f = sigmoid(z_f + p_f * c_{t-1}),
 *   c_t = f * c_{t-1} + i * g, o = sigmoid(z_o + p_o * c_t).
 * Its gradients of p are sums over (batch, time) that the driver takes
 * after the recurrence, in a fixed order.
 */
#define FASTLSTM_DEFINE_LSTM_CELLS(T, SFX)                                     \
void SIMD_NAME(lstm_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,               \
                                   const fastlstm_forward_row *row)             \
{                                                                              \
    SIMD_NAME(lstm_gates_forward_##SFX)(n, stride, (T *)row->z, (const T *)row->bias, \
                                        (const T *)row->c_prev, (T *)row->c_out, \
                                        (T *)row->h_out);                      \
}                                                                              \
                                                                               \
void SIMD_NAME(lstm_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    SIMD_NAME(lstm_gates_backward_##SFX)(n, (T *)row->gates, (const T *)row->c_prev, \
                                         (const T *)row->c_t, (const T *)row->dh, \
                                         (const T *)row->dy, (T *)row->dc);     \
}                                                                              \
                                                                               \
typedef struct { SIMD_NAME(vec_##SFX) v[9]; } SIMD_NAME(peephole_in_##SFX);     \
typedef struct { SIMD_NAME(vec_##SFX) v[6]; } SIMD_NAME(peephole_out_##SFX);    \
typedef struct { const fastlstm_forward_row *row; ptrdiff_t s; }               \
    SIMD_NAME(peephole_fctx_##SFX);                                            \
typedef struct { const fastlstm_backward_row *row; ptrdiff_t s; }              \
    SIMD_NAME(peephole_bctx_##SFX);                                            \
                                                                               \
/* in: z_i..z_o (with bias), p_i p_f p_o, c_prev */                            \
static inline __attribute__((always_inline)) SIMD_NAME(peephole_in_##SFX)       \
SIMD_NAME(peephole_forward_load_##SFX)(SIMD_NAME(peephole_fctx_##SFX) c, ptrdiff_t j, \
                                       int single)                             \
{                                                                              \
    SIMD_NAME(peephole_in_##SFX) in;                                           \
    const T *z = (const T *)c.row->z, *b = (const T *)c.row->bias;             \
    const T *p = (const T *)c.row->peephole;                                   \
    for (int g = 0; g < 4; ++g)                                                \
        in.v[g] = SIMD_NAME(row_load_##SFX)(z + g * c.s, j, single)             \
                  + SIMD_NAME(row_load_##SFX)(b + g * c.s, j, single);          \
    for (int g = 0; g < 3; ++g)                                                \
        in.v[4 + g] = SIMD_NAME(row_load_##SFX)(p + g * c.s, j, single);        \
    in.v[7] = SIMD_NAME(row_load_##SFX)(c.row->c_prev, j, single);             \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: i, f, g, o, c, h */                                                    \
static inline __attribute__((always_inline)) SIMD_NAME(peephole_out_##SFX)      \
SIMD_NAME(peephole_forward_math_##SFX)(SIMD_NAME(peephole_in_##SFX) in)          \
{                                                                              \
    SIMD_NAME(peephole_out_##SFX) out;                                         \
    SIMD_NAME(vec_##SFX) c_prev = in.v[7];                                     \
    out.v[0] = SIMD_NAME(sigmoid_##SFX)(in.v[0] + in.v[4] * c_prev);           \
    out.v[1] = SIMD_NAME(sigmoid_##SFX)(in.v[1] + in.v[5] * c_prev);           \
    out.v[2] = SIMD_NAME(tanh_##SFX)(in.v[2]);                                 \
    out.v[4] = out.v[1] * c_prev + out.v[0] * out.v[2];                        \
    out.v[3] = SIMD_NAME(sigmoid_##SFX)(in.v[3] + in.v[6] * out.v[4]);         \
    out.v[5] = out.v[3] * SIMD_NAME(tanh_##SFX)(out.v[4]);                     \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(peephole_forward_store_##SFX)(SIMD_NAME(peephole_fctx_##SFX) c, ptrdiff_t j, \
                                        SIMD_NAME(peephole_out_##SFX) out, int single) \
{                                                                              \
    T *z = (T *)c.row->z;                                                      \
    for (int g = 0; g < 4; ++g)                                                \
        SIMD_NAME(row_store_##SFX)(z + g * c.s, j, out.v[g], single);           \
    SIMD_NAME(row_store_##SFX)(c.row->c_out, j, out.v[4], single);             \
    SIMD_NAME(row_store_##SFX)(c.row->h_out, j, out.v[5], single);             \
}                                                                              \
                                                                               \
void SIMD_NAME(peephole_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,           \
                                       const fastlstm_forward_row *row)         \
{                                                                              \
    SIMD_NAME(peephole_fctx_##SFX) c = {row, stride};                          \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(peephole_out_##SFX), \
                      SIMD_NAME(peephole_forward_load_##SFX),                  \
                      SIMD_NAME(peephole_forward_math_##SFX),                  \
                      SIMD_NAME(peephole_forward_store_##SFX), c);             \
}                                                                              \
                                                                               \
/* in: i f g o, p_i p_f p_o, c_prev, c_t; dh(+dy) and dc in out slots */      \
typedef struct { SIMD_NAME(vec_##SFX) v[11]; } SIMD_NAME(peephole_bin_##SFX);   \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(peephole_bin_##SFX)      \
SIMD_NAME(peephole_backward_load_##SFX)(SIMD_NAME(peephole_bctx_##SFX) c, ptrdiff_t j, \
                                        int single)                            \
{                                                                              \
    SIMD_NAME(peephole_bin_##SFX) in;                                          \
    const T *gates = (const T *)c.row->gates, *p = (const T *)c.row->peephole; \
    for (int g = 0; g < 4; ++g)                                                \
        in.v[g] = SIMD_NAME(row_load_##SFX)(gates + g * c.s, j, single);        \
    for (int g = 0; g < 3; ++g)                                                \
        in.v[4 + g] = SIMD_NAME(row_load_##SFX)(p + g * c.s, j, single);        \
    in.v[7] = SIMD_NAME(row_load_##SFX)(c.row->c_prev, j, single);             \
    in.v[8] = SIMD_NAME(row_load_##SFX)(c.row->c_t, j, single);                \
    in.v[9] = SIMD_NAME(row_load_##SFX)(c.row->dh, j, single);                 \
    if (c.row->dy)                                                             \
        in.v[9] = in.v[9] + SIMD_NAME(row_load_##SFX)(c.row->dy, j, single);   \
    in.v[10] = SIMD_NAME(row_load_##SFX)(c.row->dc, j, single);                \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: dz_i, dz_f, dz_g, dz_o, dc_prev */                                     \
static inline __attribute__((always_inline)) SIMD_NAME(peephole_out_##SFX)      \
SIMD_NAME(peephole_backward_math_##SFX)(SIMD_NAME(peephole_bin_##SFX) in)        \
{                                                                              \
    typedef SIMD_NAME(vec_##SFX) V;                                            \
    V i = in.v[0], f = in.v[1], g = in.v[2], o = in.v[3];                      \
    V dh = in.v[9], tc = SIMD_NAME(tanh_##SFX)(in.v[8]);                       \
    SIMD_NAME(peephole_out_##SFX) out;                                         \
    V d_o = dh * tc * o * ((T)1 - o);                                          \
    V dc = in.v[10] + dh * o * ((T)1 - tc * tc) + d_o * in.v[6];               \
    out.v[0] = dc * g * i * ((T)1 - i);                                        \
    out.v[1] = dc * in.v[7] * f * ((T)1 - f);                                  \
    out.v[2] = dc * i * ((T)1 - g * g);                                        \
    out.v[3] = d_o;                                                            \
    out.v[4] = dc * f + out.v[0] * in.v[4] + out.v[1] * in.v[5];               \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(peephole_backward_store_##SFX)(SIMD_NAME(peephole_bctx_##SFX) c, ptrdiff_t j, \
                                         SIMD_NAME(peephole_out_##SFX) out, int single) \
{                                                                              \
    T *gates = (T *)c.row->gates;                                              \
    for (int g = 0; g < 4; ++g)                                                \
        SIMD_NAME(row_store_##SFX)(gates + g * c.s, j, out.v[g], single);       \
    SIMD_NAME(row_store_##SFX)(c.row->dc, j, out.v[4], single);                \
}                                                                              \
                                                                               \
void SIMD_NAME(peephole_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    SIMD_NAME(peephole_bctx_##SFX) c = {row, n};                               \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(peephole_out_##SFX), \
                      SIMD_NAME(peephole_backward_load_##SFX),                 \
                      SIMD_NAME(peephole_backward_math_##SFX),                 \
                      SIMD_NAME(peephole_backward_store_##SFX), c);            \
}

FASTLSTM_DEFINE_LSTM_CELLS(float, f32)
FASTLSTM_DEFINE_LSTM_CELLS(double, f64)
#undef FASTLSTM_DEFINE_LSTM_CELLS

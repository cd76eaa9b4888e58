/*
 * Body of the gate kernels. lstm_simd.c includes this file once per SIMD
 * level (through lstm_simd_level.h), each time under a different
 * `#pragma GCC target` and with SIMD_NAME(x) naming the copies apart; there
 * is deliberately no include guard.
 *
 * The math is written on whole vectors (GCC vector extensions), so every
 * unit goes through the same instructions in whichever lane it lands: a
 * row's tail is the vector that ends at its last unit, not a scalar loop.
 * That keeps the tail as fast as the body, and a unit's rounding does not
 * depend on where a slice of the row starts.
 *
 * exp and tanh are our own so that nothing needs -ffast-math or a vector
 * math library: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2 / 2, a
 * fitted polynomial for expm1(r) (minimax in float, Chebyshev in double),
 * and 2**n built from the bits of the rounded n. The error stays within a
 * few ulp of float and double; expm1 keeps tanh accurate in relative terms
 * near zero.
 *
 * A float vector's five divisions are a reciprocal estimate (SIMD_RCP_F32,
 * 12 or 14 bits) refined by one Newton step where the level has one: two
 * fused multiply-adds instead of a divider that accepts a vector only every
 * 5-10 cycles. Double keeps true division.
 *
 * The forward pass is bound by latency more than by throughput: tanh(c)
 * waits on all four gates. forward_row therefore computes the next vector's
 * gates before this vector's state (measured 15-25% faster than in turn).
 */

#define VF32 SIMD_NAME(vec_f32)
#define VF64 SIMD_NAME(vec_f64)
typedef uint32_t SIMD_NAME(bits_f32) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
typedef uint64_t SIMD_NAME(bits_f64) __attribute__((vector_size(SIMD_VECTOR_BYTES)));
#define BITS32 SIMD_NAME(bits_f32)
#define BITS64 SIMD_NAME(bits_f64)

/* Lanes of a where mask (all ones or all zeros per lane) is set, else b. */
static inline VF32 SIMD_NAME(where_f32)(BITS32 mask, VF32 a, VF32 b)
{
    return (VF32)((mask & (BITS32)a) | (~mask & (BITS32)b));
}

static inline VF64 SIMD_NAME(where_f64)(BITS64 mask, VF64 a, VF64 b)
{
    return (VF64)((mask & (BITS64)a) | (~mask & (BITS64)b));
}

/*
 * x bounded to [low, high]; a NaN lane passes through. x86's max(a, b) and
 * min(a, b) return b when either is NaN, so x goes second.
 */
static inline VF32 SIMD_NAME(clamp_f32)(VF32 x, float low, float high)
{
    VF32 lo = (VF32){} + low, hi = (VF32){} + high;
#ifdef SIMD_X86
    return SIMD_X86(min_ps)(hi, SIMD_X86(max_ps)(lo, x));
#else
    x = SIMD_NAME(where_f32)((BITS32)(x < lo), lo, x);
    return SIMD_NAME(where_f32)((BITS32)(x > hi), hi, x);
#endif
}

/* min(x, high) for x >= 0 or NaN (tanh needs no lower bound). */
static inline VF32 SIMD_NAME(clamp_above_f32)(VF32 x, float high)
{
    VF32 hi = (VF32){} + high;
#ifdef SIMD_X86
    return SIMD_X86(min_ps)(hi, x);
#else
    return SIMD_NAME(where_f32)((BITS32)(x > hi), hi, x);
#endif
}

static inline VF64 SIMD_NAME(clamp_f64)(VF64 x, double low, double high)
{
    VF64 lo = (VF64){} + low, hi = (VF64){} + high;
#ifdef SIMD_X86
    return SIMD_X86(min_pd)(hi, SIMD_X86(max_pd)(lo, x));
#else
    x = SIMD_NAME(where_f64)((BITS64)(x < lo), lo, x);
    return SIMD_NAME(where_f64)((BITS64)(x > hi), hi, x);
#endif
}

/* |x| with the sign of s. */
static inline VF32 SIMD_NAME(with_sign_f32)(VF32 x, VF32 s)
{
    const BITS32 sign = (BITS32){} + 0x80000000u;
    return (VF32)(((BITS32)x & ~sign) | ((BITS32)s & sign));
}

static inline VF64 SIMD_NAME(with_sign_f64)(VF64 x, VF64 s)
{
    const BITS64 sign = (BITS64){} + 0x8000000000000000u;
    return (VF64)(((BITS64)x & ~sign) | ((BITS64)s & sign));
}

static inline VF32 SIMD_NAME(recip_f32)(VF32 d)
{
#ifdef SIMD_RCP_F32
    VF32 r = SIMD_RCP_F32(d);
    return r + r * (1.0f - d * r);
#else
    return 1.0f / d;
#endif
}

static inline VF64 SIMD_NAME(recip_f64)(VF64 d) { return 1.0 / d; }

/*
 * Returns expm1(r) for the reduced argument of sign * x and sets
 * *scale = 2**n, so that exp(sign * x) = scale + scale * expm1(r). sign is a
 * constant (-1 or 2) folded into the reduction. The float polynomial is a
 * minimax fit of (expm1(r) - r) / r**2 on |r| <= ln2 / 2 (relative error
 * 1.3e-8; float's epsilon is 1.2e-7); the double one, of degree 9, is a
 * Chebyshev fit (mpmath's chebyfit) on the same interval, relative error
 * 4.1e-17 (double's epsilon is 1.1e-16). With it, sigmoid and tanh are
 * within 2 ulp of mpmath's over [-40, 40], as accurate as with Taylor's
 * polynomial of degree 11 and two multiply-adds per exp cheaper: float64
 * training steps at (64, 60, 1, 50) run 1.02-1.03x faster than with
 * Taylor's. A fit of degree 8 is not accurate enough: 8 and 18 ulp from
 * NumPy's, where tests/test_simd_kernels.py allows 6.
 */
static inline __attribute__((always_inline))
VF32 SIMD_NAME(expm1_parts_f32)(VF32 x, const float sign, VF32 *scale)
{
    const VF32 shift = (VF32){} + 0x1.8p23f; /* adding it rounds to an integer */
    VF32 k = x * (sign * 1.44269504088896341f) + shift;
    VF32 n = k - shift;
    VF32 r = sign * x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    *scale = (VF32)(((BITS32)k + 127u) << 23); /* the low bits of k hold n */
    VF32 p = (VF32){} + 0x1.6bebf8p-10f;
    p = p * r + 0x1.12276ap-7f;
    p = p * r + 0x1.555674p-5f;
    p = p * r + 0x1.5554b0p-3f;
    p = p * r + 0x1.fffffep-2f;
    return r + r * r * p;
}

static inline __attribute__((always_inline))
VF64 SIMD_NAME(expm1_parts_f64)(VF64 x, const double sign, VF64 *scale)
{
    const VF64 shift = (VF64){} + 0x1.8p52;
    VF64 k = x * (sign * 1.44269504088896338700e+00) + shift;
    VF64 n = k - shift;
    VF64 r = sign * x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    *scale = (VF64)(((BITS64)k + 1023u) << 52);
    VF64 p = (VF64){} + 0x1.af389eeb9e5e9p-26;
    p = p * r + 0x1.28917ca046b86p-22;
    p = p * r + 0x1.71de0db2eafc6p-19;
    p = p * r + 0x1.a019b9148739fp-16;
    p = p * r + 0x1.a01a01a7c2f2ep-13;
    p = p * r + 0x1.6c16c17889f40p-10;
    p = p * r + 0x1.11111111109b5p-7;
    p = p * r + 0x1.5555555553d68p-5;
    p = p * r + 0x1.5555555555556p-3;
    p = p * r + 0x1.0000000000001p-1;
    return r + r * r * p;
}

/* The clamps keep 2**n a normal number. */
static inline VF32 SIMD_NAME(sigmoid_f32)(VF32 x)
{
    VF32 scale, p = SIMD_NAME(expm1_parts_f32)(SIMD_NAME(clamp_f32)(x, -88.0f, 87.0f), -1.0f,
                                               &scale);
    return SIMD_NAME(recip_f32)(1.0f + (scale + scale * p));
}

static inline VF64 SIMD_NAME(sigmoid_f64)(VF64 x)
{
    VF64 scale, p = SIMD_NAME(expm1_parts_f64)(SIMD_NAME(clamp_f64)(x, -708.0, 708.0), -1.0,
                                               &scale);
    return SIMD_NAME(recip_f64)(1.0 + (scale + scale * p));
}

/* tanh|x| = e / (e + 2) with e = expm1(2|x|); past the clamp (|x| = 9 in
   float, 20 in double) tanh rounds to 1. */
static inline VF32 SIMD_NAME(tanh_f32)(VF32 x)
{
    VF32 a = SIMD_NAME(with_sign_f32)(x, (VF32){});
    VF32 scale, p = SIMD_NAME(expm1_parts_f32)(SIMD_NAME(clamp_above_f32)(a, 9.0f), 2.0f, &scale);
    VF32 e = scale * p + (scale - 1.0f);
    return SIMD_NAME(with_sign_f32)(e * SIMD_NAME(recip_f32)(e + 2.0f), x);
}

static inline VF64 SIMD_NAME(tanh_f64)(VF64 x)
{
    VF64 a = SIMD_NAME(with_sign_f64)(x, (VF64){});
    VF64 scale, p = SIMD_NAME(expm1_parts_f64)(SIMD_NAME(clamp_f64)(a, 0.0, 20.0), 2.0, &scale);
    VF64 e = scale * p + (scale - 1.0);
    return SIMD_NAME(with_sign_f64)(e * SIMD_NAME(recip_f64)(e + 2.0), x);
}

/*
 * One template for both precisions: T is the element type, SFX the suffix
 * of the helpers above.
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
void SIMD_NAME(lstm_gates_forward_##SFX)(                                      \
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
void SIMD_NAME(lstm_gates_backward_##SFX)(                                     \
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
#undef VF32
#undef VF64
#undef BITS32
#undef BITS64

/*
 * Body of the gate kernels. lstm_simd.c includes this file once per SIMD
 * level, each time under a different `#pragma GCC target` and with
 * SIMD_NAME(x) naming the copies apart; there is deliberately no include
 * guard.
 *
 * exp and tanh are our own so that every loop below vectorizes without
 * -ffast-math or a vector math library: Cody-Waite range reduction
 * x = n ln2 + r, |r| <= ln2 / 2, a Taylor polynomial for expm1(r), and 2**n
 * built from the bits of the rounded n. The polynomial degrees keep the
 * error within about two ulp of float and double; expm1 keeps tanh
 * accurate in relative terms near zero.
 */

typedef union { float f; uint32_t u; } SIMD_NAME(bits32);
typedef union { double f; uint64_t u; } SIMD_NAME(bits64);

/* Returns expm1(r) for the reduced argument and sets *scale = 2**n. */
static inline float SIMD_NAME(expm1_parts_f32)(float x, float *scale)
{
    const float shift = 0x1.8p23f; /* adding it rounds to an integer */
    SIMD_NAME(bits32) k, s;
    k.f = x * 1.44269504088896341f + shift;
    float n = k.f - shift;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    s.u = (k.u + 127u) << 23; /* the low bits of k hold n */
    *scale = s.f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    return r + r * r * p;
}

static inline double SIMD_NAME(expm1_parts_f64)(double x, double *scale)
{
    const double shift = 0x1.8p52;
    SIMD_NAME(bits64) k, s;
    k.f = x * 1.44269504088896338700e+00 + shift;
    double n = k.f - shift;
    double r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    s.u = (k.u + 1023u) << 52;
    *scale = s.f;
    double p = 1.0 / 6227020800.0; /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return r + r * r * p;
}

/* The clamps keep 2**n a normal number; NaN passes through them. */
static inline float SIMD_NAME(sigmoid_f32)(float x)
{
    float u = -x;
    u = u < -87.0f ? -87.0f : u;
    u = u > 88.0f ? 88.0f : u;
    float scale;
    float p = SIMD_NAME(expm1_parts_f32)(u, &scale);
    return 1.0f / (1.0f + (scale + scale * p));
}

static inline double SIMD_NAME(sigmoid_f64)(double x)
{
    double u = -x;
    u = u < -708.0 ? -708.0 : u;
    u = u > 708.0 ? 708.0 : u;
    double scale;
    double p = SIMD_NAME(expm1_parts_f64)(u, &scale);
    return 1.0 / (1.0 + (scale + scale * p));
}

/* tanh|x| = e / (e + 2) with e = expm1(2|x|); past the clamp tanh rounds to 1. */
static inline float SIMD_NAME(tanh_f32)(float x)
{
    float a = 2.0f * __builtin_fabsf(x);
    a = a > 18.0f ? 18.0f : a;
    float scale;
    float p = SIMD_NAME(expm1_parts_f32)(a, &scale);
    float e = scale * p + (scale - 1.0f);
    return __builtin_copysignf(e / (e + 2.0f), x);
}

static inline double SIMD_NAME(tanh_f64)(double x)
{
    double a = 2.0 * __builtin_fabs(x);
    a = a > 40.0 ? 40.0 : a;
    double scale;
    double p = SIMD_NAME(expm1_parts_f64)(a, &scale);
    double e = scale * p + (scale - 1.0);
    return __builtin_copysign(e / (e + 2.0), x);
}

/*
 * One template for both precisions: T is the type, SFX the suffix of the
 * helpers above. The loops live in always-inline bodies whose parameters are
 * restrict (GCC honours restrict on parameters, not on local pointers):
 * without that, GCC versions the loops on run-time alias checks and ran the
 * scalar copy. Every access is unit-stride.
 */
#define FASTLSTM_DEFINE_GATES(T, SFX)                                          \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(gates_forward_body_##SFX)(                                      \
    ptrdiff_t n, T *restrict zi, T *restrict zf, T *restrict zg,               \
    T *restrict zo, const T *restrict bi, const T *restrict bf,                \
    const T *restrict bg, const T *restrict bo, const T *restrict c_prev,      \
    T *restrict c_out, T *restrict h_out)                                      \
{                                                                              \
    _Pragma("GCC ivdep")                                                       \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        T i = SIMD_NAME(sigmoid_##SFX)(zi[j] + bi[j]);                         \
        T f = SIMD_NAME(sigmoid_##SFX)(zf[j] + bf[j]);                         \
        T g = SIMD_NAME(tanh_##SFX)(zg[j] + bg[j]);                            \
        T o = SIMD_NAME(sigmoid_##SFX)(zo[j] + bo[j]);                         \
        T c = f * c_prev[j] + i * g;                                           \
        c_out[j] = c;                                                          \
        h_out[j] = o * SIMD_NAME(tanh_##SFX)(c);                               \
        zi[j] = i; zf[j] = f; zg[j] = g; zo[j] = o;                            \
    }                                                                          \
}                                                                              \
                                                                               \
void SIMD_NAME(lstm_gates_forward_##SFX)(                                      \
    ptrdiff_t n, ptrdiff_t stride, T *z, const T *bias, const T *c_prev,       \
    T *c_out, T *h_out)                                                        \
{                                                                              \
    SIMD_NAME(gates_forward_body_##SFX)(n, z, z + stride, z + 2 * stride,      \
        z + 3 * stride, bias, bias + stride, bias + 2 * stride,                \
        bias + 3 * stride, c_prev, c_out, h_out);                              \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline))                                   \
void SIMD_NAME(gates_backward_body_##SFX)(                                     \
    ptrdiff_t n, T *restrict gi, T *restrict gf, T *restrict gg,               \
    T *restrict go, const T *restrict c_prev, const T *restrict c_t,           \
    const T *restrict dh, const T *restrict dy, T *restrict dc, int has_dy)    \
{                                                                              \
    _Pragma("GCC ivdep")                                                       \
    for (ptrdiff_t j = 0; j < n; ++j) {                                        \
        T i = gi[j], f = gf[j], g = gg[j], o = go[j];                          \
        T tc = SIMD_NAME(tanh_##SFX)(c_t[j]);                                  \
        T dh_t = has_dy ? dh[j] + dy[j] : dh[j];                               \
        T dc_t = dc[j] + dh_t * o * ((T)1 - tc * tc);                          \
        gi[j] = dc_t * g * i * ((T)1 - i);                                     \
        gf[j] = dc_t * c_prev[j] * f * ((T)1 - f);                             \
        gg[j] = dc_t * i * ((T)1 - g * g);                                     \
        go[j] = dh_t * tc * o * ((T)1 - o);                                    \
        dc[j] = dc_t * f;                                                      \
    }                                                                          \
}                                                                              \
                                                                               \
void SIMD_NAME(lstm_gates_backward_##SFX)(                                     \
    ptrdiff_t n, T *gates, const T *c_prev, const T *c_t, const T *dh,         \
    const T *dy, T *dc)                                                        \
{                                                                              \
    T *gi = gates, *gf = gates + n, *gg = gates + 2 * n, *go = gates + 3 * n;  \
    if (dy)                                                                    \
        SIMD_NAME(gates_backward_body_##SFX)(n, gi, gf, gg, go, c_prev, c_t,   \
                                             dh, dy, dc, 1);                   \
    else                                                                       \
        SIMD_NAME(gates_backward_body_##SFX)(n, gi, gf, gg, go, c_prev, c_t,   \
                                             dh, dh, dc, 0);                   \
}

FASTLSTM_DEFINE_GATES(float, f32)
FASTLSTM_DEFINE_GATES(double, f64)
#undef FASTLSTM_DEFINE_GATES

/*
 * Vector math shared by every cell's gate kernels: sigmoid and tanh on whole
 * vectors (GCC vector extensions), clamps, blends and reciprocals.
 * simd_level.h includes this file once per SIMD level, each time under a
 * different `#pragma GCC target` and with SIMD_NAME(x) naming the copies
 * apart; there is deliberately no include guard. VF32, VF64, BITS32 and
 * BITS64 stay defined for the cell headers; simd_level.h undefines them.
 *
 * exp and tanh are our own so that nothing needs -ffast-math or a vector
 * math library: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2 / 2, a
 * fitted polynomial for expm1(r) (minimax in float, Chebyshev in double),
 * and 2**n built from the bits of the rounded n. The error stays within a
 * few ulp of float and double; expm1 keeps tanh accurate in relative terms
 * near zero.
 *
 * A float vector's divisions are a reciprocal estimate (SIMD_RCP_F32, 12 or
 * 14 bits) refined by one Newton step where the level has one: two fused
 * multiply-adds instead of a divider that accepts a vector only every 5-10
 * cycles. Double keeps true division.
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
 * Access to a row of units for the cells' row loops (cell_row_loop.h):
 * `single` reads unit j into every lane, and stores lane 0 to unit j, so a
 * row narrower than a vector runs through the same vector instructions as a
 * wide one, one unit at a time.
 */
#define FASTLSTM_DEFINE_ROW_ACCESS(T, SFX)                                     \
enum { SIMD_NAME(row_lanes_##SFX) = SIMD_VECTOR_BYTES / sizeof(T) };           \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(vec_##SFX)              \
SIMD_NAME(row_load_##SFX)(const void *row, ptrdiff_t j, int single)            \
{                                                                              \
    const T *p = (const T *)row + j;                                           \
    if (single)                                                                \
        return (SIMD_NAME(vec_##SFX)){} + *p;                                  \
    return *(const SIMD_NAME(uvec_##SFX) *)p;                                  \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(row_store_##SFX)(void *row, ptrdiff_t j, SIMD_NAME(vec_##SFX) v, int single) \
{                                                                              \
    T *p = (T *)row + j;                                                       \
    if (single)                                                                \
        *p = v[0];                                                             \
    else                                                                       \
        *(SIMD_NAME(uvec_##SFX) *)p = v;                                       \
}

FASTLSTM_DEFINE_ROW_ACCESS(float, f32)
FASTLSTM_DEFINE_ROW_ACCESS(double, f64)
#undef FASTLSTM_DEFINE_ROW_ACCESS

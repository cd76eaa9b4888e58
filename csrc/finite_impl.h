/*
 * Whether an array holds only finite values: the check_finite pass over the
 * inputs, run before any kernel. A value is NaN or infinite exactly when all
 * its exponent bits are set, so the test is an AND and a compare per lane,
 * with no floating-point operation that could raise or be slowed by a
 * subnormal. Several vectors per iteration keep the loop bound by the loads
 * (NumPy's isfinite(a).all() makes a boolean array and a second pass).
 *
 * Included per SIMD level by simd_level.h; no include guard on purpose.
 */

#define FINITE_UNROLL 4

#define FASTLSTM_DEFINE_FINITE(T, SFX, UINT, EXPONENT)                         \
int SIMD_NAME(fastlstm_all_finite_##SFX)(ptrdiff_t n, const T *values)             \
{                                                                              \
    typedef UINT bits_vec __attribute__((vector_size(SIMD_VECTOR_BYTES)));     \
    enum { LANES = SIMD_VECTOR_BYTES / sizeof(T) };                            \
    const bits_vec exponent = (bits_vec){} + (EXPONENT);                       \
    bits_vec seen = {0}, bits;                                                 \
    ptrdiff_t i = 0;                                                           \
    for (; i + FINITE_UNROLL * LANES <= n; i += FINITE_UNROLL * LANES)         \
        for (int u = 0; u < FINITE_UNROLL; ++u) {                              \
            memcpy(&bits, values + i + u * LANES, sizeof bits);                \
            seen |= (bits_vec)((bits & exponent) == exponent);                 \
        }                                                                      \
    UINT any = 0, word;                                                        \
    for (int lane = 0; lane < LANES; ++lane)                                   \
        any |= seen[lane];                                                     \
    for (; i < n; ++i) {                                                       \
        memcpy(&word, values + i, sizeof word);                                \
        any |= (word & (EXPONENT)) == (EXPONENT);                              \
    }                                                                          \
    return any == 0;                                                           \
}

FASTLSTM_DEFINE_FINITE(float, f32, uint32_t, UINT32_C(0x7f800000))
FASTLSTM_DEFINE_FINITE(double, f64, uint64_t, UINT64_C(0x7ff0000000000000))
#undef FASTLSTM_DEFINE_FINITE
#undef FINITE_UNROLL

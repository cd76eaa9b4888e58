/*
 * GRU row kernels, gate blocks z (update), r (reset), h (candidate), as
 * Keras orders them; h_t = z * h_{t-1} + (1 - z) * hh in both conventions.
 *
 * Reset after (Keras' default, PyTorch's and ONNX' linear_before_reset=1):
 * one phase. The step's recurrent product p = h_{t-1} @ recurrent_kernel
 * is kept apart from z (the input projection), because r multiplies only
 * its candidate block: with bias rows b (input) and c (recurrent),
 *   z = sigmoid(x_z + b_z + p_z + c_z), r = sigmoid(x_r + b_r + p_r + c_r),
 *   hh = tanh(x_h + b_h + r * (p_h + c_h)).
 * Training keeps aux = p_h + c_h, which backward needs for dr.
 *
 * Reset before (Keras reset_after=False, ONNX linear_before_reset=0): two
 * phases. Phase 0 adds h_{t-1} @ recurrent_kernel[:, z and r] into z,
 * activates z and r, and writes aux = r * h_{t-1}; phase 1 adds
 * aux @ recurrent_kernel[:, h] into the candidate block, then
 *   hh = tanh(x_h + b_h + (r * h_{t-1}) @ U_h).
 * Training keeps aux, the operand of U_h's gradient.
 *
 * With recurrent dropout, the products (and r * h) read h_{t-1} times the
 * mask (h_masked); z * h_{t-1} keeps the state itself, as in Keras.
 *
 * Included per SIMD level by simd_level.h (no include guard on purpose).
 */

#define FASTLSTM_DEFINE_GRU(T, SFX)                                            \
typedef SIMD_NAME(vec_##SFX) SIMD_NAME(gru_vec_##SFX);                           \
typedef struct { const fastlstm_forward_row *row; ptrdiff_t s; }               \
    SIMD_NAME(gru_fctx_##SFX);                                                 \
typedef struct { const fastlstm_backward_row *row; ptrdiff_t s; }              \
    SIMD_NAME(gru_bctx_##SFX);                                                 \
typedef struct { SIMD_NAME(gru_vec_##SFX) v[10]; } SIMD_NAME(gru_in_##SFX);     \
typedef struct { SIMD_NAME(gru_vec_##SFX) v[5]; } SIMD_NAME(gru_out_##SFX);     \
                                                                               \
/* ----- reset after, forward: in x_z x_r x_h p_z p_r p_h b c(3) h_prev */     \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_ra_forward_load_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    const T *z = (const T *)c.row->z, *p = (const T *)c.row->rec;              \
    const T *b = (const T *)c.row->bias;                                       \
    for (int g = 0; g < 3; ++g) {                                              \
        in.v[g] = SIMD_NAME(row_load_##SFX)(z + g * c.s, j, single)             \
                  + SIMD_NAME(row_load_##SFX)(b + g * c.s, j, single);          \
        in.v[3 + g] = SIMD_NAME(row_load_##SFX)(p + g * c.s, j, single)         \
                      + SIMD_NAME(row_load_##SFX)(b + (3 + g) * c.s, j, single); \
    }                                                                          \
    in.v[6] = SIMD_NAME(row_load_##SFX)(c.row->h_prev, j, single);             \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: z, r, hh, aux, h */                                                    \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_ra_forward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)                 \
{                                                                              \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    SIMD_NAME(gru_vec_##SFX) z = SIMD_NAME(sigmoid_##SFX)(in.v[0] + in.v[3]);   \
    SIMD_NAME(gru_vec_##SFX) r = SIMD_NAME(sigmoid_##SFX)(in.v[1] + in.v[4]);   \
    SIMD_NAME(gru_vec_##SFX) hh = SIMD_NAME(tanh_##SFX)(in.v[2] + r * in.v[5]); \
    out.v[0] = z;                                                              \
    out.v[1] = r;                                                              \
    out.v[2] = hh;                                                             \
    out.v[3] = in.v[5];                                                        \
    out.v[4] = z * in.v[6] + ((T)1 - z) * hh;                                  \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_ra_forward_store_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j,  \
                                      SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    T *z = (T *)c.row->z;                                                      \
    for (int g = 0; g < 3; ++g)                                                \
        SIMD_NAME(row_store_##SFX)(z + g * c.s, j, out.v[g], single);           \
    SIMD_NAME(row_store_##SFX)(c.row->aux, j, out.v[3], single);               \
    SIMD_NAME(row_store_##SFX)(c.row->h_out, j, out.v[4], single);             \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_ra_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,             \
                                     const fastlstm_forward_row *row)           \
{                                                                              \
    SIMD_NAME(gru_fctx_##SFX) c = {row, stride};                               \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_ra_forward_load_##SFX),                    \
                      SIMD_NAME(gru_ra_forward_math_##SFX),                    \
                      SIMD_NAME(gru_ra_forward_store_##SFX), c);               \
}                                                                              \
                                                                               \
/* ----- reset after, backward: in z r hh aux h_prev dh(+dy) */               \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_ra_backward_load_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    const T *gates = (const T *)c.row->gates;                                  \
    for (int g = 0; g < 3; ++g)                                                \
        in.v[g] = SIMD_NAME(row_load_##SFX)(gates + g * c.s, j, single);        \
    in.v[3] = SIMD_NAME(row_load_##SFX)(c.row->aux, j, single);                \
    in.v[4] = SIMD_NAME(row_load_##SFX)(c.row->h_prev, j, single);             \
    in.v[5] = SIMD_NAME(row_load_##SFX)(c.row->dh, j, single);                 \
    if (c.row->dy)                                                             \
        in.v[5] = in.v[5] + SIMD_NAME(row_load_##SFX)(c.row->dy, j, single);   \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: dz_z, dz_r, da (the candidate's pre-activation), da * r, carry */      \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_ra_backward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)                \
{                                                                              \
    SIMD_NAME(gru_vec_##SFX) z = in.v[0], r = in.v[1], hh = in.v[2];           \
    SIMD_NAME(gru_vec_##SFX) dh = in.v[5];                                     \
    SIMD_NAME(gru_vec_##SFX) da = dh * ((T)1 - z) * ((T)1 - hh * hh);          \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    out.v[0] = dh * (in.v[4] - hh) * z * ((T)1 - z);                           \
    out.v[1] = da * in.v[3] * r * ((T)1 - r);                                  \
    out.v[2] = da;                                                             \
    out.v[3] = da * r;                                                         \
    out.v[4] = dh * z;                                                         \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_ra_backward_store_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, \
                                       SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    T *gates = (T *)c.row->gates, *rec = (T *)c.row->dz_rec;                   \
    for (int g = 0; g < 3; ++g)                                                \
        SIMD_NAME(row_store_##SFX)(gates + g * c.s, j, out.v[g], single);       \
    SIMD_NAME(row_store_##SFX)(rec, j, out.v[0], single);                      \
    SIMD_NAME(row_store_##SFX)(rec + c.s, j, out.v[1], single);                \
    SIMD_NAME(row_store_##SFX)(rec + 2 * c.s, j, out.v[3], single);            \
    SIMD_NAME(row_store_##SFX)(c.row->dh_carry, j, out.v[4], single);          \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_ra_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    SIMD_NAME(gru_bctx_##SFX) c = {row, n};                                    \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_ra_backward_load_##SFX),                   \
                      SIMD_NAME(gru_ra_backward_math_##SFX),                   \
                      SIMD_NAME(gru_ra_backward_store_##SFX), c);              \
}                                                                              \
                                                                               \
/* ----- reset before, forward phase 0: in z_z z_r b_z b_r h_prev */          \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_rb0_forward_load_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    const T *z = (const T *)c.row->z, *b = (const T *)c.row->bias;             \
    for (int g = 0; g < 2; ++g)                                                \
        in.v[g] = SIMD_NAME(row_load_##SFX)(z + g * c.s, j, single)             \
                  + SIMD_NAME(row_load_##SFX)(b + g * c.s, j, single);          \
    in.v[2] = SIMD_NAME(row_load_##SFX)(c.row->h_masked ? c.row->h_masked        \
                                        : c.row->h_prev, j, single);           \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: z, r, r * h_prev */                                                    \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_rb0_forward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)                \
{                                                                              \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    out.v[0] = SIMD_NAME(sigmoid_##SFX)(in.v[0]);                              \
    out.v[1] = SIMD_NAME(sigmoid_##SFX)(in.v[1]);                              \
    out.v[2] = out.v[1] * in.v[2];                                             \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_rb0_forward_store_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j, \
                                       SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    T *z = (T *)c.row->z;                                                      \
    SIMD_NAME(row_store_##SFX)(z, j, out.v[0], single);                        \
    SIMD_NAME(row_store_##SFX)(z + c.s, j, out.v[1], single);                  \
    SIMD_NAME(row_store_##SFX)(c.row->aux, j, out.v[2], single);               \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_rb0_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,            \
                                      const fastlstm_forward_row *row)          \
{                                                                              \
    SIMD_NAME(gru_fctx_##SFX) c = {row, stride};                               \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_rb0_forward_load_##SFX),                   \
                      SIMD_NAME(gru_rb0_forward_math_##SFX),                   \
                      SIMD_NAME(gru_rb0_forward_store_##SFX), c);              \
}                                                                              \
                                                                               \
/* ----- reset before, forward phase 1: in z_h + b_h, z (activated), h_prev */ \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_rb1_forward_load_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    const T *z = (const T *)c.row->z, *b = (const T *)c.row->bias;             \
    in.v[0] = SIMD_NAME(row_load_##SFX)(z + 2 * c.s, j, single)                 \
              + SIMD_NAME(row_load_##SFX)(b + 2 * c.s, j, single);              \
    in.v[1] = SIMD_NAME(row_load_##SFX)(z, j, single);                         \
    in.v[2] = SIMD_NAME(row_load_##SFX)(c.row->h_prev, j, single);             \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: hh, h */                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_rb1_forward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)                \
{                                                                              \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    SIMD_NAME(gru_vec_##SFX) z = in.v[1];                                      \
    out.v[0] = SIMD_NAME(tanh_##SFX)(in.v[0]);                                 \
    out.v[1] = z * in.v[2] + ((T)1 - z) * out.v[0];                            \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_rb1_forward_store_##SFX)(SIMD_NAME(gru_fctx_##SFX) c, ptrdiff_t j, \
                                       SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    SIMD_NAME(row_store_##SFX)((T *)c.row->z + 2 * c.s, j, out.v[0], single);  \
    SIMD_NAME(row_store_##SFX)(c.row->h_out, j, out.v[1], single);             \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_rb1_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,            \
                                      const fastlstm_forward_row *row)          \
{                                                                              \
    SIMD_NAME(gru_fctx_##SFX) c = {row, stride};                               \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_rb1_forward_load_##SFX),                   \
                      SIMD_NAME(gru_rb1_forward_math_##SFX),                   \
                      SIMD_NAME(gru_rb1_forward_store_##SFX), c);              \
}                                                                              \
                                                                               \
/* ----- reset before, backward phase 1: in z, hh, h_prev, dh(+dy) */         \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_rb1_backward_load_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    const T *gates = (const T *)c.row->gates;                                  \
    in.v[0] = SIMD_NAME(row_load_##SFX)(gates, j, single);                     \
    in.v[1] = SIMD_NAME(row_load_##SFX)(gates + 2 * c.s, j, single);           \
    in.v[2] = SIMD_NAME(row_load_##SFX)(c.row->h_prev, j, single);             \
    in.v[3] = SIMD_NAME(row_load_##SFX)(c.row->dh, j, single);                 \
    if (c.row->dy)                                                             \
        in.v[3] = in.v[3] + SIMD_NAME(row_load_##SFX)(c.row->dy, j, single);   \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: dz_z, da, carry */                                                     \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_rb1_backward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)               \
{                                                                              \
    SIMD_NAME(gru_vec_##SFX) z = in.v[0], hh = in.v[1], dh = in.v[3];          \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    out.v[0] = dh * (in.v[2] - hh) * z * ((T)1 - z);                           \
    out.v[1] = dh * ((T)1 - z) * ((T)1 - hh * hh);                             \
    out.v[2] = dh * z;                                                         \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_rb1_backward_store_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, \
                                        SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    T *gates = (T *)c.row->gates;                                              \
    SIMD_NAME(row_store_##SFX)(gates, j, out.v[0], single);                    \
    SIMD_NAME(row_store_##SFX)(gates + 2 * c.s, j, out.v[1], single);          \
    SIMD_NAME(row_store_##SFX)(c.row->dh_carry, j, out.v[2], single);          \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_rb1_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    SIMD_NAME(gru_bctx_##SFX) c = {row, n};                                    \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_rb1_backward_load_##SFX),                  \
                      SIMD_NAME(gru_rb1_backward_math_##SFX),                  \
                      SIMD_NAME(gru_rb1_backward_store_##SFX), c);             \
}                                                                              \
                                                                               \
/* ----- reset before, backward phase 0: in r, d(r * h), h (masked) */       \
static inline __attribute__((always_inline)) SIMD_NAME(gru_in_##SFX)            \
SIMD_NAME(gru_rb0_backward_load_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(gru_in_##SFX) in;                                                \
    in.v[0] = SIMD_NAME(row_load_##SFX)((const T *)c.row->gates + c.s, j, single); \
    in.v[1] = SIMD_NAME(row_load_##SFX)(c.row->d_operand, j, single);          \
    in.v[2] = SIMD_NAME(row_load_##SFX)(c.row->h_masked ? c.row->h_masked        \
                                        : c.row->h_prev, j, single);           \
    return in;                                                                 \
}                                                                              \
                                                                               \
/* out: dz_r, the gradient d(r * h) passes on to h */                          \
static inline __attribute__((always_inline)) SIMD_NAME(gru_out_##SFX)           \
SIMD_NAME(gru_rb0_backward_math_##SFX)(SIMD_NAME(gru_in_##SFX) in)               \
{                                                                              \
    SIMD_NAME(gru_vec_##SFX) r = in.v[0], d_rh = in.v[1];                      \
    SIMD_NAME(gru_out_##SFX) out;                                              \
    out.v[0] = d_rh * in.v[2] * r * ((T)1 - r);                                \
    out.v[1] = d_rh * r;                                                       \
    return out;                                                                \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(gru_rb0_backward_store_##SFX)(SIMD_NAME(gru_bctx_##SFX) c, ptrdiff_t j, \
                                        SIMD_NAME(gru_out_##SFX) out, int single) \
{                                                                              \
    SIMD_NAME(row_store_##SFX)((T *)c.row->gates + c.s, j, out.v[0], single);  \
    SIMD_NAME(row_store_##SFX)(c.row->d_operand, j, out.v[1], single);         \
}                                                                              \
                                                                               \
void SIMD_NAME(gru_rb0_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    SIMD_NAME(gru_bctx_##SFX) c = {row, n};                                    \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(gru_out_##SFX),  \
                      SIMD_NAME(gru_rb0_backward_load_##SFX),                  \
                      SIMD_NAME(gru_rb0_backward_math_##SFX),                  \
                      SIMD_NAME(gru_rb0_backward_store_##SFX), c);             \
}

FASTLSTM_DEFINE_GRU(float, f32)
FASTLSTM_DEFINE_GRU(double, f64)
#undef FASTLSTM_DEFINE_GRU

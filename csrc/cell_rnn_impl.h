/*
 * SimpleRNN row kernels: h_t = act(z + bias), z = x_t @ kernel + h_{t-1} @
 * recurrent_kernel, act tanh or relu. Backward needs only h_t (both
 * derivatives are functions of the output), so forward leaves z as it is.
 * Included per SIMD level by simd_level.h (no include guard on purpose).
 */

#define FASTLSTM_DEFINE_RNN(T, SFX)                                            \
typedef SIMD_NAME(vec_##SFX) SIMD_NAME(rnn_vec_##SFX);                           \
typedef struct { SIMD_NAME(rnn_vec_##SFX) a, b; } SIMD_NAME(rnn_pair_##SFX);     \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_pair_##SFX)          \
SIMD_NAME(rnn_forward_load_##SFX)(const fastlstm_forward_row *row, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(rnn_pair_##SFX) in = {SIMD_NAME(row_load_##SFX)(row->z, j, single), \
                                    SIMD_NAME(row_load_##SFX)(row->bias, j, single)}; \
    return in;                                                                 \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_vec_##SFX)           \
SIMD_NAME(rnn_tanh_math_##SFX)(SIMD_NAME(rnn_pair_##SFX) in)                     \
{                                                                              \
    return SIMD_NAME(tanh_##SFX)(in.a + in.b);                                 \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_vec_##SFX)           \
SIMD_NAME(rnn_relu_math_##SFX)(SIMD_NAME(rnn_pair_##SFX) in)                     \
{                                                                              \
    SIMD_NAME(rnn_vec_##SFX) a = in.a + in.b;                                  \
    return SIMD_NAME(where_##SFX)((SIMD_NAME(bits_##SFX))(a > 0), a,             \
                                   (SIMD_NAME(rnn_vec_##SFX)){});               \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(rnn_forward_store_##SFX)(const fastlstm_forward_row *row, ptrdiff_t j, \
                                   SIMD_NAME(rnn_vec_##SFX) h, int single)      \
{                                                                              \
    SIMD_NAME(row_store_##SFX)(row->h_out, j, h, single);                      \
}                                                                              \
                                                                               \
void SIMD_NAME(rnn_tanh_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,           \
                                       const fastlstm_forward_row *row)         \
{                                                                              \
    (void)stride;                                                              \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(rnn_vec_##SFX),  \
                      SIMD_NAME(rnn_forward_load_##SFX), SIMD_NAME(rnn_tanh_math_##SFX), \
                      SIMD_NAME(rnn_forward_store_##SFX), row);                \
}                                                                              \
                                                                               \
void SIMD_NAME(rnn_relu_forward_##SFX)(ptrdiff_t n, ptrdiff_t stride,           \
                                       const fastlstm_forward_row *row)         \
{                                                                              \
    (void)stride;                                                              \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(rnn_vec_##SFX),  \
                      SIMD_NAME(rnn_forward_load_##SFX), SIMD_NAME(rnn_relu_math_##SFX), \
                      SIMD_NAME(rnn_forward_store_##SFX), row);                \
}                                                                              \
                                                                               \
/* (dh + dy, h_t) */                                                           \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_pair_##SFX)          \
SIMD_NAME(rnn_backward_load_##SFX)(const fastlstm_backward_row *row, ptrdiff_t j, int single) \
{                                                                              \
    SIMD_NAME(rnn_pair_##SFX) in;                                              \
    in.a = SIMD_NAME(row_load_##SFX)(row->dh, j, single);                      \
    if (row->dy)                                                               \
        in.a = in.a + SIMD_NAME(row_load_##SFX)(row->dy, j, single);           \
    in.b = SIMD_NAME(row_load_##SFX)(row->h_t, j, single);                     \
    return in;                                                                 \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_vec_##SFX)           \
SIMD_NAME(rnn_tanh_grad_##SFX)(SIMD_NAME(rnn_pair_##SFX) in)                     \
{                                                                              \
    return in.a * ((T)1 - in.b * in.b);                                        \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) SIMD_NAME(rnn_vec_##SFX)           \
SIMD_NAME(rnn_relu_grad_##SFX)(SIMD_NAME(rnn_pair_##SFX) in)                     \
{                                                                              \
    return SIMD_NAME(where_##SFX)((SIMD_NAME(bits_##SFX))(in.b > 0), in.a,       \
                                   (SIMD_NAME(rnn_vec_##SFX)){});               \
}                                                                              \
                                                                               \
static inline __attribute__((always_inline)) void                              \
SIMD_NAME(rnn_backward_store_##SFX)(const fastlstm_backward_row *row, ptrdiff_t j, \
                                    SIMD_NAME(rnn_vec_##SFX) dz, int single)    \
{                                                                              \
    SIMD_NAME(row_store_##SFX)(row->gates, j, dz, single);                     \
}                                                                              \
                                                                               \
void SIMD_NAME(rnn_tanh_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(rnn_vec_##SFX),  \
                      SIMD_NAME(rnn_backward_load_##SFX), SIMD_NAME(rnn_tanh_grad_##SFX), \
                      SIMD_NAME(rnn_backward_store_##SFX), row);               \
}                                                                              \
                                                                               \
void SIMD_NAME(rnn_relu_backward_##SFX)(ptrdiff_t n, const fastlstm_backward_row *row) \
{                                                                              \
    FASTLSTM_ROW_LOOP(n, SIMD_NAME(row_lanes_##SFX), SIMD_NAME(rnn_vec_##SFX),  \
                      SIMD_NAME(rnn_backward_load_##SFX), SIMD_NAME(rnn_relu_grad_##SFX), \
                      SIMD_NAME(rnn_backward_store_##SFX), row);               \
}

FASTLSTM_DEFINE_RNN(float, f32)
FASTLSTM_DEFINE_RNN(double, f64)
#undef FASTLSTM_DEFINE_RNN

/*
 * Fused LSTM gate math for one batch row, in float and double.
 *
 * The recurrent kernel (_lstm.pyx) leaves the pre-activations of one row in
 * a buffer z of length 4 * n_units laid out as the gates i, f, g (the cell
 * candidate, Keras' "c") and o. These functions do everything elementwise
 * that happens between two GEMMs, in one pass that the compiler vectorizes.
 *
 * lstm_gates.c compiles them once per instruction set (baseline, AVX2+FMA,
 * AVX-512) and picks one at run time, so a portable build still runs the
 * widest vectors the CPU has.
 */
#ifndef FASTLSTM_LSTM_GATES_H
#define FASTLSTM_LSTM_GATES_H

#include <stddef.h>

/*
 * Forward: z (in: pre-activations without bias; out: activated gates i, f,
 * g, o, which backward needs), c_out = f * c_prev + i * g,
 * h_out = o * tanh(c_out). c_prev and c_out must not overlap.
 */
typedef void (*lstm_gates_forward_f32_fn)(ptrdiff_t n_units, float *z,
                                          const float *bias, const float *c_prev,
                                          float *c_out, float *h_out);
typedef void (*lstm_gates_forward_f64_fn)(ptrdiff_t n_units, double *z,
                                          const double *bias, const double *c_prev,
                                          double *c_out, double *h_out);

/*
 * Backward: gates (in: the activated gates from forward; out: the gradient
 * of the loss with respect to the pre-activations), dh: the gradient reaching
 * h_t through the recurrence, dy: the gradient of the output y_t (NULL means
 * zero), dc (in: gradient reaching c_t from step t + 1; out: gradient of
 * c_{t-1}).
 */
typedef void (*lstm_gates_backward_f32_fn)(ptrdiff_t n_units, float *gates,
                                           const float *c_prev, const float *c_t,
                                           const float *dh, const float *dy,
                                           float *dc);
typedef void (*lstm_gates_backward_f64_fn)(ptrdiff_t n_units, double *gates,
                                           const double *c_prev, const double *c_t,
                                           const double *dh, const double *dy,
                                           double *dc);

typedef struct {
    lstm_gates_forward_f32_fn forward_f32;
    lstm_gates_forward_f64_fn forward_f64;
    lstm_gates_backward_f32_fn backward_f32;
    lstm_gates_backward_f64_fn backward_f64;
} lstm_gate_kernels;

/* SIMD levels, lowest first. */
int fastlstm_simd_level_count(void);
const char *fastlstm_simd_level_name(int level);
int fastlstm_simd_level_supported(int level);
/* The level the dispatcher picked for this CPU (the best supported one). */
int fastlstm_simd_best_level(void);
lstm_gate_kernels fastlstm_gate_kernels(int level);

#endif

/*
 * OpenMP queries that also compile without OpenMP, so that a compiler
 * lacking it still builds fastlstm (single-threaded; setup.py warns).
 */
#ifndef FASTLSTM_OPENMP_COMPAT_H
#define FASTLSTM_OPENMP_COMPAT_H

#ifdef _OPENMP
#include <omp.h>
static inline int fastlstm_openmp_enabled(void) { return 1; }
static inline int fastlstm_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int fastlstm_omp_thread_num(void) { return omp_get_thread_num(); }
static inline int fastlstm_omp_num_threads(void) { return omp_get_num_threads(); }
/* An orphaned barrier: binds to the parallel region the caller runs in. */
static inline void fastlstm_omp_barrier(void) { _Pragma("omp barrier") }
#else
static inline int fastlstm_openmp_enabled(void) { return 0; }
static inline int fastlstm_omp_max_threads(void) { return 1; }
static inline int fastlstm_omp_thread_num(void) { return 0; }
static inline int fastlstm_omp_num_threads(void) { return 1; }
static inline void fastlstm_omp_barrier(void) {}
#endif

#ifndef FASTLSTM_COMPILER_FLAGS
#define FASTLSTM_COMPILER_FLAGS ""
#endif
static inline const char *fastlstm_compiler_flags(void) { return FASTLSTM_COMPILER_FLAGS; }

#endif

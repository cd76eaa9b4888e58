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
#else
static inline int fastlstm_openmp_enabled(void) { return 0; }
static inline int fastlstm_omp_max_threads(void) { return 1; }
#endif

#ifndef FASTLSTM_COMPILER_FLAGS
#define FASTLSTM_COMPILER_FLAGS ""
#endif
static inline const char *fastlstm_compiler_flags(void) { return FASTLSTM_COMPILER_FLAGS; }

#endif

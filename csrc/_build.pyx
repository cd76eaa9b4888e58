# cython: language_level=3
"""Build facts (OpenMP, compiler flags) and the SIMD level the compiled
modules run. Each module that calls SIMD kernels keeps its own copy of the
level (every extension links its own copy of the SIMD library), so
set_simd_level sets it in each of them that is loaded; one loaded later
starts at the best level."""
import sys

from _simd cimport (
    fastlstm_compiler_flags, fastlstm_omp_max_threads, fastlstm_openmp_enabled,
    fastlstm_simd_best_level, fastlstm_simd_level_count, fastlstm_simd_level_name,
    fastlstm_simd_level_supported)

# The modules whose kernels follow set_simd_level.
_KERNEL_MODULES = ("fastlstm._recurrent", "fastlstm._checks", "fastlstm._testing")

cdef int _simd_level = fastlstm_simd_best_level()


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return bool(fastlstm_openmp_enabled())


def omp_max_threads():
    """OpenMP's default team size (1 without OpenMP)."""
    return fastlstm_omp_max_threads()


def compiler_flags():
    """The extra flags setup.py compiled the kernels with."""
    return fastlstm_compiler_flags().decode()


def simd_levels():
    """Names of the SIMD kernel levels this CPU supports, lowest first."""
    return [fastlstm_simd_level_name(i).decode()
            for i in range(fastlstm_simd_level_count())
            if fastlstm_simd_level_supported(i)]


def get_simd_level():
    """Name of the SIMD level the kernels use."""
    return fastlstm_simd_level_name(_simd_level).decode()


def set_simd_level(name=None):
    """Use the SIMD kernels of level `name` (None: the best supported).

    For tests and benchmarks; not thread-safe against running kernels.
    """
    global _simd_level
    cdef int level = -1
    if name is None:
        level = fastlstm_simd_best_level()
    else:
        for i in range(fastlstm_simd_level_count()):
            if fastlstm_simd_level_name(i).decode() == name:
                if not fastlstm_simd_level_supported(i):
                    raise ValueError(f"SIMD level {name!r} is not supported by this CPU")
                level = i
        if level < 0:
            raise ValueError(f"unknown SIMD level {name!r}; this CPU supports {simd_levels()}")
    for name in _KERNEL_MODULES:
        if name in sys.modules:
            sys.modules[name]._use_simd_level(level)
    _simd_level = level

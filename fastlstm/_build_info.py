"""fastlstm.build_info(): how this copy was built and what it runs on."""
import platform

import numpy as np
import scipy

from . import _build
from ._blas_control import scipy_blas_info
from ._threads import get_num_threads, usable_cpu_count
from ._version import __version__


def build_info():
    """Describe this build of fastlstm and the machine it runs on.

    Returns
    -------
    dict
        ``version``; ``openmp`` (bool: compiled with OpenMP); ``max_threads``
        (usable CPUs, the default thread count), ``num_threads`` (current
        setting) and ``omp_max_threads`` (the OpenMP runtime's own default); ``blas`` (the BLAS scipy.linalg.cython_blas calls);
        ``compiler_flags``; ``simd`` (the gate-kernel level in use, chosen at
        run time for this CPU) and ``simd_supported``;
        ``python``, ``numpy``, ``scipy`` versions.
    """
    return {
        "version": __version__,
        "openmp": _build.openmp_enabled(),
        "max_threads": usable_cpu_count(),
        "num_threads": get_num_threads(),
        "omp_max_threads": _build.omp_max_threads(),
        "blas": scipy_blas_info(),
        "compiler_flags": _build.compiler_flags(),
        "simd": _build.get_simd_level(),
        "simd_supported": _build.simd_levels(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }

"""Build fastlstm's compiled core.

- csrc/simd_dispatch.c, the cells' row kernels, the per-step matrix product
  and the checks' passes, becomes a static library compiled on its own (-O3;
  it dispatches over SIMD levels at run time, so no -march).
- csrc/_elementwise.pyx, dropout's mask and the optimizers' updates, becomes
  fastlstm._elementwise.
- csrc/_recurrent.pyx, the recurrent driver, becomes fastlstm._recurrent,
  with OpenMP when a compile-and-link probe finds it; beside it _checks
  (finiteness, fingerprints), _build (build facts, SIMD level) and _testing
  (test-only entry points). Without OpenMP the build still
  succeeds, single-threaded, with a warning; FASTLSTM_REQUIRE_OPENMP=1 turns
  that into an error. FASTLSTM_NATIVE=1 adds -march=native (not portable).
"""
import os
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = os.environ.get("FASTLSTM_NATIVE") == "1"
REQUIRE_OPENMP = os.environ.get("FASTLSTM_REQUIRE_OPENMP") == "1"
OPTIMIZE_FLAGS = ["-O3"] + (["-march=native"] if NATIVE else [])
OPENMP_FLAG = "-fopenmp"

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+ : n)
    n += 1;
    return (n > 0 && omp_get_max_threads() > 0) ? 0 : 1;
}
"""


def compiler_has_openmp(compiler):
    """Whether `compiler` compiles and links an OpenMP program with -fopenmp."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "openmp_probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[OPENMP_FLAG])
            compiler.link_executable(objects, "openmp_probe", output_dir=tmp,
                                     extra_postargs=[OPENMP_FLAG])
        except Exception:  # CompileError, LinkError, or a missing compiler
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    """build_ext that adds OpenMP flags where the compiler supports them, and
    compiles the extensions side by side, one per core (each is one large C
    file that a single compiler process takes minutes over)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        openmp = compiler_has_openmp(self.compiler)
        if not openmp:
            message = ("fastlstm: the C compiler cannot build OpenMP code (-fopenmp); "
                       "the kernels will run single-threaded.")
            if REQUIRE_OPENMP:
                raise RuntimeError(message + " FASTLSTM_REQUIRE_OPENMP=1 forbids that.")
            print("\n" + "!" * 72 + f"\nWARNING: {message}\n" + "!" * 72 + "\n",
                  file=sys.stderr)
        compile_flags = OPTIMIZE_FLAGS + ([OPENMP_FLAG] if openmp else [])
        for ext in self.extensions:
            ext.extra_compile_args += compile_flags
            ext.extra_link_args += [OPENMP_FLAG] if openmp else []
            ext.define_macros.append(("FASTLSTM_COMPILER_FLAGS", '"%s"' % " ".join(compile_flags)))
        super().build_extensions()


# -fno-trapping-math lets GCC turn the clamps' comparisons into blends: without
# it the gate loops stay scalar below AVX-512 (10x slower on AVX2). It only
# drops the promise to keep FP exception flags exact; no value changes and,
# unlike -ffast-math, it adds no flush-to-zero startup code.
SIMD_HEADERS = ["csrc/simd.h", "csrc/simd_level.h", "csrc/aligned_memory.h", "csrc/cell.h",
                "csrc/cell_row_loop.h", "csrc/vmath_impl.h", "csrc/cell_lstm_impl.h",
                "csrc/cell_gru_impl.h", "csrc/cell_rnn_impl.h", "csrc/matmul_impl.h",
                "csrc/dot_impl.h", "csrc/finite_impl.h", "csrc/fingerprint_impl.h"]
simd_library = ("fastlstm_simd", {
    "sources": ["csrc/simd_dispatch.c"],
    "include_dirs": ["csrc"],
    "cflags": OPTIMIZE_FLAGS + ["-fno-trapping-math"],
    "obj_deps": {"": SIMD_HEADERS},  # rebuild when a header changes
})

CYTHON_DECLARATIONS = ["csrc/_simd.pxd", "csrc/_plan.pxd", "csrc/_products.pxd",
                       "csrc/_blas.pxd", "csrc/cell.h", "csrc/simd.h", "csrc/openmp_compat.h",
                       "csrc/aligned_memory.h", "csrc/transpose_rows.h", "csrc/prefetch_rows.h",
                       "csrc/interrupt_poll.h", "csrc/preemption.h"]
kernels = [Extension(f"fastlstm.{name}", sources=[f"csrc/{name}.pyx"], include_dirs=["csrc"],
                     depends=CYTHON_DECLARATIONS)
           for name in ("_recurrent", "_checks", "_build", "_testing")]

# -ffp-contract=off: these loops promise NumPy's bits, one rounding per
# operation, so no multiply and add may fuse. -fno-math-errno: sqrt need not
# set errno, which kept the optimizers' loops from vectorizing.
elementwise = Extension("fastlstm._elementwise", sources=["csrc/_elementwise.pyx"],
                        extra_compile_args=["-ffp-contract=off", "-fno-math-errno"])

setup(
    libraries=[simd_library],
    ext_modules=cythonize([*kernels, elementwise], include_path=["csrc"], language_level=3,
                          nthreads=os.cpu_count() or 1),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)

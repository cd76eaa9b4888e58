/*
 * The core's AVX-512 FMA peak, against which the suite's "sgemm peak"
 * (SciPy's OpenBLAS) can be read: 12 independent FMA chains, enough to keep
 * both FMA ports busy, with nothing else in the loop (operands zero, so no
 * denormals). Written in asm so the compiler cannot merge the identical
 * chains. x86-64 with AVX-512F only.
 *
 *     gcc -O2 -fopenmp bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <omp.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { CHAINS = 12, LANES = 16 };

static __attribute__((noinline)) void fma_chains(long iterations)
{
    __asm__ volatile(
        "vxorps %%zmm0, %%zmm0, %%zmm0\n vxorps %%zmm1, %%zmm1, %%zmm1\n"
        "vxorps %%zmm2, %%zmm2, %%zmm2\n vxorps %%zmm3, %%zmm3, %%zmm3\n"
        "vxorps %%zmm4, %%zmm4, %%zmm4\n vxorps %%zmm5, %%zmm5, %%zmm5\n"
        "vxorps %%zmm6, %%zmm6, %%zmm6\n vxorps %%zmm7, %%zmm7, %%zmm7\n"
        "vxorps %%zmm8, %%zmm8, %%zmm8\n vxorps %%zmm9, %%zmm9, %%zmm9\n"
        "vxorps %%zmm10, %%zmm10, %%zmm10\n vxorps %%zmm11, %%zmm11, %%zmm11\n"
        "vxorps %%zmm14, %%zmm14, %%zmm14\n vxorps %%zmm15, %%zmm15, %%zmm15\n"
        "1:\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm0\n vfmadd231ps %%zmm14, %%zmm15, %%zmm1\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm2\n vfmadd231ps %%zmm14, %%zmm15, %%zmm3\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm4\n vfmadd231ps %%zmm14, %%zmm15, %%zmm5\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm6\n vfmadd231ps %%zmm14, %%zmm15, %%zmm7\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm8\n vfmadd231ps %%zmm14, %%zmm15, %%zmm9\n"
        "vfmadd231ps %%zmm14, %%zmm15, %%zmm10\n vfmadd231ps %%zmm14, %%zmm15, %%zmm11\n"
        "dec %0\n jnz 1b\n"
        : "+r"(iterations)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm14", "xmm15", "cc");
}

int main(void)
{
    const long iterations = 30000000;
    const double flops = 2.0 * CHAINS * LANES * iterations;
    for (int round = 0; round < 3; ++round) {
        double start = now();
        fma_chains(iterations);
        double one = now() - start;
        start = now();
#pragma omp parallel num_threads(2)
        fma_chains(iterations);
        double two = now() - start;
        printf("float32 FMA peak: 1 thread %.0f GFLOP/s; 2 threads %.0f GFLOP/s each\n",
               flops / one / 1e9, flops / two / 1e9);
    }
    return 0;
}

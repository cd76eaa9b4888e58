/*
 * Memory aligned to a cache line, for the packed weights.
 *
 * The products load whole vectors from the packed panels. At malloc's
 * 16-byte alignment a 64-byte vector straddles two cache lines, and a
 * product streaming its weights from L2 then runs at half speed (measured:
 * a batch-1 step at 128 units took 4.4-5.6 us instead of 2.6-2.8 us).
 * Every packed group is a whole number of cache lines long, so aligning the
 * buffer aligns every vector load from it.
 */
#ifndef FASTLSTM_ALIGNED_MEMORY_H
#define FASTLSTM_ALIGNED_MEMORY_H

#include <stddef.h>
#include <stdlib.h>
#ifdef _WIN32
#include <malloc.h>
#endif

/* The cache line of every x86-64 and most other 64-bit CPUs; the products'
   and step loops' prefetches walk memory in steps of it too. */
#define FASTLSTM_CACHE_LINE 64
#define FASTLSTM_ALIGNMENT FASTLSTM_CACHE_LINE

/* At least `bytes` bytes (one if zero) starting at a multiple of
   FASTLSTM_ALIGNMENT, or NULL; release with fastlstm_aligned_free. */
static inline void *fastlstm_aligned_malloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
#ifdef _WIN32
    return _aligned_malloc(bytes, FASTLSTM_ALIGNMENT);
#else
    void *memory = NULL;
    return posix_memalign(&memory, FASTLSTM_ALIGNMENT, bytes) == 0 ? memory : NULL;
#endif
}

static inline void fastlstm_aligned_free(void *memory)
{
#ifdef _WIN32
    _aligned_free(memory);
#else
    free(memory);
#endif
}

#endif

/*
 * A 64-bit hash of a buffer's bytes, for telling whether an array changed
 * between an LSTM's forward and backward pass (fastlstm.functional's
 * caches); not for security.
 *
 * FASTLSTM_FINGERPRINT_LANES independent 64-bit lanes: lane j takes the
 * 8-byte words j, j + lanes, j + 2 * lanes, ... and mixes each into its
 * state (fastlstm_fingerprint_mix). Then the length, the tail bytes and the
 * lanes (each lane through an avalanche first) are mixed into one value in
 * order. Each step is a bijection of the state, so a change of one word
 * always changes the result; other changes leave it equal only by chance
 * (about 2**-64 for unrelated data).
 *
 * The lanes are the same at every SIMD level; only how many share a vector
 * differs. So every level returns the same value, and a cache made under
 * one level checks under another. 64 lanes are 8 AVX-512 vectors (16 of
 * AVX2, which has no 64-bit multiply, so GCC builds it from 32-bit ones),
 * enough independent multiplications to hide their latency.
 * Measured on 1 thread over 12 MB: 27-28 GB/s in L3 and 9.1-9.6 from
 * memory, where a scalar 8-lane hash reads 19 and 7.4 and a read-only pass
 * such as all_finite 11-14 from memory; 32 lanes read 21-28 and 8.3-9.1.
 *
 * Included per SIMD level by simd_level.h; no include guard on purpose.
 */

uint64_t SIMD_NAME(fastlstm_fingerprint)(ptrdiff_t n, const unsigned char *data)
{
    typedef uint64_t lanes_vec __attribute__((vector_size(SIMD_VECTOR_BYTES)));
    enum {
        LANES = FASTLSTM_FINGERPRINT_LANES,
        PER_VECTOR = SIMD_VECTOR_BYTES / 8,
        VECTORS = LANES / PER_VECTOR,
        STRIPE = 8 * LANES
    };
    lanes_vec state[VECTORS], word_vec;
    for (int v = 0; v < VECTORS; ++v)
        for (int lane = 0; lane < PER_VECTOR; ++lane)
            state[v][lane] = FASTLSTM_FINGERPRINT_SEED + (uint64_t)(v * PER_VECTOR + lane);
    ptrdiff_t i = 0;
    for (; i + STRIPE <= n; i += STRIPE)
        for (int v = 0; v < VECTORS; ++v) {
            memcpy(&word_vec, data + i + v * SIMD_VECTOR_BYTES, sizeof word_vec);
            word_vec ^= state[v];
            word_vec *= FASTLSTM_FINGERPRINT_PRIME;
            state[v] = word_vec ^ (word_vec >> 31);
        }
    uint64_t lanes[LANES], word;
    memcpy(lanes, state, sizeof lanes);
    /* The words of the last, partial stripe go to lanes 0, 1, ... */
    for (int lane = 0; i + 8 <= n; i += 8, ++lane) {
        memcpy(&word, data + i, 8);
        lanes[lane] = fastlstm_fingerprint_mix(lanes[lane], word);
    }
    word = 0;
    if (i < n)
        memcpy(&word, data + i, (size_t)(n - i));
    uint64_t result = fastlstm_fingerprint_mix(FASTLSTM_FINGERPRINT_SEED, (uint64_t)n);
    result = fastlstm_fingerprint_mix(result, word);
    for (int lane = 0; lane < LANES; ++lane)
        result = fastlstm_fingerprint_mix(result, fastlstm_fingerprint_avalanche(lanes[lane]));
    return result;
}

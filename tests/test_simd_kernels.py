"""The SIMD kernels on their own: the products and the gate math at every SIMD level."""
import numpy as np
import pytest

from fastlstm import _build, _checks, _testing


@pytest.fixture(params=_build.simd_levels())
def simd_level(request):
    _build.set_simd_level(request.param)
    yield request.param
    _build.set_simd_level(None)


# m rows of a batch part; n, k cover full panels, groups of fewer vectors, a
# last vector that overlaps the one before it (in their group, or alone after
# a full panel), sizes smaller than one vector, and k over several blocks of
# 128 (a block resumes from the sums the one before stored).
@pytest.mark.parametrize("m, n, k", [(16, 512, 128), (7, 203, 37), (1, 200, 50), (5, 3, 2),
                                     (33, 64, 1), (4, 17, 9), (2, 1, 1), (9, 50, 200),
                                     (6, 100, 300), (3, 40, 130), (1, 100, 300)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [True, False])
def test_matmul_matches_numpy(m, n, k, dtype, accumulate, simd_level):
    rng = np.random.default_rng(m * n + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = c0.copy()
    _testing.matmul(a, b, c, accumulate)
    expected = a.astype(np.float64) @ b.astype(np.float64) + (c0 if accumulate else 0)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=tolerance, atol=tolerance * np.sqrt(k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_rows_do_not_depend_on_their_neighbours(dtype, simd_level):
    """Each row is bitwise the same alone as in any block: the basis of thread invariance."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((19, 100)).astype(dtype)
    b = rng.standard_normal((100, 203)).astype(dtype)
    c0 = rng.standard_normal((19, 203)).astype(dtype)
    block = c0.copy()
    _testing.matmul(a, b, block, True)
    for start, stop in [(0, 1), (3, 5), (5, 16), (16, 19)]:
        part = c0[start:stop].copy()
        _testing.matmul(a[start:stop], b, part, True)
        np.testing.assert_array_equal(part, block[start:stop])


@pytest.mark.parametrize("n", [64, 200, 517])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_row_products_equal_the_block_rows_bitwise(n, dtype, simd_level):
    """A lone row (batch 1) takes two column panels at a time; each of its
    columns must still be summed exactly as in a tile of several rows."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((9, 300)).astype(dtype)
    b = rng.standard_normal((300, n)).astype(dtype)
    c0 = rng.standard_normal((9, n)).astype(dtype)
    for packed in (False, True):
        block = c0.copy()
        _testing.matmul(a, b, block, True, packed=packed)
        for row in range(a.shape[0]):
            alone = c0[row:row + 1].copy()
            _testing.matmul(a[row:row + 1], b, alone, True, packed=packed)
            np.testing.assert_array_equal(alone, block[row:row + 1])


def test_matmul_reads_strided_rows():
    rng = np.random.default_rng(1)
    big_a = rng.standard_normal((10, 30))
    b = rng.standard_normal((12, 20))
    big_c = np.zeros((10, 50))
    _testing.matmul(big_a[::2, 3:15], b, big_c[::2, 5:25], False)
    np.testing.assert_allclose(big_c[::2, 5:25], big_a[::2, 3:15] @ b, rtol=1e-13)
    assert not big_c[1::2].any() and not big_c[:, :5].any() and not big_c[:, 25:].any()


@pytest.mark.parametrize("n", [1, 3, 8, 15, 17, 31, 64, 65, 100, 203, 512])
@pytest.mark.parametrize("k", [1, 7, 128, 129, 300])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_product_equals_the_unpacked_one_bitwise(n, k, dtype, simd_level):
    """The recurrent loops pack the weights once; that must not change one bit."""
    rng = np.random.default_rng(n * 1000 + k)
    a = rng.standard_normal((13, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((13, n)).astype(dtype)
    for accumulate in (False, True):
        unpacked, packed = c0.copy(), c0.copy()
        _testing.matmul(a, b, unpacked, accumulate)
        _testing.matmul(a, b, packed, accumulate, packed=True)
        np.testing.assert_array_equal(packed, unpacked)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_product_fetching_ahead_equals_the_unpacked_one_bitwise(dtype, simd_level):
    """Weights over 1 MiB and 48 rows or more: the packed product fetches the
    next block of the weights while it uses the current one."""
    rng = np.random.default_rng(5)
    m, k, n = 50, 300, 1000
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    for accumulate in (False, True):
        unpacked, packed = c0.copy(), c0.copy()
        _testing.matmul(a, b, unpacked, accumulate)
        _testing.matmul(a, b, packed, accumulate, packed=True)
        np.testing.assert_array_equal(packed, unpacked)
    np.testing.assert_allclose(packed, a.astype(np.float64) @ b + c0,
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3)


def test_packed_product_writes_only_its_columns():
    rng = np.random.default_rng(2)
    big_a = rng.standard_normal((10, 30)).astype(np.float32)
    b = rng.standard_normal((12, 21)).astype(np.float32)
    big_c = np.zeros((10, 50), np.float32)
    _testing.matmul(big_a[::2, 3:15], b, big_c[::2, 5:26], False, packed=True)
    np.testing.assert_allclose(big_c[::2, 5:26], big_a[::2, 3:15] @ b, rtol=1e-5, atol=1e-5)
    assert not big_c[1::2].any() and not big_c[:, :5].any() and not big_c[:, 26:].any()


# The backward pass' products with transposed weights (dh = dz_t @ R^T, dx =
# dz @ kernel^T): columns narrower than one vector (all by dot products),
# a short tail past the last whole vector (by dot products from k = 128 at
# wide levels), longer tails and short k (by the packed product alone); k
# with a remainder past the last whole vector; rows in uneven blocks of 4.
TRANSPOSED_SHAPES = [(9, 3, 40), (5, 1, 1), (13, 15, 136), (7, 50, 200), (4, 50, 201),
                     (6, 18, 72), (11, 100, 400), (3, 66, 132), (17, 7, 9), (2, 130, 520)]
VECTOR_BYTES = {"baseline": 16, "sse2": 16, "avx2": 32, "avx512": 64}


@pytest.mark.parametrize("m, n, k", TRANSPOSED_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_product_matches_numpy(m, n, k, dtype, simd_level):
    rng = np.random.default_rng(m * n + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    _testing.transposed_product(a, w, c)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, a.astype(np.float64) @ w.T.astype(np.float64),
                               rtol=tolerance, atol=tolerance * np.sqrt(k))


@pytest.mark.parametrize("m, n, k", TRANSPOSED_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_product_rows_do_not_depend_on_their_neighbours(m, n, k, dtype, simd_level):
    """Each row alone is bitwise the same as in the block: the backward pass'
    thread invariance, whichever columns the dot products take."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    block = np.empty((m, n), dtype)
    _testing.transposed_product(a, w, block)
    for row in range(m):
        alone = np.empty((1, n), dtype)
        _testing.transposed_product(a[row:row + 1], w, alone)
        np.testing.assert_array_equal(alone, block[row:row + 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dot_products_take_only_a_tail_shorter_than_a_vector(dtype, simd_level):
    """Whatever the policy, the dot products cover at most the columns that
    do not fill a whole vector; the products above check their values."""
    lanes = VECTOR_BYTES[simd_level] // np.dtype(dtype).itemsize
    itemsize = np.dtype(dtype).itemsize
    for n in range(1, 4 * lanes + 2):
        for k in (1, 4, 64, 400):
            assert 0 <= _testing.dot_columns(n, k, itemsize) <= min(n, lanes - 1), (n, k)


# (k, m, n, row stride of b): k across row blocks of 128, m across uneven
# chunks of 48, n with tails; b's rows in place (stride * itemsize under
# 4 KiB and not a multiple of 512 bytes) or, when the kernel packs them, a
# page or more apart or a multiple of 512 bytes apart (the last two shapes);
# n over more than one of the kernel's own column blocks (1 MiB of b's rows:
# 2048 columns in float32, 1024 in float64) with a ragged end.
GRAD_SHAPES = [(300, 100, 37, 37), (129, 5, 400, 400), (1, 1, 1, 1), (260, 50, 70, 1100),
               (128, 49, 3, 600), (7, 3, 17, 2048), (130, 20, 2100, 2100), (5, 3, 1028, 1028),
               (200, 40, 128, 128), (150, 30, 500, 512)]


@pytest.mark.parametrize("k, m, n, ldb", GRAD_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_product_matches_numpy(k, m, n, ldb, dtype, simd_level):
    rng = np.random.default_rng(k * m + n)
    a = rng.standard_normal((m, k + 3)).astype(dtype)[:, :k]  # rows k + 3 apart
    b = rng.standard_normal((k, ldb)).astype(dtype)[:, :n]
    c0 = rng.standard_normal((m, n)).astype(dtype)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    for accumulate in (False, True):
        c = c0.copy()
        _testing.matmul_grad(a, b, c, accumulate)
        expected = a.astype(np.float64) @ b.astype(np.float64) + (c0 if accumulate else 0)
        np.testing.assert_allclose(c, expected, rtol=tolerance, atol=tolerance * np.sqrt(k))


@pytest.mark.parametrize("k, m, n, ldb", GRAD_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_product_is_the_plain_one_bitwise(k, m, n, ldb, dtype, simd_level):
    rng = np.random.default_rng(k + m * n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, ldb)).astype(dtype)[:, :n]
    plain = np.zeros((m, n), dtype)
    _testing.matmul(a, np.ascontiguousarray(b), plain, False)
    gradient = np.zeros((m, n), dtype)
    _testing.matmul_grad(a, b, gradient, False)
    np.testing.assert_array_equal(gradient, plain)


@pytest.mark.parametrize("n, ldb", [(128, 128), (203, 203), (400, 1024), (1100, 1100),
                                   (2100, 2100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_column_blocks_do_not_change_a_bit(n, ldb, dtype, simd_level):
    """The backward pass gives each thread a block of gate columns, cut at
    multiples of 16 with the last block taking the rest; the result must not
    depend on the cut, or on the number of threads."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((30, 200)).astype(dtype)
    b = rng.standard_normal((200, ldb)).astype(dtype)[:, :n]
    whole = np.zeros((30, n), dtype)
    _testing.matmul_grad(a, b, whole, False)
    for cuts in ([0, 64, n], [0, 64, 128, n], [0, 64 * (n // 128), n], [0, 16, n],
                 [0, 16 * (n // 32), n], [0, 48, 112, n]):
        cuts = sorted(set(cuts))
        blocks = np.zeros((30, n), dtype)
        for start, stop in zip(cuts[:-1], cuts[1:]):
            _testing.matmul_grad(a, b[:, start:stop], blocks[:, start:stop], False)
        np.testing.assert_array_equal(blocks, whole)


@pytest.mark.parametrize("k, n, ldb", [(300, 203, 203), (129, 40, 1100), (5, 17, 17), (260, 1030, 1030),
                                      (130, 2100, 2100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [True, False])
def test_gradient_product_sums_the_columns_of_b_in_order(k, n, ldb, dtype, accumulate,
                                                       simd_level):
    """The bias gradient rides along the weight gradient's product: each
    column of b added up row by row, bitwise as a running sum would, with
    the product itself unchanged."""
    rng = np.random.default_rng(k + n)
    a = rng.standard_normal((7, k)).astype(dtype)
    b = rng.standard_normal((k, ldb)).astype(dtype)[:, :n]
    start_sums = rng.standard_normal(n).astype(dtype)
    start_product = rng.standard_normal((7, n)).astype(dtype)
    sums, product = start_sums.copy(), start_product.copy()
    _testing.matmul_grad(a, b, product, accumulate, sums)
    expected_product = start_product.copy()
    _testing.matmul_grad(a, b, expected_product, accumulate)
    running = np.cumsum(np.vstack([start_sums[None], b]) if accumulate else b, axis=0)[-1]
    np.testing.assert_array_equal(product, expected_product)
    np.testing.assert_array_equal(sums, running)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))  # accurate in relative terms in both tails


# Per element, against float64 math: sigmoid and tanh come within a few ulp.
GATE_RTOL = {np.float32: 1e-6, np.float64: 1e-14}
GATE_ATOL = {np.float32: 1e-37, np.float64: 1e-300}
# Short rows, exact multiples and overlapping tails of every level's vector.
GATE_UNITS = [1, 3, 7, 8, 15, 16, 17, 31, 33, 50, 64, 100, 129]


def gate_inputs(units, dtype, seed):
    """Pre-activations from saturated to tiny, both signs, and a random bias."""
    rng = np.random.default_rng(seed)
    scales = np.array([1e-30, 1e-8, 1e-3, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1e4])
    z = rng.standard_normal((4, units)) * rng.choice(scales, (4, units))
    z[:, ::7] = 0.0
    bias = rng.standard_normal(4 * units) * 0.1
    bias[::5] = 0.0
    c_prev = rng.standard_normal(units) * rng.choice(scales[:8], units)
    return z.astype(dtype), bias.astype(dtype), c_prev.astype(dtype)


def run_gates_forward(z, bias, c_prev, start=0, stop=-1):
    z = z.copy()
    c, h = np.zeros_like(c_prev), np.zeros_like(c_prev)
    _testing.gates_forward(z, bias, c_prev, c, h, start, stop)
    return z, c, h


@pytest.mark.parametrize("units", GATE_UNITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gates_forward_matches_float64_math(units, dtype, simd_level):
    z, bias, c_prev = gate_inputs(units, dtype, units)
    gates, c, h = run_gates_forward(z, bias, c_prev)
    rtol, atol = GATE_RTOL[dtype], GATE_ATOL[dtype]

    pre = (z + bias.reshape(4, units)).astype(np.float64)  # the kernel's rounded sum
    expected = np.stack([sigmoid(pre[0]), sigmoid(pre[1]), np.tanh(pre[2]), sigmoid(pre[3])])
    np.testing.assert_allclose(gates, expected, rtol=rtol, atol=atol)

    # c and h from the kernel's own gates, so that each checks one step.
    i, f, g, o = gates.astype(np.float64)
    c_terms = np.abs(f * c_prev) + np.abs(i * g)
    assert np.all(np.abs(c - (f * c_prev + i * g)) <= 4 * rtol * c_terms + atol)
    np.testing.assert_allclose(h, o * np.tanh(c.astype(np.float64)), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gates_forward_slices_give_the_same_bits(dtype, simd_level):
    """A unit rounds the same whatever slice of the row it is computed in."""
    units = 203
    z, bias, c_prev = gate_inputs(units, dtype, 7)
    whole = run_gates_forward(z, bias, c_prev)
    for start, stop in [(0, 64), (64, 203), (5, 6), (17, 120), (190, 203)]:
        part = run_gates_forward(z, bias, c_prev, start, stop)
        for name, a, b in zip(["gates", "c", "h"], part, whole):
            np.testing.assert_array_equal(a[..., start:stop], b[..., start:stop], name)


def test_float64_sigmoid_and_tanh_are_within_a_few_ulp(simd_level):
    """Over a dense grid, and densely near 0 where tanh must stay accurate in
    relative terms: within 6 ulp of NumPy's (measured: 2-3, NumPy's own
    error included; a degree-8 polynomial for expm1 read 8 and 18)."""
    x = np.concatenate([np.linspace(-40, 40, 20001), np.linspace(-1e-3, 1e-3, 2001),
                        np.linspace(-0.8, 0.8, 4001)])
    z = np.stack([x, np.zeros_like(x), x, np.zeros_like(x)])
    gates, _, _ = run_gates_forward(z, np.zeros(4 * x.size), np.zeros(x.size))
    sigmoid, tanh = 1 / (1 + np.exp(-x)), np.tanh(x)
    nonzero = tanh != 0
    assert np.all(np.abs(gates[0] - sigmoid) <= 6 * np.spacing(sigmoid))
    assert np.all(np.abs(gates[2] - tanh)[nonzero] <= 6 * np.spacing(np.abs(tanh[nonzero])))
    np.testing.assert_array_equal(gates[2][~nonzero], 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gates_propagate_nan_and_bound_infinities(dtype, simd_level):
    z = np.zeros((4, 20), dtype)
    z[0, 3] = np.nan
    z[:, 5] = np.inf
    z[:, 6] = -np.inf
    gates, c, h = run_gates_forward(z, np.zeros(80, dtype), np.zeros(20, dtype))
    assert np.isnan(gates[0, 3]) and np.isnan(c[3]) and np.isnan(h[3])
    # Saturated, within an ulp (a refined reciprocal may land just short of 1).
    rtol, atol = GATE_RTOL[dtype], GATE_ATOL[dtype]
    np.testing.assert_allclose(gates[:, 5], [1, 1, 1, 1], rtol=rtol)
    np.testing.assert_allclose(gates[:, 6], [0, 0, -1, 0], rtol=rtol, atol=atol)
    others = np.ones(20, bool)
    others[3] = False
    assert np.isfinite(gates[:, others]).all() and np.isfinite(h[others]).all()


@pytest.mark.parametrize("units", GATE_UNITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_dy", [True, False])
def test_gates_backward_matches_float64_math(units, dtype, with_dy, simd_level):
    rng = np.random.default_rng(units)
    gates = rng.uniform(0, 1, (4, units))
    gates[2] = rng.uniform(-1, 1, units)
    c_prev, c_t, dh, dy, dc = rng.standard_normal((5, units)) * 2
    args = [a.astype(dtype) for a in (gates, c_prev, c_t, dh, dy, dc)]
    out_gates, out_dc = args[0].copy(), args[5].copy()
    _testing.gates_backward(out_gates, args[1], args[2], args[3], args[4] if with_dy else None,
                         out_dc)

    i, f, g, o = args[0].astype(np.float64)
    c_prev, c_t, dh, dy, dc = (a.astype(np.float64) for a in args[1:])
    dh_t = dh + dy if with_dy else dh
    tc = np.tanh(c_t)
    dc_t = dc + dh_t * o * (1 - tc**2)
    expected = np.stack([dc_t * g * i * (1 - i), dc_t * c_prev * f * (1 - f),
                         dc_t * i * (1 - g**2), dh_t * tc * o * (1 - o)])
    # The sum dc + dh_t * ... may cancel: bound by its terms' size.
    scale = np.abs(dc) + np.abs(dh_t * o)
    tolerance = 8 * GATE_RTOL[dtype]
    assert np.all(np.abs(out_dc - dc_t * f) <= tolerance * scale * f + GATE_ATOL[dtype])
    bound = tolerance * np.stack([scale * np.abs(g * i), scale * np.abs(c_prev * f),
                                  scale * np.abs(i), np.abs(dh_t * o)])
    assert np.all(np.abs(out_gates - expected) <= bound + GATE_ATOL[dtype])


# Lengths around the unrolled loop's stride (4 vectors: 64 floats at AVX-512)
# and its scalar tail.
@pytest.mark.parametrize("n", [1, 15, 16, 17, 63, 64, 65, 203])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_non_finite_value_wherever_it_is(n, dtype, simd_level):
    info = np.finfo(dtype)
    values = np.linspace(-1, 1, n).astype(dtype)
    # The extremes of the finite range are finite.
    values[0], values[-1] = info.max, -info.tiny / 4  # a subnormal
    assert _checks.all_finite(values)
    for bad in (np.nan, np.inf, -np.inf, -np.nan):
        for position in range(n):
            marked = values.copy()
            marked[position] = bad
            assert not _checks.all_finite(marked), (bad, position)


def test_all_finite_of_nothing_is_true():
    assert _checks.all_finite(np.empty(0, np.float32))
    assert _checks.all_finite(np.empty(0, np.float64))


FINGERPRINT_LANES = 64
FNV_PRIME, FNV_SEED = 0x100000001B3, 0xCBF29CE484222325


def _fingerprint_mix(state, word):
    state = ((state ^ word) * FNV_PRIME) % 2**64
    return state ^ (state >> 31)


def _fingerprint_avalanche(lane):
    lane ^= lane >> 33
    lane = lane * 0xFF51AFD7ED558CCD % 2**64
    lane ^= lane >> 33
    lane = lane * 0xC4CEB9FE1A85EC53 % 2**64
    return lane ^ (lane >> 33)


def reference_fingerprint(data):
    """The fingerprint as lstm_fingerprint_impl.h defines it, in Python's
    integers: lane j mixes in the words j, j + 64, ..., then the length, the
    tail bytes and the lanes (each through the avalanche) are mixed into one
    value."""
    raw = data.tobytes()
    lanes = [FNV_SEED + lane for lane in range(FINGERPRINT_LANES)]
    words = len(raw) // 8
    for i in range(words):
        word = int.from_bytes(raw[8 * i:8 * i + 8], "little")
        lanes[i % FINGERPRINT_LANES] = _fingerprint_mix(lanes[i % FINGERPRINT_LANES], word)
    result = _fingerprint_mix(FNV_SEED, len(raw))
    result = _fingerprint_mix(result, int.from_bytes(raw[8 * words:], "little"))
    for state in lanes:
        result = _fingerprint_mix(result, _fingerprint_avalanche(state))
    return result


# Around the 512-byte stripe of 64 lanes, with and without a partial stripe
# of whole words and a tail of bytes.
@pytest.mark.parametrize("n", [0, 1, 7, 8, 203, 511, 512, 513, 520, 1067, 4096 + 13])
def test_fingerprint_is_its_definition_at_every_level(n, simd_level):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    assert _checks.fingerprint(data) == reference_fingerprint(data)


def test_fingerprint_sees_every_bit(simd_level):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 1067, dtype=np.uint8)  # 2 stripes, 5 words and 3 bytes
    reference = _checks.fingerprint(data)
    assert _checks.fingerprint(data.copy()) == reference
    seen = {reference}
    for byte in range(data.size):
        for bit in range(8):
            changed = data.copy()
            changed[byte] ^= 1 << bit
            seen.add(_checks.fingerprint(changed))
    assert len(seen) == 1 + 8 * data.size
    # Top bits of two words of one lane (64 words apart) flipped together.
    both = data.copy()
    both[7] ^= 0x80
    both[7 + 8 * FINGERPRINT_LANES] ^= 0x80
    assert _checks.fingerprint(both) != reference
    assert _checks.fingerprint(data[:-1]) != reference
    assert _checks.fingerprint(np.zeros(0, np.uint8)) != _checks.fingerprint(np.zeros(1, np.uint8))


@pytest.mark.parametrize("bit", [31, 61, 63])
def test_fingerprint_tells_apart_the_same_flip_in_any_two_words(bit, simd_level):
    # Such structured changes (the signs of two values, say) are what a
    # lane's cheap mix alone could let cancel across lanes.
    words = np.random.default_rng(1).integers(0, 2**63, 133, dtype=np.uint64)
    seen = {_checks.fingerprint(words.view(np.uint8))}
    for a in range(words.size):
        for b in range(a + 1, words.size):
            changed = words.copy()
            changed[[a, b]] ^= np.uint64(1 << bit)
            seen.add(_checks.fingerprint(changed.view(np.uint8)))
    assert len(seen) == 1 + words.size * (words.size - 1) // 2

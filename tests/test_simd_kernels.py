"""The SIMD kernels on their own: the per-step product at every SIMD level."""
import numpy as np
import pytest

from fastlstm import _lstm


@pytest.fixture(params=_lstm.simd_levels())
def simd_level(request):
    _lstm.set_simd_level(request.param)
    yield request.param
    _lstm.set_simd_level(None)


# m rows of a batch part; n, k cover full panels, single vectors and a tail
# narrower than a vector, and sizes smaller than one vector.
@pytest.mark.parametrize("m, n, k", [(16, 512, 128), (7, 203, 37), (1, 200, 50), (5, 3, 2),
                                     (33, 64, 1), (4, 17, 9), (2, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [True, False])
def test_matmul_matches_numpy(m, n, k, dtype, accumulate, simd_level):
    rng = np.random.default_rng(m * n + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = c0.copy()
    _lstm.matmul(a, b, c, accumulate)
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
    _lstm.matmul(a, b, block, True)
    for start, stop in [(0, 1), (3, 5), (5, 16), (16, 19)]:
        part = c0[start:stop].copy()
        _lstm.matmul(a[start:stop], b, part, True)
        np.testing.assert_array_equal(part, block[start:stop])


def test_matmul_reads_strided_rows():
    rng = np.random.default_rng(1)
    big_a = rng.standard_normal((10, 30))
    b = rng.standard_normal((12, 20))
    big_c = np.zeros((10, 50))
    _lstm.matmul(big_a[::2, 3:15], b, big_c[::2, 5:25], False)
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
        _lstm.matmul(a, b, unpacked, accumulate)
        _lstm.matmul(a, b, packed, accumulate, packed=True)
        np.testing.assert_array_equal(packed, unpacked)


def test_packed_product_writes_only_its_columns():
    rng = np.random.default_rng(2)
    big_a = rng.standard_normal((10, 30)).astype(np.float32)
    b = rng.standard_normal((12, 21)).astype(np.float32)
    big_c = np.zeros((10, 50), np.float32)
    _lstm.matmul(big_a[::2, 3:15], b, big_c[::2, 5:26], False, packed=True)
    np.testing.assert_allclose(big_c[::2, 5:26], big_a[::2, 3:15] @ b, rtol=1e-5, atol=1e-5)
    assert not big_c[1::2].any() and not big_c[:, :5].any() and not big_c[:, 26:].any()

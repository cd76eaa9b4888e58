"""The NumPy reference against central finite differences and basic identities."""
import numpy as np
import pytest
from conftest import Problem, relative_error, run_python

from fastlstm import reference


def _loss_weights(problem, seed=1):
    rng = np.random.default_rng(seed)
    b, t, _, u = problem.shape
    return rng.standard_normal((b, t, u)), rng.standard_normal((b, u)), rng.standard_normal((b, u))


def _loss(args, weights):
    """A scalar that depends on y, h_n and c_n: sum(y*wy) + sum(h_n*wh) + sum(c_n*wc)."""
    y, h_n, c_n = reference.lstm_forward(*args)
    wy, wh, wc = weights
    return np.sum(y * wy) + np.sum(h_n * wh) + np.sum(c_n * wc)


def _numerical_gradient(args, index, weights, eps=1e-6):
    args = [a.copy() for a in args]
    target = args[index]
    grad = np.zeros_like(target)
    for pos in np.ndindex(target.shape):
        saved = target[pos]
        target[pos] = saved + eps
        plus = _loss(args, weights)
        target[pos] = saved - eps
        minus = _loss(args, weights)
        target[pos] = saved
        grad[pos] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("shape", [(2, 3, 2, 3), (1, 4, 1, 1), (3, 2, 3, 2)])
def test_gradients_match_finite_differences(shape):
    problem = Problem(*shape, dtype=np.float64, seed=sum(shape))
    weights = _loss_weights(problem)
    _, _, _, cache = reference.lstm_forward(*problem.inputs, return_cache=True)
    grads = reference.lstm_backward(cache, *weights)
    names = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"]
    for index, name in enumerate(names):
        numerical = _numerical_gradient(problem.inputs, index, weights)
        assert relative_error(getattr(grads, name), numerical) < 1e-7, name


def test_split_sequence_equals_whole_sequence():
    problem = Problem(3, 6, 2, 4)
    y, h_n, c_n = reference.lstm_forward(*problem.inputs)
    x, kernel, recurrent_kernel, bias, h0, c0 = problem.inputs
    y1, h1, c1 = reference.lstm_forward(x[:, :2], kernel, recurrent_kernel, bias, h0, c0)
    y2, h2, c2 = reference.lstm_forward(x[:, 2:], kernel, recurrent_kernel, bias, h1, c1)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(h2, h_n, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(c2, c_n, rtol=1e-14, atol=1e-14)


def test_one_step_matches_the_equations():
    p = Problem(2, 1, 3, 2)
    y, h_n, c_n = reference.lstm_forward(*p.inputs)
    z = p.x[:, 0] @ p.kernel + p.h0 @ p.recurrent_kernel + p.bias
    i, f, g, o = (z[:, k * 2:(k + 1) * 2] for k in range(4))

    def sig(v):
        return 1 / (1 + np.exp(-v))

    c = sig(f) * p.c0 + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    np.testing.assert_allclose(c_n, c, rtol=1e-13)
    np.testing.assert_allclose(h_n, h, rtol=1e-13)
    np.testing.assert_allclose(y[:, 0], h, rtol=1e-13)


def test_float32_in_float32_out():
    y, h_n, c_n = reference.lstm_forward(*Problem(2, 3, 2, 3, dtype=np.float32).inputs)
    assert y.dtype == h_n.dtype == c_n.dtype == np.float32


def test_empty_time_returns_initial_state():
    p = Problem(2, 0, 3, 4)
    y, h_n, c_n = reference.lstm_forward(*p.inputs)
    assert y.shape == (2, 0, 4)
    np.testing.assert_array_equal(h_n, p.h0)
    np.testing.assert_array_equal(c_n, p.c0)


def test_initial_states_changed_after_forward_do_not_change_the_gradients():
    p = Problem(3, 4, 2, 5)
    _, _, _, cache = reference.lstm_forward(*p.inputs, return_cache=True)
    expected = reference.lstm_backward(
        reference.lstm_forward(*p.inputs, return_cache=True)[3], *p.output_grads)
    p.h0[...] = 9.0
    p.c0[...] = -9.0
    for a, e in zip(reference.lstm_backward(cache, *p.output_grads), expected):
        np.testing.assert_array_equal(a, e)


def test_the_reference_needs_no_compiled_code(tmp_path):
    """The oracle and what it imports, copied alone into a package beside no
    compiled module, import and run: it cannot share a bug with the kernels."""
    import pathlib
    import shutil

    source = pathlib.Path(reference.__file__).parent
    package = tmp_path / "fastlstm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("reference.py", "_validation.py", "_types.py"):
        shutil.copy(source / name, package / name)
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
              "import numpy as np\n"
              "from fastlstm import reference\n"
              "y, h, c = reference.lstm_forward(np.ones((1, 2, 1)), np.ones((1, 4)),"
              " np.ones((1, 4)), np.zeros(4))\n"
              "compiled = [m for m in sys.modules if m.startswith('fastlstm._') and"
              " m not in ('fastlstm._validation', 'fastlstm._types')]\n"
              "print(y.shape, compiled)")
    assert run_python(script) == "(1, 2, 1) []"
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        reference.lstm_forward(np.full((1, 2, 1), np.nan), np.ones((1, 4)), np.ones((1, 4)),
                               np.zeros(4))

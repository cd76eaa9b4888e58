# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""One-pass kernels for the model layer's elementwise steps: dropout's mask
and the optimizers' updates.

NumPy takes one pass, and one temporary array, per operation; these steps
are five to ten operations over every activation or weight, and in the
classic network's fit they took about 9% of an epoch. Here each is one
loop. Each element goes through the operations NumPy would apply, in the
same order and the same precision, so the results are bitwise NumPy's
(setup.py compiles this module with -ffp-contract=off so that GCC does not
fuse a multiply and an add into one rounding).

The callers in fastlstm pass 1-D C-contiguous arrays of one dtype; the
kernels check only that the lengths agree, so that no loop runs past an
array.
"""
from cython cimport floating
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport uint16_t


cdef inline floating _sqrt(floating x) noexcept nogil:
    """In the operand's precision: a float through sqrt() would also round
    the division after it as a double."""
    if floating is float:
        return sqrtf(x)
    return sqrt(x)


cdef _check_lengths(name, Py_ssize_t n, lengths):
    for other, length in lengths.items():
        if length != n:
            raise ValueError(f"{name}: {other} has {length} elements, expected {n}")


def dropout(const floating[::1] x, const uint16_t[::1] bits, uint16_t threshold,
            double scale, floating[::1] out):
    """out = x * (scale if bits >= threshold else 0), elementwise.

    x, out : (n,); bits : (n,) random 16-bit values. A dropped NaN or inf
    stays NaN, as x * mask would leave it.
    """
    cdef Py_ssize_t i
    cdef floating kept = <floating> scale
    _check_lengths("dropout", x.shape[0], {"bits": bits.shape[0], "out": out.shape[0]})
    with nogil:
        for i in range(x.shape[0]):
            out[i] = x[i] * (kept if bits[i] >= threshold else <floating> 0)


def rmsprop_update(floating[::1] weight, const floating[::1] grad,
                   floating[::1] mean_square, double learning_rate, double rho,
                   double one_minus_rho, double epsilon):
    """mean_square = rho * mean_square + (1 - rho) * grad**2;
    weight -= learning_rate * grad / sqrt(mean_square + epsilon). All (n,).

    The scalars arrive as the caller rounded them (1 - rho included, which
    rounds differently from 1 - rho computed here) and are used in the
    arrays' precision."""
    cdef Py_ssize_t i
    cdef floating g, ms
    cdef floating lr = <floating> learning_rate, rho_ = <floating> rho
    cdef floating rest = <floating> one_minus_rho, eps = <floating> epsilon
    _check_lengths("rmsprop_update", weight.shape[0],
                   {"grad": grad.shape[0], "mean_square": mean_square.shape[0]})
    with nogil:
        for i in range(weight.shape[0]):
            g = grad[i]
            ms = mean_square[i] * rho_ + rest * g * g
            mean_square[i] = ms
            weight[i] -= lr * g / _sqrt(ms + eps)


def adam_update(floating[::1] weight, const floating[::1] grad, floating[::1] m,
                floating[::1] v, double step, double one_minus_beta_1,
                double one_minus_beta_2, double epsilon):
    """m += (1 - beta_1) (grad - m); v += (1 - beta_2) (grad**2 - v);
    weight -= step * m / (sqrt(v) + epsilon). All (n,); step carries the
    learning rate and the bias correction. Scalars as in rmsprop_update."""
    cdef Py_ssize_t i
    cdef floating g, mi, vi
    cdef floating step_ = <floating> step, eps = <floating> epsilon
    cdef floating rest_1 = <floating> one_minus_beta_1, rest_2 = <floating> one_minus_beta_2
    _check_lengths("adam_update", weight.shape[0],
                   {"grad": grad.shape[0], "m": m.shape[0], "v": v.shape[0]})
    with nogil:
        for i in range(weight.shape[0]):
            g = grad[i]
            mi = m[i] + rest_1 * (g - m[i])
            vi = v[i] + rest_2 * (g * g - v[i])
            m[i] = mi
            v[i] = vi
            weight[i] -= step_ * mi / (_sqrt(vi) + eps)

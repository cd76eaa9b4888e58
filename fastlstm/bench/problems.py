"""One benchmark problem: a shape, a dtype, and the same data for every peer."""
from dataclasses import dataclass, field

import numpy as np


def lstm_forward_flops(batch, time_steps, features, units):
    """2 * T * B * 4H * (I + H): the multiply-adds of an LSTM layer's two products,
    counted twice (a multiply and an add)."""
    return 2 * time_steps * batch * 4 * units * (features + units)


@dataclass
class Problem:
    """Inputs of one LSTM layer in Keras layout, shared by every peer.

    Parameters
    ----------
    batch, time_steps, features, units : int
    dtype : {"float32", "float64"}
    seed : int
    """

    batch: int
    time_steps: int
    features: int
    units: int
    dtype: str = "float32"
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)                 # (batch, time, features)
    kernel: np.ndarray = field(init=False, repr=False)            # (features, 4 * units)
    recurrent_kernel: np.ndarray = field(init=False, repr=False)  # (units, 4 * units)
    bias: np.ndarray = field(init=False, repr=False)              # (4 * units,)
    dy: np.ndarray = field(init=False, repr=False)                # (batch, time, units)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        b, t, i, h = self.shape

        def draw(shape, scale=1.0):
            return (scale * rng.standard_normal(shape)).astype(self.dtype)

        self.x = draw((b, t, i))
        self.kernel = draw((i, 4 * h), 1 / np.sqrt(i))
        self.recurrent_kernel = draw((h, 4 * h), 1 / np.sqrt(h))
        self.bias = draw(4 * h, 0.1)
        self.dy = draw((b, t, h))

    @property
    def shape(self):
        """(batch, time_steps, features, units)."""
        return (self.batch, self.time_steps, self.features, self.units)

    @property
    def weights(self):
        """(x, kernel, recurrent_kernel, bias), the positional arguments of lstm_forward."""
        return self.x, self.kernel, self.recurrent_kernel, self.bias

    def forward_flops(self):
        """2 * T * B * 4H * (I + H): the multiply-adds of both products."""
        return lstm_forward_flops(*self.shape)

    def training_flops(self):
        """Forward plus backward, the backward counted as twice the forward."""
        return 3 * self.forward_flops()

    def activation_bytes(self):
        """Bytes backward needs from forward: per (batch, time, unit) the four
        gates, the cell and the hidden state, plus x for the kernel's gradient."""
        b, t, i, h = self.shape
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * b * t * (6 * h + i)

    def gradient_bytes(self):
        """Bytes of what backward returns: dx, the three weight gradients, dh0, dc0."""
        b, t, i, h = self.shape
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * (b * t * i + 4 * h * (i + h + 1) + 2 * b * h)

"""One benchmark problem: a cell, a shape, a dtype, and the same data for every peer."""
from dataclasses import dataclass, field
from functools import partial

import numpy as np


@dataclass(frozen=True)
class Cell:
    """What the benchmark needs to know of one recurrent cell.

    Parameters
    ----------
    name : str
        The name ``--cells`` takes.
    title : str
        The name the report prints.
    gates : int
        Gate blocks per unit: the weights have G = gates * units columns.
    bias_rows : int or None
        None: the bias is one vector (G,); else a (bias_rows, G) array
        (the GRU's input and recurrent rows).
    states : int
        Recurrent states carried between steps: 2 for the LSTM (h, c), else 1.
    function : str
        Stem of its fastlstm.functional and fastlstm.reference functions
        (``stem + "_forward"``, ``stem + "_backward"``).
    options : tuple of (str, object)
        Keyword arguments of its forward function that select the variant.
    cached_per_unit : int
        Values per (batch, time, unit) its backward needs from its forward.
    """

    name: str
    title: str
    gates: int
    bias_rows: object
    states: int
    function: str
    options: tuple
    cached_per_unit: int

    def bias_shape(self, units):
        """The bias' shape for `units` units."""
        width = self.gates * units
        return (width,) if self.bias_rows is None else (self.bias_rows, width)

    def forward(self, module):
        """`module`'s forward function of this cell, the variant's options bound."""
        return partial(getattr(module, self.function + "_forward"), **dict(self.options))

    def backward(self, module):
        """`module`'s backward function of this cell."""
        return getattr(module, self.function + "_backward")


CELLS = {cell.name: cell for cell in (
    Cell("lstm", "LSTM", 4, None, 2, "lstm", (), 6),
    Cell("gru", "GRU", 3, 2, 1, "gru", (("reset_after", True),), 5),
    Cell("simple_rnn", "SimpleRNN", 1, None, 1, "simple_rnn", (("activation", "tanh"),), 2),
)}


def recurrent_forward_flops(batch, time_steps, features, units, gates):
    """2 * T * B * G * (I + H), G = gates * H: the multiply-adds of a
    recurrent layer's two products, counted twice (a multiply and an add)."""
    return 2 * time_steps * batch * gates * units * (features + units)


def lstm_forward_flops(batch, time_steps, features, units):
    """2 * T * B * 4H * (I + H): the multiply-adds of an LSTM layer's two products,
    counted twice (a multiply and an add)."""
    return recurrent_forward_flops(batch, time_steps, features, units, 4)


@dataclass
class Problem:
    """Inputs of one recurrent layer in Keras layout, shared by every peer.

    Parameters
    ----------
    batch, time_steps, features, units : int
    dtype : {"float32", "float64"}
    seed : int
    cell : str
        A key of CELLS.
    """

    batch: int
    time_steps: int
    features: int
    units: int
    dtype: str = "float32"
    seed: int = 0
    cell: str = "lstm"
    x: np.ndarray = field(init=False, repr=False)                 # (batch, time, features)
    kernel: np.ndarray = field(init=False, repr=False)            # (features, G)
    recurrent_kernel: np.ndarray = field(init=False, repr=False)  # (units, G)
    bias: np.ndarray = field(init=False, repr=False)              # spec.bias_shape(units)
    dy: np.ndarray = field(init=False, repr=False)                # (batch, time, units)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        b, t, i, h = self.shape
        width = self.spec.gates * h

        def draw(shape, scale=1.0):
            return (scale * rng.standard_normal(shape)).astype(self.dtype)

        self.x = draw((b, t, i))
        self.kernel = draw((i, width), 1 / np.sqrt(i))
        self.recurrent_kernel = draw((h, width), 1 / np.sqrt(h))
        self.bias = draw(self.spec.bias_shape(h), 0.1)
        self.dy = draw((b, t, h))

    @property
    def spec(self):
        """The Cell this problem runs."""
        return CELLS[self.cell]

    @property
    def shape(self):
        """(batch, time_steps, features, units)."""
        return (self.batch, self.time_steps, self.features, self.units)

    @property
    def weights(self):
        """(x, kernel, recurrent_kernel, bias), the positional arguments of the
        cell's forward function."""
        return self.x, self.kernel, self.recurrent_kernel, self.bias

    def forward_flops(self):
        """2 * T * B * G * (I + H): the multiply-adds of both products."""
        return recurrent_forward_flops(*self.shape, self.spec.gates)

    def training_flops(self):
        """Forward plus backward, the backward counted as twice the forward."""
        return 3 * self.forward_flops()

    def activation_bytes(self):
        """Bytes backward needs from forward: per (batch, time, unit) the
        cell's cached values (the LSTM's four gates, cell and hidden state),
        plus x for the kernel's gradient."""
        b, t, i, h = self.shape
        itemsize = np.dtype(self.dtype).itemsize
        return itemsize * b * t * (self.spec.cached_per_unit * h + i)

    def gradient_bytes(self):
        """Bytes of what backward returns: dx, the three weight gradients and
        the initial states' gradients."""
        b, t, i, h = self.shape
        itemsize = np.dtype(self.dtype).itemsize
        weights = self.kernel.size + self.recurrent_kernel.size + self.bias.size
        return itemsize * (b * t * i + weights + self.spec.states * b * h)

"""Layers for fastlstm.Sequential, named and shaped as in Keras.

A layer is built from the shape of one sample (no batch axis), then runs
``forward(x, training)`` and, after a training forward, ``backward(dy)``,
which stores the weight gradients in ``grads`` and returns dx. A model's
first layer runs ``backward_weights(dy)`` instead: its input is data, so
only the weight gradients are needed. Weights live in ``weights`` in Keras'
order and layout, float32.
"""
import numpy as np

from . import _elementwise, functional, initializers, serialization
from ._random import generator
from ._validation import checked_int

__all__ = ["Layer", "LSTM", "Dense", "Dropout"]

# Far beyond any CPU model, and small enough that 4 * units stays a 32-bit
# BLAS index.
MAX_UNITS = 2**20
# One weight array may hold at most this many values: the kernels' BLAS
# indices are 32-bit.
MAX_WEIGHT_ELEMENTS = 2**31 - 1


def checked_sample_shape(shape):
    """The shape of one sample (no batch axis) as a tuple of ints >= 1."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"an input shape is a tuple of ints, got {shape!r}") from None
    if not dims or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                           and d >= 1 for d in dims):
        raise ValueError(f"an input shape (without the batch axis) must be a non-empty "
                         f"tuple of ints >= 1, got {shape!r}")
    return tuple(int(d) for d in dims)


def check_weight_sizes(layer, shapes):
    """Refuse weights too large for the kernels before allocating them."""
    for shape in shapes:
        size = int(np.prod(shape, dtype=object))
        if size > MAX_WEIGHT_ELEMENTS:
            raise ValueError(f"layer {layer.name!r} would need a weight of shape {shape} "
                             f"({size:,} values); at most {MAX_WEIGHT_ELEMENTS:,} are supported")


class Layer(serialization.Serializable, kind="layer"):
    """Base class. Subclasses define weight_shapes, _initial_weights, forward,
    backward and compute_output_shape.

    A subclass registers itself for ``load_model`` when it is defined (see
    fastlstm.serialization); ``get_config`` must return the keyword
    arguments that rebuild it, which the default ``from_config`` passes to
    the constructor.
    """

    # A layer that returns several arrays (its states too) cannot sit inside
    # Sequential, which passes one output on.
    return_state = False

    def __init__(self, input_shape=None, name=None):
        self.input_shape = None if input_shape is None else checked_sample_shape(input_shape)
        self.name = name or type(self).__name__.lower()
        self.weights = []
        self.grads = []
        self.built = False

    def build(self, input_shape):
        """Create the weights for samples of `input_shape`; returns the output shape."""
        self.input_shape = checked_sample_shape(input_shape)
        check_weight_sizes(self, self.weight_shapes(self.input_shape))
        # C-contiguous float32, whatever the initializer returned: the
        # optimizers update the weights in place through flat views, and the
        # kernels would otherwise copy them on every call.
        self.weights = [np.ascontiguousarray(w, dtype=np.float32)
                        for w in self._initial_weights(self.input_shape)]
        self.built = True
        return self.compute_output_shape(self.input_shape)

    def weight_shapes(self, input_shape):
        """The shapes of the weights for samples of `input_shape`, in
        ``get_weights()`` order; known before anything is allocated."""
        return []

    def _initial_weights(self, input_shape):
        """Freshly initialized weights, shaped as ``weight_shapes`` says."""
        return []

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def backward_weights(self, dy):
        """Store the weight gradients in ``grads`` like ``backward``, without
        returning dx; layers override it to skip computing dx."""
        self.backward(dy)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_config(self):
        return {"name": self.name}

    def __call__(self, x, training=False):
        if not self.built:
            self.build(np.shape(x)[1:])
        return self.forward(np.asarray(x, dtype=np.float32), training)


class LSTM(Layer):
    """Long short-term memory layer (Keras' ``keras.layers.LSTM`` weights and defaults).

    Parameters
    ----------
    units : int
    return_sequences : bool
        Output the hidden state of every step, (batch, time, units), instead
        of the last one, (batch, units).
    return_state : bool
        Calling the layer also returns the final h and c (outside Sequential).
    input_shape : tuple (time, features), optional
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
    unit_forget_bias : bool
        Start the forget gate's bias at 1.

    Weights: kernel (features, 4 * units), recurrent_kernel (units, 4 * units),
    bias (4 * units,), gate blocks i, f, c, o.
    """

    def __init__(self, units, return_sequences=False, return_state=False, input_shape=None,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, name=None):
        super().__init__(input_shape, name)
        self.units = checked_int("units", units, 1, MAX_UNITS)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._initializer_names = (kernel_initializer, recurrent_initializer, bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._cache = None

    def weight_shapes(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"LSTM expects samples of shape (time, features), got {input_shape}")
        features, units = input_shape[1], self.units
        return [(features, 4 * units), (units, 4 * units), (4 * units,)]

    def _initial_weights(self, input_shape):
        kernel, recurrent, bias = self.weight_shapes(input_shape)
        bias = self.bias_initializer(bias)
        if self.unit_forget_bias:
            bias[self.units:2 * self.units] = 1.0
        return [self.kernel_initializer(kernel), self.recurrent_initializer(recurrent), bias]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def forward(self, x, training=False):
        kernel, recurrent_kernel, bias = self.weights
        if training:
            # The layer owns its weights and its input is a fresh array of
            # the previous layer's: nothing changes them before backward, so
            # the cache's fingerprints would guard nothing.
            y, h_n, c_n, self._cache = functional.lstm_forward(
                x, kernel, recurrent_kernel, bias, return_cache=True, check_finite=False,
                guard_inputs=False)
        else:
            y, h_n, c_n = functional.lstm_forward(x, kernel, recurrent_kernel, bias,
                                                  check_finite=False)
        output = y if self.return_sequences else h_n
        return (output, h_n, c_n) if self.return_state and not training else output

    def backward(self, dy):
        return self._backward(dy, input_grad=True)

    def backward_weights(self, dy):
        self._backward(dy, input_grad=False)

    def _backward(self, dy, input_grad):
        dy_seq, dh_n = (dy, None) if self.return_sequences else (None, dy)
        grads = functional.lstm_backward(self._cache, dy_seq, dh_n=dh_n, check_finite=False,
                                         input_grad=input_grad)
        self._cache = None
        self.grads = [grads.dkernel, grads.drecurrent_kernel, grads.dbias]
        return grads.dx

    def get_config(self):
        # A callable initializer cannot be written down; a loaded model takes its
        # weights from the file anyway, so the default names stand in for it.
        defaults = ("glorot_uniform", "orthogonal", "zeros")
        kernel, recurrent, bias = (name if isinstance(name, str) else default
                                   for name, default in zip(self._initializer_names, defaults))
        return {"name": self.name, "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "kernel_initializer": kernel, "recurrent_initializer": recurrent,
                "bias_initializer": bias, "unit_forget_bias": self.unit_forget_bias}


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# name -> (activation, derivative from the activation's output a)
_ACTIVATIONS = {
    "linear": (lambda z: z, lambda a: 1.0),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a: 1.0 - a * a),
    "sigmoid": (_sigmoid, lambda a: a * (1.0 - a)),
}


class Dense(Layer):
    """Fully connected layer over the last axis: activation(x @ kernel + bias).

    Parameters
    ----------
    units : int
    activation : None, "linear", "relu", "tanh" or "sigmoid"

    Weights: kernel (features, units), bias (units,).
    """

    def __init__(self, units, activation=None, input_shape=None, name=None):
        super().__init__(input_shape, name)
        units = checked_int("units", units, 1, MAX_UNITS)
        name_ = "linear" if activation is None else activation
        if name_ not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: None, "
                             + ", ".join(repr(n) for n in _ACTIVATIONS))
        self.units = int(units)
        self.activation = name_
        self._activate, self._derivative = _ACTIVATIONS[name_]
        self._x = self._a = None

    def weight_shapes(self, input_shape):
        return [(input_shape[-1], self.units), (self.units,)]

    def _initial_weights(self, input_shape):
        kernel, bias = self.weight_shapes(input_shape)
        return [initializers.glorot_uniform(kernel), initializers.zeros(bias)]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        kernel, bias = self.weights
        a = self._activate(x @ kernel + bias).astype(np.float32, copy=False)
        if training:
            self._x, self._a = x, a
        return a

    def backward(self, dy):
        dz = self._weight_grads(dy)
        return (dz @ self.weights[0].T).astype(np.float32, copy=False)

    def backward_weights(self, dy):
        self._weight_grads(dy)

    def _weight_grads(self, dy):
        """Store the weight gradients; returns dz, the gradient before the activation."""
        kernel, _ = self.weights
        dz = dy * self._derivative(self._a)
        x2d, dz2d = self._x.reshape(-1, kernel.shape[0]), dz.reshape(-1, self.units)
        self.grads = [(x2d.T @ dz2d).astype(np.float32), dz2d.sum(axis=0).astype(np.float32)]
        self._x = self._a = None
        return dz

    def get_config(self):
        return {"name": self.name, "units": self.units, "activation": self.activation}


class Dropout(Layer):
    """Inverted dropout: in training, zero a fraction `rate` of the inputs and
    scale the rest by 1 / (1 - rate); at inference, pass x through."""

    def __init__(self, rate, input_shape=None, name=None):
        super().__init__(input_shape, name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self._mask = self._mask_shape = None

    def forward(self, x, training=False):
        if not training:
            return x  # leaves the mask of a training pass in flight alone
        if self.rate == 0.0:
            self._mask = None
            return x
        # 16 random bits per value, the bit generator's raw output: steps of
        # 1/65536 keep the drop probability within 1e-5 of `rate`. The bits
        # are the mask that backward applies again.
        self._mask = generator().bit_generator.random_raw(-(-x.size // 4)).view(np.uint16)[:x.size]
        self._mask_shape = np.shape(x)
        return self._apply_mask(x)

    def backward(self, dy):
        return dy if self._mask is None else self._apply_mask(dy)

    def backward_weights(self, dy):
        pass  # no weights

    def _apply_mask(self, x):
        """x * (1 / (1 - rate) where the mask keeps, else 0), in one pass."""
        x = np.asarray(x)
        if x.shape != self._mask_shape:
            raise ValueError(f"dropout: got {x.shape}, but the mask was drawn for "
                             f"{self._mask.size} values of shape {self._mask_shape}")
        x = np.ascontiguousarray(x, dtype=x.dtype if x.dtype in (np.float32, np.float64)
                                 else np.float32)
        out = np.empty_like(x)
        threshold = min(round(self.rate * 65536), 65535)  # a uint16
        _elementwise.dropout(x.reshape(-1), self._mask, threshold,
                             np.float32(1.0 / (1.0 - self.rate)), out.reshape(-1))
        return out

    def get_config(self):
        return {"name": self.name, "rate": self.rate}

"""Layers for fastlstm.Sequential, named and shaped as in Keras.

A layer is built from the shape of one sample (no batch axis), then runs
``forward(x, training)`` and, after a training forward, ``backward(dy)``,
which stores the weight gradients in ``grads`` and returns dx. A model's
first layer runs ``backward_weights(dy)`` instead: its input is data, so
only the weight gradients are needed. Weights live in ``weights`` in Keras'
order and layout, float32.

Masks follow Keras: ``Masking`` makes one, (batch, time) bool, True where a
step is data; a layer that takes masks (``takes_mask``) gets it as
``forward(x, training, mask=mask)``, and ``compute_mask`` says what a layer
passes on (Dropout and a Dense over steps pass it, a recurrent layer passes
it when it returns sequences).
"""
import numpy as np

from . import _elementwise, _sample_blocks, _teams, functional, initializers, serialization
from ._random import generator
from ._sequences import MaskedSteps
from ._threads import get_num_threads, threads
from ._validation import checked_int, refuse_unsupported

__all__ = ["Input", "Layer", "Recurrent", "LSTM", "GRU", "SimpleRNN", "Bidirectional",
           "Dense", "Dropout", "Masking", "TimeDistributed"]


class Input:
    """The shape of a model's samples, as the first element of a Sequential
    (Keras' ``keras.Input(shape)``); not a layer.

    Parameters
    ----------
    shape : tuple
        One sample's shape, without the batch axis; None for any length
        (``(None, features)`` takes sequences of any length).
    name : str, optional
    """

    def __init__(self, shape, name=None, **unsupported):
        refuse_unsupported("Input", unsupported)
        self.shape = checked_sample_shape(shape)
        self.name = name or "input"

# Far beyond any CPU model, and small enough that 4 * units stays a 32-bit
# BLAS index.
MAX_UNITS = 2**20
# One weight array may hold at most this many values: the kernels' BLAS
# indices are 32-bit.
MAX_WEIGHT_ELEMENTS = 2**31 - 1


def checked_sample_shape(shape):
    """The shape of one sample (no batch axis) as a tuple of ints >= 1, None
    standing for any length in every axis but the last (the features), as
    in Keras' ``input_shape=(None, features)``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"an input shape is a tuple of ints, got {shape!r}") from None

    def is_size(d):
        return isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1

    if not dims or not is_size(dims[-1]) or not all(d is None or is_size(d) for d in dims):
        raise ValueError(f"an input shape (without the batch axis) must be a non-empty "
                         f"tuple of ints >= 1 (None for any length, except in the last "
                         f"axis), got {shape!r}")
    return tuple(None if d is None else int(d) for d in dims)


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
    # Whether forward takes a mask argument.
    takes_mask = False

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

    def compute_mask(self, x, mask):
        """The mask this layer passes on, given its input x and the mask it
        received (None: no mask). By default none."""
        return None

    def backward_weights(self, dy):
        """Store the weight gradients in ``grads`` like ``backward``, without
        returning dx; layers override it to skip computing dx."""
        self.backward(dy)

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_weights(self):
        """Copies of the weights, in Keras' order and layouts."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Load weights as ``get_weights`` returns them (or Keras' layer.get_weights()).

        Parameters
        ----------
        weights : list of array_like
            One real array per weight, shaped like it; stored as float32.

        Raises
        ------
        RuntimeError
            The layer is not built.
        ValueError
            A count, shape or value (NaN, infinity) that does not fit.
        """
        if not self.built:
            raise RuntimeError(f"{self.name}: set_weights needs a built layer; call "
                               "build(input_shape) first")
        arrays = [np.asarray(w) for w in weights]
        if len(arrays) != len(self.weights):
            raise ValueError(f"{self.name}: expected {len(self.weights)} arrays, "
                             f"got {len(arrays)}")
        for i, (target, value) in enumerate(zip(self.weights, arrays)):
            if value.dtype.kind not in "biuf" or value.shape != target.shape:
                raise ValueError(f"{self.name}: weight {i} must be a real array of shape "
                                 f"{target.shape}, got {value.dtype} {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{self.name}: weight {i} contains NaN or infinity")
        for target, value in zip(self.weights, arrays):
            np.copyto(target, value.astype(np.float32, copy=False))

    def get_config(self):
        return {"name": self.name}

    def __call__(self, x, training=False):
        if not self.built:
            self.build(np.shape(x)[1:])
        return self.forward(np.asarray(x, dtype=np.float32), training)


def _call_with_states(layer, x, training, initial_state, mask):
    """A recurrent (or Bidirectional) layer's call: built from x if need be,
    then forward with its initial states and mask."""
    if not layer.built:
        layer.build(np.shape(x)[1:])
    return layer.forward(np.asarray(x, dtype=np.float32), training, initial_state, mask)


def _checked_rate(argument, rate):
    """A dropout rate in [0, 1), or a ValueError naming `argument`."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
            or not 0.0 <= rate < 1.0:
        raise ValueError(f"{argument} must be a number in [0, 1), got {rate!r}")
    return float(rate)


def _dropout_mask(shape, rate):
    """Keep each value with probability 1 - rate, scaled by 1 / (1 - rate); float32."""
    keep = generator().random(shape) >= rate
    return keep.astype(np.float32) * np.float32(1.0 / (1.0 - rate))


class Recurrent(Layer, kind="layer"):
    """Base of the recurrent layers: LSTM, GRU and SimpleRNN.

    A subclass runs one cell of fastlstm.functional over samples of shape
    (time, features). It names its weights in ``_weight_specs`` (kernel,
    recurrent_kernel, an optional bias, then any weights of its own), calls
    its cell in ``_cell_forward`` and ``_cell_backward``, and takes each
    weight's gradient from the cell's gradients by name (``d`` + weight
    name). This class does the rest: the units, output and state options,
    the initializers and their config, the training cache, and backward.

    Parameters
    ----------
    units : int
        Size of the hidden state.
    return_sequences : bool
        Output the hidden state of every step, (batch, time, units), instead
        of the last one, (batch, units).
    return_state : bool
        Calling the layer also returns its final states (outside Sequential).
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
        Names from fastlstm.initializers, or callables shape -> array.
    use_bias : bool
        With False the cell runs with a zero bias that is no weight: it is
        neither trained nor in ``get_weights()``, as in Keras.
    input_shape : tuple (time, features), optional
    name : str, optional
    dropout, recurrent_dropout : float in [0, 1)
        In training, the fraction of the inputs and of h_{t-1} (where the
        recurrent products read it) to drop: one mask per sequence for the
        whole pass, shared by the gates, the kept values scaled by
        1 / (1 - rate) (Keras' semantics; fastlstm.functional applies the
        masks inside the kernels).
    go_backwards : bool
        Run the sequence last step first; the output comes in that reversed
        order (Keras' semantics).
    stateful : bool
        The final states of one call are the initial states of the next (for
        a fixed batch size) until ``reset_states()``, in training and at
        inference alike; gradients do not flow back into an earlier call.

    Masks (Keras' semantics): a masked step leaves the states unchanged; the
    output there repeats the last unmasked step's (zeros before the first),
    or is zeros when ``zero_output_for_mask`` is set (as Bidirectional sets
    it). The cell runs only the unmasked steps (see MaskedSteps).
    """

    takes_mask = True
    # Zeros, not the last output, at masked steps (set by Bidirectional).
    zero_output_for_mask = False

    # Names of the cell's states, in the order calls return them after the output.
    _state_names = ("h",)
    # The initializers a config names in place of callables, which cannot be
    # written down (a loaded model takes its weights from the file anyway).
    _default_initializers = {"kernel_initializer": "glorot_uniform",
                             "recurrent_initializer": "orthogonal",
                             "bias_initializer": "zeros"}

    def __init__(self, units, return_sequences=False, return_state=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", use_bias=True, input_shape=None, name=None, *,
                 dropout=0.0, recurrent_dropout=0.0, go_backwards=False, stateful=False):
        super().__init__(input_shape, name)
        self.units = checked_int("units", units, 1, MAX_UNITS)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self._carried_states = None
        self.dropout = _checked_rate("dropout", dropout)
        self.recurrent_dropout = _checked_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.use_bias = bool(use_bias)
        self._initializer_names = {}
        self.kernel_initializer = self._initializer("kernel_initializer", kernel_initializer)
        self.recurrent_initializer = self._initializer("recurrent_initializer",
                                                       recurrent_initializer)
        self.bias_initializer = self._initializer("bias_initializer", bias_initializer)
        self._cache = self._steps = None

    def _initializer(self, argument, identifier):
        """The initializer `identifier` names, remembered for ``get_config``
        under `argument`."""
        try:
            initializer = initializers.get(identifier)
        except ValueError as e:
            raise ValueError(f"{argument}: {e}") from None
        self._initializer_names[argument] = identifier
        return initializer

    def _initializer_config(self):
        """argument -> initializer name, a default name standing in for a callable."""
        return {argument: identifier if isinstance(identifier, str)
                else self._default_initializers[argument]
                for argument, identifier in self._initializer_names.items()}

    # ------------------------------------------------------------ weights

    def _gate_width(self):
        """Columns of the kernels: gates * units."""
        raise NotImplementedError

    def _bias_shape(self):
        return (self._gate_width(),)

    def _weight_specs(self, features):
        """``(name, shape, initializer)`` of each weight, in ``get_weights()`` order.

        Parameters
        ----------
        features : int
            The last axis of a sample.
        """
        width = self._gate_width()
        specs = [("kernel", (features, width), self.kernel_initializer),
                 ("recurrent_kernel", (self.units, width), self.recurrent_initializer)]
        if self.use_bias:
            specs.append(("bias", self._bias_shape(), self.bias_initializer))
        return specs

    def _features(self, input_shape):
        """The features of samples of `input_shape`, which must be (time, features)."""
        if len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects samples of shape (time, features), "
                             f"got {input_shape}")
        return input_shape[1]

    def weight_shapes(self, input_shape):
        return [shape for _, shape, _ in self._weight_specs(self._features(input_shape))]

    def _initial_weights(self, input_shape):
        # The bias is drawn first, then the other weights in order: the
        # order is part of what a random seed reproduces.
        specs = self._weight_specs(self._features(input_shape))
        drawn = {name: initializer(shape) for name, shape, initializer in specs
                 if name == "bias"}
        drawn.update((name, initializer(shape)) for name, shape, initializer in specs
                     if name != "bias")
        return [drawn[name] for name, _, _ in specs]

    def _named_weights(self):
        """name -> weight array, with a zero bias when the layer has none."""
        names = [name for name, _, _ in self._weight_specs(self.input_shape[1])]
        named = dict(zip(names, self.weights))
        if not self.use_bias:
            named["bias"] = np.zeros(self._bias_shape(), np.float32)
        return named

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    # ------------------------------------------------------------ the cell

    def _cell_forward(self, x, weights, states, **options):
        """The cell's functional forward: ``(y, *final states[, cache])``.

        Parameters
        ----------
        x : ndarray of shape (batch, time, features)
        weights : dict
            ``_named_weights()``.
        states : tuple of ndarray of shape (batch, units)
            The initial states, or () for zeros.
        **options
            Passed to the functional forward.
        """
        raise NotImplementedError

    def _cell_backward(self, cache, dy, dh_n, input_grad, **options):
        """The cell's functional backward: its gradients' named tuple.
        `options` (sample_blocks, per_block) pass to the functional backward."""
        raise NotImplementedError

    def cell_name(self):
        """The engine's name of this layer's cell (fastlstm._recurrent.CELLS)."""
        raise NotImplementedError

    # ------------------------------------------------------------ passes

    def __call__(self, x, training=False, initial_state=None, mask=None):
        """Run the layer on `x`, building it first if needed.

        Parameters
        ----------
        x : array_like of shape (batch, time, features)
        training : bool
        initial_state : array_like or list of array_like of shape (batch, units), optional
            The initial states, in the order the layer returns them (LSTM:
            ``[h, c]``); zeros when None.
        mask : array_like of bool, shape (batch, time), optional
            False at the steps to skip (Keras' mask).
        """
        return _call_with_states(self, x, training, initial_state, mask)

    def forward(self, x, training=False, initial_state=None, mask=None):
        """Run the cell over `x`.

        Parameters
        ----------
        x : ndarray of shape (batch, time, features), float32
        training : bool
            Keep the cache ``backward`` needs.
        initial_state : array_like or list of array_like of shape (batch, units), optional
        mask : array_like of bool, shape (batch, time), optional

        Returns
        -------
        output : ndarray of shape (batch, time, units) or (batch, units)
            By ``return_sequences``.
        states : ndarray of shape (batch, units)
            The final states (h; for LSTM h and c) after the output, only
            with ``return_state`` outside training.
        """
        output, final = self._run(x, training, initial_state, mask)
        return (output, *final) if self.return_state and not training else output

    def _run(self, x, training, initial_state, mask):
        """``forward``'s output and the final states, whatever return_state says."""
        states = self._checked_states(initial_state) or self._kept_states(x.shape[0])
        mask = self._checked_mask(mask, x.shape[:2])
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        steps = None if mask is None else MaskedSteps(mask)
        x_run = x if steps is None else steps.gather(x)
        options = {} if steps is None else {"lengths": steps.lengths}
        weights = self._named_weights()
        if training:
            # The layer owns its weights and states, and its input is a
            # fresh array of the previous layer's: nothing changes them
            # before backward, so the cache's fingerprints would guard nothing.
            y, *final, self._cache = self._cell_forward(
                np.ascontiguousarray(x_run), weights, states, return_cache=True,
                check_finite=False, guard_inputs=False, **options,
                **self._dropout_masks(x.shape[0], x.shape[2]))
            self._steps = steps
        else:
            y, *final = self._cell_forward(x_run, weights, states, check_finite=False, **options)
        if self.stateful:
            self._carried_states = tuple(state.copy() for state in final)
        if steps is not None:
            y = steps.outputs(y, self.zero_output_for_mask)
        if self.return_sequences:
            output = y
        else:
            output = final[0] if steps is None else y[:, -1]
        return output, final

    def compute_mask(self, x, mask):
        # Keras passes the mask on unchanged, go_backwards or not.
        return mask if self.return_sequences else None

    def _checked_mask(self, mask, shape):
        """`mask` as a bool array of shape (batch, time), or None."""
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != tuple(shape) or mask.dtype.kind not in "bui":
            raise ValueError(f"{self.name}: mask must be a bool array of shape (batch, time) = "
                             f"{tuple(shape)}, got {mask.dtype} {mask.shape}")
        return mask.astype(bool)

    def _kept_states(self, batch):
        """A stateful layer's states from its last call (() when none)."""
        if not self.stateful or self._carried_states is None:
            return ()
        kept = self._carried_states[0].shape[0]
        if kept != batch:
            raise ValueError(f"{self.name}: a stateful layer keeps states for batches of "
                             f"{kept}, got a batch of {batch}; call reset_states() first, or "
                             "give every call the same batch size")
        return self._carried_states

    @property
    def states(self):
        """A stateful layer's current states (h; for LSTM h and c), or None
        before its first call or after ``reset_states()`` (zeros then)."""
        return None if self._carried_states is None else list(self._carried_states)

    def reset_states(self, states=None):
        """Start the next call of a stateful layer from zeros, or from `states`
        (a list as ``initial_state`` takes it)."""
        self._carried_states = None if states is None else self._checked_states(states)

    def _dropout_masks(self, batch, features):
        """This training pass' dropout masks, as functional's keyword
        arguments. In a step of fit's sample blocks, the masks of the whole
        batch are drawn and this process' rows taken (see _sample_blocks)."""
        blocks = _sample_blocks.current()
        drawn, rows = (batch, slice(None)) if blocks is None else (blocks.batch, blocks.rows)
        masks = {}
        if self.dropout > 0:
            masks["dropout_mask"] = _dropout_mask((drawn, features), self.dropout)[rows]
        if self.recurrent_dropout > 0:
            masks["recurrent_dropout_mask"] = _dropout_mask((drawn, self.units),
                                                            self.recurrent_dropout)[rows]
        return masks

    def _checked_states(self, initial_state):
        """`initial_state` as a tuple of the layer's own float32 arrays (() for None)."""
        if initial_state is None:
            return ()
        if isinstance(initial_state, np.ndarray) and len(self._state_names) == 1:
            initial_state = [initial_state]
        states = list(initial_state)
        expected = ", ".join(self._state_names)
        if len(states) != len(self._state_names):
            raise ValueError(f"{self.name}: initial_state must be [{expected}], "
                             f"{len(self._state_names)} array(s) of shape (batch, units); "
                             f"got {len(states)}")
        states = tuple(np.array(state, dtype=np.float32) for state in states)
        if not all(np.isfinite(state).all() for state in states):
            raise ValueError(f"{self.name}: initial_state contains NaN or infinity")
        return states

    def backward(self, dy):
        """Store the weight gradients in ``grads`` and return dx.

        Parameters
        ----------
        dy : ndarray of shape (batch, time, units) or (batch, units)
            Gradient of the loss with respect to the output.

        Returns
        -------
        ndarray of shape (batch, time, features)
        """
        return self._backward(dy, input_grad=True)

    def backward_weights(self, dy):
        self._backward(dy, input_grad=False)

    def _backward(self, dy, input_grad):
        steps = self._steps
        dy_seq, dh_n = (dy, None) if self.return_sequences else (None, dy)
        if steps is not None:
            if dy_seq is not None:
                dy_seq = steps.output_grads(dy_seq, self.zero_output_for_mask)
            else:  # the output of a row that ran no step is zeros
                dh_n = dh_n * (steps.lengths > 0)[:, None]
        blocks = _sample_blocks.current()
        options = {} if blocks is None else {"sample_blocks": blocks.local_bounds,
                                             "per_block": blocks.per_block}
        grads = self._cell_backward(self._cache, dy_seq, dh_n, input_grad, **options)
        self._cache = self._steps = None
        names = [name for name, _, _ in self._weight_specs(self.input_shape[1])]
        self.grads = [getattr(grads, "d" + name) for name in names]
        dx = grads.dx
        if dx is not None and steps is not None:
            dx = steps.scatter(dx)  # zeros at the masked steps
        if dx is not None and self.go_backwards:
            dx = np.ascontiguousarray(dx[:, ::-1])
        return dx

    def get_config(self):
        # Rates of 0 are left out: a layer without dropout writes the same
        # config as one whose class has no dropout arguments.
        rates = {name: rate for name, rate in (("dropout", self.dropout),
                                               ("recurrent_dropout", self.recurrent_dropout))
                 if rate > 0}
        # Likewise the sequence options that are off.
        flags = {name: True for name in ("go_backwards", "stateful") if getattr(self, name)}
        return {"name": self.name, "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                **self._initializer_config(), **rates, **flags}


class LSTM(Recurrent):
    """Long short-term memory layer (Keras' ``keras.layers.LSTM`` weights,
    defaults and argument order).

    Parameters
    ----------
    units : int
    activation : {"tanh"}
    recurrent_activation : {"sigmoid"}
        The ones the compiled kernels compute; anything else is a ValueError.
    use_bias : {True}
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
    unit_forget_bias : bool
        Start the forget gate's bias at 1.
    return_sequences : bool
        Output the hidden state of every step, (batch, time, units), instead
        of the last one, (batch, units).
    return_state : bool
        Calling the layer also returns the final h and c (outside Sequential).
    input_shape : tuple (time, features), optional
    name : str, optional
    peephole : bool
        Let the gates see the cell state (Gers et al.): the input and forget
        gates c_{t-1}, the output gate c_t, through a fourth weight.
    peephole_initializer : str or callable
        Initializer of the peephole weight.
    dropout, recurrent_dropout : float in [0, 1)
    go_backwards, stateful : bool
        See Recurrent.

    Weights: kernel (features, 4 * units), recurrent_kernel (units, 4 * units),
    bias (4 * units,), gate blocks i, f, c, o; with ``peephole``, peephole
    (3, units), rows i, f, o.
    """

    _state_names = ("h", "c")
    _default_initializers = {**Recurrent._default_initializers,
                             "peephole_initializer": "zeros"}

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, *, return_sequences=False,
                 return_state=False, input_shape=None, name=None, peephole=False,
                 peephole_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 go_backwards=False, stateful=False, **unsupported):
        refuse_unsupported("LSTM", unsupported)
        _checked_choice("activation", activation, ("tanh",), "LSTM")
        _checked_choice("recurrent_activation", recurrent_activation, ("sigmoid",), "LSTM")
        if not use_bias:
            raise ValueError("LSTM: use_bias=False is not supported by fastlstm")
        super().__init__(units, return_sequences, return_state, kernel_initializer,
                         recurrent_initializer, bias_initializer, input_shape=input_shape,
                         name=name, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         go_backwards=go_backwards, stateful=stateful)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.peephole = bool(peephole)
        self.peephole_initializer = self._initializer("peephole_initializer",
                                                      peephole_initializer)

    def _gate_width(self):
        return 4 * self.units

    def _weight_specs(self, features):
        specs = super()._weight_specs(features)
        if self.peephole:
            specs.append(("peephole", (3, self.units), self.peephole_initializer))
        return specs

    def _initial_weights(self, input_shape):
        weights = super()._initial_weights(input_shape)
        if self.unit_forget_bias:
            weights[2][self.units:2 * self.units] = 1.0
        return weights

    def cell_name(self):
        return "lstm_peephole" if self.peephole else "lstm"

    def _cell_forward(self, x, weights, states, **options):
        return functional.lstm_forward(x, weights["kernel"], weights["recurrent_kernel"],
                                       weights["bias"], *states,
                                       peephole=weights.get("peephole"), **options)

    def _cell_backward(self, cache, dy, dh_n, input_grad, **options):
        return functional.lstm_backward(cache, dy, dh_n=dh_n, check_finite=False,
                                        input_grad=input_grad, **options)

    def get_config(self):
        config = {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
        peephole_initializer = config.pop("peephole_initializer")
        # A plain LSTM's config leaves the peephole keys out (absent means
        # peephole=False): its model files stay readable by any fastlstm
        # that reads LSTMs.
        if self.peephole:
            config.update(peephole=True, peephole_initializer=peephole_initializer)
        return config


def _checked_choice(argument, value, supported, layer):
    """`value` if it is one of `supported`, else a ValueError naming `argument`."""
    if not isinstance(value, str) or value not in supported:
        raise ValueError(f"{layer}: {argument} must be one of {list(supported)} (the ones "
                         f"the compiled kernels compute), got {value!r}")
    return value


class GRU(Recurrent):
    """Gated recurrent unit layer (Keras' ``keras.layers.GRU`` weights and equations).

    Parameters
    ----------
    units : int
    activation : {"tanh"}
        The candidate's activation. The compiled kernels compute tanh only;
        anything else is a ValueError.
    recurrent_activation : {"sigmoid"}
        The gates' activation; sigmoid only, likewise.
    use_bias : bool
        With False, no bias weight (the cell adds zeros), as in Keras.
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
    reset_after : bool
        Apply the reset gate after the recurrent product (Keras' default,
        cuDNN's and PyTorch's form), else before it.
    return_sequences : bool
        Output the hidden state of every step, (batch, time, units), instead
        of the last one, (batch, units).
    return_state : bool
        Calling the layer also returns the final h (outside Sequential).
    input_shape : tuple (time, features), optional
    name : str, optional
    dropout, recurrent_dropout : float in [0, 1)
    go_backwards, stateful : bool
        See Recurrent.

    Weights: kernel (features, 3 * units), recurrent_kernel (units, 3 * units),
    gate blocks z, r, h; bias (2, 3 * units) with ``reset_after`` (input and
    recurrent rows), else (3 * units,).
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", reset_after=True, return_sequences=False,
                 return_state=False, input_shape=None, name=None, dropout=0.0,
                 recurrent_dropout=0.0, go_backwards=False, stateful=False, **unsupported):
        refuse_unsupported("GRU", unsupported)
        super().__init__(units, return_sequences, return_state, kernel_initializer,
                         recurrent_initializer, bias_initializer, use_bias, input_shape, name,
                         dropout=dropout, recurrent_dropout=recurrent_dropout,
                         go_backwards=go_backwards, stateful=stateful)
        self.activation = _checked_choice("activation", activation, ("tanh",), "GRU")
        self.recurrent_activation = _checked_choice("recurrent_activation",
                                                    recurrent_activation, ("sigmoid",), "GRU")
        self.reset_after = bool(reset_after)

    def _gate_width(self):
        return 3 * self.units

    def _bias_shape(self):
        return (2, self._gate_width()) if self.reset_after else (self._gate_width(),)

    def cell_name(self):
        return "gru_reset_after" if self.reset_after else "gru_reset_before"

    def _cell_forward(self, x, weights, states, **options):
        return functional.gru_forward(x, weights["kernel"], weights["recurrent_kernel"],
                                      weights["bias"], *states, reset_after=self.reset_after,
                                      **options)

    def _cell_backward(self, cache, dy, dh_n, input_grad, **options):
        return functional.gru_backward(cache, dy, dh_n=dh_n, check_finite=False,
                                       input_grad=input_grad, **options)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "recurrent_activation": self.recurrent_activation, "use_bias": self.use_bias,
                "reset_after": self.reset_after}


class SimpleRNN(Recurrent):
    """Fully connected recurrent layer (Keras' ``keras.layers.SimpleRNN``):
    h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    Parameters
    ----------
    units : int
    activation : {"tanh", "relu"}
        The ones the compiled kernels compute; anything else is a ValueError.
    use_bias : bool
        With False, no bias weight (the cell adds zeros), as in Keras.
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
    return_sequences : bool
        Output the hidden state of every step, (batch, time, units), instead
        of the last one, (batch, units).
    return_state : bool
        Calling the layer also returns the final h (outside Sequential).
    input_shape : tuple (time, features), optional
    name : str, optional
        Defaults to "simple_rnn", Keras' name.
    dropout, recurrent_dropout : float in [0, 1)
    go_backwards, stateful : bool
        See Recurrent.

    Weights: kernel (features, units), recurrent_kernel (units, units), bias (units,).
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences=False, return_state=False,
                 input_shape=None, name=None, dropout=0.0, recurrent_dropout=0.0,
                 go_backwards=False, stateful=False, **unsupported):
        refuse_unsupported("SimpleRNN", unsupported)
        super().__init__(units, return_sequences, return_state, kernel_initializer,
                         recurrent_initializer, bias_initializer, use_bias, input_shape,
                         name or "simple_rnn", dropout=dropout,
                         recurrent_dropout=recurrent_dropout, go_backwards=go_backwards,
                         stateful=stateful)
        self.activation = _checked_choice("activation", activation, ("tanh", "relu"),
                                          "SimpleRNN")

    def _gate_width(self):
        return self.units

    def cell_name(self):
        return "rnn_" + self.activation

    def _cell_forward(self, x, weights, states, **options):
        return functional.simple_rnn_forward(x, weights["kernel"], weights["recurrent_kernel"],
                                             weights["bias"], *states,
                                             activation=self.activation, **options)

    def _cell_backward(self, cache, dy, dh_n, input_grad, **options):
        return functional.simple_rnn_backward(cache, dy, dh_n=dh_n, check_finite=False,
                                              input_grad=input_grad, **options)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "use_bias": self.use_bias}


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run a recurrent layer over the sequence both ways and merge the outputs
    (Keras' ``keras.layers.Bidirectional``).

    Parameters
    ----------
    layer : Recurrent
        The forward direction's configuration; the backward direction is
        the same layer with ``go_backwards`` flipped. Both are fresh copies
        of its config (``forward_layer``, ``backward_layer``), not `layer`
        itself, as in Keras.
    merge_mode : {"concat", "sum", "mul", "ave", None}
        How the two outputs combine; None returns both (outside Sequential).
    input_shape : tuple (time, features), optional
    name : str, optional

    Weights: the forward layer's, then the backward layer's. With
    ``return_sequences`` the backward output is put back in time order
    before the merge; at masked steps both directions output zeros. With
    ``return_state`` a call also returns the forward states, then the
    backward ones; ``initial_state`` takes them in that order.

    When the batch is too small to give every thread a share, the two
    directions' forward passes run at the same time, each on half of the
    threads (at inference, and in training without dropout, whose masks
    come from one random stream); their backward passes run one after the
    other.
    """

    takes_mask = True

    def __init__(self, layer, merge_mode="concat", input_shape=None, name=None, **unsupported):
        refuse_unsupported("Bidirectional", unsupported)
        if not isinstance(layer, Recurrent):
            raise TypeError(f"Bidirectional wraps a recurrent layer (LSTM, GRU, SimpleRNN), "
                            f"got {type(layer).__name__}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {list(_MERGE_MODES)}, "
                             f"got {merge_mode!r}")
        super().__init__(input_shape if input_shape is not None else layer.input_shape,
                         name or "bidirectional")
        self.layer = layer
        self.merge_mode = merge_mode
        config = layer.get_config()
        self.forward_layer = type(layer).from_config({**config, "name": "forward_" + layer.name})
        self.backward_layer = type(layer).from_config(
            {**config, "name": "backward_" + layer.name, "go_backwards": not layer.go_backwards})
        for direction in (self.forward_layer, self.backward_layer):
            direction.zero_output_for_mask = direction.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._outputs = None

    @property
    def _directions(self):
        return self.forward_layer, self.backward_layer

    def build(self, input_shape):
        self.input_shape = checked_sample_shape(input_shape)
        for direction in self._directions:
            direction.build(self.input_shape)
        self.weights = self.forward_layer.weights + self.backward_layer.weights
        self.built = True
        return self.compute_output_shape(self.input_shape)

    def weight_shapes(self, input_shape):
        return [shape for direction in self._directions
                for shape in direction.weight_shapes(input_shape)]

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return shape[:-1] + (2 * shape[-1],)
        return shape

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    def __call__(self, x, training=False, initial_state=None, mask=None):
        return _call_with_states(self, x, training, initial_state, mask)

    def forward(self, x, training=False, initial_state=None, mask=None):
        """Both directions over `x`, merged.

        Parameters
        ----------
        x : ndarray of shape (batch, time, features), float32
        training : bool
        initial_state : list of array_like of shape (batch, units), optional
            The forward layer's states, then the backward layer's.
        mask : array_like of bool, shape (batch, time), optional

        Returns
        -------
        output : ndarray of shape (batch, [time,] units or 2 * units), or a
            list of the two directions' outputs when ``merge_mode`` is None
        states : ndarray of shape (batch, units)
            With ``return_state`` outside training: the forward layer's
            final states, then the backward layer's.
        """
        forward_states, backward_states = self._split_states(initial_state)
        (y_forward, final_forward), (y_backward, final_backward) = self._run_directions(
            lambda: self.forward_layer._run(x, training, forward_states, mask),
            lambda: self.backward_layer._run(x, training, backward_states, mask),
            x.shape[0], training)
        if self.return_sequences:
            y_backward = y_backward[:, ::-1]
        self._outputs = (y_forward, y_backward) if training else None
        output = self._merge(y_forward, y_backward)
        if self.return_state and not training:
            return (output, *final_forward, *final_backward)
        return output

    def _split_states(self, initial_state):
        if initial_state is None:
            return None, None
        states = list(initial_state)
        n = len(self.forward_layer._state_names)
        if len(states) != 2 * n:
            raise ValueError(f"{self.name}: initial_state must hold the forward layer's {n} "
                             f"state(s), then the backward layer's: {2 * n} arrays, got "
                             f"{len(states)}")
        return states[:n], states[n:]

    def _run_directions(self, run_forward, run_backward, batch, training):
        """Both directions' (output, states): side by side on halves of the
        threads when the batch cannot keep every thread busy, else one
        after the other on all of them."""
        n_threads = get_num_threads()
        layer = self.forward_layer
        side_by_side = (n_threads > 1
                        and functional.batch_parts(layer.cell_name(), batch, layer.units,
                                                   n_threads) < n_threads
                        and not (training and (layer.dropout or layer.recurrent_dropout)))
        if not side_by_side:
            return run_forward(), run_backward()
        backward_threads = n_threads // 2

        def forward_on_its_threads():
            with threads(n_threads - backward_threads):
                return run_forward()

        def backward_on_its_threads():
            with threads(backward_threads):
                return run_backward()

        return _teams.concurrently(forward_on_its_threads, backward_on_its_threads)

    def _merge(self, y_forward, y_backward):
        if self.merge_mode == "concat":
            return np.concatenate([y_forward, y_backward], axis=-1)
        if self.merge_mode == "sum":
            return y_forward + y_backward
        if self.merge_mode == "mul":
            return y_forward * y_backward
        if self.merge_mode == "ave":
            return (y_forward + y_backward) / np.float32(2)
        return [y_forward, y_backward]

    def _split_output_grad(self, dy):
        """The gradients with respect to the two directions' outputs (in time order)."""
        if self.merge_mode == "concat":
            units = self.forward_layer.units
            return dy[..., :units], dy[..., units:]
        if self.merge_mode == "sum":
            return dy, dy
        if self.merge_mode == "ave":
            half = dy / np.float32(2)
            return half, half
        y_forward, y_backward = self._outputs
        return dy * y_backward, dy * y_forward  # "mul"

    def _backward_directions(self, dy, method):
        dy_forward, dy_backward = self._split_output_grad(dy)
        self._outputs = None
        if self.return_sequences:
            dy_backward = dy_backward[:, ::-1]
        dx_forward = getattr(self.forward_layer, method)(np.ascontiguousarray(dy_forward))
        dx_backward = getattr(self.backward_layer, method)(np.ascontiguousarray(dy_backward))
        self.grads = self.forward_layer.grads + self.backward_layer.grads
        return dx_forward, dx_backward

    def backward(self, dy):
        """Store both directions' weight gradients in ``grads`` and return dx."""
        if self.merge_mode is None:
            raise ValueError(f"{self.name}: merge_mode=None has two outputs; backward takes "
                             "one gradient")
        dx_forward, dx_backward = self._backward_directions(dy, "backward")
        return dx_forward + dx_backward

    def backward_weights(self, dy):
        self._backward_directions(dy, "backward_weights")

    @property
    def stateful(self):
        return self.forward_layer.stateful

    @property
    def states(self):
        """The directions' kept states, forward then backward (see Recurrent.states)."""
        if self.forward_layer.states is None:
            return None
        return self.forward_layer.states + self.backward_layer.states

    def reset_states(self, states=None):
        forward_states, backward_states = self._split_states(states)
        self.forward_layer.reset_states(forward_states)
        self.backward_layer.reset_states(backward_states)

    def get_config(self):
        return {"name": self.name, "layer": serialization.serialize(self.layer),
                "merge_mode": self.merge_mode}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = serialization.deserialize("layer", config.pop("layer"), base=Recurrent)
        return cls(layer, **config)


class Masking(Layer):
    """Mark the steps whose features all equal `mask_value` as padding
    (Keras' ``keras.layers.Masking``): the output is the input with those
    steps zeroed, and the layers after it skip them (see Recurrent).

    Parameters
    ----------
    mask_value : float
    input_shape : tuple (time, features), optional
    name : str, optional
    """

    def __init__(self, mask_value=0.0, input_shape=None, name=None, **unsupported):
        refuse_unsupported("Masking", unsupported)
        super().__init__(input_shape, name)
        value = float(mask_value)
        if not np.isfinite(value):
            raise ValueError(f"mask_value must be a finite number, got {mask_value!r}")
        self.mask_value = value
        self._keep = None

    def compute_mask(self, x, mask):
        return np.any(np.asarray(x) != np.float32(self.mask_value), axis=-1)

    def forward(self, x, training=False):
        keep = self.compute_mask(x, None)
        if training:
            self._keep = keep
        return x * keep[..., None].astype(x.dtype)

    def backward(self, dy):
        keep, self._keep = self._keep, None
        return dy * keep[..., None].astype(dy.dtype)

    def backward_weights(self, dy):
        self._keep = None  # no weights

    def get_config(self):
        return {"name": self.name, "mask_value": self.mask_value}


def _sigmoid_in_place(z):
    """z = 1 / (1 + exp(-z)), written with tanh so it never overflows."""
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5


# name -> (activation applied in place, derivative from the activation's output a)
_ACTIVATIONS = {
    "linear": (lambda z: None, lambda a: 1.0),
    "relu": (lambda z: np.maximum(z, 0, out=z), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (lambda z: np.tanh(z, out=z), lambda a: 1.0 - a * a),
    "sigmoid": (_sigmoid_in_place, lambda a: a * (1.0 - a)),
}


def _block_rows(training, n_rows):
    """The slices of a layer's leading axis (n_rows long) that its products
    take one at a time: this process' sample blocks in a training step of
    fit (see _sample_blocks), else all rows at once."""
    blocks = _sample_blocks.current() if training else None
    if blocks is None:
        return [slice(None)]
    if blocks.stop - blocks.start != n_rows:
        raise ValueError(f"a training pass of {n_rows} rows where the step's sample blocks "
                         f"hold {blocks.stop - blocks.start}")
    return [slice(a, b) for a, b in blocks.local_ranges()]


def dense_into(x, kernel, bias, activation, out):
    """out = activation(x @ kernel + bias), float32, computed in `out` (a
    Dense layer's forward pass, shared by Dense and streams so that both
    give the same bits)."""
    np.matmul(x, kernel, out=out)
    out += bias
    _ACTIVATIONS[activation][0](out)


class Dense(Layer):
    """Fully connected layer over the last axis: activation(x @ kernel + bias).

    Parameters
    ----------
    units : int
    activation : None, "linear", "relu", "tanh" or "sigmoid"
    use_bias : bool
        With False, no bias weight, as in Keras.
    kernel_initializer, bias_initializer : str or callable
        Names from fastlstm.initializers, or callables shape -> array.

    Weights: kernel (features, units), bias (units,) unless use_bias=False.
    """

    def __init__(self, units, activation=None, input_shape=None, name=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **unsupported):
        refuse_unsupported("Dense", unsupported)
        super().__init__(input_shape, name)
        self.use_bias = bool(use_bias)
        self._initializers = {}
        for argument, identifier in (("kernel_initializer", kernel_initializer),
                                     ("bias_initializer", bias_initializer)):
            try:
                self._initializers[argument] = (identifier, initializers.get(identifier))
            except ValueError as e:
                raise ValueError(f"{argument}: {e}") from None
        units = checked_int("units", units, 1, MAX_UNITS)
        name_ = "linear" if activation is None else activation
        if name_ not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: None, "
                             + ", ".join(repr(n) for n in _ACTIVATIONS))
        self.units = int(units)
        self.activation = name_
        self._derivative = _ACTIVATIONS[name_][1]
        self._x = self._a = None

    def weight_shapes(self, input_shape):
        shapes = [(input_shape[-1], self.units)]
        return shapes + [(self.units,)] if self.use_bias else shapes

    def _initial_weights(self, input_shape):
        names = ["kernel_initializer", "bias_initializer"]
        return [self._initializers[name][1](shape)
                for name, shape in zip(names, self.weight_shapes(input_shape))]

    def _kernel_and_bias(self):
        if self.use_bias:
            return self.weights
        return self.weights[0], np.zeros(self.units, np.float32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def compute_mask(self, x, mask):
        return mask if np.ndim(x) == 3 else None  # applied at every step: the steps stay

    def forward(self, x, training=False):
        kernel, bias = self._kernel_and_bias()
        x = np.asarray(x, np.float32)
        a = np.empty(x.shape[:-1] + (self.units,), np.float32)
        for rows in _block_rows(training, len(x)):
            # One product per sample block in fit: a BLAS call rounds a row
            # according to the rows it shares the call with.
            dense_into(x[rows], kernel, bias, self.activation, a[rows])
        if training:
            self._x, self._a = x, a
        return a

    def backward(self, dy):
        dz = self._weight_grads(dy)
        kernel_t = self.weights[0].T
        parts = [dz[rows] @ kernel_t for rows in _block_rows(True, len(dz))]
        if not parts:  # a process with no rows of the batch
            return np.zeros(dz.shape[:-1] + kernel_t.shape[1:], np.float32)
        dx = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return dx.astype(np.float32, copy=False)

    def backward_weights(self, dy):
        self._weight_grads(dy)

    def _weight_grads(self, dy):
        """Store the weight gradients; returns dz, the gradient before the
        activation. In fit's sample blocks, each block's sums are taken
        apart and added in block order (or, per_block, kept apart)."""
        features = self.weights[0].shape[0]
        dz = dy * self._derivative(self._a)
        kernel_grads, bias_grads = [], []
        for rows in _block_rows(True, len(dz)):
            x2d = self._x[rows].reshape(-1, features)
            dz2d = dz[rows].reshape(-1, self.units)
            kernel_grads.append((x2d.T @ dz2d).astype(np.float32, copy=False))
            bias_grads.append(dz2d.sum(axis=0).astype(np.float32, copy=False))
        blocks = _sample_blocks.current()
        if blocks is not None and blocks.per_block:
            grads = [np.stack(kernel_grads) if kernel_grads
                     else np.zeros((0, features, self.units), np.float32),
                     np.stack(bias_grads) if bias_grads
                     else np.zeros((0, self.units), np.float32)]
        else:
            grads = [_sample_blocks.add_in_order(kernel_grads),
                     _sample_blocks.add_in_order(bias_grads)]
        self.grads = grads if self.use_bias else grads[:1]
        self._x = self._a = None
        return dz

    def get_config(self):
        config = {"name": self.name, "units": self.units, "activation": self.activation}
        # Options at their defaults are left out of the config.
        if not self.use_bias:
            config["use_bias"] = False
        for argument, default in (("kernel_initializer", "glorot_uniform"),
                                  ("bias_initializer", "zeros")):
            identifier = self._initializers[argument][0]
            if isinstance(identifier, str) and identifier != default:
                config[argument] = identifier
        return config


class TimeDistributed(Layer):
    """Apply a layer to every time step (Keras' ``keras.layers.TimeDistributed``):
    samples (time, ...) run through `layer` as time separate samples. A
    Dense over a 3-D input does the same by itself.

    Parameters
    ----------
    layer : Layer
        A layer of samples without a time axis (Dense, Dropout); its
        weights are this layer's.
    input_shape : tuple (time, ...), optional
    name : str, optional
    """

    def __init__(self, layer, input_shape=None, name=None, **unsupported):
        refuse_unsupported("TimeDistributed", unsupported)
        if not isinstance(layer, Layer) or isinstance(layer, (Recurrent, Bidirectional)):
            raise TypeError(f"TimeDistributed wraps a layer of single steps (Dense, Dropout), "
                            f"got {type(layer).__name__}")
        super().__init__(input_shape, name or "time_distributed")
        self.layer = layer

    def build(self, input_shape):
        self.input_shape = checked_sample_shape(input_shape)
        if len(self.input_shape) < 2:
            raise ValueError(f"{self.name}: samples need a time axis, got {self.input_shape}")
        self.layer.build(self.input_shape[1:])
        self.weights = self.layer.weights
        self.built = True
        return self.compute_output_shape(self.input_shape)

    def weight_shapes(self, input_shape):
        return self.layer.weight_shapes(input_shape[1:])

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.layer.compute_output_shape(input_shape[1:]))

    def compute_mask(self, x, mask):
        return mask

    def _steps(self, x):
        """x (batch, time, ...) as (batch * time, ...)."""
        return np.reshape(x, (-1,) + np.shape(x)[2:]), np.shape(x)[:2]

    def forward(self, x, training=False):
        steps, (batch, time) = self._steps(x)
        with _sample_blocks.per_step(time):
            out = self.layer.forward(steps, training)
        return out.reshape((batch, time) + out.shape[1:])

    def _backward_with(self, method, dy):
        steps, (batch, time) = self._steps(dy)
        with _sample_blocks.per_step(time):
            dx = getattr(self.layer, method)(steps)
        self.grads = self.layer.grads
        return None if dx is None else dx.reshape((batch, time) + dx.shape[1:])

    def backward(self, dy):
        return self._backward_with("backward", dy)

    def backward_weights(self, dy):
        self._backward_with("backward_weights", dy)

    def get_config(self):
        return {"name": self.name, "layer": serialization.serialize(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = serialization.deserialize("layer", config.pop("layer"), base=Layer)
        return cls(layer, **config)


class Dropout(Layer):
    """Inverted dropout: in training, zero a fraction `rate` of the inputs and
    scale the rest by 1 / (1 - rate); at inference, pass x through."""

    def __init__(self, rate, input_shape=None, name=None, **unsupported):
        refuse_unsupported("Dropout", unsupported)
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
        # are the mask that backward applies again. In fit's sample blocks
        # the whole batch's bits are drawn, and this process' rows taken.
        per_sample = int(np.prod(np.shape(x)[1:], dtype=np.int64))
        blocks = _sample_blocks.current()
        start, drawn = (0, np.size(x)) if blocks is None else (blocks.start * per_sample,
                                                               blocks.batch * per_sample)
        bits = generator().bit_generator.random_raw(-(-drawn // 4)).view(np.uint16)
        self._mask = bits[start:start + np.size(x)]
        self._mask_shape = np.shape(x)
        return self._apply_mask(x)

    def backward(self, dy):
        return dy if self._mask is None else self._apply_mask(dy)

    def backward_weights(self, dy):
        pass  # no weights

    def compute_mask(self, x, mask):
        return mask

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

"""Keras layer configs to fastlstm layers and back.

A reader takes a Keras layer entry (``{"class_name", "config", ...}``, as
in a model's config.json) wrapped in ``KerasOptions`` and returns the
fastlstm layer with the paths of its variables in a ``.keras`` weights
file, relative to the layer's group, in ``get_weights()`` order
(``cell/vars/0``: a recurrent layer's kernel); ``ZEROS`` in place of a
path is a weight Keras does not store, zeros in fastlstm (the bias of an
LSTM with ``use_bias=False``, which fastlstm's LSTM always has). A writer takes a built
fastlstm layer and returns the Keras entry and the same paths. fastlstm
keeps Keras' weight layouts, so weights are never transposed or reordered.

Every option of a Keras config is either translated, or known to change
nothing that fastlstm computes at the value given (``NO_OPS``); anything
else, including an option this module does not know, is refused with an
UnsupportedLayerError that names the layer and the option. Initializers
only matter when a layer is initialized afresh, never for converted
weights: Keras' built-in ones that fastlstm has carry over by name, any
other becomes fastlstm's default for that argument.
"""
from ..layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Input, Masking, Recurrent,
                      SimpleRNN, TimeDistributed)
from ._registry import ConversionError, Converters, UnsupportedLayerError

__all__ = ["converters", "KerasOptions", "read_layer", "write_layer", "ZEROS"]

converters = Converters("Keras")
# A variable path: a weight fastlstm has and Keras does not store, all zeros.
ZEROS = None

_REQUIRED = object()
_ANY = object()
# Dense activations fastlstm computes (None in Keras means "linear").
DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
# Keras' initializer classes fastlstm has, by the names of both.
INITIALIZERS = {"GlorotUniform": "glorot_uniform", "Orthogonal": "orthogonal",
                "Zeros": "zeros", "Ones": "ones"}
KERAS_INITIALIZER_CONFIGS = {"GlorotUniform": {"seed": None},
                             "Orthogonal": {"seed": None, "gain": 1.0},
                             "Zeros": {}, "Ones": {}}


def _is_built_in(module):
    """Whether an entry's "module" (absent in legacy configs) is Keras' own
    layers; a layer from any other module is a class of someone's own that
    merely shares a built-in's name."""
    return module in (None, "keras.layers") or (
        isinstance(module, str) and module.startswith("keras.src.layers."))


def _is_float32_policy(value):
    """Keras' dtype policy of float32 computations, in any version's spelling."""
    if value is None or value == "float32":
        return True
    return (isinstance(value, dict) and isinstance(value.get("config"), dict)
            and value["config"].get("name") == "float32")


# Options that change nothing fastlstm computes at the values accepted
# (a tuple of values, a predicate, or _ANY). A trainable=False layer is
# refused: fastlstm would train it.
NO_OPS = {
    "trainable": (True,),
    "dtype": _is_float32_policy,
    "kernel_regularizer": (None,), "recurrent_regularizer": (None,),
    "bias_regularizer": (None,), "activity_regularizer": (None,),
    "kernel_constraint": (None,), "recurrent_constraint": (None,), "bias_constraint": (None,),
    # The random stream of dropout, which no two frameworks share anyway.
    "seed": _ANY,
    # How the loop runs, not what it computes.
    "unroll": (True, False), "implementation": (1, 2), "use_cudnn": _ANY,
    "time_major": (False,),
    "zero_output_for_mask": (False,),
    "noise_shape": (None,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": _ANY,
    "sparse": (False,), "ragged": (False,), "optional": (False,),
    # An InputLayer's batch axis: fastlstm takes the batch from the data.
    "batch_size": _ANY,
}


# Why an option is refused at other values than NO_OPS accepts.
WHY_REFUSED = {
    "trainable": "fastlstm has no frozen layers, so it would train this one",
    "dtype": "fastlstm computes in float32",
    "zero_output_for_mask": "fastlstm's layers repeat the last output at masked steps",
    "time_major": "fastlstm takes samples as (batch, time, features)",
    "noise_shape": "fastlstm's Dropout draws every value independently",
    **{option: "fastlstm has no regularizers or constraints"
       for option in NO_OPS if option.endswith(("_regularizer", "_constraint"))},
}


class KerasOptions:
    """One Keras layer entry, its options taken one by one by a reader;
    ``finish`` then refuses whatever is left that is not a no-op.

    Parameters
    ----------
    entry : dict
        ``{"class_name": str, "config": dict, ...}``.

    Raises
    ------
    ConversionError
        A malformed entry.
    UnsupportedLayerError
        A class from outside Keras' built-in layers.
    """

    def __init__(self, entry):
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
                or not isinstance(entry.get("config", {}), dict):
            raise ConversionError(f"a Keras layer entry must be {{'class_name': str, "
                                  f"'config': {{...}}}}, got {entry!r:.200}")
        self.class_name = entry["class_name"]
        self._left = dict(entry.get("config", {}))
        name = self._left.pop("name", None)
        self.name = name if isinstance(name, str) else None
        module, registered = entry.get("module"), entry.get("registered_name")
        if not _is_built_in(module) or registered not in (None, self.class_name):
            raise UnsupportedLayerError(
                f"Keras layer {self.name!r} is of class {registered or self.class_name!r} from "
                f"module {module!r}, not one of Keras' built-in layers; fastlstm reads those "
                "only, and never imports a class a file names")

    def describe(self):
        """The layer as messages name it."""
        return f"Keras layer {self.name!r} ({self.class_name})"

    def unsupported(self, option, value, why="fastlstm has no equivalent"):
        return UnsupportedLayerError(f"{self.describe()}: {option}={value!r:.200}: {why}")

    def take(self, option, default=_REQUIRED):
        """The value of `option` (`default` when absent), marked as handled."""
        if option in self._left:
            return self._left.pop(option)
        if default is _REQUIRED:
            raise ConversionError(f"{self.describe()}: the config has no {option!r}")
        return default

    def take_flag(self, option, default):
        value = self.take(option, default)
        if not isinstance(value, bool):
            raise ConversionError(f"{self.describe()}: {option} must be true or false, "
                                  f"got {value!r}")
        return value

    def take_choice(self, option, choices, default=_REQUIRED):
        """The value of `option`, which must be one of `choices`."""
        value = self.take(option, default)
        if not isinstance(value, (str, type(None))) or value not in choices:
            raise self.unsupported(option, value, f"fastlstm computes {list(choices)} only")
        return value

    def take_initializer(self, option, default):
        """The fastlstm name of the initializer `option` names (see module docstring)."""
        value = self.take(option, None)
        if isinstance(value, dict):
            value = value.get("class_name")
        if isinstance(value, str):
            camel = "".join(part.capitalize() for part in value.split("_"))
            return INITIALIZERS.get(value, INITIALIZERS.get(camel, default))
        return default

    def finish(self):
        """Refuse every option left that is not a no-op at its value."""
        for option, value in self._left.items():
            accepted = NO_OPS.get(option)
            if accepted is None:
                raise self.unsupported(option, value, "an option fastlstm does not know, so "
                                       "cannot tell what it changes")
            if accepted is _ANY:
                continue
            if callable(accepted):
                refused = not accepted(value)
            else:
                refused = not any(value is v or (type(value) is type(v) and value == v)
                                  for v in accepted)
            if refused:
                raise self.unsupported(option, value, WHY_REFUSED.get(
                    option, "fastlstm has no equivalent"))


def read_layer(entry):
    """The fastlstm layer (or ``Input``) a Keras layer entry describes, and
    the paths of its variables in a .keras weights file.

    Raises
    ------
    UnsupportedLayerError
        A layer or option fastlstm cannot express.
    ConversionError
        A malformed entry or an invalid value.
    """
    options = KerasOptions(entry)
    try:
        reader = converters.reader_for(options.class_name)
    except UnsupportedLayerError as e:
        raise UnsupportedLayerError(f"Keras layer {options.name!r}: {e}") from None
    try:
        layer, variables = reader(options)
    except ConversionError:
        raise
    except (TypeError, ValueError) as e:
        raise ConversionError(f"{options.describe()}: {e}") from None
    options.finish()
    return layer, variables


def write_layer(layer):
    """The Keras entry of a built fastlstm layer and its variables' paths."""
    return converters.writer_for(layer)(layer)


def _numbered(group, count):
    return [f"{group}/{i}" for i in range(count)]


def _prefixed(prefix, paths):
    return [ZEROS if path is ZEROS else f"{prefix}/{path}" for path in paths]


def _entry(class_name, layer, config):
    """A Keras 3 layer entry for `layer` (built) with `config`."""
    entry = {"module": "keras.layers", "class_name": class_name,
             "config": {"name": layer.name, "trainable": True, "dtype": "float32", **config},
             "registered_name": None}
    if layer.built:
        entry["build_config"] = {"input_shape": [None, *layer.input_shape]}
    return entry


def _keras_initializer(name):
    class_name = next(k for k, v in INITIALIZERS.items() if v == name)
    return {"module": "keras.initializers", "class_name": class_name,
            "config": dict(KERAS_INITIALIZER_CONFIGS[class_name]), "registered_name": None}


# ------------------------------------------------------------ model input

@converters.reader("InputLayer")
def _read_input(options):
    shape = options.take("batch_shape", None)
    shape = options.take("batch_input_shape", shape)
    if not isinstance(shape, (list, tuple)) or len(shape) < 2:
        raise ConversionError(f"{options.describe()}: its batch_shape must be a list "
                              f"[batch, ...], got {shape!r}")
    return Input(tuple(shape[1:]), name=options.name), []


def input_entry(input_shape, batch_size, taken_names):
    """The Keras 3 InputLayer entry for samples of `input_shape`, named
    apart from the layers' `taken_names`."""
    name, k = "input_layer", 0
    while name in taken_names:
        k += 1
        name = f"input_layer_{k}"
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [batch_size, *input_shape], "dtype": "float32",
                       "sparse": False, "ragged": False, "name": name, "optional": False},
            "registered_name": None}


# ------------------------------------------------------------ recurrent layers

def _recurrent_arguments(options):
    """The arguments every recurrent layer shares, taken from `options`."""
    use_bias = options.take_flag("use_bias", True)
    return {"units": options.take("units"), "name": options.name,
            "return_sequences": options.take_flag("return_sequences", False),
            "return_state": options.take_flag("return_state", False),
            "go_backwards": options.take_flag("go_backwards", False),
            "stateful": options.take_flag("stateful", False),
            "dropout": options.take("dropout", 0.0),
            "recurrent_dropout": options.take("recurrent_dropout", 0.0),
            "use_bias": use_bias,
            "kernel_initializer": options.take_initializer("kernel_initializer",
                                                           "glorot_uniform"),
            "recurrent_initializer": options.take_initializer("recurrent_initializer",
                                                              "orthogonal"),
            "bias_initializer": options.take_initializer("bias_initializer", "zeros")}


def _gated_arguments(options):
    """The arguments of an LSTM or GRU, taken from `options`: those every
    recurrent layer shares, after checking the activations, which fastlstm
    computes as tanh and sigmoid only."""
    arguments = _recurrent_arguments(options)
    options.take_choice("activation", ("tanh",), "tanh")
    options.take_choice("recurrent_activation", ("sigmoid",), "sigmoid")
    return arguments


def _recurrent_variables(layer):
    """kernel, recurrent_kernel and, with a bias, bias: the cell's variables."""
    return _numbered("cell/vars", 3 if layer.use_bias else 2)


def _recurrent_config(layer):
    """The Keras config every recurrent layer shares."""
    config = layer.get_config()
    return {"return_sequences": layer.return_sequences, "return_state": layer.return_state,
            "go_backwards": layer.go_backwards, "stateful": layer.stateful, "unroll": False,
            "zero_output_for_mask": layer.zero_output_for_mask, "units": layer.units,
            "use_bias": layer.use_bias,
            **{option: _keras_initializer(config[option])
               for option in ("kernel_initializer", "recurrent_initializer",
                              "bias_initializer")},
            "kernel_regularizer": None, "recurrent_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
            "dropout": layer.dropout, "recurrent_dropout": layer.recurrent_dropout,
            "seed": None}


@converters.reader("LSTM")
def _read_lstm(options):
    arguments = _gated_arguments(options)
    unit_forget_bias = options.take_flag("unit_forget_bias", True)
    if arguments.pop("use_bias"):
        layer = LSTM(unit_forget_bias=unit_forget_bias, **arguments)
        return layer, _recurrent_variables(layer)
    # fastlstm's LSTM always has a bias: a zero one computes what Keras does
    # (training then trains it too), and initialized afresh it starts at zero.
    arguments["bias_initializer"] = "zeros"
    layer = LSTM(unit_forget_bias=False, **arguments)
    return layer, _recurrent_variables(layer)[:2] + [ZEROS]


@converters.writer(LSTM)
def _write_lstm(layer):
    if layer.peephole:
        raise UnsupportedLayerError(f"layer {layer.name!r} is a peephole LSTM, which Keras "
                                    "has no layer for")
    config = {**_recurrent_config(layer), "activation": "tanh",
              "recurrent_activation": "sigmoid", "unit_forget_bias": layer.unit_forget_bias}
    return _entry("LSTM", layer, config), _recurrent_variables(layer)


@converters.reader("GRU")
def _read_gru(options):
    arguments = _gated_arguments(options)
    layer = GRU(reset_after=options.take_flag("reset_after", True), **arguments)
    return layer, _recurrent_variables(layer)


@converters.writer(GRU)
def _write_gru(layer):
    config = {**_recurrent_config(layer), "activation": layer.activation,
              "recurrent_activation": layer.recurrent_activation,
              "reset_after": layer.reset_after}
    return _entry("GRU", layer, config), _recurrent_variables(layer)


@converters.reader("SimpleRNN")
def _read_simple_rnn(options):
    arguments = _recurrent_arguments(options)
    layer = SimpleRNN(activation=options.take_choice("activation", ("tanh", "relu"), "tanh"),
                      **arguments)
    return layer, _recurrent_variables(layer)


@converters.writer(SimpleRNN)
def _write_simple_rnn(layer):
    config = {**_recurrent_config(layer), "activation": layer.activation}
    return _entry("SimpleRNN", layer, config), _recurrent_variables(layer)


# ------------------------------------------------------------ wrappers

def _direction_entry(entry, prefix):
    """A Bidirectional's direction entry without what the wrapper sets
    itself: the direction's name prefix and zero_output_for_mask."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConversionError(f"a Bidirectional's direction must be a layer entry, "
                              f"got {entry!r:.200}")
    config = dict(entry["config"])
    config.pop("zero_output_for_mask", None)
    name = config.get("name")
    if isinstance(name, str) and name.startswith(prefix):
        config["name"] = name[len(prefix):]
    return {**entry, "config": config}


def _computation(layer):
    """A recurrent layer's config without what may differ between the two
    directions of a Bidirectional: the name, the direction, initializers."""
    return {option: value for option, value in layer.get_config().items()
            if option not in ("name", "go_backwards") and not option.endswith("initializer")}


@converters.reader("Bidirectional")
def _read_bidirectional(options):
    merge_mode = options.take("merge_mode", "concat")
    if merge_mode is None:
        raise options.unsupported("merge_mode", None, "it returns both directions' outputs, "
                                  "and a chain of layers passes one on")
    if merge_mode not in ("concat", "sum", "mul", "ave"):
        raise options.unsupported("merge_mode", merge_mode, "not one of Keras' merge modes")
    forward, forward_variables = read_layer(_direction_entry(options.take("layer"),
                                                             "forward_"))
    backward_entry = options.take("backward_layer", None)
    if not isinstance(forward, Recurrent):
        raise options.unsupported("layer", type(forward).__name__,
                                  "fastlstm's Bidirectional wraps LSTM, GRU or SimpleRNN")
    if backward_entry is not None:
        backward, _ = read_layer(_direction_entry(backward_entry, "backward_"))
        if (type(backward) is not type(forward) or _computation(backward) != _computation(forward)
                or backward.go_backwards == forward.go_backwards):
            raise options.unsupported(
                "backward_layer", backward_entry.get("class_name"),
                "fastlstm's backward direction is the forward layer running the other way; "
                "this one differs in more than that")
    layer = Bidirectional(forward, merge_mode=merge_mode, name=options.name)
    variables = _prefixed("forward_layer", forward_variables)
    return layer, variables + _prefixed("backward_layer", forward_variables)


@converters.writer(Bidirectional)
def _write_bidirectional(layer):
    (forward, variables), (backward, _) = (write_layer(direction) for direction
                                           in (layer.forward_layer, layer.backward_layer))
    config = {"merge_mode": layer.merge_mode, "layer": forward, "backward_layer": backward}
    return (_entry("Bidirectional", layer, config),
            _prefixed("forward_layer", variables) + _prefixed("backward_layer", variables))


@converters.reader("TimeDistributed")
def _read_time_distributed(options):
    inner, variables = read_layer(options.take("layer"))
    try:
        layer = TimeDistributed(inner, name=options.name)
    except TypeError:
        raise options.unsupported("layer", type(inner).__name__, "fastlstm's TimeDistributed "
                                  "wraps layers of single steps (Dense, Dropout)") from None
    return layer, _prefixed("layer", variables)


@converters.writer(TimeDistributed)
def _write_time_distributed(layer):
    inner, variables = write_layer(layer.layer)
    return _entry("TimeDistributed", layer, {"layer": inner}), _prefixed("layer", variables)


# ------------------------------------------------------------ other layers

@converters.reader("Dense")
def _read_dense(options):
    activation = options.take_choice("activation", (None,) + DENSE_ACTIVATIONS, "linear")
    layer = Dense(options.take("units"), activation=activation, name=options.name,
                  use_bias=options.take_flag("use_bias", True),
                  kernel_initializer=options.take_initializer("kernel_initializer",
                                                              "glorot_uniform"),
                  bias_initializer=options.take_initializer("bias_initializer", "zeros"))
    return layer, _numbered("vars", 2 if layer.use_bias else 1)


@converters.writer(Dense)
def _write_dense(layer):
    config = layer.get_config()
    config = {"units": layer.units, "activation": layer.activation, "use_bias": layer.use_bias,
              "kernel_initializer": _keras_initializer(config.get("kernel_initializer",
                                                                  "glorot_uniform")),
              "bias_initializer": _keras_initializer(config.get("bias_initializer", "zeros")),
              "kernel_regularizer": None, "bias_regularizer": None,
              "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    return _entry("Dense", layer, config), _numbered("vars", 2 if layer.use_bias else 1)


@converters.reader("Dropout")
def _read_dropout(options):
    return Dropout(options.take("rate"), name=options.name), []


@converters.writer(Dropout)
def _write_dropout(layer):
    return _entry("Dropout", layer, {"rate": layer.rate, "seed": None, "noise_shape": None}), []


@converters.reader("Masking")
def _read_masking(options):
    mask_value = options.take("mask_value", 0.0)
    if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
        raise ConversionError(f"{options.describe()}: mask_value must be a number, got "
                              f"{mask_value!r:.100}")
    return Masking(mask_value, name=options.name), []


@converters.writer(Masking)
def _write_masking(layer):
    return _entry("Masking", layer, {"mask_value": layer.mask_value}), []

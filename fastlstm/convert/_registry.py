"""Layer converters of one interchange format, in both directions.

A format module keeps one ``Converters`` and registers a function per
fastlstm layer class it can write (``@converters.writer(LSTM)``) and per
foreign layer or operator type it can read (``@converters.reader("LSTM")``).
The model-level code then looks each layer up instead of branching on
types, and a layer the format has no converter for is refused by name.

Writers are looked up by the layer's exact class: a subclass may change
the computation, so it is never written as its parent.
"""

__all__ = ["Converters", "ConversionError", "UnsupportedLayerError"]


class ConversionError(ValueError):
    """A file or object that cannot be converted: damaged, foreign or hostile."""


class UnsupportedLayerError(ConversionError):
    """A layer, or an option of one, that the target format cannot express."""


class Converters:
    """The registered layer converters of the format `format_name`."""

    def __init__(self, format_name):
        self.format_name = format_name
        self._writers = {}
        self._readers = {}

    def writer(self, *layer_classes):
        """Decorator: register the function that writes layers of `layer_classes`."""
        def register(function):
            for layer_class in layer_classes:
                self._writers[layer_class] = function
            return function
        return register

    def reader(self, *type_names):
        """Decorator: register the function that reads foreign types `type_names`."""
        def register(function):
            for type_name in type_names:
                self._readers[type_name] = function
            return function
        return register

    def writer_for(self, layer):
        """The function that writes `layer`.

        Raises
        ------
        UnsupportedLayerError
            No converter for the layer's class; the message names the layer
            and what the format can hold.
        """
        try:
            return self._writers[type(layer)]
        except KeyError:
            known = ", ".join(sorted(c.__name__ for c in self._writers))
            raise UnsupportedLayerError(
                f"{self.format_name} cannot hold layer {getattr(layer, 'name', layer)!r} "
                f"of type {type(layer).__name__}; it holds: {known}") from None

    def reader_for(self, type_name):
        """The function that reads a foreign layer or operator of `type_name`.

        Raises
        ------
        UnsupportedLayerError
            No converter for `type_name`.
        """
        try:
            return self._readers[type_name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._readers))
            raise UnsupportedLayerError(
                f"fastlstm cannot read {self.format_name} layer type {type_name!r}; "
                f"it reads: {known}") from None

    @property
    def writable(self):
        """The fastlstm layer classes this format can hold."""
        return tuple(self._writers)

    @property
    def readable(self):
        """The foreign type names this format's reader knows."""
        return tuple(self._readers)


def refuse_stateful(model, format_name, hint):
    """Raise UnsupportedLayerError when `model` has stateful layers, whose
    states carried from one call to the next `format_name` cannot hold;
    `hint` says what to do instead."""
    names = [layer.name for layer in model.layers
             if getattr(layer, "stateful", False)
             or getattr(getattr(layer, "layer", None), "stateful", False)]
    if names:
        raise UnsupportedLayerError(
            f"{format_name} cannot carry the states of stateful layer(s) {names} from one "
            f"call to the next; {hint}")

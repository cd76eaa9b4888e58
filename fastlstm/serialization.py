"""Names for the classes a model file refers to: layers, losses, optimizers.

Every subclass of ``Layer``, ``Loss`` and ``Optimizer`` registers itself
when its class statement runs (``__init_subclass__`` calls ``register``):
fastlstm's own classes under their class name (``"LSTM"``), any other
class under its module and qualified name (``"my_package.layers.Scale"``),
so a class of yours can never be mistaken for one of fastlstm's.

A model file names each object as ``{"class": name, "config": {...}}``.
Loading looks the name up in ``custom_objects`` first (by the full name
or the bare class name), then in the registry, and rebuilds the object
with ``cls.from_config(config)``. It never imports a module or evaluates
anything the file says: a class that is not registered (its module not
imported) and not in ``custom_objects`` is an error that says what to pass.
"""
__all__ = ["Serializable", "register", "registered_name", "serialize", "deserialize"]

KINDS = ("layer", "loss", "optimizer")
_REGISTRY = {kind: {} for kind in KINDS}


def registered_name(cls):
    """The name under which `cls` is written into model files."""
    if cls.__module__.split(".")[0] == "fastlstm":
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def register(kind, cls):
    """Make `cls` loadable as a `kind` ("layer", "loss" or "optimizer").

    A class defined again under the same name (a module reloaded, a class
    statement run twice) replaces the earlier one.
    """
    _REGISTRY[kind][registered_name(cls)] = cls
    return cls


class Serializable:
    """Base of the classes a model file names. A base class declares its
    kind, ``class Layer(Serializable, kind="layer")``; each of its subclasses
    then registers itself as that kind when defined. ``from_config`` passes
    ``get_config()``'s dict to the constructor."""

    _kind = None

    def __init_subclass__(cls, kind=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls._kind = kind  # a base class: its subclasses register
        else:
            register(cls._kind, cls)

    @classmethod
    def from_config(cls, config):
        """The object that ``get_config`` described."""
        return cls(**config)


def serialize(obj):
    """``{"class": name, "config": obj.get_config()}`` for a registered object."""
    return {"class": registered_name(type(obj)), "config": obj.get_config()}


def _lookup(kind, name, custom_objects):
    custom_objects = custom_objects or {}
    short = name.rsplit(".", 1)[-1]
    for key in (name, short):
        if key in custom_objects:
            return custom_objects[key]
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise ValueError(
            f"unknown {kind} class {name!r}: import the module that defines it before "
            f"loading, or pass custom_objects={{{short!r}: {short}}}") from None


def deserialize(kind, entry, custom_objects=None, base=None):
    """Rebuild an object from ``serialize``'s dict.

    Parameters
    ----------
    kind : {"layer", "loss", "optimizer"}
    entry : dict
        ``{"class": str, "config": dict}``, as read from a model file.
    custom_objects : dict, optional
        name -> class, consulted before the registry.
    base : type, optional
        The class found must subclass it (a file cannot make a loss out of
        a layer class passed in custom_objects).

    Raises
    ------
    ValueError
        The entry is malformed, names an unknown class, or its config does
        not fit the class.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
        raise ValueError(f"a {kind} entry must be {{'class': name, 'config': {{...}}}}, "
                         f"got {entry!r:.200}")
    config = entry.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"the config of {kind} {entry['class']!r} must be a JSON object")
    cls = _lookup(kind, entry["class"], custom_objects)
    if not isinstance(cls, type) or (base is not None and not issubclass(cls, base)):
        expected = base.__name__ if base is not None else "a class"
        raise ValueError(f"{kind} {entry['class']!r} must name a subclass of {expected}, "
                         f"got {cls!r:.200}")
    try:
        return cls.from_config(dict(config))
    except TypeError as e:
        raise ValueError(f"{kind} {entry['class']!r}: its config does not fit the class "
                         f"({e})") from None

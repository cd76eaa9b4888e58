"""Optimizers with Keras' update rules and default hyper-parameters.

Updates are in place on the model's weight arrays (C-contiguous float32 or
float64): vectorized NumPy for SGD, Adagrad and Nadam, one compiled pass per
weight for RMSprop, Adam and AdamW (fastlstm._elementwise, bitwise the same
as the NumPy formulas). Each optimizer keeps its state (moments) per weight,
in the weights' order. ``learning_rate`` may be set between steps (as
ReduceLROnPlateau does); the next step uses it.
``clipnorm`` rescales each weight's gradient to at most that L2 norm and
``clipvalue`` clips every element, guarding against exploding gradients.
"""
import math
import numbers

import numpy as np

from . import _elementwise, serialization
from ._validation import refuse_unsupported

__all__ = ["get", "Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Nadam"]


def _finite_real(name, value, minimum, inclusive):
    """`value` as a float, or a ValueError naming `name` unless it is a finite
    real number above `minimum` (or at it, if `inclusive`)."""
    number = (isinstance(value, numbers.Real) and not isinstance(value, bool)
              and math.isfinite(value))
    if not number or value < minimum or (value == minimum and not inclusive):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {bound} {minimum:g}, got {value!r}")
    return float(value)


class Optimizer(serialization.Serializable, kind="optimizer"):
    """Base class: subclasses define ``_update(weight, grad, slots)`` and
    register themselves for ``load_model`` when defined
    (fastlstm.serialization)."""

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, **unsupported):
        refuse_unsupported(type(self).__name__, unsupported)
        for name, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        self.learning_rate = learning_rate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.iterations = 0
        self._slots = None

    @property
    def learning_rate(self):
        """The step size of the next update, a float.

        Setting it between steps changes every later step; the value must be
        a finite number >= 0 (``ValueError`` otherwise), as a warm-up
        schedule may start at 0.
        """
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        self._learning_rate = _finite_real("learning_rate", value, 0.0, inclusive=True)

    def _clipped(self, grad):
        if self.clipvalue is not None:
            grad = np.clip(grad, -self.clipvalue, self.clipvalue)
        if self.clipnorm is not None:
            norm = float(np.sqrt(np.sum(grad.astype(np.float64) ** 2)))
            if norm > self.clipnorm:
                grad = grad * np.float32(self.clipnorm / norm)
        return grad

    def apply(self, weights, grads):
        """Update every array in `weights` in place from its gradient."""
        if self._slots is None or len(self._slots) != len(weights):
            self._slots = [self._new_slots(w) for w in weights]
        self.iterations += 1
        for weight, grad, slots in zip(weights, grads, self._slots):
            self._update(weight, self._clipped(grad), slots)

    def _new_slots(self, weight):
        return {}

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue}


def _flat(weight):
    """weight as a 1-D view, for the compiled updates in place."""
    if weight.dtype not in (np.float32, np.float64):
        raise TypeError(f"weights must be float32 or float64, got {weight.dtype}")
    if not weight.flags.c_contiguous or not weight.flags.writeable:
        raise ValueError("weights must be writeable C-contiguous arrays")
    return weight.reshape(-1)


def _flat_like(grad, weight):
    """grad as a 1-D C-contiguous array of weight's dtype."""
    if np.shape(grad) != weight.shape:
        raise ValueError(f"a gradient has shape {np.shape(grad)}; its weight has {weight.shape}")
    return np.ascontiguousarray(grad, dtype=weight.dtype).reshape(-1)


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _new_slots(self, weight):
        return {"velocity": np.zeros_like(weight)} if self.momentum else {}

    def _update(self, weight, grad, slots):
        lr = np.float32(self.learning_rate)
        if not self.momentum:
            weight -= lr * grad
            return
        velocity = slots["velocity"]
        velocity *= np.float32(self.momentum)
        velocity -= lr * grad
        if self.nesterov:
            weight += np.float32(self.momentum) * velocity - lr * grad
        else:
            weight += velocity

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """Divide the step by a running root mean square of the gradient."""

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def _new_slots(self, weight):
        return {"mean_square": np.zeros(weight.size, weight.dtype)}

    def _update(self, weight, grad, slots):
        # mean_square = rho mean_square + (1 - rho) grad**2;
        # weight -= lr grad / sqrt(mean_square + epsilon): Keras 3 puts
        # epsilon inside the square root.
        _elementwise.rmsprop_update(_flat(weight), _flat_like(grad, weight), slots["mean_square"],
                                    np.float32(self.learning_rate), np.float32(self.rho),
                                    np.float32(1.0 - self.rho), np.float32(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Adaptive moments with bias correction."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _new_slots(self, weight):
        return {"m": np.zeros(weight.size, weight.dtype), "v": np.zeros(weight.size, weight.dtype)}

    def _update(self, weight, grad, slots):
        # m += (1 - beta_1) (grad - m); v += (1 - beta_2) (grad**2 - v);
        # weight -= step m / (sqrt(v) + epsilon), step bias-corrected.
        t = self.iterations
        step = self.learning_rate * np.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        _elementwise.adam_update(_flat(weight), _flat_like(grad, weight), slots["m"], slots["v"],
                                 np.float32(step), np.float32(1.0 - self.beta_1),
                                 np.float32(1.0 - self.beta_2), np.float32(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019).

    Each step first shrinks every weight by ``learning_rate * weight_decay``
    of itself, then takes Adam's step, as Keras' AdamW does.

    Parameters
    ----------
    learning_rate : float, default 0.001
    weight_decay : float, default 0.004
        Fraction of a weight removed per unit of learning rate and step;
        a finite number >= 0.
    beta_1, beta_2, epsilon : float
        Adam's, with its defaults 0.9, 0.999 and 1e-7.
    **kwargs
        ``clipnorm``, ``clipvalue``.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.weight_decay = _finite_real("weight_decay", weight_decay, 0.0, inclusive=True)

    def _update(self, weight, grad, slots):
        flat, grad = _flat(weight), _flat_like(grad, weight)  # refuse misfits before decaying
        flat *= np.float32(1.0 - self.learning_rate * self.weight_decay)
        super()._update(weight, grad.reshape(weight.shape), slots)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """Steps scaled down by each weight's sum of squared gradients so far.

    ``accumulator += grad**2``;
    ``weight -= learning_rate * grad / sqrt(accumulator + epsilon)``.

    Parameters
    ----------
    learning_rate : float, default 0.001
    initial_accumulator_value : float, default 0.1
        Where every accumulator starts; a finite number >= 0.
    epsilon : float, default 1e-7
        Added inside the square root, as in Keras.
    **kwargs
        ``clipnorm``, ``clipvalue``.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _finite_real(
            "initial_accumulator_value", initial_accumulator_value, 0.0, inclusive=True)
        self.epsilon = float(epsilon)

    def _new_slots(self, weight):
        return {"accumulator": np.full(weight.size, self.initial_accumulator_value,
                                       weight.dtype)}

    def _update(self, weight, grad, slots):
        flat, grad = _flat(weight), _flat_like(grad, weight)
        accumulator = slots["accumulator"]
        accumulator += grad * grad
        flat -= grad * np.float32(self.learning_rate) / np.sqrt(
            accumulator + np.float32(self.epsilon))

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum, in Keras 3's formulation (Dozat, 2015).

    The momentum follows the schedule
    ``u_t = beta_1 * (1 - 0.5 * 0.96**t)`` at step t (from 1); with
    ``prod_t = u_1 ... u_t``, a step is::

        m += (1 - beta_1) (grad - m);  v += (1 - beta_2) (grad**2 - v)
        m_hat = u_{t+1} m / (1 - prod_{t+1}) + (1 - u_t) grad / (1 - prod_t)
        v_hat = v / (1 - beta_2**t)
        weight -= learning_rate m_hat / (sqrt(v_hat) + epsilon)

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta_1, beta_2, epsilon : float
        As Adam's, with its defaults 0.9, 0.999 and 1e-7.
    **kwargs
        ``clipnorm``, ``clipvalue``.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._u_product = 1.0  # prod_t, one for all weights
        self._scales = None

    def _momentum(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def apply(self, weights, grads):
        """Update every array in `weights` in place from its gradient."""
        t = self.iterations + 1
        u_now, u_next = self._momentum(t), self._momentum(t + 1)
        self._u_product *= u_now
        # The step's factors of m, of grad, and the bias correction of v.
        self._scales = (np.float32(u_next / (1.0 - self._u_product * u_next)),
                        np.float32((1.0 - u_now) / (1.0 - self._u_product)),
                        np.float32(1.0 - self.beta_2 ** t))
        super().apply(weights, grads)

    def _new_slots(self, weight):
        return {"m": np.zeros(weight.size, weight.dtype), "v": np.zeros(weight.size, weight.dtype)}

    def _update(self, weight, grad, slots):
        m_scale, grad_scale, v_correction = self._scales
        flat, grad = _flat(weight), _flat_like(grad, weight)
        m, v = slots["m"], slots["v"]
        m += np.float32(1.0 - self.beta_1) * (grad - m)
        v += np.float32(1.0 - self.beta_2) * (grad * grad - v)
        m_hat = m_scale * m + grad_scale * grad
        flat -= np.float32(self.learning_rate) * m_hat / (
            np.sqrt(v / v_correction) + np.float32(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad,
            "nadam": Nadam}


def get(identifier):
    """An optimizer from its name (Keras defaults) or an Optimizer instance.

    Names are case-insensitive, as in Keras: "adam" or "Adam", "adamw" or
    "AdamW", and so on.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    try:
        return _BY_NAME[identifier.lower()]()
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {identifier!r}; valid names: {sorted(_BY_NAME)}") from None

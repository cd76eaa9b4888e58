"""Losses: a value (mean over every element, as Keras) and its gradient.

With a mask (a model's output over time steps that still carries Masking's
mask, as Keras passes it to the loss), the mean runs over the unmasked
steps only, and the masked steps get no gradient. With sample weights, each
sample's (or step's) loss is multiplied by its weight before the mean over
all of them, Keras' "sum_over_batch_size" reduction.
"""
import numpy as np

from . import serialization

__all__ = ["get", "MeanSquaredError", "MeanAbsoluteError", "Huber"]


class Loss(serialization.Serializable, kind="loss"):
    """Base class: subclasses define ``_elementwise(error)`` and
    ``_derivative(error)`` of error = y_pred - y_true, and register
    themselves for ``load_model`` when defined (fastlstm.serialization)."""

    name = "loss"

    def get_config(self):
        """Keyword arguments that rebuild this loss."""
        return {}

    def __call__(self, y_true, y_pred, mask=None, sample_weight=None):
        """Mean loss over all elements (of the unmasked steps), a Python float.

        Parameters
        ----------
        y_true, y_pred : array_like of the same shape
        mask : ndarray of bool, shape y_pred.shape[:-1], optional
            True at the steps that count.
        sample_weight : array_like of shape (samples,) or y_pred.shape[:-1], optional
            Each sample's (or step's) weight.
        """
        values = self._elementwise(np.asarray(y_pred, np.float64) - y_true)
        weights = _step_weights(values.shape[:-1], mask, sample_weight)
        if weights is None:
            return float(np.mean(values))
        return float(np.mean(values.mean(axis=-1) * weights))

    def gradient(self, y_true, y_pred, mask=None, sample_weight=None):
        """d loss / d y_pred, float32, shaped like y_pred (zeros at masked steps)."""
        error = np.asarray(y_pred, np.float64) - y_true
        gradient = self._derivative(error) / error.size
        weights = _step_weights(error.shape[:-1], mask, sample_weight)
        if weights is not None:
            gradient = gradient * weights[..., None]
        return gradient.astype(np.float32)


def _step_weights(shape, mask, sample_weight):
    """The weight of each step's loss, of `shape` (the loss values' shape
    without the last axis), or None when every step weighs 1: the sample
    weights broadcast over the steps, times the mask scaled so that the
    unmasked steps' weights add up to the count of all steps (Keras)."""
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, np.float64)
        weights = np.broadcast_to(weights.reshape(weights.shape + (1,) * (len(shape) -
                                                                          weights.ndim)), shape)
    if mask is not None:
        valid = int(mask.sum())
        scaled = mask * (mask.size / valid) if valid else np.zeros(shape)
        weights = scaled if weights is None else weights * scaled
    return weights


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def _elementwise(self, error):
        return error * error

    def _derivative(self, error):
        return 2.0 * error


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def _elementwise(self, error):
        return np.abs(error)

    def _derivative(self, error):
        return np.sign(error)


class Huber(Loss):
    """Quadratic within ±delta of the target, linear beyond it."""

    name = "huber"

    def __init__(self, delta=1.0):
        self.delta = float(delta)

    def get_config(self):
        return {"delta": self.delta}

    def _elementwise(self, error):
        a = np.abs(error)
        return np.where(a <= self.delta, 0.5 * error * error, self.delta * (a - 0.5 * self.delta))

    def _derivative(self, error):
        return np.clip(error, -self.delta, self.delta)


_BY_NAME = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
            "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
            "huber": Huber}


def get(identifier):
    """A loss from its name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    try:
        return _BY_NAME[identifier]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {identifier!r}; valid names: {sorted(_BY_NAME)}") from None

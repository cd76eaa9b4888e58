"""Losses: a value (mean over every element, as Keras) and its gradient.

With a mask (a model's output over time steps that still carries Masking's
mask, as Keras passes it to the loss), the mean runs over the unmasked
steps only, and the masked steps get no gradient. With sample weights, each
sample's (or step's) loss is multiplied by its weight before the mean over
all of them, Keras' "sum_over_batch_size" reduction.
"""
import numpy as np

from . import serialization

__all__ = ["get", "MeanSquaredError", "MeanAbsoluteError", "Huber",
           "MeanSquaredLogarithmicError", "LogCosh"]

# Keras' backend.epsilon() is held as a float32 tensor, so predictions are
# compared with (and clipped to) float32(1e-7), not 1e-7 itself.
_EPSILON = float(np.float32(1e-7))


class Loss(serialization.Serializable, kind="loss"):
    """Base class: subclasses define ``_elementwise(error)`` and
    ``_derivative(error)`` of error = y_pred - y_true, and register
    themselves for ``load_model`` when defined (fastlstm.serialization).

    A loss of another error (MSLE's, between logarithms) also overrides
    ``_error(y_true, y_pred)`` and ``_error_slope(y_pred)``, d error / d y_pred.
    """

    name = "loss"

    def get_config(self):
        """Keyword arguments that rebuild this loss."""
        return {}

    def __call__(self, y_true, y_pred, sample_weight=None, *, mask=None):
        """Mean loss over all elements (of the unmasked steps), a Python float.

        Parameters
        ----------
        y_true, y_pred : array_like of the same shape
        mask : ndarray of bool, shape y_pred.shape[:-1], optional
            True at the steps that count.
        sample_weight : array_like of shape (samples,) or y_pred.shape[:-1], optional
            Each sample's (or step's) weight.
        """
        values = self._elementwise(self._error(y_true, y_pred))
        weights = _step_weights(values.shape[:-1], mask, sample_weight)
        if weights is None:
            return float(np.mean(values))
        return float(np.mean(values.mean(axis=-1) * weights))

    def gradient(self, y_true, y_pred, sample_weight=None, *, mask=None):
        """d loss / d y_pred, float32, shaped like y_pred (zeros at masked steps)."""
        error = self._error(y_true, y_pred)
        gradient = self._derivative(error) / error.size
        slope = self._error_slope(y_pred)
        if slope is not None:
            gradient = gradient * slope
        weights = _step_weights(error.shape[:-1], mask, sample_weight)
        if weights is not None:
            gradient = gradient * weights[..., None]
        return gradient.astype(np.float32)

    def _error(self, y_true, y_pred):
        """The error the loss is a function of, float64: y_pred - y_true."""
        return np.asarray(y_pred, np.float64) - y_true

    def _error_slope(self, y_pred):
        """d error / d y_pred, or None where it is 1 everywhere."""
        return None


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


class MeanSquaredLogarithmicError(Loss):
    """Squared difference of log(1 + y), as Keras' MSLE.

    Predictions and targets below Keras' epsilon (float32 1e-7) are raised
    to it first, so a clipped prediction gets no gradient.
    """

    name = "mean_squared_logarithmic_error"

    def _error(self, y_true, y_pred):
        return (np.log1p(np.maximum(np.asarray(y_pred, np.float64), _EPSILON))
                - np.log1p(np.maximum(np.asarray(y_true, np.float64), _EPSILON)))

    def _error_slope(self, y_pred):
        y_pred = np.asarray(y_pred, np.float64)
        # Keras' maximum(y_pred, epsilon) passes on its gradient where
        # y_pred > epsilon, none below, and half at a tie (torch's rule).
        passed = np.where(y_pred > _EPSILON, 1.0, np.where(y_pred == _EPSILON, 0.5, 0.0))
        return passed / (1.0 + np.maximum(y_pred, _EPSILON))

    def _elementwise(self, error):
        return error * error

    def _derivative(self, error):
        return 2.0 * error


class LogCosh(Loss):
    """log(cosh(error)): about error**2 / 2 near 0, |error| - log(2) far from it."""

    name = "log_cosh"

    def _elementwise(self, error):
        # log(cosh(x)) = x + log(1 + exp(-2x)) - log(2), without overflow.
        return error + np.logaddexp(0.0, -2.0 * error) - np.log(2.0)

    def _derivative(self, error):
        return np.tanh(error)


# Every name keras.losses.get (Keras 3) takes for these losses, and "logcosh"
# of Keras 2.
_BY_NAME = {"mse": MeanSquaredError, "MSE": MeanSquaredError,
            "mean_squared_error": MeanSquaredError, "MeanSquaredError": MeanSquaredError,
            "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
            "mean_absolute_error": MeanAbsoluteError, "MeanAbsoluteError": MeanAbsoluteError,
            "huber": Huber, "Huber": Huber,
            "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
            "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
            "MeanSquaredLogarithmicError": MeanSquaredLogarithmicError,
            "log_cosh": LogCosh, "LogCosh": LogCosh, "logcosh": LogCosh}


def get(identifier):
    """A loss from its name (as Keras names it, case-sensitive) or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    try:
        return _BY_NAME[identifier]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {identifier!r}; valid names: {sorted(_BY_NAME)}") from None

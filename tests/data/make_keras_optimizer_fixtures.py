"""Write keras_optimizer_fixtures.npz: updates of Keras 3's AdamW, Adagrad
and Nadam, and values and gradients of its mean squared logarithmic error
and log-cosh losses, on fixed inputs.

Run by hand where keras (3.x) and torch are installed (tensorflow is not
needed: Keras runs on its torch backend):

    KERAS_BACKEND=torch python tests/data/make_keras_optimizer_fixtures.py

Optimizers: for each case (an optimizer with its default hyper-parameters,
and with others), a (2, 3) float32 weight starts at ``<case>_w0`` and takes
one step per gradient in ``<case>_grads`` (steps, 2, 3) through
``optimizer.apply``; ``<case>_weights`` (steps, 2, 3) holds the weight after
each step. In the ``*_rate_change`` cases ``optimizer.learning_rate`` is set
to ``<case>_rates[k]`` before step k.

Losses: for each loss, y_true and y_pred (batch, time, features) float32 with
values on both sides of Keras' epsilon (1e-7, where MSLE clips), the loss
value (``<loss>_value``) and d value / d y_pred by torch.autograd
(``<loss>_grad``); the ``<loss>_masked_*`` entries repeat both with a
(batch, time) boolean mask set on y_pred as Keras' mask, as a masked
sequence output carries it into the loss.

The tests (tests/test_keras_optimizers.py) check fastlstm against these
numbers without any framework.
"""
import os

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras.src import backend  # noqa: E402

SHAPE = (2, 3)
STEPS = 4

# case name -> (Keras class, constructor arguments, learning rate per step or None)
OPTIMIZER_CASES = {
    "adamw_defaults": (keras.optimizers.AdamW, {}, None),
    "adamw": (keras.optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.2,
                                       "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}, None),
    "adamw_rate_change": (keras.optimizers.AdamW, {"learning_rate": 0.05},
                          [0.05, 0.05, 0.01, 0.2]),
    "adagrad_defaults": (keras.optimizers.Adagrad, {}, None),
    "adagrad": (keras.optimizers.Adagrad, {"learning_rate": 0.1,
                                           "initial_accumulator_value": 0.5,
                                           "epsilon": 1e-3}, None),
    "nadam_defaults": (keras.optimizers.Nadam, {}, None),
    "nadam": (keras.optimizers.Nadam, {"learning_rate": 0.05, "beta_1": 0.8,
                                       "beta_2": 0.95, "epsilon": 1e-4}, None),
    "nadam_rate_change": (keras.optimizers.Nadam, {"learning_rate": 0.05},
                          [0.05, 0.05, 0.01, 0.2]),
}

LOSSES = {"msle": keras.losses.MeanSquaredLogarithmicError,
          "log_cosh": keras.losses.LogCosh}


def optimizer_fixture(name, cls, kwargs, rates, rng):
    """One optimizer case: w0, the gradients, the weights after each step
    (and the learning rate of each step, if it changes)."""
    w0 = rng.standard_normal(SHAPE).astype(np.float32)
    grads = rng.standard_normal((STEPS, *SHAPE)).astype(np.float32)
    grads[1, 0, 0] = 0.0  # an element without gradient still decays and moves on momentum
    optimizer = cls(**kwargs)
    variable = keras.Variable(w0.copy())
    weights = []
    for k in range(STEPS):
        if rates is not None:
            optimizer.learning_rate = rates[k]
        optimizer.apply([keras.ops.convert_to_tensor(grads[k])], [variable])
        weights.append(keras.ops.convert_to_numpy(variable).copy())
    out = {"w0": w0, "grads": grads, "weights": np.stack(weights)}
    if rates is not None:
        out["rates"] = np.array(rates, np.float32)
    return {f"{name}_{k}": v for k, v in out.items()}


def loss_inputs(rng):
    """y_true, y_pred (4, 3, 2) float32: mostly positive, some at, below
    and around epsilon, some negative, a few large."""
    y_true = np.abs(rng.standard_normal((4, 3, 2))).astype(np.float32) * 2
    y_pred = (y_true + rng.standard_normal((4, 3, 2)).astype(np.float32)).astype(np.float32)
    epsilon = np.float32(1e-7)
    y_pred[0, 0] = [epsilon, 0.0]            # at epsilon, and clipped up to it
    y_pred[0, 1] = [-0.5, 5e-8]              # clipped
    y_pred[0, 2] = [2e-7, 30.0]              # just above epsilon; large
    y_true[1, 0] = [-1.0, 0.0]               # targets clipped too
    y_true[1, 1] = [epsilon, 12.0]
    y_pred[2, 0] = [-15.0, 14.0]             # large errors for log-cosh
    return y_true, y_pred


def loss_fixture(name, cls, y_true, y_pred, mask=None):
    """The loss value and d value / d y_pred, with Keras' mask if given."""
    pred = torch.tensor(y_pred, requires_grad=True)
    if mask is not None:
        backend.set_keras_mask(pred, torch.tensor(mask))
    value = cls()(torch.tensor(y_true), pred)
    (grad,) = torch.autograd.grad(value, [pred])
    return np.float32(value.detach().numpy()), grad.numpy().copy()


def loss_fixtures(rng):
    y_true, y_pred = loss_inputs(rng)
    mask = np.ones(y_pred.shape[:-1], bool)
    mask[0, 2] = mask[3, 0] = mask[3, 1] = False
    out = {"loss_y_true": y_true, "loss_y_pred": y_pred, "loss_mask": mask}
    for name, cls in LOSSES.items():
        out[f"{name}_value"], out[f"{name}_grad"] = loss_fixture(name, cls, y_true, y_pred)
        out[f"{name}_masked_value"], out[f"{name}_masked_grad"] = loss_fixture(
            name, cls, y_true, y_pred, mask)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(2031)
    arrays = {}
    for case, (cls, kwargs, rates) in OPTIMIZER_CASES.items():
        arrays.update(optimizer_fixture(case, cls, kwargs, rates, rng))
    arrays.update(loss_fixtures(rng))
    arrays["keras_version"] = np.array([keras.__version__])
    arrays["torch_version"] = np.array([torch.__version__])
    assert all(a.dtype == np.float32 for a in arrays.values() if a.dtype.kind == "f")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "keras_optimizer_fixtures.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes): {len(arrays)} arrays")

"""Write keras_surface_fixtures.npz: what Keras 3 computes for sample
weights and masks in a model's loss and metrics, and one training step
under both, recorded on fixed weights and inputs.

Run by hand where keras (3.x) and torch are installed (tensorflow is not
needed: Keras runs on its torch backend):

    python tests/data/make_keras_surface_fixtures.py

Everything is float32 with a fixed seed. Two models, their weights stored
as ``layer.get_weights()`` gives them (prefix ``<model>_w<i>``, all layers
in order):

``dense_``: Input((6, 3)) -> LSTM(4) -> Dense(1), compiled with "mse" and
metrics ["mae"]; ``x`` (5, 6, 3), ``y`` (5, 1), ``sample_weight`` (5,);
``evaluate`` [loss, mae] without and with the sample weights
(``evaluate_plain``, ``evaluate_weighted``).

``masked_``: Input((6, 3)) -> Masking(0.0) -> GRU(4, return_sequences=True)
-> Dense(2), compiled with SGD(0.1), "mse" and metrics ["mae"]; ``x`` with
all-zero (masked) steps, ``y`` (5, 6, 2), ``sample_weight`` (5, 6), one
weight per sample repeated over its steps;
``evaluate_plain`` and ``evaluate_weighted`` as above, then the weights
after one ``fit`` step over the whole batch (batch_size=5, shuffle=False)
with the sample weights (``trained_w<i>``).
"""
import os

os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402


def _random(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _set_random_weights(model, rng):
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([_random(rng, *w.shape, scale=0.5) for w in weights])


def _weights(model):
    return [w for layer in model.layers for w in layer.get_weights()]


def dense_fixture(rng):
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    _set_random_weights(model, rng)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = _random(rng, 5, 6, 3), _random(rng, 5, 1)
    weight = np.array([0.0, 1.0, 2.0, 0.5, 1.5], np.float32)
    out = {"x": x, "y": y, "sample_weight": weight,
           "evaluate_plain": np.array(model.evaluate(x, y, verbose=0)),
           "evaluate_weighted": np.array(model.evaluate(x, y, sample_weight=weight,
                                                        verbose=0))}
    out.update({f"w{i}": w for i, w in enumerate(_weights(model))})
    return out


def masked_fixture(rng):
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.Masking(0.0),
                              keras.layers.GRU(4, return_sequences=True),
                              keras.layers.Dense(2)])
    _set_random_weights(model, rng)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    x, y = _random(rng, 5, 6, 3), _random(rng, 5, 6, 2)
    lengths = np.array([6, 2, 4, 1, 5])
    x[np.arange(6) >= lengths[:, None]] = 0.0
    x[2, 0] = 0.0  # a masked step before the row's first data
    # Per step: Keras 3.15 on torch cannot broadcast (samples,) weights
    # against a (samples, steps) mask.
    weight = np.repeat(np.array([[1.0], [0.5], [2.0], [0.0], [1.0]], np.float32), 6, axis=1)
    out = {"x": x, "y": y, "sample_weight": weight,
           "evaluate_plain": np.array(model.evaluate(x, y, verbose=0)),
           "evaluate_weighted": np.array(model.evaluate(x, y, sample_weight=weight,
                                                        verbose=0))}
    out.update({f"w{i}": w for i, w in enumerate(_weights(model))})
    model.fit(x, y, sample_weight=weight, batch_size=5, epochs=1, shuffle=False, verbose=0)
    out.update({f"trained_w{i}": w for i, w in enumerate(_weights(model))})
    return out


def main():
    rng = np.random.default_rng(2024)
    arrays = {"keras_version": np.array(keras.__version__)}
    for prefix, make in (("dense", dense_fixture), ("masked", masked_fixture)):
        arrays.update({f"{prefix}_{k}": v for k, v in make(rng).items()})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_surface_fixtures.npz")
    np.savez(path, **arrays)
    print(f"wrote {path}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()

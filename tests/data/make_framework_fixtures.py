"""Write framework_fixtures.npz: outputs of Keras and PyTorch LSTMs on fixed inputs.

Run by hand where tensorflow-cpu (Keras 3) and torch are installed:

    python tests/data/make_framework_fixtures.py

The tests then check fastlstm against these numbers without either framework.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def keras_fixture(rng):
    """A small Keras Sequential: weights (Keras layout), inputs, predictions."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((10, 3)),
                              keras.layers.LSTM(6, return_sequences=True),
                              keras.layers.LSTM(5), keras.layers.Dense(2, activation="tanh")])
    weights = [w + 0.1 * rng.standard_normal(w.shape).astype(np.float32)  # non-zero biases too
               for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.standard_normal((4, 10, 3)).astype(np.float32)
    out = {f"keras_weight_{i}": w for i, w in enumerate(weights)}
    out.update(keras_x=x, keras_y=model.predict(x, verbose=0), keras_versions=np.array(
        [keras.__version__]))
    return out


def torch_fixture(rng):
    """nn.LSTM with initial states: its parameters, inputs and outputs."""
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(4, 7, batch_first=True)
    x = rng.standard_normal((3, 9, 4)).astype(np.float32)
    h0 = rng.standard_normal((1, 3, 7)).astype(np.float32)
    c0 = rng.standard_normal((1, 3, 7)).astype(np.float32)
    with torch.no_grad():
        y, (h_n, c_n) = lstm(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    params = {name: p.detach().numpy() for name, p in lstm.named_parameters()}
    return {"torch_x": x, "torch_h0": h0[0], "torch_c0": c0[0], "torch_y": y.numpy(),
            "torch_h_n": h_n[0].numpy(), "torch_c_n": c_n[0].numpy(),
            **{f"torch_{name}": value for name, value in params.items()},
            "torch_version": np.array([torch.__version__])}


if __name__ == "__main__":
    rng = np.random.default_rng(2026)
    arrays = {**keras_fixture(rng), **torch_fixture(rng)}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "framework_fixtures.npz")
    np.savez(path, **arrays)
    print(f"wrote {path}: {sorted(arrays)}")

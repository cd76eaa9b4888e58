"""fastlstm against real Keras and PyTorch outputs (data/framework_fixtures.npz,
made by data/make_framework_fixtures.py where those frameworks are installed)."""
import pathlib

import numpy as np
import pytest

import fastlstm
from fastlstm import functional, reference
from fastlstm.layers import LSTM, Dense

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "framework_fixtures.npz"


@pytest.fixture(scope="module")
def fixtures():
    with np.load(FIXTURES, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_keras_weights_load_unchanged_and_give_keras_predictions(fixtures):
    weights = [fixtures[f"keras_weight_{i}"] for i in range(8)]
    model = fastlstm.Sequential([LSTM(6, return_sequences=True, input_shape=(10, 3)), LSTM(5),
                                 Dense(2, activation="tanh")])
    model.set_weights(weights)
    predicted = model.predict(fixtures["keras_x"])
    np.testing.assert_allclose(predicted, fixtures["keras_y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module", [functional, reference])
def test_pytorch_weights_converted_give_pytorch_outputs(fixtures, module):
    """nn.LSTM's gate order i, f, g, o is Keras' i, f, c, o; only transposes and the
    sum of its two biases are needed."""
    kernel = fixtures["torch_weight_ih_l0"].T
    recurrent_kernel = fixtures["torch_weight_hh_l0"].T
    bias = fixtures["torch_bias_ih_l0"] + fixtures["torch_bias_hh_l0"]
    y, h_n, c_n = module.lstm_forward(fixtures["torch_x"], kernel, recurrent_kernel, bias,
                                      fixtures["torch_h0"], fixtures["torch_c0"])
    for actual, name in ((y, "torch_y"), (h_n, "torch_h_n"), (c_n, "torch_c_n")):
        np.testing.assert_allclose(actual, fixtures[name], rtol=1e-5, atol=1e-6, err_msg=name)

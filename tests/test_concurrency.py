"""A model in a multi-threaded program: inference never disturbs training."""
import threading

import numpy as np

import fastlstm
from fastlstm.layers import LSTM, Dense, Dropout


def _trained_weights(x, y, predict_meanwhile):
    fastlstm.set_random_seed(3)
    model = fastlstm.Sequential([LSTM(8, return_sequences=True, input_shape=(12, 1)),
                                 Dropout(0.3), LSTM(8), Dropout(0.3), Dense(1)])
    model.compile("rmsprop", "mse")
    model.build()
    stop = threading.Event()

    def predict_until_stopped():
        while not stop.is_set():
            model.predict(x[:7])

    helper = threading.Thread(target=predict_until_stopped)
    if predict_meanwhile:
        helper.start()
    try:
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    finally:
        stop.set()
        if predict_meanwhile:
            helper.join()
    return model.get_weights()


def test_predict_from_another_thread_leaves_training_unchanged():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 12, 1)).astype(np.float32)
    y = x[:, -3:, 0].mean(axis=1, keepdims=True)
    undisturbed = _trained_weights(x, y, predict_meanwhile=False)
    disturbed = _trained_weights(x, y, predict_meanwhile=True)
    for a, b in zip(disturbed, undisturbed):
        np.testing.assert_array_equal(a, b)


def test_an_inference_pass_keeps_the_dropout_mask_of_a_training_pass():
    layer = Dropout(0.5)
    x = np.ones((4, 6), np.float32)
    layer(x, training=True)
    before = layer.backward(np.ones_like(x))
    assert 0 < np.count_nonzero(before) < x.size
    np.testing.assert_array_equal(layer(x, training=False), x)  # a predict in between
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), before)

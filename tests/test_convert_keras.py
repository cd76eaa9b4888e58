"""fastlstm.convert.keras against files Keras 3 saved and loaded.

tests/data/keras_files holds small models saved by Keras (.keras and
legacy .h5) with Keras' predictions, and files to_keras wrote that Keras
loaded, with Keras' predictions of those; tests/data/make_keras_files.py
made them. Keras is not needed here: fastlstm reads the files and must
predict what Keras predicted. Round trips through to_keras and from_keras
must give back every weight and prediction bit for bit.
"""
import io
import json
import os
import pathlib
import sys
import zipfile

import numpy as np
import pytest
from conftest import load_script

h5py = pytest.importorskip("h5py")

import fastlstm  # noqa: E402
from fastlstm import Input, Sequential  # noqa: E402
from fastlstm.convert import (ConversionError, UnsupportedLayerError, convert_file,  # noqa: E402
                              from_keras, to_keras)
from fastlstm.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Masking,  # noqa: E402
                             SimpleRNN)

DATA = pathlib.Path(__file__).resolve().parent / "data"
FILES = DATA / "keras_files"


maker = load_script(DATA / "make_keras_files.py")
PREDICTIONS = dict(np.load(maker.PREDICTIONS)) if maker.PREDICTIONS.exists() else {}
RECORDED = sorted(key[:-2] for key in PREDICTIONS if key.endswith(".x"))
KERAS_SAVED = [f"{name}.keras" for name in RECORDED if not name.startswith("written_")] + \
    [f"{name}.h5" for name in maker.LEGACY] + [f"keras2_{name}.h5" for name in maker.KERAS2]


@pytest.fixture(autouse=True)
def one_thread():
    """The models are tiny: one thread runs them without a team's overhead."""
    with fastlstm.threads(1):
        yield


def _assert_predicts_as_keras(model, name):
    name = name.removeprefix("keras2_")  # the model Keras saved before the rewrite
    x = PREDICTIONS[f"{name}.x"]
    for call in ("y", "y2"):
        if f"{name}.{call}" in PREDICTIONS:
            np.testing.assert_allclose(model.predict(x, batch_size=maker.BATCH, verbose=0),
                                       PREDICTIONS[f"{name}.{call}"], rtol=1e-5, atol=1e-6)


def test_the_recordings_cover_every_model_of_the_script():
    assert RECORDED, f"{FILES} is empty: run tests/data/make_keras_files.py"
    expected = {*maker.KERAS_MODELS, *(f"written_{n}" for n in maker.FASTLSTM_MODELS)}
    assert set(RECORDED) == expected
    for name in KERAS_SAVED + [f"written_{n}.keras" for n in maker.FASTLSTM_MODELS]:
        assert (FILES / name).stat().st_size < 64 * 1024, name


@pytest.mark.parametrize("file_name", KERAS_SAVED)
def test_a_file_keras_saved_predicts_as_keras_did(file_name):
    model = from_keras(FILES / file_name)
    assert isinstance(model, Sequential) and model.optimizer is None
    _assert_predicts_as_keras(model, file_name.rsplit(".", 1)[0])


def test_the_layers_and_options_read_are_keras_ones():
    model = from_keras(FILES / "bidirectional_concat_mul.keras")
    masking, concat, mul, lstm = model.layers
    assert isinstance(masking, Masking) and masking.mask_value == 0.0
    assert (concat.merge_mode, mul.merge_mode) == ("concat", "mul")
    assert isinstance(concat.forward_layer, LSTM) and isinstance(mul.forward_layer, SimpleRNN)
    assert concat.forward_layer.name.startswith("forward_lstm")
    assert concat.backward_layer.go_backwards
    gru = from_keras(FILES / "gru.h5").layers
    assert (gru[0].reset_after, gru[1].reset_after, gru[1].go_backwards) == (True, False, True)
    assert from_keras(FILES / "lstm.keras").input_shape == (None, maker.FEATURES)
    assert from_keras(FILES / "stateful.keras").layers[0].stateful


def test_an_lstm_without_bias_reads_as_a_zero_bias(tmp_path):
    """fastlstm's LSTM always has a bias: zeros compute what Keras does."""
    for file_name in ("lstm_without_bias.keras", "lstm_without_bias.h5"):
        model = from_keras(FILES / file_name)
        bidirectional, lstm, _ = model.layers
        for layer in (bidirectional.forward_layer, bidirectional.backward_layer, lstm):
            assert layer.use_bias and not np.any(layer.get_weights()[2])
            assert not layer.unit_forget_bias
    to_keras(model, tmp_path / "with_bias.keras")  # written as the biased LSTM it now is
    config, _ = _archive_contents(tmp_path / "with_bias.keras")
    assert config["config"]["layers"][2]["config"]["use_bias"] is True
    np.testing.assert_array_equal(from_keras(tmp_path / "with_bias.keras").predict(
        PREDICTIONS["lstm_without_bias.x"]), model.predict(PREDICTIONS["lstm_without_bias.x"]))


@pytest.mark.parametrize("name", maker.LEGACY)
def test_keras_2s_dialect_of_a_legacy_file_reads_the_same(tmp_path, name):
    """Every legacy file rewritten as tf.keras 2.x wrote it (no modules,
    batch_input_shape, time_major, inbound nodes as lists, "kernel:0")."""
    maker.write_keras2_file(FILES / f"{name}.h5", tmp_path / "keras2.h5")
    _assert_predicts_as_keras(from_keras(tmp_path / "keras2.h5"), name)


def test_a_keras_2_sequential_config_may_be_a_list_of_layers(tmp_path):
    def as_list(config):
        config["config"] = config["config"]["layers"][1:]
        _layer_of(config, 0)["batch_input_shape"] = [None, None, maker.FEATURES]

    model = from_keras(_with_config(tmp_path, "lstm.keras", as_list))
    assert model.name == "sequential"
    _assert_predicts_as_keras(model, "lstm")


@pytest.mark.parametrize("name", maker.FASTLSTM_MODELS)
def test_a_written_file_reads_back_as_keras_predicted_it(name):
    """Keras loaded this file and predicted; fastlstm predicts the same from it."""
    _assert_predicts_as_keras(from_keras(FILES / f"written_{name}.keras"), f"written_{name}")


def _archive_contents(path):
    """A .keras file's config and its weights by h5 path."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            weights = {}
            h5.visititems(lambda name, obj: weights.__setitem__(name, obj[()])
                          if isinstance(obj, h5py.Dataset) else None)
    return config, weights


@pytest.mark.parametrize("name", maker.FASTLSTM_MODELS)
def test_to_keras_still_writes_what_keras_was_shown(tmp_path, name):
    path = tmp_path / "model.keras"
    to_keras(maker.fastlstm_model(name), path, batch_size=maker.WRITE_BATCH_SIZE.get(name))
    config, weights = _archive_contents(path)
    shown_config, shown_weights = _archive_contents(FILES / f"written_{name}.keras")
    assert config == shown_config, "rerun tests/data/make_keras_files.py"
    assert weights.keys() == shown_weights.keys()
    for key in weights:
        np.testing.assert_array_equal(weights[key], shown_weights[key])


# ------------------------------------------------------------ round trips

def _round_trip_models():
    """Every layer type and option a .keras file carries, with fixed weights."""
    shape = Input((5, 3))
    models = {name: maker.fastlstm_model(name) for name in maker.FASTLSTM_MODELS}
    extra = {
        "gru_reset_after_go_backwards": Sequential([
            shape, GRU(4, go_backwards=True, return_sequences=True, recurrent_dropout=0.3,
                       bias_initializer="ones"),
            GRU(2, use_bias=False)]),
        "bidirectional_go_backwards_forward": Sequential([
            shape, Bidirectional(LSTM(2, go_backwards=True, return_sequences=True),
                                 merge_mode="ave"),
            Bidirectional(SimpleRNN(2, activation="relu", use_bias=False), merge_mode="concat")]),
        "dense_over_steps": Sequential([
            shape, Dense(4, activation="tanh"), Dropout(0.1), LSTM(2, dropout=0.5)]),
        "stateful_bidirectional": Sequential([
            shape, Bidirectional(GRU(2, stateful=True, reset_after=False)),
            Dense(1, activation="sigmoid")]),
    }
    rng = np.random.default_rng(4)
    for model in extra.values():
        model.build()
        model.set_weights([rng.standard_normal(w.shape) for w in model.get_weights()])
    return {**models, **extra}


ROUND_TRIPS = _round_trip_models()


def _sample(model, seed=0):
    time = model.input_shape[0] or 7
    x = np.random.default_rng(seed).standard_normal((4, time, model.input_shape[-1]))
    x[1, -2:] = 0.0  # padding, for the models that mask it
    return x.astype(np.float32)


def _assert_same_model(read, written):
    assert [type(layer) for layer in read.layers] == [type(layer) for layer in written.layers]
    assert [layer.get_config() for layer in read.layers] == \
        [layer.get_config() for layer in written.layers]
    assert (read.name, read.input_shape, read.output_shape) == \
        (written.name, written.input_shape, written.output_shape)
    for got, expected in zip(read.get_weights(), written.get_weights(), strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    x = _sample(written)
    written.reset_states()
    for _ in range(2):  # twice: a stateful model carries its states on
        np.testing.assert_array_equal(read.predict(x, verbose=0), written.predict(x, verbose=0))


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_fastlstm_keras_fastlstm_is_bitwise(tmp_path, name):
    model = ROUND_TRIPS[name]
    stateful = any(getattr(layer, "stateful", False) for layer in model.layers)
    path = tmp_path / "model.keras"
    to_keras(model, path, batch_size=4 if stateful else None)
    _assert_same_model(from_keras(path), model)


def test_fastlstm_native_files_convert_both_ways(tmp_path):
    model = ROUND_TRIPS["bidirectional"]
    convert_file(FILES / "written_bidirectional.keras", tmp_path / "model.fastlstm")
    native = fastlstm.load_model(tmp_path / "model.fastlstm")
    _assert_same_model(native, model)
    returned = convert_file(tmp_path / "model.fastlstm", tmp_path / "again.keras")
    _assert_same_model(from_keras(tmp_path / "again.keras"), model)
    assert isinstance(returned, Sequential)
    convert_file(tmp_path / "model.fastlstm", tmp_path / "copy.fastlstm")
    _assert_same_model(fastlstm.load_model(tmp_path / "copy.fastlstm"), model)


def test_a_legacy_h5_file_converts_to_keras_and_fastlstm(tmp_path):
    convert_file(FILES / "masking.h5", tmp_path / "masking.keras")
    convert_file(FILES / "masking.h5", tmp_path / "masking.fastlstm")
    _assert_predicts_as_keras(from_keras(tmp_path / "masking.keras"), "masking")
    _assert_predicts_as_keras(fastlstm.load_model(tmp_path / "masking.fastlstm"), "masking")


# ------------------------------------------------------------ live objects

class _LiveLayer:
    def __init__(self, name, weights):
        self.name, self._weights = name, weights

    def get_weights(self):
        return [w.copy() for w in self._weights]


def _live_model(file_name):
    """An object shaped like a built keras.Model (class name, get_config,
    layers with get_weights), made from a file Keras saved, config tuples
    and all."""
    with zipfile.ZipFile(FILES / file_name) as archive:
        saved = json.loads(archive.read("config.json"))
    by_name = {}
    with h5py.File(FILES / file_name.replace(".keras", ".h5"), "r") as h5:
        group = h5["model_weights"]
        for name in group:
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group[name].attrs.get("weight_names", [])]
            by_name[name] = [group[name][n][()] for n in names]

    def tuples(value):
        if isinstance(value, list):
            return tuple(tuples(v) for v in value)
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        return value

    live_class = type(saved["class_name"], (), {
        "get_config": lambda self: tuples(saved["config"]),
        "get_weights": lambda self: [w for ws in by_name.values() for w in ws]})
    live = live_class()
    live.name = saved["config"]["name"]
    live.layers = [_LiveLayer(name, weights) for name, weights in by_name.items()]
    return live


@pytest.mark.parametrize("file_name", ["functional.keras", "masking.keras",
                                       "functional_masking.keras", "lstm_without_bias.keras"])
def test_a_live_keras_model_converts_through_its_config_and_weights(file_name):
    model = from_keras(_live_model(file_name))
    _assert_predicts_as_keras(model, file_name.rsplit(".", 1)[0])


def test_a_live_model_must_be_built_and_keras_shaped():
    live = _live_model("functional.keras")
    live.layers[1]._weights = []
    with pytest.raises(ConversionError, match="is the model built"):
        from_keras(live)
    with pytest.raises(TypeError, match="file path or a keras.Model"):
        from_keras(42)
    subclassed = type("MyModel", (), {"get_config": lambda self: {}, "get_weights": list,
                                      "layers": []})()
    with pytest.raises(UnsupportedLayerError, match="class 'MyModel'.*Sequential and Functional"):
        from_keras(subclassed)


# ------------------------------------------------------------ refusals

def test_a_peephole_lstm_has_no_keras_form_and_nothing_is_written(tmp_path):
    model = Sequential([Input((4, 2)), LSTM(3, peephole=True), Dense(1)])
    model.build()
    with pytest.raises(UnsupportedLayerError, match="'lstm' is a peephole LSTM"):
        to_keras(model, tmp_path / "peephole.keras")
    assert not (tmp_path / "peephole.keras").exists()


def test_a_layer_class_of_ones_own_is_not_written_as_its_parent(tmp_path):
    class ScaledDense(Dense):
        pass

    model = Sequential([Input((4, 2)), LSTM(3), ScaledDense(1)])
    model.build()
    with pytest.raises(UnsupportedLayerError, match="type ScaledDense; it holds: "):
        to_keras(model, tmp_path / "custom.keras")


def test_a_stateful_model_needs_the_batch_size_keras_fixes(tmp_path):
    model = maker.fastlstm_model("stateful")
    with pytest.raises(ValueError, match="stateful.*pass batch_size"):
        to_keras(model, tmp_path / "stateful.keras")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        to_keras(model, tmp_path / "stateful.keras", batch_size=0)
    with pytest.raises(ValueError, match="input shape"):
        to_keras(Sequential([LSTM(2)]), tmp_path / "unbuilt.keras")


def test_a_lambda_layer_is_refused_and_never_run():
    os.environ.pop(maker.LAMBDA_SENTINEL, None)
    with pytest.raises(UnsupportedLayerError, match="Keras layer 'lambda': fastlstm cannot "
                                                    "read Keras layer type 'Lambda'; it reads: "):
        from_keras(FILES / "lambda_layer.keras")
    assert maker.LAMBDA_SENTINEL not in os.environ


def _with_config(tmp_path, file_name, edit):
    """A copy of a Keras-saved file whose config.json `edit` changed in place."""
    with zipfile.ZipFile(FILES / file_name) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    path = tmp_path / file_name
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _layer(config, index):
    return config["config"]["layers"][index]["config"]


def _layer_of(config, index):
    """Layer `index` of a Keras 2 Sequential config that lists its layers."""
    return config["config"][index]["config"]


def _sets(index, option, value):
    return lambda config: _layer(config, index).__setitem__(option, value)


def _add_branch(config):
    """A second output: the LSTM's output also feeds a new Dense."""
    dense = json.loads(json.dumps(config["config"]["layers"][-1]))
    dense["name"] = dense["config"]["name"] = "extra"
    config["config"]["layers"].append(dense)
    config["config"]["output_layers"] = [["gru", 0, 0], ["extra", 0, 0]]


def _call_with_initial_state(config):
    config["config"]["layers"][1]["inbound_nodes"][0]["kwargs"]["initial_state"] = [1, 2]


def _entry_of(config, class_name):
    return next(e for e in config["config"]["layers"] if e["class_name"] == class_name)


def _mask_test_value(value):
    """The NotEqual of the Masking's mask compares with another value."""
    return lambda c: _entry_of(c, "NotEqual")["inbound_nodes"][0]["args"].__setitem__(1, value)


def _mask_from_masking(config):
    """The GRU takes the Masking's output as its mask, not the Any's."""
    mask = _entry_of(config, "GRU")["inbound_nodes"][0]["kwargs"]["mask"]
    mask["config"]["keras_history"][0] = "masking"


def _module(config):
    config["config"]["layers"][1]["module"] = "my_package.layers"


REFUSED_OPTIONS = [
    ("lstm.keras", _sets(1, "activation", "relu"),
     r"'lstm' \(LSTM\): activation='relu': fastlstm computes \['tanh'\] only"),
    ("lstm.keras", _sets(1, "recurrent_activation", "hard_sigmoid"),
     "recurrent_activation='hard_sigmoid'"),
    ("lstm.keras", _sets(2, "activation", "softmax"), r"'dense' \(Dense\): activation='softmax'"),
    ("lstm.keras", _sets(1, "kernel_regularizer",
                         {"module": "keras.regularizers", "class_name": "L2",
                          "config": {"l2": 0.01}}),
     "kernel_regularizer=.*fastlstm has no regularizers"),
    ("lstm.keras", _sets(1, "trainable", False), "trainable=False"),
    ("lstm.keras", _sets(1, "zero_output_for_mask", True), "zero_output_for_mask=True"),
    ("lstm.keras", _sets(1, "time_major", True), "time_major=True"),
    ("lstm.keras", _sets(1, "dtype", "mixed_float16"), "dtype='mixed_float16'"),
    ("lstm.keras", _sets(1, "future_option", 1), "future_option=1: an option fastlstm does "
     "not know"),
    ("simple_rnn.keras", _sets(1, "activation", "sigmoid"),
     r"activation='sigmoid': fastlstm computes \['tanh', 'relu'\] only"),
    ("simple_rnn.keras", _sets(2, "noise_shape", [None, 1, 3]), "noise_shape="),
    ("bidirectional_sum_ave.keras", _sets(1, "merge_mode", None),
     "merge_mode=None: it returns both directions' outputs"),
    ("bidirectional_sum_ave.keras",
     lambda c: _layer(c, 2)["backward_layer"]["config"].__setitem__("units", 3),
     "backward_layer='LSTM': fastlstm's backward direction is the forward layer"),
    ("lstm.keras", lambda c: c["config"]["layers"][1].__setitem__("class_name", "Conv1D"),
     "cannot read Keras layer type 'Conv1D'"),
    ("functional.keras", _module, "class 'LSTM' from module 'my_package.layers'"),
    ("functional.keras", _add_branch, r"1 input\(s\) and 2 output\(s\)"),
    ("functional.keras", _call_with_initial_state, "called with initial_state="),
    ("functional_masking.keras", _mask_test_value(1.0), "'not_equal[_0-9]*' takes 2 inputs"),
    ("functional_masking.keras", _mask_test_value(True), "'not_equal[_0-9]*' takes 2 inputs"),
    ("functional_masking.keras", _mask_from_masking, "'gru[_0-9]*' is called with mask="),
    ("lstm_sequences.keras",
     lambda c: _layer(c, 2)["layer"].__setitem__("class_name", "LSTM"),
     "TimeDistributed wraps layers of single steps"),
]


@pytest.mark.parametrize("file_name, edit, message", REFUSED_OPTIONS)
def test_what_fastlstm_cannot_express_is_refused_by_name(tmp_path, file_name, edit, message):
    with pytest.raises(UnsupportedLayerError, match=message):
        from_keras(_with_config(tmp_path, file_name, edit))


@pytest.mark.parametrize("mask_value", ["0", True, None, [0.0]])
def test_a_mask_value_must_be_a_number(tmp_path, mask_value):
    with pytest.raises(ConversionError, match=r"'masking_1' \(Masking\): mask_value must be a "
                       "number"):
        from_keras(_with_config(tmp_path, "masking.keras", _sets(1, "mask_value", mask_value)))


def test_options_that_change_nothing_are_accepted(tmp_path):
    def edit(config):
        lstm = _layer(config, 1)
        lstm.update(unroll=True, implementation=1, seed=7, use_cudnn=False)
        lstm["kernel_initializer"] = {"class_name": "VarianceScaling", "config": {}}

    model = from_keras(_with_config(tmp_path, "lstm.keras", edit))
    assert model.layers[0].get_config()["kernel_initializer"] == "glorot_uniform"
    _assert_predicts_as_keras(model, "lstm")


def test_without_h5py_the_error_says_what_to_install(monkeypatch, tmp_path):
    model = maker.fastlstm_model("lstm")
    monkeypatch.setitem(sys.modules, "h5py", None)
    for call in (lambda: from_keras(FILES / "lstm.keras"),
                 lambda: to_keras(model, tmp_path / "lstm.keras")):
        with pytest.raises(ImportError, match=r'needs h5py: pip install "fastlstm\[keras\]"'):
            call()

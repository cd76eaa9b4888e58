"""Model files: self-registering classes, custom objects, and hostile files.

Every damaged or hostile file is a ValueError that says what is wrong,
found before anything is allocated or inflated, and no code in a file runs.
"""
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastlstm
from fastlstm import losses, optimizers, serialization
from fastlstm.layers import LSTM, Dense, Dropout, Layer


def small_model():
    model = fastlstm.Sequential([LSTM(4, return_sequences=True, input_shape=(5, 2)),
                                 Dropout(0.1), LSTM(3), Dense(1)])
    model.compile("rmsprop", "mse", ["mae"])
    return model


def data(n=16):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 5, 2)).astype(np.float32), rng.standard_normal((n, 1))


class Scale(Layer):
    """A layer of a user's own: y = factor * x."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def forward(self, x, training=False):
        return self.factor * x

    def backward(self, dy):
        return self.factor * dy

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Quartic(losses.Loss):
    """A loss of a user's own, with a parameter."""

    name = "quartic"

    def __init__(self, weight=1.0):
        self.weight = float(weight)

    def _elementwise(self, error):
        return self.weight * error**4

    def _derivative(self, error):
        return 4 * self.weight * error**3

    def get_config(self):
        return {"weight": self.weight}


def test_builtin_and_user_classes_register_themselves():
    assert serialization.registered_name(LSTM) == "LSTM"
    assert serialization.registered_name(Scale) == f"{__name__}.Scale"
    assert serialization.serialize(Scale(3.0))["config"]["factor"] == 3.0
    assert serialization.deserialize("layer", {"class": "LSTM", "config": {"units": 3}}).units == 3


def test_a_custom_layer_and_loss_save_and_load(tmp_path):
    model = fastlstm.Sequential([LSTM(4, input_shape=(5, 2)), Scale(0.5), Dense(1)])
    model.compile(optimizers.Adam(0.01), Quartic(0.25))
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm")
    assert isinstance(loaded.layers[1], Scale) and loaded.layers[1].factor == 0.5
    assert isinstance(loaded.loss, Quartic) and loaded.loss.weight == 0.25
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_custom_objects_stand_in_for_an_unregistered_class(tmp_path):
    model = fastlstm.Sequential([Dense(2, input_shape=(3,)), Scale(4.0)])
    model.save(tmp_path / "m.fastlstm")
    config = _config_of(tmp_path / "m.fastlstm")
    config["model"]["layers"][1]["class"] = "elsewhere.Doubler"
    _write(tmp_path / "m.fastlstm", config, _weights_of(tmp_path / "m.fastlstm"))
    with pytest.raises(ValueError, match=r"unknown layer class 'elsewhere.Doubler'.*"
                                         r"custom_objects=\{'Doubler': Doubler\}"):
        fastlstm.load_model(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm", custom_objects={"Doubler": Scale})
    assert isinstance(loaded.layers[1], Scale) and loaded.layers[1].factor == 4.0


def test_compile_false_loads_only_the_weights(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.fastlstm")
    loaded = fastlstm.load_model(tmp_path / "m.fastlstm", compile=False)
    assert loaded.optimizer is None and loaded.loss is None
    x, _ = data()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_files_of_the_first_format_still_load(tmp_path):
    model = small_model()
    config = {"format": "fastlstm-model", "format_version": 1, "fastlstm_version": "0.1",
              "model": model.get_config(),
              "compile": {"optimizer": {"name": "RMSprop", "learning_rate": 0.002,
                                        "clipnorm": None, "clipvalue": None, "rho": 0.9,
                                        "epsilon": 1e-7},
                          "loss": "mean_squared_error", "metrics": ["mae"]},
              "metadata": {"window": 5}}
    _write(tmp_path / "v1.fastlstm", config, model.get_weights())
    loaded = fastlstm.load_model(tmp_path / "v1.fastlstm")
    assert loaded.optimizer.learning_rate == 0.002 and loaded.metrics == ["mae"]
    assert isinstance(loaded.loss, losses.MeanSquaredError) and loaded.metadata == {"window": 5}


# ------------------------------------------------------------- hostile files

def _config_of(path):
    with np.load(path) as archive:
        return json.loads(bytes(archive["config"]).decode())


def _weights_of(path):
    with np.load(path) as archive:
        return [archive[f"weight_{i}"] for i in range(len(archive.files) - 1)]


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _write(path, config, weights, extra=(), compression=zipfile.ZIP_STORED):
    """A model archive written entry by entry; `extra` holds (name, bytes)."""
    encoded = np.frombuffer(json.dumps(config).encode(), np.uint8)
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("config.npy", _npy(encoded))
        for i, weight in enumerate(weights):
            archive.writestr(f"weight_{i}.npy", _npy(weight))
        for name, content in extra:
            archive.writestr(name, content)


@pytest.fixture
def saved(tmp_path):
    """(path, config, weights) of a small saved model."""
    path = tmp_path / "m.fastlstm"
    small_model().save(path)
    return path, _config_of(path), _weights_of(path)


def _refused(path, message):
    """Loading raises `message`; returns the peak of Python allocations meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=message):
            fastlstm.load_model(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _write_with_first_header(path, config, weights, shape, data):
    """A model archive whose weight 0 has a .npy header declaring `shape`
    followed by the bytes `data`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    encoded = np.frombuffer(json.dumps(config).encode(), np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.npy", _npy(encoded))
        archive.writestr("weight_0.npy", header.getvalue() + data)
        for i, weight in enumerate(weights[1:], start=1):
            archive.writestr(f"weight_{i}.npy", _npy(weight))


def test_a_zip_bomb_is_refused_without_inflating_it(saved):
    path, config, weights = saved
    bomb = _npy(weights[0])[:128] + b"\0" * (64 * 2**20)  # deflates to about 64 KiB
    encoded = np.frombuffer(json.dumps(config).encode(), np.uint8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.npy", _npy(encoded))
        archive.writestr("weight_0.npy", bomb)
    assert _refused(path, "would inflate") < 8 * 2**20


def test_an_extra_stored_entry_is_refused(saved):
    path, config, weights = saved
    _write(path, config, weights, extra=[("weight_99.npy", _npy(np.zeros(3)))])
    _refused(path, r"entries the model does not use: \['weight_99.npy'\]")


def test_a_declared_shape_of_a_trillion_values_is_refused_before_allocating(saved):
    path, config, weights = saved
    _write_with_first_header(path, config, weights, (10**6, 10**6), b"\0" * 64)
    assert _refused(path, r"weight 0 has shape \(1000000, 1000000\); the model described needs")


@pytest.mark.parametrize("units", [10**12, 0, -3, 2.5, "4", True])
def test_absurd_or_mistyped_units_in_the_config(saved, units):
    path, config, weights = saved
    config["model"]["layers"][0]["config"]["units"] = units
    _write(path, config, weights)
    _refused(path, "units must be an int in")


def test_a_large_but_valid_units_value_is_checked_against_the_stored_weights(saved):
    path, config, weights = saved
    config["model"]["layers"][2]["config"]["units"] = 20000  # 6.4 GB of weights
    _write(path, config, weights)
    assert _refused(path, "weight 3 has shape") < 8 * 2**20


def test_a_truncated_weight_entry(saved):
    path, config, weights = saved
    _write_with_first_header(path, config, weights, weights[0].shape, b"\0" * 8)
    _refused(path, "weight 0 holds 8 bytes of data")


@pytest.mark.parametrize("name", ["get", "Optimizer", "os.system", "__import__"])
def test_an_optimizer_name_that_is_not_a_registered_optimizer(saved, name):
    path, config, weights = saved
    config["compile"]["optimizer"]["class"] = name
    _write(path, config, weights)
    _refused(path, f"unknown optimizer class '{name}'")


def test_a_class_of_the_wrong_kind_is_refused(saved):
    path, config, weights = saved
    config["compile"]["loss"]["class"] = "LSTM"
    _write(path, config, weights)
    _refused(path, "unknown loss class 'LSTM'")


def test_deeply_nested_json(saved):
    path, _, weights = saved
    deep = "[" * 100_000 + "]" * 100_000
    encoded = np.frombuffer(('{"format": "fastlstm-model", "x": ' + deep + "}").encode(),
                            np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.npy", _npy(encoded))
    _refused(path, "not valid JSON")


@pytest.mark.parametrize("dtype, message", [
    (np.complex64, "dtype complex64; a real floating dtype is required"),
    (np.int32, "dtype int32; a real floating dtype is required"),
])
def test_weights_of_a_wrong_dtype(saved, dtype, message):
    path, config, weights = saved
    weights[0] = weights[0].astype(dtype)
    _write(path, config, weights)
    _refused(path, message)


def test_nan_weights(saved):
    path, config, weights = saved
    weights[2] = weights[2].copy()
    weights[2][0] = np.nan
    _write(path, config, weights)
    _refused(path, "weight 2 contains NaN or infinity")


def test_an_object_array_is_never_unpickled(saved):
    path, config, weights = saved
    encoded = np.frombuffer(json.dumps(config).encode(), np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.npy", _npy(encoded))
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array([print], dtype=object), allow_pickle=True)
        archive.writestr("weight_0.npy", buffer.getvalue())
    _refused(path, "weight 0 has dtype object")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["model"].update(input_shape=[-1, 2]), "input shape"),
    (lambda c: c["model"].update(input_shape=[5, 0]), "input shape"),
    (lambda c: c["model"].update(layers=[]), "has no layers"),
    (lambda c: c["model"]["layers"][0].update(config={"units": 4, "bogus": 1}),
     "its config does not fit the class"),
    (lambda c: c["model"]["layers"][0].update(config=[1, 2]), "must be a JSON object"),
    (lambda c: c.update(format_version=99), "model format version 99"),
    (lambda c: c["compile"].update(metrics="mae"), "not a list of names"),
])
def test_damaged_descriptions(saved, edit, message):
    path, config, weights = saved
    edit(config)
    _write(path, config, weights)
    _refused(path, message)


# ------------------------------------------------------- the model API itself

@pytest.mark.parametrize("call, error, message", [
    (lambda m, x, y: m.fit(x, y, epochs=-1, verbose=0), ValueError, "epochs must be an int >= 0"),
    (lambda m, x, y: m.fit(x, y, epochs=1.5, verbose=0), TypeError,
     "epochs must be an int >= 0, got 1.5"),
    (lambda m, x, y: m.fit(x[:0], y[:0], verbose=0), ValueError, "x has no samples"),
    (lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), ValueError, "batch_size"),
    (lambda m, x, y: m.predict(x, batch_size=-1), ValueError, "batch_size must be an int >= 1"),
    (lambda m, x, y: m.set_weights(None), TypeError, "weights must be a list of 8 arrays"),
    (lambda m, x, y: m.set_weights([w.astype(np.complex64) for w in m.get_weights()]),
     TypeError, "weight 0 must be a real numeric array, got dtype complex64"),
])
def test_model_api_mistakes_are_clear_errors(call, error, message):
    model = small_model()
    x, y = data()
    with pytest.raises(error, match=message):
        call(model, x, y)


@pytest.mark.parametrize("make, error", [(lambda: LSTM(10**30), ValueError),
                                         (lambda: Dense(10**30), ValueError),
                                         (lambda: LSTM(0), ValueError),
                                         (lambda: Dense(2.0), TypeError)])
def test_absurd_layer_sizes(make, error):
    with pytest.raises(error, match=r"units must be an int in \[1, 1048576\]"):
        make()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (-1, 3), (), (2.5, 3)])
def test_sample_shapes_need_positive_sizes(shape):
    model = fastlstm.Sequential([LSTM(2), Dense(1)])
    with pytest.raises(ValueError, match="input shape"):
        model.build(shape)
    assert not model.built


def test_a_layer_too_large_for_the_kernels_is_refused_before_allocating():
    model = fastlstm.Sequential([LSTM(40000), Dense(1)])
    with pytest.raises(ValueError, match=r"would need a weight of shape \(40000, 160000\)"):
        model.build((5, 1))

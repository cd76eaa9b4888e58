"""Write tests/data/keras_files/: Keras models saved by Keras 3, and fastlstm
models written by fastlstm.convert.to_keras and checked in Keras 3.

Run by hand, from the repository root, where Keras 3 (any backend) and
h5py are installed:

    KERAS_BACKEND=torch PYTHONPATH=. python tests/data/make_keras_files.py

It writes

- ``<name>.keras`` and ``<name>.h5``: small Keras models (KERAS_MODELS)
  with seeded weights, saved by Keras itself in both formats;
- ``keras2_<name>.h5``: legacy files of some of those models in the config
  dialect and weight naming of Keras 2 (tf.keras 2.x), made by rewriting
  Keras 3's .h5 file; Keras 3's legacy loader reads them back to the same
  predictions, which the script checks. (Keras 3 cannot load all of Keras
  2's dialect; the tests rewrite every legacy file in all of it.);
- ``lambda_layer.keras``: a Keras model with a Lambda layer, whose code
  would set LAMBDA_SENTINEL if anything ran it;
- ``written_<name>.keras``: fastlstm models (FASTLSTM_MODELS) with fixed
  weights, written by to_keras, then loaded by keras.saving.load_model;
  the script checks that Keras predicts what fastlstm predicts and prints
  the largest difference of each;
- ``predictions.npz``: for every file, the input ``<file>.x`` and Keras'
  prediction ``<file>.y`` (a stateful model: ``.y2`` of a second call,
  which starts from the states the first one left).

tests/test_convert_keras.py reads the files with fastlstm alone and
compares its predictions with Keras'. The fastlstm models here need no
Keras, so the tests also rebuild them and check that to_keras still
writes what Keras was shown.
"""
import json
import os
import pathlib
import sys
import zlib

import numpy as np

OUTPUT = pathlib.Path(__file__).resolve().parent / "keras_files"
PREDICTIONS = OUTPUT / "predictions.npz"
LAMBDA_SENTINEL = "FASTLSTM_KERAS_LAMBDA_RAN"
BATCH, TIME, FEATURES = 3, 6, 2
# Written files of stateful models need the batch size Keras fixes.
WRITE_BATCH_SIZE = {"stateful": BATCH}
# Files saved in the legacy HDF5 format too, and those of them also
# rewritten in Keras 2's dialect.
LEGACY = ("lstm", "gru", "simple_rnn", "bidirectional_concat_mul", "masking", "functional",
          "functional_masking", "lstm_without_bias")
KERAS2 = ("masking",)


def _seed(name):
    return zlib.crc32(name.encode())


def sample_input(name, masked):
    """A fixed (BATCH, TIME, FEATURES) input; `masked`: zero steps at the
    end of the rows (all of the last row), as padding for Masking."""
    x = np.random.default_rng(_seed(name)).standard_normal((BATCH, TIME, FEATURES))
    x = x.astype(np.float32)
    if masked:
        x[0, TIME - 2:] = 0.0
        x[1, TIME - 4:] = 0.0
        x[2, :] = 0.0
    return x


# ------------------------------------------------------------ fastlstm models

def _fastlstm_models():
    from fastlstm import Input, Sequential
    from fastlstm.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Masking,
                                 SimpleRNN, TimeDistributed)

    shape = Input((TIME, FEATURES))
    free_time = Input((None, FEATURES))
    return {
        "lstm": lambda: Sequential([free_time, LSTM(3, unit_forget_bias=False), Dense(2)]),
        "lstm_options": lambda: Sequential([
            shape, LSTM(3, return_sequences=True, go_backwards=True, dropout=0.2,
                        recurrent_dropout=0.1),
            Dropout(0.25), LSTM(2, kernel_initializer="zeros"),
            Dense(1, activation="relu", use_bias=False)]),
        "gru": lambda: Sequential([
            shape, GRU(3, return_sequences=True),
            GRU(2, reset_after=False, use_bias=False, go_backwards=True),
            Dense(2, activation="sigmoid")]),
        "simple_rnn": lambda: Sequential([
            shape, SimpleRNN(3, activation="relu", return_sequences=True),
            SimpleRNN(2, use_bias=False), Dense(1, activation="tanh")]),
        "bidirectional": lambda: Sequential([
            shape, Masking(0.0),
            Bidirectional(LSTM(2, return_sequences=True)),
            Bidirectional(GRU(2, return_sequences=True, reset_after=False),
                          merge_mode="sum"),
            Bidirectional(SimpleRNN(2, return_sequences=True), merge_mode="mul"),
            Bidirectional(GRU(2), merge_mode="ave"), Dense(1)]),
        "time_distributed": lambda: Sequential([
            shape, Masking(0.0), GRU(3, return_sequences=True),
            TimeDistributed(Dense(2, activation="tanh")), TimeDistributed(Dropout(0.5)),
            Dense(1)]),
        "stateful": lambda: Sequential([shape, LSTM(2, stateful=True, return_sequences=True),
                                        GRU(2, stateful=True), Dense(1)]),
    }


FASTLSTM_MASKED = ("bidirectional", "time_distributed")


def fastlstm_model(name):
    """Written model `name`, built, with fixed weights of a seeded draw."""
    model = _fastlstm_models()[name]()
    model.build()
    rng = np.random.default_rng(_seed(name))
    model.set_weights([0.6 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


FASTLSTM_MODELS = tuple(_fastlstm_models())


# ------------------------------------------------------------ Keras models

def _keras_models():
    import keras
    from keras import layers

    def sequential(*stack, batch_size=None, time=TIME):
        return keras.Sequential([keras.Input((time, FEATURES), batch_size=batch_size),
                                 *stack])

    def functional():
        inputs = keras.Input((TIME, FEATURES))
        x = layers.LSTM(3, return_sequences=True)(inputs)
        x = layers.Dropout(0.2)(x)
        x = layers.TimeDistributed(layers.Dense(2))(x)
        return keras.Model(inputs, layers.GRU(2)(x))

    def functional_masking():
        # Keras 3 records the mask as NotEqual and Any operations, which
        # every layer after the Masking takes as mask=.
        inputs = keras.Input((TIME, FEATURES))
        x = layers.Masking(0.0)(inputs)
        x = layers.LSTM(3, return_sequences=True)(x)
        x = layers.Dropout(0.2)(x)
        x = layers.TimeDistributed(layers.Dense(2))(x)
        x = layers.GRU(2)(x)
        return keras.Model(inputs, layers.Dense(1)(x))

    return {
        "lstm": lambda: sequential(layers.LSTM(3), layers.Dense(2), time=None),
        "lstm_sequences": lambda: sequential(
            layers.LSTM(3, return_sequences=True),
            layers.TimeDistributed(layers.Dense(2, activation="tanh"))),
        "gru": lambda: sequential(
            layers.GRU(3, return_sequences=True),
            layers.GRU(2, reset_after=False, go_backwards=True),
            layers.Dense(1, activation="sigmoid")),
        "simple_rnn": lambda: sequential(
            layers.SimpleRNN(3, activation="relu", return_sequences=True),
            layers.Dropout(0.3), layers.SimpleRNN(2, use_bias=False),
            layers.Dense(1, use_bias=False)),
        "bidirectional_concat_mul": lambda: sequential(
            layers.Masking(0.0), layers.Bidirectional(layers.LSTM(2, return_sequences=True)),
            layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True),
                                 merge_mode="mul"),
            layers.LSTM(2)),
        "bidirectional_sum_ave": lambda: sequential(
            layers.Bidirectional(layers.GRU(2, reset_after=False, return_sequences=True),
                                 merge_mode="sum"),
            layers.Bidirectional(layers.LSTM(2), merge_mode="ave")),
        "masking": lambda: sequential(
            layers.Masking(0.0), layers.LSTM(3, return_sequences=True),
            layers.Dropout(0.2), layers.GRU(2), layers.Dense(1)),
        "functional": functional,
        "functional_masking": functional_masking,
        "lstm_without_bias": lambda: sequential(
            layers.Bidirectional(layers.LSTM(3, use_bias=False, return_sequences=True)),
            layers.LSTM(2, use_bias=False), layers.Dense(1)),
        "stateful": lambda: sequential(layers.LSTM(2, stateful=True), layers.Dense(1),
                                       batch_size=BATCH),
    }


KERAS_MODELS = ("lstm", "lstm_sequences", "gru", "simple_rnn", "bidirectional_concat_mul",
                "bidirectional_sum_ave", "masking", "functional", "functional_masking",
                "lstm_without_bias", "stateful")
KERAS_MASKED = ("bidirectional_concat_mul", "masking", "functional_masking")


def _seeded(model, name):
    """`model` with weights drawn from a seed of `name`, biases included."""
    rng = np.random.default_rng(_seed(name))
    model.set_weights([0.6 * rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _lambda_model():
    import keras

    def run_marker(t):
        os.environ[LAMBDA_SENTINEL] = "1"
        return t * 2.0

    return keras.Sequential([keras.Input((TIME, FEATURES)), keras.layers.Lambda(run_marker),
                             keras.layers.LSTM(2)])


# ------------------------------------------------------------ Keras 2's dialect

def _keras2_layer(entry, keras3_loadable, batch_input_shape=None):
    """A Keras 3 legacy layer entry as Keras 2 wrote it (see keras2_dialect)."""
    entry = {key: value for key, value in entry.items()
             if key not in ("module", "registered_name", "build_config")}
    config = {key: value for key, value in entry["config"].items()
              if key not in ("zero_output_for_mask", "optional", "quantization_config")}
    class_name = entry["class_name"]
    if "dtype" in config:
        config["dtype"] = "float32"
    if class_name == "InputLayer":
        config["batch_input_shape"] = config.pop("batch_shape")
    if batch_input_shape is not None:
        config["batch_input_shape"] = batch_input_shape
    if class_name in ("LSTM", "GRU", "SimpleRNN"):
        config.pop("seed", None)
        if not keras3_loadable:
            config["time_major"] = False
        if class_name != "SimpleRNN":
            config["implementation"] = 2
    for option in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
        if option in config:
            initializer = config[option]
            config[option] = {"class_name": initializer["class_name"],
                              "config": {k: v for k, v in initializer["config"].items()
                                         if k not in ("input_axes", "output_axes")}}
    if class_name == "Bidirectional":
        config.pop("backward_layer")
        inner = _keras2_layer(config["layer"], keras3_loadable)
        inner["config"]["name"] = inner["config"]["name"].removeprefix("forward_")
        config["layer"] = inner
    if class_name == "TimeDistributed":
        config["layer"] = _keras2_layer(config["layer"], keras3_loadable)
    if "inbound_nodes" in entry:
        entry["inbound_nodes"] = [[[arg["config"]["keras_history"][0], 0, 0, {}]
                                   for arg in node["args"]] for node in entry["inbound_nodes"]]
    return {**entry, "config": config}


def keras2_dialect(description, keras3_loadable=False):
    """A Keras 3 legacy model config as Keras 2 wrote it: no modules, dtypes
    as strings, batch_input_shape, Bidirectional without backward_layer,
    inbound nodes as lists, no mask operations, "time_major": false. Keras 3 cannot load that
    last key, which `keras3_loadable` leaves out."""
    config = description["config"]
    # Keras 2 kept a Masking's mask on the tensor, not as operations.
    layers = [entry for entry in config["layers"]
              if entry["class_name"] not in ("NotEqual", "Any")]
    input_shape = layers[0]["config"]["batch_shape"]
    sequential = description["class_name"] == "Sequential"
    converted = [_keras2_layer(layers[0], keras3_loadable)]
    converted += [_keras2_layer(entry, keras3_loadable,
                                input_shape if i == 0 and sequential else None)
                  for i, entry in enumerate(layers[1:])]
    config = {"name": config["name"], "layers": converted}
    if description["class_name"] == "Functional":
        config["input_layers"] = [description["config"]["input_layers"]]
        config["output_layers"] = [description["config"]["output_layers"]]
    return {"class_name": description["class_name"], "config": config}


def write_keras2_file(source, target, keras3_loadable=False):
    """`source`, a legacy .h5 file Keras 3 saved, rewritten in Keras 2's
    config dialect (see keras2_dialect) and weight names
    ("lstm/lstm_cell/kernel:0")."""
    import h5py

    with h5py.File(source, "r") as old, h5py.File(target, "w") as new:
        new.attrs["keras_version"] = "2.15.0"
        new.attrs["backend"] = "tensorflow"
        new.attrs["model_config"] = json.dumps(keras2_dialect(
            json.loads(old.attrs["model_config"]), keras3_loadable)).encode()
        weights = new.create_group("model_weights")
        layer_names = [n for n in old["model_weights"].attrs["layer_names"]]
        weights.attrs["layer_names"] = np.array(layer_names, dtype="S")
        weights.attrs["keras_version"] = "2.15.0"
        weights.attrs["backend"] = "tensorflow"
        for layer in layer_names:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in old["model_weights"][layer].attrs["weight_names"]]
            group = weights.create_group(layer)
            renamed = [name.split("/", 1)[1] + ":0" if name.startswith("sequential")
                       else name + ":0" for name in names]
            group.attrs["weight_names"] = np.array(renamed, dtype="S")
            for name, new_name in zip(names, renamed):
                group.create_dataset(new_name, data=old["model_weights"][layer][name][()])


# ------------------------------------------------------------ recording

def _predict(model, x):
    return np.asarray(model.predict(x, batch_size=BATCH, verbose=0), np.float32)


def record_keras_files(predictions):
    import keras

    models = _keras_models()
    assert tuple(models) == KERAS_MODELS
    for name, build in models.items():
        keras.utils.set_random_seed(_seed(name) % 2**31)
        model = _seeded(build(), name)
        x = sample_input(name, name in KERAS_MASKED)
        model.save(OUTPUT / f"{name}.keras")
        if name in LEGACY:
            model.save(OUTPUT / f"{name}.h5")
        if name in KERAS2:
            keras2 = OUTPUT / f"keras2_{name}.h5"
            write_keras2_file(OUTPUT / f"{name}.h5", keras2, keras3_loadable=True)
            reloaded = keras.saving.load_model(keras2)
            difference = float(np.max(np.abs(_predict(reloaded, x) - _predict(model, x))))
            print(f"keras2_{name}.h5: Keras 3 reads it to within {difference:.2e}")
            if difference > 1e-6:
                sys.exit(f"keras2_{name}.h5 is not the model Keras saved")
        predictions[f"{name}.x"] = x
        predictions[f"{name}.y"] = _predict(model, x)
        if name == "stateful":
            predictions[f"{name}.y2"] = _predict(model, x)
        print(f"saved {name}: {[type(layer).__name__ for layer in model.layers]}")
    _lambda_model().save(OUTPUT / "lambda_layer.keras")


def record_written_files(predictions):
    """Write each fastlstm model with to_keras, load it in Keras, and
    compare predictions; returns the largest difference."""
    import keras

    from fastlstm.convert import to_keras

    worst = 0.0
    for name in FASTLSTM_MODELS:
        model = fastlstm_model(name)
        path = OUTPUT / f"written_{name}.keras"
        to_keras(model, path, batch_size=WRITE_BATCH_SIZE.get(name))
        loaded = keras.saving.load_model(path)
        x = sample_input(name, name in FASTLSTM_MASKED)
        predictions[f"written_{name}.x"] = x
        calls = ("y", "y2") if name in WRITE_BATCH_SIZE else ("y",)
        for call in calls:
            theirs = _predict(loaded, x)
            ours = model.predict(x, batch_size=BATCH, verbose=0)
            difference = float(np.max(np.abs(theirs - ours)))
            worst = max(worst, difference)
            predictions[f"written_{name}.{call}"] = theirs
            print(f"written_{name}.keras ({call}): Keras loads it and predicts fastlstm's "
                  f"output within {difference:.2e}")
    return worst


def main():
    import keras

    OUTPUT.mkdir(exist_ok=True)
    for stale in OUTPUT.iterdir():
        stale.unlink()
    predictions = {"keras_version": np.array(keras.__version__),
                   "keras_backend": np.array(keras.backend.backend())}
    record_keras_files(predictions)
    worst = record_written_files(predictions)
    np.savez(PREDICTIONS, **predictions)
    sizes = sum(path.stat().st_size for path in OUTPUT.iterdir())
    print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(),
                      "files": len(list(OUTPUT.iterdir())), "bytes": sizes,
                      "written_files_largest_difference": worst}))
    if worst > 1e-5:
        sys.exit(f"Keras predicts differently from fastlstm on a written file: {worst:.2e}")


if __name__ == "__main__":
    main()

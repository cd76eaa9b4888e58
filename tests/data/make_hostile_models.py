"""Write tests/data/hostile_models/: model files that load_model must refuse.

Each file is a small valid model file with one thing wrong in it, or no
model file at all (empty, truncated, random bytes, another program's .npz).
tests/test_hostile_files.py loads every one and expects a ValueError that
says what is wrong, found quickly and with little memory. Three more files
are valid models whose free-form metadata holds a window of -3, 0 and 2.7:
load_model does not judge metadata, so those load.

Run it from the repository root, with fastlstm installed, after changing
the file format or a layer's config:

    python tests/data/make_hostile_models.py

The files depend only on this script and fastlstm's configs: the weights are
fixed numbers and every zip entry carries the same timestamp, so running it
twice writes the same bytes.
"""
import hashlib
import io
import json
import os
import pathlib
import struct
import sys
import tempfile
import zipfile

import numpy as np

OUTPUT = pathlib.Path(__file__).resolve().parent / "hostile_models"

# An unpickled object array of the corpus would set this variable.
PICKLE_SENTINEL = "FASTLSTM_HOSTILE_PICKLE_RAN"
# Pinned, so that the files do not change with each release.
FASTLSTM_VERSION = "0.1.0"
TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# The model: LSTM(3) over windows of 4 steps of 1 feature, then Dense(1).
TIME, FEATURES, UNITS = 4, 1, 3
SCALER = {"class": "MinMaxScaler", "offset": [-1.0], "scale": [0.5],
          "feature_range": [0.0, 1.0]}


# ------------------------------------------------------------ the valid model

def valid_model():
    """The model every file starts from, with fixed weights."""
    import fastlstm
    from fastlstm.layers import LSTM, Dense

    model = fastlstm.Sequential([LSTM(UNITS, input_shape=(TIME, FEATURES)), Dense(1)])
    model.compile("rmsprop", "mse", ["mae"])
    model.set_weights(fixed_weights(model))
    return model


def fixed_weights(model):
    """Weights of the model's shapes: the numbers -0.5 .. 0.5 in steps of 0.1."""
    return [((np.arange(w.size) % 11 - 5) / 10).astype(np.float32).reshape(w.shape)
            for w in model.get_weights()]


def valid_config(model, metadata=None):
    """The config save_model writes for `model`, with the version pinned."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.fastlstm")
        model.save(path, metadata=metadata)
        with np.load(path) as archive:
            config = json.loads(bytes(archive["config"]).decode("utf-8"))
    config["fastlstm_version"] = FASTLSTM_VERSION
    return config


# ---------------------------------------------------------------- archives

def npy(array, allow_pickle=False):
    """`array` as the bytes of a .npy file."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), version=(1, 0),
                              allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_header(shape, descr="<f4"):
    """A .npy header alone, declaring `shape` of `descr`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def config_npy(config):
    """The config.npy entry: `config` (a dict, or JSON text) as uint8."""
    text = config if isinstance(config, str) else json.dumps(config)
    return npy(np.frombuffer(text.encode("utf-8"), np.uint8))


def archive(entries, compression=zipfile.ZIP_STORED):
    """A zip of `entries`, (name, bytes) pairs, with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=TIMESTAMP)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=9 if compression else None)
    return buffer.getvalue()


def model_archive(config, weights, extra=(), compression=zipfile.ZIP_STORED):
    """A model file: config.npy and weight_i.npy (bytes or arrays), then `extra`."""
    entries = [("config.npy", config_npy(config))]
    entries += [(f"weight_{i}.npy", w if isinstance(w, bytes) else npy(w))
                for i, w in enumerate(weights)]
    return archive(entries + list(extra), compression)


# ------------------------------------------------------------ hostile edits

class _Sentinel:
    """Unpickled, it runs code: sets PICKLE_SENTINEL in os.environ."""

    def __reduce__(self):
        return exec, (f"import os; os.environ[{PICKLE_SENTINEL!r}] = '1'",)


def _with_optimizer(config, name):
    config["compile"]["optimizer"]["class"] = name
    return config


def _forged_declared_size(data, entry, declared):
    """The archive `data` with its `entry` declaring `declared` bytes
    uncompressed, in its local header and in the central directory."""
    patched = bytearray(data)
    name = entry.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := patched.find(signature, start)) != -1:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if patched[name_at:name_at + len(name)] == name:
                patched[start + offset:start + offset + 4] = struct.pack("<I", declared)
            start += 4
    return bytes(patched)


def hostile_files():
    """name -> bytes of every file of the corpus."""
    model = valid_model()
    weights = fixed_weights(model)
    config = valid_config(model)

    def edited(edit):
        copy = json.loads(json.dumps(config))
        edit(copy)
        return copy

    valid = model_archive(config, weights)
    files = {}

    # An entry that inflates 1000-fold: 32 MiB of zeros in 32 KiB.
    bomb = npy_header(weights[0].shape) + bytes(32 * 2**20)
    files["zip_bomb.fastlstm"] = model_archive(config, [bomb] + weights[1:],
                                               compression=zipfile.ZIP_DEFLATED)
    # An entry of a few bytes, deflated, declaring 4 GiB uncompressed.
    small = archive([("config.npy", config_npy(config))]
                    + [(f"weight_{i}.npy", npy(w)) for i, w in enumerate(weights)],
                    zipfile.ZIP_DEFLATED)
    files["zip_bomb_declared_4gib.fastlstm"] = _forged_declared_size(
        small, "weight_1.npy", 2**32 - 2)

    files["extra_entry.fastlstm"] = model_archive(
        config, weights, extra=[("weight_99.npy", npy(np.zeros(3, np.float32)))])
    files["extra_entry_outside_path.fastlstm"] = model_archive(
        config, weights, extra=[("../../outside.py", b"print('not run')\n")])
    files["header_of_1e12_elements.fastlstm"] = model_archive(
        config, [npy_header((10**6, 10**6)) + bytes(64)] + weights[1:])
    files["units_1e12.fastlstm"] = model_archive(
        edited(lambda c: c["model"]["layers"][0]["config"].update(units=10**12)), weights)
    for label, name in [("get", "get"), ("Optimizer", "Optimizer"),
                        ("os_system", "os.system")]:
        files[f"optimizer_named_{label}.fastlstm"] = model_archive(
            edited(lambda c, name=name: _with_optimizer(c, name)), weights)
    deep = "[" * 100_000 + "]" * 100_000
    files["json_nested_100000_deep.fastlstm"] = archive(
        [("config.npy", config_npy('{"format": "fastlstm-model", "format_version": 2, '
                                   f'"model": {deep}}}'))], zipfile.ZIP_DEFLATED)
    files["complex_weights.fastlstm"] = model_archive(
        config, [weights[0].astype(np.complex64)] + weights[1:])
    pickled = np.empty(weights[0].shape, dtype=object)
    pickled[...] = _Sentinel()
    files["pickled_object_weights.fastlstm"] = model_archive(
        config, [npy(pickled, allow_pickle=True)] + weights[1:])
    nan = [w.copy() for w in weights]
    nan[2][1] = np.nan
    files["nan_weights.fastlstm"] = model_archive(config, nan)
    files["unknown_layer_class.fastlstm"] = model_archive(
        edited(lambda c: c["model"]["layers"][0].update({"class": "ConvLSTM2D"})), weights)
    files["truncated.fastlstm"] = valid[:len(valid) // 2]
    files["empty.fastlstm"] = b""
    files["random_bytes.fastlstm"] = b"".join(
        hashlib.sha256(b"fastlstm %d" % i).digest() for i in range(128))
    files["not_a_model.npz"] = archive([("x.npy", npy(np.arange(6.0).reshape(2, 3))),
                                        ("y.npy", npy(np.ones(2)))])
    for label, window in WINDOWS.items():
        files[f"metadata_window_{label}.fastlstm"] = model_archive(
            valid_config(model, metadata={"window": window, "scaler": SCALER}), weights)
    return files


# What load_model must say about each refused file (a regular expression).
REFUSALS = {
    "zip_bomb.fastlstm": r"entry 'weight_0\.npy' would inflate .* refused",
    "zip_bomb_declared_4gib.fastlstm": r"entry 'weight_1\.npy' would inflate .* to 4,294,967,294",
    "extra_entry.fastlstm": r"entries the model does not use: \['weight_99\.npy'\]",
    "extra_entry_outside_path.fastlstm": r"entries the model does not use: \['\.\./\.\./outside",
    "header_of_1e12_elements.fastlstm": r"weight 0 has shape \(1000000, 1000000\); the model "
                                        r"described needs \(1, 12\)",
    "units_1e12.fastlstm": r"units must be an int in \[1, \d+\], got 1000000000000",
    "optimizer_named_get.fastlstm": r"unknown optimizer class 'get'",
    "optimizer_named_Optimizer.fastlstm": r"unknown optimizer class 'Optimizer'",
    "optimizer_named_os_system.fastlstm": r"unknown optimizer class 'os\.system'",
    "json_nested_100000_deep.fastlstm": r"the config is not valid JSON",
    "complex_weights.fastlstm": r"weight 0 has dtype complex64; a real floating dtype",
    "pickled_object_weights.fastlstm": r"weight 0 has dtype object; a real floating dtype",
    "nan_weights.fastlstm": r"weight 2 contains NaN or infinity",
    "unknown_layer_class.fastlstm": r"unknown layer class 'ConvLSTM2D'",
    "truncated.fastlstm": r"not a readable fastlstm model file \(BadZipFile",
    "empty.fastlstm": r"not a readable fastlstm model file \(BadZipFile",
    "random_bytes.fastlstm": r"not a readable fastlstm model file \(BadZipFile",
    "not_a_model.npz": r"the archive has no entry 'config\.npy'",
}
# Windows no forecast can use, in metadata that load_model leaves to its reader.
WINDOWS = {"negative": -3, "zero": 0, "fractional": 2.7}
LOADABLE = {f"metadata_window_{label}.fastlstm": window for label, window in WINDOWS.items()}


def write_corpus(folder=OUTPUT):
    """Write every file of the corpus into `folder`, removing nothing else."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = hostile_files()
    assert set(files) == set(REFUSALS) | set(LOADABLE)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


if __name__ == "__main__":
    names = write_corpus(sys.argv[1] if len(sys.argv) > 1 else OUTPUT)
    print(f"wrote {len(names)} files")

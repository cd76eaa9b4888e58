"""from_keras on damaged and hostile files, made here from sound ones.

Each file is a small model Keras saved (tests/data/keras_files) with one
thing wrong, or no Keras file at all. Every one is refused with a
ConversionError that names the file and says what is wrong, quickly and
with little memory (nothing is inflated or read beyond what the model
needs), and ``fastlstm convert`` reports it in one line with status 2.
"""
import io
import json
import pathlib
import re
import zipfile

import numpy as np
import pytest
from conftest import measured

h5py = pytest.importorskip("h5py")

from fastlstm import Sequential, cli  # noqa: E402
from fastlstm.convert import ConversionError, from_keras  # noqa: E402

FILES = pathlib.Path(__file__).resolve().parent / "data" / "keras_files"
SOUND = FILES / "lstm.keras"          # InputLayer(None, 2) -> LSTM(3) -> Dense(2)
SOUND_LEGACY = FILES / "lstm.h5"
KERNEL = "layers/lstm/cell/vars/0"     # shape (2, 12)
MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 32 * 2**20


def _entries(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _archive(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _edited_weights(data, edit):
    """The bytes of the HDF5 file `data` after `edit(h5)` changed it."""
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as h5:
        edit(h5)
    return buffer.getvalue()


def _keras_file(tmp_path, config=None, weights=None, **replaced):
    """A copy of SOUND with its config and weights edited in place, or
    entries replaced (None: removed)."""
    entries = _entries(SOUND)
    if config is not None:
        description = json.loads(entries["config.json"])
        config(description)
        entries["config.json"] = json.dumps(description).encode()
    if weights is not None:
        entries["model.weights.h5"] = _edited_weights(entries["model.weights.h5"], weights)
    for name, data in replaced.items():
        name = name.replace("__", ".")
        if data is None:
            del entries[name]
        else:
            entries[name] = data
    return _archive(tmp_path / "hostile.keras", entries)


def _replace_kernel(make):
    """A weights edit: the LSTM's kernel replaced by what make(group, name) creates."""
    def edit(h5):
        group, name = h5[KERNEL.rsplit("/", 1)[0]], KERNEL.rsplit("/", 1)[1]
        del group[name]
        make(group, name)
    return edit


def _units(units):
    return lambda c: c["config"]["layers"][1]["config"].__setitem__("units", units)


def _nested(depth):
    return ("[" * depth + "]" * depth).encode()


def _unknown_filter(group, name):
    dataset = group.create_dataset(name, shape=(2, 12), dtype="f4", chunks=(2, 12),
                                   compression=32004, allow_unknown_filter=True)
    dataset.id.write_direct_chunk((0, 0), bytes(96))


def _virtual(group, name):
    layout = h5py.VirtualLayout(shape=(2, 12), dtype="f4")
    layout[:] = h5py.VirtualSource("/etc/other.h5", "x", shape=(2, 12))
    group.create_virtual_dataset(name, layout)


def _inflating_dense(h5):
    """The Dense layer's weights as 1.2 MB of gzip-compressed zeros (its
    config says 100,000 units)."""
    group = h5["layers/dense/vars"]
    for name, shape in (("0", (3, 100_000)), ("1", (100_000,))):
        del group[name]
        group.create_dataset(name, data=np.zeros(shape, np.float32), compression="gzip",
                             compression_opts=9)


def _dense_units(config):
    config["config"]["layers"][2]["config"]["units"] = 100_000


HOSTILE = {
    "empty": (lambda tmp: _archive_bytes(tmp, b""), "neither a .keras archive"),
    "random_bytes": (lambda tmp: _archive_bytes(tmp, np.random.default_rng(0).bytes(4096)),
                     "neither a .keras archive"),
    "truncated": (lambda tmp: _archive_bytes(tmp, SOUND.read_bytes()[:9000]),
                  "not a readable .keras archive"),
    "encrypted": (lambda tmp: _archive_bytes(tmp, _encrypted(SOUND.read_bytes())),
                  "is damaged .*encrypted"),
    "no_config": (lambda tmp: _keras_file(tmp, config__json=None), "has no config.json"),
    "config_not_json": (lambda tmp: _keras_file(tmp, config__json=b"{'class_name': 1"),
                        "config.json is not valid JSON"),
    "config_not_utf8": (lambda tmp: _keras_file(tmp, config__json=b'{"a": "\xff"}'),
                        "config.json is not valid JSON"),
    "json_nested_100000_deep": (lambda tmp: _keras_file(tmp, config__json=_nested(100_000)),
                                r"config.json is not valid JSON \(RecursionError\)"),
    "json_nested_100_deep": (lambda tmp: _keras_file(tmp, config__json=_nested(100)),
                             "nests deeper than 64 levels"),
    "json_17_mib": (lambda tmp: _keras_file(tmp, config__json=b" " * (17 * 2**20) + b"{}"),
                    "config.json holds 17,825,794 bytes; at most 16,777,216 are read"),
    "zip_bomb": (lambda tmp: _archive(tmp / "bomb.keras", {
        **_entries(SOUND), "config.json": b" " * (4 * 2**20) + b"{}"}, zipfile.ZIP_DEFLATED),
        "config.json would inflate"),
    "not_a_model": (lambda tmp: _keras_file(tmp, config__json=b'{"class_name": "Adam", '
                                            b'"config": {}}'),
                    "a model of class 'Adam'; fastlstm converts Keras' Sequential"),
    "unknown_layer_class": (lambda tmp: _keras_file(tmp, config=lambda c: c["config"]["layers"][1]
                                                    .__setitem__("class_name", "os.system")),
                            "cannot read Keras layer type 'os.system'"),
    "no_weights": (lambda tmp: _keras_file(tmp, model__weights__h5=None),
                   "has no model.weights.h5"),
    "npz_weights": (lambda tmp: _keras_file(tmp, model__weights__h5=None,
                                            model__weights__npz=b"PK"),
                    "model.weights.npz, whose entries are pickled objects"),
    "weights_not_hdf5": (lambda tmp: _keras_file(tmp, model__weights__h5=b"\0" * 4096),
                         "model.weights.h5 is not a readable HDF5 file"),
    "weights_missing_a_layer": (lambda tmp: _keras_file(
        tmp, weights=lambda h5: h5.__delitem__("layers/dense")),
        r"there is no 'dense/vars/0' below /layers"),
    "kernel_of_wrong_shape": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.create_dataset(n, data=np.ones((4, 12), np.float32)))),
        r"has shape \(4, 12\); the layer its config describes needs \(2, 12\)"),
    "config_of_other_units": (lambda tmp: _keras_file(tmp, config=_units(5)),
                              r"needs \(2, 20\)"),
    "units_1e12": (lambda tmp: _keras_file(tmp, config=_units(10**12)),
                   r"units must be an int in \[1, 1048576\]"),
    "kernel_of_ints": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.create_dataset(n, data=np.ones((2, 12), np.int64)))),
        "has dtype int64; a floating dtype is required"),
    "kernel_with_nan": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.create_dataset(n, data=np.full((2, 12), np.nan, np.float32)))),
        "contains NaN or infinity"),
    "kernel_beyond_float32": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.create_dataset(n, data=np.full((2, 12), 1e300)))),
        "beyond float32's range"),
    "kernel_as_external_link": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.__setitem__(n, h5py.ExternalLink("/etc/passwd.h5", "/x")))),
        "is a ExternalLink; only objects stored in the file itself are read"),
    "kernel_in_an_external_file": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(
        lambda g, n: g.create_dataset(n, shape=(2, 12), dtype="f4",
                                      external=[("/etc/hostname", 0, 96)]))),
        "keeps its data in external files"),
    "kernel_virtual": (lambda tmp: _keras_file(tmp, weights=_replace_kernel(_virtual)),
                       "is a virtual dataset"),
    "kernel_through_a_plugin_filter": (lambda tmp: _keras_file(
        tmp, weights=_replace_kernel(_unknown_filter)),
        "HDF5 filter 32004, which needs a plugin"),
    "gzip_bomb_weights": (lambda tmp: _keras_file(tmp, config=_dense_units,
                                                  weights=_inflating_dense),
                          r"would inflate [\d,]+ stored bytes to 1,200,000; refused"),
}


def _encrypted(data):
    """Zip bytes with every entry marked encrypted (general purpose flag bit 0)."""
    data = bytearray(data)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + flags_at] |= 1
            start = data.find(signature, start + 1)
    return bytes(data)


def _archive_bytes(tmp_path, data):
    path = tmp_path / "hostile.keras"
    path.write_bytes(data)
    return path


def _legacy_file(tmp_path, edit):
    path = tmp_path / "hostile.h5"
    path.write_bytes(SOUND_LEGACY.read_bytes())
    with h5py.File(path, "r+") as h5:
        edit(h5)
    return path


def _weight_names(names):
    def edit(h5):
        h5["model_weights/lstm"].attrs["weight_names"] = np.array(names, dtype="S")
    return edit


HOSTILE_LEGACY = {
    "weights_only": (lambda h5: h5.attrs.__delitem__("model_config"),
                     "holds no model_config: it is a weights file"),
    "config_not_json": (lambda h5: h5.attrs.__setitem__("model_config", "{oops"),
                        "model_config is not valid JSON"),
    "config_not_text": (lambda h5: h5.attrs.__setitem__("model_config", np.arange(3)),
                        "attribute 'model_config' of / holds 3 values"),
    "two_weight_names": (_weight_names(["a", "b"]), "stores 2 weights; its config describes 3"),
    "100_weight_names": (_weight_names([f"w{i}" for i in range(100)]),
                         "holds 100 values; at most 64 are read"),
    "weight_name_outside": (_weight_names(["../../dense/kernel", "b", "c"]),
                            "there is no '../../dense/kernel'"),
}


def _assert_refused(path, message):
    outcome, seconds, peak = measured(from_keras, path)
    assert isinstance(outcome, ConversionError), f"{type(outcome).__name__}: {outcome}"
    assert str(outcome).startswith(str(path)), outcome
    assert re.search(message, str(outcome)), outcome
    assert seconds < MAX_SECONDS and peak < MAX_PEAK_BYTES, (seconds, f"{peak:,}")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_keras_file_is_refused_saying_what_is_wrong(tmp_path, name):
    make, message = HOSTILE[name]
    _assert_refused(make(tmp_path), message)


@pytest.mark.parametrize("name", sorted(HOSTILE_LEGACY))
def test_a_hostile_legacy_file_is_refused_saying_what_is_wrong(tmp_path, name):
    edit, message = HOSTILE_LEGACY[name]
    _assert_refused(_legacy_file(tmp_path, edit), message)


@pytest.mark.parametrize("source, seed", [(SOUND, seed) for seed in range(4)] +
                         [(SOUND_LEGACY, seed) for seed in range(8)])
def test_a_file_with_flipped_bytes_loads_or_is_a_conversion_error(tmp_path, source, seed):
    """Never another exception: HDF5's and zipfile's own errors on a broken
    structure are reported as damage."""
    rng = np.random.default_rng(seed)
    data = bytearray(source.read_bytes())
    for where in rng.integers(0, len(data), 3):
        data[where] = rng.integers(0, 256)
    path = tmp_path / f"flipped{source.suffix}"
    path.write_bytes(bytes(data))
    outcome, seconds, peak = measured(from_keras, path)
    assert isinstance(outcome, (ConversionError, Sequential)), f"{type(outcome)}: {outcome}"
    assert seconds < MAX_SECONDS and peak < MAX_PEAK_BYTES


def _paths(value, path=()):
    """The path of every value inside a JSON document."""
    yield path
    children = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        yield from _paths(child, path + (key,))


def test_a_config_with_any_value_replaced_loads_or_is_a_conversion_error(tmp_path):
    """20 configs, each with one value anywhere replaced by a value of
    another type: the model loads (the config still describes one) or the
    error is a ConversionError, never another exception."""
    rng = np.random.default_rng(0)
    replacements = [None, -1, 2.5, "x", [], {}, [None, 1], {"class_name": 1}, True, 10**9]
    source = FILES / "functional.keras"
    original = json.loads(_entries(source)["config.json"])
    paths = list(_paths(original))[1:]
    for trial in range(20):
        config = json.loads(json.dumps(original))
        *parents, key = paths[rng.integers(len(paths))]
        node = config
        for parent in parents:
            node = node[parent]
        node[key] = replacements[rng.integers(len(replacements))]
        path = _archive(tmp_path / f"{trial}.keras",
                        {**_entries(source), "config.json": json.dumps(config).encode()})
        outcome, _, _ = measured(from_keras, path)
        assert isinstance(outcome, (ConversionError, Sequential)), \
            f"{parents + [key]}: {type(outcome).__name__}: {outcome}"


def test_the_sound_files_the_hostile_ones_start_from_load(tmp_path):
    for path in (_keras_file(tmp_path, config=lambda c: None, weights=lambda h5: None),
                 _legacy_file(tmp_path, lambda h5: None)):
        outcome, seconds, peak = measured(from_keras, path)
        assert outcome.count_params() == 2 * 12 + 3 * 12 + 12 + 3 * 2 + 2


@pytest.mark.parametrize("name", ["truncated", "json_nested_100000_deep", "unknown_layer_class",
                                  "kernel_of_wrong_shape", "gzip_bomb_weights"])
def test_the_command_reports_a_hostile_file_in_one_line(tmp_path, capsys, name):
    make, message = HOSTILE[name]
    status = cli.main(["convert", str(make(tmp_path)), str(tmp_path / "out.fastlstm")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("fastlstm: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out.fastlstm").exists()

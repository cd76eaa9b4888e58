"""Model file formats by extension (fastlstm.convert.files) and ``fastlstm convert``."""
import pathlib

import numpy as np
import pytest
from conftest import run_python

import fastlstm
from fastlstm import Input, Sequential, cli
from fastlstm.convert import (UnsupportedFormatError, UnsupportedLayerError, convert_file,
                              files)
from fastlstm.layers import LSTM, Dense

KERAS_FILES = pathlib.Path(__file__).resolve().parent / "data" / "keras_files"


@pytest.fixture
def native_file(tmp_path):
    model = Sequential([Input((4, 2)), LSTM(3), Dense(1)])
    model.build()
    path = tmp_path / "model.fastlstm"
    model.save(path)
    return path


def test_the_shipped_formats_are_registered():
    registered = {f.extension: (f.read is not None, f.write is not None)
                  for f in files.formats()}
    assert registered[".keras"] == (True, True) and registered[".fastlstm"] == (True, True)
    assert registered[".h5"] == (True, False)
    assert registered[".onnx"] == (True, True) and registered[".pt"] == (True, True)


def test_a_format_is_one_registration(monkeypatch, tmp_path, native_file):
    """What a format module does to add its extension, here a text dump."""
    monkeypatch.setattr(files, "_FORMATS", dict(files._FORMATS))
    written = {}
    files.register(".TXT", "weights as text",
                   write=lambda model, path: written.setdefault(str(path), model.count_params()))
    assert files.format_of(tmp_path / "out.txt", "write").description == "weights as text"
    model = convert_file(native_file, tmp_path / "out.txt")
    assert written == {str(tmp_path / "out.txt"): model.count_params()}
    with pytest.raises(UnsupportedFormatError, match=r"'.txt' files cannot be read; fastlstm "
                                                     r"reads .fastlstm, .h5, .keras\b"):
        convert_file(tmp_path / "out.txt", tmp_path / "back.fastlstm")


@pytest.mark.parametrize("extension, read, write, message", [
    ("keras", None, print, "extension must be a string like '.keras'"),
    (".x", None, None, "register a read or a write function, or both"),
])
def test_a_registration_is_checked(extension, read, write, message):
    with pytest.raises(ValueError, match=message):
        files.register(extension, "?", read=read, write=write)


def test_formats_are_checked_before_anything_is_read(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"out.h5: '.h5' files cannot be written; "
                                                     r"fastlstm writes .fastlstm, .keras\b"):
        convert_file(tmp_path / "missing.keras", tmp_path / "out.h5")
    with pytest.raises(UnsupportedFormatError, match="files without an extension cannot be read"):
        convert_file(tmp_path / "model", tmp_path / "out.keras")
    with pytest.raises(FileNotFoundError, match="no model file at"):
        convert_file(tmp_path / "missing.fastlstm", tmp_path / "out.keras")


def test_a_damaged_native_file_is_a_conversion_error(tmp_path):
    path = tmp_path / "damaged.fastlstm"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(fastlstm.convert.ConversionError, match="damaged.fastlstm"):
        files.read_model(path)


def test_importing_fastlstm_imports_no_optional_extra():
    source = pathlib.Path(fastlstm.__file__).resolve().parents[1]
    script = ("import sys, fastlstm; fastlstm.convert.from_keras; "
              "print(sorted({'h5py', 'keras', 'torch', 'onnx'} & set(sys.modules)))")
    assert run_python(script, env={"PYTHONPATH": str(source)}) == "[]"


# ------------------------------------------------------------ fastlstm convert

def _run(capsys, *args):
    status = cli.main(["convert", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def test_convert_writes_the_other_format_and_says_so(capsys, tmp_path):
    pytest.importorskip("h5py")
    source = KERAS_FILES / "masking.h5"
    status, out, err = _run(capsys, source, tmp_path / "masking.fastlstm")
    assert (status, err) == (0, "")
    model = fastlstm.load_model(tmp_path / "masking.fastlstm")
    assert out == (f"{source} -> {tmp_path / 'masking.fastlstm'}: 5 layers, "
                   f"{model.count_params()} parameters\n")
    status, _, _ = _run(capsys, tmp_path / "masking.fastlstm", tmp_path / "masking.keras")
    assert status == 0
    again = fastlstm.convert.from_keras(tmp_path / "masking.keras")
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_convert_goes_through_onnx_and_back_with_the_same_model(capsys, tmp_path):
    pytest.importorskip("onnx")
    model = Sequential([Input((5, 2)), LSTM(3, peephole=True, return_sequences=True),
                        fastlstm.layers.GRU(4), Dense(1)])
    model.build()
    model.save(tmp_path / "model.fastlstm")
    assert _run(capsys, tmp_path / "model.fastlstm", tmp_path / "model.onnx")[0] == 0
    assert _run(capsys, tmp_path / "model.onnx", tmp_path / "again.fastlstm")[0] == 0
    again = fastlstm.load_model(tmp_path / "again.fastlstm")
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def _peephole_file(tmp_path):
    model = Sequential([Input((4, 2)), LSTM(3, peephole=True)])
    model.build()
    model.save(tmp_path / "peephole.fastlstm")
    return tmp_path / "peephole.fastlstm"


@pytest.mark.parametrize("source, target, message", [
    ("{native}", "out.onnx_", "'.onnx_' files cannot be written; fastlstm writes"),
    ("model.pkl", "out.keras", "'.pkl' files cannot be read; fastlstm reads"),
    ("missing.keras", "out.fastlstm", "no Keras model file at"),
    ("{peephole}", "out.keras", "'lstm' is a peephole LSTM, which Keras has no layer for"),
    ("{native}", "out.h5", "'.h5' files cannot be written"),
])
def test_convert_mistakes_are_one_line_and_status_2(capsys, tmp_path, native_file, source,
                                                    target, message):
    source = source.format(native=native_file, peephole=_peephole_file(tmp_path))
    status, out, err = _run(capsys, tmp_path / source, tmp_path / target)
    assert status == 2 and out == ""
    assert err.startswith("fastlstm: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / target).exists()


def test_convert_without_h5py_says_what_to_install(capsys, monkeypatch, tmp_path, native_file):
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    status, _, err = _run(capsys, native_file, tmp_path / "out.keras")
    assert status == 2
    assert err == ('fastlstm: error: Keras files are HDF5 inside; reading or writing them '
                   'needs h5py: pip install "fastlstm[keras]"\n')


def test_convert_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit):
        cli.main(["convert", "--help"])
    out = capsys.readouterr().out
    assert ".keras     Keras 3 model (read and write)" in out
    assert ".h5        Keras HDF5 model (legacy) (read)" in out


def test_a_peephole_model_is_refused_before_a_file_is_written(tmp_path):
    with pytest.raises(UnsupportedLayerError):
        convert_file(_peephole_file(tmp_path), tmp_path / "out.keras")
    assert not (tmp_path / "out.keras").exists()

"""load_model on the committed corpus of hostile files (tests/data/hostile_models).

Every file there is refused with a ValueError that names the file and says
what is wrong, in well under 2 s and 32 MiB, and nothing in it runs. The
three files whose metadata holds an unusable window load: metadata is the
caller's free-form JSON. tests/data/make_hostile_models.py writes the corpus
and lists what each file must do.
"""
import os
import pathlib
import re
import zipfile

import numpy as np
import pytest
from conftest import load_script, measured, run_python

import fastlstm

DATA = pathlib.Path(__file__).resolve().parent / "data"
CORPUS = DATA / "hostile_models"
MAX_SECONDS = 2.0
MAX_PEAK_BYTES = 32 * 2**20
MAX_FILE_BYTES = 100 * 1024


maker = load_script(DATA / "make_hostile_models.py")
LISTING = sorted(os.listdir(CORPUS)) if CORPUS.is_dir() else []


def test_the_corpus_holds_exactly_the_generators_files():
    assert LISTING, f"{CORPUS} is empty or missing: run tests/data/make_hostile_models.py"
    assert LISTING == sorted({**maker.REFUSALS, **maker.LOADABLE})
    for name in LISTING:
        assert (CORPUS / name).stat().st_size < MAX_FILE_BYTES, name


@pytest.mark.parametrize("name", [n for n in LISTING if n not in maker.LOADABLE])
def test_a_hostile_file_is_a_value_error_that_says_what_is_wrong(name):
    path = CORPUS / name
    os.environ.pop(maker.PICKLE_SENTINEL, None)
    outcome, seconds, peak = measured(fastlstm.load_model, path)
    assert type(outcome) is ValueError, f"{type(outcome).__name__}: {outcome}"
    message = str(outcome)
    assert message.startswith(str(path)), message
    assert re.search(maker.REFUSALS[name], message), message
    assert maker.PICKLE_SENTINEL not in os.environ, "the file ran code"
    assert seconds < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES, f"{peak:,} bytes"


@pytest.mark.parametrize("name", sorted(maker.LOADABLE))
def test_a_window_in_the_metadata_is_not_load_models_business(name):
    """Metadata is free-form JSON for its reader; the model itself is sound."""
    path = CORPUS / name
    model, seconds, peak = measured(fastlstm.load_model, path)
    assert isinstance(model, fastlstm.Sequential), model
    assert model.metadata == {"window": maker.LOADABLE[name], "scaler": maker.SCALER}
    for loaded, expected in zip(model.get_weights(), maker.fixed_weights(model), strict=True):
        np.testing.assert_array_equal(loaded, expected)
    assert seconds < MAX_SECONDS and peak < MAX_PEAK_BYTES


def test_the_pickle_sentinel_would_fire_if_the_object_array_were_unpickled():
    """Proof that the sentinel is live: a reader that allowed pickles (which
    load_model never does) would run it."""
    path = CORPUS / "pickled_object_weights.fastlstm"
    script = (f"import os, numpy as np; "
              f"np.load({str(path)!r}, allow_pickle=True)['weight_0']; "
              f"print(os.environ.get({maker.PICKLE_SENTINEL!r}))")
    assert run_python(script) == "1"


def test_the_untouched_model_loads(tmp_path):
    """The corpus' starting point is a sound file: each refusal is due to its one edit."""
    model = maker.valid_model()
    path = tmp_path / "valid.fastlstm"
    path.write_bytes(maker.model_archive(maker.valid_config(model), maker.fixed_weights(model)))
    loaded = fastlstm.load_model(path)
    x = np.linspace(-1, 1, 2 * maker.TIME).reshape(2, maker.TIME, maker.FEATURES)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.get_config() == model.optimizer.get_config()


def _digest(path):
    """A zip by its entries' names, sizes and CRCs (deflated bytes differ
    between zlib builds); any other file by its bytes."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [(i.filename, i.file_size, i.CRC, i.compress_type, i.date_time)
                    for i in archive.infolist()]
    return path.read_bytes()


def test_the_generator_writes_the_committed_corpus(tmp_path):
    written = maker.write_corpus(tmp_path)
    assert written == LISTING
    for name in written:
        assert _digest(tmp_path / name) == _digest(CORPUS / name), (
            f"{name} is out of date: run python tests/data/make_hostile_models.py")

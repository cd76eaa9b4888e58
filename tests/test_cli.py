"""The fastlstm command: end to end in a subprocess on the shipped data, and
in this process on a corpus of hostile input (tests/data/hostile_csv),
which must always end in one line ``fastlstm: error: ...`` and status 2."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlstm import cli, datasets
from fastlstm.forecaster import ForecastJobError, classic_model, fit_forecaster
from fastlstm.timeseries import MinMaxScaler

CORPUS = Path(__file__).parent / "data" / "hostile_csv"


def fastlstm_cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "fastlstm", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def goog_csv(tmp_path):
    goog = datasets.load_goog()
    path = tmp_path / "goog.csv"
    lines = ["Date,Close"] + [f"{d},{c}" for d, c in zip(goog.index, goog.column("Close"))]
    path.write_text("\n".join(lines[:500]) + "\n")
    return path


def test_demo_trains_and_reports_dollar_errors_against_persistence(tmp_path):
    result = fastlstm_cli("demo", "--epochs", 1, "--quiet", "--plot", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "GOOG daily Close" in out and "Trained in" in out
    for row in ("MAE", "RMSE", "bias"):
        line = next(line for line in out.splitlines() if line.startswith(row))
        assert line.count("$") == 2


def test_demo_without_matplotlib_says_how_to_get_the_plot(tmp_path):
    result = fastlstm_cli("demo", "--epochs", 1, "--quiet", "--window", 30,
                          "--plot", tmp_path / "plot.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "plot.png").stat().st_size > 0
    except ImportError:
        assert "pip install matplotlib" in result.stdout


def test_train_save_then_forecast(tmp_path, goog_csv):
    model_path = tmp_path / "model.fastlstm"
    result = fastlstm_cli("train", "--csv", goog_csv, "--column", "Close", "--window", 20,
                          "--units", 8, "--epochs", 2, "--quiet", "--save", model_path,
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Model saved" in result.stdout and model_path.exists()

    out_path = tmp_path / "forecast.csv"
    result = fastlstm_cli("forecast", "--model", model_path, "--csv", goog_csv, "--column",
                          "Close", "--steps", 5, "--out", out_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = out_path.read_text().splitlines()
    assert rows[0] == "step,Close" and len(rows) == 6
    values = np.array([float(r.split(",")[1]) for r in rows[1:]])
    assert np.isfinite(values).all() and 20 < values.mean() < 2000  # dollars, not 0..1


@pytest.mark.parametrize("args, message", [
    (["train", "--csv", "absent.csv", "--column", "Close"], "no such CSV file"),
    (["train", "--csv", "{csv}", "--column", "Price"], "has no column 'Price'"),
    (["train", "--csv", "{csv}", "--column", "Close", "--window", 600], "fewer than the 602 needed"),
    (["forecast", "--model", "absent.fastlstm", "--csv", "{csv}", "--column", "Close",
      "--steps", 3], "no model file"),
    (["forecast", "--model", "{csv}", "--csv", "{csv}", "--column", "Close", "--steps", 3],
     "not a readable fastlstm model file"),
    (["train", "--csv", CORPUS / "latin1.csv", "--column", "Close"], "line 4: not UTF-8 text"),
    (["train", "--csv", "{csv}", "--column", "Close", "--threads", 3000000000],
     "argument --threads: expected a whole number in [1, 1024], got 3000000000"),
])
def test_user_mistakes_give_one_line_and_exit_2(tmp_path, goog_csv, args, message):
    args = [str(a).replace("{csv}", str(goog_csv)) for a in args]
    result = fastlstm_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("fastlstm: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_option_values_are_rejected_by_the_parser(tmp_path):
    result = fastlstm_cli("demo", "--epochs", 0, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("fastlstm: error: argument --epochs: expected a whole number in "
                             "[1, 100000], got 0 (see 'fastlstm demo --help')\n")


def test_info_self_check_passes(tmp_path):
    result = fastlstm_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"max_relative_error"' in result.stdout and '"openmp"' in result.stdout


# ------------------------------------------------- hostile input, in-process

def run_main(capsys, *args):
    """cli.main in this process: (exit status, stdout, stderr). An exception
    escaping main would be a traceback on the command line."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, message):
    assert status == 2, err
    assert err.startswith("fastlstm: error: ") and err.endswith("\n") and err.count("\n") == 1
    assert message in err


WINDOW = 5  # of the saved model the forecast tests use


def save_forecaster(path, metadata):
    model = classic_model(WINDOW, units=2)
    model.build()
    model.save(path, metadata=metadata)
    return path


def forecaster_metadata(**changes):
    return {"window": WINDOW, "scaler": MinMaxScaler().fit([10.0, 15.0]).to_dict(), **changes}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_forecaster(tmp_path_factory.mktemp("model") / "model.fastlstm",
                           forecaster_metadata())


REFUSED = {
    "latin1.csv": "latin1.csv, line 4: not UTF-8 text; save the file as UTF-8",
    "binary.csv": "binary.csv, line 1: not UTF-8 text",
    "empty.csv": "empty.csv is empty: expected a header line",
    "header_only.csv": "header_only.csv has a header line but no rows of values",
    "no_close_column.csv": "has no column 'Close'; its columns are ['Date', 'Price']",
    "non_numeric.csv": "line 5: column 'Close' holds 'n/a', which is not a number",
    "not_finite.csv": "line 7: column 'Close' holds 'inf', which is not a finite number",
    "missing_field.csv": "line 4: 1 fields, expected 2",
    "too_short.csv": "column 'Close' has 3 values, fewer than the",
}


def test_the_corpus_is_what_its_script_writes():
    spec = importlib.util.spec_from_file_location("make_hostile_csv",
                                                  CORPUS / "make_hostile_csv.py")
    make_hostile_csv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_hostile_csv)
    assert set(REFUSED) | {"bom.csv", "quoted_header.csv", "huge_values.csv"} == set(
        make_hostile_csv.FILES)
    for name, content in make_hostile_csv.FILES.items():
        assert (CORPUS / name).read_bytes() == content, name


@pytest.mark.parametrize("name", sorted(REFUSED))
@pytest.mark.parametrize("command", ["train", "forecast"])
def test_hostile_csv_files_give_one_line_and_exit_2(capsys, model_file, command, name):
    args = (["train", "--window", 2, "--epochs", 1, "--quiet"] if command == "train"
            else ["forecast", "--model", model_file, "--steps", 2])
    status, out, err = run_main(capsys, *args, "--csv", CORPUS / name, "--column", "Close")
    assert_one_line_error(status, err, REFUSED[name])
    assert out == ""


def generated_csv(tmp_path, kind):
    path = tmp_path / f"{kind}.csv"
    if kind == "field_200k":
        path.write_text("Date,Close\n2020-01-01," + "9" * 200 * 1024 + "\n")
    elif kind == "sparse_1g":
        with open(path, "wb") as f:
            f.truncate(2**30)  # zero bytes and no line end; sparse, so no disk is used
    else:  # a file name that would break the one-line error
        path = tmp_path / "two\nlines.csv"
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind, message", [
    ("field_200k", "line 2: not readable as CSV: field larger than field limit"),
    ("sparse_1g", "line 1: longer than 1,048,576 characters"),
    ("newline_in_name", "two\\nlines.csv is empty"),
])
def test_generated_hostile_csv_files_give_one_line_and_exit_2(capsys, tmp_path, kind, message):
    path = generated_csv(tmp_path, kind)
    status, _, err = run_main(capsys, "train", "--csv", path, "--column", "Close")
    assert_one_line_error(status, err, message)


@pytest.mark.parametrize("name", ["bom.csv", "quoted_header.csv"])
def test_spreadsheet_quirks_are_read(capsys, model_file, name):
    status, out, err = run_main(capsys, "forecast", "--model", model_file, "--csv", CORPUS / name,
                                "--column", "Close", "--steps", 3)
    assert status == 0, err
    steps = [line.split("\t") for line in out.splitlines()]
    assert [s[0] for s in steps] == ["1", "2", "3"]
    assert all(np.isfinite(float(s[1])) for s in steps)


def test_values_too_far_apart_to_scale_are_refused(capsys, model_file):
    huge = CORPUS / "huge_values.csv"
    status, _, err = run_main(capsys, "train", "--csv", huge, "--column", "Close", "--window", 2)
    assert_one_line_error(status, err, "values lie too far apart to scale into the float32 range")
    status, _, err = run_main(capsys, "forecast", "--model", model_file, "--csv", huge,
                              "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, "the last 5 values of 'Close' lie too far outside the range")


@pytest.mark.parametrize("option, value, message", [
    ("--units", 1000000, "argument --units: expected a whole number in [1, 1024], got 1000000"),
    ("--units", 0, "argument --units: expected a whole number in [1, 1024], got 0"),
    ("--window", 0, "argument --window: expected a whole number in [1, 4096], got 0"),
    ("--window", 5000, "argument --window: expected a whole number in [1, 4096], got 5000"),
    ("--window", "6.5", "argument --window: expected a whole number, got '6.5'"),
    ("--epochs", 10**6, "argument --epochs: expected a whole number in [1, 100000]"),
    ("--batch-size", 10**6, "argument --batch-size: expected a whole number in [1, 65536]"),
    ("--threads", 3000000000, "argument --threads: expected a whole number in [1, 1024]"),
    ("--threads", 0, "argument --threads: expected a whole number in [1, 1024], got 0"),
    ("--seed", -1, "argument --seed: expected a whole number in [0, 4294967295], got -1"),
    ("--seed", 2**32, "argument --seed: expected a whole number in [0, 4294967295]"),
    ("--test-fraction", 1.5, "argument --test-fraction: expected a fraction between 0 and 1"),
    ("--test-fraction", "nan", "argument --test-fraction: expected a fraction between 0 and 1"),
])
def test_out_of_range_options_fail_before_reading_the_data(capsys, option, value, message):
    status, _, err = run_main(capsys, "train", "--csv", "absent.csv", "--column", "Close",
                              option, value)
    assert_one_line_error(status, err, message)
    assert err.endswith(" (see 'fastlstm train --help')\n")


@pytest.mark.parametrize("steps", [0, 10**6])
def test_forecast_steps_are_bounded(capsys, steps):
    status, _, err = run_main(capsys, "forecast", "--model", "m", "--csv", "c", "--column", "x",
                              "--steps", steps)
    assert_one_line_error(status, err, "argument --steps: expected a whole number in [1, 100000]")


def test_a_test_fraction_that_leaves_nothing_to_train_on_is_refused(capsys):
    status, _, err = run_main(capsys, "train", "--csv", CORPUS / "bom.csv", "--column", "Close",
                              "--window", 2, "--test-fraction", 0.99)
    assert_one_line_error(status, err, "a test fraction of 0.99 holds out all 10 windows of the "
                                       "series, leaving none to train on")


def test_forecast_refuses_a_series_shorter_than_the_window(capsys, model_file, tmp_path):
    path = tmp_path / "four.csv"
    path.write_text("Close\n1\n2\n3\n4\n")
    status, out, err = run_main(capsys, "forecast", "--model", model_file, "--csv", path,
                                "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, "column 'Close' has 4 values, fewer than the 5 needed")
    assert out == ""


@pytest.mark.parametrize("metadata, message", [
    (None, "has no scaler and window: save it with 'fastlstm train'"),
    (["window", "scaler"], "has no scaler and window"),
    (forecaster_metadata(window=0), "the saved window must be a whole number >= 1, got 0"),
    (forecaster_metadata(window="5"), "the saved window must be a whole number >= 1, got '5'"),
    (forecaster_metadata(window=5.0), "the saved window must be a whole number >= 1, got 5.0"),
    (forecaster_metadata(window=7), "the model reads inputs of shape (5, 1), not (7, 1)"),
    (forecaster_metadata(scaler={"class": "MinMaxScaler", "offset": [0.0], "scale": [0.0]}),
     "not a saved scaler: scale must be > 0"),
    (forecaster_metadata(scaler={"class": "MinMaxScaler", "offset": [0.0], "scale": [np.nan]}),
     "not a saved scaler: scale must hold finite numbers"),
    (forecaster_metadata(scaler=MinMaxScaler().fit(np.ones((3, 2))).to_dict()),
     "the saved scaler is for 2 columns, not one"),
])
def test_forecast_refuses_a_model_saved_without_usable_settings(capsys, tmp_path, metadata,
                                                                 message):
    path = save_forecaster(tmp_path / "model.fastlstm", metadata)
    status, _, err = run_main(capsys, "forecast", "--model", path, "--csv", CORPUS / "bom.csv",
                              "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, message)


def test_output_into_a_missing_folder_is_one_line(capsys, model_file, tmp_path):
    out_path = tmp_path / "absent" / "forecast.csv"
    status, _, err = run_main(capsys, "forecast", "--model", model_file, "--csv",
                              CORPUS / "bom.csv", "--column", "Close", "--steps", 2,
                              "--out", out_path)
    assert_one_line_error(status, err, f"No such file or directory: {out_path}")


# ------------------------------------------------------- the job's own checks

@pytest.mark.parametrize("kwargs, error, message", [
    ({"window": 0}, ValueError, "window must be an int >= 1, got 0"),
    ({"window": 2.5}, TypeError, "window must be an int >= 1, got 2.5"),
    ({"test_fraction": 1.0}, ValueError, r"test_fraction must be a float in \(0, 1\), got 1.0"),
    ({"test_fraction": "0.2"}, TypeError, "test_fraction must be a float in"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0, got -1"),
    ({"seed": 1.5}, TypeError, "seed must be an int >= 0, got 1.5"),
    ({"test_fraction": 0.99}, ForecastJobError, "holds out all 15 windows"),
    ({"window": 19}, ForecastJobError, "the series has 20 values; window 19 needs at least 21"),
    ({"series": np.zeros((20, 2))}, ForecastJobError, r"shape \(n,\) or \(n, 1\), got \(20, 2\)"),
    ({"series": np.r_[np.arange(19.0), np.nan]}, ForecastJobError, "NaN or infinity"),
    ({"series": np.r_[np.arange(19.0), 1e308]}, ForecastJobError, "too far apart to scale"),
    ({"series": np.array(["1.0"] * 20)}, TypeError, "series must be numeric"),
])
def test_fit_forecaster_refuses_bad_jobs_before_training(kwargs, error, message):
    kwargs = {"series": np.arange(20.0), "window": 5, "epochs": 1, "verbose": 0, **kwargs}
    with pytest.raises(error, match=message):
        fit_forecaster(**kwargs)

"""The fastlstm command: end to end in a subprocess on the shipped data, and
in this process on a corpus of hostile input (tests/data/hostile_csv),
which must always end in one line ``fastlstm: error: ...`` and status 2."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastlstm import cli, datasets
from fastlstm.forecast import Forecaster
from fastlstm.layers import LSTM, Dense
from fastlstm.models import Sequential

CORPUS = Path(__file__).parent / "data" / "hostile_csv"


def fastlstm_cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    # The fastlstm these tests import, whatever the working directory.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(cli.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "fastlstm", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def goog_csv(tmp_path):
    goog = datasets.load_goog()
    path = tmp_path / "goog.csv"
    lines = ["Date,Close"] + [f"{d},{c}" for d, c in zip(goog.index, goog.column("Close"))]
    path.write_text("\n".join(lines[:500]) + "\n")
    return path


FAST = ["--transform", "diff", "--units", 2, "--epochs", 1, "--quiet"]


def test_demo_reports_what_it_chose_and_dollar_errors_beside_the_baselines(tmp_path):
    result = fastlstm_cli("demo", *FAST, "--window", 5, "--plot", tmp_path / "plot.png",
                          cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "GOOG daily Close" in out and "Chose transform 'diff'" in out
    header = next(line for line in out.splitlines() if "persistence" in line)
    assert header.split() == ["model", "persistence", "seasonal_naive", "drift"]
    for row in ("MAE", "RMSE"):
        line = next(line for line in out.splitlines() if line.startswith(row))
        assert line.count("$") == 4
    assert next(line for line in out.splitlines() if line.startswith("MASE"))
    assert "The 80% interval held" in out
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "plot.png").stat().st_size > 0
    except ImportError:
        assert "pip install matplotlib" in out


def test_train_save_then_forecast_prints_dates_and_an_interval(tmp_path, goog_csv):
    model_path = tmp_path / "model.fastlstm"
    result = fastlstm_cli("train", "--csv", goog_csv, "--column", "Close", "--window", 10,
                          *FAST, "--save", model_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Model saved" in result.stdout and model_path.exists()

    out_path = tmp_path / "forecast.csv"
    result = fastlstm_cli("forecast", "--model", model_path, "--csv", goog_csv, "--column",
                          "Close", "--steps", 5, "--out", out_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "date\tClose\tlow_80%\thigh_80%"
    # The CSV ends on Thursday 2006-08-10: the next business days, prices to the cent.
    assert [line.split("\t")[0] for line in lines[1:6]] == [
        "2006-08-11", "2006-08-14", "2006-08-15", "2006-08-16", "2006-08-17"]
    assert all(len(cell.split(".")[1]) == 2 for cell in lines[1].split("\t")[1:])
    rows = out_path.read_text().splitlines()
    assert rows[0] == "date,Close,low_80%,high_80%" and len(rows) == 6
    values = np.array([[float(v) for v in r.split(",")[1:]] for r in rows[1:]])
    assert np.isfinite(values).all() and 20 < values[:, 0].mean() < 2000  # dollars, not 0..1
    assert (values[:, 1] <= values[:, 0]).all() and (values[:, 0] <= values[:, 2]).all()

    result = fastlstm_cli("forecast", "--model", model_path, "--csv", goog_csv, "--column",
                          "Open", "--steps", 2, cwd=tmp_path)
    assert result.returncode == 2
    assert "was trained on column 'Close', not 'Open': pass --column Close" in result.stderr


def test_backtest_json_is_one_object_of_errors_and_choices(capsys, goog_csv):
    status, out, err = run_main(capsys, "backtest", "--csv", goog_csv, "--column", "Close",
                                "--window", 10, *FAST, "--horizon", 2, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert list(report) == ["model", "persistence", "seasonal_naive", "drift", "chosen"]
    for name in ("model", "persistence", "seasonal_naive", "drift"):
        assert {"MAE", "RMSE", "MAPE", "sMAPE", "MASE"} <= set(report[name])
    assert 0 <= report["model"]["coverage_80%"] <= 1
    assert report["chosen"]["transform"] == "diff" and report["chosen"]["window"] == 10


def test_forecast_refit_trains_on_the_whole_series(capsys, model_file, tmp_path):
    path = tmp_path / "close.csv"
    path.write_text("Close\n" + "\n".join(str(100 + k % 7) for k in range(40)) + "\n")
    status, out, err = run_main(capsys, "forecast", "--model", model_file, "--csv", path,
                                "--column", "Close", "--steps", 2, "--refit")
    assert status == 0, err
    assert out.splitlines()[0] == "step\tClose\tlow_80%\thigh_80%" and len(out.splitlines()) == 3


@pytest.mark.parametrize("args, message", [
    (["train", "--csv", "absent.csv", "--column", "Close"], "no such CSV file"),
    (["train", "--csv", "{csv}", "--column", "Price"], "has no column 'Price'"),
    (["train", "--csv", "{csv}", "--column", "Close", "--window", 600], "fewer than the 602 needed"),
    (["train", "--csv", "{csv}", "--column", "Close", "--window", 450, "--transform", "diff"],
     "the series has 399 values: window 450, differencing 1 (season 1) and horizon 1 need at least"),
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


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny Forecaster of column 'Close', window 5, saved."""
    folder = tmp_path_factory.mktemp("model")
    close = 100 + np.cumsum(np.random.default_rng(0).normal(size=60))
    (folder / "close.csv").write_text("Close\n" + "\n".join(f"{v:.2f}" for v in close) + "\n")
    forecaster = Forecaster(window=WINDOW, transform="diff", units=2, epochs=1)
    forecaster.fit(datasets.load_csv(folder / "close.csv", "Close"))
    forecaster.save(folder / "model.fastlstm")
    return folder / "model.fastlstm"


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
    header, *rows = [line.split("\t") for line in out.splitlines()]
    assert header == ["date", "Close", "low_80%", "high_80%"] and len(rows) == 3
    assert all(np.isfinite([float(cell) for cell in row[1:]]).all() for row in rows)


def test_values_too_far_apart_to_scale_are_refused(capsys, model_file):
    huge = CORPUS / "huge_values.csv"
    status, _, err = run_main(capsys, "train", "--csv", huge, "--column", "Close", "--window", 1,
                              "--transform", "level")
    assert_one_line_error(status, err, "values lie too far apart to scale")
    status, _, err = run_main(capsys, "forecast", "--model", model_file, "--csv", huge,
                              "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, "values lie too far apart to scale into the float32 range")


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
    assert_one_line_error(status, err, "leaves 0 of the 12 values before the test span: nothing "
                                       "to train on")


def test_forecast_refuses_a_series_shorter_than_the_window(capsys, model_file, tmp_path):
    path = tmp_path / "four.csv"
    path.write_text("Close\n1\n2\n3\n4\n")
    status, out, err = run_main(capsys, "forecast", "--model", model_file, "--csv", path,
                                "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, "column 'Close' has 4 values, fewer than the 5 needed")
    assert out == ""


def settings_with(model_file, path, change):
    """The model at `model_file` saved to `path` with its forecaster settings
    changed by `change(settings)`."""
    forecaster = Forecaster.load(model_file)
    metadata = forecaster.metadata()
    change(metadata["fastlstm_forecaster"])
    forecaster.model_.save(path, metadata=metadata)
    return path


def set_key(key, value):
    def change(settings):
        settings[key] = value
    return change


def set_transform(key, value):
    def change(settings):
        settings["series"][0]["transform"][key] = value
    return change


@pytest.mark.parametrize("change, message", [
    (lambda s: s.clear(), "damaged forecaster settings (no 'version')"),
    (set_key("window", 0), "damaged forecaster settings (window must be an int >= 1, got 0)"),
    (set_key("window", "5"), "window must be an int >= 1, got '5'"),
    (set_key("window", 7), "the model reads windows of 5 steps, the settings say 7"),
    (set_key("damping", 2), "damping must be a number in [0, 1], got 2"),
    (set_key("transform", "cube"), "transform 'cube': expected 'level' or steps"),
    (set_key("residuals", []), "residuals must be non-empty lists of numbers"),
    (set_transform("scale", 0.0), "not a saved transform: scale must be > 0"),
    (set_transform("offset", float("nan")), "offset must be a finite number"),
])
def test_forecast_refuses_a_model_saved_with_damaged_settings(capsys, tmp_path, model_file,
                                                              change, message):
    path = settings_with(model_file, tmp_path / "model.fastlstm", change)
    status, _, err = run_main(capsys, "forecast", "--model", path, "--csv", CORPUS / "bom.csv",
                              "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, message)


def test_forecast_refuses_a_model_without_forecaster_settings(capsys, tmp_path):
    model = Sequential([LSTM(2, input_shape=(WINDOW, 1)), Dense(1)])
    model.compile("adam", "mse")
    model.save(tmp_path / "plain.fastlstm", metadata={"window": WINDOW})
    status, _, err = run_main(capsys, "forecast", "--model", tmp_path / "plain.fastlstm",
                              "--csv", CORPUS / "bom.csv", "--column", "Close", "--steps", 2)
    assert_one_line_error(status, err, "holds a model but no forecaster settings: save it with "
                                       "Forecaster.save or 'fastlstm train --save'")


def test_output_into_a_missing_folder_is_one_line(capsys, model_file, tmp_path):
    out_path = tmp_path / "absent" / "forecast.csv"
    status, _, err = run_main(capsys, "forecast", "--model", model_file, "--csv",
                              CORPUS / "bom.csv", "--column", "Close", "--steps", 2,
                              "--out", out_path)
    assert_one_line_error(status, err, f"--out {out_path}: the folder {out_path.parent} does not "
                                       "exist")

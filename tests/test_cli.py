"""The fastlstm command end to end, in a subprocess, on the shipped data."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastlstm import datasets
from fastlstm.forecaster import ForecastJobError, fit_forecaster


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
])
def test_user_mistakes_give_one_line_and_exit_2(tmp_path, goog_csv, args, message):
    args = [str(a).replace("{csv}", str(goog_csv)) for a in args]
    result = fastlstm_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("fastlstm: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_option_values_are_rejected_by_the_parser(tmp_path):
    result = fastlstm_cli("demo", "--epochs", 0, cwd=tmp_path)
    assert result.returncode == 2 and "expected a number >= 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_self_check_passes(tmp_path):
    result = fastlstm_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"max_relative_error"' in result.stdout and '"openmp"' in result.stdout


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

"""The default Forecaster against the naive baselines on real series.

Each series: ``Forecaster()`` with its defaults (transform="auto") is fitted
on the first 80% and forecasts from every origin of the last 20%, one step
ahead (and, for the seasonal series, a season ahead too). Written to
bench/results_forecast.json with the goals:

- a random-walk-like series (GOOG): MASE at most 2% above the best naive
  baseline's;
- strongly seasonal monthly series (nottem, UK driver deaths): MASE at
  least 20% below the seasonal naive forecast's;
- the 80% interval holds 75-85% of the test values.

Sunspots (an 11-year cycle, no calendar season) and UK gas (quarterly) are
reported without a goal of their own beyond the interval's.

Run: PYTHONPATH=. python bench/forecast_goals.py [--threads N] [--out PATH]
(from a checkout; about a minute on 2 cores).
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import fastlstm
from fastlstm import datasets
from fastlstm.forecast import Forecaster

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FASTLSTM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _one_column(table, column):
    return datasets.TimeSeries(index=table.index, values=table.values[:, [table.columns.index(
        column)]], columns=(column,), dates=table.dates, frequency=table.frequency,
        gaps=table.gaps)


def series_list():
    """(name, kind, TimeSeries of one column, horizons)."""
    shipped = [("GOOG Close (daily)", "random walk", _one_column(datasets.load_goog(), "Close"),
                (1,)),
               ("sunspots (monthly)", "cyclic", datasets.load_sunspots(), (1,))]
    local = [("nottem (monthly)", "seasonal monthly", "nottem_monthly.csv", "nottem", (1, 12)),
             ("UK driver deaths (monthly)", "seasonal monthly", "uk_driver_deaths_monthly.csv",
              "UKDriverDeaths", (1, 12)),
             ("UK gas (quarterly)", "seasonal quarterly", "uk_gas_quarterly.csv", "UKgas",
              (1, 4))]
    return shipped + [(name, kind, datasets.load_csv(SHARED / path, column), horizons)
                      for name, kind, path, column, horizons in local]


def goals(kind, horizon, errors, coverage):
    """Each goal that applies: {name: passed}."""
    model = errors["model"]["MASE"]
    best_naive = min(errors[name]["MASE"] for name in ("persistence", "seasonal_naive", "drift"))
    out = {"80% interval covers 75-85%": 0.75 <= coverage["80%"] <= 0.85}
    if kind == "random walk":
        out["MASE within 2% of the best naive"] = model <= 1.02 * best_naive
    if kind == "seasonal monthly" and horizon == 1:
        out["MASE >= 20% below seasonal naive"] = model <= 0.8 * errors["seasonal_naive"]["MASE"]
    return out


def run(threads):
    rows = []
    for name, kind, series, horizons in series_list():
        for horizon in horizons:
            forecaster = Forecaster()
            start = time.perf_counter()
            with fastlstm.threads(threads):
                result = forecaster.backtest(series, start=0.8, horizon=horizon)
            seconds = time.perf_counter() - start
            report = result.to_dict()
            model = report["model"]
            rows.append({
                "series": name, "kind": kind, "values": len(series), "horizon": horizon,
                "test_origins": len(result.origins), "seconds": round(seconds, 2),
                "chosen": report["chosen"], "errors": {k: report[k] for k in
                                                      ("model", "persistence", "seasonal_naive",
                                                       "drift")},
                "coverage": result.coverage,
                "goals": goals(kind, horizon, result.errors, result.coverage)})
            print(f"{name:28} h={horizon:<2} {report['chosen']['transform']:22} "
                  f"damping {report['chosen']['damping']:.1f}  MASE model {model['MASE']:.3f}  "
                  f"persistence {report['persistence']['MASE']:.3f}  seasonal naive "
                  f"{report['seasonal_naive']['MASE']:.3f}  drift {report['drift']['MASE']:.3f}"
                  f"  80%: {result.coverage['80%']:.2f}  {seconds:.1f} s", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=fastlstm.get_num_threads())
    parser.add_argument("--out", default=str(ROOT / "bench" / "results_forecast.json"))
    args = parser.parse_args(argv)
    rows = run(args.threads)
    record = {"command": "PYTHONPATH=. python bench/forecast_goals.py",
              "fastlstm": fastlstm.__version__, "threads": args.threads,
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                          "python": platform.python_version()},
              "settings": "Forecaster() defaults; backtest(start=0.8), one forecast per origin",
              "results": rows}
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

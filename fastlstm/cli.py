"""The ``fastlstm`` command (also ``python -m fastlstm``).

Subcommands
-----------
demo      The forecaster on the shipped GOOG prices: what it chose, its test
          errors in dollars next to the naive baselines, and a plot.
train     The same job on a column of your CSV; --save keeps the model.
backtest  Rolling-origin evaluation of a CSV column (--json for one object).
forecast  Forecast with dates and an 80% interval from a saved model and a CSV.
convert   A model file into another format, chosen by the extensions
          (.keras, .h5, .fastlstm, .onnx, .pt).
info      Build facts and a kernel-vs-reference self-check.
bench     The benchmark suite against the peers (see fastlstm.bench).

A user mistake (missing or unreadable file or column, bad number, bad or
out-of-range option) prints one line, ``fastlstm: error: ...``, and exits
with status 2.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from . import convert, datasets, functional, reference
from ._build_info import build_info
from ._threads import set_num_threads
from .forecast import ForecastError, Forecaster
from .transforms import TransformSpec

# Upper bounds of the options: far past any sensible forecaster, and low
# enough that a typo fails at once instead of after reading the data (a
# million units would need terabytes; the second LSTM has twice as many).
MAX_WINDOW = 4096
MAX_UNITS = 1024
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_STEPS = 100_000
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1
MAX_SEASON = 10_000
MAX_DECIMALS = 8
INTERVAL = (0.1, 0.5, 0.9)  # the quantiles forecast and backtest report: an 80% interval


class UserError(Exception):
    """A mistake in the command's input: reported in one line, no traceback."""


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in the one-line form of every other mistake."""

    def error(self, message):
        self.exit(2, f"fastlstm: error: {_one_line(message)} (see '{self.prog} --help')\n")


def _one_line(text):
    """`text` with line breaks shown as \\n, so that an error is one line."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


# ---------------------------------------------------------------- helpers

def _median_ms(fn, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def self_check(batch=64, time_steps=60, features=1, units=50, seed=0):
    """Kernel vs reference on one random float32 problem: errors and times.

    Returns
    -------
    dict
        ``max_relative_error`` over y and all gradients (float32 kernels vs
        the float64 reference) and median milliseconds of each forward.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, time_steps, features)).astype(np.float32)
    kernel = (0.5 * rng.standard_normal((features, 4 * units))).astype(np.float32)
    recurrent = (0.5 / np.sqrt(units) * rng.standard_normal((units, 4 * units))).astype(np.float32)
    bias = np.zeros(4 * units, np.float32)
    dy = rng.standard_normal((batch, time_steps, units)).astype(np.float32)
    inputs = (x, kernel, recurrent, bias)

    y, _, _, cache = functional.lstm_forward(*inputs, return_cache=True)
    grads = functional.lstm_backward(cache, dy)
    ref_inputs = [a.astype(np.float64) for a in inputs]
    ref_y, _, _, ref_cache = reference.lstm_forward(*ref_inputs, return_cache=True)
    ref_grads = reference.lstm_backward(ref_cache, dy.astype(np.float64))
    error = max(np.max(np.abs(a - b)) / np.max(np.abs(b))
                for a, b in zip([y, *grads[:4]], [ref_y, *ref_grads[:4]]))
    return {
        "shape (batch, time, features, units)": [batch, time_steps, features, units],
        "max_relative_error": float(error),
        "fastlstm_forward_ms": _median_ms(lambda: functional.lstm_forward(*inputs)),
        "reference_forward_ms": _median_ms(lambda: reference.lstm_forward(*inputs)),
    }


def _whole_number(low, high):
    """An argparse type: a whole number in [low, high]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number in [{low}, {high}], "
                                             f"got {value}")
        return value
    return parse


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value}")
    return value


def _transform(text):
    if text == "auto":
        return text
    try:
        return TransformSpec.parse(text).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def decimals_of(values):
    """Decimal places that write every one of `values` exactly (at most
    MAX_DECIMALS): the precision the data were given with."""
    values = np.asarray(values, dtype=np.float64)
    for places in range(MAX_DECIMALS + 1):
        scaled = values * 10.0 ** places
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6):
            return places
    return MAX_DECIMALS


def _number(value, places):
    return "n/a" if value is None else f"{value:.{places}f}"


def _check_writable(path, option):
    """Refuse an output path that cannot be written, before any training."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder, not a file")
    if not os.path.isdir(folder):
        raise UserError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option} {path}: the folder {folder} is not writable")


def _describe_choice(chosen):
    scores = chosen["validation_mase"]
    season = chosen["season"]
    text = (f"Chose transform {chosen['transform']!r} (validation MASE "
            f"{scores[chosen['transform']]:.3f}; tried {len(scores)}), season {season} "
            f"(from {chosen['season_from']}), window {chosen['window']}, "
            f"{chosen['epochs']} epochs")
    if chosen["damping"] < 1:
        text += (f", damping {chosen['damping']:.1f} toward the transform's no-change forecast"
                 + (" (the network's own forecast did not beat it on the validation span)"
                    if chosen["damping"] == 0 else ""))
    features = chosen["calendar_features"]
    return text + (f"; calendar features {features}" if features else "") + "."


def _report(result, seconds, unit=""):
    print(f"\nTrained and tested in {seconds:.1f} s. Test span: {len(result.origins)} forecasts of "
          f"{result.actual.shape[1]} step(s) from rolling origins.")
    print(_describe_choice(result.chosen))
    print(result.table(unit=unit))
    for name, share in result.coverage.items():
        print(f"The {name} interval held {share:.0%} of the test values.")


def _plot(result, series, column, unit, title, path):
    """Save the test span: actual, forecast, persistence and the 80% band,
    after the end of the training span; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    first = int(result.origins[0])
    x = series.dates if series.dates is not None else np.arange(len(series))
    context = max(0, first - 2 * len(result.origins))
    test_x = result.dates[:, 0] if result.dates is not None else result.origins
    values = series.column(column)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x[context:first], values[context:first], color="grey", linewidth=1.0,
            label="training span (end)")
    ax.plot(test_x, result.actual[:, 0], color="black", linewidth=1.2, label="actual")
    ax.plot(test_x, result.forecasts["persistence"][:, 0], color="tab:blue", linewidth=0.9,
            alpha=0.7, label="persistence")
    ax.plot(test_x, result.forecasts["model"][:, 0], color="tab:orange", linewidth=1.2,
            label="forecast")
    if 0.1 in result.quantiles and 0.9 in result.quantiles:
        ax.fill_between(test_x, result.quantiles[0.1][:, 0], result.quantiles[0.9][:, 0],
                        color="tab:orange", alpha=0.2, linewidth=0, label="80% interval")
    ax.axvline(x[first], color="grey", linestyle=":", linewidth=1.0)
    ax.set_ylabel(f"{column} ({unit})" if unit else column)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except ValueError as e:  # matplotlib's error for a file type it cannot write
        raise UserError(f"cannot write the plot {path}: {e}") from None
    finally:
        plt.close(fig)
    return True


def _add_model_options(parser, epochs):
    parser.add_argument("--window", type=_whole_number(1, MAX_WINDOW),
                        help=f"past steps per input (default: twice the season, at least 24; "
                             f"at most {MAX_WINDOW})")
    parser.add_argument("--transform", type=_transform, default="auto",
                        help="'auto' (chosen on the end of the training span) or e.g. 'diff', "
                             "'log+seasonal_diff', 'window_last', 'level'")
    parser.add_argument("--season", type=_whole_number(1, MAX_SEASON),
                        help="seasonal period in steps (default: from the dates or the "
                             "autocorrelation)")
    parser.add_argument("--units", type=_whole_number(1, MAX_UNITS), default=32,
                        help=f"units of the LSTM (at most {MAX_UNITS})")
    parser.add_argument("--epochs", type=_whole_number(1, MAX_EPOCHS), default=epochs,
                        help="most epochs per training (it stops early on the validation span)")
    parser.add_argument("--batch-size", type=_whole_number(1, MAX_BATCH_SIZE), default=32)
    parser.add_argument("--seed", type=_whole_number(0, MAX_SEED), default=0)
    parser.add_argument("--threads", type=_whole_number(1, MAX_THREADS),
                        help="kernel threads (default: all cores)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not list each candidate transform's validation error")


def _add_test_options(parser):
    parser.add_argument("--horizon", type=_whole_number(1, MAX_STEPS), default=1,
                        help="values forecast from each test origin")
    parser.add_argument("--test-fraction", type=_fraction, default=0.2,
                        help="share of the series, the latest, held out for testing")


def _forecaster(args, verbose=None):
    if args.threads:
        set_num_threads(args.threads)
    return Forecaster(window=args.window, transform=args.transform, season=args.season,
                      units=args.units, epochs=args.epochs, batch_size=args.batch_size,
                      seed=args.seed,
                      verbose=(0 if args.quiet else 1) if verbose is None else verbose)


def _errors_as_user_errors(run):
    """run() with the forecaster's refusals turned into one-line user errors."""
    try:
        return run()
    except (ForecastError, ValueError, TypeError) as e:
        raise UserError(str(e)) from None
    except MemoryError:
        raise UserError("not enough memory for this window, units and batch size: try "
                        "smaller values") from None


def _backtest(forecaster, series, column, args):
    start = time.perf_counter()
    result = _errors_as_user_errors(lambda: forecaster.backtest(
        series, start=1 - args.test_fraction, horizon=args.horizon, quantiles=INTERVAL))
    return result, time.perf_counter() - start


# ------------------------------------------------------------ subcommands

def _one_column(table, column):
    """A TimeSeries of `column` alone, with the table's dates."""
    return datasets.TimeSeries(index=table.index, values=table.values[:, [table.columns.index(
        column)]], columns=(column,), dates=table.dates, frequency=table.frequency,
        gaps=table.gaps)


def _demo(args):
    goog = _one_column(datasets.load_goog(), "Close")
    print(f"GOOG daily Close, {goog.dates[0]} .. {goog.dates[-1]} ({len(goog)} days): "
          f"a small LSTM forecaster (transform {args.transform!r}), tested on the last "
          f"{args.test_fraction:.0%}.")
    if args.plot.lower() != "none":
        _check_writable(args.plot, "--plot")
    result, seconds = _backtest(_forecaster(args), goog, "Close", args)
    _report(result, seconds, unit="$")
    if args.plot.lower() == "none":
        return 0
    if _plot(result, goog, "Close", "US$", "GOOG Close: the forecaster on the test span",
             args.plot):
        print(f"Plot of the test span: {args.plot}")
    else:
        print("For a plot of the test span: pip install matplotlib (or pip install "
              "'fastlstm[plot]'), then run this again.")
    return 0


def _read_series(path, column, min_length=1, date_column=None):
    try:
        return datasets.load_csv(path, column, min_length=min_length, date_column=date_column)
    except (FileNotFoundError, ValueError, TypeError) as e:
        raise UserError(str(e)) from None


def _train(args):
    if args.save:
        _check_writable(args.save, "--save")
    series = _read_series(args.csv, args.column, (args.window or 1) + 2, args.date_column)
    forecaster = _forecaster(args)
    result, seconds = _backtest(forecaster, series, args.column, args)
    _report(result, seconds)
    if args.save:
        forecaster.save(args.save)
        print(f"Model saved to {args.save}")
    return 0


def _backtest_command(args):
    series = _read_series(args.csv, args.column, date_column=args.date_column)
    forecaster = _forecaster(args, verbose=0 if args.json else None)
    result, seconds = _backtest(forecaster, series, args.column, args)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _report(result, seconds)
    return 0


def _load_forecaster(path):
    """The Forecaster saved at `path` by 'fastlstm train --save'."""
    try:
        return Forecaster.load(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def _forecast(args):
    forecaster = _load_forecaster(args.model)
    if forecaster.column != args.column:
        raise UserError(f"{args.model} was trained on column {forecaster.column!r}, not "
                        f"{args.column!r}: pass --column {forecaster.column} or train a model "
                        f"on {args.column!r}")
    if args.out:
        _check_writable(args.out, "--out")
    series = _read_series(args.csv, args.column, forecaster.window_, args.date_column)
    if args.refit:
        params = dict(forecaster.get_params(), transform=forecaster.transform_,
                      season=forecaster.season_, window=forecaster.window_)
        forecaster = Forecaster(**params)
        _errors_as_user_errors(lambda: forecaster.fit(series))
    forecast = _errors_as_user_errors(lambda: forecaster.predict(
        args.steps, INTERVAL, history=None if args.refit else series))
    places = decimals_of(series.column(args.column))
    labels = ([str(d) for d in forecast.dates] if forecast.dates is not None
              else [str(k) for k in range(1, args.steps + 1)])
    low, high = forecast.quantiles[INTERVAL[0]], forecast.quantiles[INTERVAL[-1]]
    print(f"{'date' if forecast.dates is not None else 'step'}\t{args.column}\t"
          f"low_80%\thigh_80%")
    for label, value, lower, upper in zip(labels, forecast.values, low, high):
        print(f"{label}\t{_number(value, places)}\t{_number(lower, places)}\t"
              f"{_number(upper, places)}")
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["date" if forecast.dates is not None else "step", args.column,
                             "low_80%", "high_80%"])
            writer.writerows((label, _number(value, places + 2), _number(lower, places + 2),
                              _number(upper, places + 2))
                             for label, value, lower, upper in zip(labels, forecast.values,
                                                                   low, high))
        print(f"Forecast written to {args.out}")
    return 0


def _convert(args):
    try:
        model = convert.convert_file(args.input, args.output)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise UserError(str(e)) from None
    print(f"{args.input} -> {args.output}: {len(model.layers)} layers, "
          f"{model.count_params():,} parameters")
    return 0


def _format_listing():
    lines = ["formats, by extension:"]
    for found in convert.files.formats():
        can = "read and write" if found.read and found.write else (
            "read" if found.read else "write")
        lines.append(f"  {found.extension:10} {found.description} ({can})")
    return "\n".join(lines)


def _info(args):
    report = {"build": build_info(), "self_check": self_check()}
    print(json.dumps(report, indent=2))
    return 0 if report["self_check"]["max_relative_error"] < 1e-4 else 1


def _add_csv_options(parser):
    parser.add_argument("--csv", required=True)
    parser.add_argument("--column", required=True)
    parser.add_argument("--date-column",
                        help="column of dates (default: found by name or content)")


def build_parser():
    parser = _Parser(prog="fastlstm", description="Fast LSTMs on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the forecaster on the shipped GOOG prices")
    _add_model_options(demo, epochs=60)
    _add_test_options(demo)
    demo.add_argument("--plot", default="fastlstm_demo.png",
                      help="PNG to write (needs matplotlib); 'none' for no plot")
    demo.set_defaults(handler=_demo)

    train = commands.add_parser("train", help="train and test the forecaster on a CSV column")
    _add_csv_options(train)
    train.add_argument("--save", help="file to save the trained model to")
    _add_model_options(train, epochs=60)
    _add_test_options(train)
    train.set_defaults(handler=_train)

    backtest = commands.add_parser("backtest", help="rolling-origin evaluation of a CSV column "
                                                    "beside the naive baselines")
    _add_csv_options(backtest)
    backtest.add_argument("--json", action="store_true",
                          help="print one JSON object: model, persistence, seasonal_naive, "
                               "drift, chosen")
    _add_model_options(backtest, epochs=60)
    _add_test_options(backtest)
    backtest.set_defaults(handler=_backtest_command)

    forecast = commands.add_parser("forecast", help="forecast with dates and an 80%% interval "
                                                    "from a saved model")
    forecast.add_argument("--model", required=True)
    _add_csv_options(forecast)
    forecast.add_argument("--steps", type=_whole_number(1, MAX_STEPS), required=True,
                          help=f"values to forecast (at most {MAX_STEPS})")
    forecast.add_argument("--out", help="CSV file for the forecast")
    forecast.add_argument("--refit", action="store_true",
                          help="train again on the whole series (the saved model's settings) "
                               "before forecasting")
    forecast.set_defaults(handler=_forecast)

    converting = commands.add_parser(
        "convert", help="convert a model file to another format (by extension)",
        epilog=_format_listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    converting.add_argument("input", help="the model file to read")
    converting.add_argument("output", help="the file to write")
    converting.set_defaults(handler=_convert)

    info = commands.add_parser("info", help="build facts and a kernel-vs-reference self-check")
    info.set_defaults(handler=_info)

    # Listed here for --help; main() hands its arguments to fastlstm.bench.
    commands.add_parser("bench", add_help=False,
                        help="benchmark suite against the peers (--help for its options)")
    return parser


def main(argv=None):
    from_command_line = argv is None
    argv = sys.argv[1:] if from_command_line else list(argv)
    if argv[:1] == ["bench"]:
        from . import bench

        if from_command_line:  # never re-execute a program that called main() itself
            bench.exec_with_quiet_openblas()
        return bench.main(argv[1:], prog="fastlstm bench")
    parser = build_parser()
    args = parser.parse_args(argv)  # reports a bad command line itself (exit 2)
    try:
        return args.handler(args)
    except UserError as e:
        return _fail(e)
    except OSError as e:  # e.g. --save or --out into a missing folder, an unreadable file
        text = e.strerror or str(e)
        return _fail(text if e.filename is None else f"{text}: {e.filename}")


def _fail(message):
    print(f"fastlstm: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

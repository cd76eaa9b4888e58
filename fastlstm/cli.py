"""The ``fastlstm`` command (also ``python -m fastlstm``).

Subcommands
-----------
demo      The classic stock forecast on the shipped GOOG prices: train, then
          test errors in dollars next to the persistence baseline, and a plot.
train     The same job on a column of your CSV; --save keeps the model.
forecast  Recursive multi-step forecast from a saved model and a CSV.
convert   A model file into another format, chosen by the extensions
          (.keras, .h5, .fastlstm, and whatever fastlstm.convert registers).
info      Build facts and a kernel-vs-reference self-check.
bench     The benchmark suite against the peers (see fastlstm.bench).

A user mistake (missing or unreadable file or column, bad number, bad or
out-of-range option) prints one line, ``fastlstm: error: ...``, and exits
with status 2.
"""
import argparse
import csv
import json
import sys
import time

import numpy as np

from . import convert, datasets, functional, reference, timeseries
from ._build_info import build_info
from ._threads import set_num_threads
from .forecaster import ForecastJobError, fit_forecaster
from .models import load_model

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

# The model computes in float32: a scaled input must stay below its largest value.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def _report(run, unit=""):
    print(f"\nTrained in {run.train_seconds:.1f} s. Test set: the last {len(run.test_true)} "
          f"values (window {run.window}).")
    print(f"{'':8}{'LSTM':>12}{'persistence':>14}")
    for name, pair in run.errors().items():
        print(f"{name:8}{unit}{pair['model']:>11.3f}{unit}{pair['persistence']:>13.3f}")
    scaled_test_max = float(run.scaler.transform(run.test_true).max())
    if scaled_test_max > 1.0:
        print(f"Note: the test values reach {scaled_test_max:.2f} on the 0..1 scale fitted to the "
              "training span (nothing leaks from the test set), so the model extrapolates.")


def _plot(run, index, title, path):
    """Save true vs predicted test values as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    dates = index[run.test_start:]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(dates, run.test_true, label="true", color="black", linewidth=1.2)
    ax.plot(dates, run.test_predicted, label="LSTM forecast", color="tab:orange", linewidth=1.2)
    ax.set_title(title)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except ValueError as e:  # matplotlib's error for a file type it cannot write
        raise UserError(f"cannot write the plot {path}: {e}") from None
    finally:
        plt.close(fig)
    return True


def _add_training_options(parser, epochs):
    parser.add_argument("--window", type=_whole_number(1, MAX_WINDOW), default=60,
                        help=f"past steps per input (at most {MAX_WINDOW})")
    parser.add_argument("--units", type=_whole_number(1, MAX_UNITS), default=50,
                        help="units of the first LSTM (the second has twice as many; "
                             f"at most {MAX_UNITS})")
    parser.add_argument("--epochs", type=_whole_number(1, MAX_EPOCHS), default=epochs)
    parser.add_argument("--batch-size", type=_whole_number(1, MAX_BATCH_SIZE), default=64)
    parser.add_argument("--test-fraction", type=_fraction, default=0.2,
                        help="share of the windows, the latest, held out for testing")
    parser.add_argument("--seed", type=_whole_number(0, MAX_SEED), default=0)
    parser.add_argument("--threads", type=_whole_number(1, MAX_THREADS),
                        help="kernel threads (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def _train_from_args(series, args):
    if args.threads:
        set_num_threads(args.threads)
    try:
        return fit_forecaster(series, window=args.window, units=args.units, epochs=args.epochs,
                              batch_size=args.batch_size, test_fraction=args.test_fraction,
                              seed=args.seed, verbose=0 if args.quiet else 1)
    except ForecastJobError as e:
        raise UserError(str(e)) from None
    except MemoryError:
        raise UserError(f"not enough memory to train with --window {args.window}, --units "
                        f"{args.units} and --batch-size {args.batch_size}: try smaller "
                        "values") from None


# ------------------------------------------------------------ subcommands

def _demo(args):
    goog = datasets.load_goog()
    print(f"GOOG daily Close, {goog.index[0]} .. {goog.index[-1]} ({len(goog)} days): "
          f"LSTM(50, seq) -> Dropout(0.2) -> LSTM(100) -> Dropout(0.2) -> Dense(1), "
          f"MSE + rmsprop, {args.epochs} epochs.")
    run = _train_from_args(goog.column("Close"), args)
    _report(run, unit=" $")
    if args.plot.lower() == "none":
        return 0
    if _plot(run, goog.index, "GOOG Close: true vs LSTM one-step forecast (test set)", args.plot):
        print(f"Plot of true vs predicted: {args.plot}")
    else:
        print("For a plot of true vs predicted: pip install matplotlib (or pip install "
              "'fastlstm[plot]'), then run this again.")
    return 0


def _read_series(path, column, min_length):
    try:
        return datasets.load_csv(path, column, min_length=min_length).column(column)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def _train(args):
    series = _read_series(args.csv, args.column, args.window + 2)
    run = _train_from_args(series, args)
    _report(run)
    if args.save:
        run.model.save(args.save, metadata={**run.metadata(), "column": args.column})
        print(f"Model saved to {args.save}")
    return 0


def _load_forecaster(path):
    """The model at `path`, and the window and scaler 'fastlstm train' saved with it."""
    try:
        model = load_model(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    meta = model.metadata
    if not isinstance(meta, dict) or "scaler" not in meta or "window" not in meta:
        raise UserError(f"{path} has no scaler and window: save it with 'fastlstm train'")
    window = meta["window"]
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise UserError(f"{path}: the saved window must be a whole number >= 1, got {window!r}")
    if model.input_shape[-1] != 1 or model.input_shape[0] not in (None, window):
        raise UserError(f"{path}: the model reads inputs of shape {model.input_shape}, not "
                        f"({window}, 1) as its saved window says")
    try:
        scaler = timeseries.scaler_from_dict(meta["scaler"])
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    if scaler.scale_.size != 1:
        raise UserError(f"{path}: the saved scaler is for {scaler.scale_.size} columns, not one")
    return model, window, scaler


def _forecast(args):
    model, window, scaler = _load_forecaster(args.model)
    series = _read_series(args.csv, args.column, window)
    history = scaler.transform(series[-window:])
    if not np.all(np.abs(history) < _FLOAT32_MAX):
        raise UserError(f"{args.csv}: the last {window} values of {args.column!r} lie too far "
                        "outside the range the model was trained on to scale into float32")
    scaled = timeseries.forecast_recursive(model, history, args.steps, window)
    forecast = scaler.inverse_transform(scaled, column=0)
    for step, value in enumerate(forecast, start=1):
        print(f"{step}\t{value:.6g}")
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", args.column])
            writer.writerows((step, f"{value:.10g}") for step, value in enumerate(forecast, 1))
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


def build_parser():
    parser = _Parser(prog="fastlstm", description="Fast LSTMs on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the classic stock forecast on shipped GOOG prices")
    _add_training_options(demo, epochs=50)
    demo.add_argument("--plot", default="fastlstm_demo.png",
                      help="PNG to write (needs matplotlib); 'none' for no plot")
    demo.set_defaults(handler=_demo)

    train = commands.add_parser("train", help="train the forecaster on a CSV column")
    train.add_argument("--csv", required=True)
    train.add_argument("--column", required=True)
    train.add_argument("--save", help="file to save the trained model to")
    _add_training_options(train, epochs=20)
    train.set_defaults(handler=_train)

    forecast = commands.add_parser("forecast", help="recursive forecast from a saved model")
    forecast.add_argument("--model", required=True)
    forecast.add_argument("--csv", required=True)
    forecast.add_argument("--column", required=True)
    forecast.add_argument("--steps", type=_whole_number(1, MAX_STEPS), required=True,
                          help=f"values to forecast (at most {MAX_STEPS})")
    forecast.add_argument("--out", help="CSV file for the forecast")
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

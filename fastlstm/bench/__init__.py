"""fastlstm's benchmark suite: ``python -m fastlstm.bench`` or ``fastlstm bench``.

fastlstm against the NumPy reference, PyTorch, ONNX Runtime and (end to end)
Keras, on the same weights and inputs, outputs checked, every comparison
interleaved in one process. The peers are optional; a missing one is
skipped with a one-line message. The grid runs the LSTM, and with --cells
also the GRU (Keras' reset_after) and the SimpleRNN (tanh), against
PyTorch's nn.GRU and nn.RNN and ONNX Runtime's GRU and RNN operators.

    python -m fastlstm.bench [--quick] [--cells CELL ...] [--json FILE] [--markdown FILE]
                             [--plots DIR]

Modules: problems (the shared inputs), peers (one adapter per library),
timing (interleaving, sgemm peak), suite (the sections), classic (the
end-to-end network), report (tables, performance goals, plots).
"""
import argparse
import json
import os
import shlex
import sys

from .problems import CELLS
from .suite import GRID, LSTM_SECTIONS, SECTIONS, Config, run

__all__ = ["Config", "run", "main"]

# Idle OpenBLAS threads spin for about 0.1 s after each call by default and
# would slow down whichever peer is timed next; OpenBLAS reads this once, at load.
_QUIET_OPENBLAS = {"OPENBLAS_THREAD_TIMEOUT": "4"}


def _shape(text):
    try:
        shape = tuple(int(v) for v in text.strip("()").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected batch,time,features,units (four positive integers), got {text!r}")
    return shape


def build_parser(prog="python -m fastlstm.bench"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short first look: 3 small shapes, float32, default threads, "
                        "3 repeats, no classic section (--sections adds it back)")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS),
                        help="the cells the grid runs (default: lstm); the sections "
                        f"{', '.join(LSTM_SECTIONS)} measure the LSTM and run only with it")
    parser.add_argument("--shapes", type=_shape, nargs="+", metavar="B,T,I,H",
                        help=f"default: {' '.join(','.join(map(str, s)) for s in GRID)}")
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, nargs="+", help="default: 1 and all usable cores")
    parser.add_argument("--repeats", type=int, help="timed rounds per comparison (default 11)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS)
    parser.add_argument("--peers", nargs="+", choices=["torch", "onnxruntime", "reference",
                                                       "keras"],
                        help="limit the peers (default: every installed one)")
    parser.add_argument("--json", metavar="FILE", help="write the raw results here")
    parser.add_argument("--markdown", metavar="FILE", help="write the report here")
    parser.add_argument("--plots", metavar="DIR",
                        help="write PNG plots here (needs matplotlib)")
    return parser


def config_from_args(args):
    overrides = {name: getattr(args, name) for name in
                 ("cells", "shapes", "dtypes", "threads", "repeats", "sections", "peers")
                 if getattr(args, name) is not None}
    if any(n < 1 for n in overrides.get("threads", [1])):
        raise SystemExit("fastlstm bench: error: --threads must be positive")
    if overrides.get("repeats", 1) < 1:
        raise SystemExit("fastlstm bench: error: --repeats must be positive")
    if "cells" in overrides:
        overrides["cells"] = list(dict.fromkeys(overrides["cells"]))  # each once, in order
    return Config.quick(**overrides) if args.quick else Config(**overrides)


def main(argv=None, prog="python -m fastlstm.bench"):
    """Run the suite from the command line; returns the exit status."""
    from . import report

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    results = run(config_from_args(args))
    command = " ".join([prog] + [shlex.quote(a) for a in argv])
    text = report.markdown(results, command)
    print("\n" + text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": report.machine(), "command": command, **results}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.plots:
        try:
            for path in report.plots(results, args.plots):
                print(f"plot written: {path}")
        except ImportError:
            print("matplotlib is not installed (pip install matplotlib): no plots")
    return 0


def exec_with_quiet_openblas():
    """Re-run this process's command with OPENBLAS_THREAD_TIMEOUT set, if it is not.

    It must be in the environment before NumPy loads OpenBLAS, which has
    happened by the time any fastlstm code runs; so the command re-executes
    itself once, exactly as it was typed. Returns only when nothing needed
    changing.
    """
    missing = {k: v for k, v in _QUIET_OPENBLAS.items() if k not in os.environ}
    if missing:
        os.environ.update(missing)
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

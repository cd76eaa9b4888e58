"""The ``fastlstm`` command (also ``python -m fastlstm``).

Subcommands
-----------
info
    How this copy was built, then a self-check: the compiled kernels against
    the NumPy reference on a random problem, with both timed.
"""
import argparse
import json
import sys
import time

import numpy as np

from . import functional, reference
from ._build_info import build_info


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


def _info(args):
    report = {"build": build_info(), "self_check": self_check()}
    print(json.dumps(report, indent=2))
    return 0 if report["self_check"]["max_relative_error"] < 1e-4 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastlstm", description="Fast LSTMs on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="build facts and a kernel-vs-reference self-check")
    args = parser.parse_args(argv)
    handlers = {"info": _info}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

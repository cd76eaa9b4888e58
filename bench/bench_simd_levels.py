"""Time fastlstm at each SIMD level this CPU supports, side by side.

The dispatcher picks the widest level; the lower ones serve older CPUs and
must stay vectorized too (a loop that silently falls back to scalar code
costs 10x). Interleaved like the suite (python -m fastlstm.bench); ratio =
level time / best time.

    python bench/bench_simd_levels.py [--threads 1] [--repeats 15]
"""
import argparse
import sys

import fastlstm
from fastlstm import _build
from fastlstm.bench.peers import FastLSTM
from fastlstm.bench.problems import Problem
from fastlstm.bench.timing import interleaved

SHAPES = [(64, 60, 1, 50), (32, 100, 32, 128)]


def at_level(level, fn):
    def run():
        _build.set_simd_level(level)
        try:
            return fn()
        finally:
            _build.set_simd_level(None)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    levels = _build.simd_levels()
    print("| (batch, time, features, units) | mode | "
          + " | ".join(f"{level} ms" for level in levels) + " |")
    print("|" + " --- |" * (2 + len(levels)))
    with fastlstm.threads(args.threads):
        for shape in SHAPES:
            runner = FastLSTM().runner(Problem(*shape))
            for mode, fn in (("fwd", runner.forward), ("fwd+bwd", runner.train_step)):
                timings = interleaved({lv: at_level(lv, fn) for lv in levels}, args.repeats)
                medians = {lv: t.median for lv, t in timings.items()}
                best = medians[levels[-1]]
                cells = [f"{1e3 * medians[lv]:.2f} ({medians[lv] / best:.1f}x)" for lv in levels]
                print(f"| {shape} | {mode} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

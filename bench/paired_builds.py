"""Two builds of fastlstm's LSTM, timed against each other in one process.

Loads this build's engine (``fastlstm._recurrent``) and another build's
compiled module: a copy of its ``_recurrent.*.so``, or of a build that keeps
the LSTM in a module of its own, ``_lstm.*.so``. Checks that both give
bitwise the same outputs and gradients on every shape, and times their
forward (inference), forward with cache and backward, interleaved call by
call, reporting the ratio of medians (other build's time / this build's:
above 1, this build is faster).

    python bench/paired_builds.py OTHER_BUILD/_recurrent.cpython-311-x86_64-linux-gnu.so \
        [--threads 2] [--repeats 31]
"""
import argparse
import importlib.util
import time

import numpy as np

import fastlstm
from fastlstm import _recurrent as this_build

GRID = [(64, 60, 1, 50), (64, 60, 50, 100), (1, 100, 128, 128), (32, 100, 32, 128),
        (64, 50, 256, 256), (32, 50, 512, 512), (8, 50, 256, 512)]


def load_other(path):
    name = "fastlstm._lstm" if "_lstm" in path.rsplit("/", 1)[-1] else "fastlstm._recurrent"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problem(batch, steps, features, units):
    rng = np.random.default_rng(0)
    f32 = np.float32
    return {"x": rng.standard_normal((batch, steps, features)).astype(f32),
            "kernel": (0.5 / np.sqrt(features) * rng.standard_normal((features, 4 * units))).astype(f32),
            "recurrent": (0.5 / np.sqrt(units) * rng.standard_normal((units, 4 * units))).astype(f32),
            "bias": (0.1 * rng.standard_normal(4 * units)).astype(f32),
            "h0": np.zeros((batch, units), f32), "c0": np.zeros((batch, units), f32),
            "dy": rng.standard_normal((batch, steps, units)).astype(f32)}


class Calls:
    """The three kernel calls of one build on one problem, with their outputs:
    through the engine's cell argument, or (``cell`` None) through a module
    that holds the LSTM alone."""

    def __init__(self, module, p, n_threads):
        self.module, self.p, self.n = module, p, n_threads
        self.cell = module.CELLS["lstm"] if hasattr(module, "CELLS") else None
        b, t, i = p["x"].shape
        h = p["h0"].shape[1]
        self.y = np.empty((b, t, h), np.float32)
        self.c_n = np.empty((b, h), np.float32)
        self.gates = np.empty((b, t, 4 * h), np.float32)
        self.cells = np.empty((b, t, h), np.float32)
        size_args = (b, t, i, h, 4, n_threads)
        self.workspace = np.empty(module.inference_workspace_size(*self._cell(), *size_args),
                                  np.float32)
        self.dx = np.empty((b, t, i), np.float32)
        self.dweights = np.empty((i + h + 1, 4 * h), np.float32)
        self.dh0 = np.empty((b, h), np.float32)
        self.dc0 = np.empty((b, h), np.float32)
        self.dz = np.empty_like(self.gates)

    def _cell(self):
        return () if self.cell is None else (self.cell,)

    def _args(self):
        p = self.p
        if self.cell is None:
            return (p["x"], p["kernel"], p["recurrent"], p["bias"], p["h0"], p["c0"], self.y,
                    self.c_n)
        return (self.cell, p["x"], p["kernel"], p["recurrent"], p["bias"], None, None,
                p["h0"], p["c0"], self.y, self.c_n)

    def inference(self):
        self.module.forward_inference(*self._args(), self.workspace, self.n)

    def training(self):
        extra = () if self.cell is None else (None,)  # aux
        self.module.forward_training(*self._args(), self.gates, self.cells, *extra, self.n)

    def backward(self):
        p = self.p
        if self.cell is None:
            self.module.backward(self.dz, p["x"], p["kernel"], p["recurrent"], p["h0"], p["c0"],
                                 self.y, self.cells, p["dy"], None, None, self.dx,
                                 self.dweights, self.dh0, self.dc0, self.n)
        else:
            self.module.backward(self.cell, self.dz, p["x"], p["kernel"], p["recurrent"], None,
                                 None, p["h0"], p["c0"], self.y, self.cells, None, p["dy"],
                                 None, None, self.dx, self.dweights, None, self.dh0, self.dc0,
                                 self.n)

    def prepare_backward(self):
        self.training()
        np.copyto(self.dz, self.gates)

    def outputs(self):
        return [self.y, self.c_n, self.dx, self.dweights, self.dh0, self.dc0]


def paired(this, other, name, repeats):
    """Median other / this over interleaved calls of `name`."""
    ratios = []
    for k in range(repeats):
        pair = [(this, []), (other, [])]
        for calls, times in (pair if k % 2 == 0 else pair[::-1]):
            if name == "backward":
                calls.prepare_backward()
            start = time.perf_counter()
            getattr(calls, name)()
            times.append(time.perf_counter() - start)
        ratios.append(pair[1][1][0] / pair[0][1][0])
    return float(np.median(ratios)), float(np.percentile(ratios, 25)), float(
        np.percentile(ratios, 75))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", help="the other build's compiled _recurrent (or _lstm) module")
    parser.add_argument("--threads", type=int, default=fastlstm.get_num_threads())
    parser.add_argument("--repeats", type=int, default=31)
    args = parser.parse_args()
    other_module = load_other(args.other)
    print(f"other / this build, median (quartiles) of {args.repeats} interleaved pairs, "
          f"float32, {args.threads} threads")
    print("| shape | identical | inference | forward with cache | backward |")
    print("| --- | --- | --- | --- | --- |")
    for shape in GRID:
        p = problem(*shape)
        this = Calls(this_build, p, args.threads)
        other = Calls(other_module, p, args.threads)
        for calls in (this, other):
            calls.prepare_backward()
            calls.backward()
            calls.inference()
        same = all(np.array_equal(a, b) for a, b in zip(this.outputs(), other.outputs()))
        cells = [" %.3f (%.3f-%.3f)" % paired(this, other, name, args.repeats)
                 for name in ("inference", "training", "backward")]
        print(f"| {shape} | {'yes' if same else 'NO'} |" + " |".join(cells) + " |")


if __name__ == "__main__":
    main()

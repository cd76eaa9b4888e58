"""The benchmark suite: what is measured, section by section.

Each section returns plain dicts (JSON-ready); report.py turns them into
tables, plots and the check against the performance goals.

Sections
--------
peak     the machine's sgemm GFLOP/s per thread count (SciPy's BLAS)
grid     every peer on every cell (LSTM, GRU, SimpleRNN), (batch, time,
         features, units), dtype and thread count: forward (inference) and
         forward + backward
scaling  fastlstm at 1 thread against N threads, interleaved, next to sgemm
         timed the same way
latency  batch 1: cost per step inside a sequence, and per call when the
         sequence is fed one step per call (streaming)
sweep    cost against the number of time steps (it should be linear)
memory   training memory against the activations backward needs
classic  the classic stacked network end to end (fit epoch, predict), with
         the FLOPs of its LSTM layers
lengths, streaming, bidirectional
         sequences as users have them (see sequences.py): the LSTM and the
         GRU, whatever the cells

Every section but peak and grid measures the LSTM alone, and runs only when
the LSTM is among the cells asked for.
"""
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from .. import _workspace, functional
from .._threads import get_num_threads, set_num_threads, threads as fastlstm_threads
from . import classic as classic_bench
from . import sequences as sequences_bench
from .peers import FastLSTM, Unsupported, all_peers
from .problems import CELLS, Problem
from .timing import (interleaved, paired_ratio, sgemm_peak, square_sgemm, thread_speedup,
                     with_blas_threads)

GRID = [(64, 60, 1, 50), (64, 60, 50, 100), (1, 100, 128, 128), (32, 100, 32, 128),
        (64, 50, 256, 256), (32, 50, 512, 512), (128, 25, 1024, 1024)]
QUICK_GRID = [(64, 60, 1, 50), (1, 100, 128, 128), (32, 100, 32, 128)]
LATENCY_UNITS = [50, 128, 256, 512]
# The sgemm whose rate is the machine's peak: large enough for OpenBLAS to
# reach its steady rate on every thread count measured here.
PEAK_SGEMM_SIZE = 1536
SWEEP_STEPS = [25, 50, 100, 200, 400]
SECTIONS = ["peak", "grid", "scaling", "latency", "sweep", "memory", "classic", "lengths",
            "streaming", "bidirectional"]
SEQUENCE_CELLS = ["lstm", "gru"]
# --quick leaves out the classic network: its whole fit epochs (and, with
# Keras installed, TensorFlow's start-up) are the slowest calls a short run
# would make.
QUICK_SECTIONS = [s for s in SECTIONS if s != "classic"]
# The sections that measure the LSTM alone, whatever the cells.
LSTM_SECTIONS = ["scaling", "latency", "sweep", "memory", "classic"]
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}


@dataclass
class Config:
    """What to run. Defaults are the full suite; see quick()."""

    shapes: list = field(default_factory=lambda: list(GRID))
    cells: list = field(default_factory=lambda: ["lstm"])  # keys of problems.CELLS
    dtypes: list = field(default_factory=lambda: ["float32", "float64"])
    threads: list = field(default_factory=lambda: sorted({1, get_num_threads()}))
    repeats: int = 11
    sections: list = field(default_factory=lambda: list(SECTIONS))
    peers: list = None  # names; None = every installed peer
    latency_units: list = field(default_factory=lambda: list(LATENCY_UNITS))
    sweep_steps: list = field(default_factory=lambda: list(SWEEP_STEPS))
    lengths_shape: tuple = sequences_bench.LENGTHS_SHAPE
    stream_units: list = field(default_factory=lambda: list(sequences_bench.STREAM_UNITS))
    bidirectional_shape: tuple = sequences_bench.BIDIRECTIONAL_SHAPE
    classic_windows: tuple = (classic_bench.TRAIN_WINDOWS, classic_bench.PREDICT_WINDOWS)
    peak_size: int = PEAK_SGEMM_SIZE
    log: object = print

    @classmethod
    def quick(cls, **overrides):
        """A short first look: three small shapes, float32, the default thread
        count, 3 rounds, every section but the classic network."""
        settings = dict(shapes=list(QUICK_GRID), dtypes=["float32"],
                        threads=[get_num_threads()], repeats=3, sections=list(QUICK_SECTIONS),
                        latency_units=[50, 128], sweep_steps=SWEEP_STEPS[:3])
        settings.update(overrides)
        return cls(**settings)


def available_peers(config):
    """The peers to run, after a one-line message for each one missing."""
    peers = []
    for peer in all_peers():
        if config.peers is not None and peer.name not in config.peers and peer.name != "fastlstm":
            continue
        reason = peer.missing()
        if reason:
            config.log(f"{peer.name}: {reason}")
        else:
            peers.append(peer)
    return peers


def check_agreement(outputs, dtype):
    """Raise if any peer's output differs from fastlstm's beyond the dtype's tolerance."""
    expected = outputs["fastlstm"]
    scale = max(float(np.max(np.abs(expected))), 1e-30) if expected.size else 1.0
    for name, value in outputs.items():
        error = float(np.max(np.abs(value - expected))) / scale if expected.size else 0.0
        if not error <= TOLERANCE[dtype]:
            raise AssertionError(f"{name} disagrees with fastlstm on this problem: relative "
                                 f"error {error:.2e} > {TOLERANCE[dtype]:.0e}")


def _runners(peers, problem, log):
    runners = {}
    for peer in peers:
        try:
            runners[peer.name] = peer.runner(problem)
        except Unsupported as e:
            log(f"{peer.name}: {e}: skipped")
    return runners


def _time_mode(runners, mode, repeats):
    """Each runner's timing of `mode`; a peer's also holds its paired ratio to fastlstm's."""
    functions = {name: getattr(r, mode) for name, r in runners.items()
                 if getattr(r, mode) is not None}
    settle = {name: r.settle_seconds for name, r in runners.items()}
    timings = interleaved(functions, repeats, settle)
    out = {name: t.to_dict() for name, t in timings.items()}
    for name, t in timings.items():
        if name != "fastlstm" and "fastlstm" in timings:
            out[name]["paired_ratio"] = paired_ratio(t, timings["fastlstm"])
    return out


def _set_threads(peers, n):
    for peer in peers:
        peer.set_threads(n)


def run_peak(config, peers):
    return {str(n): sgemm_peak(n, size=config.peak_size) for n in config.threads}


def _remeasured_peak(config, peers, first):
    """The larger of each thread count's peak at the start of the run and
    now: a peak measured while the shared machine is busy reads low, and
    every kernel's fraction of it high (a 1-thread peak can read 103 GFLOP/s
    in a run whose forward pass reaches 124)."""
    again = run_peak(config, peers)
    return {n: max(first[n], again[n]) for n in first}


def run_grid(config, peers):
    """One row per (cell, dtype, threads, shape): times of every peer, fwd and fwd+bwd."""
    rows = []
    for cell in config.cells:
        for dtype in config.dtypes:
            for n in config.threads:
                _set_threads(peers, n)
                for shape in config.shapes:
                    rows.append(_grid_row(config, peers, Problem(*shape, dtype=dtype, cell=cell),
                                          n))
                    config.log(_grid_progress(rows[-1]))
    return rows


def _grid_row(config, peers, problem, threads):
    """Every peer's times on `problem`, after checking that their outputs agree."""
    runners = _runners(peers, problem, config.log)
    check_agreement({name: r.forward() for name, r in runners.items()}, problem.dtype)
    return {"cell": problem.cell, "dtype": problem.dtype, "threads": threads,
            "shape": list(problem.shape), "forward_flops": problem.forward_flops(),
            "training_flops": problem.training_flops(),
            "fwd": _time_mode(runners, "forward", config.repeats),
            "fwd+bwd": _time_mode(runners, "train_step", config.repeats)}


def _grid_progress(row):
    parts = []
    for mode in ("fwd", "fwd+bwd"):
        ours = row[mode]["fastlstm"]["median_s"]
        ratios = ", ".join(f"{name} {t['paired_ratio']['median']:.2f}x"
                           for name, t in row[mode].items() if name != "fastlstm")
        parts.append(f"{mode} {1e3 * ours:.2f} ms ({ratios or 'no peer'})")
    cell = "" if row["cell"] == "lstm" else CELLS[row["cell"]].title + " "
    return (f"  {cell}{row['dtype']} {row['threads']}t {tuple(row['shape'])}: "
            + "; ".join(parts))


def run_scaling(config, peers):
    """fastlstm at 1 thread and at the most threads asked for, interleaved, batch >= 32.

    Returns {"rows": one per shape, "sgemm": the same comparison for a
    square sgemm}: how far the machine's own best kernel scales in the same
    run is the yardstick for fastlstm's scaling.
    """
    most = max(config.threads)
    result = {"threads": [1, most], "rows": [], "sgemm": None}
    shapes = [s for s in config.shapes if s[0] >= 32]
    if most < 2 or not shapes:
        config.log("scaling: needs 2 or more threads and a shape of batch >= 32: skipped")
        return result
    product, _ = square_sgemm()
    sgemm = interleaved({f"{n} threads": with_blas_threads(n, product) for n in (1, most)},
                        config.repeats)
    result["sgemm"] = {k: t.to_dict() for k, t in sgemm.items()}
    config.log(f"  scaling sgemm: {most} threads / 1 thread = "
               f"{thread_speedup(result['sgemm'], most):.2f}x")
    for shape in shapes:
        problem = Problem(*shape, dtype=config.dtypes[0])
        row = {"dtype": problem.dtype, "shape": list(shape)}
        runner = FastLSTM().runner(problem)
        for mode, fn in (("fwd", runner.forward), ("fwd+bwd", runner.train_step)):
            functions = {f"{n} threads": _with_threads(n, fn) for n in (1, most)}
            row[mode] = {k: t.to_dict()
                         for k, t in interleaved(functions, config.repeats).items()}
        result["rows"].append(row)
        config.log(f"  scaling {tuple(shape)}: {most} threads / 1 thread = "
                   f"{thread_speedup(row['fwd'], most):.2f}x fwd, "
                   f"{thread_speedup(row['fwd+bwd'], most):.2f}x fwd+bwd")
    return result


def _with_threads(n, fn):
    def call():
        with fastlstm_threads(n):
            return fn()
    return call


def run_latency(config, peers):
    """Batch 1, 100 steps: seconds per step inside one call, and per call when streaming."""
    rows = []
    n = max(config.threads)
    _set_threads(peers, n)
    for units in config.latency_units:
        problem = Problem(1, 100, units, units, dtype=config.dtypes[0])
        runners = _runners(peers, problem, config.log)
        check_agreement({name: r.stream() for name, r in runners.items()}, problem.dtype)
        sequence = _time_mode(runners, "forward", config.repeats)
        step = _time_mode(runners, "stream", config.repeats)
        rows.append({"dtype": problem.dtype, "threads": n, "shape": list(problem.shape),
                     "per_step_in_sequence": {k: v["median_s"] / problem.time_steps
                                              for k, v in sequence.items()},
                     "streaming_step": {k: v["median_s"] / problem.time_steps
                                        for k, v in step.items()}})
        config.log(f"  latency units={units}: " + ", ".join(
            f"{k} {1e6 * v:.1f} us/step" for k, v in rows[-1]["per_step_in_sequence"].items()))
    return rows


def run_sweep(config, peers):
    """fastlstm at (32, T, 32, 128) for several T: time per step should not grow with T."""
    n = max(config.threads)
    rows = []
    with fastlstm_threads(n):
        for t in config.sweep_steps:
            runner = FastLSTM().runner(Problem(32, t, 32, 128, dtype=config.dtypes[0]))
            functions = {"fwd": runner.forward, "fwd+bwd": runner.train_step}
            timings = interleaved(functions, config.repeats)
            rows.append({"time_steps": t, "threads": n, "dtype": config.dtypes[0],
                         **{mode: timing.median for mode, timing in timings.items()}})
    fit = {mode: _linear_fit([r["time_steps"] for r in rows], [r[mode] for r in rows])
           for mode in ("fwd", "fwd+bwd")}
    config.log("  sweep: " + ", ".join(f"{m} {1e6 * f['slope_s']:.1f} us/step "
                                       f"(R^2 {f['r2']:.4f})" for m, f in fit.items()))
    return {"rows": rows, "fit": fit}


def _linear_fit(xs, ys):
    """Least-squares seconds = intercept + slope * steps, with R^2."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = ys - (intercept + slope * xs)
    total = np.sum((ys - ys.mean()) ** 2)
    r2 = 1.0 - float(np.sum(residual ** 2) / total) if total > 0 else 1.0
    return {"slope_s": float(slope), "intercept_s": float(intercept), "r2": r2}


def run_memory(config, peers):
    """Bytes NumPy allocates during fastlstm's forward (with cache) and backward.

    tracemalloc sees every NumPy array, hence every buffer of fastlstm's
    except two (batch, units) rows the backward kernel mallocs. The inputs
    are allocated before tracing starts, so they are not counted.
    """
    rows = []
    for shape in config.shapes:
        problem = Problem(*shape, dtype=config.dtypes[0])
        functional.lstm_forward(*problem.weights)  # warm the reusable inference workspace
        _workspace.drop_spare_gates()  # so that the gates buffer is counted
        tracemalloc.start()
        try:
            y, h_n, c_n, cache = functional.lstm_forward(*problem.weights, return_cache=True)
            after_forward = tracemalloc.get_traced_memory()
            grads = functional.lstm_backward(cache, problem.dy)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del y, h_n, c_n, cache, grads
        rows.append({"dtype": problem.dtype, "shape": list(shape),
                     "activation_bytes": problem.activation_bytes(),
                     "gradient_bytes": problem.gradient_bytes(),
                     "held_after_forward_bytes": after_forward[0],
                     "forward_peak_bytes": after_forward[1],
                     "training_peak_bytes": peak})
        row = rows[-1]
        config.log(f"  memory {tuple(shape)}: held after forward "
                   f"{row['held_after_forward_bytes'] / row['activation_bytes']:.2f}x the "
                   f"activations, peak {peak / (row['activation_bytes'] + row['gradient_bytes']):.2f}x"
                   " activations + gradients")
    return rows


def run_classic(config, peers):
    """One fit epoch and one predict per framework, interleaved."""
    wanted = {p.name for p in peers} | {"keras"}
    if config.peers is not None:
        wanted &= set(config.peers) | {"fastlstm"}
    x, y, x_predict = classic_bench.goog_windows(*config.classic_windows)
    fits, predicts = {}, {}
    for name, (module, make) in classic_bench.RUNNERS.items():
        if name not in wanted:
            continue
        reason = module and classic_bench.import_failure(module)
        if reason:
            config.log(f"classic: {reason}: skipped")
            continue
        fits[name], predicts[name] = make(x, y, x_predict)
    n = max(config.threads)
    _set_threads(peers, n)
    repeats = max(3, config.repeats // 2)
    fit = interleaved(fits, repeats)
    predict = interleaved(predicts, config.repeats)
    result = {"threads": n, "train_windows": len(x), "predict_windows": len(x_predict),
              "fit_epoch_flops": classic_bench.network_flops(len(x), training=True),
              "predict_flops": classic_bench.network_flops(len(x_predict), training=False),
              "fit_epoch": {k: t.to_dict() for k, t in fit.items()},
              "predict": {k: t.to_dict() for k, t in predict.items()}}
    config.log("  classic: " + ", ".join(
        f"{k} fit {fit[k].median:.3f} s predict {1e3 * predict[k].median:.1f} ms" for k in fits))
    return result


def run_lengths(config, peers):
    return sequences_bench.run_lengths(SEQUENCE_CELLS, config.lengths_shape,
                                       max(config.threads), config.repeats,
                                       [p.name for p in peers], config.log)


def run_streaming(config, peers):
    return sequences_bench.run_streaming(SEQUENCE_CELLS, config.stream_units,
                                         max(config.threads), config.repeats,
                                         [p.name for p in peers], config.log)


def run_bidirectional(config, peers):
    return sequences_bench.run_bidirectional(SEQUENCE_CELLS, config.bidirectional_shape,
                                             max(config.threads), config.repeats, config.log)


RUNS = {"peak": run_peak, "grid": run_grid, "scaling": run_scaling, "latency": run_latency,
        "sweep": run_sweep, "memory": run_memory, "classic": run_classic,
        "lengths": run_lengths, "streaming": run_streaming, "bidirectional": run_bidirectional}


def run(config):
    """Run the configured sections; returns {"config": ..., section: results}."""
    peers = available_peers(config)
    results = {"config": {"cells": list(config.cells),
                          "shapes": [list(s) for s in config.shapes], "dtypes": config.dtypes,
                          "threads": config.threads, "repeats": config.repeats,
                          "peers": [p.name for p in peers]}}
    before = get_num_threads()
    try:
        for section in config.sections:
            config.log(f"[{section}]")
            if section in LSTM_SECTIONS and "lstm" not in config.cells:
                config.log(f"{section}: measures the LSTM, which is not among the cells: "
                           "skipped")
                continue
            results[section] = RUNS[section](config, peers)
        if "peak" in results and len(config.sections) > 1:
            config.log("[peak, again]")
            results["peak"] = _remeasured_peak(config, peers, results["peak"])
    finally:
        for peer in peers:
            peer.close()
        set_num_threads(before)
    return results

"""The benchmark suite (fastlstm.bench) as a product: it runs, checks answers, reports.

Tiny shapes and one repeat: these tests check what the suite does, never how
fast anything is (speed is measured by running the suite, see bench/).
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fastlstm import bench, functional, reference
from fastlstm.bench import peers as peers_module
from fastlstm.bench import classic, report, suite, timing
from fastlstm.bench.peers import FastLSTM, Peer, Reference, Runner
from fastlstm.bench.problems import CELLS, Problem

TINY = [(2, 3, 2, 4), (1, 5, 3, 6)]


def tiny_config(**overrides):
    settings = dict(shapes=list(TINY), dtypes=["float32"], threads=[1], repeats=1,
                    sections=["grid"], peers=["reference"], latency_units=[3, 8],
                    sweep_steps=[2, 4, 8], lengths_shape=(4, 6, 3, 5), stream_units=[4],
                    bidirectional_shape=(1, 5, 3, 4), classic_windows=(128, 64), peak_size=128,
                    log=lambda line: None)
    settings.update(overrides)
    return suite.Config(**settings)


class WrongPeer(Peer):
    """Fast and wrong: its forward returns zeros."""

    name = "wrong"

    def runner(self, problem):
        zeros = np.zeros((problem.batch, problem.time_steps, problem.units), problem.dtype)
        return Runner(lambda: zeros)


class AbsentPeer(Peer):
    name = "absent"

    def missing(self):
        return "absent is not installed (pip install absent): skipped"


def test_problem_counts_flops_and_bytes():
    p = Problem(2, 3, 5, 7)
    assert p.x.shape == (2, 3, 5) and p.kernel.shape == (5, 28) and p.dy.shape == (2, 3, 7)
    assert p.forward_flops() == 2 * 3 * 2 * 28 * 12
    assert p.training_flops() == 3 * p.forward_flops()
    assert p.activation_bytes() == 4 * 2 * 3 * (6 * 7 + 5)
    assert Problem(2, 3, 5, 7, dtype="float64").activation_bytes() == 2 * p.activation_bytes()


@pytest.mark.parametrize("cell, gates, bias_shape", [
    ("lstm", 4, (28,)), ("gru", 3, (2, 21)), ("simple_rnn", 1, (7,))])
def test_problem_builds_each_cells_weights(cell, gates, bias_shape):
    p = Problem(2, 3, 5, 7, cell=cell)
    assert p.kernel.shape == (5, 7 * gates) and p.recurrent_kernel.shape == (7, 7 * gates)
    assert p.bias.shape == bias_shape and p.dy.shape == (2, 3, 7)
    assert p.forward_flops() == 2 * 3 * 2 * (7 * gates) * (5 + 7)
    y = CELLS[cell].forward(functional)(*p.weights)[0]
    assert y.shape == (2, 3, 7)


def test_grid_times_every_peer_in_both_modes():
    results = suite.run(tiny_config())
    assert results["config"]["peers"] == ["fastlstm", "reference"]
    rows = results["grid"]
    assert [tuple(r["shape"]) for r in rows] == TINY
    for row in rows:
        for mode in ("fwd", "fwd+bwd"):
            assert set(row[mode]) == {"fastlstm", "reference"}
            assert all(t["median_s"] > 0 and t["n"] == 1 for t in row[mode].values())
            paired = row[mode]["reference"]["paired_ratio"]
            expected = row[mode]["reference"]["median_s"] / row[mode]["fastlstm"]["median_s"]
            assert paired["low"] == paired["median"] == paired["high"] == expected


def test_a_fast_wrong_answer_stops_the_run(monkeypatch):
    monkeypatch.setattr(suite, "all_peers", lambda: [FastLSTM(), WrongPeer()])
    with pytest.raises(AssertionError, match="wrong disagrees with fastlstm"):
        suite.run(tiny_config(peers=["wrong"]))


def test_a_missing_peer_is_skipped_with_one_line(monkeypatch):
    lines = []
    monkeypatch.setattr(suite, "all_peers", lambda: [FastLSTM(), AbsentPeer(), Reference()])
    results = suite.run(tiny_config(peers=None, log=lines.append))
    assert "absent: absent is not installed (pip install absent): skipped" in lines
    assert results["config"]["peers"] == ["fastlstm", "reference"]


def test_every_section_runs_and_reports(tmp_path):
    config = tiny_config(sections=list(suite.SECTIONS), threads=[1, 2])
    results = suite.run(config)
    assert set(suite.SECTIONS) <= set(results)
    assert set(results["peak"]) == {"1", "2"} and all(v > 0 for v in results["peak"].values())
    assert [r["threads"] for r in results["grid"]] == [1, 1, 2, 2]
    assert results["scaling"]["rows"] == [] and results["scaling"]["sgemm"] is None  # batch < 32
    assert [r["shape"] for r in results["latency"]] == [[1, 100, 3, 3], [1, 100, 8, 8]]
    assert set(results["latency"][0]["streaming_step"]) == {"fastlstm", "reference"}
    assert [r["time_steps"] for r in results["sweep"]["rows"]] == [2, 4, 8]
    assert np.isfinite(results["sweep"]["fit"]["fwd+bwd"]["r2"])
    for row in results["memory"]:
        assert row["held_after_forward_bytes"] >= row["activation_bytes"] > 0
        assert row["training_peak_bytes"] >= row["held_after_forward_bytes"]
    assert set(results["classic"]["fit_epoch"]) == {"fastlstm"}
    assert (results["classic"]["train_windows"], results["classic"]["predict_windows"]) == (128, 64)
    assert [(r["cell"], r["mode"]) for r in results["lengths"]] == [
        (cell, mode) for cell in ("lstm", "gru") for mode in ("forward", "forward + backward")]
    assert 0 < results["lengths"][0]["lengths_over_padded"]["median"]
    assert [(r["model"], r["units"]) for r in results["streaming"]] == [
        ("lstm", 4), ("gru", 4), ("classic", None)]
    assert [r["cell"] for r in results["bidirectional"]] == ["lstm", "gru"]
    assert results["bidirectional"][0]["speedup"]["median"] > 0
    text = report.markdown(results, "python -m fastlstm.bench ...")
    titles = ("Performance goals", "Inference against PyTorch at the small shapes",
              "Grid: ratios and GFLOP/s", "Thread scaling",
              "Batch 1 latency", "Time-length sweep", "Training memory",
              "Classic stacked network", "Variable lengths",
              "Streaming, one step per call at batch 1", "Bidirectional at batch 1")
    positions = [text.find(f"### {title}\n") for title in titles]
    assert -1 not in positions and positions == sorted(positions)
    goals = text.split("### Performance goals\n\n", 1)[1]
    assert goals.startswith("| goal | worst measured | required | verdict |\n")
    assert "| training memory held / activations backward needs |" in goals
    json.dumps(results)  # JSON-ready as it is


def test_the_peak_is_the_larger_of_the_runs_first_and_last_readings(monkeypatch):
    readings = iter([100.0, 200.0, 120.0, 180.0])  # start: 1, 2 threads; end: 1, 2
    monkeypatch.setattr(suite, "sgemm_peak", lambda n, size: next(readings))
    results = suite.run(tiny_config(sections=["peak", "memory"], threads=[1, 2]))
    assert results["peak"] == {"1": 120.0, "2": 200.0}


def test_interleaving_reverses_the_order_every_other_round(monkeypatch):
    monkeypatch.setattr(timing, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(timing, "MIN_SAMPLE_SECONDS", 0.0)  # one call per sample
    calls = []
    functions = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    timings = timing.interleaved(functions, repeats=3)
    # The warm-up round, two calls each to size the samples, then the
    # rounds; every timed call right after an untimed one of the same
    # callable, so that its thread pool is awake.
    assert "".join(calls) == "ABC" + "AABBCC" + "AABBCC" + "CCBBAA" + "AABBCC"
    assert all(len(t.samples) == 3 and t.calls == 1 for t in timings.values())


def test_a_short_call_is_timed_over_enough_calls_to_fill_a_sample(monkeypatch):
    monkeypatch.setattr(timing, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(timing, "MIN_SAMPLE_SECONDS", 0.02)
    counts = {"short": 0, "long": 0}

    def call(name, seconds):
        counts[name] += 1
        time.sleep(seconds)

    timings = timing.interleaved({"short": lambda: call("short", 0.004),
                                  "long": lambda: call("long", 0.03)}, repeats=2)
    short, long = timings["short"], timings["long"]
    assert 2 <= short.calls <= 5 and long.calls == 1
    # Warm-up, sizing (2 calls), then per round a waking call and the sample.
    assert counts == {"short": 3 + 2 * (1 + short.calls), "long": 3 + 2 * 2}
    # A sample is the time per call, not per sample.
    assert all(0.004 <= s < 0.02 for s in short.samples)
    assert short.to_dict()["calls_per_sample"] == short.calls


def test_paired_ratio_divides_within_rounds():
    # A drift that slows both libraries alike leaves every round's ratio at 2.
    ours = timing.Timing([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    peer = timing.Timing([2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    assert timing.paired_ratio(peer, ours) == {"median": 2.0, "low": 2.0, "high": 2.0}


@pytest.mark.parametrize("n, k", [(3, 1), (5, 1), (6, 1), (11, 2), (20, 6), (101, 41)])
def test_paired_ratio_interval_is_the_median_order_statistics(n, k):
    # ratios 1..n: the interval is the k-th smallest to the k-th largest, k the
    # largest with P(Binomial(n, 1/2) < k) <= 2.5% (any k below 6 rounds is 1).
    peer = timing.Timing([float(i) for i in range(1, n + 1)])
    out = timing.paired_ratio(peer, timing.Timing([1.0] * n))
    assert (out["low"], out["high"]) == (k, n + 1 - k)
    assert out["median"] == (n + 1) / 2
    below = sum(math.comb(n, i) for i in range(k)) / 2 ** n
    above = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    assert n < 6 or (below <= 0.025 < above)


def _small_shape_row(shape, threads, low, median, high):
    row = _fake_grid_row(shape, 1.0, {"torch": median}, threads=threads)
    row["fwd"]["fastlstm"]["n"] = 101
    row["fwd"]["torch"]["paired_ratio"] = {"median": median, "low": low, "high": high}
    return row


def test_small_shapes_verdict_reads_the_interval():
    results = {"config": {"peers": ["fastlstm", "torch"], "repeats": 101},
               "grid": [_small_shape_row((32, 100, 32, 128), 1, 1.02, 1.03, 1.04),
                        _small_shape_row((64, 60, 1, 50), 1, 0.98, 1.05, 1.12),
                        _small_shape_row((1, 100, 128, 128), 2, 0.90, 0.95, 0.99),
                        _small_shape_row((64, 50, 256, 256), 1, 2.0, 2.0, 2.0)]}
    lines = report.small_shapes_table(results).splitlines()[2:]
    assert len(lines) == 3  # (64, 50, 256, 256) is not one of the small shapes
    assert "1.03x (1.02-1.04) | faster" in lines[0]
    assert "1.05x (0.98-1.12) | level" in lines[1]
    assert "0.95x (0.90-0.99) | slower" in lines[2]


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"}


def test_the_reference_holds_its_blas_limit_only_inside_its_own_calls(monkeypatch):
    # Held process-wide, the limit would be in force while other peers run
    # (and PyTorch runs slower afterwards); each of the reference's calls holds it.
    outside = _blas_threads()
    inside = []
    real_forward = peers_module.reference.lstm_forward

    def spy(*args, **kwargs):
        inside.append(_blas_threads())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(peers_module.reference, "lstm_forward", spy)
    peer = Reference()
    peer.set_threads(1)
    assert _blas_threads() == outside
    runner = peer.runner(Problem(*TINY[0], dtype="float64"))
    for call in (runner.forward, runner.train_step, runner.stream):
        call()
        assert _blas_threads() == outside
    assert inside and all(set(seen.values()) == {1} for seen in inside)


def test_the_torch_peer_gives_torch_its_thread_count_back(monkeypatch):
    # set_threads changes torch's process-wide count; close() must undo it
    # (a stand-in module, since PyTorch is an optional peer).
    import types

    count = {"threads": 7}
    fake = types.SimpleNamespace(get_num_threads=lambda: count["threads"],
                                 set_num_threads=lambda n: count.update(threads=n))
    monkeypatch.setitem(sys.modules, "torch", fake)
    peer = peers_module.Torch()
    peer.set_threads(1)
    peer.set_threads(2)
    assert count["threads"] == 2
    peer.close()
    assert count["threads"] == 7
    peer.close()
    assert count["threads"] == 7


def test_memory_counts_the_gates_buffer_even_after_a_training_step():
    # A training step leaves a spare gates buffer that the next forward pass
    # would take without allocating; the measurement must not be fooled.
    shape = (64, 20, 1, 8)
    problem = Problem(*shape, dtype="float32")
    _, _, _, cache = functional.lstm_forward(*problem.weights, return_cache=True)
    functional.lstm_backward(cache, problem.dy)
    (row,) = suite.run(tiny_config(shapes=[shape], sections=["memory"]))["memory"]
    assert row["held_after_forward_bytes"] >= row["activation_bytes"]


def test_scaling_compares_one_thread_with_the_most():
    config = tiny_config(shapes=[(32, 2, 3, 4)], threads=[1, 2], sections=["scaling"])
    results = suite.run(config)
    (row,) = results["scaling"]["rows"]
    assert set(row["fwd"]) == set(results["scaling"]["sgemm"]) == {"1 threads", "2 threads"}
    speedup = timing.thread_speedup(results["scaling"]["sgemm"], 2)
    assert f"SciPy's sgemm (1536^3) ran {speedup:.2f}x faster on 2 threads" in \
        report.scaling_table(results)


def _fake_grid_row(shape, ours, peers, mode="fwd", dtype="float32", threads=2):
    timings = {"fastlstm": {"median_s": ours}, **{p: {"median_s": t} for p, t in peers.items()}}
    other = "fwd+bwd" if mode == "fwd" else "fwd"
    return {"dtype": dtype, "threads": threads, "shape": list(shape), "forward_flops": 1e9,
            "training_flops": 3e9, mode: timings, other: {"fastlstm": {"median_s": ours}}}


def test_goals_report_the_worst_shape_and_the_verdict():
    results = {"config": {"peers": ["fastlstm", "onnxruntime", "torch"], "repeats": 1},
               "grid": [_fake_grid_row((64, 60, 1, 50), 1.0, {"onnxruntime": 1.5}),
                        _fake_grid_row((64, 50, 256, 256), 1.0, {"onnxruntime": 0.8}),
                        _fake_grid_row((64, 60, 1, 50), 1.0, {"torch": 2.0}, mode="fwd+bwd")]}
    table = report.goals_table(results).splitlines()
    assert table[0] == "| goal | worst measured | required | verdict |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    onnx_every = rows["inference time / ONNX Runtime's, every shape"]
    assert "1.25 at 2t (64, 50, 256, 256)" in onnx_every and "NOT met" in onnx_every
    assert "| met" in rows["inference speedup over ONNX Runtime, units <= 128"]
    assert "2.00 at 2t (64, 60, 1, 50)" in rows["training speedup over PyTorch, every shape"]
    assert "not measured" in rows["float64 training speedup over PyTorch float64"]


def test_classic_table_reads_each_framework_as_gflops_and_the_goals_as_needed_rates():
    flops = classic.network_flops(100, training=True)
    # LSTM(1 -> 50) and LSTM(50 -> 100) over 60 steps; the backward counted as twice the forward.
    assert flops == 3 * 2 * 100 * 60 * (4 * 50 * 51 + 4 * 100 * 150)
    results = {"peak": {"2": 100.0}, "classic": {
        "threads": 2, "train_windows": 100, "predict_windows": 10,
        "fit_epoch_flops": 8e9, "predict_flops": 1e9,
        "fit_epoch": {"fastlstm": {"median_s": 0.2}, "torch": {"median_s": 0.4}},
        "predict": {"fastlstm": {"median_s": 0.02}, "torch": {"median_s": 0.05}}}}
    lines = report.classic_table(results).splitlines()
    assert lines[2] == "| fastlstm | 0.200 | 1.00x | 40 | 40% | 20.0 | 1.00x | 50 | 50% |"
    assert lines[3] == "| torch | 0.400 | 2.00x | 20 | 20% | 50.0 | 2.50x | 20 | 20% |"
    assert lines[5:] == [
        "- fit epoch 3x faster than torch would need 60 GFLOP/s, 60% of the 2-thread sgemm peak.",
        "- predict 3x faster than torch would need 60 GFLOP/s, 60% of the 2-thread sgemm peak."]


def test_linear_fit_recovers_a_line():
    fit = suite._linear_fit([1, 2, 3, 4], [0.5 + 2 * t for t in (1, 2, 3, 4)])
    assert fit["slope_s"] == pytest.approx(2) and fit["intercept_s"] == pytest.approx(0.5)
    assert fit["r2"] == pytest.approx(1)


def test_plots_are_written_when_matplotlib_is_there(tmp_path):
    results = suite.run(tiny_config(shapes=TINY[:1], cells=["lstm", "gru"]))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            report.plots(results, tmp_path)
        return
    paths = report.plots(results, tmp_path)
    assert [os.path.basename(p) for p in paths] == ["bench_float32_1threads.png",
                                                    "bench_gru_float32_1threads.png"]
    assert all(os.path.getsize(path) > 1000 for path in paths)


def bench_cli(*args, cwd):
    env = dict(os.environ)
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)  # the suite must set it itself
    return subprocess.run([sys.executable, "-m", "fastlstm", "bench", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_command_writes_json_and_markdown(tmp_path):
    result = bench_cli("--shapes", "2,3,2,4", "--dtypes", "float32", "--threads", "1",
                       "--repeats", "1", "--sections", "grid", "--peers", "reference",
                       "--json", "out.json", "--markdown", "out.md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["command"].startswith("fastlstm bench --shapes 2,3,2,4")
    assert data["grid"][0]["shape"] == [2, 3, 2, 4]
    assert "### Grid: ratios and GFLOP/s" in (tmp_path / "out.md").read_text()


def test_the_command_reruns_itself_once_with_quiet_openblas(tmp_path):
    script = ("import os; print('run', os.environ.get('OPENBLAS_THREAD_TIMEOUT'), flush=True); "
              "from fastlstm import bench; bench.exec_with_quiet_openblas(); print('timed')")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == ["run None", "run 4", "timed", ""]


@pytest.mark.parametrize("args, message", [
    (["--shapes", "2,3,4"], "expected batch,time,features,units"),
    (["--threads", "0"], "--threads must be positive"),
    (["--peers", "tensorflow"], "invalid choice"),
    (["--cells", "transformer"], "invalid choice"),
])
def test_command_rejects_bad_options_in_one_line(tmp_path, args, message):
    result = bench_cli(*args, cwd=tmp_path)
    assert result.returncode == 2 or (result.returncode == 1 and "must be" in result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_main_called_in_process_runs_the_suite_without_re_executing(tmp_path, capsys,
                                                                       monkeypatch):
    from fastlstm import cli

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    status = cli.main(["bench", "--shapes", "2,3,2,4", "--threads", "1", "--repeats", "1",
                       "--dtypes", "float32", "--sections", "grid", "--peers", "reference"])
    assert status == 0 and "### Grid: ratios and GFLOP/s" in capsys.readouterr().out


def test_quick_is_a_short_first_look_that_options_still_override():
    quick = bench.config_from_args(bench.build_parser().parse_args(["--quick"]))
    assert quick.shapes == suite.QUICK_GRID and len(quick.shapes) == 3
    assert set(quick.shapes) < set(suite.GRID)
    assert quick.dtypes == ["float32"] and quick.repeats == 3 and len(quick.threads) == 1
    assert quick.sections == [s for s in suite.SECTIONS if s != "classic"]
    args = bench.build_parser().parse_args(["--quick", "--sections", "classic", "--repeats", "5"])
    again = bench.config_from_args(args)
    assert again.sections == ["classic"] and again.repeats == 5 and again.shapes == quick.shapes


def test_the_main_entry_is_importable_without_optional_peers():
    assert callable(bench.main) and hasattr(peers_module, "OnnxRuntime")


def test_the_cells_option_parses_and_defaults_to_the_lstm():
    parse = bench.build_parser().parse_args
    assert bench.config_from_args(parse([])).cells == ["lstm"]
    args = parse(["--cells", "gru", "simple_rnn", "gru", "--shapes", "2,3,2,4"])
    assert bench.config_from_args(args).cells == ["gru", "simple_rnn"]
    assert bench.config_from_args(parse(["--quick", "--cells", "gru"])).cells == ["gru"]


def _installed_peers():
    """The optional peers this environment can import, as the suite names them."""
    found = {"torch": ("torch",), "onnxruntime": ("onnx", "onnxruntime")}
    return {name for name, modules in found.items()
            if all(importlib.util.find_spec(m) is not None for m in modules)}


def test_each_cell_runs_alone_and_with_every_installed_peer(monkeypatch):
    monkeypatch.setattr(timing, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(timing, "MIN_SAMPLE_SECONDS", 0.0)  # one call per sample
    cells = list(CELLS)
    alone = suite.run(tiny_config(shapes=TINY[:1], cells=cells, peers=[]))
    assert [r["cell"] for r in alone["grid"]] == cells
    assert all(set(r["fwd"]) == {"fastlstm"} for r in alone["grid"])
    # Every peer that imports here runs, its output checked against fastlstm's
    # before it is timed (run_grid raises on a disagreement).
    results = suite.run(tiny_config(shapes=TINY[:1], cells=cells, peers=None, threads=[2]))
    peers = {"fastlstm", "reference"} | _installed_peers()
    assert set(results["config"]["peers"]) == peers
    for row in results["grid"]:
        assert set(row["fwd"]) == peers
        assert set(row["fwd+bwd"]) == peers - {"onnxruntime"}
    text = report.markdown(results, "python -m fastlstm.bench --cells lstm gru simple_rnn")
    titles = ["Performance goals", "Cell goals, shape by shape", "Grid: ratios and GFLOP/s",
              "Grid: milliseconds", "GRU grid: ratios and GFLOP/s", "GRU grid: milliseconds",
              "SimpleRNN grid: ratios and GFLOP/s", "SimpleRNN grid: milliseconds"]
    positions = [text.find(f"### {title}\n") for title in titles]
    assert -1 not in positions and positions == sorted(positions)
    goals = report.goals_table(results)
    for goal in report.CELL_GOALS:
        line = next(line for line in goals.splitlines() if line.startswith(f"| {goal.name} |"))
        measured = goal.peer in peers and goal.min_units <= TINY[0][3] <= goal.max_units
        assert ("not measured" in line) != measured, line


def test_sections_that_measure_the_lstm_skip_without_it():
    lines = []
    results = suite.run(tiny_config(cells=["simple_rnn"], sections=["grid", "memory"],
                                    log=lines.append))
    assert "memory" not in results and results["config"]["cells"] == ["simple_rnn"]
    assert "memory: measures the LSTM, which is not among the cells: skipped" in lines
    text = report.markdown(results, "python -m fastlstm.bench --cells simple_rnn")
    assert "### Grid: ratios" not in text and "against PyTorch at the small shapes" not in text
    goals = report.goals_table(results)
    assert "training memory" not in goals and "SimpleRNN training speedup" in goals
    assert "GRU" not in goals


def _cell_row(cell, shape, peers, mode, threads=2):
    row = _fake_grid_row(shape, 1.0, peers, mode=mode, threads=threads)
    row["cell"] = cell
    return row


def test_cell_goals_read_their_units_ranges_and_the_peak():
    grid = [_cell_row("gru", (64, 60, 1, 50), {"onnxruntime": 1.2}, "fwd"),
            _cell_row("gru", (64, 50, 256, 256), {"onnxruntime": 0.9}, "fwd"),
            _cell_row("gru", (32, 50, 512, 512), {"onnxruntime": 0.95}, "fwd"),
            _cell_row("gru", (32, 50, 512, 512), {"onnxruntime": 0.5}, "fwd", threads=1),
            _cell_row("simple_rnn", (64, 60, 1, 50), {"torch": 1.6}, "fwd+bwd"),
            _cell_row("simple_rnn", (32, 50, 512, 512), {"torch": 0.99}, "fwd+bwd")]
    results = {"config": {"cells": ["gru", "simple_rnn"], "repeats": 1,
                          "peers": ["fastlstm", "onnxruntime", "torch"]},
               "peak": {"2": 1.0}, "grid": grid}  # 1 GFLOP/s: every fraction is 1
    rows = {line.split(" | ")[0].lstrip("| "): line
            for line in report.goals_table(results).splitlines()[2:]}
    assert "NOT met" in rows["GRU inference speedup over ONNX Runtime, units <= 256, 2t"]
    assert "0.90 at 2t (64, 50, 256, 256)" in \
        rows["GRU inference speedup over ONNX Runtime, units <= 256, 2t"]
    over = rows["GRU inference time / ONNX Runtime's, units > 256, 2t"]
    assert "1.05 at 2t (32, 50, 512, 512)" in over and "| met" in over  # not the 1t row
    assert "not measured" in rows["GRU training speedup over PyTorch, units <= 128, 2t"]
    assert "| met" in rows["SimpleRNN training speedup over PyTorch, units <= 128, 2t"]
    assert "NOT met" in rows["SimpleRNN training speedup over PyTorch, units > 128, 2t"]
    assert "| met" in rows["GRU fwd fraction of sgemm peak, units >= 512"]
    assert not any(name.startswith(("inference", "training memory")) for name in rows)
    detail = report.cell_goals_table(results).splitlines()[2:]
    assert len(detail) == 5
    assert detail[2] == ("| GRU inference time / ONNX Runtime's, units > 256, 2t | "
                         "(32, 50, 512, 512) | 1.05x | <= 1.1 | met |")


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _torch_equations(cell, x, p):
    """PyTorch's documented nn.LSTM, nn.GRU and nn.RNN (tanh) equations, from
    torch_weights' parameters, zero initial states."""
    h = np.zeros((x.shape[0], p["weight_hh_l0"].shape[1]))
    c, ys = np.zeros_like(h), []
    for t in range(x.shape[1]):
        gi = x[:, t] @ p["weight_ih_l0"].T + p["bias_ih_l0"]
        gh = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
        if cell == "lstm":
            i, f, g, o = np.split(gi + gh, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        elif cell == "gru":
            (i_r, i_z, i_n), (h_r, h_z, h_n) = np.split(gi, 3, axis=1), np.split(gh, 3, axis=1)
            r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
            h = (1 - z) * np.tanh(i_n + r * h_n) + z * h
        else:
            h = np.tanh(gi + gh)
        ys.append(h)
    return np.stack(ys, axis=1)


def _onnx_equations(cell, x, w):
    """ONNX's documented LSTM, GRU (linear_before_reset=1) and RNN (Tanh)
    equations, from onnx_weights' W, R and B, zero initial states."""
    W, R = w["W"][0], w["R"][0]
    Wb, Rb = np.split(w["B"][0], 2)
    h = np.zeros((x.shape[0], R.shape[1]))
    c, ys = np.zeros_like(h), []
    for t in range(x.shape[1]):
        xw, hr = x[:, t] @ W.T + Wb, h @ R.T + Rb
        if cell == "lstm":
            i, o, f, g = np.split(xw + hr, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        elif cell == "gru":
            (x_z, x_r, x_h), (h_z, h_r, h_h) = np.split(xw, 3, axis=1), np.split(hr, 3, axis=1)
            z, r = _sigmoid(x_z + h_z), _sigmoid(x_r + h_r)
            h = (1 - z) * np.tanh(x_h + r * h_h) + z * h
        else:
            h = np.tanh(xw + hr)
        ys.append(h)
    return np.stack(ys, axis=1)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("convert, equations", [(peers_module.torch_weights, _torch_equations),
                                                (peers_module.onnx_weights, _onnx_equations)])
def test_peer_layouts_compute_the_reference_cell(cell, convert, equations):
    # The peers' own equations, fed the converted weights, give fastlstm's
    # reference: a gate block out of place cannot produce a ratio.
    problem = Problem(2, 5, 3, 4, dtype="float64", cell=cell)
    expected = CELLS[cell].forward(reference)(*problem.weights)[0]
    weights = convert(cell, problem.kernel, problem.recurrent_kernel, problem.bias)
    np.testing.assert_allclose(equations(cell, problem.x, weights), expected, rtol=1e-12,
                               atol=1e-12)

"""Turn suite results into Markdown tables, a check of the performance goals, and plots."""
import math
import platform
from dataclasses import dataclass
from functools import partial

from .._build_info import build_info
from .problems import CELLS
from .timing import MIN_SAMPLE_SECONDS, thread_speedup

# The published performance goals (bench/RESULTS.md, "Performance goals"); float32
# unless the name says otherwise.
INFERENCE_VS_ONNX = 1.1        # our time at most 1.1x ONNX Runtime's, every shape
TRAINING_VS_TORCH = 1.3        # at least 1.3x faster than PyTorch, every shape
TRAINING_VS_TORCH_F64 = 3.0
SGEMM_FRACTION = 0.85          # of the measured sgemm peak, at units >= 512
THREAD_SPEEDUP = 1.8           # 2 threads against 1, batch >= 32
CLASSIC_FIT = {"torch": 3.0, "keras": 6.0}
CLASSIC_PREDICT = {"torch": 3.0}
MEMORY_OVER_ACTIVATIONS = 1.1
# Also a goal: inference faster than PyTorch's at the grid's four small shapes, on 1
# and 2 threads; the verdict reads the interval (see small_shapes_table).
SMALL_SHAPES = [(64, 60, 1, 50), (64, 60, 50, 100), (1, 100, 128, 128), (32, 100, 32, 128)]


# The GRU's and the SimpleRNN's goals against their peers hold at float32 on
# this many threads (see CellGoal).
CELL_GOAL_THREADS = 2


@dataclass(frozen=True)
class CellGoal:
    """A goal of one cell against one peer: float32, CELL_GOAL_THREADS threads,
    the grid's shapes whose units are in [min_units, max_units].

    ``better="higher"``: the peer's time / fastlstm's must be at least
    ``required`` (a speedup); ``"lower"``: fastlstm's time / the peer's must
    be at most ``required``.
    """

    cell: str
    what: str       # the goal, for the report
    peer: str
    mode: str       # "fwd" or "fwd+bwd"
    min_units: int
    max_units: float  # math.inf: no bound
    required: float
    better: str = "higher"

    @property
    def name(self):
        return f"{CELLS[self.cell].title} {self.what}, {CELL_GOAL_THREADS}t"

    def applies(self, row):
        """Whether the grid row is one of the goal's cells."""
        return (_cell(row) == self.cell and row["dtype"] == "float32"
                and row["threads"] == CELL_GOAL_THREADS and self.peer in row[self.mode]
                and self.min_units <= row["shape"][3] <= self.max_units)


_ANY = math.inf
CELL_GOALS = [
    CellGoal("gru", "inference speedup over ONNX Runtime, units <= 256", "onnxruntime", "fwd",
             1, 256, 1.0),
    CellGoal("gru", "inference time / ONNX Runtime's, units > 256", "onnxruntime", "fwd",
             257, _ANY, 1.1, "lower"),
    CellGoal("gru", "training speedup over PyTorch, units <= 128", "torch", "fwd+bwd",
             1, 128, 1.5),
    CellGoal("gru", "training speedup over PyTorch, units > 128", "torch", "fwd+bwd",
             129, _ANY, 1.0),
    CellGoal("simple_rnn", "training speedup over PyTorch, units <= 128", "torch", "fwd+bwd",
             1, 128, 1.5),
    CellGoal("simple_rnn", "training speedup over PyTorch, units > 128", "torch", "fwd+bwd",
             129, _ANY, 1.0),
]


def machine():
    """One line: CPU, cores, and the software that was measured."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = build_info()
    return (f"{model}, {info['max_threads']} usable cores; Python {platform.python_version()}, "
            f"NumPy {info['numpy']}, SciPy {info['scipy']} ({info['blas'].get('configuration')}); "
            f"fastlstm {info['version']} (simd={info['simd']}, openmp={info['openmp']})"
            + _peer_versions())


def _peer_versions():
    """Installed peers' versions, read from their metadata (importing TensorFlow takes seconds)."""
    from importlib import metadata

    versions = []
    for distribution in ("torch", "onnxruntime", "keras", "tensorflow-cpu"):
        try:
            versions.append(f"{distribution} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            pass
    return ("; " + ", ".join(versions)) if versions else ""


def _cell(row):
    """A grid row's cell (results written before the grid had cells are the LSTM's)."""
    return row.get("cell", "lstm")


def run_cells(results):
    """The cells the run's grid measured, in its order."""
    return results["config"].get("cells", ["lstm"])


def grid_rows(results, cell):
    """The grid's rows of one cell."""
    return [row for row in results.get("grid", []) if _cell(row) == cell]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def _ms(seconds):
    return f"{1e3 * seconds:.2f}"


def ratio(row, mode, peer):
    """peer time / fastlstm time: the median paired ratio (results without
    one: the ratio of the medians)."""
    timing = row[mode][peer]
    if "paired_ratio" in timing:
        return timing["paired_ratio"]["median"]
    return timing["median_s"] / row[mode]["fastlstm"]["median_s"]


def _ratio_cell(row, mode, peer):
    """'1.03x (1.02-1.04)': the paired ratio and its 95% interval."""
    paired = row[mode][peer].get("paired_ratio")
    if paired is None:
        return f"{ratio(row, mode, peer):.2f}x"
    return f"{paired['median']:.2f}x ({paired['low']:.2f}-{paired['high']:.2f})"


def gflops(row, mode, peer="fastlstm"):
    flops = row["forward_flops"] if mode == "fwd" else row["training_flops"]
    return flops / row[mode][peer]["median_s"] / 1e9


def grid_table(results, cell="lstm"):
    """One cell's grid: fastlstm's times, each peer's paired ratio, and
    fastlstm's GFLOP/s with its share of the sgemm peak (float32)."""
    rows = grid_rows(results, cell)
    peers = [p for p in results["config"]["peers"] if p != "fastlstm"]
    peak = results.get("peak", {})
    header = ["dtype", "threads", "(batch, time, features, units)"]
    for mode in ("fwd", "fwd+bwd"):
        header += [f"fastlstm {mode} ms (spread)"]
        header += [f"{p}/fastlstm {mode}" for p in peers]
        header += [f"{mode} GFLOP/s", f"{mode} % sgemm peak"]
    body = []
    for row in rows:
        cells = [row["dtype"], row["threads"], _shape(row["shape"])]
        for mode in ("fwd", "fwd+bwd"):
            ours = row[mode]["fastlstm"]
            cells.append(f"{_ms(ours['median_s'])} (±{50 * ours['spread']:.0f}%)")
            for p in peers:
                cells.append(_ratio_cell(row, mode, p) if p in row[mode] else "-")
            rate = gflops(row, mode)
            cells.append(f"{rate:.0f}")
            top = peak.get(str(row["threads"]))
            cells.append(f"{100 * rate / top:.0f}%" if top and row["dtype"] == "float32" else "-")
        body.append(cells)
    return _table(header, body)


def peer_times_table(results, cell="lstm"):
    """Milliseconds of every peer on one cell, for readers who want times rather than ratios."""
    peers = results["config"]["peers"]
    header = ["dtype", "threads", "shape"] + [f"{p} {m} ms" for m in ("fwd", "fwd+bwd")
                                              for p in peers]
    body = []
    for row in grid_rows(results, cell):
        cells = [row["dtype"], row["threads"], _shape(row["shape"])]
        for mode in ("fwd", "fwd+bwd"):
            cells += [_ms(row[mode][p]["median_s"]) if p in row[mode] else "-" for p in peers]
        body.append(cells)
    return _table(header, body)


def scaling_table(results):
    scaling = results["scaling"]
    most = scaling["threads"][1]
    body = []
    for row in scaling["rows"]:
        cells = [row["dtype"], _shape(row["shape"])]
        for mode in ("fwd", "fwd+bwd"):
            one, many = row[mode]["1 threads"]["median_s"], row[mode][f"{most} threads"]["median_s"]
            cells += [_ms(one), _ms(many), f"{one / many:.2f}x"]
        body.append(cells)
    header = ["dtype", "shape", "fwd 1 thread ms", f"fwd {most} threads ms", "fwd speedup",
              "fwd+bwd 1 thread ms", f"fwd+bwd {most} threads ms", "fwd+bwd speedup"]
    text = _table(header, body)
    if scaling["sgemm"]:
        text += ("\n\nThe yardstick, timed the same way in this section: SciPy's sgemm "
                 f"(1536^3) ran {thread_speedup(scaling['sgemm'], most):.2f}x faster on "
                 f"{most} threads than on 1.")
    return text


def latency_table(results):
    rows = results.get("latency", [])
    peers = sorted({p for r in rows for p in r["per_step_in_sequence"]},
                   key=results["config"]["peers"].index)
    header = ["shape"] + [f"{p} us/step in sequence" for p in peers] + \
        [f"{p} us per streaming step call" for p in peers]
    body = [[_shape(r["shape"])]
            + [f"{1e6 * r['per_step_in_sequence'][p]:.1f}" if p in r["per_step_in_sequence"]
               else "-" for p in peers]
            + [f"{1e6 * r['streaming_step'][p]:.1f}" if p in r["streaming_step"] else "-"
               for p in peers] for r in rows]
    return _table(header, body)


def sweep_table(results):
    sweep = results.get("sweep")
    if not sweep:
        return ""
    body = [[r["time_steps"], _ms(r["fwd"]), f"{1e6 * r['fwd'] / r['time_steps']:.1f}",
             _ms(r["fwd+bwd"]), f"{1e6 * r['fwd+bwd'] / r['time_steps']:.1f}"]
            for r in sweep["rows"]]
    table = _table(["time steps", "fwd ms", "fwd us/step", "fwd+bwd ms", "fwd+bwd us/step"],
                   body)
    fits = "; ".join(f"{m}: {1e6 * f['slope_s']:.1f} us per step + "
                     f"{1e3 * f['intercept_s']:.2f} ms, R^2 = {f['r2']:.4f}"
                     for m, f in sweep["fit"].items())
    return table + f"\n\nLinear fit, (32, T, 32, 128): {fits}."


def memory_table(results):
    body = []
    for r in results.get("memory", []):
        need = r["activation_bytes"]
        body.append([_shape(r["shape"]), f"{need / 2**20:.2f}",
                     f"{r['held_after_forward_bytes'] / 2**20:.2f}",
                     f"{r['held_after_forward_bytes'] / need:.2f}x",
                     f"{r['training_peak_bytes'] / 2**20:.2f}",
                     f"{r['training_peak_bytes'] / (need + r['gradient_bytes']):.2f}x"])
    header = ["shape", "activations backward needs MiB", "held after forward MiB",
              "held / needed", "peak fwd+bwd MiB", "peak / (needed + gradients)"]
    return _table(header, body)


def classic_table(results):
    """Each framework's fit epoch and predict: time, ratio to fastlstm, and
    the GFLOP/s of the LSTM layers' products with its share of the sgemm peak
    at the section's thread count (results without the FLOPs show time and
    ratio only)."""
    classic = results.get("classic")
    if not classic:
        return ""
    peak = results.get("peak", {}).get(str(classic["threads"]))
    header = [f"framework ({classic['threads']} threads)"]
    # (section key, column title, scale of seconds to the unit in the title, decimals)
    columns = [("fit_epoch", f"fit epoch ({classic['train_windows']} windows) s", 1, 3),
               ("predict", f"predict ({classic['predict_windows']} windows) ms", 1e3, 1)]
    for label, title, _, _ in columns:
        header += [title, "ratio"]
        if f"{label}_flops" in classic:
            header += ["GFLOP/s"] + (["% sgemm peak"] if peak else [])
    body = []
    for name in classic["fit_epoch"]:
        cells = [name]
        for label, _, scale, decimals in columns:
            seconds = classic[label][name]["median_s"]
            cells += [f"{scale * seconds:.{decimals}f}",
                      f"{seconds / classic[label]['fastlstm']['median_s']:.2f}x"]
            if f"{label}_flops" in classic:
                rate = classic[f"{label}_flops"] / seconds / 1e9
                cells += [f"{rate:.0f}"] + ([f"{100 * rate / peak:.0f}%"] if peak else [])
        body.append(cells)
    needs = _classic_goal_needs(classic, peak)
    return _table(header, body) + ("\n\n" + "\n".join(needs) if needs else "")


def _classic_goal_needs(classic, peak):
    """One line per classic-network goal: the GFLOP/s fastlstm would need to meet
    it in this run, as a share of the sgemm peak (none without FLOPs or peak)."""
    lines = []
    for label, goals in (("fit_epoch", CLASSIC_FIT), ("predict", CLASSIC_PREDICT)):
        flops = classic.get(f"{label}_flops")
        for peer, goal in goals.items():
            if flops is None or not peak or peer not in classic[label]:
                continue
            needed = goal * flops / classic[label][peer]["median_s"] / 1e9
            lines.append(f"- {label.replace('_', ' ')} {goal:g}x faster than {peer} would need "
                         f"{needed:.0f} GFLOP/s, "
                         f"{100 * needed / peak:.0f}% of the {classic['threads']}-thread "
                         "sgemm peak.")
    return lines


def _check(name, values, goal, better="higher"):
    """A goal's row: the worst measured value against the required one."""
    if not values:
        return [name, "not measured", "-", "-"]
    worst_where, worst = min(values, key=lambda v: v[1]) if better == "higher" else \
        max(values, key=lambda v: v[1])
    return [name, f"{worst:.2f} at {worst_where}", _required(goal, better),
            _verdict(worst, goal, better)]


def _required(goal, better):
    return f"{'>=' if better == 'higher' else '<='} {goal}"


def _verdict(value, goal, better):
    met = value >= goal if better == "higher" else value <= goal
    return "met" if met else "NOT met"


def _ratios(grid, dtype, mode, peer, where=lambda row: True, invert=False):
    """(where, value) of every grid row of `dtype` that timed `peer` in `mode`:
    the peer's time / fastlstm's, or (invert) fastlstm's / the peer's."""
    out = []
    for row in grid:
        if row["dtype"] == dtype and peer in row[mode] and where(row):
            value = ratio(row, mode, peer)
            label = f"{row['threads']}t {_shape(row['shape'])}"
            out.append((label, 1 / value if invert else value))
    return out


def _peak_fractions(grid, peak, mode, min_units=512):
    """(where, fastlstm's GFLOP/s / the sgemm peak) of the float32 rows of >= min_units units."""
    return [(f"{r['threads']}t {_shape(r['shape'])}", gflops(r, mode) / peak[str(r["threads"])])
            for r in grid if r["dtype"] == "float32" and r["shape"][3] >= min_units
            and str(r["threads"]) in peak]


def _lstm_grid_goals(results):
    grid, peak = grid_rows(results, "lstm"), results.get("peak", {})
    rows = [
        _check("inference time / ONNX Runtime's, every shape",
               _ratios(grid, "float32", "fwd", "onnxruntime", invert=True), INFERENCE_VS_ONNX,
               "lower"),
        _check("inference speedup over ONNX Runtime, units <= 128",
               _ratios(grid, "float32", "fwd", "onnxruntime", lambda r: r["shape"][3] <= 128),
               1.0),
        _check("training speedup over PyTorch, every shape",
               _ratios(grid, "float32", "fwd+bwd", "torch"), TRAINING_VS_TORCH),
        _check("float64 training speedup over PyTorch float64",
               _ratios(grid, "float64", "fwd+bwd", "torch"), TRAINING_VS_TORCH_F64)]
    for mode in ("fwd", "fwd+bwd"):
        rows.append(_check(f"{mode} fraction of sgemm peak, units >= 512",
                           _peak_fractions(grid, peak, mode), SGEMM_FRACTION))
    return rows


def _lstm_section_goals(results):
    """The goals of the sections that measure the LSTM alone."""
    rows = []
    speedups = []
    scaling = results.get("scaling", {"rows": []})
    for row in scaling["rows"]:
        for mode in ("fwd", "fwd+bwd"):
            speedups.append((f"{mode} {_shape(row['shape'])}",
                             thread_speedup(row[mode], scaling["threads"][1])))
    rows.append(_check("thread speedup (most threads vs 1), batch >= 32", speedups,
                       THREAD_SPEEDUP))
    classic = results.get("classic")
    if classic:
        for label, goals in (("fit_epoch", CLASSIC_FIT), ("predict", CLASSIC_PREDICT)):
            ours = classic[label]["fastlstm"]["median_s"]
            for peer, goal in goals.items():
                if peer in classic[label]:
                    rows.append(_check(f"classic {label} speedup over {peer}",
                                       [("GOOG", classic[label][peer]["median_s"] / ours)], goal))
    memory = [(_shape(r["shape"]), r["held_after_forward_bytes"] / r["activation_bytes"])
              for r in results.get("memory", [])]
    rows.append(_check("training memory held / activations backward needs", memory,
                       MEMORY_OVER_ACTIVATIONS, "lower"))
    return rows


def _cell_goal_values(goal, results):
    """(where, value) of every grid row the goal applies to, in the goal's own terms."""
    return _ratios(results.get("grid", []), "float32", goal.mode, goal.peer, goal.applies,
                   invert=goal.better == "lower")


def _cell_goals(results, cell):
    """The goals of one cell other than the LSTM: against its peers, and its
    forward's share of the sgemm peak from 512 units up."""
    rows = [_check(goal.name, _cell_goal_values(goal, results), goal.required, goal.better)
            for goal in CELL_GOALS if goal.cell == cell]
    fractions = _peak_fractions(grid_rows(results, cell), results.get("peak", {}), "fwd")
    rows.append(_check(f"{CELLS[cell].title} fwd fraction of sgemm peak, units >= 512",
                       fractions, SGEMM_FRACTION))
    return rows


def goals_table(results):
    """The performance goals against this run: each row name, worst value, goal,
    verdict. The LSTM's rows when the run measured the LSTM; then each other
    cell's."""
    cells = run_cells(results)
    rows = []
    if "lstm" in cells:
        rows += _lstm_grid_goals(results) + _lstm_section_goals(results)
    for cell in cells:
        if cell != "lstm":
            rows += _cell_goals(results, cell)
    return _table(["goal", "worst measured", "required", "verdict"], rows)


def _goal_cell_value(row, goal):
    """'1.03x (1.02-1.04)': a cell goal's measured value at one row, with its
    95% interval, in the goal's terms."""
    if goal.better == "higher":
        return _ratio_cell(row, goal.mode, goal.peer)
    value = 1 / ratio(row, goal.mode, goal.peer)
    paired = row[goal.mode][goal.peer].get("paired_ratio")
    if paired is None:
        return f"{value:.2f}x"
    return f"{value:.2f}x ({1 / paired['high']:.2f}-{1 / paired['low']:.2f})"


def cell_goals_table(results):
    """Every shape of every cell goal: measured value, interval and verdict
    (the verdict reads the median, as the goals table does)."""
    body = []
    for goal in CELL_GOALS:
        for row in filter(goal.applies, results.get("grid", [])):
            value = ratio(row, goal.mode, goal.peer)
            value = 1 / value if goal.better == "lower" else value
            body.append([goal.name, _shape(row["shape"]), _goal_cell_value(row, goal),
                         _required(goal.required, goal.better),
                         _verdict(value, goal.required, goal.better)])
    return _table(["goal", "(batch, time, features, units)", "measured (95% interval)",
                   "required", "verdict"], body)


def small_shapes_table(results):
    """float32 inference against PyTorch at the grid's four small shapes.

    The verdict reads the interval, not the median alone: "faster" only when
    the whole 95% interval of the paired ratio is above 1.
    """
    body = []
    for row in grid_rows(results, "lstm"):
        if (row["dtype"] != "float32" or tuple(row["shape"]) not in SMALL_SHAPES
                or "torch" not in row["fwd"]):
            continue
        paired = row["fwd"]["torch"].get("paired_ratio")
        if paired is None:
            verdict = "no interval"
        elif paired["low"] > 1:
            verdict = "faster"
        elif paired["high"] < 1:
            verdict = "slower"
        else:
            verdict = "level"
        body.append([row["threads"], _shape(row["shape"]), row["fwd"]["fastlstm"]["n"],
                     _ratio_cell(row, "fwd", "torch"), verdict])
    return _table(["threads", "(batch, time, features, units)", "rounds",
                   "PyTorch / fastlstm inference (95% interval)", "verdict"], body)


# Goals of the sequence sections: (key of a row's ratio, required, better).
LENGTHS_OVER_PADDED_MAX = 0.6
TORCH_PACKED_OVER_LENGTHS_MIN = 3.0
ONNX_OVER_STREAM_MIN = 1 / 0.7
TORCH_OVER_STREAM_MIN = 5.0
BIDIRECTIONAL_SPEEDUP_MIN = 1.7


def _ratio_text(ratio, required, better):
    """'0.55 (0.53-0.57) met' style: the paired ratio, its interval and the verdict."""
    if ratio is None:
        return "-"
    value = ratio["median"]
    met = value <= required if better == "lower" else value >= required
    return (f"{value:.2f} ({ratio['low']:.2f}-{ratio['high']:.2f}) "
            f"{'met' if met else 'not met'}")


def lengths_table(results):
    rows = results.get("lengths", [])
    header = ["cell", "mode", "shape", "mean length", "padded ms", "lengths ms",
              "torch packed ms",
              f"lengths / padded (goal <= {LENGTHS_OVER_PADDED_MAX})",
              f"torch packed / lengths (goal >= {TORCH_PACKED_OVER_LENGTHS_MIN:g})"]
    body = [[r["cell"], r["mode"], _shape(r["shape"]), f"{r['mean_length']:.1f}",
             _ms(r["median_s"]["fastlstm padded"]), _ms(r["median_s"]["fastlstm lengths"]),
             _ms(r["median_s"]["torch packed"]) if "torch packed" in r["median_s"] else "-",
             _ratio_text(r["lengths_over_padded"], LENGTHS_OVER_PADDED_MAX, "lower"),
             _ratio_text(r.get("torch_over_lengths"), TORCH_PACKED_OVER_LENGTHS_MIN,
                         "higher")] for r in rows]
    return _table(header, body)


def streaming_table(results):
    rows = results.get("streaming", [])
    header = ["model", "threads", "fastlstm us/step", "onnxruntime us/step", "torch us/step",
              f"onnxruntime / fastlstm (goal >= {ONNX_OVER_STREAM_MIN:.2f})",
              f"torch / fastlstm (goal >= {TORCH_OVER_STREAM_MIN:g})"]

    def us(row, peer):
        return f"{1e6 * row['median_s'][peer]:.1f}" if peer in row["median_s"] else "-"

    body = [[r["model"] if r["units"] is None else f"{r['model'].upper()} {r['units']} units",
             str(r["threads"]), us(r, "fastlstm"), us(r, "onnxruntime"), us(r, "torch"),
             _ratio_text(r.get("onnxruntime_over_fastlstm"), ONNX_OVER_STREAM_MIN, "higher"),
             _ratio_text(r.get("torch_over_fastlstm"), TORCH_OVER_STREAM_MIN, "higher")]
            for r in rows]
    return _table(header, body)


def bidirectional_table(results):
    rows = results.get("bidirectional", [])
    header = ["cell", "shape", "1 thread ms", "N threads ms",
              f"speedup (goal >= {BIDIRECTIONAL_SPEEDUP_MIN})",
              "sgemm 512^3 speedup, same rounds"]
    body = []
    for r in rows:
        most = r["median_s"][f"{r['threads']} threads"]
        body.append([r["cell"], _shape(r["shape"]), _ms(r["median_s"]["1 thread"]),
                     f"{_ms(most)} ({r['threads']})",
                     _ratio_text(r["speedup"], BIDIRECTIONAL_SPEEDUP_MIN, "higher"),
                     f"{r['sgemm_speedup']['median']:.2f} ({r['sgemm_speedup']['low']:.2f}-"
                     f"{r['sgemm_speedup']['high']:.2f})"])
    return _table(header, body)


def _grid_tables(results):
    """(title, table builder) of the grid's tables, in report order: the
    goals, then each cell's ratios and milliseconds (the LSTM's titled
    "Grid")."""
    cells = run_cells(results)
    tables = [("Performance goals", goals_table)]
    if any(goal.cell in cells for goal in CELL_GOALS):
        tables.append(("Cell goals, shape by shape", cell_goals_table))
    if "lstm" in cells:
        tables.append(("Inference against PyTorch at the small shapes", small_shapes_table))
    for cell in cells:
        prefix = "Grid" if cell == "lstm" else f"{CELLS[cell].title} grid"
        tables += [(f"{prefix}: ratios and GFLOP/s", partial(grid_table, cell=cell)),
                   (f"{prefix}: milliseconds", partial(peer_times_table, cell=cell))]
    return tables


# (suite section whose results the table needs, title, table builder), in report
# order, after the grid's (see _grid_tables).
REPORT_TABLES = [
    ("scaling", "Thread scaling", scaling_table),
    ("latency", "Batch 1 latency", latency_table),
    ("sweep", "Time-length sweep", sweep_table),
    ("memory", "Training memory", memory_table),
    ("classic", "Classic stacked network", classic_table),
    ("lengths", "Variable lengths", lengths_table),
    ("streaming", "Streaming, one step per call at batch 1", streaming_table),
    ("bidirectional", "Bidirectional at batch 1", bidirectional_table),
]


def markdown(results, command):
    """The whole report as Markdown."""
    parts = [f"Machine: {machine()}", f"Command: `{command}`",
             f"Median of {results['config']['repeats']} interleaved rounds after a warm-up "
             "round; in each round a callable's sample is the time per call of as many "
             f"back-to-back calls as fill {MIN_SAMPLE_SECONDS * 1e3:.0f} ms (one if a call "
             "takes longer), right after an untimed call of the same callable; ratio = "
             "peer time / fastlstm time (above 1: fastlstm is faster), the median of the "
             "per-round ratios, with its 95% interval in parentheses; ± is half the "
             "interquartile range, relative to the median."]
    if "peak" in results:
        parts.append("sgemm peak (SciPy's OpenBLAS, 1536^3, best of 5 calls at the start of "
                     "the run and, when other sections ran, 5 more at its end): " + ", ".join(
            f"{n} thread(s) {v:.0f} GFLOP/s" for n, v in results["peak"].items()))
    tables = _grid_tables(results) if "grid" in results else []
    tables += [(title, make) for key, title, make in REPORT_TABLES if key in results]
    parts += [f"### {title}\n\n{make(results)}" for title, make in tables]
    return "\n\n".join(parts) + "\n"


def plots(results, directory):
    """PNG bar charts of time and GFLOP/s per shape and peer, one file per cell,
    dtype and thread count; returns the paths written.

    Needs matplotlib (the ``plot`` extra); raises ImportError without it.
    """
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    # One color per peer in every panel, also where a peer lacks a mode.
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {peer: cycle[i % len(cycle)] for i, peer in enumerate(results["config"]["peers"])}
    paths = []
    for cell in run_cells(results):
        cell_rows = grid_rows(results, cell)
        for dtype, threads in sorted({(r["dtype"], r["threads"]) for r in cell_rows}):
            rows = [r for r in cell_rows if r["dtype"] == dtype and r["threads"] == threads]
            fig, axes = plt.subplots(2, 2, figsize=(13, 8))
            title = f"{dtype}, {threads} thread(s)"
            if cell != "lstm":
                title = f"{CELLS[cell].title} {title}"
            for column, mode in enumerate(("fwd", "fwd+bwd")):
                _plot_mode(axes[:, column], rows, mode, results["config"]["peers"], colors,
                           f"{mode}, {title}")
            fig.tight_layout()
            name = "" if cell == "lstm" else f"{cell}_"
            path = os.path.join(directory, f"bench_{name}{dtype}_{threads}threads.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def _plot_mode(axes, rows, mode, all_peers, colors, title):
    """One mode's two panels: milliseconds (log) above, GFLOP/s below."""
    peers = [p for p in all_peers if any(p in r[mode] for r in rows)]
    width = 0.8 / max(len(peers), 1)
    for k, peer in enumerate(peers):
        xs = [i + k * width for i, r in enumerate(rows) if peer in r[mode]]
        ms = [1e3 * r[mode][peer]["median_s"] for r in rows if peer in r[mode]]
        rate = [gflops(r, mode, peer) for r in rows if peer in r[mode]]
        axes[0].bar(xs, ms, width, label=peer, color=colors[peer])
        axes[1].bar(xs, rate, width, label=peer, color=colors[peer])
    for ax, label in ((axes[0], "ms (log)"), (axes[1], "GFLOP/s")):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
        ax.set_xticklabels([_shape(r["shape"]) for r in rows], rotation=30, fontsize=7)
        ax.set_ylabel(label)
        ax.set_title(title)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)

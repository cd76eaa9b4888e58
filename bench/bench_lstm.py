"""Time fastlstm's LSTM against the NumPy reference, PyTorch and ONNX Runtime.

For each (batch, time, features, units) and thread count, every
implementation gets the same weights and inputs, outputs are compared (a
fast wrong answer does not count), and the calls are interleaved in one
process (A B C A B C ...) after a warm-up, so the machine's noise hits all
of them alike. Reported: median milliseconds and the ratio peer / fastlstm
(above 1: fastlstm is faster).

    python bench/bench_lstm.py [--threads 1 2] [--repeats 15] [--markdown FILE]

PyTorch (``pip install torch==2.13.0``, the CPU build) and ONNX Runtime
(``pip install onnx onnxruntime``, inference only) are optional; a missing
peer's columns are skipped with a message.

Fairness of interleaving: after a call, a library's idle threads keep
spinning for a while (OpenBLAS about 0.1 s by default, OpenMP runtimes a few
ms, ONNX Runtime's pool by design) and would steal the cores from whichever
library is timed next. So OpenBLAS' spin is cut to its minimum
(OPENBLAS_THREAD_TIMEOUT=4, set before NumPy loads), ONNX Runtime keeps its
spinning (its per-step parallel loops need it) but gets time to go idle
after each of its calls, and every timed call starts after a short pause;
no library pays for another's spinning.
"""
import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402  (after the environment is set)
import platform
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastlstm  # noqa: E402
from fastlstm import functional, reference  # noqa: E402

PAUSE_SECONDS = 0.005  # before each timed call, see the module docstring
# ONNX Runtime's threads spin after each run (it relies on that for its
# per-step parallel loops); after timing it, wait until they have gone idle.
ONNX_SETTLE_SECONDS = 0.05
SHAPES = [(64, 60, 1, 50), (64, 60, 50, 100), (1, 100, 128, 128), (32, 100, 32, 128),
          (64, 50, 256, 256), (32, 50, 512, 512)]

try:
    import torch
except ImportError:  # optional peer
    torch = None

try:
    import onnx
    import onnxruntime
except ImportError:  # optional peer (inference only)
    onnx = onnxruntime = None


class Problem:
    """One shape's inputs in Keras layout, float32."""

    def __init__(self, batch, time_steps, features, units, seed=0):
        rng = np.random.default_rng(seed)
        self.shape = (batch, time_steps, features, units)
        self.x = rng.standard_normal((batch, time_steps, features)).astype(np.float32)
        self.kernel = (rng.standard_normal((features, 4 * units)) / np.sqrt(features)).astype(np.float32)
        self.recurrent_kernel = (rng.standard_normal((units, 4 * units)) / np.sqrt(units)).astype(np.float32)
        self.bias = (0.1 * rng.standard_normal(4 * units)).astype(np.float32)
        self.dy = rng.standard_normal((batch, time_steps, units)).astype(np.float32)

    @property
    def weights(self):
        return self.x, self.kernel, self.recurrent_kernel, self.bias

    def flops(self):
        batch, time_steps, features, units = self.shape
        return 2 * time_steps * batch * 4 * units * (features + units)


def numpy_impl(module, problem):
    """forward and forward+backward closures over fastlstm.functional or .reference."""
    def forward():
        return module.lstm_forward(*problem.weights)[0]

    def train_step():
        y, _, _, cache = module.lstm_forward(*problem.weights, return_cache=True)
        module.lstm_backward(cache, problem.dy)
        return y

    return forward, train_step


def torch_impl(problem):
    """PyTorch nn.LSTM with the same weights (its gate order i, f, g, o is Keras' i, f, c, o)."""
    batch, time_steps, features, units = problem.shape
    lstm = torch.nn.LSTM(features, units, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(problem.kernel.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(problem.recurrent_kernel.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(problem.bias))
        lstm.bias_hh_l0.zero_()
    x = torch.from_numpy(problem.x)
    dy = torch.from_numpy(problem.dy)

    def forward():
        with torch.no_grad():
            return lstm(x)[0].numpy()

    def train_step():
        xg = x.clone().requires_grad_(True)
        y = lstm(xg)[0]
        y.backward(dy)
        return y.detach().numpy()

    return forward, train_step


def onnx_impl(problem, threads):
    """ONNX Runtime's LSTM operator with the same weights (inference only).

    ONNX orders the gates i, o, f, c and stores W (4H, I), R (4H, H) and
    B = [W bias, R bias]. ONNX Runtime's CPU LSTM takes time-major input
    only, so x is transposed once, outside the timed call, and the output
    is returned as a transposed view.
    """
    from onnx import TensorProto, helper, numpy_helper

    batch, time_steps, features, units = problem.shape

    def onnx_gates(keras_matrix):  # (rows, 4H) in i, f, c, o -> (4H, rows) in i, o, f, c
        i, f, c, o = np.split(keras_matrix, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1).T

    weights = {"W": onnx_gates(problem.kernel)[None],
               "R": onnx_gates(problem.recurrent_kernel)[None],
               "B": np.concatenate([onnx_gates(problem.bias[None])[:, 0],
                                    np.zeros(4 * units, np.float32)])[None]}
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], hidden_size=units)
    graph = helper.make_graph(
        [node], "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [time_steps, batch, features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [time_steps, 1, batch, units])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(v, np.float32), k)
                     for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])

    x_time_major = np.ascontiguousarray(problem.x.transpose(1, 0, 2))

    def forward():
        return session.run(None, {"X": x_time_major})[0][:, 0].transpose(1, 0, 2)

    forward.settle_seconds = ONNX_SETTLE_SECONDS
    return forward, None


def interleaved_medians(functions, repeats):
    """Median seconds of each function, calls interleaved round by round."""
    for fn in functions.values():
        fn()  # warm-up
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            time.sleep(PAUSE_SECONDS)
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
            time.sleep(getattr(fn, "settle_seconds", 0.0))
    return {name: statistics.median(s) for name, s in samples.items()}


def check_same_answer(outputs, tolerance=1e-4):
    expected = outputs["fastlstm"]
    for name, value in outputs.items():
        error = np.max(np.abs(value - expected)) / max(np.max(np.abs(expected)), 1e-30)
        if error > tolerance:
            raise AssertionError(f"{name} disagrees with fastlstm: relative error {error:.2e}")


def bench_shape(problem, threads, repeats, with_reference):
    impls = {"fastlstm": numpy_impl(functional, problem)}
    if torch is not None:
        impls["torch"] = torch_impl(problem)
    if onnxruntime is not None:
        impls["onnxruntime"] = onnx_impl(problem, threads)
    if with_reference:
        impls["reference"] = numpy_impl(reference, problem)
    check_same_answer({name: fwd() for name, (fwd, _) in impls.items()})
    row = {"threads": threads, "shape": problem.shape}
    for mode, index in (("fwd", 0), ("fwd+bwd", 1)):
        medians = interleaved_medians({n: f[index] for n, f in impls.items()
                                       if f[index] is not None}, repeats)
        for name, seconds in medians.items():
            row[f"{name} {mode} ms"] = 1e3 * seconds
        flops = problem.flops() * (1 if index == 0 else 3)
        row[f"fastlstm {mode} GFLOP/s"] = flops / medians["fastlstm"] / 1e9
    return row


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = fastlstm.build_info()
    torch_version = torch.__version__ if torch is not None else "not installed"
    return (f"{model}, {info['max_threads']} usable cores; Python {platform.python_version()}, "
            f"NumPy {info['numpy']}, SciPy {info['scipy']} ({info['blas'].get('configuration')}); "
            f"fastlstm {info['version']} (simd={info['simd']}, openmp={info['openmp']}); "
            f"PyTorch {torch_version}")


def markdown_table(rows, peers):
    header = ["threads", "(batch, time, features, units)"]
    for mode in ("fwd", "fwd+bwd"):
        header.append(f"fastlstm {mode} ms")
        for peer in peers:
            header += [f"{peer} {mode} ms", f"{peer}/fastlstm {mode}"]
        header.append(f"fastlstm {mode} GFLOP/s")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(row["threads"]), str(row["shape"])]
        for mode in ("fwd", "fwd+bwd"):
            ours = row[f"fastlstm {mode} ms"]
            cells.append(f"{ours:.2f}")
            for peer in peers:
                theirs = row.get(f"{peer} {mode} ms")
                cells += ["-", "-"] if theirs is None else [f"{theirs:.2f}", f"{theirs / ours:.2f}x"]
            cells.append(f"{row[f'fastlstm {mode} GFLOP/s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the (slow) NumPy reference")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table here")
    args = parser.parse_args(argv)

    if torch is None:
        print("PyTorch is not installed (pip install torch==2.13.0): its columns are skipped.")
    if onnxruntime is None:
        print("ONNX Runtime is not installed (pip install onnx onnxruntime): its columns are "
              "skipped.")
    peers = ((["torch"] if torch is not None else [])
             + (["onnxruntime"] if onnxruntime is not None else [])
             + ([] if args.no_reference else ["reference"]))
    rows = []
    for threads in args.threads:
        if torch is not None:
            torch.set_num_threads(threads)
        with fastlstm.threads(threads), threadpool_limits(threads, user_api="blas"):
            for shape in SHAPES:
                row = bench_shape(Problem(*shape), threads, args.repeats, not args.no_reference)
                rows.append(row)
                print(markdown_table([row], peers).splitlines()[-1], flush=True)

    table = markdown_table(rows, peers)
    print("\n" + machine_description() + "\n\n" + table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"Machine: {machine_description()}\n\n"
                    f"Command: `python bench/bench_lstm.py {' '.join(argv or sys.argv[1:])}`\n\n"
                    f"float32, median of {args.repeats} interleaved runs; ratio = peer time / "
                    "fastlstm time (above 1: fastlstm is faster).\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

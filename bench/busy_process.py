"""fastlstm's threads in a busy process and beside a busy process.

Measures, for a few shapes, the median time of a float32 forward called
15 times 20 ms apart (a service's pace: the OpenMP workers go idle between
calls), with 1 thread and with the default thread count:

- alone: a fresh process that imported only fastlstm;
- beside a busy process: another process spinning on one core meanwhile;
- after PyTorch: a process that imported torch and ran an nn.LSTM with its
  own threads before (its OpenMP pool idle since);
- after ONNX Runtime: likewise with an ONNX Runtime session (spinning
  allowed, as its default).

Each scenario runs in its own interpreter; the scenarios alternate for
--rounds rounds and every ratio is a median over them. The goals: the
default thread count is never slower than 1.1x fastlstm's own 1-thread
time beside a busy process, and its time after PyTorch or ONNX Runtime is
within 1.1x of its time alone.

    python bench/busy_process.py [--rounds 5] [--json busy.json]
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

SHAPES = [(64, 60, 1, 50), (1, 100, 128, 128), (8, 50, 256, 512), (64, 50, 256, 256)]
SCENARIOS = ["alone", "busy", "torch", "onnxruntime"]

MEASURE = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    scenario, shapes = sys.argv[1], json.loads(sys.argv[2])

    def prepare_torch():
        import torch
        lstm = torch.nn.LSTM(32, 64, batch_first=True)
        with torch.no_grad():
            for _ in range(3):
                lstm(torch.ones(16, 20, 32))

    def prepare_onnxruntime():
        import onnx, onnxruntime
        from onnx import TensorProto, helper
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 64]),
                          helper.make_tensor_value_info("b", TensorProto.FLOAT, [64, 64])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [64, 64])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = onnxruntime.InferenceSession(model.SerializeToString())
        for _ in range(3):
            session.run(None, {"a": np.ones((64, 64), np.float32),
                               "b": np.ones((64, 64), np.float32)})
        return session  # kept alive, as a service would

    keep = {"torch": prepare_torch, "onnxruntime": prepare_onnxruntime}.get(
        scenario, lambda: None)()
    import fastlstm
    from fastlstm import functional

    def median_ms(args, n_threads):
        times = []
        with fastlstm.threads(n_threads):
            functional.lstm_forward(*args)
            for _ in range(15):
                time.sleep(0.02)
                start = time.perf_counter()
                functional.lstm_forward(*args)
                times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))

    result = {}
    for batch, steps, features, units in shapes:
        rng = np.random.default_rng(0)
        args = (rng.standard_normal((batch, steps, features)).astype(np.float32),
                (0.1 * rng.standard_normal((features, 4 * units))).astype(np.float32),
                (0.1 * rng.standard_normal((units, 4 * units))).astype(np.float32),
                np.zeros(4 * units, np.float32))
        key = str((batch, steps, features, units))
        result[key] = {"1": median_ms(args, 1),
                       "default": median_ms(args, fastlstm.get_num_threads())}
    print(json.dumps(result))
""")


def measure(scenario, shapes):
    """{shape: {"1": ms, "default": ms}} from a fresh interpreter."""
    burner = None
    if scenario == "busy":
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)
    try:
        out = subprocess.run([sys.executable, "-c", MEASURE, scenario, json.dumps(shapes)],
                             capture_output=True, text=True, check=True, timeout=600)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    return json.loads(out.stdout)


def available(scenario):
    module = {"torch": "torch", "onnxruntime": "onnxruntime"}.get(scenario)
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the raw medians here")
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if available(s)]
    runs = {s: [] for s in scenarios}
    for _ in range(args.rounds):
        for scenario in scenarios:
            runs[scenario].append(measure(scenario, SHAPES))

    def median(scenario, shape, threads):
        return float(np.median([r[str(shape)][threads] for r in runs[scenario]]))

    print(f"fastlstm forward, float32, median of 15 calls 20 ms apart, median of "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs")
    print("| shape | alone 1 thread ms | alone default ms | busy: default / 1 thread |"
          + "".join(f" after {s}: default / alone |" for s in scenarios if s in
                    ("torch", "onnxruntime")))
    print("|" + " --- |" * (4 + sum(s in ("torch", "onnxruntime") for s in scenarios)))
    for shape in SHAPES:
        row = [str(shape), f"{median('alone', shape, '1'):.2f}",
               f"{median('alone', shape, 'default'):.2f}",
               f"{median('busy', shape, 'default') / median('busy', shape, '1'):.2f}x"]
        row += [f"{median(s, shape, 'default') / median('alone', shape, 'default'):.2f}x"
                for s in scenarios if s in ("torch", "onnxruntime")]
        print("| " + " | ".join(row) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shapes": [list(s) for s in SHAPES], "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()

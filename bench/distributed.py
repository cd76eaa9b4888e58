"""Data-parallel training's speed on this machine, and a projection to N machines.

    python bench/distributed.py [--rounds 3] [--markdown FILE] [--json FILE]

Needs the mpi extra (mpi4py, mpich). Measures, alternating the
configurations round by round (the machine is shared and noisy):

- fit on 1 process x 2 threads against ``mpiexec -n 2`` x 1 thread, for
  one epoch of the classic network (fastlstm.bench.classic: 1670 windows of
  60 steps, batch 64) and for epochs of an LSTM layer of (batch, time,
  features, units) = (64, 50, 256, 256) (LSTM(256) -> Dense(1), 512
  samples: 8 steps);
- each distributed step's exchange: waiting for the slower process (a
  barrier), gathering the outputs, and gathering and adding the blocks'
  weight gradients (DataParallel.stats), with the bytes each process sends;
- plain fit's cost of the sample blocks: a training step with them against
  one without (the code path before them), paired in one process;
- for the projection: a process' step on its share of a batch (B / N
  samples, no exchange) on this machine's 2 threads, and the in-order sum
  of every block's gradients.

The projection assumes N machines like this one, one process each, and a
ring Allgatherv: (N - 1) messages of latency a, and (N - 1) / N of the
gathered bytes at bandwidth b per process, for each of the two exchanges.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import fastlstm  # noqa: E402
from fastlstm import _sample_blocks  # noqa: E402
from fastlstm._sample_blocks import StepBlocks, add_in_order, sample_blocks  # noqa: E402
from fastlstm.layers import LSTM, Dense  # noqa: E402

CASES = ("classic", "layer")
LAYER = (64, 50, 256, 256)  # batch, time, features, units
LAYER_SAMPLES = 512
NETWORKS = {"10 GbE": (50e-6, 1.25e9), "100 Gb InfiniBand": (2e-6, 12e9)}
MACHINES = (1, 2, 4, 8)


# ------------------------------------------------------------ the problems

def problem(case):
    """(model, x, y, batch size, epochs timed) of a case, the model seeded."""
    if case == "classic":
        from fastlstm.bench import classic
        from fastlstm.forecaster import classic_model

        x, y, _ = classic.goog_windows()
        fastlstm.set_random_seed(0)
        model = classic_model(classic.WINDOW, units=classic.UNITS)
        return model, x, y, classic.BATCH, 1
    batch, time_steps, features, units = LAYER
    rng = np.random.default_rng(0)
    x = rng.standard_normal((LAYER_SAMPLES, time_steps, features)).astype(np.float32)
    y = rng.standard_normal((LAYER_SAMPLES, 1)).astype(np.float32)
    fastlstm.set_random_seed(0)
    model = fastlstm.Sequential([LSTM(units, input_shape=(time_steps, features)), Dense(1)])
    model.compile("rmsprop", "mse")
    return model, x, y, batch, 1


def gradient_floats(model):
    return int(sum(w.size for w in model.weights))


# ------------------------------------------------- one configuration's run

def worker(case, processes, rounds_out):
    """Time warm-up + 3 epochs; process 0 writes the timings to rounds_out."""
    model, x, y, batch, epochs = problem(case)
    distributed = None
    if processes > 1:
        from fastlstm.distributed import DataParallel

        class TimedDataParallel(DataParallel):
            """DataParallel that times, apart, the wait for the slower process."""

            wait = 0.0

            def _waited(self):
                start = time.perf_counter()
                self.comm.Barrier()
                self.wait += time.perf_counter() - start

            def gather(self, output, mask, blocks):
                self._waited()
                return super().gather(output, mask, blocks)

            def combine(self, grads, blocks):
                self._waited()
                return super().combine(grads, blocks)

        distributed = TimedDataParallel(threads=1)
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0, distributed=distributed)
    if distributed is not None:
        distributed.stats.update(gather_seconds=0.0, combine_seconds=0.0, sent_bytes=0,
                                 steps=0)
        distributed.wait = 0.0
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, shuffle=True,
                  distributed=distributed)
        times.append(time.perf_counter() - start)
    if distributed is None or distributed.rank == 0:
        result = {"epoch_seconds": times, "steps_per_epoch": -(-len(x) // batch)}
        if distributed is not None:
            result.update(distributed.stats, wait_seconds=distributed.wait)
        with open(rounds_out, "w") as f:
            json.dump(result, f)


def run_configuration(case, processes, directory):
    out = os.path.join(directory, f"{case}-{processes}.json")
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_THREAD_TIMEOUT="4")
    command = [sys.executable, os.path.abspath(__file__), "--worker", case,
               "--processes", str(processes), "--out", out]
    if processes > 1:
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [mpiexec, "-n", str(processes)] + command
        env["OMP_NUM_THREADS"] = "1"
    else:
        env["OMP_NUM_THREADS"] = "2"
    subprocess.run(command, check=True, env=env, timeout=1800)
    with open(out) as f:
        return json.load(f)


# ------------------------------------------------ in one process: the parts

class LocalShare:
    """fit's runner for one process' share of a step with no exchange: the
    others' outputs are zeros, and the in-order sum covers every block (the
    others' gradients zeros), as a process of a distributed fit adds them."""

    def __init__(self, n_blocks):
        self.n_blocks = n_blocks

    def gather(self, output, mask, blocks):
        whole = np.zeros((blocks.batch,) + output.shape[1:], output.dtype)
        whole[blocks.rows] = output
        return whole, mask

    def combine(self, grads, blocks):
        sizes = [int(np.prod(g.shape[1:])) for g in grads]
        everything = np.zeros((self.n_blocks, sum(sizes)), np.float32)
        offset = 0
        for grad, size in zip(grads, sizes):
            everything[blocks.first:blocks.last, offset:offset + size] = \
                grad.reshape(len(grad), size)
            offset += size
        total = add_in_order(everything)
        out, offset = [], 0
        for grad, size in zip(grads, sizes):
            out.append(total[offset:offset + size].reshape(grad.shape[1:]))
            offset += size
        return out


def median_seconds(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def share_steps(case, repeats):
    """Seconds of a process' step on 1/N of a batch (2 threads, no
    exchange), for N in MACHINES; and of the in-order sum of every block."""
    model, x, y, batch, _ = problem(case)
    model.build(x.shape[1:])
    bounds = sample_blocks(batch, x.shape[1], model._largest_layer_bytes())
    n_blocks = len(bounds) - 1
    runner = LocalShare(n_blocks)
    steps = {}
    with fastlstm.threads(2):
        for machines in MACHINES:
            blocks = StepBlocks(bounds, 0, n_blocks // machines, per_block=True)
            x_local = np.ascontiguousarray(x[blocks.rows])
            steps[machines] = median_seconds(
                lambda: model._train_step(x_local, y[:batch], None, blocks, runner), repeats)
        everything = np.ones((n_blocks, gradient_floats(model)), np.float32)
        adding = median_seconds(lambda: add_in_order(everything), repeats)
    return steps, adding, gradient_floats(model), int(np.prod(model.output_shape)) * batch


def plain_blocks_cost(case, rounds):
    """Median over paired rounds of (step with sample blocks) / (step
    without), in one process on 2 threads, and the two medians."""
    model, x, y, batch, _ = problem(case)
    model.build(x.shape[1:])
    runner = _sample_blocks.OneProcess()
    x_batch, y_batch = np.ascontiguousarray(x[:batch]), y[:batch]
    without = lambda: model._train_step(x_batch, y_batch)  # noqa: E731
    bounds = sample_blocks(batch, x.shape[1], model._largest_layer_bytes())
    with_blocks = lambda: model._train_step(  # noqa: E731
        x_batch, y_batch, None, StepBlocks.whole(bounds), runner)
    pairs = []
    with fastlstm.threads(2):
        without(), with_blocks()
        for _ in range(rounds):
            start = time.perf_counter()
            without()
            middle = time.perf_counter()
            with_blocks()
            pairs.append((middle - start, time.perf_counter() - middle))
    pairs = np.array(pairs)
    return (float(np.median(pairs[:, 1] / pairs[:, 0])), float(np.median(pairs[:, 0])),
            float(np.median(pairs[:, 1])))


# ----------------------------------------------------------------- report

def projection(share, adding, floats, output_floats, latency, bandwidth):
    """Projected step seconds on N machines (one process each): the share's
    step, plus DataParallel's three exchanges, each (N - 1) messages of
    `latency` and the bytes a process receives at `bandwidth`: the outputs
    (Allgatherv), every block's values of its slice of the gradients
    (Alltoallv), the slices' in-order sums (Allgatherv); and its slice's
    in-order sum (1 / N of `adding`, the sum of every block's gradients)."""
    n_blocks = len(sample_blocks(LAYER[0])) - 1  # both cases' batch: 64
    projected = {}
    for machines, compute in share.items():
        if machines == 1:
            projected[machines] = compute
            continue
        received = (output_floats * 4 * (machines - 1) / machines
                    + n_blocks * floats * 4 * (machines - 1) / machines / machines
                    + floats * 4 * (machines - 1) / machines)
        exchange = 3 * (machines - 1) * latency + received / bandwidth
        projected[machines] = compute + adding / machines + exchange
    return projected


def markdown(results, command):
    lines = [f"Command: `{command}`", ""]
    lines += ["| case | 1 process x 2 threads, s/epoch | 2 processes x 1 thread, s/epoch "
              "| ratio (2x1 / 1x2) | exchange per step, ms (wait / outputs / gradients) "
              "| sent per process per step |", "| --- | --- | --- | --- | --- | --- |"]
    for case in CASES:
        one = [min(r["epoch_seconds"]) for r in results[case]["1"]]
        two = [min(r["epoch_seconds"]) for r in results[case]["2"]]
        last = results[case]["2"][-1]
        steps = max(1, last["steps"])
        lines.append(
            f"| {case} | {np.median(one):.3f} | {np.median(two):.3f} "
            f"| {np.median(two) / np.median(one):.2f} "
            f"| {1e3 * last['wait_seconds'] / steps:.2f} / "
            f"{1e3 * last['gather_seconds'] / steps:.2f} / "
            f"{1e3 * last['combine_seconds'] / steps:.2f} "
            f"| {last['sent_bytes'] / steps / 1e6:.2f} MB |")
    lines += ["", "Plain fit, a training step with sample blocks against one without, "
              "paired in one process (2 threads, batch 64):", "",
              "| case | without, ms | with, ms | median ratio of pairs |",
              "| --- | --- | --- | --- |"]
    for case in CASES:
        ratio, without, with_blocks = results[case]["plain"]
        lines.append(f"| {case} | {1e3 * without:.2f} | {1e3 * with_blocks:.2f} "
                     f"| {ratio:.3f} |")
    for case in CASES:
        share, adding, floats, output_floats = results[case]["share"]
        lines += ["", f"Projection, {case}: a global batch of 64 on N machines of 2 cores "
                  f"(one process each; {floats:,} gradient floats in "
                  f"{len(sample_blocks(64)) - 1} blocks; the in-order sum of all blocks "
                  f"{1e3 * adding:.2f} ms on one machine):", "",
                  "| N | share's step, ms | " + " | ".join(
                      f"{name} step, ms (speed-up)" for name in NETWORKS) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in NETWORKS) + " |"]
        for network, (latency, bandwidth) in NETWORKS.items():
            results[case].setdefault("projected", {})[network] = projection(
                share, adding, floats, output_floats, latency, bandwidth)
        for machines in MACHINES:
            cells = []
            for network in NETWORKS:
                projected = results[case]["projected"][network]
                cells.append(f"{1e3 * projected[machines]:.1f} "
                             f"({projected[1] / projected[machines]:.2f}x)")
            lines.append(f"| {machines} | {1e3 * share[machines]:.1f} | " + " | ".join(cells)
                         + " |")
    lines += ["", "Networks assumed: " + "; ".join(
        f"{name}: latency {latency * 1e6:g} us, {bandwidth / 1e9:g} GB/s per process"
        for name, (latency, bandwidth) in NETWORKS.items()) + "."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.processes, args.out)
        return
    import tempfile

    results = {case: {"1": [], "2": []} for case in CASES}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.rounds):
            for case in CASES:
                for processes in (1, 2):
                    results[case][str(processes)].append(
                        run_configuration(case, processes, directory))
    for case in CASES:
        results[case]["plain"] = plain_blocks_cost(case, 30 if case == "classic" else 10)
        results[case]["share"] = share_steps(case, 9 if case == "classic" else 5)
    command = "python bench/distributed.py " + " ".join(sys.argv[1:])
    report = markdown(results, command.strip())
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()

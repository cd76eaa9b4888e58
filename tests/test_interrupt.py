"""Ctrl-C stops a long kernel call promptly and leaves everything usable."""
from conftest import run_python

# One sequence through 1024 units: its 16 MiB of recurrent weights make a
# step take about a millisecond on any machine, so each call below runs for
# a second or more unless it is interrupted.
SCRIPT = """
import os, signal, threading, time
import numpy as np
import fastlstm
from fastlstm import functional

rng = np.random.default_rng(0)
units, steps = 1024, 2000
x = rng.standard_normal((1, steps, 1)).astype(np.float32)
k = (0.1 * rng.standard_normal((1, 4 * units))).astype(np.float32)
r = (0.01 * rng.standard_normal((units, 4 * units))).astype(np.float32)
b = np.zeros(4 * units, np.float32)
dy = np.ones((1, steps, units), np.float32)

def interrupted_after(seconds, call):
    sent = []
    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    start = time.perf_counter()
    threading.Timer(seconds, interrupt).start()
    try:
        call()
    except KeyboardInterrupt:
        return time.perf_counter() - sent[0]
    raise SystemExit(f"not interrupted: the call took {time.perf_counter() - start:.2f} s")

short = (x[:, :50], k, r, b)
expected = functional.lstm_forward(*short)[0]
latencies = [interrupted_after(0.15, lambda: functional.lstm_forward(x, k, r, b))]
_, _, _, cache = functional.lstm_forward(x, k, r, b, return_cache=True)
latencies.append(interrupted_after(0.15, lambda: functional.lstm_backward(cache, dy)))
try:
    functional.lstm_backward(cache, dy)
    raise SystemExit("an interrupted backward left its cache usable")
except RuntimeError as e:
    assert "already consumed" in str(e)
latencies.append(interrupted_after(
    0.15, lambda: functional.lstm_forward(x, k, r, b, return_cache=True)))
assert np.array_equal(functional.lstm_forward(*short)[0], expected)
print(" ".join(f"{s:.3f}" for s in latencies))
"""


def test_ctrl_c_interrupts_forward_and_backward_within_a_fraction_of_a_second():
    """Polled every 20 ms of a call; 0.5 s allows for a loaded machine."""
    latencies = [float(s) for s in run_python(SCRIPT, timeout=120).split()]
    assert len(latencies) == 3 and max(latencies) < 0.5, latencies


def test_a_thread_other_than_the_main_one_is_never_interrupted():
    """Python delivers signals to its main thread only: a kernel called from
    another thread runs to the end while the main thread handles Ctrl-C."""
    script = """
import os, signal, threading, time
import numpy as np
from fastlstm import functional

x = np.ones((1, 300, 1), np.float32)
k = np.full((1, 4096), 0.01, np.float32)
r = np.full((1024, 4096), 0.001, np.float32)
b = np.zeros(4096, np.float32)
result = []
worker = threading.Thread(target=lambda: result.append(functional.lstm_forward(x, k, r, b)[0]))
worker.start()
time.sleep(0.1)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    pass
worker.join()
print(result[0].shape)
"""
    assert run_python(script, timeout=120) == "(1, 300, 1024)"

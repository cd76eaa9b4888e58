"""Thread control, and results that do not depend on the thread count."""
import math

import numpy as np
import pytest
from conftest import Problem, run, run_python

import fastlstm
from fastlstm import _recurrent, functional
from fastlstm._threads import usable_cpu_count

LSTM = _recurrent.CELLS["lstm"]


def test_default_is_the_usable_cpu_count(restore_threads):
    fastlstm._threads._num_threads = None
    assert fastlstm.get_num_threads() == usable_cpu_count() >= 1


def test_set_and_get(restore_threads):
    fastlstm.set_num_threads(3)
    assert fastlstm.get_num_threads() == 3
    fastlstm.set_num_threads(np.int64(1))
    assert fastlstm.get_num_threads() == 1


def test_context_manager_restores_even_on_error(restore_threads):
    fastlstm.set_num_threads(2)
    with pytest.raises(KeyError):
        with fastlstm.threads(1):
            assert fastlstm.get_num_threads() == 1
            raise KeyError
    assert fastlstm.get_num_threads() == 2


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                        ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_invalid_thread_counts(bad, error, restore_threads):
    with pytest.raises(error, match="number of threads"):
        fastlstm.set_num_threads(bad)
    with pytest.raises(error, match="number of threads"):
        with fastlstm.threads(bad):
            pass


def test_omp_num_threads_sets_the_default():
    script = "import fastlstm; print(fastlstm.get_num_threads())"
    assert run_python(script, env={"OMP_NUM_THREADS": "3"}) == "3"


def test_cpu_affinity_caps_the_default():
    script = "import os, fastlstm; os.sched_setaffinity(0, {0}); print(fastlstm.get_num_threads())"
    assert run_python(script, env={"OMP_NUM_THREADS": ""}) == "1"


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_batch_parts_cover_the_batch_and_feed_every_thread(itemsize, threads):
    """Backward cuts the batch into at least one part per thread (when there
    are rows enough); forward takes the same parts or one part that its
    threads share. Which, and how many, is a tuning choice that results do
    not depend on (the bitwise tests below run across every kind)."""
    for batch in (1, 2, 3, 16, 17, 64, 129, 300, 1000):
        for units in (5, 50, 64, 128, 181, 256, 1024):
            backward = _recurrent.parts(LSTM, batch, units, itemsize, threads, backward=True)
            forward = _recurrent.parts(LSTM, batch, units, itemsize, threads)
            assert min(batch, threads) <= backward <= batch
            assert forward in (1, backward)


def _results(problem):
    y, h_n, c_n, grads = run(functional, problem)
    inference = functional.lstm_forward(*problem.inputs)
    return [y, h_n, c_n, *grads, *inference]


# Parts of uneven size, more parts than threads, several column blocks, a
# projection longer than one row block, many features; then one part shared
# by the threads, which split its columns (weights of 1 MiB or more: 256+
# units in float32, 182+ in float64): ragged unit counts, several inference
# time blocks; a last vector of gate columns that overlaps the one before it,
# alone after a full panel (257 units) or in a group of three (265, float32);
# 50 units and features, whose backward products take their last columns as
# dot products (float32, AVX-512).
@pytest.mark.parametrize("shape", [(50, 7, 3, 40), (64, 5, 8, 33), (3, 4, 2, 5), (40, 3, 80, 7),
                                   (300, 3, 5, 6), (1, 9, 3, 129), (7, 5, 70, 200),
                                   (16, 4, 2, 64), (2, 600, 3, 100), (1, 6, 3, 257),
                                   (1, 5, 3, 265), (5, 4, 20, 300), (2, 130, 3, 256),
                                   (33, 4, 50, 50)],
                         ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_results_are_bitwise_identical_for_1_to_4_threads(shape, dtype, restore_threads):
    problem = Problem(*shape, dtype=dtype, seed=11)
    with fastlstm.threads(1):
        expected = _results(problem)
    for n in (2, 3, 4):
        with fastlstm.threads(n):
            actual = _results(problem)
        for a, e in zip(actual, expected):
            np.testing.assert_array_equal(a, e, err_msg=f"{n} threads")


def test_blas_is_single_threaded_inside_kernels_and_restored_after():
    from threadpoolctl import threadpool_info

    from fastlstm._blas_control import blas_single_threaded

    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with blas_single_threaded():
        with blas_single_threaded():  # nested, as two Python threads would overlap
            inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        still = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
    assert all(n == 1 for n in still)
    assert after == before


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_cpu_quota(tmp_path, files, expected):
    from fastlstm._threads import _cgroup_cpu_quota

    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert _cgroup_cpu_quota(str(tmp_path)) == expected


def test_cgroup_quota_caps_the_default(monkeypatch):
    from fastlstm import _threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "_quota_reading", (-math.inf, None))
    monkeypatch.setattr(_threads, "_count_reading", (-math.inf, None))
    monkeypatch.setattr(_threads, "_cgroup_cpu_quota", lambda: 1.5)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert _threads.usable_cpu_count() == 1


def test_cgroup_quota_is_read_again_only_once_it_is_a_second_old(monkeypatch):
    from fastlstm import _threads

    clock = [100.0]
    readings = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_threads, "_quota_reading", (-math.inf, None))
    monkeypatch.setattr(_threads, "_count_reading", (-math.inf, None))
    monkeypatch.setattr(_threads, "_cgroup_cpu_quota", lambda: readings.append(1) or 2.0)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert [_threads.usable_cpu_count() for _ in range(5)] == [2] * 5
    clock[0] += 0.99
    assert _threads.usable_cpu_count() == 2 and len(readings) == 1
    clock[0] += 0.01  # a limit changed at run time (docker update) is seen within a second
    monkeypatch.setattr(_threads, "_cgroup_cpu_quota", lambda: readings.append(1) or 1.0)
    assert _threads.usable_cpu_count() == 1 and len(readings) == 2


def test_thread_counts_of_two_threads_blocks_do_not_mix(restore_threads):
    """A enters threads(2), B threads(3), A leaves, B leaves: each sees its
    own count throughout, and the default is back at the end."""
    import threading

    fastlstm._threads._num_threads = None
    default = fastlstm.get_num_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with fastlstm.threads(2):
            a_in.set()
            b_in.wait()
            seen["a"] = fastlstm.get_num_threads()
        a_out.set()

    def b():
        a_in.wait()
        with fastlstm.threads(3):
            b_in.set()
            a_out.wait()
            seen["b"] = fastlstm.get_num_threads()

    workers = [threading.Thread(target=a), threading.Thread(target=b)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert seen == {"a": 2, "b": 3}
    assert fastlstm.get_num_threads() == default


def test_a_block_overrides_the_process_count_only_inside_it(restore_threads):
    import threading

    fastlstm.set_num_threads(3)
    seen = []
    with fastlstm.threads(1):
        worker = threading.Thread(target=lambda: seen.append(fastlstm.get_num_threads()))
        worker.start()
        worker.join()
        assert fastlstm.get_num_threads() == 1
    assert seen == [3] and fastlstm.get_num_threads() == 3


@pytest.mark.parametrize("huge", [2**31, 10**6, fastlstm._threads.MAX_THREADS + 1])
def test_absurd_thread_counts_are_refused_where_they_are_set(huge, restore_threads):
    with pytest.raises(ValueError, match=r"number of threads must be in \[1, 4096\]"):
        fastlstm.set_num_threads(huge)
    with pytest.raises(ValueError, match="number of threads"):
        with fastlstm.threads(huge):
            pass


FORK_SCRIPT = """
import os, numpy as np, fastlstm
from fastlstm import _teams, functional

_teams.team_size = lambda requested: requested  # a team even on a busy machine
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 20, 4)).astype(np.float32)
k = (0.1 * rng.standard_normal((4, 200))).astype(np.float32)
r = (0.1 * rng.standard_normal((50, 200))).astype(np.float32)
b = np.zeros(200, np.float32)
dy = np.ones((64, 20, 50), np.float32)

def results():
    y, h, c, cache = functional.lstm_forward(x, k, r, b, return_cache=True)
    return [y, h, c, *functional.lstm_backward(cache, dy)[:4], functional.lstm_forward(x, k, r, b)[0]]

with fastlstm.threads(2):
    expected = results()
pid = os.fork()
if pid == 0:
    import signal
    signal.alarm(30)  # a hung child ends itself rather than outlive the test
    with fastlstm.threads(2):
        got = results()
        got = results()  # the helper thread's team, started twice
    threads_now = len(os.listdir("/proc/self/task"))
    same = all(np.array_equal(a, e) for a, e in zip(got, expected))
    os._exit(0 if same and threads_now >= 3 else 1 if not same else 2)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_runs_two_thread_kernels_without_hanging():
    """The child computes the parent's results bitwise, on a team of two
    threads (its thread count shows the team's worker), within the timeout."""
    assert run_python(FORK_SCRIPT, timeout=60) == "0"


def test_a_contended_team_falls_back_to_one_thread_for_a_growing_while(monkeypatch):
    """A team that spent a tenth of a call off its cores makes the next
    calls use one thread; the back-off doubles while trials stay contended
    and starts over after a clean one."""
    from fastlstm import _teams

    now = [100.0]
    monkeypatch.setattr(_teams.time, "monotonic", lambda: now[0])

    def wait(backoffs):
        now[0] += backoffs * _teams.MIN_BACKOFF_SECONDS + 1e-6

    contention = _teams._Contention()
    assert contention.threads_for(2) == 2
    contention.record(lost_ns=3_000_000, seconds=0.5)  # 3 ms of 500: harmless
    assert contention.threads_for(2) == 2
    contention.record(lost_ns=300_000, seconds=0.001)
    assert contention.threads_for(2) == 1 and contention.threads_for(1) == 1
    wait(1)
    assert contention.threads_for(2) == 2
    contention.record(lost_ns=9_000_000, seconds=0.02)
    wait(1)
    assert contention.threads_for(2) == 1  # twice as long this time
    wait(1)
    assert contention.threads_for(2) == 2
    contention.record(lost_ns=0, seconds=0.001)
    contention.record(lost_ns=300_000, seconds=0.001)
    wait(1)
    assert contention.threads_for(2) == 2  # back to the shortest back-off


@pytest.mark.parametrize("batch, units", [(64, 20), (2, 256)])  # batch parts, a shared part
def test_kernels_report_their_teams_time_off_the_cores(batch, units):
    from fastlstm import _teams

    p = Problem(batch, 3, 2, units, dtype=np.float32)
    reports = []
    original = _teams._contention.record
    _teams._contention.record = lambda lost_ns, seconds: reports.append((lost_ns, seconds))
    try:
        with fastlstm.threads(2):
            run(functional, p)
            functional.lstm_forward(*p.inputs)
    finally:
        _teams._contention.record = original
    assert len(reports) == 3  # forward with cache, backward, inference
    assert all(isinstance(s, int) and s >= 0 and t > 0 for s, t in reports)

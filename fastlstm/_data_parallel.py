"""Data-parallel training over the processes of an MPI job: the
DataParallel runner of ``Sequential.fit`` (see fastlstm.distributed)."""
import contextlib
import hashlib
import os
import sys
import time
import traceback
import warnings

import numpy as np

from ._blas_control import blas_controller
from ._build import get_simd_level
from ._random import generator
from ._sample_blocks import StepBlocks, add_in_order
from ._threads import get_num_threads, threads, usable_cpu_count

__all__ = ["DataParallel"]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("fastlstm.distributed.DataParallel needs mpi4py and an MPI library: "
                          'pip install "fastlstm[mpi]" (mpi4py with MPICH\'s wheels)') from error
    return MPI


class DataParallel:
    """Synchronous data-parallel training over the processes of an MPI job,
    for ``Sequential.fit(..., distributed=DataParallel())``.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        The processes that train together; default ``MPI.COMM_WORLD``.
    threads : int, optional
        fastlstm threads per process. Default: the ``OMP_NUM_THREADS`` of
        the process when set, else this machine's usable CPUs divided
        among the job's processes on it (``mpiexec -n 2`` on 2 cores: one
        thread each).

    What each process does in fit
        Before training, every process takes process 0's weights, random
        stream (shuffling and dropout draw from it) and optimizer state,
        and checks that it was given the same x, y and sample weights.
        For each batch it computes its blocks' rows (``step_blocks``), and
        the processes exchange their outputs (so that every process has
        the batch's loss, metrics and loss gradient exactly as one process
        has them) and their blocks' weight gradients: each process adds,
        in block order, every block's values of its slice of the gradients,
        and the slices' sums go to all (``combine``); an ``Allreduce``
        would add in an order that varies. Validation runs on process 0 and
        its logs go to every process; callbacks run everywhere with the same logs,
        except those that write files (``ModelCheckpoint``,
        ``CSVLogger``), and the progress bar, which run on process 0 only.
        An error in any process prints its rank and traceback and aborts
        the whole job (``MPI.Comm.Abort``) instead of leaving the others
        waiting.

    Attributes
    ----------
    rank, size : int
        This process' rank and the number of processes.
    stats : dict
        Seconds and bytes of the exchanges so far: "gather_seconds",
        "combine_seconds", "sent_bytes", and "steps".
    """

    def __init__(self, comm=None, threads=None):
        MPI = _mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        self.threads = threads if threads is not None else self._default_threads()
        self.stats = {"gather_seconds": 0.0, "combine_seconds": 0.0, "sent_bytes": 0,
                      "steps": 0}
        self._buffers = {}

    def _default_threads(self):
        if os.environ.get("OMP_NUM_THREADS"):
            return get_num_threads()
        local = self.comm.Split_type(self._MPI.COMM_TYPE_SHARED)
        try:
            return max(1, usable_cpu_count() // local.Get_size())
        finally:
            local.Free()

    # ------------------------------------------------ fit's calls

    @contextlib.contextmanager
    def running(self):
        """A context manager for the whole of fit: this process' threads (for
        fastlstm's kernels and for BLAS, whose idle threads would otherwise
        spin on the cores of the other processes), and any error ends the
        job (see the class docstring)."""
        try:
            with threads(self.threads), blas_controller().limit(limits=self.threads,
                                                                 user_api="blas"):
                yield
        except BaseException:
            if self.size == 1:
                raise
            sys.stderr.write(f"fastlstm.distributed: process {self.rank} of {self.size} "
                             f"failed; aborting the job.\n{traceback.format_exc()}")
            sys.stderr.flush()
            self.comm.Abort(1)
            os._exit(1)  # should Abort return before the MPI runtime ends this process

    def check_data(self, x, y, sample_weight):
        """Refuse to train unless every process has the same x shape, y and
        sample weights (x's values are not compared: each process reads
        only its own rows of it)."""
        mine = (tuple(np.shape(x)), str(np.asarray(x[:0]).dtype), _digest(y),
                _digest(sample_weight))
        everyone = self.comm.allgather(mine)
        differ = [rank for rank, theirs in enumerate(everyone) if theirs != everyone[0]]
        if differ:
            raise ValueError(f"every process must pass fit the same x, y and sample_weight: "
                             f"process(es) {differ} differ from process 0 (x shape, x dtype, "
                             f"y, sample_weight: {everyone[differ[0]][:2]} against "
                             f"{everyone[0][:2]})")

    def begin(self, model):
        """Give every process process 0's weights, random stream and
        optimizer state; warn when the processes' kernels or BLAS differ
        (they then stay in step, but not bitwise with one process)."""
        for weight in model.weights:
            self.comm.Bcast(weight, root=0)
        stream = generator().bit_generator
        stream.state = self.comm.bcast(stream.state if self.rank == 0 else None, root=0)
        optimizer = model.optimizer
        state = self.comm.bcast((optimizer.iterations, optimizer.learning_rate,
                                 optimizer._slots) if self.rank == 0 else None, root=0)
        optimizer.iterations, optimizer.learning_rate, optimizer._slots = state
        machines = self.comm.allgather(_kernel_signature())
        if self.rank == 0 and any(machine != machines[0] for machine in machines):
            warnings.warn("the processes run different fastlstm kernels or BLAS "
                          f"({sorted(set(machines))}): they stay in step, but the weights "
                          "will not be bitwise those of a one-process fit", RuntimeWarning,
                          stacklevel=2)

    def step_blocks(self, bounds):
        """This process' run of whole sample blocks of a batch cut into the
        blocks `bounds`: blocks [rank * n / size, (rank + 1) * n / size) of n."""
        n_blocks = len(bounds) - 1
        return StepBlocks(bounds, self.rank * n_blocks // self.size,
                          (self.rank + 1) * n_blocks // self.size, per_block=True)

    def _counts(self, blocks, per_row):
        """Allgatherv's counts and displacements of `per_row` values per row."""
        n_blocks = len(blocks.bounds) - 1
        starts = [blocks.bounds[rank * n_blocks // self.size] for rank in range(self.size + 1)]
        counts = [int(b - a) * per_row for a, b in zip(starts[:-1], starts[1:])]
        return counts, [int(a) * per_row for a in starts[:-1]]

    def gather(self, output, mask, blocks):
        """The whole batch's output (and mask) from every process' rows."""
        start = time.perf_counter()
        whole = self._allgather_rows(np.ascontiguousarray(output, np.float32), blocks,
                                     self._MPI.FLOAT)
        if mask is not None:
            mask = self._allgather_rows(np.ascontiguousarray(mask, np.uint8), blocks,
                                        self._MPI.UNSIGNED_CHAR).astype(bool)
        self.stats["gather_seconds"] += time.perf_counter() - start
        return whole, mask

    def _allgather_rows(self, local, blocks, mpi_type):
        per_row = int(np.prod(local.shape[1:], dtype=np.int64))
        whole = np.empty((blocks.batch,) + local.shape[1:], local.dtype)
        counts, displacements = self._counts(blocks, per_row)
        self.comm.Allgatherv(local, [whole, counts, displacements, mpi_type])
        self.stats["sent_bytes"] += local.nbytes
        return whole

    def combine(self, grads, blocks):
        """The weight gradients of the whole batch from every process'
        blocks' gradients (each with a leading axis of its blocks).

        The gradients, as one vector of P values, are cut into one slice
        per process. Each process receives every block's values of its
        slice (Alltoallv), adds them in block order, and the sums are
        gathered everywhere (Allgatherv): every value is the in-order sum a
        single process makes, and a process receives about (n_blocks / size
        + 1) P values instead of the n_blocks P of gathering every block.
        """
        start = time.perf_counter()
        mine = blocks.last - blocks.first
        sizes = [int(np.prod(g.shape[1:], dtype=np.int64)) for g in grads]
        total_size = sum(sizes)
        n_blocks = len(blocks.bounds) - 1
        blocks_of = [(rank + 1) * n_blocks // self.size - rank * n_blocks // self.size
                     for rank in range(self.size)]
        cuts = [rank * total_size // self.size for rank in range(self.size + 1)]
        widths = [b - a for a, b in zip(cuts[:-1], cuts[1:])]
        # Sent to process d: this process' blocks' values of d's slice, block by block.
        outgoing = self._buffer("outgoing", mine * total_size)
        offset = 0
        for grad, size in zip(grads, sizes):
            flat = grad.reshape(mine, size)
            for d in range(self.size):
                a, b = max(cuts[d], offset), min(cuts[d + 1], offset + size)
                if a < b:
                    part = outgoing[mine * cuts[d]:mine * cuts[d + 1]].reshape(mine, widths[d])
                    part[:, a - cuts[d]:b - cuts[d]] = flat[:, a - offset:b - offset]
            offset += size
        incoming = self._buffer("incoming", n_blocks * widths[self.rank]).reshape(
            n_blocks, widths[self.rank])
        self.comm.Alltoallv(
            [outgoing, [mine * w for w in widths], [mine * a for a in cuts[:-1]],
             self._MPI.FLOAT],
            [incoming, [k * widths[self.rank] for k in blocks_of],
             [sum(blocks_of[:r]) * widths[self.rank] for r in range(self.size)],
             self._MPI.FLOAT])
        total = np.empty(total_size, np.float32)
        mine_summed = add_in_order(incoming) if n_blocks else np.zeros(0, np.float32)
        self.comm.Allgatherv(mine_summed, [total, widths, cuts[:-1], self._MPI.FLOAT])
        combined, offset = [], 0
        for grad, size in zip(grads, sizes):
            combined.append(total[offset:offset + size].reshape(grad.shape[1:]))
            offset += size
        self.stats["combine_seconds"] += time.perf_counter() - start
        self.stats["sent_bytes"] += (outgoing.nbytes - mine * widths[self.rank] * 4
                                     + mine_summed.nbytes * (self.size - 1))
        self.stats["steps"] += 1
        return combined

    def _buffer(self, name, size):
        """A float32 scratch vector of `size`, kept from step to step (fresh
        pages cost more than the copies into them)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size != size:
            buffer = self._buffers[name] = np.empty(size, np.float32)
        return buffer

    def validation_logs(self, evaluate):
        """``evaluate()``'s logs, computed by process 0 and sent to all."""
        return self.comm.bcast(evaluate() if self.rank == 0 else None, root=0)


def _digest(array):
    """A short digest of an array's shape, dtype and bytes (None for None)."""
    if array is None:
        return None
    array = np.ascontiguousarray(array)
    return (array.shape, str(array.dtype), hashlib.sha256(array.view(np.uint8)).hexdigest())


def _kernel_signature():
    """What decides the rounding of the kernels (their SIMD level) and of
    every BLAS in the process (NumPy's and SciPy's: library, version, CPU
    kernels) on this machine."""
    blas = sorted((lib.get("internal_api"), lib.get("version"), lib.get("architecture"))
                  for lib in blas_controller().info() if lib.get("user_api") == "blas")
    return repr((get_simd_level(), blas))

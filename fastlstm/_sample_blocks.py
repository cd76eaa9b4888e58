"""A training step's batch cut into fixed blocks of samples.

A model's weight gradients are sums over the samples of a batch, and
floating-point sums depend on their order. ``fit`` therefore sums them block
by block: each block's sums start from zero, and the blocks' sums are added
in block order. The blocks are a function of the batch size alone
(``sample_blocks``), so a process that computes only some whole blocks of a
batch (fastlstm.distributed) gets the very partial sums a process with the
whole batch gets, and adding every block's sums in the same order gives the
same bits, for any number of processes and threads.

During a step, ``active(blocks)`` tells the layers which blocks this
process computes (``StepBlocks``): the recurrent layers pass the blocks to
the kernels, Dense computes its products block by block, and the random
masks of Dropout are drawn for the whole batch (so that the random stream
moves on as in one process) and cut to this process' rows. Outside
``active`` the layers do as they always do.
"""
import contextlib
import contextvars
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_BLOCKS", "sample_blocks", "StepBlocks", "active", "current", "per_step",
           "add_in_order", "OneProcess"]

# Blocks per batch: enough for 2, 4 or 8 processes to take equal shares (3
# take 3, 3 and 2 blocks), few enough that adding the blocks' sums costs
# little beside computing them.
MAX_BLOCKS = 8
# A layer whose weights take more than LARGE_WEIGHT_BYTES sums its
# gradients over a block in a pass over them in memory, which a block of
# few (batch, time) rows does not pay back: with such a layer a block holds
# at least LARGE_BLOCK_ROWS rows. Measured paired at (8, 50, 256, 512), 8 MB
# of gradients: backward with 8 blocks of 50 rows 1.10x slower than without
# blocks, with 4 of 100 rows 1.02x, with 2 1.01x.
LARGE_WEIGHT_BYTES = 4 << 20
LARGE_BLOCK_ROWS = 128


def sample_blocks(batch, steps=1, weight_bytes=0):
    """The blocks of a batch of `batch` samples of `steps` time steps each,
    for a model whose largest layer's weights take `weight_bytes`.

    Returns an intp array (n_blocks + 1,) of each block's first sample, then
    `batch`: min(batch, MAX_BLOCKS) near-equal blocks, fewer for large
    layers (see LARGE_WEIGHT_BYTES); one empty block for an empty batch.
    The blocks depend on these three numbers alone, never on the number of
    processes or threads.
    """
    n_blocks = max(1, min(batch, MAX_BLOCKS))
    if weight_bytes > LARGE_WEIGHT_BYTES:
        n_blocks = max(1, min(n_blocks, batch * steps // LARGE_BLOCK_ROWS))
    return np.array([k * batch // n_blocks for k in range(n_blocks + 1)], dtype=np.intp)


@dataclass(frozen=True)
class StepBlocks:
    """The blocks of one step's batch, and those this process computes.

    Attributes
    ----------
    bounds : ndarray of intp, shape (n_blocks + 1,)
        Each block's first sample in the whole batch, then the batch size.
    first, last : int
        This process computes blocks first .. last - 1.
    per_block : bool
        The layers keep each block's weight gradients apart (a leading axis
        of last - first blocks) for the caller to add in order; otherwise
        they add them in order themselves.
    """

    bounds: np.ndarray
    first: int
    last: int
    per_block: bool = False

    @classmethod
    def whole(cls, bounds):
        """Every block of `bounds` (see sample_blocks), added by the layers."""
        return cls(bounds, 0, len(bounds) - 1)

    @property
    def batch(self):
        """Samples in the whole batch."""
        return int(self.bounds[-1])

    @property
    def start(self):
        return int(self.bounds[self.first])

    @property
    def stop(self):
        return int(self.bounds[self.last])

    @property
    def rows(self):
        """This process' samples of the whole batch, as a slice."""
        return slice(self.start, self.stop)

    @property
    def local_bounds(self):
        """This process' blocks in its own rows: intp (last - first + 1,) from 0."""
        return self.bounds[self.first:self.last + 1] - self.bounds[self.first]

    def local_ranges(self):
        """(start, stop) of each of this process' blocks in its own rows."""
        local = self.local_bounds
        return [(int(a), int(b)) for a, b in zip(local[:-1], local[1:])]

    def scaled(self, rows_per_sample):
        """The same blocks over arrays of `rows_per_sample` rows per sample
        (TimeDistributed's steps)."""
        return StepBlocks(self.bounds * rows_per_sample, self.first, self.last, self.per_block)


_current = contextvars.ContextVar("fastlstm_step_blocks", default=None)


def current():
    """The StepBlocks of the training step running in this context, or None."""
    return _current.get()


@contextlib.contextmanager
def active(blocks):
    """Context manager: the layers' training passes inside run `blocks`
    (a StepBlocks, or None for none)."""
    token = _current.set(blocks)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def per_step(rows_per_sample):
    """Context manager: inside, the active blocks count rows of
    `rows_per_sample` per sample (a layer applied to every time step)."""
    blocks = _current.get()
    token = _current.set(None if blocks is None else blocks.scaled(rows_per_sample))
    try:
        yield
    finally:
        _current.reset(token)


def add_in_order(parts):
    """parts[0] + parts[1] + ... added left to right, elementwise, as a new
    array: the order every block's sums are added in.

    Parameters
    ----------
    parts : sequence of ndarray of one shape and dtype, or an ndarray whose
        first axis runs over the parts
    """
    total = np.array(parts[0], copy=True)
    for part in parts[1:]:
        total += part
    return total


class OneProcess:
    """How ``fit`` runs its steps in one process: every sample block of a
    step here, the layers adding the blocks' weight gradients in order.

    fastlstm.distributed.DataParallel takes this role across processes;
    ``fit`` calls the same methods of either.
    """

    rank, size = 0, 1

    def check_data(self, x, y, sample_weight):
        """Whether the data is the same everywhere: nothing to compare here."""

    def begin(self, model):
        """Bring every process to the same weights and random stream: one
        process already is."""

    def step_blocks(self, bounds):
        """The StepBlocks of a step whose batch has the blocks `bounds`."""
        return StepBlocks.whole(bounds)

    def gather(self, output, mask, blocks):
        """The whole batch's output and mask from this process' rows: here
        they are the whole batch."""
        return output, mask

    def combine(self, grads, blocks):
        """The weight gradients of the whole batch: the layers added them."""
        return grads

    def validation_logs(self, evaluate):
        """The validation logs, ``evaluate()``."""
        return evaluate()

    def running(self):
        """A context manager for the whole of fit: nothing to set up here."""
        return contextlib.nullcontext()

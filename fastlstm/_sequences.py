"""The order in which the engine runs a batch of sequences with lengths or
reversed.

The recurrent driver runs rows longest first, each row's steps at the start
of its time axis: then the rows still running at any step are a prefix of
every batch part, and a step's products cover those rows only, so a batch
costs the sum of its lengths. ``RunOrder`` moves a caller's arrays into that
order (rows sorted by length, each row's steps in the order they run) and
back. Without lengths and direction it is the identity and copies nothing.
"""
import numpy as np


class RunOrder:
    """Where row b's step t of the caller's arrays runs.

    Parameters
    ----------
    lengths : ndarray of intp, shape (batch,), or None
        Checked lengths in [0, time] (None: every row runs all steps).
    batch, time : int
    reverse : bool
        Each row runs its steps last to first.

    Attributes
    ----------
    run_lengths : ndarray of intp, shape (batch,), or None
        The lengths in run order (longest first), as the kernels take them.
    """

    def __init__(self, lengths, batch, time, reverse):
        self.batch, self.time = batch, time
        self.rows = None      # run row i is the caller's row rows[i]; None: the same
        self.times = None     # (batch, time): run step s of run row i is caller time times[i, s]
        self.run_lengths = None
        if lengths is not None:
            rows = np.argsort(-lengths, kind="stable")
            if np.any(rows != np.arange(batch)):
                self.rows = rows
            self.run_lengths = np.ascontiguousarray(lengths[rows], dtype=np.intp)
        if reverse:
            steps = np.arange(time)
            run = np.full(batch, time) if lengths is None else self.run_lengths
            # A row's steps past its length keep their place (they output
            # zeros), so each row's time map is a permutation.
            self.times = np.where(steps < run[:, None], run[:, None] - 1 - steps, steps)

    @property
    def identity(self):
        return self.rows is None and self.times is None

    def _row_index(self):
        return (np.arange(self.batch) if self.rows is None else self.rows)[:, None]

    def to_run(self, array):
        """A (batch, time, ...) array in run order: a new C-contiguous array,
        or `array` itself when the order is the caller's."""
        if array is None or self.identity:
            return array
        if self.times is None:
            return np.ascontiguousarray(array[self.rows])
        return np.ascontiguousarray(array[self._row_index(), self.times])

    def from_run(self, array):
        """The inverse of ``to_run``: a new array in the caller's order."""
        if array is None or self.identity:
            return array
        out = np.empty_like(array)
        if self.times is None:
            out[self.rows] = array
        else:
            out[self._row_index(), self.times] = array
        return out

    def states_to_run(self, states):
        """A (batch, ...) array's rows in run order (a new array), or it itself."""
        if states is None or self.rows is None:
            return states
        return np.ascontiguousarray(states[self.rows])

    def states_from_run(self, states):
        """The inverse of ``states_to_run``."""
        if states is None or self.rows is None:
            return states
        out = np.empty_like(states)
        out[self.rows] = states
        return out

    def last_outputs(self, y, h0):
        """Each run row's state after its last step, (batch, units): its
        output at step length - 1, or h0's row when it ran no step.

        Parameters
        ----------
        y : ndarray of shape (batch, time, units), in run order
        h0 : ndarray of shape (batch, units), in run order
        """
        if self.run_lengths is None:
            return y[:, -1].copy()
        last = np.maximum(self.run_lengths - 1, 0)
        return np.where((self.run_lengths > 0)[:, None], y[np.arange(self.batch), last], h0)


class MaskedSteps:
    """The steps a recurrent layer runs under a Keras mask, as lengths.

    A masked step leaves the states as they were, so running a row's
    unmasked steps alone, in order, gives the same states whatever the
    pattern of the mask: ``gather`` moves each row's unmasked steps to the
    front, and the cell runs them with ``lengths``. Padding at the end (the
    common case) needs no move.

    Parameters
    ----------
    mask : ndarray of bool, shape (batch, time)
        True where a step runs.

    Attributes
    ----------
    lengths : ndarray of intp, shape (batch,)
        Unmasked steps per row.
    """

    def __init__(self, mask):
        batch, time = mask.shape
        self.mask = mask
        self.lengths = mask.sum(axis=1).astype(np.intp)
        self._rows = np.arange(batch)[:, None]
        # Run step s of row b is the caller's step order[b, s].
        self._order = np.argsort(~mask, axis=1, kind="stable")
        # The run step whose output caller step t repeats (-1: none yet).
        self._source = np.cumsum(mask, axis=1) - 1
        self._in_place = bool(np.all(mask[:, 1:] <= mask[:, :-1]))  # every mask a prefix

    def gather(self, array):
        """(batch, time, n) in run order: each row's unmasked steps first."""
        return array if self._in_place else np.ascontiguousarray(array[self._rows, self._order])

    def scatter(self, array):
        """The inverse of ``gather``."""
        if self._in_place:
            return array
        out = np.empty_like(array)
        out[self._rows, self._order] = array
        return out

    def outputs(self, y, zero_masked):
        """A layer's outputs at the caller's steps from the run's y (whose
        steps past each length are zeros): at a masked step zeros
        (`zero_masked`, Keras inside Bidirectional) or the output of the
        last unmasked step before it, zeros before the first (Keras' bare
        recurrent layer)."""
        if zero_masked:
            return self.scatter(y)
        out = y[self._rows, np.maximum(self._source, 0)]
        out[self._source < 0] = 0
        return out

    def output_grads(self, dy, zero_masked):
        """The gradient with respect to the run's y from that of ``outputs``."""
        if zero_masked:
            return self.gather(dy)  # masked steps land past the lengths, unread
        batch, time, units = dy.shape
        dy_run = np.zeros_like(dy)
        seen = self._source >= 0
        flat = (self._rows * time + self._source)[seen]
        np.add.at(dy_run.reshape(-1, units), flat, dy[seen])
        return dy_run

"""A tiny distributed fit, run by tests/test_distributed.py as
``mpiexec -n N python distributed_fit.py DATA_DIR OUT [--fail-rank R]``:
every process trains the same model on the memory-mapped x and y in
DATA_DIR, and process 0 writes the weights and the history to OUT (.npz).
With --fail-rank, process R raises in the second batch.

``train(x, y, x_val, y_val, distributed, checkpoint)`` is the fit itself,
which the tests also run in one process."""
import argparse
import json
import os

import numpy as np

import fastlstm
from fastlstm.callbacks import Callback, EarlyStopping, ModelCheckpoint
from fastlstm.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Masking,
                             TimeDistributed)

SAMPLES, TIME, FEATURES = 34, 6, 3
BATCH = 16  # batches of 16, 16 and 2 samples: the last has 2 blocks, fewer than 3 processes


def make_data(directory, seed=0):
    """Write x, y and validation data (.npy) into `directory`; steps of x
    that are all zero are padding (Masking), scattered over the rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES + 8, TIME, FEATURES)).astype(np.float32)
    x[rng.random((SAMPLES + 8, TIME)) < 0.25] = 0.0
    y = rng.standard_normal((SAMPLES + 8, 1)).astype(np.float32)
    for name, array in (("x", x[:SAMPLES]), ("y", y[:SAMPLES]), ("x_val", x[SAMPLES:]),
                        ("y_val", y[SAMPLES:])):
        np.save(os.path.join(directory, f"{name}.npy"), array)


def load_data(directory):
    """x memory-mapped (each process reads only its rows), the rest in memory."""
    x = np.load(os.path.join(directory, "x.npy"), mmap_mode="r")
    return (x, *(np.load(os.path.join(directory, f"{name}.npy"))
                 for name in ("y", "x_val", "y_val")))


def model():
    fastlstm.set_random_seed(3)
    built = fastlstm.Sequential([
        Masking(0.0, input_shape=(TIME, FEATURES)),
        Bidirectional(LSTM(4, return_sequences=True, dropout=0.2)),
        Dropout(0.25),
        GRU(5, return_sequences=True, recurrent_dropout=0.3),
        TimeDistributed(Dense(3, activation="tanh")),
        LSTM(4, peephole=True),
        Dense(1)])
    built.compile("adam", "mse", metrics=["mae"])
    return built


class FailAtSecondBatch(Callback):
    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:
            raise RuntimeError(f"a deliberate failure in process {self.rank}")


def train(x, y, x_val, y_val, distributed=None, checkpoint=None, callbacks=()):
    """(weights, history) of 2 epochs of fit."""
    built = model()
    hooks = [EarlyStopping(patience=5, restore_best_weights=True), *callbacks]
    if checkpoint is not None:
        hooks.append(ModelCheckpoint(checkpoint))
    history = built.fit(x, y, epochs=2, batch_size=BATCH, validation_data=(x_val, y_val),
                        callbacks=hooks, verbose=0, distributed=distributed)
    return built.get_weights(), history.history


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--fail-rank", type=int)
    args = parser.parse_args()
    from fastlstm.distributed import DataParallel

    distributed = DataParallel()
    failing = ([FailAtSecondBatch(distributed.rank)]
               if args.fail_rank == distributed.rank else [])
    weights, history = train(*load_data(args.data), distributed=distributed,
                             checkpoint=args.out + ".checkpoint.npz", callbacks=failing)
    if distributed.rank == 0:
        np.savez(args.out, *weights, history=json.dumps(history),
                 processes=distributed.size, threads=distributed.threads)


if __name__ == "__main__":
    main()

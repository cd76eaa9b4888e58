"""The random generator behind weight initialization, dropout and shuffling."""
import numpy as np

_generator = np.random.default_rng()


def set_random_seed(seed):
    """Make weight initialization, dropout masks and shuffling reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator():
    return _generator

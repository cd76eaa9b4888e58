"""A learning rate set between optimizer steps, as Keras allows."""
import numpy as np
import pytest

from fastlstm import optimizers

ALL_OPTIMIZERS = [optimizers.SGD, optimizers.RMSprop, optimizers.Adam]


@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_a_learning_rate_set_between_steps_scales_the_next_step(cls):
    rng = np.random.default_rng(3)
    start = rng.standard_normal((4, 3)).astype(np.float64)
    first, second = rng.standard_normal((2, 4, 3))
    steps = []
    for rate in (0.01, 0.03):
        optimizer, weight = cls(learning_rate=0.01), start.copy()
        optimizer.apply([weight], [first])
        optimizer.learning_rate = rate
        before = weight.copy()
        optimizer.apply([weight], [second])
        steps.append(weight - before)
    # Every one of these steps (AdamW's decay too) is proportional to the rate.
    np.testing.assert_allclose(steps[1], 3 * steps[0], rtol=1e-6)


@pytest.mark.parametrize("value", [0, 0.0, -0.1, np.nan, np.inf, -np.inf, "0.1", None, True,
                                   [0.1], np.array([0.1])])
@pytest.mark.parametrize("cls", ALL_OPTIMIZERS)
def test_bad_learning_rates_are_refused(cls, value):
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        cls(learning_rate=value)
    optimizer = cls(learning_rate=0.02)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = value
    assert optimizer.learning_rate == 0.02


def test_learning_rate_is_stored_as_a_float():
    optimizer = optimizers.Adam(np.float32(0.5))
    assert type(optimizer.learning_rate) is float
    optimizer.learning_rate = 2
    assert type(optimizer.learning_rate) is float and optimizer.get_config()["learning_rate"] == 2.0

"""Target transforms for forecasting, each with an exact inverse.

A forecasting network learns a series best in a form whose statistics do
not drift: a rising price is learnt as its changes, a season that grows
with the level as the changes of its logarithm. ``TargetTransform`` maps a
series into that model space and back:

1. ``log``: the natural logarithm (positive series only);
2. ``seasonal_diff``: the change since one season earlier, y[t] - y[t - s];
3. ``diff``: the change since the step before, y[t] - y[t - 1];
4. scaling fitted on the training span: to zero mean and unit variance, or,
   with per-window scaling (``window_last`` / ``window_mean``), to unit
   step changes with every model input window then taken relative to its
   own last value or mean (its anchor), which the model's output is
   relative to as well.

Forecasts are made in model space, step after step, and mapped back once
at the end: ``inverse(z_future, history)`` undoes the scaling, then each
difference by adding back the values one lag earlier (the history's, then
the forecast's own), then the logarithm. ``inverse(forward(y)[k:], y[:k])``
gives back y's continuation to float64 rounding.

A transform is named by its steps joined with "+", e.g. "log+diff" or
"seasonal_diff+window_last"; "level" is scaling alone.
"""
import math
import reprlib
from dataclasses import dataclass

import numpy as np

from ._validation import checked_int

__all__ = ["TransformSpec", "TargetTransform", "TRANSFORM_STEPS", "WINDOW_SCALINGS",
           "kpss_statistic", "level_stationary"]

# The 5% critical value of the KPSS level-stationarity statistic
# (Kwiatkowski, Phillips, Schmidt and Shin 1992, table 1).
KPSS_CRITICAL_5_PERCENT = 0.463

TRANSFORM_STEPS = ("log", "seasonal_diff", "diff")
WINDOW_SCALINGS = ("window_last", "window_mean")


@dataclass(frozen=True)
class TransformSpec:
    """Which steps a target transform takes (see the module docstring).

    Attributes
    ----------
    log, seasonal_diff, diff : bool
    window_scaling : {None, "last", "mean"}
        Each model input window taken relative to its last value or mean.
    """

    log: bool = False
    seasonal_diff: bool = False
    diff: bool = False
    window_scaling: str = None

    def __post_init__(self):
        if self.window_scaling not in (None, "last", "mean"):
            raise ValueError(f"window_scaling must be None, 'last' or 'mean', "
                             f"got {self.window_scaling!r}")

    @property
    def name(self):
        """The steps joined with "+", or "level" for scaling alone."""
        steps = [step for step in TRANSFORM_STEPS if getattr(self, step)]
        if self.window_scaling:
            steps.append(f"window_{self.window_scaling}")
        return "+".join(steps) or "level"

    @classmethod
    def parse(cls, name):
        """The spec named `name`, e.g. "level", "diff", "log+seasonal_diff+diff",
        "window_last" (steps in any order, each at most once)."""
        if not isinstance(name, str):
            raise TypeError(f"transform must be a str such as 'log+diff', got {name!r}")
        if name == "level":
            return cls()
        parts = name.split("+")
        known = TRANSFORM_STEPS + WINDOW_SCALINGS
        unknown = [part for part in parts if part not in known]
        if unknown or len(set(parts)) != len(parts):
            raise ValueError(f"transform {name!r}: expected 'level' or steps from "
                             f"{list(known)} joined by '+', each at most once")
        scalings = [part for part in parts if part in WINDOW_SCALINGS]
        if len(scalings) > 1:
            raise ValueError(f"transform {name!r}: choose one of {list(WINDOW_SCALINGS)}")
        return cls(log="log" in parts, seasonal_diff="seasonal_diff" in parts,
                   diff="diff" in parts,
                   window_scaling=scalings[0][len("window_"):] if scalings else None)


class TargetTransform:
    """A target transform, fitted on a training span.

    Parameters
    ----------
    spec : TransformSpec or str
    season : int >= 1
        The lag of ``seasonal_diff`` (needs season >= 2).

    Attributes
    ----------
    offset_, scale_ : float
        The scaling: z = (u - offset_) / scale_, u the differenced series.
    """

    def __init__(self, spec, season=1):
        self.spec = TransformSpec.parse(spec) if isinstance(spec, str) else spec
        if not isinstance(self.spec, TransformSpec):
            raise TypeError(f"spec must be a TransformSpec or its name, got {spec!r}")
        self.season = checked_int("season", season, 1)
        if self.spec.seasonal_diff and self.season < 2:
            raise ValueError(f"transform {self.spec.name!r} differences at the season, but the "
                             "season is 1: pass season >= 2 or choose another transform")
        self.offset_ = None
        self.scale_ = None

    @property
    def lags(self):
        """The differencing lags, in the order they are taken."""
        return ((self.season,) if self.spec.seasonal_diff else ()) + \
            ((1,) if self.spec.diff else ())

    @property
    def lost(self):
        """Values at the start of a series that have no model-space value."""
        return sum(self.lags)

    def __repr__(self):
        return f"TargetTransform({self.spec.name!r}, season={self.season})"

    # ------------------------------------------------------------- fitting

    def _checked(self, values, name):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
        if self.spec.log and values.size and not (values > 0).all():
            raise ValueError(f"transform {self.spec.name!r} takes the logarithm: {name} must be "
                             f"positive, but its smallest value is {values.min():g}")
        return values

    def _differenced(self, values):
        u = np.log(values) if self.spec.log else values
        for lag in self.lags:
            u = u[lag:] - u[:-lag]
        return u

    def fit(self, values):
        """Fit the scaling on a training span `values` of shape (n,), n > lost + 1."""
        values = self._checked(values, "values")
        if len(values) < self.lost + 2:
            raise ValueError(f"transform {self.spec.name!r} needs at least {self.lost + 2} "
                             f"values to fit, got {len(values)}")
        u = self._differenced(values)
        if self.spec.window_scaling:
            # Inputs are taken relative to an anchor, so only the size of a
            # step matters: changes of one step become of unit size.
            offset, scale = 0.0, float(np.std(np.diff(u)))
        else:
            offset, scale = float(np.mean(u)), float(np.std(u))
        if not (math.isfinite(scale) and math.isfinite(offset)):
            raise ValueError("the values lie too far apart to scale (their spread overflows "
                             "float64)")
        self.offset_ = offset
        self.scale_ = scale if scale > 0 else 1.0
        return self

    def _check_fitted(self):
        if self.scale_ is None:
            raise RuntimeError("this TargetTransform is not fitted yet: call fit first")

    # ------------------------------------------------------- the mapping

    def forward(self, values):
        """Model-space values of a series.

        Parameters
        ----------
        values : array_like of shape (n,)

        Returns
        -------
        ndarray of shape (n - lost,)
            Element i belongs to time ``i + lost`` of the series.
        """
        self._check_fitted()
        values = self._checked(values, "values")
        if len(values) <= self.lost:
            raise ValueError(f"transform {self.spec.name!r} needs more than {self.lost} values, "
                             f"got {len(values)}")
        return (self._differenced(values) - self.offset_) / self.scale_

    def inverse(self, z, history):
        """The series values after `history` whose model-space values are `z`.

        Parameters
        ----------
        z : array_like of shape (..., steps)
            Model-space values of the `steps` times after the history, for
            one or more paths (leading axes).
        history : array_like of shape (..., n), n >= lost
            The series up to the forecast origin, one per path (broadcast).

        Returns
        -------
        ndarray of shape (..., steps)
        """
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        history = np.asarray(history, dtype=np.float64)
        if history.shape[-1] < max(self.lost, 1):
            raise ValueError(f"inverting {self.spec.name!r} needs the last {max(self.lost, 1)} "
                             f"values before the forecast, got {history.shape[-1]}")
        levels = [np.log(history) if self.spec.log else history]  # history of every stage
        for lag in self.lags:
            previous = levels[-1]
            levels.append(previous[..., lag:] - previous[..., :-lag])
        u = z * self.scale_ + self.offset_
        for lag, level in zip(reversed(self.lags), reversed(levels[:-1])):
            u = _undifference(u, level[..., -lag:], lag)
        return np.exp(u) if self.spec.log else u

    # --------------------------------------------------- per-window anchors

    def anchors(self, windows):
        """The anchor of each model-space window: 0 without per-window scaling.

        Parameters
        ----------
        windows : ndarray of shape (..., window)

        Returns
        -------
        ndarray of shape (..., 1)
        """
        if self.spec.window_scaling == "last":
            return windows[..., -1:]
        if self.spec.window_scaling == "mean":
            return windows.mean(axis=-1, keepdims=True)
        return np.zeros(windows.shape[:-1] + (1,))

    def no_change(self, windows):
        """The model-space value of the forecast "no change", (..., 1): every
        difference 0 (persistence after ``diff``, seasonal naive after
        ``seasonal_diff``), or the window's last value without differencing.

        Parameters
        ----------
        windows : ndarray of shape (..., window), model-space values
        """
        if self.lags:
            return np.full(windows.shape[:-1] + (1,), -self.offset_ / self.scale_)
        return windows[..., -1:]

    # ---------------------------------------------------------------- JSON

    def to_dict(self):
        """The spec, season and fitted scaling as JSON-ready data."""
        self._check_fitted()
        return {"transform": self.spec.name, "season": self.season,
                "offset": self.offset_, "scale": self.scale_}

    @classmethod
    def from_dict(cls, data):
        """Rebuild a fitted transform from ``to_dict()``; ValueError when damaged."""
        if not isinstance(data, dict):
            raise ValueError(f"not a saved transform: expected a dict, got {type(data).__name__}")
        try:
            transform = cls(data["transform"], data["season"])
            offset, scale = data["offset"], data["scale"]
        except KeyError as e:
            raise ValueError(f"not a saved transform: it has no {e.args[0]!r}") from None
        except TypeError as e:
            raise ValueError(f"not a saved transform: {e}") from None
        for name, value in (("offset", offset), ("scale", scale)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise ValueError(f"not a saved transform: {name} must be a finite number, "
                                 f"got {reprlib.repr(value)}")
        if scale <= 0:
            raise ValueError(f"not a saved transform: scale must be > 0, got {scale!r}")
        transform.offset_, transform.scale_ = float(offset), float(scale)
        return transform


def _undifference(changes, last, lag):
    """The values whose `lag`-step changes are `changes` (..., steps), given
    the `lag` values before them, `last` (..., lag)."""
    steps = changes.shape[-1]
    shape = np.broadcast_shapes(changes.shape[:-1], last.shape[:-1])
    values = np.empty(shape + (lag + steps,))
    values[..., :lag] = last
    changes = np.broadcast_to(changes, shape + (steps,))
    for k in range(steps):
        values[..., lag + k] = values[..., k] + changes[..., k]
    return values[..., lag:]


def kpss_statistic(values):
    """The KPSS statistic of level stationarity of `values` (n,), n >= 3.

    The sum of squared partial sums of the deviations from the mean, over
    n^2 times the long-run variance (Bartlett weights, 4 (n/100)^(1/4)
    lags). Large when the series wanders (a trend, a unit root).
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 3:
        raise ValueError(f"the KPSS statistic needs at least 3 values, got {n}")
    deviations = values - values.mean()
    partial = np.cumsum(deviations)
    variance = deviations @ deviations / n
    lags = min(int(4 * (n / 100) ** 0.25), n - 1)
    for k in range(1, lags + 1):
        variance += 2 * (1 - k / (lags + 1)) * (deviations[k:] @ deviations[:-k]) / n
    if variance <= 0:
        return 0.0  # a constant series
    return float(partial @ partial / (n * n * variance))


def level_stationary(values):
    """Whether the KPSS test at 5% leaves `values` level-stationary."""
    return kpss_statistic(values) <= KPSS_CRITICAL_5_PERCENT

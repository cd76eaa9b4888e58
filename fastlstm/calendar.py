"""Dates of a time series: their frequency, gaps, future dates and calendar features.

Dates are NumPy ``datetime64`` arrays (any unit); nothing here imports pandas
unless ``as_dated`` is handed a pandas object.

- ``Frequency``: the step between observations ("h", "D", "B", "MS", ...),
  with the usual seasonal period and ``shift`` to step dates forward.
- ``infer_frequency(dates)``: the frequency of sorted, unique dates, from
  their most common spacing, so gaps do not hide it.
- ``find_gaps(dates, frequency)``: where whole steps are missing.
- ``future_dates(last_date, frequency, steps)``: the dates a forecast covers.
- ``calendar_features(dates, features)``: sin/cos encodings of the hour,
  day of week, month, ..., for a model's inputs;
  ``default_calendar_features(frequency)`` picks the sensible ones.
- ``as_dated(obj)``: values and dates of a list, array, fastlstm TimeSeries,
  or pandas Series/DataFrame.
"""
import math
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple, Union

import numpy as np

__all__ = ["Frequency", "Gap", "DatedValues", "FREQUENCIES", "MONTH_END", "infer_frequency",
           "find_gaps", "step_counts", "future_dates", "calendar_features",
           "default_calendar_features",
           "CALENDAR_FEATURES", "as_dated"]

_DAY = np.timedelta64(1, "D")
_FIXED_UNITS = {"s": np.timedelta64(1, "s"), "min": np.timedelta64(1, "m"),
                "h": np.timedelta64(1, "h"), "D": _DAY}
# Steps of each unit in the next larger natural cycle: the usual season.
_CYCLE = {"s": 60, "min": 60, "h": 24, "D": 7}
_MONTHLY = {1: ("MS", 12), 3: ("QS", 4), 12: ("YS", 1)}
# Frequency.anchor_day of monthly dates that are all their month's last day.
MONTH_END = -1


@dataclass(frozen=True)
class Frequency:
    """The step between consecutive observations.

    Attributes
    ----------
    name : str
        "s", "min", "h", "D", "B" (business days, Monday to Friday), "W",
        "MS" (monthly), "QS" (quarterly), "YS" (yearly); a whole multiple of
        a fixed unit is written with its count, e.g. "15min" or "2h".
    step : numpy.timedelta64 or int
        A fixed step as a timedelta64 (one day for "B", whose weekends are
        skipped by ``shift``), or a whole number of months for "MS", "QS"
        and "YS".
    season : int
        The usual seasonal period in steps: 60 for "s" and "min", 24 for
        "h", 7 for "D", 5 for "B", 52 for "W", 12 for "MS", 4 for "QS",
        1 for "YS" (no season); for a multiple, the steps in that cycle when
        the multiple divides it, else 1.
    anchor_day : int or None
        For monthly steps, the day of month the dates keep (1 .. 31, clipped
        to shorter months), MONTH_END when every date is its month's last
        day, or None to keep the day of each date shifted. ``infer_frequency``
        sets it; it is not part of equality (an "MS" series on the 1st and
        one on the 15th have the same frequency).
    """

    name: str
    step: Union[np.timedelta64, int]
    season: int
    anchor_day: Optional[int] = field(default=None, compare=False)

    @property
    def is_monthly(self):
        """True when the step is a number of calendar months (MS, QS, YS)."""
        return not isinstance(self.step, np.timedelta64)

    def shift(self, dates, k):
        """`dates` moved forward by `k` steps (k may be negative or an array).

        Monthly steps keep ``anchor_day`` (clipped to the month's length) for a
        date on it, or on a shorter month's last day below it, and otherwise
        the date's own day (clipped); with ``anchor_day`` MONTH_END a month's
        last day stays its last day. Business-day steps skip weekends.

        Parameters
        ----------
        dates : datetime64 scalar or array
        k : int or array of int, broadcast against `dates`

        Returns
        -------
        numpy.datetime64 or ndarray of datetime64
        """
        dates = np.asarray(dates)
        if dates.dtype.kind != "M":
            raise TypeError(f"dates must be datetime64, got dtype {dates.dtype}")
        k = np.asarray(k)
        if k.dtype.kind not in "iu":
            raise TypeError(f"k must be a whole number of steps, got dtype {k.dtype}")
        if self.is_monthly:
            result = _add_months(dates, k * self.step, self.anchor_day)
        elif self.name == "B":
            days = dates.astype("datetime64[D]")
            result = np.busday_offset(days, k, roll="forward") + (dates - days)
        else:
            result = dates + k * self.step
        return result[()] if result.ndim == 0 else result


def _fixed_frequency(step):
    """The Frequency of a positive timedelta64 step, named by its largest whole unit."""
    if step == np.timedelta64(7, "D"):
        return Frequency("W", np.timedelta64(7, "D"), 52)
    for unit in ("D", "h", "min", "s"):
        size = _FIXED_UNITS[unit]
        if step % size == np.timedelta64(0, "s"):
            count = int(step // size)
            cycle = _CYCLE[unit]
            season = cycle // count if cycle % count == 0 else 1
            return Frequency(unit if count == 1 else f"{count}{unit}", count * size, season)
    return None  # sub-second steps have no named frequency


FREQUENCIES = {
    "s": Frequency("s", np.timedelta64(1, "s"), 60),
    "min": Frequency("min", np.timedelta64(1, "m"), 60),
    "h": Frequency("h", np.timedelta64(1, "h"), 24),
    "D": Frequency("D", _DAY, 7),
    "B": Frequency("B", _DAY, 5),
    "W": Frequency("W", np.timedelta64(7, "D"), 52),
    "MS": Frequency("MS", 1, 12),
    "QS": Frequency("QS", 3, 4),
    "YS": Frequency("YS", 12, 1),
}


@dataclass(frozen=True)
class Gap:
    """Whole steps missing between two consecutive observations.

    Attributes
    ----------
    after, before : numpy.datetime64
        The observations on either side of the gap.
    missing : int
        How many steps of the frequency are absent between them.
    """

    after: np.datetime64
    before: np.datetime64
    missing: int


@dataclass(frozen=True)
class DatedValues:
    """Values with their dates, as ``as_dated`` returns them.

    Attributes
    ----------
    values : ndarray of shape (n,) or (n, k), float64
    dates : ndarray of shape (n,), datetime64, or None when the input had no dates
    names : tuple of str
        One name per column (one for a 1-D series).
    """

    values: np.ndarray
    dates: Optional[np.ndarray]
    names: Tuple[str, ...]


def _month_parts(dates):
    """Month (datetime64[M]), 0-based day in month, last-day flag and time of day."""
    days = dates.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    day = (days - months.astype("datetime64[D]")).astype(np.int64)
    last = (days + _DAY).astype("datetime64[M]") != months
    return months, day, last, dates - days


def _month_length(months):
    """The number of days in each month of a datetime64[M] array."""
    return ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(np.int64)


def _add_months(dates, months_ahead, anchor_day=None):
    """`dates` moved by whole months, keeping the anchor day as Frequency.shift says."""
    months, day, last, time_of_day = _month_parts(dates)
    if anchor_day == MONTH_END:
        day = np.where(last, 31, day)
    elif anchor_day is not None:
        anchor = anchor_day - 1  # 0-based, as `day`
        on_anchor = (day == anchor) | (last & (day < anchor))
        day = np.where(on_anchor, anchor, day)
    target = months + months_ahead
    return target.astype("datetime64[D]") + np.minimum(day, _month_length(target) - 1) + \
        time_of_day


def _checked_dates(dates, name="dates"):
    """`dates` as a 1-D datetime64 array, sorted and unique, or an error naming the row."""
    array = np.asarray(dates)
    if array.dtype.kind != "M":
        raise TypeError(f"{name} must be datetime64, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {array.shape}")
    if np.isnat(array).any():
        row = int(np.flatnonzero(np.isnat(array))[0])
        raise ValueError(f"{name} row {row} is NaT (not a date)")
    row = _first_out_of_order(array)
    if row is not None:
        what = "repeats" if array[row] == array[row - 1] else "comes before"
        raise ValueError(f"{name} must be sorted and unique: row {row} ({array[row]}) "
                         f"{what} row {row - 1} ({array[row - 1]})")
    return array


def _first_out_of_order(dates, descending=False):
    """The first row of `dates` not after (before, when `descending`) the row
    before it, or None when they increase (decrease) throughout."""
    steps = np.diff(dates)
    zero = np.timedelta64(0, "s")
    wrong = steps >= zero if descending else steps <= zero
    return int(np.flatnonzero(wrong)[0]) + 1 if wrong.any() else None


def _monthly_frequency(dates):
    """MS, QS or YS when every date sits on one day of its month (or its last day)."""
    months, day, last, time_of_day = _month_parts(dates)
    if (time_of_day != time_of_day[0]).any():
        return None
    anchor = day.max()  # shorter months clip it to their last day
    if not ((day == anchor) | (last & (day < anchor))).all():
        return None
    spacings, counts = np.unique(np.diff(months.astype(np.int64)), return_counts=True)
    step = int(spacings[np.argmax(counts)])
    if step not in _MONTHLY:
        return None
    anchor_day = MONTH_END if last.all() else int(anchor) + 1
    return replace(FREQUENCIES[_MONTHLY[step][0]], anchor_day=anchor_day)


def _is_business_daily(dates, step):
    """Daily steps, no weekend date, and weekends skipped at least once."""
    if step != _DAY:
        return False
    days = dates.astype("datetime64[D]")
    if not np.is_busday(days).all():
        return False
    return bool((np.busday_count(days[:-1], days[1:]) < (days[1:] - days[:-1]).astype(int)).any())


def infer_frequency(dates):
    """The frequency of observations at `dates`, from their most common spacing.

    Gaps (missing observations) do not change the answer as long as the regular
    spacing stays the most common one. Dates that all fall on one day of their
    month (or on the month's last day) are monthly, quarterly or yearly by their
    most common spacing in months, whatever the months' lengths. Daily dates
    that never fall on a Saturday or Sunday, and skip a weekend at least once,
    are business days ("B").

    Parameters
    ----------
    dates : array_like of shape (n,), datetime64
        Sorted, without repeats.

    Returns
    -------
    Frequency or None
        None for fewer than 2 dates, or a spacing with no named frequency
        (e.g. every 5 weeks, or sub-second).

    Raises
    ------
    TypeError
        `dates` is not datetime64.
    ValueError
        Unsorted or repeated dates (naming the first offending row), NaT.
    """
    dates = _checked_dates(dates)
    if len(dates) < 2:
        return None
    monthly = _monthly_frequency(dates)
    if monthly is not None:
        return monthly
    spacings, counts = np.unique(np.diff(dates), return_counts=True)
    step = spacings[np.argmax(counts)]  # ties: the shortest spacing
    if _is_business_daily(dates, step):
        return FREQUENCIES["B"]
    return _fixed_frequency(step)


def step_counts(dates, frequency):
    """How many steps of `frequency` separate each pair of consecutive dates.

    Parameters
    ----------
    dates : ndarray of shape (n,), datetime64, sorted and unique
    frequency : Frequency

    Returns
    -------
    ndarray of shape (n - 1,), int
        1 between neighbours on the frequency's grid, k + 1 across k missing
        steps, 0 for dates closer than one step.
    """
    if frequency.is_monthly:
        months = dates.astype("datetime64[M]").astype(np.int64)
        return np.diff(months) // frequency.step
    if frequency.name == "B":
        days = dates.astype("datetime64[D]")
        return np.busday_count(days[:-1], days[1:])
    return np.diff(dates) // frequency.step


def _checked_frequency(frequency):
    if not isinstance(frequency, Frequency):
        raise TypeError(f"frequency must be a Frequency (see infer_frequency), "
                        f"got {type(frequency).__name__}")
    return frequency


def find_gaps(dates, frequency):
    """Where observations are missing: consecutive dates more than one step apart.

    Parameters
    ----------
    dates : array_like of shape (n,), datetime64, sorted and unique
    frequency : Frequency

    Returns
    -------
    list of Gap
        In date order; empty when no whole step is missing. Business-day
        series count only weekdays, so weekends are never gaps.

    Raises
    ------
    TypeError, ValueError
        As ``infer_frequency`` for `dates`; a `frequency` that is not a Frequency.
    """
    dates = _checked_dates(dates)
    frequency = _checked_frequency(frequency)
    if len(dates) < 2:
        return []
    counts = step_counts(dates, frequency)
    return [Gap(after=dates[i], before=dates[i + 1], missing=int(counts[i] - 1))
            for i in np.flatnonzero(counts > 1)]


def future_dates(last_date, frequency, steps):
    """The `steps` dates after `last_date` at `frequency`.

    Parameters
    ----------
    last_date : numpy.datetime64 (or a string NumPy parses as one)
    frequency : Frequency
    steps : int >= 1

    Returns
    -------
    ndarray of shape (steps,), datetime64
    """
    from ._validation import checked_int
    frequency = _checked_frequency(frequency)
    steps = checked_int("steps", steps, 1)
    last = np.asarray(last_date)
    if last.dtype.kind == "U":
        try:
            last = last.astype("datetime64")
        except ValueError:
            raise ValueError(f"last_date {last_date!r} is not a date") from None
    if last.dtype.kind != "M" or last.ndim != 0 or np.isnat(last):
        raise TypeError(f"last_date must be one datetime64, got {last_date!r}")
    return frequency.shift(last, np.arange(1, steps + 1))


def _day_of_month(dates):
    months, day, last, time_of_day = _month_parts(dates)
    return day, _month_length(months)


def _day_of_year(dates):
    days = dates.astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    start = years.astype("datetime64[D]")
    length = ((years + 1).astype("datetime64[D]") - start).astype(np.int64)
    return (days - start).astype(np.int64), length


def _time_of_day_seconds(dates):
    return (dates - dates.astype("datetime64[D]")) / np.timedelta64(1, "s")


# Each feature: its 0-based position in its cycle and the cycle's length.
CALENDAR_FEATURES = {
    "minute": lambda d: ((_time_of_day_seconds(d) // 60) % 60, 60),
    "hour": lambda d: (_time_of_day_seconds(d) // 3600, 24),
    "dayofweek": lambda d: ((d.astype("datetime64[D]").astype(np.int64) + 3) % 7, 7),  # Monday 0
    "dayofmonth": _day_of_month,
    "dayofyear": _day_of_year,
    "month": lambda d: (d.astype("datetime64[M]").astype(np.int64) % 12, 12),
}


def calendar_features(dates, features=("hour", "dayofweek", "month")):
    """Sine and cosine of each date's position in calendar cycles.

    A feature at position p of a cycle of length L (hour p of 24, day of week
    p of 7 with Monday 0, month p of 12 with January 0, day p of the month or
    year with the first day 0) becomes ``sin(2 pi p / L), cos(2 pi p / L)``,
    so the end of a cycle sits next to its start.

    Parameters
    ----------
    dates : array_like of shape (n,), datetime64
    features : sequence of str
        Names from CALENDAR_FEATURES: "minute", "hour", "dayofweek",
        "dayofmonth", "dayofyear", "month".

    Returns
    -------
    ndarray of shape (n, 2 * len(features)), float64
        Columns sin, cos of the first feature, then of the second, ...
    """
    dates = np.asarray(dates)
    if dates.dtype.kind != "M" or dates.ndim != 1:
        raise TypeError(f"dates must be a 1-D datetime64 array, got dtype {dates.dtype} "
                        f"and shape {dates.shape}")
    if np.isnat(dates).any():
        raise ValueError(f"dates row {int(np.flatnonzero(np.isnat(dates))[0])} is NaT")
    if isinstance(features, str):
        features = (features,)
    features = tuple(features)
    unknown = [f for f in features if f not in CALENDAR_FEATURES]
    if unknown:
        raise ValueError(f"unknown calendar feature {unknown[0]!r}; valid: {list(CALENDAR_FEATURES)}")
    out = np.empty((len(dates), 2 * len(features)))
    for i, feature in enumerate(features):
        position, length = CALENDAR_FEATURES[feature](dates)
        angle = 2 * math.pi * np.asarray(position, dtype=np.float64) / length
        out[:, 2 * i] = np.sin(angle)
        out[:, 2 * i + 1] = np.cos(angle)
    return out


def default_calendar_features(frequency):
    """The calendar features worth giving a model of data at `frequency`.

    Sub-daily: hour and day of week; daily and business-daily: day of week and
    month; weekly, monthly and quarterly: month; yearly or unknown: none.

    Returns
    -------
    tuple of str
    """
    if frequency is None:
        return ()
    frequency = _checked_frequency(frequency)
    if frequency.is_monthly:
        return () if frequency.name == "YS" else ("month",)
    if frequency.step < _DAY:
        return ("hour", "dayofweek")
    if frequency.step < np.timedelta64(7, "D"):
        return ("dayofweek", "month")
    return ("month",) if frequency.step < np.timedelta64(365, "D") else ()


def _tidy_unit(dates):
    """datetime64[D] when every date is a midnight, [s] when whole seconds, else as given."""
    if len(dates) and (dates == dates.astype("datetime64[D]")).all():
        return dates.astype("datetime64[D]")
    if len(dates) and (dates == dates.astype("datetime64[s]")).all():
        return dates.astype("datetime64[s]")
    return dates


def _finite_values(array, name, names):
    values = np.array(array, dtype=np.float64)  # always a copy: the caller's data stays theirs
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1) if values.ndim == 2 else bad)[0])
        column = f" column {names[int(np.flatnonzero(bad[row])[0])]!r}" if values.ndim == 2 else ""
        raise ValueError(f"{name}{column} holds NaN or infinity at row {row}; fill or drop "
                         "missing values first (e.g. fastlstm.datasets.fill_missing)")
    return values


def _pandas_dates(index):
    """The dates of a pandas index as datetime64, or None when it holds no dates."""
    kind = type(index).__name__
    if kind == "PeriodIndex":
        index = index.to_timestamp()
        kind = "DatetimeIndex"
    if kind != "DatetimeIndex":
        return None
    if getattr(index, "tz", None) is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return _tidy_unit(np.asarray(index.to_numpy(), dtype="datetime64[ns]"))


def _numeric_pandas(values, name, label):
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    if kind not in "biuf":
        raise TypeError(f"{name}: column {label!r} must be numeric, got dtype {values.dtype}")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _from_pandas(obj, name):
    if hasattr(obj, "columns"):  # a DataFrame
        date_columns = [c for c in obj.columns if getattr(obj[c].dtype, "kind", "") == "M"]
        dates = _pandas_dates(obj.index)
        if dates is None and len(date_columns) == 1:
            column = obj[date_columns[0]]
            if getattr(column.dt, "tz", None) is not None:
                column = column.dt.tz_convert("UTC").dt.tz_localize(None)
            dates = _tidy_unit(np.asarray(column.to_numpy(), dtype="datetime64[ns]"))
        value_columns = [c for c in obj.columns if c not in date_columns]
        if not value_columns:
            raise ValueError(f"{name} has no value columns")
        names = tuple(str(c) for c in value_columns)
        values = np.column_stack([_numeric_pandas(obj[c], name, c) for c in value_columns])
        return _finite_values(values, name, names), dates, names
    label = name if obj.name is None else str(obj.name)
    values = _numeric_pandas(obj, name, label)
    return _finite_values(values, name, (label,)), _pandas_dates(obj.index), (label,)


def as_dated(obj, name="series"):
    """The values of a series and, when it has them, their dates.

    Parameters
    ----------
    obj : array_like of shape (n,) or (n, k), fastlstm TimeSeries, or a pandas
        Series or DataFrame
        Dates come from a TimeSeries' ``dates``, a pandas DatetimeIndex or
        PeriodIndex (period starts; time-zone-aware dates in UTC), or a
        DataFrame's single datetime column. pandas is only imported by pandas
        objects themselves; the caller's object is never changed.
    name : str
        What to call the object in error messages (and a nameless Series).

    Returns
    -------
    DatedValues
        ``values`` (n,) for a 1-D array, list or pandas Series, (n, k) for a
        2-D array, TimeSeries or DataFrame; ``dates`` datetime64 (n,) or None
        (datetime64[D] when all are midnights); ``names`` one per column.

    Raises
    ------
    TypeError
        Non-numeric values (naming the column).
    ValueError
        Empty input, more than 2 dimensions, NaN or infinity (naming the row),
        or dates of another length.
    """
    module = type(obj).__module__ or ""
    if module.split(".")[0] == "pandas" and hasattr(obj, "index") and hasattr(obj, "to_numpy"):
        values, dates, names = _from_pandas(obj, name)
    elif hasattr(obj, "values") and hasattr(obj, "columns") and hasattr(obj, "index"):
        names = tuple(obj.columns)
        values = _finite_values(obj.values, name, names)
        dates = getattr(obj, "dates", None)
        dates = None if dates is None else np.array(dates)
    else:
        array = np.asarray(obj)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        if array.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape (n,) or (n, k), got {array.shape}")
        names = (name,) if array.ndim == 1 else tuple(f"{name}[{j}]" for j in range(array.shape[1]))
        values, dates = _finite_values(array, name, names), None
    if len(values) == 0:
        raise ValueError(f"{name} is empty")
    if dates is not None and len(dates) != len(values):
        raise ValueError(f"{name} has {len(values)} values but {len(dates)} dates")
    return DatedValues(values=values, dates=dates, names=names)

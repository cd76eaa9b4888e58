"""What a Forecaster is given, turned into checked series records.

One series is an array, a list of numbers, a fastlstm TimeSeries or a
pandas Series/DataFrame (a DatetimeIndex gives its dates). A DataFrame or
TimeSeries of several columns names the one to forecast with ``target``;
its other columns become past covariates. Many series are a list or a dict
of those, or a long table (a pandas DataFrame or a dict of columns) with
a column of series ids, ``id_column``.
"""
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import calendar

__all__ = ["SeriesInput", "series_inputs"]


@dataclass
class SeriesInput:
    """One checked series.

    Attributes
    ----------
    id : str or int
        Its name among many (0 for a single series without one).
    name : str
        What its values are (the column name).
    values : ndarray of shape (n,), float64, finite
    dates : ndarray of shape (n,), datetime64, increasing, or None
    covariates : ndarray of shape (n, k), float64, finite, or None
    covariate_names : tuple of str
    """

    id: object
    name: str
    values: np.ndarray
    dates: np.ndarray = None
    covariates: np.ndarray = None
    covariate_names: tuple = ()

    def __len__(self):
        return len(self.values)

    def head(self, n):
        """The first `n` steps of the series, covariates and dates."""
        return SeriesInput(self.id, self.name, self.values[:n],
                           None if self.dates is None else self.dates[:n],
                           None if self.covariates is None else self.covariates[:n],
                           self.covariate_names)


def _is_scalar(value):
    return isinstance(value, (numbers.Number, np.generic, str, bytes)) or value is None


def _is_long_table(series, id_column):
    if id_column is None:
        return False
    try:
        return id_column in series.columns  # pandas
    except AttributeError:
        return isinstance(series, Mapping) and id_column in series


def _numeric(name, values):
    """`values` as float64, or a TypeError naming the series and its dtype."""
    array = np.asarray(values)
    if array.dtype == object:  # numbers as Python objects (a pandas column), or text
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold numbers; it holds "
                            f"{type(array.flat[0]).__name__} values such as "
                            f"{array.flat[0]!r}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _checked_finite(name, values, dates):
    """A ValueError for a NaN or infinite value, saying where the first one is."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
    if np.isnan(values).all():
        raise ValueError(f"{name} is all NaN: there is nothing to forecast from")
    where = f"position {rows[0]}" + ("" if dates is None else f" ({dates[rows[0]]})")
    raise ValueError(f"{name} has {len(rows)} missing or infinite values, the first at "
                     f"{where}: fill or drop them before forecasting")


def _checked_dates(name, dates, n):
    if dates is None:
        return None
    dates = np.asarray(dates)
    if dates.dtype.kind != "M" or dates.shape != (n,):
        raise ValueError(f"the dates of {name} must be datetime64 of shape ({n},), "
                         f"got {dates.dtype} {dates.shape}")
    if n > 1 and not (np.diff(dates) > np.timedelta64(0)).all():
        raise ValueError(f"the dates of {name} must increase strictly")
    return dates


def _one_series(series, covariates, target, series_id, label):
    """A SeriesInput from one series object and its covariates."""
    values, dates, names = _dated(series, label)
    values = _numeric(label, values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    extra, extra_names = None, ()
    if values.ndim == 2:
        if target is None:
            raise ValueError(f"{label} has {values.shape[1]} columns {list(names)}: pass "
                             "target= the column to forecast (the others become covariates)")
        if target not in names:
            raise ValueError(f"{label} has no column {target!r}; its columns are {list(names)}")
        column = names.index(target)
        extra = np.delete(values, column, axis=1)
        extra_names = tuple(n for k, n in enumerate(names) if k != column)
        values, names = values[:, column], (target,)
    if values.ndim != 1:
        raise ValueError(f"{label} must have shape (n,) or (n, columns), got {values.shape}")
    name = names[0] if names else label
    dates = _checked_dates(label, dates, len(values))
    _checked_finite(label, values, dates)
    if covariates is not None:
        if extra is not None:
            raise ValueError(f"{label}: pass covariates either as its other columns or as "
                             "covariates=, not both")
        cov = calendar.as_dated(covariates, name="covariates")
        extra, extra_names = _numeric(f"the covariates of {label}", cov.values), \
            tuple(str(n) for n in cov.names)
        if extra.ndim == 1:
            extra = extra[:, None]
        if extra.ndim != 2 or len(extra) != len(values):
            raise ValueError(f"the covariates of {label} must have shape ({len(values)}, k), "
                             f"one row per value, got {extra.shape}")
    if extra is not None:
        _checked_finite(f"the covariates of {label}", extra, dates)
        if extra.shape[1] == 0:
            extra = None
    return SeriesInput(series_id, name, values, dates, extra, extra_names)


@dataclass
class _Columns:
    """Named columns of one series of a long table given as a dict of arrays."""

    values: np.ndarray  # (n, k)
    names: tuple
    dates: np.ndarray = None


def _dated(series, label):
    """(values, dates or None, names) of one series object."""
    if isinstance(series, _Columns):
        return series.values, series.dates, series.names
    dated = calendar.as_dated(series, name=label)
    return dated.values, dated.dates, tuple(str(n) for n in dated.names)


def _split_long_table(table, id_column):
    """{id: the rows of that id without the id column}, ids in first-seen order."""
    if hasattr(table, "groupby"):  # pandas
        return {key: group.drop(columns=[id_column])
                for key, group in table.groupby(id_column, sort=False)}
    columns = {str(name): np.asarray(column) for name, column in table.items()}
    lengths = {len(column) for column in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"the columns of the long table have different lengths: "
                         f"{sorted(lengths)}")
    ids = columns.pop(str(id_column))
    if not columns:
        raise ValueError(f"the long table has no column besides {id_column!r}")
    dates = None
    for name in list(columns):
        if columns[name].dtype.kind == "M":
            dates = columns.pop(name)
    _, first = np.unique(ids, return_index=True)
    groups = {}
    for key in ids[np.sort(first)]:
        rows = ids == key
        values = np.column_stack([_numeric(f"column {name!r}", c[rows])
                                  for name, c in columns.items()])
        groups[key.item() if isinstance(key, np.generic) else key] = _Columns(
            values, tuple(columns), None if dates is None else dates[rows])
    return groups


def series_inputs(series, covariates=None, *, target=None, id_column=None):
    """Checked series records from what a user passes to ``Forecaster.fit``.

    Returns
    -------
    records : list of SeriesInput
    many : bool
        Whether several series were given (a list, dict or long table).

    Raises
    ------
    TypeError
        A series or covariate that does not hold numbers.
    ValueError
        NaN or infinity (with where), a missing target column, covariates
        of another length, dates that do not increase, no series at all.
    """
    if _is_long_table(series, id_column):
        series = _split_long_table(series, id_column)
    if isinstance(series, Mapping):
        items = list(series.items())
    elif isinstance(series, (list, tuple)) and series and not _is_scalar(series[0]):
        items = list(enumerate(series))
    else:
        return [_one_series(series, covariates, target, 0, "series")], False
    if not items:
        raise ValueError("no series given: pass one series or a non-empty list or dict")
    if covariates is not None:
        if isinstance(covariates, Mapping):
            covariates = [covariates.get(key) for key, _ in items]
        if len(covariates) != len(items):
            raise ValueError(f"covariates: expected one entry per series ({len(items)}), "
                             f"got {len(covariates)}")
    else:
        covariates = [None] * len(items)
    records = [_one_series(value, cov, target, key, f"series {key!r}")
               for (key, value), cov in zip(items, covariates)]
    return records, True

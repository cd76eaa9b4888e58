"""Real time series shipped with fastlstm, and a CSV loader for your own.

``load_goog()`` (daily OHLCV prices) and ``load_sunspots()`` (monthly
sunspot numbers) read the files in fastlstm/data (provenance in its
README.md). ``load_csv(path, column)`` reads numeric columns of any UTF-8
CSV with a header line, finds and parses its dates (ISO dates and times,
YYYY/MM/DD, DD.MM.YYYY, R's decimal years), infers their frequency, lists
their gaps, and says exactly what is wrong when it cannot. ``fill_missing``
and ``fill_gaps`` fill missing values and missing dates.
"""
import codecs
import csv
import itertools
import os
from dataclasses import dataclass
from importlib import resources
from typing import Optional, Tuple

import numpy as np

from ._date_text import DateTextError, date_form, parse_decimal_years, parse_text_dates
from .calendar import (Frequency, Gap, _first_out_of_order, find_gaps, infer_frequency,
                       step_counts)

__all__ = ["TimeSeries", "load_goog", "load_sunspots", "load_csv", "fill_missing", "fill_gaps",
           "MISSING_CELLS", "DATE_COLUMN_NAMES"]

# No row of a time series is this long; reading lines with this bound also
# keeps a file without newlines (a binary or sparse one) out of memory.
MAX_LINE_CHARS = 2**20


@dataclass(frozen=True)
class TimeSeries:
    """Columns of numbers indexed by time.

    Attributes
    ----------
    index : ndarray of shape (n,)
        The rows' index column as read (datetime64 for dates, float for
        numbers such as decimal years), or the row number when no index
        column was asked for.
    values : ndarray of shape (n, n_columns), float64
    columns : tuple of str
        The name of each column of ``values``.
    dates : ndarray of shape (n,), datetime64, or None
        The date of each row when the file has a date column: datetime64[D]
        for dates, [s] (or [us]) when times of day are given.
    frequency : fastlstm.calendar.Frequency or None
        The spacing of ``dates`` (see ``fastlstm.calendar.infer_frequency``).
    gaps : tuple of fastlstm.calendar.Gap
        Where whole steps of ``frequency`` are missing from ``dates``;
        ``fill_gaps`` inserts them.
    """

    index: np.ndarray
    values: np.ndarray
    columns: Tuple[str, ...]
    dates: Optional[np.ndarray] = None
    frequency: Optional[Frequency] = None
    gaps: Tuple[Gap, ...] = ()

    def __len__(self):
        return len(self.index)

    def column(self, name):
        """The column called `name`, shape (n,)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {list(self.columns)}")
        return self.values[:, self.columns.index(name)]


def _check_how(how):
    if how not in ("interpolate", "ffill"):
        raise ValueError(f"how must be 'interpolate' or 'ffill', got {how!r}")


def fill_missing(values, how="interpolate", positions=None):
    """A copy of `values` with NaN filled in each column.

    Parameters
    ----------
    values : array_like of shape (n,) or (n, k), float
    how : {"interpolate", "ffill"}
        "interpolate": linearly between the neighbouring values (at the
        series' ends, the nearest value); "ffill": the last value before.
    positions : array_like of shape (n,), increasing, optional
        Where the rows sit in time (e.g. dates as numbers), for
        interpolation; default: evenly spaced rows.

    Returns
    -------
    ndarray of the shape of `values`, float64

    Raises
    ------
    ValueError
        An unknown `how`, a column with no values, "ffill" with missing
        values before the first value, or infinity.
    """
    _check_how(how)
    filled = np.array(values, dtype=np.float64)
    columns = filled[:, None] if filled.ndim == 1 else filled
    if columns.ndim != 2:
        raise ValueError(f"values must have shape (n,) or (n, k), got {filled.shape}")
    if np.isinf(columns).any():
        raise ValueError("values contain infinity, which is not a missing value")
    rows = np.arange(len(columns), dtype=np.float64)
    at = rows if positions is None else np.asarray(positions, dtype=np.float64)
    if at.shape != rows.shape:
        raise ValueError(f"positions must have shape {rows.shape}, got {at.shape}")
    for j in range(columns.shape[1]):
        known = ~np.isnan(columns[:, j])
        if not known.any():
            raise ValueError(f"column {j} has no values to fill from")
        if known.all():
            continue
        if how == "interpolate":
            columns[~known, j] = np.interp(at[~known], at[known], columns[known, j])
        else:
            first = int(np.flatnonzero(known)[0])
            if first > 0:
                raise ValueError(f"column {j}: rows 0 .. {first - 1} are missing and have no "
                                 "earlier value to carry forward; use how='interpolate'")
            last_known = np.maximum.accumulate(np.where(known, rows.astype(np.int64), 0))
            columns[:, j] = columns[last_known, j]
    return filled


def fill_gaps(series, how="interpolate"):
    """`series` with a row for each date its gaps miss, the values filled.

    Parameters
    ----------
    series : TimeSeries
        With ``dates`` and a ``frequency``.
    how : {"interpolate", "ffill"}
        As for ``fill_missing``, along the steps of the frequency.

    Returns
    -------
    TimeSeries
        On the regular grid of the frequency from the first to the last date,
        without gaps. Its ``index`` holds the new dates when it held dates,
        row numbers when it held row numbers, and is interpolated otherwise.

    Raises
    ------
    TypeError
        `series` is not a TimeSeries.
    ValueError
        No dates or no frequency, a date off the frequency's grid from the
        first date (e.g. 12:00 in a daily series of midnights), or an
        unknown `how`.
    """
    if not isinstance(series, TimeSeries):
        raise TypeError(f"series must be a TimeSeries, got {type(series).__name__}")
    if series.dates is None or series.frequency is None:
        raise ValueError("series has no dates with a frequency, so it has no gaps to fill")
    _check_how(how)
    if not series.gaps:
        return series
    steps = step_counts(series.dates, series.frequency)
    if (steps < 1).any():
        row = int(np.flatnonzero(steps < 1)[0]) + 1
        raise ValueError(f"dates row {row} ({series.dates[row]}) is less than one "
                         f"{series.frequency.name} step after the row before: off the grid")
    where = np.concatenate([[0], np.cumsum(steps)])
    dates = series.frequency.shift(series.dates[0], np.arange(where[-1] + 1))
    off_grid = dates[where] != series.dates
    if off_grid.any():
        row = int(np.flatnonzero(off_grid)[0])
        raise ValueError(f"dates row {row} ({series.dates[row]}) is off the "
                         f"{series.frequency.name} grid that starts at {series.dates[0]} "
                         f"(the nearest step is {dates[where[row]]}), so its gaps cannot be "
                         "filled by whole steps")
    dates[where] = series.dates
    values = np.full((len(dates), series.values.shape[1]), np.nan)
    values[where] = series.values
    values = fill_missing(values, how)
    index = series.index
    if index.dtype.kind == "M":
        index = dates
    elif np.array_equal(index, np.arange(len(index))):
        index = np.arange(len(dates))
    else:
        index = np.interp(np.arange(len(dates)), where, index.astype(np.float64))
    return TimeSeries(index=index, values=values, columns=series.columns, dates=dates,
                      frequency=series.frequency, gaps=())


def _lines(f, path):
    """The lines of the text file f, refusing one longer than MAX_LINE_CHARS or with a NUL."""
    for number in itertools.count(1):
        line = f.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"{path}, line {number}: longer than {MAX_LINE_CHARS:,} "
                             "characters; is this a CSV file?")
        if "\0" in line:
            raise ValueError(f"{path}, line {number}: holds a NUL byte, which no text CSV "
                             "file has; is it a binary or UTF-16 file?")
        yield line


def _header_name(cell):
    """A header cell without surrounding spaces or a stray pair of double quotes."""
    name = cell.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].strip()
    return name


def _first_non_utf8_line(path):
    """The number of the first line of the file at `path` that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    number = 1
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.readline(2**16), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return number
            number += chunk.endswith(b"\n")
    return number


# Cells that mean "no value here" (compared in lower case).
MISSING_CELLS = frozenset({"", "-", "na", "nan", "n/a", "#n/a", "null", "none"})
# Column names that announce dates (compared in lower case).
DATE_COLUMN_NAMES = ("date", "datetime", "timestamp", "time", "ds", "day", "week", "month",
                     "period", "year")
_MISSING_OPTIONS = ("error", "interpolate", "ffill")


@dataclass
class _Table:
    """The cells of a CSV file: header names and, per row, its cells and line number."""

    path: str
    header: list
    rows: list
    lines: list

    def cells(self, name):
        position = self.header.index(name)
        return [row[position] for row in self.rows]


def _refuse_repeated_names(header, path):
    """A ValueError naming the first header name written twice (unnamed columns may repeat)."""
    seen = set()
    for name in header:
        if name and name in seen:
            raise ValueError(f"{path}: the header names column {name!r} twice; rename one "
                             "so each column can be told apart")
        seen.add(name)


def _read_cells(reader, path):
    try:
        header = [_header_name(name) for name in next(reader)]
    except StopIteration:
        raise ValueError(f"{path} is empty: expected a header line") from None
    _refuse_repeated_names(header, path)
    rows, lines = [], []
    for record in reader:
        if not "".join(record).strip():
            continue
        if len(record) < len(header):
            raise ValueError(f"{path}, line {reader.line_num}: {len(record)} fields, "
                             f"expected {len(header)}")
        rows.append(list(map(str.strip, record[:len(header)])))
        lines.append(reader.line_num)
    return _Table(path, header, rows, lines)


def _is_missing(text):
    return text.lower() in MISSING_CELLS


def _parse_number(text, column, line, path):
    """A cell as a float: NaN for a missing one, an error for text or infinity."""
    if _is_missing(text):
        return np.nan
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}: column {column!r} holds {text!r}, "
                         "which is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}, line {line}: column {column!r} holds {text!r}, "
                         "which is not a finite number")
    return value


def _numbers(table, name):
    """The column `name` as float64 (see _parse_number), all cells at once when
    they are all finite numbers, else cell by cell."""
    cells = table.cells(name)
    try:
        values = np.fromiter(map(float, cells), np.float64, len(cells))
    except ValueError:  # a missing cell or text: found and named below
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    return np.array([_parse_number(text, name, line, table.path)
                     for text, line in zip(cells, table.lines)], dtype=np.float64)


class _BlankDate(DateTextError):
    """A date cell that is blank or marks a missing value."""


def _parse_dates(table, name):
    """The column `name` as datetime64 (text dates or decimal years), or a DateTextError."""
    cells = table.cells(name)
    if not MISSING_CELLS.isdisjoint(map(str.lower, cells)):
        blank = next(i for i, text in enumerate(cells) if _is_missing(text))
        raise _BlankDate(blank, f"the cell is {cells[blank]!r}, not a date")
    if date_form(cells[0]) is not None:
        return parse_text_dates(cells)
    try:
        years = np.array([float(text) for text in cells])
    except ValueError:
        raise DateTextError(0, f"{cells[0]!r} is not a date in a known form (YYYY-MM-DD, "
                               "YYYY/MM/DD, DD.MM.YYYY, YYYY-MM) or a decimal year") from None
    if not np.isfinite(years).all():
        raise DateTextError(int(np.flatnonzero(~np.isfinite(years))[0]), "not a decimal year")
    return parse_decimal_years(years, _decimals_written(cells))


def _decimals_written(cells):
    """The most digits after a decimal point among `cells`, or None for exponent notation."""
    if any("e" in text.lower() for text in cells):
        return None
    return max((len(text) - text.index(".") - 1 for text in cells if "." in text), default=0)


def _date_error(table, name, error):
    return ValueError(f"{table.path}, line {table.lines[error.row]}: date column {name!r}: {error}")


def _find_dates(table, date_column, index_column, value_columns):
    """(name, dates) of the date column, or (None, None) when there is none.

    The column is `date_column` when given; else `index_column` when it holds
    dates; else the first column with a date-like name (DATE_COLUMN_NAMES)
    holding dates or decimal years; else the first column whose cells are all
    text dates. Columns asked for as values are never taken. Numbers that
    repeat (a year on several rows) date no row alone: a year column is
    combined with a column named month holding 1 .. 12, else passed over.
    With no value columns asked for, a date-named column that holds no dates
    is an error rather than a column of values.
    """
    if date_column is False:
        return None, None
    if date_column is not None:
        if date_column not in table.header:
            raise ValueError(f"{table.path} has no column {date_column!r}; its columns are "
                             f"{table.header}")
        try:
            return date_column, _parse_dates(table, date_column)
        except DateTextError as e:
            raise _date_error(table, date_column, e) from None
    candidates = [index_column] if index_column else []
    candidates += [name for name in table.header if _is_date_name(name)]
    candidates += [name for name in table.header
                   if date_form(table.cells(name)[0]) is not None]
    candidates = [name for name in dict.fromkeys(candidates) if name not in (value_columns or ())]
    failures = {}
    for name in candidates:
        try:
            dates = _parse_dates(table, name)
        except DateTextError as e:
            failures[name] = e
            continue
        repeated = _first_repeat(dates)
        if repeated is None or date_form(table.cells(name)[0]) is not None:
            return name, dates  # repeated text dates are reported in their order
        months = _year_and_month(table, name, value_columns)
        if months is not None:
            return name, months
        failures[name] = DateTextError(repeated, f"{table.cells(name)[repeated]!r} repeats the "
                                                 "date of another row, so it dates no row alone")
    if value_columns is not None:
        return None, None  # the columns asked for are the values; a date-named one is left out
    for name, error in failures.items():  # a column that says it holds dates must, not be values
        if _is_date_name(name):
            remedy = ("give every row its date" if isinstance(error, _BlankDate)
                      else "write the dates as YYYY-MM-DD")
            raise ValueError(f"{_date_error(table, name, error)}; pass date_column= another "
                             f"column, date_column=False to read no dates, or {remedy}") from None
    return None, None


def _first_repeat(dates):
    """The row of the first date that an earlier row holds too, or None."""
    _, first_rows = np.unique(dates, return_index=True)
    if len(first_rows) == len(dates):
        return None
    return int(np.flatnonzero(~np.isin(np.arange(len(dates)), first_rows))[0])


def _year_and_month(table, year_name, value_columns):
    """The first days of the months of a whole-year column and a month column
    (1 .. 12, named month in any case) as datetime64[D], or None when there is
    no such pair or it still repeats."""
    month_names = [name for name in table.header
                   if name.lower() == "month" and name not in (value_columns or ())]
    if year_name.lower() != "year" or not month_names:
        return None
    try:
        years = np.array([int(text) for text in table.cells(year_name)])
        months = np.array([int(text) for text in table.cells(month_names[0])])
    except ValueError:
        return None
    if ((months < 1) | (months > 12)).any():
        return None
    dates = ((years - 1970) * 12 + months - 1).astype("datetime64[M]").astype("datetime64[D]")
    return dates if _first_repeat(dates) is None else None


def _is_date_name(name):
    return name.lower() in DATE_COLUMN_NAMES


def _index(table, index_column, dates, date_name):
    """The index column as dates (when it is the date column) or numbers."""
    if index_column is None:
        return np.arange(len(table.rows))
    if index_column == date_name and dates is not None and \
            date_form(table.cells(index_column)[0]) is not None:
        return dates
    try:
        return np.array([float(text) for text in table.cells(index_column)])
    except ValueError:
        raise ValueError(f"index column {index_column!r} holds neither dates "
                         "(YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY) nor numbers") from None


def _value_columns(table, columns, excluded):
    """The named columns, or every named column outside `excluded` whose
    first present cell is a number."""
    if columns is not None:
        return list(columns)
    chosen = []
    for name in table.header:
        if not name or name in excluded:
            continue
        present = next((text for text in table.cells(name) if not _is_missing(text)), None)
        if present is None:
            raise ValueError(f"{table.path}: column {name!r} has no values")
        try:
            float(present)
        except ValueError:
            continue  # a column of text, e.g. a ticker symbol
        chosen.append(name)
    if not chosen:
        raise ValueError(f"{table.path} has no numeric column; its columns are {table.header}")
    return chosen


def _checked_order(table, dates, date_name):
    """Row order by date: as read when increasing, reversed when decreasing."""
    row = _first_out_of_order(dates)
    if row is None:
        return np.arange(len(dates))
    if len(dates) > 1 and _first_out_of_order(dates, descending=True) is None:
        return np.arange(len(dates))[::-1]
    what = "repeats" if dates[row] == dates[row - 1] else "goes back from"
    raise ValueError(f"{table.path}, line {table.lines[row]}: date {dates[row]} in column "
                     f"{date_name!r} {what} {dates[row - 1]} on line {table.lines[row - 1]}; "
                     "dates must be sorted and unique")


def _handle_missing(table, values, columns, order, missing, positions):
    """`values` with missing cells refused or filled as `missing` says."""
    absent = np.isnan(values)
    if not absent.any():
        return values
    row, j = (int(i) for i in np.argwhere(absent)[0])
    line = table.lines[order[row]]
    if missing == "error":
        text = table.cells(columns[j])[order[row]]
        kind = "finite number" if text.lower() == "nan" else "number"
        raise ValueError(f"{table.path}, line {line}: column {columns[j]!r} holds {text!r}, "
                         f"which is not a {kind}; if it marks a missing value, pass "
                         "missing='interpolate' or missing='ffill' to fill it")
    for k, name in enumerate(columns):
        if absent[:, k].all():
            raise ValueError(f"{table.path}: column {name!r} has no values")
    if missing == "ffill" and row == 0:
        raise ValueError(f"{table.path}, line {line}: column {columns[j]!r} has no value and "
                         "no earlier one to carry forward; use missing='interpolate'")
    return fill_missing(values, missing, positions)


def _parse_table(table, columns, index_column, date_column, missing):
    """The TimeSeries of the columns asked for in `table`."""
    wanted = list(columns or []) + [name for name in (index_column,) if name]
    absent = [name for name in wanted if name not in table.header]
    if absent:
        raise ValueError(f"{table.path} has no column {absent[0]!r}; its columns are "
                         f"{table.header}")
    if not table.rows:
        raise ValueError(f"{table.path} has a header line but no rows of values")
    date_name, dates = _find_dates(table, date_column, index_column, columns)
    not_values = {date_name, index_column}
    if date_name is not None:  # other date-named columns hold parts of the dates, not values
        not_values.update(name for name in table.header if _is_date_name(name))
    columns = _value_columns(table, columns, not_values)
    values = np.column_stack([_numbers(table, name) for name in columns])
    index = _index(table, index_column, dates, date_name)
    order = np.arange(len(values))
    frequency, gaps = None, ()
    if dates is not None:
        order = _checked_order(table, dates, date_name)
        dates, values, index = dates[order], values[order], index[order]
        frequency = infer_frequency(dates)
        gaps = tuple(find_gaps(dates, frequency)) if frequency is not None else ()
    positions = None if dates is None else (dates - dates[0]).astype(np.float64)
    values = _handle_missing(table, values, columns, order, missing, positions)
    return TimeSeries(index=index, values=values, columns=tuple(columns), dates=dates,
                      frequency=frequency, gaps=gaps)


def _read_table(path, columns, index_column, date_column=None, missing="error"):
    """Read `columns` (all numeric ones when None) of the UTF-8 CSV at `path`.

    A byte-order mark is skipped and header names are compared without
    surrounding spaces and quotes, as spreadsheets tend to write them.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(_lines(f, path), skipinitialspace=True)
        try:
            table = _read_cells(reader, path)
        except UnicodeDecodeError:
            line = _first_non_utf8_line(path)
            raise ValueError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8 "
                             "(it may be Latin-1 or Windows-1252)") from None
        except csv.Error as e:
            raise ValueError(f"{path}, line {reader.line_num}: not readable as CSV: {e}") from None
    return _parse_table(table, columns, index_column, date_column, missing)


def _checked_columns(column):
    if column is None:
        return None
    if isinstance(column, str):
        return [column]
    try:
        names = list(column)
    except TypeError:
        names = None
    if not names or not all(isinstance(name, str) for name in names):
        raise TypeError(f"column must be a column name, a list of names or None, got {column!r}")
    return names


def load_csv(path, column=None, index_column=None, min_length=1, *, date_column=None,
             missing="error"):
    """Read numeric columns of a CSV file with a header line, and its dates.

    Parameters
    ----------
    path : str or path-like
    column : str or list of str, optional
        The column(s) to read; default: every numeric column (a column whose
        first value is a number), except the date and index columns and
        unnamed ones (the row numbers R and pandas write first).
    index_column : str, optional
        Column of dates or numbers to index the rows by (``TimeSeries.index``).
    min_length : int
        Fewest rows accepted, e.g. a model's window plus horizon.
    date_column : str or False, optional
        Column of dates; False reads no dates (every numeric column is then
        values, whatever its name). By default the first of: `index_column`
        when it holds dates, a column named date, datetime, timestamp, time,
        ds, day, week, month, period or year (any case) holding dates or
        decimal years, the first column (an unnamed one too) whose cells are
        all dates as text. Other date-named columns are not values; one
        that holds no dates when no column does is an error.
        Dates are read in the forms YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY and
        YYYY-MM, each with an optional time ("2024-01-02 13:00",
        "2024-01-02T13:00:00"; times with a UTC offset become UTC), or as
        the decimal years of a monthly, quarterly or yearly R export
        (1749.0833 and 1749.08 are 1 February 1749).
    missing : {"error", "interpolate", "ffill"}
        What to do with a blank, NA, NaN or "-" cell (MISSING_CELLS):
        refuse it, naming its line and column; interpolate linearly in time
        (the nearest value at the ends); or carry the last value forward.
        Missing dates (gaps) are never filled here: they are listed in
        ``TimeSeries.gaps``; see ``fill_gaps``.

    Returns
    -------
    TimeSeries
        Rows in date order (a file whose dates all decrease is reversed),
        with ``dates``, ``frequency`` and ``gaps`` when there is a date column.

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    TypeError
        `column` is neither a name, a list of names nor None.
    ValueError
        No such column, a value that is not a number (with its line), a
        missing value with ``missing="error"``, a column without values, no
        numeric column, a date that cannot be read or dates out of order
        (with its line), fewer than `min_length` rows, or a file that is not
        UTF-8 CSV text (e.g. Latin-1, a field past the csv module's field
        size limit, or a line longer than MAX_LINE_CHARS).
    """
    columns = _checked_columns(column)
    if not (date_column is None or date_column is False or isinstance(date_column, str)):
        raise TypeError(f"date_column must be a column name, None or False, got {date_column!r}")
    if missing not in _MISSING_OPTIONS:
        raise ValueError(f"missing must be one of {list(_MISSING_OPTIONS)}, got {missing!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a CSV file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such CSV file: {path}")
    series = _read_table(path, columns, index_column, date_column, missing)
    if len(series) < min_length:
        what = (f"column {series.columns[0]!r}" if len(series.columns) == 1
                else f"each of the columns {list(series.columns)}")
        raise ValueError(f"{path}: {what} has {len(series)} values, "
                         f"fewer than the {min_length} needed")
    return series


def _packaged(name):
    return resources.files("fastlstm.data").joinpath(name)


def load_goog():
    """Alphabet (GOOG) daily prices, 2004-08-19 to 2013-03-01 (2148 trading days).

    Returns
    -------
    TimeSeries
        Indexed by date (datetime64[D]), columns Open, High, Low, Close
        (US dollars) and Volume.
    """
    with resources.as_file(_packaged("goog_daily.csv")) as path:
        return _read_table(path, ["Open", "High", "Low", "Close", "Volume"], "Date")


def load_sunspots():
    """Mean monthly sunspot numbers, January 1749 to September 2013 (3177 months).

    Returns
    -------
    TimeSeries
        Indexed by decimal year (float), one column: sunspots.
    """
    with resources.as_file(_packaged("sunspots_monthly.csv")) as path:
        return _read_table(path, ["sunspots"], "time")

"""Real time series shipped with fastlstm, and a CSV loader for your own.

``load_goog()`` (daily OHLCV prices) and ``load_sunspots()`` (monthly
sunspot numbers) read the files in fastlstm/data (provenance in its
README.md). ``load_csv(path, column)`` reads one numeric column of any
UTF-8 CSV with a header line and says exactly what is wrong when it cannot.
"""
import codecs
import csv
import itertools
import os
from dataclasses import dataclass
from importlib import resources
from typing import Tuple

import numpy as np

__all__ = ["TimeSeries", "load_goog", "load_sunspots", "load_csv"]

# No row of a time series is this long; reading lines with this bound also
# keeps a file without newlines (a binary or sparse one) out of memory.
MAX_LINE_CHARS = 2**20


@dataclass(frozen=True)
class TimeSeries:
    """Columns of numbers indexed by time.

    Attributes
    ----------
    index : ndarray of shape (n,)
        The time of each row: datetime64[D] for dates, float for decimal years,
        the row number when the file has no index column.
    values : ndarray of shape (n, n_columns), float64
    columns : tuple of str
        The name of each column of ``values``.
    """

    index: np.ndarray
    values: np.ndarray
    columns: Tuple[str, ...]

    def __len__(self):
        return len(self.index)

    def column(self, name):
        """The column called `name`, shape (n,)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {list(self.columns)}")
        return self.values[:, self.columns.index(name)]


def _parse_number(text, column, line, path):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}: column {column!r} holds {text!r}, "
                         "which is not a number") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}, line {line}: column {column!r} holds {text!r}, "
                         "which is not a finite number")
    return value


def _parse_index(texts, index_column):
    """Dates as datetime64[D] when they parse as dates, else floats."""
    try:
        return np.array(texts, dtype="datetime64[D]")
    except ValueError:
        pass
    try:
        return np.array([float(t) for t in texts])
    except ValueError:
        raise ValueError(f"index column {index_column!r} holds neither dates "
                         "(YYYY-MM-DD) nor numbers") from None


def _lines(f, path):
    """The lines of the text file f, refusing one longer than MAX_LINE_CHARS."""
    for number in itertools.count(1):
        line = f.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"{path}, line {number}: longer than {MAX_LINE_CHARS:,} "
                             "characters; is this a CSV file?")
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


def _parse_table(reader, path, columns, index_column):
    """`columns` (and `index_column`) of the rows of a csv `reader` as a TimeSeries."""
    try:
        header = [_header_name(name) for name in next(reader)]
    except StopIteration:
        raise ValueError(f"{path} is empty: expected a header line") from None
    wanted = list(columns) + ([index_column] if index_column else [])
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ValueError(f"{path} has no column {missing[0]!r}; its columns are {header}")
    positions = [header.index(name) for name in columns]
    index_position = header.index(index_column) if index_column else None
    rows, index = [], []
    for record in reader:
        if not record or all(not cell.strip() for cell in record):
            continue
        line = reader.line_num
        if len(record) < len(header):
            raise ValueError(f"{path}, line {line}: {len(record)} fields, "
                             f"expected {len(header)}")
        rows.append([_parse_number(record[p].strip(), name, line, path)
                     for p, name in zip(positions, columns)])
        if index_position is not None:
            index.append(record[index_position].strip())
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))
    index = _parse_index(index, index_column) if index_column else np.arange(len(rows))
    return TimeSeries(index=index, values=values, columns=tuple(columns))


def _read_table(path, columns, index_column):
    """Read `columns` (and `index_column`) of the UTF-8 CSV at `path`.

    A byte-order mark is skipped and header names are compared without
    surrounding spaces and quotes, as spreadsheets tend to write them.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(_lines(f, path), skipinitialspace=True)
        try:
            return _parse_table(reader, path, columns, index_column)
        except UnicodeDecodeError:
            line = _first_non_utf8_line(path)
            raise ValueError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8 "
                             "(it may be Latin-1 or Windows-1252)") from None
        except csv.Error as e:
            raise ValueError(f"{path}, line {reader.line_num}: not readable as CSV: {e}") from None


def load_csv(path, column, index_column=None, min_length=1):
    """Read one numeric column of a CSV file with a header line.

    Parameters
    ----------
    path : str or path-like
    column : str
        Name of the column to read.
    index_column : str, optional
        Column of dates (YYYY-MM-DD) or numbers to index the rows by.
    min_length : int
        Fewest rows accepted, e.g. a model's window plus horizon.

    Returns
    -------
    TimeSeries
        With one column, ``column``.

    Raises
    ------
    FileNotFoundError
        No file at `path`.
    ValueError
        No such column, a value that is not a finite number (with its line),
        fewer than `min_length` rows, or a file that is not UTF-8 CSV text
        (e.g. Latin-1, a field past the csv module's field size limit, or a
        line longer than MAX_LINE_CHARS).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a CSV file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such CSV file: {path}")
    series = _read_table(path, [column], index_column)
    if len(series) == 0:
        raise ValueError(f"{path} has a header line but no rows of values")
    if len(series) < min_length:
        raise ValueError(f"{path}: column {column!r} has {len(series)} values, "
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
    """Mean monthly sunspot numbers, 1749 to 1983 (3177 months).

    Returns
    -------
    TimeSeries
        Indexed by decimal year (float), one column: sunspots.
    """
    with resources.as_file(_packaged("sunspots_monthly.csv")) as path:
        return _read_table(path, ["sunspots"], "time")

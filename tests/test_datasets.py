"""fastlstm.datasets: the shipped series and the CSV loader's errors."""
import numpy as np
import pytest

from fastlstm import datasets


def test_goog_is_the_shipped_daily_series():
    goog = datasets.load_goog()
    assert len(goog) == 2148
    assert goog.columns == ("Open", "High", "Low", "Close", "Volume")
    assert goog.index.dtype == np.dtype("datetime64[D]")
    assert str(goog.index[0]) == "2004-08-19" and str(goog.index[-1]) == "2013-03-01"
    assert goog.column("Close")[0] == pytest.approx(100.34)
    assert np.all(goog.column("High") >= goog.column("Low"))
    assert np.all(np.diff(goog.index).astype(int) > 0)


def test_sunspots_is_the_shipped_monthly_series():
    sun = datasets.load_sunspots()
    assert len(sun) == 3177 and sun.columns == ("sunspots",)
    assert sun.index[0] == pytest.approx(1749.0)
    assert sun.column("sunspots")[:2] == pytest.approx([58, 62.6])
    assert np.all(sun.values >= 0)


def test_unknown_column_lists_the_columns():
    with pytest.raises(KeyError, match="the columns are"):
        datasets.load_goog().column("Adj Close")


def _write(tmp_path, text):
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_load_csv_reads_one_column(tmp_path):
    path = _write(tmp_path, "day,value,other\n2020-01-01,1.5,x\n2020-01-02,2.5,y\n\n")
    series = datasets.load_csv(path, "value", index_column="day")
    np.testing.assert_array_equal(series.column("value"), [1.5, 2.5])
    assert series.index.dtype == np.dtype("datetime64[D]")
    assert datasets.load_csv(path, "value").index.tolist() == [0, 1]


@pytest.mark.parametrize("text, kwargs, error, message", [
    ("a,b\n1,2\n", {"column": "c"}, ValueError, r"has no column 'c'; its columns are \['a', 'b'\]"),
    ("a,b\n1,2\n3,x\n", {"column": "b"}, ValueError, "line 3: column 'b' holds 'x', which is not a number"),
    ("a,b\n1,nan\n", {"column": "b"}, ValueError, "not a finite number"),
    ("a,b\n1,2\n3\n", {"column": "b"}, ValueError, "line 3: 1 fields, expected 2"),
    ("", {"column": "b"}, ValueError, "is empty"),
    ("a,b\n", {"column": "b"}, ValueError, "has a header line but no rows of values"),
    ("a,b\n\n\n", {"column": "b"}, ValueError, "has a header line but no rows of values"),
    ("a,b\n1,2\n3,4\n", {"column": "b", "min_length": 61}, ValueError, "has 2 values, fewer than the 61"),
])
def test_load_csv_errors(tmp_path, text, kwargs, error, message):
    with pytest.raises(error, match=message):
        datasets.load_csv(_write(tmp_path, text), **kwargs)


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        datasets.load_csv(tmp_path / "absent.csv", "Close")


@pytest.mark.parametrize("header", [
    b"\xef\xbb\xbfday,value",      # a UTF-8 byte-order mark, as Excel writes
    b'day,"value "',
    b'day, "value"',
    b' "day" ,  " value "',
    b'"day","""value"""',
])
def test_load_csv_finds_columns_whatever_the_header_quoting(tmp_path, header):
    path = tmp_path / "series.csv"
    path.write_bytes(header + b"\r\n2020-01-01,1.5\r\n2020-01-02, 2.5\r\n")
    series = datasets.load_csv(path, "value", index_column="day")
    np.testing.assert_array_equal(series.column("value"), [1.5, 2.5])
    assert str(series.index[1]) == "2020-01-02"


def test_load_csv_keeps_a_quoted_comma_after_a_space_in_one_field(tmp_path):
    path = _write(tmp_path, 'day, "close, adjusted"\n1, 5\n2, 6\n')
    np.testing.assert_array_equal(datasets.load_csv(path, "close, adjusted").values[:, 0], [5, 6])


def test_load_csv_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"city,value\n" + b"Lyon,1\n" * 3 + "Orléans,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.csv, line 5: not UTF-8 text; save the file as"):
        datasets.load_csv(path, "value")


def test_load_csv_refuses_a_field_past_the_csv_limit(tmp_path):
    path = _write(tmp_path, "note,value\n" + "x" * 200 * 1024 + ",1\n")
    with pytest.raises(ValueError, match="line 2: not readable as CSV: field larger than"):
        datasets.load_csv(path, "value")


def test_load_csv_never_reads_a_huge_line_whole(tmp_path):
    path = tmp_path / "sparse.csv"
    with open(path, "wb") as f:
        f.truncate(2**30)  # 1 GiB of zero bytes and no newline; sparse, so no disk is used
    with pytest.raises(ValueError, match=f"line 1: longer than {datasets.MAX_LINE_CHARS:,} char"):
        datasets.load_csv(path, "value")


def test_load_csv_of_a_directory_says_so(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not a CSV file"):
        datasets.load_csv(tmp_path, "value")

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
    ("a,b\n1,2\n3,4\n", {"column": "b", "min_length": 61}, ValueError, "has 2 values, fewer than the 61"),
])
def test_load_csv_errors(tmp_path, text, kwargs, error, message):
    with pytest.raises(error, match=message):
        datasets.load_csv(_write(tmp_path, text), **kwargs)


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        datasets.load_csv(tmp_path / "absent.csv", "Close")

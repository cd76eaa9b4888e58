"""fastlstm.datasets: the shipped series and the CSV loader's errors."""
from pathlib import Path

import numpy as np
import pytest

from fastlstm import datasets
from fastlstm._date_text import (_FORMS, DateTextError, _parse_one_layout, _parse_row_by_row,
                                 date_form, parse_decimal_years, parse_text_dates)


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
    ("date,v,v\n2024-01-01,1,2\n2024-01-02,3,4\n", {}, ValueError, "names column 'v' twice"),
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


# ------------------------------------------------------------- dates in CSV files

SEASONAL = Path(__file__).parent / "data" / "seasonal"


@pytest.mark.parametrize("cells, expected, dtype", [
    (["2024-01-02", "2024-01-03"], ["2024-01-02", "2024-01-03"], "datetime64[D]"),
    (["2024-01-02 13:00", "2024-01-02 14:00"], ["2024-01-02T13:00:00", "2024-01-02T14:00:00"],
     "datetime64[s]"),
    (["2024-01-02T13:00:00", "2024-01-02T14:00:00"], ["2024-01-02T13:00:00", "2024-01-02T14:00:00"],
     "datetime64[s]"),
    (["2024-01-02T13:00:00+01:00", "2024-01-02T14:00:00Z"],
     ["2024-01-02T12:00:00", "2024-01-02T14:00:00"], "datetime64[s]"),
    (["2024/01/02", "2024/02/02"], ["2024-01-02", "2024-02-02"], "datetime64[D]"),
    (["02.01.2024", "31.01.2024"], ["2024-01-02", "2024-01-31"], "datetime64[D]"),
    (["02.01.2024 09:30", "02.01.2024 10:30"], ["2024-01-02T09:30:00", "2024-01-02T10:30:00"],
     "datetime64[s]"),
    (["1949-01", "1949-02"], ["1949-01-01", "1949-02-01"], "datetime64[D]"),
])
def test_load_csv_parses_every_date_form(tmp_path, cells, expected, dtype):
    text = "when,value\n" + "".join(f"{cell},{i}\n" for i, cell in enumerate(cells))
    series = datasets.load_csv(_write(tmp_path, text))
    assert series.columns == ("value",)
    assert series.dates.dtype == np.dtype(dtype)
    assert series.dates.tolist() == np.array(expected, dtype=dtype).tolist()


def test_load_csv_reads_r_exports_with_decimal_years_and_row_numbers():
    nottem = datasets.load_csv(SEASONAL / "nottem_monthly.csv")
    assert nottem.columns == ("nottem",)  # neither the row numbers nor the time column
    assert str(nottem.dates[0]) == "1920-01-01" and str(nottem.dates[-1]) == "1939-12-01"
    assert nottem.frequency.name == "MS" and nottem.gaps == ()
    gas = datasets.load_csv(SEASONAL / "uk_gas_quarterly.csv", "UKgas")
    assert [str(d) for d in gas.dates[:3]] == ["1960-01-01", "1960-04-01", "1960-07-01"]
    assert gas.frequency.name == "QS"


def test_decimal_years_rounded_or_mid_month(tmp_path):
    starts = datasets.load_csv(_write(tmp_path, "time,v\n1749.000,1\n1749.083,2\n1749.167,3\n"))
    middles = datasets.load_csv(_write(tmp_path, "time,v\n1749.042,1\n1749.125,2\n1749.208,3\n"))
    assert starts.dates.tolist() == middles.dates.tolist()
    assert [str(d) for d in starts.dates] == ["1749-01-01", "1749-02-01", "1749-03-01"]


@pytest.mark.parametrize("cells", [
    ["2024-01-02 13:00:00", "2024-01-02T14:00:00", "2024-12-31 23:59:59"],
    ["2024-01-02T13:00:00.25", "2024-01-02T13:00:00.50"],
    ["2024-01-02T13:00:00.1234567", "2024-01-02T13:00:01.0000009"],
    ["02.01.2024", "31.12.1999"],
    ["2024/01/02 09:30", "2024/1/3 09:30"],       # a second layout: read cell by cell
    ["1949-01", "1949-12"],
])
def test_dates_read_at_once_equal_dates_read_cell_by_cell(cells):
    form = date_form(cells[0])
    one_layout = len(set(map(len, cells))) == 1
    assert (_parse_one_layout(cells, _FORMS[form].fullmatch(cells[0])) is not None) == one_layout
    at_once = parse_text_dates(cells)
    one_by_one = _parse_row_by_row(cells, form)
    assert at_once.dtype == one_by_one.dtype and at_once.tolist() == one_by_one.tolist()


@pytest.mark.parametrize("cells, row, what", [
    (["2024-01-02", "2024-02-30"], 1, "day of month"),
    (["2024-01-02 23:00", "2024-01-02 24:00"], 1, "hour"),
    (["2024-01-02", "2024-01-0x"], 1, "not a date of the form"),
])
def test_dates_read_at_once_name_the_bad_row(cells, row, what):
    with pytest.raises(DateTextError, match=what) as error:
        parse_text_dates(cells)
    assert error.value.row == row


@pytest.mark.parametrize("cell", ["2024-01-02T13:00+25:00", "2024-01-02T13:00+01:99",
                                  "2024-01-02T13:00-1560"])
def test_an_impossible_utc_offset_is_refused(cell):
    with pytest.raises(DateTextError, match="impossible UTC offset"):
        parse_text_dates([cell])


def test_one_fractional_decimal_year_is_refused_and_a_whole_one_read():
    with pytest.raises(DateTextError, match="single decimal year with a fraction"):
        parse_decimal_years(np.array([1749.0833]))
    assert str(parse_decimal_years(np.array([1749.0]))[0]) == "1749-01-01"


def test_decimal_years_rounded_to_two_decimals_are_months(tmp_path):
    text = "time,v\n" + "".join(f"{1749 + i / 12:.2f},{i}\n" for i in range(30))
    series = datasets.load_csv(_write(tmp_path, text))
    assert series.columns == ("v",) and series.frequency.name == "MS" and series.gaps == ()
    assert str(series.dates[1]) == "1749-02-01" and str(series.dates[-1]) == "1751-06-01"


@pytest.mark.parametrize("name", datasets.DATE_COLUMN_NAMES)
def test_a_date_named_column_without_dates_is_an_error_not_values(tmp_path, name):
    path = _write(tmp_path, f"{name},v\n1.5,1\n7,2\n")
    with pytest.raises(ValueError, match=f"line 2: date column '{name}': .*date_column=False"):
        datasets.load_csv(path)


def test_year_and_month_columns_are_monthly_dates(tmp_path):
    text = "year,month,value\n1990,1,5\n1990,2,6\n1990,3,7\n1990,5,9\n"
    series = datasets.load_csv(_write(tmp_path, text))
    assert series.columns == ("value",) and series.frequency.name == "MS"
    assert [str(d) for d in series.dates] == ["1990-01-01", "1990-02-01", "1990-03-01",
                                              "1990-05-01"]
    assert [(str(g.after), g.missing) for g in series.gaps] == [("1990-03-01", 1)]


def test_a_repeated_year_is_no_date_column(tmp_path):
    path = _write(tmp_path, "year,value\n1990,5\n1990,6\n")
    with pytest.raises(ValueError, match="line 3: date column 'year': '1990' repeats the date"):
        datasets.load_csv(path)
    assert datasets.load_csv(path, "value").dates is None
    assert datasets.load_csv(path, date_column=False).columns == ("year", "value")


@pytest.mark.parametrize("cell", ["", "NA"])
def test_a_blank_date_cell_is_named_as_such(tmp_path, cell):
    with pytest.raises(ValueError, match=f"line 3: date column 'date': the cell is '{cell}', "
                                         "not a date;.* give every row its date") as error:
        datasets.load_csv(_write(tmp_path, f"date,v\n2024-01-01,1\n{cell},2\n"))
    assert "YYYY-MM-DD" not in str(error.value)


def test_fill_gaps_and_fill_missing_refuse_an_unknown_how(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "date,v\n2024-01-01,1\n2024-01-03,3\n"))
    for fill in (lambda: datasets.fill_gaps(series, how="mean"),
                 lambda: datasets.fill_missing([1.0, np.nan], how="mean")):
        with pytest.raises(ValueError, match="how must be 'interpolate' or 'ffill', got 'mean'"):
            fill()


def test_date_column_false_reads_no_dates(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "time,v\n0.5,1\n1.5,2\n"), date_column=False)
    assert series.columns == ("time", "v") and series.dates is None
    with pytest.raises(TypeError, match="date_column must be a column name, None or False"):
        datasets.load_csv(_write(tmp_path, "time,v\n0.5,1\n"), date_column=0)


def test_other_date_named_columns_are_not_values(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "date,year,v\n2024-01-01,2024,1\n"
                                                "2024-01-02,2024,2\n"))
    assert series.columns == ("v",)


def test_an_unnamed_first_column_of_dates_is_the_date_column(tmp_path):
    series = datasets.load_csv(_write(tmp_path, ",x,y\n2024-01-01,1,2\n2024-01-02,3,4\n"))
    assert series.columns == ("x", "y") and series.frequency.name == "D"


def test_load_csv_skips_text_columns_and_keeps_the_old_index(tmp_path):
    path = _write(tmp_path, "ticker,day,close\nA,2024-01-01,1\nA,2024-01-02,2\n")
    series = datasets.load_csv(path)
    assert series.columns == ("close",) and series.index.tolist() == [0, 1]
    assert str(series.dates[1]) == "2024-01-02"
    assert datasets.load_csv(path, "close", index_column="day").index.dtype == np.dtype("datetime64[D]")


def test_goog_is_business_daily_with_holidays_as_gaps():
    goog = datasets.load_goog()
    assert goog.frequency.name == "B"
    assert goog.gaps[0].after == np.datetime64("2004-09-03")  # Labor Day, Monday 6 September
    assert all(gap.missing <= 4 for gap in goog.gaps)


def test_gaps_are_reported_and_filled_on_request(tmp_path):
    path = _write(tmp_path, "date,v\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n"
                            "2024-01-01 04:00,5\n2024-01-01 05:00,6\n")
    series = datasets.load_csv(path)
    assert series.frequency.name == "h"
    assert [(str(g.after), str(g.before), g.missing) for g in series.gaps] == [
        ("2024-01-01T01:00:00", "2024-01-01T04:00:00", 2)]
    filled = datasets.fill_gaps(series)
    assert filled.values[:, 0].tolist() == [1, 2, 3, 4, 5, 6] and filled.gaps == ()
    assert str(filled.dates[2]) == "2024-01-01T02:00:00"
    assert datasets.fill_gaps(series, how="ffill").values[:, 0].tolist() == [1, 2, 2, 2, 5, 6]


def test_fill_gaps_refuses_a_date_off_the_grid(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "date,v\n2024-01-01,1\n2024-01-02,2\n"
                                                "2024-01-03T12:00,3\n2024-01-06,4\n"))
    assert series.frequency.name == "D" and series.gaps
    with pytest.raises(ValueError, match=r"row 2 \(2024-01-03T12:00:00\) is off the D grid"):
        datasets.fill_gaps(series)


def test_fill_gaps_of_a_monthly_series_keeps_its_day(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "date,v\n2023-02-28,1\n2023-03-30,2\n"
                                                "2023-06-30,5\n"))
    filled = datasets.fill_gaps(series)
    assert [str(d) for d in filled.dates] == ["2023-02-28", "2023-03-30", "2023-04-30",
                                              "2023-05-30", "2023-06-30"]
    assert filled.values[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_a_dash_is_a_missing_cell(tmp_path):
    path = _write(tmp_path, "date,price\n2024-01-01,-\n2024-01-02,5\n2024-01-03,7\n")
    assert datasets.load_csv(path, missing="interpolate").column("price").tolist() == [5, 5, 7]
    with pytest.raises(ValueError, match="column 'price' holds '-', which is not a number; if it"):
        datasets.load_csv(path)


@pytest.mark.parametrize("text", ["date,price\n2024-01-01,1\0\n2024-01-02,5\n",
                                  "da\0te,price\n2024-01-01,1\n"])
def test_a_nul_byte_is_refused_with_its_line(tmp_path, text):
    line = 2 if text.index("\0") > text.index("\n") else 1
    with pytest.raises(ValueError, match=f"line {line}: holds a NUL byte"):
        datasets.load_csv(_write(tmp_path, text))


@pytest.mark.parametrize("missing, expected", [
    ("interpolate", [1.0, 2.0, 3.0, 4.0, 4.0]),
    ("ffill", [1.0, 1.0, 1.0, 4.0, 4.0]),
])
def test_missing_cells_filled_each_way(tmp_path, missing, expected):
    path = _write(tmp_path, "date,v\n2024-01-01,1\n2024-01-02,\n2024-01-03,NA\n"
                            "2024-01-04,4\n2024-01-05,nan\n")
    assert datasets.load_csv(path, missing=missing).column("v").tolist() == expected


def test_interpolation_follows_the_dates(tmp_path):
    path = _write(tmp_path, "date,v\n2024-01-01,0\n2024-01-02,\n2024-01-05,8\n")
    assert datasets.load_csv(path, missing="interpolate").column("v")[1] == pytest.approx(2.0)


@pytest.mark.parametrize("text, kwargs, error, message", [
    ("date,v\n2024-01-01,1\n2024-01-02,\n", {}, ValueError,
     r"line 3: column 'v' holds '', which is not a number; if it marks a missing value"),
    ("date,v\n2024-01-01,\n2024-01-02,\n", {"missing": "interpolate"}, ValueError,
     "column 'v' has no values"),
    ("date,v\n2024-01-01,\n2024-01-02,1\n", {"missing": "ffill"}, ValueError,
     "line 2: column 'v' has no value and no earlier one"),
    ("date,a,b\n2024-01-01,NA,1\n2024-01-02,2,2\n", {"missing": "ffill"}, ValueError,
     "line 2: column 'a' has no value and no earlier one"),
    ("date,v\n2024-01-01,1\n", {"missing": "drop"}, ValueError, "missing must be one of"),
    ("date,v\n2024-01-02,1\n2024-01-03,2\n2024-01-01,3\n", {}, ValueError,
     "line 4: date 2024-01-01 in column 'date' goes back from 2024-01-03 on line 3"),
    ("date,v\n2024-01-02,1\n2024-01-02,2\n", {}, ValueError, "line 3: date 2024-01-02 .* repeats"),
    ("date,v\n2024-01-02,1\n2024-02-30,2\n", {"date_column": "date"}, ValueError,
     "line 3: date column 'date': '2024-02-30' has an impossible day of month"),
    ("name,v\nx,1\n", {"column": "name"}, ValueError, "holds 'x', which is not a number"),
    ("name,v\nx,1\n", {"column": 3}, TypeError, "column must be a column name"),
    ("name,w\nx,y\n", {}, ValueError, "has no numeric column"),
    ("Date,v\n01/02/2024,1\n", {}, ValueError,
     "line 2: date column 'Date': '01/02/2024' is not a date in a known form"),
])
def test_load_csv_date_and_missing_errors(tmp_path, text, kwargs, error, message):
    with pytest.raises(error, match=message):
        datasets.load_csv(_write(tmp_path, text), **kwargs)


def test_dates_written_newest_first_are_put_in_order(tmp_path):
    series = datasets.load_csv(_write(tmp_path, "Date,Close\n2024-01-03,3\n2024-01-02,2\n"
                                                "2024-01-01,1\n"))
    assert series.column("Close").tolist() == [1, 2, 3] and str(series.dates[0]) == "2024-01-01"


def test_fill_missing_never_changes_its_input():
    values = np.array([1.0, np.nan, 3.0])
    np.testing.assert_array_equal(datasets.fill_missing(values), [1, 2, 3])
    assert np.isnan(values[1])

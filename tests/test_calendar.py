"""fastlstm.calendar: frequencies, gaps, future dates, calendar features, as_dated."""
import math

import numpy as np
import pytest

from fastlstm import calendar
from fastlstm.calendar import FREQUENCIES, Gap


def dates(*texts):
    return np.array(texts, dtype="datetime64")


@pytest.mark.parametrize("values, name, season", [
    (np.arange("2024-01-01T00", "2024-01-03T00", dtype="datetime64[h]"), "h", 24),
    (np.arange("2024-01-01T00:00", "2024-01-01T03:00", 15, dtype="datetime64[m]"), "15min", 4),
    (np.arange("2024-01-01", "2024-03-01", dtype="datetime64[D]"), "D", 7),
    (np.arange("2024-01-01", "2024-06-01", 7, dtype="datetime64[D]"), "W", 52),
    (dates("2023-01-01", "2023-02-01", "2023-03-01", "2023-05-01"), "MS", 12),
    (dates("2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"), "MS", 12),  # month ends
    (dates("2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01"), "QS", 4),
    (dates("2001-01-01", "2002-01-01", "2003-01-01"), "YS", 1),
])
def test_infer_frequency(values, name, season):
    frequency = calendar.infer_frequency(values)
    assert (frequency.name, frequency.season) == (name, season)


def business_days(start, end):
    days = np.arange(start, end, dtype="datetime64[D]")
    return days[np.is_busday(days)]


def test_business_days_are_inferred_and_weekends_are_not_gaps():
    days = np.delete(business_days("2024-01-01", "2024-02-01"), 5)  # drop Monday 8 January
    frequency = calendar.infer_frequency(days)
    assert frequency == FREQUENCIES["B"]
    assert calendar.find_gaps(days, frequency) == [
        Gap(np.datetime64("2024-01-05"), np.datetime64("2024-01-09"), 1)]
    # The same dates as calendar days: the weekends are gaps too.
    assert len(calendar.find_gaps(days, FREQUENCIES["D"])) == 4


def test_the_most_common_spacing_wins_over_gaps():
    hours = np.delete(np.arange("2024-01-01T00", "2024-01-02T00", dtype="datetime64[h]"), [3, 4, 10])
    frequency = calendar.infer_frequency(hours)
    assert frequency.name == "h"
    assert [(str(g.after), g.missing) for g in calendar.find_gaps(hours, frequency)] == [
        ("2024-01-01T02", 2), ("2024-01-01T09", 1)]
    months = dates("2020-01-01", "2020-02-01", "2020-06-01", "2020-07-01")
    assert calendar.find_gaps(months, calendar.infer_frequency(months))[0].missing == 3


def test_infer_frequency_refuses_unsorted_or_repeated_dates():
    with pytest.raises(ValueError, match=r"row 2 \(2024-01-02\) comes before row 1"):
        calendar.infer_frequency(dates("2024-01-01", "2024-01-03", "2024-01-02"))
    with pytest.raises(ValueError, match="row 1 .* repeats row 0"):
        calendar.infer_frequency(dates("2024-01-01", "2024-01-01"))
    with pytest.raises(TypeError, match="datetime64"):
        calendar.infer_frequency([1, 2, 3])
    assert calendar.infer_frequency(dates("2024-01-01")) is None


@pytest.mark.parametrize("history, future", [
    (("2022-12-28", "2023-01-28", "2023-02-28"), ("2023-03-28", "2023-04-28", "2023-05-28")),
    (("2022-12-30", "2023-01-30", "2023-02-28"), ("2023-03-30", "2023-04-30", "2023-05-30")),
    (("2022-11-30", "2022-12-31", "2023-01-31", "2023-02-28"),
     ("2023-03-31", "2023-04-30", "2023-05-31")),
])
def test_monthly_dates_keep_the_day_they_are_anchored_on(history, future):
    frequency = calendar.infer_frequency(dates(*history))
    assert frequency == FREQUENCIES["MS"]
    assert calendar.future_dates(dates(*history)[-1], frequency, 3).tolist() == \
        dates(*future).tolist()


def test_a_lone_month_end_keeps_its_day_without_an_anchor():
    assert calendar.future_dates("2023-02-28", FREQUENCIES["MS"], 3).tolist() == \
        dates("2023-03-28", "2023-04-28", "2023-05-28").tolist()


def test_future_dates_step_by_the_frequency():
    assert calendar.future_dates(np.datetime64("2024-01-31"), FREQUENCIES["MS"], 3).tolist() == \
        dates("2024-02-29", "2024-03-31", "2024-04-30").tolist()
    assert calendar.future_dates(np.datetime64("2024-01-05"), FREQUENCIES["B"], 2).tolist() == \
        dates("2024-01-08", "2024-01-09").tolist()
    hourly = calendar.future_dates(np.datetime64("2024-01-01T23:00"), FREQUENCIES["h"], 2)
    assert [str(d) for d in hourly] == ["2024-01-02T00:00", "2024-01-02T01:00"]
    assert str(calendar.future_dates("2023-11-01", FREQUENCIES["QS"], 1)[0]) == "2024-02-01"
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        calendar.future_dates(np.datetime64("2024-01-01"), FREQUENCIES["D"], 0)
    with pytest.raises(TypeError, match="frequency must be a Frequency"):
        calendar.future_dates(np.datetime64("2024-01-01"), "D", 1)


def test_calendar_features_at_known_dates():
    # Wednesday 3 January 2024, 06:00: hour 6 of 24, day 2 of 7, month 0 of 12.
    features = calendar.calendar_features(dates("2024-01-03T06:00"), ("hour", "dayofweek", "month"))
    angles = [2 * math.pi * 6 / 24, 2 * math.pi * 2 / 7, 0.0]
    expected = [f(a) for a in angles for f in (math.sin, math.cos)]
    np.testing.assert_allclose(features[0], expected, atol=1e-12)
    # 31 December 2024: day 365 of 366 in the year, day 30 of 31 in the month;
    # 29 February: day 59 of 366, day 28 of 29.
    turn = 2 * math.pi
    np.testing.assert_allclose(
        calendar.calendar_features(dates("2024-12-31", "2024-02-29"), ("dayofyear", "dayofmonth")),
        [[math.sin(turn * 365 / 366), math.cos(turn * 365 / 366),
          math.sin(turn * 30 / 31), math.cos(turn * 30 / 31)],
         [math.sin(turn * 59 / 366), math.cos(turn * 59 / 366),
          math.sin(turn * 28 / 29), math.cos(turn * 28 / 29)]], atol=1e-12)
    with pytest.raises(ValueError, match="unknown calendar feature 'weekday'"):
        calendar.calendar_features(dates("2024-01-01"), ("weekday",))


def test_default_calendar_features_follow_the_frequency():
    assert calendar.default_calendar_features(FREQUENCIES["h"]) == ("hour", "dayofweek")
    assert calendar.default_calendar_features(FREQUENCIES["B"]) == ("dayofweek", "month")
    assert calendar.default_calendar_features(FREQUENCIES["MS"]) == ("month",)
    assert calendar.default_calendar_features(FREQUENCIES["YS"]) == ()
    assert calendar.default_calendar_features(None) == ()


def test_as_dated_reads_arrays_and_timeseries():
    data = [[1, 2], [3, 4]]
    dated = calendar.as_dated(data, name="x")
    assert dated.values.dtype == np.float64 and dated.dates is None
    assert dated.names == ("x[0]", "x[1]")
    from fastlstm.datasets import TimeSeries
    series = TimeSeries(index=np.arange(2), values=np.ones((2, 1)), columns=("y",),
                        dates=dates("2024-01-01", "2024-01-02"))
    dated = calendar.as_dated(series)
    assert dated.names == ("y",) and dated.dates.tolist() == series.dates.tolist()
    dated.values[0, 0] = 5.0
    assert series.values[0, 0] == 1.0  # a copy, never the caller's array
    with pytest.raises(ValueError, match="holds NaN or infinity at row 1"):
        calendar.as_dated([1.0, np.nan])
    with pytest.raises(TypeError, match="must be numeric"):
        calendar.as_dated(["a", "b"])


def test_as_dated_reads_pandas_objects():
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2024-01-01", periods=3, freq="h")
    series = pd.Series([1.0, 2.0, 3.0], index=index, name="load")
    dated = calendar.as_dated(series)
    assert dated.names == ("load",) and dated.values.shape == (3,)
    assert dated.dates.dtype == np.dtype("datetime64[s]")
    assert calendar.infer_frequency(dated.dates).name == "h"
    dated.values[0] = 9.0
    assert series.iloc[0] == 1.0

    frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]},
                         index=pd.period_range("2024-01", periods=2, freq="M"))
    dated = calendar.as_dated(frame)
    assert dated.values.shape == (2, 2) and dated.names == ("a", "b")
    assert dated.dates.tolist() == dates("2024-01-01", "2024-02-01").tolist()

    aware = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01 01:00", periods=2, freq="h",
                                                      tz="Europe/Paris"))
    assert str(calendar.as_dated(aware).dates[0]) == "2024-01-01T00:00:00"  # in UTC

    with_dates = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "v": [1, 2]})
    dated = calendar.as_dated(with_dates)
    assert dated.names == ("v",) and str(dated.dates.dtype) == "datetime64[D]"
    assert calendar.as_dated(pd.Series([1, 2])).dates is None
    with pytest.raises(TypeError, match="column 'ticker' must be numeric"):
        calendar.as_dated(pd.DataFrame({"ticker": ["A", "B"], "v": [1, 2]}))

"""Dates written as text or as decimal years, read into datetime64 arrays.

Text forms (one form per column; a time of day and a UTC offset are optional
after the date, separated by "T" or a space):

- ``YYYY-MM-DD`` (ISO 8601), e.g. "2024-01-02", "2024-01-02 13:00",
  "2024-01-02T13:00:00.250+01:00"
- ``YYYY/MM/DD``, e.g. "2024/01/02 13:00"
- ``DD.MM.YYYY``, e.g. "02.01.2024 13:00"
- ``YYYY-MM``, a month, e.g. "2024-01"

Decimal years, as R writes the time of a monthly, quarterly or yearly series
(1749.0833 is February 1749, and so is 1749.08 rounded to 2 decimals; a
mid-period convention such as 1749.042 for January is recognised too), become
the first day of their period.
"""
import re

import numpy as np

from .calendar import _month_length

_TIME = (r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})"
         r"(?:[.,](?P<fraction>\d{1,9}))?)?)?\s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?")
_FORMS = {
    "YYYY-MM-DD": re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})" + _TIME),
    "YYYY/MM/DD": re.compile(r"(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})" + _TIME),
    "DD.MM.YYYY": re.compile(r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})" + _TIME),
    "YYYY-MM": re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})"),
}
# Decimal years outside this range are more likely counts or seconds than years.
_YEARS = (1000, 3000)
# How far apart (in periods) the offsets of decimal years from their grid may
# lie: rounding to 3 decimals moves a month by 0.012, and no rounding may
# move a value more than a quarter of its period.
_OFFSET_SPREAD = 0.05
_LARGEST_SPREAD = 0.25


class DateTextError(ValueError):
    """A cell that is not a date; ``row`` is its 0-based position."""

    def __init__(self, row, message):
        super().__init__(message)
        self.row = row


def date_form(text):
    """The name of the text form `text` is written in, or None."""
    for name, pattern in _FORMS.items():
        if pattern.fullmatch(text):
            return name
    return None


# UTC offsets in use run from -12:00 to +14:00.
_LARGEST_OFFSET_HOURS = 14


def _offset_seconds(offset, row, text):
    """The UTC offset "Z", "+HH", "+HHMM" or "+HH:MM" in seconds, or a DateTextError."""
    if not offset or offset == "Z":
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > _LARGEST_OFFSET_HOURS or minutes > 59:
        raise DateTextError(row, f"{text!r} has an impossible UTC offset {offset!r}")
    return sign * (hours * 3600 + minutes * 60)


def parse_text_dates(cells):
    """Dates written in one of the text forms, as datetime64.

    Parameters
    ----------
    cells : sequence of str, not empty

    Returns
    -------
    ndarray of shape (len(cells),)
        datetime64[D] when no cell has a time of day, [s] when some do,
        [us] with fractions of a second. Times with a UTC offset are
        converted to UTC.

    Raises
    ------
    DateTextError
        A cell in another form than the first, or an impossible date or time
        (month 13, 30 February, hour 24), naming its row.
    """
    form = date_form(cells[0])
    if form is None:
        raise DateTextError(0, f"{cells[0]!r} is not a date in a known form "
                               f"({', '.join(_FORMS)}, or decimal years)")
    fast = _parse_one_layout(cells, _FORMS[form].fullmatch(cells[0]))
    if fast is not None:
        return fast
    return _parse_row_by_row(cells, form)


_ZERO, _NINE = ord("0"), ord("9")
_DATE_TIME_SEPARATORS = (ord("T"), ord(" "))


def _parse_one_layout(cells, first):
    """The dates when every cell is laid out character by character as the
    first (digits where it has digits, its separators elsewhere, "T" or " "
    between date and time) and it has no UTC offset; None otherwise.

    Checks and reads all cells at once as an array of character codes, so a
    million dates take a fraction of a second rather than a regex each.
    """
    groups = first.groupdict()
    if groups.get("offset"):
        return None
    text = np.array(cells)
    width = len(cells[0])
    if text.dtype.itemsize != 4 * width or (np.char.str_len(text) != width).any():
        return None
    codes = text.view(np.uint32).reshape(len(cells), width)
    template = np.frombuffer(cells[0].encode("utf-32-le"), np.uint32)
    digit = (template >= _ZERO) & (template <= _NINE)
    if not ((codes[:, digit] >= _ZERO) & (codes[:, digit] <= _NINE)).all():
        return None
    same = ~digit
    if groups.get("hour"):
        between = first.start("hour") - 1
        same[between] = False
        if not np.isin(codes[:, between], _DATE_TIME_SEPARATORS).all():
            return None
    if not (codes[:, same] == template[same]).all():
        return None

    fields = {key: np.zeros(len(cells), np.int64)
              for key in ("year", "month", "day", "hour", "minute", "second", "micro", "offset")}
    fields["day"][:] = 1
    for key in ("year", "month", "day", "hour", "minute", "second"):
        if groups.get(key):
            fields[key] = _digits_value(codes, *first.span(key))
    has_fraction = bool(groups.get("fraction"))
    if has_fraction:  # microseconds: the first 6 digits
        digits = min(len(groups["fraction"]), 6)
        start = first.start("fraction")
        fields["micro"] = _digits_value(codes, start, start + digits) * 10 ** (6 - digits)
    return _assemble(cells, fields, bool(groups.get("hour")), has_fraction)


def _digits_value(codes, start, end):
    """The number written in columns start .. end - 1 of character codes, per row."""
    powers = 10 ** np.arange(end - start - 1, -1, -1, dtype=np.int64)
    return (codes[:, start:end].astype(np.int64) - _ZERO) @ powers


def _parse_row_by_row(cells, form):
    """The dates of `cells` in `form`, each matched by its regular expression."""
    pattern = _FORMS[form]
    fields = {key: np.zeros(len(cells), np.int64)
              for key in ("year", "month", "day", "hour", "minute", "second", "micro", "offset")}
    fields["day"][:] = 1
    has_time = has_fraction = False
    has_offset = None
    for row, text in enumerate(cells):
        match = pattern.fullmatch(text)
        if match is None:
            raise DateTextError(row, f"{text!r} is not a date of the form {form}, as the first "
                                     f"date {cells[0]!r} is")
        parts = match.groupdict()
        if has_offset is not None and has_offset != bool(parts.get("offset")):
            raise DateTextError(row, f"{text!r} mixes dates with and without a UTC offset")
        has_offset = bool(parts.get("offset"))
        for key in ("year", "month", "day", "hour", "minute", "second"):
            if parts.get(key):
                fields[key][row] = int(parts[key])
        if parts.get("hour"):
            has_time = True
        if parts.get("fraction"):
            has_fraction = True
            fields["micro"][row] = int(parts["fraction"][:6].ljust(6, "0"))
        fields["offset"][row] = _offset_seconds(parts.get("offset"), row, text)
        has_time = has_time or has_offset
    return _assemble(cells, fields, has_time, has_fraction)


def _first_bad(cells, bad, what):
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DateTextError(row, f"{cells[row]!r} has an impossible {what}")


def _assemble(cells, fields, has_time, has_fraction):
    """datetime64 values from integer fields, each range-checked."""
    year, month, day = fields["year"], fields["month"], fields["day"]
    _first_bad(cells, (month < 1) | (month > 12), "month")
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    _first_bad(cells, (day < 1) | (day > _month_length(months)), "day of month")
    dates = months.astype("datetime64[D]") + (day - 1)
    if not has_time:
        return dates
    _first_bad(cells, fields["hour"] > 23, "hour")
    _first_bad(cells, fields["minute"] > 59, "minute")
    _first_bad(cells, fields["second"] > 59, "second")
    seconds = fields["hour"] * 3600 + fields["minute"] * 60 + fields["second"] - fields["offset"]
    dates = dates.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    if has_fraction:
        dates = dates.astype("datetime64[us]") + fields["micro"].astype("timedelta64[us]")
    return dates


def _decimals_tolerance(per_year, decimals):
    """How far apart, in periods, the offsets of values rounded to `decimals` may lie."""
    if decimals is None:
        return _OFFSET_SPREAD
    return min(_LARGEST_SPREAD, max(_OFFSET_SPREAD, per_year * 10.0 ** -decimals))


def parse_decimal_years(years, decimals=None):
    """Decimal years of a monthly, quarterly or yearly series as datetime64[D].

    Each value becomes the first day of its month, quarter or year. The
    period is the longest of year, quarter and month on whose grid all values
    sit at one common offset (0 for period starts as R writes them, 1/2 for
    period middles), within the rounding of the digits written: values
    rounded to 2 decimals (1749.08 for February) may stray from the grid by
    0.06 of a month. No value may stray more than a quarter of a period.

    Parameters
    ----------
    years : ndarray of shape (n,), float64, finite
    decimals : int, optional
        The most digits written after the decimal point; default: values
        rounded to 3 decimals or more.

    Returns
    -------
    ndarray of shape (n,), datetime64[D]

    Raises
    ------
    DateTextError
        A value outside 1000 .. 3000, values on no monthly, quarterly or
        yearly grid, or a single value that is not a whole year.
    """
    outside = (years < _YEARS[0]) | (years >= _YEARS[1])
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DateTextError(row, f"{float(years[row])!r} is not a decimal year between "
                                 f"{_YEARS[0]} and {_YEARS[1]}")
    if len(years) == 1 and years[0] != np.floor(years[0]):
        raise DateTextError(0, f"{float(years[0])!r} is a single decimal year with a fraction, "
                               "which does not tell whether it is a month or a quarter")
    for per_year in (1, 4, 12):
        scaled = years * per_year
        fraction = scaled - np.floor(scaled)
        # Offsets from the first value's, in [-1/2, 1/2): a grid's offsets near 0 and near 1 agree.
        spread = (fraction - fraction[0] + 0.5) % 1.0 - 0.5
        if np.ptp(spread) <= _decimals_tolerance(per_year, decimals) + 1e-9:
            offset = (fraction[0] + spread.mean() + 0.25) % 1.0 - 0.25  # in [-1/4, 3/4)
            periods = np.floor(scaled - offset + 0.5).astype(np.int64)
            months = (periods * (12 // per_year) - 1970 * 12).astype("datetime64[M]")
            return months.astype("datetime64[D]")
    raise DateTextError(0, "decimal years that are not monthly, quarterly or yearly "
                           f"(first values {years[:3].tolist()})")

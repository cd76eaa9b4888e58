"""Write the small CSV files of this folder: inputs a user might hand to
``fastlstm train`` or ``fastlstm forecast`` that are odd, broken or not
CSV at all. tests/test_cli.py runs the command on each.

    python tests/data/hostile_csv/make_hostile_csv.py

Files larger than a few KB (a 200 KiB field, a sparse 1 GiB file) are made
by the tests themselves, in a temporary folder.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _rows(values, start_day=1):
    return "".join(f"2020-01-{start_day + i:02d},{v}\n" for i, v in enumerate(values))


TWELVE = [10.5, 11.0, 11.25, 10.75, 12.0, 12.5, 13.0, 12.75, 13.5, 14.0, 14.25, 15.0]

FILES = {
    # Read as intended: a byte-order mark (as Excel writes "CSV UTF-8") and
    # CRLF line ends; header names in quotes with spaces around them.
    "bom.csv": b"\xef\xbb\xbf" + ("Date,Close\n" + _rows(TWELVE)).replace("\n", "\r\n").encode(),
    "quoted_header.csv": (' "Date" , "Close "\n' + _rows(TWELVE)).encode(),
    # Refused, each with its own message.
    "latin1.csv": ("Date,Close,City\n" + _rows([1, 2]).replace("\n", ",Lyon\n")
                   + "2020-01-03,3,Orléans\n").encode("latin-1"),
    "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
    "empty.csv": b"",
    "header_only.csv": b"Date,Close\n",
    "no_close_column.csv": ("Date,Price\n" + _rows(TWELVE)).encode(),
    "non_numeric.csv": ("Date,Close\n" + _rows(TWELVE[:3] + ["n/a"] + TWELVE[4:])).encode(),
    "not_finite.csv": ("Date,Close\n" + _rows(TWELVE[:5] + ["inf"] + TWELVE[6:])).encode(),
    "missing_field.csv": ("Date,Close\n" + _rows(TWELVE[:2]) + "2020-01-03\n").encode(),
    "too_short.csv": ("Date,Close\n" + _rows(TWELVE[:3])).encode(),
    # Numbers, but too far apart to scale into float32.
    "huge_values.csv": ("Date,Close\n" + _rows(TWELVE[:11] + ["1e308"])).encode(),
}


def main():
    for name, content in FILES.items():
        (HERE / name).write_bytes(content)


if __name__ == "__main__":
    main()

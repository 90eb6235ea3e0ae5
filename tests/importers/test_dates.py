"""Culture-formatted dates: one day/month reading per column, decided over the whole file."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.importers import BadValue, parse_date

from .helpers import crlf, messages, quoted, read, rows, warnings

THUMB = "A" * 40


def certificates(*not_after: str, not_before: str | None = None, **options):
    """A Get-ExchangeCertificate export whose NotAfter column holds the given values."""
    lines = [quoted("Thumbprint", "NotBefore", "NotAfter")]
    for i, value in enumerate(not_after):
        thumb = f"{i:040X}"
        lines.append(quoted(thumb, not_before, value))
    return read(crlf(*lines), "certs.csv", **options)


def not_after(export) -> list[datetime]:
    return [row["not_after"] for _, row in rows(export)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["3/9/2019 4:05:07 PM", "12/31/2020 12:00:00 AM"],
            [(2019, 3, 9, 16, 5, 7), (2020, 12, 31)],
        ),
        (
            ["09/03/2019 16:05:07", "13/03/2019 08:00:00"],
            [(2019, 3, 9, 16, 5, 7), (2019, 3, 13, 8)],
        ),
        (["09.03.2019 16:05:07"], [(2019, 3, 9, 16, 5, 7)]),
        (["9-3-2019 16:05:07"], [(2019, 3, 9, 16, 5, 7)]),
        (
            ["2019/03/09 16:05:07", "2019/12/01 6:05:07"],
            [(2019, 3, 9, 16, 5, 7), (2019, 12, 1, 6, 5, 7)],
        ),
        (
            ["2019-03-09T16:05:07", "2019-03-10T16:05:07.1234567Z"],
            [(2019, 3, 9, 16, 5, 7), (2019, 3, 10, 16, 5, 7, 123456)],
        ),
        (["3/9/2019 4:05 PM", "3/13/2019"], [(2019, 3, 9, 16, 5), (2019, 3, 13)]),
    ],
    ids=["en-US", "en-GB/fr-FR", "de-DE", "nl-NL", "ja-JP", "ISO", "no-seconds/date-only"],
)
def test_each_culture_is_read_without_being_told(values, expected):
    assert not_after(certificates(*values)) == [datetime(*parts) for parts in expected]


def test_results_are_naive_datetimes():
    [value] = not_after(certificates("3/9/2019 4:05:07 PM"))
    assert value.tzinfo is None


def test_all_small_numbers_without_am_pm_are_ambiguous_and_ask_for_culture():
    export = certificates("09/03/2019 16:05:07", "01/02/2020 10:00:00")
    assert messages(export) == [
        "certs.csv: column NotAfter: the dates could be day/month or month/day (no day above 12 "
        "and no AM/PM in 2 values); re-run with --culture en-GB (day first) or --culture en-US "
        "(month first)"
    ]


@pytest.mark.parametrize(
    ("culture", "expected"),
    [
        ("en-GB", datetime(2019, 3, 9, 16, 5, 7)),
        ("fr-FR", datetime(2019, 3, 9, 16, 5, 7)),
        ("en-US", datetime(2019, 9, 3, 16, 5, 7)),
        ("EN-us", datetime(2019, 9, 3, 16, 5, 7)),
    ],
)
def test_the_culture_option_settles_an_ambiguous_column(culture, expected):
    assert not_after(certificates("09/03/2019 16:05:07", culture=culture)) == [expected]


def test_a_value_against_the_given_culture_is_a_line_precise_problem():
    export = certificates("3/9/2019 4:05:07 PM", "3/13/2019 4:05:07 PM", culture="en-GB")
    assert messages(export) == [
        "certs.csv:3: column NotAfter: '3/13/2019 4:05:07 PM' is not a date in en-GB "
        "(dd/MM/yyyy HH:mm:ss)"
    ]


def test_a_value_against_the_proven_reading_is_a_line_precise_problem():
    export = certificates("3/14/2019 9:12:44 AM", "2/30/2019 9:14:02 AM")
    assert messages(export) == [
        "certs.csv:3: column NotAfter: '2/30/2019 9:14:02 AM' is not a valid M/d/yyyy date, "
        "the reading of this column (month first, as line 2 '3/14/2019 9:12:44 AM' shows)"
    ]


def test_day_first_and_month_first_proof_in_one_column_is_reported_not_guessed():
    export = certificates("13/03/2019 10:00:00", "03/14/2019 10:00:00")
    assert messages(export) == [
        "certs.csv: column NotAfter: some dates only make sense day-first (line 2 "
        "'13/03/2019 10:00:00') and others only month-first (line 3 '03/14/2019 10:00:00'); "
        "check the file, or re-run with --culture to choose one reading"
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("yesterday", "is not a date"),
        ("3/9/19 4:05:07 PM", "no four-digit year"),
        ("3/9/2019 13:05:07 PM", "the hour of an AM/PM time must be 1 to 12"),
        ("3/9/2019 4:65:07 PM", "is not a time of day"),
        ("2019-02-29", "is not a valid date (read as year-month-day)"),
    ],
)
def test_values_that_are_no_date_in_any_culture(value, why):
    [message] = messages(certificates(value, "3/14/2019 9:12:44 AM"))
    assert message.startswith(f"certs.csv:2: column NotAfter: {value!r}")
    assert why in message


def test_a_date_column_proves_the_reading_of_an_ambiguous_one_in_the_same_file():
    export = certificates("13/03/2019 10:00:00", not_before="01/02/2019 10:00:00")
    [(_, row)] = rows(export)
    assert row["not_before"] == datetime(2019, 2, 1, 10)
    assert warnings(export) == [
        "certs.csv: column NotBefore: no value shows the day/month order; read as d/M/yyyy "
        "like column NotAfter of this file"
    ]


def test_unknown_culture_is_a_problem():
    [message] = messages(certificates("3/9/2019 4:05:07 PM", culture="xx-YY"))
    assert message.startswith("certs.csv: unknown culture 'xx-YY'; use one of en-US, en-GB")


def test_many_failures_are_counted_beyond_the_shown_ones():
    values = [f"3/{day}/2019 4:05:07 PM" for day in range(13, 29)] * 20
    export = certificates(*values, culture="de-DE", max_problems=10)
    assert export.problem_count == len(values)
    assert messages(export)[-1] == f"certs.csv: and {len(values) - 10} more problems not shown"


PATTERNS = {
    "en-US": lambda d: f"{d.month}/{d.day}/{d.year} {(d.hour % 12) or 12}:{d:%M:%S} {d:%p}",
    "en-GB": lambda d: f"{d:%d/%m/%Y %H:%M:%S}",
    "de-DE": lambda d: f"{d:%d.%m.%Y %H:%M:%S}",
    "fr-FR": lambda d: f"{d:%d/%m/%Y %H:%M:%S}",
    "nl-NL": lambda d: f"{d.day}-{d.month}-{d.year} {d:%H:%M:%S}",
    "ja-JP": lambda d: f"{d:%Y/%m/%d} {d.hour}:{d:%M:%S}",
}


@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)),
    culture=st.sampled_from(sorted(PATTERNS)),
)
def test_every_culture_pattern_reads_back_what_was_written(moment, culture):
    moment = moment.replace(microsecond=0)
    assert parse_date(PATTERNS[culture](moment), culture=culture) == moment


def test_parse_date_refuses_a_date_outside_the_culture():
    with pytest.raises(BadValue, match="is not a date in en-US"):
        parse_date("13/03/2019 10:00:00", culture="en-US")

from datetime import timedelta

import pytest

from moor.errors import MoorError
from moor.resources import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1m", timedelta(minutes=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1m30s", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(milliseconds=1500)),
        (".5m", timedelta(seconds=30)),
        ("250us", timedelta(microseconds=250)),
        ("250µs", timedelta(microseconds=250)),
        ("250μs", timedelta(microseconds=250)),
        ("1500ns", timedelta(microseconds=2)),
        ("2h45m30s100ms", timedelta(hours=2, minutes=45, seconds=30, milliseconds=100)),
        ("1s1s", timedelta(seconds=2)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("+10s", timedelta(seconds=10)),
    ],
)
def test_go_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "10", "abc", "1d", "5 m", "m", "1h30", "1.2.3s", "s1", " 1s", "1S"])
def test_malformed_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(DurationError, match=r"is not a duration: use a number and a unit such as"):
        parse_duration(text)


def test_negative_durations_are_refused() -> None:
    with pytest.raises(DurationError, match=r"negative"):
        parse_duration("-5s")


def test_absurdly_long_durations_are_refused() -> None:
    with pytest.raises(DurationError, match=r"too long"):
        parse_duration("99999999999999999h")


def test_a_duration_error_is_a_moor_error_and_a_value_error() -> None:
    with pytest.raises(MoorError):
        parse_duration("soon")
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=26), "26h"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=20), "20µs"),
        (timedelta(seconds=-30), "-30s"),
    ],
)
def test_durations_print_as_go_does(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("text", ["1h30m", "45s", "1.5s", "500ms", "3h0m5s"])
def test_printed_durations_read_back(text: str) -> None:
    value = parse_duration(text)
    assert parse_duration(format_duration(value)) == value

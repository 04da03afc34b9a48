"""Go-style duration strings (`30s`, `1m30s`, `500ms`), the syntax the CRDs and Flux users know."""

from __future__ import annotations

import re
from datetime import timedelta

from moor.errors import MoorError

# Go's time.ParseDuration units, in microseconds (timedelta's resolution; nanoseconds round to it).
_UNIT_MICROSECONDS: dict[str, float] = {
    "ns": 0.001,
    "us": 1,
    "µs": 1,  # U+00B5 MICRO SIGN
    "μs": 1,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
}
_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_HINT = "use a number and a unit such as 500ms, 30s, 5m or 1h30m"


class DurationError(MoorError, ValueError):
    """A string that is not a Go duration."""


def parse_duration(text: str) -> timedelta:
    """Reads a non-negative Go duration: `1h30m`, `2.5s`, `500ms`, `0`; units ns, us/µs, ms, s, m, h."""
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a duration: {_HINT}")
    if text == "0":
        return timedelta(0)
    if text.startswith("-"):
        raise DurationError(f"{text!r} is negative: a duration here must be zero or more")
    body = text.removeprefix("+")
    if not body:
        raise DurationError(f"{text!r} is not a duration: {_HINT}")
    microseconds = 0.0
    position = 0
    while position < len(body):
        match = _COMPONENT.match(body, position)
        if match is None:
            raise DurationError(f"{text!r} is not a duration: {_HINT}")
        number, unit = match.groups()
        microseconds += float(number) * _UNIT_MICROSECONDS[unit]
        position = match.end()
    try:
        return timedelta(microseconds=round(microseconds))
    except OverflowError:
        raise DurationError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """Writes a timedelta the way Go prints durations, without zero parts: `1h30m`, `45s`, `1.5s`, `0s`."""
    total_us = round(value / timedelta(microseconds=1))
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    if total_us == 0:
        return "0s"
    if total_us < 1_000_000:
        return f"{sign}{_trim(total_us / 1_000)}ms" if total_us >= 1_000 else f"{sign}{total_us}µs"
    hours, rest = divmod(total_us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        parts.append(f"{_trim(rest / 1_000_000)}s")
    return sign + "".join(parts)


def _trim(number: float) -> str:
    text = f"{number:.6f}".rstrip("0").rstrip(".")
    return text or "0"

"""`moor audit` and `moor stats` without a cluster: records become audit entries, times are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from moor.cli.audit import BadTime, audit_entries, parse_length, parse_since
from moor.cli.stats import human_seconds

NOW = datetime(2024, 6, 30, tzinfo=UTC)


def record(sequence: int, result: str, finished: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": f"web.{sequence:06d}"},
        "spec": {
            "sync": "web",
            "sequence": sequence,
            "revision": "main@sha1:" + "a" * 40,
            "result": result,
            "startedAt": finished,
            "finishedAt": finished,
            **spec,
        },
    }


def test_every_record_is_an_entry_with_its_action() -> None:
    records = [
        record(3, "DriftCorrected", "2024-06-03T00:00:00Z", trigger="drift correction", updated=["ConfigMap shop/a"]),
        record(1, "Succeeded", "2024-06-01T00:00:00Z", author="Jane", approvedBy="alice", created=["ConfigMap shop/a"]),
        record(2, "RolledBack", "2024-06-02T00:00:00Z", trigger="rollback", rolledBackTo="main@sha1:b"),
        record(4, "Succeeded", "2024-06-04T00:00:00Z", trigger="pin"),
    ]
    entries = audit_entries(records)
    assert [(e["sequence"], e["action"]) for e in entries] == [
        (1, "deployment"),
        (2, "rollback"),
        (3, "drift-correction"),
        (4, "pin"),
    ]
    first = entries[0]
    assert first["author"] == "Jane" and first["approvedBy"] == "alice"
    assert first["commit"] == "a" * 40 and first["namespace"] == "shop" and first["sync"] == "web"
    assert first["changes"] == {"created": ["ConfigMap shop/a"], "updated": [], "pruned": []}
    assert entries[1]["rolledBackTo"] == "main@sha1:b"


def test_since_keeps_later_entries() -> None:
    records = [record(1, "Succeeded", "2024-06-01T00:00:00Z"), record(2, "Succeeded", "2024-06-20T00:00:00Z")]
    assert [e["sequence"] for e in audit_entries(records, parse_since("14d", NOW))] == [2]
    assert [e["sequence"] for e in audit_entries(records, parse_since("2024-05-01", NOW))] == [1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(days=14)),
        ("2024-06-01", datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-06-01T10:00:00Z", datetime(2024, 6, 1, 10, tzinfo=UTC)),
    ],
)
def test_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "0", "-1h", ""])
def test_bad_times_are_user_errors(text: str) -> None:
    with pytest.raises(BadTime):
        parse_since(text, NOW)
    with pytest.raises(BadTime):
        parse_length(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (42, "42s"), (3900, "1h5m"), (3601, "1h"), (200000, "2d7h"), (90, "1m30s")],
)
def test_human_seconds(seconds: float | None, text: str) -> None:
    assert human_seconds(seconds) == text

"""`moor audit`: every recorded deployment, drift correction, rollback and approval, as evidence.

Read from the SyncRecords (the durable history): when, which Sync, what revision, who authored it,
who approved it and what changed. `-o jsonl` gives one self-contained JSON object per line.
`--from-git URL` reads the same entries from the deployment notes (refs/notes/moor) of a repository
instead, with no cluster: the trail of every cluster that deployed from it, its own `cluster` field
naming each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from moor.automation.message import describe_image_moves
from moor.cli.options import Target, lines_output_option, print_document, run_async, target_options
from moor.cli.syncs import short_revision
from moor.errors import MoorError
from moor.record.git_notes import deployment_entry, read_deployment_notes
from moor.record.history import HistoryStore
from moor.resources import DurationError, parse_duration
from moor.resources.conditions import parse_time

_DAYS = re.compile(r"(\d+)([dw])")


class BadTime(MoorError):
    pass


def parse_length(text: str) -> timedelta:
    """A length of time: `7d`, `2w`, or a Go duration (`24h`, `90m`)."""
    days = _DAYS.fullmatch(text.strip())
    if days:
        return timedelta(days=int(days[1]) * (7 if days[2] == "w" else 1))
    try:
        length = parse_duration(text.strip())
    except DurationError:
        raise BadTime(f"{text!r} is not a length of time such as 30d, 2w or 12h") from None
    if length <= timedelta(0):
        raise BadTime(f"{text!r} is not a length of time such as 30d, 2w or 12h")
    return length


def parse_since(text: str, now: datetime) -> datetime:
    """`24h`, `90m`, `7d`, `2w` (that long before `now`), or a date or time (`2024-05-01`, RFC 3339)."""
    moment = parse_time(text.strip())
    if moment is not None:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return now - parse_length(text)
    except BadTime:
        raise BadTime(
            f"{text!r} is neither a length of time (24h, 7d) nor a date or time (2024-05-01, 2024-05-01T10:00:00Z)"
        ) from None


audit_entry = deployment_entry
"""One SyncRecord as an audit entry (the same document a deployment note in Git holds)."""


def audit_entries(records: Iterable[Mapping[str, Any]], since: datetime | None = None) -> list[dict[str, Any]]:
    """The entries of `records` at or after `since`, oldest first."""
    entries = []
    for record in records:
        entry = audit_entry(record)
        moment = parse_time(entry["time"])
        if since is not None and (moment is None or moment < since):
            continue
        entries.append(entry)
    return sorted(entries, key=lambda e: (str(e["time"]), e["namespace"], e["sync"], e["sequence"] or 0))


@click.command()
@click.option("--since", default=None, help="Only entries from then on: 24h, 7d, or a date/time (2024-05-01).")
@lines_output_option("entry")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@click.option(
    "--from-git",
    "from_git",
    metavar="URL",
    default=None,
    help="Read the trail from the deployment notes of this Git repository instead (no cluster needed).",
)
@click.option("--branch", default=None, help="With --from-git: only deployments of commits on this branch.")
@target_options
def audit(
    target: Target, since: str | None, output: str, all_namespaces: bool, from_git: str | None, branch: str | None
) -> None:
    """Every recorded deployment, drift correction, rollback and approval of every Sync."""
    since_time = parse_since(since, datetime.now(UTC)) if since else None
    if branch and not from_git:
        raise click.UsageError("--branch needs --from-git")
    if from_git:
        raise SystemExit(run_async(_audit_from_git(from_git, branch, since_time, output)))
    raise SystemExit(run_async(_audit(target, since_time, output, all_namespaces)))


async def _audit(target: Target, since: datetime | None, output: str, all_namespaces: bool) -> int:
    namespace = "" if all_namespaces else target.resolve_namespace()
    async with target.connect() as api:
        entries = audit_entries(await HistoryStore(api).list(namespace), since)
    _show(entries, output)
    return 0


async def _audit_from_git(url: str, branch: str | None, since: datetime | None, output: str) -> int:
    """The trail from the repository's notes alone (credentials, when it needs them, in the URL's userinfo)."""
    notes = await read_deployment_notes(url, branch=branch)
    entries = []
    for note in notes:
        moment = parse_time(str(note.entry.get("time") or ""))
        if since is None or (moment is not None and moment >= since):
            entries.append(note.as_audit_entry())
    _show(entries, output)
    return 0


def _show(entries: list[dict[str, Any]], output: str) -> None:
    if output == "table":
        _print(entries)
    else:
        print_document(entries, output)


def _print(entries: list[dict[str, Any]]) -> None:
    table = Table(box=None, pad_edge=False)
    images = [
        describe_image_moves(
            str(entry.get("commitMessage", "")), str(entry["result"]), str(entry.get("finishedAt", ""))
        )
        for entry in entries
    ]
    columns = ["TIME", "SYNC", "ACTION", "RESULT", "REVISION", "AUTHOR", "APPROVED BY", "CHANGES"]
    columns += ["IMAGES"] if any(images) else []
    for column in columns:
        table.add_column(column, no_wrap=column not in ("AUTHOR", "APPROVED BY", "IMAGES"))
    for entry, moved in zip(entries, images, strict=True):
        changes = entry["changes"]
        counts = f"+{len(changes['created'])} ~{len(changes['updated'])} -{len(changes['pruned'])}"
        table.add_row(
            str(entry["time"]),
            f"{entry['cluster']}:{entry['namespace']}/{entry['sync']}"
            if entry.get("cluster")
            else f"{entry['namespace']}/{entry['sync']}",
            entry["action"],
            str(entry["result"]),
            short_revision(entry["revision"]),
            str(entry["author"]),
            str(entry["approvedBy"]),
            counts,
            *([moved] if any(images) else []),
        )
    Console().print(table if entries else "No recorded deployments.")


def _where(entry: Mapping[str, Any]) -> str:
    """`namespace/sync`, after `cluster:` for an entry read from Git (which knows its cluster)."""
    sync = f"{entry['namespace']}/{entry['sync']}"
    return f"{entry['cluster']}:{sync}" if entry.get("cluster") else sync

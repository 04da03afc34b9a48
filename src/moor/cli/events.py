"""`moor events [sync|source NAME] [-A] [--watch]`: the Events Moor recorded on its objects, newest last.

Read from the core/v1 Events whose involved object is one of Moor's (`moor.dev/v1`); with `--watch` the
list is followed by a watch, each new or repeated Event printed as one more line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from moor.cli.options import Target, output_option, print_document, run_async, target_options
from moor.cli.syncs import NotFound, fetch
from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.cluster.discovery import ResourceType
from moor.objects import KubeObject
from moor.resources import API_VERSION, GITREPOSITORY, SYNC

KINDS = {"sync": SYNC.kind, "source": GITREPOSITORY.kind}
COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
WATCH_SECONDS = 300


@click.command()
@click.argument("what", type=click.Choice(sorted(KINDS)), required=False)
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Events in every namespace.")
@click.option("-w", "--watch", is_flag=True, help="After the list, print new Events as they happen (Ctrl-C ends).")
@output_option
@target_options
def events(target: Target, what: str | None, name: str | None, all_namespaces: bool, watch: bool, output: str) -> None:
    """Moor's Events, newest last: of the Sync or source NAME, of a namespace, or of all (-A)."""
    if (what is None) != (name is None):
        raise click.UsageError("name the object as `sync NAME` or `source NAME`, or give neither")
    subject = (KINDS[what], name) if what and name else None
    raise SystemExit(run_async(_events(target, subject, all_namespaces, watch, output)))


async def _events(
    target: Target, subject: tuple[str, str] | None, all_namespaces: bool, watch: bool, output: str
) -> int:
    namespace = None if all_namespaces and subject is None else target.resolve_namespace()
    async with target.connect() as api:
        if subject is not None and namespace is not None:
            await fetch(api, subject[0], namespace, subject[1])
        resource = await api.discovery.resolve("v1", "Event")
        if resource is None:
            raise NotFound("the cluster does not serve core/v1 Events")
        listing = await api.list(resource, namespace=namespace)
        shown = sort_events(event for event in listing.items if is_about(event, subject))
        if output != "table":
            print_document(shown, output)
        else:
            _print_rows([row_of(event) for event in shown])
        if watch:
            await _follow(api, resource, namespace, subject, listing.resource_version, output)
    return 0


async def _follow(
    api: KubeApi,
    resource: ResourceType,
    namespace: str | None,
    subject: tuple[str, str] | None,
    resource_version: str,
    output: str,
) -> None:
    """Prints each Event added or updated after `resource_version`, until interrupted."""
    while True:
        try:
            async for change in api.watch(
                resource, resource_version=resource_version, namespace=namespace, timeout_seconds=WATCH_SECONDS
            ):
                event = change.get("object") or {}
                resource_version = str((event.get("metadata") or {}).get("resourceVersion") or resource_version)
                if change.get("type") in ("ADDED", "MODIFIED") and is_about(event, subject):
                    if output != "table":
                        print_document([event], output)
                    else:
                        _print_rows([row_of(event)], header=False)
        except ApiError as error:
            if not error.gone:
                raise
            resource_version = (await api.list(resource, namespace=namespace, limit=1)).resource_version


def is_about(event: Mapping[str, Any], subject: tuple[str, str] | None) -> bool:
    """An Event on one of Moor's objects (on `subject` (kind, name) when given)."""
    involved = event.get("involvedObject") or {}
    if involved.get("apiVersion") != API_VERSION:
        return False
    return subject is None or (involved.get("kind"), involved.get("name")) == subject


def last_seen(event: Mapping[str, Any]) -> str:
    """When the Event last happened, as RFC 3339 ("" when it says nothing)."""
    series = event.get("series") or {}
    metadata = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or metadata.get("creationTimestamp")
        or ""
    )


def sort_events(found: Iterable[KubeObject]) -> list[KubeObject]:
    """Oldest first, so the newest Event is the last line a terminal shows."""
    return sorted(found, key=lambda event: (_moment(last_seen(event)), str(event.get("metadata", {}).get("name"))))


def row_of(event: Mapping[str, Any]) -> tuple[str, ...]:
    involved = event.get("involvedObject") or {}
    where = f"{involved.get('namespace')}/" if involved.get("namespace") else ""
    count = int(event.get("count") or 1)
    message = str(event.get("message", "")).replace("\n", " ")
    return (
        _ago(last_seen(event)) + (f" (x{count})" if count > 1 else ""),
        str(event.get("type", "")),
        str(event.get("reason", "")),
        f"{involved.get('kind', '')}/{where}{involved.get('name', '')}",
        message,
    )


def _print_rows(rows: Sequence[tuple[str, ...]], *, header: bool = True) -> None:
    if header and not rows:
        click.echo("No events found.")
        return
    widths = [12, 8, 20, 30]
    for row in ([COLUMNS] if header else []) + list(rows):
        widths = [max(width, len(cell)) for width, cell in zip(widths, row[:-1], strict=True)]
    for row in ([COLUMNS] if header else []) + list(rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1])


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ago(text: str) -> str:
    if not text:
        return "unknown"
    seconds = max((datetime.now(UTC) - _moment(text)).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"

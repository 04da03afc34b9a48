"""Verbs on Syncs, sources and image automation: get, reconcile, suspend, resume."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from moor import operations
from moor.cli.options import Target, output_option, print_document, run_async, target_options
from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.health import HealthState
from moor.objects import KubeObject, ObjectRef
from moor.resources import (
    API_VERSION,
    GITREPOSITORY,
    GROUP,
    HELMREPOSITORY,
    IMAGEPOLICY,
    IMAGEREPOSITORY,
    IMAGEUPDATE,
    OCIREPOSITORY,
    SYNC,
    VERSION,
    conditions,
    get_condition,
)
from moor.sharding.shard import OWNER_ANNOTATION

STATE_STYLE = {HealthState.HEALTHY: "green", HealthState.PROGRESSING: "yellow", HealthState.FAILED: "red"}
SOURCE_KINDS = (GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind)
IMAGE_KINDS = (IMAGEREPOSITORY.kind, IMAGEPOLICY.kind, IMAGEUPDATE.kind)
LISTED = {
    "sources": SOURCE_KINDS,
    "syncs": (SYNC.kind,),
    "images": IMAGE_KINDS,
    "all": (*SOURCE_KINDS, SYNC.kind),
}
"""What `moor get WHAT` lists."""
SUMMARY_COLUMN = {
    IMAGEREPOSITORY.kind: "TAGS",
    IMAGEPOLICY.kind: "LATEST",
    IMAGEUPDATE.kind: "LAST COMMIT",
}
"""The third column of `moor get`, for the kinds whose summary is not a revision."""


class NotFound(MoorError):
    pass


def ref_of(kind: str, namespace: str, name: str) -> ObjectRef:
    return ObjectRef(GROUP, VERSION, kind, namespace, name)


async def fetch(api: KubeApi, kind: str, namespace: str, name: str) -> KubeObject:
    obj = await api.get(ref_of(kind, namespace, name))
    if obj is None:
        raise NotFound(f"{kind} {namespace}/{name} does not exist")
    return obj


def ready_of(obj: KubeObject) -> tuple[str, str]:
    """(Ready status, its message) for a table row."""
    ready = get_condition((obj.get("status") or {}).get("conditions"), conditions.READY)
    if ready is None:
        return "Unknown", "not reconciled yet"
    return ready.status, ready.message


def _row(obj: KubeObject) -> tuple[str, ...]:
    ready, message = ready_of(obj)
    style = {"True": "green", "False": "red"}.get(ready, "yellow")
    suspended = " (suspended)" if (obj.get("spec") or {}).get("suspend") else ""
    metadata = obj["metadata"]
    return (
        metadata["namespace"],
        metadata["name"],
        summary(obj),
        f"[{style}]{ready}[/]{suspended}",
        message,
        age(obj),
    )


def owner_of(obj: KubeObject) -> str:
    """The replica that reconciles the object when several share the work (`moor run --replicas`)."""
    return str((obj["metadata"].get("annotations") or {}).get(OWNER_ANNOTATION) or "")


def summary(obj: KubeObject) -> str:
    """What a row says an object is at: a revision; the tag count and last scan of an ImageRepository; the
    latest and previous tag of an ImagePolicy; the last commit and branch of an ImageUpdate."""
    status = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == IMAGEREPOSITORY.kind:
        if "tagCount" not in status:
            return ""
        count = f"{status['tagCount']} tag{'' if status['tagCount'] == 1 else 's'}"
        scanned = status.get("lastScanTime")
        return f"{count} (scanned {_since(scanned)} ago)" if scanned else count
    if kind == IMAGEPOLICY.kind:
        latest = str(status.get("latestTag") or "")
        previous = status.get("previousTag")
        return f"{latest} (was {previous})" if latest and previous else latest
    if kind == IMAGEUPDATE.kind:
        commit = str(status.get("lastCommit") or "")[:12]
        branch = status.get("lastPushBranch")
        return f"{commit} on {branch}" if commit and branch else commit
    return short_revision((status.get("artifact") or {}).get("revision") or status.get("lastAppliedRevision") or "")


def short_revision(revision: str) -> str:
    """`main@sha1:d63c5d8f66b0…` -> `main@d63c5d8f66b0`, to fit a terminal."""
    name, _, digest = revision.rpartition("@")
    commit = digest.rpartition(":")[2][:12]
    return f"{name}@{commit}" if name else commit


def age(obj: KubeObject) -> str:
    created = obj["metadata"].get("creationTimestamp")
    return _since(created) if created else ""


def _since(timestamp: str) -> str:
    """How long ago an RFC 3339 time was, in the largest unit: `3d`, `5m`, `12s`."""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


# -- get ---------------------------------------------------------------------------------------------


@click.command()
@click.argument("what", type=click.Choice(["sources", "syncs", "images", "all"]), default="all")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@output_option
@target_options
def get(target: Target, what: str, all_namespaces: bool, output: str) -> None:
    """Show sources (GitRepositories, OCIRepositories, HelmRepositories) and Syncs with their revision and
    readiness; `images`: ImageRepositories (tag count, last scan), ImagePolicies (latest and previous tag) and
    ImageUpdates (last commit)."""
    raise SystemExit(run_async(_get(target, what, all_namespaces, output)))


async def _get(target: Target, what: str, all_namespaces: bool, output: str) -> int:
    namespace = None if all_namespaces else target.resolve_namespace()
    kinds = LISTED[what]
    listed: dict[str, list[KubeObject]] = {}
    async with target.connect() as api:
        for kind in kinds:
            resource = await api.discovery.resolve(API_VERSION, kind)
            if resource is None:
                raise NotFound(f"the cluster does not serve {kind}; run `moor install` first")
            listed[kind] = (await api.list(resource, namespace=namespace)).items
    if output != "table":
        print_document(listed, output)
        return 0
    console = Console()
    for kind, items in listed.items():
        sharded = any(owner_of(obj) for obj in items)
        rows = [(*_row(obj), owner_of(obj)) if sharded else _row(obj) for obj in items]
        table = Table(title=f"{kind} objects", title_justify="left", box=None, pad_edge=False)
        columns: tuple[str, ...] = (
            "NAMESPACE",
            "NAME",
            SUMMARY_COLUMN.get(kind, "REVISION"),
            "READY",
            "MESSAGE",
            "AGE",
        )
        columns += ("OWNER",) if sharded else ()
        widths = [
            max([len(column), *(len(Text.from_markup(row[i]).plain) for row in rows)])
            for i, column in enumerate(columns)
        ]
        message_width = max(20, console.width - sum(widths) + widths[4] - 2 * len(columns))
        for index, column in enumerate(columns):
            if column == "MESSAGE":
                table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=message_width)
            else:
                table.add_column(column, no_wrap=True, min_width=widths[index])
        for row in rows:
            table.add_row(*row)
        console.print(table if items else f"No {kind} objects found.")
    return 0


# -- reconcile ---------------------------------------------------------------------------------------


@click.group()
def reconcile() -> None:
    """Reconcile now and wait for the result (exit 0 when Ready, 1 when not)."""


@reconcile.command("sync")
@click.argument("name")
@click.option("--with-source", is_flag=True, help="Fetch the source's newest revision first.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait.")
@target_options
def reconcile_sync(target: Target, name: str, with_source: bool, timeout: float) -> None:
    """Reconcile the Sync NAME now and wait for it."""
    raise SystemExit(run_async(_reconcile(target, SYNC.kind, name, with_source, timeout)))


@reconcile.command("source")
@click.argument("name")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait.")
@target_options
def reconcile_source(target: Target, name: str, timeout: float) -> None:
    """Fetch the GitRepository NAME's newest revision now and wait for it."""
    raise SystemExit(run_async(_reconcile(target, GITREPOSITORY.kind, name, False, timeout)))


@reconcile.command("image-repository")
@click.argument("name")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait.")
@target_options
def reconcile_image_repository(target: Target, name: str, timeout: float) -> None:
    """Scan the ImageRepository NAME's tags now and wait for the scan."""
    raise SystemExit(run_async(_reconcile(target, IMAGEREPOSITORY.kind, name, False, timeout)))


async def _reconcile(target: Target, kind: str, name: str, with_source: bool, timeout: float) -> int:
    namespace = target.resolve_namespace()
    err = Console(stderr=True)
    async with target.connect() as api:
        obj = await fetch(api, kind, namespace, name)
        if (obj.get("spec") or {}).get("suspend"):
            raise MoorError(f"{kind} {namespace}/{name} is suspended; `moor resume` it first")
        if with_source:
            source = (obj.get("spec") or {}).get("sourceRef") or {}
            source_namespace = source.get("namespace") or namespace
            source_kind = source.get("kind") or GITREPOSITORY.kind
            err.print(f"► fetching {source_kind} {source_namespace}/{source['name']}")
            source_ready = await request_and_wait(api, source_kind, source_namespace, source["name"], timeout)
            if not source_ready:
                return 1
        err.print(f"► reconciling {kind} {namespace}/{name}")
        ready = await request_and_wait(api, kind, namespace, name, timeout)
    return 0 if ready else 1


async def request_and_wait(api: KubeApi, kind: str, namespace: str, name: str, timeout: float) -> bool:
    """Sets the reconcile annotation, waits until the controller has handled it, prints the outcome."""
    token = await operations.request_reconcile(api, ref_of(kind, namespace, name))
    deadline = time.monotonic() + timeout
    err = Console(stderr=True)
    with err.status(f"waiting for {kind} {namespace}/{name}") as spinner:
        while time.monotonic() < deadline:
            obj = await fetch(api, kind, namespace, name)
            status = obj.get("status") or {}
            handled = status.get("lastHandledReconcileAt") == token
            ready, message = ready_of(obj)
            spinner.update(f"waiting for {kind} {namespace}/{name}: {message}")
            if handled and ready != "Unknown":
                if ready == "True":
                    at = "with" if kind in IMAGE_KINDS else "at"
                    err.print(f"[green]✔[/] {kind} {namespace}/{name} is Ready {at} {summary(obj)}", soft_wrap=True)
                    return True
                err.print(f"[red]✗[/] {kind} {namespace}/{name} is not Ready: {message}", soft_wrap=True)
                return False
            await asyncio.sleep(0.5)
    err.print(f"[red]✗[/] {kind} {namespace}/{name}: no result within {timeout:.0f}s")
    return False


# -- suspend / resume --------------------------------------------------------------------------------


def _suspend_group(suspend: bool) -> click.Group:
    verb = "suspend" if suspend else "resume"

    @click.group(name=verb, help=f"{verb.capitalize()} reconciling an object.")
    def group() -> None:
        pass

    nouns = (
        ("sync", SYNC.kind),
        ("source", GITREPOSITORY.kind),
        ("image-repository", IMAGEREPOSITORY.kind),
        ("image-policy", IMAGEPOLICY.kind),
        ("image-update", IMAGEUPDATE.kind),
    )
    for noun, kind in nouns:

        @group.command(noun, help=f"{verb.capitalize()} the {kind} NAME.")
        @click.argument("name")
        @target_options
        def command(target: Target, name: str, kind: str = kind) -> None:
            raise SystemExit(run_async(_set_suspend(target, kind, name, suspend)))

    return group


async def _set_suspend(target: Target, kind: str, name: str, suspend: bool) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        await fetch(api, kind, namespace, name)
        await operations.set_suspend(api, ref_of(kind, namespace, name), suspend)
    click.echo(f"{kind} {namespace}/{name} {'suspended' if suspend else 'resumed'}")
    return 0


suspend = _suspend_group(True)
resume = _suspend_group(False)

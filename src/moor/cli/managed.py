"""What a Sync manages as the cluster has it: `moor tree` (objects and their health), `moor drift`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from moor.cli.options import Target, output_option, print_document, run_async, target_options
from moor.cli.syncs import fetch, ready_of, short_revision
from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.health import assess_health
from moor.objects import KubeObject, ObjectRef
from moor.resources import SYNC

# -- tree --------------------------------------------------------------------------------------------


@click.group()
def tree() -> None:
    """Show the objects an object manages, with their health."""


@tree.command("sync")
@click.argument("name")
@output_option
@target_options
def tree_sync(target: Target, name: str, output: str) -> None:
    """The objects the Sync NAME manages, with their health."""
    raise SystemExit(run_async(_tree(target, name, output)))


async def _tree(target: Target, name: str, output: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        inventory = [ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or []]
        live = await asyncio.gather(*(_get_quietly(api, ref) for ref in inventory))
    rows: list[dict[str, Any]] = []
    for ref, obj in zip(inventory, live, strict=True):
        health = assess_health(obj) if obj is not None else None
        rows.append(
            {
                **ref.to_dict(),
                "health": health.state.value if health else "Missing",
                "message": health.message if health else f"{ref} does not exist",
            }
        )
    contested = list((sync.get("status") or {}).get("conflicts") or [])
    for entry in contested:
        owner = entry.get("owner", "")
        rows.append({**entry, "health": "Conflict", "message": f"declared here, but it belongs to Sync {owner}"})
    if output != "table":
        print_document(rows, output)
        return 0
    ready, message = ready_of(sync)
    revision = (sync.get("status") or {}).get("lastAppliedRevision", "")
    root = Tree(f"[bold]Sync {namespace}/{name}[/] Ready={ready} {short_revision(revision)}")
    for row in rows:
        style = {"Healthy": "green", "Progressing": "yellow"}.get(row["health"], "red")
        detail = "" if row["health"] == "Healthy" else f" — {row['message']}"
        root.add(f"{ObjectRef.from_dict(row)} [{style}]{row['health']}[/]{detail}")
    Console().print(root)
    if ready != "True":
        click.echo(message, file=sys.stderr)
    return 0


async def _get_quietly(api: KubeApi, ref: ObjectRef) -> KubeObject | None:
    try:
        return await api.get(ref)
    except MoorError:
        return None


# -- drift -------------------------------------------------------------------------------------------


@click.group()
def drift() -> None:
    """Show objects that differ from Git, which fields, who changed them and when (exit 1 when any)."""


@drift.command("sync")
@click.argument("name")
@output_option
@target_options
def drift_sync(target: Target, name: str, output: str) -> None:
    """The drift of the Sync NAME as its controller last saw it."""
    raise SystemExit(run_async(_drift(target, name, output)))


async def _drift(target: Target, name: str, output: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
    entries: list[dict[str, Any]] = list((sync.get("status") or {}).get("drift") or [])
    if output != "table":
        print_document(entries, output)
        return 1 if entries else 0
    if not entries:
        click.echo(f"Sync {namespace}/{name}: no drift")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("OBJECT", "FIELDS", "CHANGED BY", "AT"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        ref = ObjectRef(entry.get("group", ""), "", entry["kind"], entry.get("namespace", ""), entry["name"])
        paths = "(deleted)" if entry.get("paths") == ["/"] else "\n".join(entry.get("paths") or [])
        table.add_row(str(ref), paths, entry.get("manager", "unknown"), entry.get("at", ""))
    Console().print(table)
    return 1

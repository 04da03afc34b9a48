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
from moor.health.cel import assess_health_by
from moor.objects import KubeObject, ObjectRef
from moor.plan import PhaseError, wave_of
from moor.resources import SYNC
from moor.resources.sync import health_checks_of

# -- tree --------------------------------------------------------------------------------------------


@click.group()
def tree() -> None:
    """Show the objects an object manages, with their health."""


@tree.command("sync")
@click.argument("name")
@output_option
@target_options
def tree_sync(target: Target, name: str, output: str) -> None:
    """The objects the Sync NAME manages, with their health, grouped by phase and wave (with the hooks its
    last pass that ran them ran, and their results)."""
    raise SystemExit(run_async(_tree(target, name, output)))


async def _tree(target: Target, name: str, output: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        status = sync.get("status") or {}
        inventory = [ObjectRef.from_dict(entry) for entry in status.get("inventory") or []]
        hooks = [entry for entry in status.get("hooks") or [] if entry.get("kind") and entry.get("name")]
        hook_refs = [ObjectRef.from_dict(entry) for entry in hooks]
        live = await asyncio.gather(*(_get_quietly(api, ref) for ref in [*inventory, *hook_refs]))
    checks = health_checks_of(sync)
    rows: list[dict[str, Any]] = []
    for ref, obj in zip(inventory, live, strict=False):
        health = assess_health_by(obj, checks) if obj is not None else None
        rows.append(
            {
                **ref.to_dict(),
                "phase": "main",
                "wave": _wave_quietly(obj),
                "health": health.state.value if health else "Missing",
                "message": health.message if health else f"{ref} does not exist",
            }
        )
    for entry, ref, obj in zip(hooks, hook_refs, live[len(inventory) :], strict=True):
        gone = f"{ref} ran ({entry.get('result')}) and is gone, as its delete policy asks"
        rows.append(
            {
                **ref.to_dict(),
                "phase": entry.get("phase", ""),
                "wave": entry.get("wave", 0),
                "hook": entry.get("hook", ""),
                "result": entry.get("result", ""),
                "health": assess_health_by(obj, checks).state.value if obj is not None else "Deleted",
                "message": assess_health_by(obj, checks).message if obj is not None else gone,
            }
        )
    contested = list(status.get("conflicts") or [])
    for entry in contested:
        owner = entry.get("owner", "")
        rows.append({**entry, "health": "Conflict", "message": f"declared here, but it belongs to Sync {owner}"})
    if output != "table":
        print_document(rows, output)
        return 0
    ready, message = ready_of(sync)
    revision = status.get("lastAppliedRevision", "")
    root = Tree(f"[bold]Sync {namespace}/{name}[/] Ready={ready} {short_revision(revision)}")
    branches: dict[tuple[int, int], Tree] = {}
    for row in sorted(rows, key=_place):
        order, wave = _place(row)
        if (order, wave) not in branches:
            branches[(order, wave)] = root.add(f"[bold]{_heading(row)}[/]")
        style = {"Healthy": "green", "Progressing": "yellow", "Deleted": "dim"}.get(row["health"], "red")
        detail = "" if row["health"] == "Healthy" else f" — {row['message']}"
        result = f" ({row['hook']}: {row['result']})" if row.get("hook") else ""
        branches[(order, wave)].add(f"{ObjectRef.from_dict(row)}{result} [{style}]{row['health']}[/]{detail}")
    Console().print(root)
    if ready != "True":
        click.echo(message, file=sys.stderr)
    return 0


_PHASE_ORDER = {"pre": 0, "main": 1, "post": 2, "fail": 3}


def _place(row: dict[str, Any]) -> tuple[int, int]:
    """Where a row goes in the tree: its phase in run order, then its wave (objects in conflict go last)."""
    return _PHASE_ORDER.get(str(row.get("phase", "")), 4), int(row.get("wave") or 0)


def _heading(row: dict[str, Any]) -> str:
    phase = row.get("phase")
    if not phase:
        return "in conflict"
    what = "objects" if phase == "main" else "hooks"
    return f"{phase} {what}, wave {row.get('wave') or 0}"


def _wave_quietly(obj: KubeObject | None) -> int:
    """The wave a live object's annotations give it (0 when it has none or they do not read)."""
    try:
        return wave_of(obj or {})
    except PhaseError:
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

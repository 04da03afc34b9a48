"""`moor diff sync NAME [--path DIR]`: what the controller would change, planned as the controller plans.

The live objects are read from the API server, compared with what Git declares by the controller's own
planner (`moor.plan.plan_changes`, under the API's schemas, drift ignore rules applied), and every write
is checked with a server-side dry run: the differences and the prune decisions printed are the ones a
reconcile would act on. Exit 0: no differences; 1: differences; 2: error.
"""

from __future__ import annotations

import asyncio
import difflib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.text import Text

from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import fetch
from moor.cluster.api import KubeApi, UnknownKind
from moor.cluster.client import ApiError
from moor.controller.rendering import decryption_keys, helm_values_from, phased_objects, sync_key
from moor.controller.source_store import SourceStore
from moor.errors import MoorError
from moor.objects import SYNC_LABEL, Identity, KubeObject, ObjectRef
from moor.plan import Action, DesiredSet, ObjectChange, Phases, decide_drift, plan_changes
from moor.resources import SYNC, SyncSpec
from moor.source import ArtifactCache

SERVER_OWNED_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
MASK = "*** (secret value)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@click.group()
def diff() -> None:
    """Show what applying would change (planned as the controller plans, checked by a server-side dry run)."""


@diff.command("sync")
@click.argument("name")
@click.option(
    "--path",
    "local_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Render this local directory instead of the source's revision.",
)
@target_options
def diff_sync(target: Target, name: str, local_path: Path | None) -> None:
    """Compare what the Sync NAME would apply with the cluster."""
    raise SystemExit(run_async(_diff(target, name, local_path.resolve() if local_path else None)))


async def _diff(target: Target, name: str, local_root: Path | None) -> int:
    namespace = target.resolve_namespace()
    console = Console(soft_wrap=True)  # a path or a value is never cut across lines
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        spec = SyncSpec.from_object(sync)
        objects, phases = await _render(api, sync, spec, local_root)
        desired = DesiredSet.of(objects)
        inventory = tuple(ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or [])
        found = await _live_objects(api, [*desired.refs, *inventory])
        plan = plan_changes(
            desired,
            {identity: obj for identity, obj in found.items() if _labels(obj).get(SYNC_LABEL)},  # the live cache's view
            inventory if spec.prune else (),
            sync_key=sync_key(sync),
            schemas=await api.schemas.for_api_versions({ref.api_version for ref in desired.refs}),
        )
        decision = decide_drift(
            plan,
            inventory=inventory,
            git_moved=True,  # what applying this render would write, drift included
            mode=str(spec.drift.mode),
            ignored_paths=lambda ref: spec.drift.ignored_paths(ref.kind, ref.namespace, ref.name),
        )
        changed = await _show_writes(api, console, decision.writes, found)
    for change in plan.prunes:
        console.print(Text(f"- {change.ref} would be pruned", style="red"))
        changed += 1
    for change in plan.kept:
        console.print(Text(f"  {change.ref} would be kept from pruning: {change.reason}", style="yellow"))
    if phases.hooks:
        names = ", ".join(hook.describe() for hook in phases.hooks)
        console.print(Text(f"{len(phases.hooks)} hook(s) would run when the revision changes: {names}", style="cyan"))
    if changed == 0:
        console.print("no differences")
    return 1 if changed else 0


async def _render(
    api: KubeApi, sync: KubeObject, spec: SyncSpec, local_root: Path | None
) -> tuple[list[KubeObject], Phases]:
    """The Sync's desired objects and hooks: its source's revision, or the local directory `local_root`."""
    with tempfile.TemporaryDirectory(prefix="moor-diff-") as scratch:
        sources = SourceStore(api, ArtifactCache(Path(scratch)))
        keys = await decryption_keys(sync, spec, sources)
        values = await helm_values_from(sync, spec, api)
        if local_root is not None:
            local_spec, checkout = _local(spec, local_root)
            return await phased_objects(sync, local_spec, checkout, api.discovery, keys, values_from=values)
        repository = await fetch(api, spec.source_ref.kind, spec.source_ref.namespace, spec.source_ref.name)
        artifact = await sources.newest(repository, spec)
        return await phased_objects(sync, spec, artifact.path, api.discovery, keys, values_from=values)


async def _live_objects(api: KubeApi, refs: Sequence[ObjectRef]) -> dict[Identity, KubeObject]:
    async def one(ref: ObjectRef) -> KubeObject | None:
        try:
            return await api.get(ref)
        except UnknownKind:  # not served (yet), e.g. its CRD arrives with this render: nothing live
            return None

    unique = list({ref.identity: ref for ref in refs}.values())
    found = await asyncio.gather(*(one(ref) for ref in unique))
    return {ref.identity: obj for ref, obj in zip(unique, found, strict=True) if obj is not None}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _local(spec: SyncSpec, directory: Path) -> tuple[SyncSpec, Path]:
    """The same spec rendering a local directory, rooted at its Git checkout so overlays find their bases."""
    root = next((parent for parent in (directory, *directory.parents) if (parent / ".git").exists()), directory)
    return replace(spec, path=str(directory.relative_to(root)) or "."), root


async def _show_writes(
    api: KubeApi, console: Console, writes: Sequence[ObjectChange], found: Mapping[Identity, KubeObject]
) -> int:
    """Prints each write with the fields that differ and the object the dry run answers; returns how many."""

    async def dry_run(obj: KubeObject) -> KubeObject | str:
        try:
            return await api.apply(obj, dry_run=True)
        except (ApiError, MoorError) as error:
            return str(error)

    pending = [(change, change.desired) for change in writes if change.desired is not None]
    results = await asyncio.gather(*(dry_run(obj) for _, obj in pending))
    for (change, _), result in zip(pending, results, strict=True):
        if isinstance(result, str):
            console.print(Text(f"! {change.ref} would be rejected: {result}", style="bold red"))
            continue
        live = found.get(change.ref.identity)
        console.print(Text(f"{change.ref} would be {'created' if live is None else 'changed'}", style="bold"))
        if change.action is Action.UPDATE:
            for difference in change.differences:
                console.print(Text(f"  {difference}", style="yellow"))
        before, after = _comparable(live), _comparable(result)
        old = _dump(before).splitlines() if before else []
        for line in list(difflib.unified_diff(old, _dump(after).splitlines(), "live", "desired", lineterm=""))[2:]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan"
            console.print(Text(line, style=style if line[:1] in "+-@" else ""))
    return len(pending)


def _comparable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The object without what the server owns, Secret values masked."""
    if obj is None:
        return None
    clean = {key: value for key, value in obj.items() if key != "status"}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_OWNED_METADATA}
    clean["metadata"] = metadata
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1":
        for field in ("data", "stringData"):
            if isinstance(clean.get(field), Mapping):
                clean[field] = {key: _masked(value) for key, value in clean[field].items()}
        annotations = metadata.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
            # client-side `kubectl apply` keeps the whole Secret, values included, in this annotation
            metadata["annotations"] = {**annotations, LAST_APPLIED: _masked(annotations[LAST_APPLIED])}
    return clean


def _masked(value: Any) -> str:
    """A Secret value as the diff shows it: changed or not (a hash that differs per run), never its text."""
    return f"{MASK} #{hash(str(value)) & 0xFFFF:04x}"


def _dump(obj: Mapping[str, Any] | None) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False) if obj else ""

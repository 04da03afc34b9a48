"""`moor diff sync NAME [--path DIR]`: what applying would change, from a server-side dry run.

Exit 0: no differences; 1: differences; 2: error.
"""

from __future__ import annotations

import asyncio
import difflib
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.text import Text

from moor.cli.options import Target, run_async, target_options
from moor.cli.syncs import fetch
from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.controller.desired import decryption_keys, desired_objects, sync_key
from moor.controller.sources import SourceStore
from moor.errors import MoorError
from moor.objects import PRUNE_ANNOTATION, PRUNE_DISABLED, SYNC_LABEL, KubeObject, ObjectRef
from moor.resources import GITREPOSITORY, SYNC, SyncSpec
from moor.source import ArtifactCache

SERVER_OWNED_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
MASK = "*** (secret value)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@click.group()
def diff() -> None:
    """Show what applying would change (a server-side dry run)."""


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
    console = Console()
    async with target.connect() as api:
        sync = await fetch(api, SYNC.kind, namespace, name)
        spec = SyncSpec.from_object(sync)
        with tempfile.TemporaryDirectory(prefix="moor-diff-") as scratch:
            sources = SourceStore(api, ArtifactCache(Path(scratch)))
            keys = await decryption_keys(sync, spec, sources)
            if local_root is not None:
                local_spec, checkout = _local(spec, local_root)
                desired = await desired_objects(sync, local_spec, checkout, api.discovery, keys)
            else:
                repository = await fetch(api, GITREPOSITORY.kind, spec.source_ref.namespace, spec.source_ref.name)
                artifact = await sources.artifact(repository)
                desired = await desired_objects(sync, spec, artifact.path, api.discovery, keys)
            changed = await _show_changes(api, console, desired)
        inventory = [ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or []]
        wanted = {ObjectRef.of(obj).identity for obj in desired}
        if spec.prune:
            for ref in inventory:
                if ref.identity not in wanted and await _prunable(api, ref, sync_key(sync)):
                    console.print(Text(f"- {ref} would be pruned", style="red"))
                    changed += 1
    if changed == 0:
        console.print("no differences")
    return 1 if changed else 0


def _local(spec: SyncSpec, directory: Path) -> tuple[SyncSpec, Path]:
    """The same spec rendering a local directory, rooted at its Git checkout so overlays find their bases."""
    root = next((parent for parent in (directory, *directory.parents) if (parent / ".git").exists()), directory)
    return replace(spec, path=str(directory.relative_to(root)) or "."), root


async def _show_changes(api: KubeApi, console: Console, desired: list[KubeObject]) -> int:
    async def one(obj: KubeObject) -> tuple[ObjectRef, KubeObject | None, KubeObject | str]:
        ref = ObjectRef.of(obj)
        try:
            live = await api.get(ref)
        except MoorError:
            live = None
        try:
            return ref, live, await api.apply(obj, dry_run=True)
        except (ApiError, MoorError) as error:
            return ref, live, str(error)

    changed = 0
    for ref, live, result in await asyncio.gather(*(one(obj) for obj in desired)):
        if isinstance(result, str):
            console.print(Text(f"! {ref} would be rejected: {result}", style="bold red"))
            changed += 1
            continue
        before, after = _comparable(live), _comparable(result)
        if before == after:
            continue
        changed += 1
        title = f"{ref} would be {'created' if live is None else 'changed'}"
        console.print(Text(title, style="bold"))
        old = _dump(before).splitlines() if before else []
        for line in list(difflib.unified_diff(old, _dump(after).splitlines(), "live", "desired", lineterm=""))[2:]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan"
            console.print(Text(line, style=style if line[:1] in "+-@" else ""))
    return changed


async def _prunable(api: KubeApi, ref: ObjectRef, key: str) -> bool:
    try:
        live = await api.get(ref)
    except MoorError:
        return False
    if live is None:
        return False
    metadata = live.get("metadata") or {}
    labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
    return bool(labels.get(SYNC_LABEL) == key and annotations.get(PRUNE_ANNOTATION) != PRUNE_DISABLED)


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

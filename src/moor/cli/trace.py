"""`moor trace KIND NAME`: where an object in the cluster comes from, and what happened to it since.

The managing Sync is the one whose `status.inventory` lists the object (its `moor.dev/sync` label
must agree); its GitRepository gives the URL and ref. The file and line are found in the revision the
Sync last applied, fetched as the controller fetches it: render/ keeps no origin for each object, so
the YAML files of the checkout are read (the Sync's path first, then the rest, as kustomize bases may lie
outside it) and the first document declaring the object's kind and name is the answer; objects that
kustomize renames or Helm templates are reported without a file. The last write comes from the
SyncRecords, drift from `status.drift`, and the other writers from the object's managed fields.

Exit 0: traced; 1: no Sync manages the object; 2: a usage error.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from moor.cli.options import Target, output_option, print_document, run_async, target_options
from moor.cli.syncs import NotFound, ready_of, ref_of
from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError
from moor.controller.rendering import sync_key
from moor.controller.source_store import SourceStore
from moor.errors import MoorError
from moor.objects import FIELD_MANAGER, SYNC_LABEL, KubeObject, ObjectRef, split_api_version
from moor.record.history import HistoryStore
from moor.render import RenderError, RenderLimits
from moor.render.documents import ParseBudget, parse_yaml, read_source
from moor.render.tree import MANIFEST_SUFFIXES, locate_target, relative, walk_files
from moor.resources import API_VERSION, GITREPOSITORY, SYNC, SyncSpec
from moor.source import ArtifactCache

WRITTEN = ("created", "updated")
SHORT_NAMES = {
    "po": "pod",
    "svc": "service",
    "cm": "configmap",
    "ns": "namespace",
    "sa": "serviceaccount",
    "pvc": "persistentvolumeclaim",
    "pv": "persistentvolume",
    "ing": "ingress",
    "netpol": "networkpolicy",
    "deploy": "deployment",
    "rs": "replicaset",
    "sts": "statefulset",
    "ds": "daemonset",
    "cj": "cronjob",
    "hpa": "horizontalpodautoscaler",
    "pdb": "poddisruptionbudget",
    "sc": "storageclass",
    "crd": "customresourcedefinition",
}
"""kubectl's short names of the built-in kinds (discovery's own short names are not kept)."""


class AmbiguousObject(MoorError):
    pass


@dataclass(frozen=True)
class Declaration:
    """Where in Git a document declares an object."""

    file: str
    line: int | None
    document: int


@click.command()
@click.argument("kind")
@click.argument("name")
@click.option("--api-version", default=None, help="The object's apiVersion (apps/v1), when KIND is ambiguous.")
@output_option
@target_options
def trace(target: Target, kind: str, name: str, api_version: str | None, output: str) -> None:
    """Which Sync manages the object KIND NAME, from which source, revision, file and line, and its drift.

    KIND is a kind in any case, its plural, kubectl's short name, or kind.group: deployment, Deployments,
    deploy, deployment.apps.
    """
    raise SystemExit(run_async(_trace(target, kind, name, api_version, output)))


async def _trace(target: Target, kind: str, name: str, api_version: str | None, output: str) -> int:
    namespace = target.resolve_namespace()
    async with target.connect() as api:
        syncs = await _all_syncs(api, namespace)
        managing = [
            (sync, ref)
            for sync in syncs
            for ref in _inventory(sync)
            if _matches(ref, kind, name, namespace, api_version)
        ]
        refs = {ref.identity for _, ref in managing}
        if len(refs) > 1:
            found = ", ".join(sorted(str(ref) for _, ref in managing))
            raise AmbiguousObject(f"{kind} {name} names several managed objects ({found}): give --api-version")
        if not managing:
            click.echo(f"{kind} {name} in namespace {namespace} is not managed by any Sync", err=True)
            return 1
        ref = managing[0][1]
        live = await api.get(ref)
        label = ((live or {}).get("metadata") or {}).get("labels", {}).get(SYNC_LABEL)
        # Two Syncs may list it while one hands it over to the other: the label names the one that applies it.
        sync = next((sync for sync, _ in managing if sync_key(sync) == label), managing[0][0])
        report = await _report(api, sync, ref, live)
    if output != "table":
        print_document(report, output)
    else:
        _print(report)
    return 0


async def _all_syncs(api: KubeApi, namespace: str) -> list[KubeObject]:
    """Every Sync the user may list: in all namespaces, else in `namespace` alone."""
    resource = await api.discovery.resolve(API_VERSION, SYNC.kind)
    if resource is None:
        raise NotFound(f"the cluster does not serve {SYNC.kind}; run `moor install` first")
    try:
        return (await api.list(resource)).items
    except ApiError as error:
        if error.status != 403:
            raise
        return (await api.list(resource, namespace=namespace)).items


def _inventory(sync: Mapping[str, Any]) -> list[ObjectRef]:
    return [ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or []]


def _matches(ref: ObjectRef, kind: str, name: str, namespace: str, api_version: str | None) -> bool:
    """Whether KIND NAME (in `namespace` unless cluster-scoped) on the command line names `ref`."""
    if ref.name != name or (ref.namespace and ref.namespace != namespace):
        return False
    wanted, _, group = kind.lower().partition(".")
    wanted = SHORT_NAMES.get(wanted, wanted)
    if group and group != ref.group.lower():
        return False
    if api_version and split_api_version(api_version)[0] != ref.group:
        return False
    own = ref.kind.lower()
    return wanted in (own, f"{own}s", f"{own}es", f"{own[:-1]}ies" if own.endswith("y") else own)


async def _report(api: KubeApi, sync: KubeObject, ref: ObjectRef, live: KubeObject | None) -> dict[str, Any]:
    spec = SyncSpec.from_object(sync)
    status = sync.get("status") or {}
    sync_ref = ObjectRef.of(sync)
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    ready, message = ready_of(sync)
    revision = str(status.get("lastAppliedRevision") or "")
    repository = await api.get(ref_of(GITREPOSITORY.kind, spec.source_ref.namespace, spec.source_ref.name))
    declaration, why_unknown = await _declaration(api, repository, revision, spec.path, ref)
    history = await HistoryStore(api).list(sync_ref.namespace, sync_ref.name)
    return {
        "object": {**ref.to_dict(), "exists": live is not None, "labelled": labels.get(SYNC_LABEL) == sync_key(sync)},
        "sync": {"namespace": sync_ref.namespace, "name": sync_ref.name, "ready": ready, "message": message},
        "source": _source(repository, spec.source_ref.namespace, spec.source_ref.name),
        "revision": revision,
        "path": spec.path,
        "declaredIn": asdict(declaration) if declaration else None,
        "declaredInUnknownBecause": why_unknown,
        "lastApplied": _last_write(history, ref),
        "drift": [entry for entry in status.get("drift") or [] if _same_object(entry, ref)],
        "fieldManagers": _managers(live),
    }


def _source(repository: KubeObject | None, namespace: str, name: str) -> dict[str, Any]:
    if repository is None:
        return {"kind": GITREPOSITORY.kind, "namespace": namespace, "name": name, "exists": False}
    spec = repository.get("spec") or {}
    ready, message = ready_of(repository)
    return {
        "kind": GITREPOSITORY.kind,
        "namespace": namespace,
        "name": name,
        "url": spec.get("url", ""),
        "ref": spec.get("ref") or {},
        "revision": ((repository.get("status") or {}).get("artifact") or {}).get("revision", ""),
        "ready": ready,
        "message": message,
    }


async def _declaration(
    api: KubeApi, repository: KubeObject | None, revision: str, path: str, ref: ObjectRef
) -> tuple[Declaration | None, str]:
    """The document declaring `ref` in the checkout of `revision`, or None and why not."""
    if repository is None or not revision:
        return None, "the Sync has applied no revision yet" if repository else "its GitRepository does not exist"
    with tempfile.TemporaryDirectory(prefix="moor-trace-") as scratch:
        try:
            artifact = await SourceStore(api, ArtifactCache(Path(scratch))).artifact(repository, revision)
        except MoorError as error:
            return None, f"the revision cannot be fetched: {error}"
        found = await asyncio.to_thread(find_declaration, artifact.path, path, ref)
    if found is None:
        return None, f"no YAML file in Git declares it by name: it is generated (by kustomize or Helm) from {path}"
    return found, ""


def find_declaration(root: Path, path: str, ref: ObjectRef) -> Declaration | None:
    """The first YAML document under `path` of the checkout at `root` (then anywhere in it) whose kind,
    group and name are `ref`'s; files that are not valid YAML (Helm templates) are skipped."""
    limits = RenderLimits()
    for file in _candidate_files(root, path):
        source = relative(file, root.resolve())
        try:
            documents = parse_yaml(read_source(file, source, limits), source, ParseBudget(limits))
        except RenderError:
            continue
        for document in documents:
            if _declares(document.body, ref):
                return Declaration(source, document.line, document.index)
    return None


def _candidate_files(root: Path, path: str) -> Iterator[Path]:
    """YAML files under the Sync's path first, then every other one of the checkout."""
    target = locate_target(root, path)
    first = [target.path] if target.path.is_file() else walk_files(target.path, target.root, include_hidden=False)
    rest = walk_files(target.root, target.root, include_hidden=False)
    seen: set[Path] = set()
    for file in [*first, *rest]:
        if file not in seen and file.suffix.lower() in MANIFEST_SUFFIXES:
            seen.add(file)
            yield file


def _declares(body: Any, ref: ObjectRef) -> bool:
    if not isinstance(body, dict) or body.get("kind") != ref.kind:
        return False
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("name") != ref.name:
        return False
    group = split_api_version(str(body.get("apiVersion", "")))[0]
    declared_namespace = metadata.get("namespace")
    return group == ref.group and (not declared_namespace or not ref.namespace or declared_namespace == ref.namespace)


def _same_object(entry: Mapping[str, Any], ref: ObjectRef) -> bool:
    return (entry.get("group", ""), entry.get("kind"), entry.get("namespace", ""), entry.get("name")) == (
        ref.group,
        ref.kind,
        ref.namespace,
        ref.name,
    )


def _last_write(records: Sequence[KubeObject], ref: ObjectRef) -> dict[str, Any] | None:
    """The newest SyncRecord that created or updated the object."""
    for record in reversed(records):
        spec = record.get("spec") or {}
        written = [entry for field in WRITTEN for entry in spec.get(field) or []]
        if str(ref) in written:
            return {
                "at": spec.get("finishedAt") or spec.get("startedAt", ""),
                "revision": spec.get("revision", ""),
                "record": (record.get("metadata") or {}).get("name", ""),
                "result": spec.get("result", ""),
                "author": spec.get("author", ""),
            }
    return None


def _managers(live: KubeObject | None) -> list[dict[str, str]]:
    """Who has written the object's fields, newest first: Moor (`moor`) and everyone else."""
    entries = ((live or {}).get("metadata") or {}).get("managedFields") or []
    managers = [
        {
            "manager": str(entry.get("manager", "")),
            "operation": str(entry.get("operation", "")),
            "at": str(entry.get("time", "")),
            "subresource": str(entry.get("subresource", "")),
        }
        for entry in entries
    ]
    return sorted(managers, key=lambda entry: entry["at"], reverse=True)


def _print(report: Mapping[str, Any]) -> None:
    obj, sync, source = report["object"], report["sync"], report["source"]
    rows: list[tuple[str, str]] = [
        ("Object", str(ObjectRef.from_dict(obj)) + ("" if obj["exists"] else " (missing from the cluster)")),
        ("Sync", f"{sync['namespace']}/{sync['name']} (Ready={sync['ready']}: {sync['message']})"),
        ("Source", f"{source['kind']} {source['namespace']}/{source['name']}"),
    ]
    if source.get("url"):
        ref = ", ".join(f"{key} {value}" for key, value in source["ref"].items())
        rows += [("URL", source["url"]), ("Ref", ref)]
    rows += [("Revision", report["revision"] or "none applied yet"), ("Path", report["path"])]
    declared = report["declaredIn"]
    if declared:
        line = f" line {declared['line']}" if declared["line"] is not None else ""
        rows.append(("Declared in", f"{declared['file']}{line} (document {declared['document']})"))
    else:
        rows.append(("Declared in", f"unknown: {report['declaredInUnknownBecause']}"))
    last = report["lastApplied"]
    rows.append(
        (
            "Last applied",
            f"{last['at']} at {last['revision']} ({last['record']}, {last['result']})" if last else "never recorded",
        )
    )
    drift = report["drift"]
    if drift:
        for entry in drift:
            paths = ", ".join(entry.get("paths") or [])
            rows.append(("Drift", f"{paths} changed by {entry.get('manager', 'unknown')} at {entry.get('at', '')}"))
    else:
        rows.append(("Drift", "none"))
    others = [entry for entry in report["fieldManagers"] if entry["manager"] != FIELD_MANAGER]
    for entry in others:
        where = f" ({entry['subresource']})" if entry["subresource"] else ""
        rows.append(("Changed by", f"{entry['manager']}{where}, {entry['operation']} at {entry['at']}"))
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(f"{label}:", value)
    Console().print(table)

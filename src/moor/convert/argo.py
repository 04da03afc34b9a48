"""Argo CD's Applications as a Moor source and Sync; AppProjects as notes on what replaces them.

An Application names its repository inline; Moor names it once as a GitRepository (or HelmRepository
for a chart) that Syncs share: Applications of the same repository and revision share one source,
named after the first of them. The Sync keeps the Application's name; the source and Sync go into
the Application's namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from moor.convert.notes import Note, SpecReader, describe, without_empty
from moor.resources import API_VERSION

_IN_CLUSTER = ("https://kubernetes.default.svc", "in-cluster", "")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SEMVER_RANGE = re.compile(r"[\^~*><=]|\.x\b|\s-\s")
_VERSION_TAG = re.compile(r"v?\d+\.\d+\.\d+([-+].*)?")
_APPLICATION_REASONS = {
    "project": "Moor has no projects: give the Sync a serviceAccountName whose RBAC allows what the project did",
    "info": "no equivalent",
    "revisionHistoryLimit": "Moor keeps its own history (SyncRecords, retention 500)",
}
_SOURCE_REASONS = {
    "kustomize": "Moor renders a kustomization as it is: put these settings in the kustomization.yaml",
    "plugin": "Moor renders plain YAML, Kustomize and Helm only",
    "directory": "Moor reads every YAML file under the path, recursively",
    "ref": "Moor has no multi-source references",
    "name": "no equivalent",
}
_HELM_REASONS = {
    "parameters": "write them into helm.values",
    "fileParameters": "write them into helm.values",
    "passCredentials": "Moor never sends a repository's credentials to another host",
    "ignoreMissingValueFiles": "Moor fails on a missing values file",
    "skipCrds": "Moor applies the chart's CRDs (helm.pruneCRDs decides whether it deletes them)",
    "version": "Moor renders with Helm 3",
    "namespace": "use targetNamespace",
    "kubeVersion": "Moor renders with the cluster's own version",
    "apiVersions": "Moor renders with the cluster's own API versions",
}


class SourceNames:
    """The GitRepository or HelmRepository each (namespace, url, revision) became, so Applications
    that share a repository share a source."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str, str, str], str] = {}

    def name_for(self, kind: str, namespace: str, url: str, revision: str, wanted: str) -> tuple[str, bool]:
        """The source's name, and whether it is new (to be written out)."""
        key = (kind, namespace, url, revision)
        if key in self.known:
            return self.known[key], False
        self.known[key] = wanted
        return wanted, True


def application(obj: Mapping[str, Any], sources: SourceNames) -> tuple[list[dict[str, Any]], list[Note]]:
    origin = describe(obj)
    metadata = obj.get("metadata") or {}
    name, namespace = str(metadata.get("name") or ""), str(metadata.get("namespace") or "")
    reader = SpecReader(origin, obj.get("spec") or {}, _APPLICATION_REASONS)
    source = reader.child("source", _SOURCE_REASONS)
    readers = [reader]
    if not source.spec and reader.spec.get("sources"):
        extra = reader.take("sources")
        source = SpecReader(origin, extra[0], _SOURCE_REASONS, "spec.sources[0]")
        readers.append(source)
        if len(extra) > 1:
            reader.note("sources", f"Moor reads one source per Sync: only the first of {len(extra)} is carried over")
    if reader.spec.get("project") not in (None, "default"):
        reader.note("project", f"project {reader.spec['project']}: {_APPLICATION_REASONS['project']}")
    url = str(source.take("repoURL") or "")
    revision = str(source.take("targetRevision") or "HEAD")
    chart = source.take("chart")
    helm = source.child("helm", _HELM_REASONS)
    objects: list[dict[str, Any]] = []
    if chart:
        kind = "HelmRepository"
        helm_type = "default" if url.startswith(("http://", "https://")) else "oci"
        source_url = url if helm_type == "default" else f"oci://{url.removeprefix('oci://')}"
        source_name, new = sources.name_for(kind, namespace, source_url, "", f"{name}-charts")
        if new:
            objects.append(_moor(kind, source_name, namespace, without_empty({"url": source_url, "type": helm_type})))
        where: dict[str, Any] = {"chart": {"name": chart, "version": revision if revision != "HEAD" else "*"}}
    else:
        kind = "GitRepository"
        ref = _git_ref(revision)
        if revision == "HEAD":
            source.note("targetRevision", "HEAD (the default branch) is written as branch main: check it")
        source_name, new = sources.name_for(kind, namespace, url, revision, name)
        if new:
            objects.append(_moor(kind, source_name, namespace, {"url": url, "ref": ref}))
        where = {"path": _path(str(source.take("path") or ""))}
    destination = reader.child("destination")
    server = str(destination.take("server") or destination.take("name") or "")
    if server not in _IN_CLUSTER:
        destination.note("server", f"{server}: Moor applies to the cluster it runs in; run a Moor there")
    policy = reader.child("syncPolicy", {"retry": "Moor retries every retryInterval (30s by default)"})
    automated = policy.child("automated", {"enabled": "no equivalent"})
    automatic = "automated" in policy.spec
    options = [str(option) for option in policy.take("syncOptions") or []]
    for option in options:
        if option not in ("ServerSideApply=true", "Validate=true", "CreateNamespace=false"):
            policy.note("syncOptions", f"{option}: Moor applies server side, dry-runs first, and has no such option")
    spec = without_empty(
        {
            "sourceRef": {"kind": kind, "name": source_name},
            **where,
            "helm": without_empty(
                {
                    "valuesFiles": helm.take("valueFiles"),
                    "values": helm.take("valuesObject") or _values(helm.take("values"), helm),
                    "releaseName": helm.take("releaseName"),
                }
            ),
            "targetNamespace": destination.take("namespace"),
            "drift": {
                "mode": "correct" if automated.take("selfHeal") else "alert",
                "ignore": _ignored(reader),
            },
            "approval": {} if automatic else {"mode": "manual"},
            "allowEmpty": automated.take("allowEmpty"),
        }
    )
    spec["prune"] = bool(automated.take("prune", False))
    if not automatic:
        policy.note("automated", "absent: each new revision waits for `moor approve` (approval.mode: manual)")
    objects.append(_moor("Sync", name, namespace, spec))
    return objects, [note for each in readers for note in each.leftovers()]


def app_project(obj: Mapping[str, Any]) -> list[Note]:
    """An AppProject has no Moor object: each of its restrictions becomes a note on what replaces it."""
    origin = describe(obj)
    spec = obj.get("spec") or {}
    whys = {
        "sourceRepos": "Moor does not restrict repositories per project: give tenants their own Sync namespaces",
        "destinations": "use a serviceAccountName on the project's Syncs, with RBAC only in these namespaces",
        "clusterResourceWhitelist": "grant these cluster-scoped kinds to the Syncs' service account (ClusterRole)",
        "clusterResourceBlacklist": "leave these kinds out of the Syncs' service account's ClusterRole",
        "namespaceResourceWhitelist": "grant only these kinds in the Syncs' service account's Roles",
        "namespaceResourceBlacklist": "leave these kinds out of the Syncs' service account's Roles",
        "roles": "Moor's verbs follow Kubernetes RBAC on Syncs (moor approve needs patch on syncs)",
        "syncWindows": "Moor has no sync windows: use approval.mode: manual or suspend",
        "orphanedResources": "Moor reports only what it manages",
        "signatureKeys": "use verify on the GitRepository (signed commits or tags)",
        "sourceNamespaces": "no equivalent",
        "description": "no equivalent",
    }
    return [Note(origin, f"spec.{key}", whys.get(key, "no equivalent")) for key in spec]


def _git_ref(revision: str) -> dict[str, str]:
    if revision == "HEAD":
        return {"branch": "main"}
    if _COMMIT.fullmatch(revision):
        return {"commit": revision}
    if _SEMVER_RANGE.search(revision):
        return {"semver": revision}
    if _VERSION_TAG.fullmatch(revision):
        return {"tag": revision}
    return {"branch": revision}


def _path(path: str) -> str:
    trimmed = path.strip().strip("/")
    return "./" if trimmed in ("", ".") else f"./{trimmed}"


def _values(text: Any, helm: SpecReader) -> dict[str, Any]:
    """The Application's helm.values (a YAML string) as a mapping."""
    if not text:
        return {}
    try:
        values = yaml.safe_load(str(text))
    except yaml.YAMLError:
        helm.note("values", "not valid YAML: not carried over")
        return {}
    return values if isinstance(values, dict) else {}


def _ignored(reader: SpecReader) -> list[dict[str, Any]]:
    entries = reader.take("ignoreDifferences") or []
    ignored = []
    for index, entry in enumerate(entries):
        for key in ("jqPathExpressions", "managedFieldsManagers"):
            if entry.get(key):
                reader.note(f"ignoreDifferences[{index}].{key}", "Moor ignores JSON pointers only (drift.ignore paths)")
        if entry.get("jsonPointers"):
            ignored.append(
                without_empty(
                    {
                        "kind": entry.get("kind"),
                        "name": entry.get("name"),
                        "namespace": entry.get("namespace"),
                        "paths": list(entry["jsonPointers"]),
                    }
                )
            )
    return ignored


def _moor(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": without_empty({"name": name, "namespace": namespace}),
        "spec": spec,
    }

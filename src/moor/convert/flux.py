"""Flux's sources, Kustomizations and HelmReleases as Moor's GitRepository, OCIRepository,
HelmRepository and Sync. Names and namespaces are kept, so references between objects still hold.

Flux and Moor read the same Secret keys for Git (username/password, bearerToken, identity/known_hosts)
and registries, so `secretRef`s are carried as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moor.convert.notes import Note, SpecReader, describe, without_empty
from moor.resources import API_VERSION

_GIT_REASONS = {
    "ignore": "Moor reads every file under the Sync's path; move the files out or use a kustomization",
    "include": "Moor has no includes of other GitRepositories; use one Sync per repository",
    "recurseSubmodules": "Moor does not fetch submodules",
    "proxySecretRef": "Moor uses the controller's HTTPS_PROXY environment for every source",
    "provider": "Moor authenticates with the secretRef only (no cloud workload identity)",
    "sparseCheckout": "Moor fetches the whole tree of one commit",
}
_OCI_REASONS = {
    "provider": "Moor authenticates with the secretRef only (no cloud workload identity)",
    "serviceAccountName": "Moor reads pull credentials from the secretRef only",
    "ignore": "Moor reads every file of the artifact",
    "proxySecretRef": "Moor uses the controller's HTTPS_PROXY environment for every source",
}
_HELM_REPOSITORY_REASONS = {
    "passCredentials": "Moor never sends a repository's credentials to another host",
    "provider": "Moor authenticates with the secretRef only (no cloud workload identity)",
    "accessFrom": "Moor lets any Sync use a HelmRepository its service account may read",
}
_KUSTOMIZATION_REASONS = {
    "healthChecks": "Moor waits for every object it applies (wait: true); list-based checks are not needed",
    "patches": "Moor renders the path as it is: put the patches in a kustomization.yaml under the path",
    "images": "Moor renders the path as it is: put the images in a kustomization.yaml under the path",
    "components": "Moor renders the path as it is: list the components in a kustomization.yaml",
    "postBuild": "Moor does not substitute variables after the build",
    "commonMetadata": "Moor renders the path as it is: use labels/commonAnnotations in a kustomization.yaml",
    "namePrefix": "Moor renders the path as it is: use namePrefix in a kustomization.yaml",
    "nameSuffix": "Moor renders the path as it is: use nameSuffix in a kustomization.yaml",
    "kubeConfig": "Moor applies to the cluster it runs in",
    "deletionPolicy": "Moor prunes what it applied when the Sync is deleted (prune) and keeps nothing else",
}
_HELM_RELEASE_REASONS = {
    "install": "Moor renders the chart and applies its objects; there is no Helm release to install",
    "upgrade": "Moor renders the chart and applies its objects; there is no Helm release to upgrade",
    "test": "Moor does not run Helm tests",
    "rollback": "set rollback.onFailure on the Sync to roll back to the last healthy revision",
    "uninstall": "Moor prunes the chart's objects when the Sync is deleted",
    "storageNamespace": "Moor keeps no Helm release Secrets; history is in SyncRecords",
    "maxHistory": "Moor keeps its own history (SyncRecords)",
    "persistentClient": "no equivalent",
    "postRenderers": "Moor applies the chart's objects as rendered",
    "kubeConfig": "Moor applies to the cluster it runs in",
    "chartRef": "a chart from an OCIRepository or HelmChart: use a HelmRepository of type oci and chart",
}
_DRIFT_MODES = {"enabled": "correct", "warn": "alert", "disabled": "ignore"}


def git_repository(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[Note]]:
    reader = SpecReader(describe(obj), obj.get("spec") or {}, _GIT_REASONS)
    ref_reader = reader.child("ref", {"name": "Moor follows a branch, tag, semver range or commit, not any ref"})
    ref = without_empty({key: ref_reader.take(key) for key in ("branch", "tag", "semver", "commit")})
    verify = reader.child("verify", {"provider": "Moor verifies OpenPGP and SSH signatures alike"})
    mode = str(verify.take("mode") or "")
    spec = without_empty(
        {
            "url": reader.take("url"),
            "ref": ref or {"branch": "master"},
            "interval": reader.take("interval"),
            "timeout": reader.take("timeout"),
            "secretRef": _name_ref(reader.take("secretRef")),
            "verify": without_empty(
                {
                    "mode": {"head": "HEAD", "HEAD": "HEAD", "Tag": "Tag", "TagAndHEAD": "TagAndHEAD"}.get(mode),
                    "secretRef": _name_ref(verify.take("secretRef")),
                }
            ),
            "suspend": reader.take("suspend"),
        }
    )
    if not ref:
        reader.note("ref", "no ref given: Flux defaults to the branch master, written so")
    return _moor(obj, "GitRepository", spec), reader.leftovers()


def oci_repository(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[Note]]:
    reader = SpecReader(describe(obj), obj.get("spec") or {}, _OCI_REASONS)
    ref_reader = reader.child("ref", {"semverFilter": "Moor's semver ranges have no extra filter"})
    layer = reader.child("layerSelector")
    operation = layer.take("operation")
    if operation == "copy":
        layer.note("operation", "Moor always extracts the layer (copy is not supported)")
    verify = reader.child("verify", {"matchOIDCIdentity": "Moor verifies cosign keys only (no keyless identity)"})
    spec = without_empty(
        {
            "url": reader.take("url"),
            "ref": without_empty({key: ref_reader.take(key) for key in ("tag", "semver", "digest")}),
            "layerSelector": without_empty({"mediaType": layer.take("mediaType")}),
            "secretRef": _name_ref(reader.take("secretRef")),
            "certSecretRef": _name_ref(reader.take("certSecretRef")),
            "insecure": reader.take("insecure"),
            "interval": reader.take("interval"),
            "timeout": reader.take("timeout"),
            "suspend": reader.take("suspend"),
            "verify": without_empty(
                {"provider": verify.take("provider"), "secretRef": _name_ref(verify.take("secretRef"))}
            ),
        }
    )
    return _moor(obj, "OCIRepository", spec), reader.leftovers()


def helm_repository(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[Note]]:
    reader = SpecReader(describe(obj), obj.get("spec") or {}, _HELM_REPOSITORY_REASONS)
    spec = without_empty(
        {
            "url": reader.take("url"),
            "type": reader.take("type"),
            "secretRef": _name_ref(reader.take("secretRef")),
            "certSecretRef": _name_ref(reader.take("certSecretRef")),
            "insecure": reader.take("insecure"),
            "interval": reader.take("interval"),
            "timeout": reader.take("timeout"),
            "suspend": reader.take("suspend"),
        }
    )
    return _moor(obj, "HelmRepository", spec), reader.leftovers()


def kustomization(obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Note]]:
    reader = SpecReader(describe(obj), obj.get("spec") or {}, _KUSTOMIZATION_REASONS)
    source = reader.child("sourceRef", {"apiVersion": "Moor finds the source by kind and name"})
    kind = source.take("kind")
    if kind not in ("GitRepository", "OCIRepository"):
        reader.note("sourceRef.kind", f"Moor has no source of kind {kind}: the Kustomization is not converted")
        return None, reader.leftovers()
    health_checks = reader.spec.get("healthChecks")
    wait = reader.take("wait")
    decryption = reader.child("decryption")
    spec = without_empty(
        {
            "sourceRef": without_empty(
                {"kind": kind, "name": source.take("name"), "namespace": source.take("namespace")}
            ),
            "path": reader.take("path") or "./",
            "targetNamespace": reader.take("targetNamespace"),
            "interval": reader.take("interval"),
            "retryInterval": reader.take("retryInterval"),
            "timeout": reader.take("timeout"),
            "dependsOn": _dependencies(reader.take("dependsOn")),
            "serviceAccountName": reader.take("serviceAccountName"),
            "decryption": without_empty(
                {"provider": decryption.take("provider"), "secretRef": _name_ref(decryption.take("secretRef"))}
            ),
            "healthChecks": reader.take("healthCheckExprs"),
            "suspend": reader.take("suspend"),
        }
    )
    spec["prune"] = bool(reader.take("prune", False))
    spec["wait"] = bool(wait) or bool(health_checks) or bool(spec.get("healthChecks"))
    if reader.take("force"):
        spec["force"] = True
    return _moor(obj, "Sync", spec), reader.leftovers()


def helm_release(obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Note]]:
    reader = SpecReader(describe(obj), obj.get("spec") or {}, _HELM_RELEASE_REASONS)
    chart = reader.child("chart", {"metadata": "Moor sets no extra labels on the chart"}).child(
        "spec",
        {
            "interval": "Moor reads a chart when its HelmRepository's index changes",
            "reconcileStrategy": "Moor renders the chart version the index gives",
            "verify": "Moor verifies OCI artifacts with cosign on OCIRepository only",
            "ignoreMissingValuesFiles": "Moor fails on a missing values file",
        },
    )
    source = chart.child("sourceRef", {"apiVersion": "Moor finds the source by kind and name"})
    kind = source.take("kind")
    values_files = chart.take("valuesFiles") or ([chart.take("valuesFile")] if chart.spec.get("valuesFile") else [])
    if kind == "HelmRepository":
        source_spec: dict[str, Any] = {
            "chart": without_empty({"name": chart.take("chart"), "version": chart.take("version")})
        }
    elif kind == "GitRepository":
        source_spec = {"path": chart.take("chart")}
        if chart.spec.get("version"):
            chart.note("version", "a chart in Git is rendered at the GitRepository's revision")
    else:
        reader.note("chart.spec.sourceRef.kind", f"Moor has no source of kind {kind}: the HelmRelease is not converted")
        return None, reader.leftovers()
    drift = reader.child("driftDetection", {"ignore": "write the ignored paths as drift.ignore on the Sync by hand"})
    drift_mode = _DRIFT_MODES.get(str(drift.take("mode") or ""), "")
    helm = without_empty(
        {
            "valuesFiles": values_files,
            "valuesFrom": _values_from(reader),
            "values": reader.take("values"),
            "releaseName": reader.take("releaseName"),
        }
    )
    spec = without_empty(
        {
            "sourceRef": without_empty(
                {"kind": kind, "name": source.take("name"), "namespace": source.take("namespace")}
            ),
            **source_spec,
            "helm": helm,
            "targetNamespace": reader.take("targetNamespace"),
            "interval": reader.take("interval"),
            "timeout": reader.take("timeout"),
            "dependsOn": _dependencies(reader.take("dependsOn")),
            "serviceAccountName": reader.take("serviceAccountName"),
            "suspend": reader.take("suspend"),
            "drift": {"mode": drift_mode} if drift_mode else {},
        }
    )
    spec["prune"] = True
    spec["wait"] = True
    return _moor(obj, "Sync", spec), reader.leftovers()


def _values_from(reader: SpecReader) -> list[dict[str, Any]]:
    entries = reader.take("valuesFrom") or []
    converted = []
    for index, entry in enumerate(entries):
        if entry.get("targetPath"):
            reader.note(f"valuesFrom[{index}].targetPath", "Moor merges a whole values document (no targetPath)")
            continue
        converted.append(
            without_empty(
                {
                    "kind": entry.get("kind"),
                    "name": entry.get("name"),
                    "key": entry.get("valuesKey"),
                    "optional": entry.get("optional"),
                }
            )
        )
    return converted


def _source_ref(kind: str, source: SpecReader) -> dict[str, Any]:
    return without_empty({"kind": kind, "name": source.take("name"), "namespace": source.take("namespace")})


def _dependencies(entries: Any) -> list[dict[str, Any]]:
    return [without_empty({"name": entry.get("name"), "namespace": entry.get("namespace")}) for entry in entries or []]


def _name_ref(value: Any) -> dict[str, Any]:
    return {"name": value["name"]} if isinstance(value, Mapping) and value.get("name") else {}


def _moor(obj: Mapping[str, Any], kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": without_empty({"name": metadata.get("name"), "namespace": metadata.get("namespace")}),
        "spec": spec,
    }

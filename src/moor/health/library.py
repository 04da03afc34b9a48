"""Built-in CEL health checks for the custom resources people run most, in the shape of `healthChecks`.

Each entry reads the status its project really writes (the conditions and phases its controller sets,
as Argo CD's resource_customizations health scripts read them too). A Sync's own `healthChecks` for the
same kind win over these (`HealthChecks.overridden_by`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from moor.health.cel import HealthChecks, compile_checks


def _condition(kind: str, status: str, *extra: str) -> str:
    """An expression true when status.conditions holds a `kind` condition with `status` (and `extra`)."""
    test = " && ".join((f"c.type == '{kind}'", f"c.status == '{status}'", *extra))
    return f"status.?conditions.orValue([]).exists(c, {test})"


# A condition written for the object's current generation (controllers that set observedGeneration on
# each condition); one without observedGeneration counts as current.
_OBSERVED = "(!has(c.observedGeneration) || !has(metadata.generation) || c.observedGeneration == metadata.generation)"

_READY = _condition("Ready", "True", _OBSERVED)
_NOT_READY = _condition("Ready", "False")
_RECONCILING = _condition("Reconciling", "True")
_STALLED = _condition("Stalled", "True")

_FAILED_REASON = _condition("Ready", "False", "c.reason.endsWith('Failed')")
_FLUX = {
    # Flux's kstatus conditions: Reconciling while at work, Stalled or Ready=False with a *Failed reason
    # (InstallFailed, UpgradeFailed, BuildFailed, HealthCheckFailed, ArtifactFailed...) when it failed.
    "inProgress": _RECONCILING,
    "failed": f"{_STALLED} || {_FAILED_REASON}",
    "current": _READY,
}

# CloudNativePG's status.phase values that need a person (Argo CD calls them Suspended or Degraded).
_CNPG_STUCK = (
    "Unable to create required cluster objects",
    "Cluster cannot proceed to reconciliation due to an unknown plugin being required",
    "Cluster has incomplete or invalid image catalog",
    "Cluster is unrecoverable and needs manual intervention",
    "Waiting for user action",
)

# Crossplane: kinds with no conditions of their own, healthy as soon as they exist.
_CROSSPLANE_PLAIN = ("ProviderConfig", "ClusterProviderConfig", "ProviderConfigUsage", "StoreConfig")
_CROSSPLANE_MANAGED = {
    # Managed resources: Synced=False (the provider cannot reconcile it) or a failed asynchronous
    # operation is Failed; Ready=True is current.
    "failed": f"{_condition('Synced', 'False')} || {_condition('LastAsyncOperation', 'False')}",
    "current": f"kind in {list(_CROSSPLANE_PLAIN)!r} || {_READY}",
}

_ISSUING_FAILED = _condition("Issuing", "False", "c.reason == 'Failed'")

LIBRARY: tuple[Mapping[str, str], ...] = (
    {
        # cert-manager: Issuing=True while a certificate is being issued (checked first, since Ready is
        # False meanwhile), Ready=False otherwise is a failure (ConfigError, a failed issuance).
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "inProgress": _condition("Issuing", "True"),
        "failed": f"{_NOT_READY} || {_ISSUING_FAILED}",
        "current": _READY,
    },
    {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "failed": _NOT_READY, "current": _READY},
    {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "failed": _NOT_READY, "current": _READY},
    {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", **_FLUX},
    {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", **_FLUX},
    {
        # Argo Rollouts sums its health up in status.phase (Healthy, Progressing, Paused, Degraded);
        # InvalidSpec is a condition.
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "inProgress": "status.?phase.orValue('') in ['Progressing', 'Paused']",
        "failed": f"status.?phase.orValue('') == 'Degraded' || {_condition('InvalidSpec', 'True')}",
        "current": "status.?phase.orValue('') == 'Healthy'",
    },
    {
        # Crossplane's own package kinds: Installed and Healthy.
        "apiVersion": "pkg.crossplane.io/v1",
        "kind": "*",
        "failed": _condition("Healthy", "False", "c.reason.contains('Unhealthy')"),
        "current": f"{_condition('Installed', 'True')} && {_condition('Healthy', 'True')}",
    },
    {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "current": f"{_condition('Established', 'True')} && {_condition('Offered', 'True')}",
    },
    {"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition*", "current": "true"},
    {"apiVersion": "*.upbound.io/*", "kind": "*", **_CROSSPLANE_MANAGED},
    {"apiVersion": "*.crossplane.io/*", "kind": "*", **_CROSSPLANE_MANAGED},
    {
        # Strimzi: Ready=True when the cluster is up; NotReady=True with any reason but Creating failed.
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka*",
        "failed": _condition("NotReady", "True", "c.reason != 'Creating'"),
        "current": _condition("Ready", "True"),
    },
    {
        # CloudNativePG: status.phase says it; a hibernated cluster is as its owner declared it.
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "failed": f"status.?phase.orValue('') in {list(_CNPG_STUCK)!r}",
        "current": (
            f"status.?phase.orValue('') == 'Cluster in healthy state' || {_condition('cnpg.io/hibernation', 'True')}"
        ),
    },
)
"""The built-in checks, in `healthChecks` form (exact kinds, then the wildcard families in order)."""


@cache
def library_checks() -> HealthChecks:
    """The built-in checks, compiled once per process."""
    return compile_checks(LIBRARY)

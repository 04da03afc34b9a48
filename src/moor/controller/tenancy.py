"""Multi-tenancy: which ServiceAccount a Sync acts as, which references it may make, and whether that
ServiceAccount may read what the shared live cache would show the Sync.

Writes (dry run, apply, prune) impersonate the ServiceAccount, so the API server judges them itself.
Reads come from the controller's shared cache; `check_reads` makes them honest by asking, once per
kind and namespace (cached briefly, see `moor.cluster.access`), whether the ServiceAccount may `get`
them. docs/trust.md ("Tenancy") says exactly what is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from moor.cluster.access import AccessDecision, AccessReviewer, ResourceAccess, ServiceAccount
from moor.cluster.client import ApiError, ApiUnreachable
from moor.cluster.discovery import Discovery
from moor.controller.scheduling import cluster_failed
from moor.controller.sync_report import SyncFailed
from moor.objects import ObjectRef
from moor.resources import SyncSpec

ACCESS_DENIED = "AccessDenied"
_LISTED_OBJECTS = 3


@dataclass(frozen=True)
class TenancyPolicy:
    """How `moor run` was told to treat tenants (`--default-service-account`, `--no-cross-namespace-refs`)."""

    default_service_account: str | None = None
    """Syncs without spec.serviceAccountName act as this ServiceAccount of their own namespace."""
    no_cross_namespace_refs: bool = False
    """A Sync may name a source or dependency only in its own namespace."""

    def service_account(self, sync: ObjectRef, spec: SyncSpec) -> ServiceAccount | None:
        """Who the Sync acts as; None: the controller itself."""
        name = spec.service_account_name or self.default_service_account
        return ServiceAccount(sync.namespace, name) if name else None

    def check_references(self, sync: ObjectRef, spec: SyncSpec) -> None:
        """Refuses (Stalled, until the spec changes) a source or dependency in another namespace when so told."""
        if not self.no_cross_namespace_refs:
            return
        crossing = []
        source = spec.source_ref
        if source.namespace != sync.namespace:
            crossing.append(f"spec.sourceRef names {source.kind} {source.namespace}/{source.name}")
        crossing += [
            f"spec.dependsOn names Sync {dependency}"
            for dependency in spec.depends_on
            if dependency.namespace != sync.namespace
        ]
        if crossing:
            message = (
                f"{'; '.join(crossing)}, outside the Sync's namespace {sync.namespace}: this controller refuses "
                "cross-namespace references (--no-cross-namespace-refs), so nothing was applied"
            )
            raise SyncFailed(ACCESS_DENIED, message, stalled=True)


async def check_reads(
    reviewer: AccessReviewer,
    discovery: Discovery,
    account: ServiceAccount,
    refs: Iterable[ObjectRef],
    revision: str,
) -> None:
    """Raises AccessDenied unless `account` may `get` every kind, in every namespace, of `refs`.

    Kinds the cluster does not serve are skipped: the dry run names them.
    """
    needs: dict[ResourceAccess, list[ObjectRef]] = {}
    for ref in refs:
        resource = await discovery.resolve_ref(ref)
        if resource is None:
            continue
        question = ResourceAccess(resource.group, resource.plural, ref.namespace if resource.namespaced else "")
        needs.setdefault(question, []).append(ref)
    if not needs:
        return
    try:
        answers = await reviewer.review_all(account, needs)
    except (ApiError, ApiUnreachable) as error:
        if cluster_failed(error):  # an outage, not a denial: reported as ClusterUnreachable and retried soon
            raise
        message = f"revision {revision}: could not ask the API server what {account} may read: {error}"
        raise SyncFailed(ACCESS_DENIED, message) from None
    denied = {question: answer for question, answer in answers.items() if not answer.allowed}
    if denied:
        raise SyncFailed(ACCESS_DENIED, denial_message(account, denied, needs, revision), revision_failed=True)


def denial_message(
    account: ServiceAccount,
    denied: dict[ResourceAccess, AccessDecision],
    needs: dict[ResourceAccess, list[ObjectRef]],
    revision: str,
) -> str:
    """One sentence: what the ServiceAccount may not read, which objects need it, and the authorizer's reason."""
    parts = []
    for question in sorted(denied):
        reason = denied[question].reason
        objects = _listed(needs[question])
        parts.append(f"may not {question} (needed for {objects}){f': {reason}' if reason else ''}")
    return (
        f"revision {revision}: forbidden: {account} {'; '.join(parts)}. Moor acts for this Sync only within "
        "its ServiceAccount's rights, so nothing was written"
    )


def _listed(refs: Sequence[ObjectRef]) -> str:
    names = ", ".join(str(ref) for ref in sorted(set(refs))[:_LISTED_OBJECTS])
    more = len(set(refs)) - _LISTED_OBJECTS
    return f"{names} and {more} more" if more > 0 else names

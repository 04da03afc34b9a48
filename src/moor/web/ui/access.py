"""Who is looking and what they may do: the dashboard's questions, answered by the cluster's AccessReviewer.

Behind `moor run --ui-port` a person logs in with a bearer token (a ServiceAccount token or an OIDC id
token the API server accepts); a TokenReview (`authenticate`) says whose it is. Every read and action is
then checked with a SubjectAccessReview naming that person, sent as the controller. In `moor ui` the
person is the kubeconfig's user and SelfSubjectAccessReviews ask the same questions as them.

Answers are remembered briefly (allowed for 30 s, denied for 5 s), per person and question, so a page
costs no review once its questions have been asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from moor.cluster.access import (
    DENIED_TTL,
    THE_CLIENT,
    AccessReviewer,
    NotAuthenticated,
    Person,
    ResourceAccess,
    authenticate,
)
from moor.cluster.api import KubeApi
from moor.cluster.errors import ApiError

__all__ = [
    "Authorizer",
    "NotAuthenticated",
    "Person",
    "SelfReviews",
    "SubjectReviews",
    "allowed_namespaces",
    "authenticate",
]

DASHBOARD_ALLOWED_TTL = 30.0
"""Seconds a page reuses an allowed answer (the controller's own reviews keep theirs longer)."""


class Authorizer(Protocol):
    async def allowed(self, person: Person, question: ResourceAccess) -> bool: ...


class SubjectReviews:
    """Asks, as the controller, whether a person may: the dashboard served by `moor run --ui-port`."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.reviewer = AccessReviewer(api, allowed_ttl=DASHBOARD_ALLOWED_TTL, denied_ttl=DENIED_TTL, clock=clock)

    async def allowed(self, person: Person, question: ResourceAccess) -> bool:
        return (await self.reviewer.review(person, question)).allowed


class SelfReviews:
    """Asks as the kubeconfig's user whether they may: the dashboard of `moor ui` (its one person)."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.reviewer = AccessReviewer(api, allowed_ttl=DASHBOARD_ALLOWED_TTL, denied_ttl=DENIED_TTL, clock=clock)

    async def allowed(self, person: Person, question: ResourceAccess) -> bool:
        try:
            return (await self.reviewer.review(THE_CLIENT, question)).allowed
        except ApiError:  # a user who may not even ask may not do it either
            return False


async def allowed_namespaces(
    authorizer: Authorizer, person: Person, group: str, resource: str, namespaces: Iterable[str], verb: str = "list"
) -> set[str]:
    """The namespaces of `namespaces` in which `person` may `verb` `resource` (allowed cluster-wide: all)."""
    wanted = set(namespaces)
    if await authorizer.allowed(person, ResourceAccess(group, resource, "", verb)):
        return wanted
    ordered = sorted(wanted)
    answers = await asyncio.gather(
        *(authorizer.allowed(person, ResourceAccess(group, resource, ns, verb)) for ns in ordered)
    )
    return {ns for ns, allowed in zip(ordered, answers, strict=True) if allowed}

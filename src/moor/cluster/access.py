"""What a ServiceAccount may do, asked of the API server with SubjectAccessReviews and remembered briefly.

Moor reads managed objects from one shared watch cache under its own identity. Before a tenant's Sync
uses that cache, the controller asks the API server whether the tenant's ServiceAccount may `get`
each kind in each namespace the Sync touches (one review per group, resource and namespace, not one
per object), so a tenant learns nothing through Moor that it could not read itself.

A SubjectAccessReview is judged for exactly the user and groups it names: the API server does not add
a ServiceAccount's groups as it does when impersonating, so they are named here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from moor.cluster.api import KubeApi
from moor.cluster.client import Impersonation

REVIEW_API_VERSION = "authorization.k8s.io/v1"
ALLOWED_TTL = 60.0
"""Seconds an allowed answer is reused: a permission taken away stops reads within this time."""
DENIED_TTL = 5.0
"""Seconds a denied answer is reused: a permission granted is seen within this time."""
_PRUNE_AT = 4096


@dataclass(frozen=True, order=True)
class ServiceAccount:
    """The identity a tenant's Sync acts as."""

    namespace: str
    name: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups the API server gives every token of this ServiceAccount (and every impersonation of it)."""
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")

    @property
    def impersonation(self) -> Impersonation:
        return Impersonation.service_account(self.namespace, self.name)

    def __str__(self) -> str:
        return f"ServiceAccount {self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class ResourceAccess:
    """One question: may the subject do `verb` on `resource` of `group` in `namespace` ("" for cluster scope)."""

    group: str
    resource: str
    namespace: str
    verb: str = "get"

    def __str__(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f"in namespace {self.namespace}" if self.namespace else "at the cluster scope"
        return f"{self.verb} {resource} {where}"


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str = ""
    """The authorizer's reason, or its evaluation error; often empty for a plain RBAC denial."""


class AccessReviewer:
    """Answers "may this ServiceAccount do this?" with SubjectAccessReviews sent as the controller.

    Answers are cached per (ServiceAccount, verb, group, resource, namespace): allowed ones for
    `allowed_ttl` seconds, denied ones for `denied_ttl`. Questions asked at the same time share one request.
    """

    def __init__(
        self,
        api: KubeApi,
        *,
        allowed_ttl: float = ALLOWED_TTL,
        denied_ttl: float = DENIED_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self._clock = clock
        self._answers: dict[tuple[ServiceAccount, ResourceAccess], tuple[float, AccessDecision]] = {}
        self._pending: dict[tuple[ServiceAccount, ResourceAccess], asyncio.Future[AccessDecision]] = {}

    async def review_all(
        self, account: ServiceAccount, questions: Iterable[ResourceAccess]
    ) -> dict[ResourceAccess, AccessDecision]:
        """Every distinct question's answer, asked concurrently (cached answers cost nothing)."""
        distinct = sorted(set(questions))
        answers = await asyncio.gather(*(self.review(account, question) for question in distinct))
        return dict(zip(distinct, answers, strict=True))

    async def review(self, account: ServiceAccount, question: ResourceAccess) -> AccessDecision:
        key = (account, question)
        now = self._clock()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[AccessDecision] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            decision = await self._ask(account, question)
            future.set_result(decision)
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so an unshared failure is not reported as unhandled
            raise
        finally:
            del self._pending[key]
            if not future.done():
                future.cancel()  # this task was cancelled: so are those waiting on its answer
        ttl = self.allowed_ttl if decision.allowed else self.denied_ttl
        self._remember(key, self._clock() + ttl, decision)
        return decision

    def forget(self) -> None:
        """Drops every cached answer (the next question asks the API server again)."""
        self._answers.clear()

    async def _ask(self, account: ServiceAccount, question: ResourceAccess) -> AccessDecision:
        attributes = {"verb": question.verb, "group": question.group, "resource": question.resource}
        if question.namespace:
            attributes["namespace"] = question.namespace
        review = {
            "apiVersion": REVIEW_API_VERSION,
            "kind": "SubjectAccessReview",
            "metadata": {},
            "spec": {"user": account.user, "groups": list(account.groups), "resourceAttributes": attributes},
        }
        answer = await self.api.create(review)
        status = answer.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        return AccessDecision(allowed, reason)

    def _remember(self, key: tuple[ServiceAccount, ResourceAccess], expires: float, decision: AccessDecision) -> None:
        if len(self._answers) >= _PRUNE_AT:
            now = self._clock()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
        self._answers[key] = (expires, decision)

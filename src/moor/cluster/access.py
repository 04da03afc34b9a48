"""Who a token belongs to, and what a subject may do: TokenReviews and (Self)SubjectAccessReviews, the
answers remembered briefly.

Three kinds of subject are asked about, by one AccessReviewer:
- a tenant's ServiceAccount: Moor reads managed objects from one shared watch cache under its own
  identity, so before a tenant's Sync uses that cache the controller asks whether the tenant may `get`
  each kind in each namespace the Sync touches (one review per group, resource and namespace, not one
  per object), and a tenant learns nothing through Moor that it could not read itself;
- a Person logged in to the dashboard of `moor run --ui-port` with a bearer token (a TokenReview, by
  `authenticate`, says who they are): every read and action is reviewed for them;
- THE_CLIENT, the API client's own user (the dashboard of `moor ui`): SelfSubjectAccessReviews.

A SubjectAccessReview is judged for exactly the user and groups it names: the API server does not add
a ServiceAccount's groups as it does when impersonating, so they are named here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from moor.cluster.api import KubeApi
from moor.cluster.client import Impersonation
from moor.errors import MoorError

REVIEW_API_VERSION = "authorization.k8s.io/v1"
TOKEN_REVIEW_API_VERSION = "authentication.k8s.io/v1"
ALLOWED_TTL = 60.0
"""Seconds an allowed answer is reused: a permission taken away stops reads within this time."""
DENIED_TTL = 5.0
"""Seconds a denied answer is reused: a permission granted is seen within this time."""
_PRUNE_AT = 4096


class Subject(Hashable, Protocol):
    """Whom a review asks about: the kind of review that asks, and the fields of its spec that name them."""

    @property
    def review_kind(self) -> str: ...

    def review_fields(self) -> dict[str, Any]: ...


@dataclass(frozen=True, order=True)
class ServiceAccount:
    """The identity a tenant's Sync acts as."""

    namespace: str
    name: str
    review_kind = "SubjectAccessReview"

    def review_fields(self) -> dict[str, Any]:
        return {"user": self.user, "groups": list(self.groups)}

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


@dataclass(frozen=True)
class Person:
    """A user as the API server knows them (a TokenReview's userInfo)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    review_kind = "SubjectAccessReview"

    @classmethod
    def of_user_info(cls, info: Mapping[str, Any]) -> Person:
        extra = tuple(sorted((str(k), tuple(str(x) for x in v)) for k, v in (info.get("extra") or {}).items()))
        return cls(str(info.get("username", "")), str(info.get("uid", "")), tuple(info.get("groups") or ()), extra)

    def review_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"user": self.username, "groups": list(self.groups)}
        if self.uid:
            fields["uid"] = self.uid
        if self.extra:
            fields["extra"] = {key: list(values) for key, values in self.extra}
        return fields


@dataclass(frozen=True)
class TheClient:
    """The user the API client authenticates as: asked about with SelfSubjectAccessReviews."""

    review_kind = "SelfSubjectAccessReview"

    def review_fields(self) -> dict[str, Any]:
        return {}


THE_CLIENT = TheClient()


class NotAuthenticated(MoorError):
    """The API server did not accept the token."""


async def authenticate(api: KubeApi, token: str) -> Person:
    """The person `token` belongs to, by a TokenReview; NotAuthenticated when the API server refuses it."""
    review = {"apiVersion": TOKEN_REVIEW_API_VERSION, "kind": "TokenReview", "metadata": {}, "spec": {"token": token}}
    status = (await api.create(review)).get("status") or {}
    if not status.get("authenticated"):
        raise NotAuthenticated(str(status.get("error") or "the API server did not accept this token"))
    person = Person.of_user_info(status.get("user") or {})
    if not person.username:
        raise NotAuthenticated("the API server accepted the token but named no user")
    return person


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
    """Answers "may this subject do this?" with the review its kind of subject takes, sent by `api`.

    Answers are cached per (subject, verb, group, resource, namespace): allowed ones for `allowed_ttl`
    seconds, denied ones for `denied_ttl`. Questions asked at the same time share one request.
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
        self._answers: dict[tuple[Subject, ResourceAccess], tuple[float, AccessDecision]] = {}
        self._pending: dict[tuple[Subject, ResourceAccess], asyncio.Future[AccessDecision]] = {}

    async def review_all(
        self, subject: Subject, questions: Iterable[ResourceAccess]
    ) -> dict[ResourceAccess, AccessDecision]:
        """Every distinct question's answer, asked concurrently (cached answers cost nothing)."""
        distinct = sorted(set(questions))
        answers = await asyncio.gather(*(self.review(subject, question) for question in distinct))
        return dict(zip(distinct, answers, strict=True))

    async def review(self, subject: Subject, question: ResourceAccess) -> AccessDecision:
        key = (subject, question)
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
            decision = await self._ask(subject, question)
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

    async def _ask(self, subject: Subject, question: ResourceAccess) -> AccessDecision:
        attributes = {"verb": question.verb, "group": question.group, "resource": question.resource}
        if question.namespace:
            attributes["namespace"] = question.namespace
        review = {
            "apiVersion": REVIEW_API_VERSION,
            "kind": subject.review_kind,
            "metadata": {},
            "spec": {**subject.review_fields(), "resourceAttributes": attributes},
        }
        answer = await self.api.create(review)
        status = answer.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or status.get("evaluationError") or "")
        return AccessDecision(allowed, reason)

    def _remember(self, key: tuple[Subject, ResourceAccess], expires: float, decision: AccessDecision) -> None:
        if len(self._answers) >= _PRUNE_AT:
            now = self._clock()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
        self._answers[key] = (expires, decision)

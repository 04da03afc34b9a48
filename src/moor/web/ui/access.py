"""Who is looking and what they may do, asked of the API server: TokenReviews and (Self)SubjectAccessReviews.

Behind `moor run --ui-port` a person logs in with a bearer token (a ServiceAccount token or an OIDC id
token the API server accepts); a TokenReview says whose it is. Every read and action is then checked
with a SubjectAccessReview naming that person, sent as the controller. In `moor ui` the person is the
kubeconfig's user and SelfSubjectAccessReviews ask the same questions as them.

Answers are remembered briefly (allowed for 30 s, denied for 5 s), per person and question, so a page
costs no review once its questions have been asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from moor.cluster.access import ResourceAccess
from moor.cluster.api import KubeApi
from moor.cluster.errors import ApiError
from moor.errors import MoorError

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
ALLOWED_TTL = 30.0
DENIED_TTL = 5.0
_PRUNE_AT = 8192


class NotAuthenticated(MoorError):
    """The API server did not accept the token."""


@dataclass(frozen=True)
class Person:
    """A user as the API server knows them (a TokenReview's userInfo)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @classmethod
    def of_user_info(cls, info: Mapping[str, Any]) -> Person:
        extra = tuple(sorted((str(k), tuple(str(x) for x in v)) for k, v in (info.get("extra") or {}).items()))
        return cls(str(info.get("username", "")), str(info.get("uid", "")), tuple(info.get("groups") or ()), extra)


async def authenticate(api: KubeApi, token: str) -> Person:
    """The person `token` belongs to, by a TokenReview; NotAuthenticated when the API server refuses it."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    answer = await api.client.request("create", "POST", TOKEN_REVIEWS, body=review)
    status = answer.get("status") or {}
    if not status.get("authenticated"):
        raise NotAuthenticated(str(status.get("error") or "the API server did not accept this token"))
    person = Person.of_user_info(status.get("user") or {})
    if not person.username:
        raise NotAuthenticated("the API server accepted the token but named no user")
    return person


class Authorizer(Protocol):
    async def allowed(self, person: Person, question: ResourceAccess) -> bool: ...


class _Remembered:
    """Answers per (person, question), allowed ones for ALLOWED_TTL seconds, denied ones for DENIED_TTL."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._answers: dict[tuple[Person, ResourceAccess], tuple[float, bool]] = {}

    def get(self, person: Person, question: ResourceAccess) -> bool | None:
        found = self._answers.get((person, question))
        return found[1] if found is not None and found[0] > self._clock() else None

    def put(self, person: Person, question: ResourceAccess, allowed: bool) -> bool:
        now = self._clock()
        if len(self._answers) >= _PRUNE_AT:
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
        self._answers[(person, question)] = (now + (ALLOWED_TTL if allowed else DENIED_TTL), allowed)
        return allowed


def _attributes(question: ResourceAccess) -> dict[str, str]:
    attributes = {"verb": question.verb, "group": question.group, "resource": question.resource}
    if question.namespace:
        attributes["namespace"] = question.namespace
    return attributes


def _allowed(answer: Mapping[str, Any]) -> bool:
    status = answer.get("status") or {}
    return bool(status.get("allowed")) and not status.get("denied")


class SubjectReviews:
    """Asks, as the controller, whether a person may: the dashboard served by `moor run --ui-port`."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self._remembered = _Remembered(clock)

    async def allowed(self, person: Person, question: ResourceAccess) -> bool:
        known = self._remembered.get(person, question)
        if known is not None:
            return known
        spec: dict[str, Any] = {"user": person.username, "groups": list(person.groups)}
        if person.uid:
            spec["uid"] = person.uid
        if person.extra:
            spec["extra"] = {key: list(values) for key, values in person.extra}
        spec["resourceAttributes"] = _attributes(question)
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self.api.client.request("create", "POST", SUBJECT_ACCESS_REVIEWS, body=review)
        return self._remembered.put(person, question, _allowed(answer))


class SelfReviews:
    """Asks as the kubeconfig's user whether they may: the dashboard of `moor ui`."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self._remembered = _Remembered(clock)

    async def allowed(self, person: Person, question: ResourceAccess) -> bool:
        known = self._remembered.get(person, question)
        if known is not None:
            return known
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": _attributes(question)},
        }
        try:
            answer = await self.api.client.request("create", "POST", SELF_SUBJECT_ACCESS_REVIEWS, body=review)
        except ApiError:
            return self._remembered.put(person, question, False)
        return self._remembered.put(person, question, _allowed(answer))


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

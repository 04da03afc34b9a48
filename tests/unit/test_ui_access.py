"""Which namespaces a person may list in: one question cluster-wide, then one per namespace."""

from __future__ import annotations

import asyncio

from moor.cluster.access import ResourceAccess
from moor.web.ui.access import Person, allowed_namespaces


class Rbac:
    """An authorizer that answers from a fixed set of (namespace, verb) grants, counting the questions."""

    def __init__(self, grants: set[tuple[str, str]]) -> None:
        self.grants = grants
        self.asked: list[ResourceAccess] = []

    async def allowed(self, person: Person, question: ResourceAccess) -> bool:
        self.asked.append(question)
        return (question.namespace, question.verb) in self.grants


def test_a_cluster_wide_grant_answers_for_every_namespace_at_once() -> None:
    rbac = Rbac({("", "list")})
    found = asyncio.run(allowed_namespaces(rbac, Person("ada"), "moor.dev", "syncs", {"a", "b"}))
    assert found == {"a", "b"} and len(rbac.asked) == 1


def test_otherwise_each_namespace_is_asked() -> None:
    rbac = Rbac({("b", "list"), ("c", "get")})
    found = asyncio.run(allowed_namespaces(rbac, Person("ada"), "moor.dev", "syncs", {"a", "b", "c"}))
    assert found == {"b"}
    assert sorted(q.namespace for q in rbac.asked) == ["", "a", "b", "c"]

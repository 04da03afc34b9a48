"""What a ServiceAccount may read, asked of a real API server: answers right, cached, shared, refreshed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from moor.cluster.access import AccessReviewer, ResourceAccess, ServiceAccount
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials
from tests.support.cluster_fixtures import Kubectl

ROLE = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: reader}]
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_answers_follow_rbac_and_are_cached_per_kind_and_namespace(
    kubeconfig: Path, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=ROLE)
    account = ServiceAccount(namespace, "reader")
    config_maps = ResourceAccess("", "configmaps", namespace)
    secrets = ResourceAccess("", "secrets", namespace)
    elsewhere = ResourceAccess("", "configmaps", "kube-system")
    bindings = ResourceAccess("rbac.authorization.k8s.io", "clusterrolebindings", "")
    clock = Clock()
    async with KubeClient(load_credentials(kubeconfig)) as client:
        reviewer = AccessReviewer(KubeApi(client), allowed_ttl=60, denied_ttl=5, clock=clock)

        answers = await reviewer.review_all(account, [config_maps, secrets, elsewhere, bindings, config_maps])
        assert {question: answer.allowed for question, answer in answers.items()} == {
            config_maps: True,
            secrets: False,
            elsewhere: False,
            bindings: False,
        }
        assert client.requests["create"] == 4, "one review per distinct question"

        clock.now += 4
        await reviewer.review_all(account, [config_maps, secrets, elsewhere, bindings])
        assert client.requests["create"] == 4, "both answers are still fresh"

        clock.now += 2  # past the 5 s of a denial, within the 60 s of an allowance
        await reviewer.review_all(account, [config_maps, secrets])
        assert client.requests["create"] == 5

        clock.now += 60
        answers = await asyncio.gather(*(reviewer.review(account, config_maps) for _ in range(10)))
        assert all(answer.allowed for answer in answers)
        assert client.requests["create"] == 6, "questions asked together share one request"


async def test_a_service_account_that_does_not_exist_may_do_nothing(kubeconfig: Path, namespace: str) -> None:
    async with KubeClient(load_credentials(kubeconfig)) as client:
        reviewer = AccessReviewer(KubeApi(client))
        answer = await reviewer.review(ServiceAccount(namespace, "ghost"), ResourceAccess("", "configmaps", namespace))
    assert not answer.allowed

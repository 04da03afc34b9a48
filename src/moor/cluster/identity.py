"""Who the client is to the API server: the user a SelfSubjectReview reports (recorded as an approver)."""

from __future__ import annotations

from moor.cluster.api import KubeApi

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


async def whoami(api: KubeApi) -> str:
    """The Kubernetes user name this client authenticates as; "unknown" when the server does not say."""
    review = await api.client.request(
        "create",
        "POST",
        SELF_SUBJECT_REVIEWS,
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    return str(((review.get("status") or {}).get("userInfo") or {}).get("username") or "unknown")

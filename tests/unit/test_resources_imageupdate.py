from typing import Any

import pytest

from moor.automation.message import DEFAULT_TEMPLATE
from moor.resources import SpecError
from moor.resources.imageupdate import ImageUpdateSpec, PushStrategy, SigningKeySpec


def imageupdate(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "ImageUpdate",
        "metadata": {"name": "u", "namespace": "apps"},
        "spec": spec,
    }


def test_defaults() -> None:
    spec = ImageUpdateSpec.from_object(imageupdate(sourceRef={"name": "repo"}))
    assert spec == ImageUpdateSpec(repository="repo", checkout_branch=None, push_branch=None)
    assert spec.path == "." and spec.strategy is PushStrategy.BRANCH and spec.message_template == DEFAULT_TEMPLATE


def test_every_field_reads() -> None:
    spec = ImageUpdateSpec.from_object(
        imageupdate(
            sourceRef={"kind": "GitRepository", "name": "repo"},
            git={
                "checkout": {"branch": "main"},
                "commit": {
                    "author": {"name": "Bot", "email": "bot@example.com"},
                    "messageTemplate": "images: {policies}",
                    "signingKey": {"secretRef": {"name": "key"}},
                },
                "push": {"branch": "release"},
            },
            update={"path": "deploy/prod"},
            interval="5m",
            suspend=True,
        )
    )
    assert (spec.checkout_branch, spec.push_branch, spec.strategy) == ("main", "release", PushStrategy.BRANCH)
    assert (spec.author_name, spec.author_email, spec.message_template) == (
        "Bot",
        "bot@example.com",
        "images: {policies}",
    )
    assert spec.signing_key == SigningKeySpec("key")
    assert spec.path == "deploy/prod" and spec.suspend and spec.interval.total_seconds() == 300


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({}, "spec.sourceRef is required"),
        ({"sourceRef": {"kind": "OCIRepository", "name": "r"}}, "spec.sourceRef.kind must be GitRepository"),
        ({"sourceRef": {"name": "r"}, "update": {"path": "../up"}}, "spec.update.path must be a relative path"),
        ({"sourceRef": {"name": "r"}, "git": {"commit": {"messageTemplate": "{x}"}}}, "unknown placeholder"),
        ({"sourceRef": {"name": "r"}, "git": {"push": {"strategy": "Force"}}}, "must be one of Branch, PerPolicy"),
        (
            {"sourceRef": {"name": "r"}, "git": {"push": {"strategy": "PerPolicy", "branch": "b"}}},
            "spec.git.push.branch is for strategy Branch",
        ),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        ImageUpdateSpec.from_object(imageupdate(**spec))

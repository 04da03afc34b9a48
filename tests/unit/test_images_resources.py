"""ImageRepository and ImagePolicy specs: defaults as the CRDs declare them, and bad specs named by field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from moor.images.policy import PolicyKind, SortOrder
from moor.images.tags import keep_tags
from moor.resources import SpecError
from moor.resources.imagepolicy import ImagePolicySpec
from moor.resources.imagerepository import DEFAULT_INTERVAL, ImageRepositorySpec


def obj(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "team", "name": "app"}, "spec": spec}


def test_an_image_repository_gets_the_defaults() -> None:
    spec = ImageRepositorySpec.from_object(obj("ImageRepository", {"image": "127.0.0.1:5000/team/app"}))
    assert str(spec.image) == "127.0.0.1:5000/team/app"
    assert spec.interval == DEFAULT_INTERVAL
    kept = keep_tags(["1.0.0", "sha256-abc.sig", "sha256-abc.att", "sha256-abc.sbom"], spec.exclusions)
    assert kept.tags == ("1.0.0",)
    assert kept.excluded == 3


def test_an_empty_exclusion_list_keeps_every_tag() -> None:
    spec = ImageRepositorySpec.from_object(obj("ImageRepository", {"image": "ghcr.io/o/a", "exclusionList": []}))
    assert keep_tags(["x.sig"], spec.exclusions).tags == ("x.sig",)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"image": "ghcr.io/o/a:1.0"}, "spec.image"),
        ({"image": "ghcr.io/o/a", "exclusionList": ["("]}, "spec.exclusionList[0]"),
        ({"image": "ghcr.io/o/a", "interval": "0s"}, "spec.interval"),
    ],
)
def test_bad_image_repositories_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field.replace("[", r"\[")):
        ImageRepositorySpec.from_object(obj("ImageRepository", spec))


def test_an_image_policy_reads_its_rule_and_filter() -> None:
    spec = ImagePolicySpec.from_object(
        obj(
            "ImagePolicy",
            {
                "imageRepositoryRef": {"name": "app"},
                "policy": {"numerical": {"order": "desc"}},
                "filterTags": {"pattern": "^main-(?P<ts>[0-9]+)$", "extract": "$ts"},
                "resolveDigest": True,
            },
        )
    )
    assert spec.policy.kind is PolicyKind.NUMERICAL
    assert spec.policy.order is SortOrder.DESC
    assert spec.resolve_digest
    assert spec.policy.choose(["main-1", "main-2", "dev-0"]) == "main-1"
    assert spec.repository.namespace is None


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"policy": {"semver": {"range": "^1"}}}, "spec.imageRepositoryRef"),
        ({"imageRepositoryRef": {"name": "a"}, "policy": {}}, "exactly one of"),
        (
            {"imageRepositoryRef": {"name": "a"}, "policy": {"semver": {"range": "one point two"}}},
            "spec.policy.semver.range",
        ),
        (
            {
                "imageRepositoryRef": {"name": "a"},
                "policy": {"numerical": {}},
                "filterTags": {"pattern": "(", "extract": "$1"},
            },
            "spec.filterTags.pattern",
        ),
    ],
)
def test_bad_image_policies_name_the_problem(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        ImagePolicySpec.from_object(obj("ImagePolicy", spec))


def test_invalid_tag_names_are_dropped_and_counted_never_kept() -> None:
    kept = keep_tags(["1.0.0", "../../etc", "$(reboot)", "a b", "-x", "ok_1"], ())
    assert kept.tags == ("1.0.0", "ok_1")
    assert kept.invalid == 4


def test_newest_tags_put_versions_first_highest_first() -> None:
    kept = keep_tags(["1.2.0", "1.10.0", "latest", "v2.0.0", "main"], ())
    assert kept.newest == ("v2.0.0", "1.10.0", "1.2.0", "main", "latest")
    assert keep_tags(["b", "a"], ()).revision != keep_tags(["a"], ()).revision
    assert timedelta(minutes=5) == DEFAULT_INTERVAL

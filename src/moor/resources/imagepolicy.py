"""An ImagePolicy's spec as a typed value: whose tags, how they are ordered, whether the digest is resolved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moor.images.policy import InvalidPolicy, PolicyKind, SortOrder, TagFilter, TagPolicy
from moor.resources.fields import FieldReader
from moor.source.errors import InvalidSourceSpec
from moor.source.semver_range import SemverRange


@dataclass(frozen=True)
class ImageRepositoryRef:
    name: str
    namespace: str | None = None
    """None: the ImagePolicy's own namespace."""


@dataclass(frozen=True)
class ImagePolicySpec:
    repository: ImageRepositoryRef
    policy: TagPolicy
    resolve_digest: bool = False
    """Read the chosen tag's manifest digest (status.latestDigest, `tag@sha256:…` in status.latestImage)."""
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ImagePolicySpec:
        """Reads and checks an ImagePolicy custom resource."""
        spec = FieldReader.spec_of(obj)
        ref = spec.child("imageRepositoryRef")
        if ref is None:
            raise spec.error("imageRepositoryRef", "is required: name the ImageRepository whose tags to choose from")
        return cls(
            repository=ImageRepositoryRef(ref.required_name("name"), ref.name("namespace", label=True)),
            policy=_read_policy(spec),
            resolve_digest=spec.boolean("resolveDigest", False),
            suspend=spec.boolean("suspend", False),
        )


def _read_policy(spec: FieldReader) -> TagPolicy:
    policy = spec.child("policy")
    if policy is None:
        raise spec.error("policy", "is required: set one of semver, alphabetical or numerical")
    chosen = [kind for kind in PolicyKind if policy.has(kind.value)]
    if len(chosen) != 1:
        named = " and ".join(kind.value for kind in chosen) or "none"
        raise spec.error("policy", f"must set exactly one of semver, alphabetical or numerical (it sets {named})")
    kind = chosen[0]
    rule = policy.child(kind.value)
    assert rule is not None
    semver = None
    if kind is PolicyKind.SEMVER:
        text = rule.required_str("range", max_length=255)
        try:
            semver = SemverRange.parse(text)
        except InvalidSourceSpec as error:
            raise rule.error("range", str(error)) from None
    order = SortOrder.ASC if kind is PolicyKind.SEMVER else rule.choice("order", SortOrder, SortOrder.ASC)
    return TagPolicy(kind, order, semver, _read_filter(spec.child("filterTags")))


def _read_filter(filter_tags: FieldReader | None) -> TagFilter | None:
    if filter_tags is None:
        return None
    pattern = filter_tags.required_str("pattern", max_length=1024)
    extract = filter_tags.optional_str("extract", max_length=256)
    try:
        return TagFilter.compile(pattern, extract)
    except InvalidPolicy as error:
        raise filter_tags.error("extract" if "group" in str(error) else "pattern", str(error)) from None

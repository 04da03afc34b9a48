"""Following pushed commits to the cluster: which Sync found a commit healthy or rolled it back, and which
tags of an ImagePolicy count as failed. Pure: status dicts in, decisions out.

Each pushed commit is followed (`status.followedCommits` of the ImageUpdate) until a Sync of its
GitRepository either rolls it back (`status.rollback.failedRevision` names it) or reaches it healthy
(`status.lastHealthyRevision`). Once one commit is resolved, the commits pushed before it are
superseded and no longer followed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.objects import KubeObject
from moor.resources import conditions
from moor.source.errors import SourceError
from moor.source.refs import revision_commit

GIT_REPOSITORY = "GitRepository"


@dataclass(frozen=True)
class Outcome:
    """What became of a followed commit in one Sync."""

    entry: Mapping[str, Any]
    """The followed commit (`commit`, `branch`, `pushedAt`, `images: [{policy, image, tag, digest}]`)."""
    sync: KubeObject
    rolled_back: bool


def resolve_followed(
    followed: Sequence[Mapping[str, Any]], syncs: Sequence[KubeObject]
) -> tuple[list[Mapping[str, Any]], list[Outcome]]:
    """The commits still followed, and the outcomes of those no longer followed, oldest first."""
    still: list[Mapping[str, Any]] = []
    outcomes: list[Outcome] = []
    for entry in followed:
        found = outcome_of(entry, syncs)
        if found is None:
            still.append(entry)
            continue
        still.clear()  # the commits pushed before this one were superseded by it
        outcomes.append(found)
    return still, outcomes


def outcome_of(entry: Mapping[str, Any], syncs: Sequence[KubeObject]) -> Outcome | None:
    """The Sync that rolled the entry's commit back, or else one that found it healthy; None: neither yet."""
    commit = str(entry.get("commit") or "")
    healthy = None
    for sync in syncs:
        status = sync.get("status") or {}
        if commit_of((status.get("rollback") or {}).get("failedRevision")) == commit:
            return Outcome(entry, sync, rolled_back=True)
        if healthy is None and commit_of(status.get("lastHealthyRevision")) == commit:
            healthy = Outcome(entry, sync, rolled_back=False)
    return healthy


def is_failed(policy_status: Mapping[str, Any], tag: object, digest: object = None) -> bool:
    """Whether `tag` (at `digest`, when both sides know it) is among an ImagePolicy's `failedTags`."""
    if not tag:
        return False
    for entry in policy_status.get("failedTags") or []:
        if not isinstance(entry, Mapping) or entry.get("tag") != tag:
            continue
        if digest and entry.get("digest") and entry.get("digest") != digest:
            continue  # the tag was pushed again with other content: not the image that failed
        return True
    return False


def failed_tag(image: Mapping[str, Any], sync: str, rollback: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The `failedTags` entry for a followed image whose commit `sync` (namespace/name) rolled back."""
    entry = {
        "tag": str(image.get("tag") or ""),
        "reason": str(rollback.get("reason") or conditions.ROLLED_BACK),
        "sync": sync,
        "revision": str(rollback.get("failedRevision") or ""),
        "at": str(rollback.get("at") or now),
    }
    if image.get("digest"):
        entry["digest"] = str(image["digest"])
    return entry


def uses_repository(sync: KubeObject, namespace: str, name: str) -> bool:
    """Whether a Sync applies the GitRepository `namespace/name`."""
    source = (sync.get("spec") or {}).get("sourceRef") or {}
    own = (sync.get("metadata") or {}).get("namespace")
    return bool(
        (source.get("kind") or GIT_REPOSITORY) == GIT_REPOSITORY
        and source.get("name") == name
        and (source.get("namespace") or own) == namespace
    )


def commit_of(revision: object) -> str | None:
    """The commit a revision string (`main@sha1:…`) names; None for none or a malformed one."""
    if not revision:
        return None
    try:
        return revision_commit(str(revision))
    except SourceError:
        return None

"""Which revision a Sync should hold the cluster at: Git's newest, a pinned one, the last healthy one
after a failure, or none yet while a new revision awaits approval. Pure: status and annotations in,
a choice out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PIN_ANNOTATION = "moor.dev/pin"
"""Set by `moor rollback --to REV`: hold the cluster at REV ..."""
PINNED_SOURCE_ANNOTATION = "moor.dev/pinned-source"
""" ... while the source stays at this revision; when Git moves past it, the pin is released."""
APPROVED_REVISION_ANNOTATION = "moor.dev/approved-revision"
APPROVED_BY_ANNOTATION = "moor.dev/approved-by"


class Hold(enum.Enum):
    LATEST = "latest"
    """Git's newest revision."""
    PINNED = "pinned"
    """A revision pinned by `moor rollback`."""
    AFTER_FAILURE = "after-failure"
    """The last healthy revision, because Git's newest one failed and was rolled back."""
    AWAITING_APPROVAL = "awaiting-approval"
    """Git's newest revision waits for `moor approve`; the cluster stays where it is."""


@dataclass(frozen=True)
class RevisionChoice:
    hold: Hold
    revision: str
    """The revision whose state the cluster should have ('' when there is none yet)."""
    source_revision: str
    """Git's newest revision, as the source reports it."""
    pin_released: bool = False
    """True when a pin exists but Git moved past it: the caller removes the pin."""

    @property
    def is_latest(self) -> bool:
        return self.hold is Hold.LATEST


def choose_revision(
    source_revision: str,
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    *,
    manual_approval: bool,
) -> RevisionChoice:
    pin = annotations.get(PIN_ANNOTATION)
    pin_released = False
    if pin:
        if annotations.get(PINNED_SOURCE_ANNOTATION) == source_revision:
            return RevisionChoice(Hold.PINNED, pin, source_revision)
        pin_released = True

    rollback = status.get("rollback") or {}
    healthy = str(status.get("lastHealthyRevision") or "")
    if rollback.get("failedRevision") == source_revision and healthy:
        return RevisionChoice(Hold.AFTER_FAILURE, healthy, source_revision, pin_released)

    applied = str(status.get("lastAppliedRevision") or "")
    approved = annotations.get(APPROVED_REVISION_ANNOTATION) == source_revision
    if manual_approval and source_revision != applied and not approved:
        return RevisionChoice(Hold.AWAITING_APPROVAL, applied, source_revision, pin_released)
    return RevisionChoice(Hold.LATEST, source_revision, source_revision, pin_released)

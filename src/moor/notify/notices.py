"""What an event means to the people who are told about it: a Notice, independent of where it goes.

Pure: a recorded event (and the URL of the repository behind it) in, a Notice out, with what
happened in words, the revision, its author and a link to the commit when the host has commit pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from moor.notify.links import commit_url
from moor.notify.specs import Severity
from moor.objects import ObjectRef
from moor.record.events import WARNING, RecordedEvent
from moor.resources import GITREPOSITORY, HELMREPOSITORY, OCIREPOSITORY, SYNC, conditions
from moor.source.urls import redact_text, redact_url

APPLIED = "Applied"
APPROVED = "Approved"
ROLLED_BACK = "RolledBack"
DRIFT_CORRECTED = "DriftCorrected"
NEW_ARTIFACT = "NewArtifact"
SOURCE_KINDS = frozenset({GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind})

REVISION_FAILURES = frozenset(
    {
        conditions.BUILD_FAILED,
        conditions.VALIDATION_FAILED,
        conditions.APPLY_FAILED,
        conditions.PRUNE_FAILED,
        conditions.HEALTH_CHECK_FAILED,
    }
)
"""Failures of the revision itself (as opposed to a missing source or dependency)."""


class Happening(StrEnum):
    """What happened, in the words a notification uses."""

    PROGRESSING = "applying revision"
    REVISION_APPLIED = "revision applied"
    APPROVED = "approved"
    AWAITING_APPROVAL = "awaiting approval"
    SYNC_FAILED = "sync failed"
    HEALTH_DEGRADED = "health degraded"
    ROLLED_BACK = "rolled back"
    DRIFT_DETECTED = "drift detected"
    DRIFT_CORRECTED = "drift corrected"
    NEW_REVISION = "new revision"
    SIGNATURE_REFUSED = "signature refused"
    SOURCE_FAILED = "source failed"
    WAITING = "waiting"
    OTHER = "event"


_BY_REASON = {
    conditions.PROGRESSING: Happening.PROGRESSING,
    APPLIED: Happening.REVISION_APPLIED,
    APPROVED: Happening.APPROVED,
    conditions.APPROVAL_REQUIRED: Happening.AWAITING_APPROVAL,
    conditions.HEALTH_CHECK_FAILED: Happening.HEALTH_DEGRADED,
    ROLLED_BACK: Happening.ROLLED_BACK,
    conditions.DRIFT_DETECTED: Happening.DRIFT_DETECTED,
    DRIFT_CORRECTED: Happening.DRIFT_CORRECTED,
    NEW_ARTIFACT: Happening.NEW_REVISION,
    conditions.VERIFICATION_FAILED: Happening.SIGNATURE_REFUSED,
}


def happening_of(kind: str, type_: str, reason: str) -> Happening:
    if reason in (conditions.DEPENDENCY_NOT_READY, conditions.SOURCE_NOT_READY):
        return Happening.WAITING
    known = _BY_REASON.get(reason)
    if known is not None:
        return known
    if type_ == WARNING:
        return Happening.SOURCE_FAILED if kind in SOURCE_KINDS else Happening.SYNC_FAILED
    return Happening.OTHER


class CommitState(StrEnum):
    """A commit status, in GitHub's words (GitLab calls failure `failed`)."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


_WORDS = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_ASSIGNED = re.compile(r"(?i)\b(password|passwd|token|secret|api[_-]?key|private[_-]token)=[^\s&;,]+")
MIN_SECRET_LENGTH = 4


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without credentials: URL userinfo, the given secret values, bearer tokens, `token=…`."""
    text = redact_text(text)
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _WORDS.sub(lambda match: f"{match[1]} ***", text)
    return _ASSIGNED.sub(lambda match: f"{match[1]}=***", text)


@dataclass(frozen=True)
class Notice:
    """One event, ready to be told: the same content whichever provider sends it."""

    subject: ObjectRef
    happening: Happening
    severity: Severity
    reason: str
    message: str
    at: datetime
    revision: str = ""
    author: str = ""
    repository_url: str = ""
    """The repository behind the event (credentials removed), for commit links and commit statuses."""

    @classmethod
    def of(cls, event: RecordedEvent, repository_url: str = "") -> Notice:
        """A waiting Sync (for its dependencies, or its source's first revision) is news, not an error."""
        happening = happening_of(event.subject.kind, event.type, event.reason)
        error = event.type == WARNING and happening is not Happening.WAITING
        return cls(
            subject=event.subject,
            happening=happening,
            severity=Severity.ERROR if error else Severity.INFO,
            reason=event.reason,
            message=scrub(event.message),
            at=event.at,
            revision=event.revision,
            author=event.author,
            repository_url=redact_url(repository_url) if repository_url else "",
        )

    @property
    def commit(self) -> str:
        """The commit id in the revision (`main@sha1:abc…` -> `abc…`); '' when there is none."""
        digest = self.revision.rpartition(":")[2] if ":" in self.revision else self.revision
        return digest if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", digest) else ""

    @property
    def short_revision(self) -> str:
        """`main@sha1:3f2a…` -> `main@3f2a5c6d7e8f`."""
        name, _, digest = self.revision.rpartition("@")
        short = digest.rpartition(":")[2][:12]
        return f"{name}@{short}" if name else short

    @property
    def commit_url(self) -> str:
        return commit_url(self.repository_url, self.commit) if self.repository_url and self.commit else ""

    @property
    def object_name(self) -> str:
        """`Sync shop/web`."""
        return f"{self.subject.kind} {self.subject.namespace}/{self.subject.name}"

    @property
    def title(self) -> str:
        """`Sync shop/web: revision applied`."""
        return f"{self.object_name}: {self.happening}"

    @property
    def revision_line(self) -> str:
        """`revision main@3f2a5c6d7e8f by Jane <jane@example.com>`, or '' without a revision."""
        if not self.revision:
            return ""
        by = f" by {self.author}" if self.author else ""
        return f"revision {self.short_revision}{by}"

    def text(self) -> str:
        """The whole notice as plain text: what, to which object, which revision and author, the link."""
        lines = [self.title, self.message]
        if self.revision_line:
            lines.append(self.revision_line)
        if self.commit_url:
            lines.append(self.commit_url)
        return "\n".join(line for line in lines if line)

    @property
    def commit_state(self) -> CommitState | None:
        """The commit status this notice sets on its revision's commit; None when it sets none."""
        if self.subject.kind != SYNC.kind or not self.commit:
            return None
        if self.happening in (Happening.PROGRESSING, Happening.AWAITING_APPROVAL):
            return CommitState.PENDING
        if self.happening is Happening.REVISION_APPLIED:
            return CommitState.SUCCESS
        if self.happening is Happening.ROLLED_BACK or self.reason in REVISION_FAILURES:
            return CommitState.FAILURE
        return None

    @property
    def dedup_key(self) -> tuple[ObjectRef, str, str, str]:
        """Two notices with this key are the same news."""
        return (self.subject, self.reason, self.revision, self.message)

    def scrubbed(self, secrets: Iterable[str]) -> Notice:
        """This notice with `secrets` (a provider's credentials) removed from everything it says."""
        values = list(secrets)
        return replace(self, message=scrub(self.message, values), author=scrub(self.author, values))

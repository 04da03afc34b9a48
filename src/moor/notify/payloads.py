"""The request each kind of Provider sends for a notice: URL, headers and body, built without I/O.

Credentials only ever travel in headers (or, for webhook URLs that are secrets themselves, as the
URL); bodies are scrubbed of every credential the provider holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from moor import __version__
from moor.errors import MoorError
from moor.notify.links import RepositoryAddress, repository_address
from moor.notify.notices import CommitState, Happening, Notice
from moor.notify.specs import ProviderType, Severity
from moor.web.push import sign

USER_AGENT = f"moor/{__version__}"
SIGNATURE_HEADER = "X-Moor-Signature"
EVENT_HEADER = "X-Moor-Event"
GITHUB_DESCRIPTION_LIMIT = 140
GITLAB_DESCRIPTION_LIMIT = 255
ALERTMANAGER_PATH = "/api/v2/alerts"
SECRET_PIECE_LENGTH = 16


class NotDeliverable(MoorError):
    """A notice this provider cannot send (e.g. a commit status for a repository whose URL names no project)."""


@dataclass(frozen=True)
class Credentials:
    """What a Provider sends with: where to, and the secrets read from its Secret."""

    address: str = field(repr=False)
    token: str = field(default="", repr=False)
    hmac_key: bytes = field(default=b"", repr=False)
    address_is_secret: bool = False

    @property
    def secrets(self) -> list[str]:
        """Every value that must never appear in a body or a log line."""
        values = [self.token, self.hmac_key.decode("utf-8", "replace")]
        if self.address_is_secret:
            values.append(self.address)
            # Webhook URLs carry their key in a path segment or a query value: those are secret alone, too.
            parts = urlsplit(self.address)
            pieces = [*parts.path.split("/"), *(pair.partition("=")[2] for pair in parts.query.split("&"))]
            values.extend(unquote(piece) for piece in pieces if len(piece) >= SECRET_PIECE_LENGTH)
        return [value for value in values if value]


@dataclass(frozen=True)
class Outgoing:
    """One HTTP POST. `target` is what logs may show (scheme and host only)."""

    url: str = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    body: bytes
    target: str


def render(provider: ProviderType, notice: Notice, credentials: Credentials, *, context: str = "") -> Outgoing | None:
    """The request `provider` sends for `notice`, or None when it has nothing to say about it."""
    clean = notice.scrubbed(credentials.secrets)
    return _RENDERERS[provider](clean, credentials, context)


def safe_target(url: str) -> str:
    """`https://hooks.slack.com/services/T0/B0/XYZ` -> `https://hooks.slack.com`: fit for a log line."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _post(url: str, document: Any, headers: Mapping[str, str] | None = None) -> Outgoing:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    merged = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    return Outgoing(url=url, headers=merged, body=body, target=safe_target(url))


def _bearer(credentials: Credentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- chat and webhooks -----------------------------------------------------------------------------


def render_generic(notice: Notice, credentials: Credentials, _: str = "") -> Outgoing:
    """A JSON document with every field of the notice; signed when the Secret holds an hmacKey."""
    subject = notice.subject
    document = {
        "involvedObject": {
            "apiVersion": subject.api_version,
            "kind": subject.kind,
            "namespace": subject.namespace,
            "name": subject.name,
        },
        "severity": str(notice.severity),
        "reason": notice.reason,
        "happening": str(notice.happening),
        "summary": notice.title,
        "message": notice.message,
        "timestamp": _timestamp(notice.at),
        "revision": notice.revision,
        "commit": notice.commit,
        "author": notice.author,
        "commitUrl": notice.commit_url,
        "reportingController": "moor",
    }
    outgoing = _post(credentials.address, document, {EVENT_HEADER: notice.reason, **_bearer(credentials)})
    if not credentials.hmac_key:
        return outgoing
    signed = {**outgoing.headers, SIGNATURE_HEADER: sign(outgoing.body, credentials.hmac_key)}
    return Outgoing(outgoing.url, signed, outgoing.body, outgoing.target)


def _color(notice: Notice) -> str:
    if notice.severity is Severity.ERROR:
        return "danger"
    return "good" if notice.happening in (Happening.REVISION_APPLIED, Happening.APPROVED) else "#439FE0"


def render_slack(notice: Notice, credentials: Credentials, _: str = "") -> Outgoing:
    """An incoming-webhook message: a one-line text and an attachment with revision, author and link."""
    fields = []
    if notice.revision:
        commit = f"<{notice.commit_url}|{notice.short_revision}>" if notice.commit_url else notice.short_revision
        fields.append({"title": "Revision", "value": commit, "short": True})
    if notice.author:
        fields.append({"title": "Author", "value": notice.author, "short": True})
    attachment: dict[str, Any] = {
        "color": _color(notice),
        "title": notice.title,
        "text": notice.message,
        "fields": fields,
        "footer": "moor",
        "ts": int(notice.at.timestamp()),
    }
    if notice.commit_url:
        attachment["title_link"] = notice.commit_url
    document = {"text": notice.title, "attachments": [attachment]}
    return _post(credentials.address, document, _bearer(credentials))


def render_msteams(notice: Notice, credentials: Credentials, _: str = "") -> Outgoing:
    """A message with an Adaptive Card, as Teams incoming webhooks and workflows accept."""
    facts = [{"title": "Object", "value": notice.object_name}]
    if notice.revision:
        facts.append({"title": "Revision", "value": notice.short_revision})
    if notice.author:
        facts.append({"title": "Author", "value": notice.author})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": notice.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Attention" if notice.severity is Severity.ERROR else "Default",
            },
            {"type": "TextBlock", "text": notice.message, "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
    }
    if notice.commit_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "View commit", "url": notice.commit_url}]
    document = {
        "type": "message",
        "summary": notice.title,
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }
    return _post(credentials.address, document, _bearer(credentials))


def render_alertmanager(notice: Notice, credentials: Credentials, _: str = "") -> Outgoing:
    """One alert for Alertmanager's v2 API; labels identify it, annotations tell it."""
    subject = notice.subject
    annotations = {"summary": notice.title, "message": notice.message}
    for key, value in (("revision", notice.revision), ("author", notice.author), ("commit_url", notice.commit_url)):
        if value:
            annotations[key] = value
    alert: dict[str, Any] = {
        "labels": {
            "alertname": f"Moor{subject.kind}{notice.reason}",
            "severity": str(notice.severity),
            "reason": notice.reason,
            "kind": subject.kind,
            "namespace": subject.namespace,
            "name": subject.name,
        },
        "annotations": annotations,
        "startsAt": _timestamp(notice.at),
    }
    if notice.commit_url:
        alert["generatorURL"] = notice.commit_url
    address = credentials.address
    if urlsplit(address).path in ("", "/"):
        address = address.rstrip("/") + ALERTMANAGER_PATH
    return _post(address, [alert], _bearer(credentials))


# -- commit statuses -------------------------------------------------------------------------------


def status_description(notice: Notice, limit: int) -> str:
    """What the status says next to the commit: short, one line."""
    state = notice.commit_state
    if notice.happening is Happening.AWAITING_APPROVAL:
        text = "waiting for approval (moor approve)"
    elif state is CommitState.PENDING:
        text = "applying to the cluster"
    elif state is CommitState.SUCCESS:
        text = "applied and healthy"
    else:
        text = f"{notice.reason}: {notice.message}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_context(notice: Notice, context: str) -> str:
    return context or f"moor/{notice.subject.namespace}/{notice.subject.name}"


def _repository(notice: Notice) -> RepositoryAddress:
    address = repository_address(notice.repository_url) if notice.repository_url else None
    if address is None:
        raise NotDeliverable(
            f"{notice.object_name}: cannot set a commit status, the repository URL "
            f"{notice.repository_url or '(unknown)'!r} names no project on a web host"
        )
    return address


def render_github(notice: Notice, credentials: Credentials, context: str = "") -> Outgoing | None:
    """`POST /repos/{owner}/{repo}/statuses/{sha}` of the GitHub REST API."""
    state = notice.commit_state
    if state is None:
        return None
    owner_and_name = _repository(notice).owner_and_name
    if owner_and_name is None:
        raise NotDeliverable(
            f"{notice.object_name}: cannot set a GitHub commit status, the repository URL "
            f"{notice.repository_url!r} is not OWNER/REPO"
        )
    owner, name = owner_and_name
    url = f"{credentials.address.rstrip('/')}/repos/{owner}/{name}/statuses/{notice.commit}"
    document = {
        "state": str(state),
        "context": _status_context(notice, context),
        "description": status_description(notice, GITHUB_DESCRIPTION_LIMIT),
    }
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", **_bearer(credentials)}
    return _post(url, document, headers)


_GITLAB_STATES = {CommitState.PENDING: "pending", CommitState.SUCCESS: "success", CommitState.FAILURE: "failed"}


def render_gitlab(notice: Notice, credentials: Credentials, context: str = "") -> Outgoing | None:
    """`POST /api/v4/projects/{id}/statuses/{sha}` of the GitLab REST API (the id is the URL-encoded path)."""
    state = notice.commit_state
    if state is None:
        return None
    project = _repository(notice).project_id
    url = f"{credentials.address.rstrip('/')}/api/v4/projects/{project}/statuses/{notice.commit}"
    document = {
        "state": _GITLAB_STATES[state],
        "name": _status_context(notice, context),
        "description": status_description(notice, GITLAB_DESCRIPTION_LIMIT),
    }
    headers = {"PRIVATE-TOKEN": credentials.token} if credentials.token else {}
    return _post(url, document, headers)


_RENDERERS: dict[ProviderType, Callable[[Notice, Credentials, str], Outgoing | None]] = {
    ProviderType.GENERIC: render_generic,
    ProviderType.SLACK: render_slack,
    ProviderType.MSTEAMS: render_msteams,
    ProviderType.ALERTMANAGER: render_alertmanager,
    ProviderType.GITHUB: render_github,
    ProviderType.GITLAB: render_gitlab,
}

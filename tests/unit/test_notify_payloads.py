"""What each kind of Provider sends for a notice: URL, headers and body, and never a secret in a body."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from moor.notify.notices import CommitState, Notice, scrub
from moor.notify.payloads import Credentials, NotDeliverable, Outgoing, render, status_description
from moor.notify.specs import ProviderType
from moor.objects import ObjectRef
from moor.record.events import NORMAL, WARNING, RecordedEvent

SHA = "3f2a5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
REVISION = f"main@sha1:{SHA}"
AT = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
HOOK = "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"


def notice(
    reason: str = "Applied",
    type_: str = NORMAL,
    message: str = f"revision {REVISION}: 1 created, 0 configured, 0 pruned",
    *,
    kind: str = "Sync",
    url: str = "https://github.com/acme/shop.git",
    revision: str = REVISION,
) -> Notice:
    subject = ObjectRef("moor.dev", "v1", kind, "prod", "web")
    event = RecordedEvent(subject, type_, reason, message, AT, revision, "Jane Doe <jane@example.com>")
    return Notice.of(event, url)


def body(outgoing: Outgoing | None) -> Any:
    assert outgoing is not None
    return json.loads(outgoing.body)


def test_a_notice_says_what_to_which_object_at_which_revision_by_whom_with_a_link() -> None:
    text = notice().text()
    assert "Sync prod/web: revision applied" in text
    assert "revision main@3f2a5c6d7e8f by Jane Doe <jane@example.com>" in text
    assert f"https://github.com/acme/shop/commit/{SHA}" in text


def test_generic_webhook_is_signed_and_carries_every_field() -> None:
    credentials = Credentials("https://hooks.example.com/moor", token=TOKEN, hmac_key=b"signing-key")
    outgoing = render(ProviderType.GENERIC, notice(), credentials)
    assert outgoing is not None
    document = body(outgoing)
    assert document["involvedObject"] == {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "namespace": "prod",
        "name": "web",
    }
    assert (document["severity"], document["reason"], document["happening"]) == ("info", "Applied", "revision applied")
    assert document["revision"] == REVISION and document["commit"] == SHA
    assert document["author"] == "Jane Doe <jane@example.com>"
    assert document["commitUrl"] == f"https://github.com/acme/shop/commit/{SHA}"
    assert document["timestamp"] == "2024-06-01T12:30:00Z"
    expected = "sha256=" + hmac.new(b"signing-key", outgoing.body, hashlib.sha256).hexdigest()
    assert outgoing.headers["X-Moor-Signature"] == expected
    assert outgoing.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN.encode() not in outgoing.body and b"signing-key" not in outgoing.body
    assert outgoing.target == "https://hooks.example.com"


def test_unsigned_without_an_hmac_key() -> None:
    outgoing = render(ProviderType.GENERIC, notice(), Credentials("http://127.0.0.1:9/hook"))
    assert outgoing is not None and "X-Moor-Signature" not in outgoing.headers
    assert "Authorization" not in outgoing.headers


def test_secrets_in_a_message_are_scrubbed_before_sending() -> None:
    leaky = notice(
        type_=WARNING,
        reason="ApplyFailed",
        message=f"webhook {HOOK} refused {TOKEN}; clone https://bob:pa55w0rd@git.example.com/x.git password=hunter2",
    )
    outgoing = render(ProviderType.SLACK, leaky, Credentials(HOOK, token=TOKEN, address_is_secret=True))
    text = outgoing.body.decode() if outgoing else ""
    for secret in (HOOK, TOKEN, "XXXXXXXXXXXXXXXXXXXXXXXX", "pa55w0rd", "hunter2"):
        assert secret not in text
    assert "***" in text and "git.example.com/x.git" in text


def test_scrub() -> None:
    assert scrub("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert scrub("see https://u:p@host/repo") == "see https://host/repo"
    assert scrub("api_key=xyz123&x=1") == "api_key=***&x=1"
    assert scrub("the key abc is short", ["abc"]) == "the key abc is short", "too short to be a secret worth hiding"


def test_slack_message() -> None:
    failing = notice(type_=WARNING, reason="HealthCheckFailed", message="not healthy after 3m")
    document = body(render(ProviderType.SLACK, failing, Credentials(HOOK, address_is_secret=True)))
    assert document["text"] == "Sync prod/web: health degraded"
    [attachment] = document["attachments"]
    assert attachment["color"] == "danger"
    assert attachment["text"] == "not healthy after 3m"
    assert attachment["title_link"] == f"https://github.com/acme/shop/commit/{SHA}"
    fields = {field["title"]: field["value"] for field in attachment["fields"]}
    assert fields == {
        "Revision": f"<https://github.com/acme/shop/commit/{SHA}|main@3f2a5c6d7e8f>",
        "Author": "Jane Doe <jane@example.com>",
    }


def test_teams_adaptive_card() -> None:
    document = body(render(ProviderType.MSTEAMS, notice(), Credentials("https://x.webhook.office.com/abc")))
    assert document["type"] == "message"
    [attachment] = document["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == "Sync prod/web: revision applied"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Revision"] == "main@3f2a5c6d7e8f" and facts["Author"].startswith("Jane")
    assert card["actions"][0]["url"] == f"https://github.com/acme/shop/commit/{SHA}"


def test_alertmanager_alert() -> None:
    failing = notice(type_=WARNING, reason="RolledBack", message="revision x failed and was rolled back")
    outgoing = render(ProviderType.ALERTMANAGER, failing, Credentials("http://alertmanager:9093"))
    assert outgoing is not None and outgoing.url == "http://alertmanager:9093/api/v2/alerts"
    [alert] = body(outgoing)
    assert alert["labels"] == {
        "alertname": "MoorSyncRolledBack",
        "severity": "error",
        "reason": "RolledBack",
        "kind": "Sync",
        "namespace": "prod",
        "name": "web",
    }
    assert alert["annotations"]["summary"] == "Sync prod/web: rolled back"
    assert alert["annotations"]["revision"] == REVISION
    assert alert["startsAt"] == "2024-06-01T12:30:00Z"
    assert alert["generatorURL"] == f"https://github.com/acme/shop/commit/{SHA}"
    kept = render(ProviderType.ALERTMANAGER, failing, Credentials("http://am:9093/custom/alerts"))
    assert kept is not None and kept.url == "http://am:9093/custom/alerts"


@pytest.mark.parametrize(
    ("reason", "type_", "state"),
    [
        ("Progressing", NORMAL, CommitState.PENDING),
        ("ApprovalRequired", NORMAL, CommitState.PENDING),
        ("Applied", NORMAL, CommitState.SUCCESS),
        ("HealthCheckFailed", WARNING, CommitState.FAILURE),
        ("ValidationFailed", WARNING, CommitState.FAILURE),
        ("RolledBack", WARNING, CommitState.FAILURE),
        ("DependencyNotReady", WARNING, None),
        ("DriftDetected", WARNING, None),
        ("Approved", NORMAL, None),
    ],
)
def test_which_events_set_which_commit_state(reason: str, type_: str, state: CommitState | None) -> None:
    assert notice(reason, type_).commit_state is state


def test_no_commit_state_for_sources_or_without_a_commit() -> None:
    assert notice(kind="GitRepository").commit_state is None
    assert notice(revision="").commit_state is None


def test_github_commit_status() -> None:
    outgoing = render(ProviderType.GITHUB, notice("Progressing"), Credentials("https://api.github.com/", token=TOKEN))
    assert outgoing is not None
    assert outgoing.url == f"https://api.github.com/repos/acme/shop/statuses/{SHA}"
    assert outgoing.headers["Authorization"] == f"Bearer {TOKEN}"
    assert outgoing.headers["Accept"] == "application/vnd.github+json"
    assert body(outgoing) == {"state": "pending", "context": "moor/prod/web", "description": "applying to the cluster"}
    assert TOKEN.encode() not in outgoing.body


def test_github_failure_description_fits_140_characters() -> None:
    failing = notice("HealthCheckFailed", WARNING, message="not healthy: " + "x" * 300)
    document = body(render(ProviderType.GITHUB, failing, Credentials("https://api.github.com", token=TOKEN)))
    assert document["state"] == "failure"
    assert len(document["description"]) == 140 and document["description"].startswith("HealthCheckFailed: not healthy")


def test_gitlab_commit_status() -> None:
    gitlab = notice("Applied", url="git@gitlab.example.com:group/sub/shop.git")
    outgoing = render(ProviderType.GITLAB, gitlab, Credentials("https://gitlab.example.com", token=TOKEN))
    assert outgoing is not None
    assert outgoing.url == f"https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop/statuses/{SHA}"
    assert outgoing.headers["PRIVATE-TOKEN"] == TOKEN
    assert body(outgoing) == {"state": "success", "name": "moor/prod/web", "description": "applied and healthy"}
    failed = render(
        ProviderType.GITLAB,
        notice("RolledBack", WARNING, url=gitlab.repository_url),
        Credentials("https://g", token="t"),
    )
    assert body(failed)["state"] == "failed"


def test_commit_status_providers_ignore_other_news() -> None:
    drift = notice("DriftDetected", WARNING)
    assert render(ProviderType.GITHUB, drift, Credentials("https://api.github.com", token=TOKEN)) is None
    assert render(ProviderType.GITLAB, drift, Credentials("https://gitlab.com", token=TOKEN)) is None


@pytest.mark.parametrize(
    ("provider", "url", "words"),
    [
        (ProviderType.GITHUB, "file:///srv/git/shop.git", "names no project"),
        (ProviderType.GITHUB, "https://github.example.com/a/b/c.git", "not OWNER/REPO"),
        (ProviderType.GITLAB, "", "names no project"),
    ],
)
def test_commit_status_needs_a_project(provider: ProviderType, url: str, words: str) -> None:
    with pytest.raises(NotDeliverable, match=words):
        render(provider, notice(url=url), Credentials("https://api.example.com", token=TOKEN))


def test_status_descriptions() -> None:
    assert status_description(notice("ApprovalRequired"), 140) == "waiting for approval (moor approve)"
    assert status_description(notice("Applied"), 140) == "applied and healthy"

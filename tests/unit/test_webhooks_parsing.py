"""Webhook deliveries as GitHub, GitLab and scripts send them: signatures, tokens and push payloads."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from moor.web.push import (
    MalformedPayload,
    OtherEvent,
    PushEvent,
    Unauthorized,
    parse_push,
    sign,
    verify_signature,
)
from moor.web.receiver import SecretRef

SECRET = b"It's a Secret to Everybody"


def github_push(ref: str = "refs/heads/main", **repository: Any) -> dict[str, Any]:
    repository = repository or {
        "clone_url": "https://github.com/acme/apps.git",
        "ssh_url": "git@github.com:acme/apps.git",
        "html_url": "https://github.com/acme/apps",
    }
    return {"ref": ref, "before": "0" * 40, "after": "1" * 40, "repository": repository, "pusher": {"name": "x"}}


def gitlab_push(ref: str = "refs/heads/main") -> dict[str, Any]:
    return {
        "object_kind": "push",
        "ref": ref,
        "project": {
            "git_http_url": "https://gitlab.example.com/acme/apps.git",
            "git_ssh_url": "git@gitlab.example.com:acme/apps.git",
            "web_url": "https://gitlab.example.com/acme/apps",
        },
        "repository": {"git_http_url": "https://gitlab.example.com/acme/apps.git"},
    }


def body_of(document: Any) -> bytes:
    return json.dumps(document).encode()


# -- signatures ------------------------------------------------------------------------------------


def test_github_signature_of_the_raw_body_is_accepted() -> None:
    body = body_of(github_push())
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, SECRET)}
    assert verify_signature(headers, body, SECRET) == "github"


def test_the_example_from_githubs_documentation_verifies() -> None:
    # GitHub documents this secret, payload and digest for checking an implementation.
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    }
    assert verify_signature(headers, b"Hello, World!", SECRET) == "github"


def test_header_names_are_case_insensitive() -> None:
    body = b'{"repository": "https://git.example.com/a.git"}'
    assert verify_signature({"x-moor-signature-256": sign(body, SECRET)}, body, SECRET) == "generic"


@pytest.mark.parametrize(
    ("signature", "complaint"),
    [
        (None, "carries no X-Hub-Signature-256 header"),
        ("sha256=" + "0" * 64, "does not match the body"),
        ("sha1=" + "0" * 40, "not of the form sha256="),
        ("0" * 64, "not of the form sha256="),
        ("sha256=ünïcödé", "does not match the body"),
    ],
)
def test_github_bad_or_missing_signature_is_unauthorized(signature: str | None, complaint: str) -> None:
    body = body_of(github_push())
    headers = {"X-GitHub-Event": "push"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    with pytest.raises(Unauthorized, match=complaint) as raised:
        verify_signature(headers, body, SECRET)
    assert raised.value.status == 401


def test_a_body_changed_after_signing_is_unauthorized() -> None:
    body = body_of(github_push())
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, SECRET)}
    with pytest.raises(Unauthorized):
        verify_signature(headers, body.replace(b"main", b"evil"), SECRET)


def test_a_signature_made_with_another_secret_is_unauthorized() -> None:
    body = body_of(github_push())
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, b"guess")}
    with pytest.raises(Unauthorized):
        verify_signature(headers, body, SECRET)


def test_the_error_never_repeats_the_signature_or_the_secret() -> None:
    body = b"{}"
    wrong = sign(body, b"guess")
    with pytest.raises(Unauthorized) as raised:
        verify_signature({"X-Moor-Signature-256": wrong}, body, SECRET)
    assert wrong[7:] not in str(raised.value)
    assert SECRET.decode() not in str(raised.value)


def test_gitlab_token_is_compared_not_signed() -> None:
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()}
    assert verify_signature(headers, b"anything", SECRET) == "gitlab"
    with pytest.raises(Unauthorized, match="does not match"):
        verify_signature({**headers, "X-Gitlab-Token": "guess"}, b"anything", SECRET)
    with pytest.raises(Unauthorized, match="carries no X-Gitlab-Token"):
        verify_signature({"X-Gitlab-Event": "Push Hook"}, b"anything", SECRET)


def test_an_empty_secret_authorizes_nothing() -> None:
    with pytest.raises(Unauthorized):
        verify_signature({"X-Moor-Signature-256": sign(b"{}", b"")}, b"{}", b"")


# -- payloads --------------------------------------------------------------------------------------


def test_github_push_gives_every_repository_url_and_the_ref() -> None:
    event = parse_push({"X-GitHub-Event": "push"}, body_of(github_push("refs/tags/v1.2.0")))
    assert event == PushEvent(
        "github",
        ("https://github.com/acme/apps.git", "git@github.com:acme/apps.git", "https://github.com/acme/apps"),
        "refs/tags/v1.2.0",
    )


def test_github_form_encoded_delivery_reads_the_payload_field() -> None:
    body = urlencode({"payload": json.dumps(github_push())}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}
    event = parse_push(headers, body)
    assert isinstance(event, PushEvent)
    assert event.ref == "refs/heads/main"


def test_github_json_sent_as_a_form_type_is_read_as_json() -> None:
    # `curl --data` labels any body application/x-www-form-urlencoded.
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}
    event = parse_push(headers, body_of(github_push()))
    assert isinstance(event, PushEvent)
    assert event.ref == "refs/heads/main"


def test_github_ping_and_other_events_are_not_pushes() -> None:
    assert parse_push({"X-GitHub-Event": "ping"}, b"{}") == OtherEvent("github", "ping")
    assert parse_push({"X-GitHub-Event": "issues"}, b"not even json") == OtherEvent("github", "issues")


def test_gitlab_push_and_tag_push_hooks() -> None:
    event = parse_push({"X-Gitlab-Event": "Push Hook"}, body_of(gitlab_push()))
    assert event == PushEvent(
        "gitlab",
        (
            "https://gitlab.example.com/acme/apps.git",
            "git@gitlab.example.com:acme/apps.git",
            "https://gitlab.example.com/acme/apps",
        ),
        "refs/heads/main",
    )
    tag = parse_push({"X-Gitlab-Event": "Tag Push Hook"}, body_of(gitlab_push("refs/tags/v2")))
    assert isinstance(tag, PushEvent)
    assert tag.ref == "refs/tags/v2"
    assert parse_push({"X-Gitlab-Event": "Merge Request Hook"}, b"{}") == OtherEvent("gitlab", "Merge Request Hook")


def test_generic_push_with_and_without_a_ref() -> None:
    body = body_of({"repository": "https://git.example.com/a.git", "ref": "refs/heads/main"})
    assert parse_push({}, body) == PushEvent("generic", ("https://git.example.com/a.git",), "refs/heads/main")
    any_ref = parse_push({}, body_of({"repository": "https://git.example.com/a.git"}))
    assert any_ref == PushEvent("generic", ("https://git.example.com/a.git",), None)


@pytest.mark.parametrize(
    ("headers", "body", "sentence"),
    [
        ({"X-GitHub-Event": "push"}, b"{not json", "the body is not valid JSON"),
        ({"X-GitHub-Event": "push"}, b"[1, 2]", "the body is not a JSON object"),
        ({"X-GitHub-Event": "push"}, b"\xff\xfe", "the body is not valid JSON"),
        ({"X-GitHub-Event": "push"}, b"[" * 100_000, "the body is not valid JSON"),
        ({"X-GitHub-Event": "push"}, body_of({"repository": {}}), "has no ref"),
        ({"X-GitHub-Event": "push"}, body_of({"ref": "refs/heads/main"}), "has no repository object"),
        ({"X-GitHub-Event": "push"}, body_of(github_push(clone_url=7)), "has no clone_url, ssh_url or html_url"),
        (
            {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"},
            b"other=1",
            "the body is not valid JSON",
        ),
        (
            {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"},
            b"payload=%7B",
            "the body is not valid JSON",
        ),
        ({"X-Gitlab-Event": "Push Hook"}, body_of({"ref": "refs/heads/main"}), "has no project.git_http_url"),
        ({}, body_of({"ref": "refs/heads/main"}), 'has no "repository" URL'),
        ({}, body_of({"repository": "https://x/a", "ref": "main"}), "not a full ref"),
        ({}, body_of({"repository": ["https://x/a"]}), 'has no "repository" URL'),
    ],
)
def test_malformed_payloads_are_refused_with_one_sentence(headers: dict[str, str], body: bytes, sentence: str) -> None:
    with pytest.raises(MalformedPayload, match=sentence) as raised:
        parse_push(headers, body)
    assert raised.value.status == 400
    assert "\n" not in str(raised.value)


# -- configuration ---------------------------------------------------------------------------------


def test_secret_ref_with_and_without_a_namespace() -> None:
    assert SecretRef.parse("hooks/github", "moor-system") == SecretRef("hooks", "github")
    assert SecretRef.parse("moor-webhook", "moor-system") == SecretRef("moor-system", "moor-webhook")
    assert str(SecretRef.parse("moor-webhook", "ops")) == "ops/moor-webhook"


@pytest.mark.parametrize("text", ["", "a/b/c", "Upper/case", "ns/", "-bad"])
def test_secret_ref_refuses_what_is_not_a_secret_name(text: str) -> None:
    with pytest.raises(ValueError, match="is not NAMESPACE/NAME"):
        SecretRef.parse(text, "moor-system")

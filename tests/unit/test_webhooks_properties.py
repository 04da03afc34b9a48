"""Properties of the webhook's pure parts over generated input: whatever a client sends, the receiver
answers with one of its own errors (never a crash), only the right signature passes, and a URL keeps
its identity however it is spelled."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from moor.web.push import (
    MalformedPayload,
    OtherEvent,
    PushEvent,
    Unauthorized,
    normalise_url,
    parse_push,
    sign,
    verify_signature,
)
from moor.web.ratelimit import RateLimiter

EXAMPLES = settings(max_examples=300, deadline=None)

PROVIDER_HEADERS = st.sampled_from(
    [
        {"X-GitHub-Event": "push"},
        {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"},
        {"X-GitHub-Event": "ping"},
        {"X-Gitlab-Event": "Push Hook"},
        {"X-Gitlab-Event": "Tag Push Hook"},
        {},
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
PAYLOAD_KEYS = st.sampled_from(
    ["ref", "repository", "project", "clone_url", "ssh_url", "html_url", "git_http_url", "git_ssh_url", "payload"]
)
# Documents shaped like real payloads (the right keys, values of any type), which reach deeper than random bytes.
PAYLOAD_LIKE = st.recursive(
    st.none() | st.integers() | st.text(max_size=30) | st.just("refs/heads/main"),
    lambda children: st.dictionaries(PAYLOAD_KEYS, children, max_size=5) | st.lists(children, max_size=3),
    max_leaves=12,
)


def _accepted_or_refused(headers: dict[str, str], body: bytes) -> None:
    try:
        event = parse_push(headers, body)
    except MalformedPayload as error:
        assert error.status == 400
        assert str(error) and "\n" not in str(error)
        return
    assert isinstance(event, PushEvent | OtherEvent)
    if isinstance(event, PushEvent):
        assert event.repository_urls, "a push always names its repository"
        assert all(isinstance(url, str) and url for url in event.repository_urls)
        assert event.ref is None or isinstance(event.ref, str)


@EXAMPLES
@given(headers=PROVIDER_HEADERS, body=st.binary(max_size=512))
@example(headers={"X-GitHub-Event": "push"}, body=b"[" * 50_000)
@example(headers={}, body=b'{"repository": "x", "ref": 1}')
def test_parse_push_of_arbitrary_bytes_returns_an_event_or_a_400(headers: dict[str, str], body: bytes) -> None:
    _accepted_or_refused(headers, body)


@EXAMPLES
@given(headers=PROVIDER_HEADERS, document=PAYLOAD_LIKE)
def test_parse_push_of_payload_shaped_json_returns_an_event_or_a_400(headers: dict[str, str], document: Any) -> None:
    _accepted_or_refused(headers, json.dumps(document).encode())


@EXAMPLES
@given(headers=PROVIDER_HEADERS, document=JSON_VALUES)
def test_parse_push_of_any_json_returns_an_event_or_a_400(headers: dict[str, str], document: Any) -> None:
    _accepted_or_refused(headers, json.dumps(document).encode())


URL_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/:@?#[]"), min_size=1)


@EXAMPLES
@given(
    ref=st.from_regex(r"refs/(heads|tags)/[a-z0-9][a-z0-9._/-]{0,30}", fullmatch=True),
    clone_url=st.builds(lambda s: f"https://git.example.com/{s}.git", URL_TEXT),
)
def test_a_github_push_round_trips(ref: str, clone_url: str) -> None:
    body = json.dumps({"ref": ref, "repository": {"clone_url": clone_url}}).encode()
    assert parse_push({"X-GitHub-Event": "push"}, body) == PushEvent("github", (clone_url,), ref)


@EXAMPLES
@given(body=st.binary(max_size=256), secret=st.binary(min_size=1, max_size=64), other=st.binary(max_size=64))
def test_only_the_signature_made_with_the_secret_passes(body: bytes, secret: bytes, other: bytes) -> None:
    signed = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, secret)}
    assert verify_signature(signed, body, secret) == "github"
    # HMAC pads keys with zero bytes to its block size, so b"k" and b"k\0" are one key: not a forgery.
    if other.rstrip(b"\0") != secret.rstrip(b"\0"):
        forged = {"X-Moor-Signature-256": sign(body, other)}
        try:
            verify_signature(forged, body, secret)
        except Unauthorized:
            return
        raise AssertionError("a signature made with another secret passed")


SIGNATURE_HEADERS = [
    "X-GitHub-Event",
    "X-Hub-Signature-256",
    "X-Gitlab-Event",
    "X-Gitlab-Token",
    "X-Moor-Signature-256",
]


@EXAMPLES
@given(headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), st.text(max_size=80)), body=st.binary(max_size=64))
@example(headers={"X-Moor-Signature-256": "sha256=\udcff\ud800"}, body=b"")
def test_any_header_text_is_refused_with_a_401_never_a_crash(headers: dict[str, str], body: bytes) -> None:
    try:
        verify_signature(headers, body, b"s3cr3t")
    except Unauthorized as error:
        assert error.status == 401
        assert "s3cr3t" not in str(error)
        return
    raise AssertionError(f"random headers passed: {headers}")


HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
SEGMENTS = st.lists(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True), min_size=1, max_size=4)


@EXAMPLES
@given(host=HOSTS, segments=SEGMENTS, port=st.integers(1, 65535), user=st.sampled_from(["git", "deploy", "x-token"]))
def test_every_transport_spelling_of_a_repository_normalises_alike(
    host: str, segments: list[str], port: int, user: str
) -> None:
    path = "/".join(segments).removesuffix(".git")
    spellings = [
        f"https://{host}/{path}",
        f"https://{host}/{path}.git",
        f"http://{user}:pw@{host.upper()}:{port}/{path}/",
        f"ssh://{user}@{host}:{port}/{path}.git",
        f"{user}@{host}:{path}.git",
    ]
    assert len({normalise_url(spelling) for spelling in spellings}) == 1


@EXAMPLES
@given(st.text(max_size=200))
def test_normalise_url_never_raises(text: str) -> None:
    assert isinstance(normalise_url(text), str)


@EXAMPLES
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 40),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=200),
)
def test_the_limiter_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, burst, clock=lambda: now[0])
    allowed = 0
    for gap in gaps:
        now[0] += gap
        allowed += limiter.check("client").allowed
    assert allowed <= burst + rate * now[0] + 1e-6

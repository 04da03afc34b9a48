"""More hostile webhook deliveries than test_webhooks_properties covers: GitHub's form encoding, header
spelling, and payloads with absurd values. `parse_push` answers each with an event or a 400, never a crash."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import example, given, settings
from hypothesis import strategies as st

from moor.web.push import MalformedPayload, OtherEvent, PushEvent, parse_push, select_repositories

FUZZ = settings(max_examples=300, deadline=timedelta(seconds=2))
FORM = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}


def event_or_400(headers: dict[str, str], body: bytes) -> PushEvent | OtherEvent | None:
    try:
        return parse_push(headers, body)
    except MalformedPayload as error:
        assert error.status == 400 and str(error) and "\n" not in str(error)
        return None


@FUZZ
@given(st.binary(max_size=512))
@example(b"%FF%FE%00")
@example(b"%5B" * 50_000)  # "[[[[…": deeper than the JSON decoder recurses
@example(b"1" * 5000)  # an integer of 5000 digits
@example(b"%7B%7D&payload=%7B%7D")
def test_a_form_payload_of_any_bytes_gives_an_event_or_a_400(raw: bytes) -> None:
    event_or_400(FORM, b"payload=" + quote_from_bytes(raw).encode())
    event_or_400(FORM, b"payload=" + raw)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(ref=JSON_VALUES, urls=st.dictionaries(st.sampled_from(["clone_url", "ssh_url", "html_url"]), JSON_VALUES))
@example(ref="refs/heads/main", urls={"clone_url": "\ud800"})
@example(ref="refs/heads/" + "a" * 10_000, urls={"clone_url": " "})
def test_a_github_form_push_with_values_of_any_type(ref: Any, urls: dict[str, Any]) -> None:
    document = json.dumps({"ref": ref, "repository": urls})
    event = event_or_400(FORM, b"payload=" + quote_from_bytes(document.encode("utf-8", "surrogatepass")).encode())
    if isinstance(event, PushEvent):
        assert event.ref == ref
        assert all(isinstance(url, str) and url.strip() == url and url for url in event.repository_urls)
        # What the receiver then does with the URLs never raises either.
        select_repositories(event, REPOSITORIES)


REPOSITORIES = [
    {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "moor-system"},
        "spec": {"url": url, "ref": ref},
    }
    for name, url, ref in [
        ("apps", "https://github.com/acme/apps.git", {"branch": "main"}),
        ("tags", "git@github.com:acme/apps.git", {"semver": ">=1.0.0"}),
        ("odd", "file:///\ud800", {"tag": "v1"}),
    ]
]

HEADER_NAMES = st.sampled_from(
    ["X-GitHub-Event", "x-github-event", "X-GITHUB-EVENT", "X-Gitlab-Event", "x-gitlab-event"]
)


@FUZZ
@given(name=HEADER_NAMES, value=st.text(max_size=30), body=st.binary(max_size=128))
@example(name="x-github-event", value="PUSH ", body=b'{"ref": "refs/heads/main", "repository": {"clone_url": "u"}}')
@example(name="X-Gitlab-Event", value="\x00", body=b"{}")
def test_header_names_and_values_in_any_spelling(name: str, value: str, body: bytes) -> None:
    event_or_400({name: value}, body)

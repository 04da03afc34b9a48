"""Push deliveries, pure: which Git host sent a request, whether its signature is right, what was
pushed, and which GitRepositories that concerns. Headers and bytes in, values out: no HTTP server and no
cluster here (those are `moor.web.receiver`'s).

The errors are those of these checks (a bad signature, a bad payload); each carries the HTTP status the
receiver answers it with, and the receiver's own (size, time, availability) derive from WebhookError too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.source.urls import ScpLikeUrl, repository_path

GITHUB_EVENT = "X-GitHub-Event"
GITHUB_SIGNATURE = "X-Hub-Signature-256"
GITLAB_EVENT = "X-Gitlab-Event"
GITLAB_TOKEN = "X-Gitlab-Token"
MOOR_SIGNATURE = "X-Moor-Signature-256"

Provider = Literal["github", "gitlab", "generic"]

_GITHUB_URL_FIELDS = ("clone_url", "ssh_url", "html_url", "git_url", "url")
_GITLAB_PROJECT_URL_FIELDS = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
_GITLAB_REPOSITORY_URL_FIELDS = ("git_http_url", "git_ssh_url", "homepage", "url")
_GITLAB_PUSH_EVENTS = ("push hook", "tag push hook")


class WebhookError(MoorError):
    """A request the receiver refuses; the message is one sentence, safe to send back."""

    status = 400


class Unauthorized(WebhookError):
    status = 401


class MalformedPayload(WebhookError):
    status = 400


@dataclass(frozen=True)
class PushEvent:
    """A push to one repository, known by every URL the host gave for it."""

    provider: Provider
    repository_urls: tuple[str, ...]
    ref: str | None
    """The pushed ref (`refs/heads/main`, `refs/tags/v1.2.0`); None when the sender named none (any ref)."""


@dataclass(frozen=True)
class OtherEvent:
    """A delivery that is not a push (GitHub's `ping`, an issue comment…): answered, never acted on."""

    provider: Provider
    event: str


# -- which host, is it signed, what was pushed -----------------------------------------------------


def detect_provider(headers: Mapping[str, str]) -> Provider:
    """GitHub and GitLab are known by their event header; everything else is the generic form."""
    lowered = _lower_keys(headers)
    if GITHUB_EVENT.lower() in lowered:
        return "github"
    if GITLAB_EVENT.lower() in lowered:
        return "gitlab"
    return "generic"


def sign(body: bytes, secret: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256>` (GitHub's and Moor's form)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(headers: Mapping[str, str], body: bytes, secret: bytes) -> Provider:
    """Checks the sender knows `secret`: an HMAC of the raw body, or GitLab's token; raises Unauthorized.

    Comparisons take constant time. Returns the provider the headers name.
    """
    if not secret:
        raise Unauthorized("the receiver has no token to check requests against")
    lowered = _lower_keys(headers)
    provider = detect_provider(lowered)
    if provider == "gitlab":
        token = lowered.get(GITLAB_TOKEN.lower())
        if token is None:
            raise Unauthorized(f"the request carries no {GITLAB_TOKEN} header")
        if not hmac.compare_digest(_as_bytes(token.strip()), secret):
            raise Unauthorized(f"the {GITLAB_TOKEN} header does not match the receiver's token")
        return provider
    header = GITHUB_SIGNATURE if provider == "github" else MOOR_SIGNATURE
    given = lowered.get(header.lower())
    if given is None:
        raise Unauthorized(f"the request carries no {header} header")
    scheme, separator, digest = given.strip().partition("=")
    if not separator or scheme.lower() != "sha256":
        raise Unauthorized(f"the {header} header is not of the form sha256=<hex digest>")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(_as_bytes(digest.strip().lower()), expected.encode()):
        raise Unauthorized(f"the {header} header does not match the body signed with the receiver's token")
    return provider


def parse_push(headers: Mapping[str, str], body: bytes) -> PushEvent | OtherEvent:
    """What a delivery says: a push (repository URLs and ref) or another event; raises MalformedPayload."""
    lowered = _lower_keys(headers)
    provider = detect_provider(lowered)
    if provider == "github":
        event = lowered[GITHUB_EVENT.lower()].strip().lower()
        if event != "push":
            return OtherEvent(provider, event)
        return _github_push(_github_document(lowered, body))
    if provider == "gitlab":
        event = lowered[GITLAB_EVENT.lower()].strip()
        if event.lower() not in _GITLAB_PUSH_EVENTS:
            return OtherEvent(provider, event)
        return _gitlab_push(json_object(body))
    return _generic_push(json_object(body))


def _github_document(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """GitHub sends JSON, or (when so configured) a form whose field `payload` holds the JSON.

    A form-typed body without that field is read as JSON: that is what `curl --data` sends.
    """
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded" and body.startswith(b"payload="):
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise MalformedPayload("the form body is not valid UTF-8 url-encoded text") from None
        return json_object(form["payload"][0].encode("utf-8"))
    return json_object(body)


def _github_push(document: Mapping[str, Any]) -> PushEvent:
    ref = _required_ref(document)
    repository = document.get("repository")
    if not isinstance(repository, Mapping):
        raise MalformedPayload("the push payload has no repository object")
    urls = _strings(repository, _GITHUB_URL_FIELDS)
    if not urls:
        raise MalformedPayload("the push payload's repository has no clone_url, ssh_url or html_url")
    return PushEvent("github", urls, ref)


def _gitlab_push(document: Mapping[str, Any]) -> PushEvent:
    ref = _required_ref(document)
    urls: tuple[str, ...] = ()
    for key, fields in (("project", _GITLAB_PROJECT_URL_FIELDS), ("repository", _GITLAB_REPOSITORY_URL_FIELDS)):
        section = document.get(key)
        if isinstance(section, Mapping):
            urls += tuple(url for url in _strings(section, fields) if url not in urls)
    if not urls:
        raise MalformedPayload("the push payload has no project.git_http_url or project.git_ssh_url")
    return PushEvent("gitlab", urls, ref)


def _generic_push(document: Mapping[str, Any]) -> PushEvent:
    repository = document.get("repository")
    if not isinstance(repository, str) or not repository.strip():
        raise MalformedPayload('the payload has no "repository" URL')
    ref = document.get("ref")
    if ref is None:
        return PushEvent("generic", (repository.strip(),), None)
    if not isinstance(ref, str) or not ref.startswith("refs/"):
        raise MalformedPayload('the payload\'s "ref" is not a full ref such as refs/heads/main')
    return PushEvent("generic", (repository.strip(),), ref)


def _required_ref(document: Mapping[str, Any]) -> str:
    ref = document.get("ref")
    if not isinstance(ref, str) or not ref:
        raise MalformedPayload("the push payload has no ref")
    return ref


def json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise MalformedPayload("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedPayload("the body is not a JSON object")
    return document


def _strings(section: Mapping[str, Any], fields: Iterable[str]) -> tuple[str, ...]:
    """The non-empty string values of `fields`, in order, without repeats."""
    found: list[str] = []
    for name in fields:
        value = section.get(name)
        if isinstance(value, str) and value.strip() and value.strip() not in found:
            found.append(value.strip())
    return tuple(found)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _as_bytes(text: str) -> bytes:
    """Header text as bytes for a constant-time comparison (which takes non-ASCII text only as bytes)."""
    return text.encode("utf-8", "replace")


# -- which GitRepositories a push concerns ---------------------------------------------------------


def normalise_url(url: str) -> str:
    """One spelling per repository, so that the URLs a host sends compare equal to a `spec.url`.

    `https://user@Host:443/org/app.git/`, `ssh://git@host:2222/org/app`, `git@host:org/app.git` and
    `http://host/org/app` all become `host/org/app`: scheme, user, password, port, query, a `.git`
    suffix and trailing slashes go, and the result is lower case (GitHub and GitLab treat paths so).
    `file:///srv/app.git` becomes `/srv/app`. The scp-like form is read with the grammar GitRepositories
    are checked with (`moor.source.urls.ScpLikeUrl`), which wants a path: `git@host:` is not scp-like,
    so it is no `host/…` and matches no repository on that host. Never raises: text that is neither
    scp-like nor has a scheme is a local path, just cleaned up.
    """
    text = url.strip()
    host, path = "", text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        authority, slash, after = rest.partition("/")
        path = re.split(r"[?#]", slash + after, maxsplit=1)[0]
        host = "" if scheme.lower() == "file" else _host_of(authority)
    elif (scp := ScpLikeUrl.parse(text)) is not None:
        host, path = scp.host.strip("[]"), scp.path
    path = repository_path(path)
    if host:
        return f"{host}/{path.lstrip('/')}".lower()
    return path.lower()


def _host_of(authority: str) -> str:
    """The host of `user:password@host:port` (brackets of an IPv6 address removed)."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.partition(":")[0]


def ref_matches(pushed: str | None, ref: object) -> bool:
    """Whether a push of `pushed` can change the revision a GitRepository's `spec.ref` names.

    A branch matches a push of that branch; a tag a push of that tag; a semver range a push of any
    tag; a fixed commit never (its revision cannot change). A push that names no ref matches all.
    """
    if not isinstance(ref, Mapping):
        return False
    if pushed is None:
        return True
    branch, tag = ref.get("branch"), ref.get("tag")
    if isinstance(branch, str):
        return pushed in (f"refs/heads/{branch}", branch)
    if isinstance(tag, str):
        return pushed in (f"refs/tags/{tag}", tag)
    if isinstance(ref.get("semver"), str):
        return pushed.startswith("refs/tags/")
    return False


def select_repositories(event: PushEvent, repositories: Iterable[KubeObject]) -> list[KubeObject]:
    """The GitRepositories (not suspended) whose `spec.url` is the pushed repository and whose ref it moves."""
    pushed = {normalise_url(url) for url in event.repository_urls} - {""}
    chosen = []
    for repository in repositories:
        spec = repository.get("spec")
        if not isinstance(spec, Mapping) or spec.get("suspend") is True:
            continue
        url = spec.get("url")
        if isinstance(url, str) and normalise_url(url) in pushed and ref_matches(event.ref, spec.get("ref")):
            chosen.append(repository)
    return sorted(chosen, key=lambda obj: (ObjectRef.of(obj).namespace, ObjectRef.of(obj).name))

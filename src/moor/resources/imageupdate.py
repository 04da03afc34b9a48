"""An ImageUpdate's spec as a typed value: which repository and branch to write, how to commit and push."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from moor.automation.message import DEFAULT_TEMPLATE, TemplateError, check_template
from moor.resources.fields import FieldReader
from moor.resources.gitrepository import REF_NAME_PATTERN
from moor.resources.kinds import GITREPOSITORY

DEFAULT_INTERVAL = timedelta(minutes=1)
DEFAULT_AUTHOR_NAME = "Moor"
DEFAULT_AUTHOR_EMAIL = "moor@moor.invalid"
PER_POLICY_BRANCH_PREFIX = "moor/image-"


class PushStrategy(StrEnum):
    BRANCH = "Branch"
    """One commit with every change, pushed to `git.push.branch`."""
    PER_POLICY = "PerPolicy"
    """One branch per policy (`moor/image-<policy>`) for review, each from the checkout branch."""


@dataclass(frozen=True)
class SigningKeySpec:
    secret_name: str
    """A Secret whose `identity` is an SSH private key or whose `git.asc` is an armoured GPG private key."""


@dataclass(frozen=True)
class ImageUpdateSpec:
    repository: str
    """The GitRepository (same namespace) whose URL and credentials are used; they need write access."""
    checkout_branch: str | None
    """None: the GitRepository's branch."""
    push_branch: str | None
    """None: the checkout branch."""
    strategy: PushStrategy = PushStrategy.BRANCH
    path: str = "."
    author_name: str = DEFAULT_AUTHOR_NAME
    author_email: str = DEFAULT_AUTHOR_EMAIL
    message_template: str = DEFAULT_TEMPLATE
    signing_key: SigningKeySpec | None = None
    interval: timedelta = DEFAULT_INTERVAL
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ImageUpdateSpec:
        """Reads and checks an ImageUpdate custom resource, filling in the CRD's defaults."""
        spec = FieldReader.spec_of(obj)
        source = spec.child("sourceRef")
        if source is None:
            raise spec.error("sourceRef", "is required: name the GitRepository to write to")
        kind = source.optional_str("kind") or GITREPOSITORY.kind
        if kind != GITREPOSITORY.kind:
            raise source.error("kind", f"must be {GITREPOSITORY.kind}, not {kind!r}")
        git = spec.child("git") or FieldReader(spec.obj, spec.field("git"), {})
        checkout = git.child("checkout")
        push = git.child("push")
        commit = git.child("commit")
        author = commit.child("author") if commit else None
        template = (commit.optional_str("messageTemplate", max_length=8192) if commit else None) or DEFAULT_TEMPLATE
        if commit is not None:
            try:
                check_template(template)
            except TemplateError as error:
                raise commit.error("messageTemplate", str(error)) from None
        signing = commit.child("signingKey") if commit else None
        signing_secret = signing.child("secretRef") if signing else None
        if signing is not None and signing_secret is None:
            raise signing.error("secretRef", "is required: name the Secret holding the signing key")
        if push is not None and push.has("branch") and push.data.get("strategy") == PushStrategy.PER_POLICY:
            raise push.error("branch", "is for strategy Branch: PerPolicy pushes to moor/image-<namespace>-<policy>")
        update = spec.child("update")
        path = (update.optional_str("path", max_length=1024) if update else None) or "."
        if path.startswith("/") or ".." in path.split("/"):
            raise (update or spec).error("path", f"must be a relative path inside the repository, not {path!r}")
        return cls(
            repository=source.required_name("name"),
            checkout_branch=checkout.optional_str("branch", pattern=REF_NAME_PATTERN, max_length=255)
            if checkout
            else None,
            push_branch=push.optional_str("branch", pattern=REF_NAME_PATTERN, max_length=255) if push else None,
            strategy=push.choice("strategy", PushStrategy, PushStrategy.BRANCH) if push else PushStrategy.BRANCH,
            path=path,
            author_name=(author.optional_str("name", max_length=256) if author else None) or DEFAULT_AUTHOR_NAME,
            author_email=(author.optional_str("email", max_length=256) if author else None) or DEFAULT_AUTHOR_EMAIL,
            message_template=template,
            signing_key=SigningKeySpec(signing_secret.required_name("name")) if signing_secret else None,
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            suspend=spec.boolean("suspend", False),
        )

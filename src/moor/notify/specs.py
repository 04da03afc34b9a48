"""Provider and Alert specs as typed values: pure parsing, with the CRDs' defaults filled in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from moor.objects import ObjectRef
from moor.resources import GITREPOSITORY, HELMREPOSITORY, OCIREPOSITORY, SYNC
from moor.resources.fields import DNS1123_LABEL, FieldReader

DEFAULT_TIMEOUT = timedelta(seconds=15)
SOURCE_KINDS = (SYNC.kind, GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind)
ANY_NAME = "*"


class ProviderType(StrEnum):
    GENERIC = "generic"
    SLACK = "slack"
    MSTEAMS = "msteams"
    GITHUB = "github"
    GITLAB = "gitlab"
    ALERTMANAGER = "alertmanager"

    @property
    def sets_commit_status(self) -> bool:
        return self in (ProviderType.GITHUB, ProviderType.GITLAB)

    @property
    def default_address(self) -> str:
        """The public service's API, for providers that have one."""
        return {ProviderType.GITHUB: "https://api.github.com", ProviderType.GITLAB: "https://gitlab.com"}.get(self, "")


class Severity(StrEnum):
    INFO = "info"
    ERROR = "error"


@dataclass(frozen=True)
class ProviderSpec:
    type: ProviderType
    address: str | None
    """Not a secret (the Secret's `address` wins when both are set)."""
    secret_name: str | None
    timeout: timedelta = DEFAULT_TIMEOUT
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ProviderSpec:
        spec = FieldReader.spec_of(obj)
        provider_type = spec.choice("type", ProviderType, ProviderType.GENERIC)
        if not spec.has("type"):
            raise spec.error("type", "is required")
        address = spec.optional_str("address", max_length=2048)
        if address is not None and not re.match(r"https?://[^\s/]+", address):
            raise spec.error("address", "must be an http:// or https:// URL")
        if address is not None and provider_type in (ProviderType.SLACK, ProviderType.MSTEAMS):
            raise spec.error(
                "address", "holds a webhook URL, which is a credential: put it in the Secret (key address)"
            )
        secret = spec.child("secretRef")
        secret_name = secret.required_name("name") if secret is not None else None
        if provider_type.sets_commit_status and secret_name is None:
            raise spec.error("secretRef", "is required for a github or gitlab provider (a Secret with the key token)")
        if address is None and secret_name is None and not provider_type.default_address:
            raise spec.error("address", "or spec.secretRef (a Secret with the key address) is required")
        return cls(
            type=provider_type,
            address=address,
            secret_name=secret_name,
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            suspend=spec.boolean("suspend", False),
        )


@dataclass(frozen=True)
class EventSource:
    kind: str
    name: str
    """An object name, or `*` for every object of the kind in the namespace."""
    namespace: str

    def matches(self, subject: ObjectRef) -> bool:
        return (
            subject.kind == self.kind
            and subject.namespace == self.namespace
            and (self.name == ANY_NAME or self.name == subject.name)
        )


@dataclass(frozen=True)
class AlertSpec:
    provider_name: str
    sources: tuple[EventSource, ...]
    severity: Severity = Severity.INFO
    exclusions: tuple[re.Pattern[str], ...] = ()
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> AlertSpec:
        spec = FieldReader.spec_of(obj)
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        provider = spec.child("providerRef")
        if provider is None:
            raise spec.error("providerRef", "is required")
        sources = []
        for entry in spec.items("eventSources"):
            kind = entry.required_str("kind")
            if kind not in SOURCE_KINDS:
                raise entry.error("kind", f"must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
            name = entry.required_str("name", max_length=253)
            source_namespace = entry.name("namespace", label=True) or namespace
            if name != ANY_NAME and not DNS1123_LABEL.fullmatch(name.replace(".", "-")):
                raise entry.error("name", f"must be an object name or '*', not {name!r}")
            sources.append(EventSource(kind, name, source_namespace))
        if not sources:
            raise spec.error("eventSources", "must name at least one object")
        exclusions = []
        for index, pattern in enumerate(spec.strings("exclusionList")):
            try:
                exclusions.append(re.compile(pattern))
            except re.error as error:
                raise spec.error(f"exclusionList[{index}]", f"is not a regular expression: {error}") from None
        return cls(
            provider_name=provider.required_name("name"),
            sources=tuple(sources),
            severity=spec.choice("eventSeverity", Severity, Severity.INFO),
            exclusions=tuple(exclusions),
            suspend=spec.boolean("suspend", False),
        )

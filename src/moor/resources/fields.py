"""Reads typed fields out of a custom resource's spec, naming the object and the field when one is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from moor.errors import MoorError
from moor.resources.durations import DurationError, parse_duration

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

E = TypeVar("E", bound=StrEnum)


class SpecError(MoorError):
    """A custom resource whose spec Moor cannot use; the message names the object and the field."""

    def __init__(self, obj: str, field: str, problem: str) -> None:
        super().__init__(f"{obj}: {field} {problem}")
        self.obj = obj
        self.field = field
        self.problem = problem


def describe(obj: Mapping[str, Any]) -> str:
    """`Sync moor-system/guestbook`: how errors name a custom resource."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or ""
    name = metadata.get("name") or "<unnamed>"
    where = f"{namespace}/" if namespace else ""
    return f"{obj.get('kind') or 'object'} {where}{name}"


class FieldReader:
    """A view of one mapping in a spec at a known path (`spec.drift`), with typed, checked getters."""

    def __init__(self, obj: str, path: str, data: object) -> None:
        self.obj = obj
        self.path = path
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SpecError(obj, path, f"must be an object, not {_show(data)}")
        self.data: Mapping[str, Any] = data

    @classmethod
    def spec_of(cls, obj: Mapping[str, Any]) -> FieldReader:
        return cls(describe(obj), "spec", obj.get("spec"))

    def field(self, key: str) -> str:
        return f"{self.path}.{key}"

    def error(self, key: str, problem: str) -> SpecError:
        return SpecError(self.obj, self.field(key), problem)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def child(self, key: str) -> FieldReader | None:
        if not self.has(key):
            return None
        return FieldReader(self.obj, self.field(key), self.data[key])

    def optional_str(self, key: str, *, pattern: re.Pattern[str] | None = None, max_length: int = 0) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_show(value)}")
        if not value:
            raise self.error(key, "must not be empty")
        if max_length and len(value) > max_length:
            raise self.error(key, f"must be at most {max_length} characters long")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"has the invalid value {value!r}")
        return value

    def required_str(self, key: str, *, pattern: re.Pattern[str] | None = None, max_length: int = 0) -> str:
        value = self.optional_str(key, pattern=pattern, max_length=max_length)
        if value is None:
            raise self.error(key, "is required")
        return value

    def name(self, key: str, *, label: bool = False) -> str | None:
        """A Kubernetes object name: a DNS-1123 subdomain, or a DNS-1123 label (namespaces)."""
        value = self.optional_str(key, max_length=63 if label else 253)
        rule = DNS1123_LABEL if label else DNS1123_SUBDOMAIN
        if value is not None and not rule.fullmatch(value):
            kind = "label" if label else "subdomain"
            raise self.error(
                key,
                f"must be a DNS-1123 {kind} (lower case letters, digits and '-'), not {value!r}",
            )
        return value

    def required_name(self, key: str, *, label: bool = False) -> str:
        value = self.name(key, label=label)
        if value is None:
            raise self.error(key, "is required")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_show(value)}")
        return value

    def duration(self, key: str, default: timedelta) -> timedelta:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            parsed = parse_duration(value)
        except DurationError as error:
            raise self.error(key, f"is invalid: {error}") from None
        if parsed <= timedelta(0):
            raise self.error(key, "must be longer than zero")
        return parsed

    def choice(self, key: str, enum: type[E], default: E) -> E:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self.error(key, f"must be one of {allowed}, not {_show(value)}") from None

    def items(self, key: str) -> list[FieldReader]:
        """The entries of a list of objects, each readable at `path.key[i]`."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, not {_show(value)}")
        return [FieldReader(self.obj, f"{self.field(key)}[{index}]", entry) for index, entry in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(entry, str) and entry for entry in value):
            raise self.error(key, "must be a list of non-empty strings")
        return list(value)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)

"""Credentials for a repository, read from a Secret's data: basic auth, a bearer token, or an SSH key."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from moor.source.errors import InvalidSourceSpec

USERNAME, PASSWORD, BEARER_TOKEN = "username", "password", "bearerToken"
IDENTITY, KNOWN_HOSTS = "identity", "known_hosts"


@dataclass(frozen=True, repr=False)
class GitAuth:
    """How to authenticate to a Git server. HTTP(S) uses username+password or bearer_token; SSH uses
    identity (a private key) checked against known_hosts."""

    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    identity: bytes | None = None
    known_hosts: bytes | None = None

    def __post_init__(self) -> None:
        if self.password is not None and not self.username:
            raise InvalidSourceSpec(f"the auth secret has a {PASSWORD!r} but no {USERNAME!r}")
        if self.bearer_token is not None and self.password is not None:
            raise InvalidSourceSpec(f"the auth secret has both a {BEARER_TOKEN!r} and a {PASSWORD!r}: keep only one")

    @classmethod
    def from_secret(cls, data: Mapping[str, bytes]) -> GitAuth:
        """Reads the keys of an Opaque Secret (values already base64-decoded); other keys are ignored."""

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is None:
                return None
            try:
                decoded = value.decode("utf-8").strip("\r\n")
            except UnicodeDecodeError:
                raise InvalidSourceSpec(f"the auth secret's {key!r} is not UTF-8 text") from None
            return decoded or None

        return cls(
            username=text(USERNAME),
            password=text(PASSWORD),
            bearer_token=text(BEARER_TOKEN),
            identity=data.get(IDENTITY) or None,
            known_hosts=data.get(KNOWN_HOSTS) or None,
        )

    @property
    def has_http_credentials(self) -> bool:
        return self.bearer_token is not None or self.username is not None

    def authorization_header(self) -> str | None:
        """The HTTP Authorization header these credentials make, if any."""
        if self.bearer_token is not None:
            return f"Authorization: Bearer {self.bearer_token}"
        if self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return f"Authorization: Basic {base64.b64encode(pair).decode('ascii')}"
        return None

    def secrets(self) -> list[str]:
        """Every string that must never appear in a message: passwords, tokens and their encodings."""
        found: list[str] = []
        for value in (self.password, self.bearer_token):
            if value:
                found.append(value)
        header = self.authorization_header()
        if header:
            found.append(header.split(" ", 2)[2])
        return found

    def __repr__(self) -> str:
        shown = [
            f"{name}=<set>"
            for name in ("username", "password", "bearer_token", "identity", "known_hosts")
            if getattr(self, name) is not None
        ]
        return f"GitAuth({', '.join(shown)})"

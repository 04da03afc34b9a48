"""Credentials for a registry: from a Secret (username/password or a docker config) or a docker config file.

A docker config (`kubernetes.io/dockerconfigjson`'s `.dockerconfigjson`, `~/.docker/config.json`) holds
`auths` keyed by host (`ghcr.io`, `host:5000`, `https://host/v1/`); an entry gives `auth`
(base64 of `user:password`) or `username` and `password`. Identity tokens and credential helpers are
not read: such an entry is refused with a message saying so.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from moor.source.errors import InvalidSourceSpec

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CONFIG_KEY = ".dockerconfigjson"
USERNAME, PASSWORD = "username", "password"
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True, repr=False)
class RegistryCredentials:
    username: str
    password: str

    @classmethod
    def from_secret(cls, secret_type: str, data: Mapping[str, bytes], registry: str) -> RegistryCredentials:
        """Reads a Secret's data (values already base64-decoded) for `registry` (`host` or `host:port`)."""
        if secret_type == DOCKER_CONFIG_JSON or DOCKER_CONFIG_KEY in data:
            config = data.get(DOCKER_CONFIG_KEY)
            if config is None:
                raise InvalidSourceSpec(f"the {DOCKER_CONFIG_JSON} secret has no {DOCKER_CONFIG_KEY!r} key")
            found = from_docker_config(config, registry, "the secret's .dockerconfigjson")
            if found is None:
                where = "the secret's .dockerconfigjson"
                hosts = ", ".join(sorted(_auths(_document(config, where), where))) or "none"
                raise InvalidSourceSpec(
                    f"the secret's .dockerconfigjson has no credentials for {registry} (it has: {hosts})"
                )
            return found
        username, password = _text(data, USERNAME), _text(data, PASSWORD)
        if not username or password is None:
            raise InvalidSourceSpec(
                f"the registry secret needs {USERNAME!r} and {PASSWORD!r} keys, or type {DOCKER_CONFIG_JSON}"
            )
        return cls(username, password)

    def basic_authorization(self) -> str:
        """The value of an `Authorization: Basic` header."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"RegistryCredentials(username={self.username!r}, password=<hidden>)"


def from_docker_config(config: bytes, registry: str, where: str) -> RegistryCredentials | None:
    """The credentials a docker config gives `registry`, or None when it has no entry for it."""
    document = _document(config, where)
    wanted = _normalized_host(registry)
    helper = _credential_helper(document, wanted)
    for key, entry in _auths(document, where).items():
        if _normalized_host(key) != wanted:
            continue
        if not isinstance(entry, dict):
            raise InvalidSourceSpec(f"{where}: the entry for {key!r} is not an object")
        if not entry and helper:
            break
        return _entry_credentials(entry, key, where)
    if helper:
        raise InvalidSourceSpec(
            f"{where} leaves the credentials for {registry} to the credential helper {helper!r}, which Moor "
            "does not run: give them with --creds user:password"
        )
    return None


def _document(config: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(config)
    except (ValueError, UnicodeDecodeError):
        raise InvalidSourceSpec(f"{where} is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidSourceSpec(f"{where} is not a JSON object")
    return document


def _credential_helper(document: Mapping[str, Any], host: str) -> str | None:
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _normalized_host(key) == host and isinstance(name, str) and name:
                return name
    store = document.get("credsStore")
    return store if isinstance(store, str) and store else None


def _auths(document: Mapping[str, Any], where: str) -> dict[str, Any]:
    auths = document.get("auths", {})
    if not isinstance(auths, dict):
        raise InvalidSourceSpec(f"{where}: 'auths' is not an object")
    return auths


def _entry_credentials(entry: Mapping[str, Any], key: str, where: str) -> RegistryCredentials:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            pair = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidSourceSpec(f"{where}: the 'auth' of {key!r} is not base64 of user:password") from None
        username, colon, password = pair.partition(":")
        if not colon or not username:
            raise InvalidSourceSpec(f"{where}: the 'auth' of {key!r} is not base64 of user:password")
        return RegistryCredentials(username, password)
    user, secret = entry.get(USERNAME), entry.get(PASSWORD)
    if isinstance(user, str) and user and isinstance(secret, str):
        return RegistryCredentials(user, secret)
    if entry.get("identitytoken") or entry.get("registrytoken"):
        raise InvalidSourceSpec(f"{where}: the entry for {key!r} holds a token; Moor reads only user and password")
    raise InvalidSourceSpec(f"{where}: the entry for {key!r} has neither 'auth' nor 'username' and 'password'")


def _normalized_host(key: str) -> str:
    """`https://host:5000/v1/` and `host:5000` name the same registry; Docker Hub has several names."""
    text = key.strip().lower()
    host = urlsplit(text).netloc if "://" in text else text.partition("/")[0]
    return "docker.io" if host in _DOCKER_HUB else host


def _text(data: Mapping[str, bytes], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return value.decode("utf-8").strip("\r\n")
    except UnicodeDecodeError:
        raise InvalidSourceSpec(f"the registry secret's {key!r} is not UTF-8 text") from None

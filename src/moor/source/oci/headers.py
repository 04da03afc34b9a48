"""The registry's HTTP headers Moor acts on (pure): `WWW-Authenticate` challenges and `Link` pagination."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SCHEME = re.compile(r"\s*(?P<scheme>[A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
_PARAM = re.compile(
    r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^,\s]*))\s*(?:,|$)'
)
_LINK = re.compile(r"<(?P<target>[^>]*)>\s*(?P<params>(?:;[^,<]*)*)")


@dataclass(frozen=True)
class Challenge:
    """How the registry wants a request authenticated: `basic`, or `bearer` with realm, service and scope."""

    scheme: str
    """Lower case."""
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header, or None when it holds none."""
    if not header:
        return None
    match = _SCHEME.match(header)
    if match is None:
        return None
    params: dict[str, str] = {}
    position = match.end()
    while position < len(header):
        param = _PARAM.match(header, position)
        if param is None or param.end() == position:
            break
        value = param["quoted"] if param["quoted"] is not None else param["bare"]
        params[param["key"].lower()] = re.sub(r"\\(.)", r"\1", value)
        position = param.end()
    return Challenge(match["scheme"].lower(), params)


def next_page(header: str | None) -> str | None:
    """The target of the `rel="next"` link in a `Link` header (as written: maybe relative), if any."""
    if not header:
        return None
    for link in _LINK.finditer(header):
        for param in link["params"].split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return link["target"]
    return None

"""What a registry accepted, kept between the clients of one source: Basic, or Bearer tokens until they expire.

A scan every minute would otherwise pay the challenge each time (anonymous request, 401, token, retry:
three requests where one does). `RegistryAuth` remembers, per registry and credentials, that Basic was
asked for, and each scope's token with its expiry (`expires_in`, 60 s when the service does not say, as
the distribution spec's token protocol defines), renewed 10 s early.

Where credentials go: to the registry's own origin, and to the token service its Bearer challenge
names, even on another host. That is a deliberate exception to "never to another host": the token
flow only works that way (Docker Hub's auth.docker.io, GHCR's and Harbor's services are such hosts),
and the service is named by the registry the credentials are for, over https (plain http only for an
`insecure` registry), never by a redirect. Nothing else that the registry names (a redirect to a blob
store or another host) receives them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_EXPIRY = 60.0
RENEW_EARLY = 10.0


@dataclass
class RegistryAuth:
    """Authorization a registry accepted, by scope; shared by the clients of one source, one at a time."""

    clock: Callable[[], float] = time.monotonic
    basic: str | None = None
    """`Authorization: Basic …`, once the registry asked for Basic."""
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    def authorization(self, scope: str) -> str | None:
        """What to send for `scope` now: a token not about to expire, else Basic if asked for, else nothing."""
        token = self._tokens.get(scope)
        if token is not None:
            if self.clock() < token[1]:
                return token[0]
            del self._tokens[scope]
        return self.basic

    def remember_token(self, scope: str, token: str, expires_in: float) -> None:
        self._tokens[scope] = (f"Bearer {token}", self.clock() + max(expires_in - RENEW_EARLY, 0.0))


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: float


def parse_token_answer(body: bytes) -> IssuedToken | None:
    """The token service's JSON answer (`token` or `access_token`, optional `expires_in`), None if it has none."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    expires_in = document.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        return IssuedToken(token, DEFAULT_EXPIRY)
    return IssuedToken(token, float(expires_in))

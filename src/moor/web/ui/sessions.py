"""Sessions of the dashboard, in memory: a random id in an HttpOnly, SameSite=Strict cookie, a CSRF token
per session, and an expiry. Nothing survives a restart (people log in again), and no token is kept.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from moor.web.ui.access import Person

SESSION_SECONDS = 8 * 3600.0
"""A session ends this long after login, whatever happens meanwhile."""
IDLE_SECONDS = 3600.0
"""A session nobody used for this long ends too."""
COOKIE = "moor_session"
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    person: Person
    csrf: str
    expires: float
    last_used: float
    flash: str = ""
    """A line for the next page this session sees (the outcome of an action)."""

    def csrf_matches(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), token.encode())


class SessionStore:
    def __init__(
        self,
        *,
        lifetime: float = SESSION_SECONDS,
        idle: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.idle = idle
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._login_tokens: dict[str, tuple[Person, float]] = {}

    def open(self, person: Person) -> Session:
        now = self._clock()
        if len(self._sessions) >= MAX_SESSIONS:
            self._drop_expired(now)
            if len(self._sessions) >= MAX_SESSIONS:  # the oldest makes room
                del self._sessions[min(self._sessions.values(), key=lambda s: s.last_used).id]
        session = Session(secrets.token_urlsafe(32), person, secrets.token_urlsafe(32), now + self.lifetime, now)
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str) -> Session | None:
        """The live session with this id, its idle clock reset; None when unknown or expired."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now >= session.expires or now - session.last_used >= self.idle:
            del self._sessions[session_id]
            return None
        session.last_used = now
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def issue_login_token(self, person: Person, valid_for: float = 24 * 3600.0) -> str:
        """A one-time token that opens a session for `person` (the link `moor ui` prints)."""
        token = secrets.token_urlsafe(32)
        self._login_tokens[token] = (person, self._clock() + valid_for)
        return token

    def redeem_login_token(self, token: str) -> Session | None:
        """A new session for a login token, which is then spent; None when unknown, spent or expired."""
        for known in list(self._login_tokens):
            if hmac.compare_digest(known.encode(), token.encode()):
                person, expires = self._login_tokens.pop(known)
                return self.open(person) if self._clock() < expires else None
        return None

    def _drop_expired(self, now: float) -> None:
        self._sessions = {
            key: s for key, s in self._sessions.items() if now < s.expires and now - s.last_used < self.idle
        }

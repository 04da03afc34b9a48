"""How a call to the Kubernetes API can fail: one short hierarchy, every class a MoorError.

    ApiError              the API server answered with an error status (status, reason, causes)
      Unauthorized        401: the credentials were refused
      Forbidden           403: RBAC (or an admission webhook) refused the request
      NotFound            404
      Conflict            409: a stale resourceVersion, or the object already exists
      Gone                410: a watch's or list's resourceVersion is too old
      TooManyRequests     429: API priority and fairness shed the request (retry_after)
      ServerError         5xx
      MalformedResponse   an answer whose body is not the JSON it should be
    ApiUnreachable        no answer: connection refused or reset, TLS failure, DNS
      ApiTimeout          no complete answer within the request's time limit

The class is chosen from the HTTP status (`ApiError.of`); the body is trusted only when it is a
Kubernetes `Status`. cluster/client.py is the one place that raises these for network failures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from moor.errors import MoorError
from moor.retry import parse_retry_after

BODY_EXCERPT = 300


class ApiError(MoorError):
    """A request the API server answered with an error status."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        causes: Sequence[Mapping[str, Any]] = (),
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.causes = list(causes)
        self.retry_after = retry_after

    @classmethod
    def of(
        cls,
        status: int,
        reason: str,
        message: str,
        causes: Sequence[Mapping[str, Any]] = (),
        *,
        retry_after: float | None = None,
    ) -> ApiError:
        """The error for `status`, of the subclass that names it (ApiError itself for the others)."""
        kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
        return kind(status, reason, message, causes, retry_after=retry_after)

    @classmethod
    def from_response(cls, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> ApiError:
        """The error an answer of `status` stands for; its message comes from a `Status` body when there is one."""
        document = _json_or_none(body)
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        if isinstance(document, dict) and document.get("kind") == "Status":
            details = document.get("details") or {}
            if retry_after is None and isinstance(details.get("retryAfterSeconds"), int):
                retry_after = float(details["retryAfterSeconds"])
            reason = str(document.get("reason", ""))
            message = str(document.get("message", "")) or f"the API server answered {status} {reason}".rstrip()
            return cls.of(status, reason, message, details.get("causes") or (), retry_after=retry_after)
        text = body.decode(errors="replace").strip()[:BODY_EXCERPT]
        return cls.of(status, "", f"the API server answered {status}: {text}", retry_after=retry_after)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Gone(ApiError):
    pass


class TooManyRequests(ApiError):
    pass


class ServerError(ApiError):
    pass


class MalformedResponse(ApiError):
    """An answer that cannot be decoded (a garbled or truncated body); `status` is the one answered."""

    @classmethod
    def of_body(cls, status: int, what: str, error: Exception) -> MalformedResponse:
        return cls(status, "MalformedResponse", f"{what}: the API server's answer is not valid JSON ({error})")


class ApiUnreachable(MoorError):
    """No answer from the API server: it refused or dropped the connection, or TLS or DNS failed."""


class ApiTimeout(ApiUnreachable):
    """No complete answer within the request's time limit (`limit` seconds)."""

    def __init__(self, message: str, limit: float | None) -> None:
        super().__init__(message)
        self.limit = limit


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    429: TooManyRequests,
}


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None

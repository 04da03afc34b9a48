"""A token service for the real distribution registry's `auth.token` (the Bearer flow Docker Hub, GHCR and
Harbor use), because `github.com/cesanta/docker_auth` is not available from the Go module proxy here.

It does what the distribution spec's token protocol asks of a token service and nothing more: `GET
/token?service=…&scope=repository:NAME:ACTIONS` with Basic credentials answers `{"token", "access_token",
"expires_in", "issued_at"}`, a JWT (ES256) whose `x5c` header carries the signing certificate, issued by
the test CA the registry is told to trust (`rootcertbundle`), granting the scopes asked for to the one
user it knows (none to anyone else, as an anonymous pull of a private repository gets). Over HTTPS,
from a certificate of the same CA. `.requests` records each request (its scope, whether it carried the
right credentials), e.g. to count how often a client asked for a token.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from moor.devcluster import pki

if TYPE_CHECKING:
    from tests.support.registry_fixtures import TestCA

SERVICE = "moor-test-registry"
ISSUER = "moor-test-token-server"
TOKEN_LIFETIME = 300


@dataclass(frozen=True)
class TokenRequest:
    scopes: tuple[str, ...]
    authenticated: bool


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, ca: TestCA, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._signer = pki.issue_certificate(ca.key_pair, ISSUER)
        self.rootcertbundle = ca.bundle
        certificate = ca.server_certificate("token-server")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        # Named, not an address: crane refuses a token service at a literal private or loopback address.
        self.realm = f"https://localhost:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-server", daemon=True)

    def registry_auth(self) -> dict[str, Any]:
        """The registry's `auth` configuration that sends clients here and trusts what this issues."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.rootcertbundle),
            }
        }

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def token_requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self.requests)

    def authenticated(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            pair = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(pair, f"{self.username}:{self.password}".encode())

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def issue(self, subject: str, scopes: tuple[str, ...]) -> str:
        """A JWT granting `scopes` (`repository:NAME:pull,push`) to `subject`, signed by the signer's key."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self._signer.certificate.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._signer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(signature)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class TokenHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/token":
                self._answer(HTTPStatus.NOT_FOUND, {})
                return
            query = parse_qs(parts.query)
            scopes = tuple(scope for value in query.get("scope", []) for scope in value.split(" ") if scope)
            authenticated = server.authenticated(self.headers.get("Authorization"))
            server.record(TokenRequest(scopes, authenticated))
            if self.headers.get("Authorization") and not authenticated:
                self._answer(HTTPStatus.UNAUTHORIZED, {"details": "wrong credentials"})
                return
            subject = server.username if authenticated else ""
            token = server.issue(subject, scopes if authenticated else ())
            issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            document = {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME, "issued_at": issued}
            self._answer(HTTPStatus.OK, document)

        def _answer(self, status: HTTPStatus, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return TokenHandler

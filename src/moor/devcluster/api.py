"""Just enough HTTP to probe the components and create the fake nodes: urllib with the cluster's own CA."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from moor.devcluster.pki import CertFiles


class LoopbackAPI:
    """An HTTPS (or plain HTTP) endpoint on loopback, verified against the cluster's CA."""

    def __init__(self, base_url: str, *, ca_cert: Path | None = None, client: CertFiles | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._context: ssl.SSLContext | None = None
        if base_url.startswith("https://"):
            self._context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
            if client is not None:
                self._context.load_cert_chain(str(client.cert), str(client.key))

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """(status, body) of one request; HTTP error statuses are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._context) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())

    def is_ok(self, path: str) -> bool:
        """True if GET `path` answers 200; False if it answers otherwise or not at all."""
        try:
            status, _ = self.request("GET", path, timeout=2.0)
        except (OSError, ssl.SSLError):
            return False
        return status == 200

    def get_json(self, path: str) -> dict[str, Any]:
        status, body = self.request("GET", path)
        if status != 200:
            raise OSError(f"GET {path} answered {status}: {body[:200]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def create(self, path: str, obj: dict[str, Any]) -> None:
        """POSTs `obj`; an object that already exists counts as created."""
        status, body = self.request("POST", path, obj)
        if status not in (200, 201, 409):
            raise OSError(f"POST {path} answered {status}: {body[:300]!r}")

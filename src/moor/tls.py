"""TLS for Moor's HTTP clients (of the API server, of registries): trusted CAs and client certificates
given as PEM bytes, as kubeconfigs and Secrets hold them."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from moor.private_files import write_private


def client_tls_context(ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None) -> ssl.SSLContext:
    """The system's CAs plus `ca_pem`, and a client certificate when both halves are given; ssl.SSLError
    for PEM that does not parse."""
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
    if cert_pem and key_pem:
        _load_client_certificate(context, cert_pem, key_pem)
    return context


def _load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl only loads key pairs from files: write them to a private directory and remove it at once."""
    with tempfile.TemporaryDirectory(prefix="moor-tls-") as private:
        cert_path, key_path = Path(private) / "tls.crt", Path(private) / "tls.key"
        for path, content in ((cert_path, cert_pem), (key_path, key_pem)):
            write_private(path, content)
        context.load_cert_chain(cert_path, key_path)

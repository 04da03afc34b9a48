"""Kubeconfig files for the local cluster, with the credentials embedded so a file can be copied alone."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from moor.devcluster.pki import CertFiles
from moor.private_files import replace_private

CONTEXT_NAME = "moor-dev"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, client: CertFiles, user: str) -> None:
    """Writes a one-context kubeconfig for `user` (it holds a private key, so it is 0600)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert),
                    "client-key-data": _b64(client.key),
                },
            }
        ],
        "contexts": [{"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": user}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    replace_private(path, yaml.safe_dump(config, sort_keys=False).encode())

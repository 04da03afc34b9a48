"""Reading the Secrets a Moor object names (credentials, keys, certificates) from its own namespace."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.source.errors import InvalidSourceSpec
from moor.source.oci.credentials import RegistryCredentials

CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"


class SecretMissing(MoorError):
    pass


@dataclass(frozen=True)
class SecretContents:
    type: str
    data: dict[str, bytes]
    """Decoded."""


async def read_secret(api: KubeApi, owner: KubeObject, name: str) -> SecretContents:
    """A Secret in `owner`'s namespace, its type and decoded data; SecretMissing naming both if it is not there."""
    owner_ref = ObjectRef.of(owner)
    secret = await api.get(ObjectRef("", "v1", "Secret", owner_ref.namespace, name))
    if secret is None:
        raise SecretMissing(f"{owner_ref}: the Secret {owner_ref.namespace}/{name} does not exist")
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    return SecretContents(str(secret.get("type") or "Opaque"), data)


@dataclass(frozen=True)
class ClientSecrets:
    """What a client of a registry or chart repository is given from its source's Secrets."""

    credentials: RegistryCredentials | None = None
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None


async def read_client_secrets(
    api: KubeApi, owner: KubeObject, *, secret_name: str | None, cert_secret_name: str | None, host: str
) -> ClientSecrets:
    """`secretRef` (username/password or a .dockerconfigjson, for `host`) and `certSecretRef` (ca.crt, and
    tls.crt with tls.key) of a registry or chart repository source."""
    credentials = None
    if secret_name:
        secret = await read_secret(api, owner, secret_name)
        credentials = RegistryCredentials.from_secret(secret.type, secret.data, host)
    certificates: dict[str, bytes] = {}
    if cert_secret_name:
        certificates = (await read_secret(api, owner, cert_secret_name)).data
        if (CERT_KEY in certificates) != (KEY_KEY in certificates):
            where = f"{ObjectRef.of(owner)}: the Secret {cert_secret_name}"
            raise InvalidSourceSpec(f"{where} must hold both {CERT_KEY} and {KEY_KEY}, or neither")
    return ClientSecrets(credentials, certificates.get(CA_KEY), certificates.get(CERT_KEY), certificates.get(KEY_KEY))

"""Reading the Secrets a Moor object names (credentials, keys, certificates) from its own namespace."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from moor.cluster.api import KubeApi
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef


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

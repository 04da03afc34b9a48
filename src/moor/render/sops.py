"""SOPS-encrypted documents of a render, decrypted by the real `sops` with age identities from a Secret.

A document is SOPS-encrypted when it is a mapping whose top-level `sops` entry holds a `mac` (sops
writes it next to the key groups the data key is encrypted for). Each such document goes to
`sops --decrypt` on standard input and comes back on standard output, so plaintext never touches the
disk; only the age identities are written, to a file in a private directory (0700, the file 0600)
removed as soon as the documents are decrypted. Messages name the document and the object, never a
value: sops's own error output is reduced to a known cause or scrubbed of anything value-like.

Every encrypted value is authenticated on its own (AES-GCM, bound to its path in the document), so
an altered or moved value fails. The MAC over the whole document is not checked (`--ignore-mac`, as
Flux does): kustomize re-orders fields and may add labels or a namespace, which breaks it, and it
guards nothing an author with the public age recipient could not produce anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moor.binaries import locate
from moor.private_files import write_private
from moor.render.documents import Document
from moor.render.errors import RenderError
from moor.render.request import DecryptionKeys, RenderLimits
from moor.render.tool import run_renderer, scratch_directory, tool_environment

AGE_KEY_SUFFIX = ".agekey"
"""Keys of the decryption Secret whose values hold age identities."""

_AGE_IDENTITY = re.compile(rb"AGE-SECRET-KEY-1[0-9A-Z]+")
_KEY_GROUPS = {"age": "age", "pgp": "PGP", "kms": "AWS KMS", "gcp_kms": "GCP KMS", "azure_kv": "Azure Key Vault"}
_KEY_GROUPS |= {"hc_vault": "HashiCorp Vault", "huawei_kms": "Huawei Cloud KMS"}
_CONCURRENT_DECRYPTIONS = 4
_RECIPIENTS_SHOWN = 3


def is_encrypted(body: Any) -> bool:
    """True for a document that sops encrypted: a mapping with a `sops` mapping that holds its `mac`."""
    if not isinstance(body, dict):
        return False
    metadata = body.get("sops")
    return isinstance(metadata, dict) and "mac" in metadata


def decryption_keys(secret_data: Mapping[str, bytes], origin: str) -> DecryptionKeys:
    """The age identities of a Secret's `*.agekey` keys; a RenderError naming the key (never its value)
    when there is none, or when one holds no identity."""
    names = sorted(name for name in secret_data if name.endswith(AGE_KEY_SUFFIX))
    if not names:
        raise RenderError(
            f"{origin} holds no key ending in {AGE_KEY_SUFFIX}: put the age identity (AGE-SECRET-KEY-1…) "
            f"into a key such as identity{AGE_KEY_SUFFIX}"
        )
    identities: list[bytes] = []
    for name in names:
        found = _AGE_IDENTITY.findall(secret_data[name].upper())
        if not found:
            raise RenderError(f"the key {name!r} of {origin} holds no age identity (AGE-SECRET-KEY-1…)")
        identities += found
    return DecryptionKeys(origin=origin, age_identities=tuple(dict.fromkeys(identities)))


async def decrypt_documents(
    documents: Sequence[Document], keys: DecryptionKeys | None, limits: RenderLimits, *, keep_encrypted: bool = False
) -> list[Document]:
    """The documents with every SOPS-encrypted one replaced by its plaintext, in the same order.

    Without `keys`, an encrypted document is a RenderError saying that a decryption key is needed, or,
    with `keep_encrypted`, stays as it is.
    """
    encrypted = [index for index, document in enumerate(documents) if is_encrypted(document.body)]
    if not encrypted or (keys is None and keep_encrypted):
        return list(documents)
    if keys is None:
        raise RenderError(
            f"{describe_encrypted(documents[encrypted[0]])} is encrypted with SOPS, so a decryption key is "
            f"needed: set spec.decryption.secretRef to a Secret holding its age key (*{AGE_KEY_SUFFIX})"
        )
    sops = locate("sops")
    result = list(documents)
    async with scratch_directory("moor-sops-") as private:
        key_file = private / "keys.txt"
        await asyncio.to_thread(write_private, key_file, b"".join(key + b"\n" for key in keys.age_identities))
        env = tool_environment(private, SOPS_AGE_KEY_FILE=str(key_file), GNUPGHOME=str(private / "gnupg"))
        gate = asyncio.Semaphore(_CONCURRENT_DECRYPTIONS)

        async def decrypt(document: Document) -> Any:
            async with gate:
                return await _decrypt(sops, document, keys, env, private, limits)

        bodies = await asyncio.gather(*(decrypt(documents[i]) for i in encrypted), return_exceptions=True)
    for body in bodies:  # the first document's failure, whichever sops run ended first
        if isinstance(body, BaseException):
            raise body
    for index, body in zip(encrypted, bodies, strict=True):
        result[index] = dataclasses.replace(documents[index], body=body)
    return result


def describe_encrypted(document: Document) -> str:
    """The object (when its kind and name are left in clear) and the document it is in."""
    body = document.body
    metadata = body.get("metadata")
    kind = body.get("kind")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    if not (_clear(kind) and _clear(name)):
        return document.describe()
    where = f"{namespace}/{name}" if _clear(namespace) else name
    return f"{kind} {where} in {document.describe()}"


def recipients(body: Mapping[str, Any]) -> list[str]:
    """The age public keys a document is encrypted for (public, so they may be shown)."""
    entries = (body.get("sops") or {}).get("age") or []
    return [str(entry["recipient"]) for entry in entries if isinstance(entry, dict) and entry.get("recipient")]


async def _decrypt(
    sops: Path, document: Document, keys: DecryptionKeys, env: dict[str, str], cwd: Path, limits: RenderLimits
) -> Any:
    """One document through `sops --decrypt`: JSON in on stdin (YAML's superset, the types kept exactly),
    JSON out on stdout, nothing written."""
    what = describe_encrypted(document)
    text = json.dumps(document.body, separators=(",", ":")).encode()
    argv = [str(sops), "--config", "/dev/null", "--decrypt", "--ignore-mac"]  # no .sops.yaml from cwd's parents
    argv += ["--input-type", "json", "--output-type", "json", "/dev/stdin"]
    try:
        completed = await run_renderer(
            argv,
            what="sops",
            cwd=cwd,
            env=env,
            time_limit=limits.tool_timeout,
            max_output=limits.max_total_bytes,
            stdin=text,
        )
    except RenderError as error:
        raise RenderError(f"{what} cannot be decrypted: {error}") from None
    if completed.returncode != 0:
        raise RenderError(f"{what} cannot be decrypted: {_cause(completed.stderr, document.body, keys)}")
    try:
        body = json.loads(completed.stdout)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RenderError(f"{what} cannot be decrypted: sops did not return one object")
    return body


def _cause(stderr: bytes, body: Mapping[str, Any], keys: DecryptionKeys) -> str:
    """Why sops failed, in words that hold no value of the document: a known cause, or its first
    error line with encrypted values, quoted text and long tokens cut out."""
    text = stderr.decode("utf-8", "replace")
    if "Failed to get the data key" in text or "did not match any of the recipients" in text:
        age = recipients(body)
        if not age:
            groups = sorted({_KEY_GROUPS.get(name, name) for name in _key_groups(body)})
            return f"it is encrypted for {', '.join(groups) or 'no key'}, not for an age key"
        shown = ", ".join(age[:_RECIPIENTS_SHOWN]) + (", …" if len(age) > _RECIPIENTS_SHOWN else "")
        return f"none of the age keys in {keys.origin} is one of its recipients ({shown})"
    if "message authentication failed" in text:
        return "a value was altered, or moved to another key, after it was encrypted"
    return f"sops failed: {scrub(text) or 'no reason given'}"


def scrub(text: str) -> str:
    """The first line of an error message, without anything that could be a value of the document."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = re.sub(r"ENC\[[^\]]*\]?", "…", line)
    line = re.sub(r"\"[^\"]*\"?|'[^']*'?|`[^`]*`?", "…", line)
    line = re.sub(r"[A-Za-z0-9+/=_\-.]{24,}", "…", line)
    return line[:200]


def _key_groups(body: Mapping[str, Any]) -> list[str]:
    metadata = body.get("sops") or {}
    found = [name for name in _KEY_GROUPS if metadata.get(name)]
    for group in metadata.get("key_groups") or []:
        if isinstance(group, dict):
            found += [name for name in _KEY_GROUPS if group.get(name)]
    return found


def _clear(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith("ENC[")

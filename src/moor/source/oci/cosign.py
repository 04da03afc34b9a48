"""Cosign signatures of an OCI artifact, checked in Python against public keys the user trusts.

Cosign's classic layout: the signatures of the manifest `sha256:<hex>` are the layers of the manifest
tagged `sha256-<hex>.sig` in the same repository. Each such layer, of media type `SIMPLE_SIGNING`,
is a small JSON payload (`{"critical": {"identity": …, "image": {"docker-manifest-digest": …},
"type": "cosign container image signature"}, …}`); its annotation `dev.cosignproject.cosign/signature`
is the base64 signature over exactly those bytes. A signature counts only when a trusted key verifies
it AND its payload names the artifact's digest and cosign's type, so a signature copied from another
artifact does not count. Keys are PEM public keys (every key of a Secret ending in `.pub`): ECDSA
P-256 with SHA-256 (what `cosign generate-key-pair` makes), RSA (PKCS #1 v1.5, SHA-256) and Ed25519.

Not read: transparency-log entries and keyless (Fulcio) certificates, which need Rekor and Fulcio on
the internet (a signature is trusted for its key alone), and cosign v3's Sigstore bundles stored as
OCI 1.1 referrers (`cosign sign --new-bundle-format`; a refusal says so when an artifact has only
those). `check_signatures` is pure; `verify_signed`
fetches the signature manifest and its payloads with the RegistryClient and calls it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from moor.source.errors import SourceError, VerificationFailed
from moor.source.limits import ArtifactTooLarge
from moor.source.oci.client import RegistryClient
from moor.source.oci.errors import ArtifactNotFound
from moor.source.oci.manifest import Descriptor, ImageIndex, parse_manifest
from moor.source.oci.reference import OciReference

PROVIDER = "cosign"
PUBLIC_KEY_SUFFIX = ".pub"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 64 * 1024
"""A simple-signing payload is a few hundred bytes; a larger one is not downloaded."""
MAX_SIGNATURES = 32
"""Signatures read from one signature manifest (cosign appends one per `cosign sign`)."""
MIN_RSA_BITS = 2048

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, repr=False)
class CosignKeys:
    """The public keys a trust Secret holds, by their key name in the Secret, sorted."""

    keys: tuple[tuple[str, PublicKey], ...]
    origin: str = field(default="the trust Secret", compare=False)
    """How messages name where the keys came from."""

    @classmethod
    def from_secret(cls, data: Mapping[str, bytes], origin: str = "the trust Secret") -> CosignKeys:
        """Reads every `.pub` key of a Secret's (decoded) data; VerificationFailed when there is none or
        one is not a public key Moor checks (a broken key is an error to fix, not one to skip silently)."""
        names = sorted(name for name in data if name.endswith(PUBLIC_KEY_SUFFIX))
        if not names:
            raise VerificationFailed(
                f"{origin} holds no cosign public key (a key ending in {PUBLIC_KEY_SUFFIX}), "
                "so no artifact can be verified"
            )
        return cls(tuple((name, _load_public_key(data[name], f"{origin}: {name}")) for name in names), origin)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.keys]

    def __repr__(self) -> str:
        return f"CosignKeys({', '.join(self.names)})"


@dataclass(frozen=True)
class CosignSignature:
    """A trusted signature of an artifact: which key of the trust Secret verified it."""

    key: str

    def __str__(self) -> str:
        return f"signed with cosign key {self.key}"


def signature_tag(digest: str) -> str:
    """Where cosign puts the signatures of `digest`: the tag `sha256-<hex>.sig`."""
    return f"{referrers_tag(digest)}.sig"


def referrers_tag(digest: str) -> str:
    """Where OCI 1.1 referrers of `digest` are listed in a registry without the referrers API (the tag
    schema cosign v3 falls back to for Sigstore bundles): `sha256-<hex>`."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}"


def signature_layers(raw_manifest: bytes, media_type: str | None, what: str) -> tuple[Descriptor, ...]:
    """The simple-signing layers of a signature manifest (at most MAX_SIGNATURES of them)."""
    try:
        manifest = parse_manifest(raw_manifest, media_type, what)
    except SourceError as error:
        raise VerificationFailed(f"{what}: the cosign signature manifest is malformed: {error}") from None
    if isinstance(manifest, ImageIndex):
        raise VerificationFailed(f"{what}: the cosign signature manifest is an index, not a manifest of signatures")
    return tuple(layer for layer in manifest.layers if layer.media_type == SIMPLE_SIGNING)[:MAX_SIGNATURES]


def check_signatures(
    digest: str, layers: Sequence[Descriptor], payloads: Mapping[str, bytes], keys: CosignKeys, what: str
) -> CosignSignature:
    """The first signature layer that a trusted key verifies and whose payload names `digest`.

    `payloads` holds the downloaded bytes of the layers, by layer digest (one left out was too large).
    Raises VerificationFailed naming the artifact and what is wrong with each signature.
    """
    if not layers:
        raise VerificationFailed(f"{what} carries no cosign signature: its signature manifest holds none")
    problems: list[str] = []
    for layer in layers:
        found = _check_one(digest, layer, payloads.get(layer.digest), keys)
        if isinstance(found, CosignSignature):
            return found
        problems.append(found)
    distinct = list(dict.fromkeys(problems))
    listed = (
        distinct[0]
        if len(distinct) == 1
        else "; ".join(f"signature {number}: {problem}" for number, problem in enumerate(problems, start=1))
    )
    raise VerificationFailed(
        f"{what} has no valid cosign signature by a key of {keys.origin} ({', '.join(keys.names)}): {listed}"
    )


async def verify_signed(client: RegistryClient, artifact: OciReference, keys: CosignKeys) -> CosignSignature:
    """Fetches the signatures of `artifact` (a reference with its digest) and checks them; VerificationFailed
    when none is valid, before anything of the artifact itself is downloaded."""
    assert artifact.digest is not None
    what = str(artifact)
    tag = signature_tag(artifact.digest)
    try:
        fetched = await client.resolve(artifact.repository, tag)
    except ArtifactNotFound:
        raise VerificationFailed(
            f"{what} carries no cosign signature: its repository has no tag {tag} "
            f"({await _unread_bundles(client, artifact.repository, artifact.digest)})",
            url=artifact.repository_url,
        ) from None
    layers = signature_layers(fetched.raw, fetched.media_type, what)
    wanted = [
        layer for layer in layers if SIGNATURE_ANNOTATION in layer.annotations and layer.size <= MAX_PAYLOAD_BYTES
    ]
    payloads = await _download_payloads(client, artifact.repository, wanted, what)
    return check_signatures(artifact.digest, layers, payloads, keys, what)


async def _unread_bundles(client: RegistryClient, repository: str, digest: str) -> str:
    """How to sign so Moor can check it, saying so when the artifact has referrers Moor does not read
    (cosign v3's Sigstore bundles)."""
    try:
        await client.resolve(repository, referrers_tag(digest))
    except ArtifactNotFound:
        return "sign it with `cosign sign --key`"
    return (
        f"it has OCI referrers (the tag {referrers_tag(digest)}), such as cosign v3's Sigstore bundles, which "
        "Moor does not read: sign with `cosign sign --key --new-bundle-format=false`"
    )


def _check_one(digest: str, layer: Descriptor, payload: bytes | None, keys: CosignKeys) -> CosignSignature | str:
    """A trusted signature, or why this layer is none (a phrase)."""
    encoded = layer.annotations.get(SIGNATURE_ANNOTATION)
    if encoded is None:
        return f"malformed: the layer has no {SIGNATURE_ANNOTATION} annotation"
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "malformed: the signature is not base64"
    if not signature:
        return "malformed: the signature is empty"
    if payload is None:
        return f"malformed: the payload is over {MAX_PAYLOAD_BYTES // 1024} KiB"
    key = next((name for name, public_key in keys.keys if _verifies(public_key, signature, payload)), None)
    if key is None:
        return "it verifies with none of the trusted keys (made by another key, or altered)"
    named = _signed_digest(payload)
    if isinstance(named, _Refused):
        return f"signed by {key}, but {named.problem}"
    if named != digest:
        return f"signed by {key}, but for {named}, not this artifact's digest"
    return CosignSignature(key=key)


@dataclass(frozen=True)
class _Refused:
    problem: str


def _signed_digest(payload: bytes) -> str | _Refused:
    """The manifest digest a simple-signing payload names, once its type is cosign's."""
    try:
        document: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return _Refused("its payload is not JSON")
    critical = document.get("critical") if isinstance(document, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    named = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(critical, dict) or not isinstance(named, str):
        return _Refused("its payload has no critical.image.docker-manifest-digest")
    if critical.get("type") != SIGNATURE_TYPE:
        return _Refused(f"its payload's critical.type is {critical.get('type')!r}, not {SIGNATURE_TYPE!r}")
    return named


def _verifies(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def _load_public_key(pem: bytes, what: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.strip())
    except (ValueError, UnsupportedAlgorithm):
        raise VerificationFailed(f"{what} is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise VerificationFailed(
        f"{what} is {_describe_key(key)}; Moor checks ECDSA P-256, RSA of {MIN_RSA_BITS} bits or more, and Ed25519 keys"
    )


def _describe_key(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an ECDSA key on {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA key of {key.key_size} bits"
    return "another kind of key"


async def _download_payloads(
    client: RegistryClient, repository: str, layers: Sequence[Descriptor], what: str
) -> dict[str, bytes]:
    """The bytes of each layer (digests verified by the client), through a private temporary directory."""
    if not layers:
        return {}
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-cosign-"))
    try:
        payloads: dict[str, bytes] = {}
        for number, layer in enumerate(layers):
            if layer.digest in payloads:
                continue
            path = directory / f"payload-{number}"
            try:
                await client.blob_to(repository, layer.digest, path, MAX_PAYLOAD_BYTES)
            except ArtifactTooLarge:
                raise VerificationFailed(
                    f"{what}: the cosign signature payload {layer.digest} is larger than its manifest says"
                ) from None
            payloads[layer.digest] = await asyncio.to_thread(path.read_bytes)
        return payloads
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)

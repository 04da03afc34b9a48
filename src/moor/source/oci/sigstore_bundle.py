"""Sigstore bundles, cosign v3's signatures, checked in Python against the trusted keys (pure).

`cosign sign` in v3 (and v2 with `--new-bundle-format`) stores a bundle of media type
`application/vnd.dev.sigstore.bundle.v0.3+json` as the one layer of a manifest whose `subject` is the
artifact: an OCI 1.1 referrer, listed by the registry's referrers API or the fallback tag `sha256-<hex>`.
A bundle holds one of:

- a DSSE envelope (what `cosign sign` makes): an in-toto statement, signed over DSSE's PAE encoding
  of its payload type and bytes, whose subject is the artifact's digest and whose predicate type is
  cosign's signature (`https://sigstore.dev/cosign/sign/v1`; an attestation of another type is not a
  signature, as `cosign verify` does not take one either);
- a message signature (`cosign sign-blob` of the manifest, attached with `oras attach`): the digest of
  the message, which must be the artifact's, and a signature over the manifest's bytes.

A bundle counts only when a trusted key verifies it AND it names this artifact, so a bundle copied from
another artifact does not count. Not checked: transparency-log entries and signed timestamps in the
bundle (that needs Rekor), and keyless (Fulcio) certificates: a bundle is trusted for its key alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from moor.source.oci.cosign_keys import CosignKeys, CosignSignature

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""What cosign v3 writes; earlier bundle versions are `application/vnd.dev.sigstore.bundle+json;version=0.x`."""
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
MAX_BUNDLE_BYTES = 256 * 1024
"""A key-based bundle is under a KiB, one with log entries a few KiB; a larger one is not downloaded."""

_BUNDLE_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
_DIGEST_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


@dataclass(frozen=True)
class MessageSignature:
    digest: str
    """`<algorithm>:<hex>` of the signed message."""
    signature: bytes


@dataclass(frozen=True)
class DsseEnvelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


@dataclass(frozen=True)
class SigstoreBundle:
    content: MessageSignature | DsseEnvelope
    keyless: bool
    """Its verification material is a certificate (keyless signing), not a key's hint."""


def is_bundle_type(media_type: str) -> bool:
    """A media or artifact type of a Sigstore bundle, of any bundle version."""
    return media_type.startswith(_BUNDLE_TYPE_PREFIX)


def parse_bundle(raw: bytes) -> SigstoreBundle | str:
    """The bundle's signed content, or why it is not a bundle Moor reads (a phrase)."""
    try:
        document: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "malformed: the bundle is not JSON"
    if not isinstance(document, dict) or not is_bundle_type(str(document.get("mediaType", ""))):
        return "malformed: the bundle has no Sigstore bundle mediaType"
    material = document.get("verificationMaterial")
    keyless = isinstance(material, dict) and ("certificate" in material or "x509CertificateChain" in material)
    if isinstance(document.get("dsseEnvelope"), dict):
        content: MessageSignature | DsseEnvelope | str = _envelope(document["dsseEnvelope"])
    elif isinstance(document.get("messageSignature"), dict):
        content = _message_signature(document["messageSignature"])
    else:
        return "malformed: the bundle holds neither a dsseEnvelope nor a messageSignature"
    return content if isinstance(content, str) else SigstoreBundle(content, keyless)


def check_bundle(
    digest: str, bundle: SigstoreBundle, keys: CosignKeys, manifest: bytes | None
) -> CosignSignature | str:
    """A trusted signature, or why this bundle is none (a phrase). `manifest` holds the artifact's manifest
    bytes, which a message signature is over (None when they were not read)."""
    content = bundle.content
    if isinstance(content, MessageSignature):
        if content.digest != digest:
            return f"a message signature of {content.digest}, not of this artifact's digest"
        signer = None if manifest is None else keys.signer_of(content.signature, manifest)
        return _unverified(bundle) if signer is None else CosignSignature(key=signer, bundle=True)
    message = pae(content.payload_type, content.payload)
    signer = next((key for s in content.signatures if (key := keys.signer_of(s, message)) is not None), None)
    if signer is None:
        return _unverified(bundle)
    named = _statement_subject(content, digest)
    if named is not None:
        return f"signed by {signer}, but {named}"
    return CosignSignature(key=signer, bundle=True)


def needs_manifest(bundle: SigstoreBundle) -> bool:
    """A message signature is checked against the manifest's bytes, which must then be read."""
    return isinstance(bundle.content, MessageSignature)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _unverified(bundle: SigstoreBundle) -> str:
    if bundle.keyless:
        return "a keyless signature (a Fulcio certificate), which Moor does not check: sign with `cosign sign --key`"
    return "it verifies with none of the trusted keys (made by another key, or altered)"


def _statement_subject(envelope: DsseEnvelope, digest: str) -> str | None:
    """None when the envelope is cosign's signature statement of `digest`; else what is wrong (a phrase)."""
    if envelope.payload_type != IN_TOTO_PAYLOAD:
        return f"its payload type is {envelope.payload_type!r}, not an in-toto statement"
    try:
        statement: Any = json.loads(envelope.payload)
    except (ValueError, UnicodeDecodeError):
        return "its statement is not JSON"
    if not isinstance(statement, dict) or not str(statement.get("_type", "")).startswith(IN_TOTO_STATEMENT):
        return "its payload is not an in-toto statement"
    predicate = statement.get("predicateType")
    if predicate != COSIGN_SIGN_PREDICATE:
        return f"it is an attestation of type {predicate!r}, not a cosign signature ({COSIGN_SIGN_PREDICATE})"
    algorithm, _, hex_digest = digest.partition(":")
    subjects = statement.get("subject")
    named = [
        f"{name}:{value}"
        for subject in (subjects if isinstance(subjects, list) else [])
        if isinstance(subject, dict) and isinstance(subject.get("digest"), dict)
        for name, value in subject["digest"].items()
    ]
    if f"{algorithm}:{hex_digest}" in named:
        return None
    return f"for {', '.join(named) or 'no subject'}, not this artifact's digest"


def _envelope(document: dict[str, Any]) -> DsseEnvelope | str:
    payload = _base64(document.get("payload"))
    payload_type = document.get("payloadType")
    signatures = document.get("signatures")
    if payload is None or not isinstance(payload_type, str) or not isinstance(signatures, list):
        return "malformed: the DSSE envelope lacks its payload, payloadType or signatures"
    decoded = [_base64(s.get("sig")) if isinstance(s, dict) else None for s in signatures]
    if not decoded or any(not s for s in decoded):
        return "malformed: a DSSE signature is missing or not base64"
    return DsseEnvelope(payload_type, payload, tuple(s for s in decoded if s))


def _message_signature(document: dict[str, Any]) -> MessageSignature | str:
    message_digest = document.get("messageDigest")
    signature = _base64(document.get("signature"))
    if not isinstance(message_digest, dict) or not signature:
        return "malformed: the message signature lacks its messageDigest or signature"
    algorithm = _DIGEST_ALGORITHMS.get(str(message_digest.get("algorithm")))
    value = _base64(message_digest.get("digest"))
    if algorithm is None or value is None or len(value) != hashlib.new(algorithm).digest_size:
        return "malformed: the message digest is not a SHA-2 digest"
    return MessageSignature(f"{algorithm}:{value.hex()}", signature)


def _base64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None

"""Cosign signatures of an OCI artifact, checked in Python against public keys the user trusts, in
either of cosign's layouts.

The classic layout (cosign v2's default, Flux's): the signatures of the manifest `sha256:<hex>` are the
layers of the manifest tagged `sha256-<hex>.sig` in the same repository. Each such layer, of media type
`SIMPLE_SIGNING`, is a small JSON payload (`{"critical": {"identity": …, "image":
{"docker-manifest-digest": …}, "type": "cosign container image signature"}, …}`); its annotation
`dev.cosignproject.cosign/signature` is the base64 signature over exactly those bytes. A signature
counts only when a trusted key verifies it AND its payload names the artifact's digest and cosign's
type, so a signature copied from another artifact does not count.

Sigstore bundles (cosign v3's default): OCI 1.1 referrers of the artifact, read and checked by
`moor.source.oci.sigstore_bundle` with the same keys and the same rule. The classic tag is read first;
the referrers only when it holds no valid signature. A refusal lists what was found in both.

Keys are those of `moor.source.oci.cosign_keys`. Not read: transparency-log entries and keyless (Fulcio)
certificates, which need Rekor and Fulcio on the internet: a signature is trusted for its key alone,
offline. `check_signatures` and `check_bundles` are pure; `verify_signed` fetches the signatures with
the RegistryClient and calls them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moor.source.errors import SourceError, VerificationFailed
from moor.source.limits import ArtifactTooLarge
from moor.source.oci.client import RegistryClient
from moor.source.oci.cosign_keys import PROVIDER as PROVIDER
from moor.source.oci.cosign_keys import PUBLIC_KEY_SUFFIX as PUBLIC_KEY_SUFFIX
from moor.source.oci.cosign_keys import CosignKeys as CosignKeys
from moor.source.oci.cosign_keys import CosignSignature as CosignSignature
from moor.source.oci.errors import ArtifactNotFound
from moor.source.oci.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from moor.source.oci.manifest import referrers_tag as referrers_tag
from moor.source.oci.reference import OciReference
from moor.source.oci.sigstore_bundle import (
    MAX_BUNDLE_BYTES,
    SigstoreBundle,
    check_bundle,
    is_bundle_type,
    needs_manifest,
    parse_bundle,
)

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 64 * 1024
"""A simple-signing payload is a few hundred bytes; a larger one is not downloaded."""
MAX_SIGNATURES = 32
"""Signatures read from one signature manifest (cosign appends one per `cosign sign`), and bundles read
from one artifact's referrers."""

Finding = tuple[str, str]
"""A signature that does not count: what it is (`signature 1`, `bundle 2`) and why (a phrase)."""


def signature_tag(digest: str) -> str:
    """Where cosign puts the classic signatures of `digest`: the tag `sha256-<hex>.sig`."""
    return f"{referrers_tag(digest)}.sig"


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
    found = _classic_findings(digest, layers, payloads, keys)
    if isinstance(found, CosignSignature):
        return found
    raise _refusal(what, keys, found)


def check_bundles(
    digest: str, bundles: Sequence[SigstoreBundle | str], keys: CosignKeys, what: str, manifest: bytes | None = None
) -> CosignSignature:
    """The first Sigstore bundle that a trusted key verifies and that names `digest`; `bundles` holds each
    bundle read, or why it could not be (a phrase). VerificationFailed naming what is wrong with each."""
    found = _bundle_findings(digest, bundles, keys, manifest)
    if isinstance(found, CosignSignature):
        return found
    if not found:
        raise VerificationFailed(f"{what} carries no cosign signature: no Sigstore bundle refers to it")
    raise _refusal(what, keys, found)


async def verify_signed(client: RegistryClient, artifact: OciReference, keys: CosignKeys) -> CosignSignature:
    """Fetches the signatures of `artifact` (a reference with its digest), classic first, then Sigstore
    bundles, and checks them; VerificationFailed when none is valid, before anything of the artifact
    itself is downloaded."""
    assert artifact.digest is not None
    what, digest = str(artifact), artifact.digest
    classic = await _read_classic(client, artifact, keys, what)
    if isinstance(classic, CosignSignature):
        return classic
    referrers = await _read_bundles(client, artifact, what)
    manifest = None
    if any(isinstance(bundle, SigstoreBundle) and needs_manifest(bundle) for bundle in referrers.bundles):
        manifest = (await client.resolve(artifact.repository, digest)).raw
    bundles = _bundle_findings(digest, referrers.bundles, keys, manifest)
    if isinstance(bundles, CosignSignature):
        return bundles
    if classic is None and not bundles:
        others = f" (its referrers are {', '.join(referrers.other_types)})" if referrers.other_types else ""
        raise VerificationFailed(
            f"{what} carries no cosign signature: its repository has no tag {signature_tag(digest)}, and no "
            f"Sigstore bundle refers to it{others}; sign it with `cosign sign --key`",
            url=artifact.repository_url,
        )
    missing = [] if classic is not None else [("the classic layout", f"no tag {signature_tag(digest)}")]
    raise _refusal(what, keys, [*(classic or []), *bundles], missing)


def _refusal(
    what: str, keys: CosignKeys, found: list[Finding], missing: list[Finding] | None = None
) -> VerificationFailed:
    """Why no signature counts: one problem shared by all of them said once, else each one's own."""
    distinct = list(dict.fromkeys(problem for _, problem in found))
    if len(distinct) == 1 and not missing:
        listed = distinct[0]
    else:
        listed = "; ".join(f"{label}: {problem}" for label, problem in [*found, *(missing or [])])
    return VerificationFailed(
        f"{what} has no valid cosign signature by a key of {keys.origin} ({', '.join(keys.names)}): {listed}"
    )


def _classic_findings(
    digest: str, layers: Sequence[Descriptor], payloads: Mapping[str, bytes], keys: CosignKeys
) -> CosignSignature | list[Finding]:
    problems: list[Finding] = []
    for number, layer in enumerate(layers, start=1):
        found = _check_one(digest, layer, payloads.get(layer.digest), keys)
        if isinstance(found, CosignSignature):
            return found
        problems.append((f"signature {number}", found))
    return problems


def _bundle_findings(
    digest: str, bundles: Sequence[SigstoreBundle | str], keys: CosignKeys, manifest: bytes | None
) -> CosignSignature | list[Finding]:
    problems: list[Finding] = []
    for number, bundle in enumerate(bundles, start=1):
        found = bundle if isinstance(bundle, str) else check_bundle(digest, bundle, keys, manifest)
        if isinstance(found, CosignSignature):
            return found
        problems.append((f"bundle {number}", found))
    return problems


async def _read_classic(
    client: RegistryClient, artifact: OciReference, keys: CosignKeys, what: str
) -> CosignSignature | list[Finding] | None:
    """The classic signatures' verdict: a trusted signature, why none counts, or None without a `.sig` tag."""
    assert artifact.digest is not None
    try:
        fetched = await client.resolve(artifact.repository, signature_tag(artifact.digest))
    except ArtifactNotFound:
        return None
    try:
        layers = signature_layers(fetched.raw, fetched.media_type, what)
    except VerificationFailed as error:
        return [("the classic layout", str(error).removeprefix(f"{what}: "))]
    if not layers:
        return [("the classic layout", "its signature manifest holds no signature")]
    wanted = [
        layer for layer in layers if SIGNATURE_ANNOTATION in layer.annotations and layer.size <= MAX_PAYLOAD_BYTES
    ]
    payloads = await _download_blobs(client, artifact.repository, wanted, MAX_PAYLOAD_BYTES, what)
    return _classic_findings(artifact.digest, layers, payloads, keys)


@dataclass(frozen=True)
class _Referrers:
    bundles: list[SigstoreBundle | str]
    """Each Sigstore bundle that refers to the artifact, or why it could not be read."""
    other_types: list[str]
    """The artifact types of the other referrers (SBOMs, attestations of other tools)."""


async def _read_bundles(client: RegistryClient, artifact: OciReference, what: str) -> _Referrers:
    """The Sigstore bundles among the artifact's referrers (at most MAX_SIGNATURES), downloaded and parsed."""
    assert artifact.digest is not None
    listed = await client.referrers(artifact.repository, artifact.digest)
    if listed is None:
        return _Referrers([], [])
    try:
        index = parse_manifest(listed.raw, listed.media_type, what)
    except SourceError as error:
        return _Referrers([f"malformed: its list of referrers is not an index ({error})"], [])
    if not isinstance(index, ImageIndex):
        return _Referrers(["malformed: its list of referrers is not an index"], [])
    wanted = [entry for entry in index.manifests if is_bundle_type(entry.artifact_type)][:MAX_SIGNATURES]
    others = sorted(
        {entry.artifact_type or entry.media_type for entry in index.manifests} - {e.artifact_type for e in wanted}
    )
    bundles: list[SigstoreBundle | str] = []
    for entry in wanted:
        layer = await _bundle_layer(client, artifact.repository, entry, what)
        if isinstance(layer, str):
            bundles.append(layer)
            continue
        payloads = await _download_blobs(client, artifact.repository, [layer], MAX_BUNDLE_BYTES, what)
        bundles.append(parse_bundle(payloads[layer.digest]))
    return _Referrers(bundles, others)


async def _bundle_layer(client: RegistryClient, repository: str, entry: Descriptor, what: str) -> Descriptor | str:
    """The bundle layer of a referrer's manifest, or why it has none Moor downloads (a phrase)."""
    fetched = await client.resolve(repository, entry.digest)
    try:
        manifest = parse_manifest(fetched.raw, fetched.media_type, f"{what}'s referrer {entry.digest}")
    except SourceError as error:
        return f"malformed: {error}"
    layers = (
        [layer for layer in manifest.layers if is_bundle_type(layer.media_type)]
        if isinstance(manifest, ImageManifest)
        else []
    )
    if not layers:
        return f"malformed: the referrer {entry.digest} holds no Sigstore bundle layer"
    if layers[0].size > MAX_BUNDLE_BYTES:
        return f"malformed: the bundle is over {MAX_BUNDLE_BYTES // 1024} KiB"
    return layers[0]


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
    key = keys.signer_of(signature, payload)
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


async def _download_blobs(
    client: RegistryClient, repository: str, layers: Sequence[Descriptor], max_bytes: int, what: str
) -> dict[str, bytes]:
    """The bytes of each layer (digests verified by the client), through a private temporary directory."""
    if not layers:
        return {}
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-cosign-"))
    try:
        blobs: dict[str, bytes] = {}
        for number, layer in enumerate(layers):
            if layer.digest in blobs:
                continue
            path = directory / f"blob-{number}"
            try:
                await client.blob_to(repository, layer.digest, path, max_bytes)
            except ArtifactTooLarge:
                raise VerificationFailed(
                    f"{what}: the cosign signature {layer.digest} is larger than its manifest says"
                ) from None
            blobs[layer.digest] = await asyncio.to_thread(path.read_bytes)
        return blobs
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)

"""Checking cosign signatures: a signature counts only when a trusted key verifies it and its payload
names the artifact's digest; every refusal names the artifact and why."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from moor.source.errors import VerificationFailed
from moor.source.oci.cosign import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    CosignKeys,
    CosignSignature,
    check_signatures,
    signature_layers,
    signature_tag,
)
from moor.source.oci.manifest import Descriptor

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
WHAT = f"oci://registry.example.com/team/manifests:1.0@{DIGEST}"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def payload_for(digest: str, kind: str = "cosign container image signature") -> bytes:
    """What `cosign sign` signs: the simple-signing JSON naming the manifest digest."""
    document = {
        "critical": {
            "identity": {"docker-reference": "registry.example.com/team/manifests"},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": None,
    }
    return json.dumps(document).encode()


def sign(key: PrivateKey, payload: bytes) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(payload)
    return base64.b64encode(signature).decode()


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def layer(payload: bytes, signature: str | None) -> Descriptor:
    annotations = {} if signature is None else {SIGNATURE_ANNOTATION: signature}
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    return Descriptor(SIMPLE_SIGNING, digest, len(payload), annotations)


def check(payload: bytes, signature: str | None, keys: CosignKeys) -> CosignSignature:
    signed = layer(payload, signature)
    return check_signatures(DIGEST, [signed], {signed.digest: payload}, keys, WHAT)


@pytest.fixture(scope="module")
def ours() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def trusted(ours: ec.EllipticCurvePrivateKey) -> CosignKeys:
    stranger = ec.generate_private_key(ec.SECP256R1())
    data = {"team.pub": public_pem(ours), "other-team.pub": public_pem(stranger), "README": b"not a key"}
    return CosignKeys.from_secret(data, "the trust Secret shop/cosign-keys")


def test_a_valid_signature_names_the_key_that_verified_it(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys
) -> None:
    payload = payload_for(DIGEST)
    assert check(payload, sign(ours, payload), trusted) == CosignSignature(key="team.pub")
    assert str(CosignSignature(key="team.pub")) == "signed with cosign key team.pub"


def test_a_signature_by_another_key_is_refused(trusted: CosignKeys) -> None:
    payload = payload_for(DIGEST)
    with pytest.raises(VerificationFailed) as refused:
        check(payload, sign(ec.generate_private_key(ec.SECP256R1()), payload), trusted)
    message = str(refused.value)
    assert message.startswith(f"{WHAT} has no valid cosign signature by a key of the trust Secret shop/cosign-keys")
    assert "(other-team.pub, team.pub)" in message and "verifies with none of the trusted keys" in message


def test_a_trusted_signature_of_another_digest_is_refused(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys
) -> None:
    payload = payload_for(OTHER_DIGEST)  # a genuine signature, copied from another artifact
    with pytest.raises(VerificationFailed) as refused:
        check(payload, sign(ours, payload), trusted)
    assert f"signed by team.pub, but for {OTHER_DIGEST}, not this artifact's digest" in str(refused.value)


def test_a_trusted_signature_of_another_type_is_refused(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    payload = payload_for(DIGEST, kind="https://example.com/attestation")
    with pytest.raises(VerificationFailed) as refused:
        check(payload, sign(ours, payload), trusted)
    assert "critical.type is 'https://example.com/attestation'" in str(refused.value)


def test_a_payload_altered_after_signing_is_refused(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    signature = sign(ours, payload_for(OTHER_DIGEST))
    with pytest.raises(VerificationFailed) as refused:
        check(payload_for(DIGEST), signature, trusted)
    assert "verifies with none of the trusted keys" in str(refused.value)


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (lambda good: good[:-4] + "!!!!", "malformed: the signature is not base64"),
        (lambda good: "", "malformed: the signature is empty"),
        (lambda good: base64.b64encode(b"\x30\x02junk").decode(), "verifies with none of the trusted keys"),
        (lambda good: None, f"malformed: the layer has no {SIGNATURE_ANNOTATION} annotation"),
    ],
    ids=["not-base64", "empty", "not-a-signature", "no-annotation"],
)
def test_a_corrupted_signature_is_refused(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys, corrupt: Callable[[str], str | None], problem: str
) -> None:
    payload = payload_for(DIGEST)
    with pytest.raises(VerificationFailed) as refused:
        check(payload, corrupt(sign(ours, payload)), trusted)
    assert problem in str(refused.value)


def test_one_valid_signature_among_several_is_enough(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    good_payload, stale_payload = payload_for(DIGEST), payload_for(OTHER_DIGEST)
    stale = layer(stale_payload, sign(ours, stale_payload))
    good = layer(good_payload, sign(ours, good_payload))
    payloads = {stale.digest: stale_payload, good.digest: good_payload}
    assert check_signatures(DIGEST, [stale, good], payloads, trusted, WHAT).key == "team.pub"


def test_each_signature_refused_for_its_own_reason_is_named(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys
) -> None:
    stale_payload, good_payload = payload_for(OTHER_DIGEST), payload_for(DIGEST)
    stale = layer(stale_payload, sign(ours, stale_payload))
    forged = layer(good_payload, sign(ec.generate_private_key(ec.SECP256R1()), good_payload))
    payloads = {stale.digest: stale_payload, forged.digest: good_payload}
    with pytest.raises(VerificationFailed) as refused:
        check_signatures(DIGEST, [stale, forged], payloads, trusted, WHAT)
    message = str(refused.value)
    assert f"signature 1: signed by team.pub, but for {OTHER_DIGEST}" in message
    assert "; signature 2: it verifies with none of the trusted keys" in message


def test_a_signature_manifest_without_signatures_is_refused(trusted: CosignKeys) -> None:
    with pytest.raises(VerificationFailed) as refused:
        check_signatures(DIGEST, [], {}, trusted, WHAT)
    assert str(refused.value) == f"{WHAT} carries no cosign signature: its signature manifest holds none"


def test_a_payload_too_large_to_download_is_refused(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    payload = payload_for(DIGEST)
    with pytest.raises(VerificationFailed) as refused:
        check_signatures(DIGEST, [layer(payload, sign(ours, payload))], {}, trusted, WHAT)
    assert "malformed: the payload is over 64 KiB" in str(refused.value)


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(public_exponent=65537, key_size=2048), ed25519.Ed25519PrivateKey.generate()],
    ids=["rsa", "ed25519"],
)
def test_rsa_and_ed25519_keys_verify_too(key: PrivateKey) -> None:
    payload = payload_for(DIGEST)
    keys = CosignKeys.from_secret({"ci.pub": public_pem(key)})
    assert check(payload, sign(key, payload), keys).key == "ci.pub"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({}, "holds no cosign public key (a key ending in .pub), so no artifact can be verified"),
        ({"cosign.key": b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"}, "holds no cosign public key"),
        ({"cosign.pub": b"not a key"}, "cosign.pub is not a PEM public key"),
        (
            {"p384.pub": public_pem(ec.generate_private_key(ec.SECP384R1()))},
            "p384.pub is an ECDSA key on secp384r1; Moor checks ECDSA P-256",
        ),
        (
            {"weak.pub": public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))},
            "weak.pub is an RSA key of 1024 bits",
        ),
    ],
    ids=["empty", "private-key-only", "not-pem", "other-curve", "weak-rsa"],
)
def test_a_secret_without_a_usable_key_is_refused(data: dict[str, bytes], problem: str) -> None:
    with pytest.raises(VerificationFailed) as refused:
        CosignKeys.from_secret(data, "the trust Secret shop/cosign-keys")
    message = str(refused.value)
    assert message.startswith("the trust Secret shop/cosign-keys") and problem in message, message


def test_the_signature_tag_and_layers_are_cosigns() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "a" * 64 + ".sig"
    payload = payload_for(DIGEST)
    signed = layer(payload, "c2ln")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": OTHER_DIGEST, "size": 2},
        "layers": [signed.as_json(), {"mediaType": "text/plain", "digest": OTHER_DIGEST, "size": 1}],
    }
    assert signature_layers(json.dumps(manifest).encode(), None, WHAT) == (signed,)
    with pytest.raises(VerificationFailed, match="the cosign signature manifest is malformed"):
        signature_layers(b"[]", None, WHAT)

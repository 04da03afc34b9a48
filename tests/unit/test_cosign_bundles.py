"""Checking Sigstore bundles (cosign v3's signatures): a bundle counts only when a trusted key verifies it
and it names the artifact's digest, as cosign's own signature (not an attestation); every refusal says why."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from moor.source.errors import VerificationFailed
from moor.source.oci.cosign import check_bundles
from moor.source.oci.cosign_keys import CosignKeys, CosignSignature
from moor.source.oci.sigstore_bundle import (
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE,
    SigstoreBundle,
    check_bundle,
    is_bundle_type,
    pae,
    parse_bundle,
)

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER_DIGEST = "sha256:" + "b" * 64
WHAT = f"oci://registry.example.com/team/manifests:1.0@{DIGEST}"

# What cosign v3.1.3 wrote (`cosign sign --key … --new-bundle-format`, offline) for this digest and key.
COSIGN_DIGEST = "sha256:6e12fababee9d495dfc076ca2aa5b20c4682b2ef0c6b955de170569590bfcab0"
COSIGN_PUBLIC_KEY = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdTMPlqXiwac8VXKuzIlW+p1j3MMl
i4rBd8TccDP9e3lDaHT88bUKv7eBVWmFAx337QSULl2GQ9sQI0CtBZUE3A==
-----END PUBLIC KEY-----
"""
COSIGN_BUNDLE = (
    b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial":{"publicKey":{"hint":'
    b'"zHNMCmHZ9g9cdtef71FLf7fd3eGJNj7q68NKpwB4o/s="}}, "dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90'
    b"by5pby9TdGF0ZW1lbnQvdjEiLCAic3ViamVjdCI6W3siZGlnZXN0Ijp7InNoYTI1NiI6IjZlMTJmYWJhYmVlOWQ0OTVkZmMwNzZjYTJhYTVi"
    b"MjBjNDY4MmIyZWYwYzZiOTU1ZGUxNzA1Njk1OTBiZmNhYjAifSwgImFubm90YXRpb25zIjp7fX1dLCAicHJlZGljYXRlVHlwZSI6Imh0dHBz"
    b'Oi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwgInByZWRpY2F0ZSI6e319", "payloadType":"application/vnd.in-toto+json",'
    b' "signatures":[{"sig":"MEUCIQCy6xRywAQTKckvgmaYL9QOHFaPV0aZSOT1In/0uKi9LgIgR81pwxy/X/vl0/5+WLpJRTGrwwb5YPXfp7H'
    b'dswROQ0g="}]}}'
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def statement(digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE) -> bytes:
    algorithm, _, hex_digest = digest.partition(":")
    document = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {algorithm: hex_digest}, "annotations": {}}],
        "predicateType": predicate_type,
        "predicate": {},
    }
    return json.dumps(document).encode()


def dsse_bundle(key: ec.EllipticCurvePrivateKey, payload: bytes, *, signed: bytes | None = None) -> bytes:
    """A bundle as `cosign sign` writes it: a DSSE envelope of `payload`, signed over its PAE (or over `signed`)."""
    kind = "application/vnd.in-toto+json"
    signature = key.sign(signed if signed is not None else pae(kind, payload), ec.ECDSA(hashes.SHA256()))
    envelope = {"payload": b64(payload), "payloadType": kind, "signatures": [{"sig": b64(signature)}]}
    material = {"publicKey": {"hint": "aGludA=="}}
    return json.dumps(
        {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material, "dsseEnvelope": envelope}
    ).encode()


def message_bundle(key: ec.EllipticCurvePrivateKey, message: bytes, *, digest: bytes | None = None) -> bytes:
    """A bundle as `cosign sign-blob --new-bundle-format` writes it for the manifest's bytes."""
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    content = {
        "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest or hashlib.sha256(message).digest())},
        "signature": b64(signature),
    }
    return json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "messageSignature": content}).encode()


def parsed(raw: bytes) -> SigstoreBundle:
    bundle = parse_bundle(raw)
    assert isinstance(bundle, SigstoreBundle), bundle
    return bundle


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def ours() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def trusted(ours: ec.EllipticCurvePrivateKey) -> CosignKeys:
    return CosignKeys.from_secret({"team.pub": public_pem(ours)}, "the trust Secret shop/cosign-keys")


def test_a_bundle_cosign_wrote_verifies_with_its_key() -> None:
    keys = CosignKeys.from_secret({"ci.pub": COSIGN_PUBLIC_KEY})
    found = check_bundle(COSIGN_DIGEST, parsed(COSIGN_BUNDLE), keys, None)
    assert found == CosignSignature(key="ci.pub", bundle=True)
    assert str(found) == "signed with cosign key ci.pub in a Sigstore bundle"


def test_the_bundle_cosign_wrote_does_not_count_for_another_artifact() -> None:
    keys = CosignKeys.from_secret({"ci.pub": COSIGN_PUBLIC_KEY})
    found = check_bundle(DIGEST, parsed(COSIGN_BUNDLE), keys, None)
    assert found == f"signed by ci.pub, but for {COSIGN_DIGEST}, not this artifact's digest"


def test_a_dsse_signature_names_the_key_that_verified_it(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    bundle = parsed(dsse_bundle(ours, statement(DIGEST)))
    assert check_bundles(DIGEST, [bundle], trusted, WHAT) == CosignSignature(key="team.pub", bundle=True)


def test_a_dsse_signature_by_another_key_or_altered_is_refused(trusted: CosignKeys) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(VerificationFailed) as refused:
        check_bundles(DIGEST, [parsed(dsse_bundle(stranger, statement(DIGEST)))], trusted, WHAT)
    message = str(refused.value)
    assert message.startswith(f"{WHAT} has no valid cosign signature by a key of the trust Secret shop/cosign-keys")
    assert "(team.pub): it verifies with none of the trusted keys" in message


def test_a_signature_over_the_bare_payload_instead_of_its_pae_is_refused(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys
) -> None:
    payload = statement(DIGEST)
    found = check_bundle(DIGEST, parsed(dsse_bundle(ours, payload, signed=payload)), trusted, None)
    assert found == "it verifies with none of the trusted keys (made by another key, or altered)"


def test_an_attestation_is_not_a_signature(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    bundle = parsed(dsse_bundle(ours, statement(DIGEST, "https://spdx.dev/Document")))
    found = check_bundle(DIGEST, bundle, trusted, None)
    assert found == (
        "signed by team.pub, but it is an attestation of type 'https://spdx.dev/Document', not a cosign "
        f"signature ({COSIGN_SIGN_PREDICATE})"
    )


def test_a_message_signature_over_the_manifest_verifies(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    bundle = parsed(message_bundle(ours, MANIFEST))
    assert check_bundle(DIGEST, bundle, trusted, MANIFEST) == CosignSignature(key="team.pub", bundle=True)
    assert check_bundle(DIGEST, bundle, trusted, None) == (
        "it verifies with none of the trusted keys (made by another key, or altered)"
    )


def test_a_message_signature_of_another_artifact_is_refused(
    ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys
) -> None:
    other = b'{"schemaVersion":2}'
    bundle = parsed(message_bundle(ours, other))
    found = check_bundle(DIGEST, bundle, trusted, MANIFEST)
    assert found == f"a message signature of sha256:{hashlib.sha256(other).hexdigest()}, not of this artifact's digest"
    lying = parsed(message_bundle(ours, other, digest=hashlib.sha256(MANIFEST).digest()))  # claims our digest
    assert check_bundle(DIGEST, lying, trusted, MANIFEST) == (
        "it verifies with none of the trusted keys (made by another key, or altered)"
    )


def test_a_keyless_bundle_says_moor_does_not_check_certificates(trusted: CosignKeys) -> None:
    document = json.loads(dsse_bundle(ec.generate_private_key(ec.SECP256R1()), statement(DIGEST)))
    document["verificationMaterial"] = {"certificate": {"rawBytes": "MIIB"}}
    found = check_bundle(DIGEST, parsed(json.dumps(document).encode()), trusted, None)
    assert isinstance(found, str) and found.startswith("a keyless signature (a Fulcio certificate)")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json", "malformed: the bundle is not JSON"),
        (b'{"mediaType": "application/json"}', "malformed: the bundle has no Sigstore bundle mediaType"),
        (json.dumps({"mediaType": BUNDLE_MEDIA_TYPE}).encode(), "holds neither a dsseEnvelope nor a messageSignature"),
        (
            json.dumps(
                {
                    "mediaType": BUNDLE_MEDIA_TYPE,
                    "dsseEnvelope": {"payload": "!!", "payloadType": "x", "signatures": []},
                }
            ).encode(),
            "the DSSE envelope lacks its payload, payloadType or signatures",
        ),
        (
            json.dumps(
                {
                    "mediaType": BUNDLE_MEDIA_TYPE,
                    "messageSignature": {"messageDigest": {"algorithm": "MD5"}, "signature": "c2ln"},
                }
            ).encode(),
            "the message digest is not a SHA-2 digest",
        ),
    ],
    ids=["not-json", "not-a-bundle", "empty", "bad-envelope", "bad-digest"],
)
def test_a_malformed_bundle_is_named(raw: bytes, problem: str) -> None:
    found = parse_bundle(raw)
    assert isinstance(found, str) and problem in found, found


def test_each_bundle_refused_for_its_own_reason_is_named(ours: ec.EllipticCurvePrivateKey, trusted: CosignKeys) -> None:
    bundles = [parsed(dsse_bundle(ours, statement(OTHER_DIGEST))), parse_bundle(b"{}")]
    with pytest.raises(VerificationFailed) as refused:
        check_bundles(DIGEST, bundles, trusted, WHAT)
    message = str(refused.value)
    assert f"bundle 1: signed by team.pub, but for {OTHER_DIGEST}, not this artifact's digest" in message
    assert "; bundle 2: malformed: the bundle has no Sigstore bundle mediaType" in message


def test_no_bundle_at_all_says_so(trusted: CosignKeys) -> None:
    with pytest.raises(VerificationFailed) as refused:
        check_bundles(DIGEST, [], trusted, WHAT)
    assert str(refused.value) == f"{WHAT} carries no cosign signature: no Sigstore bundle refers to it"


def test_pae_and_bundle_types_are_the_specs() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert is_bundle_type(BUNDLE_MEDIA_TYPE)
    assert is_bundle_type("application/vnd.dev.sigstore.bundle+json;version=0.2")
    assert not is_bundle_type("application/vnd.dev.cosign.simplesigning.v1+json")

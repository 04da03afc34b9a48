"""The public keys a trust Secret holds, and the one way a signature is checked against them.

Both of cosign's layouts (the classic `.sig` tag and Sigstore bundles) verify with these: a PEM public
key of every Secret key ending in `.pub`, ECDSA P-256 with SHA-256 (what `cosign generate-key-pair`
makes), RSA of 2048 bits or more (PKCS #1 v1.5, SHA-256) and Ed25519.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from moor.source.errors import VerificationFailed

PROVIDER = "cosign"
PUBLIC_KEY_SUFFIX = ".pub"
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

    def signer_of(self, signature: bytes, message: bytes) -> str | None:
        """The name of the first trusted key that verifies `signature` over `message`; None when none does."""
        return next((name for name, key in self.keys if _verifies(key, signature, message)), None)

    def __repr__(self) -> str:
        return f"CosignKeys({', '.join(self.names)})"


@dataclass(frozen=True)
class CosignSignature:
    """A trusted signature of an artifact: which key of the trust Secret verified it, and in which layout."""

    key: str
    bundle: bool = False
    """Read from a Sigstore bundle (an OCI 1.1 referrer), not from the classic `.sig` tag."""

    def __str__(self) -> str:
        return f"signed with cosign key {self.key}" + (" in a Sigstore bundle" if self.bundle else "")


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, message)
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

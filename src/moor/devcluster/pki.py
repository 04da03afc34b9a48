"""The local cluster's own certificate authority and every certificate and key its components use.

ECDSA P-256 throughout: minting a whole cluster's PKI takes milliseconds, so each `up` gets a fresh one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moor.private_files import replace_private

VALIDITY = timedelta(days=365)
CLOCK_SKEW = timedelta(hours=1)
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1",)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, in memory."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return private_key_pem(self.key)


@dataclass(frozen=True)
class CertFiles:
    """Where one certificate and its key were written."""

    cert: Path
    key: Path


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def create_ca(common_name: str = "moor-devcluster-ca") -> KeyPair:
    """A self-signed CA that signs every serving and client certificate of one local cluster."""
    key = new_key()
    now = datetime.now(UTC)
    subject = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate, key)


def issue_certificate(
    ca: KeyPair,
    common_name: str,
    *,
    organizations: Iterable[str] = (),
    server: bool = False,
    client: bool = False,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> KeyPair:
    """A leaf certificate signed by `ca`; `server` adds serverAuth (and SANs), `client` clientAuth."""
    key = new_key()
    now = datetime.now(UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


def cert_files(directory: Path, stem: str) -> CertFiles:
    """Where `write_key_pair` puts the pair named `stem` (e.g. `admin-client`)."""
    return CertFiles(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")


def write_key_pair(pair: KeyPair, directory: Path, stem: str) -> CertFiles:
    files = cert_files(directory, stem)
    directory.mkdir(parents=True, exist_ok=True)
    files.cert.write_bytes(pair.certificate_pem())
    replace_private(files.key, pair.key_pem())
    return files


@dataclass(frozen=True)
class ClusterPKI:
    """Every credential file of one local cluster; clients are keyed by component name."""

    directory: Path
    ca: CertFiles
    apiserver: CertFiles
    service_account_key: Path
    service_account_public_key: Path
    clients: dict[str, CertFiles]
    serving: dict[str, CertFiles]


# Who each client certificate says it is. The controller manager and scheduler use the users the
# API server's bootstrap RBAC policy already grants; admin and kwok (which plays every fake node's
# kubelet) are in system:masters.
CLIENT_IDENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("moor-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kwok": ("system:kwok-controller", ("system:masters",)),
}
SERVING_COMPONENTS = ("kube-controller-manager", "kube-scheduler")


def mint_cluster_pki(directory: Path, *, service_ip: str) -> ClusterPKI:
    """Creates a CA and every certificate the cluster needs under `directory` (keys are 0600)."""
    ca = create_ca()
    ca_files = write_key_pair(ca, directory, "ca")
    apiserver = issue_certificate(
        ca,
        "kube-apiserver",
        server=True,
        dns_names=(
            *LOOPBACK_NAMES,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ip_addresses=(*LOOPBACK_IPS, service_ip),
    )
    clients = {
        component: write_key_pair(
            issue_certificate(ca, common_name, organizations=groups, client=True),
            directory,
            f"{component}-client",
        )
        for component, (common_name, groups) in CLIENT_IDENTITIES.items()
    }
    serving = {
        component: write_key_pair(
            issue_certificate(ca, component, server=True, dns_names=LOOPBACK_NAMES, ip_addresses=LOOPBACK_IPS),
            directory,
            f"{component}-serving",
        )
        for component in SERVING_COMPONENTS
    }
    signing_key = new_key()
    service_account_key = directory / "service-account.key"
    service_account_public_key = directory / "service-account.pub"
    replace_private(service_account_key, private_key_pem(signing_key))
    service_account_public_key.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ClusterPKI(
        directory=directory,
        ca=ca_files,
        apiserver=write_key_pair(apiserver, directory, "kube-apiserver-serving"),
        service_account_key=service_account_key,
        service_account_public_key=service_account_public_key,
        clients=clients,
        serving=serving,
    )

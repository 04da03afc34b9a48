"""The local cluster's PKI: every certificate chains to its own CA, serving certificates name loopback,
client certificates carry the identities RBAC expects, and private keys are readable by the owner only."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moor.devcluster.pki import ClusterPKI, mint_cluster_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    return mint_cluster_pki(tmp_path_factory.mktemp("pki"), service_ip="10.96.0.1")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def all_certificates(pki: ClusterPKI) -> dict[str, Path]:
    certs = {"kube-apiserver": pki.apiserver.cert}
    certs |= {f"{name} client": files.cert for name, files in pki.clients.items()}
    certs |= {f"{name} serving": files.cert for name, files in pki.serving.items()}
    return certs


def test_every_certificate_chains_to_the_cluster_ca(pki: ClusterPKI) -> None:
    ca = load(pki.ca.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    for name, path in all_certificates(pki).items():
        certificate = load(path)
        certificate.verify_directly_issued_by(ca)  # raises if the signature or issuer is wrong
        assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, name


def test_serving_certificates_name_127_0_0_1_and_localhost(pki: ClusterPKI) -> None:
    serving = {"kube-apiserver": pki.apiserver.cert} | {name: f.cert for name, f in pki.serving.items()}
    for name, path in serving.items():
        certificate = load(path)
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress), name
        assert "localhost" in sans.get_values_for_type(x509.DNSName), name
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in usages, name

    apiserver = load(pki.apiserver.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.96.0.1") in apiserver.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in apiserver.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("client", "user", "groups"),
    [
        ("admin", "moor-admin", ["system:masters"]),
        ("kube-controller-manager", "system:kube-controller-manager", []),
        ("kube-scheduler", "system:kube-scheduler", []),
    ],
)
def test_client_certificates_carry_the_identity_rbac_knows(
    pki: ClusterPKI, client: str, user: str, groups: list[str]
) -> None:
    certificate = load(pki.clients[client].cert)

    assert [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [user]
    assert [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == groups
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_private_keys_are_readable_by_the_owner_only(pki: ClusterPKI) -> None:
    keys = [pki.ca.key, pki.apiserver.key, pki.service_account_key]
    keys += [files.key for files in (*pki.clients.values(), *pki.serving.values())]

    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert len(set(keys)) == len(keys) == len(list(pki.directory.glob("*.key")))

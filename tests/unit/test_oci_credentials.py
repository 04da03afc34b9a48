"""Registry credentials from a Secret or a docker config, and that the password never shows."""

from __future__ import annotations

import base64
import json

import pytest

from moor.source import InvalidSourceSpec
from moor.source.oci import RegistryCredentials, from_docker_config

DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"


def docker_config(auths: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"auths": auths, **extra}).encode()


def auth(pair: str) -> str:
    return base64.b64encode(pair.encode()).decode()


def test_an_opaque_secret_gives_username_and_password() -> None:
    secret = {"username": b"ci\n", "password": b"pa:ss"}
    assert RegistryCredentials.from_secret("Opaque", secret, "ghcr.io") == RegistryCredentials("ci", "pa:ss")


def test_an_opaque_secret_without_both_keys_is_refused() -> None:
    with pytest.raises(InvalidSourceSpec, match="needs 'username' and 'password'"):
        RegistryCredentials.from_secret("Opaque", {"username": b"ci"}, "ghcr.io")


@pytest.mark.parametrize(
    "key", ["registry.example:5000", "https://registry.example:5000", "https://registry.example:5000/v1/"]
)
def test_a_docker_config_secret_is_read_by_host_however_the_key_is_written(key: str) -> None:
    config = docker_config({"other.example": {"auth": auth("x:y")}, key: {"auth": auth("ci:pa:ss")}})
    found = RegistryCredentials.from_secret(DOCKER_CONFIG, {".dockerconfigjson": config}, "registry.example:5000")
    assert found == RegistryCredentials("ci", "pa:ss")


def test_a_docker_config_entry_may_give_username_and_password_instead_of_auth() -> None:
    config = docker_config({"ghcr.io": {"username": "ci", "password": "pw"}})
    assert from_docker_config(config, "ghcr.io", "config.json") == RegistryCredentials("ci", "pw")


def test_docker_hub_has_several_names() -> None:
    config = docker_config({"https://index.docker.io/v1/": {"auth": auth("me:pw")}})
    assert from_docker_config(config, "registry-1.docker.io", "config.json") == RegistryCredentials("me", "pw")


def test_a_docker_config_secret_without_the_host_says_which_hosts_it_has() -> None:
    config = docker_config({"ghcr.io": {"auth": auth("a:b")}, "quay.io": {"auth": auth("c:d")}})
    with pytest.raises(InvalidSourceSpec, match=r"no credentials for registry.example \(it has: ghcr.io, quay.io\)"):
        RegistryCredentials.from_secret(DOCKER_CONFIG, {".dockerconfigjson": config}, "registry.example")


def test_a_docker_config_file_without_the_host_means_anonymous() -> None:
    assert from_docker_config(docker_config({"ghcr.io": {"auth": auth("a:b")}}), "quay.io", "config.json") is None


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        ({}, "has no '.dockerconfigjson' key"),
        ({".dockerconfigjson": b"{not json"}, "is not JSON"),
        ({".dockerconfigjson": b"[]"}, "is not a JSON object"),
        ({".dockerconfigjson": docker_config({"h": {"auth": "%%%"}})}, "is not base64 of user:password"),
        ({".dockerconfigjson": docker_config({"h": {"auth": auth("nocolon")}})}, "is not base64 of user:password"),
        ({".dockerconfigjson": docker_config({"h": {"identitytoken": "t"}})}, "holds a token"),
        ({".dockerconfigjson": docker_config({"h": "x"})}, "is not an object"),
    ],
)
def test_a_broken_docker_config_secret_is_refused_with_the_cause(data: dict[str, bytes], cause: str) -> None:
    with pytest.raises(InvalidSourceSpec, match=cause):
        RegistryCredentials.from_secret(DOCKER_CONFIG, data, "h")


def test_a_credential_helper_is_named_rather_than_silently_ignored() -> None:
    config = docker_config({"ghcr.io": {}}, credsStore="desktop")
    with pytest.raises(InvalidSourceSpec, match=r"credential helper 'desktop'.*--creds"):
        from_docker_config(config, "ghcr.io", "~/.docker/config.json")
    helper = docker_config({}, credHelpers={"gcr.io": "gcloud"})
    with pytest.raises(InvalidSourceSpec, match="credential helper 'gcloud'"):
        from_docker_config(helper, "gcr.io", "~/.docker/config.json")
    assert from_docker_config(helper, "ghcr.io", "~/.docker/config.json") is None


def test_the_password_never_shows_in_a_repr() -> None:
    credentials = RegistryCredentials("ci", "s3cret")
    assert "s3cret" not in repr(credentials)
    assert "s3cret" not in str(credentials)
    assert "ci" in repr(credentials)


def test_basic_authorization_encodes_user_and_password() -> None:
    header = RegistryCredentials("ci", "pa:ss").basic_authorization()
    assert header == "Basic " + auth("ci:pa:ss")

"""The registry and chart-server fixtures work the way a user's own tools use them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry_fixtures import (
    FLUX_CONFIG_MEDIA_TYPE,
    FLUX_CONTENT_MEDIA_TYPE,
    OCI_LAYER_MEDIA_TYPE,
    REVISION_ANNOTATION,
    ChartServer,
    CosignKeys,
    Registry,
    ToolFailed,
    client_ssl_context,
    generate_cosign_keys,
    run_tool,
)


def write_manifests(directory: Path) -> Path:
    (directory / "apps").mkdir(parents=True)
    (directory / "apps" / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    return directory


def write_chart(directory: Path, name: str = "demo", version: str = "0.1.0") -> Path:
    chart = directory / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
    )
    return chart


def manifest(registry: Registry, reference: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(registry.run("crane", "manifest", reference).stdout)
    return found


def test_flux_artifact_pushed_with_oras_is_pulled_back_with_auth(registry: Registry, tmp_path: Path) -> None:
    source = write_manifests(tmp_path / "source")
    pushed = registry.push_flux_artifact(source, "team/manifests", "1.0.0", revision="main@sha1:abc")

    found = manifest(registry, pushed.reference)
    assert found["config"]["mediaType"] == FLUX_CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in found["layers"]] == [FLUX_CONTENT_MEDIA_TYPE]
    assert found["annotations"][REVISION_ANNOTATION] == "main@sha1:abc"
    assert registry.run("crane", "digest", pushed.reference).stdout.strip() == pushed.digest

    pulled = tmp_path / "pulled"
    pulled.mkdir()
    registry.run("oras", "pull", f"{registry.host}/team/manifests@{pushed.digest}", "--output", pulled)
    with tarfile.open(pulled / "artifact.tgz") as archive:
        assert "apps/config.yaml" in archive.getnames()


def test_generic_image_layer_pushed_with_crane(registry: Registry, tmp_path: Path) -> None:
    source = write_manifests(tmp_path / "source")
    pushed = registry.push_image_layer(source, "team/image", "2.0.0", annotations={REVISION_ANNOTATION: "v2"})

    found = manifest(registry, pushed.reference)
    assert [layer["mediaType"] for layer in found["layers"]] == [OCI_LAYER_MEDIA_TYPE]
    assert found["annotations"] == {REVISION_ANNOTATION: "v2"}
    assert registry.run("crane", "ls", f"{registry.host}/team/image").stdout.split() == ["2.0.0"]


def test_pulls_without_credentials_are_refused(registry: Registry, tmp_path: Path) -> None:
    pushed = registry.push_image_layer(write_manifests(tmp_path / "source"), "team/private", "1.0.0")

    request = urllib.request.Request(
        f"https://{registry.host}/v2/team/private/manifests/1.0.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=client_ssl_context(registry.ca), timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Basic ")

    anonymous = {**registry.env, "DOCKER_CONFIG": str(tmp_path / "no-credentials")}
    with pytest.raises(ToolFailed, match=r"401|UNAUTHORIZED|unauthorized"):
        run_tool("crane", "manifest", pushed.reference, env=anonymous)


def test_chart_pushed_with_helm_to_oci(registry: Registry, tmp_path: Path) -> None:
    pushed = registry.push_chart(write_chart(tmp_path, "ocidemo", "1.2.3"), "charts")

    assert pushed.reference == f"{registry.host}/charts/ocidemo:1.2.3"
    assert pushed.digest.startswith("sha256:")
    out = tmp_path / "out"
    out.mkdir()
    registry.run("helm", "pull", registry.oci_url("charts/ocidemo"), "--version", "1.2.3", "--destination", out)
    assert (out / "ocidemo-1.2.3.tgz").is_file()


def test_chart_pulled_from_the_chart_server_with_basic_auth_and_its_ca(
    chart_server: ChartServer, tmp_path: Path
) -> None:
    chart_server.publish(write_chart(tmp_path, "web", "0.1.0"))
    chart_server.publish(write_chart(tmp_path / "next", "web", "0.2.0"))
    out = tmp_path / "out"
    out.mkdir()
    credentials = ["--username", chart_server.username, "--password", chart_server.password]

    run_tool(
        "helm", "pull", "web", "--repo", chart_server.url, "--version", "0.1.0", *credentials,
        "--ca-file", chart_server.ca_bundle, "--destination", out, env=chart_server.env,
    )  # fmt: skip

    assert (out / "web-0.1.0.tgz").is_file()
    index = (chart_server.directory / "index.yaml").read_text()
    assert "version: 0.1.0" in index and "version: 0.2.0" in index
    assert any(r.status == 200 and r.authorized for r in chart_server.requests_for("/index.yaml"))
    with pytest.raises(ToolFailed, match="401"):
        run_tool(
            "helm", "pull", "web", "--repo", chart_server.url, "--ca-file", chart_server.ca_bundle,
            "--destination", out, env=chart_server.env,
        )  # fmt: skip


@pytest.mark.parametrize("sigstore_bundle", [False, True], ids=["sig-tag", "sigstore-bundle"])
def test_cosign_signs_offline_and_verifies_only_with_the_signers_key(
    registry: Registry, cosign_keys: CosignKeys, tmp_path: Path, sigstore_bundle: bool
) -> None:
    pushed = registry.push_flux_artifact(
        write_manifests(tmp_path / "source"), f"team/signed-{str(sigstore_bundle).lower()}", "1.0"
    )
    assert registry.verify(pushed, cosign_keys).returncode != 0

    registry.sign(pushed, cosign_keys, sigstore_bundle=sigstore_bundle)

    assert registry.verify(pushed, cosign_keys).returncode == 0
    stranger = generate_cosign_keys(tmp_path / "stranger", registry.env)
    assert registry.verify(pushed, stranger).returncode != 0
    tags = registry.run("crane", "ls", pushed.reference.rpartition(":")[0]).stdout.split()
    signature_tag = pushed.digest.replace(":", "-") + ("" if sigstore_bundle else ".sig")
    assert signature_tag in tags


def test_chart_server_answers_not_modified_to_the_etag_it_gave(chart_server: ChartServer, tmp_path: Path) -> None:
    chart_server.publish(write_chart(tmp_path, "cached", "1.0.0"))
    context = client_ssl_context(chart_server.ca)
    auth = "Basic " + base64.b64encode(f"{chart_server.username}:{chart_server.password}".encode()).decode()

    def get(**headers: str) -> tuple[int, str]:
        request = urllib.request.Request(f"{chart_server.url}/index.yaml", headers={"Authorization": auth, **headers})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status, response.headers["ETag"]
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers["ETag"]

    status, etag = get()
    assert status == 200
    assert get(**{"If-None-Match": etag}) == (304, etag)
    chart_server.publish(write_chart(tmp_path / "next", "cached", "1.1.0"))
    assert get(**{"If-None-Match": etag})[0] == 200


def test_a_ready_tarball_is_pushed_byte_for_byte(registry: Registry, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(hostile, "w:gz") as archive:
        entry = tarfile.TarInfo("../escape.yaml")
        archive.addfile(entry, io.BytesIO(b""))
    digest = "sha256:" + hashlib.sha256(hostile.read_bytes()).hexdigest()

    flux = manifest(registry, registry.push_flux_artifact(hostile, "team/hostile-flux", "1").reference)
    image = manifest(registry, registry.push_image_layer(hostile, "team/hostile-image", "1").reference)

    assert [layer["digest"] for layer in flux["layers"] + image["layers"]] == [digest, digest]

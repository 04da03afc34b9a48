"""Syncs from OCI artifacts: what CI published to a real registry (the CNCF distribution registry with
TLS and htpasswd auth, pushed with oras, crane and `moor push artifact`) is applied like a commit, a newer
tag in a semver range rolls in, and an artifact that cannot be used never replaces the last good one."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.support.moor_fixtures import Moor, config_map, manifest, moor_cli
from tests.support.registry_fixtures import Registry


def write_app(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.yaml").write_text(manifest(config_map("app-config", {"version": version})))
    return directory


def registry_secrets(moor: Moor, registry: Registry, *, password: str | None = None) -> None:
    """registry-auth (a kubernetes.io/dockerconfigjson) and registry-ca (ca.crt) in the test's namespace."""
    config = registry.docker_config_json()
    if password is not None:
        auth = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
        config = json.dumps({"auths": {registry.host: {"auth": auth}}}).encode()
    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-auth"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64.b64encode(config).decode()},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-ca"},
                "data": {"ca.crt": base64.b64encode(registry.ca_bundle.read_bytes()).decode()},
            },
        )
    )


def oci_source_and_sync(moor: Moor, registry: Registry, repository: str, ref: dict[str, str]) -> None:
    spec: dict[str, Any] = {
        "url": registry.oci_url(repository),
        "ref": ref,
        "interval": "1h",
        "secretRef": {"name": "registry-auth"},
        "certSecretRef": {"name": "registry-ca"},
    }
    sync = {"sourceRef": {"kind": "OCIRepository", "name": "app"}, "path": ".", "interval": "1h", "retryInterval": "2s"}
    moor.apply(
        manifest(
            {"apiVersion": "moor.dev/v1", "kind": "OCIRepository", "metadata": {"name": "app"}, "spec": spec},
            {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app"}, "spec": sync},
        )
    )


def applied_version(moor: Moor) -> str | None:
    live = moor.get("configmap", "app-config")
    return None if live is None else str((live.get("data") or {}).get("version"))


def artifact_of(moor: Moor) -> dict[str, Any]:
    return dict(((moor.get("ocirepository", "app") or {}).get("status") or {}).get("artifact") or {})


def test_a_flux_artifact_is_applied_and_a_newer_tag_in_the_range_rolls_in(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/manifests"
    first = registry.push_flux_artifact(
        write_app(tmp_path / "v1", "1.0.0"),
        repository,
        "1.0.0",
        source="https://git.example.com/team/apps.git",
        revision="main@sha1:" + "1" * 40,
    )
    registry_secrets(moor, registry)
    oci_source_and_sync(moor, registry, repository, {"semver": ">=1.0.0 <2.0.0"})

    moor.wait_condition("sync", "app", "True", revision=f"1.0.0@{first.digest}")
    assert applied_version(moor) == "1.0.0"
    artifact = artifact_of(moor)
    assert artifact["revision"] == f"1.0.0@{first.digest}"
    assert artifact["source"] == "https://git.example.com/team/apps.git"
    assert artifact["sourceRevision"] == "main@sha1:" + "1" * 40

    registry.push_flux_artifact(write_app(tmp_path / "v2-major", "2.0.0"), repository, "2.0.0")  # out of range
    newer = registry.push_flux_artifact(write_app(tmp_path / "v1.1", "1.1.0"), repository, "1.1.0")
    assert moor.reconcile().returncode == 0
    moor.wait_condition("sync", "app", "True", revision=f"1.1.0@{newer.digest}")
    assert applied_version(moor) == "1.1.0"
    history = moor.cli("history", "sync", "app", "-o", "json")
    assert f"1.1.0@{newer.digest}" in history.stdout


def test_an_artifact_pushed_by_moor_or_as_a_generic_image_layer_is_applied(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/generic"
    registry.push_image_layer(write_app(tmp_path / "generic", "generic"), repository, "stable")
    registry_secrets(moor, registry)
    oci_source_and_sync(moor, registry, repository, {"tag": "stable"})
    moor.wait_for("the generic layer applied", lambda: applied_version(moor) == "generic", timeout=90)

    pushed = moor_cli(  # as CI runs it: no cluster credentials
        Path("/nonexistent/kubeconfig"),
        "push",
        "artifact",
        f"{registry.oci_url(repository)}:stable",
        "--path",
        str(write_app(tmp_path / "pushed", "pushed")),
        "--source",
        "https://git.example.com/team/apps.git",
        "--revision",
        "main@sha1:" + "2" * 40,
        "--creds",
        f"{registry.username}:{registry.password}",
        "--ca-file",
        str(registry.ca_bundle),
    )
    assert pushed.returncode == 0, pushed.stderr
    assert moor.reconcile().returncode == 0
    moor.wait_for("the pushed artifact applied", lambda: applied_version(moor) == "pushed", timeout=90)
    assert artifact_of(moor)["sourceRevision"] == "main@sha1:" + "2" * 40


def test_refused_credentials_and_an_unsafe_artifact_keep_the_last_good_version(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/guarded"
    good = registry.push_flux_artifact(write_app(tmp_path / "good", "good"), repository, "latest")
    registry_secrets(moor, registry)
    oci_source_and_sync(moor, registry, repository, {"tag": "latest"})
    moor.wait_condition("sync", "app", "True", revision=f"latest@{good.digest}")

    # A tarball with an entry outside it, pushed as the same tag: refused before anything is extracted.
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        body = manifest(config_map("app-config", {"version": "hostile"})).encode()
        entry = tarfile.TarInfo("../escape.yaml")
        entry.size = len(body)
        archive.addfile(entry, io.BytesIO(body))
    (hostile / "artifact.tgz").write_bytes(buffer.getvalue())
    registry.run(
        "oras",
        "push",
        "--config",
        "/dev/null:application/vnd.cncf.flux.config.v1+json",
        f"{registry.host}/{repository}:latest",
        "artifact.tgz:application/vnd.cncf.flux.content.v1.tar+gzip",
        cwd=hostile,
    )
    assert moor.reconcile().returncode == 1  # the source could not be made ready: the exit says so
    failed = moor.wait_condition("ocirepository", "app", "False", reason="UnsafeArtifact", timeout=90)
    assert "../escape.yaml" in failed["message"], failed
    assert artifact_of(moor)["revision"] == f"latest@{good.digest}"
    assert applied_version(moor) == "good"

    # Credentials the registry refuses: said so, naming the registry and user; still the last good version.
    registry_secrets(moor, registry, password="wrong")
    assert moor.reconcile().returncode == 1
    failed = moor.wait_condition("ocirepository", "app", "False", reason="AuthenticationFailed", timeout=90)
    assert f"the registry {registry.host} refused the credentials of user {registry.username!r}" in failed["message"]
    assert artifact_of(moor)["revision"] == f"latest@{good.digest}"
    assert applied_version(moor) == "good"

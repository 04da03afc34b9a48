"""Syncs from OCI artifacts: what CI published to a real registry (the CNCF distribution registry with
TLS and htpasswd auth, pushed with oras, crane and `moor push artifact`) is applied like a commit, a newer
tag in a semver range rolls in, an artifact not signed by a trusted cosign key is never pulled, and an
artifact that cannot be used never replaces the last good one."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.support.moor_fixtures import Moor, config_map, manifest, moor_cli
from tests.support.registry_fixtures import CosignKeys, PushedArtifact, Registry, generate_cosign_keys


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


def oci_source_and_sync(
    moor: Moor, registry: Registry, repository: str, ref: dict[str, str], *, verify_with: str | None = None
) -> None:
    """An OCIRepository `app` (verifying cosign signatures with the Secret `verify_with`) and a Sync `app` of it."""
    spec: dict[str, Any] = {
        "url": registry.oci_url(repository),
        "ref": ref,
        "interval": "1h",
        "secretRef": {"name": "registry-auth"},
        "certSecretRef": {"name": "registry-ca"},
    }
    if verify_with is not None:
        spec["verify"] = {"provider": "cosign", "secretRef": {"name": verify_with}}
    sync = {"sourceRef": {"kind": "OCIRepository", "name": "app"}, "path": ".", "interval": "1h", "retryInterval": "2s"}
    moor.apply(
        manifest(
            {"apiVersion": "moor.dev/v1", "kind": "OCIRepository", "metadata": {"name": "app"}, "spec": spec},
            {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app"}, "spec": sync},
        )
    )


def trust_secret(moor: Moor, keys: dict[str, CosignKeys]) -> None:
    """The Secret cosign-keys holding each key pair's public key under its name (e.g. `team.pub`)."""
    data = {name: base64.b64encode(pair.public_key.read_bytes()).decode() for name, pair in keys.items()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cosign-keys"}, "data": data}))


def hostile_tarball(directory: Path) -> Path:
    """A .tar.gz whose one entry would land outside the artifact (`../escape.yaml`)."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        body = manifest(config_map("app-config", {"version": "hostile"})).encode()
        entry = tarfile.TarInfo("../escape.yaml")
        entry.size = len(body)
        archive.addfile(entry, io.BytesIO(body))
    tarball = directory / "artifact.tgz"
    tarball.write_bytes(buffer.getvalue())
    return tarball


def new_artifact_events(moor: Moor) -> list[str]:
    events = json.loads(moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout)["items"]
    return [
        event["message"]
        for event in events
        if event["involvedObject"]["kind"] == "OCIRepository" and event["reason"] == "NewArtifact"
    ]


def assert_refused_and_kept(moor: Moor, refused: PushedArtifact, kept: PushedArtifact, *phrases: str) -> None:
    """The OCIRepository is Ready=False VerificationFailed naming the refused digest and `phrases`; its
    artifact, and what the Sync applied, stay at `kept`."""
    assert moor.reconcile().returncode == 1  # the source could not be made ready: the exit says so

    def refusal() -> dict[str, Any] | None:
        condition = moor.condition("ocirepository", "app")
        if condition is None or (condition["status"], condition["reason"]) != ("False", "VerificationFailed"):
            return None
        return condition if all(p in condition["message"] for p in (refused.digest, *phrases)) else None

    try:
        moor.wait_for("VerificationFailed naming the refused artifact", refusal, timeout=90)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {moor.condition('ocirepository', 'app')}") from None
    assert artifact_of(moor)["revision"].endswith(kept.digest)
    assert (moor.get("sync", "app") or {})["status"]["lastAppliedRevision"].endswith(kept.digest)


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
    registry.push_flux_artifact(hostile_tarball(tmp_path / "hostile"), repository, "latest")
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


def test_a_signed_artifact_is_applied_saying_who_signed_it_and_an_unsigned_one_is_never_pulled(
    moor: Moor, registry: Registry, cosign_keys: CosignKeys, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/signed"
    signed = registry.push_flux_artifact(write_app(tmp_path / "signed", "signed"), repository, "latest")
    registry.sign(signed, cosign_keys)  # `cosign sign --key`: the classic sha256-<hex>.sig tag
    registry_secrets(moor, registry)
    trust_secret(moor, {"team.pub": cosign_keys})
    oci_source_and_sync(moor, registry, repository, {"tag": "latest"}, verify_with="cosign-keys")

    moor.wait_condition("sync", "app", "True", revision=f"latest@{signed.digest}", timeout=90)
    assert applied_version(moor) == "signed"
    artifact = artifact_of(moor)
    assert artifact["verified"] is True
    assert artifact["verification"]["provider"] == "cosign"
    assert artifact["verification"]["key"] == "team.pub"
    assert artifact["verification"]["verifiedAt"]
    ready = moor.condition("ocirepository", "app")
    assert ready is not None and "signed with cosign key team.pub" in ready["message"], ready
    assert any(
        f"latest@{signed.digest}" in message and "signed with cosign key team.pub" in message
        for message in new_artifact_events(moor)
    ), new_artifact_events(moor)

    # Unsigned, as the same tag, and hostile: refused for its missing signature, so never extracted
    # (extracting it would have been UnsafeArtifact).
    unsigned = registry.push_flux_artifact(hostile_tarball(tmp_path / "unsigned"), repository, "latest")
    assert_refused_and_kept(moor, unsigned, signed, "carries no cosign signature", unsigned.digest.replace(":", "-"))
    assert applied_version(moor) == "signed"


def test_an_artifact_signed_by_an_untrusted_key_is_refused_until_its_key_is_trusted(
    moor: Moor, registry: Registry, cosign_keys: CosignKeys, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/partners"
    first = registry.push_flux_artifact(write_app(tmp_path / "first", "first"), repository, "1.0.0")
    registry.sign(first, cosign_keys)
    registry_secrets(moor, registry)
    oci_source_and_sync(moor, registry, repository, {"semver": ">=1.0.0"}, verify_with="cosign-keys")
    failed = moor.wait_condition("ocirepository", "app", "False", reason="VerificationFailed", timeout=90)
    assert (
        f"the Secret {moor.namespace}/cosign-keys does not exist, so no artifact can be verified" in failed["message"]
    )
    assert moor.get("configmap", "app-config") is None

    trust_secret(moor, {"team.pub": cosign_keys})
    assert moor.reconcile().returncode == 0
    moor.wait_condition("sync", "app", "True", revision=f"1.0.0@{first.digest}", timeout=90)

    partner = generate_cosign_keys(tmp_path / "partner", registry.env, "partner")
    second = registry.push_flux_artifact(write_app(tmp_path / "second", "second"), repository, "1.1.0")
    registry.sign(second, partner)
    assert_refused_and_kept(moor, second, first, "verifies with none of the trusted keys", "(team.pub)")
    assert applied_version(moor) == "first"

    trust_secret(moor, {"team.pub": cosign_keys, "partner.pub": partner})
    assert moor.reconcile().returncode == 0
    moor.wait_condition("sync", "app", "True", revision=f"1.1.0@{second.digest}", timeout=90)
    assert applied_version(moor) == "second"
    assert artifact_of(moor)["verification"]["key"] == "partner.pub"


def test_moor_diff_compares_what_the_artifact_applied_with_a_local_directory(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/manifests"
    pushed = registry.push_flux_artifact(write_app(tmp_path / "v1", "1.0.0"), repository, "1.0.0")
    registry_secrets(moor, registry)
    oci_source_and_sync(moor, registry, repository, {"tag": "1.0.0"})
    moor.wait_condition("sync", "app", "True", revision=f"1.0.0@{pushed.digest}")

    unchanged = moor.cli("diff", "sync", "app")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    changed = moor.cli("diff", "sync", "app", "--path", str(write_app(tmp_path / "next", "1.1.0")))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "app-config" in changed.stdout and "1.1.0" in changed.stdout
    assert applied_version(moor) == "1.0.0", "a diff changes nothing"

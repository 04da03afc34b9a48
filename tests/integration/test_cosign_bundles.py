"""Cosign v3's Sigstore bundles: an artifact signed the way `cosign sign` signs by default now (a bundle
stored as an OCI 1.1 referrer; the registry has no referrers API, so cosign and oras list it under the
fallback tag `sha256-<hex>`) is applied when a trusted key signed it; a bundle by another key, a genuine
bundle copied from another artifact, and no signature at all are refused, saying what was found, and
the last verified version stays applied. Either layout counts: a classic `.sig` signature still does,
and so does a message signature of the manifest made with `cosign sign-blob` and attached with oras."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_ocirepository import (
    applied_version,
    artifact_of,
    assert_refused_and_kept,
    oci_source_and_sync,
    registry_secrets,
    trust_secret,
    write_app,
)
from tests.support.moor_fixtures import Moor
from tests.support.registry_fixtures import CosignKeys, PushedArtifact, Registry, generate_cosign_keys

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def bundle_of(registry: Registry, artifact: PushedArtifact, destination: Path) -> Path:
    """The Sigstore bundle that refers to `artifact`, as the registry holds it (read with crane)."""
    repository = artifact.reference.rpartition(":")[0]
    listed = json.loads(registry.run("crane", "manifest", f"{repository}:{artifact.digest.replace(':', '-')}").stdout)
    referrer = next(entry for entry in listed["manifests"] if entry.get("artifactType") == BUNDLE)
    manifest = json.loads(registry.run("crane", "manifest", f"{repository}@{referrer['digest']}").stdout)
    layer = next(layer for layer in manifest["layers"] if layer["mediaType"] == BUNDLE)
    destination.write_text(registry.run("crane", "blob", f"{repository}@{layer['digest']}").stdout)
    return destination


def attach_bundle(registry: Registry, artifact: PushedArtifact, bundle: Path) -> None:
    """`oras attach` of a bundle file to the artifact, as a Sigstore bundle referrer."""
    registry.run(
        "oras", "attach", "--artifact-type", BUNDLE, artifact.pinned, f"{bundle.name}:{BUNDLE}", cwd=bundle.parent
    )


def test_an_artifact_signed_in_a_sigstore_bundle_is_applied_and_a_bundle_that_does_not_count_is_refused(
    moor: Moor, registry: Registry, cosign_keys: CosignKeys, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/bundles"
    first = registry.push_flux_artifact(write_app(tmp_path / "first", "first"), repository, "1.0.0")
    registry.sign(first, cosign_keys, sigstore_bundle=True)  # cosign v3's default: no .sig tag
    tags = registry.run("crane", "ls", first.reference.rpartition(":")[0]).stdout.split()
    assert first.digest.replace(":", "-") in tags and first.digest.replace(":", "-") + ".sig" not in tags
    registry_secrets(moor, registry)
    trust_secret(moor, {"team.pub": cosign_keys})
    oci_source_and_sync(moor, registry, repository, {"semver": ">=1.0.0"}, verify_with="cosign-keys")

    moor.wait_condition("sync", "app", "True", revision=f"1.0.0@{first.digest}", timeout=90)
    assert applied_version(moor) == "first"
    assert artifact_of(moor)["verification"]["key"] == "team.pub"
    ready = moor.condition("ocirepository", "app")
    assert ready is not None and "signed with cosign key team.pub in a Sigstore bundle" in ready["message"], ready

    # A bundle made by a key that is not trusted.
    stranger = generate_cosign_keys(tmp_path / "stranger", registry.env, "stranger")
    forged = registry.push_flux_artifact(write_app(tmp_path / "forged", "forged"), repository, "1.1.0")
    registry.sign(forged, stranger, sigstore_bundle=True)
    assert_refused_and_kept(
        moor,
        forged,
        first,
        "bundle 1: it verifies with none of the trusted keys",
        f"the classic layout: no tag {forged.digest.replace(':', '-')}.sig",
    )

    # A genuine bundle of the first version, copied onto another artifact.
    copied = registry.push_flux_artifact(write_app(tmp_path / "copied", "copied"), repository, "1.2.0")
    attach_bundle(registry, copied, bundle_of(registry, first, tmp_path / "first.bundle.json"))
    assert_refused_and_kept(
        moor, copied, first, f"signed by team.pub, but for {first.digest}, not this artifact's digest"
    )

    # Nothing at all.
    unsigned = registry.push_flux_artifact(write_app(tmp_path / "unsigned", "unsigned"), repository, "1.3.0")
    assert_refused_and_kept(moor, unsigned, first, "carries no cosign signature", "no Sigstore bundle refers to it")
    assert applied_version(moor) == "first"


def test_a_classic_signature_and_a_message_signature_bundle_count_too(
    moor: Moor, registry: Registry, cosign_keys: CosignKeys, tmp_path: Path
) -> None:
    repository = f"{moor.namespace}/either"
    classic = registry.push_flux_artifact(write_app(tmp_path / "classic", "classic"), repository, "1.0.0")
    registry.sign(classic, cosign_keys)  # the .sig tag
    registry_secrets(moor, registry)
    trust_secret(moor, {"team.pub": cosign_keys})
    oci_source_and_sync(moor, registry, repository, {"semver": ">=1.0.0"}, verify_with="cosign-keys")
    moor.wait_condition("sync", "app", "True", revision=f"1.0.0@{classic.digest}", timeout=90)
    ready = moor.condition("ocirepository", "app")
    assert ready is not None and ready["message"].endswith("(signed with cosign key team.pub)"), ready

    # `cosign sign-blob` of the manifest's bytes: a bundle holding a message signature, attached with oras.
    blob = registry.push_flux_artifact(write_app(tmp_path / "blob", "blob"), repository, "1.1.0")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(registry.run("crane", "manifest", blob.pinned).stdout)
    bundle = tmp_path / "manifest.bundle.json"
    registry.run(
        "cosign", "sign-blob", "--yes", "--key", cosign_keys.private_key, "--use-signing-config=false",
        "--tlog-upload=false", "--new-bundle-format=true", "--bundle", bundle, manifest,
        env={"COSIGN_PASSWORD": cosign_keys.password},
    )  # fmt: skip
    attach_bundle(registry, blob, bundle)
    assert moor.reconcile().returncode == 0
    moor.wait_condition("sync", "app", "True", revision=f"1.1.0@{blob.digest}", timeout=90)
    assert applied_version(moor) == "blob"
    assert artifact_of(moor)["verification"]["key"] == "team.pub"

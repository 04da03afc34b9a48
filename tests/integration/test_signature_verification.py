"""GitRepository.spec.verify end to end: signed revisions are applied, every other revision is refused
while the cluster keeps the last verified one. Real gpg, ssh-keygen and git; a real control plane."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.support.git_fixtures import GitWorkspace, Signer, SigningKeys
from tests.support.moor_fixtures import Moor, config_map, manifest


def trust_secret(moor: Moor, data: dict[str, bytes], name: str = "trusted-keys") -> None:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}))


def publish(repo: GitWorkspace, value: str, sign_with: Signer | None = None) -> str:
    """A commit that sets the ConfigMap `a` to `value`, pushed."""
    repo.write("a.yaml", manifest(config_map("a", {"v": value})))
    sha = repo.commit(f"Set a to {value}", sign_with=sign_with)
    repo.push()
    return sha


def value_of_a(moor: Moor) -> str:
    return str((moor.get("configmap", "a") or {}).get("data", {}).get("v"))


def artifact(moor: Moor) -> dict[str, Any]:
    return dict((moor.get("gitrepository", "app") or {})["status"]["artifact"])


def assert_refused(moor: Moor, sha: str, kept: str, kept_value: str, *phrases: str) -> None:
    """The source says VerificationFailed naming `sha`, and everything stays at the `kept` revision."""
    result = moor.cli("reconcile", "source", "app", "--timeout", "60")
    assert result.returncode == 1, result.stderr
    condition = moor.wait_condition("gitrepository", "app", "False", reason="VerificationFailed", revision=sha)
    for phrase in phrases:
        assert phrase in condition["message"], condition["message"]
    assert artifact(moor)["revision"].endswith(kept), "status.artifact keeps the last verified revision"
    assert moor.get("sync", "app")["status"]["lastAppliedRevision"].endswith(kept)
    assert value_of_a(moor) == kept_value
    assert moor.reconcile(with_source=False).returncode == 0, "the Sync stays Ready at the kept revision"
    assert value_of_a(moor) == kept_value


def warning_reasons(moor: Moor) -> list[str]:
    result = moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json")
    return [
        event["reason"]
        for event in json.loads(result.stdout)["items"]
        if event["involvedObject"]["kind"] == "GitRepository" and event["type"] == "Warning"
    ]


def test_signed_commits_are_applied_and_unsigned_untrusted_or_tampered_ones_refused(
    moor: Moor, git_repo: GitWorkspace, signing_keys: SigningKeys
) -> None:
    alice, mallory = signing_keys.gpg("Alice Signer"), signing_keys.gpg("Mallory Forger")
    bob = signing_keys.ssh("bob@moor.invalid")
    trust_secret(moor, {"alice.asc": alice.public_key, "allowed_signers": bob.allowed_signer().encode()})
    good = publish(git_repo, "alice-1", sign_with=alice)
    moor.source_and_sync(git_repo, source_spec="verify: {mode: HEAD, secretRef: {name: trusted-keys}}")
    moor.wait_condition("sync", "app", "True", revision=good)
    assert value_of_a(moor) == "alice-1"
    verification = artifact(moor)["verification"]
    assert artifact(moor)["verified"] is True
    assert verification["mode"] == "HEAD"
    assert verification["signatures"] == [
        {"object": "commit", "method": "gpg", "signer": alice.uid, "key": alice.fingerprint}
    ]
    ready = moor.condition("gitrepository", "app")
    assert ready is not None and f"commit signed by {alice.uid}" in ready["message"]

    unsigned = publish(git_repo, "unsigned")
    assert_refused(moor, unsigned, good, "alice-1", f"commit {unsigned[:12]} is not signed")
    assert "VerificationFailed" in warning_reasons(moor)

    untrusted = publish(git_repo, "mallory", sign_with=mallory)
    assert_refused(moor, untrusted, good, "alice-1", f"GPG key {mallory.fingerprint}, which is not among the trusted")

    publish(git_repo, "alice-2", sign_with=alice)
    tampered = git_repo.rewrite_head_message("Set a to alice-2, honestly")
    git_repo.push(force=True)
    assert_refused(moor, tampered, good, "alice-1", "does not match its content", alice.uid)

    by_bob = publish(git_repo, "bob-1", sign_with=bob)
    assert moor.reconcile().returncode == 0
    assert value_of_a(moor) == "bob-1"
    assert artifact(moor)["revision"].endswith(by_bob)
    assert artifact(moor)["verification"]["signatures"] == [
        {"object": "commit", "method": "ssh", "signer": "bob@moor.invalid", "key": bob.fingerprint}
    ]


def test_signed_tags_are_applied_and_a_tag_by_an_untrusted_key_refused(
    moor: Moor, git_repo: GitWorkspace, signing_keys: SigningKeys
) -> None:
    alice, bob, eve = signing_keys.gpg("Alice Signer"), signing_keys.ssh("bob@moor.invalid"), signing_keys.ssh("eve@x")
    trust_secret(moor, {"alice.asc": alice.public_key, "allowed_signers": bob.allowed_signer().encode()})
    first = publish(git_repo, "1.0.0", sign_with=alice)
    git_repo.tag("v1.0.0", message="Release 1.0.0", sign_with=bob)
    git_repo.push()
    moor.source_and_sync(
        git_repo,
        source_spec="""
            ref: {semver: ">=1.0.0"}
            verify: {mode: TagAndHEAD, secretRef: {name: trusted-keys}}
        """,
    )
    moor.wait_condition("sync", "app", "True", revision=f"v1.0.0@sha1:{first}")
    assert artifact(moor)["verification"]["signatures"] == [
        {"object": "commit", "method": "gpg", "signer": alice.uid, "key": alice.fingerprint},
        {"object": "tag", "method": "ssh", "signer": "bob@moor.invalid", "key": bob.fingerprint},
    ]

    wrong = publish(git_repo, "1.1.0", sign_with=alice)
    git_repo.tag("v1.1.0", message="Release 1.1.0", sign_with=eve)
    git_repo.push()
    assert_refused(moor, wrong, first, "1.0.0", f"tag 'v1.1.0' is signed by SSH key {eve.fingerprint}")

    moor.kubectl(
        "patch",
        "gitrepository",
        "app",
        "-n",
        moor.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"verify":{"mode":"Tag"}}}',
    )
    unsigned_commit = publish(git_repo, "1.2.0")
    git_repo.tag("v1.2.0", message="Release 1.2.0", sign_with=alice)
    git_repo.push()
    assert moor.reconcile().returncode == 0, "Tag mode checks only the tag"
    assert value_of_a(moor) == "1.2.0"
    assert artifact(moor)["revision"] == f"v1.2.0@sha1:{unsigned_commit}"
    assert artifact(moor)["verification"]["signatures"] == [
        {"object": "tag", "method": "gpg", "signer": alice.uid, "key": alice.fingerprint}
    ]


def test_tag_mode_on_a_branch_is_stalled_and_a_missing_trust_secret_refuses(
    moor: Moor, git_repo: GitWorkspace, signing_keys: SigningKeys
) -> None:
    alice = signing_keys.gpg()
    publish(git_repo, "one", sign_with=alice)
    moor.source_and_sync(git_repo, source_spec="verify: {mode: Tag, secretRef: {name: trusted-keys}}")
    condition = moor.wait_condition("gitrepository", "app", "True", type_="Stalled")
    assert condition["reason"] == "InvalidSpec"
    assert (
        "spec.verify.mode Tag checks the signature of the tag the ref names, but the ref is branch 'main'"
        in (condition["message"])
    )

    moor.kubectl(
        "patch",
        "gitrepository",
        "app",
        "-n",
        moor.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"verify":{"mode":"HEAD"}}}',
    )
    condition = moor.wait_condition("gitrepository", "app", "False", reason="VerificationFailed")
    assert "the Secret" in condition["message"] and "trusted-keys does not exist" in condition["message"]
    assert moor.condition("gitrepository", "app", "Stalled") is None
    assert not moor.exists("configmap", "a")

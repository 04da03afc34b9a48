"""Signature checks of fetched revisions with real gpg, ssh-keygen and git: what is trusted, what is refused."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from moor.source import (
    ArtifactCache,
    GitRef,
    InvalidSourceSpec,
    Signatures,
    TrustedKeys,
    Verification,
    VerificationFailed,
    VerificationPolicy,
    fetch,
    resolve,
    resolve_and_fetch,
)
from tests.support.git_fixtures import GitWorkspace, Signer, SigningKeys, run_git

pytestmark = pytest.mark.git

MAIN = GitRef(branch="main")


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def publish(repo: GitWorkspace, text: str, sign_with: Signer | None = None) -> str:
    repo.write("app/config.yaml", text)
    sha = repo.commit(f"Set {text.strip()}", sign_with=sign_with)
    repo.push()
    return sha


def head_only(**keys: bytes) -> VerificationPolicy:
    return VerificationPolicy(TrustedKeys.from_secret(keys))


async def test_a_commit_signed_by_a_trusted_gpg_key_is_accepted_and_named(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice = signing_keys.gpg("Alice Signer")
    sha = publish(git_repo, "v1\n", sign_with=alice)
    artifact = await resolve_and_fetch(
        git_repo.url, MAIN, cache=cache, verify=head_only(**{"alice.asc": alice.public_key})
    )
    assert artifact.commit == sha
    assert artifact.signatures == Signatures(commit=Verification("gpg", alice.uid, alice.fingerprint))


async def test_a_commit_signed_by_a_trusted_ssh_key_is_accepted_and_named(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    bob = signing_keys.ssh("bob@moor.invalid")
    publish(git_repo, "v1\n", sign_with=bob)
    policy = head_only(allowed_signers=bob.allowed_signer().encode())
    artifact = await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=policy)
    assert artifact.signatures == Signatures(commit=Verification("ssh", "bob@moor.invalid", bob.fingerprint))


async def test_an_unsigned_commit_is_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice = signing_keys.gpg()
    sha = publish(git_repo, "v1\n")
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=head_only(**{"a.asc": alice.public_key}))
    assert str(caught.value) == f"revision main@sha1:{sha} is refused: commit {sha[:12]} is not signed"
    assert caught.value.reason == "VerificationFailed"


async def test_commits_signed_by_untrusted_gpg_and_ssh_keys_are_refused_naming_the_key(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice, mallory = signing_keys.gpg("Alice Signer"), signing_keys.gpg("Mallory Forger")
    bob, eve = signing_keys.ssh("bob@moor.invalid"), signing_keys.ssh("eve@moor.invalid")
    trust = VerificationPolicy(
        TrustedKeys.from_secret({"alice.asc": alice.public_key, "allowed_signers": bob.allowed_signer().encode()})
    )
    sha = publish(git_repo, "by mallory\n", sign_with=mallory)
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=trust)
    assert str(caught.value) == (
        f"revision main@sha1:{sha} is refused: commit {sha[:12]} is signed by GPG key {mallory.fingerprint}, "
        "which is not among the trusted keys"
    )

    sha = publish(git_repo, "by eve\n", sign_with=eve)
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=trust)
    assert str(caught.value) == (
        f"revision main@sha1:{sha} is refused: commit {sha[:12]} is signed by SSH key {eve.fingerprint}, "
        "which is not in allowed_signers"
    )


async def test_a_signature_of_a_kind_the_secret_holds_no_key_for_is_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice, bob = signing_keys.gpg(), signing_keys.ssh()
    sha = publish(git_repo, "by bob\n", sign_with=bob)
    with pytest.raises(
        VerificationFailed, match="has an SSH signature, but the trust Secret holds no 'allowed_signers'"
    ):
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=head_only(**{"a.asc": alice.public_key}))
    publish(git_repo, "by alice\n", sign_with=alice)
    with pytest.raises(VerificationFailed, match=r"has a GPG signature, but the trust Secret holds no \.asc key"):
        await resolve_and_fetch(
            git_repo.url, MAIN, cache=cache, verify=head_only(allowed_signers=b"x " + bob.public_key.encode())
        )
    assert sha


async def test_a_commit_signed_by_an_expired_gpg_key_is_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    old = signing_keys.gpg("Old Signer", expires="seconds=2")
    sha = publish(git_repo, "old\n", sign_with=old)
    await asyncio.sleep(3)  # past the key's expiry
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=head_only(**{"old.asc": old.public_key}))
    assert str(caught.value) == (
        f"revision main@sha1:{sha} is refused: commit {sha[:12]} is signed by {old.uid} "
        f"with GPG key {old.fingerprint}, which has expired"
    )


async def test_an_ssh_key_outside_its_allowed_signers_validity_is_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    bob = signing_keys.ssh()
    publish(git_repo, "v1\n", sign_with=bob)
    expired = bob.allowed_signer('valid-before="20200101"').encode()
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=head_only(allowed_signers=expired))
    assert f"is signed by SSH key {bob.fingerprint}, whose entry in allowed_signers has expired" in str(caught.value)


@pytest.mark.parametrize("kind", ["gpg", "ssh"])
async def test_a_tampered_commit_is_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys, kind: str
) -> None:
    signer: Signer
    if kind == "gpg":
        signer = alice = signing_keys.gpg()
        trust = head_only(**{"alice.asc": alice.public_key})
    else:
        signer = bob = signing_keys.ssh()
        trust = head_only(allowed_signers=bob.allowed_signer().encode())
    publish(git_repo, "v1\n", sign_with=signer)
    forged = git_repo.rewrite_head_message("Set v1 (and something else)")
    git_repo.push(force=True)
    with pytest.raises(VerificationFailed) as caught:
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=trust)
    message = str(caught.value)
    assert message.startswith(f"revision main@sha1:{forged} is refused: commit {forged[:12]} has ")
    assert message.endswith("that does not match its content: it was altered after it was signed")


async def test_signed_tags_are_verified_in_tag_mode_and_both_in_tag_and_head_mode(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice, bob = signing_keys.gpg(), signing_keys.ssh()
    sha = publish(git_repo, "v1\n", sign_with=alice)
    git_repo.tag("v1.0.0", message="Release 1.0.0", sign_with=bob)
    git_repo.push()
    trust = TrustedKeys.from_secret({"alice.asc": alice.public_key, "allowed_signers": bob.allowed_signer().encode()})
    by_bob = Verification("ssh", bob.principal, bob.fingerprint)

    tag_only = await resolve_and_fetch(
        git_repo.url, GitRef(semver="^1"), cache=cache, verify=VerificationPolicy(trust, commit=False, tag=True)
    )
    assert (tag_only.commit, tag_only.signatures) == (sha, Signatures(tag=by_bob))
    both = await resolve_and_fetch(
        git_repo.url, GitRef(tag="v1.0.0"), cache=cache, verify=VerificationPolicy(trust, commit=True, tag=True)
    )
    assert both.signatures == Signatures(commit=Verification("gpg", alice.uid, alice.fingerprint), tag=by_bob)
    assert str(both.signatures) == f"tag signed by {by_bob}, commit signed by {alice.uid} (GPG key {alice.fingerprint})"


async def test_tags_that_are_lightweight_unsigned_untrusted_or_renamed_are_refused(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice, mallory = signing_keys.gpg("Alice Signer"), signing_keys.gpg("Mallory Forger")
    publish(git_repo, "v1\n", sign_with=alice)
    git_repo.tag("light")
    git_repo.tag("plain", message="Unsigned")
    git_repo.tag("forged", message="By Mallory", sign_with=mallory)
    git_repo.tag("v1.0.0", message="Release 1.0.0", sign_with=alice)
    run_git("tag", "v9.9.9", git_repo.rev_parse("refs/tags/v1.0.0"), cwd=git_repo.work)  # the same tag object
    git_repo.push()
    tag_mode = VerificationPolicy(TrustedKeys.from_secret({"alice.asc": alice.public_key}), commit=False, tag=True)

    async def refusal(tag: str) -> str:
        with pytest.raises(VerificationFailed) as caught:
            await resolve_and_fetch(git_repo.url, GitRef(tag=tag), cache=cache, verify=tag_mode)
        return str(caught.value).partition(" is refused: ")[2]

    assert await refusal("light") == "tag 'light' is a lightweight tag, which cannot carry a signature"
    assert await refusal("plain") == "tag 'plain' is not signed"
    assert await refusal("forged") == (
        f"tag 'forged' is signed by GPG key {mallory.fingerprint}, which is not among the trusted keys"
    )
    assert await refusal("v9.9.9") == "tag 'v9.9.9' is a tag object made as 'v1.0.0', published under another name"
    verified = await resolve_and_fetch(git_repo.url, GitRef(tag="v1.0.0"), cache=cache, verify=tag_mode)
    assert verified.signatures == Signatures(tag=Verification("gpg", alice.uid, alice.fingerprint))


async def test_the_tag_object_is_fetched_when_its_commit_was_cached_by_a_branch(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice = signing_keys.gpg()
    sha = publish(git_repo, "v1\n")
    await resolve_and_fetch(git_repo.url, MAIN, cache=cache)  # cached without any tag
    git_repo.tag("v1.0.0", message="Release", sign_with=alice)
    git_repo.push()
    resolved = await resolve(git_repo.url, GitRef(tag="v1.0.0"))
    assert resolved.tag_object is not None and resolved.commit == sha
    policy = VerificationPolicy(TrustedKeys.from_secret({"a.asc": alice.public_key}), commit=False, tag=True)
    artifact = await fetch(git_repo.url, resolved, cache=cache, verify=policy)
    assert artifact.signatures is not None and artifact.signatures.tag is not None
    assert await cache.commits() == [sha]


async def test_tag_verification_of_a_branch_is_a_spec_error(
    git_repo: GitWorkspace, cache: ArtifactCache, signing_keys: SigningKeys
) -> None:
    alice = signing_keys.gpg()
    publish(git_repo, "v1\n", sign_with=alice)
    policy = VerificationPolicy(TrustedKeys.from_secret({"a.asc": alice.public_key}), commit=True, tag=True)
    with pytest.raises(InvalidSourceSpec, match="needs a tag or semver ref, not branch 'main'"):
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=policy)


async def test_a_trust_secret_with_a_broken_key_is_named_and_nothing_is_left_behind(
    git_repo: GitWorkspace,
    cache: ArtifactCache,
    signing_keys: SigningKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = signing_keys.gpg()
    publish(git_repo, "v1\n", sign_with=alice)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the private keyrings go
    broken = head_only(**{"alice.asc": alice.public_key, "typo.asc": b"not a key"})
    with pytest.raises(
        VerificationFailed, match=r"the key 'typo\.asc' of the trust Secret holds no OpenPGP public key"
    ):
        await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=broken)
    await resolve_and_fetch(git_repo.url, MAIN, cache=cache, verify=head_only(**{"alice.asc": alice.public_key}))
    assert list(scratch.iterdir()) == []

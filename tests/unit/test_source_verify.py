"""Reading what gpg and ssh-keygen said about a signature (outputs recorded from real runs), and trust Secrets."""

from __future__ import annotations

import pytest

from moor.source import InvalidSourceSpec, Signatures, TrustedKeys, Verification
from moor.source.verify import Refusal, read_gpg_status, read_ssh_output, signature_kind

ALICE_FPR = "B42EE99323E3B0E7970C0C688D89D762445EBCB0"
SUBKEY_FPR = "0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C"
MALLORY_FPR = "9688B03D28BB65666A418EA649AE2ECCBBC79445"
BOB_KEY = "SHA256:N1RcLD5I41YAUPcGBGiyX7vOJjqPjl0KyNtw8gxyODw"
EVE_KEY = "SHA256:Rn2XL6JAvI4NE3oGlOPv8glLr//1OV7L2Ix2wNXOW9g"

GOOD = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {ALICE_FPR} 0
[GNUPG:] SIG_ID lOYuVK7mGgUFCBgwLLg2T8g9xno 2026-11-26 1795663405
[GNUPG:] GOODSIG 8D89D762445EBCB0 Alice <alice@example.com>
[GNUPG:] VALIDSIG {ALICE_FPR} 2026-11-26 1795663405 0 4 0 22 8 00 {ALICE_FPR}
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""
UNKNOWN_KEY = f"""\
[GNUPG:] NEWSIG
[GNUPG:] ERRSIG 49AE2ECCBBC79445 22 8 00 1795663405 9 {MALLORY_FPR}
[GNUPG:] NO_PUBKEY 49AE2ECCBBC79445
"""
TAMPERED = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {ALICE_FPR} 0
[GNUPG:] BADSIG 8D89D762445EBCB0 Alice <alice@example.com>
"""
OLD_FPR = "3E2A750799E7658C3F1703F0FEC10D02B8CC1844"
EXPIRED_KEY = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEYEXPIRED 1795663442
[GNUPG:] EXPKEYSIG FEC10D02B8CC1844 Old <old@example.com>
[GNUPG:] VALIDSIG {OLD_FPR} 2026-11-26 1795663439 0 4 0 22 8 00 {OLD_FPR}
"""


def test_a_good_gpg_signature_names_the_user_id_and_the_primary_key() -> None:
    assert read_gpg_status(GOOD) == Verification("gpg", "Alice <alice@example.com>", ALICE_FPR)
    by_subkey = GOOD.replace(f"VALIDSIG {ALICE_FPR}", f"VALIDSIG {SUBKEY_FPR}", 1)
    assert read_gpg_status(by_subkey) == Verification("gpg", "Alice <alice@example.com>", ALICE_FPR)


def test_gpg_escapes_in_a_user_id_are_undone() -> None:
    escaped = GOOD.replace("Alice <alice@example.com>", "Zo%25e M%0Aller <z@example.com>")
    assert read_gpg_status(escaped) == Verification("gpg", "Zo%e M\nller <z@example.com>", ALICE_FPR)


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (UNKNOWN_KEY, f"is signed by GPG key {MALLORY_FPR}, which is not among the trusted keys"),
        (
            UNKNOWN_KEY.replace(f" {MALLORY_FPR}", ""),
            "is signed by GPG key 49AE2ECCBBC79445, which is not among the trusted keys",
        ),
        (
            TAMPERED,
            "has a signature by Alice <alice@example.com> (GPG key 8D89D762445EBCB0) that does not match its "
            "content: it was altered after it was signed",
        ),
        (
            EXPIRED_KEY,
            f"is signed by Old <old@example.com> with GPG key {OLD_FPR}, which has expired",
        ),
        (
            EXPIRED_KEY.replace("EXPKEYSIG", "REVKEYSIG"),
            f"is signed by Old <old@example.com> with GPG key {OLD_FPR}, which has been revoked",
        ),
        (
            GOOD.replace("GOODSIG", "EXPSIG"),
            f"has a signature by Alice <alice@example.com> (GPG key {ALICE_FPR}) that has expired",
        ),
        (
            UNKNOWN_KEY.replace(" 9 ", " 4 "),
            f"has a signature by GPG key {MALLORY_FPR} that gpg cannot check (error code 4)",
        ),
        ("", "has a GPG signature that gpg could not check"),
        (GOOD.replace("[GNUPG:] VALIDSIG", "[GNUPG:] IGNORED"), "has a GPG signature that gpg could not check"),
    ],
)
def test_every_other_gpg_outcome_is_refused_with_its_reason(status: str, problem: str) -> None:
    assert read_gpg_status(status) == Refusal(problem)


def test_a_bad_signature_beside_a_good_one_is_refused() -> None:
    outcome = read_gpg_status(GOOD + TAMPERED)
    assert isinstance(outcome, Refusal) and "altered" in outcome.problem


def test_a_good_ssh_signature_names_the_principal_and_the_key() -> None:
    said = f'Good "git" signature for bob@example.com with ED25519 key {BOB_KEY}\n'
    assert read_ssh_output(said) == Verification("ssh", "bob@example.com", BOB_KEY)


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        (
            f'Good "git" signature with ED25519 key {EVE_KEY}\nNo principal matched.\n',
            f"is signed by SSH key {EVE_KEY}, which is not in allowed_signers",
        ),
        (
            f'Good "git" signature with ED25519 key {BOB_KEY}\n'
            "/tmp/moor-verify-x/allowed_signers:1: key has expired: "
            "verify time 2026-11-26T03:23:29 > valid-before 2020-01-01T00:00:00\nNo principal matched.\n",
            f"is signed by SSH key {BOB_KEY}, whose entry in allowed_signers has expired "
            "(verify time 2026-11-26T03:23:29 > valid-before 2020-01-01T00:00:00)",
        ),
        (
            "Could not verify signature.\nSignature verification failed: incorrect signature\n",
            "has an SSH signature that does not match its content: it was altered after it was signed",
        ),
        ("", "has an SSH signature that ssh-keygen could not verify (nothing)"),
    ],
)
def test_every_other_ssh_outcome_is_refused_with_its_reason(said: str, problem: str) -> None:
    assert read_ssh_output(said) == Refusal(problem)


SIGNED_COMMIT = b"""\
tree aaff74984cccd156a469afa7d9ab10e4777beb24
author T <t@x> 1795663405 +0000
committer T <t@x> 1795663405 +0000
gpgsig -----BEGIN SSH SIGNATURE-----
 U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAghkbw3IzGkxxwe
 -----END SSH SIGNATURE-----

-----BEGIN PGP SIGNATURE----- in a message is not a signature
"""
SIGNED_TAG = b"""\
object c9a5fe2879afa83bb2038be2c5f2aad6cbcf24a6
type commit
tag v1
tagger T <t@x> 1795663405 +0000

Release notes quoting -----BEGIN SSH SIGNATURE----- mid-line
-----BEGIN PGP SIGNATURE-----

iHUEABYIAB0WIQS0LumTI+Ow55cMDGiNiddiRF68sAUCawemLQAKCRCNiddiRF68
-----END PGP SIGNATURE-----
"""


def test_the_kind_of_signature_is_read_from_the_object() -> None:
    assert signature_kind(SIGNED_COMMIT, "commit") == "ssh"
    assert signature_kind(SIGNED_COMMIT.replace(b"SSH SIGNATURE", b"PGP SIGNATURE"), "commit") == "gpg"
    assert signature_kind(SIGNED_COMMIT.replace(b"gpgsig ", b"gpgsig-sha256 "), "commit") == "ssh"
    assert signature_kind(SIGNED_COMMIT.replace(b"SSH SIGNATURE", b"SIGNED MESSAGE"), "commit") == "x509"
    assert signature_kind(SIGNED_COMMIT.replace(b"gpgsig ", b"mergetag "), "commit") is None
    assert signature_kind(SIGNED_TAG, "tag") == "gpg"
    assert signature_kind(SIGNED_TAG.split(b"-----BEGIN PGP")[0], "tag") is None


def test_a_trust_secret_is_read_into_gpg_keys_and_allowed_signers() -> None:
    trust = TrustedKeys.from_secret(
        {"b.asc": b"KEY B", "a.asc": b"KEY A", "allowed_signers": b"bob@x ssh-ed25519 AAAA", "README": b"ignored"}
    )
    assert trust.gpg_keys == (("a.asc", b"KEY A"), ("b.asc", b"KEY B"))
    assert trust.allowed_signers == b"bob@x ssh-ed25519 AAAA"
    assert repr(trust) == "TrustedKeys(a.asc, b.asc, allowed_signers)"
    assert TrustedKeys.from_secret({"allowed_signers": b"x"}).gpg_keys == ()


def test_a_trust_secret_without_keys_is_refused_naming_it() -> None:
    with pytest.raises(InvalidSourceSpec) as caught:
        TrustedKeys.from_secret({"README": b"x", "allowed_signers": b"\n"}, "the trust Secret ns/keys")
    assert str(caught.value) == (
        "the trust Secret ns/keys holds no GPG public key (a key ending in .asc) and no 'allowed_signers', "
        "so no revision can be verified"
    )


def test_signatures_describe_themselves() -> None:
    commit = Verification("gpg", "Alice <alice@example.com>", ALICE_FPR)
    tag = Verification("ssh", "bob@example.com", BOB_KEY)
    assert str(Signatures(commit=commit)) == f"commit signed by Alice <alice@example.com> (GPG key {ALICE_FPR})"
    assert str(Signatures(commit=commit, tag=tag)) == (
        f"tag signed by bob@example.com (SSH key {BOB_KEY}), commit signed by Alice <alice@example.com> "
        f"(GPG key {ALICE_FPR})"
    )

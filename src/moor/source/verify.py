"""Signed revisions: is a commit, or the annotated tag that names it, signed by a key the user trusts?

Trust comes from a Secret's data (`TrustedKeys`): armored OpenPGP public keys (every key ending in
`.asc`) and SSH signers in ssh-keygen's ALLOWED SIGNERS format (`allowed_signers`). A check runs
`git verify-commit --raw` or `git verify-tag --raw` in an artifact's kept git directory, with a private
temporary GNUPGHOME that holds only the trusted GPG keys (never the user's keyring; gpg-agent is never
started) and `gpg.ssh.allowedSignersFile` pointing at a private copy of allowed_signers. Whether the
signature is GPG or SSH is read from the signed object itself. Git's exit status is not relied upon:
its raw output is parsed (`read_gpg_status`, `read_ssh_output`), and anything other than a good
signature by a trusted, unexpired key is refused with a `VerificationFailed` that names the revision,
the problem and the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from moor.binaries import locate
from moor.private_files import write_private
from moor.processes import Completed, ProcessTimedOut
from moor.source.errors import GitCommandFailed, GitTimeout, InvalidSourceSpec, VerificationFailed
from moor.source.git_cli import git_environment, git_program, run_isolated
from moor.source.refs import ResolvedRevision

GPG_KEY_SUFFIX = ".asc"
ALLOWED_SIGNERS = "allowed_signers"

SignatureMethod = Literal["gpg", "ssh"]
SignatureKind = Literal["gpg", "ssh", "x509"]

# How each kind of signature begins (git's own list); x509 (gpgsm) signatures are refused.
_ARMOR_BEGIN: tuple[tuple[bytes, SignatureKind], ...] = (
    (b"-----BEGIN PGP SIGNATURE-----", "gpg"),
    (b"-----BEGIN PGP MESSAGE-----", "gpg"),
    (b"-----BEGIN SSH SIGNATURE-----", "ssh"),
    (b"-----BEGIN SIGNED MESSAGE-----", "x509"),
)
_SIGNATURE_HEADERS = (b"gpgsig", b"gpgsig-sha256")
# gpg options for the private keyring: no agent (only public keys live here), never a key server.
_GPG_CONF = "no-autostart\nno-auto-key-retrieve\n"
_GPG_STATUS = re.compile(r"^\[GNUPG:\] (?P<keyword>[A-Z_]+)(?: (?P<args>.*))?$")
_GPG_NO_PUBLIC_KEY = "9"
# ssh-keygen's words, as `git verify-* --raw` passes them on.
_SSH_GOOD = re.compile(r'^Good "git" signature for (?P<principal>.+) with (?P<type>\S+) key (?P<key>\S+)$')
_SSH_GOOD_UNKNOWN = re.compile(r'^Good "git" signature with (?P<type>\S+) key (?P<key>\S+)$')
_SSH_VALIDITY = re.compile(r"(?P<problem>key has expired|key is not yet valid)(?:: (?P<detail>.*))?$")
_SSH_INCORRECT = "incorrect signature"


@dataclass(frozen=True)
class Verification:
    """A trusted signature: who made it and with which key."""

    method: SignatureMethod
    signer: str
    """The key's user id (GPG) or its principal in allowed_signers (SSH)."""
    key: str
    """The primary key's fingerprint (GPG) or the key's SHA256 fingerprint (SSH)."""

    def __str__(self) -> str:
        return f"{self.signer} ({self.method.upper()} key {self.key})"


@dataclass(frozen=True)
class Signatures:
    """The trusted signatures a verified revision carries: its commit's, its tag's, or both."""

    commit: Verification | None = None
    tag: Verification | None = None

    def __str__(self) -> str:
        parts = [f"{name} signed by {found}" for name, found in (("tag", self.tag), ("commit", self.commit)) if found]
        return ", ".join(parts)


@dataclass(frozen=True)
class Refusal:
    """Why a signature is not accepted, as a phrase that follows the signed object's name."""

    problem: str


@dataclass(frozen=True, repr=False)
class TrustedKeys:
    """The keys a trust Secret holds: armored GPG public keys by their Secret key, and SSH allowed signers."""

    gpg_keys: tuple[tuple[str, bytes], ...] = ()
    allowed_signers: bytes | None = None
    origin: str = field(default="the trust Secret", compare=False)
    """How messages name where the keys came from."""

    @classmethod
    def from_secret(cls, data: Mapping[str, bytes], origin: str = "the trust Secret") -> TrustedKeys:
        """Reads a Secret's data (values already base64-decoded); other keys are ignored."""
        gpg_keys = tuple(sorted((name, value) for name, value in data.items() if name.endswith(GPG_KEY_SUFFIX)))
        allowed_signers = data.get(ALLOWED_SIGNERS) or None
        if not any(value.strip() for _, value in gpg_keys) and (allowed_signers is None or not allowed_signers.strip()):
            raise InvalidSourceSpec(
                f"{origin} holds no GPG public key (a key ending in {GPG_KEY_SUFFIX}) and no {ALLOWED_SIGNERS!r}, "
                "so no revision can be verified"
            )
        return cls(gpg_keys=gpg_keys, allowed_signers=allowed_signers, origin=origin)

    def __repr__(self) -> str:
        names = [name for name, _ in self.gpg_keys] + ([ALLOWED_SIGNERS] if self.allowed_signers else [])
        return f"TrustedKeys({', '.join(names)})"


@dataclass(frozen=True)
class VerificationPolicy:
    """What must carry a trusted signature before a revision is used, and which keys are trusted."""

    trust: TrustedKeys
    commit: bool = True
    """The commit the ref resolves to (mode HEAD)."""
    tag: bool = False
    """The annotated tag the ref names (mode Tag; both for TagAndHEAD)."""


async def verify_revision(
    git_dir: Path, resolved: ResolvedRevision, policy: VerificationPolicy, *, timeout: float
) -> Signatures:
    """Checks the signatures `policy` asks for in a fetched revision's git directory.

    The tag object (for a tag check) must already be in `git_dir`. Raises VerificationFailed naming
    the revision and the first problem found; GitCommandFailed or GitTimeout when git itself fails.
    """
    if policy.tag and (resolved.refname is None or not resolved.refname.startswith("refs/tags/")):
        raise InvalidSourceSpec(f"verifying a tag's signature needs a tag or semver ref, not {resolved.ref}")
    async with _Keyring.open(policy.trust, resolved, timeout) as keyring:
        tag = await keyring.verify_tag(git_dir) if policy.tag else None
        commit = await keyring.verify_commit(git_dir) if policy.commit else None
    return Signatures(commit=commit, tag=tag)


def signature_kind(raw_object: bytes, object_type: Literal["commit", "tag"]) -> SignatureKind | None:
    """Which kind of signature a raw commit or tag object carries (as `git cat-file` prints it); None if unsigned."""
    header, _, body = raw_object.partition(b"\n\n")
    if object_type == "commit":
        for line in header.split(b"\n"):
            name, _, value = line.partition(b" ")
            if name in _SIGNATURE_HEADERS:
                return _armor_kind(value.strip())
        return None
    # A tag's signature is appended to its message; git takes the last armor that starts a line.
    found: tuple[int, SignatureKind] | None = None
    for begin, kind in _ARMOR_BEGIN:
        at = (b"\n" + body).rfind(b"\n" + begin)
        if at >= 0 and (found is None or at > found[0]):
            found = (at, kind)
    return found[1] if found else None


def read_gpg_status(status: str) -> Verification | Refusal:
    """Judges gpg's status lines (`[GNUPG:] …`) for one signature checked against the trusted keyring."""
    seen: dict[str, list[str]] = {}
    for line in status.splitlines():
        match = _GPG_STATUS.match(line.strip())
        if match:
            seen.setdefault(match["keyword"], (match["args"] or "").split(" "))
    valid = seen.get("VALIDSIG")
    fingerprint = valid[-1] if valid and len(valid) >= 10 else (valid[0] if valid else None)

    def who(args: list[str]) -> str:
        return _gpg_unescape(" ".join(args[1:])) or "an unnamed key"

    if "BADSIG" in seen:
        args = seen["BADSIG"]
        return Refusal(
            f"has a signature by {who(args)} (GPG key {args[0]}) that does not match its content: "
            "it was altered after it was signed"
        )
    if "ERRSIG" in seen:
        args = seen["ERRSIG"]
        key = args[6] if len(args) > 6 and args[6] != "-" else args[0]
        if len(args) > 5 and args[5] == _GPG_NO_PUBLIC_KEY:
            return Refusal(f"is signed by GPG key {key}, which is not among the trusted keys")
        code = args[5] if len(args) > 5 else "?"
        return Refusal(f"has a signature by GPG key {key} that gpg cannot check (error code {code})")
    for keyword, problem in (
        ("REVKEYSIG", "which has been revoked"),
        ("EXPKEYSIG", "which has expired"),
    ):
        if keyword in seen:
            args = seen[keyword]
            return Refusal(f"is signed by {who(args)} with GPG key {fingerprint or args[0]}, {problem}")
    if "EXPSIG" in seen:
        args = seen["EXPSIG"]
        return Refusal(f"has a signature by {who(args)} (GPG key {fingerprint or args[0]}) that has expired")
    good = seen.get("GOODSIG")
    if good and fingerprint:
        return Verification(method="gpg", signer=who(good), key=fingerprint)
    return Refusal("has a GPG signature that gpg could not check")


def read_ssh_output(output: str) -> Verification | Refusal:
    """Judges what ssh-keygen said (through `git verify-* --raw`) about an SSH signature."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    unknown_key: str | None = None
    for line in lines:
        good = _SSH_GOOD.match(line)
        if good:
            return Verification(method="ssh", signer=good["principal"], key=good["key"])
        unknown = _SSH_GOOD_UNKNOWN.match(line)
        if unknown:
            unknown_key = unknown["key"]
    for line in lines:
        validity = _SSH_VALIDITY.search(line)
        if validity:
            detail = f" ({validity['detail']})" if validity["detail"] else ""
            key = f" {unknown_key}" if unknown_key else ""
            when = "has expired" if "expired" in validity["problem"] else "is not valid yet"
            return Refusal(f"is signed by SSH key{key}, whose entry in {ALLOWED_SIGNERS} {when}{detail}")
    if unknown_key is not None:
        return Refusal(f"is signed by SSH key {unknown_key}, which is not in {ALLOWED_SIGNERS}")
    if any(_SSH_INCORRECT in line.lower() for line in lines):
        return Refusal("has an SSH signature that does not match its content: it was altered after it was signed")
    said = lines[-1] if lines else "nothing"
    return Refusal(f"has an SSH signature that ssh-keygen could not verify ({said})")


# ------------------------------------------------------------------------------------------ private


class _Keyring:
    """A private directory with the trusted keys, and the git environment that checks against them."""

    def __init__(self, trust: TrustedKeys, resolved: ResolvedRevision, workdir: Path, timeout: float) -> None:
        self.trust = trust
        self.resolved = resolved
        self.timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout
        self._workdir = workdir
        self.env: dict[str, str] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, trust: TrustedKeys, resolved: ResolvedRevision, timeout: float) -> AsyncIterator[_Keyring]:
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-verify-"))
        try:
            keyring = cls(trust, resolved, workdir, timeout)
            await keyring._prepare()
            yield keyring
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def verify_commit(self, git_dir: Path) -> Verification:
        commit = self.resolved.commit
        subject = f"commit {commit[:12]}"
        raw = await self._git(git_dir, "cat-file", "commit", commit)
        kind = signature_kind(raw.stdout, "commit")
        return await self._check(git_dir, subject, kind, "verify-commit", commit)

    async def verify_tag(self, git_dir: Path) -> Verification:
        name = self.resolved.name or ""
        subject = f"tag {name!r}"
        tag_object = self.resolved.tag_object
        if tag_object is None:
            raise self._refused(subject, "is a lightweight tag, which cannot carry a signature")
        raw = await self._git(git_dir, "cat-file", "tag", tag_object)
        headers = _tag_headers(raw.stdout)
        if headers.get("tag") != name:
            made_as = headers.get("tag", "nothing")
            raise self._refused(subject, f"is a tag object made as {made_as!r}, published under another name")
        if headers.get("object") != self.resolved.commit:
            raise self._refused(subject, f"does not point at commit {self.resolved.commit[:12]} itself")
        kind = signature_kind(raw.stdout, "tag")
        return await self._check(git_dir, subject, kind, "verify-tag", tag_object)

    async def _check(
        self, git_dir: Path, subject: str, kind: SignatureKind | None, verb: str, oid: str
    ) -> Verification:
        if kind is None:
            raise self._refused(subject, "is not signed")
        if kind == "x509":
            raise self._refused(subject, "has an X.509 signature, which Moor does not verify (use GPG or SSH)")
        if kind == "gpg" and not self.trust.gpg_keys:
            origin = self.trust.origin
            raise self._refused(subject, f"has a GPG signature, but {origin} holds no {GPG_KEY_SUFFIX} key")
        if kind == "ssh" and self.trust.allowed_signers is None:
            origin = self.trust.origin
            raise self._refused(subject, f"has an SSH signature, but {origin} holds no {ALLOWED_SIGNERS!r}")
        result = await self._run(git_program(), "--git-dir", git_dir, verb, "--raw", oid, operation=f"git {verb}")
        said = result.stderr.decode("utf-8", "replace")
        outcome = read_gpg_status(said) if kind == "gpg" else read_ssh_output(said)
        if isinstance(outcome, Refusal):
            raise self._refused(subject, outcome.problem)
        return outcome

    def _refused(self, subject: str, problem: str) -> VerificationFailed:
        return VerificationFailed(f"revision {self.resolved.revision} is refused: {subject} {problem}")

    async def _prepare(self) -> None:
        gnupg, home = self._workdir / "gnupg", self._workdir / "home"
        await asyncio.to_thread(self._write_files, gnupg, home)
        config: list[tuple[str, str]] = []
        if self.trust.gpg_keys:
            gpg = str(locate("gpg"))
            config.append(("gpg.program", gpg))
            for index, (name, _) in enumerate(self.trust.gpg_keys):
                await self._import_gpg_key(gpg, gnupg, index, name)
        if self.trust.allowed_signers is not None:
            config.append(("gpg.ssh.program", str(locate("ssh-keygen"))))
            config.append(("gpg.ssh.allowedSignersFile", str(self._workdir / ALLOWED_SIGNERS)))
        self.env = git_environment(home, config)
        self.env["GNUPGHOME"] = str(gnupg)

    def _write_files(self, gnupg: Path, home: Path) -> None:
        """The keyring's files: 0700 directories, 0600 files, nothing readable by anyone else."""
        self._workdir.chmod(0o700)
        for directory in (gnupg, home, self._workdir / "keys"):
            directory.mkdir(mode=0o700)
        _write_private_lines(gnupg / "gpg.conf", _GPG_CONF.encode())
        for index, (_, armored) in enumerate(self.trust.gpg_keys):
            _write_private_lines(self._workdir / "keys" / f"{index}.asc", armored)
        if self.trust.allowed_signers is not None:
            _write_private_lines(self._workdir / ALLOWED_SIGNERS, self.trust.allowed_signers)

    async def _import_gpg_key(self, gpg: str, gnupg: Path, index: int, name: str) -> None:
        env = {**git_environment(self._workdir / "home"), "GNUPGHOME": str(gnupg)}
        args = ("--batch", "--no-tty", "--status-fd", "1", "--import", self._workdir / "keys" / f"{index}.asc")
        result = await self._run(gpg, *args, env=env, operation="gpg --import")
        if b"[GNUPG:] IMPORT_OK" not in result.stdout:
            raise VerificationFailed(
                f"the key {name!r} of {self.trust.origin} holds no OpenPGP public key, so no revision can be "
                "verified until it is fixed"
            )

    async def _git(self, git_dir: Path, *args: str) -> Completed:
        operation = f"git {args[0]}"
        result = await self._run(git_program(), "--git-dir", git_dir, *args, operation=operation)
        if result.returncode != 0:
            said = result.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = said[-1] if said else "git gave no reason"
            raise GitCommandFailed(f"{operation} for revision {self.resolved.revision} failed: {reason}")
        return result

    async def _run(
        self, program: str, *args: str | Path, operation: str, env: Mapping[str, str] | None = None
    ) -> Completed:
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining > 0:
            with contextlib.suppress(ProcessTimedOut):
                return await run_isolated((program, *args), env=env or self.env, timeout=remaining)
        raise GitTimeout(f"{operation} for revision {self.resolved.revision} timed out after {self.timeout:g}s")


def _armor_kind(first_line: bytes) -> SignatureKind | None:
    for begin, kind in _ARMOR_BEGIN:
        if first_line.startswith(begin):
            return kind
    return None


def _tag_headers(raw_tag: bytes) -> dict[str, str]:
    header, _, _ = raw_tag.partition(b"\n\n")
    fields: dict[str, str] = {}
    for line in header.decode("utf-8", "replace").split("\n"):
        name, _, value = line.partition(" ")
        fields.setdefault(name, value)
    return fields


def _gpg_unescape(text: str) -> str:
    """gpg's status lines write some bytes of a user id as %XX."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), text)


def _write_private_lines(path: Path, content: bytes) -> None:
    """gpg and ssh-keygen want every line of their files, the last one too, to end with a newline."""
    write_private(path, content if content.endswith(b"\n") else content + b"\n")

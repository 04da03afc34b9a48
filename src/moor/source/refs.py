"""What a GitRepository points at, and how that becomes one commit: pure, no git needed.

A `GitRef` names a branch, a tag, a semver range over tags, or a commit. `RemoteRefs` is what
`git ls-remote` reported; `RemoteRefs.select` chooses the ref's commit (annotated tags are peeled to
the commit they tag). Revisions are written as Flux writes them: `main@sha1:<hex>`, `v1.2.3@sha1:<hex>`,
`sha1:<hex>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moor.source.errors import InvalidSourceSpec, NoMatchingTag, RefNotFound
from moor.source.semver_range import SemverRange

_OBJECT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_REF_NAME_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^/|/$|^-|\.$|\.lock$|^@$")
_PEELED_SUFFIX = "^{}"
_REF_KINDS = ("branch", "tag", "semver", "commit")


@dataclass(frozen=True)
class GitRef:
    """Exactly one of branch, tag, semver (a range over tags) or commit (a full object id)."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    commit: str | None = None
    semver_range: SemverRange | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = [kind for kind in _REF_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            listed = ", ".join(given) if given else "none"
            raise InvalidSourceSpec(f"a Git ref needs exactly one of branch, tag, semver or commit (got {listed})")
        if self.branch is not None:
            _check_ref_name("branch", self.branch)
        if self.tag is not None:
            _check_ref_name("tag", self.tag)
        if self.semver is not None:
            object.__setattr__(self, "semver_range", SemverRange.parse(self.semver))
        if self.commit is not None:
            commit = self.commit.strip().lower()
            if not _OBJECT_ID.match(commit):
                raise InvalidSourceSpec(f"the commit {self.commit!r} is not a full commit id (40 hexadecimal digits)")
            object.__setattr__(self, "commit", commit)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> GitRef:
        """Reads `spec.ref` of a GitRepository; unknown keys are an error, not silently ignored."""
        unknown = sorted(set(spec) - set(_REF_KINDS))
        if unknown:
            raise InvalidSourceSpec(f"a Git ref has unknown fields: {', '.join(unknown)}")
        values = {kind: spec[kind] for kind in _REF_KINDS if spec.get(kind) not in (None, "")}
        for kind, value in values.items():
            if not isinstance(value, str):
                raise InvalidSourceSpec(f"the ref's {kind} must be a string")
        return cls(**values)

    @property
    def kind(self) -> str:
        return next(kind for kind in _REF_KINDS if getattr(self, kind) is not None)

    @property
    def value(self) -> str:
        value = getattr(self, self.kind)
        assert isinstance(value, str)
        return value

    def ls_remote_patterns(self) -> list[str]:
        """What `git ls-remote <url>` is given to list only the refs this ref can resolve to."""
        if self.branch is not None:
            return [f"refs/heads/{self.branch}"]
        if self.tag is not None:
            return [f"refs/tags/{self.tag}", f"refs/tags/{self.tag}{_PEELED_SUFFIX}"]
        if self.semver is not None:
            return ["refs/tags/*"]
        # A commit needs no lookup; asking for HEAD alone still proves the repository answers.
        return ["HEAD"]

    def __str__(self) -> str:
        if self.semver is not None:
            return f"semver range {self.semver!r}"
        if self.commit is not None:
            return f"commit {self.commit}"
        return f"{self.kind} {self.value!r}"


@dataclass(frozen=True)
class ResolvedRevision:
    """The commit a ref pointed at when it was resolved."""

    ref: GitRef
    commit: str
    refname: str | None = None
    """`refs/heads/<branch>` or `refs/tags/<tag>`; None for a commit ref."""
    tag_object: str | None = None
    """For an annotated tag, the id of the tag object (which carries the tag's signature)."""

    @property
    def name(self) -> str | None:
        """The branch or tag name in the revision string."""
        if self.refname is None:
            return None
        return self.refname.removeprefix("refs/heads/").removeprefix("refs/tags/")

    @property
    def revision(self) -> str:
        return format_revision(self.name, self.commit)

    def __str__(self) -> str:
        return self.revision


def format_revision(name: str | None, commit: str) -> str:
    """`main@sha1:<hex>` for a branch or tag, `sha1:<hex>` for a bare commit (Flux's format)."""
    algorithm = "sha256" if len(commit) == 64 else "sha1"
    return f"{name}@{algorithm}:{commit}" if name else f"{algorithm}:{commit}"


def revision_commit(revision: str) -> str:
    """The commit id in a revision string (`main@sha1:abc…` -> `abc…`); a bare id is returned as is."""
    commit = revision.rpartition(":")[2] if ":" in revision else revision
    if not _OBJECT_ID.match(commit):
        raise InvalidSourceSpec(f"the revision {revision!r} names no commit")
    return commit


@dataclass(frozen=True)
class RemoteRefs:
    """The refs a remote advertised: name -> object id, and for annotated tags the peeled commit."""

    refs: Mapping[str, str]
    peeled: Mapping[str, str]

    @classmethod
    def parse(cls, output: str) -> RemoteRefs:
        """Reads `git ls-remote` output (`<id>\\t<refname>` lines; `ref: …` symref lines are skipped)."""
        refs: dict[str, str] = {}
        peeled: dict[str, str] = {}
        for line in output.splitlines():
            oid, sep, name = line.partition("\t")
            if not sep or oid.startswith("ref:"):
                continue
            oid = oid.strip().lower()
            if not _OBJECT_ID.match(oid):
                continue
            if name.endswith(_PEELED_SUFFIX):
                peeled[name.removesuffix(_PEELED_SUFFIX)] = oid
            else:
                refs[name] = oid
        return cls(refs=refs, peeled=peeled)

    def commit_of(self, refname: str) -> str | None:
        """The commit a ref points at: for an annotated tag, the tagged commit, not the tag object."""
        if refname not in self.refs:
            return None
        return self.peeled.get(refname, self.refs[refname])

    def tags(self) -> list[str]:
        return [name.removeprefix("refs/tags/") for name in self.refs if name.startswith("refs/tags/")]

    def select(self, ref: GitRef, url: str) -> ResolvedRevision:
        """Chooses the commit `ref` names among these refs; `url` (redacted) is for the error."""
        if ref.commit is not None:
            return ResolvedRevision(ref=ref, commit=ref.commit)
        if ref.semver_range is not None:
            tag = ref.semver_range.highest(self.tags())
            if tag is None:
                raise NoMatchingTag(f"no tag in {url} matches the semver range {ref.semver!r}", url=url)
            refname = f"refs/tags/{tag}"
        elif ref.branch is not None:
            refname = f"refs/heads/{ref.branch}"
        else:
            refname = f"refs/tags/{ref.tag}"
        commit = self.commit_of(refname)
        if commit is None:
            raise RefNotFound(f"{ref} was not found in {url}", url=url)
        tag_object = self.refs[refname] if refname in self.peeled else None
        return ResolvedRevision(ref=ref, commit=commit, refname=refname, tag_object=tag_object)


def _check_ref_name(kind: str, name: str) -> None:
    if not name or _REF_NAME_FORBIDDEN.search(name):
        raise InvalidSourceSpec(f"the {kind} name {name!r} is not a valid Git ref name")

"""Semver ranges over Git tags, in the constraint language Flux users write in `ref.semver`.

Grammar: alternatives joined by `||`; within one, comparators joined by spaces or commas, all of which
must hold. A comparator is an operator (`=`, `!=`, `>`, `>=`, `<`, `<=`, `~`, `~>`, `^`, or none)
before a version that may be partial (`1`, `1.2`) or carry wildcards (`1.x`, `1.2.*`, `*`), or a
hyphen range `1.2 - 1.4.5`. A leading `v` is allowed on versions and on tags.

Pre-releases: an alternative considers pre-release tags only when one of its comparators names a
pre-release (`>=1.0.0-0`, `~2.0.0-rc.1`); otherwise only releases match. An upper bound written as a
release (`<2.0.0`) excludes that release's pre-releases too, as does every bound the shorthand forms
imply (`^1.0` ends below 2.0.0-0).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from semver import Version

from moor.source.errors import InvalidSourceSpec

_PART = r"(?:0|[1-9]\d*|[xX*])"
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_COMPARATOR = re.compile(
    rf"^(?P<op><=|>=|!=|~>|==|[<>=~^])?[vV]?"
    rf"(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    rf"(?:-(?P<pre>{_IDENT}))?(?:\+{_IDENT})?)?)?$"
)
_SPACE_AFTER_OPERATOR = re.compile(r"(<=|>=|!=|~>|==|[<>=~^])\s+")
_HYPHEN_RANGE = re.compile(r"^(?P<low>\S+)\s+-\s+(?P<high>\S+)$")
_TAG_VERSION = re.compile(r"^[vV]?(?P<version>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$")

_OPS: dict[str, Callable[[Version, Version], bool]] = {
    "<": lambda v, b: v < b,
    "<=": lambda v, b: v <= b,
    ">": lambda v, b: v > b,
    ">=": lambda v, b: v >= b,
    "=": lambda v, b: v.compare(b) == 0,
    "!=": lambda v, b: v.compare(b) != 0,
}


def tag_version(tag: str) -> Version | None:
    """The version a tag names (`v1.2.3` or `1.2.3`, pre-release and build allowed), else None."""
    match = _TAG_VERSION.match(tag)
    if not match:
        return None
    try:
        return Version.parse(match["version"])
    except ValueError:
        return None


@dataclass(frozen=True)
class Comparator:
    op: str
    bound: Version

    def admits(self, version: Version) -> bool:
        return _OPS[self.op](version, self.bound)

    def __str__(self) -> str:
        return f"{self.op}{self.bound}"


@dataclass(frozen=True)
class Alternative:
    """Comparators that must all hold; an empty one admits every release."""

    comparators: tuple[Comparator, ...]
    admits_prereleases: bool

    def admits(self, version: Version) -> bool:
        if version.prerelease and not self.admits_prereleases:
            return False
        return all(c.admits(version) for c in self.comparators)


@dataclass(frozen=True)
class SemverRange:
    text: str
    alternatives: tuple[Alternative, ...]

    @classmethod
    def parse(cls, text: str) -> SemverRange:
        if not text.strip():
            raise InvalidSourceSpec("the semver range is empty")
        return cls(text=text, alternatives=tuple(_parse_alternative(text, a) for a in text.split("||")))

    def admits(self, version: Version) -> bool:
        return any(a.admits(version) for a in self.alternatives)

    def highest(self, tags: Iterable[str]) -> str | None:
        """The tag with the highest version in the range (ties go to the greater name), else None."""
        candidates: list[tuple[Version, str]] = []
        for tag in tags:
            version = tag_version(tag)
            if version is not None and self.admits(version):
                candidates.append((version, tag))
        if not candidates:
            return None
        return max(candidates)[1]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Partial:
    """A version as written in a range: missing or wildcard parts are None."""

    major: int | None
    minor: int | None
    patch: int | None
    prerelease: str | None

    @property
    def is_full(self) -> bool:
        return self.patch is not None

    def floor(self) -> Version:
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)

    def ceiling(self) -> Version | None:
        """The first version above every version this partial covers (exclusive), None if unbounded."""
        if self.major is None:
            return None
        if self.minor is None:
            return _below(self.major + 1, 0, 0)
        if self.patch is None:
            return _below(self.major, self.minor + 1, 0)
        return None


def _below(major: int, minor: int, patch: int) -> Version:
    """The lowest version of a release line: `x.y.z-0` precedes every pre-release of x.y.z."""
    return Version(major, minor, patch, "0")


def _parse_alternative(text: str, alternative: str) -> Alternative:
    alternative = alternative.strip()
    hyphen = _HYPHEN_RANGE.match(alternative)
    if hyphen:
        low, high = _parse_partial(text, hyphen["low"]), _parse_partial(text, hyphen["high"])
        comparators = [*_expand(text, ">=", low), *_expand(text, "<=", high)]
        named_prerelease = bool(low.prerelease or high.prerelease)
        return Alternative(tuple(comparators), named_prerelease)
    comparators = []
    named_prerelease = False
    for token in _SPACE_AFTER_OPERATOR.sub(r"\1", alternative.replace(",", " ")).split():
        match = _COMPARATOR.match(token)
        if not match:
            raise InvalidSourceSpec(f"the semver range {text!r} is not valid: cannot read {token!r}")
        partial = _partial_from_match(text, match)
        named_prerelease = named_prerelease or partial.prerelease is not None
        comparators.extend(_expand(text, match["op"] or "=", partial))
    return Alternative(tuple(comparators), named_prerelease)


def _parse_partial(text: str, token: str) -> _Partial:
    match = _COMPARATOR.match(token)
    if not match or match["op"]:
        raise InvalidSourceSpec(f"the semver range {text!r} is not valid: cannot read {token!r}")
    return _partial_from_match(text, match)


def _partial_from_match(text: str, match: re.Match[str]) -> _Partial:
    def number(part: str | None) -> int | None:
        return None if part is None or part in ("x", "X", "*") else int(part)

    major, minor, patch = number(match["major"]), number(match["minor"]), number(match["patch"])
    if (major is None and minor is not None) or (minor is None and patch is not None):
        raise InvalidSourceSpec(f"the semver range {text!r} is not valid: a wildcard must not be followed by a number")
    if match["pre"] and patch is None:
        raise InvalidSourceSpec(f"the semver range {text!r} is not valid: a pre-release needs x.y.z")
    return _Partial(major, minor, patch, match["pre"])


def _expand(text: str, op: str, p: _Partial) -> list[Comparator]:
    """One written comparator as plain comparisons against full versions."""
    floor, ceiling = p.floor(), p.ceiling()
    if op in ("=", "=="):
        if p.is_full:
            return [Comparator("=", floor)]
        return [Comparator(">=", floor)] + ([Comparator("<", ceiling)] if ceiling else [])
    if op == "!=":
        if not p.is_full:
            raise InvalidSourceSpec(f"the semver range {text!r} is not valid: != needs a full version")
        return [Comparator("!=", floor)]
    if op == ">=":
        return [Comparator(">=", floor)] if p.major is not None else []
    if op == ">":
        if p.is_full:
            return [Comparator(">", floor)]
        if ceiling is None:
            raise InvalidSourceSpec(f"the semver range {text!r} matches nothing: nothing is above '*'")
        return [Comparator(">=", ceiling)]
    if op == "<":
        if p.major is None:
            raise InvalidSourceSpec(f"the semver range {text!r} matches nothing: nothing is below '*'")
        if p.prerelease:
            return [Comparator("<", floor)]
        return [Comparator("<", _below(floor.major, floor.minor, floor.patch))]
    if op == "<=":
        if p.is_full:
            return [Comparator("<=", floor)]
        return [Comparator("<", ceiling)] if ceiling else []
    if p.major is None:  # ~* and ^* admit everything
        return []
    if op in ("~", "~>"):
        upper = _below(p.major + 1, 0, 0) if p.minor is None else _below(p.major, p.minor + 1, 0)
        return [Comparator(">=", floor), Comparator("<", upper)]
    # "^": the leftmost non-zero part may not change (the leftmost given part, if all are zero).
    if p.major > 0 or p.minor is None:
        upper = _below(p.major + 1, 0, 0)
    elif p.minor > 0 or p.patch is None:
        upper = _below(0, p.minor + 1, 0)
    else:
        upper = _below(0, 0, p.patch + 1)
    return [Comparator(">=", floor), Comparator("<", upper)]

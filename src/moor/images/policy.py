"""Which tag of an image is "the latest" for an ImagePolicy, decided from the scanned tags alone (pure).

A policy orders tags by a key: the version (`semver`, highest within a range; pre-releases only when
the range names one), the text (`alphabetical`) or the number (`numerical`), ascending or descending.
`filterTags` first keeps the tags its `pattern` matches and, with `extract` (`$ts`, `${version}`,
`$1`), orders them by what it pulls out of the tag rather than by the whole tag.

Never backwards: the tag chosen before stays chosen unless a tag strictly better by the key appears,
or it disappears from the repository, or it stops matching the policy (its spec changed). Ties go to
the tag chosen before, then to the greater name, so the order in which a registry lists its tags never
changes the choice. Tags recorded as failed (a rollout of them was rolled back) are never chosen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from moor.images.precedence import Precedence, precedence
from moor.source.semver_range import SemverRange, tag_version

_EXTRACT = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


class PolicyKind(StrEnum):
    SEMVER = "semver"
    ALPHABETICAL = "alphabetical"
    NUMERICAL = "numerical"


class SortOrder(StrEnum):
    ASC = "asc"
    """The greatest key is the latest."""
    DESC = "desc"
    """The least key is the latest."""


class InvalidPolicy(ValueError):
    """A pattern or extract template that cannot work; the message says why."""


@dataclass(frozen=True)
class TagFilter:
    pattern: re.Pattern[str]
    """Kept: the tags it matches anywhere (as Go's regexp.MatchString, like Flux)."""
    extract: str | None = None
    """What the policy orders by, from the match's groups: `$name`, `${name}` or `$1`; None: the whole tag."""

    @classmethod
    def compile(cls, pattern: str, extract: str | None = None) -> TagFilter:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise InvalidPolicy(f"the pattern {pattern!r} is not a valid regular expression: {error}") from None
        if extract is not None:
            for match in _EXTRACT.finditer(extract):
                group = match["braced"] or match["bare"]
                known = int(group) <= compiled.groups if group.isdigit() else group in compiled.groupindex
                if not known:
                    raise InvalidPolicy(f"extract {extract!r} names the group {group!r}, which {pattern!r} lacks")
        return cls(compiled, extract)

    def key_text(self, tag: str) -> str | None:
        """What the policy orders `tag` by, or None when the pattern does not match it."""
        match = self.pattern.search(tag)
        if match is None:
            return None
        if self.extract is None:
            return tag

        def group(found: re.Match[str]) -> str:
            name = found["braced"] or found["bare"]
            return match.group(int(name) if name.isdigit() else name) or ""

        return _EXTRACT.sub(group, self.extract)


@dataclass(frozen=True)
class TagPolicy:
    kind: PolicyKind
    order: SortOrder = SortOrder.ASC
    semver: SemverRange | None = None
    """The range of a semver policy (always ascending: the highest version in it)."""
    filter: TagFilter | None = None

    def key(self, tag: str) -> Precedence | float | str | None:
        """What `tag` is ordered by, or None when the policy does not consider it."""
        text = self.filter.key_text(tag) if self.filter is not None else tag
        if text is None:
            return None
        if self.kind is PolicyKind.SEMVER:
            version = tag_version(text)
            if version is None or (self.semver is not None and not self.semver.admits(version)):
                return None
            return precedence(version)
        if self.kind is PolicyKind.NUMERICAL:
            try:
                number = float(text)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
        return text

    def choose(self, tags: Iterable[str], *, current: str | None = None, failed: Iterable[str] = ()) -> str | None:
        """The latest tag among `tags` (see the module docstring); `current` is the last choice not failed."""
        excluded = frozenset(failed)
        keyed: dict[str, Precedence | float | str] = {}
        for tag in tags:
            if tag in excluded:
                continue
            key = self.key(tag)
            if key is not None:
                keyed[tag] = key
        if not keyed:
            return None
        descending = self.order is SortOrder.DESC and self.kind is not PolicyKind.SEMVER
        pick = min if descending else max
        best = pick(keyed.values())
        tied = [tag for tag, key in keyed.items() if key == best]
        if current in tied:
            return current
        return max(tied)

"""What a scan keeps of a repository's tags (pure): valid tag names not excluded, sorted, with a revision.

A tag that is not a valid tag name (a hostile registry can send `../x` or `$(reboot)`) is dropped and
counted, never stored: every tag Moor keeps can be written into YAML or a reference as it is.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from moor.images.names import TAG
from moor.images.precedence import precedence
from moor.source.semver_range import tag_version

NEWEST = 10


@dataclass(frozen=True)
class KeptTags:
    tags: tuple[str, ...]
    """Sorted, without duplicates."""
    invalid: int
    """Tags dropped because they are not valid tag names."""
    excluded: int

    @cached_property
    def revision(self) -> str:
        """`sha256:` of the sorted list: it changes whenever a tag comes or goes."""
        return "sha256:" + hashlib.sha256("\n".join(self.tags).encode()).hexdigest()

    @cached_property
    def newest(self) -> tuple[str, ...]:
        """The NEWEST highest tags, first: versions by semver, then the others by name, descending."""
        versions = {tag: version for tag in self.tags if (version := tag_version(tag)) is not None}
        ranked = heapq.nlargest(NEWEST, versions, key=lambda tag: (precedence(versions[tag]), tag))
        if len(ranked) < NEWEST:
            ranked += heapq.nlargest(NEWEST - len(ranked), (tag for tag in self.tags if tag not in versions))
        return tuple(ranked)


def keep_tags(tags: Iterable[str], exclusions: Sequence[re.Pattern[str]]) -> KeptTags:
    valid: set[str] = set()
    invalid = excluded = 0
    for tag in tags:
        if not TAG.fullmatch(tag):
            invalid += 1
        elif any(pattern.search(tag) for pattern in exclusions):
            excluded += 1
        else:
            valid.add(tag)
    return KeptTags(tuple(sorted(valid)), invalid, excluded)

"""A Helm repository's index.yaml, reduced to what choosing and downloading a chart needs.

The index is read as a stream of libyaml events, never composed into a tree: only each entry's
`name`, `version`, `digest`, `urls` and `created` are kept, and everything else (descriptions,
maintainers, annotations, whatever is nested in them) is skipped by counting its depth, in constant
memory. So an index costs about what it keeps, nesting costs nothing, and an alias is never expanded:
an alias bomb is as cheap to skip as any other node, and an alias where a kept value should be is
refused (helm never writes one). The bytes are capped before parsing (`IndexLimits.max_bytes`).

An entry Moor will not use is dropped, and said so in `ChartIndex.skipped`: a chart name that is not
one path segment (`..`, `a/b`, `./x`), a version that is not semver, a digest that is not sha256 hex,
an entry without URLs. One hostile entry does not take the other charts down.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)

from moor.source.helm.errors import IndexTooLarge, InvalidIndex
from moor.source.limits import MIB, format_size
from moor.source.semver_range import tag_version

DEFAULT_MAX_INDEX_BYTES = 32 * MIB
MAX_INDEX_SIZE_FLAG = "moor run --max-helm-index-size"
CHART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,252}")
"""One path segment of letters, digits, `_ . + -`, not starting with a dot: never `..`, never `/`."""
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_SKIPPED_SHOWN = 5
_KEPT_FIELDS = frozenset({"name", "version", "digest", "urls", "created"})


@dataclass(frozen=True)
class IndexLimits:
    max_bytes: int = DEFAULT_MAX_INDEX_BYTES
    """The largest index.yaml read (`moor run --max-helm-index-size`, 32 MiB by default)."""
    max_urls: int = 16
    """URLs kept per version (helm tries the first)."""


@dataclass(frozen=True)
class ChartEntry:
    """One version of one chart, as the index describes it."""

    name: str
    version: str
    urls: tuple[str, ...]
    """As written: absolute, or relative to the index's URL."""
    digest: str | None = None
    """`sha256:<hex>` of the .tgz, when the index gives one."""
    created: str = ""


@dataclass(frozen=True)
class ChartIndex:
    revision: str
    """`sha256:<hex>` of the index's bytes."""
    charts: Mapping[str, tuple[ChartEntry, ...]]
    skipped: tuple[str, ...] = field(default=())
    """Why entries were dropped (the first few)."""
    skipped_count: int = 0

    @property
    def chart_count(self) -> int:
        return len(self.charts)

    @property
    def version_count(self) -> int:
        return sum(len(versions) for versions in self.charts.values())

    def versions(self, name: str) -> tuple[ChartEntry, ...]:
        return self.charts.get(name, ())


def check_chart_name(name: str, what: str) -> None:
    """Refuses a chart name that could leave the directory it is extracted into (`..`, `a/b`)."""
    if not CHART_NAME.fullmatch(name):
        raise InvalidIndex(
            f"{what}: {name!r} is not a chart name (one segment of letters, digits, _ . + -, not starting with a dot)"
        )


def index_too_large(what: str, max_bytes: int) -> IndexTooLarge:
    """The refusal of an index over `max_bytes`, naming the limit and the flag that sets it."""
    return IndexTooLarge(
        f"{what} is larger than {format_size(max_bytes)}, the limit for a Helm repository index "
        f"({MAX_INDEX_SIZE_FLAG})",
        url=what,
    )


def parse_index(data: bytes, what: str, limits: IndexLimits | None = None) -> ChartIndex:
    """The charts of an index.yaml; IndexTooLarge over the cap, InvalidIndex when it is not an index."""
    limits = limits or IndexLimits()
    if len(data) > limits.max_bytes:
        raise index_too_large(what, limits.max_bytes)
    revision = "sha256:" + hashlib.sha256(data).hexdigest()
    return _parse(io.BytesIO(data), revision, what, limits)


def parse_index_file(path: Path, revision: str, what: str, limits: IndexLimits | None = None) -> ChartIndex:
    """The charts of an index.yaml on disk (written, capped and digested as it was downloaded), read in
    chunks so the file is never in memory whole."""
    with path.open("rb") as stream:
        return _parse(stream, revision, what, limits or IndexLimits())


def _parse(stream: BinaryIO, revision: str, what: str, limits: IndexLimits) -> ChartIndex:
    reader = _IndexReader(what, limits)
    try:
        charts = reader.read(_events(stream))
    except MarkedYAMLError as error:
        line = f" at line {error.problem_mark.line + 1}" if error.problem_mark else ""
        raise InvalidIndex(f"{what} is not valid YAML{line}: {error.problem}", url=what) from None
    except YAMLError as error:
        raise InvalidIndex(f"{what} is not valid YAML: {error}", url=what) from None
    return ChartIndex(
        revision=revision,
        charts=charts,
        skipped=tuple(reader.skipped[:_MAX_SKIPPED_SHOWN]),
        skipped_count=len(reader.skipped),
    )


class _IndexReader:
    def __init__(self, what: str, limits: IndexLimits) -> None:
        self.what = what
        self.limits = limits
        self.skipped: list[str] = []

    def read(self, events: Iterator[Event]) -> dict[str, tuple[ChartEntry, ...]]:
        charts: dict[str, tuple[ChartEntry, ...]] = {}
        root = self._start_of_document(events)
        if not isinstance(root, MappingStartEvent):
            raise self._invalid("its top level is not a mapping")
        for key in self._keys(events):
            if key != "entries":
                _skip(events)
                continue
            start = _take(events)
            if isinstance(start, ScalarEvent) and start.value in ("", "~", "null"):
                continue
            if not isinstance(start, MappingStartEvent):
                raise self._invalid("'entries' is not a mapping")
            for name in self._keys(events):
                versions = self._versions(events, name)
                if versions:
                    charts[name] = charts.get(name, ()) + versions
        return charts

    def _start_of_document(self, events: Iterator[Event]) -> Event:
        for event in events:
            if isinstance(event, (ScalarEvent, AliasEvent, CollectionStartEvent)):
                return event
        raise self._invalid("it is empty")

    def _keys(self, events: Iterator[Event]) -> Iterator[str]:
        """The keys of the mapping just opened; the caller consumes each value before the next key."""
        for event in events:
            if isinstance(event, CollectionEndEvent):
                return
            if not isinstance(event, ScalarEvent):
                raise self._invalid("a key is not a plain string")
            yield event.value
        raise self._invalid("it ends inside a mapping")

    def _versions(self, events: Iterator[Event], name: str) -> tuple[ChartEntry, ...]:
        start = _take(events)
        if not isinstance(start, SequenceStartEvent):
            raise self._invalid(f"the entry for {name!r} is not a list of versions")
        entries: list[ChartEntry] = []
        for event in events:
            if isinstance(event, CollectionEndEvent):
                break
            if not isinstance(event, MappingStartEvent):
                raise self._invalid(f"a version of {name!r} is not a mapping")
            entry = self._entry(events, name)
            if entry is not None:
                entries.append(entry)
        if not CHART_NAME.fullmatch(name):
            self.skipped.append(f"{name!r} is not a chart name (one path segment, not starting with a dot)")
            return ()
        return tuple(entries)

    def _entry(self, events: Iterator[Event], chart: str) -> ChartEntry | None:
        fields: dict[str, str | list[str]] = {}
        for key in self._keys(events):
            if key not in _KEPT_FIELDS:
                _skip(events)
            elif key == "urls":
                fields[key] = self._strings(events, f"the urls of {chart!r}")
            else:
                fields[key] = self._string(events, f"the {key} of a version of {chart!r}")
        return self._checked_entry(chart, fields)

    def _checked_entry(self, chart: str, fields: dict[str, str | list[str]]) -> ChartEntry | None:
        version, digest, urls = fields.get("version", ""), fields.get("digest", ""), fields.get("urls", [])
        name = fields.get("name", chart)
        assert isinstance(version, str) and isinstance(digest, str) and isinstance(name, str)
        assert isinstance(urls, list)
        created = fields.get("created", "")
        problem = None
        if name != chart:
            problem = f"its name {name!r} is not the chart's"
        elif tag_version(version) is None:
            problem = "its version is not semver"
        elif digest and not _SHA256_HEX.fullmatch(digest.removeprefix("sha256:")):
            problem = "its digest is not sha256 hex"
        elif not urls:
            problem = "it has no urls"
        if problem is not None:
            self.skipped.append(f"{chart} {version!r}: {problem}")
            return None
        return ChartEntry(
            name=chart,
            version=version,
            urls=tuple(urls[: self.limits.max_urls]),
            digest=f"sha256:{digest.removeprefix('sha256:')}" if digest else None,
            created=created if isinstance(created, str) else "",
        )

    def _string(self, events: Iterator[Event], what: str) -> str:
        event = _take(events)
        if isinstance(event, ScalarEvent):
            return str(event.value)
        if isinstance(event, AliasEvent):
            raise self._invalid(f"{what} is an alias")
        _skip_rest(events)
        raise self._invalid(f"{what} is not a string")

    def _strings(self, events: Iterator[Event], what: str) -> list[str]:
        start = _take(events)
        if not isinstance(start, SequenceStartEvent):
            raise self._invalid(f"{what} are not a list")
        found: list[str] = []
        for event in events:
            if isinstance(event, CollectionEndEvent):
                return found
            if not isinstance(event, ScalarEvent):
                raise self._invalid(f"{what} hold something that is not a string")
            found.append(str(event.value))
        raise self._invalid("it ends inside a list")

    def _invalid(self, problem: str) -> InvalidIndex:
        return InvalidIndex(f"{self.what} is not a Helm repository index: {problem}", url=self.what)


def _skip(events: Iterator[Event]) -> None:
    """Consumes one value, however deep, without building it (an alias is one event, never expanded)."""
    event = _take(events)
    if isinstance(event, CollectionStartEvent):
        _skip_rest(events)


def _skip_rest(events: Iterator[Event]) -> None:
    depth = 1
    for event in events:
        if isinstance(event, CollectionStartEvent):
            depth += 1
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
            if depth == 0:
                return


class _EventSource(Protocol):
    def check_event(self, *choices: type[Event]) -> bool: ...
    def get_event(self) -> Event | None: ...
    def dispose(self) -> None: ...


def _events(stream: BinaryIO) -> Iterator[Event]:
    parser = _parser(stream)
    try:
        while parser.check_event():
            event = parser.get_event()
            if event is not None:
                yield event
    finally:
        parser.dispose()


def _take(events: Iterator[Event]) -> Event:
    """The next event; the stream ending inside a value is invalid YAML libyaml already reported, so this
    only guards the reader's own assumptions."""
    event = next(events, None)
    if event is None:
        raise YAMLError("the index ends inside a value")
    return event


_parser: Callable[[BinaryIO], _EventSource]
try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader

    _parser = SafeLoader
else:
    _parser = CParser

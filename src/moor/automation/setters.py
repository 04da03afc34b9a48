"""Setter markers: the image references an ImageUpdate may rewrite, and the rewrite itself.

A marker is Flux's setter comment at the end of a line that holds one YAML scalar:

    image: registry.example/team/app:1.2.0  # {"$imagepolicy": "apps:app"}
    tag: 1.2.0                              # {"$imagepolicy": "apps:app:tag"}

`namespace:name` names an ImagePolicy and marks the whole reference (`name:tag`, or `name:tag@digest`
when the policy resolves digests); `:name`, `:tag` and `:digest` mark one part of it, as Helm values
and a kustomization's `images:` (newName/newTag/digest) split them. Only the marked scalars change:
the text is edited in place at the positions YAML's composer reports, in the scalar's own quoting, so
every other byte (comments, order, quoting, line endings) stays as it was; the result is parsed again
and must equal the original with exactly the marked values replaced. Pure: text in, text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from moor.errors import MoorError

MARKER_KEY = "$imagepolicy"
_MARKER = re.compile(r'#\s*(\{\s*"\$imagepolicy"\s*:\s*"[^"]*"\s*\})')
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_STR = "tag:yaml.org,2002:str"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what PyYAML's reader counts as a line break


class SetterError(MoorError):
    """A marker that cannot be applied; the message names the file and the line."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file = file
        self.line = line


class MarkerInvalid(SetterError):
    """The marker, or the YAML it sits in, cannot be read."""


class PolicyNotFound(SetterError):
    """The marker names an ImagePolicy that does not exist."""


class PolicyHasNoImage(SetterError):
    """The ImagePolicy has not chosen an image yet (or not the part the marker asks for)."""


class Field(StrEnum):
    IMAGE = "image"
    NAME = "name"
    TAG = "tag"
    DIGEST = "digest"


@dataclass(frozen=True, order=True)
class PolicyName:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ImageRef:
    """`name:tag`, optionally pinned `@digest`, split into its parts."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        rest, _, digest = reference.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :] or None, digest or None)
        return cls(rest, None, digest or None)

    def part(self, field: Field) -> str | None:
        if field is Field.IMAGE:
            return str(self)
        return {Field.NAME: self.name, Field.TAG: self.tag, Field.DIGEST: self.digest}[field]

    def __str__(self) -> str:
        tagged = f"{self.name}:{self.tag}" if self.tag else self.name
        return f"{tagged}@{self.digest}" if self.digest else tagged


@dataclass(frozen=True)
class Marker:
    """One marked scalar: where it is, what it holds, which policy and which part of the image it follows."""

    line: int
    """1-based."""
    policy: PolicyName
    field: Field
    value: str


@dataclass(frozen=True)
class Change:
    file: str
    line: int
    policy: PolicyName
    field: Field
    old: str
    new: str


@dataclass(frozen=True)
class Rewrite:
    text: str
    changes: tuple[Change, ...]


def find_markers(text: str, file: str) -> list[Marker]:
    """Every marker in a YAML file (no marker: no parse at all); MarkerInvalid names the line of a problem."""
    return [marked.marker for marked in _marked_scalars(text, file)]


def apply_setters(
    text: str,
    file: str,
    images: Mapping[PolicyName, ImageRef | None],
    held: frozenset[PolicyName] = frozenset(),
) -> Rewrite:
    """`text` with every marked scalar set from its policy's image; markers of `held` policies are left
    as they are. `images` maps each existing policy to its latest image (None: it has none yet)."""
    edits: list[tuple[_MarkedScalar, str]] = []
    for marked in _marked_scalars(text, file):
        marker = marked.marker
        if marker.policy in held:
            continue
        if marker.policy not in images:
            problem = f"the marker names the ImagePolicy {marker.policy}, which does not exist"
            raise PolicyNotFound(file, marker.line, problem)
        image = images[marker.policy]
        if image is None:
            raise PolicyHasNoImage(file, marker.line, f"the ImagePolicy {marker.policy} has not chosen an image yet")
        new = image.part(marker.field)
        if new is None:
            problem = f"the latest image of the ImagePolicy {marker.policy}, {image}, has no {marker.field}"
            raise PolicyHasNoImage(file, marker.line, problem)
        if new != marker.value:
            edits.append((marked, new))
    if not edits:
        return Rewrite(text, ())
    rewritten = text
    for marked, new in sorted(edits, key=lambda edit: edit[0].start, reverse=True):
        rewritten = rewritten[: marked.start] + _render_scalar(new, marked.style) + rewritten[marked.end :]
    _check_rewrite(text, rewritten, file, {marked.path: new for marked, new in edits})
    changes = tuple(
        Change(file, marked.marker.line, marked.marker.policy, marked.marker.field, marked.marker.value, new)
        for marked, new in edits
    )
    return Rewrite(rewritten, changes)


# ------------------------------------------------------------------------------------------ private

Path = tuple[int, ...]
"""Where a node is in a stream: document index, then per collection the entry (and 0 key / 1 value)."""


@dataclass(frozen=True)
class _MarkedScalar:
    marker: Marker
    start: int
    end: int
    style: str | None
    path: Path


def _marked_scalars(text: str, file: str) -> list[_MarkedScalar]:
    comments: dict[int, re.Match[str]] = {}
    lines = _LINE_BREAK.split(text)
    for number, text_line in enumerate(lines):
        match = _MARKER.search(text_line) if MARKER_KEY in text_line else None
        if match is not None:
            comments[number] = match
    if not comments:
        return []
    documents = _compose(text, file)
    # The last single-line value scalar that ends on each line before the marker's '#'.
    last_on_line: dict[int, tuple[ScalarNode, Path]] = {}
    for path, node, is_key in _scalars(documents):
        line = node.start_mark.line
        if is_key or line not in comments or node.end_mark.line != line or node.start_mark.index == node.end_mark.index:
            continue  # a key, a value that spans lines, or an empty (null) value
        if node.end_mark.column > comments[line].start():
            continue  # the '#' is inside this scalar: not a comment
        seen = last_on_line.get(line)
        if seen is None or node.start_mark.index > seen[0].start_mark.index:
            last_on_line[line] = (node, path)
    found: list[_MarkedScalar] = []
    for number, match in sorted(comments.items()):
        if _inside_scalar(documents, number, match.start()):
            continue
        where = number + 1
        policy, field = _read_marker(match.group(1), file, where)
        if number not in last_on_line:
            raise MarkerInvalid(file, where, "the marker must follow a single-line scalar value on its line")
        node, path = last_on_line[number]
        if lines[number][node.end_mark.column : match.start()].strip():
            raise MarkerInvalid(file, where, "the marker must follow a single-line scalar value on its line")
        if text[node.start_mark.index : node.end_mark.index].startswith("!"):
            raise MarkerInvalid(file, where, "the marked value has an explicit tag; an image is a plain string")
        marker = Marker(where, policy, field, node.value)
        found.append(_MarkedScalar(marker, node.start_mark.index, node.end_mark.index, node.style, path))
    return found


def _compose(text: str, file: str) -> list[Node]:
    try:
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise MarkerInvalid(
            file, line, f"the file holds setter markers but is not valid YAML: {error.problem}"
        ) from None
    except yaml.YAMLError as error:
        raise MarkerInvalid(file, 1, f"the file holds setter markers but is not valid YAML: {error}") from None


def _scalars(documents: list[Node]) -> Iterator[tuple[Path, ScalarNode, bool]]:
    def walk(node: Node, path: Path, is_key: bool, seen: set[int]) -> Iterator[tuple[Path, ScalarNode, bool]]:
        if id(node) in seen:
            return  # an alias: the anchored node is visited where it is defined
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            yield path, node, is_key
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                yield from walk(item, (*path, index), False, seen)
        elif isinstance(node, MappingNode):
            for index, (key, value) in enumerate(node.value):
                yield from walk(key, (*path, index, 0), True, seen)
                yield from walk(value, (*path, index, 1), False, seen)

    seen: set[int] = set()
    for index, document in enumerate(documents):
        yield from walk(document, (index,), False, seen)


def _inside_scalar(documents: list[Node], line: int, column: int) -> bool:
    """True when the marker's text is part of a (quoted or block) scalar's value rather than a comment."""
    for _, node, _ in _scalars(documents):
        start, end = node.start_mark, node.end_mark
        if (start.line, start.column) <= (line, column) < (end.line, end.column):
            return True
    return False


def _read_marker(comment: str, file: str, line: int) -> tuple[PolicyName, Field]:
    try:
        value = json.loads(comment)[MARKER_KEY]
    except (ValueError, KeyError):
        raise MarkerInvalid(file, line, f"cannot read the marker {comment}") from None
    parts = str(value).split(":")
    if len(parts) not in (2, 3) or not all(_NAME.fullmatch(part) for part in parts[:2]):
        raise MarkerInvalid(
            file, line, f'the marker names {value!r}: write "namespace:policy" or "namespace:policy:tag|name|digest"'
        )
    field = Field.IMAGE
    if len(parts) == 3:
        if parts[2] not in (Field.NAME, Field.TAG, Field.DIGEST):
            raise MarkerInvalid(file, line, f"the marker's field {parts[2]!r} is not one of name, tag or digest")
        field = Field(parts[2])
    return PolicyName(parts[0], parts[1]), field


def _render_scalar(value: str, style: str | None) -> str:
    """`value` in the marked scalar's quoting; a plain scalar YAML would read as something other than this
    string (a number, a boolean, null) is double-quoted instead."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _reads_as_plain_string(value):
        return json.dumps(value)
    return value


def _reads_as_plain_string(value: str) -> bool:
    try:
        return bool(yaml.safe_load(f"k: {value}\n") == {"k": value})
    except yaml.YAMLError:
        return False


def _check_rewrite(original: str, rewritten: str, file: str, expected: Mapping[Path, str]) -> None:
    """The rewritten stream must be the original one with exactly the expected scalars changed."""
    before, after = _compose(original, file), _compose(rewritten, file)
    old = {path: (node.tag, node.value) for path, node, _ in _scalars(before)}
    new = {path: (node.tag, node.value) for path, node, _ in _scalars(after)}
    wanted = {**old, **{path: (_STR, value) for path, value in expected.items()}}
    if new != wanted or len(before) != len(after):
        raise MarkerInvalid(
            file, 1, "rewriting the marked values would change other parts of the file; nothing was written"
        )

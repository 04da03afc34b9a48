"""Safe, bounded YAML for Kubernetes manifests.

Only plain data comes out: dicts with string keys, lists, strings, ints, floats, bools and None. Scalars
are typed the way kubectl reads them (YAML 1.1 booleans, octal and hex ints, `<<` merges), except that
timestamps and base-60 numbers stay strings, so every value can be sent to the API server as JSON.
Any other tag is refused, as are duplicate keys. Aliases are counted while a document is built, so a
"billion laughs" document is refused after a few thousand nodes instead of filling memory. Composing a
node costs about 150 bytes of memory and the most compact YAML spends one byte per node or less, so a
stream that might hold more than `max_nodes` (a bound from byte counts says so) has its nodes counted
first, from libyaml's events in constant memory, and is refused before anything is composed.

libyaml (PyYAML's C extension) scans and composes; building values from the composed nodes is done
here rather than by PyYAML's constructor, which is both faster and the place where the checks live.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from yaml.composer import Composer
from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import AliasEvent, Event, MappingStartEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from moor.shared_strings import RENDERED, SHORT, Share

_TAG_PREFIX = "tag:yaml.org,2002:"
STR = _TAG_PREFIX + "str"
INT = _TAG_PREFIX + "int"
FLOAT = _TAG_PREFIX + "float"
BOOL = _TAG_PREFIX + "bool"
NULL = _TAG_PREFIX + "null"
MERGE = _TAG_PREFIX + "merge"
MAP = _TAG_PREFIX + "map"
SEQ = _TAG_PREFIX + "seq"

_TRUE = ("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_BOOLS = dict.fromkeys(_TRUE, True) | dict.fromkeys(_FALSE, False)
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
# Each pattern matches in linear time: "at least one digit among underscores" is written `_*[0-9][0-9_]*`,
# never `[0-9_]*[0-9][0-9_]*`, which backtracks quadratically on a long scalar that fails at its end.
_INT = re.compile(r"[-+]?(?:0b_*[01][01_]*|0o_*[0-7][0-7_]*|0x_*[0-9a-fA-F][0-9a-fA-F_]*|0[0-7_]*|[1-9][0-9_]*)")
_MAX_INT_DIGITS = 1000
"""Longer integers are refused: no Kubernetes field holds one, and Python will not print one of 4300 digits."""
_FLOAT = re.compile(
    r"[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NUMBER_START = frozenset("0123456789+-.")


class YamlProblem(Exception):
    """Why a YAML stream was refused, and the line (1-based) when one is known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_NODE_EVENTS = (ScalarEvent, SequenceStartEvent, MappingStartEvent, AliasEvent)


class TooManyNodes(YamlProblem):
    """The stream holds more nodes than it may (`max_nodes`), found before anything was composed."""


def load_documents(
    data: bytes, *, max_aliases: int, max_alias_nodes: int, max_nodes: int | None = None
) -> Iterator[tuple[int, Any, int]]:
    """Yields (line where the document starts, its value, the nodes built) for each document of a YAML stream.

    With `max_nodes`, a stream that would compose more nodes is refused (TooManyNodes) before any
    document is composed; the caller counts the nodes built (aliases expanded) against its own budget.
    """
    if max_nodes is not None and _node_bound(data) > max_nodes:
        _refuse_too_many_nodes(data, max_nodes)
    try:
        composer = _composer_class(data)
    except YAMLError as error:
        raise _syntax_problem(error) from None
    track_aliases = b"&" in data  # no anchor, no alias: the common case skips the bookkeeping
    try:
        while True:
            try:
                if not composer.check_node():
                    return
                node = composer.get_node()
            except YAMLError as error:
                raise _syntax_problem(error) from None
            if node is None:
                return
            line = node.start_mark.line + 1
            share = RENDERED.sharer()
            builder = _AliasCountingBuilder(share, max_aliases, max_alias_nodes) if track_aliases else _Builder(share)
            try:
                value = builder.build(node)
            except RecursionError:
                raise YamlProblem("the document is nested too deeply", line) from None
            yield line, value, builder.nodes
    finally:
        composer.dispose()


def _node_bound(data: bytes) -> int:
    """An upper bound on the nodes a stream can compose, from byte counts (fast: no parsing).

    Every node but a document's root fills a slot that one of these characters opens: `:` and `?` (a
    key and a value), `,`, `[` and `{` (an item, or a key and a value), `-` (an item); documents after
    the first start with `---` or follow `...`. The characters inside scalars only loosen the bound.
    Real manifests come out far below the node limit, so they are never counted twice.
    """
    pairs = sum(data.count(character) for character in (b":", b"?", b",", b"[", b"{"))
    return 1 + 2 * pairs + data.count(b"-") + data.count(b"...")


def _refuse_too_many_nodes(data: bytes, max_nodes: int) -> None:
    """Counts the stream's nodes from parser events, which are dropped as they come, up to `max_nodes`."""
    try:
        parser = _composer_class(data)
    except YAMLError:
        return  # composing reports the problem, with its line
    nodes = 0
    try:
        while parser.check_event():
            if isinstance(parser.get_event(), _NODE_EVENTS):
                nodes += 1
                if nodes > max_nodes:
                    raise TooManyNodes(f"it holds more than {max_nodes} YAML nodes", None)
    except YAMLError:
        return
    finally:
        parser.dispose()


def _syntax_problem(error: YAMLError) -> YamlProblem:
    if not isinstance(error, MarkedYAMLError):
        return YamlProblem(str(error).splitlines()[0], None)  # e.g. a byte that is not text
    mark = error.problem_mark or error.context_mark
    cause = error.problem or error.context or "it cannot be parsed"
    return YamlProblem(cause, mark.line + 1 if mark is not None else None)


class _Resolution:
    """Types plain scalars as kubectl does (YAML 1.1), minus timestamps and base-60 numbers."""

    def descend_resolver(self, current_node: Node | None, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        if kind is ScalarNode:
            return _plain_scalar_tag(value or "") if implicit[0] else STR
        return SEQ if kind is SequenceNode else MAP


def _plain_scalar_tag(text: str) -> str:
    if not text:
        return NULL
    if text[0] in _NUMBER_START:
        if _INT.fullmatch(text):
            return INT
        if _FLOAT.fullmatch(text):
            return FLOAT
        return STR
    if text in _BOOLS:
        return BOOL
    if text in _NULLS:
        return NULL
    if text == "<<":
        return MERGE
    return STR


class _NodeSource(Protocol):
    def check_node(self) -> bool: ...
    def get_node(self) -> Node | None: ...
    def check_event(self, *choices: type[Event]) -> bool: ...
    def get_event(self) -> Event | None: ...
    def dispose(self) -> None: ...


class _PythonComposer(_Resolution, Reader, Scanner, Parser, Composer):
    """The pure-Python fallback when PyYAML was built without libyaml."""

    def __init__(self, stream: bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)


_composer_class: Callable[[bytes], _NodeSource]
try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _composer_class = _PythonComposer
    LIBYAML = False
else:

    class _LibyamlComposer(_Resolution, CParser):
        pass

    _composer_class = _LibyamlComposer
    LIBYAML = True


class _Builder:
    """Builds plain values from one composed document (a tree: it has no anchors), counting the nodes.

    Keys and short strings come from a table shared by all documents (`moor.shared_strings`)."""

    def __init__(self, share: Share) -> None:
        self.nodes = 0
        self._share = share

    def build(self, node: Node) -> Any:
        self.nodes += 1
        cls = node.__class__
        if cls is ScalarNode:
            if node.tag == STR:
                text: str = node.value
                return self._share(text, text) if len(text) <= SHORT else text
            return _scalar(node)
        if cls is MappingNode and node.tag == MAP:
            return self._mapping(node)
        if cls is SequenceNode and node.tag == SEQ:
            build = self.build
            return [build(item) for item in node.value]
        raise _unsupported_tag(node)

    def _mapping(self, node: Node) -> dict[str, Any]:
        self.nodes += len(node.value)  # the keys
        result: dict[str, Any] = {}
        merges: list[Node] | None = None
        build = self.build
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode and key_node.tag == STR:
                key = self._share(key_node.value, key_node.value)
            elif key_node.tag == MERGE:
                merges = [*merges, value_node] if merges else [value_node]
                continue
            else:
                key = _key(key_node)
            result[key] = build(value_node)
        if len(result) != len(node.value) - (len(merges) if merges else 0):
            raise _duplicate_key(node)
        if merges:
            for merged in merges:
                self._merge_into(result, merged)
        return result

    def _merge_into(self, result: dict[str, Any], merged: Node) -> None:
        """`<<: *base` or `<<: [*a, *b]`: keys the mapping lacks come from the first source having them."""
        sources = merged.value if merged.__class__ is SequenceNode else [merged]
        for source in sources:
            if source.__class__ is not MappingNode:
                raise YamlProblem("'<<' must merge a mapping or a list of mappings", _line(merged))
            for key, value in self.build(source).items():
                result.setdefault(key, value)


class _AliasCountingBuilder(_Builder):
    """Builds a document that has anchors, refusing alias bombs and self-referencing aliases.

    Aliased nodes are copied, never shared, so no two objects alias the same dict. Both the aliases
    met while building (not those met again inside an expansion) and the nodes expansions add are
    bounded.
    """

    def __init__(self, share: Share, max_aliases: int, max_alias_nodes: int) -> None:
        super().__init__(share)
        self._max_aliases = max_aliases
        self._max_alias_nodes = max_alias_nodes
        self._seen: set[int] = set()
        self._open: set[int] = set()
        self._aliases = 0
        self._added = 0
        self._expanding = 0

    def build(self, node: Node) -> Any:
        key = id(node)
        if key in self._open:
            raise YamlProblem(f"an alias refers to a node that contains it ({_anchor(node)})", None)
        again = key in self._seen
        if again:
            self._added += 1
            if self._added > self._max_alias_nodes:
                raise YamlProblem(
                    f"aliases expand to more than {self._max_alias_nodes} extra nodes ({_anchor(node)})", None
                )
            if not self._expanding:
                self._aliases += 1
                if self._aliases > self._max_aliases:
                    raise YamlProblem(
                        f"the document uses more than {self._max_aliases} aliases ({_anchor(node)})", None
                    )
        else:
            self._seen.add(key)
        if node.__class__ is ScalarNode:
            return super().build(node)
        self._open.add(key)
        self._expanding += again
        try:
            return super().build(node)
        finally:
            self._expanding -= again
            self._open.discard(key)


def _scalar(node: Node) -> Any:
    tag, text = node.tag, node.value
    if tag == INT:
        if _INT.fullmatch(text):
            return _to_int(text, _line(node))
    elif tag == FLOAT:
        value = _to_float(text)
        if value is not None:
            return value
    elif tag == BOOL:
        if text in _BOOLS:
            return _BOOLS[text]
    elif tag == NULL:
        if text in _NULLS:
            return None
    else:
        raise _unsupported_tag(node)
    raise YamlProblem(f"{text!r} is not a valid {_short_tag(tag)}", _line(node))


def _to_int(text: str, line: int | None = None) -> int:
    digits = text.replace("_", "")
    sign = -1 if digits[0] == "-" else 1
    digits = digits.lstrip("+-")
    prefix = digits[:2]
    base = {"0b": 2, "0o": 8, "0x": 16}.get(prefix)
    if base is not None:
        digits = digits[2:]
    if len(digits) > _MAX_INT_DIGITS:
        raise YamlProblem(f"an integer of {len(digits)} digits is too long (at most {_MAX_INT_DIGITS})", line)
    if base is not None:
        return sign * int(digits, base)
    if len(digits) > 1 and digits[0] == "0":
        return sign * int(digits, 8)
    return sign * int(digits)


def _to_float(text: str) -> float | None:
    special = text.lower()
    if special in (".inf", "+.inf"):
        return math.inf
    if special == "-.inf":
        return -math.inf
    if special == ".nan":
        return math.nan
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return None


def _key(node: Node) -> str:
    """A mapping key as the API server will see it: JSON keys are strings (`8080:` becomes "8080")."""
    if node.__class__ is not ScalarNode:
        raise YamlProblem("a mapping key must be a plain value, not a list or mapping", _line(node))
    value = _scalar(node) if node.tag != STR else node.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _duplicate_key(node: Node) -> YamlProblem:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if key_node.tag == MERGE:
            continue
        key = _key(key_node)
        if key in seen:
            return YamlProblem(f"the key {key!r} appears twice in one mapping", _line(key_node))
        seen.add(key)
    return YamlProblem("a mapping repeats a key", _line(node))  # pragma: no cover - found above


def _unsupported_tag(node: Node) -> YamlProblem:
    return YamlProblem(f"the tag {_short_tag(node.tag)} is not allowed in Kubernetes manifests", _line(node))


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG_PREFIX) if tag.startswith(_TAG_PREFIX) else tag


def _anchor(node: Node) -> str:
    return f"anchor at line {_line(node)}"


def _line(node: Node) -> int | None:
    return node.start_mark.line + 1 if node.start_mark is not None else None

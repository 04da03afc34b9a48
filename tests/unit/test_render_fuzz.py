"""Hostile YAML: whatever bytes a repository holds, the loader gives documents or a RenderError, quickly.

Generated input of three kinds (arbitrary bytes, token soup shaped like YAML, and JSON values written as
YAML) must never raise anything but RenderError, hang, or build more than the alias limits allow. The
crashes these properties found are kept below as explicit regression tests.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moor.plan.normalize import parse_quantity
from moor.render import RenderError, RenderLimits
from moor.render.documents import Document, ParseBudget, parse_json, parse_yaml
from moor.render.safe_yaml import TooManyNodes, _node_bound, _refuse_too_many_nodes
from moor.render.validate import collect_objects

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)
LIMITS = RenderLimits()


def parse(data: bytes, limits: RenderLimits = LIMITS) -> list[Document] | RenderError:
    """The loader's answer: documents, or the RenderError it refused with (any other exception fails)."""
    try:
        documents = parse_yaml(data, "fuzz.yaml", ParseBudget(limits))
    except RenderError as error:
        message = str(error)
        assert "fuzz.yaml" in message, message
        assert "\n" not in message.strip(), message
        return error
    assert all(document.source == "fuzz.yaml" for document in documents)
    return documents


def parsed(data: bytes) -> list[Document]:
    result = parse(data)
    assert not isinstance(result, RenderError), str(result)
    return result


def size(value: Any) -> int:
    """Nodes in a built value, counted without recursion (a value may be deep)."""
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        count += 1
        if isinstance(item, dict):
            pending.extend(item.values())
            count += len(item)
        elif isinstance(item, list):
            pending.extend(item)
    return count


def assert_plain(value: Any) -> None:
    """Only what JSON can carry comes out: dicts with string keys, lists, str, int, float, bool, None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            assert all(isinstance(key, str) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        else:
            assert item is None or isinstance(item, str | int | float | bool), type(item)


# -- arbitrary bytes ------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048))
@example(b"\x00")
@example(b"\xff\xfe\x00")
@example(b"\xef\xbb\xbfa: 1")
@example(b"a: " + b"1" * 5000)  # found: int() of 5000 decimal digits raised ValueError
@example(b"{0x" + b"f" * 5000 + b": 1}")
@example(b"[" * 10_000)
@example(b"- " * 5000)
def test_arbitrary_bytes_give_documents_or_a_render_error(data: bytes) -> None:
    result = parse(data)
    if not isinstance(result, RenderError):
        for document in result:
            assert_plain(document.body)


# -- text shaped like YAML --------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "a", "b", "kind", "apiVersion: v1", "metadata", ":", ": ", "- ", "-", "\n", "\n  ", "\n    ", "  ", "\t",
        "[", "]", "{", "}", ",", "? ", "---\n", "...\n", "%YAML 1.1\n", "%TAG !e! tag:e.com,2000:\n", "#c",
        "&a ", "&b ", "*a", "*b", "*c", "<<: ", "<<: *a", "<<: [*a, *b]",
        "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!map ", "!!seq ", "!!binary ", "!!timestamp ",
        "!!python/object:os.system ", "!e!x ", "! ", "!<tag:yaml.org,2002:str> ",
        '"', "'", '"\\u00e9"', '"\\x41"', '"\\ud800"', "\\", "|", "|-\n  ", ">", ">+\n  ",
        "0x1F", "0o17", "0b101", "0777", "1_000", "1e3", "-1.5e-3", ".inf", "-.Inf", ".nan", "1:20", "0x_",
        "yes", "No", "on", "~", "null", "", "2001-12-14", "=", "<<",
        "\ufeff", "\x85", "\u2028", "é", "\U0001f4a5", "\x00", "\x1b",
    ]
)  # fmt: skip
YAML_ISH = st.lists(TOKENS, max_size=80).map("".join)


@FUZZ
@given(YAML_ISH)
@example("a: &a [1]\nb: *a\nc: *a\n")
@example("&a [*a]")
@example("a: &a {b: *a}")
@example("<<: 1")
@example("a: !!int x")
@example("? [a]\n: b")
@example("a: 1\na: 2")
@example("a: 1\n<<: {a: 2}\n<<: {b: 3}")
def test_yaml_shaped_text_gives_documents_or_a_render_error(text: str) -> None:
    result = parse(text.encode("utf-8", "surrogatepass"))
    if isinstance(result, RenderError):
        return
    for document in result:
        assert_plain(document.body)
    with contextlib.suppress(RenderError):
        collect_objects(result)


@FUZZ
@given(YAML_ISH)
@example("a\n...\nb\n...\nc\n")
@example("[a: b, c: d, {e}, [f, g]]")
@example("? a\n? b\n- \n")
def test_the_cheap_node_bound_is_never_below_the_real_count(text: str) -> None:
    """Large streams are counted exactly only when the bound says they might be over the limit."""
    data = text.encode("utf-8", "surrogatepass")
    try:
        _refuse_too_many_nodes(data, _node_bound(data))
    except TooManyNodes:
        raise AssertionError(f"{text!r} composes more than {_node_bound(data)} nodes") from None


# -- aliases: never more than the limits allow ------------------------------------------------------------


@st.composite
def alias_ladders(draw: st.DrawFn) -> str:
    """`l0: &l0 [...]`, then each level an anchored list of aliases to the one before: "billion laughs"."""
    levels = draw(st.integers(1, 8))
    width = draw(st.integers(1, 12))
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * draw(st.integers(1, width)))
        lines.append(f"l{level}: &l{level} [{aliases}]")
    if draw(st.booleans()):
        lines.append(f"base: &base {{k: *l{levels - 1}}}")
        lines.append(f"top: {{<<: [*base, {{j: lol}}], x: *l{levels - 1}}}")
    return "\n".join(lines) + "\n"


SMALL_ALIAS_LIMITS = RenderLimits(max_aliases=20, max_alias_nodes=500)


@FUZZ
@given(alias_ladders())
@example("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{n}: &l{n} [*l{n - 1}, *l{n - 1}, *l{n - 1}, *l{n - 1}, *l{n - 1}, *l{n - 1}, *l{n - 1}, *l{n - 1}]\n"
    for n in range(1, 9)
))  # fmt: skip
def test_aliases_never_expand_past_the_limits(text: str) -> None:
    result = parse(text.encode(), SMALL_ALIAS_LIMITS)
    if isinstance(result, RenderError):
        assert "alias" in str(result)
        return
    [document] = result
    written = text.count("lol") + text.count("*") + text.count(":") * 2
    assert size(document.body) <= written + SMALL_ALIAS_LIMITS.max_alias_nodes + 16


# -- JSON is YAML: any JSON value reads back as itself ----------------------------------------------------

BMP_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=20)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | BMP_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(BMP_TEXT, children, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(JSON_VALUES)
@example({"<<": {"a": 1}})
@example({"key": "0o17", "yes": "no", "1e3": "~"})
@example([1e16, -0.0, 5e-324, 1.7976931348623157e308])
def test_json_written_as_yaml_reads_back_unchanged(value: Any) -> None:
    text = json.dumps(value)  # ASCII only: every other character becomes a \\u escape
    result = parse(text.encode())
    assert not isinstance(result, RenderError), f"{text!r}: {result}"
    [document] = result
    assert document.body == value
    assert json.dumps(document.body) == text


@FUZZ
@given(JSON_VALUES)
def test_a_json_file_reads_as_itself_or_is_refused(value: Any) -> None:
    text = json.dumps(value)
    [document] = parse_json(text.encode(), "fuzz.json", ParseBudget(LIMITS))
    assert document.body == value


# -- values that reach the planner ------------------------------------------------------------------------


@FUZZ
@given(st.text(st.sampled_from("0123456789+-.eEKMGTPimnuk_ "), max_size=40) | st.text(max_size=40))
@example("1e" + "9" * 5000)  # found: int() of the exponent raised ValueError
@example("1e999999999999")  # found: Decimal.scaleb raised InvalidOperation
@example("9" * 5000 + "Ei")
def test_any_quantity_text_is_a_number_or_none(text: str) -> None:
    quantity = parse_quantity(text)
    assert quantity is None or quantity.is_finite()


# -- regressions and bounds found by the properties above --------------------------------------------------


def test_a_huge_integer_is_refused_with_its_line() -> None:
    result = parse(b"apiVersion: v1\nkind: ConfigMap\nvalue: " + b"1" * 5000 + b"\n")
    assert isinstance(result, RenderError)
    assert str(result) == "fuzz.yaml is not valid YAML at line 3: an integer of 5000 digits is too long (at most 1000)"


def test_a_huge_integer_key_is_refused() -> None:
    result = parse(b"{0x" + b"f" * 1001 + b": 1}")
    assert isinstance(result, RenderError)
    assert "too long" in str(result)


def test_long_integers_within_the_limit_stay_integers() -> None:
    [document] = parsed(b"a: " + b"9" * 1000 + b"\nb: 0x" + b"f" * 1000 + b"\n")
    assert document.body["a"] == int("9" * 1000)
    assert document.body["b"] == int("f" * 1000, 16)


@pytest.mark.parametrize("scalar", ["0b" + "1" * 200_000 + "x", "0x" + "f" * 200_000 + "g", "0o" + "7" * 200_000 + "8"])
def test_long_scalars_that_look_like_numbers_are_typed_in_linear_time(scalar: str) -> None:
    """Found: the integer pattern backtracked quadratically (40 000 characters took 7 s; 8 MiB, hours)."""
    started = time.monotonic()
    [document] = parsed(f"a: {scalar}\n".encode())
    assert document.body == {"a": scalar}
    assert time.monotonic() - started < 2.0


def test_the_most_compact_yaml_is_refused_before_it_fills_memory() -> None:
    """`[a,a,a,…]` composes about 75 bytes of nodes per byte (8 MiB: 600 MiB); it is counted first, in
    constant memory, and refused before any of it is composed."""
    data = b"[" + b"a," * 1_000_000 + b"a]"
    tracemalloc.start()
    try:
        result = parse(data, RenderLimits(max_nodes=200_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, RenderError)
    assert str(result) == "the manifests exceed the limit of 200000 YAML nodes at fuzz.yaml"
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_the_default_node_limit_stops_an_8_mib_file_of_compact_yaml() -> None:
    result = parse(b"[" + b"a," * (4 * 1024 * 1024 - 2) + b"a]")
    assert isinstance(result, RenderError)
    assert str(result) == "the manifests exceed the limit of 4000000 YAML nodes at fuzz.yaml"


def test_the_node_limit_holds_for_a_render_as_a_whole() -> None:
    budget = ParseBudget(RenderLimits(max_nodes=100))
    parse_yaml(b"- " + b"\n- ".join(b"%d" % n for n in range(60)), "one.yaml", budget)
    with pytest.raises(RenderError, match=r"^the manifests exceed the limit of 100 YAML nodes at two.json$"):
        parse_json(json.dumps({"items": list(range(60))}).encode(), "two.json", budget)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    for data in (b"[" * 100_000, b"{a: " * 50_000, b"".join(b" " * i + b"- \n" for i in range(3000))):
        result = parse(data)
        assert isinstance(result, RenderError)
        assert "nest" in str(result), str(result)


def test_infinities_stay_floats() -> None:
    [document] = parsed(b"a: .inf\nb: -.Inf\nc: .nan\n")
    assert document.body["a"] == math.inf and document.body["b"] == -math.inf and math.isnan(document.body["c"])

"""Setter markers: only the marked scalars change, every other byte stays; bad markers name file and line."""

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from moor.automation.setters import (
    Field,
    ImageRef,
    MarkerInvalid,
    PolicyHasNoImage,
    PolicyName,
    PolicyNotFound,
    apply_setters,
    find_markers,
)

APP = PolicyName("apps", "app")
LATEST = {APP: ImageRef.parse("registry.example:5000/team/app:1.3.0")}

DEPLOYMENT = """\
# the app, kept by hand except for its image
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app   # a comment that stays
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example:5000/team/app:1.2.0 # {"$imagepolicy": "apps:app"}
        - name: sidecar
          image: "registry.example:5000/team/sidecar:7"
"""


def test_a_whole_reference_is_replaced_and_nothing_else() -> None:
    rewrite = apply_setters(DEPLOYMENT, "deploy/app.yaml", LATEST)

    assert rewrite.text == DEPLOYMENT.replace("app:1.2.0 #", "app:1.3.0 #")
    [change] = rewrite.changes
    assert (change.file, change.line, change.policy, change.field) == ("deploy/app.yaml", 11, APP, Field.IMAGE)
    assert (change.old, change.new) == ("registry.example:5000/team/app:1.2.0", "registry.example:5000/team/app:1.3.0")


def test_split_fields_in_helm_values_keep_their_quoting() -> None:
    values = (
        "image:\n"
        '  repository: "old/app"  # {"$imagepolicy": "apps:app:name"}\n'
        '  tag: \'1.2.0\' # {"$imagepolicy": "apps:app:tag"}\n'
        "  pullPolicy: IfNotPresent\n"
    )
    rewrite = apply_setters(values, "values.yaml", LATEST)

    assert rewrite.text == values.replace('"old/app"', '"registry.example:5000/team/app"').replace("'1.2.0'", "'1.3.0'")
    assert [change.field for change in rewrite.changes] == [Field.NAME, Field.TAG]


def test_a_kustomization_images_entry_and_a_digest() -> None:
    kustomization = (
        "images:\n"
        "  - name: app\n"
        '    newName: registry.example:5000/team/app # {"$imagepolicy": "apps:app:name"}\n'
        '    newTag: 1.2.0 # {"$imagepolicy": "apps:app:tag"}\n'
        '    digest: sha256:aaaa # {"$imagepolicy": "apps:app:digest"}\n'
    )
    pinned = {APP: ImageRef.parse("registry.example:5000/team/app:1.3.0@sha256:bbbb")}
    rewrite = apply_setters(kustomization, "kustomization.yaml", pinned)

    assert rewrite.text == kustomization.replace("1.2.0", "1.3.0").replace("sha256:aaaa", "sha256:bbbb")
    assert yaml.safe_load(rewrite.text)["images"][0]["newTag"] == "1.3.0"


def test_a_plain_value_that_would_read_as_a_number_is_quoted() -> None:
    text = 'tag: 1.2 # {"$imagepolicy": "apps:app:tag"}\n'
    rewrite = apply_setters(text, "values.yaml", {APP: ImageRef.parse("app:1.10")})

    assert rewrite.text == 'tag: "1.10" # {"$imagepolicy": "apps:app:tag"}\n'
    assert yaml.safe_load(rewrite.text) == {"tag": "1.10"}


def test_crlf_line_endings_and_other_documents_stay() -> None:
    text = 'a: 1\r\n---\r\nimage: app:1.2.0 # {"$imagepolicy": "apps:app"}\r\nb: two\r\n'
    rewrite = apply_setters(text, "f.yaml", {APP: ImageRef.parse("app:1.3.0")})

    assert rewrite.text == text.replace("app:1.2.0", "app:1.3.0")
    assert rewrite.changes[0].line == 3


def test_an_up_to_date_file_is_not_changed() -> None:
    rewrite = apply_setters(DEPLOYMENT, "app.yaml", {APP: ImageRef.parse("registry.example:5000/team/app:1.2.0")})

    assert rewrite.text == DEPLOYMENT
    assert rewrite.changes == ()


def test_a_held_policy_is_left_where_it_is() -> None:
    assert apply_setters(DEPLOYMENT, "app.yaml", LATEST, held=frozenset({APP})).changes == ()


def test_a_marker_inside_a_quoted_string_is_not_a_marker() -> None:
    text = 'note: "image: x # {\\"$imagepolicy\\": \\"apps:app\\"}"\n'
    assert find_markers(text, "f.yaml") == []
    assert apply_setters(text, "f.yaml", {}).text == text


def test_yaml_that_does_not_parse_names_the_file_and_line() -> None:
    text = 'a: 1\nimage: app:1.2.0 # {"$imagepolicy": "apps:app"}\nb: [unclosed\n'
    with pytest.raises(MarkerInvalid, match=r"^broken\.yaml:\d+: the file holds setter markers but is not valid YAML"):
        apply_setters(text, "broken.yaml", LATEST)


def test_a_policy_that_does_not_exist_names_the_file_and_line() -> None:
    text = 'a: 1\nimage: app:1.2.0 # {"$imagepolicy": "apps:other"}\n'
    with pytest.raises(PolicyNotFound, match=r"^f\.yaml:2: the marker names the ImagePolicy apps/other"):
        apply_setters(text, "f.yaml", LATEST)


def test_a_policy_without_a_latest_image_is_refused() -> None:
    with pytest.raises(PolicyHasNoImage, match=r"^app\.yaml:11: the ImagePolicy apps/app has not chosen an image yet"):
        apply_setters(DEPLOYMENT, "app.yaml", {APP: None})
    text = 'd: sha256:aa # {"$imagepolicy": "apps:app:digest"}\n'
    with pytest.raises(PolicyHasNoImage, match="has no digest"):
        apply_setters(text, "f.yaml", LATEST)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('image: a # {"$imagepolicy": "app"}', 'write "namespace:policy"'),
        ('image: a # {"$imagepolicy": "apps:app:version"}', "is not one of name, tag or digest"),
        ('image: # {"$imagepolicy": "apps:app"}', "must follow a single-line scalar value"),
        ('image: [a] # {"$imagepolicy": "apps:app"}', "must follow a single-line scalar value"),
        ('image: !!binary aGk= # {"$imagepolicy": "apps:app"}', "has an explicit tag"),
    ],
)
def test_malformed_markers_are_refused(line: str, problem: str) -> None:
    with pytest.raises(MarkerInvalid, match=problem):
        apply_setters(line + "\n", "f.yaml", LATEST)


def test_image_references_split_into_their_parts() -> None:
    assert ImageRef.parse("host:5000/a/b:1.0@sha256:ff") == ImageRef("host:5000/a/b", "1.0", "sha256:ff")
    assert ImageRef.parse("host:5000/a/b") == ImageRef("host:5000/a/b")
    assert str(ImageRef("host:5000/a/b", "1.0", "sha256:ff")) == "host:5000/a/b:1.0@sha256:ff"


_tags = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=20).filter(
    lambda t: t[0] not in ".-"
)
_comments = st.text(string.ascii_letters + string.digits + " ,.:'\"", max_size=30)
_keys = st.sampled_from(["image", "tag", "newTag", "x-y"])
_quotes = st.sampled_from(["", "'", '"'])


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.tuples(_keys, _tags, _comments), max_size=4),
    after=st.lists(st.tuples(_keys, _tags, _comments), max_size=4),
    quote=_quotes,
    old=_tags,
    new=_tags,
    crlf=st.booleans(),
)
def test_round_trip_only_the_marked_value_changes(
    before: list[tuple[str, str, str]],
    after: list[tuple[str, str, str]],
    quote: str,
    old: str,
    new: str,
    crlf: bool,
) -> None:
    eol = "\r\n" if crlf else "\n"

    def entries(items: list[tuple[str, str, str]], prefix: str) -> list[str]:
        return [f"{prefix}{i}{key}: '{value}'  # {comment}" for i, (key, value, comment) in enumerate(items)]

    marked = f'marked: {quote}{old}{quote}  # {{"$imagepolicy": "apps:app:tag"}}'
    lines = [*entries(before, "b"), marked, *entries(after, "a")]
    text = eol.join(lines) + eol
    rewrite = apply_setters(text, "f.yaml", {APP: ImageRef("app", new)})

    untouched = [line for line in lines if line != marked]
    assert [line for line in rewrite.text.split(eol) if "$imagepolicy" not in line][:-1] == untouched
    if old == new:  # up to date as written, even where YAML reads the plain value as a number
        assert rewrite.text == text and rewrite.changes == ()
    else:
        assert yaml.safe_load(rewrite.text)["marked"] == new
    again = apply_setters(rewrite.text, "f.yaml", {APP: ImageRef("app", new)})
    assert again.text == rewrite.text and again.changes == ()

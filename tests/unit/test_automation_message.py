"""The commit message of an image update: the template filled in, then trailers a program can read."""

import pytest

from moor.automation.message import TemplateError, check_template, commit_message, describe_image_moves, read_trailers
from moor.automation.setters import Change, Field, ImageRef, PolicyName

APP = PolicyName("apps", "app")
WEB = PolicyName("apps", "web")
IMAGES = {APP: ImageRef.parse("host/app:1.3.0"), WEB: ImageRef.parse("host/web:2.1")}
CHANGES = [
    Change("deploy/app.yaml", 11, APP, Field.IMAGE, "host/app:1.2.0", "host/app:1.3.0"),
    Change("values.yaml", 3, WEB, Field.TAG, "2.0", "2.1"),
]


def test_the_default_message_lists_every_change_and_ends_with_trailers() -> None:
    message = commit_message(
        "Update images of {policies}\n\n{changes}", CHANGES, IMAGES, automation="apps/auto", branch="main"
    )

    assert message == (
        "Update images of apps/app, apps/web\n"
        "\n"
        "- apps/app: host/app 1.2.0 -> 1.3.0\n"
        "  deploy/app.yaml:11\n"
        "- apps/web: host/web 2.0 -> 2.1\n"
        "  values.yaml:3\n"
        "\n"
        "Moor-Image-Update: apps/app host/app 1.2.0 -> 1.3.0\n"
        "Moor-Image-Update: apps/web host/web 2.0 -> 2.1\n"
        "Moor-Automation: apps/auto\n"
    )


def test_trailers_read_back() -> None:
    message = commit_message(
        "{count} changes on {branch} by {automation} {{literal}}",
        CHANGES,
        IMAGES,
        automation="apps/auto",
        branch="main",
    )

    assert message.startswith("2 changes on main by apps/auto {literal}\n\n")
    assert [(m.policy, m.image, m.old, m.new) for m in read_trailers(message)] == [
        (APP, "host/app", "1.2.0", "1.3.0"),
        (WEB, "host/web", "2.0", "2.1"),
    ]


def test_a_digest_only_change_shows_the_digests() -> None:
    changes = [Change("k.yaml", 4, APP, Field.DIGEST, "sha256:aa", "sha256:bb")]
    images = {APP: ImageRef.parse("host/app:1.3.0@sha256:bb")}
    [move] = read_trailers(commit_message("x", changes, images, automation="a/b", branch="main"))
    assert (move.old, move.new) == ("sha256:aa", "sha256:bb")


@pytest.mark.parametrize(("template", "problem"), [("{nope}", "unknown placeholder {nope}"), ("a } b", "a brace")])
def test_bad_templates_are_refused(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        check_template(template)


def test_history_and_audit_describe_the_moves_a_commit_made_and_its_rollback() -> None:
    message = (
        "Update images\n\n"
        "Moor-Image-Update: apps/web registry.example:5000/team/web 1.4.0 -> 1.5.0\n"
        "Moor-Automation: apps/web"
    )
    assert describe_image_moves(message, "Succeeded", "2026-12-02T10:00:00Z") == "web 1.4.0 -> 1.5.0 by automation"
    assert (
        describe_image_moves(message, "RolledBack", "2026-12-02T10:05:00Z")
        == "web 1.4.0 -> 1.5.0 by automation, rolled back at 2026-12-02 10:05:00"
    )
    assert describe_image_moves("a commit by a person", "Succeeded", "") == ""

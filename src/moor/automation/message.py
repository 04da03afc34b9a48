"""The commit message of an image update: the user's template, then machine-readable trailers.

The template takes `{placeholders}`: `{automation}` (namespace/name of the ImageUpdate), `{branch}`,
`{count}` (how many values changed), `{policies}` (the policies that moved, comma separated) and
`{changes}` (one line per policy: `- apps/app: host/app 1.2.0 -> 1.3.0`, then its files). `{{` and `}}`
are literal braces. After the text come the trailers, one `Moor-Image-Update` per policy that moved and
one `Moor-Automation`, so `git interpret-trailers --parse` (and `moor history`) can read what happened:

    Moor-Image-Update: apps/app host/app 1.2.0 -> 1.3.0
    Moor-Automation: apps/app-update
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from moor.automation.setters import Change, Field, ImageRef, PolicyName

PLACEHOLDERS = ("automation", "branch", "count", "policies", "changes")
DEFAULT_TEMPLATE = "Update images of {policies}\n\n{changes}\n"
IMAGE_UPDATE_TRAILER = "Moor-Image-Update"
AUTOMATION_TRAILER = "Moor-Automation"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_TRAILER = re.compile(
    rf"^{IMAGE_UPDATE_TRAILER}: (?P<policy>[^/\s]+/\S+) (?P<image>\S+) (?P<old>\S+) -> (?P<new>\S+)$", re.MULTILINE
)


class TemplateError(ValueError):
    """A message template with a placeholder Moor does not know, or an unmatched brace."""


@dataclass(frozen=True)
class ImageMove:
    """What one policy's change amounts to: its image went from one tag (or digest) to another."""

    policy: PolicyName
    image: str
    old: str
    new: str

    @property
    def trailer(self) -> str:
        return f"{IMAGE_UPDATE_TRAILER}: {self.policy} {self.image} {self.old} -> {self.new}"


def check_template(template: str) -> None:
    """Raises TemplateError naming the first placeholder that is not one of PLACEHOLDERS."""
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name is not None and name not in PLACEHOLDERS:
            raise TemplateError(
                f"unknown placeholder {{{name}}} (use {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )
    stripped = _PLACEHOLDER.sub("", template)
    if "{" in stripped or "}" in stripped:
        raise TemplateError("a brace without its pair: write {{ or }} for a literal brace")


def image_moves(changes: Sequence[Change], images: Mapping[PolicyName, ImageRef]) -> list[ImageMove]:
    """One move per policy: the image's name (from `images`, the policies' latest) and its tag (or digest,
    when only that changed), old and new."""
    moves: list[ImageMove] = []
    for policy in sorted({change.policy for change in changes}):
        own = [change for change in changes if change.policy == policy]
        old, new = _side(own, "old"), _side(own, "new")
        latest = images.get(policy)
        image = latest.name if latest is not None else (new.name or old.name)
        before = old.tag or old.digest or "?"
        after = new.tag or new.digest or "?"
        if before == after and old.digest != new.digest:
            before, after = old.digest or "?", new.digest or "?"
        moves.append(ImageMove(policy, image or "?", before, after))
    return moves


def commit_message(
    template: str,
    changes: Sequence[Change],
    images: Mapping[PolicyName, ImageRef],
    *,
    automation: str,
    branch: str,
) -> str:
    """The whole message: the template filled in, a blank line, the trailers."""
    moves = image_moves(changes, images)
    lines: list[str] = []
    for move in moves:
        lines.append(f"- {move.policy}: {move.image} {move.old} -> {move.new}")
        files = sorted({f"{change.file}:{change.line}" for change in changes if change.policy == move.policy})
        lines.extend(f"  {where}" for where in files)
    values = {
        "automation": automation,
        "branch": branch,
        "count": str(len(changes)),
        "policies": ", ".join(str(move.policy) for move in moves),
        "changes": "\n".join(lines),
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        return values[name]

    body = _PLACEHOLDER.sub(fill, template).rstrip()
    trailers = [move.trailer for move in moves] + [f"{AUTOMATION_TRAILER}: {automation}"]
    return f"{body}\n\n" + "\n".join(trailers) + "\n"


def describe_image_moves(message: str, result: str, finished_at: str) -> str:
    """What a deployed commit did to images, for `moor history` and `moor audit`, one line per move:
    `app 1.4 -> 1.5 by automation`, with `, rolled back at <time>` when the deployment was rolled back."""
    rolled_back = f", rolled back at {finished_at.replace('T', ' ').rstrip('Z')}" if result == "RolledBack" else ""
    return "\n".join(
        f"{move.image.rpartition('/')[2]} {move.old} -> {move.new} by automation{rolled_back}"
        for move in read_trailers(message)
    )


def read_trailers(message: str) -> list[ImageMove]:
    """The image moves a commit message's `Moor-Image-Update` trailers record (for history and audit)."""
    moves = []
    for match in _TRAILER.finditer(message):
        namespace, _, name = match["policy"].partition("/")
        moves.append(ImageMove(PolicyName(namespace, name), match["image"], match["old"], match["new"]))
    return moves


def _side(changes: Sequence[Change], which: str) -> ImageRef:
    """The image one side of a policy's changes shows, assembled from whole references and split fields."""
    name: str | None = None
    tag: str | None = None
    digest: str | None = None
    for change in changes:
        value = change.old if which == "old" else change.new
        if change.field is Field.IMAGE:
            ref = ImageRef.parse(value)
            name, tag, digest = name or ref.name, tag or ref.tag, digest or ref.digest
        elif change.field is Field.NAME:
            name = name or value
        elif change.field is Field.TAG:
            tag = tag or value
        else:
            digest = digest or value
    return ImageRef(name or "", tag, digest)

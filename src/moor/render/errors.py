"""The error every render failure raises: one sentence naming the file (relative to the repository) and cause."""

from __future__ import annotations

from moor.errors import MoorError


class RenderError(MoorError):
    """A path of a repository could not be turned into Kubernetes objects; the message says where and why."""

"""Secrets on disk that only their owner may read: keys and configs handed to git, gpg, sops and ssl."""

import os
from pathlib import Path


def write_private(path: Path, content: bytes) -> None:
    """Creates `path` readable by its owner alone from its first byte; whatever stands there already
    (a file or a link) is an error, never reused or followed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def replace_private(path: Path, content: bytes) -> None:
    """`write_private` over a file a rerun writes again, its folder made if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    write_private(path, content)

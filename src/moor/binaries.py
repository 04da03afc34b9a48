"""Finds the external programs Moor runs (kustomize, helm, git, the control plane's binaries)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from moor.errors import MoorError


class BinaryNotFound(MoorError):
    pass


def tools_bin_dir() -> Path:
    """Where `devcluster/build.sh` puts the binaries it builds (`MOOR_TOOLS_BIN` overrides)."""
    explicit = os.environ.get("MOOR_TOOLS_BIN")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("MOOR_TOOLS_ROOT") or cache / "moor" / "tools")
    return root / "current" / "bin"


def locate(name: str) -> Path:
    """The built binary if there is one, else the one on PATH."""
    built = tools_bin_dir() / name
    if built.is_file() and os.access(built, os.X_OK):
        return built
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BinaryNotFound(f"the program {name!r} was not found in {tools_bin_dir()} or on PATH; run `make setup`")

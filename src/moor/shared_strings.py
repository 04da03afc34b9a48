"""Equal strings stored once, for the objects Moor keeps in memory for long.

The live cache holds every managed object for as long as the controller runs, and each Sync keeps its
last render; across thousands of objects the same field names (`metadata`, `f:data`,
`app.kubernetes.io/name`), kinds, namespaces, label values and timestamps repeat. Python's JSON
decoder shares keys only within one document (and each watch event is its own document); the YAML
builder shares none. Going through one table of shared strings nearly halves the memory of typical
objects (docs/benchmarks.md).

The table is Moor's own, not `sys.intern`, and bounded: when it fills up it starts afresh, so values
that never repeat (uids, resourceVersions) cannot make it grow without end. Only values up to
`SHORT` characters are shared; longer ones (data, certificates) rarely repeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

SHORT = 64

Share = Callable[[str, str], str]
"""`share(text, text)` returns the table's copy of `text` (adding it when new)."""


class StringTable:
    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._strings: dict[str, str] = {}

    def sharer(self) -> Share:
        """The table's lookup for one document (the table may start afresh between documents)."""
        if len(self._strings) > self.limit:
            self._strings = {}
        return self._strings.setdefault

    def __len__(self) -> int:
        return len(self._strings)


class SharedJsonDecoder:
    """json.loads whose objects share equal keys and short string values through a StringTable."""

    def __init__(self, table: StringTable | None = None) -> None:
        self.table = table or StringTable()
        self._share: Share = self.table.sharer()
        self._decoder = json.JSONDecoder(object_pairs_hook=self._object)

    def loads(self, data: bytes | str) -> Any:
        self._share = self.table.sharer()
        return self._decoder.decode(data.decode() if isinstance(data, bytes) else data)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        share = self._share
        decoded: dict[str, Any] = {}
        for key, value in pairs:
            if value.__class__ is str and len(value) <= SHORT:
                value = share(value, value)
            decoded[share(key, key)] = value
        return decoded


RENDERED = StringTable()
"""The table renders share: rendered objects repeat the same keys and values across documents."""

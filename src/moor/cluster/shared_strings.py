"""Decoding watched objects so that repeated strings are stored once.

The live cache holds every managed object for as long as the controller runs, and the same field
names (`metadata`, `f:data`, `app.kubernetes.io/name`), kinds, namespaces, label values and
managedFields timestamps repeat across thousands of them. Python's JSON decoder shares keys only
within one document, and each watch event is its own document, so a cache built from watch events
holds thousands of copies of each. Decoding through one table of shared strings halves the cache's
memory for typical objects (docs/benchmarks.md).
"""

from __future__ import annotations

import json
from typing import Any

SHORT = 64
"""Values up to this length are shared; longer ones (data, certificates) rarely repeat."""


class SharedStrings:
    """A JSON decoder whose objects share equal keys and short string values.

    The table is Moor's own (not `sys.intern`), bounded by `limit`: when it fills up it starts afresh,
    so values that never repeat (uids, resourceVersions) cannot make it grow without end.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._table: dict[str, str] = {}
        self._decoder = json.JSONDecoder(object_pairs_hook=self._object)

    def loads(self, data: bytes | str) -> Any:
        text = data.decode() if isinstance(data, bytes) else data
        if len(self._table) > self.limit:
            self._table = {}
        return self._decoder.decode(text)

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        share = self._table.setdefault
        decoded: dict[str, Any] = {}
        for key, value in pairs:
            if value.__class__ is str and len(value) <= SHORT:
                value = share(value, value)
            decoded[share(key, key)] = value
        return decoded

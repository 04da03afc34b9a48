"""Comparisons remembered between passes, so that planning compares only what changed.

Comparing a desired object with its live copy is the cost of planning (reading the live object's
managedFields included). The result depends only on the two objects, and each is cheap to recognise
again: the desired object by a digest of its content (`DesiredSet.fingerprints`, computed once per
render) and the live copy by its `resourceVersion`; the kind's schema by the document it comes from
(a CRD whose schema changed can change the answer). A remembered result is reused only when all three
match; anything else is compared afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moor.objects import FIELD_MANAGER, Identity, KubeObject
from moor.plan.compare import FieldDifference, compare
from moor.plan.schema import FieldSchema


@dataclass(frozen=True)
class _Comparison:
    desired: str
    """The desired object's fingerprint."""
    live_version: str
    schema: str
    """The source of the kind's schema ("" without one)."""
    differences: tuple[FieldDifference, ...]


class RememberedComparisons:
    """One Sync's comparisons of its last plan, by object identity."""

    def __init__(self, manager: str = FIELD_MANAGER) -> None:
        self.manager = manager
        self._last: dict[Identity, _Comparison] = {}
        self._current: dict[Identity, _Comparison] = {}

    def compare(
        self,
        identity: Identity,
        fingerprint: str,
        desired: KubeObject,
        live: Mapping[str, Any],
        schema: FieldSchema | None = None,
    ) -> tuple[FieldDifference, ...]:
        """The differences between `desired` (whose fingerprint is given) and `live` under the kind's
        `schema`, from memory when none of them changed since the last plan."""
        version = str((live.get("metadata") or {}).get("resourceVersion") or "")
        source = "" if schema is None else schema.source
        known = self._last.get(identity)
        if (
            known is not None
            and version
            and known.desired == fingerprint
            and known.live_version == version
            and known.schema == source
        ):
            self._current[identity] = known
            return known.differences
        differences = tuple(compare(desired, live, manager=self.manager, schema=schema))
        self._current[identity] = _Comparison(fingerprint, version, source, differences)
        return differences

    def end_pass(self) -> None:
        """Keeps what this plan compared (and forgets objects it no longer has)."""
        self._last, self._current = self._current, {}

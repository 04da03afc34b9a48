"""The kstatus conditions every Moor object carries: Ready, Reconciling and Stalled, set together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from moor.resources.conditions import (
    FALSE,
    PROGRESSING,
    READY,
    RECONCILING,
    STALLED,
    TRUE,
    UNKNOWN,
    Condition,
    remove_condition,
    set_condition,
)

Conditions = Sequence[Mapping[str, Any]] | None


def ready(conditions: Conditions, reason: str, message: str, generation: int) -> list[dict[str, Any]]:
    """Ready=True; no longer Reconciling or Stalled."""
    current = set_condition(conditions, Condition(READY, TRUE, reason, message, generation))
    return remove_condition(remove_condition(current, RECONCILING), STALLED)


def failed(
    conditions: Conditions, reason: str, message: str, generation: int, *, stalled: bool = False
) -> list[dict[str, Any]]:
    """Ready=False; Stalled=True when retrying cannot help until the spec or the source changes."""
    current = set_condition(conditions, Condition(READY, FALSE, reason, message, generation))
    current = remove_condition(current, RECONCILING)
    if stalled:
        return set_condition(current, Condition(STALLED, TRUE, reason, message, generation))
    return remove_condition(current, STALLED)


def reconciling(conditions: Conditions, message: str, generation: int) -> list[dict[str, Any]]:
    """Reconciling=True and Ready=Unknown while a revision is being applied or waited on."""
    current = set_condition(conditions, Condition(RECONCILING, TRUE, PROGRESSING, message, generation))
    current = set_condition(current, Condition(READY, UNKNOWN, PROGRESSING, message, generation))
    return remove_condition(current, STALLED)

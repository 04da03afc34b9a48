"""Pure decisions of a reconcile: prepare desired objects, compare them with live ones, plan the writes.

No I/O: everything here works on plain dicts, so it is tested without a cluster. Field paths print
in the notation described in `moor.plan.paths` (e.g. `/spec/template/spec/containers/name=web/image`).
"""

from moor.objects import Identity
from moor.plan.changes import Action, ObjectChange, Plan, plan_changes
from moor.plan.compare import ABSENT, DifferenceKind, FieldDifference, compare, lookup
from moor.plan.desired_set import DesiredSet, new_inventory
from moor.plan.drift import Drift, attribute_drift, remove_fields, without_ignored
from moor.plan.drift_policy import DriftDecision, decide_drift, may_have_drifted
from moor.plan.managed_fields import (
    APPLY,
    UPDATE,
    FieldOwner,
    ManagedFields,
    ManagedFieldsEntry,
    parse_fields_v1,
)
from moor.plan.normalize import parse_quantity
from moor.plan.paths import ROOT, FieldPath, ListKey, PathElement, SetItem
from moor.plan.phases import (
    HOOK_LABEL,
    DeletePolicy,
    Hook,
    Phase,
    PhaseError,
    Phases,
    Placement,
    Skipped,
    main_waves,
    place,
    split_phases,
    wave_of,
)
from moor.plan.prepare import (
    DuplicateObjectError,
    IsNamespaced,
    MissingNamespaceError,
    prepare_desired,
    with_arriving_kinds,
)
from moor.plan.remembered import RememberedComparisons
from moor.plan.schema import FieldSchema, GroupVersionSchema, Schemas

__all__ = [
    "ABSENT",
    "APPLY",
    "HOOK_LABEL",
    "ROOT",
    "UPDATE",
    "Action",
    "DeletePolicy",
    "DesiredSet",
    "DifferenceKind",
    "Drift",
    "DriftDecision",
    "DuplicateObjectError",
    "FieldDifference",
    "FieldOwner",
    "FieldPath",
    "FieldSchema",
    "GroupVersionSchema",
    "Hook",
    "Identity",
    "IsNamespaced",
    "ListKey",
    "ManagedFields",
    "ManagedFieldsEntry",
    "MissingNamespaceError",
    "ObjectChange",
    "PathElement",
    "Phase",
    "PhaseError",
    "Phases",
    "Placement",
    "Plan",
    "RememberedComparisons",
    "Schemas",
    "SetItem",
    "Skipped",
    "attribute_drift",
    "compare",
    "decide_drift",
    "lookup",
    "main_waves",
    "may_have_drifted",
    "new_inventory",
    "parse_fields_v1",
    "parse_quantity",
    "place",
    "plan_changes",
    "prepare_desired",
    "remove_fields",
    "split_phases",
    "wave_of",
    "with_arriving_kinds",
    "without_ignored",
]

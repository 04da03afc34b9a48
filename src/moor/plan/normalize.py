"""What the API server canonicalises, so that an object at rest never compares as different.

The server rewrites some values it stores: resource quantities (`"0.5"` becomes `"500m"`, `1` becomes
`"1"`), int-or-string fields, zero values of optional fields (dropped), Secret `stringData` (moved into
base64 `data`). Comparing desired with live goes through these rules instead of plain equality.

Which fields hold quantities and int-or-strings comes from the API's schema (`moor.plan.schema`). Only
for a kind the API published no schema for are they guessed from field names (the tables below), the
way Moor compared before it read schemas.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from moor.objects import KubeObject
from moor.plan.paths import FieldPath
from moor.plan.schema import FieldSchema

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?\d+))?$"
)
_SUFFIX_SCALE: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

# Without a schema: maps whose values are all quantities: container resources, quotas, limit ranges, node and volume
# capacity, pod overhead.
_QUANTITY_MAPS = frozenset(
    {
        "limits",
        "requests",
        "hard",
        "used",
        "capacity",
        "allocatable",
        "overhead",
        "max",
        "min",
        "default",
        "defaultRequest",
        "maxLimitRequestRatio",
    }
)
# Single fields holding a quantity (HPA targets sit in a map named `target`).
_QUANTITY_FIELDS = frozenset({"sizeLimit"})
_QUANTITY_TARGET_FIELDS = frozenset({"averageValue", "value"})

# Fields of type int-or-string, where `8080` and `"8080"` name the same thing.
_INT_OR_STRING_FIELDS = frozenset(
    {
        "port",
        "targetPort",
        "containerPort",
        "hostPort",
        "nodePort",
        "maxSurge",
        "maxUnavailable",
        "minAvailable",
        "partition",
    }
)


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity (`"500m"`, `"1Gi"`, `2`, `"1e3"`) as an exact number, None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match:
        return None
    try:
        number = Decimal(match["number"])
        if match["exponent"] is not None:
            return number.scaleb(int(match["exponent"]))
    except (InvalidOperation, ValueError):  # ValueError: an exponent of thousands of digits
        return None
    return number * _SUFFIX_SCALE[match["suffix"] or ""]


def _holds_quantity(path: FieldPath) -> bool:
    elements = path.elements
    if not elements or not isinstance(elements[-1], str):
        return False
    name = elements[-1]
    if name in _QUANTITY_FIELDS:
        return True
    parent = elements[-2] if len(elements) > 1 else None
    if not isinstance(parent, str):
        return False
    return parent in _QUANTITY_MAPS or (parent == "target" and name in _QUANTITY_TARGET_FIELDS)


def _holds_int_or_string(path: FieldPath) -> bool:
    last = path.elements[-1] if path.elements else None
    return isinstance(last, str) and last in _INT_OR_STRING_FIELDS


def _same_number(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def _int_text_equal(number: Any, text: Any) -> bool:
    return (
        isinstance(number, int)
        and not isinstance(number, bool)
        and isinstance(text, str)
        and text.strip() == str(number)
    )


def scalars_equal(desired: Any, live: Any, path: FieldPath, schema: FieldSchema | None = None) -> bool:
    """Equality of two leaf values as the API server would see them at `path`, which `schema` describes
    (None: the kind has no schema, the field's name decides)."""
    if isinstance(desired, bool) or isinstance(live, bool):
        return type(desired) is type(live) and desired == live
    if desired == live and type(desired) is type(live):
        return True
    if _same_number(desired, live):
        return True
    if schema.quantity if schema is not None else _holds_quantity(path):
        want, have = parse_quantity(desired), parse_quantity(live)
        if want is not None and have is not None:
            return want == have
    if schema.int_or_string if schema is not None else _holds_int_or_string(path):
        return _int_text_equal(desired, live) or _int_text_equal(live, desired)
    return False


def key_values_equal(desired: Any, live: Any) -> bool:
    """Equality of merge-key values: `80` names the same port as `"80"`."""
    if _same_number(desired, live) or (desired == live and type(desired) is type(live)):
        return True
    return _int_text_equal(desired, live) or _int_text_equal(live, desired)


def is_zero(value: Any) -> bool:
    """True for values the API server drops from optional fields of built-in kinds: null, "", false, 0, {}
    and [] (custom resources keep them, see `FieldSchema.keeps_zero_values`)."""
    if value is None or value is False:
        return True
    if isinstance(value, str | list | dict):
        return len(value) == 0
    return isinstance(value, int | float) and value == 0


def _secret_data_with_string_data(secret: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = dict(secret.get("data") or {})
    for key, text in (secret.get("stringData") or {}).items():
        raw = text if isinstance(text, str) else str(text)
        data[key] = base64.b64encode(raw.encode()).decode()
    return data


def comparable_desired(desired: Mapping[str, Any]) -> KubeObject:
    """A desired object shaped as the server stores it (today: Secret stringData moved into data).

    A shallow copy: only top-level fields are replaced, nested values are shared with `desired`."""
    shaped: KubeObject = dict(desired)
    if desired.get("kind") == "Secret" and desired.get("apiVersion") == "v1" and "stringData" in desired:
        data = _secret_data_with_string_data(desired)
        shaped.pop("stringData", None)
        if data:
            shaped["data"] = data
    return shaped

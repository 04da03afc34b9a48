"""Health checks people write: CEL expressions per kind, with the meaning of Flux's `healthCheckExprs`.

An entry `{apiVersion, kind, current, inProgress?, failed?}` applies to every live object of that API
group and kind (the version is not compared, as in Flux). Each expression sees the object's top-level
fields as variables (`metadata`, `spec`, `status`, ...; a missing `metadata`, `spec` or `status` is an
empty map, so `has(status.conditions)` needs no `has(status)`). They are evaluated in the order of
Flux's RFC 0009, which kustomize-controller follows:

1. a `status.observedGeneration` that differs from `metadata.generation`: Progressing;
2. `inProgress` true: Progressing;
3. `failed` true: Failed;
4. `current` true: Healthy;
5. otherwise Progressing.

Every expression is compiled (parsed and type-checked) once, in `compile_checks`: one that does not
compile raises `InvalidHealthCheck` naming the entry and the compiler's message. One that fails to
evaluate on an object (a missing field read without `has()`, a type error) or that is not a bool makes
the object Failed at once with the expression and the error, never a silent wait to the timeout.

The CEL implementation is Google's cel-cpp through `cel-expr-python`; optional field access
(`status.?conditions.orValue([])`) and the strings extension are on, as in Flux's environment.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_optional, ext_strings  # type: ignore[import-untyped]

from moor.errors import MoorError
from moor.health.conditions import number, status_of
from moor.health.rules import assess_health, describe
from moor.health.status import HealthState, HealthStatus
from moor.objects import ObjectRef

# The top-level fields an expression may name. `metadata`, `spec` and `status` are always bound (an
# empty map when the object has none); the others only when the object has them.
_ALWAYS_BOUND = ("metadata", "spec", "status")
_VARIABLES = (
    "apiVersion",
    "kind",
    *_ALWAYS_BOUND,
    "data",
    "stringData",
    "binaryData",
    "rules",
    "subjects",
    "roleRef",
    "webhooks",
    "immutable",
)
_ENVIRONMENT = cel.NewEnv(
    variables=dict.fromkeys(_VARIABLES, cel.Type.DYN),
    extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings()],
)
_FIELDS = ("current", "inProgress", "failed")
_JUDGED_LIMIT = 50_000


class InvalidHealthCheck(MoorError):
    """A `healthChecks` entry that cannot be used: a missing field or an expression that does not compile."""


@dataclass(frozen=True)
class Expression:
    """One compiled CEL expression, with the source text every message quotes."""

    source: str
    program: Any

    @classmethod
    def compile(cls, source: str) -> Expression:
        try:
            return cls(source, _ENVIRONMENT.compile(source))
        except RuntimeError as error:
            raise InvalidHealthCheck(f"the CEL expression {source!r} does not compile: {_first_line(error)}") from None

    def evaluate(self, activation: Any) -> bool | str:
        """True or False, or a sentence saying why the expression could not be evaluated."""
        try:
            value = self.program.eval(activation)
        except (RuntimeError, ValueError, TypeError) as error:
            return f"the CEL expression {self.source!r} cannot be evaluated: {_first_line(error)}"
        if value.type() == cel.Type.ERROR:
            return f"the CEL expression {self.source!r} cannot be evaluated: {_first_line(value.value())}"
        result = value.value()
        if not isinstance(result, bool):
            return f"the CEL expression {self.source!r} gives {value.type().name().lower()}, not bool"
        return result


# What the one program of a check answers (see HealthCheck.verdict).
_IN_PROGRESS, _FAILED, _CURRENT, _NONE = 1, 2, 0, 3


@dataclass(frozen=True)
class HealthCheck:
    """The compiled expressions of one `healthChecks` entry, for the objects of one group and kind
    (`*` and other shell wildcards allowed in either, for families such as Crossplane's).

    `verdict` is the three expressions folded into one program in their order
    (`inProgress ? 1 : failed ? 2 : current ? 0 : 3`), so an object's fields are converted and
    evaluated once; only when it fails are the expressions evaluated one by one to name the culprit.
    `reads` are the top-level fields the expressions name, the only ones handed to CEL."""

    group: str
    kind: str
    current: Expression
    in_progress: Expression | None
    failed: Expression | None
    verdict: Any
    reads: tuple[str, ...]

    def matches(self, group: str, kind: str) -> bool:
        return fnmatch.fnmatchcase(group, self.group) and fnmatch.fnmatchcase(kind, self.kind)

    @property
    def steps(self) -> tuple[tuple[Expression, int], ...]:
        ordered = ((self.in_progress, _IN_PROGRESS), (self.failed, _FAILED), (self.current, _CURRENT))
        return tuple((expression, answer) for expression, answer in ordered if expression is not None)


@dataclass(frozen=True)
class HealthChecks:
    """Checks looked up by group and kind: exact entries first, then wildcard ones in their order."""

    exact: Mapping[tuple[str, str], HealthCheck]
    patterns: tuple[HealthCheck, ...] = ()
    # The verdicts already given, by (uid, resourceVersion): a health pass over objects that have not
    # changed since the last one costs a lookup each. Bounded by _JUDGED_LIMIT (then started afresh).
    judged: dict[tuple[str, str], HealthStatus] = field(default_factory=dict, compare=False, repr=False)

    def find(self, group: str, kind: str) -> HealthCheck | None:
        found = self.exact.get((group, kind))
        if found is not None:
            return found
        return next((check for check in self.patterns if check.matches(group, kind)), None)

    def overridden_by(self, other: HealthChecks) -> HealthChecks:
        """These checks with `other`'s in front: a Sync's own entries win over the built-in library."""
        return HealthChecks({**self.exact, **other.exact}, (*other.patterns, *self.patterns))


def compile_check(entry: Mapping[str, Any]) -> HealthCheck:
    """One `healthChecks` entry compiled; InvalidHealthCheck names the entry when it is unusable."""
    api_version, kind = entry.get("apiVersion"), entry.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        raise InvalidHealthCheck(f"a healthChecks entry needs apiVersion and kind: {dict(entry)!r}")
    name = f"the health check for {kind} ({api_version})"
    unknown = sorted(set(entry) - {"apiVersion", "kind", *_FIELDS})
    if unknown:
        raise InvalidHealthCheck(f"{name} has unknown fields {', '.join(unknown)} (allowed: {', '.join(_FIELDS)})")
    compiled: dict[str, Expression | None] = {}
    for part in _FIELDS:
        source = entry.get(part)
        if source is None or source == "":
            compiled[part] = None
            continue
        if not isinstance(source, str):
            raise InvalidHealthCheck(f"{name}: {part} must be a CEL expression (a string)")
        try:
            compiled[part] = Expression.compile(source)
        except InvalidHealthCheck as error:
            raise InvalidHealthCheck(f"{name}: {part}: {error}") from None
    current = compiled["current"]
    if current is None:
        raise InvalidHealthCheck(f"{name} needs a current expression")
    group = api_version.rpartition("/")[0]
    steps = [(compiled[field], answer) for field, answer in (("inProgress", _IN_PROGRESS), ("failed", _FAILED))]
    folded = str(_NONE)
    for expression, answer in reversed([*steps, (current, _CURRENT)]):
        if expression is not None:
            folded = f"({expression.source}) ? {answer} : {folded}"
    verdict = Expression.compile(folded).program
    sources = " ".join(expression.source for expression, _ in [*steps, (current, 0)] if expression is not None)
    reads = tuple(name for name in _VARIABLES if re.search(rf"\b{name}\b", sources))
    return HealthCheck(group, kind, current, compiled["inProgress"], compiled["failed"], verdict, reads)


def compile_checks(entries: Iterable[Mapping[str, Any]]) -> HealthChecks:
    """A Sync's `spec.healthChecks`, compiled once; a later entry for the same kind replaces an earlier one."""
    exact: dict[tuple[str, str], HealthCheck] = {}
    patterns: list[HealthCheck] = []
    for entry in entries:
        check = compile_check(entry)
        if _is_pattern(check.group) or _is_pattern(check.kind):
            patterns.append(check)
        else:
            exact[(check.group, check.kind)] = check
    return HealthChecks(exact, tuple(patterns))


def assess_with_checks(obj: Mapping[str, Any], checks: HealthChecks) -> HealthStatus | None:
    """The health of a live object by the CEL check for its kind, None when `checks` has none for it
    (the built-in rules of `moor.health.assess_health` apply then)."""
    metadata = obj.get("metadata") or {}
    version = (str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or ""))
    if all(version) and (known := checks.judged.get(version)) is not None:
        return known
    ref = ObjectRef.of(obj)
    check = checks.find(ref.group, ref.kind)
    if check is None:
        return None
    state, detail = _verdict(obj, check)
    health = HealthStatus(state, f"{describe(ref)}: {detail}", ref)
    if all(version):
        if len(checks.judged) >= _JUDGED_LIMIT:
            checks.judged.clear()
        checks.judged[version] = health
    return health


def assess_health_by(obj: Mapping[str, Any], checks: HealthChecks) -> HealthStatus:
    """The health of a live object by its kind's CEL check in `checks`, else by the built-in rules."""
    return assess_with_checks(obj, checks) or assess_health(obj)


def _verdict(obj: Mapping[str, Any], check: HealthCheck) -> tuple[HealthState, str]:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return HealthState.PROGRESSING, "being deleted"
    generation = number((obj.get("metadata") or {}).get("generation"))
    observed = status_of(obj).get("observedGeneration")
    if isinstance(observed, int) and not isinstance(observed, bool) and generation and observed != generation:
        return HealthState.PROGRESSING, f"waiting for generation {generation} to be observed"
    activation = _ENVIRONMENT.Activation(_variables(obj, check.reads))
    value = check.verdict.eval(activation)
    answer = value.value() if value.type() == cel.Type.INT else None
    if answer is None:
        for expression, _ in check.steps:
            result = expression.evaluate(activation)
            if isinstance(result, str):
                return HealthState.FAILED, result
        return HealthState.FAILED, f"its CEL health check cannot be evaluated: {_first_line(value.value())}"
    return _ANSWERS[answer], _explained(obj, _VERDICTS[answer])


_ANSWERS = {
    _IN_PROGRESS: HealthState.PROGRESSING,
    _FAILED: HealthState.FAILED,
    _CURRENT: HealthState.HEALTHY,
    _NONE: HealthState.PROGRESSING,
}
_VERDICTS = {
    _IN_PROGRESS: "in progress by its CEL health check",
    _FAILED: "failed its CEL health check",
    _CURRENT: "current by its CEL health check",
    _NONE: "not current yet by its CEL health check",
}


def _variables(obj: Mapping[str, Any], reads: tuple[str, ...]) -> dict[str, Any]:
    variables = {name: obj[name] for name in reads if name in obj}
    for name in _ALWAYS_BOUND:
        if name in reads and not isinstance(variables.get(name), Mapping):
            variables[name] = {}
    return variables


def _explained(obj: Mapping[str, Any], verdict: str) -> str:
    """`verdict`, followed by the Ready condition's reason and message when the object has one."""
    for item in status_of(obj).get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == "Ready":
            parts = [str(item[key]).strip() for key in ("reason", "message") if item.get(key)]
            if parts:
                return f"{verdict} (Ready: {': '.join(parts)})"
    return verdict


def _is_pattern(text: str) -> bool:
    return any(character in text for character in "*?[")


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

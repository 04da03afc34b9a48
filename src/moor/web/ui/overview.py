"""The overview's rows: one per source and Sync, and the filtering, search, sorting and paging of them.

Pure: objects in, a page of rows out. The server does this for every request, so a browser receives
one page whatever the number of Syncs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moor.notify.links import commit_url
from moor.objects import KubeObject
from moor.resources import GITREPOSITORY, conditions, get_condition
from moor.source import revision_commit

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50


class State(enum.Enum):
    """What a row's badge says; each has its own shape as well as its colour."""

    READY = "ready"
    FAILED = "failed"
    PROGRESSING = "progressing"
    WAITING = "waiting"
    """A revision waits for approval."""
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {
            State.READY: "Ready",
            State.FAILED: "Failed",
            State.PROGRESSING: "Progressing",
            State.WAITING: "Awaiting approval",
            State.SUSPENDED: "Suspended",
            State.UNKNOWN: "Not reconciled yet",
        }[self]


@dataclass(frozen=True)
class Row:
    kind: str
    namespace: str
    name: str
    state: State
    message: str
    revision: str
    commit_link: str
    drift: int
    pending: str
    deployed_at: str
    deployed_by: str
    approved_by: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


def state_of(obj: KubeObject) -> tuple[State, str]:
    """The row's state and the message that explains it."""
    status = obj.get("status") or {}
    found = status.get("conditions")
    ready = get_condition(found, conditions.READY)
    if (obj.get("spec") or {}).get("suspend"):
        return State.SUSPENDED, ready.message if ready else "suspended"
    awaiting = get_condition(found, conditions.AWAITING_APPROVAL)
    if awaiting is not None and awaiting.is_true:
        return State.WAITING, awaiting.message
    if ready is None:
        return State.UNKNOWN, "not reconciled yet"
    if ready.is_true:
        return State.READY, ready.message
    if ready.status == conditions.UNKNOWN or get_condition(found, conditions.RECONCILING) is not None:
        return State.PROGRESSING, ready.message
    return State.FAILED, ready.message


def short_revision(revision: str) -> str:
    """`main@sha1:d63c5d8f66b0…` -> `main@d63c5d8f66b0`."""
    name, _, digest = revision.rpartition("@")
    commit = digest.rpartition(":")[2][:12]
    return f"{name}@{commit}" if name else commit


def row_of(obj: KubeObject, source_url: str = "") -> Row:
    """One overview row; `source_url` is the Git URL the revision's commit link points into."""
    metadata = obj["metadata"]
    status = obj.get("status") or {}
    state, message = state_of(obj)
    revision = str((status.get("artifact") or {}).get("revision") or status.get("lastAppliedRevision") or "")
    last: Mapping[str, Any] = (status.get("history") or [{}])[0]
    commit = revision_commit(revision) if revision else ""
    return Row(
        kind=str(obj.get("kind", "")),
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata["name"]),
        state=state,
        message=message,
        revision=revision,
        commit_link=commit_url(source_url, commit) if source_url and commit else "",
        drift=len(status.get("drift") or []),
        pending=str(status.get("pendingRevision") or ""),
        deployed_at=str(last.get("finishedAt", "")),
        deployed_by=str(last.get("author", "")).partition(" <")[0],
        approved_by=str(last.get("approvedBy", "")),
    )


def source_url_of(sync: KubeObject, sources: Callable[[str, str, str], KubeObject | None]) -> str:
    """The Git URL of the Sync's source (for commit links), '' when it is not a GitRepository or unknown."""
    ref = (sync.get("spec") or {}).get("sourceRef") or {}
    kind = str(ref.get("kind") or GITREPOSITORY.kind)
    if kind != GITREPOSITORY.kind:
        return ""
    namespace = str(ref.get("namespace") or sync["metadata"].get("namespace", ""))
    source = sources(kind, namespace, str(ref.get("name", "")))
    return str(((source or {}).get("spec") or {}).get("url", ""))


class SortKey(enum.Enum):
    NAME = "name"
    STATE = "state"
    DRIFT = "drift"
    DEPLOYED = "deployed"


_STATE_ORDER = {
    State.FAILED: 0,
    State.WAITING: 1,
    State.PROGRESSING: 2,
    State.UNKNOWN: 3,
    State.SUSPENDED: 4,
    State.READY: 5,
}
_SORTS: dict[SortKey, Callable[[Row], Any]] = {
    SortKey.NAME: lambda row: (row.namespace, row.name, row.kind),
    SortKey.STATE: lambda row: (_STATE_ORDER[row.state], row.namespace, row.name),
    SortKey.DRIFT: lambda row: (-row.drift, row.namespace, row.name),
    SortKey.DEPLOYED: lambda row: (row.deployed_at, row.namespace, row.name),
}


@dataclass(frozen=True)
class Query:
    """What the overview shows: a search text, a state filter, a sort order and a page."""

    search: str = ""
    state: State | None = None
    sort: SortKey = SortKey.NAME
    descending: bool = False
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        """The query of a URL's parameters; anything unknown or out of range falls back to the default."""
        state = next((s for s in State if s.value == params.get("state")), None)
        sort = next((s for s in SortKey if s.value == params.get("sort")), SortKey.NAME)
        size = _integer(params.get("size"), DEFAULT_PAGE_SIZE)
        return cls(
            search=params.get("q", "").strip()[:200],
            state=state,
            sort=sort,
            descending=params.get("order") == "desc",
            page=max(1, _integer(params.get("page"), 1)),
            size=size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE,
        )

    def to_params(self, **changes: Any) -> dict[str, str]:
        """This query's URL parameters with `changes` applied, defaults left out."""
        values = {
            "q": self.search,
            "state": self.state.value if self.state else "",
            "sort": self.sort.value if self.sort is not SortKey.NAME else "",
            "order": "desc" if self.descending else "",
            "page": str(self.page) if self.page != 1 else "",
            "size": str(self.size) if self.size != DEFAULT_PAGE_SIZE else "",
        }
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value}


def _integer(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Page:
    rows: tuple[Row, ...]
    total: int
    """Rows matching the query, on every page."""
    number: int
    pages: int
    counts: Mapping[State, int]
    """Rows in each state before the state filter (for the filter's buttons)."""


def matches(row: Row, search: str) -> bool:
    """Every word of `search` appears in the row's namespace/name, kind or revision (case ignored)."""
    text = f"{row.namespace}/{row.name} {row.kind} {row.revision}".lower()
    return all(word in text for word in search.lower().split())


def select(rows: Iterable[Row], query: Query) -> Page:
    """The page of `rows` the query asks for."""
    searched = [row for row in rows if matches(row, query.search)] if query.search else list(rows)
    counts = dict.fromkeys(State, 0)
    for row in searched:
        counts[row.state] += 1
    chosen: Sequence[Row] = [row for row in searched if row.state is query.state] if query.state else searched
    ordered = sorted(chosen, key=_SORTS[query.sort], reverse=query.descending)
    pages = max(1, -(-len(ordered) // query.size))
    number = min(query.page, pages)
    start = (number - 1) * query.size
    return Page(tuple(ordered[start : start + query.size]), len(ordered), number, pages, counts)

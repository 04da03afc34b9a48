"""The dashboard's HTML, rendered on the server from plain values: every text escaped, no inline script or style.

Each page is a frame (`layout`) around a `<main>` whose content (`*_content`) is also served alone, so
that a page told of a change by server-sent events fetches and swaps just that part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from moor.objects import KubeObject
from moor.web.ui.git_diff import ObjectDiff
from moor.web.ui.overview import Page, Query, Row, SortKey, State, short_revision
from moor.web.ui.resource_tree import Node
from moor.web.ui.wording import Sentence

STATE_ICONS = {
    State.READY: "✔",
    State.FAILED: "✖",
    State.PROGRESSING: "◔",
    State.WAITING: "◇",
    State.SUSPENDED: "❚❚",
    State.UNKNOWN: "?",
}
HEALTH_ICONS = {"Healthy": "✔", "Progressing": "◔", "Failed": "✖", "Missing": "∅"}
HEALTH_CLASS = {"Healthy": "ready", "Progressing": "progressing", "Failed": "failed", "Missing": "failed"}


def h(value: object) -> str:
    return escape(str(value), quote=True)


def link_path(*parts: str) -> str:
    return "/" + "/".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True)
class Viewer:
    """Who looks at the page, for the header and the forms."""

    username: str
    csrf: str
    can_log_out: bool


def layout(
    title: str, viewer: Viewer | None, content: str, *, events: str = "", position: str = "", flash: str = ""
) -> str:
    """A whole page: `content` inside `<main>`; `events` is the server-sent events URL that refreshes it, and
    `position` the view's position the content was read at (the page refreshes when the stream tells a later one)."""
    who = ""
    if viewer is not None:
        logout = (
            f'<form method="post" action="/logout" class="inline">{csrf_field(viewer.csrf)}'
            '<button class="link">Log out</button></form>'
            if viewer.can_log_out
            else ""
        )
        who = f'<span class="who" title="Kubernetes user">{h(viewer.username)}</span>{logout}'
    notice = f'<p class="flash" role="status">{h(flash)}</p>' if flash else ""
    data = f' data-events="{h(events)}" data-position="{h(position)}"' if events else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · Moor</title>"
        '<link rel="stylesheet" href="/static/app.css"><link rel="icon" href="/static/moor.svg">'
        '<script src="/static/app.js" defer></script></head>'
        f"<body{data}>"
        '<header class="bar"><a class="brand" href="/"><img src="/static/moor.svg" alt="" width="22" height="22">'
        f'Moor</a><span class="live" id="live-state" title="live updates">●</span><span class="grow"></span>{who}'
        f"</header>{notice}"
        f'<main id="content">{content}</main></body></html>'
    )


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{h(token)}">'


def badge(state: State) -> str:
    icon = STATE_ICONS[state]
    return f'<span class="badge {state.value}"><span aria-hidden="true">{icon}</span> {h(state.label)}</span>'


def health_badge(health: str) -> str:
    css = HEALTH_CLASS.get(health, "unknown")
    return (
        f'<span class="badge {css}"><span aria-hidden="true">{HEALTH_ICONS.get(health, "?")}</span> {h(health)}</span>'
    )


def problems_box(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{h(problem)}</li>" for problem in problems)
    return (
        f'<section class="problems" role="alert"><h2>Some of the cluster cannot be shown</h2><ul>{items}</ul></section>'
    )


# -- overview ----------------------------------------------------------------------------------------


def overview_content(page: Page, query: Query, problems: Sequence[str] = ()) -> str:
    chips = [_chip("All", query, None, sum(page.counts.values()))]
    chips += [_chip(state.label, query, state, page.counts.get(state, 0)) for state in State]
    search = (
        '<form class="search" method="get" action="/" role="search">'
        f'<input type="search" name="q" value="{h(query.search)}" placeholder="Search namespace/name, kind, revision"'
        ' aria-label="Search">'
        + (f'<input type="hidden" name="state" value="{h(query.state.value)}">' if query.state else "")
        + '<button type="submit">Search</button></form>'
    )
    head = "".join(
        _sort_header(label, key, query)
        for label, key in (
            ("State", SortKey.STATE),
            ("Name", SortKey.NAME),
            ("Revision", None),
            ("Drift", SortKey.DRIFT),
            ("Last deployment", SortKey.DEPLOYED),
            ("Message", None),
        )
    )
    body = "".join(_overview_row(row) for row in page.rows)
    if not page.rows:
        body = '<tr><td colspan="6" class="empty">Nothing matches.</td></tr>'
    return (
        f"{problems_box(problems)}"
        f'<div class="toolbar"><nav class="chips" aria-label="Filter by state">{"".join(chips)}</nav>{search}</div>'
        f'<table class="grid" id="overview"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"{_pager(page, query)}"
    )


def _href(query: Query, **changes: Any) -> str:
    params = query.to_params(**changes)
    return "/?" + urlencode(params) if params else "/"


def _chip(label: str, query: Query, state: State | None, count: int) -> str:
    target = _href(Query(query.search, state, query.sort, query.descending, 1, query.size))
    current = ' aria-current="true"' if query.state is state else ""
    icon = f'<span aria-hidden="true">{STATE_ICONS[state]}</span> ' if state else ""
    css = state.value if state else "all"
    return f'<a class="chip {css}" href="{h(target)}"{current}>{icon}{h(label)} <b>{count}</b></a>'


def _sort_header(label: str, key: SortKey | None, query: Query) -> str:
    if key is None:
        return f'<th scope="col">{h(label)}</th>'
    descending = not query.descending if query.sort is key else False
    target = _href(query, sort=key.value, order="desc" if descending else "", page="")
    arrow = (" ▼" if query.descending else " ▲") if query.sort is key else ""
    sort = ("descending" if query.descending else "ascending") if query.sort is key else "none"
    return f'<th scope="col" aria-sort="{sort}"><a href="{h(target)}">{h(label)}{arrow}</a></th>'


def _overview_row(row: Row) -> str:
    if row.kind == "Sync":
        name = f'<a href="{h(link_path("syncs", row.namespace, row.name))}">{h(row.namespace)}/<b>{h(row.name)}</b></a>'
    else:
        name = f"{h(row.namespace)}/<b>{h(row.name)}</b>"
    revision = _revision(row.revision, row.commit_link)
    if row.pending:
        revision += f'<div class="pending" title="{h(row.pending)}">◇ waiting: {h(short_revision(row.pending))}</div>'
    drift = f'<span class="drift-count">△ {row.drift}</span>' if row.drift else '<span class="muted">—</span>'
    deployed = ""
    if row.deployed_at:
        deployed = f'<time datetime="{h(row.deployed_at)}">{h(_when(row.deployed_at))}</time>'
        if row.deployed_by:
            deployed += f'<div class="muted">by {h(row.deployed_by)}</div>'
        if row.approved_by:
            deployed += f'<div class="muted">approved by {h(row.approved_by)}</div>'
    return (
        f'<tr data-state="{row.state.value}" data-kind="{h(row.kind)}"><td>{badge(row.state)}</td>'
        f'<td><span class="kind">{h(row.kind)}</span> {name}</td><td>{revision}</td><td>{drift}</td>'
        f'<td>{deployed}</td><td class="message">{h(row.message)}</td></tr>'
    )


def _revision(revision: str, commit_link: str) -> str:
    if not revision:
        return '<span class="muted">—</span>'
    text = f'<code title="{h(revision)}">{h(short_revision(revision))}</code>'
    if commit_link:
        return f'<a href="{h(commit_link)}" rel="noreferrer noopener" target="_blank">{text}</a>'
    return text


def _when(timestamp: str) -> str:
    return timestamp.replace("T", " ").rstrip("Z")[:16]


def _pager(page: Page, query: Query) -> str:
    parts = [f'<span class="muted">{page.total} shown in all · page {page.number} of {page.pages}</span>']
    if page.number > 1:
        parts.insert(0, f'<a rel="prev" href="{h(_href(query, page=page.number - 1))}">← Previous</a>')
    if page.number < page.pages:
        parts.append(f'<a rel="next" href="{h(_href(query, page=page.number + 1))}">Next →</a>')
    return f'<nav class="pager" aria-label="Pages">{"".join(parts)}</nav>'


# -- a Sync ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """The actions the viewer may take on this Sync (each a SubjectAccessReview)."""

    patch: bool = False
    approve: bool = False
    rollback: bool = False

    @property
    def any(self) -> bool:
        return self.patch or self.approve or self.rollback


@dataclass(frozen=True)
class SyncPage:
    sync: KubeObject
    row: Row
    sentences: Sequence[Sentence]
    tree: Sequence[Node]
    records: Sequence[Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]]
    allowed: Allowed
    pinned: str = ""
    hidden: Sequence[str] = field(default=())
    """What the viewer may not read, one line each (the tree and history say what is missing)."""


def sync_content(page: SyncPage, viewer: Viewer) -> str:
    row = page.row
    base = link_path("syncs", row.namespace, row.name)
    title = (
        f'<div class="title"><h1><span class="kind">Sync</span> {h(row.namespace)}/<b>{h(row.name)}</b></h1>'
        f"{badge(row.state)}</div>"
        f'<p class="summary">Revision {_revision(row.revision, row.commit_link)}'
        + (f' · <span class="pin">pinned to {h(short_revision(page.pinned))}</span>' if page.pinned else "")
        + "</p>"
    )
    return (
        f'<nav class="crumbs"><a href="/">Overview</a> &rsaquo; {h(row.namespace)}/{h(row.name)}</nav>{title}'
        f"{problems_box(page.hidden)}"
        f"{_approval(page, viewer, base)}{_actions(page, viewer, base)}"
        f'<div class="columns"><section class="card"><h2>Conditions</h2>{_sentences(page.sentences)}</section>'
        f'<section class="card"><h2>Drift</h2>{_drift(page.tree)}</section></div>'
        f'<section class="card"><h2>Resources</h2>{_tree(page.tree, base)}</section>'
        f'<section class="card"><h2>History</h2>{_history(page, viewer, base)}</section>'
        f'<section class="card" id="events"><h2>Events</h2>{_events(page.events)}</section>'
    )


def _form(action: str, label: str, viewer: Viewer, *, css: str = "", revision: str = "", confirm: str = "") -> str:
    extra = f'<input type="hidden" name="revision" value="{h(revision)}">' if revision else ""
    ask = f' data-confirm="{h(confirm)}"' if confirm else ""
    return (
        f'<form method="post" action="{h(action)}" class="inline"{ask}>{csrf_field(viewer.csrf)}{extra}'
        f'<button type="submit" class="{css}">{h(label)}</button></form>'
    )


def _approval(page: SyncPage, viewer: Viewer, base: str) -> str:
    pending = page.row.pending
    if not pending:
        return ""
    button = (
        _form(f"{base}/approve", "Approve", viewer, css="primary", revision=pending, confirm=f"Apply {pending}?")
        if page.allowed.approve
        else '<span class="muted">You may not approve revisions of this Sync.</span>'
    )
    return (
        f'<section class="approval" id="approval"><p>◇ Revision <code>{h(short_revision(pending))}</code> waits for'
        f" approval.</p>{button}</section>"
    )


def _actions(page: SyncPage, viewer: Viewer, base: str) -> str:
    if not page.allowed.any:
        return ""
    suspended = bool((page.sync.get("spec") or {}).get("suspend"))
    buttons = []
    if page.allowed.patch:
        buttons.append(_form(f"{base}/reconcile", "Reconcile now", viewer))
        if suspended:
            buttons.append(_form(f"{base}/resume", "Resume", viewer))
        else:
            buttons.append(_form(f"{base}/suspend", "Suspend", viewer, confirm="Stop applying Git until resumed?"))
    if page.allowed.rollback:
        if page.pinned:
            buttons.append(_form(f"{base}/release", "Release pin", viewer))
        else:
            buttons.append(
                _form(f"{base}/rollback", "Roll back", viewer, confirm="Pin to the last healthy earlier revision?")
            )
    return f'<div class="actions" id="actions">{"".join(buttons)}</div>'


def _sentences(sentences: Sequence[Sentence]) -> str:
    if not sentences:
        return '<p class="muted">Not reconciled yet.</p>'
    items = []
    for sentence in sentences:
        icon, css = ("✔", "good") if sentence.healthy else ("!", "bad")
        detail = f'<div class="detail">{h(sentence.detail)}</div>' if sentence.detail else ""
        since = f' <time class="muted" datetime="{h(sentence.since)}">since {h(_when(sentence.since))}</time>'
        items.append(
            f'<li class="{css}"><span class="icon" aria-hidden="true">{icon}</span><div>'
            f"<b>{h(sentence.text)}</b>{since if sentence.since else ''}{detail}</div></li>"
        )
    return f'<ul class="sentences">{"".join(items)}</ul>'


def _drift(tree: Sequence[Node]) -> str:
    drifted = [node for top in tree for node in top.walk() if node.drift is not None]
    if not drifted:
        return '<p class="good" id="no-drift">✔ The cluster matches Git.</p>'
    rows = []
    for node in drifted:
        assert node.drift is not None
        paths = "(deleted)" if node.drift.deleted else "<br>".join(f"<code>{h(p)}</code>" for p in node.drift.paths)
        rows.append(
            f"<tr><td>{h(node.ref)}</td><td>{paths}</td><td>{h(node.drift.manager)}</td>"
            f"<td>{h(_when(node.drift.at))}</td></tr>"
        )
    return (
        '<table class="grid" id="drift"><thead><tr><th>Object</th><th>Fields</th><th>Changed by</th><th>At</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _tree(tree: Sequence[Node], base: str) -> str:
    if not tree:
        return '<p class="muted">This Sync manages no objects yet.</p>'
    return f'<ul class="tree" id="tree">{"".join(_tree_node(node, base) for node in tree)}</ul>'


def _tree_node(node: Node, base: str) -> str:
    drift = ""
    if node.drift is not None:
        drift = '<span class="badge drifted" title="differs from Git"><span aria-hidden="true">△</span> Drifted</span>'
    name = h(node.ref)
    if node.managed:
        ref = node.ref
        target = f"{base}/objects?" + urlencode(
            {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}
        )
        name = f'<a href="{h(target)}">{name}</a>'
    message = "" if node.health == "Healthy" else f'<span class="muted"> — {h(node.message)}</span>'
    children = f"<ul>{''.join(_tree_node(child, base) for child in node.children)}</ul>" if node.children else ""
    return (
        f'<li data-kind="{h(node.ref.kind)}"><span class="node">{health_badge(node.health)} {drift} '
        f"{name}{message}</span>{children}</li>"
    )


def _history(page: SyncPage, viewer: Viewer, base: str) -> str:
    if not page.records:
        return '<p class="muted">No recorded attempts.</p>'
    current = str((page.sync.get("status") or {}).get("lastAppliedRevision") or "")
    items = []
    for record in reversed(page.records):
        result = str(record.get("result", ""))
        css = {"Succeeded": "ready", "DriftCorrected": "ready", "InProgress": "progressing"}.get(result, "failed")
        revision = str(record.get("revision", ""))
        who = []
        if record.get("author"):
            who.append(f"by {h(str(record['author']).partition(' <')[0])}")
        if record.get("approvedBy"):
            who.append(f"approved by {h(record['approvedBy'])}")
        changed = len(record.get("created") or []) + len(record.get("updated") or [])
        pin = ""
        if page.allowed.rollback and css == "ready" and revision and revision != current:
            pin = _form(
                f"{base}/pin", "Pin here", viewer, revision=revision, css="small", confirm=f"Pin to {revision}?"
            )
        detail = f'<div class="detail">{h(record["detail"])}</div>' if record.get("detail") else ""
        items.append(
            f'<li class="{css}"><div class="when">{h(_when(str(record.get("startedAt", ""))))}</div>'
            f'<div><span class="badge {css}">{h(result)}</span> <code title="{h(revision)}">'
            f"{h(short_revision(revision))}</code> {' · '.join(who)}"
            f' <span class="muted">+{changed} &minus;{len(record.get("pruned") or [])}</span> {pin}{detail}</div></li>'
        )
    return f'<ol class="timeline" id="history">{"".join(items)}</ol>'


def _events(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return '<p class="muted">No recent events.</p>'
    rows = []
    for event in events:
        css = "failed" if event.get("type") == "Warning" else "ready"
        when = str(event.get("lastTimestamp") or event.get("eventTime") or "")
        rows.append(
            f'<tr><td><span class="badge {css}">{h(event.get("type", ""))}</span></td><td>{h(event.get("reason", ""))}'
            f'</td><td class="message">{h(event.get("message", ""))}</td><td>{h(_when(when))}</td></tr>'
        )
    return f'<table class="grid"><tbody>{"".join(rows)}</tbody></table>'


# -- one object --------------------------------------------------------------------------------------


def object_content(
    sync_row: Row, title: str, shown_yaml: str, comparison: ObjectDiff | str, drifted: Sequence[str]
) -> str:
    """One managed object: how it differs from Git (the planner's comparison), who changed it, its live body."""
    base = link_path("syncs", sync_row.namespace, sync_row.name)
    if isinstance(comparison, str):
        diff = f'<p class="muted">{h(comparison)}</p>'
    elif comparison.differences:
        listed = "".join(f"<li><code>{h(line)}</code></li>" for line in comparison.differences)
        against = f'<p class="muted">Against {h(short_revision(comparison.revision))}:</p>'
        diff = f'{against}<ul class="differences" id="differences">{listed}</ul>'
    else:
        verdict = {"create": "Git declares it; the cluster does not have it yet."}.get(
            comparison.action, "The live object matches Git."
        )
        revision = f'<span class="muted">({h(short_revision(comparison.revision))})</span>'
        diff = f'<p class="good" id="matches-git">{h(verdict)} {revision}</p>'
    who = "".join(f"<li><code>{h(line)}</code></li>" for line in drifted)
    drift = (
        f'<section class="card"><h2>Changed in the cluster</h2><ul class="differences">{who}</ul></section>'
        if who
        else ""
    )
    return (
        f'<nav class="crumbs"><a href="/">Overview</a> &rsaquo; <a href="{h(base)}">{h(sync_row.namespace)}/'
        f"{h(sync_row.name)}</a> &rsaquo; {h(title)}</nav><h1>{h(title)}</h1>"
        f'<section class="card"><h2>Differences from Git</h2><div id="git-diff">{diff}</div></section>{drift}'
        f'<section class="card"><h2>Live object</h2><pre class="yaml">{h(shown_yaml)}</pre></section>'
    )


# -- login and errors --------------------------------------------------------------------------------


def login_content(csrf: str, error: str = "") -> str:
    problem = f'<p class="flash bad" role="alert">{h(error)}</p>' if error else ""
    return (
        '<section class="login card"><h1>Log in to Moor</h1>'
        "<p>Paste a bearer token the cluster accepts: a ServiceAccount token (<code>kubectl create token NAME</code>)"
        " or your OIDC id token. What you may see and do is what Kubernetes RBAC allows you.</p>"
        f'{problem}<form method="post" action="/login">{csrf_field(csrf)}'
        '<label for="token">Token</label><textarea id="token" name="token" rows="4" required autocomplete="off"'
        ' spellcheck="false"></textarea><button type="submit" class="primary">Log in</button></form></section>'
    )


def message_content(title: str, text: str) -> str:
    back = '<p><a href="/">Overview</a></p>'
    return f'<section class="card message-page"><h1>{h(title)}</h1><p>{h(text)}</p>{back}</section>'

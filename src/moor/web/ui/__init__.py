"""The web dashboard: every source and Sync, a Sync's tree, drift and history, actions gated by Kubernetes RBAC.

Two ways to serve it: `serve_local` for `moor ui` (loopback, the user's own credentials, a one-time
login link) and `serve_for_team` for `moor run --ui-port` (bearer-token login checked with a
TokenReview, every read and action reviewed for the person with SubjectAccessReviews).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from moor.cluster.api import KubeApi
from moor.cluster.cache import LiveCache
from moor.cluster.identity import whoami
from moor.web.listener import Listener, ListenerLimits, ListenerMetrics, serve_app
from moor.web.ui.access import Person, SelfReviews, SubjectReviews
from moor.web.ui.cluster_view import ClusterView, CustomResources
from moor.web.ui.git_diff import GitDiffs
from moor.web.ui.server import Dashboard, DashboardSettings
from moor.web.ui.sessions import SessionStore

LIMITS = ListenerLimits(request_timeout=600.0)
"""Server-sent event streams stay open; the browser opens a new one when the listener ends one."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Served:
    listener: Listener
    view: ClusterView
    sessions: SessionStore
    login_url: str = ""

    async def close(self) -> None:
        await self.listener.close()
        await self.view.stop()


async def serve_for_team(
    api: KubeApi,
    live: LiveCache,
    address: str,
    port: int,
    *,
    metrics: ListenerMetrics | None = None,
    shared: CustomResources | None = None,
) -> Served:
    """The dashboard of `moor run --ui-port`: reads the controller's live cache (and, given `shared`, its
    informers of Moor's kinds, whose changes the caller passes to `Served.view.custom_resource_changed`;
    without, watches of its own); people log in with a token."""
    view = ClusterView(api, live, watch_managed_kinds=False, shared=shared)
    await view.start()
    sessions = SessionStore()
    diffs = GitDiffs(api, _scratch(), live.changes_of)
    dashboard = Dashboard(view, api, SubjectReviews(api), sessions, DashboardSettings(login="token"), diffs)
    try:
        listener = await serve_app(dashboard.app(), address, port, name="dashboard", limits=LIMITS, metrics=metrics)
    except OSError:
        await view.stop()
        raise
    return Served(listener, view, sessions)


async def serve_local(api: KubeApi, address: str, port: int) -> Served:
    """The dashboard of `moor ui`: the user's own watches and credentials; `login_url` logs one browser in."""
    live = LiveCache(api)
    view = ClusterView(api, live, watch_managed_kinds=True)
    await view.start()
    sessions = SessionStore()
    person = Person(await whoami(api))
    diffs = GitDiffs(api, _scratch(), live.changes_of)
    dashboard = Dashboard(view, api, SelfReviews(api), sessions, DashboardSettings(login="link"), diffs)
    try:
        listener = await serve_app(dashboard.app(), address, port, name="dashboard", limits=LIMITS)
    except OSError:
        await view.stop()
        raise
    if address in LOOPBACK:  # the port is known now: only its own loopback names are answered
        hosts = tuple(f"{name}:{listener.port}" for name in ("127.0.0.1", "localhost", "[::1]"))
        dashboard.settings = replace(dashboard.settings, loopback_hosts=hosts)
    host = f"[{address}]" if ":" in address else address
    token = sessions.issue_login_token(person)
    return Served(listener, view, sessions, f"http://{host}:{listener.port}/?token={token}")


def _scratch() -> Path:
    """Where the dashboard keeps the revisions it renders to compare with the cluster (disposable)."""
    return Path(tempfile.mkdtemp(prefix="moor-ui-artifacts-"))

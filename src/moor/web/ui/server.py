"""The dashboard's HTTP face: pages, their live refresh (server-sent events), and actions behind POST + CSRF.

Every request but the static assets and the login needs a session. Every read is filtered by what the
person may `list`/`get` and every action is allowed by a review of its own verb on `syncs`:

| action                    | verb on syncs.moor.dev |
|---------------------------|------------------------|
| reconcile, suspend/resume | patch                  |
| approve                   | approve                |
| roll back, pin, release   | rollback               |

Responses carry a strict Content-Security-Policy (no inline script, nothing from another origin),
deny framing, and are not cached. Tokens are never logged (the listener keeps no access log).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import web

from moor import operations
from moor.cluster.access import ResourceAccess
from moor.cluster.api import KubeApi
from moor.cluster.cache import LiveChange
from moor.cluster.errors import ApiError
from moor.controller.rendering import sync_key
from moor.controller.revision_choice import PIN_ANNOTATION
from moor.errors import MoorError
from moor.objects import SYNC_LABEL, KubeObject, ObjectRef
from moor.record.history import HistoryStore
from moor.resources import GITREPOSITORY, GROUP, HELMREPOSITORY, OCIREPOSITORY, SYNC, SYNC_RECORD, VERSION, SyncSpec
from moor.resources.kinds import CustomResourceKind
from moor.web.ui import pages
from moor.web.ui.access import Authorizer, NotAuthenticated, Person, allowed_namespaces, authenticate
from moor.web.ui.cluster_view import ClusterView
from moor.web.ui.git_diff import GitDiffs, ObjectDiff
from moor.web.ui.overview import Query, Row, row_of, select, source_url_of
from moor.web.ui.redaction import shown
from moor.web.ui.resource_tree import CHILD_KINDS, build_tree
from moor.web.ui.sessions import COOKIE, Session, SessionStore
from moor.web.ui.wording import describe_all

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC = {"app.css": "text/css", "app.js": "text/javascript", "moor.svg": "image/svg+xml"}
FRAGMENT_HEADER = "X-Moor-Fragment"
POSITION_HEADER = "X-Moor-Position"
"""On a refreshed fragment: the view's position (ClusterView.position) before the fragment read anything."""
LOGIN_COOKIE = "moor_login"
MAX_BODY = 64 * 1024
KEEPALIVE_SECONDS = 15.0
COALESCE_SECONDS = 0.1
"""Changes arriving this close together reach a page as one refresh."""
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "CronJob", "Job"}
VERBS = {
    "reconcile": "patch",
    "suspend": "patch",
    "resume": "patch",
    "approve": "approve",
    "rollback": "rollback",
    "pin": "rollback",
    "release": "rollback",
}
"""The verb on syncs a SubjectAccessReview must allow for each action."""
NOT_LOGGED_IN = "Open the link `moor ui` printed (it logs this browser in once)."
SOURCES: tuple[CustomResourceKind, ...] = (GITREPOSITORY, OCIREPOSITORY, HELMREPOSITORY)


@dataclass(frozen=True)
class DashboardSettings:
    login: str
    """"token": a login page takes a bearer token (moor run --ui-port); "link": a one-time link (moor ui)."""
    loopback_hosts: tuple[str, ...] = ()
    """When not empty, the only Host headers answered (a loopback listener refuses DNS rebinding)."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Dashboard:
    def __init__(
        self,
        view: ClusterView,
        api: KubeApi,
        authorizer: Authorizer,
        sessions: SessionStore,
        settings: DashboardSettings,
        diffs: GitDiffs,
    ) -> None:
        self.view = view
        self.diffs = diffs
        self.api = api
        """Reads not in the view (children, history, events) and actions go through this API: the
        controller's behind --ui-port (after a review for the person), the user's own in `moor ui`."""
        self.authorizer = authorizer
        self.sessions = sessions
        self.settings = settings
        self._rows: tuple[int, list[Row]] = (-1, [])
        self._made: dict[tuple[str, str, str], tuple[tuple[str, str], Row]] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/", self._overview)
        app.router.add_get("/events", self._events)
        app.router.add_get("/syncs/{namespace}/{name}", self._sync)
        app.router.add_get("/syncs/{namespace}/{name}/objects", self._object)
        app.router.add_post("/syncs/{namespace}/{name}/{action}", self._act)
        return app

    # -- the frame of every request -----------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.settings.loopback_hosts and request.host not in self.settings.loopback_hosts:
            return web.Response(status=421, text="this dashboard answers only on its own loopback address")
        if request.method == "POST" and not _same_origin(request):
            return web.Response(status=403, text="cross-origin request refused")
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = error
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _session(self, request: web.Request) -> Session | None:
        session_id = request.cookies.get(COOKIE, "")
        return self.sessions.find(session_id) if session_id else None

    def _need_session(self, request: web.Request) -> Session:
        session = self._session(request)
        if session is not None:
            return session
        if self.settings.login == "token":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPUnauthorized(
            text=pages.layout(
                "Log in",
                None,
                pages.message_content(
                    "Not logged in", "Open the link `moor ui` printed (it logs this browser in once)."
                ),
            ),
            content_type="text/html",
        )

    def _set_cookie(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=_secure(request),
            path="/",
            max_age=int(self.sessions.lifetime),
        )

    def _html(
        self, request: web.Request, session: Session, title: str, content: str, events: str, position: str
    ) -> web.Response:
        """The page, or only its content when the page refreshes itself; `position` is the view's before the
        content was read, so the page's event stream can tell it of any change the content may not show."""
        if request.headers.get(FRAGMENT_HEADER):
            return web.Response(text=content, content_type="text/html", headers={POSITION_HEADER: position})
        flash, session.flash = session.flash, ""
        viewer = _viewer(session, self.settings)
        page = pages.layout(title, viewer, content, events=events, position=position, flash=flash)
        return web.Response(text=page, content_type="text/html")

    # -- static, login, logout ----------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = importlib.resources.files("moor.web.ui").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    async def _login_page(self, request: web.Request) -> web.Response:
        if self.settings.login != "token":
            raise web.HTTPNotFound()
        token = secrets.token_urlsafe(24)
        response = web.Response(text=pages.layout("Log in", None, pages.login_content(token)), content_type="text/html")
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=_secure(request), max_age=600)
        return response

    async def _login(self, request: web.Request) -> web.Response:
        if self.settings.login != "token":
            raise web.HTTPNotFound()
        form = await request.post()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="the login form expired; load it again")
        try:
            person = await authenticate(self.api, str(form.get("token", "")).strip())
        except (NotAuthenticated, ApiError) as error:
            retry = secrets.token_urlsafe(24)
            content = pages.login_content(retry, f"Not logged in: {error}")
            response = web.Response(status=401, text=pages.layout("Log in", None, content), content_type="text/html")
            response.set_cookie(LOGIN_COOKIE, retry, httponly=True, samesite="Strict", secure=_secure(request))
            return response
        session = self.sessions.open(person)
        log.info("dashboard: %s logged in", person.username)
        response = web.HTTPSeeOther("/")
        self._set_cookie(request, response, session)
        response.del_cookie(LOGIN_COOKIE)
        return response

    async def _logout(self, request: web.Request) -> web.Response:
        session = self._need_session(request)
        form = await request.post()
        if not session.csrf_matches(str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="missing or wrong CSRF token")
        self.sessions.close(session.id)
        response = web.HTTPSeeOther("/login" if self.settings.login == "token" else "/")
        response.del_cookie(COOKIE)
        return response

    # -- pages --------------------------------------------------------------------------------------

    async def _overview(self, request: web.Request) -> web.Response:
        token = request.query.get("token")
        if token is not None and self.settings.login == "link":
            redeemed = self.sessions.redeem_login_token(token)
            if redeemed is None:
                raise web.HTTPUnauthorized(text="this login link was used already or has expired")
            response = web.HTTPSeeOther("/")
            self._set_cookie(request, response, redeemed)
            return response
        session = self._need_session(request)
        position = self.view.position
        rows = await self._visible_rows(session.person)
        query = Query.parse(request.query)
        page = select(rows, query)
        content = pages.overview_content(page, query, self.view.problems())
        return self._html(request, session, "Overview", content, self._events_url(), position)

    def _all_rows(self) -> list[Row]:
        """Every row; after a change only the objects whose resourceVersion moved are made into rows again."""
        generation, rows = self._rows
        if generation == self.view.generation:
            return rows
        generation = self.view.generation
        made: dict[tuple[str, str, str], tuple[tuple[str, str], Row]] = {}
        for kind in (*(source.kind for source in SOURCES), SYNC.kind):
            for obj in self.view.objects(kind):
                metadata = obj["metadata"]
                key = (kind, str(metadata.get("namespace", "")), str(metadata["name"]))
                url = source_url_of(obj, self.view.lookup) if kind == SYNC.kind else ""
                version = (str(metadata.get("resourceVersion", "")), url)
                known = self._made.get(key)
                made[key] = known if known is not None and known[0] == version else (version, row_of(obj, url))
        self._made = made
        rows = [row for _, row in made.values()]
        self._rows = (generation, rows)
        return rows

    async def _visible_rows(self, person: Person) -> list[Row]:
        rows = self._all_rows()
        plurals = {SYNC.kind: SYNC.plural, **{kind.kind: kind.plural for kind in SOURCES}}
        visible: dict[str, set[str]] = {}
        for kind, plural in plurals.items():
            namespaces = {row.namespace for row in rows if row.kind == kind}
            visible[kind] = await allowed_namespaces(self.authorizer, person, GROUP, plural, namespaces)
        return [row for row in rows if row.namespace in visible.get(row.kind, set())]

    async def _readable_sync(self, request: web.Request, session: Session) -> KubeObject:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if not await self._may(session.person, "get", GROUP, SYNC.plural, namespace):
            raise web.HTTPForbidden(
                text=self._page_text(session, "Forbidden", f"You may not get syncs.{GROUP} in namespace {namespace}."),
                content_type="text/html",
            )
        sync = self.view.lookup(SYNC.kind, namespace, name)
        if sync is None:
            raise web.HTTPNotFound(
                text=self._page_text(session, "Not found", f"There is no Sync {namespace}/{name}."),
                content_type="text/html",
            )
        return sync

    def _page_text(self, session: Session, title: str, text: str) -> str:
        return pages.layout(title, _viewer(session, self.settings), pages.message_content(title, text))

    async def _sync(self, request: web.Request) -> web.Response:
        session = self._need_session(request)
        position = self.view.position
        sync = await self._readable_sync(request, session)
        person = session.person
        metadata = sync["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        hidden: list[str] = []
        readable = await self._readable_refs(person, sync, hidden)
        children = await self._children(person, sync, readable, hidden)
        tree = build_tree(_with_inventory(sync, readable), self._managed, children)
        records: list[dict[str, Any]] = []
        if await self._may(person, "list", GROUP, SYNC_RECORD.plural, namespace):
            records = [record["spec"] for record in await HistoryStore(self.api).list(namespace, name)]
        else:
            hidden.append(f"history: you may not list syncrecords.{GROUP} in namespace {namespace}")
        events = await self._events_of(person, sync, hidden)
        allowed = pages.Allowed(
            patch=await self._may(person, "patch", GROUP, SYNC.plural, namespace),
            approve=await self._may(person, "approve", GROUP, SYNC.plural, namespace),
            rollback=await self._may(person, "rollback", GROUP, SYNC.plural, namespace),
        )
        annotations = metadata.get("annotations") or {}
        page = pages.SyncPage(
            sync=sync,
            row=row_of(sync, source_url_of(sync, self.view.lookup)),
            sentences=describe_all(sync),
            tree=tree,
            records=records,
            events=events,
            allowed=allowed,
            pinned=str(annotations.get(PIN_ANNOTATION, "")),
            hidden=hidden,
        )
        content = pages.sync_content(page, _viewer(session, self.settings))
        events_url = self._events_url(f"{namespace}/{name}")
        return self._html(request, session, f"Sync {namespace}/{name}", content, events_url, position)

    async def _object(self, request: web.Request) -> web.Response:
        session = self._need_session(request)
        position = self.view.position
        sync = await self._readable_sync(request, session)
        wanted = request.query
        entry = next(
            (
                item
                for item in (sync.get("status") or {}).get("inventory") or []
                if (item.get("group", ""), item.get("kind"), item.get("namespace", ""), item.get("name"))
                == (wanted.get("group", ""), wanted.get("kind"), wanted.get("namespace", ""), wanted.get("name"))
            ),
            None,
        )
        if entry is None:
            raise web.HTTPNotFound(text="this Sync does not manage that object")
        ref = ObjectRef.from_dict(entry)
        hidden: list[str] = []
        if not await self._readable_refs(session.person, _with_inventory(sync, [entry]), hidden):
            raise web.HTTPForbidden(text=hidden[0] if hidden else "forbidden")
        obj = self._managed(ref) or await self._quiet_get(ref)
        drift = [
            d
            for d in (sync.get("status") or {}).get("drift") or []
            if (d.get("group", ""), d.get("kind"), d.get("namespace", ""), d.get("name")) == ref.identity
        ]
        drifted = [
            f"{path}: changed by {d.get('manager', 'unknown')} at {d.get('at', '?')}"
            for d in drift
            for path in d.get("paths") or []
        ]
        comparison = await self._git_diff(sync, ref)
        paths = comparison.paths if isinstance(comparison, ObjectDiff) else ()
        changed_keys = {path.split("/")[2] for path in paths if path.startswith(("/data/", "/stringData/"))}
        body = yaml.safe_dump(shown(obj, changed_keys), sort_keys=False) if obj else "(does not exist)"
        row = row_of(sync)
        content = pages.object_content(row, str(ref), body, comparison, drifted)
        events_url = self._events_url(f"{row.namespace}/{row.name}")
        return self._html(request, session, str(ref), content, events_url, position)

    @staticmethod
    def _events_url(sync: str = "") -> str:
        """Where the page hears of changes: of a Sync and what it manages, or (no `sync`) of every Sync and source."""
        return "/events?" + urlencode({"sync": sync}) if sync else "/events"

    async def _git_diff(self, sync: KubeObject, ref: ObjectRef) -> ObjectDiff | str:
        """The object's difference from Git as the planner sees it, or why it cannot be told."""
        source = SyncSpec.from_object(sync).source_ref
        repository = self.view.lookup(source.kind, source.namespace, source.name)
        if repository is None:
            return f"the source {source.kind} {source.namespace}/{source.name} cannot be read"
        try:
            plan = await self.diffs.of(sync, repository, self._managed)
        except (MoorError, TimeoutError) as error:
            return f"cannot compare with Git: {error or 'the render took too long'}"
        return plan.get(ref.identity) or "Git no longer declares this object"

    # -- what a page reads besides the view ---------------------------------------------------------

    async def _may(self, person: Person, verb: str, group: str, resource: str, namespace: str) -> bool:
        try:
            return await self.authorizer.allowed(person, ResourceAccess(group, resource, namespace, verb))
        except MoorError as error:
            log.warning("dashboard: cannot ask whether %s may %s %s: %s", person.username, verb, resource, error)
            return False

    async def _readable_refs(self, person: Person, sync: KubeObject, hidden: list[str]) -> list[dict[str, Any]]:
        """The inventory entries whose objects the person may get; the others are named in `hidden`."""
        readable = []
        denied: set[str] = set()
        for entry in (sync.get("status") or {}).get("inventory") or []:
            ref = ObjectRef.from_dict(entry)
            resource = await self.api.discovery.resolve_ref(ref)
            if resource is None:
                readable.append(entry)  # not served: shown as missing, nothing to hide
                continue
            if await self._may(person, "get", resource.group, resource.plural, ref.namespace):
                readable.append(entry)
            else:
                denied.add(f"{resource.plural}" + (f" in namespace {ref.namespace}" if ref.namespace else ""))
        hidden.extend(f"objects hidden: you may not get {what}" for what in sorted(denied))
        return readable

    async def _children(
        self, person: Person, sync: KubeObject, readable: Iterable[dict[str, Any]], hidden: list[str]
    ) -> list[KubeObject]:
        """ReplicaSets, Pods and Jobs in the namespaces where the Sync has workloads (what the person may list)."""
        namespaces = sorted({str(e.get("namespace", "")) for e in readable if e.get("kind") in WORKLOAD_KINDS} - {""})
        found: list[KubeObject] = []
        for group, version, kind, plural in CHILD_KINDS:
            resource = await self.api.discovery.resolve(f"{group}/{version}" if group else version, kind)
            if resource is None:
                continue
            for namespace in namespaces:
                if not await self._may(person, "list", group, plural, namespace):
                    hidden.append(f"{plural} in namespace {namespace} hidden: you may not list them")
                    continue
                with contextlib.suppress(MoorError):
                    found.extend((await self.api.list(resource, namespace=namespace)).items)
        return found

    async def _events_of(self, person: Person, sync: KubeObject, hidden: list[str]) -> list[dict[str, Any]]:
        namespace, name = sync["metadata"]["namespace"], sync["metadata"]["name"]
        if not await self._may(person, "list", "", "events", namespace):
            hidden.append(f"events hidden: you may not list events in namespace {namespace}")
            return []
        selector = f"involvedObject.kind={SYNC.kind},involvedObject.name={name}"
        try:
            resource = await self.api.discovery.resolve("v1", "Event")
            if resource is None:
                return []
            listing = await self.api.list(resource, namespace=namespace, field_selector=selector)
        except MoorError:
            return []
        items = list(listing.items)
        items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""), reverse=True)
        return items[:20]

    def _managed(self, ref: ObjectRef) -> KubeObject | None:
        return self.view.managed(ref)

    async def _quiet_get(self, ref: ObjectRef) -> KubeObject | None:
        try:
            return await self.api.get(ref)
        except MoorError:
            return None

    # -- actions ------------------------------------------------------------------------------------

    async def _act(self, request: web.Request) -> web.Response:
        session = self._need_session(request)
        action = request.match_info["action"]
        if action not in VERBS:
            raise web.HTTPNotFound()
        form = await request.post()
        if not session.csrf_matches(str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="missing or wrong CSRF token")
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        verb = VERBS[action]
        if not await self._may(session.person, verb, GROUP, SYNC.plural, namespace):
            log.info("dashboard: %s may not %s Sync %s/%s", session.person.username, action, namespace, name)
            raise web.HTTPForbidden(
                text=self._page_text(
                    session,
                    "Forbidden",
                    f"You may not {action} Syncs in namespace {namespace} (needs {verb} syncs.{GROUP}).",
                ),
                content_type="text/html",
            )
        sync = self.view.lookup(SYNC.kind, namespace, name) or await self._quiet_get(_sync_ref(namespace, name))
        if sync is None:
            raise web.HTTPNotFound(text=f"there is no Sync {namespace}/{name}")
        try:
            session.flash = await self._perform(action, sync, str(form.get("revision", "")), session.person)
            log.info("dashboard: %s: %s", session.person.username, session.flash)
        except (MoorError, ValueError) as error:
            session.flash = f"Could not {action}: {error}"
        return web.HTTPSeeOther(pages.link_path("syncs", namespace, name))

    async def _perform(self, action: str, sync: KubeObject, revision: str, person: Person) -> str:
        ref = ObjectRef.of(sync)
        where = f"Sync {ref.namespace}/{ref.name}"
        if action == "reconcile":
            await operations.request_reconcile(self.api, ref)
            return f"Asked to reconcile {where} now."
        if action in ("suspend", "resume"):
            await operations.set_suspend(self.api, ref, action == "suspend")
            return f"{where} {action}ed."
        if action == "approve":
            approved = await operations.approve(self.api, sync, revision, person.username)
            return f"Approved {approved} for {where} as {person.username}."
        if action == "release":
            await operations.release(self.api, ref)
            return f"{where} follows Git again."
        records = await HistoryStore(self.api).list(ref.namespace, ref.name)
        target = operations.rollback_target(sync, records, revision or None)
        spec = SyncSpec.from_object(sync)
        source = spec.source_ref
        repository = self.view.lookup(source.kind, source.namespace, source.name) or {}
        offered = await operations.source_revision(self.api, repository, spec) if repository else ""
        await operations.pin(self.api, ref, target, offered)
        return f"{where} pinned to {target}."

    # -- live ---------------------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        session = self._need_session(request)
        wanted = request.query.get("sync", "")
        namespace, _, name = wanted.partition("/")
        if wanted and not await self._may(session.person, "get", GROUP, SYNC.plural, namespace):
            raise web.HTTPForbidden()
        label = sync_key({"metadata": {"namespace": namespace, "name": name}}) if wanted else ""
        changed = asyncio.Event()

        def hear(change: LiveChange) -> None:
            obj = change.object
            if not wanted:
                if obj.get("kind") in (SYNC.kind, *(kind.kind for kind in SOURCES)) and _is_moor(obj):
                    changed.set()
                return
            metadata = obj.get("metadata") or {}
            if obj.get("kind") == SYNC.kind and _is_moor(obj):
                if (metadata.get("namespace"), metadata.get("name")) == (namespace, name):
                    changed.set()
            elif (metadata.get("labels") or {}).get(SYNC_LABEL) == label:
                changed.set()

        response = web.StreamResponse(headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
        response.content_type = "text/event-stream"
        self.view.subscribe(hear)
        try:
            await response.prepare(request)
            # The position first: a page read before it (a change between its rendering and this stream,
            # or while the stream reconnected) learns here that it is behind.
            await response.write(b"retry: 1000\n\n" + self._change_message())
            while self.sessions.find(session.id) is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        await changed.wait()
                if changed.is_set():
                    await asyncio.sleep(COALESCE_SECONDS)
                    changed.clear()
                    await response.write(self._change_message())
                else:
                    await response.write(b": keepalive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.view.unsubscribe(hear)
        return response

    def _change_message(self) -> bytes:
        """A server-sent event naming the view's position now (after every change it tells of)."""
        return f"event: change\ndata: {self.view.position}\n\n".encode()


def _is_moor(obj: KubeObject) -> bool:
    return str(obj.get("apiVersion", "")).startswith(f"{GROUP}/")


def _with_inventory(sync: KubeObject, entries: list[dict[str, Any]]) -> KubeObject:
    return {**sync, "status": {**(sync.get("status") or {}), "inventory": entries}}


def _sync_ref(namespace: str, name: str) -> ObjectRef:
    return ObjectRef(GROUP, VERSION, SYNC.kind, namespace, name)


def _viewer(session: Session, settings: DashboardSettings) -> pages.Viewer:
    return pages.Viewer(session.person.username, session.csrf, settings.login == "token")


def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def _same_origin(request: web.Request) -> bool:
    """A POST's Origin (when the browser sends one) is this server's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin in (f"http://{request.host}", f"https://{request.host}")

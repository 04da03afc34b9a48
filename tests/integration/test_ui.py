"""The dashboard in a real browser against a real controller (`moor run --ui-port`) on a control plane of its own.

People log in with a ServiceAccount token (a TokenReview says who they are); what they see and may
do is what RBAC allows them. Changes reach open pages by server-sent events, without a reload.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from moor import binaries
from moor.devcluster import ClusterInfo
from tests.support.browser import browser  # noqa: F401
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.fault_proxy import FaultProxy
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import MOOR, ControllerProcess, Moor, config_map, deployment, free_port, manifest

SECRET_VALUE = "hunter2-do-not-leak-7f3a"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def kube(private_cluster: ClusterInfo) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


@pytest.fixture(scope="module")
def dashboard(private_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the dashboard served by this module's controller."""
    port = free_port()
    process = ControllerProcess(
        private_cluster.kubeconfig,
        tmp_path_factory.mktemp("ui-controller"),
        "--ui-port",
        str(port),
        "--ui-address",
        "127.0.0.1",
    )
    process.start()
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture(scope="module")
def admin_token(kube: Kubectl) -> str:
    kube("create", "serviceaccount", "ui-admin", "-n", "default")
    kube("create", "clusterrolebinding", "ui-admin", "--clusterrole=cluster-admin", "--serviceaccount=default:ui-admin")
    return kube("create", "token", "ui-admin", "-n", "default", "--duration=1h").stdout.strip()


@pytest.fixture
def space(request: pytest.FixtureRequest, kube: Kubectl) -> Iterator[str]:
    name = namespace_name(request.node.name)
    kube("create", "namespace", name)
    kube("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    kube("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def moor(kube: Kubectl, private_cluster: ClusterInfo, space: str, dashboard: str) -> Moor:
    return Moor(kube, private_cluster.kubeconfig, space)


def publish(repo: GitWorkspace, message: str, **objects: dict) -> str:
    for old in repo.work.glob("*.yaml"):
        old.unlink()
    for name, obj in objects.items():
        repo.write(f"{name}.yaml", manifest(obj))
    sha = repo.commit(message)
    repo.push()
    return sha


def secret(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"password": value}}


def log_in(browser: Browser, base: str, token: str, **context: object) -> tuple[Page, list[bytes]]:  # noqa: F811
    """A new browser context logged in with `token`; the list collects every response body it sees."""
    bodies: list[bytes] = []
    page = browser.new_context(**context).new_page()  # type: ignore[arg-type]

    def keep(response: Response) -> None:
        if "text/event-stream" in (response.headers.get("content-type") or "") or 300 <= response.status < 400:
            return  # a stream never ends; a redirect has no body to read
        bodies.append(response.body())

    page.on("response", keep)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/login")
    page.fill("textarea[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("#overview")).to_be_visible(timeout=WAIT_MS)
    return page, bodies


def test_overview_sync_tree_and_approval_and_no_secret_reaches_the_browser(
    browser: Browser,  # noqa: F811
    moor: Moor,
    git_repo: GitWorkspace,
    dashboard: str,
    admin_token: str,
) -> None:
    v1 = publish(
        git_repo,
        "v1",
        web=deployment("web"),
        settings=config_map("settings", {"color": "blue"}),
        password=secret("password", SECRET_VALUE),
    )
    moor.source_and_sync(git_repo, sync_spec="{approval: {mode: manual}}")
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval")

    page, bodies = log_in(browser, dashboard, admin_token, viewport={"width": 1280, "height": 900})
    row = page.locator("#overview tr[data-kind=Sync]", has_text=f"{moor.namespace}/app")
    expect(row).to_contain_text("Awaiting approval", timeout=WAIT_MS)
    row.locator("a", has_text="app").click()

    expect(page.locator("#approval")).to_contain_text(v1[:12], timeout=WAIT_MS)
    page.click("#approval button")
    expect(page.locator(".flash")).to_contain_text("Approved", timeout=WAIT_MS)
    # Applied, and then the tree fills in and goes healthy without a reload (server-sent events).
    tree = page.locator("#tree")
    expect(tree).to_contain_text(f"Deployment.apps {moor.namespace}/web", timeout=60_000)
    expect(tree).to_contain_text(f"ConfigMap {moor.namespace}/settings", timeout=WAIT_MS)
    expect(tree.locator("li[data-kind=ReplicaSet]").first).to_be_visible(timeout=60_000)
    expect(page.locator(".title .badge")).to_contain_text("Ready", timeout=60_000)
    expect(page.locator("#history")).to_contain_text("approved by system:serviceaccount:default:ui-admin")
    expect(page.locator("#events")).to_contain_text("Approved", timeout=WAIT_MS)  # the Sync's own Events
    assert moor.get("configmap", "settings")["data"] == {"color": "blue"}

    page.locator("#tree li[data-kind=Secret] a").click()
    expect(page.locator("pre.yaml")).to_contain_text("password: (secret value)", timeout=WAIT_MS)
    expect(page.locator("#matches-git")).to_contain_text("matches Git", timeout=WAIT_MS)

    page.goto(f"{dashboard}/")
    expect(page.locator("#overview")).to_contain_text(f"{moor.namespace}/app")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "ui-overview.png"))
    page.goto(f"{dashboard}/syncs/{moor.namespace}/app")
    expect(page.locator("#tree li[data-kind=ReplicaSet]").first).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(IMAGES / "ui-sync.png"), full_page=True)

    dark, dark_bodies = log_in(
        browser, dashboard, admin_token, viewport={"width": 390, "height": 844}, color_scheme="dark"
    )
    dark.goto(f"{dashboard}/syncs/{moor.namespace}/app")
    expect(dark.locator("#tree")).to_contain_text("web")
    dark.screenshot(path=str(IMAGES / "ui-sync-phone-dark.png"), full_page=True)

    encoded = base64.b64encode(SECRET_VALUE.encode())
    seen = [*bodies, *dark_bodies]
    assert len(seen) > 5
    for body in seen:
        assert SECRET_VALUE.encode() not in body and encoded not in body


def test_drift_appears_and_clears_on_an_open_page_without_a_reload(
    browser: Browser,  # noqa: F811
    moor: Moor,
    git_repo: GitWorkspace,
    dashboard: str,
    admin_token: str,
) -> None:
    publish(
        git_repo, "v1", settings=config_map("settings", {"color": "blue"}), password=secret("password", SECRET_VALUE)
    )
    moor.source_and_sync(git_repo, sync_spec="drift: {mode: alert}")
    moor.wait_condition("sync", "app", "True")

    page, bodies = log_in(browser, dashboard, admin_token)
    page.goto(f"{dashboard}/syncs/{moor.namespace}/app")
    expect(page.locator("#no-drift")).to_be_visible(timeout=WAIT_MS)
    page.evaluate("window.notReloaded = true")

    moor.kubectl("patch", "configmap", "settings", "-n", moor.namespace, "-p", '{"data":{"color":"red"}}')
    expect(page.locator("#drift")).to_contain_text("/data/color", timeout=WAIT_MS)
    expect(page.locator("#drift")).to_contain_text("kubectl-patch")
    expect(page.locator("#tree .badge.drifted")).to_be_visible()

    # The object's page: the planner's comparison with Git, as `moor diff` makes it.
    detail = page.context.new_page()
    detail.goto(dashboard + (page.locator("#tree li[data-kind=ConfigMap] a").get_attribute("href") or ""))
    expect(detail.locator("#differences")).to_contain_text('/data/color: Git declares "blue", the cluster has "red"')
    changed = base64.b64encode(b"changed-" + SECRET_VALUE.encode()).decode()
    patch = json.dumps({"data": {"password": changed}})
    moor.kubectl("patch", "secret", "password", "-n", moor.namespace, "-p", patch)
    detail.goto(dashboard + (page.locator("#tree li[data-kind=Secret] a").get_attribute("href") or ""))
    expect(detail.locator("#differences")).to_contain_text("password: changed (secret value not shown)")
    expect(detail.locator("pre.yaml")).to_contain_text("password: (secret value, differs from Git)")

    moor.kubectl("patch", "configmap", "settings", "-n", moor.namespace, "-p", '{"data":{"color":"blue"}}')
    restore = json.dumps({"data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()}})
    moor.kubectl("patch", "secret", "password", "-n", moor.namespace, "-p", restore)
    expect(page.locator("#no-drift")).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("window.notReloaded") is True, "the page changed without being reloaded"
    for body in bodies:
        assert SECRET_VALUE.encode() not in body and changed.encode() not in body


READ_ONLY_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules:
  - apiGroups: [moor.dev]
    resources: [syncs, gitrepositories, syncrecords]
    verbs: [get, list, watch]
  - apiGroups: ["", apps]
    resources: [configmaps, deployments, events]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: reader}]
"""


@contextlib.contextmanager
def moor_ui(kubeconfig: Path) -> Iterator[str]:
    """`moor ui` with `kubeconfig` on a free loopback port; the line it prints (its one-time login link)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    process = subprocess.Popen([*MOOR, "ui", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_change_made_while_a_page_is_read_reaches_it_without_a_reload(
    browser: Browser,  # noqa: F811
    moor: Moor,
    git_repo: GitWorkspace,
    fault_proxy: FaultProxy,
) -> None:
    """The Sync changes after its page has read it and before the page's event stream opens (in CI: the apply's
    last status write, while the page of the approval was being made); the page still comes to show it."""
    publish(git_repo, "v1", settings=config_map("settings", {"color": "blue"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    with moor_ui(fault_proxy.kubeconfig) as printed:
        link = printed.split(": ", 1)[-1].strip()
        page = browser.new_context().new_page()
        page.goto(link)
        expect(page.locator("#overview")).to_contain_text(f"{moor.namespace}/app", timeout=WAIT_MS)
        # The Sync's page asks whether it may get the Sync, reads it, then asks its other questions: the
        # second question is held, and the Sync is suspended meanwhile.
        held = fault_proxy.stall("/selfsubjectaccessreviews", seconds=5, method="POST", times=1)
        fault_proxy.stall("/selfsubjectaccessreviews", seconds=0, method="POST", times=1)

        def suspend_while_held() -> None:
            deadline = time.monotonic() + 60
            while not held.hits and time.monotonic() < deadline:
                time.sleep(0.05)
            moor.kubectl(
                "patch", "sync", "app", "-n", moor.namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
            )

        suspending = threading.Thread(target=suspend_while_held)
        suspending.start()
        page.goto(link.split("/?", 1)[0] + f"/syncs/{moor.namespace}/app")
        suspending.join()
        assert held.hits == 1
        expect(page.locator(".title .badge")).to_contain_text("Suspended", timeout=WAIT_MS)


def test_a_refresh_that_fails_is_tried_again_until_the_page_shows_the_change(
    browser: Browser,  # noqa: F811
    moor: Moor,
    git_repo: GitWorkspace,
    fault_proxy: FaultProxy,
) -> None:
    publish(git_repo, "v1", settings=config_map("settings", {"color": "blue"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    with moor_ui(fault_proxy.kubeconfig) as printed:
        link = printed.split(": ", 1)[-1].strip()
        page = browser.new_context().new_page()
        page.goto(link)
        page.goto(link.split("/?", 1)[0] + f"/syncs/{moor.namespace}/app")
        expect(page.locator(".title .badge")).to_contain_text("Ready", timeout=WAIT_MS)
        expect(page.locator("#live-state")).to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)

        fault_proxy.respond(500, "/syncrecords", method="GET")  # the page cannot be made while this lasts
        moor.kubectl("patch", "sync", "app", "-n", moor.namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
        expect(page.locator("#live-state")).to_have_attribute("title", re.compile("could not refresh"), timeout=WAIT_MS)
        fault_proxy.clear()
        expect(page.locator(".title .badge")).to_contain_text("Suspended", timeout=WAIT_MS)
        expect(page.locator("#live-state")).to_have_class(re.compile(r"\bon\b"))


def test_a_read_only_user_sees_no_buttons_and_a_forged_post_changes_nothing(
    browser: Browser,  # noqa: F811
    moor: Moor,
    git_repo: GitWorkspace,
    dashboard: str,
) -> None:
    publish(git_repo, "v1", settings=config_map("settings", {"color": "blue"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    moor.kubectl("create", "serviceaccount", "reader", "-n", moor.namespace)
    moor.apply(READ_ONLY_ROLE)
    token = moor.kubectl("create", "token", "reader", "-n", moor.namespace).stdout.strip()

    page, _ = log_in(browser, dashboard, token)
    expect(page.locator("#overview")).to_contain_text(f"{moor.namespace}/app", timeout=WAIT_MS)
    page.goto(f"{dashboard}/syncs/{moor.namespace}/app")
    expect(page.locator("#tree")).to_contain_text("settings", timeout=WAIT_MS)
    assert page.locator("#actions").count() == 0
    assert page.locator("main form").count() == 0

    csrf = page.locator("header input[name=csrf]").get_attribute("value") or ""
    for action in ("suspend", "reconcile", "rollback"):
        answer = page.request.post(
            f"{dashboard}/syncs/{moor.namespace}/app/{action}", form={"csrf": csrf}, max_redirects=0
        )
        assert answer.status == 403, action
    forged = page.request.post(f"{dashboard}/syncs/{moor.namespace}/app/suspend", form={"csrf": "guess"})
    assert forged.status == 403
    sync = moor.get("sync", "app")
    assert not sync["spec"].get("suspend")
    assert "moor.dev/reconcile" not in (sync["metadata"].get("annotations") or {})


def test_pages_refuse_framing_inline_script_and_strangers(dashboard: str, admin_token: str) -> None:
    with urllib.request.urlopen(f"{dashboard}/login") as answer:
        headers = answer.headers
        html = answer.read().decode()
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert "http://" not in html.replace(dashboard, "") and "https://" not in html, "no third-party origin"
    opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())
    with opener.open(f"{dashboard}/") as answer:
        assert answer.url.endswith("/login"), "no session: the login page"


def test_moor_ui_prints_its_link_and_serves_with_the_users_kubeconfig(moor: Moor, git_repo: GitWorkspace) -> None:
    publish(git_repo, "v1", settings=config_map("settings", {"color": "blue"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    with moor_ui(moor.kubeconfig) as printed:
        match = re.match(r"Moor dashboard: (http://127\.0\.0\.1:(\d+)/\?token=\S+)", printed)
        assert match, printed
        link, port = match.group(1), match.group(2)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(link) as answer:
            page = answer.read().decode()
        assert f"{moor.namespace}/<b>app</b>" in page
        with pytest.raises(urllib.error.HTTPError) as spent:
            urllib.request.urlopen(link)  # the link logs in once
        assert spent.value.code == 401
        with opener.open(f"http://127.0.0.1:{port}/syncs/{moor.namespace}/app") as answer:
            assert "settings" in answer.read().decode()
        stranger = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError) as rebound:
            opener.open(stranger)
        assert rebound.value.code == 421


def test_moor_ui_says_what_the_users_own_credentials_may_not_read(
    moor: Moor, private_cluster: ClusterInfo, tmp_path: Path
) -> None:
    moor.kubectl("create", "serviceaccount", "nobody", "-n", moor.namespace)
    token = moor.kubectl("create", "token", "nobody", "-n", moor.namespace).stdout.strip()
    kubeconfig = tmp_path / "nobody.kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": private_cluster.server,
                            "certificate-authority": str(private_cluster.ca_cert),
                        },
                    }
                ],
                "users": [{"name": "nobody", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "nobody", "namespace": moor.namespace}}],
                "current-context": "c",
            }
        )
    )
    with moor_ui(kubeconfig) as printed:
        assert printed.startswith("Moor dashboard: http://127.0.0.1:"), printed
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(printed.split(": ", 1)[1].strip()) as answer:
            page = answer.read().decode()
        assert "Some of the cluster cannot be shown" in page
        assert "cannot watch syncs.moor.dev" in page and "forbidden" in page.lower()
        assert f"system:serviceaccount:{moor.namespace}:nobody" in page

"""The dashboard of `moor run --ui-port` with 5,000 Syncs: first paint, bytes, server CPU, event latency, memory.

Starts a control plane (`moor.devcluster`; `--cluster-dir` reuses a running one), installs Moor's
CRDs, creates N Syncs (default 5,000, suspended, so the controller has nothing to do) and one
GitRepository per namespace over 50 namespaces, and runs `moor run --ui-port` in a subprocess. A
ServiceAccount bound to cluster-admin logs in with its token. Then, with Playwright driving
/usr/bin/chromium:
- overview: the first page (50 rows, sorted by state) loaded `--views` times in a fresh tab: time to
  first contentful paint (the browser's own `paint` entry) and bytes transferred (document + assets);
- server CPU per page view: utime+stime of the `moor run` process (from /proc) over `--views`
  requests of the overview with the session cookie, divided by the count;
- event latency: the status of one Sync patched (its Ready message) `--changes` times; from just
  before the patch is sent until the open overview page has swapped in the row with the new message
  (the page's own clock, same machine): p50 and p95;
- memory: the RSS of `moor run` before any page is open, and with 10 pages open and streaming events
  while 20 changes arrive.
It prints one table; it is not a test.

Run from the repository root:
    .venv/bin/python bench/ui_overview.py [--syncs 5000] [--views 20] [--changes 30] [--cluster-dir DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from moor import binaries
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster
from moor.devcluster.cluster import running_cluster

MOOR = [sys.executable, "-m", "moor"]
NAMESPACES = 50
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """The API server as cluster-admin, over plain HTTPS (no client library in the way of the clock)."""

    def __init__(self, info: ClusterInfo) -> None:
        self.server = info.server
        self.context = ssl.create_default_context(cafile=str(info.ca_cert))
        self.context.load_cert_chain(str(info.admin_cert), str(info.admin_key))

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, context=self.context, timeout=60) as answer:
            return json.loads(answer.read() or b"{}")


def create_objects(cluster: Cluster, syncs: int) -> None:
    def create(path: str, body: dict[str, Any]) -> None:
        try:
            cluster.call("POST", path, body)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: create(
                    "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ui-{n}"}}
                ),
                range(NAMESPACES),
            )
        )
        for n in range(NAMESPACES):
            source = {
                "apiVersion": "moor.dev/v1",
                "kind": "GitRepository",
                "metadata": {"name": "app"},
                "spec": {
                    "url": "https://github.com/example/app.git",
                    "ref": {"branch": "main"},
                    "interval": "1h",
                    "suspend": True,
                },
            }
            create(f"/apis/moor.dev/v1/namespaces/ui-{n}/gitrepositories", source)

        def sync(i: int) -> None:
            body = {
                "apiVersion": "moor.dev/v1",
                "kind": "Sync",
                "metadata": {"name": f"app-{i:05d}"},
                "spec": {"sourceRef": {"name": "app"}, "path": f"apps/{i}", "interval": "1h", "suspend": True},
            }
            create(f"/apis/moor.dev/v1/namespaces/ui-{i % NAMESPACES}/syncs", body)

        list(pool.map(sync, range(syncs)))


def admin_token(kubeconfig: Path) -> str:
    kubectl = str(binaries.locate("kubectl"))
    base = [kubectl, f"--kubeconfig={kubeconfig}"]
    subprocess.run([*base, "create", "serviceaccount", "ui-bench", "-n", "default"], capture_output=True)
    subprocess.run(
        [
            *base,
            "create",
            "clusterrolebinding",
            "ui-bench",
            "--clusterrole=cluster-admin",
            "--serviceaccount=default:ui-bench",
        ],
        capture_output=True,
    )
    result = subprocess.run(
        [*base, "create", "token", "ui-bench", "-n", "default", "--duration=2h"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settle(pid: int, within: float = 600.0) -> None:
    """Waits until `moor run` is done with its first pass over every Syncs (under 5% of a CPU for 3 s)."""
    progress("waiting for the controller's first pass over every Sync to end")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(3)
        if cpu_seconds(pid) - before < 0.15:
            return
    progress("the controller is still busy; measuring anyway")


def log_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.fill("textarea[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("#overview", timeout=120_000)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--syncs", type=int, default=5000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--cluster-dir", type=Path, default=None)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="moor-bench-ui-"))
    directory = args.cluster_dir or scratch / "cluster"
    own_cluster = args.cluster_dir is None or running_cluster(directory) is None
    progress(f"control plane in {directory}")
    info = running_cluster(directory) or start_cluster(directory)
    controller: subprocess.Popen[bytes] | None = None
    try:
        env = {**os.environ, "KUBECONFIG": str(info.kubeconfig)}
        subprocess.run([*MOOR, "install"], env=env, check=True, capture_output=True)
        cluster = Cluster(info)
        progress(f"creating {args.syncs} Syncs in {NAMESPACES} namespaces")
        started = time.monotonic()
        create_objects(cluster, args.syncs)
        progress(f"created in {time.monotonic() - started:.0f}s")
        token = admin_token(info.kubeconfig)
        port = free_port()
        log = (scratch / "moor-run.log").open("wb")
        controller = subprocess.Popen(
            [
                *MOOR,
                "run",
                "--artifact-dir",
                str(scratch / "artifacts"),
                "--ui-port",
                str(port),
                "--ui-address",
                "127.0.0.1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while "controller started" not in (scratch / "moor-run.log").read_text():
            if controller.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((scratch / "moor-run.log").read_text())
            time.sleep(0.2)
        settle(controller.pid)
        results = measure(base, token, controller.pid, cluster, args)
    finally:
        if controller is not None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=60)
        if own_cluster and args.cluster_dir is None:
            stop_cluster(directory)
    print(f"\nDashboard with {args.syncs} Syncs ({NAMESPACES} namespaces), first overview page of 50 rows\n")
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value}")


class Results(dict[str, str]):
    """The table's rows, each also printed to stderr as it is measured (a later failure keeps them)."""

    def __setitem__(self, key: str, value: str) -> None:
        progress(f"{key}: {value}")
        super().__setitem__(key, value)


def measure(base: str, token: str, pid: int, cluster: Cluster, args: argparse.Namespace) -> dict[str, str]:
    results = Results()
    rss_before = rss_mib(pid)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        log_in(page, base, token)
        rss_logged_in = rss_mib(pid)

        paints: list[float] = []
        sizes: list[int] = []
        for _ in range(args.views):
            tab = browser.new_context(
                viewport={"width": 1280, "height": 900}, storage_state=context.storage_state()
            ).new_page()
            tab.goto(f"{base}/?sort=state", wait_until="load")
            transferred = int(
                tab.evaluate(
                    "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
                    ".filter(e => !e.name.includes('/events')).reduce((n, e) => n + e.encodedBodySize, 0)"
                )
            )
            tab.wait_for_timeout(200)
            paint = tab.evaluate(
                "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || -1"
            )
            if paint > 0:
                paints.append(float(paint))
            sizes.append(transferred)
            tab.context.close()
        results["first contentful paint, median (ms)"] = (
            f"{statistics.median(paints):.0f} (min {min(paints):.0f}, max {max(paints):.0f})"
        )
        results["bytes of the first page (document + css + js + icon)"] = f"{statistics.median(sizes) / 1024:.1f} KiB"

        cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        before = cpu_seconds(pid)
        started = time.monotonic()
        for _ in range(args.views):
            request = urllib.request.Request(f"{base}/?sort=state", headers={"Cookie": cookie})
            with urllib.request.urlopen(request) as answer:
                answer.read()
        elapsed = time.monotonic() - started
        results["server CPU per overview view"] = f"{(cpu_seconds(pid) - before) / args.views * 1000:.1f} ms"
        results["overview response time (urllib, median of run)"] = f"{elapsed / args.views * 1000:.1f} ms"

        page.goto(f"{base}/?q=ui-0/app-00000")
        page.wait_for_selector("#overview tr[data-kind=Sync]")
        latencies: list[float] = []
        path = "/apis/moor.dev/v1/namespaces/ui-0/syncs/app-00000/status"
        for n in range(args.changes):
            message = f"bench change {n}"
            condition = {
                "type": "Ready",
                "status": "False",
                "reason": "Bench",
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            sent = time.time() * 1000
            cluster.call("PATCH", path, {"status": {"conditions": [condition]}}, "application/merge-patch+json")
            page.wait_for_function(
                "m => document.querySelector('#overview td.message') && "
                "document.querySelector('#overview td.message').textContent === m",
                arg=message,
                timeout=30_000,
            )
            shown = float(page.evaluate("() => Number(document.body.dataset.refreshed)"))
            latencies.append(shown - sent)
            time.sleep(0.2)
        results["event latency cluster -> page, p50"] = f"{percentile(latencies, 0.5):.0f} ms"
        results["event latency cluster -> page, p95"] = f"{percentile(latencies, 0.95):.0f} ms"

        streaming = []
        for n in range(10):  # ten people: a browser holds at most six connections per host and context
            tab = browser.new_context().new_page()
            log_in(tab, base, token)
            tab.goto(f"{base}/?sort=state" if n % 2 else f"{base}/syncs/ui-{n}/app-{n:05d}")
            streaming.append(tab)
        for n in range(20):
            condition = {
                "type": "Ready",
                "status": "False",
                "reason": "Bench",
                "message": f"stream {n}",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            cluster.call(
                "PATCH",
                f"/apis/moor.dev/v1/namespaces/ui-{n % 10}/syncs/app-{n % 10:05d}/status",
                {"status": {"conditions": [condition]}},
                "application/merge-patch+json",
            )
            time.sleep(0.3)
        time.sleep(2)
        results["moor run RSS: no page open"] = f"{rss_before:.0f} MiB"
        results["moor run RSS: logged in, one page"] = f"{rss_logged_in:.0f} MiB"
        results["moor run RSS: 10 pages streaming"] = f"{rss_mib(pid):.0f} MiB"
        browser.close()
    return results


if __name__ == "__main__":
    main()

"""Image scanning cost: many ImageRepositories of many tags, scanned by `moor run` at a short interval.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs, serves a scripted
registry on loopback (Python's http.server in a thread: the tag-list API of the distribution spec with
`n`/`last` paging and `Link` headers, pages capped at --page-size tags as Docker Hub and GHCR cap
them, every request counted), and runs `moor run --metrics-port P` in a subprocess, so its CPU is read
from /proc. Two rounds, each with --repositories ImageRepositories of --tags tags, interval --interval:

1. `etag`: the registry sends an ETag per page and answers If-None-Match with 304 (nothing changed);
2. `plain`: no ETag, as the CNCF distribution registry (every page is sent again each scan).

After every repository has been scanned once, it measures for --window seconds: scans, requests to the
registry per scan (and how many were answered 304), and the controller's CPU seconds per minute. It
prints one table; it is not a test. Run from the repository root:
    .venv/bin/python bench/image_scan.py [--repositories 100] [--tags 1000] [--interval 1m] [--window 180]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from moor import binaries
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster

NAMESPACE = "image-bench"


class BenchError(Exception):
    pass


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Counts:
    requests: int = 0
    first_pages: int = 0
    not_modified: int = 0


class ScriptedRegistry:
    """`/v2/<mode>/app-<i>/tags/list`: `--tags` tags 1.0.0 … in pages; ETags only in mode `etag`."""

    def __init__(self, tags: int, page_size: int) -> None:
        self.tags = [f"1.{n // 1000}.{n % 1000}" for n in range(tags)]
        self.page_size = page_size
        self.counts: dict[str, Counts] = {"etag": Counts(), "plain": Counts()}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self, mode: str) -> Counts:
        with self.lock:
            counts = self.counts[mode]
            return Counts(counts.requests, counts.first_pages, counts.not_modified)

    def answer(
        self, path: str, query: dict[str, list[str]], if_none_match: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        parts = path.strip("/").split("/")  # v2, mode, app-i, tags, list
        if len(parts) != 5 or parts[1] not in self.counts:
            return 404, {}, b'{"errors": [{"code": "NAME_UNKNOWN"}]}'
        mode, name = parts[1], f"{parts[1]}/{parts[2]}"
        size = min(int(query.get("n", [str(self.page_size)])[0]), self.page_size)
        last = query.get("last", [""])[0]
        start = self.tags.index(last) + 1 if last in self.tags else 0
        page = self.tags[start : start + size]
        body = json.dumps({"name": name, "tags": page}).encode()
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if start + size < len(self.tags):
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={page[-1]}>; rel="next"'
        status = 200
        if mode == "etag":
            headers["ETag"] = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            if if_none_match == headers["ETag"]:
                status, body = 304, b""
        with self.lock:
            counts = self.counts[mode]
            counts.requests += 1
            counts.first_pages += 0 if last else 1
            counts.not_modified += status == 304
        return status, headers, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                status, headers, body = registry.answer(
                    parts.path, parse_qs(parts.query), self.headers.get("If-None-Match")
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.argv = [str(binaries.locate("kubectl")), f"--kubeconfig={kubeconfig}"]

    def __call__(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run([*self.argv, *args], input=input, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise BenchError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout


class Controller:
    def __init__(self, cluster: ClusterInfo, directory: Path, profile: Path | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "moor-run.log"
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
        argv = [sys.executable, *profiler, "-m", "moor", "run", "--artifact-dir", str(directory / "artifacts")]
        argv += ["--metrics-port", str(free_port())]
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while "controller started" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"`moor run` did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@dataclass
class Round:
    mode: str
    scans: int
    requests: int
    not_modified: int
    cpu_seconds: float
    window: float

    def row(self, pages: int) -> str:
        per_scan = self.requests / self.scans if self.scans else float("nan")
        cpu_per_minute = self.cpu_seconds / (self.window / 60)
        return (
            f"| {self.mode} | {self.scans} | {per_scan:.2f} (pages: {pages}) | {self.not_modified} "
            f"| {cpu_per_minute:.2f} s |"
        )


def image_repositories(mode: str, count: int, port: int, interval: str) -> str:
    documents = [
        {
            "apiVersion": "moor.dev/v1",
            "kind": "ImageRepository",
            "metadata": {"name": f"{mode}-{index:03d}", "namespace": NAMESPACE},
            "spec": {"image": f"127.0.0.1:{port}/{mode}/app-{index:03d}", "insecure": True, "interval": interval},
        }
        for index in range(count)
    ]
    return "\n---\n".join(json.dumps(document) for document in documents)


def scanned(kubectl: Kubectl, mode: str, tags: int) -> int:
    listed = json.loads(kubectl("get", "imagerepositories", "-n", NAMESPACE, "-o", "json"))["items"]
    return sum(
        1
        for item in listed
        if item["metadata"]["name"].startswith(mode) and (item.get("status") or {}).get("tagCount") == tags
    )


def measure(
    args: argparse.Namespace, kubectl: Kubectl, registry: ScriptedRegistry, controller: Controller, mode: str
) -> Round:
    kubectl("apply", "-f", "-", input=image_repositories(mode, args.repositories, registry.port, args.interval))
    progress(f"{mode}: waiting for {args.repositories} ImageRepositories to be scanned once")
    deadline = time.monotonic() + 600
    while (done := scanned(kubectl, mode, args.tags)) < args.repositories:
        if time.monotonic() > deadline:
            raise BenchError(f"{mode}: only {done} of {args.repositories} scanned within 10 minutes")
        time.sleep(2)
    progress(f"{mode}: all scanned; measuring for {args.window:.0f}s")
    before, cpu_before, started = registry.snapshot(mode), controller.cpu(), time.monotonic()
    time.sleep(args.window)
    after, cpu_after, window = registry.snapshot(mode), controller.cpu(), time.monotonic() - started
    kubectl("delete", "imagerepositories", "-n", NAMESPACE, "--all", "--wait=false")
    time.sleep(5)
    return Round(
        mode,
        after.first_pages - before.first_pages,
        after.requests - before.requests,
        after.not_modified - before.not_modified,
        cpu_after - cpu_before,
        window,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=100, help="The registry's cap on tags per page.")
    parser.add_argument("--interval", default="1m")
    parser.add_argument("--window", type=float, default=180.0, help="Seconds measured per round.")
    parser.add_argument("--modes", default="etag,plain")
    parser.add_argument("--profile", type=Path, help="Run `moor run` under cProfile, writing its stats here.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="moor-image-bench-"))
    progress(f"starting a control plane in {root}")
    cluster = start_cluster(root / "cluster")
    controller: Controller | None = None
    try:
        install = subprocess.run(
            [sys.executable, "-m", "moor", "install"],
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if install.returncode != 0:
            raise BenchError(f"moor install: {install.stderr.strip()}")
        kubectl = Kubectl(cluster.kubeconfig)
        kubectl("create", "namespace", NAMESPACE)
        registry = ScriptedRegistry(args.tags, args.page_size)
        controller = Controller(cluster, root / "controller", args.profile)
        rounds = [measure(args, kubectl, registry, controller, mode) for mode in args.modes.split(",")]
        pages = -(-args.tags // args.page_size)
        print(
            f"\n{args.repositories} ImageRepositories x {args.tags} tags, pages of {args.page_size}, "
            f"interval {args.interval}, {args.window:.0f}s measured per round\n"
        )
        print("| registry | scans | requests per scan | answered 304 | moor run CPU per minute |")
        print("|---|---|---|---|---|")
        for measured in rounds:
            print(measured.row(pages))
        return 0
    except BenchError as error:
        progress(f"failed: {error}")
        return 1
    finally:
        if controller is not None:
            controller.stop()
        stop_cluster(root / "cluster")


if __name__ == "__main__":
    raise SystemExit(main())

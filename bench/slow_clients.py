"""Webhook deliveries, metrics scrapes and reconciles of `moor run` while 1,000 slow clients hold connections.

Starts its own control plane (`moor.devcluster`), installs Moor's CRDs and runs `moor run` with
`--webhook-port` and `--metrics-port` in a subprocess. A Sync follows a local Git repository (file://,
interval 1h, so only a delivery explains a new revision). Each phase measures, from this process:
- deliveries: signed push deliveries for a repository no GitRepository follows, each on a new
  connection (as GitHub sends them), from 50 loopback addresses (the receiver allows 10 a second per
  address): latency one at a time, and deliveries per second with 8 in flight;
- scrapes: GET /metrics latency;
- reconciles: a new commit pushed and its delivery answered, until the API server holds the changed
  ConfigMap (polled every 20 ms): reconcile latency (fetch, render, apply).
The phases: "quiet", then "slow clients": N connections (default 1,000, from 40 loopback addresses,
a quarter of them on the metrics port) that send their request head one byte every 5 s and reconnect
when the server closes them (after `--reconnect-delay`, 0.1 s), as an attacker would. It prints one
table; it is not a test.

Run from the repository root:
    .venv/bin/python bench/slow_clients.py [--slow 1000] [--deliveries 300] [--trials 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import multiprocessing.process
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moor import binaries
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster

NAMESPACE = "bench-slow"
TOKEN = "bench-slow-clients-token"
MOOR = [sys.executable, "-m", "moor"]
DELIVERY_SOURCES = [f"127.0.5.{n}" for n in range(1, 51)]
SLOW_SOURCES = [f"127.0.6.{n}" for n in range(1, 41)]


class BenchError(Exception):
    pass


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str = "") -> str:
    result = subprocess.run(
        [str(arg) for arg in argv], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise BenchError(f"`{' '.join(map(str, argv))}` failed: {result.stderr.strip()}")
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Repo:
    bare: Path
    work: Path
    env: dict[str, str]

    @classmethod
    def create(cls, root: Path) -> Repo:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        }
        repo = cls(root / "remote.git", root / "work", env)
        run("git", "init", "--bare", "-b", "main", repo.bare, env=env)
        run("git", "clone", repo.bare, repo.work, env=env)
        return repo

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit_version(self, version: int) -> None:
        (self.work / "app").mkdir(exist_ok=True)
        (self.work / "app" / "settings.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{version: '{version}'}}\n"
        )
        run("git", "add", "-A", env=self.env, cwd=self.work)
        run("git", "commit", "-qm", f"version {version}", env=self.env, cwd=self.work)
        run("git", "push", "-q", "origin", "HEAD:main", env=self.env, cwd=self.work)


class Api:
    """GETs on the API server with the admin certificate: a few milliseconds each, unlike kubectl."""

    def __init__(self, cluster: ClusterInfo) -> None:
        self.server = cluster.server
        self.context = ssl.create_default_context(cafile=str(cluster.ca_cert))
        self.context.load_cert_chain(str(cluster.admin_cert), str(cluster.admin_key))

    def config_map_version(self, name: str) -> str | None:
        url = f"{self.server}/api/v1/namespaces/{NAMESPACE}/configmaps/{name}"
        try:
            with urllib.request.urlopen(url, context=self.context, timeout=10) as response:
                document = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        version: str | None = (document.get("data") or {}).get("version")
        return version


async def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, source: str = ""
) -> tuple[int, float]:
    """One request on a new connection: its status (0: the connection was closed unanswered) and how long
    the answer took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0) if source else None)
    lines = [f"{method} {path} HTTP/1.1", "Host: moor", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        response = await reader.read()
    except ConnectionError:
        response = b""
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1]) if response else 0
    return status, time.monotonic() - started


def delivery(url: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"repository": url, "ref": "refs/heads/main"}).encode()
    signature = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Moor-Signature-256": signature}


class SlowClients:
    """Connections that dribble a request head one byte every 5 s and reconnect when closed, from a
    process of their own (so that they do not share this process's interpreter with the measurements)."""

    def __init__(self, count: int, ports: Sequence[int], reconnect_delay: float) -> None:
        self.count = count
        self.reconnect_delay = reconnect_delay
        self.ports = list(ports)
        self._opened = multiprocessing.RawValue("q", 0)
        self._closed = multiprocessing.RawValue("q", 0)
        self._held = multiprocessing.RawValue("q", 0)
        self.held_while_measured = 0
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def opened(self) -> int:
        return int(self._opened.value)

    @property
    def closed_by_server(self) -> int:
        return int(self._closed.value)

    @property
    def held(self) -> int:
        return int(self._held.value)

    def start(self) -> None:
        self._process = multiprocessing.get_context("fork").Process(target=self._run, daemon=True)
        self._process.start()
        time.sleep(self.count * 0.002 + 1)  # every client has opened its first connection

    def cpu(self) -> float:
        """CPU seconds the slow clients' process has used."""
        assert self._process is not None and self._process.pid is not None
        return process_cpu(self._process.pid)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(30)

    def _run(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.count + 256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(index) for index in range(self.count)))

    async def _client(self, index: int) -> None:
        port = self.ports[index % len(self.ports)]
        source = SLOW_SOURCES[index % len(SLOW_SOURCES)]
        await asyncio.sleep(index * 0.002)
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self._opened.value += 1
            self._held.value += 1
            try:
                writer.write(b"POST /hook HTTP/1.1\r\nHost: moor\r\n")
                while True:
                    try:
                        if not await asyncio.wait_for(reader.read(1024), 5):
                            break
                    except TimeoutError:
                        writer.write(b"X")
            except OSError:
                pass
            finally:
                self._held.value -= 1
                writer.close()
            self._closed.value += 1
            await asyncio.sleep(self.reconnect_delay)


@dataclass
class Phase:
    name: str
    delivery_latency: list[float] = field(default_factory=list)
    deliveries_per_second: list[float] = field(default_factory=list)
    scrape_latency: list[float] = field(default_factory=list)
    reconcile_latency: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    controller_cpu: list[float] = field(default_factory=list)
    """CPU seconds `moor run` used per second of the phase, one figure per round."""
    slow_clients_cpu: list[float] = field(default_factory=list)
    slow: SlowClients | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.cluster: ClusterInfo | None = None
        self.controller: subprocess.Popen[bytes] | None = None
        self.log = scratch / "moor-run.log"
        self.webhook_port = free_port()
        self.metrics_port = free_port()
        self.version = 0
        self.closed_connections = ""
        self.decoy: subprocess.Popen[bytes] | None = None
        self.decoy_port_number = 0

    def setup(self) -> None:
        progress("starting the control plane")
        self.cluster = start_cluster(self.scratch / "cluster")
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        run(*MOOR, "install", env=env)
        kubectl = str(binaries.locate("kubectl"))
        run(kubectl, "create", "namespace", NAMESPACE, env=env)
        run(kubectl, "create", "secret", "generic", "hooks", "-n", NAMESPACE, f"--from-literal=token={TOKEN}", env=env)
        self.repo = Repo.create(self.scratch / "git")
        self.repo.commit_version(0)
        argv = [*MOOR, "run", "--artifact-dir", str(self.scratch / "artifacts")]
        argv += ["--webhook-port", str(self.webhook_port), "--webhook-address", "127.0.0.1"]
        argv += ["--webhook-secret", f"{NAMESPACE}/hooks", "--metrics-port", str(self.metrics_port)]
        with self.log.open("ab") as log:
            self.controller = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait("moor run to start", lambda: "controller started" in self.log.read_text(), 60)
        if self.args.file_limit:
            limit = self.args.file_limit
            resource.prlimit(self.controller.pid, resource.RLIMIT_NOFILE, (limit, limit))
        spec = {"url": self.repo.url, "ref": {"branch": "main"}, "interval": "1h"}
        sync = {"sourceRef": {"kind": "GitRepository", "name": "app"}, "path": "./app", "interval": "1h"}
        documents = [
            {"apiVersion": "moor.dev/v1", "kind": "GitRepository", "metadata": {"name": "app"}, "spec": spec},
            {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app"}, "spec": sync},
        ]
        run(kubectl, "apply", "-n", NAMESPACE, "-f", "-", env=env, stdin="\n---\n".join(map(json.dumps, documents)))
        self.api = Api(self.cluster)
        self.wait("the first revision applied", lambda: self.api.config_map_version("settings") == "0", 120)

    def wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.02)

    async def measure(self, phase: Phase) -> None:
        assert self.controller is not None
        cpu_before, started_phase = process_cpu(self.controller.pid), time.monotonic()
        slow_before = phase.slow.cpu() if phase.slow else 0.0
        await self._measure(phase)
        took = time.monotonic() - started_phase
        phase.controller_cpu.append((process_cpu(self.controller.pid) - cpu_before) / took)
        phase.slow_clients_cpu.append((phase.slow.cpu() - slow_before) / took if phase.slow else 0.0)

    async def _measure(self, phase: Phase) -> None:
        body, headers = delivery("https://git.invalid/nobody/follows-this.git")
        for index in range(self.args.deliveries):
            source = DELIVERY_SOURCES[index % len(DELIVERY_SOURCES)]
            status, took = await request(self.webhook_port, "POST", "/hook", body, headers, source)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
            phase.delivery_latency.append(took)
        gate = asyncio.Semaphore(8)

        async def one(index: int) -> None:
            async with gate:
                source = DELIVERY_SOURCES[index % len(DELIVERY_SOURCES)]
                status, _ = await request(self.webhook_port, "POST", "/hook", body, headers, source)
                phase.statuses[status] = phase.statuses.get(status, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one(index) for index in range(self.args.deliveries)))
        phase.deliveries_per_second.append(self.args.deliveries / (time.monotonic() - started))
        for _ in range(50):
            status, took = await request(self.metrics_port, "GET", "/metrics")
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
            phase.scrape_latency.append(took)
        for _ in range(self.args.trials):
            self.version += 1
            await asyncio.to_thread(self.repo.commit_version, self.version)
            real_body, real_headers = delivery(self.repo.url)
            while True:  # a delivery that went unanswered is sent again, as a Git host's redelivery would
                status, _ = await request(self.webhook_port, "POST", "/hook", real_body, real_headers, "127.0.5.99")
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
                if status == 202:
                    break
            started = time.monotonic()
            await asyncio.to_thread(self.wait_for_version, str(self.version))
            phase.reconcile_latency.append(time.monotonic() - started)

    def wait_for_version(self, wanted: str) -> None:
        self.wait(f"version {wanted} applied", lambda: self.api.config_map_version("settings") == wanted, 120)

    def decoy_port(self) -> int:
        """A listener like moor run's in a process of its own, serving nothing: where `--flood-elsewhere`
        sends the slow clients, to tell the machine's share of a slowdown from the controller's."""
        if self.decoy is None:
            self.decoy_port_number = free_port()
            code = (
                "import asyncio, sys\nfrom aiohttp import web\nfrom moor.web.listener import serve_app\n"
                "async def main():\n"
                "    await serve_app(web.Application(), '127.0.0.1', int(sys.argv[1]), name='decoy')\n"
                "    await asyncio.Event().wait()\nasyncio.run(main())\n"
            )
            self.decoy = subprocess.Popen([sys.executable, "-c", code, str(self.decoy_port_number)])
            time.sleep(2)
        return self.decoy_port_number

    def read_closed_connections(self) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30) as response:
            text = response.read().decode()
        lines = [line for line in text.splitlines() if line.startswith("moor_http_connections_closed_total")]
        self.closed_connections = "\n".join(["connections closed by moor run's listeners:", *lines])

    def stop(self) -> None:
        if self.decoy is not None:
            self.decoy.terminate()
            self.decoy.wait(10)
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.controller.wait(30)
            if self.controller.poll() is None:
                self.controller.kill()
        if self.cluster is not None:
            stop_cluster(self.cluster.directory)


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listener_lines(log: Path, offset: int) -> int:
    """Bytes of the log past `offset` written about connections (not the one line each delivery gets)."""
    with log.open("rb") as file:
        file.seek(offset)
        return sum(len(line) for line in file if b"moor.web.listener" in line)


def summary(values: Sequence[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered) * 1000:.1f} / {p95 * 1000:.1f} / {ordered[-1] * 1000:.1f}"


def table(phases: Sequence[Phase], log_growth: int) -> str:
    rows = [
        ("", *(phase.name for phase in phases)),
        ("delivery ms p50 / p95 / max", *(summary(phase.delivery_latency) for phase in phases)),
        (
            "deliveries per second (8 in flight)",
            *(f"{statistics.median(phase.deliveries_per_second):.0f}" for phase in phases),
        ),
        ("/metrics ms p50 / p95 / max", *(summary(phase.scrape_latency) for phase in phases)),
        ("delivery answered to applied ms p50 / p95 / max", *(summary(phase.reconcile_latency) for phase in phases)),
        ("answers by status", *(json.dumps(phase.statuses, sort_keys=True) for phase in phases)),
        ("moor run CPU seconds per second", *(f"{statistics.median(phase.controller_cpu):.2f}" for phase in phases)),
        (
            "slow clients' CPU seconds per second",
            *(f"{statistics.median(phase.slow_clients_cpu):.2f}" for phase in phases),
        ),
    ]
    slow = [phase.slow for phase in phases]
    rows.append(
        (
            "slow connections opened / closed by server (last round)",
            *(f"{s.opened} / {s.closed_by_server}" if s else "-" for s in slow),
        )
    )
    rows.append(
        ("slow connections held when measured (last round)", *(str(s.held_while_measured) if s else "-" for s in slow))
    )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    growth = f"moor run's log grew by {log_growth} bytes about connections during the slow-clients phase"
    return "\n".join([*lines, growth])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=1000, help="slow clients (default 1,000)")
    parser.add_argument("--deliveries", type=int, default=300, help="deliveries per measurement (default 300)")
    parser.add_argument("--trials", type=int, default=5, help="commits per phase (default 5)")
    parser.add_argument(
        "--reconnect-delay", type=float, default=0.1, help="seconds a closed slow client waits to reconnect (0.1)"
    )
    parser.add_argument(
        "--flood-elsewhere", action="store_true", help="send the slow clients to a decoy listener, not to moor run"
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternating quiet and slow phases (default 1)")
    parser.add_argument("--file-limit", type=int, default=1024, help="moor run's open-file limit (0: unchanged)")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    scratch = Path(tempfile.mkdtemp(prefix="moor-bench-slow-"))
    bench = Bench(args, scratch)
    phases: list[Phase] = []
    growth = 0
    try:
        bench.setup()
        quiet, loaded = Phase("quiet"), Phase(f"{args.slow} slow clients")
        phases = [quiet, loaded]
        for round_ in range(1, args.rounds + 1):  # alternating, so that the machine's other work weighs on both
            progress(f"round {round_}: measuring quiet")
            asyncio.run(bench.measure(quiet))
            ports = [bench.webhook_port] * 3 + [bench.metrics_port]
            if args.flood_elsewhere:
                ports = [bench.decoy_port()]
            loaded.slow = SlowClients(args.slow, ports, args.reconnect_delay)
            progress(f"round {round_}: starting {args.slow} slow clients")
            before = bench.log.stat().st_size
            loaded.slow.start()
            time.sleep(15)  # past the header timeout: the slow clients have been closed and come back once
            loaded.slow.held_while_measured = loaded.slow.held
            progress(f"round {round_}: measuring {loaded.name} ({loaded.slow.held} held now)")
            asyncio.run(bench.measure(loaded))
            loaded.slow.stop()
            growth += listener_lines(bench.log, before)
        bench.read_closed_connections()
    except BenchError as error:
        progress(f"failed: {error}")
        return 1
    finally:
        bench.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(phases, growth))
    print(bench.closed_connections)
    return 0


if __name__ == "__main__":
    sys.exit(main())

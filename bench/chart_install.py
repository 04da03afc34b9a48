"""Chart install: Moor versus `helm upgrade --install`, a chart of ~200 objects from an HTTP chart repository.

Starts its own local control plane (`moor.devcluster`) and installs Moor's CRDs; writes a chart of
ConfigMaps, Deployments (1 replica; kwok makes their Pods Ready) and Services, packages it with the
real `helm package` and indexes it with `helm repo index` into a directory that a plain HTTP server
of this process serves on loopback (with ETags, as a static host does). Then, each time into a fresh
empty namespace, side by side in one run:

- `moor`: the controller runs in this process; the clock runs from creating the HelmRepository and
  the Sync (`chart: {name, version}`) until the Sync is Ready at that chart's digest; with the
  Sync's default `wait: true` (then a no-op reconcile of it through `moor.dev/reconcile`), and with
  `wait: false`.
- `helm`: `helm repo add` (fresh helm homes, not timed), then `helm upgrade --install --wait` of the
  same chart version from the same repository, and once without `--wait`.

Last, a new chart version published -> running: ~10 publications, each `helm package` + `helm repo
index`, then the `moor.dev/reconcile` annotation on the HelmRepository; from the index written until
the Sync is Ready at the new version. It prints tables; it is not a test.

Run from the repository root:  .venv/bin/python bench/chart_install.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from initial_sync import (
    NAME,
    Bench,
    BenchError,
    ControllerLog,
    Measurement,
    RequestTargets,
    Stopwatch,
    install_moor,
    machine,
    median_counts,
    moor_version,
    progress,
    ready_condition,
    settle,
    stop_controller,
    sync_ready_at,
    tear_down,
)
from moor import binaries
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.controller.runtime import Controller, ControllerOptions
from moor.devcluster import ClusterInfo, start_cluster
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, ObjectRef

CHART = "bench-app"
FIRST_VERSION = "1.0.0"
HELM_WAITS = {"watcher": "helm upgrade -i --wait", "legacy": "helm upgrade -i --wait=legacy"}
"""The measurement's name for each of helm's wait strategies."""
HELM_REPO = "bench"  # the name `helm repo add` gives the repository
LOOPBACK = "127.0.0.1"

# -- the chart ---------------------------------------------------------------------------------------

HELPERS = """{{- define "bench.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
"""

CONFIG_MAPS = """{{- range $i := until (int .Values.configMaps) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "settings-%03d" $i }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
data:
  LOG_LEVEL: info
  REGION: {{ printf "region-%d" (mod $i 4) | quote }}
  CACHE_SIZE: {{ mul 64 (add 1 (mod $i 8)) | quote }}
  app.properties: |
    {{- range $n := until 8 }}
    feature.{{ $n }}.enabled={{ if mod (add $i $n) 3 }}true{{ else }}false{{ end }}
    {{- end }}
{{- end }}
"""

DEPLOYMENTS = """{{- range $i := until (int .Values.deployments) }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ printf "web-%03d" $i }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
spec:
  replicas: {{ $.Values.replicas }}
  selector:
    matchLabels:
      app: {{ printf "web-%03d" $i }}
  template:
    metadata:
      labels:
        app: {{ printf "web-%03d" $i }}
      {{- if eq $i 0 }}
      annotations:
        bench.moor.dev/chart-version: {{ $.Chart.Version | quote }}
      {{- end }}
    spec:
      containers:
        - name: web
          image: {{ printf "nginx:%s" $.Values.imageTag }}
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: INDEX
              value: {{ $i | quote }}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 128Mi}
{{- end }}
"""

SERVICES = """{{- range $i := until (int .Values.services) }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ printf "web-%03d" $i }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    app: {{ printf "web-%03d" $i }}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
{{- end }}
"""


def kind_counts(objects: int) -> dict[str, int]:
    """40% ConfigMaps, 30% Deployments, 30% Services."""
    config_maps, deployments = round(objects * 0.4), round(objects * 0.3)
    return {"ConfigMap": config_maps, "Deployment": deployments, "Service": objects - config_maps - deployments}


def write_chart(root: Path, version: str, counts: dict[str, int], replicas: int) -> Path:
    """A chart directory whose objects carry the chart's version in a label (as most charts' do), and
    whose first Deployment's Pods carry it too, so every new version changes every object and rolls one
    Deployment."""
    chart = root / "chart-src" / f"{CHART}-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {CHART}\nversion: {version}\nappVersion: '1.27'\n")
    values = {
        "configMaps": counts["ConfigMap"],
        "deployments": counts["Deployment"],
        "services": counts["Service"],
        "replicas": replicas,
        "imageTag": "1.27",
    }
    (chart / "values.yaml").write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items()))
    templates = {
        "_helpers.tpl": HELPERS,
        "configmaps.yaml": CONFIG_MAPS,
        "deployments.yaml": DEPLOYMENTS,
        "services.yaml": SERVICES,
    }
    for name, text in templates.items():
        (chart / "templates" / name).write_text(text)
    return chart


# -- the chart repository ------------------------------------------------------------------------------


@dataclass
class ServedRequests:
    """What the chart server answered, by path and status (e.g. `/index.yaml 304`)."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, status: int) -> None:
        with self.lock:
            self.counts[f"{path} {status}"] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


class ChartRepository:
    """A Helm chart repository over plain HTTP on loopback (http.server in a thread); files carry a
    strong ETag of their content and If-None-Match gets 304, as on a static host. `publish` packages
    a chart with the real helm and re-indexes with `helm repo index --merge`."""

    def __init__(self, root: Path, helm: Path) -> None:
        self.directory = root / "charts"
        self.directory.mkdir()
        self.helm = helm
        self.env = helm_env(root / "helm-publisher")
        self.served = ServedRequests()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self.directory, self.served))
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="chart-repository", daemon=True)
        self._thread.start()

    def publish(self, chart: Path) -> str:
        """Packages and indexes `chart`; returns the sha256 of its .tgz (the digest in Moor's revision)."""
        run_helm(self.helm, ["package", str(chart), "--destination", str(self.directory)], self.env)
        index = self.directory / "index.yaml"
        merge = ["--merge", str(index)] if index.exists() else []
        run_helm(self.helm, ["repo", "index", str(self.directory), "--url", self.url, *merge], self.env)
        version = chart.name.removeprefix(f"{CHART}-")
        return hashlib.sha256((self.directory / f"{CHART}-{version}.tgz").read_bytes()).hexdigest()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler_for(directory: Path, served: ServedRequests) -> Callable[..., SimpleHTTPRequestHandler]:
    class ChartHandler(SimpleHTTPRequestHandler):
        server_version = "moor-bench-charts/1"
        _etag: str | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def send_head(self) -> Any:
            path = Path(self.translate_path(self.path))
            self._etag = f'"{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"' if path.is_file() else None
            wanted = [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]
            if self._etag is not None and self._etag in wanted:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.end_headers()
                return None
            return super().send_head()

        def end_headers(self) -> None:
            if self._etag is not None:
                self.send_header("ETag", self._etag)
            super().end_headers()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            served.add(self.path.partition("?")[0], int(code) if str(code).isdigit() else 0)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ChartHandler


def helm_env(home: Path) -> dict[str, str]:
    """Helm's homes under `home`, so every helm run starts with no repository, cache or content cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return env


def run_helm(helm: Path, args: Sequence[str], env: dict[str, str], timeout: float = 300) -> None:
    result = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise BenchError(f"`helm {' '.join(args)}` exited with {result.returncode}: {result.stderr.strip()[-600:]}")


# -- the benchmark ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartFixture:
    size: int
    """Objects the chart renders (what `Measurement.size` means here)."""
    counts: dict[str, int]
    version: str
    digest: str


@dataclass
class Publication:
    version: str
    index_seen: float
    """Seconds from `helm repo index` done to the controller's HelmRepository holding the new index."""
    running: float
    """Seconds from `helm repo index` done to the Sync Ready at the new version."""
    requests: dict[str, int]


ControllerParts = tuple[Controller, KubeClient, RequestTargets, "asyncio.Task[None]"]
"""What `ChartBench.controller` yields: the controller, its counted client, their requests' targets, its task."""


def helm_repository(namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "HelmRepository",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {"url": url, "interval": "1h"},
    }


def chart_sync(namespace: str, version: str, *, wait: bool | None, timeout: float) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sourceRef": {"kind": "HelmRepository", "name": NAME},
        "chart": {"name": CHART, "version": version},
        "interval": "1h",
        "retryInterval": "2s",
        "timeout": f"{int(timeout)}s",
        "prune": True,
    }
    if wait is not None:
        spec["wait"] = wait
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": spec,
    }


def index_revision(repository: dict[str, Any] | None) -> str:
    return str(((repository or {}).get("status") or {}).get("artifact", {}).get("revision", ""))


class ChartBench(Bench):
    """initial_sync's Bench (namespaces, bounded waits, the no-op reconcile) for a chart of a HelmRepository."""

    def __init__(
        self,
        args: argparse.Namespace,
        root: Path,
        cluster: ClusterInfo,
        results: list[Measurement],
        publications: list[Publication],
    ) -> None:
        super().__init__(args, root, cluster, results)
        self.helm = binaries.locate("helm")
        self.publications = publications
        self.repository: ChartRepository | None = None
        self.counts = kind_counts(args.objects)

    async def run(self) -> None:
        repository = ChartRepository(self.root, self.helm)
        self.repository = repository
        try:
            async with KubeClient(self.credentials) as client:
                self._api = KubeApi(client)
                chart = write_chart(self.root, FIRST_VERSION, self.counts, self.args.replicas)
                digest = await asyncio.to_thread(repository.publish, chart)
                fixture = ChartFixture(sum(self.counts.values()), self.counts, FIRST_VERSION, digest)
                counts = ", ".join(f"{count} {kind}" for kind, count in self.counts.items())
                progress(f"chart {CHART} {FIRST_VERSION}: {counts}; sha256 {digest[:12]}; served at {repository.url}")
                for repeat in range(1, self.args.repeat + 1):
                    steps = [
                        partial(self.helm_run, fixture, repeat, wait="watcher"),
                        partial(self.chart_moor_run, fixture, repeat, wait=None),
                    ]
                    if repeat % 2 == 0:  # alternate who goes first, so a drift in the machine's load favours neither
                        steps.reverse()
                    if self.args.helm_legacy_wait:
                        steps.append(partial(self.helm_run, fixture, repeat, wait="legacy"))
                    steps += [
                        partial(self.chart_moor_run, fixture, repeat, wait=False),
                        partial(self.helm_run, fixture, repeat, wait=None),
                    ]
                    for step in steps:
                        await step()
                if self.args.publications:
                    await self.publish_and_roll(fixture)
        finally:
            await asyncio.to_thread(repository.stop)

    # -- Moor --

    async def chart_moor_run(self, fixture: ChartFixture, repeat: int, *, wait: bool | None) -> None:
        """`wait: None` leaves the Sync's default (wait: true)."""
        namespace = await self.fresh_namespace(fixture.size, "moor")
        tool = "moor wait:false" if wait is False else "moor (wait, default)"
        async with self.controller(namespace) as (controller, client, targets, task):
            before, targets_before = Counter(client.requests), Counter(targets.counts)
            assert self.repository is not None
            served_before = self.repository.served.snapshot()

            def sync() -> dict[str, Any] | None:
                return controller.lookup("Sync", namespace, NAME)

            watch = Stopwatch(self.cluster.pids)
            await self.api.create(helm_repository(namespace, self.repository.url))
            await self.api.create(chart_sync(namespace, fixture.version, wait=wait, timeout=self.args.timeout))
            await self.until(
                f"Sync {namespace}/{NAME} Ready at {CHART}@{fixture.version}",
                lambda: sync_ready_at(sync(), fixture.digest),
                self.args.timeout + 60,
                task,
                lambda: ready_condition(sync()),
            )
            wall, cpu = watch.stop()
            await settle(client)
            served = self.repository.served.snapshot() - served_before
            notes = ["chart server answered " + " ".join(f"{path}={n}" for path, n in sorted(served.items()))]
            self.record(
                Measurement(
                    fixture.size,
                    tool,
                    repeat,
                    wall,
                    dict(Counter(client.requests) - before),
                    dict(targets.counts - targets_before),
                    cpu=cpu,
                    load=watch.load,
                    notes=notes,
                    timeline=targets.timeline(watch.started),
                )
            )
            if self.args.trace is not None:
                self.args.trace.mkdir(parents=True, exist_ok=True)
                name = f"moor-wait-{'false' if wait is False else 'default'}-{repeat}.requests"
                targets.write_trace(self.args.trace / name, watch.started)
            if wait is None:
                await self.noop_reconcile(fixture, repeat, namespace, controller, client, targets, task, None)  # type: ignore[arg-type]
        await self.clean(namespace)

    @contextlib.asynccontextmanager
    async def controller(self, namespace: str) -> AsyncIterator[ControllerParts]:
        """A started in-process controller with its own counted client; stopped on the way out."""
        client = KubeClient(self.credentials, max_connections=self.args.max_connections)
        targets = RequestTargets(client)
        options = ControllerOptions(artifact_dir=self.root / f"artifacts-{namespace}")
        controller = Controller(KubeApi(client), options)
        controller_log = ControllerLog()
        logging.getLogger("moor").addHandler(controller_log)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop), name="moor controller")
        try:
            await self.until("the controller to start", lambda: controller_log.started.is_set(), 60, task)
            yield controller, client, targets, task
            if controller_log.warnings:
                progress(f"  {len(controller_log.warnings)} controller warnings, first: {controller_log.warnings[0]}")
        finally:
            logging.getLogger("moor").removeHandler(controller_log)
            await stop_controller(task, stop)
            await client.close()

    # -- helm --

    async def helm_run(self, fixture: ChartFixture, repeat: int, *, wait: str | None) -> None:
        """`wait` is helm's strategy: `watcher` (what `--wait` alone means), `legacy`, or None (no --wait)."""
        namespace = await self.fresh_namespace(fixture.size, "helm")
        assert self.repository is not None
        env = {**helm_env(self.root / f"helm-{namespace}"), "KUBECONFIG": str(self.cluster.kubeconfig)}
        added = time.perf_counter()
        await asyncio.to_thread(run_helm, self.helm, ["repo", "add", HELM_REPO, self.repository.url], env)
        repo_add = time.perf_counter() - added
        argv = [
            "upgrade",
            "--install",
            NAME,
            f"{HELM_REPO}/{CHART}",
            "--version",
            fixture.version,
            "--namespace",
            namespace,
            "--timeout",
            f"{int(self.args.timeout)}s",
        ]
        if wait is not None:
            argv.append(f"--wait={wait}")
        watch = Stopwatch(self.cluster.pids)
        await asyncio.to_thread(run_helm, self.helm, argv, env, self.args.timeout + 60)
        wall, cpu = watch.stop()
        tool = "helm upgrade -i" if wait is None else HELM_WAITS[wait]
        notes = [f"helm repo add (not timed) took {repo_add:.2f}s"]
        self.record(Measurement(fixture.size, tool, repeat, wall, {}, cpu=cpu, load=watch.load, notes=notes))
        await self.clean(namespace)

    # -- a new version published -> running --

    async def publish_and_roll(self, fixture: ChartFixture) -> None:
        """One Sync of range `*`; each new version is published, the HelmRepository asked to reconcile,
        and the time until the Sync is Ready at it measured."""
        assert self.repository is not None
        namespace = await self.fresh_namespace(fixture.size, "moor-publish")
        progress(f"{self.args.publications} publications into {namespace}")
        async with self.controller(namespace) as (controller, client, _targets, task):

            def sync() -> dict[str, Any] | None:
                return controller.lookup("Sync", namespace, NAME)

            await self.api.create(helm_repository(namespace, self.repository.url))
            await self.api.create(chart_sync(namespace, "*", wait=None, timeout=self.args.timeout))
            await self.until(
                f"Sync {namespace}/{NAME} Ready at {CHART}@{fixture.version}",
                lambda: sync_ready_at(sync(), fixture.digest),
                self.args.timeout + 60,
                task,
                lambda: ready_condition(sync()),
            )
            await self.deployments_available(namespace)
            for number in range(1, self.args.publications + 1):
                await settle(client, quiet=1.0)
                await self.publish_one(f"1.1.{number}", namespace, controller, client, task)
        await self.clean(namespace)

    async def publish_one(
        self, version: str, namespace: str, controller: Controller, client: KubeClient, task: asyncio.Task[None]
    ) -> None:
        """Publishes `version`, asks the HelmRepository to reconcile, and times until the Sync runs it."""
        assert self.repository is not None
        chart = write_chart(self.root, version, self.counts, self.args.replicas)
        old_index = index_revision(controller.lookup("HelmRepository", namespace, NAME))
        before = Counter(client.requests)
        digest = await asyncio.to_thread(self.repository.publish, chart)
        published = time.perf_counter()
        stamp = datetime.now(UTC).isoformat()
        ref = ObjectRef("moor.dev", "v1", "HelmRepository", namespace, NAME)
        await self.api.merge_patch(ref, {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}})
        seen: dict[str, float] = {}

        def sync() -> dict[str, Any] | None:
            return controller.lookup("Sync", namespace, NAME)

        def rolled() -> bool:
            repository = controller.lookup("HelmRepository", namespace, NAME)
            if "index" not in seen and index_revision(repository) not in ("", old_index):
                seen["index"] = time.perf_counter() - published
            return sync_ready_at(sync(), digest)

        await self.until(
            f"Sync {namespace}/{NAME} Ready at {CHART}@{version}",
            rolled,
            self.args.timeout + 60,
            task,
            lambda: ready_condition(sync()),
        )
        running = time.perf_counter() - published
        await settle(client)
        requests = dict(Counter(client.requests) - before)
        index_seen = seen.get("index", float("nan"))
        self.publications.append(Publication(version, index_seen, running, requests))
        verbs = " ".join(f"{verb}={count}" for verb, count in sorted(requests.items()))
        progress(
            f"  {version}: index seen {index_seen:.2f}s, running {running:.2f}s, "
            f"{sum(requests.values())} requests ({verbs})"
        )


# -- output ----------------------------------------------------------------------------------------

RATIOS = (
    ("moor (wait, default)", "helm upgrade -i --wait"),
    ("moor (wait, default)", "helm upgrade -i --wait=legacy"),
    ("moor wait:false", "helm upgrade -i"),
)
"""Which of Moor's measurements is compared with which of helm's."""


def table(results: Sequence[Measurement]) -> str:
    groups: dict[str, list[Measurement]] = {}
    for measurement in results:
        groups.setdefault(measurement.tool, []).append(measurement)
    medians = {tool: statistics.median(m.wall for m in runs) for tool, runs in groups.items()}
    header = (
        f"{'tool':<30} {'wall s':>7} {'min-max':>13} {'requests':>8}  "
        f"{'CPU s client':>12} {'apiserver':>9} {'etcd':>5} {'load':>5}  by verb"
    )
    lines = [header, "-" * len(header)]
    for tool, runs in groups.items():
        spread = f"{min(m.wall for m in runs):.2f}-{max(m.wall for m in runs):.2f}" if len(runs) > 1 else ""
        requests = median_counts([m.requests for m in runs])

        def cpu(name: str, runs: list[Measurement] = runs) -> str:
            values = [m.cpu[name] for m in runs if name in m.cpu]
            return f"{statistics.median(values):.1f}" if values else ""

        total = str(sum(requests.values())) if requests else "n/a"
        verbs = " ".join(f"{verb}={count}" for verb, count in requests.items())
        load = statistics.median(m.load for m in runs)
        lines.append(
            f"{tool:<30} {medians[tool]:>7.2f} {spread:>13} {total:>8}  "
            f"{cpu('client'):>12} {cpu('kube-apiserver'):>9} {cpu('etcd'):>5} {load:>5.2f}  {verbs}"
        )
    lines += ["", "Moor/helm: ratio of the medians; paired: the median (range) of each repetition's own ratio"]
    by_repeat = {(m.tool, m.repeat): m.wall for m in results}
    for moor, helm in RATIOS:
        if moor in medians and helm in medians:
            pairs = [m.wall / by_repeat[(helm, m.repeat)] for m in groups[moor] if (helm, m.repeat) in by_repeat]
            paired = f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})" if pairs else ""
            ratio = medians[moor] / medians[helm]
            lines.append(f"  {moor} / {helm}: {ratio:.2f}x; paired {paired}")
    targets = [(tool, runs) for tool, runs in groups.items() if runs[0].targets]
    if targets:
        lines += ["", "Moor's requests by what they are for (median):"]
        for tool, runs in targets:
            counts = median_counts([m.targets for m in runs])
            lines.append(f"  {tool:<28} " + " ".join(f"{name}={count}" for name, count in counts.items()))
    return "\n".join(lines)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def publication_table(publications: Sequence[Publication]) -> str:
    lines = [f"{'new version -> running':<24} {'p50 s':>7} {'p95 s':>7} {'min-max':>13}"]
    for label, values in (
        ("index seen by Moor", [p.index_seen for p in publications]),
        ("Sync Ready at it", [p.running for p in publications]),
    ):
        spread = f"{min(values):.2f}-{max(values):.2f}"
        lines.append(f"{label:<24} {percentile(values, 0.5):>7.2f} {percentile(values, 0.95):>7.2f} {spread:>13}")
    requests = median_counts([p.requests for p in publications])
    verbs = " ".join(f"{verb}={count}" for verb, count in requests.items() if count)
    lines.append(f"requests per publication (median): {sum(requests.values())} ({verbs})")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--objects", type=int, default=200, help="objects the chart renders (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool (default 3; the table shows medians)")
    parser.add_argument(
        "--publications", type=int, default=10, help="new versions published for the p50/p95 (default 10; 0: none)"
    )
    parser.add_argument(
        "--helm-legacy-wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure `helm upgrade --install --wait=legacy` (default: yes)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each Deployment (default 1)")
    parser.add_argument(
        "--max-connections", type=int, default=32, help="Moor's connection pool size (default 32, as `moor run`)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of every wait, in seconds (default 600)")
    parser.add_argument("--trace", type=Path, help="write every request Moor sent, per run, into this directory")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (cluster logs, charts)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.objects < 3 or args.replicas < 0 or args.publications < 0 or args.timeout <= 0:
        parser.error("--repeat >= 1, --objects >= 3, --replicas >= 0, --publications >= 0, --timeout > 0")
    args.profile = None  # what initial_sync's no-op reconcile reads (it reads `trace` too)
    return args


def uptime() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    return f"load average {os.getloadavg()}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the cluster on SIGTERM too
    root = Path(tempfile.mkdtemp(prefix="moor-bench-chart-"))
    logging.basicConfig(
        filename=root / "moor.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    results: list[Measurement] = []
    publications: list[Publication] = []
    status = 0
    cluster_dir = root / "cluster"
    version = moor_version()
    started = uptime()
    progress(f"{version}; machine: {machine()}; {started}")
    progress(f"scratch directory {root}")
    try:
        cluster = start_cluster(cluster_dir, nodes=2)
        install_moor(cluster)
        asyncio.run(ChartBench(args, root, cluster, results, publications).run())
    except (BenchError, MoorError) as error:
        progress(f"benchmark failed: {error}")
        status = 1
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    finally:
        tear_down(cluster_dir, root, keep=bool(status or args.keep), logs=f"Moor's log: {root / 'moor.log'}")
    if results:
        print(f"\nA chart of {args.objects} objects from an HTTP chart repository; {version}; {machine()}")
        print(f"at the start: {started}; at the end: {uptime()}")
        print(table(results))
    if publications:
        print(f"\nA new chart version published -> running ({len(publications)} publications, one Sync of range *)")
        print(publication_table(publications))
    if args.json and (results or publications):
        payload = {"installs": [asdict(m) for m in results], "publications": [asdict(p) for p in publications]}
        args.json.write_text(json.dumps(payload, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Outage recovery: how soon `moor run` catches up once an unreachable or throttling API server answers again.

Starts its own local control plane (`moor.devcluster`), installs Moor's CRDs and puts the fault proxy of
the tests (tests/support/fault_proxy.py) between `moor run` and the API server: the controller runs with
KUBECONFIG set to the proxy's kubeconfig, while the benchmark watches the real API server with the admin's.
A GitRepository (interval 10s) follows a local bare repository (file://); Syncs (interval 30s, the default
retryInterval of 30s) apply a few ConfigMaps each. Each repetition of each scenario:

1. "unreachable": the proxy stops listening (connection refused) for 30 s;
2. "429": the proxy answers every new request 429 with `Retry-After: 1` for 60 s (open watch streams go on);
3. "429, watches cut": the same, and the open watch streams are ended as it starts, so every informer
   lists and watches again under the 429s;

and 2 s into the fault a commit changes one ConfigMap of every Sync. The clock starts when the fault ends
and stops when the benchmark's own watches see the GitRepository's artifact at the new commit, every
changed ConfigMap holding its new value, and every Sync Ready at the new commit. It also counts the
requests the proxy answered and the tries Moor counted (its /metrics) during the fault, the requests
until every Sync was Ready again, and checks that `moor run` never exited or started over and that
every Sync ends Ready at the latest commit. It prints a table; it is not a test. Run from the root:

    .venv/bin/python bench/outage_recovery.py [--repeat 3] [--syncs 3] [--config-maps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from initial_sync import (
    BenchError,
    install_moor,
    machine,
    moor_version,
    progress,
    ready_condition,
    sync_ready_at,
    tear_down,
)
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.devcluster import ClusterInfo, start_cluster
from steady_state import ControllerRun, Repo, Watch, artifact_revision, data_of, uptime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, as pytest's pythonpath
from tests.support.fault_proxy import FaultProxy

NAMESPACE = "outage"
SOURCE = "app"
SOURCE_INTERVAL = "10s"
SYNC_INTERVAL = "30s"
RETRY_INTERVAL = 30.0  # the Sync's default retryInterval: the target
COMMIT_INTO_FAULT = 2.0  # seconds after the fault starts that the commit is pushed
CHANGED_INDEX = 0  # the ConfigMap of each Sync that every commit changes


@dataclass(frozen=True)
class Scenario:
    key: str
    """Goes into the changed ConfigMaps' values."""
    name: str
    seconds: float
    throttled: bool
    """True: every request answered 429 (Retry-After: 1); False: connections refused."""
    drop_watches: bool = False
    """With `throttled`: also end the open watch streams, so the informers list again under the 429s."""


@dataclass
class Trial:
    scenario: str
    repetition: int
    fault: float
    """Seconds the fault lasted."""
    source: float
    """From the end of the fault to the GitRepository's artifact at the new commit (the benchmark's watch)."""
    applied: float
    """... to the last changed ConfigMap holding its new value in the API server."""
    ready: float
    """... to the last Sync Ready at the new commit."""
    answered_during: int
    """Requests the proxy answered during the fault (none when it refuses connections)."""
    tries_during: int
    """Tries Moor counted during the fault (moor_api_requests_total, refused connections included)."""
    tries_by_verb: dict[str, int]
    answered_after: int
    """Requests the proxy answered from the end of the fault until every Sync was Ready."""
    cpu_during: float
    """CPU seconds of `moor run` during the fault."""
    load: float


@dataclass
class Results:
    machine: str = ""
    version: str = ""
    uptime_start: str = ""
    uptime_end: str = ""
    pid: int = 0
    starts: int = 0
    """How many times `moor run` logged "controller started" (1: it never started over)."""
    alive: bool = False
    settled: bool = False
    """Every Sync Ready at the latest commit, and the GitRepository's artifact at it, at the end."""
    trials: list[Trial] = field(default_factory=list)


def config_maps(sync: str, count: int, label: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{sync}-{index:02d}"},
            "data": {"revision": label if index == CHANGED_INDEX else "fixed", "LOG_LEVEL": "info"},
        }
        for index in range(count)
    ]


def git_repository(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": SOURCE, "namespace": NAMESPACE},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": SOURCE_INTERVAL},
    }


def sync_object(name: str) -> dict[str, Any]:
    """A Sync of one directory, with the default retryInterval (30s)."""
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": SOURCE},
            "path": f"./{name}",
            "targetNamespace": NAMESPACE,
            "interval": SYNC_INTERVAL,
            "prune": True,
        },
    }


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, cluster: ClusterInfo, results: Results) -> None:
        self.args = args
        self.root = root
        self.cluster = cluster
        self.results = results
        self.syncs = [f"sync-{index}" for index in range(args.syncs)]
        self.repo = Repo(root, NAMESPACE)
        self.commit = ""
        self.proxy: FaultProxy | None = None
        self.controller: ControllerRun | None = None

    def stop(self) -> None:
        """Stops `moor run`, then the proxy; safe to call twice."""
        if self.controller is not None:
            self.controller.stop()
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self.proxy.stop()
            self.proxy = None

    async def run(self) -> None:
        self.proxy = FaultProxy(self.cluster, self.root).start()
        for sync in self.syncs:
            self.repo.put(sync, config_maps(sync, self.args.config_maps, "initial"))
        self.commit = await asyncio.to_thread(self.repo.commit, "initial")
        async with KubeClient(load_kubeconfig(self.cluster.kubeconfig)) as client:
            api = KubeApi(client)  # the benchmark's own client, straight to the API server
            await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
            await api.create(git_repository(self.repo.url))
            for sync in self.syncs:
                await api.create(sync_object(sync))
            sources = await Watch.start(api, "moor.dev/v1", "GitRepository", namespace=NAMESPACE)
            syncs = await Watch.start(api, "moor.dev/v1", "Sync", namespace=NAMESPACE)
            maps = await Watch.start(api, "v1", "ConfigMap", namespace=NAMESPACE)
            try:
                through_proxy = dataclasses.replace(self.cluster, kubeconfig=self.proxy.kubeconfig)
                self.controller = ControllerRun(through_proxy, self.root / "controller")
                self.controller.start()
                self.results.pid = self.controller.pid
                progress(f"started `moor run` through the proxy ({self.proxy.url}): pid {self.controller.pid}")
                await self.caught_up(sources, syncs, maps, "initial", time.perf_counter())
                progress(f"every Sync Ready at {self.commit[:12]}; load {os.getloadavg()[0]:.2f}")
                scenarios = [
                    Scenario("unreachable", f"unreachable {self.args.outage:g}s", self.args.outage, throttled=False),
                    Scenario("throttled", f"429 for {self.args.throttle:g}s", self.args.throttle, throttled=True),
                    Scenario(
                        "throttled-cut",
                        f"429 {self.args.throttle:g}s, cut watches",
                        self.args.throttle,
                        throttled=True,
                        drop_watches=True,
                    ),
                ]
                for repetition in range(1, self.args.repeat + 1):
                    for scenario in scenarios:
                        await asyncio.sleep(self.args.settle)
                        trial = await self.trial(scenario, repetition, sources, syncs, maps)
                        self.results.trials.append(trial)
                        progress(
                            f"  {scenario.name} #{repetition}: GitRepository {trial.source:.2f}s, ConfigMaps "
                            f"{trial.applied:.2f}s, Syncs Ready {trial.ready:.2f}s after the fault; during it "
                            f"{trial.answered_during} answered, {trial.tries_during} tries; "
                            f"{trial.answered_after} requests until Ready; load {trial.load:.2f}"
                        )
                await asyncio.sleep(self.args.settle)
                self.results.settled = all(
                    sync_ready_at(syncs.get(NAMESPACE, sync), self.commit) for sync in self.syncs
                ) and artifact_revision(sources.get(NAMESPACE, SOURCE)).endswith(self.commit)
                self.controller.check_alive()
                self.results.alive = True
                self.results.starts = self.controller.log().count("controller started")
            finally:
                for watch in (sources, syncs, maps):
                    await watch.stop()
                await asyncio.to_thread(self.stop)

    async def trial(self, scenario: Scenario, repetition: int, sources: Watch, syncs: Watch, maps: Watch) -> Trial:
        assert self.proxy is not None and self.controller is not None
        label = f"{scenario.key}-{repetition}"
        load = os.getloadavg()[0]
        tries_before = await asyncio.to_thread(self.controller.requests)
        cpu_before = sum(self.controller.cpu())
        logged_before = len(self.proxy.log)
        started = time.perf_counter()
        if scenario.throttled:
            self.proxy.respond(429, r".*", headers={"Retry-After": "1"})
            if scenario.drop_watches:
                self.proxy.drop_watches()
        else:
            self.proxy.refuse()
        await asyncio.sleep(COMMIT_INTO_FAULT)
        for sync in self.syncs:
            self.repo.change("ConfigMap", f"{sync}-{CHANGED_INDEX:02d}", lambda document: set_revision(document, label))
        self.commit = await asyncio.to_thread(self.repo.commit, label)
        await asyncio.sleep(max(0.0, started + scenario.seconds - time.perf_counter()))
        if scenario.throttled:
            self.proxy.clear()
        else:
            self.proxy.accept()
        ended = time.perf_counter()
        logged_at_end = len(self.proxy.log)
        cpu_during = sum(self.controller.cpu()) - cpu_before
        tries_during = (await asyncio.to_thread(self.controller.requests)) - tries_before
        source, applied, ready = await self.caught_up(sources, syncs, maps, label, ended)
        return Trial(
            scenario=scenario.name,
            repetition=repetition,
            fault=ended - started,
            source=source,
            applied=applied,
            ready=ready,
            answered_during=logged_at_end - logged_before,
            tries_during=tries_during.total(),
            tries_by_verb=dict(tries_during),
            answered_after=len(self.proxy.log) - logged_at_end,
            cpu_during=cpu_during,
            load=load,
        )

    async def caught_up(
        self, sources: Watch, syncs: Watch, maps: Watch, label: str, since: float
    ) -> tuple[float, float, float]:
        """Waits until the source, every changed ConfigMap and every Sync are at `self.commit`; returns
        the seconds from `since` until the watch saw the last of each (the GitRepository, ConfigMaps, Syncs)."""
        assert self.controller is not None
        commit, timeout = self.commit, self.args.timeout
        source = first_seen(
            sources,
            f"GitRepository {SOURCE} at {commit[:12]}",
            {(NAMESPACE, SOURCE): lambda obj: artifact_revision(obj).endswith(commit)},
            timeout,
            self.controller.check_alive,
        )
        applied = first_seen(
            maps,
            f"ConfigMaps with revision={label}",
            {
                (NAMESPACE, f"{sync}-{CHANGED_INDEX:02d}"): lambda obj: data_of(obj).get("revision") == label
                for sync in self.syncs
            },
            timeout,
            self.controller.check_alive,
        )
        ready = first_seen(
            syncs,
            f"Syncs Ready at {commit[:12]}",
            {(NAMESPACE, sync): lambda obj: sync_ready_at(obj, commit) for sync in self.syncs},
            timeout,
            self.controller.check_alive,
            last_seen=lambda: "; ".join(f"{s}: {ready_condition(syncs.get(NAMESPACE, s))}" for s in self.syncs),
        )
        seen = await asyncio.gather(source, applied, ready)
        return seen[0] - since, seen[1] - since, seen[2] - since


def set_revision(document: dict[str, Any], label: str) -> None:
    document["data"]["revision"] = label


async def first_seen(
    watch: Watch,
    what: str,
    conditions: dict[tuple[str, str], Callable[[Any], bool]],
    timeout: float,
    alive: Callable[[], None],
    last_seen: Callable[[], str] | None = None,
) -> float:
    """Waits until every object's condition has held; returns when the watch saw the last of them hold
    (time.perf_counter() of the event that made it hold, not of any later event of the same object)."""
    held: dict[tuple[str, str], float] = {}

    def check() -> bool:
        for key, condition in conditions.items():
            if key not in held and condition(watch.get(*key)):
                held[key] = watch.arrived.get(key, watch.last_arrival)
        return len(held) == len(conditions)

    await watch.until(what, check, timeout, last_seen=last_seen, alive=alive)
    return max(held.values())


# -- output ----------------------------------------------------------------------------------------------

MEASURES: tuple[tuple[str, str, str], ...] = (
    ("fault", "fault lasted (s)", ".1f"),
    ("source", "to GitRepository at the new commit (s)", ".2f"),
    ("applied", "to every changed ConfigMap live (s)", ".2f"),
    ("ready", "to every Sync Ready at the new commit (s)", ".2f"),
    ("answered_during", "requests answered by the proxy in the fault", "d"),
    ("tries_during", "tries Moor counted in the fault", "d"),
    ("answered_after", "requests from the end of the fault to Ready", "d"),
    ("cpu_during", "CPU of `moor run` in the fault (s)", ".2f"),
    ("load", "1-minute load average at the start", ".2f"),
)


def cell(value: float, spec: str) -> str:
    return format(round(value) if spec == "d" else value, spec)


def table(results: Results) -> str:
    lines = [f"{'scenario':<22} {'measure':<46} {'min':>8} {'median':>8} {'max':>8}"]
    for scenario in dict.fromkeys(trial.scenario for trial in results.trials):
        trials = [trial for trial in results.trials if trial.scenario == scenario]
        for index, (name, label, spec) in enumerate(MEASURES):
            values = [float(getattr(trial, name)) for trial in trials]
            figures = (min(values), statistics.median(values), max(values))
            lines.append(
                f"{scenario if index == 0 else '':<22} {label:<46} " + " ".join(f"{cell(v, spec):>8}" for v in figures)
            )
        verbs = sorted({verb for trial in trials for verb in trial.tries_by_verb})
        by_verb = " ".join(
            f"{verb}={statistics.median(t.tries_by_verb.get(verb, 0) for t in trials):g}" for verb in verbs
        )
        lines.append(f"{'':<22} tries in the fault by verb (median): {by_verb or 'none'}")
        worst = max(trial.ready for trial in trials)
        lines.append(
            f"{'':<22} {'target: Ready within one retryInterval (30s)':<46} "
            f"{'met' if worst <= RETRY_INTERVAL else 'NOT met':>26}"
        )
    lines.append("")
    lines.append(
        f"`moor run` pid {results.pid}: {'still running' if results.alive else 'EXITED'}, "
        f'"controller started" logged {results.starts} time(s) (1: no restart)'
    )
    lines.append(
        "at the end: every Sync Ready at the latest commit and the GitRepository at it: "
        + ("yes" if results.settled else "NO (something is stuck)")
    )
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each scenario (3)")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the API server is unreachable (30)")
    parser.add_argument("--throttle", type=float, default=60.0, help="seconds of 429 answers (60)")
    parser.add_argument("--syncs", type=int, default=3, help="Syncs, one directory of the repository each (3)")
    parser.add_argument("--config-maps", type=int, default=5, help="ConfigMaps per Sync (5)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between a recovery and the next fault (5)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of every wait, seconds (300)")
    parser.add_argument("--json", type=Path, help="also write every trial to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, repository)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.syncs < 1 or args.config_maps < 1:
        parser.error("--repeat, --syncs and --config-maps must be at least 1")
    if min(args.outage, args.throttle) <= COMMIT_INTO_FAULT:
        parser.error(f"--outage and --throttle must be longer than {COMMIT_INTO_FAULT:g}s (the commit goes in then)")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so `finally` stops the controller, the proxy and the cluster
    root = Path(tempfile.mkdtemp(prefix="moor-outage-"))
    results = Results(machine=machine(), version=moor_version(), uptime_start=uptime())
    progress(f"{results.version}; machine: {results.machine}\nuptime: {results.uptime_start}")
    cluster_dir = root / "cluster"
    progress(f"scratch directory {root}; starting a control plane")
    bench: Bench | None = None
    status = 0
    try:
        cluster = start_cluster(cluster_dir)
        install_moor(cluster)
        bench = Bench(args, root, cluster, results)
        asyncio.run(bench.run())
    except BenchError as error:
        progress(f"benchmark failed: {error}")
        status = 1
    except KeyboardInterrupt:
        progress("interrupted")
        status = 130
    except Exception:
        progress(f"benchmark failed:\n{traceback.format_exc()}")
        status = 1
    finally:
        if bench is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping must not be interrupted
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            bench.stop()
        tear_down(cluster_dir, root, keep=bool(status or args.keep), logs=f"moor run's log: {root}/controller")
    results.uptime_end = uptime()
    if results.trials:
        print(f"\nOutage recovery; {results.version}; {results.machine}")
        print(f"uptime at start: {results.uptime_start}\nuptime at end:   {results.uptime_end}")
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps(asdict(results), indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())

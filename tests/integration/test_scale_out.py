"""Several `moor run --replicas` share the work: each object reconciled by exactly one live member, a killed
member's objects taken over within a Lease, a paused member writing nothing when it wakes, about 1/N of
the objects moving when members come and go, and a rolling restart losing no revision.

The members run on a control plane of the module's own (no other controller beside them), with a short
Lease so that the tests take seconds, not minutes; outcomes are asserted with generous deadlines.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor import binaries
from moor.bootstrap.install import installation_objects
from moor.cluster.api import KubeApi
from moor.cluster.cache import LiveCache, LiveChange
from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.devcluster import ClusterInfo
from moor.objects import SYNC_LABEL, ObjectRef
from moor.sharding.assignment import BUCKET_LABEL, assign, capacity
from moor.sharding.shard import HANDOVER_GRACE, OWNER_ANNOTATION, Shard, bucket_selector
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, config_map, free_port, manifest, metric_value, moor_cli

LEASE = 6
SOURCES = 3
SYNCS = 15
DEADLINE = 90.0


@pytest.fixture(scope="module")
def kubectl(private_cluster: ClusterInfo) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


class Members:
    """The `moor run --replicas` processes of one test, by identity."""

    def __init__(self, kubeconfig: Path, directory: Path) -> None:
        self.kubeconfig = kubeconfig
        self.directory = directory
        self.processes: dict[str, ControllerProcess] = {}

    def start(self, *identities: str) -> None:
        for identity in identities:
            port = free_port()
            process = self.processes.get(identity) or ControllerProcess(
                self.kubeconfig,
                self.directory / identity,
                "--replicas",
                "--identity",
                identity,
                "--lease-duration",
                str(LEASE),
                "--metrics-port",
                str(port),
            )
            process.metrics_url = process.metrics_url or f"http://127.0.0.1:{port}/metrics"
            process.start()
            self.processes[identity] = process

    def stop(self, identity: str) -> None:
        assert self.processes.pop(identity).stop() == 0

    def kill(self, identity: str) -> None:
        self.processes.pop(identity).kill()

    def signal(self, identity: str, signum: signal.Signals) -> None:
        process = self.processes[identity].process
        assert process is not None
        process.send_signal(signum)

    def wait_agreed(self) -> None:
        """Until every member names the same members (this group), and the hand-over after it is over."""
        wanted = f"members now: {', '.join(sorted(self.processes))}"

        def agreed() -> bool:
            for process in self.processes.values():
                said = [line for line in process.log().splitlines() if "members now:" in line]
                if not said or not said[-1].endswith(wanted):
                    return False
            return True

        wait_for("the members to agree on who they are", agreed, timeout=60)
        time.sleep(HANDOVER_GRACE + 1)

    @property
    def live(self) -> frozenset[str]:
        return frozenset(self.processes)

    def stop_all(self) -> None:
        for identity in list(self.processes):
            self.signal(identity, signal.SIGCONT)
            self.stop(identity)


class Workload:
    """SOURCES GitRepositories and SYNCS Syncs (one ConfigMap each) in a namespace of their own."""

    def __init__(self, kubectl: Kubectl, repo: GitWorkspace, namespace: str) -> None:
        self.kubectl = kubectl
        self.repo = repo
        self.namespace = namespace
        self.version = 0

    def create(self) -> None:
        self.kubectl("create", "namespace", self.namespace)
        self.commit()
        documents: list[dict[str, Any]] = []
        for index in range(SOURCES):
            spec = {"url": self.repo.url, "ref": {"branch": "main"}, "interval": "2s"}
            documents.append(self._object("GitRepository", f"source-{index}", spec))
        for index in range(SYNCS):
            spec = {
                "sourceRef": {"kind": "GitRepository", "name": f"source-{index % SOURCES}"},
                "path": f"./app-{index}",
                "interval": "1h",
                "retryInterval": "2s",
                "timeout": "30s",
            }
            documents.append(self._object("Sync", f"app-{index}", spec))
        self.kubectl("apply", "-f", "-", input=manifest(*documents))

    def _object(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        metadata = {"name": name, "namespace": self.namespace}
        return {"apiVersion": "moor.dev/v1", "kind": kind, "metadata": metadata, "spec": spec}

    def commit(self) -> str:
        """A new version of every ConfigMap, pushed; returns the commit."""
        self.version += 1
        for index in range(SYNCS):
            self.repo.write(f"app-{index}/cm.yaml", manifest(config_map(f"cm-{index}", {"v": str(self.version)})))
        commit = self.repo.commit(f"version {self.version}")
        self.repo.push()
        return commit

    def objects(self, kind: str) -> list[dict[str, Any]]:
        result = self.kubectl("get", kind, "-n", self.namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
        return items

    def owners(self) -> dict[str, str]:
        """`Kind/name` -> the member written on it."""
        return {
            f"{obj['kind']}/{obj['metadata']['name']}": (obj["metadata"].get("annotations") or {}).get(
                OWNER_ANNOTATION, ""
            )
            for kind in ("gitrepositories.moor.dev", "syncs.moor.dev")
            for obj in self.objects(kind)
        }

    def expected_owners(self, members: frozenset[str]) -> dict[str, str]:
        """What the table of `members` says, as every member computes it."""
        table, shard = assign(members), Shard("")
        names = [("GitRepository", f"source-{i}") for i in range(SOURCES)] + [
            ("Sync", f"app-{i}") for i in range(SYNCS)
        ]
        return {f"{kind}/{name}": str(table.owner_of(shard.bucket(kind, self.namespace, name))) for kind, name in names}

    def converged(self, members: frozenset[str]) -> bool:
        """Every ConfigMap at the current version, and every object marked with its owner by `members`' table."""
        versions = {name: version for name, (_, version) in self.config_maps().items()}
        current = all(versions.get(f"cm-{index}") == str(self.version) for index in range(SYNCS))
        return current and self.owners() == self.expected_owners(members)

    def config_maps(self) -> dict[str, tuple[str, str]]:
        """name -> (resourceVersion, data.v)."""
        return {
            obj["metadata"]["name"]: (obj["metadata"]["resourceVersion"], obj["data"]["v"])
            for obj in self.objects("configmaps")
            if obj["metadata"]["name"].startswith("cm-")
        }


def leads(log: str) -> bool:
    """Whether a member's last word on leading says it leads."""
    said = [line for line in log.splitlines() if "this member leads" in line or "this member no longer leads" in line]
    return bool(said) and "no longer" not in said[-1]


def wait_for(what: str, check: Any, timeout: float = DEADLINE) -> float:
    """Polls `check()` until true; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.fixture
def members(private_cluster: ClusterInfo, tmp_path: Path) -> Iterator[Members]:
    group = Members(private_cluster.kubeconfig, tmp_path / "members")
    yield group
    group.stop_all()


@pytest.fixture
def workload(request: pytest.FixtureRequest, kubectl: Kubectl, git_repo: GitWorkspace) -> Iterator[Workload]:
    load = Workload(kubectl, git_repo, namespace_name(request.node.name))
    yield load
    kubectl("delete", "namespace", load.namespace, "--wait=false", check=False)


def test_three_members_share_the_objects_each_reconciled_by_its_owner_alone(
    members: Members, workload: Workload, private_cluster: ClusterInfo
) -> None:
    members.start("red", "green", "blue")
    members.wait_agreed()
    workload.create()
    wait_for("every object reconciled by its owner", lambda: workload.converged(members.live))
    owners = workload.owners()
    assert set(owners.values()) == {"red", "green", "blue"}
    table = assign(members.live)
    assert max(table.loads().values()) <= capacity(3)

    # Each Sync was applied by its owner and by no other member.
    def appliers(index: int) -> set[str]:
        applied = f"Sync.moor.dev {workload.namespace}/app-{index}: revision"
        return {identity for identity, process in members.processes.items() if applied in process.log()}

    wait_for("every Sync's result reported", lambda: all(appliers(index) for index in range(SYNCS)))
    for index in range(SYNCS):
        assert appliers(index) == {owners[f"Sync/app-{index}"]}

    # The singletons (the delivery metrics) run on one member: the owner of bucket 0.
    def leaders() -> list[str]:
        return [identity for identity, process in members.processes.items() if leads(process.log())]

    wait_for("the owner of bucket 0 to lead alone", lambda: leaders() == [table.owner_of(0)], timeout=30)
    # Every member counts the objects of each by the same table (this namespace's are all there are).
    with urllib.request.urlopen(members.processes["red"].metrics_url, timeout=10) as answer:
        metrics = answer.read().decode()
    for member in ("red", "green", "blue"):
        owned = sum(1 for owner in owners.values() if owner == member)
        assert metric_value(metrics, "moor_shard_objects", member=member) == owned
    listing = moor_cli(private_cluster.kubeconfig, "get", "syncs", "-n", workload.namespace)
    assert listing.returncode == 0
    assert "OWNER" in listing.stdout and "green" in listing.stdout


def test_a_killed_members_objects_are_reconciled_by_the_others_within_a_lease(
    members: Members, workload: Workload
) -> None:
    members.start("red", "green", "blue")
    members.wait_agreed()
    workload.create()
    wait_for("every object reconciled by its owner", lambda: workload.converged(members.live))
    members.kill("green")
    workload.commit()
    took = wait_for("the survivors to reconcile everything", lambda: workload.converged(members.live))
    print(f"kill -9 of a member -> its objects reconciled by the others: {took:.1f}s (Lease {LEASE}s)")
    assert "green" not in set(workload.owners().values())


def test_a_member_paused_past_its_lease_writes_nothing_when_it_wakes(members: Members, workload: Workload) -> None:
    members.start("red", "green", "blue")
    members.wait_agreed()
    workload.create()
    wait_for("every object reconciled by its owner", lambda: workload.converged(members.live))
    paused = members.processes["blue"]
    members.signal("blue", signal.SIGSTOP)
    workload.commit()
    others = frozenset({"red", "green"})
    wait_for("the others to take over and reconcile the new version", lambda: workload.converged(others))
    before = workload.config_maps()
    members.signal("blue", signal.SIGCONT)
    wait_for("the paused member to notice its Lease lapsed", lambda: "lapsed" in paused.log())
    time.sleep(LEASE)
    # Nothing it had queued before the pause was written: every ConfigMap is as the others left it.
    assert workload.config_maps() == before
    wait_for("the member to rejoin and take its objects back", lambda: workload.converged(members.live))
    assert workload.config_maps() == before  # taking them back found nothing to change


def test_three_to_four_to_two_members_move_about_one_in_n_objects(members: Members, workload: Workload) -> None:
    members.start("red", "green", "blue")
    members.wait_agreed()
    workload.create()
    wait_for("every object reconciled by its owner", lambda: workload.converged(members.live))
    moved = []
    for change in ("join", "leave"):
        before = workload.owners()
        if change == "join":
            members.start("amber")
        else:
            members.stop("red")
            members.stop("green")
        wait_for(f"the objects to settle after the {change}", lambda: workload.converged(members.live))
        after = workload.owners()
        moved.append(sum(1 for name, owner in after.items() if before[name] != owner))
        assert moved[-1] == sum(
            1 for name, owner in workload.expected_owners(members.live).items() if before[name] != owner
        )
    total = SOURCES + SYNCS
    print(f"3 -> 4 members moved {moved[0]} of {total} objects; 4 -> 2 moved {moved[1]}")
    assert moved[0] < total / 2  # about a quarter
    assert moved[1] < total  # about half


def test_a_rolling_restart_under_commits_loses_no_revision(members: Members, workload: Workload) -> None:
    members.start("red", "green", "blue")
    members.wait_agreed()
    workload.create()
    wait_for("every object reconciled by its owner", lambda: workload.converged(members.live))
    stop = threading.Event()
    lock = threading.Lock()

    def keep_committing() -> None:
        while not stop.wait(3.0):
            with lock:
                workload.commit()

    committer = threading.Thread(target=keep_committing)
    committer.start()
    try:
        for identity in ("red", "green", "blue"):
            members.stop(identity)
            members.start(identity)
            time.sleep(2)
    finally:
        stop.set()
        committer.join()
    wait_for("every Sync at the last commit", lambda: workload.converged(members.live))
    assert workload.version >= 3


def test_the_install_with_three_replicas_passes_the_api_servers_dry_run(kubectl: Kubectl) -> None:
    objects = installation_objects(with_controller=True, replicas=3)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects))
    assert "poddisruptionbudget.policy/moor" in result.stdout
    [deployment] = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert "--replicas" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [role] = [obj for obj in objects if obj["kind"] == "Role" and obj["metadata"]["name"] == "moor-leader-election"]
    assert {"create", "update", "delete", "watch"} <= set(role["rules"][0]["verbs"])


async def test_a_members_live_cache_follows_the_buckets_of_its_shard(
    private_cluster: ClusterInfo, kubectl: Kubectl
) -> None:
    namespace = namespace_name("live-cache-buckets")
    await asyncio.to_thread(kubectl, "create", "namespace", namespace)
    for bucket in (1, 2):
        labels = {SYNC_LABEL: f"{namespace}.app-{bucket}", BUCKET_LABEL: str(bucket)}
        document = config_map(f"in-bucket-{bucket}", {"v": "1"}, namespace=namespace, labels=labels)
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=manifest(document))
    async with KubeClient(load_kubeconfig(private_cluster.kubeconfig)) as client:
        api = KubeApi(client)
        cache = LiveCache(api, label_selector=bucket_selector([1]))
        changes: list[LiveChange] = []
        cache.subscribe(changes.append)
        config_maps = await api.discovery.resolve("v1", "ConfigMap")
        assert config_maps is not None
        await cache.watch_kinds([config_maps])
        first, second = (ObjectRef("", "v1", "ConfigMap", namespace, f"in-bucket-{bucket}") for bucket in (1, 2))
        assert cache.get(first) is not None
        assert cache.get(second) is None
        await cache.reselect(bucket_selector([2]))  # the shard moved: bucket 1 lost, bucket 2 gained
        await cache.wait_synced("", "ConfigMap")
        assert cache.get(first) is None
        assert cache.get(second) is not None
        assert any(
            change.type == "DELETED" and change.object["metadata"]["name"] == "in-bucket-1" for change in changes
        )
        await cache.reselect(bucket_selector([]))
        await cache.wait_synced("", "ConfigMap")
        assert cache.object_count() == 0
        await cache.stop()
    await asyncio.to_thread(kubectl, "delete", "namespace", namespace, "--wait=false")

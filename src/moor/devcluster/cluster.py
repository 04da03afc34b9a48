"""Start, stop and inspect one local control plane living in a directory.

`up` reads top to bottom: refuse a directory whose cluster still runs, find the programs, mint a
fresh PKI, start etcd, then the API server, then the controller manager, scheduler and kwok, create
the fake nodes, and return once every component answers and every node is Ready. Whatever fails on
the way stops everything started so far.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from moor.binaries import BinaryNotFound, locate, tools_bin_dir
from moor.devcluster import processes
from moor.devcluster.api import LoopbackAPI
from moor.devcluster.components import (
    APISERVER,
    COMPONENTS,
    CONTROLLER_MANAGER,
    ETCD,
    KWOK,
    LOOPBACK,
    SCHEDULER,
    SERVICE_IP,
    ComponentPlan,
    check_overrides,
    component_environment,
    inherited_environment,
    pick_ports,
    plan_components,
)
from moor.devcluster.errors import (
    ClusterAlreadyRunning,
    ClusterError,
    ComponentCrashed,
    ComponentNotReady,
    ComponentWontStop,
    MissingBinary,
    PortInUse,
    UnknownComponent,
)
from moor.devcluster.kubeconfig import write_kubeconfig
from moor.devcluster.layout import ClusterLayout
from moor.devcluster.nodes import fake_node, node_names, unready_nodes
from moor.devcluster.pki import ClusterPKI, cert_files, mint_cluster_pki
from moor.devcluster.processes import RunningProcess
from moor.devcluster.state import ClusterState, load_state, save_state

DEFAULT_TIMEOUT = 180.0
DEFAULT_NODES = 2
STOP_GRACE = 10.0
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class ClusterInfo:
    """A running local cluster: how to reach it and which processes are it."""

    directory: Path
    kubeconfig: Path
    server: str
    ca_cert: Path
    admin_cert: Path
    admin_key: Path
    pids: dict[str, int]
    ports: dict[str, int]
    nodes: tuple[str, ...]
    started_at: datetime


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    running: bool
    log: Path


@dataclass(frozen=True)
class ClusterStatus:
    """What `moor cluster status` shows: each recorded component and whether it still runs."""

    directory: Path
    server: str | None
    ready: bool
    components: tuple[ComponentStatus, ...]

    @property
    def running(self) -> bool:
        """True only if `up` finished and every component of the control plane is still running."""
        names = {component.name for component in self.components if component.running}
        return self.ready and names == set(COMPONENTS)


def start_cluster(
    directory: Path,
    *,
    ports: Mapping[str, int] | None = None,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    nodes: int = DEFAULT_NODES,
    timeout: float = DEFAULT_TIMEOUT,
) -> ClusterInfo:
    """Starts a fresh control plane in `directory` and returns once it is ready to use.

    `ports` fixes some loopback ports (names in `components.PORTS`; the rest are picked free) and
    `extra_args` appends flags to a component's command line, e.g. `{"kube-apiserver": ["--v=4"]}`.
    """
    layout = ClusterLayout(Path(directory).resolve())
    _refuse_running_cluster(layout)
    check_overrides(ports, extra_args)
    binaries = _locate_binaries()
    layout.reset()
    pki = mint_cluster_pki(layout.pki, service_ip=SERVICE_IP)
    chosen_ports = pick_ports(ports)
    server = f"https://{LOOPBACK}:{chosen_ports[APISERVER]}"
    _write_kubeconfigs(layout, pki, server)
    plans = plan_components(binaries, layout, pki, chosen_ports, extra_args)
    startup = _Startup(
        layout,
        ClusterState(
            server=server,
            kubeconfig=layout.kubeconfig,
            ca_cert=pki.ca.cert,
            started_at=datetime.now(UTC),
            ports=chosen_ports,
            nodes=node_names(nodes),
        ),
        deadline=time.monotonic() + timeout,
    )
    try:
        _bring_up(startup, plans, pki)
    except BaseException:  # also Ctrl-C: never leave half a cluster behind
        startup.abort()
        raise
    startup.state = replace(startup.state, ready=True)
    startup.save()
    return _info(layout, startup.state)


def stop_cluster(directory: Path, *, grace: float = STOP_GRACE) -> list[str]:
    """Stops every process `up` started in `directory` (and nothing else); returns their names."""
    layout = ClusterLayout(Path(directory).resolve())
    state = load_state(layout.state_file)
    if state is None:
        return []
    running = [process for process in reversed(state.processes) if processes.is_running(process)]
    _stop_in_order(running, grace)
    layout.state_file.unlink(missing_ok=True)
    return [process.name for process in running]


def restart_component(directory: Path, name: str, *, grace: float = STOP_GRACE) -> None:
    """Stops one running component and starts it again with the same command line.

    For tests of what survives a restart (e.g. watches across an API server restart); the caller
    waits for the component to be ready again.
    """
    layout = ClusterLayout(Path(directory).resolve())
    state = load_state(layout.state_file)
    if state is None:
        raise ClusterError(f"no cluster is running in {layout.directory}")
    matching = [p for p in state.processes if p.name == name]
    if not matching:
        known = tuple(p.name for p in state.processes)
        raise UnknownComponent("restart", {name}, known)
    process = matching[0]
    _stop_in_order([process], grace)
    restarted = processes.spawn(name, process.argv, layout.log(name), inherited_environment())
    others = tuple(restarted if p.name == name else p for p in state.processes)
    save_state(layout.state_file, replace(state, processes=others))


def _stop_in_order(running: Sequence[RunningProcess], grace: float) -> None:
    """Everything that talks to etcd first, then etcd, so nothing logs errors about a vanished store."""
    for wave in ([p for p in running if p.name != ETCD], [p for p in running if p.name == ETCD]):
        survivors = processes.stop(wave, grace=grace)
        if survivors:
            raise ComponentWontStop(survivors[0].name, survivors[0].pid)


def cluster_status(directory: Path) -> ClusterStatus:
    """Which recorded components of the cluster in `directory` are still running."""
    layout = ClusterLayout(Path(directory).resolve())
    state = load_state(layout.state_file)
    if state is None:
        return ClusterStatus(directory=layout.directory, server=None, ready=False, components=())
    return ClusterStatus(
        directory=layout.directory,
        server=state.server,
        ready=state.ready,
        components=tuple(ComponentStatus(p.name, p.pid, processes.is_running(p), p.log) for p in state.processes),
    )


def running_cluster(directory: Path) -> ClusterInfo | None:
    """The cluster that `up` started in `directory` if all of it still runs, else None."""
    layout = ClusterLayout(Path(directory).resolve())
    state = load_state(layout.state_file)
    if state is None or not cluster_status(layout.directory).running:
        return None
    return _info(layout, state)


def _info(layout: ClusterLayout, state: ClusterState) -> ClusterInfo:
    admin = cert_files(layout.pki, "admin-client")
    return ClusterInfo(
        directory=layout.directory,
        kubeconfig=state.kubeconfig,
        server=state.server,
        ca_cert=state.ca_cert,
        admin_cert=admin.cert,
        admin_key=admin.key,
        pids={process.name: process.pid for process in state.processes},
        ports=dict(state.ports),
        nodes=state.nodes,
        started_at=state.started_at,
    )


def _refuse_running_cluster(layout: ClusterLayout) -> None:
    state = load_state(layout.state_file)
    if state is None:
        return
    alive = [process.name for process in state.processes if processes.is_running(process)]
    if alive:
        raise ClusterAlreadyRunning(layout.directory, alive)


def _locate_binaries() -> dict[str, Path]:
    found = {}
    for name in COMPONENTS:
        try:
            found[name] = locate(name)
        except BinaryNotFound:
            raise MissingBinary(name, tools_bin_dir()) from None
    return found


def _write_kubeconfigs(layout: ClusterLayout, pki: ClusterPKI, server: str) -> None:
    write_kubeconfig(layout.kubeconfig, server=server, ca_cert=pki.ca.cert, client=pki.clients["admin"], user="admin")
    for component in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
        write_kubeconfig(
            layout.component_kubeconfig(component),
            server=server,
            ca_cert=pki.ca.cert,
            client=pki.clients[component],
            user=component,
        )


def _bring_up(startup: _Startup, plans: list[ComponentPlan], pki: ClusterPKI) -> None:
    by_name = {plan.name: plan for plan in plans}
    ports = startup.state.ports
    etcd = LoopbackAPI(f"http://{LOOPBACK}:{ports[ETCD]}")
    api = LoopbackAPI(startup.state.server, ca_cert=pki.ca.cert, client=pki.clients["admin"])

    startup.launch(by_name[ETCD])
    startup.wait_for(ETCD, "its /health to answer", lambda: etcd.is_ok("/health"))
    startup.launch(by_name[APISERVER])
    startup.wait_for(APISERVER, "/readyz to answer ok", lambda: api.is_ok("/readyz"))
    # The controller manager gives up if the API server isn't healthy within 10s, so these start now.
    for name in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
        startup.launch(by_name[name])
    startup.wait_for(APISERVER, "the fake nodes to be created", lambda: _create_nodes(api, startup.state.nodes))
    for name in (CONTROLLER_MANAGER, SCHEDULER):
        health = LoopbackAPI(f"https://{LOOPBACK}:{ports[name]}", ca_cert=pki.ca.cert)
        startup.wait_for(name, "/healthz to answer ok", functools.partial(health.is_ok, "/healthz"))
    nodes = startup.state.nodes
    startup.wait_for(
        KWOK,
        f"nodes {', '.join(nodes)} to be Ready and untainted",
        lambda: not unready_nodes(api.get_json("/api/v1/nodes"), nodes),
    )
    startup.wait_for(
        CONTROLLER_MANAGER,
        "the default ServiceAccount to exist",
        lambda: api.is_ok("/api/v1/namespaces/default/serviceaccounts/default"),
    )


def _create_nodes(api: LoopbackAPI, names: Sequence[str]) -> bool:
    for name in names:
        api.create("/api/v1/nodes", fake_node(name))
    return True


class _Startup:
    """The processes started so far, recorded to cluster.json after each start, and the deadline."""

    def __init__(self, layout: ClusterLayout, state: ClusterState, deadline: float) -> None:
        self.layout = layout
        self.state = state
        self.deadline = deadline
        self.started_at = time.monotonic()
        self.save()

    def save(self) -> None:
        save_state(self.layout.state_file, self.state)

    def launch(self, plan: ComponentPlan) -> None:
        log = self.layout.log(plan.name)
        try:
            process = processes.spawn(plan.name, plan.argv, log, component_environment(plan))
        except OSError as error:
            raise ClusterError(f"cannot start {plan.name}: {plan.argv[0]}: {error.strerror} (log: {log})") from None
        self.state = self.state.with_process(process)
        self.save()

    def wait_for(self, component: str, what: str, check: Callable[[], bool]) -> None:
        """Polls `check` until it holds; fails as soon as any started process exits, or at the deadline."""
        while True:
            self._raise_if_crashed()
            try:
                if check():
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() >= self.deadline:
                raise ComponentNotReady(component, what, time.monotonic() - self.started_at, self.layout.log(component))
            time.sleep(POLL_INTERVAL)

    def _raise_if_crashed(self) -> None:
        for process in self.state.processes:
            code = processes.exit_code(process)
            if code is not None:
                raise _exit_error(process, code)

    def abort(self) -> None:
        _stop_in_order(self.state.processes, grace=5.0)
        self.layout.state_file.unlink(missing_ok=True)


_ADDRESS_IN_USE = re.compile(r"127\.0\.0\.1:(\d+): bind: address already in use")


def _exit_error(process: RunningProcess, code: int) -> ClusterError:
    """The clearest error for a component that exited during start: a busy port, or its log's tail."""
    try:
        text = process.log.read_text(errors="replace")[-65536:]
    except OSError:
        text = ""
    busy = _ADDRESS_IN_USE.search(text)
    if busy:
        return PortInUse(process.name, int(busy.group(1)), process.log)
    return ComponentCrashed(process.name, code, process.log, processes.log_tail(process.log))

"""What can go wrong when starting or stopping the local control plane, each as one sentence."""

from __future__ import annotations

from pathlib import Path

from moor.errors import MoorError


class ClusterError(MoorError):
    """The local control plane could not be started, stopped or inspected."""


class UnknownComponent(ClusterError):
    def __init__(self, what: str, names: set[str], known: tuple[str, ...]) -> None:
        super().__init__(f"{what} names unknown component(s) {', '.join(sorted(names))}; known: {', '.join(known)}")


class MissingBinary(ClusterError):
    def __init__(self, component: str, searched: Path) -> None:
        super().__init__(
            f"cannot start {component}: the program was not found in {searched} or on PATH; run `make setup`"
        )
        self.component = component


class ClusterAlreadyRunning(ClusterError):
    def __init__(self, directory: Path, running: list[str]) -> None:
        super().__init__(
            f"{directory} already holds a running cluster ({', '.join(running)} running); "
            f"run `moor cluster down --dir {directory}` first or choose another --dir"
        )
        self.directory = directory


class PortInUse(ClusterError):
    def __init__(self, component: str, port: int, log: Path) -> None:
        super().__init__(
            f"{component} could not listen on 127.0.0.1:{port} because the port is already in use; "
            f"free it or choose another port (log: {log})"
        )
        self.component = component
        self.port = port
        self.log = log


class ComponentCrashed(ClusterError):
    def __init__(self, component: str, exit_code: int, log: Path, tail: str) -> None:
        super().__init__(
            f"{component} exited with code {exit_code} while the cluster was starting (log: {log}); "
            f"its last lines:\n{tail}"
        )
        self.component = component
        self.exit_code = exit_code
        self.log = log
        self.tail = tail


class ComponentNotReady(ClusterError):
    def __init__(self, component: str, waiting_for: str, seconds: float, log: Path) -> None:
        super().__init__(
            f"{component} was still not ready after {seconds:.0f}s (waiting for {waiting_for}; log: {log})"
        )
        self.component = component
        self.log = log


class ComponentWontStop(ClusterError):
    def __init__(self, component: str, pid: int) -> None:
        super().__init__(f"{component} (pid {pid}) is still running after SIGKILL")
        self.component = component
        self.pid = pid

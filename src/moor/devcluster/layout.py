"""Where one local cluster keeps its files inside its directory."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClusterLayout:
    """The files of the cluster living in `directory`; nothing outside it is written."""

    directory: Path

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig, for users and tests."""
        return self.directory / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.directory / "cluster.json"

    @property
    def pki(self) -> Path:
        return self.directory / "pki"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.directory / "etcd"

    @property
    def component_kubeconfigs(self) -> Path:
        return self.directory / "kubeconfigs"

    @property
    def kwok(self) -> Path:
        """kwok's work dir (isolated from ~/.kwok) and its Stage files."""
        return self.directory / "kwok"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def component_kubeconfig(self, component: str) -> Path:
        return self.component_kubeconfigs / f"{component}.kubeconfig"

    def reset(self) -> None:
        """Removes what an earlier cluster left here (data, credentials, logs), and nothing else."""
        for tree in (self.pki, self.logs, self.etcd_data, self.component_kubeconfigs, self.kwok):
            shutil.rmtree(tree, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        for tree in (self.directory, self.logs, self.component_kubeconfigs, self.kwok):
            tree.mkdir(parents=True, exist_ok=True)
        self.etcd_data.mkdir(mode=0o700, exist_ok=True)

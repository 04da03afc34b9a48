"""What `moor cluster up` checks before it starts anything, and the pieces it starts from."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from moor.cli.main import cli
from moor.devcluster import MissingBinary, UnknownComponent, cluster_status, start_cluster
from moor.devcluster.components import PORTS, install_stages, pick_ports


@pytest.fixture
def no_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("MOOR_TOOLS_BIN", str(empty))
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_binaries_ask_for_make_setup(tmp_path: Path, no_binaries: Path) -> None:
    with pytest.raises(MissingBinary) as missing:
        start_cluster(tmp_path / "cluster")

    assert str(missing.value) == (
        f"cannot start etcd: the program was not found in {no_binaries} or on PATH; run `make setup`"
    )
    assert not (tmp_path / "cluster").exists()


def test_up_prints_the_error_and_exits_1(tmp_path: Path, no_binaries: Path) -> None:
    result = CliRunner().invoke(cli, ["cluster", "up", "--dir", str(tmp_path / "cluster")])

    assert result.exit_code == 1
    assert result.output.startswith("error: cannot start etcd:")
    assert "Traceback" not in result.output


def test_status_of_a_dir_without_a_cluster_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cluster", "status", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "no cluster" in result.output
    assert cluster_status(tmp_path).components == ()


def test_status_speaks_yaml_as_well_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cluster", "status", "--dir", str(tmp_path), "-o", "yaml"])

    assert result.exit_code == 1
    assert yaml.safe_load(result.output) == {
        "directory": str(tmp_path),
        "server": None,
        "running": False,
        "components": [],
    }


def test_down_of_a_dir_without_a_cluster_is_fine(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cluster", "down", "--dir", str(tmp_path)])

    assert result.exit_code == 0
    assert "no cluster is running" in result.output


def test_the_dir_defaults_to_moor_cluster_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOOR_CLUSTER_DIR", str(tmp_path / "from-env"))

    result = CliRunner().invoke(cli, ["cluster", "status"])

    assert str(tmp_path / "from-env") in result.output


def test_picked_ports_are_distinct_free_loopback_ports() -> None:
    ports = pick_ports({"kube-apiserver": 6443})

    assert set(ports) == set(PORTS)
    assert ports["kube-apiserver"] == 6443
    assert len(set(ports.values())) == len(PORTS)
    for name, port in ports.items():
        if name != "kube-apiserver":
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))


def test_unknown_component_names_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(UnknownComponent, match="kube-apiservr"):
        start_cluster(tmp_path / "a", ports={"kube-apiservr": 6443})
    with pytest.raises(UnknownComponent, match="etc"):
        start_cluster(tmp_path / "b", extra_args={"etc": ["--v=4"]})

    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_the_kwok_stages_cover_nodes_and_every_pod_lifecycle_step(tmp_path: Path) -> None:
    stages = [yaml.safe_load(path.read_text()) for path in install_stages(tmp_path)]

    assert all(stage["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and stage["kind"] == "Stage" for stage in stages)
    kinds = sorted((stage["spec"]["resourceRef"]["kind"], stage["metadata"]["name"]) for stage in stages)
    assert kinds == [
        ("Node", "moor-node-heartbeat"),
        ("Node", "moor-node-initialize"),
        ("Pod", "moor-pod-complete"),
        ("Pod", "moor-pod-delete"),
        ("Pod", "moor-pod-never-ready"),
        ("Pod", "moor-pod-ready"),
    ]

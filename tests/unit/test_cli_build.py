"""`moor build --path DIR`: what a Sync would apply, through the real CLI and the real renderers, with no
cluster at all (KUBECONFIG names a file that does not exist)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.binaries import locate

PASSWORD = "correct-horse-battery-staple"


def moor_build(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": "/nonexistent/kubeconfig", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "moor", "build", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def objects_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A Git checkout (so kustomize overlays may reach their bases) of manifests."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_plain_yaml_is_printed_as_the_sync_would_apply_it(checkout: Path) -> None:
    write(
        checkout / "app" / "all.yaml",
        """\
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {replicas: 2}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: elsewhere}
        data: {color: blue}
        """,
    )

    objects = objects_of(moor_build("--path", checkout / "app", "-n", "moor-system"))

    assert [obj["kind"] for obj in objects] == ["Namespace", "ConfigMap", "Deployment"], "in apply order"
    assert all(obj["metadata"]["labels"]["moor.dev/sync"] == "moor-system.app" for obj in objects)
    assert named(objects, "Deployment", "web")["metadata"]["namespace"] == "moor-system", "the Sync's own namespace"
    assert named(objects, "ConfigMap", "settings")["metadata"]["namespace"] == "elsewhere"
    assert "namespace" not in named(objects, "Namespace", "shop")["metadata"]

    placed = objects_of(moor_build("--path", checkout / "app", "--target-namespace", "shop"))
    assert {obj["metadata"].get("namespace") for obj in placed if obj["kind"] != "Namespace"} == {"shop"}


def test_a_kustomize_overlay_reaches_its_base_in_the_same_checkout(checkout: Path) -> None:
    write(checkout / "base" / "kustomization.yaml", "resources: [config.yaml]\n")
    write(checkout / "base" / "config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    write(
        checkout / "overlays" / "prod" / "kustomization.yaml",
        "resources: [../../base]\nnamePrefix: prod-\nnamespace: shop\n",
    )

    objects = objects_of(moor_build("--path", checkout / "overlays" / "prod"))

    assert [(obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]) for obj in objects] == [
        ("ConfigMap", "prod-settings", "shop")
    ]


def test_a_chart_takes_values_files_from_the_command_line(checkout: Path) -> None:
    chart = checkout / "chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write(chart / "values.yaml", "color: blue\n")
    write(
        chart / "templates" / "config.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-settings
        data:
          color: {{ .Values.color }}
        """,
    )
    production = write(chart / "values-production.yaml", "color: green\n")

    objects = objects_of(moor_build("--path", chart, "--helm-values", production, "--release-name", "shop"))

    assert named(objects, "ConfigMap", "shop-settings")["data"] == {"color": "green"}
    outside = write(checkout / "values-elsewhere.yaml", "color: red\n")
    refused = moor_build("--path", chart, "--helm-values", outside)
    assert refused.returncode == 2, "the controller's own check of spec.helm.valuesFiles"
    assert "spec.helm.valuesFiles" in refused.stderr and "'..'" in refused.stderr


def test_a_charts_hooks_are_printed_after_its_objects(checkout: Path) -> None:
    chart = checkout / "chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write(
        chart / "templates" / "all.yaml",
        """\
        apiVersion: batch/v1
        kind: Job
        metadata:
          generateName: migrate-
          annotations: {"helm.sh/hook": pre-install}
        spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        """,
    )

    objects = objects_of(moor_build("--path", chart))

    assert [obj["kind"] for obj in objects] == ["ConfigMap", "Job"]
    assert objects[1]["metadata"]["generateName"] == "migrate-" and "name" not in objects[1]["metadata"]


def test_invalid_yaml_fails_naming_the_file_and_the_line(checkout: Path) -> None:
    write(checkout / "app" / "good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n")
    write(checkout / "app" / "broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n")

    result = moor_build("--path", checkout / "app")

    assert result.returncode == 1
    assert result.stdout == "", "nothing is printed when the render fails"
    assert "app/broken.yaml" in result.stderr and "line 4" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_object_declared_twice_fails_naming_both_places(checkout: Path) -> None:
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
    write(checkout / "app" / "a.yaml", config)
    write(checkout / "app" / "b.yaml", config)

    result = moor_build("--path", checkout / "app")

    assert result.returncode == 1
    assert "defined twice" in result.stderr and "app/a.yaml" in result.stderr and "app/b.yaml" in result.stderr


def test_a_kind_without_an_api_version_fails_as_in_the_controller(checkout: Path) -> None:
    write(checkout / "app" / "bad.yaml", "kind: ConfigMap\nmetadata: {name: settings}\n")

    result = moor_build("--path", checkout / "app")

    assert result.returncode == 1
    assert "app/bad.yaml" in result.stderr and "apiVersion" in result.stderr


def test_a_sync_file_gives_the_name_and_the_spec(checkout: Path, tmp_path: Path) -> None:
    write(checkout / "app" / "config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    sync_file = write(
        tmp_path / "sync.yaml",
        """\
        apiVersion: moor.dev/v1
        kind: Sync
        metadata: {name: shop-prod, namespace: moor-system}
        spec:
          sourceRef: {name: apps}
          path: ./somewhere-else
          targetNamespace: shop
        """,
    )

    [config] = objects_of(moor_build("--path", checkout / "app", "--sync-file", sync_file))

    assert config["metadata"]["labels"]["moor.dev/sync"] == "moor-system.shop-prod"
    assert config["metadata"]["namespace"] == "shop"
    write(tmp_path / "bad-sync.yaml", "apiVersion: moor.dev/v1\nkind: Sync\nmetadata: {name: x}\nspec: {}\n")
    invalid = moor_build("--path", checkout / "app", "--sync-file", tmp_path / "bad-sync.yaml")
    assert invalid.returncode == 2 and "sourceRef" in invalid.stderr


def test_sops_documents_are_decrypted_with_the_keys_given_and_left_encrypted_without(
    checkout: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "age.txt"
    subprocess.run([str(locate("age-keygen")), "-o", str(key_file)], check=True, capture_output=True)
    recipient = next(
        line.split(": ")[1] for line in key_file.read_text().splitlines() if line.startswith("# public key: ")
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": PASSWORD},
    }
    path = write(checkout / "app" / "secret.yaml", yaml.safe_dump(secret))
    sops = [str(locate("sops")), "--config", "/dev/null", "--encrypt", "--age", recipient]
    sops += ["--encrypted-regex", "^(data|stringData)$", "--in-place", str(path)]
    subprocess.run(sops, check=True, capture_output=True, cwd=path.parent)

    [decrypted] = objects_of(moor_build("--path", checkout / "app", "--decryption-keys", key_file))
    assert decrypted["stringData"] == {"password": PASSWORD}

    without_keys = moor_build("--path", checkout / "app", "-o", "json")
    assert without_keys.returncode == 0, without_keys.stderr
    assert PASSWORD not in without_keys.stdout + without_keys.stderr, "no key given: never the plaintext"
    [encrypted] = json.loads(without_keys.stdout)
    assert encrypted["metadata"]["name"] == "db" and "sops" in encrypted
    assert encrypted["stringData"]["password"].startswith("ENC[")


def test_build_without_a_path_or_a_sync_is_a_usage_error() -> None:
    result = moor_build()
    assert result.returncode == 2 and "--path" in result.stderr


def test_json_output_is_one_array(checkout: Path) -> None:
    write(checkout / "config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    result = moor_build("--path", checkout, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [obj["metadata"]["name"] for obj in json.loads(result.stdout)] == ["settings"]

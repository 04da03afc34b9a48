"""HelmRepositories against a real chart server (helm package, helm repo index, HTTPS with Basic auth
and ETags) and a real OCI registry (helm push): the index is read once per change and counted in status,
bad credentials and oversized indexes are refused with their reason, and ChartStore (what a Sync of a
chart calls) picks the newest version in a range, checks its digest and extracts it safely."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from moor import source
from moor.cluster.api import KubeApi
from moor.cluster.client import KubeClient
from moor.cluster.config import load_credentials
from moor.controller.chart_store import ChartStore
from moor.objects import ObjectRef
from moor.source.helm import ChartNotFound, InvalidIndex, NoMatchingVersion
from moor.source.oci import DigestMismatch, UnsafeArtifact
from tests.support.moor_fixtures import Moor, manifest
from tests.support.registry_fixtures import ChartServer, Registry, package_chart, run_tool

WRONG_PASSWORD = "not-the-password"


def write_chart(directory: Path, name: str, version: str) -> Path:
    chart = directory / f"{name}-{version}" / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "templates" / "cm.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}\ndata:\n  version: {version}\n"
    )
    return chart


def serve(chart_server: ChartServer, subdirectory: str, charts: list[tuple[str, str]], scratch: Path) -> str:
    """Packages the charts into a directory of the chart server of the test's own and indexes it (as
    `helm repo index --merge` does); returns the repository's URL."""
    directory = chart_server.directory / subdirectory
    url = f"{chart_server.url}/{subdirectory}"
    for name, version in charts:
        package_chart(write_chart(scratch, name, version), directory, chart_server.env)
    index = directory / "index.yaml"
    merge: list[str | Path] = ["--merge", index] if index.exists() else []
    run_tool("helm", "repo", "index", directory, "--url", url, *merge, env=chart_server.env)
    return url


def chart_secrets(moor: Moor, chart_server: ChartServer, *, password: str | None = None) -> None:
    data = {"username": chart_server.username, "password": password or chart_server.password}
    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "charts-auth"},
                "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "charts-ca"},
                "data": {"ca.crt": base64.b64encode(chart_server.ca_bundle.read_bytes()).decode()},
            },
        )
    )


def helm_repository(moor: Moor, url: str, name: str = "charts", **spec: Any) -> None:
    body = {
        "url": url,
        "interval": "1h",
        "secretRef": {"name": spec.pop("secret", "charts-auth")},
        "certSecretRef": {"name": spec.pop("ca", "charts-ca")},
        **spec,
    }
    moor.apply(
        manifest({"apiVersion": "moor.dev/v1", "kind": "HelmRepository", "metadata": {"name": name}, "spec": body})
    )


def status_of(moor: Moor, name: str = "charts") -> dict[str, Any]:
    return dict((moor.get("helmrepository", name) or {}).get("status") or {})


def reconcile_now(moor: Moor, name: str = "charts") -> None:
    """Asks for a reconcile with the annotation and waits until the controller says it handled it."""
    token = datetime.now(UTC).isoformat()
    moor.kubectl("annotate", "-n", moor.namespace, "helmrepository", name, f"moor.dev/reconcile={token}", "--overwrite")
    moor.wait_for(
        f"the reconcile {token} handled", lambda: status_of(moor, name).get("lastHandledReconcileAt") == token
    )


def test_an_index_is_counted_in_status_and_an_unchanged_one_is_a_304(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    subdirectory = f"{moor.namespace}-counts"
    url = serve(chart_server, subdirectory, [("web", "1.0.0"), ("web", "1.1.0"), ("db", "0.1.0")], tmp_path)
    chart_secrets(moor, chart_server)
    helm_repository(moor, url)

    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    status = status_of(moor)
    assert (status["charts"], status["versions"]) == (2, 3)
    served = (chart_server.directory / subdirectory / "index.yaml").read_bytes()
    assert status["artifact"]["revision"] == "sha256:" + hashlib.sha256(served).hexdigest()
    index_path = f"/{subdirectory}/index.yaml"
    assert [r.status for r in chart_server.requests_for(index_path)] == [200]

    reconcile_now(moor)
    assert [r.status for r in chart_server.requests_for(index_path)] == [200, 304], "the ETag was sent back"
    assert status_of(moor)["artifact"] == status["artifact"]

    serve(chart_server, subdirectory, [("web", "1.2.0")], tmp_path / "newer")
    reconcile_now(moor)
    status = status_of(moor)
    assert (status["charts"], status["versions"]) == (2, 4)
    newer = (chart_server.directory / subdirectory / "index.yaml").read_bytes()
    assert status["artifact"]["revision"] == "sha256:" + hashlib.sha256(newer).hexdigest()
    events = moor.kubectl("get", "events", "-n", moor.namespace, "-o", "jsonpath={.items[*].reason}").stdout
    assert events.split().count("NewArtifact") >= 2


def test_a_refused_password_is_authentication_failed_naming_the_host(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    url = serve(chart_server, f"{moor.namespace}-auth", [("web", "1.0.0")], tmp_path)
    chart_secrets(moor, chart_server, password=WRONG_PASSWORD)
    helm_repository(moor, url)

    condition = moor.wait_condition("helmrepository", "charts", "False", reason="AuthenticationFailed", timeout=90)
    assert f"127.0.0.1:{chart_server.port}" in condition["message"]
    assert chart_server.username in condition["message"] and WRONG_PASSWORD not in condition["message"]


def test_a_failing_index_keeps_the_last_one_in_status(moor: Moor, chart_server: ChartServer, tmp_path: Path) -> None:
    subdirectory = f"{moor.namespace}-kept"
    url = serve(chart_server, subdirectory, [("web", "1.0.0")], tmp_path)
    chart_secrets(moor, chart_server)
    helm_repository(moor, url)
    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    before = status_of(moor)

    (chart_server.directory / subdirectory / "index.yaml").write_text("entries: {web: [\n")
    reconcile_now(moor)
    condition = moor.wait_condition("helmrepository", "charts", "False", reason="InvalidIndex", timeout=90)
    assert "not valid YAML" in condition["message"]
    after = status_of(moor)
    assert after["artifact"] == before["artifact"]
    assert (after["charts"], after["versions"]) == (1, 1)


def test_an_index_of_50_mb_is_refused_naming_the_cap(moor: Moor, chart_server: ChartServer) -> None:
    directory = chart_server.directory / f"{moor.namespace}-huge"
    directory.mkdir()
    padding = "    description: " + "x" * 1000 + "\n"
    entry = "  - name: big\n    version: 1.0.0\n    urls: [big-1.0.0.tgz]\n" + padding
    with (directory / "index.yaml").open("w") as index:
        index.write("apiVersion: v1\nentries:\n  big:\n")
        index.write(entry * (50 * 1024 * 1024 // len(entry)))
    chart_secrets(moor, chart_server)
    helm_repository(moor, f"{chart_server.url}/{directory.name}")

    condition = moor.wait_condition("helmrepository", "charts", "False", reason="IndexTooLarge", timeout=90)
    assert "32 MiB" in condition["message"]
    assert "charts" not in status_of(moor)


def test_an_oci_repository_is_ready_once_the_registry_answers(moor: Moor, registry: Registry, tmp_path: Path) -> None:
    registry.push_chart(write_chart(tmp_path, "web", "1.0.0"), f"{moor.namespace}/charts")
    oci_secrets(moor, registry)
    helm_repository(
        moor, registry.oci_url(f"{moor.namespace}/charts"), type="oci", secret="registry-auth", ca="registry-ca"
    )
    condition = moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    assert registry.host in condition["message"]
    assert "charts" not in status_of(moor) and "versions" not in status_of(moor)

    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-wrong"},
                "data": {
                    "username": base64.b64encode(registry.username.encode()).decode(),
                    "password": base64.b64encode(WRONG_PASSWORD.encode()).decode(),
                },
            }
        )
    )
    helm_repository(
        moor, registry.oci_url(f"{moor.namespace}/charts"), "refused", type="oci", secret="registry-wrong",
        ca="registry-ca",
    )  # fmt: skip
    condition = moor.wait_condition("helmrepository", "refused", "False", reason="AuthenticationFailed", timeout=90)
    assert registry.host in condition["message"]


def oci_secrets(moor: Moor, registry: Registry) -> None:
    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-auth"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64.b64encode(registry.docker_config_json()).decode()},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "registry-ca"},
                "data": {"ca.crt": base64.b64encode(registry.ca_bundle.read_bytes()).decode()},
            },
        )
    )


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ({"url": "https://charts.example.com", "type": "oci"}, "oci:// url needs type oci"),
        ({"url": "oci://registry.example.com/charts"}, "oci:// url needs type oci"),
        ({"url": "https://user:pw@charts.example.com"}, "without credentials"),
        ({"url": "https://charts.example.com", "type": "git"}, "Unsupported value"),
    ],
)
def test_the_api_server_refuses_what_the_crd_can_check(moor: Moor, spec: dict[str, str], refusal: str) -> None:
    document = {"apiVersion": "moor.dev/v1", "kind": "HelmRepository", "metadata": {"name": "bad"}, "spec": spec}
    result = moor.kubectl("apply", "-n", moor.namespace, "-f", "-", input=manifest(document), check=False)
    assert result.returncode != 0 and refusal in result.stderr, result.stderr


# ------------------------------------------------------------------ ChartStore, as a Sync of a chart uses it


async def read_repository(kubeconfig: Path, namespace: str, name: str = "charts") -> dict[str, Any]:
    async with KubeClient(load_credentials(kubeconfig)) as client:
        found = await KubeApi(client).get(ObjectRef("moor.dev", "v1", "HelmRepository", namespace, name))
    assert found is not None
    return found


async def test_the_newest_version_in_range_is_downloaded_verified_and_extracted(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    subdirectory = f"{moor.namespace}-store"
    url = serve(chart_server, subdirectory, [("web", "1.0.0"), ("web", "1.4.0"), ("web", "2.0.0")], tmp_path)
    chart_secrets(moor, chart_server)
    helm_repository(moor, url)
    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    repository = await read_repository(moor.kubeconfig, moor.namespace)
    package = chart_server.directory / subdirectory / "web-1.4.0.tgz"

    async with KubeClient(load_credentials(moor.kubeconfig)) as client:
        store = ChartStore(KubeApi(client), source.ArtifactCache(tmp_path / "cache"))
        index_path = f"/{subdirectory}/index.yaml"
        reads_before = len(chart_server.requests_for(index_path))
        chosen, *others = await asyncio.gather(*(store.chart(repository, "web", ">=1.0.0 <2.0.0") for _ in range(10)))
        assert len(chart_server.requests_for(index_path)) == reads_before + 1, "ten Syncs, one index read"
        assert all(other == chosen for other in others)
        again = await store.chart(repository, "web", "1.4.0")
        with pytest.raises(NoMatchingVersion, match=r"web.*\^3\.0\.0.*1\.0\.0, 1\.4\.0, 2\.0\.0"):
            await store.chart(repository, "web", "^3.0.0")
        with pytest.raises(ChartNotFound, match="'nope'"):
            await store.chart(repository, "nope", "*")
        with pytest.raises(InvalidIndex, match="not a chart name"):
            await store.chart(repository, "../web", "*")
        rolled_back = await store.chart_at(repository, chosen.artifact.revision)

    assert (chosen.name, chosen.version) == ("web", "1.4.0")
    assert chosen.artifact.revision == f"web@1.4.0@sha256:{hashlib.sha256(package.read_bytes()).hexdigest()}"
    assert (chosen.artifact.path / "Chart.yaml").read_text().endswith("version: 1.4.0\n")
    assert (chosen.artifact.path / "templates" / "cm.yaml").is_file()
    assert again.artifact == chosen.artifact and rolled_back.path == chosen.artifact.path
    downloads = [r for r in chart_server.requests if r.path == f"/{subdirectory}/web-1.4.0.tgz"]
    assert len(downloads) == 1 and downloads[0].authorized, "downloaded once, with the repository's credentials"
    assert len(chart_server.requests_for(index_path)) == reads_before + 1, "the index is not read per chart"


async def test_a_chart_whose_digest_does_not_match_or_that_holds_a_link_is_refused(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    subdirectory = f"{moor.namespace}-hostile"
    url = serve(chart_server, subdirectory, [("web", "1.0.0")], tmp_path)
    directory = chart_server.directory / subdirectory
    (directory / "web-1.0.0.tgz").write_bytes(b"not the chart the index describes")
    linked = io.BytesIO()
    with tarfile.open(fileobj=linked, mode="w:gz") as archive:
        chart_yaml = b"apiVersion: v2\nname: evil\nversion: 1.0.0\n"
        info = tarfile.TarInfo("evil/Chart.yaml")
        info.size = len(chart_yaml)
        archive.addfile(info, io.BytesIO(chart_yaml))
        link = tarfile.TarInfo("evil/Chart.lock")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    (directory / "evil-1.0.0.tgz").write_bytes(linked.getvalue())
    index = (directory / "index.yaml").read_text()
    index = index.replace(
        "entries:\n", f"entries:\n  evil:\n  - name: evil\n    version: 1.0.0\n    urls: [{url}/evil-1.0.0.tgz]\n", 1
    )
    (directory / "index.yaml").write_text(index)
    chart_secrets(moor, chart_server)
    helm_repository(moor, url)
    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    repository = await read_repository(moor.kubeconfig, moor.namespace)

    async with KubeClient(load_credentials(moor.kubeconfig)) as client:
        store = ChartStore(KubeApi(client), source.ArtifactCache(tmp_path / "cache"))
        with pytest.raises(DigestMismatch, match=r"web-1\.0\.0\.tgz"):
            await store.chart(repository, "web", "1.0.0")
        with pytest.raises(UnsafeArtifact, match=r"Chart\.lock"):
            await store.chart(repository, "evil", "1.0.0")
    assert [path.name for path in (tmp_path / "cache").iterdir() if not path.name.startswith(".")] == []


async def test_chart_urls_on_another_host_get_no_credentials(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    subdirectory = f"{moor.namespace}-elsewhere"
    url = serve(chart_server, subdirectory, [("web", "1.0.0")], tmp_path)
    index_file = chart_server.directory / subdirectory / "index.yaml"
    elsewhere = url.replace("127.0.0.1", "localhost")  # another origin, the same server
    index_file.write_text(index_file.read_text().replace(f"{url}/web-1.0.0.tgz", f"{elsewhere}/web-1.0.0.tgz"))
    chart_secrets(moor, chart_server)
    helm_repository(moor, url)
    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    repository = await read_repository(moor.kubeconfig, moor.namespace)

    async with KubeClient(load_credentials(moor.kubeconfig)) as client:
        store = ChartStore(KubeApi(client), source.ArtifactCache(tmp_path / "cache"))
        with pytest.raises(source.SourceError, match=r"localhost:\d+ answered 401"):
            await store.chart(repository, "web", "1.0.0")
    downloads = [r for r in chart_server.requests if r.path == f"/{subdirectory}/web-1.0.0.tgz"]
    assert downloads and not any(r.authorized for r in downloads)


async def test_an_oci_chart_is_the_newest_tag_in_range_and_its_layer_digest(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    path = f"{moor.namespace}/store"
    for version in ("0.9.0", "1.0.0+build.1", "1.1.0"):
        registry.push_chart(write_chart(tmp_path, "web", version), path)
    oci_secrets(moor, registry)
    helm_repository(moor, registry.oci_url(path), type="oci", secret="registry-auth", ca="registry-ca")
    moor.wait_condition("helmrepository", "charts", "True", timeout=90)
    repository = await read_repository(moor.kubeconfig, moor.namespace)

    async with KubeClient(load_credentials(moor.kubeconfig)) as client:
        store = ChartStore(KubeApi(client), source.ArtifactCache(tmp_path / "cache"))
        chosen = await store.chart(repository, "web", "~1.0.0")
        newest = await store.chart(repository, "web", ">=1.0.0")
        cold = ChartStore(KubeApi(client), source.ArtifactCache(tmp_path / "cold"))
        rolled_back = await cold.chart_at(repository, chosen.artifact.revision)

    assert chosen.version == "1.0.0+build.1" and newest.version == "1.1.0"
    name, version, digest = chosen.artifact.revision.split("@")
    assert (name, version) == ("web", "1.0.0+build.1") and digest.startswith("sha256:")
    assert (chosen.artifact.path / "Chart.yaml").read_text().endswith("version: 1.0.0+build.1\n")
    assert (rolled_back.path / "Chart.yaml").read_text() == (chosen.artifact.path / "Chart.yaml").read_text()

"""OCI artifacts end to end: `moor push artifact` read back by oras and crane, their artifacts pulled by Moor,
all against the real distribution registry (TLS from a test CA, htpasswd auth).

What an honest registry never does (send the wrong bytes, redirect a download to another host, answer
503) is played by small registries written here: real aiohttp servers on loopback addresses, spoken to
over real sockets by the same client.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from moor.devcluster import pki
from moor.retry import RetryPolicy
from moor.source import ArtifactLimits, AuthenticationFailed, RepositoryNotFound, SemverRange
from moor.source.oci import (
    FLUX_CONFIG,
    FLUX_CONTENT,
    OCI_LAYER,
    ArtifactNotFound,
    CertificateRejected,
    DigestMismatch,
    OciReference,
    RegistryClient,
    RegistryCredentials,
    RegistryUnreachable,
    UnsafeArtifact,
    choose_tag,
    pack_directory,
    pull,
)
from moor.source.oci.manifest import OCI_MANIFEST, Descriptor, ImageManifest, sha256_digest
from tests.support import registry_fixtures
from tests.support.moor_fixtures import MOOR
from tests.support.registry_fixtures import Registry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def write_manifests(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "apps" / "configmap.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    (root / "kustomization.yaml").write_text("resources: [apps/configmap.yaml]\n")
    return root


def files_under(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------- the real registry


def client_for(registry: Registry, password: str | None = None) -> RegistryClient:
    credentials = RegistryCredentials(registry.username, password or registry.password)
    return RegistryClient(registry.host, credentials, ca_pem=registry.ca_bundle.read_bytes(), timeout=30)


def moor_push(registry: Registry, url: str, directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI as CI runs it: no kubeconfig anywhere, the registry's docker config and CA given."""
    env = {**os.environ, **registry.env, "KUBECONFIG": "/nonexistent/kubeconfig"}
    argv = [*MOOR, "push", "artifact", url, "--path", str(directory), "--ca-file", str(registry.ca_bundle), *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_moor_push_artifact_is_read_back_by_oras_and_crane_in_fluxs_layout(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    (content / ".git").mkdir()
    (content / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    url = registry.oci_url("team/pushed") + ":1.0.0"
    pushed = moor_push(
        registry,
        url,
        content,
        "--source",
        "https://git.example/app.git",
        "--revision",
        "main@sha1:abc123",
        "-o",
        "json",
    )
    assert pushed.returncode == 0, pushed.stderr
    result = json.loads(pushed.stdout)

    reference = f"{registry.host}/team/pushed:1.0.0"
    assert registry.run("crane", "digest", reference).stdout.strip() == result["digest"]
    assert result["revision"] == f"1.0.0@{result['digest']}"
    manifest = json.loads(registry.run("crane", "manifest", reference).stdout)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == FLUX_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [FLUX_CONTENT]
    annotations = manifest["annotations"]
    assert annotations["org.opencontainers.image.source"] == "https://git.example/app.git"
    assert annotations["org.opencontainers.image.revision"] == "main@sha1:abc123"
    assert annotations["org.opencontainers.image.created"].endswith("Z")

    layer_file = tmp_path / "layer.tar.gz"  # Flux's layers carry no file name: oras fetches the blob
    layer = f"{registry.host}/team/pushed@{manifest['layers'][0]['digest']}"
    registry.run("oras", "blob", "fetch", "--output", str(layer_file), layer)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(layer_file), "-C", str(unpacked)], check=True)
    assert files_under(unpacked) == {k: v for k, v in files_under(content).items() if not k.startswith(".git/")}


def test_pushing_the_same_directory_twice_gives_the_same_layer(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    layers = []
    for tag in ("a", "b"):
        pushed = moor_push(
            registry, registry.oci_url("team/same") + f":{tag}", content, "--source", "s", "--revision", "r"
        )
        assert pushed.returncode == 0, pushed.stderr
        manifest = json.loads(registry.run("crane", "manifest", f"{registry.host}/team/same:{tag}").stdout)
        layers.append(manifest["layers"][0]["digest"])
    assert layers[0] == layers[1] == sha256_digest(pack_directory(content))


def test_moor_push_artifact_with_a_wrong_password_fails_naming_the_registry(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    url = registry.oci_url("team/refused") + ":1.0.0"
    refused = moor_push(
        registry, url, content, "--source", "s", "--revision", "r", "--creds", f"{registry.username}:wrong"
    )
    assert refused.returncode == 2
    assert registry.host in refused.stderr
    assert "refused the credentials" in refused.stderr
    assert "wrong" not in refused.stderr


async def test_a_flux_artifact_pushed_by_oras_is_pulled_with_its_origin(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    pushed = registry.push_flux_artifact(
        content, "team/flux", "6.1.0", source="https://git.example/app.git", revision="6.1.0@sha1:0123abcd"
    )
    reference = OciReference.parse(registry.oci_url("team/flux") + ":6.1.0")
    async with client_for(registry) as client:
        artifact = await pull(client, reference, tmp_path / "artifact", ArtifactLimits())
    assert files_under(artifact.directory) == files_under(content)
    assert artifact.digest == pushed.digest
    assert artifact.revision == f"6.1.0@{pushed.digest}"
    assert artifact.layer.media_type == FLUX_CONTENT
    assert (artifact.origin_source, artifact.origin_revision) == ("https://git.example/app.git", "6.1.0@sha1:0123abcd")


async def test_a_generic_image_layer_pushed_by_crane_is_pulled(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    pushed = registry.push_image_layer(content, "team/image", "2.0.0")
    reference = OciReference.parse(registry.oci_url("team/image") + f"@{pushed.digest}")
    async with client_for(registry) as client:
        artifact = await pull(client, reference, tmp_path / "artifact", ArtifactLimits())
    assert files_under(artifact.directory) == files_under(content)
    assert artifact.layer.media_type == OCI_LAYER
    assert artifact.revision == pushed.digest


async def test_a_semver_range_chooses_among_the_registrys_tags(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    for tag in ("1.0.0", "1.2.0", "2.0.0", "latest"):
        registry.push_flux_artifact(content, "team/versions", tag)
    async with client_for(registry) as client:
        tags = await client.tags("team/versions")
    assert sorted(tags) == ["1.0.0", "1.2.0", "2.0.0", "latest"]
    assert choose_tag(tags, SemverRange.parse(">=1.0.0 <2.0.0"), "oci://x/team/versions") == "1.2.0"


async def test_a_wrong_password_is_authentication_failed_naming_the_registry(
    registry: Registry, tmp_path: Path
) -> None:
    registry.push_flux_artifact(write_manifests(tmp_path / "content"), "team/private", "1.0.0")
    reference = OciReference.parse(registry.oci_url("team/private") + ":1.0.0")
    async with client_for(registry, password="wrong") as client:
        with pytest.raises(AuthenticationFailed) as refused:
            await pull(client, reference, tmp_path / "artifact", ArtifactLimits())
    assert registry.host in str(refused.value)
    assert not (tmp_path / "artifact").exists()


async def test_an_unknown_tag_and_an_unknown_repository_are_told_apart(registry: Registry, tmp_path: Path) -> None:
    registry.push_flux_artifact(write_manifests(tmp_path / "content"), "team/known", "1.0.0")
    async with client_for(registry) as client:
        with pytest.raises(ArtifactNotFound, match=r"team/known:9\.9\.9 does not exist"):
            await client.resolve("team/known", "9.9.9")
        with pytest.raises(RepositoryNotFound, match="the repository does not exist"):
            await client.tags("team/never-pushed")


async def test_an_artifact_with_a_symlinked_chart_lock_is_refused_and_nothing_is_written(
    registry: Registry, tmp_path: Path
) -> None:
    content = write_manifests(tmp_path / "content")
    (content / "Chart.lock").symlink_to("/etc/passwd")
    registry.push_image_layer(content, "team/linked", "1.0.0")
    reference = OciReference.parse(registry.oci_url("team/linked") + ":1.0.0")
    workspace = tmp_path / "sources"
    workspace.mkdir()
    async with client_for(registry) as client:
        with pytest.raises(UnsafeArtifact, match=r"'Chart\.lock' in its tarball is a symbolic link") as refused:
            await pull(client, reference, workspace / "artifact", ArtifactLimits())
    assert str(reference) in str(refused.value)
    assert list(workspace.iterdir()) == []


async def test_a_registry_whose_certificate_is_not_trusted_is_refused_at_once(registry: Registry) -> None:
    credentials = RegistryCredentials(registry.username, registry.password)
    async with RegistryClient(registry.host, credentials, timeout=30) as client:
        with pytest.raises(CertificateRejected, match=f"TLS with the registry {registry.host} failed"):
            await client.tags("team/anything")


def test_moor_push_artifact_to_an_unreachable_registry_exits_1(registry: Registry, tmp_path: Path) -> None:
    content = write_manifests(tmp_path / "content")
    unreachable = moor_push(registry, "oci://127.0.0.1:1/team/app:1.0.0", content, "--source", "s", "--revision", "r")
    assert unreachable.returncode == 1
    assert "cannot reach the registry 127.0.0.1:1" in unreachable.stderr


# -------------------------------------------------------------- small registries that misbehave


@dataclass
class Recorded:
    """Each request a server received: its path and the Authorization header it carried."""

    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def middleware(self) -> Any:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append((request.path, request.headers.get("Authorization")))
            return await handler(request)

        return record


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Runs `app` on `host`, a free port; yields `host:port`."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield f"{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass
class Artifact:
    """One artifact as a registry stores it: the layer, the config and the manifest naming them."""

    layer: bytes
    config: bytes = b"{}"

    @property
    def manifest(self) -> bytes:
        return ImageManifest(
            OCI_MANIFEST,
            Descriptor(FLUX_CONFIG, sha256_digest(self.config), len(self.config)),
            (Descriptor(FLUX_CONTENT, sha256_digest(self.layer), len(self.layer)),),
            {"org.opencontainers.image.revision": "main@sha1:feed"},
        ).as_json()

    def manifest_route(self, repository: str) -> web.RouteDef:
        async def manifest(request: web.Request) -> web.Response:
            return web.Response(body=self.manifest, content_type=OCI_MANIFEST)

        return web.get(f"/v2/{repository}/manifests/{{ref}}", manifest)


BASIC = RegistryCredentials("ci", "s3cret")
FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05)


def demand_basic(credentials: RegistryCredentials) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != credentials.basic_authorization():
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="toy"'})
        return await handler(request)

    return check


async def test_a_download_redirected_to_another_host_goes_there_without_credentials(tmp_path: Path) -> None:
    artifact = Artifact(pack_directory(write_manifests(tmp_path / "content")))
    store_seen, registry_seen = Recorded(), Recorded()

    async def stored_blob(request: web.Request) -> web.Response:
        return web.Response(body=artifact.layer if request.match_info["digest"] != sha256_digest(b"{}") else b"{}")

    store = web.Application(middlewares=[store_seen.middleware()])
    store.add_routes([web.get("/blobs/{digest}", stored_blob)])
    async with serving(store, "127.0.0.2") as store_host:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"http://{store_host}/blobs/{request.match_info['digest']}")

        app = web.Application(middlewares=[registry_seen.middleware(), demand_basic(BASIC)])
        app.add_routes([artifact.manifest_route("team/app"), web.get("/v2/team/app/blobs/{digest}", redirect)])
        async with serving(app, "127.0.0.1") as host:
            reference = OciReference.parse(f"oci://{host}/team/app:1.0")
            async with RegistryClient(host, BASIC, insecure_http=True) as client:
                pulled = await pull(client, reference, tmp_path / "artifact", ArtifactLimits())

    assert files_under(pulled.directory) == files_under(tmp_path / "content")
    assert store_seen.requests, "the blob was fetched from the other host"
    assert all(authorization is None for _, authorization in store_seen.requests)
    assert registry_seen.requests[0][1] is None  # anonymous first, then as the challenge asked
    assert all(authorization == BASIC.basic_authorization() for _, authorization in registry_seen.requests[1:])


async def test_a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    artifact = Artifact(pack_directory(write_manifests(tmp_path / "content")))
    tampered = pack_directory(write_manifests(tmp_path / "other") / "apps")

    async def wrong_blob(request: web.Request) -> web.Response:
        return web.Response(body=tampered)

    app = web.Application()
    app.add_routes([artifact.manifest_route("team/app"), web.get("/v2/team/app/blobs/{digest}", wrong_blob)])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    async with serving(app) as host, RegistryClient(host, None, insecure_http=True) as client:
        with pytest.raises(DigestMismatch) as refused:
            await pull(
                client, OciReference.parse(f"oci://{host}/team/app:1.0"), downloads / "artifact", ArtifactLimits()
            )
        assert f"oci://{host}/team/app@{sha256_digest(artifact.layer)}" in str(refused.value)
        with pytest.raises(DigestMismatch):
            await client.blob_to("team/app", sha256_digest(artifact.layer), downloads / "layer", 1_000_000)
    assert list(downloads.iterdir()) == []


async def test_a_manifest_asked_for_by_digest_must_have_that_digest(tmp_path: Path) -> None:
    artifact = Artifact(b"layer")
    app = web.Application()
    app.add_routes([artifact.manifest_route("team/app")])
    asked = "sha256:" + "0" * 64
    async with serving(app) as host, RegistryClient(host, None, insecure_http=True) as client:
        with pytest.raises(DigestMismatch, match=f"not {asked}"):
            await client.resolve("team/app", asked)
        assert (await client.resolve("team/app", sha256_digest(artifact.manifest))).raw == artifact.manifest


async def test_the_bearer_token_flow_and_a_refused_token_request(tmp_path: Path) -> None:
    artifact = Artifact(b"layer")
    seen = Recorded()
    issued: list[str] = []

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != BASIC.basic_authorization():
            return web.Response(status=401)
        issued.append(request.query["scope"])
        return web.json_response({"token": "t0k3n", "expires_in": 300})

    app = web.Application(middlewares=[seen.middleware()])

    async def manifest(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t0k3n":
            realm = f"http://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="toy",scope="repository:team/app:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(body=artifact.manifest, content_type=OCI_MANIFEST)

    app.add_routes([web.get("/token", token), web.get("/v2/team/app/manifests/{ref}", manifest)])
    async with serving(app) as host:
        async with RegistryClient(host, BASIC, insecure_http=True) as client:
            assert (await client.resolve("team/app", "1.0")).raw == artifact.manifest
            assert (await client.resolve("team/app", "1.0")).raw == artifact.manifest
        assert issued == ["repository:team/app:pull"], "one token, kept for the second request"
        assert [auth for path, auth in seen.requests if path.startswith("/v2/")] == [
            None,
            "Bearer t0k3n",
            "Bearer t0k3n",
        ]
        async with RegistryClient(host, RegistryCredentials("ci", "wrong"), insecure_http=True) as client:
            with pytest.raises(AuthenticationFailed, match=r"the token service 127\.0\.0\.1 refused the credentials"):
                await client.resolve("team/app", "1.0")


async def test_a_registry_briefly_unavailable_is_asked_again(tmp_path: Path) -> None:
    artifact = Artifact(b"layer")
    answers = [web.Response(status=503, headers={"Retry-After": "0"}), web.Response(status=429)]

    async def flaky(request: web.Request) -> web.Response:
        if answers:
            return answers.pop(0)
        return web.Response(body=artifact.manifest, content_type=OCI_MANIFEST)

    app = web.Application()
    app.add_routes([web.get("/v2/team/app/manifests/{ref}", flaky)])
    async with serving(app) as host, RegistryClient(host, None, insecure_http=True, retry=FAST_RETRY) as client:
        assert (await client.resolve("team/app", "1.0")).raw == artifact.manifest
    assert answers == []


async def test_tags_are_listed_across_pages() -> None:
    pages = {
        "": (["1.0.0", "1.1.0"], '</v2/team/app/tags/list?last=1.1.0&n=2>; rel="next"'),
        "1.1.0": (["2.0.0"], None),
    }

    async def tags(request: web.Request) -> web.Response:
        names, link = pages[request.query.get("last", "")]
        return web.json_response({"name": "team/app", "tags": names}, headers={"Link": link} if link else None)

    app = web.Application()
    app.add_routes([web.get("/v2/team/app/tags/list", tags)])
    async with serving(app) as host, RegistryClient(host, None, insecure_http=True) as client:
        assert await client.tags("team/app") == ["1.0.0", "1.1.0", "2.0.0"]


async def test_no_server_at_all_is_registry_unreachable() -> None:
    async with serving(web.Application()) as host:
        pass  # the port is free again
    async with RegistryClient(host, None, insecure_http=True, retry=FAST_RETRY) as client:
        with pytest.raises(RegistryUnreachable, match=f"cannot reach the registry {host}"):
            await client.resolve("team/app", "1.0")


async def test_a_client_certificate_is_presented_when_the_registry_demands_one(
    registry_ca: registry_fixtures.TestCA, tmp_path: Path
) -> None:
    served = registry_ca.server_certificate("toy-mtls")
    client_pair = pki.issue_certificate(registry_ca.key_pair, "moor-client", client=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(registry_ca.bundle))
    context.load_cert_chain(served.cert, served.key)
    context.verify_mode = ssl.CERT_REQUIRED
    artifact = Artifact(b"layer")
    app = web.Application()
    app.add_routes([artifact.manifest_route("team/app")])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host = f"127.0.0.1:{runner.addresses[0][1]}"
    ca_pem = registry_ca.bundle.read_bytes()
    try:
        async with RegistryClient(
            host, None, ca_pem=ca_pem, cert_pem=client_pair.certificate_pem(), key_pem=client_pair.key_pem()
        ) as client:
            assert (await client.resolve("team/app", "1.0")).raw == artifact.manifest
        async with RegistryClient(host, None, ca_pem=ca_pem, retry=FAST_RETRY) as client:
            with pytest.raises(RegistryUnreachable):
                await client.resolve("team/app", "1.0")
    finally:
        await runner.cleanup()

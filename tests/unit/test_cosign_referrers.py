"""Finding an artifact's Sigstore bundles in a registry (a small registry served on loopback): through the
OCI 1.1 referrers API when the registry has one, through the fallback tag `sha256-<hex>` when it answers
404 (or 405, as registries older than OCI 1.1 do), and never mistaking another referrer for a signature."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from moor.source.errors import VerificationFailed
from moor.source.oci import OciReference, RegistryClient
from moor.source.oci.cosign import verify_signed
from moor.source.oci.cosign_keys import CosignKeys, CosignSignature
from moor.source.oci.sigstore_bundle import BUNDLE_MEDIA_TYPE
from tests.unit.test_cosign_bundles import dsse_bundle, public_pem, statement

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = b"{}"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: str) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


class TinyRegistry:
    """Manifests and blobs of one repository in memory; `referrers_api` is what `/referrers/` answers:
    the index (200), or a status when the registry has no such API."""

    def __init__(self, referrers_api: int) -> None:
        self.referrers_api = referrers_api
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {digest_of(EMPTY): EMPTY}
        self.referrers: list[dict[str, object]] = []
        self.asked: list[str] = []

    def push_artifact(self) -> str:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/json", EMPTY),
                "layers": [],
            }
        ).encode()
        self.manifests[digest_of(manifest)] = manifest
        return digest_of(manifest)

    def attach(self, subject: str, artifact_type: str, layer: bytes) -> None:
        """A referrer of `subject` with one layer, listed by the API and under the fallback tag, as oras does."""
        self.blobs[digest_of(layer)] = layer
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": descriptor("application/vnd.oci.empty.v1+json", EMPTY),
                "layers": [descriptor(artifact_type, layer)],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(self.manifests[subject])},
            }
        ).encode()
        self.manifests[digest_of(manifest)] = manifest
        self.referrers.append(descriptor(OCI_MANIFEST, manifest, artifactType=artifact_type))
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.referrers}).encode()
        self.manifests[subject.replace(":", "-")] = index

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.asked.append(path)
        kind, _, reference = path.removeprefix("/v2/team/app/").partition("/")
        if kind == "referrers" and self.referrers_api != 200:
            return web.Response(status=self.referrers_api, text="404 page not found\n")
        if kind == "referrers":
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.referrers}
            return web.json_response(index, content_type=OCI_INDEX)
        found = (self.manifests if kind == "manifests" else self.blobs).get(reference)
        if found is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}, status=404)
        media_type = json.loads(found).get("mediaType", OCI_MANIFEST) if kind == "manifests" else "application/json"
        return web.Response(body=found, content_type=media_type, headers={"Docker-Content-Digest": digest_of(found)})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[TinyRegistry], Awaitable[RegistryClient]]]:
    runners: list[web.AppRunner] = []
    clients: list[RegistryClient] = []

    async def start(registry: TinyRegistry) -> RegistryClient:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", registry.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        client = RegistryClient(f"127.0.0.1:{runner.addresses[0][1]}", None, insecure_http=True)
        clients.append(await client.__aenter__())
        return client

    yield start
    for client in clients:
        await client.__aexit__(None, None, None)
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="module")
def ours() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("referrers_api", [200, 404, 405], ids=["referrers-api", "fallback-tag", "pre-oci-1.1"])
async def test_a_bundle_is_found_by_the_api_or_the_fallback_tag(
    serve: Callable[[TinyRegistry], Awaitable[RegistryClient]], ours: ec.EllipticCurvePrivateKey, referrers_api: int
) -> None:
    registry = TinyRegistry(referrers_api)
    digest = registry.push_artifact()
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    registry.attach(digest, "application/spdx+json", sbom)  # another referrer: not a signature, never downloaded
    registry.attach(digest, BUNDLE_MEDIA_TYPE, dsse_bundle(ours, statement(digest)))
    client = await serve(registry)
    artifact = OciReference(client.registry, "team/app", digest=digest)
    keys = CosignKeys.from_secret({"team.pub": public_pem(ours)})

    assert await verify_signed(client, artifact, keys) == CosignSignature(key="team.pub", bundle=True)
    fallback = f"/v2/team/app/manifests/{digest.replace(':', '-')}"
    assert (fallback in registry.asked) == (referrers_api != 200)
    assert f"/v2/team/app/blobs/{digest_of(sbom)}" not in registry.asked


async def test_an_artifact_with_only_other_referrers_is_refused_naming_them(
    serve: Callable[[TinyRegistry], Awaitable[RegistryClient]], ours: ec.EllipticCurvePrivateKey
) -> None:
    registry = TinyRegistry(200)
    digest = registry.push_artifact()
    registry.attach(digest, "application/spdx+json", b'{"spdxVersion": "SPDX-2.3"}')
    client = await serve(registry)
    keys = CosignKeys.from_secret({"team.pub": public_pem(ours)})
    with pytest.raises(VerificationFailed) as refused:
        await verify_signed(client, OciReference(client.registry, "team/app", digest=digest), keys)
    assert str(refused.value).endswith(
        f"carries no cosign signature: its repository has no tag {digest.replace(':', '-')}.sig, and no Sigstore "
        "bundle refers to it (its referrers are application/spdx+json); sign it with `cosign sign --key`"
    )

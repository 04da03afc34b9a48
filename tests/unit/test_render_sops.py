"""SOPS-encrypted documents are decrypted at render time by the real sops with age keys from a Secret,
and no message ever holds a value. Real sops, age-keygen and kustomize; no cluster."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.binaries import locate
from moor.crds import load_crds
from moor.render import DecryptionKeys, RenderError, RenderRequest, decryption_keys, render
from moor.render.sops import is_encrypted, scrub
from moor.resources import DecryptionProvider, DecryptionSpec, SpecError, SyncSpec

PASSWORD = "correct-horse-battery-staple"
TOKEN_B64 = "dG9rZW4tb2YtdGhlLWRheQ=="  # base64 of "token-of-the-day"
ORIGIN = "the decryption Secret apps/sops-age"


@dataclass(frozen=True)
class AgeKey:
    identity: bytes
    recipient: str

    def keys(self) -> DecryptionKeys:
        return decryption_keys({"identity.agekey": self.identity}, ORIGIN)


def new_age_key(directory: Path) -> AgeKey:
    """A fresh age identity from the real age-keygen (its key file, comments included, as users keep it)."""
    path = directory / f"key-{len(list(directory.iterdir()))}.txt"
    subprocess.run([str(locate("age-keygen")), "-o", str(path)], check=True, capture_output=True)
    text = path.read_bytes()
    recipient = next(line.split(b": ")[1] for line in text.splitlines() if line.startswith(b"# public key: "))
    return AgeKey(text, recipient.decode())


@pytest.fixture(scope="module")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return new_age_key(tmp_path_factory.mktemp("age"))


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    return new_age_key(tmp_path_factory.mktemp("age-other"))


def secret(name: str = "db", namespace: str | None = "apps") -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {"password": PASSWORD},
        "data": {"token": TOKEN_B64},
    }


def encrypt(path: Path, body: dict[str, Any], recipient: str, *options: str) -> Path:
    """Writes `body` to `path` and encrypts it in place with the real sops, as a user would before committing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body) if path.suffix == ".json" else yaml.safe_dump(body, sort_keys=False))
    sops = str(locate("sops"))
    argv = [sops, "--config", "/dev/null", "--encrypt", "--age", recipient, *options, "--in-place", str(path)]
    subprocess.run(argv, check=True, capture_output=True, cwd=path.parent)
    assert PASSWORD not in path.read_text()
    return path


DATA_ONLY = ("--encrypted-regex", "^(data|stringData)$")


async def render_dir(root: Path, keys: DecryptionKeys | None, path: str = ".") -> list[dict[str, Any]]:
    return await render(RenderRequest(root=root, path=path, decryption=keys))


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind]
    return found


async def test_an_encrypted_secret_renders_as_its_plaintext_with_the_right_key(tmp_path: Path, age_key: AgeKey) -> None:
    encrypt(tmp_path / "secret.yaml", secret(), age_key.recipient, *DATA_ONLY)
    (tmp_path / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")

    objects = await render_dir(tmp_path, age_key.keys())

    assert by_kind(objects, "Secret") == secret(), "decrypted exactly, without the sops metadata"
    assert by_kind(objects, "ConfigMap")["metadata"]["name"] == "settings"


async def test_a_fully_encrypted_document_and_an_encrypted_json_file_decrypt_too(
    tmp_path: Path, age_key: AgeKey
) -> None:
    encrypt(tmp_path / "all.yaml", secret("everything"), age_key.recipient)
    encrypt(tmp_path / "other.json", secret("from-json"), age_key.recipient)
    assert "everything" not in (tmp_path / "all.yaml").read_text()

    objects = await render_dir(tmp_path, age_key.keys())

    assert sorted(obj["metadata"]["name"] for obj in objects) == ["everything", "from-json"]
    assert all(obj["stringData"] == {"password": PASSWORD} for obj in objects)


async def test_a_wrong_key_fails_naming_the_object_and_its_recipients_never_a_value(
    tmp_path: Path, age_key: AgeKey, other_key: AgeKey
) -> None:
    encrypt(tmp_path / "secrets" / "db.yaml", secret(), age_key.recipient, *DATA_ONLY)

    with pytest.raises(RenderError) as caught:
        await render_dir(tmp_path, other_key.keys())

    message = str(caught.value)
    assert message.startswith("Secret apps/db in secrets/db.yaml document 1 (line 1) cannot be decrypted")
    assert f"none of the age keys in {ORIGIN} is one of its recipients ({age_key.recipient})" in message
    assert PASSWORD not in message and TOKEN_B64 not in message and "ENC[" not in message


async def test_without_decryption_an_encrypted_document_says_a_key_is_needed(tmp_path: Path, age_key: AgeKey) -> None:
    encrypt(tmp_path / "db.yaml", secret(), age_key.recipient, *DATA_ONLY)

    with pytest.raises(RenderError) as caught:
        await render_dir(tmp_path, None)

    assert str(caught.value) == (
        "Secret apps/db in db.yaml document 1 (line 1) is encrypted with SOPS, so a decryption key is needed: "
        "set spec.decryption.secretRef to a Secret holding its age key (*.agekey)"
    )


async def test_a_fully_encrypted_document_is_named_by_its_file_only(tmp_path: Path, age_key: AgeKey) -> None:
    encrypt(tmp_path / "db.yaml", secret("hidden-name"), age_key.recipient)

    with pytest.raises(RenderError, match=r"^db.yaml document 1 \(line 1\) is encrypted with SOPS") as caught:
        await render_dir(tmp_path, None)
    assert "hidden-name" not in str(caught.value)


async def test_kustomize_output_with_an_encrypted_secret_is_decrypted_after_the_build(
    tmp_path: Path, age_key: AgeKey
) -> None:
    encrypt(tmp_path / "app" / "secret.yaml", secret(namespace=None), age_key.recipient, *DATA_ONLY)
    (tmp_path / "app" / "kustomization.yaml").write_text(
        "namespace: shop\nresources: [secret.yaml]\nlabels: [{pairs: {team: payments}}]\n"
        "configMapGenerator: [{name: settings, literals: [MODE=prod]}]\n"
    )

    objects = await render_dir(tmp_path, age_key.keys(), "app")

    decrypted = by_kind(objects, "Secret")
    assert decrypted["stringData"] == {"password": PASSWORD}
    assert decrypted["data"] == {"token": TOKEN_B64}
    assert decrypted["metadata"] == {"name": "db", "namespace": "shop", "labels": {"team": "payments"}}
    assert "sops" not in decrypted
    assert by_kind(objects, "ConfigMap")["metadata"]["namespace"] == "shop"


async def test_a_value_moved_to_another_key_is_refused_without_showing_it(tmp_path: Path, age_key: AgeKey) -> None:
    path = encrypt(tmp_path / "db.yaml", secret(), age_key.recipient, *DATA_ONLY)
    body = yaml.safe_load(path.read_text())
    body["data"]["token"] = body["stringData"]["password"]
    path.write_text(yaml.safe_dump(body, sort_keys=False))

    with pytest.raises(RenderError) as caught:
        await render_dir(tmp_path, age_key.keys())

    message = str(caught.value)
    assert "Secret apps/db in db.yaml document 1 (line 1) cannot be decrypted: a value was altered" in message
    assert PASSWORD not in message and "ENC[" not in message


async def test_nothing_is_left_on_disk_after_a_render(
    tmp_path: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    encrypt(tmp_path / "repo" / "db.yaml", secret(), age_key.recipient, *DATA_ONLY)

    await render_dir(tmp_path / "repo", age_key.keys())

    assert list(scratch.iterdir()) == [], "the private key directory is removed"
    assert PASSWORD not in "".join(path.read_text() for path in (tmp_path / "repo").iterdir())


async def test_every_key_of_the_secret_is_tried(tmp_path: Path, age_key: AgeKey, other_key: AgeKey) -> None:
    encrypt(tmp_path / "db.yaml", secret(), age_key.recipient, *DATA_ONLY)
    keys = decryption_keys({"a.agekey": other_key.identity, "b.agekey": age_key.identity}, ORIGIN)

    assert by_kind(await render_dir(tmp_path, keys), "Secret")["stringData"] == {"password": PASSWORD}


# -- the decryption Secret ---------------------------------------------------------------------------


def test_only_agekey_entries_are_read_and_never_shown(age_key: AgeKey) -> None:
    keys = decryption_keys({"identity.agekey": age_key.identity, "notes.txt": b"AGE-SECRET-KEY-1NOTAKEY"}, ORIGIN)

    [identity] = keys.age_identities
    assert identity.startswith(b"AGE-SECRET-KEY-1") and identity in age_key.identity
    assert keys.origin == ORIGIN
    assert identity.decode() not in repr(keys)


def test_a_secret_without_agekey_entries_is_refused() -> None:
    with pytest.raises(RenderError, match=rf"^{ORIGIN} holds no key ending in .agekey"):
        decryption_keys({"identity": b"AGE-SECRET-KEY-1ABC"}, ORIGIN)


def test_an_agekey_entry_without_an_identity_is_named_not_shown() -> None:
    with pytest.raises(RenderError) as caught:
        decryption_keys({"broken.agekey": b"not-a-key-but-a-secret"}, ORIGIN)
    assert str(caught.value) == f"the key 'broken.agekey' of {ORIGIN} holds no age identity (AGE-SECRET-KEY-1…)"


# -- detection and scrubbing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "encrypted"),
    [
        ({"kind": "Secret", "sops": {"mac": "ENC[…]", "age": []}}, True),
        ({"kind": "Secret", "sops": {"age": []}}, False),
        ({"kind": "ConfigMap", "data": {"sops": "mac"}}, False),
        ({"kind": "Thing", "sops": "mac"}, False),
        (["sops"], False),
        (None, False),
    ],
)
def test_a_document_is_encrypted_when_it_carries_sops_metadata_with_a_mac(body: Any, encrypted: bool) -> None:
    assert is_encrypted(body) is encrypted


def test_scrubbing_keeps_the_first_line_and_drops_anything_value_like() -> None:
    text = (
        'Error: cannot parse "hunter2" at ENC[AES256_GCM,data:abc=,type:str] near '
        "c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZw==\nsecond line 'also-secret'\n"
    )
    assert scrub(text) == "Error: cannot parse … at … near …"


# -- the Sync's spec.decryption -----------------------------------------------------------------------------


def sync_with(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {"sourceRef": {"name": "repo"}, **spec},
    }


def test_spec_decryption_is_read_with_its_default_provider() -> None:
    spec = SyncSpec.from_object(sync_with(decryption={"secretRef": {"name": "sops-age"}}))
    assert spec.decryption == DecryptionSpec(secret_name="sops-age", provider=DecryptionProvider.SOPS)
    assert SyncSpec.from_object(sync_with()).decryption is None


def test_spec_decryption_needs_a_secret_and_a_known_provider() -> None:
    with pytest.raises(SpecError, match="secretRef"):
        SyncSpec.from_object(sync_with(decryption={"provider": "sops"}))
    with pytest.raises(SpecError, match="provider"):
        SyncSpec.from_object(sync_with(decryption={"provider": "vault", "secretRef": {"name": "k"}}))


def test_the_crd_validates_spec_decryption_like_the_parser() -> None:
    [sync_crd] = [crd for crd in load_crds() if crd["spec"]["names"]["kind"] == "Sync"]
    schema = sync_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    decryption = schema["decryption"]
    assert decryption["required"] == ["secretRef"]
    assert decryption["properties"]["provider"]["enum"] == [provider.value for provider in DecryptionProvider]
    assert decryption["properties"]["provider"]["default"] == DecryptionProvider.SOPS.value
    assert decryption["properties"]["secretRef"]["required"] == ["name"]

"""Secrets encrypted with SOPS (age) in Git, end to end: applied decrypted, and their values never show up
in the controller's log, Events, status, history (SyncRecords), `moor diff` or the artifact cache.
Real sops, age-keygen, git and a real control plane."""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path
from typing import Any

from moor.binaries import locate
from moor.controller.rendering import sync_key
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, manifest


def age_key(directory: Path) -> tuple[bytes, str]:
    """A new age identity (the key file as age-keygen writes it) and its public recipient."""
    path = directory / f"age-{secrets.token_hex(4)}.txt"
    subprocess.run([str(locate("age-keygen")), "-o", str(path)], check=True, capture_output=True)
    text = path.read_bytes()
    path.unlink()
    recipient = next(line.split(b": ")[1] for line in text.splitlines() if line.startswith(b"# public key: "))
    return text, recipient.decode()


def key_secret(moor: Moor, name: str, identity: bytes) -> None:
    data = {"identity.agekey": base64.b64encode(identity).decode()}
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}))


def encrypted_secret(repo: GitWorkspace, relpath: str, recipient: str, password: str, token: str) -> None:
    """Writes the Secret `db` to the work tree and encrypts it in place, as a user does before committing."""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "type": "Opaque",
        "stringData": {"password": password},
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }
    path = repo.write(relpath, manifest(body))
    argv = [str(locate("sops")), "--config", "/dev/null", "--encrypt", "--age", recipient]
    argv += ["--encrypted-regex", "^(data|stringData)$", "--in-place", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    assert password not in path.read_text()


def sync(name: str, **spec: Any) -> dict[str, Any]:
    body = {"sourceRef": {"name": "app"}, "path": "./app", "interval": "1h", "retryInterval": "2s", **spec}
    return {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": name}, "spec": body}


def everything_moor_wrote(moor: Moor, controller: ControllerProcess) -> dict[str, str]:
    """Every place a value must never reach, as text."""
    ns = moor.namespace
    return {
        "controller log": controller.log(),
        "events": moor.kubectl("get", "events", "-n", ns, "-o", "yaml").stdout,
        "syncs (status)": moor.kubectl("get", "syncs", "-n", ns, "-o", "yaml").stdout,
        "syncrecords (history)": moor.kubectl("get", "syncrecords", "-n", ns, "-o", "yaml").stdout,
        "artifact cache": "\n".join(path.read_text(errors="replace") for path in checked_out(controller)),
    }


def checked_out(controller: ControllerProcess) -> list[Path]:
    """The files of every revision the controller fetched (not Git's compressed objects)."""
    files = (controller.directory / "artifacts").rglob("*")
    return [path for path in files if path.is_file() and ".git" not in path.parts]


def assert_never_shown(places: dict[str, str], *values: str) -> None:
    for where, text in places.items():
        for value in values:
            assert value not in text, f"a secret value appears in the {where}"


def test_encrypted_secrets_are_applied_decrypted_and_never_leak(
    moor: Moor, git_repo: GitWorkspace, controller: ControllerProcess, tmp_path: Path
) -> None:
    identity, recipient = age_key(tmp_path)
    password, token = f"pw-{secrets.token_hex(12)}", f"tok-{secrets.token_hex(12)}"
    token_b64 = base64.b64encode(token.encode()).decode()
    key_secret(moor, "sops-age", identity)
    encrypted_secret(git_repo, "app/db.yaml", recipient, password, token)
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"color": "blue"})))
    commit = git_repo.commit("an encrypted Secret")
    git_repo.push()

    moor.source_and_sync(git_repo, "./app", sync_spec="decryption: {provider: sops, secretRef: {name: sops-age}}")
    moor.wait_condition("sync", "app", "True", revision=commit)

    applied = moor.get("secret", "db")
    assert applied is not None
    assert base64.b64decode(applied["data"]["password"]).decode() == password
    assert base64.b64decode(applied["data"]["token"]).decode() == token
    assert "sops" not in applied
    assert applied["metadata"]["labels"]["moor.dev/sync"] == sync_key(moor.get("sync", "app") or {})

    # A Sync without decryption, and one whose key is not a recipient: BuildFailed, naming the object.
    other_identity, _ = age_key(tmp_path)
    key_secret(moor, "wrong-age", other_identity)
    moor.apply(manifest(sync("no-key"), sync("wrong-key", decryption={"secretRef": {"name": "wrong-age"}})))
    no_key = moor.wait_condition("sync", "no-key", "False", reason="BuildFailed")
    assert "Secret db in app/db.yaml document 1 (line 1) is encrypted with SOPS" in no_key["message"]
    assert "a decryption key is needed" in no_key["message"]
    wrong = moor.wait_condition("sync", "wrong-key", "False", reason="BuildFailed")
    assert "Secret db in app/db.yaml document 1 (line 1) cannot be decrypted" in wrong["message"]
    assert f"none of the age keys in the decryption Secret {moor.namespace}/wrong-age" in wrong["message"]
    assert f"({recipient})" in wrong["message"]

    # `moor diff` of a checkout holding a new value: the Secret would change, its values are masked.
    new_password = f"pw-{secrets.token_hex(12)}"
    encrypted_secret(git_repo, "app/db.yaml", recipient, new_password, token)
    result = moor.cli("diff", "sync", "app", "--path", str(git_repo.work / "app"))
    assert result.returncode == 1, result.stderr
    assert f"Secret {moor.namespace}/db would be changed" in result.stdout
    assert "-  password: '*** (secret value) #" in result.stdout
    assert "+  password: '*** (secret value) #" in result.stdout, "a changed value shows as changed, masked"

    places = everything_moor_wrote(moor, controller)
    assert "cannot be decrypted" in places["syncrecords (history)"], "the failures are in the history"
    assert "BuildFailed" in places["events"]
    assert any(path.name == "db.yaml" for path in checked_out(controller))
    places["moor diff"] = result.stdout + result.stderr
    encoded = [base64.b64encode(value.encode()).decode() for value in (password, new_password)]
    assert_never_shown(places, password, token, token_b64, new_password, *encoded)

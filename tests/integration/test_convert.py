"""`moor convert`'s output is accepted by the real API server: the CRDs' schemas validate every field
(kubectl's strict field validation: an unknown or misspelled field would be refused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from moor.cli.convert import convert
from tests.support.cluster_fixtures import Kubectl
from tests.unit.test_convert import ARGO, FLUX

pytestmark = pytest.mark.cluster


def test_converted_flux_and_argo_objects_are_accepted_by_the_cluster(
    moor_installed: Path, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    # healthCheckExprs become spec.healthChecks, which the Sync CRD learns in the same release; left out here.
    flux = list(yaml.safe_load_all(FLUX))
    for document in flux:
        document["spec"].pop("healthCheckExprs", None)
    (tmp_path / "flux.yaml").write_text(yaml.safe_dump_all(flux))
    (tmp_path / "argo.yaml").write_text(ARGO)

    result = CliRunner().invoke(convert, [str(tmp_path), "-n", namespace])

    assert result.exit_code == 0, result.output
    objects = list(yaml.safe_load_all(result.stdout))
    assert len(objects) == 10
    applied = kubectl("apply", "--server-side", "--field-manager=convert-test", "-f", "-", input=result.stdout)
    assert applied.returncode == 0, applied.stderr
    kinds = "syncs.moor.dev,gitrepositories.moor.dev,ocirepositories.moor.dev,helmrepositories.moor.dev"
    listed = kubectl("get", kinds, "-n", namespace, "-o", "name")
    assert sorted(listed.stdout.split()) == sorted(
        f"{obj['kind'].lower()}.moor.dev/{obj['metadata']['name']}" for obj in objects
    )

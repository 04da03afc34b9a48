"""Which Syncs a source's or a Sync's change wakes: those that use it, found without looking at the others."""

from __future__ import annotations

from typing import Any

from moor.controller.dependents import Dependents, targets_of


def sync(name: str, namespace: str = "apps", **spec: Any) -> dict[str, Any]:
    return {"kind": "Sync", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_a_source_wakes_the_syncs_that_name_it_in_their_own_namespace_by_default() -> None:
    index: Dependents[str] = Dependents()
    index.update("web", sync("web", sourceRef={"name": "fleet"}))
    index.update("db", sync("db", sourceRef={"name": "fleet", "namespace": "shared"}))
    index.update("chart", sync("chart", sourceRef={"kind": "HelmRepository", "name": "fleet"}))
    assert index.of("GitRepository", "apps", "fleet") == {"web"}
    assert index.of("GitRepository", "shared", "fleet") == {"db"}
    assert index.of("HelmRepository", "apps", "fleet") == {"chart"}
    assert index.of("OCIRepository", "apps", "fleet") == set()


def test_a_sync_wakes_the_syncs_that_depend_on_it() -> None:
    index: Dependents[str] = Dependents()
    index.update("api", sync("api", sourceRef={"name": "fleet"}, dependsOn=[{"name": "db"}]))
    index.update(
        "jobs", sync("jobs", "batch", sourceRef={"name": "fleet"}, dependsOn=[{"name": "db", "namespace": "apps"}])
    )
    assert index.of("Sync", "apps", "db") == {"api", "jobs"}
    assert index.of("Sync", "batch", "db") == set()


def test_a_changed_spec_moves_the_sync_and_a_deleted_one_is_forgotten() -> None:
    index: Dependents[str] = Dependents()
    index.update("web", sync("web", sourceRef={"name": "old"}, dependsOn=[{"name": "db"}]))
    index.update("web", sync("web", sourceRef={"name": "new"}))
    assert index.of("GitRepository", "apps", "old") == set()
    assert index.of("Sync", "apps", "db") == set()
    assert index.of("GitRepository", "apps", "new") == {"web"}
    index.remove("web")
    assert index.of("GitRepository", "apps", "new") == set()
    index.remove("web")  # twice: nothing left to forget


def test_a_spec_without_a_source_name_or_with_malformed_dependencies_names_nothing() -> None:
    assert targets_of(sync("web", sourceRef={}, dependsOn=["db", {"namespace": "x"}])) == frozenset()
    assert targets_of({"metadata": {"name": "bare"}}) == frozenset()

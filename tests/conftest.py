"""Shared fixtures: one local control plane per test session, a namespace per test, real Git servers."""

pytest_plugins = [
    "tests.support.cluster_fixtures",
    "tests.support.git_fixtures",
    "tests.support.moor_fixtures",
    "tests.support.fault_proxy",
    "tests.support.registry_fixtures",
]

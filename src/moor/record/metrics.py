"""Prometheus metrics of the controller, served by `moor run --metrics-port` on `/metrics`.

Every metric is documented in docs/metrics.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class _RequestCollector(Collector):
    """Reads the API client's own request counter, so the figure is exactly what was sent."""

    def __init__(self, requests: Counter[str]) -> None:
        self._requests = requests

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "moor_api_requests", "Requests sent to the Kubernetes API server, by verb.", labels=["verb"]
        )
        for verb, count in sorted(self._requests.items()):
            family.add_metric([verb], count)
        yield family


class _GaugeCallback(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[Metric]:
        gauge = Gauge(self._name, self._documentation, registry=None)
        gauge.set(self._read())
        yield from gauge.collect()


class Metrics:
    """The controller's metrics in their own registry (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "name"]
        self.reconcile_duration = Histogram(
            "moor_reconcile_duration_seconds",
            "Time one reconcile took, by kind and result.",
            ["kind", "result"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180),
            registry=self.registry,
        )
        self.applied = PromCounter(
            "moor_applied_objects", "Objects created or updated by a Sync.", labels, registry=self.registry
        )
        self.pruned = PromCounter("moor_pruned_objects", "Objects a Sync deleted.", labels, registry=self.registry)
        self.failures = PromCounter(
            "moor_reconcile_failures",
            "Reconciles that ended not Ready, by reason.",
            ["kind", *labels, "reason"],
            registry=self.registry,
        )
        self.drifted = Gauge(
            "moor_drifted_objects",
            "Objects of a Sync that differ from Git and were left so (alert mode).",
            labels,
            registry=self.registry,
        )
        self.drift_corrections = PromCounter(
            "moor_drift_corrections",
            "Drifted objects a Sync put back to the Git state.",
            labels,
            registry=self.registry,
        )

    def watch_api_requests(self, requests: Counter[str]) -> None:
        self.registry.register(_RequestCollector(requests))

    def watch_cache_size(self, read: Callable[[], float]) -> None:
        self.registry.register(_GaugeCallback("moor_cache_objects", "Managed objects held in the live cache.", read))

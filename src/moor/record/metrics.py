"""Prometheus metrics of the controller, served by `moor run --metrics-port` on `/metrics`.

Every metric is documented in docs/metrics.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moor.record.dora import DeliveryFigures


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


class _LabelledGaugeCallback(Collector):
    """A gauge with one label whose values are read at each scrape (`read` gives value by label)."""

    def __init__(self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        self._name, self._documentation, self._label, self._read = name, documentation, label, read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, figure in sorted(self._read().items()):
            family.add_metric([value], figure)
        yield family


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
        self.task_restarts = PromCounter(
            "moor_task_restarts",
            "Restarts of a supervised background task after it failed, by task.",
            ["task"],
            registry=self.registry,
        )

        self.notifications = PromCounter(
            "moor_notifications",
            "Notifications by Provider and result: sent, failed, deduplicated, dropped.",
            [*labels, "result"],
            registry=self.registry,
        )
        # Delivery metrics (DORA), recomputed from the SyncRecords; namespace="" and name="" is every Sync.
        self.deployments = Gauge(
            "moor_deployments", "Revisions deployed healthy within the delivery window.", labels, registry=self.registry
        )
        self.deployment_frequency = Gauge(
            "moor_deployment_frequency_per_day",
            "Revisions deployed healthy per day, over the delivery window.",
            labels,
            registry=self.registry,
        )
        self.lead_time = Gauge(
            "moor_lead_time_seconds",
            "Time from commit to deployed healthy, by quantile (0.5, 0.9), over the delivery window.",
            [*labels, "quantile"],
            registry=self.registry,
        )
        self.change_failure_rate = Gauge(
            "moor_change_failure_ratio",
            "Revisions that failed or were rolled back / revisions tried, over the delivery window.",
            labels,
            registry=self.registry,
        )
        self.time_to_restore = Gauge(
            "moor_time_to_restore_seconds",
            "Time from a failed revision to the next healthy state, by quantile (0.5, 0.9), over the window.",
            [*labels, "quantile"],
            registry=self.registry,
        )

    def set_delivery(self, figures: Mapping[tuple[str, str], DeliveryFigures]) -> None:
        """Replaces every delivery metric with `figures` (per Sync, and ("", "") for all of them)."""
        gauges = (self.deployments, self.deployment_frequency, self.lead_time, self.change_failure_rate)
        for gauge in (*gauges, self.time_to_restore):
            gauge.clear()
        for (namespace, name), figure in figures.items():
            self.deployments.labels(namespace, name).set(figure.deployments)
            self.deployment_frequency.labels(namespace, name).set(figure.deployments_per_day)
            if figure.change_failure_rate is not None:
                self.change_failure_rate.labels(namespace, name).set(figure.change_failure_rate)
            for quantile, lead, restore in (
                ("0.5", figure.lead_time_p50, figure.time_to_restore_p50),
                ("0.9", figure.lead_time_p90, figure.time_to_restore_p90),
            ):
                if lead is not None:
                    self.lead_time.labels(namespace, name, quantile).set(lead)
                if restore is not None:
                    self.time_to_restore.labels(namespace, name, quantile).set(restore)

    def watch_api_requests(self, requests: Counter[str]) -> None:
        self.registry.register(_RequestCollector(requests))

    def watch_cache_size(self, read: Callable[[], float]) -> None:
        self.registry.register(_GaugeCallback("moor_cache_objects", "Managed objects held in the live cache.", read))

    def watch_informers(self, read: Callable[[], Mapping[str, float]]) -> None:
        """`moor_informers{state}`: informers listing, watching and failing, as `read` counts them at each scrape."""
        self.registry.register(
            _LabelledGaugeCallback(
                "moor_informers",
                "Informers (list + watch of one kind) by state: listing, watching, failing.",
                "state",
                read,
            )
        )

"""`moor stats`: delivery metrics (DORA) per Sync and overall, from the SyncRecords and commit times.

The same figures as the controller's `/metrics` (moor.record.dora); docs/metrics.md says how each is
computed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from moor.cli.audit import parse_length
from moor.cli.options import Target, output_option, print_document, run_async, target_options
from moor.record.dora import ALL, DEFAULT_WINDOW, DeliveryFigures, commit_times_of, delivery_figures
from moor.record.history import HistoryStore
from moor.resources import API_VERSION, GITREPOSITORY


@click.command()
@click.option("--window", default="30d", show_default=True, help="How far back to look: 30d, 2w, 12h.")
@output_option
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@target_options
def stats(target: Target, window: str, output: str, all_namespaces: bool) -> None:
    """Deployment frequency, lead time, change failure rate and time to restore, per Sync and overall."""
    length = parse_length(window) if window else DEFAULT_WINDOW
    raise SystemExit(run_async(_stats(target, length, output, all_namespaces)))


async def _stats(target: Target, window: timedelta, output: str, all_namespaces: bool) -> int:
    namespace = "" if all_namespaces else target.resolve_namespace()
    async with target.connect() as api:
        records = await HistoryStore(api).list(namespace)
        resource = await api.discovery.resolve(API_VERSION, GITREPOSITORY.kind)
        repositories = (await api.list(resource, namespace=namespace or None)).items if resource else []
    figures = delivery_figures(
        records, now=datetime.now(UTC), window=window, commit_times=commit_times_of(repositories)
    )
    overall = figures.pop(ALL)
    if output != "table":
        document = {
            "overall": overall.to_dict(),
            "syncs": [{"namespace": ns, "name": name, **figure.to_dict()} for (ns, name), figure in figures.items()],
        }
        print_document(document, output)
        return 0
    _print(figures, overall, window)
    return 0


def _print(figures: dict[tuple[str, str], DeliveryFigures], overall: DeliveryFigures, window: timedelta) -> None:
    days = window.total_seconds() / 86400
    table = Table(title=f"Delivery over the last {days:g} days", title_justify="left", box=None, pad_edge=False)
    columns = (
        "SYNC",
        "DEPLOYS",
        "PER DAY",
        "LEAD P50",
        "LEAD P90",
        "FAILED",
        "FAILURE RATE",
        "RESTORE P50",
        "RESTORE P90",
    )
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if column == "SYNC" else "right")
    for (namespace, name), figure in figures.items():
        table.add_row(f"{namespace}/{name}", *_cells(figure))
    table.add_row("[bold]all[/]", *_cells(overall))
    Console().print(table)


def _cells(figure: DeliveryFigures) -> list[str]:
    rate = figure.change_failure_rate
    return [
        str(figure.deployments),
        f"{figure.deployments_per_day:.2f}",
        human_seconds(figure.lead_time_p50),
        human_seconds(figure.lead_time_p90),
        f"{figure.failed_changes}/{figure.changes}",
        "-" if rate is None else f"{rate:.0%}",
        human_seconds(figure.time_to_restore_p50),
        human_seconds(figure.time_to_restore_p90),
    ]


def human_seconds(seconds: float | None) -> str:
    """Two units at most: `None` -> `-`; 42 -> `42s`; 3900 -> `1h5m`; 200000 -> `2d7h`."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    index = next(i for i, (_, size) in enumerate(units) if whole >= size or size == 1)
    unit, size = units[index]
    text = f"{whole // size}{unit}"
    if index + 1 < len(units):
        minor_unit, minor_size = units[index + 1]
        if minor := (whole % size) // minor_size:
            text += f"{minor}{minor_unit}"
    return text

"""Helm chart repositories over HTTP(S): the index.yaml, read bounded and reduced to what choosing a chart
needs (`parse_index`, `parse_index_file`), and the client that fetches it and the charts (`ChartRepositoryClient`)."""

from moor.source.helm.client import ChartRepositoryClient, IndexAnswer
from moor.source.helm.errors import ChartNotFound, ChartRepositoryError, IndexTooLarge, InvalidIndex, NoMatchingVersion
from moor.source.helm.index import ChartEntry, ChartIndex, IndexLimits, check_chart_name, parse_index, parse_index_file

__all__ = [
    "ChartEntry",
    "ChartIndex",
    "ChartNotFound",
    "ChartRepositoryClient",
    "ChartRepositoryError",
    "IndexAnswer",
    "IndexLimits",
    "IndexTooLarge",
    "InvalidIndex",
    "NoMatchingVersion",
    "check_chart_name",
    "parse_index",
    "parse_index_file",
]

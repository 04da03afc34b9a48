"""Values the API server canonicalises compare equal to the forms Git writes."""

from decimal import Decimal

import pytest

from moor.plan import ROOT, parse_quantity
from moor.plan.normalize import is_zero, scalars_equal

CPU = ROOT / "spec" / "containers" / 0 / "resources" / "requests" / "cpu"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        ("1Gi", Decimal(1073741824)),
        ("1073741824", Decimal(1073741824)),
        ("1e3", Decimal(1000)),
        ("1k", Decimal(1000)),
        ("1.5Mi", Decimal(1572864)),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
        ("100u", Decimal("0.0001")),
    ],
)
def test_quantities_parse_to_exact_numbers(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Qi", "1.2.3", True, None, [1]])
def test_things_that_are_not_quantities_parse_to_none(text: object) -> None:
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("desired", "live"),
    [("0.5", "500m"), ("1073741824", "1Gi"), (1, "1"), ("2000m", "2"), (0.1, "100m")],
)
def test_quantities_in_resource_fields_compare_by_value(desired: object, live: object) -> None:
    assert scalars_equal(desired, live, CPU)


def test_quantities_compare_by_value_only_where_the_api_stores_quantities() -> None:
    data_key = ROOT / "data" / "limit"
    assert not scalars_equal("1k", "1000", data_key)
    assert not scalars_equal("0.5", "500m", CPU.parent / "cpuCount" / "x")
    assert scalars_equal("1Gi", "1024Mi", ROOT / "spec" / "volumes" / 0 / "emptyDir" / "sizeLimit")
    assert scalars_equal("500m", "0.5", ROOT / "spec" / "metrics" / 0 / "resource" / "target" / "averageValue")


def test_int_or_string_ports_compare_by_value() -> None:
    target_port = ROOT / "spec" / "ports" / 0 / "targetPort"
    assert scalars_equal("8080", 8080, target_port)
    assert scalars_equal(8080, "8080", target_port)
    assert not scalars_equal("http", 8080, target_port)
    assert not scalars_equal("8080", 8080, ROOT / "data" / "port-text")


def test_numbers_compare_by_value_but_booleans_are_not_numbers() -> None:
    replicas = ROOT / "spec" / "replicas"
    assert scalars_equal(1, 1.0, replicas)
    assert not scalars_equal(True, 1, replicas)
    assert not scalars_equal(1, True, replicas)
    assert not scalars_equal("1", 1, replicas)


@pytest.mark.parametrize("value", [None, "", False, 0, {}, []])
def test_zero_values_are_the_ones_the_server_drops(value: object) -> None:
    assert is_zero(value)


@pytest.mark.parametrize("value", ["x", True, 1, {"a": 1}, [0]])
def test_other_values_are_not_zero(value: object) -> None:
    assert not is_zero(value)

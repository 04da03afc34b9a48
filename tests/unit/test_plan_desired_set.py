"""A render's desired objects and what each pass derives from them."""

import pytest

from moor.objects import ObjectRef
from moor.plan import DesiredSet, DuplicateObjectError


def config_map(name: str, **data: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "apps"}, "data": data}


def test_refs_follow_the_objects_and_the_inventory_is_sorted() -> None:
    desired = DesiredSet.of([config_map("b"), config_map("a")])
    assert [ref.name for ref in desired.refs] == ["b", "a"]
    assert [ref.name for ref in desired.inventory] == ["a", "b"]
    assert desired.inventory_entries[0] == ObjectRef("", "v1", "ConfigMap", "apps", "a").to_dict()


def test_fingerprints_tell_content_apart_including_types() -> None:
    same = DesiredSet.of([config_map("a", x="1"), config_map("b", x="1")]).fingerprints
    assert DesiredSet.of([config_map("a", x="1")]).fingerprints[0] == same[0]
    assert same[0] != same[1]  # another name
    assert (
        DesiredSet.of([config_map("a", x=1)]).fingerprints[0]
        != DesiredSet.of([config_map("a", x=True)]).fingerprints[0]
    )


def test_two_objects_with_one_name_are_refused() -> None:
    with pytest.raises(DuplicateObjectError, match="ConfigMap apps/a is declared more than once"):
        DesiredSet.of([config_map("a"), config_map("a", x="2")])

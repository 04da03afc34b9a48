"""The live cache's decoder: the same objects as json.loads, with repeated strings stored once."""

import json

from moor.shared_strings import SharedJsonDecoder, StringTable

EVENT = {
    "type": "MODIFIED",
    "object": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "apps", "labels": {"moor.dev/sync": "apps.web"}},
        "data": {"big": "x" * 500, "n": 1, "flag": True, "nothing": None, "items": ["a", {"b": [1.5]}]},
    },
}


def test_decodes_exactly_what_json_loads_decodes() -> None:
    text = json.dumps(EVENT).encode()
    assert SharedJsonDecoder().loads(text) == json.loads(text)


def test_keys_and_short_values_are_shared_across_documents() -> None:
    strings = SharedJsonDecoder()
    first = strings.loads(json.dumps(EVENT))
    second = strings.loads(json.dumps(EVENT).encode())
    first_metadata, second_metadata = first["object"]["metadata"], second["object"]["metadata"]
    assert next(iter(first_metadata)) is next(iter(second_metadata))  # the key "name"
    assert first_metadata["namespace"] is second_metadata["namespace"]
    assert first["object"]["data"]["big"] is not second["object"]["data"]["big"]  # long values are not kept


def test_the_table_starts_afresh_beyond_its_limit() -> None:
    table = StringTable(limit=10)
    strings = SharedJsonDecoder(table)
    for index in range(100):
        strings.loads(json.dumps({"uid": f"uid-{index}"}))
    assert len(table) <= 12


def test_rendered_documents_share_their_keys_and_short_values() -> None:
    from moor.render.safe_yaml import load_documents

    stream = (
        b"kind: ConfigMap\ndata: {mode: fast, blob: " + b"y" * 100 + b"}\n---\nkind: ConfigMap\ndata: {mode: fast}\n"
    )
    (_, first, _), (_, second, _) = load_documents(stream, max_aliases=10, max_alias_nodes=100)
    assert next(iter(first)) is next(iter(second))  # the key "kind"
    assert first["kind"] is second["kind"] and first["data"]["mode"] is second["data"]["mode"]
    assert first == {"kind": "ConfigMap", "data": {"mode": "fast", "blob": "y" * 100}}

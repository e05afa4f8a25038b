"""The name index: exact names by hash, wildcards through the trie, labels after."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter

from baton_schemas.triggers import Trigger
from baton_server.router.index import NameIndex, leaves_of

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)


def _add(index: NameIndex, **trigger: Any) -> uuid.UUID:
    automation_id = uuid.uuid4()
    index.add(automation_id, leaves_of(automation_id, _TRIGGER.validate_python(trigger)))
    return automation_id


def _event(name: str, resource_id: str = "r.1", **extra: Any) -> dict[str, Any]:
    return {"event": name, "resource": {"baton.resource.id": resource_id}, "related": [], **extra}


def _ids(index: NameIndex, event: dict[str, Any]) -> set[uuid.UUID]:
    return {hit.leaf.automation_id for hit in index.hits(event)}


def test_exact_prefix_glob_and_any_name() -> None:
    index = NameIndex()
    exact = _add(index, expect=["order.created"])
    prefix = _add(index, expect=["order.*"])
    glob = _add(index, expect=["*.failed"])
    anything = _add(index)
    assert _ids(index, _event("order.created")) == {exact, prefix, anything}
    assert _ids(index, _event("order.item.added")) == {prefix, anything}
    assert _ids(index, _event("etl.failed")) == {glob, anything}
    assert _ids(index, _event("order")) == {anything}


def test_only_the_candidates_are_tested_among_ten_thousand() -> None:
    index = NameIndex()
    for n in range(10_000):
        _add(index, expect=[f"app{n}.done"])
    wanted = _add(index, expect=["app42.*"])
    assert _ids(index, _event("app42.done")) == {wanted, index.candidates("app42.done")[0].automation_id}
    index.tested = 0
    index.hits(_event("app9999.done"))
    assert index.tested == 1


def test_labels_lists_wildcards_and_related() -> None:
    index = NameIndex()
    orders = _add(index, expect=["x"], match={"baton.resource.id": ["shop.order.*", "legacy.*"]})
    etl = _add(
        index, expect=["x"], match_related={"baton.resource.role": "flow", "baton.resource.name": "etl"}
    )
    assert _ids(index, _event("x", "shop.order.1")) == {orders}
    assert _ids(index, _event("x", "legacy.9")) == {orders}
    related = [
        {"baton.resource.id": "baton.flow.1", "baton.resource.role": "flow", "baton.resource.name": "etl"}
    ]
    assert _ids(index, _event("x", "other", related=related)) == {etl}


def test_for_each_keys_and_a_missing_label() -> None:
    index = NameIndex()
    _add(index, expect=["x"], for_each=["baton.resource.id", "region"])
    [hit] = index.hits(_event("x", "a") | {"resource": {"baton.resource.id": "a", "region": "eu"}})
    assert hit.bucket_key == "a\x1feu"
    assert index.hits(_event("x", "a")) == []  # no region: no key


def test_changes_and_removal() -> None:
    index = NameIndex()
    automation_id = uuid.uuid4()
    index.add(automation_id, leaves_of(automation_id, _TRIGGER.validate_python({"expect": ["a.*"]})))
    assert index.candidates("a.b")
    index.add(automation_id, leaves_of(automation_id, _TRIGGER.validate_python({"expect": ["b"]})))
    assert not index.candidates("a.b") and index.candidates("b")
    index.remove(automation_id)
    assert not index.candidates("b") and len(index) == 0


def test_compound_children_are_leaves_with_paths() -> None:
    automation_id = uuid.uuid4()
    trigger = _TRIGGER.validate_python(
        {
            "type": "sequence",
            "triggers": [{"expect": ["a"]}, {"type": "compound", "triggers": [{"expect": ["b"]}]}],
        }
    )
    assert [leaf.path for leaf in leaves_of(automation_id, trigger)] == ["0", "1.0"]

"""Which triggers an event can concern, found through an index over event names.

Every event trigger (a leaf of an automation's trigger tree) is filed under each name pattern of
its `expect` and `after` lists, or under `*` when it names none:

- an exact name in a dict, found by one hash lookup;
- a pattern with a `*` in a character trie, at the node of its text before the first `*`:
  walking the event's name down the trie meets every pattern that can match it, and only
  those. A pattern whose `*` is last matches every name below its node; one with a `*` inside
  is confirmed by its regular expression.

Only the candidates so found have their resource labels checked. The cost of an event grows
with the triggers that name it (or a wildcard covering it), not with all triggers. Pure: no
I/O, so it is tested and benchmarked alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from baton_schemas.events import RESOURCE_ID
from baton_schemas.matching import LabelFilter, Pattern, PatternKind, compile_pattern
from baton_schemas.triggers import CompoundTrigger, EventTrigger, Posture, SequenceTrigger, Trigger

ANY_NAME = "*"
_CACHED_NAMES = 10_000  # event names whose candidates are remembered (until the index changes)


def label_filter(labels: Mapping[str, str | list[str]]) -> LabelFilter:
    return LabelFilter(
        {
            key: tuple(compile_pattern(v) for v in ([value] if isinstance(value, str) else value))
            for key, value in labels.items()
        }
    )


@dataclass(eq=False, slots=True)
class Leaf:
    """One event trigger of an automation, compiled."""

    automation_id: UUID
    path: str  # "" for an automation whose trigger is this one; "0.1" inside compound ones
    trigger: EventTrigger
    expect: tuple[Pattern, ...]
    after: tuple[Pattern, ...]
    match: LabelFilter
    match_related: LabelFilter

    @property
    def proactive(self) -> bool:
        return self.trigger.posture is Posture.PROACTIVE

    def bucket_key(self, event: Mapping[str, Any]) -> str | None:
        """The for_each key of the event (its labels' values), or None if one is missing."""
        keys = self.trigger.for_each
        if not keys:
            return ""
        labels = event["resource"]
        values = []
        for key in keys:
            value = labels.get(key)
            if value is None:
                for related in event.get("related", ()):
                    if key in related:
                        value = related[key]
                        break
            if value is None:
                return None
            values.append(value)
        return "\x1f".join(values)

    def labels_match(self, event: Mapping[str, Any]) -> bool:
        if self.match and not self.match.matches(event["resource"]):
            return False
        if self.match_related:
            return any(self.match_related.matches(r) for r in event.get("related", ()))
        return True


@dataclass(frozen=True, slots=True)
class Hit:
    """An event concerns a leaf: it is expected (counts), opens a window (`after`), or both."""

    leaf: Leaf
    expected: bool
    opens: bool
    bucket_key: str


def leaves_of(automation_id: UUID, trigger: Trigger, path: str = "") -> list[Leaf]:
    if isinstance(trigger, EventTrigger):
        return [
            Leaf(
                automation_id,
                path,
                trigger,
                tuple(compile_pattern(p) for p in trigger.expect),
                tuple(compile_pattern(p) for p in trigger.after),
                label_filter(trigger.match),
                label_filter(trigger.match_related),
            )
        ]
    assert isinstance(trigger, CompoundTrigger | SequenceTrigger)
    found = []
    for index, child in enumerate(trigger.triggers):
        found += leaves_of(automation_id, child, f"{path}.{index}" if path else str(index))
    return found


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    entries: list[tuple[Pattern, Leaf]] = field(default_factory=list)


class NameIndex:
    def __init__(self) -> None:
        self._exact: dict[str, list[Leaf]] = {}
        self._root = _Node()
        self._filed: dict[UUID, list[tuple[Pattern, Leaf]]] = {}
        self._cache: dict[str, list[Leaf]] = {}
        self.tested = 0  # candidates whose labels were checked (for the benchmark)

    def __len__(self) -> int:
        return len(self._filed)

    def add(self, automation_id: UUID, leaves: Iterable[Leaf]) -> None:
        self.remove(automation_id)
        self._cache.clear()
        filed = []
        for leaf in leaves:
            patterns = {p.text: p for p in (*leaf.expect, *leaf.after)} or {
                ANY_NAME: compile_pattern(ANY_NAME)
            }
            for pattern in patterns.values():
                if pattern.kind is PatternKind.EXACT:
                    self._exact.setdefault(pattern.text, []).append(leaf)
                else:
                    self._node(pattern.prefix, create=True).entries.append((pattern, leaf))  # type: ignore[union-attr]
                filed.append((pattern, leaf))
        if filed:
            self._filed[automation_id] = filed

    def remove(self, automation_id: UUID) -> None:
        self._cache.clear()
        for pattern, leaf in self._filed.pop(automation_id, ()):
            if pattern.kind is PatternKind.EXACT:
                leaves = self._exact.get(pattern.text, [])
                leaves[:] = [x for x in leaves if x is not leaf]
                if not leaves:
                    self._exact.pop(pattern.text, None)
            else:
                node = self._node(pattern.prefix, create=False)
                if node is not None:
                    node.entries[:] = [(p, x) for p, x in node.entries if x is not leaf]

    def _node(self, prefix: str, *, create: bool) -> _Node | None:
        node = self._root
        for char in prefix:
            child = node.children.get(char)
            if child is None:
                if not create:
                    return None
                child = node.children[char] = _Node()
            node = child
        return node

    def candidates(self, name: str) -> list[Leaf]:
        """Every leaf with a name pattern matching `name`, each once (not to be changed: the
        same list is handed out for the same name until the index changes)."""
        cached = self._cache.get(name)
        if cached is None:
            if len(self._cache) >= _CACHED_NAMES:
                self._cache.clear()
            cached = self._cache[name] = self._walk(name)
        return cached

    def _walk(self, name: str) -> list[Leaf]:
        found: dict[int, Leaf] = {}
        for leaf in self._exact.get(name, ()):
            found[id(leaf)] = leaf
        node: _Node | None = self._root
        position = 0
        while node is not None:
            for pattern, leaf in node.entries:
                if pattern.kind is PatternKind.PREFIX or pattern.matches(name):
                    found[id(leaf)] = leaf
            if position == len(name):
                break
            node = node.children.get(name[position])
            position += 1
        return list(found.values())

    def hits(self, event: Mapping[str, Any]) -> list[Hit]:
        """The leaves this event concerns, with what it is to each."""
        name = event["event"]
        hits = []
        for leaf in self.candidates(name):
            self.tested += 1
            in_expect = any(p.matches(name) for p in leaf.expect)
            opens = any(p.matches(name) for p in leaf.after)
            if leaf.proactive:
                expected = in_expect or (not leaf.expect and not opens)
            else:  # a reactive trigger counts its `after` names as it counts `expect`
                expected = in_expect or opens or not (leaf.expect or leaf.after)
                opens = False
            if not (expected or opens) or not leaf.labels_match(event):
                continue
            key = leaf.bucket_key(event)
            if key is None:
                continue
            hits.append(Hit(leaf, expected, opens, key))
        return hits


def resource_id(event: Mapping[str, Any]) -> str:
    return str(event["resource"].get(RESOURCE_ID, ""))

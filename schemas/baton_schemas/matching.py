"""Matching event names and label values: the one rule, for the event store and the router.

A pattern is matched against the whole value. `*` matches any run of characters, dots
included, so a trailing `*` matches any suffix, as in the reference system:

    baton.flow-run.*     matches baton.flow-run.Failed and baton.flow-run.AwaitingRetry
    order.*              matches order.created and order.item.added, not order
    *.failed             matches etl.failed and a.b.failed
    order.created        matches only order.created

There is no other special character: `?`, `[`, `%` and `_` match themselves. A pattern with no
`*` is an exact match; one whose only `*` is at the end is a prefix match, which an index serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

WILDCARD = "*"


class PatternKind(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    GLOB = "glob"


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    kind: PatternKind = field(init=False)
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        star = self.text.find(WILDCARD)
        if star < 0:
            kind, regex = PatternKind.EXACT, None
        elif star == len(self.text) - 1:
            kind, regex = PatternKind.PREFIX, None
        else:
            kind = PatternKind.GLOB
            regex = re.compile(".*".join(re.escape(part) for part in self.text.split(WILDCARD)), re.DOTALL)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "_regex", regex)

    @property
    def prefix(self) -> str:
        """What every match starts with (the text before the first `*`)."""
        return self.text.split(WILDCARD, 1)[0]

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.kind is PatternKind.EXACT:
            return value == self.text
        if self.kind is PatternKind.PREFIX:
            return value.startswith(self.text[:-1])
        assert self._regex is not None
        return self._regex.fullmatch(value) is not None

    def sql_like(self) -> str:
        """The same pattern for SQL `LIKE ... ESCAPE '\\'`."""
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped.replace(WILDCARD, "%")


def compile_pattern(text: str) -> Pattern:
    if not text:
        raise ValueError("an empty pattern matches nothing: give a name or 'prefix.*'")
    return Pattern(text)


def matches(pattern: str, value: str | None) -> bool:
    return compile_pattern(pattern).matches(value)


def any_matches(patterns: Iterable[Pattern], value: str | None) -> bool:
    return any(p.matches(value) for p in patterns)


@dataclass(frozen=True, slots=True)
class LabelFilter:
    """Labels a resource must have: each key's value matching one of its patterns."""

    labels: Mapping[str, tuple[Pattern, ...]]

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> LabelFilter:
        """`["baton.resource.id=shop.order.*", "team=data"]`; a key given twice matches either."""
        labels: dict[str, list[Pattern]] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"{pair!r}: a label filter is KEY=PATTERN")
            labels.setdefault(key, []).append(compile_pattern(value))
        return cls({k: tuple(v) for k, v in labels.items()})

    def __bool__(self) -> bool:
        return bool(self.labels)

    def matches(self, resource: Mapping[str, str]) -> bool:
        return all(any_matches(patterns, resource.get(key)) for key, patterns in self.labels.items())


__all__ = ["LabelFilter", "Pattern", "PatternKind", "any_matches", "compile_pattern", "matches"]

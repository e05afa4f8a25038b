"""Event-name and label matching: one rule for the store's filters and, later, the router."""

from __future__ import annotations

import pytest

from baton_schemas.matching import LabelFilter, PatternKind, compile_pattern, matches


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.v2", False),
        ("order.*", "order.created", True),
        ("order.*", "order.item.added", True),  # any suffix, dots included
        ("order.*", "order", False),
        ("order*", "orders.shipped", True),
        ("baton.flow-run.*", "baton.flow-run.AwaitingRetry", True),
        ("*.failed", "etl.daily.failed", True),
        ("*.failed", "etl.failed.not", False),
        ("a*c", "abbbc", True),
        ("a*c", "abbbd", False),
        ("*", "anything.at.all", True),
        ("order.%", "order.created", False),  # no SQL wildcards
        ("order_x", "orderAx", False),
        ("a?c", "abc", False),  # no other glob characters
    ],
)
def test_a_star_matches_any_run_of_characters_and_nothing_else_is_special(
    pattern: str, value: str, expected: bool
) -> None:
    assert matches(pattern, value) is expected


def test_patterns_know_whether_an_index_can_serve_them() -> None:
    assert compile_pattern("a.b").kind is PatternKind.EXACT
    assert compile_pattern("a.*").kind is PatternKind.PREFIX
    assert compile_pattern("*.b").kind is PatternKind.GLOB
    assert compile_pattern("a.*").prefix == "a."


def test_the_sql_form_escapes_like_wildcards() -> None:
    assert compile_pattern("a_b%c*").sql_like() == "a\\_b\\%c%"
    assert compile_pattern("back\\slash*").sql_like() == "back\\\\slash%"


def test_an_empty_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty pattern"):
        compile_pattern("")


def test_a_label_filter_needs_every_key_and_one_pattern_per_key() -> None:
    wanted = LabelFilter.parse(["baton.resource.id=shop.order.*", "team=data", "team=ops"])
    assert wanted.matches({"baton.resource.id": "shop.order.42", "team": "ops"})
    assert not wanted.matches({"baton.resource.id": "shop.order.42"})
    assert not wanted.matches({"baton.resource.id": "shop.cart.1", "team": "data"})
    with pytest.raises(ValueError, match="KEY=PATTERN"):
        LabelFilter.parse(["no-equals-sign"])

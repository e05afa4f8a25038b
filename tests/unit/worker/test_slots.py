"""The worker's slot arithmetic: claims up to the limit, waiting deliveries by priority (pure)."""

from __future__ import annotations

from baton._worker._intake import QueueSpec, SlotBook


def test_deliveries_are_claimed_up_to_the_limit_and_the_rest_wait() -> None:
    book = SlotBook(limit=2)
    assert book.free() == 2
    assert book.offer("a", priority=1) is True
    assert book.offer("b", priority=1) is True
    assert book.offer("c", priority=1) is False
    assert (book.claiming, book.waiting, book.free()) == (2, 1, -1)


def test_waiting_deliveries_are_served_by_priority_then_arrival_when_a_slot_frees() -> None:
    book = SlotBook(limit=1)
    book.offer("running", priority=1)
    book.claimed(started=True)
    for item, priority in [("low-1", 5), ("high-1", 1), ("low-2", 5), ("high-2", 1)]:
        assert book.offer(item, priority) is False
    assert book.next_waiting() is None  # no slot yet
    served: list[object] = []
    for _ in range(4):
        book.finished()  # the run in the slot ends...
        served.append(book.next_waiting())  # ...and the best waiting delivery takes it
        book.claimed(started=True)
    assert served == ["high-1", "high-2", "low-1", "low-2"]


def test_a_claim_that_is_not_accepted_frees_its_slot() -> None:
    book = SlotBook(limit=1)
    book.offer("dup", priority=1)
    assert book.free() == 0
    book.claimed(started=False)
    assert (book.running, book.claiming, book.free()) == (0, 0, 1)


def test_claim_then_start_keeps_the_free_slots_and_the_end_of_a_run_gives_one_back() -> None:
    book = SlotBook(limit=3)
    book.offer("a", priority=1)
    assert book.free() == 2
    book.claimed(started=True)
    assert (book.running, book.free()) == (1, 2)
    book.finished()
    assert book.free() == 3


def test_an_unlimited_worker_claims_everything() -> None:
    book = SlotBook(limit=None)
    assert all(book.offer(i, priority=1) for i in range(1000))
    assert book.free() is None and book.can_claim()


def test_drain_returns_waiting_deliveries_in_priority_order() -> None:
    book = SlotBook(limit=0)
    book.offer("b", 2)
    book.offer("a", 1)
    assert book.drain_waiting() == ["a", "b"]
    assert book.waiting == 0


def test_queue_specs_sort_by_priority_then_name() -> None:
    specs = [QueueSpec(5, "baton.pool.p.low"), QueueSpec(1, "baton.pool.p.z"), QueueSpec(1, "baton.pool.p.a")]
    assert [s.name for s in sorted(specs)] == ["baton.pool.p.a", "baton.pool.p.z", "baton.pool.p.low"]

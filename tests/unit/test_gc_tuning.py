"""The server's garbage-collector settings."""

from __future__ import annotations

import gc

from baton_server.gc_tuning import YOUNG_THRESHOLD, tune_for_server


def test_the_startup_heap_is_frozen_and_young_collections_are_rarer() -> None:
    threshold = gc.get_threshold()
    try:
        tune_for_server()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, threshold[1], threshold[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

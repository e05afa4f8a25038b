"""The runs one process wrote last, as written: a guess at the current row that lets the next
transition skip reading it, never trusted further than the conditional write that follows it
(see tracker/transitions.py)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


class RunCache:
    """The runs this process wrote last, as written: a guess at the current row, never trusted
    further than the conditional write that follows it."""

    def __init__(self, size: int = 10_000) -> None:
        self._rows: OrderedDict[uuid.UUID, Mapping[str, Any]] = OrderedDict()
        self._size = size

    def get(self, run_id: uuid.UUID) -> Mapping[str, Any] | None:
        row = self._rows.get(run_id)
        if row is not None:
            self._rows.move_to_end(run_id)
        return row

    def put(self, run_id: uuid.UUID, row: Mapping[str, Any]) -> None:
        self._rows[run_id] = row
        self._rows.move_to_end(run_id)
        if len(self._rows) > self._size:
            self._rows.popitem(last=False)

    def forget(self, run_id: uuid.UUID) -> None:
        self._rows.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._rows)

"""Which worker and server versions work together (`baton_schemas.compat.refusal`)."""

from __future__ import annotations

from baton_schemas.compat import refusal


def _refusal(client_schema: int, client_min: int, server_schema: int, server_min: int) -> str | None:
    return refusal(
        client="worker",
        client_version="1.1",
        client_schema=client_schema,
        client_min=client_min,
        server_version="1.0",
        server_schema=server_schema,
        server_min=server_min,
    )


def test_each_side_must_read_what_the_other_writes() -> None:
    assert _refusal(1, 1, 1, 1) is None
    assert _refusal(2, 1, 2, 1) is None
    assert _refusal(1, 1, 2, 1) is not None  # the server writes 2; this worker reads only 1
    assert _refusal(2, 1, 1, 1) is not None  # the server reads only 1
    assert _refusal(2, 2, 3, 2) is not None  # the server writes 3
    assert _refusal(3, 2, 3, 1) is None


def test_the_refusal_names_both_versions_and_what_to_do() -> None:
    newer = _refusal(2, 1, 1, 1)
    assert newer == (
        "this worker (baton 1.1, message schema 2, reads 1-2) is too new for the server "
        "(baton 1.0, message schema 1, reads 1): run a worker of baton 1.0"
    )
    older = _refusal(1, 1, 2, 2)
    assert older is not None and "is too old for the server (baton 1.0, message schema 2, reads 2)" in older

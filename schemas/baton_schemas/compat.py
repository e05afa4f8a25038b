"""Which clients and servers can work together: the broker envelopes' schema versions.

Every envelope carries `schema_version`. A process writes `SCHEMA_VERSION` and reads
`MIN_SCHEMA_VERSION` to `SCHEMA_VERSION`. A worker tells the API its versions when it asks how
to reach the broker (`WorkerConnection`); a mismatch is refused there, before a single run is
claimed, with a message that names both sides' versions (`refusal`). The SDK's HTTP client
sends its versions in headers with every request, and the API refuses a mismatch the same way.
The tracker refuses an envelope of a schema it does not read, with the same kind of message.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from uuid import UUID

from ._base import SCHEMA_VERSION as _WRITTEN
from ._base import BatonModel

SCHEMA_VERSION = _WRITTEN  # the envelopes this code writes
MIN_SCHEMA_VERSION = 1  # the oldest this code still reads

# Sent by the SDK's HTTP client with every request, so that an API of another version can refuse
# it (409, naming both) before it does anything; a request without them is not checked.
VERSION_HEADER = "baton-version"
SCHEMA_HEADER = "baton-schema-version"
MIN_SCHEMA_HEADER = "baton-min-schema-version"


@cache
def baton_version() -> str:
    try:
        return version("baton")
    except PackageNotFoundError:
        return "unknown"


class WorkerConnection(BatonModel):
    """What the API tells a worker (`GET /api/workers/connection`, worker scope)."""

    broker_url: str
    installation_id: UUID
    server_version: str
    schema_version: int
    min_schema_version: int


def describe(role: str, baton: str, written: int, oldest: int) -> str:
    reads = f"{oldest}" if oldest == written else f"{oldest}-{written}"
    return f"{role} (baton {baton}, message schema {written}, reads {reads})"


def refusal(
    *,
    client: str,
    client_version: str,
    client_schema: int,
    client_min: int,
    server_version: str,
    server_schema: int,
    server_min: int,
) -> str | None:
    """None if each side reads what the other writes; else why not, naming both versions."""
    if server_min <= client_schema <= server_schema and client_min <= server_schema <= client_schema:
        return None
    age = "too old" if client_schema < server_schema else "too new"
    return (
        f"{describe(f'this {client}', client_version, client_schema, client_min)} is {age} for "
        f"{describe('the server', server_version, server_schema, server_min)}: "
        f"run a {client} of baton {server_version}"
    )

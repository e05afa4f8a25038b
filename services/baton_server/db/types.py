"""The connection type query functions accept: a plain connection or one lent by the pool."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# a string: asyncpg's classes are not subscriptable at run time
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

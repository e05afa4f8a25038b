"""Cache policies, as the reference system has them: what a task's cache key is made of.

    from baton import task
    from baton.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(hours=1))
    def fetch(url: str) -> bytes: ...

INPUTS (the task's arguments; `INPUTS - "client"` leaves one out), TASK_SOURCE (its code),
RUN_ID (the flow run: a cache within one run), FLOW_PARAMETERS (the flow run's parameters),
NO_CACHE, and DEFAULT (INPUTS + TASK_SOURCE + RUN_ID). Policies add up with `+`: the key is a
hash of the parts' keys (a part that gives none is left out; none at all: no caching).
`cache_key_fn=` beside a policy wins over it; `refresh_cache=True` runs the task and stores
its result anew. Arguments that cannot be hashed (a lock, an open file) give a warning naming
the fix, and the run is not cached: it runs as if it had no policy.
"""

from ._cache import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    RunId,
    TaskSource,
)

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
]

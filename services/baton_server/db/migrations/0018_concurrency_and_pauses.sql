-- Global concurrency limits and rate limits (baton_schemas.concurrency).
--
-- The slots a limit has in use are counted, never stored: the live leases' slots (a lease is
-- live until `expires`, which its holder pushes forward while it runs) plus, for a rate limit,
-- the slots `rate_limit()` took, which drain at `slot_decay_per_second` from `decayed_at`.
-- A holder that dies stops renewing: its slots come back by themselves when the lease expires.
CREATE TABLE concurrency_limits (
    id                     uuid PRIMARY KEY,
    name                   text NOT NULL UNIQUE,
    "limit"                integer NOT NULL CHECK ("limit" >= 0),
    active                 boolean NOT NULL DEFAULT true,
    slot_decay_per_second  double precision NOT NULL DEFAULT 0 CHECK (slot_decay_per_second >= 0),
    decaying_slots         double precision NOT NULL DEFAULT 0,
    decayed_at             timestamptz NOT NULL DEFAULT now(),
    denied_slots           bigint NOT NULL DEFAULT 0,
    created                timestamptz NOT NULL DEFAULT now(),
    updated                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE concurrency_leases (
    id       uuid PRIMARY KEY,
    slots    integer NOT NULL CHECK (slots > 0),
    expires  timestamptz NOT NULL,
    holder   jsonb,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX concurrency_leases_expires_idx ON concurrency_leases (expires);

-- which limits a lease holds slots of (one lease may hold several: a task's tags)
CREATE TABLE concurrency_lease_limits (
    limit_id  uuid NOT NULL REFERENCES concurrency_limits (id) ON DELETE CASCADE,
    lease_id  uuid NOT NULL REFERENCES concurrency_leases (id) ON DELETE CASCADE,
    PRIMARY KEY (limit_id, lease_id)
);
CREATE INDEX concurrency_lease_limits_lease_idx ON concurrency_lease_limits (lease_id);

-- Pausing a run for input: what a paused run asked for (the input's JSON schema) and what it
-- was given on resume, keyed per pause.
CREATE TABLE flow_run_inputs (
    flow_run_id  uuid NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    key          text NOT NULL,
    value        jsonb NOT NULL,
    created      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_run_id, key)
);

-- the tracker's loop that fails paused runs past their timeout reads only these
CREATE INDEX flow_runs_paused_idx ON flow_runs (id) WHERE state_type = 'PAUSED';

-- Work pools and queues, deployments, workers, and the dispatch bookkeeping of flow runs.

CREATE TABLE work_pools (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    type               text NOT NULL,
    description        text,
    base_job_template  jsonb NOT NULL DEFAULT '{}',
    concurrency_limit  integer,
    paused             boolean NOT NULL DEFAULT false,
    created            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE work_queues (
    id                 uuid PRIMARY KEY,
    pool_id            uuid NOT NULL REFERENCES work_pools (id) ON DELETE CASCADE,
    name               text NOT NULL,
    priority           integer NOT NULL DEFAULT 1,
    concurrency_limit  integer,
    paused             boolean NOT NULL DEFAULT false,
    created            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pool_id, name)
);

CREATE TABLE deployments (
    id                        uuid PRIMARY KEY,
    name                      text NOT NULL,
    flow_id                   uuid NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    entrypoint                text NOT NULL,
    description               text,
    version                   text,
    tags                      text[] NOT NULL DEFAULT '{}',
    parameters                jsonb NOT NULL DEFAULT '{}',
    parameter_schema          jsonb NOT NULL DEFAULT '{}',
    enforce_parameter_schema  boolean NOT NULL DEFAULT true,
    work_pool_name            text NOT NULL,
    work_queue_name           text NOT NULL DEFAULT 'default',
    job_variables             jsonb NOT NULL DEFAULT '{}',
    pull_steps                jsonb NOT NULL DEFAULT '[]',
    concurrency_limit         integer,
    collision_strategy        text NOT NULL DEFAULT 'enqueue',
    retries                   integer NOT NULL DEFAULT 0,
    retry_delay_seconds       double precision NOT NULL DEFAULT 0,
    schedules                 jsonb NOT NULL DEFAULT '[]',
    triggers                  jsonb NOT NULL DEFAULT '[]',
    paused                    boolean NOT NULL DEFAULT false,
    created                   timestamptz NOT NULL DEFAULT now(),
    updated                   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (flow_id, name)
);

CREATE TABLE workers (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    pool_name          text NOT NULL,
    slots              integer,
    running            integer NOT NULL DEFAULT 0,
    heartbeat_seconds  double precision NOT NULL DEFAULT 10,
    last_heartbeat     timestamptz NOT NULL DEFAULT now(),
    started            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workers_pool_idx ON workers (pool_name, last_heartbeat DESC);

-- the state_version a run had when it was last dispatched: a run is dispatched once per scheduling
ALTER TABLE flow_runs ADD COLUMN dispatched_version integer;
CREATE INDEX flow_runs_dispatch_idx ON flow_runs (next_scheduled_time)
    WHERE state_type = 'SCHEDULED' AND work_pool_name IS NOT NULL;
-- claim-time concurrency counts: owned runs per pool, queue and deployment
CREATE INDEX flow_runs_active_pool_idx ON flow_runs (work_pool_name, work_queue_name)
    WHERE state_type IN ('PENDING', 'RUNNING', 'CANCELLING');
CREATE INDEX flow_runs_active_deployment_idx ON flow_runs (deployment_id)
    WHERE state_type IN ('PENDING', 'RUNNING', 'CANCELLING');

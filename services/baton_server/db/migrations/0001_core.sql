-- Flows, flow runs, task runs, state history, logs, the outbox and API keys.

CREATE TABLE flows (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    slug        text NOT NULL,
    description text,
    tags        text[] NOT NULL DEFAULT '{}',
    created     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flow_runs (
    id                   uuid PRIMARY KEY,
    name                 text NOT NULL,
    flow_id              uuid NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    deployment_id        uuid,
    parent_task_run_id   uuid,
    parent_flow_run_id   uuid,
    parameters           jsonb NOT NULL DEFAULT '{}',
    tags                 text[] NOT NULL DEFAULT '{}',
    idempotency_key      text UNIQUE,
    -- the current state, denormalised for filtering; `state` holds the full model
    state                jsonb NOT NULL,
    state_type           text NOT NULL,
    state_name           text NOT NULL,
    state_version        integer NOT NULL DEFAULT 1,
    next_scheduled_time  timestamptz,
    run_count            integer NOT NULL DEFAULT 0,
    retries              integer NOT NULL DEFAULT 0,
    retry_delay_seconds  double precision NOT NULL DEFAULT 0,
    expected_start_time  timestamptz,
    start_time           timestamptz,
    end_time             timestamptz,
    work_pool_name       text,
    work_queue_name      text,
    job_variables        jsonb NOT NULL DEFAULT '{}',
    -- the claim: who owns a Pending/Running run, and until when without a heartbeat
    worker_id            text,
    claim_id             uuid,
    lease_expires_at     timestamptz,
    created              timestamptz NOT NULL DEFAULT now(),
    updated              timestamptz NOT NULL DEFAULT now()
);
-- keyset pagination, newest first
CREATE INDEX flow_runs_created_idx ON flow_runs (created DESC, id DESC);
CREATE INDEX flow_runs_flow_idx ON flow_runs (flow_id, created DESC);
CREATE INDEX flow_runs_deployment_idx ON flow_runs (deployment_id, created DESC)
    WHERE deployment_id IS NOT NULL;
CREATE INDEX flow_runs_state_idx ON flow_runs (state_type, created DESC);
CREATE INDEX flow_runs_tags_idx ON flow_runs USING gin (tags);
-- the reaper's scan: only owned runs carry a lease
CREATE INDEX flow_runs_lease_idx ON flow_runs (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

CREATE TABLE task_runs (
    id            uuid PRIMARY KEY,
    flow_run_id   uuid NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    name          text NOT NULL,
    task_key      text NOT NULL,
    dynamic_key   text NOT NULL,
    tags          text[] NOT NULL DEFAULT '{}',
    task_inputs   jsonb NOT NULL DEFAULT '{}',
    cache_key     text,
    state         jsonb NOT NULL,
    state_type    text NOT NULL,
    state_name    text NOT NULL,
    state_version integer NOT NULL,
    run_count     integer NOT NULL DEFAULT 0,
    start_time    timestamptz,
    end_time      timestamptz,
    created       timestamptz NOT NULL DEFAULT now(),
    updated       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_runs_flow_run_idx ON task_runs (flow_run_id, created);

-- every accepted state, in order; transition_id makes a retried proposal get the same answer
CREATE TABLE states (
    id             uuid PRIMARY KEY,
    flow_run_id    uuid REFERENCES flow_runs (id) ON DELETE CASCADE,
    task_run_id    uuid REFERENCES task_runs (id) ON DELETE CASCADE,
    transition_id  uuid UNIQUE,
    verdict        text,
    version        integer NOT NULL,
    type           text NOT NULL,
    name           text NOT NULL,
    timestamp      timestamptz NOT NULL,
    state          jsonb NOT NULL,
    CHECK ((flow_run_id IS NULL) <> (task_run_id IS NULL))
);
CREATE INDEX states_flow_run_idx ON states (flow_run_id, version) WHERE flow_run_id IS NOT NULL;
CREATE INDEX states_task_run_idx ON states (task_run_id, version) WHERE task_run_id IS NOT NULL;

CREATE TABLE logs (
    seq          bigserial PRIMARY KEY,
    id           uuid NOT NULL UNIQUE,
    flow_run_id  uuid,
    task_run_id  uuid,
    name         text NOT NULL,
    level        smallint NOT NULL,
    message      text NOT NULL,
    timestamp    timestamptz NOT NULL
);
CREATE INDEX logs_flow_run_idx ON logs (flow_run_id, seq);

-- messages committed with the change that caused them; deleted once the broker confirmed them
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    exchange     text NOT NULL,
    routing_key  text NOT NULL,
    message_id   uuid NOT NULL,
    body         bytea NOT NULL,
    mandatory    boolean NOT NULL DEFAULT false,
    created      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    prefix      text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    scopes      text[] NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    last_used   timestamptz,
    revoked     boolean NOT NULL DEFAULT false
);

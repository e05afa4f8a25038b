-- Variables: a small JSON key-value store (names as the reference system has them: lower-case
-- letters, digits, dashes and underscores, at most 255; a value of at most 5,000 characters of
-- JSON, checked by the API).
CREATE TABLE variables (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    value jsonb,
    tags text[] NOT NULL DEFAULT '{}',
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now()
);

-- Artifacts: what a run shows of its work (markdown, a table, a link), kept with the run and
-- task run that made it. Artifacts sharing a key are that key's history, newest last. The run
-- ids carry no foreign key: a run's states may reach the server after its artifacts do (task
-- runs are reported in batches, and a run may go on through an outage).
CREATE TABLE artifacts (
    id uuid PRIMARY KEY,
    key text,
    type text NOT NULL,
    description text,
    data json,  -- json, not jsonb: a table's columns keep the order they were given in
    flow_run_id uuid,
    task_run_id uuid,
    created timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX artifacts_key_created ON artifacts (key, created DESC) WHERE key IS NOT NULL;
CREATE INDEX artifacts_flow_run ON artifacts (flow_run_id, created) WHERE flow_run_id IS NOT NULL;
CREATE INDEX artifacts_created ON artifacts (created DESC);

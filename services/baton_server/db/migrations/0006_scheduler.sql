-- The scheduler: runs made ahead of time from each deployment's schedules, and what it keeps to
-- make them exactly once, change them when the schedules change, and mark them Late once.

-- The schedule that made a run (`auto_scheduled`) or whose slot a backfill ran (not auto: a
-- change of schedule leaves it alone), and the slot itself (jitter moves the scheduled time only).
ALTER TABLE flow_runs ADD COLUMN schedule_id text;
ALTER TABLE flow_runs ADD COLUMN schedule_slot timestamptz;
ALTER TABLE flow_runs ADD COLUMN auto_scheduled boolean NOT NULL DEFAULT false;
-- held back by the buffer_one overlap policy until the schedule's previous run ends
ALTER TABLE flow_runs ADD COLUMN overlap_held boolean NOT NULL DEFAULT false;
-- a schedule's runs not yet started (changes delete them; overlap looks for earlier ones)
CREATE INDEX flow_runs_schedule_waiting_idx ON flow_runs (schedule_id, next_scheduled_time)
    WHERE schedule_id IS NOT NULL AND state_type = 'SCHEDULED';
-- a schedule's runs under way (overlap)
CREATE INDEX flow_runs_schedule_active_idx ON flow_runs (schedule_id)
    WHERE schedule_id IS NOT NULL AND state_type IN ('PENDING', 'RUNNING', 'CANCELLING');
-- the Late scan: plain Scheduled runs by time
CREATE INDEX flow_runs_late_idx ON flow_runs (next_scheduled_time)
    WHERE state_type = 'SCHEDULED' AND state_name = 'Scheduled';

-- Catch-up, overlap and late_after of a deployment (a schedule's own policy overrides it), and
-- late_after of a pool (used when the deployment sets none).
ALTER TABLE deployments ADD COLUMN IF NOT EXISTS schedule_policy jsonb NOT NULL DEFAULT '{}';
ALTER TABLE work_pools ADD COLUMN IF NOT EXISTS late_after_seconds double precision;

-- One row per schedule the scheduler has made runs for: what they were made from (a change of
-- it remakes them), the last slot made, and when the schedule next needs more.
CREATE TABLE schedule_states (
    schedule_id    text PRIMARY KEY,
    deployment_id  uuid NOT NULL,
    fingerprint    text NOT NULL,
    filled_until   timestamptz,
    next_fill      timestamptz,
    updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedule_states_deployment_idx ON schedule_states (deployment_id);
CREATE INDEX schedule_states_next_fill_idx ON schedule_states (next_fill) WHERE next_fill IS NOT NULL;

-- Deployments whose schedules may have changed, written by a trigger: the API and `baton deploy`
-- only write `deployments`; the scheduler takes these rows (SKIP LOCKED) and reconciles.
CREATE TABLE schedule_changes (
    deployment_id  uuid PRIMARY KEY,
    changed        timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION baton_deployment_schedules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO schedule_changes (deployment_id)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)
    ON CONFLICT (deployment_id) DO UPDATE SET changed = now();
    PERFORM pg_notify('baton_scheduler', 'schedules');
    RETURN NULL;
END $$;

CREATE TRIGGER deployments_schedules_changed
    AFTER INSERT OR DELETE OR UPDATE OF schedules, paused, parameters, tags, work_pool_name,
        work_queue_name, schedule_policy, retries, retry_delay_seconds
    ON deployments FOR EACH ROW EXECUTE FUNCTION baton_deployment_schedules_changed();

-- A Scheduled run written (made, retried, waiting for a slot): the dispatcher sleeps until the
-- next run is due, so it is told. One notification per transaction (same payload).
CREATE FUNCTION baton_run_scheduled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_scheduler', 'runs');
    RETURN NULL;
END $$;

CREATE TRIGGER flow_runs_scheduled
    AFTER INSERT OR UPDATE OF state_version ON flow_runs FOR EACH ROW
    WHEN (NEW.state_type = 'SCHEDULED' AND NEW.work_pool_name IS NOT NULL)
    EXECUTE FUNCTION baton_run_scheduled();

-- deployments made before the scheduler kept state are reconciled by its first pass
INSERT INTO schedule_changes (deployment_id) SELECT id FROM deployments ON CONFLICT DO NOTHING;

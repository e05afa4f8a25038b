-- Automations, their trigger windows, and the record of every firing (router/).

-- Every change of an automation takes a new revision and NOTIFYs its id: each router reloads
-- that automation into its index and reports the revision it has reached (router_replicas);
-- a router that was disconnected reloads them all.
CREATE SEQUENCE automation_revisions;
CREATE TABLE automations (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    description         text,
    enabled             boolean NOT NULL DEFAULT true,
    trigger             jsonb NOT NULL,
    actions             jsonb NOT NULL DEFAULT '[]',
    actions_on_trigger  jsonb NOT NULL DEFAULT '[]',
    actions_on_resolve  jsonb NOT NULL DEFAULT '[]',
    -- a deployment's trigger (baton.yaml): replaced on redeploy, gone with the deployment
    deployment_id       uuid REFERENCES deployments (id) ON DELETE CASCADE,
    revision            bigint NOT NULL DEFAULT nextval('automation_revisions'),
    created             timestamptz NOT NULL DEFAULT now(),
    updated             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automations_deployment_idx ON automations (deployment_id) WHERE deployment_id IS NOT NULL;

CREATE FUNCTION baton_automation_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('baton_automations', OLD.id::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify('baton_automations', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER automations_changed AFTER INSERT OR UPDATE OR DELETE ON automations
    FOR EACH ROW EXECUTE FUNCTION baton_automation_changed();

-- A window of one trigger (its path in the automation's trigger tree) for one for_each key.
-- Rows are locked (upsert / FOR UPDATE) by whichever router applies an event to them; the
-- proactive timer takes due ones with SKIP LOCKED.
CREATE TABLE trigger_buckets (
    automation_id  uuid NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    trigger_path   text NOT NULL,
    bucket_key     text NOT NULL,
    proactive      boolean NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    count          integer NOT NULL DEFAULT 0,
    -- the events the window counted (or, proactive, the one that opened it), for templates
    events         jsonb NOT NULL DEFAULT '[]',
    -- compound and sequence triggers: which children fired, and when
    children       jsonb NOT NULL DEFAULT '{}',
    -- a proactive window that fired: the next expected event resolves it
    fired          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (automation_id, trigger_path, bucket_key)
);
CREATE INDEX trigger_buckets_due_idx ON trigger_buckets (end_at) WHERE proactive AND NOT fired;

-- Events whose effects have committed: a redelivered event, or one taken by a second router,
-- finds its row and changes nothing. Kept for a day (the late-arrival limit is shorter).
CREATE TABLE router_events (
    event_id  uuid PRIMARY KEY,
    handled   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX router_events_handled_idx ON router_events USING brin (handled);

-- Every firing, unique on its idempotency key; each action's outcome.
CREATE TABLE firings (
    id               uuid PRIMARY KEY,
    automation_id    uuid NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    automation_name  text NOT NULL,
    kind             text NOT NULL,  -- triggered or resolved
    key              text NOT NULL UNIQUE,
    trigger_path     text NOT NULL,
    bucket_key       text NOT NULL,
    event_ids        uuid[] NOT NULL DEFAULT '{}',
    ok               boolean,
    actions          jsonb NOT NULL DEFAULT '[]',
    created          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX firings_automation_idx ON firings (automation_id, created DESC);

-- Webhook calls wait here until they have been made (after the firing committed).
CREATE TABLE firing_calls (
    firing_id     uuid NOT NULL REFERENCES firings (id) ON DELETE CASCADE,
    action_index  integer NOT NULL,
    request       jsonb NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    -- when a sweep may make it (again): after the router that stored it had time to
    due           timestamptz NOT NULL DEFAULT now() + interval '5 minutes',
    PRIMARY KEY (firing_id, action_index)
);

-- Each router process: the automation revision its index has reached.
CREATE TABLE router_replicas (
    id         text PRIMARY KEY,
    revision   bigint NOT NULL,
    heartbeat  timestamptz NOT NULL DEFAULT now()
);

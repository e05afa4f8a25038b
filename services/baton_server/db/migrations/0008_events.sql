-- The event store, webhooks, and the lifecycle events of deployments, pools, workers and webhooks.

-- Events, partitioned by the day they occurred (UTC): retention drops whole partitions. The
-- events service creates each day's partitions before it stores into them (events_pYYYYMMDD,
-- event_resources_pYYYYMMDD). Storing is idempotent on the event's id: a redelivered event has
-- the same id and time, so its key exists and it is skipped.
CREATE SEQUENCE events_seq;
CREATE TABLE events (
    occurred     timestamptz NOT NULL,
    id           uuid NOT NULL,
    -- the order in which events were stored: the live stream's cursor
    seq          bigint NOT NULL DEFAULT nextval('events_seq'),
    -- C collation: LIKE 'prefix%' can use the btree
    event        text COLLATE "C" NOT NULL,
    resource_id  text COLLATE "C" NOT NULL,
    resource     jsonb NOT NULL,
    related      jsonb NOT NULL DEFAULT '[]',
    payload      jsonb NOT NULL DEFAULT '{}',
    follows      uuid,
    received     timestamptz NOT NULL,
    -- it came without an `occurred`, and Baton gave it its arrival time (see below)
    stamped      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (occurred, id)
) PARTITION BY RANGE (occurred);
-- An event that came without `occurred` gets its arrival time, so a redelivered copy has another
-- key: such a copy is recognised by its id among the stamped events of the day before it.
CREATE INDEX events_stamped_idx ON events (id, occurred) WHERE stamped;
CREATE INDEX events_name_idx ON events (event, occurred);
CREATE INDEX events_resource_idx ON events (resource_id, occurred);
CREATE INDEX events_seq_idx ON events (seq);
-- a reconnecting stream's backfill; rows arrive in `received` order, so a BRIN index serves it
-- for almost nothing at insert
CREATE INDEX events_received_idx ON events USING brin (received) WITH (pages_per_range = 16, autosummarize = on);

-- An event's related resources, one row each, to filter on them.
CREATE TABLE event_resources (
    occurred     timestamptz NOT NULL,
    event_id     uuid NOT NULL,
    resource_id  text COLLATE "C" NOT NULL,
    role         text COLLATE "C" NOT NULL,
    labels       jsonb NOT NULL
) PARTITION BY RANGE (occurred);
CREATE INDEX event_resources_resource_idx ON event_resources (resource_id, occurred);

CREATE TABLE webhooks (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    slug               text NOT NULL UNIQUE,
    description        text,
    template           text NOT NULL,
    check_kind         text,           -- hmac, token or NULL
    check_secret       text,           -- the HMAC secret or the token; never returned by the API
    signature_style    text,           -- github or stripe (hmac)
    check_header       text,
    tolerance_seconds  integer,
    enabled            boolean NOT NULL DEFAULT true,
    created            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now()
);

-- Task-run state events are made only where turned on (or everywhere, by a server setting).
ALTER TABLE deployments ADD COLUMN task_run_events boolean NOT NULL DEFAULT false;
-- When a worker was last seen to stop (three heartbeats missed); a heartbeat clears it.
ALTER TABLE workers ADD COLUMN stopped_at timestamptz;

-- Lifecycle events go through the outbox in the transaction that made the change, whoever made
-- it (the API, `baton deploy`, a worker's heartbeat): a trigger writes the row, the outbox's
-- sweeper publishes it.
CREATE FUNCTION baton_emit_event(name text, resource jsonb, related jsonb, payload jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    event_id uuid := gen_random_uuid();
BEGIN
    INSERT INTO outbox (exchange, routing_key, message_id, body, mandatory)
    VALUES ('baton.events', name, event_id,
            convert_to(jsonb_build_object(
                'schema_version', 1, 'id', event_id, 'occurred', clock_timestamp(), 'event', name,
                'resource', resource, 'related', related, 'payload', payload)::text, 'UTF8'),
            true);
END $$;

CREATE FUNCTION baton_resource(kind text, key text, name text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('baton.resource.id', 'baton.' || kind || '.' || key,
                              'baton.resource.name', name)
$$;

CREATE FUNCTION baton_related(kind text, key text, name text, role text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT baton_resource(kind, key, name) || jsonb_build_object('baton.resource.role', role)
$$;

CREATE FUNCTION baton_deployment_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row deployments;
    what text;
    flow_name text;
BEGIN
    IF TG_OP = 'DELETE' THEN row := OLD; what := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN row := NEW; what := 'created';
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused THEN
        row := NEW; what := CASE WHEN NEW.paused THEN 'paused' ELSE 'resumed' END;
    ELSE row := NEW; what := 'updated';
    END IF;
    SELECT f.name INTO flow_name FROM flows f WHERE f.id = row.flow_id;
    PERFORM baton_emit_event(
        'baton.deployment.' || what,
        baton_resource('deployment', row.id::text, coalesce(flow_name, '?') || '/' || row.name),
        jsonb_build_array(
            baton_related('flow', row.flow_id::text, coalesce(flow_name, ''), 'flow'),
            baton_related('work-pool', row.work_pool_name, row.work_pool_name, 'work-pool')),
        jsonb_build_object('paused', row.paused, 'version', row.version));
    RETURN NULL;
END $$;
CREATE TRIGGER deployments_events AFTER INSERT OR UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION baton_deployment_events();

CREATE FUNCTION baton_work_pool_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row work_pools;
    what text;
BEGIN
    IF TG_OP = 'DELETE' THEN row := OLD; what := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN row := NEW; what := 'created';
    ELSIF NEW.paused IS DISTINCT FROM OLD.paused THEN
        row := NEW; what := CASE WHEN NEW.paused THEN 'paused' ELSE 'resumed' END;
    ELSE row := NEW; what := 'updated';
    END IF;
    PERFORM baton_emit_event(
        'baton.work-pool.' || what,
        baton_resource('work-pool', row.name, row.name) || jsonb_build_object('baton.work-pool.type', row.type),
        '[]'::jsonb,
        jsonb_build_object('paused', row.paused, 'concurrency_limit', row.concurrency_limit));
    RETURN NULL;
END $$;
CREATE TRIGGER work_pools_events AFTER INSERT OR UPDATE OR DELETE ON work_pools
    FOR EACH ROW EXECUTE FUNCTION baton_work_pool_events();

-- A worker starts with its first heartbeat (or its first after it was seen stopped) and stops
-- when the events service finds it missed three (it sets stopped_at).
CREATE FUNCTION baton_worker_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    what text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        what := 'started';
    ELSIF OLD.stopped_at IS NOT NULL AND NEW.stopped_at IS NOT DISTINCT FROM OLD.stopped_at
          AND NEW.last_heartbeat > OLD.last_heartbeat THEN
        NEW.stopped_at := NULL;
        what := 'started';
    ELSIF OLD.stopped_at IS NULL AND NEW.stopped_at IS NOT NULL THEN
        what := 'stopped';
    ELSE
        RETURN NEW;
    END IF;
    PERFORM baton_emit_event(
        'baton.worker.' || what,
        baton_resource('worker', NEW.id, NEW.name),
        jsonb_build_array(baton_related('work-pool', NEW.pool_name, NEW.pool_name, 'work-pool')),
        jsonb_build_object('slots', NEW.slots, 'running', NEW.running,
                           'last_heartbeat', NEW.last_heartbeat));
    RETURN NEW;
END $$;
-- (AFTER INSERT: a heartbeat's upsert fires BEFORE INSERT triggers even when it updates)
CREATE TRIGGER workers_started AFTER INSERT ON workers
    FOR EACH ROW EXECUTE FUNCTION baton_worker_events();
CREATE TRIGGER workers_events BEFORE UPDATE ON workers
    FOR EACH ROW EXECUTE FUNCTION baton_worker_events();

CREATE FUNCTION baton_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row webhooks;
    what text;
BEGIN
    IF TG_OP = 'DELETE' THEN row := OLD; what := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN row := NEW; what := 'created';
    ELSE row := NEW; what := 'updated';
    END IF;
    PERFORM baton_emit_event(
        'baton.webhook.' || what,
        baton_resource('webhook', row.id::text, row.name),
        '[]'::jsonb,
        jsonb_build_object('slug', row.slug, 'enabled', row.enabled));
    RETURN NULL;
END $$;
CREATE TRIGGER webhooks_events AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION baton_webhook_events();

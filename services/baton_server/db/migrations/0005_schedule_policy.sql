-- A deployment's schedule policy (catch-up, overlap, Late: baton_schemas.schedules.SchedulePolicy);
-- '{}' reads as the defaults. Its schedules keep living in deployments.schedules, each now with
-- an id and a slug.
ALTER TABLE deployments ADD COLUMN schedule_policy jsonb NOT NULL DEFAULT '{}';

-- Schedules stored before they had ids and slugs get them: `{kind}-{n}` as a deploy would give.
UPDATE deployments d SET schedules = (
    SELECT jsonb_agg(
        x.item || jsonb_build_object(
            'id', coalesce(x.item->>'id', gen_random_uuid()::text),
            'slug', coalesce(x.item->>'slug', (x.item->'schedule'->>'kind') || '-' || x.n))
        ORDER BY x.ord)
    FROM (SELECT e.item, e.ord,
                 row_number() OVER (PARTITION BY e.item->'schedule'->>'kind' ORDER BY e.ord) AS n
          FROM jsonb_array_elements(d.schedules) WITH ORDINALITY AS e(item, ord)) AS x)
WHERE jsonb_array_length(d.schedules) > 0;

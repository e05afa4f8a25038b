-- The dashboard's lookups, each served by an index (tests/integration/test_dashboard_queries.py
-- checks every query's plan with EXPLAIN).

-- a run's child runs (subflows and runs it started)
CREATE INDEX flow_runs_parent_idx ON flow_runs (parent_flow_run_id, created)
    WHERE parent_flow_run_id IS NOT NULL;
-- the Late count of each deployment
CREATE INDEX flow_runs_late_deployment_idx ON flow_runs (deployment_id)
    WHERE state_type = 'SCHEDULED' AND state_name = 'Late';
-- the automations an event fired
CREATE INDEX firings_event_ids_idx ON firings USING gin (event_ids);

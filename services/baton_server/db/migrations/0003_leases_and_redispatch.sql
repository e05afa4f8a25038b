-- The lease length a run was claimed with (later transitions and the reaper keep using it), and
-- when it was last dispatched (a dispatch that never led to a claim is sent again).
ALTER TABLE flow_runs ADD COLUMN lease_seconds double precision;
ALTER TABLE flow_runs ADD COLUMN dispatched_at timestamptz;

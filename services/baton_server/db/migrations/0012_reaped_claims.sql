-- The version of the Crashed state the reaper wrote (NULL for any other crash). A final state
-- that arrives late from the reaped claim still wins over it (LateFinalStateWins); the reaper
-- keeps the run's claim_id on the row, so such a proposal is recognised as the run's own.
ALTER TABLE flow_runs ADD COLUMN reaped_version integer;

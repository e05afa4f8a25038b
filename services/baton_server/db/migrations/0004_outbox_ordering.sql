-- A flow run's state changes carry the run as their ordering key. A row written while an older
-- row of the same run is still waiting in another process's outbox is held back until that one
-- is gone, so subscribers see each run's changes in order even with several tracker processes.
ALTER TABLE outbox ADD COLUMN ordering_key uuid;
CREATE INDEX outbox_ordering_key_idx ON outbox (ordering_key, id) WHERE ordering_key IS NOT NULL;

-- A deployment keeps its flow's own options (from `@flow(...)`, or baton.yaml over them): the
-- retries were already columns; the timeout and print capture ride with each dispatch. NULL
-- means: what the flow's code says.
ALTER TABLE deployments ADD COLUMN timeout_seconds double precision;
ALTER TABLE deployments ADD COLUMN log_prints boolean;

-- Traces (OpenTelemetry): a flow run remembers the W3C traceparent of the span that created
-- it, so its dispatch, claim and run join that trace; an outbox row carries the traceparent
-- its message is published with (an AMQP header). Both NULL while traces are off.
ALTER TABLE flow_runs ADD COLUMN traceparent text;
ALTER TABLE outbox ADD COLUMN traceparent text;

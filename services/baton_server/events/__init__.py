"""The events service: ingest (AMQP, HTTP, CloudEvents, webhooks), the partitioned store, the stream."""

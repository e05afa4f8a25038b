-- The installation this database belongs to. Its id stamps the RabbitMQ vhost (an argument of
-- the `baton.installation` marker queue), so a second Baton with a database of its own cannot
-- start on the same vhost and take the first one's messages. One row, made once.
CREATE TABLE installation (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    id       uuid NOT NULL DEFAULT gen_random_uuid(),
    created  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;

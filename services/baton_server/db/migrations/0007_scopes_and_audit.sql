-- API keys hold a set of scopes instead of a rank (read < write < admin), and every change is
-- recorded with the key that made it.
--
-- Existing keys keep what they could do: read -> read; admin -> admin; write (everything but
-- key management) -> read, events, run, worker, deploy. Narrower keys are made anew and the
-- old ones revoked (`baton api-key create --scope ...`, `baton api-key revoke`).

UPDATE api_keys SET scopes = ARRAY['admin'] WHERE 'admin' = ANY(scopes);
UPDATE api_keys SET scopes = ARRAY['read', 'events', 'run', 'worker', 'deploy']
    WHERE 'write' = ANY(scopes) AND NOT 'admin' = ANY(scopes);
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_scopes_known CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['read', 'events', 'run', 'worker', 'deploy', 'admin']::text[]),
    ADD COLUMN revoked_at timestamptz;

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_id      uuid,          -- NULL: no key (authentication off, or a server-side command)
    key_name    text,
    origin      text NOT NULL, -- 'api' or 'cli'
    method      text NOT NULL,
    path        text NOT NULL,
    route       text,
    status      integer,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_key ON audit_log (key_id, id);

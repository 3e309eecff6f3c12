-- What discovery lists (GET /v2/cost_services, /v2/tags, /v2/tags/{key}/values), kept per upload when it
-- is committed: its distinct services (kind 'service', value '') and tag key/value pairs (kind 'tag').
-- An upload's rows go with it. Uploads committed before this table existed are filled in at start-up.
CREATE TABLE upload_dimensions (
    upload_token TEXT NOT NULL REFERENCES cost_uploads (token) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX ix_upload_dimensions ON upload_dimensions (upload_token, kind, name);

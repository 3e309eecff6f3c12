-- Integrations that read a cloud's cost export from its bucket (AWS Data Exports in S3, Azure Cost Management
-- exports in Blob storage). `location` is the export's place as JSON (model::integration::ExportLocation, no
-- secret in it); `secret` its credentials, sealed by service::secrets (never returned by any read).

ALTER TABLE integrations ADD COLUMN location TEXT;
ALTER TABLE integrations ADD COLUMN secret TEXT;
ALTER TABLE integrations ADD COLUMN last_synced_at TIMESTAMPTZ;
ALTER TABLE integrations ADD COLUMN last_error TEXT;

-- The manifest each billing period was last loaded from. A period is one upload, named after the period, so a
-- newer manifest replaces it whole (replace-by-filename); an unchanged manifest (same key and etag, or the
-- same execution/run id) is not read again.
CREATE TABLE synced_periods (
    integration_token TEXT NOT NULL REFERENCES integrations (token) ON DELETE CASCADE,
    period TEXT NOT NULL,
    manifest_key TEXT NOT NULL,
    manifest_etag TEXT,
    manifest_id TEXT NOT NULL,
    upload_token TEXT NOT NULL,
    rows BIGINT NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_synced_periods PRIMARY KEY (integration_token, period)
);

-- Cost data exports: queued by POST /v2/costs/data_exports, written to a CSV under the data dir by the node
-- that queued them, kept until valid_until, then removed with their file.
CREATE TABLE data_exports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_data_exports_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    -- pending | completed | failed
    status TEXT NOT NULL,
    -- What was asked (Vantage's DataExport.attributes), as JSON.
    attributes TEXT NOT NULL,
    row_count BIGINT,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    valid_until TIMESTAMPTZ
);
CREATE INDEX ix_data_exports_valid_until ON data_exports (valid_until);

-- Custom-provider integrations and their cost uploads (each upload's rows live in <data-dir>/uploads/<token>.parquet).

CREATE TABLE integrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_integrations_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    last_updated TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_integrations_account ON integrations (account_token, id);

CREATE TABLE integration_workspaces (
    integration_token TEXT NOT NULL REFERENCES integrations (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (integration_token, workspace_token)
);

CREATE TABLE cost_uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_cost_uploads_token UNIQUE,
    integration_token TEXT NOT NULL REFERENCES integrations (token) ON DELETE CASCADE,
    account_token TEXT NOT NULL,
    filename TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    import_status TEXT NOT NULL,
    created_by_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- One live upload per filename and integration: a re-upload replaces the earlier one.
    CONSTRAINT uq_cost_uploads_filename UNIQUE (integration_token, filename)
);

-- The audit log (docs/access.md): one row per write that changed an object, only ever inserted. The
-- changed and unchanged values are JSON objects (model::audit), decoded by the store.

CREATE TABLE audit_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_audit_logs_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    object_type TEXT NOT NULL,
    object_token TEXT,
    object_title TEXT,
    event TEXT NOT NULL,
    source TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_token TEXT,
    workspace_token TEXT,
    changed_values TEXT NOT NULL,
    unchanged_values TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_audit_logs_account ON audit_logs (account_token, id);
CREATE INDEX ix_audit_logs_object ON audit_logs (account_token, object_token);

-- Web console sign-ins: the session cookie holds a random secret, kept here only as its SHA-256, so a copy
-- of the store cannot be turned into a session. A session acts with its API token (revoking the token ends
-- it) and may look at one of the account's managed accounts instead (view_account_token).
CREATE TABLE console_sessions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_hash TEXT NOT NULL CONSTRAINT uq_console_sessions_secret_hash UNIQUE,
    api_token TEXT NOT NULL REFERENCES api_tokens (token) ON DELETE CASCADE,
    view_account_token TEXT REFERENCES accounts (token) ON DELETE SET NULL,
    -- Unix seconds: compared as numbers on both stores.
    expires_at BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_console_sessions_expires_at ON console_sessions (expires_at);

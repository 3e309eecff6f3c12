-- The account's user directory (Vantage's /v2/users): who `user_tokens` on budget alerts, report and anomaly
-- notifications name, and where their messages go. Users are added by the operator (`costd user add`);
-- an address appears once per account.

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_users_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    name TEXT,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_users_email UNIQUE (account_token, email)
);

-- Accounts (tenants), API tokens, workspaces and billing rules.
-- `id` orders lists by creation; `token` is the public identifier.

CREATE TABLE accounts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_accounts_token UNIQUE,
    name TEXT NOT NULL,
    parent_account_token TEXT REFERENCES accounts (token) ON DELETE CASCADE,
    owner_user_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_api_tokens_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    user_token TEXT NOT NULL,
    secret_hash TEXT NOT NULL CONSTRAINT uq_api_tokens_secret_hash UNIQUE,
    scopes TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE workspaces (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_workspaces_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enable_currency_conversion BOOLEAN NOT NULL,
    currency TEXT NOT NULL,
    exchange_rate_date TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_workspaces_account ON workspaces (account_token, id);

-- Amounts and percentages are exact decimal strings: they configure the engine and are never summed here.
CREATE TABLE billing_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_billing_rules_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    rule_type TEXT NOT NULL,
    charge_type TEXT,
    percentage TEXT,
    service TEXT,
    category TEXT,
    sub_category TEXT,
    amount TEXT,
    start_period DATE,
    start_date DATE,
    end_date DATE,
    apply_to_all BOOLEAN NOT NULL DEFAULT FALSE,
    sql_query TEXT,
    created_by_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_billing_rules_account ON billing_rules (account_token, id);

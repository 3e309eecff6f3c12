-- MSP invoicing: billing profiles (the MSP's details and the adjustments its invoices carry), each managed
-- account's invoicing settings, and invoices with their documents stored whole (a sent invoice never
-- changes), numbered per MSP account by a counter row that serialises concurrent creates.

CREATE TABLE billing_profiles (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_billing_profiles_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    nickname TEXT NOT NULL,
    -- model::billing_profile::BillingProfileSettings as JSON.
    settings TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_billing_profiles_account ON billing_profiles (account_token, id);

-- A profile in use cannot be deleted (the service answers 409 first; the key makes sure).
ALTER TABLE accounts ADD COLUMN msp_billing_profile_token TEXT REFERENCES billing_profiles (token);
ALTER TABLE accounts ADD COLUMN payment_terms_days INTEGER;
-- The customer's billing details and custom fields as JSON.
ALTER TABLE accounts ADD COLUMN invoicing_details TEXT;
CREATE INDEX ix_accounts_billing_profile ON accounts (msp_billing_profile_token);

CREATE TABLE invoice_counters (
    msp_account_token TEXT NOT NULL CONSTRAINT pk_invoice_counters PRIMARY KEY REFERENCES accounts (token) ON DELETE CASCADE,
    last_number BIGINT NOT NULL
);

-- account_token has no foreign key: an invoice is a record of what was billed and outlives the managed
-- account (its name is kept in account_name).
CREATE TABLE invoices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_invoices_token UNIQUE,
    msp_account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    account_token TEXT NOT NULL,
    account_name TEXT NOT NULL,
    number BIGINT NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    status TEXT NOT NULL,
    total TEXT NOT NULL,
    currency TEXT NOT NULL,
    -- model::invoice::InvoiceDocument as JSON.
    document TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_invoices_number UNIQUE (msp_account_token, number)
);
CREATE INDEX ix_invoices_account ON invoices (msp_account_token, account_token, period_start);

-- The key that signs download URLs, shared by every costd process on this database.
CREATE TABLE server_secrets (
    name TEXT NOT NULL CONSTRAINT pk_server_secrets PRIMARY KEY,
    secret TEXT NOT NULL
);

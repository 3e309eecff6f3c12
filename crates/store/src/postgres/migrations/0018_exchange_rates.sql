-- Exchange rates the user supplies (docs/currency.md): per account, one rate per (base, currency, day it
-- takes effect). A CSV upload writes all its rows in one transaction, replacing the rate of a day it names
-- again. Rates are exact decimal text (model::exchange_rate), never floating point; days are ISO text
-- (YYYY-MM-DD), which sorts as dates do.

CREATE TABLE exchange_rates (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    base_currency_code TEXT NOT NULL,
    currency_code TEXT NOT NULL,
    effective_date TEXT NOT NULL,
    rate TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_exchange_rates_day UNIQUE (account_token, base_currency_code, currency_code, effective_date)
);
-- A query reads the rates from or to its workspace's currency.
CREATE INDEX ix_exchange_rates_currency ON exchange_rates (account_token, currency_code);
CREATE INDEX ix_exchange_rates_base ON exchange_rates (account_token, base_currency_code);

//! costd's integration tests: one binary (one link step with a heavy dependency tree), one module per
//! resource. Every test runs against SQLite and PostgreSQL, each on its own temp data dir and schema.

mod helpers;

mod alert_money;
mod audit_logs;
mod auth;
mod billing_rules;
mod bills;
mod budgets;
mod business_metrics;
mod cli;
mod clients;
mod consistency;
mod console;
mod costs;
mod differential;
mod discovery;
mod exchange_rates;
mod exports;
mod hostile;
mod intents;
mod invoices;
mod layers;
mod limits;
mod managed_accounts;
mod openapi;
mod reports;
mod roles;
mod scale;
mod segments;
mod store;
mod uploads;
mod virtual_tags;
mod workspaces;

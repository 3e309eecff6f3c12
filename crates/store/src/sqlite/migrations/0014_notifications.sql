-- Budgets and budget alerts live in report_objects (kinds budget, budget_alert). This is the alerts'
-- outbox: each firing of an alert is written here once per recipient, in the same step that decides it
-- fired (the unique event key makes a second evaluation of the same firing a no-op), and a worker delivers
-- it with retries and backoff, recording every attempt's outcome. So a firing survives a crash before its
-- delivery, and is never written twice.

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_notifications_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    -- The alert that fired, and which firing: e.g. budget_alert:<alert>:<budget>:<period start>.
    source_token TEXT NOT NULL,
    event_key TEXT NOT NULL,
    -- An email address or a webhook URL.
    recipient TEXT NOT NULL,
    -- The message as JSON (service::alerts::Message), rendered per channel at delivery.
    message TEXT NOT NULL,
    -- pending | delivered | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Milliseconds since the Unix epoch: when the next attempt is due (a claim moves it past its lease).
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    CONSTRAINT uq_notifications_event UNIQUE (event_key, recipient)
);
CREATE INDEX ix_notifications_due ON notifications (status, next_attempt_ms);
CREATE INDEX ix_notifications_account ON notifications (account_token, id);
-- Which accounts' data changed since the alerts' last pass.
CREATE INDEX ix_cost_uploads_created ON cost_uploads (created_at);

-- The alerts wing gets tables of its own (it grew inside report_objects, under seven more kinds). Each kind
-- has the columns every record has (token, account, workspace, title, its definition as JSON decoded by the
-- store, times) plus the keys its constraints need, taken from the definition by the store as it writes:
-- references are foreign keys (deleting what is in use fails, and the service answers 409 naming the users),
-- history cascades with what it belongs to, and a found anomaly or a fired event is unique by its key.
-- Today's rows move here; report_objects goes back to folders, saved filters and cost reports.
--
-- A reference with no ON DELETE clause is NO ACTION: checked at the end of the statement, so deleting an
-- account or a workspace (which cascades to both sides) is not refused by it.

CREATE TABLE budgets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_budgets_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- The report whose costs are its actuals (none for a budget made of others).
    cost_report_token TEXT REFERENCES report_objects (token)
);
CREATE INDEX ix_budgets_account ON budgets (account_token, id);
CREATE INDEX ix_budgets_report ON budgets (cost_report_token);

-- A hierarchical budget's children, in order: a child in use is not deleted.
CREATE TABLE budget_children (
    budget_token TEXT NOT NULL REFERENCES budgets (token) ON DELETE CASCADE,
    child_token TEXT NOT NULL REFERENCES budgets (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_budget_children PRIMARY KEY (budget_token, child_token)
);
CREATE INDEX ix_budget_children_child ON budget_children (child_token);

CREATE TABLE budget_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_budget_alerts_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_budget_alerts_account ON budget_alerts (account_token, id);

CREATE TABLE budget_alert_budgets (
    alert_token TEXT NOT NULL REFERENCES budget_alerts (token) ON DELETE CASCADE,
    budget_token TEXT NOT NULL REFERENCES budgets (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_budget_alert_budgets PRIMARY KEY (alert_token, budget_token)
);
CREATE INDEX ix_budget_alert_budgets_budget ON budget_alert_budgets (budget_token);

CREATE TABLE budget_alert_users (
    alert_token TEXT NOT NULL REFERENCES budget_alerts (token) ON DELETE CASCADE,
    user_token TEXT NOT NULL REFERENCES users (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_budget_alert_users PRIMARY KEY (alert_token, user_token)
);
CREATE INDEX ix_budget_alert_users_user ON budget_alert_users (user_token);

CREATE TABLE cost_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_cost_alerts_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ix_cost_alerts_account ON cost_alerts (account_token, id);

CREATE TABLE cost_alert_reports (
    alert_token TEXT NOT NULL REFERENCES cost_alerts (token) ON DELETE CASCADE,
    report_token TEXT NOT NULL REFERENCES report_objects (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_cost_alert_reports PRIMARY KEY (alert_token, report_token)
);
CREATE INDEX ix_cost_alert_reports_report ON cost_alert_reports (report_token);

-- One firing of a cost alert, titled by its event key (alert, report, window, group): written once.
CREATE TABLE cost_alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_cost_alert_events_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    alert_token TEXT NOT NULL REFERENCES cost_alerts (token) ON DELETE CASCADE,
    report_token TEXT NOT NULL,
    CONSTRAINT uq_cost_alert_events_key UNIQUE (alert_token, title)
);
CREATE INDEX ix_cost_alert_events_alert ON cost_alert_events (alert_token, report_token, id);

CREATE TABLE report_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_report_notifications_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    cost_report_token TEXT NOT NULL REFERENCES report_objects (token)
);
CREATE INDEX ix_report_notifications_account ON report_notifications (account_token, id);
CREATE INDEX ix_report_notifications_report ON report_notifications (cost_report_token);

CREATE TABLE report_notification_users (
    notification_token TEXT NOT NULL REFERENCES report_notifications (token) ON DELETE CASCADE,
    user_token TEXT NOT NULL REFERENCES users (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_report_notification_users PRIMARY KEY (notification_token, user_token)
);
CREATE INDEX ix_report_notification_users_user ON report_notification_users (user_token);

CREATE TABLE anomaly_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_anomaly_notifications_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    cost_report_token TEXT NOT NULL REFERENCES report_objects (token)
);
CREATE INDEX ix_anomaly_notifications_account ON anomaly_notifications (account_token, id);
CREATE INDEX ix_anomaly_notifications_report ON anomaly_notifications (cost_report_token);

CREATE TABLE anomaly_notification_users (
    notification_token TEXT NOT NULL REFERENCES anomaly_notifications (token) ON DELETE CASCADE,
    user_token TEXT NOT NULL REFERENCES users (token),
    position INTEGER NOT NULL,
    CONSTRAINT pk_anomaly_notification_users PRIMARY KEY (notification_token, user_token)
);
CREATE INDEX ix_anomaly_notification_users_user ON anomaly_notification_users (user_token);

-- One anomaly found: once per report, provider, service and day, whatever pass or restatement finds it
-- again. It goes with its report.
CREATE TABLE anomaly_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CONSTRAINT uq_anomaly_alerts_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    workspace_token TEXT NOT NULL REFERENCES workspaces (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    cost_report_token TEXT NOT NULL REFERENCES report_objects (token) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    service TEXT NOT NULL,
    day TEXT NOT NULL,
    CONSTRAINT uq_anomaly_alerts_key UNIQUE (cost_report_token, provider, service, day)
);
CREATE INDEX ix_anomaly_alerts_account ON anomaly_alerts (account_token, id);

-- Today's rows, in their order (lists are oldest first by id). A reference to something already gone is
-- left out of the keys (the services skip such references, as they did).
INSERT INTO budgets (token, account_token, workspace_token, title, definition, created_at, updated_at, cost_report_token)
SELECT o.token, o.account_token, o.workspace_token, o.title, o.definition, o.created_at, o.updated_at,
       (SELECT r.token FROM report_objects r WHERE r.token = json_extract(o.definition, '$.cost_report_token'))
FROM report_objects o WHERE o.kind = 'budget' ORDER BY o.id;

INSERT INTO budget_children (budget_token, child_token, position)
SELECT o.token, j.value, MIN(j.key) FROM report_objects o, json_each(o.definition, '$.child_budget_tokens') j
WHERE o.kind = 'budget' AND j.value IN (SELECT token FROM budgets) GROUP BY o.token, j.value;

INSERT INTO budget_alerts (token, account_token, workspace_token, title, definition, created_at, updated_at)
SELECT token, account_token, workspace_token, title, definition, created_at, updated_at
FROM report_objects WHERE kind = 'budget_alert' ORDER BY id;

INSERT INTO budget_alert_budgets (alert_token, budget_token, position)
SELECT o.token, j.value, MIN(j.key) FROM report_objects o, json_each(o.definition, '$.budget_tokens') j
WHERE o.kind = 'budget_alert' AND j.value IN (SELECT token FROM budgets) GROUP BY o.token, j.value;

INSERT INTO budget_alert_users (alert_token, user_token, position)
SELECT o.token, j.value, MIN(j.key) FROM report_objects o, json_each(o.definition, '$.user_tokens') j
WHERE o.kind = 'budget_alert' AND j.value IN (SELECT token FROM users) GROUP BY o.token, j.value;

INSERT INTO cost_alerts (token, account_token, workspace_token, title, definition, created_at, updated_at)
SELECT token, account_token, workspace_token, title, definition, created_at, updated_at
FROM report_objects WHERE kind = 'cost_alert' ORDER BY id;

INSERT INTO cost_alert_reports (alert_token, report_token, position)
SELECT o.token, j.value, MIN(j.key) FROM report_objects o, json_each(o.definition, '$.report_tokens') j
WHERE o.kind = 'cost_alert' AND j.value IN (SELECT token FROM report_objects WHERE kind = 'cost_report')
GROUP BY o.token, j.value;

-- An event now names its alert in its definition too.
INSERT INTO cost_alert_events (token, account_token, workspace_token, title, definition, created_at, updated_at,
                               alert_token, report_token)
SELECT o.token, o.account_token, o.workspace_token, o.title, json_set(o.definition, '$.alert_token', o.folder_token),
       o.created_at, o.updated_at, o.folder_token, COALESCE(json_extract(o.definition, '$.report_token'), '')
FROM report_objects o WHERE o.kind = 'cost_alert_event' AND o.folder_token IN (SELECT token FROM cost_alerts)
ORDER BY o.id
ON CONFLICT DO NOTHING;

INSERT INTO report_notifications (token, account_token, workspace_token, title, definition, created_at, updated_at,
                                  cost_report_token)
SELECT o.token, o.account_token, o.workspace_token, o.title, o.definition, o.created_at, o.updated_at,
       json_extract(o.definition, '$.cost_report_token')
FROM report_objects o WHERE o.kind = 'report_notification'
  AND json_extract(o.definition, '$.cost_report_token') IN (SELECT token FROM report_objects WHERE kind = 'cost_report')
ORDER BY o.id;

INSERT INTO report_notification_users (notification_token, user_token, position)
SELECT o.token, j.value, MIN(j.key) FROM report_notifications o, json_each(o.definition, '$.user_tokens') j
WHERE j.value IN (SELECT token FROM users) GROUP BY o.token, j.value;

INSERT INTO anomaly_notifications (token, account_token, workspace_token, title, definition, created_at, updated_at,
                                   cost_report_token)
SELECT o.token, o.account_token, o.workspace_token, o.title, o.definition, o.created_at, o.updated_at,
       json_extract(o.definition, '$.cost_report_token')
FROM report_objects o WHERE o.kind = 'anomaly_notification'
  AND json_extract(o.definition, '$.cost_report_token') IN (SELECT token FROM report_objects WHERE kind = 'cost_report')
ORDER BY o.id;

INSERT INTO anomaly_notification_users (notification_token, user_token, position)
SELECT o.token, j.value, MIN(j.key) FROM anomaly_notifications o, json_each(o.definition, '$.user_tokens') j
WHERE j.value IN (SELECT token FROM users) GROUP BY o.token, j.value;

INSERT INTO anomaly_alerts (token, account_token, workspace_token, title, definition, created_at, updated_at,
                            cost_report_token, provider, service, day)
SELECT o.token, o.account_token, o.workspace_token, o.title, o.definition, o.created_at, o.updated_at,
       json_extract(o.definition, '$.cost_report_token'), json_extract(o.definition, '$.provider'),
       json_extract(o.definition, '$.service'), json_extract(o.definition, '$.day')
FROM report_objects o WHERE o.kind = 'anomaly_alert'
  AND json_extract(o.definition, '$.cost_report_token') IN (SELECT token FROM report_objects WHERE kind = 'cost_report')
ORDER BY o.id
ON CONFLICT DO NOTHING;

DELETE FROM report_objects WHERE kind NOT IN ('folder', 'saved_filter', 'cost_report');

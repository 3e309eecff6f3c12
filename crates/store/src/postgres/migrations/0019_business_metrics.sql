-- Business metrics (docs/unit-costs.md): a daily series per account, attached to cost reports for their
-- unit costs. An attachment is a row whose keys are the metric and the report, so deleting either deletes
-- it (a report deleted is no longer listed under any metric). Values are exact decimal text per (metric,
-- kind, day, label); the unlabelled value has the label ''. Days are ISO text (YYYY-MM-DD), which sorts as
-- dates do.

CREATE TABLE business_metrics (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token TEXT NOT NULL CONSTRAINT uq_business_metrics_token UNIQUE,
    account_token TEXT NOT NULL REFERENCES accounts (token) ON DELETE CASCADE,
    title TEXT NOT NULL,
    created_by_token TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_business_metrics_account ON business_metrics (account_token, id);

CREATE TABLE business_metric_reports (
    business_metric_token TEXT NOT NULL REFERENCES business_metrics (token) ON DELETE CASCADE,
    cost_report_token TEXT NOT NULL REFERENCES report_objects (token) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    unit_scale TEXT NOT NULL,
    calculation_type TEXT NOT NULL,
    label TEXT,
    -- A JSON array of labels, or NULL for every value.
    label_filter TEXT,
    PRIMARY KEY (business_metric_token, cost_report_token)
);
CREATE INDEX ix_business_metric_reports_report ON business_metric_reports (cost_report_token);

CREATE TABLE business_metric_values (
    business_metric_token TEXT NOT NULL REFERENCES business_metrics (token) ON DELETE CASCADE,
    -- actual | forecast
    kind TEXT NOT NULL,
    value_date TEXT NOT NULL,
    label TEXT NOT NULL,
    amount TEXT NOT NULL,
    PRIMARY KEY (business_metric_token, kind, value_date, label)
);

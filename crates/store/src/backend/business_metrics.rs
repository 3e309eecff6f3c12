//! Business metrics: a row per metric, per attachment to a cost report, per value.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::business_metric::{Attachment, BusinessMetric, MetricChange, MetricValue, ValueKind, MAX_METRICS};
use ::costd_model::report::ViewKind;
use ::costd_model::token::{AccountToken, BusinessMetricToken};

use crate::sql::{day, AttachmentRow, MetricRow, ValueRow, ATTACHMENT_COLUMNS, METRIC_COLUMNS};
use crate::{BusinessMetricStore, MetricWrite, ValueRange};

/// Values written per statement (5 parameters each, well under SQLite's limit of 32766).
const BATCH: usize = 500;

type Conn = <Db as sqlx::Database>::Connection;

/// The metric's row, locked until the transaction ends (`false`: not in this account).
async fn lock_metric(conn: &mut Conn, account: &AccountToken, token: &BusinessMetricToken) -> anyhow::Result<bool> {
    let sql = format!("SELECT id FROM business_metrics WHERE account_token = $1 AND token = $2{}", LOCK);
    let found: Option<i64> = sqlx::query_scalar(&sql)
        .bind(crate::Text(&account))
        .bind(crate::Text(&token))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// Replaces the metric's attachments; answers the first token that is no cost report of the account.
async fn set_attachments(
    conn: &mut Conn,
    account: &AccountToken,
    token: &BusinessMetricToken,
    attachments: &[Attachment],
) -> anyhow::Result<Option<String>> {
    for a in attachments {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM report_objects WHERE account_token = $1 AND kind = $2 AND token = $3")
                .bind(crate::Text(&account))
                .bind(ViewKind::CostReport.as_str())
                .bind(&a.cost_report_token)
                .fetch_optional(&mut *conn)
                .await?;
        if found.is_none() {
            return Ok(Some(a.cost_report_token.clone()));
        }
    }
    sqlx::query("DELETE FROM business_metric_reports WHERE business_metric_token = $1")
        .bind(crate::Text(&token))
        .execute(&mut *conn)
        .await?;
    for (position, a) in attachments.iter().enumerate() {
        insert_attachment(conn, token, a, position as i64).await?;
    }
    Ok(None)
}

/// One attachment row: `metric` attached to `a`'s report, at `position` among the metric's attachments.
async fn insert_attachment(
    conn: &mut Conn,
    metric: &BusinessMetricToken,
    a: &Attachment,
    position: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO business_metric_reports (business_metric_token, cost_report_token, position, unit_scale, \
         calculation_type, label, label_filter) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(crate::Text(metric))
    .bind(&a.cost_report_token)
    .bind(position)
    .bind(a.unit_scale.as_str())
    .bind(a.calculation_type.as_str())
    .bind(a.label.as_deref())
    .bind(a.label_filter.as_ref().map(|f| serde_json::to_string(f).expect("strings serialise")))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the metric changed now.
async fn touch(conn: &mut Conn, metric: &BusinessMetricToken) -> anyhow::Result<()> {
    sqlx::query("UPDATE business_metrics SET updated_at = $2 WHERE token = $1")
        .bind(crate::Text(metric))
        .bind(crate::now())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes values, each replacing the value of its day and label.
async fn upsert_values(
    conn: &mut Conn,
    token: &BusinessMetricToken,
    kind: ValueKind,
    values: &[MetricValue],
) -> anyhow::Result<()> {
    for chunk in values.chunks(BATCH) {
        let mut q: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
            "INSERT INTO business_metric_values (business_metric_token, kind, value_date, label, amount) ",
        );
        q.push_values(chunk, |mut b, v| {
            b.push_bind(crate::Text(token))
                .push_bind(kind.as_str())
                .push_bind(day(v.date))
                .push_bind(v.label.clone().unwrap_or_default())
                .push_bind(v.amount.to_string());
        });
        q.push(" ON CONFLICT (business_metric_token, kind, value_date, label) DO UPDATE SET amount = excluded.amount");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Replaces every value of `kind`.
async fn replace_values(
    conn: &mut Conn,
    token: &BusinessMetricToken,
    kind: ValueKind,
    values: &[MetricValue],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM business_metric_values WHERE business_metric_token = $1 AND kind = $2")
        .bind(crate::Text(&token))
        .bind(kind.as_str())
        .execute(&mut *conn)
        .await?;
    upsert_values(conn, token, kind, values).await
}

/// Applies what `change` sets (inside the caller's transaction); `Some(token)` names an unknown report.
async fn apply(
    conn: &mut Conn,
    account: &AccountToken,
    token: &BusinessMetricToken,
    change: &MetricChange,
) -> anyhow::Result<Option<String>> {
    if let Some(title) = &change.title {
        sqlx::query("UPDATE business_metrics SET title = $2 WHERE token = $1")
            .bind(crate::Text(&token))
            .bind(title)
            .execute(&mut *conn)
            .await?;
    }
    if let Some(attachments) = &change.attachments {
        if let Some(unknown) = set_attachments(conn, account, token, attachments).await? {
            return Ok(Some(unknown));
        }
    }
    for (kind, values) in [(ValueKind::Actual, &change.values), (ValueKind::Forecast, &change.forecasted_values)] {
        if let Some(values) = values {
            replace_values(conn, token, kind, values).await?;
        }
    }
    touch(conn, token).await?;
    Ok(None)
}

/// `range` as conditions after a `WHERE` that already holds one.
fn push_range(q: &mut sqlx::QueryBuilder<'_, Db>, range: &ValueRange) {
    if let Some(start) = range.start {
        q.push(" AND value_date >= ").push_bind(day(start));
    }
    if let Some(end) = range.end {
        q.push(" AND value_date <= ").push_bind(day(end));
    }
    if let Some(label) = &range.label {
        q.push(" AND label = ").push_bind(label.clone());
    }
}

impl This {
    /// The metrics of `account` (one, with `only`) with their attachments: two reads, whatever their number.
    async fn read_metrics(
        &self,
        account: &AccountToken,
        only: Option<&BusinessMetricToken>,
    ) -> anyhow::Result<Vec<BusinessMetric>> {
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM business_metrics WHERE account_token = $1 AND ($2 IS NULL OR token = $2) \
             ORDER BY id"
        );
        let rows: Vec<MetricRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(only.map(|t| t.as_str().to_string()))
            .fetch_all(&self.read)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM business_metric_reports r JOIN business_metrics m ON m.token = r.business_metric_token \
             WHERE m.account_token = $1 AND ($2 IS NULL OR m.token = $2) ORDER BY r.business_metric_token, r.position",
            ATTACHMENT_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ")
        );
        let attachments: Vec<AttachmentRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(only.map(|t| t.as_str().to_string()))
            .fetch_all(&self.read)
            .await?;
        let mut by_metric: std::collections::HashMap<String, Vec<AttachmentRow>> = std::collections::HashMap::new();
        for a in attachments {
            by_metric.entry(a.business_metric_token.clone()).or_default().push(a);
        }
        rows.into_iter()
            .map(|row| {
                let attached = by_metric.remove(row.token()).unwrap_or_default();
                row.with(attached)
            })
            .collect()
    }

    async fn metric_exists(&self, account: &AccountToken, token: &BusinessMetricToken) -> anyhow::Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM business_metrics WHERE account_token = $1 AND token = $2")
                .bind(crate::Text(&account))
                .bind(crate::Text(&token))
                .fetch_optional(&self.read)
                .await?;
        Ok(found.is_some())
    }

    async fn written(&self, account: &AccountToken, token: &BusinessMetricToken) -> anyhow::Result<MetricWrite> {
        Ok(match self.get_business_metric(account, token).await? {
            Some(m) => MetricWrite::Done(m),
            None => MetricWrite::NotFound,
        })
    }
}

#[async_trait::async_trait]
impl crate::BusinessMetricStore for This {
    #[tracing::instrument(skip(self, change))]
    async fn create_business_metric(
        &self,
        account: &AccountToken,
        created_by: Option<&str>,
        change: &MetricChange,
    ) -> anyhow::Result<MetricWrite> {
        let title = change.title.as_deref().ok_or_else(|| anyhow::anyhow!("a business metric needs a title"))?;
        let mut tx = self.write.begin().await?;
        // The account's row, locked: two creates at once count the metrics one after the other.
        let sql = format!("SELECT id FROM accounts WHERE token = $1{}", LOCK);
        let _: Option<i64> = sqlx::query_scalar(&sql).bind(crate::Text(&account)).fetch_optional(&mut *tx).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM business_metrics WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_METRICS as i64 {
            return Ok(MetricWrite::TooMany);
        }
        let token = BusinessMetricToken::generate();
        let now = crate::now();
        sqlx::query(
            "INSERT INTO business_metrics (token, account_token, title, created_by_token, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&account))
        .bind(title)
        .bind(created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(unknown) = apply(&mut tx, account, &token, change).await? {
            return Ok(MetricWrite::UnknownReport(unknown));
        }
        tx.commit().await?;
        self.written(account, &token).await
    }

    #[tracing::instrument(skip(self))]
    async fn list_business_metrics(&self, account: &AccountToken) -> anyhow::Result<Vec<BusinessMetric>> {
        self.read_metrics(account, None).await
    }

    #[tracing::instrument(skip(self))]
    async fn get_business_metric(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
    ) -> anyhow::Result<Option<BusinessMetric>> {
        Ok(self.read_metrics(account, Some(token)).await?.pop())
    }

    #[tracing::instrument(skip(self, change))]
    async fn update_business_metric(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        change: &MetricChange,
    ) -> anyhow::Result<MetricWrite> {
        let mut tx = self.write.begin().await?;
        if !lock_metric(&mut tx, account, token).await? {
            return Ok(MetricWrite::NotFound);
        }
        if let Some(unknown) = apply(&mut tx, account, token, change).await? {
            return Ok(MetricWrite::UnknownReport(unknown));
        }
        tx.commit().await?;
        self.written(account, token).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete_business_metric(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM business_metrics WHERE account_token = $1 AND token = $2")
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip(self, values), fields(values = values.len()))]
    async fn put_metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: ValueKind,
        values: &[MetricValue],
    ) -> anyhow::Result<bool> {
        let mut tx = self.write.begin().await?;
        if !lock_metric(&mut tx, account, token).await? {
            return Ok(false);
        }
        upsert_values(&mut tx, token, kind, values).await?;
        touch(&mut tx, token).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip(self))]
    async fn metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: ValueKind,
        range: &ValueRange,
    ) -> anyhow::Result<Option<Vec<MetricValue>>> {
        if !self.metric_exists(account, token).await? {
            return Ok(None);
        }
        let mut q: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
            "SELECT value_date, label, amount FROM business_metric_values WHERE business_metric_token = ",
        );
        q.push_bind(crate::Text(token)).push(" AND kind = ").push_bind(kind.as_str());
        push_range(&mut q, range);
        q.push(" ORDER BY value_date, label");
        let rows: Vec<ValueRow> = q.build_query_as().fetch_all(&self.read).await?;
        Ok(Some(rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<_>>()?))
    }

    #[tracing::instrument(skip(self))]
    async fn delete_metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: ValueKind,
        range: &ValueRange,
    ) -> anyhow::Result<Option<u64>> {
        let mut tx = self.write.begin().await?;
        if !lock_metric(&mut tx, account, token).await? {
            return Ok(None);
        }
        let mut q: sqlx::QueryBuilder<Db> =
            sqlx::QueryBuilder::new("DELETE FROM business_metric_values WHERE business_metric_token = ");
        q.push_bind(crate::Text(token)).push(" AND kind = ").push_bind(kind.as_str());
        push_range(&mut q, range);
        let done = q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(done.rows_affected()))
    }

    #[tracing::instrument(skip(self, metrics), fields(metrics = metrics.len()))]
    async fn set_report_metrics(
        &self,
        account: &AccountToken,
        report: &str,
        metrics: &[(BusinessMetricToken, Attachment)],
    ) -> anyhow::Result<Option<String>> {
        let mut tx = self.write.begin().await?;
        for (token, _) in metrics {
            if !lock_metric(&mut tx, account, token).await? {
                return Ok(Some(token.to_string()));
            }
        }
        // Only the account's own metrics' rows: the report's token is the account's (checked by the caller).
        sqlx::query(
            "DELETE FROM business_metric_reports WHERE cost_report_token = $1 AND business_metric_token IN \
             (SELECT token FROM business_metrics WHERE account_token = $2)",
        )
        .bind(report)
        .bind(crate::Text(&account))
        .execute(&mut *tx)
        .await?;
        for (token, a) in metrics {
            // After the metric's own attachments: its position is its last.
            let position: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(MAX(position) + 1, 0) AS BIGINT) FROM business_metric_reports \
                 WHERE business_metric_token = $1",
            )
            .bind(crate::Text(token))
            .fetch_one(&mut *tx)
            .await?;
            insert_attachment(&mut tx, token, a, position).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    #[tracing::instrument(skip(self))]
    async fn metric_labels(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
    ) -> anyhow::Result<Option<Vec<String>>> {
        if !self.metric_exists(account, token).await? {
            return Ok(None);
        }
        let labels: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT label FROM business_metric_values WHERE business_metric_token = $1 AND label <> '' \
             ORDER BY label",
        )
        .bind(crate::Text(&token))
        .fetch_all(&self.read)
        .await?;
        Ok(Some(labels))
    }
}

//! Business metrics: a row per metric, a row per attachment to a cost report and a row per value (exact
//! decimal text, the unlabelled value under the label ''), decoded here so the store hands out checked
//! metrics and values.

use chrono::{DateTime, NaiveDate, Utc};

use costd_model::business_metric::{Attachment, BusinessMetric, CalculationType, MetricValue, UnitScale};
use costd_model::token::{AccountToken, BusinessMetricToken};

pub(crate) const METRIC_COLUMNS: &str = "token, account_token, title, created_by_token, created_at, updated_at";
pub(crate) const ATTACHMENT_COLUMNS: &str =
    "business_metric_token, cost_report_token, unit_scale, calculation_type, label, label_filter";

#[derive(sqlx::FromRow)]
pub(crate) struct MetricRow {
    token: crate::Text<BusinessMetricToken>,
    account_token: crate::Text<AccountToken>,
    title: String,
    created_by_token: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    pub(crate) business_metric_token: String,
    cost_report_token: String,
    unit_scale: String,
    calculation_type: String,
    label: Option<String>,
    label_filter: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ValueRow {
    value_date: String,
    label: String,
    amount: String,
}

impl MetricRow {
    /// The metric with its attachments (in their saved order).
    pub(crate) fn with(self, attachments: Vec<AttachmentRow>) -> anyhow::Result<BusinessMetric> {
        let token = self.token.0;
        let attachments = attachments.into_iter().map(|a| a.decode(&token)).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(BusinessMetric {
            token,
            account_token: self.account_token.0,
            title: self.title,
            created_by_token: self.created_by_token,
            attachments,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    pub(crate) fn token(&self) -> &str {
        self.token.0.as_str()
    }
}

impl AttachmentRow {
    fn decode(self, metric: &BusinessMetricToken) -> anyhow::Result<Attachment> {
        let unreadable =
            |what: &str, text: &str| anyhow::anyhow!("business metric {metric} has an unreadable {what} {text:?}");
        let unit_scale = UnitScale::ALL
            .into_iter()
            .find(|u| u.as_str() == self.unit_scale)
            .ok_or_else(|| unreadable("unit_scale", &self.unit_scale))?;
        let calculation_type =
            [CalculationType::UnitCost, CalculationType::GrossMargin, CalculationType::RawBusinessMetric]
                .into_iter()
                .find(|c| c.as_str() == self.calculation_type)
                .ok_or_else(|| unreadable("calculation_type", &self.calculation_type))?;
        let label_filter = match &self.label_filter {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|_| unreadable("label_filter", text))?),
        };
        Ok(Attachment {
            cost_report_token: self.cost_report_token,
            unit_scale,
            calculation_type,
            label: self.label,
            label_filter,
        })
    }
}

impl TryFrom<ValueRow> for MetricValue {
    type Error = anyhow::Error;

    fn try_from(r: ValueRow) -> anyhow::Result<Self> {
        let date = NaiveDate::parse_from_str(&r.value_date, "%Y-%m-%d")
            .map_err(|e| anyhow::anyhow!("a business metric value has an unreadable day {:?}: {e}", r.value_date))?;
        let amount = r
            .amount
            .parse()
            .map_err(|e| anyhow::anyhow!("a business metric value has an unreadable amount {:?}: {e}", r.amount))?;
        Ok(MetricValue { date, amount, label: Some(r.label).filter(|l| !l.is_empty()) })
    }
}

pub(crate) fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

//! Billing rules of an account, one at a time or in batches.

use chrono::{DateTime, NaiveDate, Utc};

use crate::BillingRuleRow;
use costd_model::billing_rule::RuleColumns;
use costd_model::token::RuleToken;

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    token: crate::Text<RuleToken>,
    title: String,
    rule_type: String,
    rule_group: Option<String>,
    charge_type: Option<String>,
    percentage: Option<String>,
    service: Option<String>,
    category: Option<String>,
    sub_category: Option<String>,
    amount: Option<String>,
    start_period: Option<NaiveDate>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    apply_to_all: bool,
    sql_query: Option<String>,
    created_by_token: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<RuleRow> for BillingRuleRow {
    type Error = anyhow::Error;

    fn try_from(r: RuleRow) -> anyhow::Result<Self> {
        use costd_model::billing_rule::{legacy_group, RuleGroup, RuleType};
        let rule_type: RuleType = r
            .rule_type
            .parse()
            .map_err(|e: String| anyhow::anyhow!("stored rule {} has a bad type: {e}", r.token.0))?;
        let group = match r.rule_group.as_deref() {
            Some(g) => g.parse::<RuleGroup>().map_err(|e| anyhow::anyhow!("stored rule {}: {e}", r.token.0))?,
            None => legacy_group(rule_type, r.sql_query.as_deref()),
        };
        Ok(BillingRuleRow {
            token: r.token.0,
            columns: RuleColumns {
                title: r.title,
                rule_type,
                group,
                charge_type: r.charge_type,
                percentage: r.percentage,
                service: r.service,
                category: r.category,
                sub_category: r.sub_category,
                amount: r.amount,
                start_period: r.start_period,
                start_date: r.start_date,
                end_date: r.end_date,
                apply_to_all: r.apply_to_all,
                sql_query: r.sql_query,
            },
            created_by_token: r.created_by_token,
            created_at: r.created_at,
        })
    }
}

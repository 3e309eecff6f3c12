//! Billing rules of an account, one at a time or in batches.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::RuleStore for This {
    #[tracing::instrument(skip(self, rule))]
    async fn create_billing_rule(
        &self,
        account: &::costd_model::token::AccountToken,
        created_by: &str,
        rule: &::costd_model::billing_rule::RuleColumns,
    ) -> anyhow::Result<crate::BillingRuleRow> {
        let token = ::costd_model::token::RuleToken::generate();
        let created_at = crate::now();
        sqlx::query(
            "INSERT INTO billing_rules (token, account_token, title, rule_type, charge_type, percentage, \
             service, category, sub_category, amount, start_period, start_date, end_date, apply_to_all, \
             sql_query, created_by_token, created_at, rule_group) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&account))
        .bind(&rule.title)
        .bind(rule.rule_type.as_str())
        .bind(&rule.charge_type)
        .bind(&rule.percentage)
        .bind(&rule.service)
        .bind(&rule.category)
        .bind(&rule.sub_category)
        .bind(&rule.amount)
        .bind(rule.start_period)
        .bind(rule.start_date)
        .bind(rule.end_date)
        .bind(rule.apply_to_all)
        .bind(&rule.sql_query)
        .bind(created_by)
        .bind(created_at)
        .bind(rule.group.as_str())
        .execute(&self.write)
        .await?;
        Ok(crate::BillingRuleRow { token, columns: rule.clone(), created_by_token: created_by.to_string(), created_at })
    }

    #[tracing::instrument(skip(self))]
    async fn list_billing_rules(
        &self,
        account: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::BillingRuleRow>> {
        let sql = format!(
            "SELECT {} FROM billing_rules WHERE account_token = $1 ORDER BY id LIMIT $2 OFFSET $3",
            crate::sql::RULE_COLUMNS
        );
        let rows: Vec<crate::sql::RuleRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_rules WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&self.read)
            .await?;
        let items = rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<_>>()?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_billing_rule(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::RuleToken,
    ) -> anyhow::Result<Option<crate::BillingRuleRow>> {
        let sql =
            format!("SELECT {} FROM billing_rules WHERE account_token = $1 AND token = $2", crate::sql::RULE_COLUMNS);
        let row: Option<crate::sql::RuleRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn get_billing_rules(
        &self,
        account: &::costd_model::token::AccountToken,
        tokens: &[::costd_model::token::RuleToken],
    ) -> anyhow::Result<Vec<crate::BillingRuleRow>> {
        let mut found = Vec::with_capacity(tokens.len());
        // Chunks keep each statement far below SQLite's limit of bound parameters.
        for chunk in tokens.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                "SELECT {} FROM billing_rules WHERE account_token = ",
                crate::sql::RULE_COLUMNS
            ));
            q.push_bind(crate::Text(&account)).push(" AND token IN (");
            let mut list = q.separated(", ");
            for t in chunk {
                list.push_bind(crate::Text(t));
            }
            list.push_unseparated(")");
            let rows: Vec<crate::sql::RuleRow> = q.build_query_as().fetch_all(&self.read).await?;
            for row in rows {
                found.push(row.try_into()?);
            }
        }
        Ok(found)
    }

    #[tracing::instrument(skip(self, rule))]
    async fn update_billing_rule(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::RuleToken,
        rule: &::costd_model::billing_rule::RuleColumns,
    ) -> anyhow::Result<Option<crate::BillingRuleRow>> {
        let sql = format!(
            "UPDATE billing_rules SET title = $3, charge_type = $4, percentage = $5, service = $6, \
             category = $7, sub_category = $8, amount = $9, start_period = $10, start_date = $11, \
             end_date = $12, apply_to_all = $13, sql_query = $14, rule_group = $15 \
             WHERE account_token = $1 AND token = $2 RETURNING {}",
            crate::sql::RULE_COLUMNS
        );
        let row: Option<crate::sql::RuleRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .bind(&rule.title)
            .bind(&rule.charge_type)
            .bind(&rule.percentage)
            .bind(&rule.service)
            .bind(&rule.category)
            .bind(&rule.sub_category)
            .bind(&rule.amount)
            .bind(rule.start_period)
            .bind(rule.start_date)
            .bind(rule.end_date)
            .bind(rule.apply_to_all)
            .bind(&rule.sql_query)
            .bind(rule.group.as_str())
            .fetch_optional(&self.write)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn delete_billing_rule(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::RuleToken,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM billing_rules WHERE account_token = $1 AND token = $2")
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn apply_to_all_rules(
        &self,
        account: &::costd_model::token::AccountToken,
    ) -> anyhow::Result<Vec<crate::BillingRuleRow>> {
        let sql = format!(
            "SELECT {} FROM billing_rules WHERE account_token = $1 AND apply_to_all = $2 ORDER BY id",
            crate::sql::RULE_COLUMNS
        );
        let rows: Vec<crate::sql::RuleRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).bind(true).fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

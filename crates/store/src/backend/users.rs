//! The account's user directory: add, list, read, and read many by token at once (alert recipients).
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::UserStore for This {
    #[tracing::instrument(skip(self, user))]
    async fn create_user(
        &self,
        account: &::costd_model::token::AccountToken,
        user: &::costd_model::user::NewUser,
    ) -> anyhow::Result<crate::User> {
        let created = crate::User {
            token: ::costd_model::token::new_token(::costd_model::token::prefix::USER),
            name: user.name.clone(),
            email: user.email.clone(),
            role: user.role.as_str().to_string(),
            created_at: crate::now(),
        };
        sqlx::query(
            "INSERT INTO users (token, account_token, name, email, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&created.token)
        .bind(crate::Text(&account))
        .bind(&created.name)
        .bind(&created.email)
        .bind(&created.role)
        .bind(created.created_at)
        .execute(&self.write)
        .await?;
        Ok(created)
    }

    #[tracing::instrument(skip(self))]
    async fn list_users(
        &self,
        account: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::User>> {
        let sql = format!(
            "SELECT {} FROM users WHERE account_token = $1 ORDER BY id LIMIT $2 OFFSET $3",
            crate::sql::USER_COLUMNS
        );
        let rows: Vec<crate::sql::UserRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&self.read)
            .await?;
        Ok(crate::Paged { items: rows.into_iter().map(Into::into).collect(), total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_user(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
    ) -> anyhow::Result<Option<crate::User>> {
        let sql = format!("SELECT {} FROM users WHERE account_token = $1 AND token = $2", crate::sql::USER_COLUMNS);
        let row: Option<crate::sql::UserRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&self.read).await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip(self, tokens), fields(tokens = tokens.len()))]
    async fn users_by_tokens(
        &self,
        account: &::costd_model::token::AccountToken,
        tokens: &[String],
    ) -> anyhow::Result<Vec<crate::User>> {
        let mut found: std::collections::HashMap<String, crate::User> = Default::default();
        for chunk in tokens.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                "SELECT {} FROM users WHERE account_token = ",
                crate::sql::USER_COLUMNS
            ));
            q.push_bind(crate::Text(&account)).push(" AND token IN (");
            let mut list = q.separated(", ");
            for t in chunk {
                list.push_bind(t);
            }
            list.push_unseparated(")");
            let rows: Vec<crate::sql::UserRow> = q.build_query_as().fetch_all(&self.read).await?;
            found.extend(rows.into_iter().map(|r| {
                let u = crate::User::from(r);
                (u.token.clone(), u)
            }));
        }
        Ok(tokens.iter().filter_map(|t| found.remove(t)).collect())
    }
}

//! `/v2/budgets` (Vantage's): budgets with their periods, their alerts' tokens and, on request, their
//! performance. The rules are in `model::budget` and `service::budgets`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{timestamp, ApiError, AppState, Result};
use crate::model::budget::{Budget, BudgetFields, BudgetPeriod};
use crate::service::{budgets, records};
use crate::store::wing::Budgets;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A day as Vantage writes a budget's dates.
fn day(d: chrono::NaiveDate) -> String {
    format!("{d}T00:00:00Z")
}

#[derive(Serialize, utoipa::ToSchema)]
struct PeriodBody {
    start_at: String,
    end_at: String,
    amount: String,
}

impl From<&BudgetPeriod> for PeriodBody {
    fn from(p: &BudgetPeriod) -> Self {
        PeriodBody { start_at: day(p.start), end_at: day(p.end), amount: p.amount.to_string() }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct PerformanceBody {
    date: String,
    actual: String,
    amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetBody {
    token: String,
    name: String,
    workspace_token: String,
    user_token: Option<String>,
    created_by_token: Option<String>,
    cost_report_token: Option<String>,
    created_at: String,
    budget_alert_tokens: Vec<String>,
    child_budget_tokens: Vec<String>,
    periods: Vec<PeriodBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance: Option<Vec<PerformanceBody>>,
}

async fn budget_body(
    state: &AppState,
    caller: &Caller,
    b: Budget,
    alerts: &std::collections::BTreeMap<String, Vec<String>>,
    periods: Option<Vec<BudgetPeriod>>,
    with_performance: bool,
) -> Result<BudgetBody> {
    let performance = if with_performance {
        let p =
            budgets::performance(&state.costs_context(), &caller.account_token, &b, (state.today)(), |_| true).await?;
        Some(
            p.periods
                .iter()
                .map(|p| PerformanceBody {
                    date: day(p.period.start),
                    actual: p.actual.to_string(),
                    amount: p.period.amount.to_string(),
                })
                .collect(),
        )
    } else {
        None
    };
    let periods = match periods {
        Some(p) => p,
        None => budgets::periods_of(state.store.as_ref(), &caller.account_token, &b).await?,
    };
    Ok(BudgetBody {
        budget_alert_tokens: alerts.get(b.token.as_str()).cloned().unwrap_or_default(),
        token: b.token.to_string(),
        name: b.title,
        workspace_token: b.workspace_token,
        user_token: None,
        created_by_token: None,
        cost_report_token: b.definition.cost_report_token,
        created_at: timestamp(b.created_at),
        child_budget_tokens: b.definition.child_budget_tokens,
        periods: periods.iter().map(Into::into).collect(),
        performance,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetsBody {
    budgets: Vec<BudgetBody>,
    links: Links,
}

/// What a list of the wing's records may be narrowed by.
#[derive(Debug, Default, Deserialize)]
pub(super) struct InWorkspace {
    pub(super) workspace_token: Option<String>,
}

#[utoipa::path(get, path = "/budgets", tag = "budgets", operation_id = "budgets_list", params(("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = BudgetsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<InWorkspace>,
) -> Result<axum::Json<BudgetsBody>> {
    let store = state.store.as_ref();
    let found =
        records::list::<Budgets>(store, &caller.account_token, params.workspace_token.as_deref(), paging.page).await?;
    let alerts = budgets::alerts_by_budget(store, &caller.account_token).await?;
    // Every budget's periods in one read of the account's budgets (a hierarchical budget shows its children's).
    let periods = budgets::periods_of_page(store, &caller.account_token, &found.items).await?;
    let mut out = Vec::with_capacity(found.items.len());
    for (b, p) in found.items.into_iter().zip(periods) {
        out.push(budget_body(&state, &caller, b, &alerts, Some(p), false).await?);
    }
    Ok(axum::Json(BudgetsBody { budgets: out, links: paging.links(found.total) }))
}

#[utoipa::path(post, path = "/budgets", tag = "budgets", operation_id = "budgets_create", request_body = BudgetFields, responses((status = 201, description = "Created", body = BudgetBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<BudgetFields>,
) -> Result<(StatusCode, axum::Json<BudgetBody>)> {
    let created = budgets::create(state.store.as_ref(), &caller.account_token, fields).await?;
    let body = budget_body(&state, &caller, created, &Default::default(), None, false).await?;
    Ok((StatusCode::CREATED, axum::Json(body)))
}

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    /// `true`/`false` (any case: Python clients send `True`), or 1/0.
    include_performance: Option<String>,
}

#[utoipa::path(get, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_show", params(("budget_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<axum::Json<BudgetBody>> {
    let found = records::get::<Budgets>(state.store.as_ref(), &caller.account_token, &token).await?;
    let alerts = budgets::alerts_by_budget(state.store.as_ref(), &caller.account_token).await?;
    let with_performance = match params.include_performance.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" || v == "1" => true,
        Some(v) if v == "false" || v == "0" || v.is_empty() => false,
        Some(v) => return Err(ApiError::bad_request(format!("include_performance must be true or false, got {v:?}"))),
    };
    let body = budget_body(&state, &caller, found, &alerts, None, with_performance).await?;
    Ok(axum::Json(body))
}

#[utoipa::path(put, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_update", request_body = BudgetFields, params(("budget_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<BudgetFields>,
) -> Result<axum::Json<BudgetBody>> {
    let updated = budgets::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    let alerts = budgets::alerts_by_budget(state.store.as_ref(), &caller.account_token).await?;
    Ok(axum::Json(budget_body(&state, &caller, updated, &alerts, None, false).await?))
}

#[utoipa::path(delete, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_remove", params(("budget_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    budgets::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

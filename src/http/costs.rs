//! `GET /v2/costs`: the caller's costs, grouped and binned; a managed account sees its integrations' costs
//! with its billing rules applied in order, the parent account its raw costs.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::auth::Caller;
use super::managed_accounts::effective_rule_tokens;
use super::pagination::{base_url, Links};
use super::{ApiError, AppState, Result};
use crate::engine::costs::{self, round_total, CostError, CostQuery, CostSource, DateBin, Settings, GROUPINGS};
use crate::engine::ingest::parse::format_amount;
use crate::engine::rules::compile::RuleStep;
use crate::engine::uploads::upload_path;
use crate::model::billing_rule::{RuleDefinition, RuleFields};
use crate::store::{PageRequest, Store};

/// Largest `limit` of `/v2/costs`.
pub const MAX_COSTS_LIMIT: u32 = 5000;
const DEFAULT_GROUPINGS: [&str; 3] = ["provider", "service", "account_id"];

pub fn router() -> Router<AppState> {
    Router::new().route("/costs", get(costs_handler))
}

#[derive(Serialize)]
struct TotalCost {
    amount: String,
    currency: String,
}

#[derive(Serialize)]
struct CostsBody {
    total_cost: TotalCost,
    costs: Vec<Map<String, Value>>,
    links: Links,
}

/// The query string, checked; every problem is listed.
struct Params {
    query: CostQuery,
    workspace_token: Option<String>,
    page: PageRequest,
}

fn parse_bool(name: &str, v: &str, errors: &mut Vec<String>) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(format!("{name} must be true or false, got {v:?}"));
            None
        }
    }
}

fn parse_params(raw: &str) -> Result<Params> {
    let mut errors = Vec::new();
    let today = Utc::now().date_naive();
    let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("valid date");
    let month_end = month_start.checked_add_months(chrono::Months::new(1)).expect("valid date").pred_opt().expect("valid date");
    let (mut start, mut end) = (month_start, month_end);
    let (mut groupings, mut date_bin, mut descending) = (None::<Vec<String>>, DateBin::Day, true);
    let (mut page, mut limit) = (1u32, 100u32);
    let mut settings = Settings::default();
    let (mut filter, mut workspace_token) = (None, None);

    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let v = value.trim();
        match key.as_ref() {
            "filter" if !v.is_empty() => match costs_filter(v) {
                Ok(e) => filter = Some(e),
                Err(e) => errors.push(e),
            },
            "filter" => {}
            "cost_report_token" => errors.push("cost_report_token: cost reports are not supported yet; pass a VQL filter".into()),
            "workspace_token" => workspace_token = Some(v.to_string()),
            "start_date" | "end_date" => match NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d") {
                Ok(d) if key == "start_date" => start = d,
                Ok(d) => end = d,
                Err(_) => errors.push(format!("{key} must be a date like 2024-05-01, got {v:?}")),
            },
            "groupings" | "groupings[]" => {
                let list = groupings.get_or_insert_with(Vec::new);
                for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if GROUPINGS.iter().any(|(name, _)| *name == g) {
                        if !list.iter().any(|x| x == g) {
                            list.push(g.to_string());
                        }
                    } else if g == "tagged" || g.starts_with("tag:") {
                        errors.push(format!("groupings: {g} is not supported yet"));
                    } else {
                        let valid: Vec<&str> = GROUPINGS.iter().map(|(n, _)| *n).collect();
                        errors.push(format!("groupings: unknown grouping {g:?}; valid: {}", valid.join(", ")));
                    }
                }
            }
            "date_bin" => match v.parse::<DateBin>() {
                Ok(b) => date_bin = b,
                Err(e) => errors.push(e),
            },
            "order" => match v {
                "asc" => descending = false,
                "desc" => descending = true,
                _ => errors.push(format!("order must be asc or desc, got {v:?}")),
            },
            "page" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => page = p,
                _ => errors.push(format!("page must be a whole number from 1, got {v:?}")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(l) if (1..=MAX_COSTS_LIMIT).contains(&l) => limit = l,
                _ => errors.push(format!("limit must be between 1 and {MAX_COSTS_LIMIT}, got {v:?}")),
            },
            "settings[include_credits]" => settings.include_credits = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_refunds]" => settings.include_refunds = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_discounts]" => settings.include_discounts = parse_bool(&key, v, &mut errors).unwrap_or(true),
            "settings[include_tax]" => settings.include_tax = parse_bool(&key, v, &mut errors).unwrap_or(true),
            _ => {}
        }
    }
    if end < start {
        errors.push(format!("end_date ({end}) must not be before start_date ({start})"));
    }
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let groupings = groupings.unwrap_or_else(|| DEFAULT_GROUPINGS.iter().map(|g| g.to_string()).collect());
    Ok(Params {
        query: CostQuery { start, end, groupings, date_bin, descending, settings, filter },
        workspace_token,
        page: PageRequest { page, limit },
    })
}

fn costs_filter(v: &str) -> std::result::Result<datafusion::logical_expr::Expr, String> {
    crate::engine::vql::compile(v)
}

/// Integrations the caller sees, the account owning their uploads, and the rules to run.
async fn source_for(state: &AppState, account: &str, workspace: Option<&str>) -> Result<(String, Vec<String>, Vec<RuleStep>)> {
    let store: &dyn Store = state.store.as_ref();
    let acct = store.get_account(account).await?.ok_or_else(|| anyhow::anyhow!("the caller's account vanished"))?;
    if let Some(ws) = workspace {
        store.get_workspace(account, ws).await?.ok_or_else(|| ApiError::NotFound("workspace not found".into()))?;
    }
    match acct.parent_account_token {
        Some(parent) => {
            let managed = store
                .get_managed_account(&parent, account)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a managed account without its parent link"))?;
            let mut rules = Vec::new();
            for token in effective_rule_tokens(store, &parent, &managed.rule_tokens).await? {
                let Some(row) = store.get_billing_rule(&parent, &token).await? else { continue };
                let rule = RuleDefinition::try_from(RuleFields::from(row.columns))
                    .map_err(|e| anyhow::anyhow!("stored rule {token} no longer parses: {}", e.join("; ")))?;
                rules.push(RuleStep { token, rule });
            }
            Ok((parent, managed.integration_tokens, rules))
        }
        None => {
            let mut integrations = Vec::new();
            let mut page = 1;
            loop {
                let found = store.list_integrations(account, PageRequest { page, limit: 1000 }, None, None).await?;
                let done = found.items.len() < 1000;
                integrations.extend(
                    found
                        .items
                        .into_iter()
                        // An integration in no workspace shows in every workspace.
                        .filter(|i| workspace.is_none_or(|ws| i.workspace_tokens.is_empty() || i.workspace_tokens.iter().any(|w| w == ws)))
                        .map(|i| i.token),
                );
                if done {
                    break;
                }
                page += 1;
            }
            Ok((account.to_string(), integrations, Vec::new()))
        }
    }
}

async fn costs_handler(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<CostsBody>> {
    let params = parse_params(uri.query().unwrap_or_default())?;
    let (owner, integrations, rules) = source_for(&state, &caller.account_token, params.workspace_token.as_deref()).await?;
    let uploads = state.store.live_uploads(&owner, &integrations).await?;
    let source = CostSource {
        currency: uploads.first().map(|u| u.currency.clone()).unwrap_or_else(|| "USD".into()),
        files: uploads.iter().map(|u| upload_path(&state.data_dir, &u.token)).collect(),
        rules,
    };
    let result = costs::run(&source, &params.query).await.map_err(|e| match e {
        CostError::Unsupported(msg) => ApiError::Unprocessable(vec![msg]),
        CostError::Engine(e) => ApiError::Internal(e),
    })?;
    let (amount, currency) = match result.totals.as_slice() {
        [] => (0, source.currency.clone()),
        [(cur, total)] => (*total, cur.clone()),
        several => {
            let names: Vec<&str> = several.iter().map(|(c, _)| c.as_str()).collect();
            return Err(ApiError::Unprocessable(vec![format!(
                "the costs are in several currencies ({}); filter to one, e.g. with a workspace or VQL filter",
                names.join(", ")
            )]));
        }
    };
    let total_rows = result.rows.len() as i64;
    let skip = (params.page.page as usize - 1).saturating_mul(params.page.limit as usize);
    let costs = result
        .rows
        .into_iter()
        .skip(skip)
        .take(params.page.limit as usize)
        .map(|r| {
            let mut m = Map::new();
            m.insert("accrued_at".into(), Value::String(r.accrued_at.to_string()));
            m.insert("amount".into(), Value::String(format_amount(r.amount)));
            m.insert("currency".into(), Value::String(r.currency));
            for (name, value) in r.dimensions {
                if let Some(v) = value {
                    m.insert(name, Value::String(v));
                }
            }
            m
        })
        .collect();
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, params.page, total_rows);
    Ok(axum::Json(CostsBody { total_cost: TotalCost { amount: round_total(amount), currency }, costs, links }))
}

//! `GET /v2/costs`: the caller's costs, grouped and binned; a managed account sees its integrations' costs
//! with its billing rules applied in order, the parent account its raw costs.

use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::pagination::{Links, ListUrl};
use super::{ApiError, AppState, Result};
use crate::model::cost_query::{parse_params_with, report_token, Defaults};
use crate::model::cost_query::{round_total, Aggregate};
use crate::service::costs::costs;
use crate::service::reports::report_defaults;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(costs_handler))
}

#[derive(Serialize, utoipa::ToSchema)]
struct TotalCost {
    amount: String,
    currency: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Usage {
    amount: String,
    unit: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CostsBody {
    total_cost: TotalCost,
    /// With `settings[aggregate_by]=usage`: the usage per unit, rounded to 2 places as Vantage says.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_usage: Option<Vec<Usage>>,
    costs: Vec<Map<String, Value>>,
    links: Links,
}

/// The costs query a query string asks for: a report's definition when it names one
/// (`cost_report_token`), with its parameters laid over it.
pub(super) async fn costs_params(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<crate::model::cost_query::Params> {
    let defaults = match report_token(raw) {
        Some(token) => report_defaults(state.store.as_ref(), &caller.account_token, &token, (state.today)()).await?,
        None => Defaults::this_month((state.today)()),
    };
    parse_params_with(raw, defaults).map_err(ApiError::BadRequest)
}

#[utoipa::path(get, path = "/costs", tag = "costs", operation_id = "costs_costs_handler", responses((status = 200, description = "OK", body = CostsBody), super::openapi::ApiErrors))]
async fn costs_handler(State(state): State<AppState>, caller: Caller, url: ListUrl) -> Result<axum::Json<CostsBody>> {
    let params = costs_params(&state, &caller, url.query()).await?;
    let answer =
        costs(&state.costs_context(), &caller.account_token, params.workspace_token.as_deref(), &params.query).await?;
    Ok(axum::Json(costs_body(answer, &params, &url)?))
}

/// A costs answer in `/v2/costs`'s shape: its page of rows (paged as `url` asks), the total and, when usage
/// is aggregated, the usage per unit.
pub(super) fn costs_body(
    answer: crate::service::costs::CostsAnswer,
    params: &crate::model::cost_query::Params,
    url: &ListUrl,
) -> Result<CostsBody> {
    let currency = answer.single_currency()?;
    let result = answer.result;
    let amount = result.totals.first().map_or(crate::model::amount::Amount::ZERO, |(_, total)| *total);
    let (rows, links) = url.slice(params.page, result.rows.iter().collect());
    let costs = rows
        .into_iter()
        .cloned()
        .map(|r| {
            let mut m = Map::new();
            m.insert("accrued_at".into(), Value::String(r.accrued_at.to_string()));
            m.insert("amount".into(), Value::String(r.amount.to_string()));
            m.insert("currency".into(), Value::String(r.currency));
            if let Some((amount, unit)) = r.usage {
                m.insert("usage".into(), serde_json::json!({"amount": amount.to_string(), "unit": unit}));
            }
            for (name, value) in r.dimensions {
                if let Some(v) = value {
                    m.insert(name, Value::String(v));
                }
            }
            m
        })
        .collect();
    let total_usage = (params.query.aggregate == Aggregate::Usage).then(|| {
        result
            .usage_totals
            .iter()
            .map(|(unit, total)| Usage { amount: round_total(*total), unit: unit.clone() })
            .collect()
    });
    Ok(CostsBody { total_cost: TotalCost { amount: round_total(amount), currency }, total_usage, costs, links })
}

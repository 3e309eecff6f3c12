//! `GET /v2/unit_costs`: a cost report's cost per unit of each business metric attached to it
//! (docs/unit-costs.md), by date bin, in Vantage's shape; `POST /v2/unit_costs/data_exports`: the same as a
//! CSV file, through the data exports (`service::exports`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::pagination::{Links, Paging};
use super::{ApiError, AppState, Result};
use crate::model::cost_query::DateBin;
use crate::model::decimal::to_wire;
use crate::service::unit_costs::{unit_costs, UnitCost, UnitCostQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(create_export))
}

#[derive(Serialize, utoipa::ToSchema)]
struct UnitCostBody {
    business_metric_token: String,
    business_metric_title: String,
    calculation_type: &'static str,
    /// Exact decimal text, rounded once to 18 places (a percentage for `gross_margin`).
    unit_cost_amount: String,
    business_metric_amount: String,
    /// The attachment's unit scale as a number (1, 100, 1000, 1000000, 1000000000).
    scale: u64,
    /// The first day of the date bin.
    date: String,
    /// costd's addition: the currency of the cost divided (the report's).
    currency: String,
}

impl From<UnitCost> for UnitCostBody {
    fn from(u: UnitCost) -> Self {
        UnitCostBody {
            business_metric_token: u.metric.token.as_str().to_string(),
            business_metric_title: u.metric.title,
            calculation_type: u.attachment.calculation_type.as_str(),
            unit_cost_amount: u.unit_cost.to_string(),
            business_metric_amount: to_wire(u.metric_amount),
            scale: u.attachment.unit_scale.factor(),
            date: u.date.format("%Y-%m-%d").to_string(),
            currency: u.currency,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct UnitCostsBody {
    links: Links,
    unit_costs: Vec<UnitCostBody>,
}

/// `cost_report_token` (required), `start_date`, `end_date`, `date_bin`, `order`.
fn query(text: &str) -> Result<UnitCostQuery> {
    let mut report = None;
    let mut q =
        UnitCostQuery { cost_report_token: String::new(), start: None, end: None, date_bin: None, descending: true };
    let mut errors = Vec::new();
    let day = |field: &str, v: &str, errors: &mut Vec<String>| {
        NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d")
            .map_err(|_| errors.push(format!("{field} must be a date like 2024-03-01, got {v:?}")))
            .ok()
    };
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        match k.as_ref() {
            "cost_report_token" => report = Some(v.trim().to_string()),
            "start_date" => q.start = day("start_date", &v, &mut errors),
            "end_date" => q.end = day("end_date", &v, &mut errors),
            "date_bin" if v == "hour" => errors.push("date_bin hour is not available: costd's costs are daily".into()),
            "date_bin" => match v.parse::<DateBin>() {
                Ok(b) => q.date_bin = Some(b),
                Err(e) => errors.push(e),
            },
            "order" => match v.as_ref() {
                "asc" => q.descending = false,
                "desc" => q.descending = true,
                other => errors.push(format!("order must be asc or desc, got {other:?}")),
            },
            _ => {}
        }
    }
    match report.filter(|r| !r.is_empty()) {
        Some(r) => q.cost_report_token = r,
        None => errors.push("cost_report_token is required".into()),
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

#[utoipa::path(get, path = "/unit_costs", tag = "unit_costs", operation_id = "unit_costs_list", params(("cost_report_token" = String, Query), ("start_date" = Option<String>, Query), ("end_date" = Option<String>, Query), ("date_bin" = Option<String>, Query, description = "day, week, month or quarter"), ("order" = Option<String>, Query, description = "asc or desc (the default)")), responses((status = 200, description = "OK", body = UnitCostsBody), super::openapi::ApiErrors))]
async fn list(State(state): State<AppState>, caller: Caller, paging: Paging) -> Result<axum::Json<UnitCostsBody>> {
    let query = query(paging.url.query())?;
    let all = unit_costs(&state.costs_context(), &caller.account_token, &query, (state.today)()).await?;
    let (page, links) = paging.slice(all);
    Ok(axum::Json(UnitCostsBody { links, unit_costs: page.into_iter().map(Into::into).collect() }))
}

/// `createUnitCostsExport`: the report and what overrides its window and date bin.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct UnitCostsExportFields {
    cost_report_token: Option<String>,
    /// Accepted for Vantage's clients; a report's unit costs are in the report's workspace.
    #[allow(dead_code)]
    workspace_token: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    date_bin: Option<String>,
}

#[utoipa::path(post, path = "/unit_costs/data_exports", tag = "unit_costs", operation_id = "unit_costs_export", request_body = UnitCostsExportFields, responses((status = 202, description = "Queued: the export's Location and its pending state"), super::openapi::ApiErrors))]
async fn create_export(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    super::extract::Json(fields): super::extract::Json<UnitCostsExportFields>,
) -> Result<Response> {
    // The body as the query string `GET /v2/unit_costs` takes (one checker for both), oldest first: a file
    // is read top to bottom. (The serializer is not `Send`: it must be gone before the first await.)
    let text = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("cost_report_token", &fields.cost_report_token),
            ("start_date", &fields.start_date),
            ("end_date", &fields.end_date),
            ("date_bin", &fields.date_bin),
        ] {
            if let Some(v) = value {
                q.append_pair(key, v);
            }
        }
        q.append_pair("order", "asc");
        q.finish()
    };
    let query = query(&text)?;
    let today = (state.today)();
    // What the export would only find out in the background (no such report, a window backwards), the
    // caller hears now.
    let defaults = crate::service::reports::report_defaults(
        state.store.as_ref(),
        &caller.account_token,
        &query.cost_report_token,
        today,
    )
    .await?;
    let (start, end) = (query.start.unwrap_or(defaults.start), query.end.unwrap_or(defaults.end));
    if start > end {
        return Err(ApiError::BadRequest(vec![format!("start_date {start} is after end_date {end}")]));
    }
    let attributes = serde_json::json!({
        "report_token": query.cost_report_token,
        "start_date": start.to_string(),
        "end_date": end.to_string(),
        "date_bin": format!("{:?}", query.date_bin.unwrap_or(defaults.date_bin)).to_lowercase(),
    });
    let job = crate::service::exports::ExportJob::UnitCosts { query, today };
    let created = crate::service::exports::start(
        state.costs_context(),
        state.exports.clone(),
        caller.account_token.clone(),
        job,
        attributes,
    )
    .await?;
    Ok(super::data_exports::pending(&state, &headers, &created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_required_and_every_bad_parameter_is_named() {
        let ApiError::BadRequest(e) = query("date_bin=hour&order=up&start_date=x").unwrap_err() else { panic!() };
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|m| m == "cost_report_token is required"), "{e:?}");
        let q = query("cost_report_token=rprt_1&date_bin=month&order=asc&start_date=2024-01-01T00:00:00Z").unwrap();
        assert_eq!(
            (q.date_bin, q.descending, q.start.unwrap().to_string()),
            (Some(DateBin::Month), false, "2024-01-01".into())
        );
    }
}

//! `/v2/cost_reports`: saved costs queries (filter, saved filters, groupings, settings, dates, chart), listed
//! by workspace, folder or title. `GET /v2/costs?cost_report_token=` runs one (see [`super::costs`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, ListParams, ListUrl, Paging};
use super::{timestamp, ApiError, AppState, Result};
use crate::model::business_metric::Attachment;
use crate::model::cost_query::CostSettings;
use crate::model::report::{ChartSettings, CostReportFields, ViewKind};
use crate::service::forecast::forecast;
use crate::service::reports;
use crate::store::{ReportObject, ReportObjectFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(forecasted_costs))
}

#[derive(Debug, Default, serde::Deserialize)]
struct ForecastParams {
    start_date: Option<String>,
    end_date: Option<String>,
    provider: Option<String>,
    service: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ForecastedCost {
    date: String,
    amount: String,
    provider: String,
    service: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ForecastedCostsBody {
    forecasted_costs: Vec<ForecastedCost>,
    currency: String,
    links: Links,
}

#[utoipa::path(get, path = "/cost_reports/{cost_report_token}/forecasted_costs", tag = "cost_reports", operation_id = "cost_reports_forecasted_costs", params(("cost_report_token" = String, Path)), responses((status = 200, description = "OK", body = ForecastedCostsBody), super::openapi::ApiErrors))]
async fn forecasted_costs(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Query(params): Query<ForecastParams>,
    paging: std::result::Result<Paging, ApiError>,
    url: ListUrl,
) -> Result<axum::Json<ForecastedCostsBody>> {
    let mut errors = Vec::new();
    let mut date = |name: &str, v: &Option<String>| {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty()).and_then(|v| {
            chrono::NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d")
                .map_err(|_| errors.push(format!("{name} must be a date like 2024-05-01, got {v:?}")))
                .ok()
        })
    };
    let (from, to) = (date("start_date", &params.start_date), date("end_date", &params.end_date));
    // Problems with the page are listed with the dates'.
    if let Err(ApiError::BadRequest(e)) = &paging {
        errors.extend(e.iter().cloned());
    }
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let page = paging?.page;
    let forecast = forecast(
        &state.costs_context(),
        &caller.account_token,
        &token,
        (state.today)(),
        from,
        to,
        params.provider.as_deref().filter(|p| !p.is_empty()),
        params.service.as_deref().filter(|s| !s.is_empty()),
    )
    .await?;
    let total = i64::try_from(forecast.len()).unwrap_or(i64::MAX);
    let links = url.links(page, total);
    let forecasted_costs = forecast
        .page(usize::try_from(page.offset()).unwrap_or(usize::MAX), page.limit as usize)
        .into_iter()
        .map(|d| ForecastedCost {
            date: d.date.to_string(),
            amount: d.amount.to_string(),
            provider: d.provider,
            service: d.service,
        })
        .collect();
    Ok(axum::Json(ForecastedCostsBody { forecasted_costs, currency: forecast.currency, links }))
}

/// A page of the caller's objects of `kind`, narrowed by the list's `workspace_token`, `folder_token` and
/// `q` (an unknown workspace or folder lists nothing, as it holds nothing of the caller's), with its links.
pub(super) async fn list_objects(
    state: &AppState,
    caller: &Caller,
    kind: ViewKind,
    params: &ListParams,
    paging: &Paging,
) -> Result<(Vec<ReportObject>, Links)> {
    let page = paging.page;
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let filter = ReportObjectFilter {
        workspace_token: text(&params.workspace_token),
        folder_token: if kind == ViewKind::CostReport { text(&params.folder_token) } else { None },
        title_like: text(&params.q),
    };
    let found = reports::list(state.store.as_ref(), &caller.account_token, kind, &filter, page).await?;
    Ok((found.items, paging.links(found.total)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct DefaultForecast {
    kind: &'static str,
    report_forecast_token: Option<String>,
}

/// A cost report as Vantage shows it. Dates are ISO dates; an interval report shows no fixed dates, and
/// its previous period as of today.
#[derive(Serialize, utoipa::ToSchema)]
struct CostReportBody {
    token: String,
    title: String,
    folder_token: Option<String>,
    saved_filter_tokens: Vec<String>,
    business_metric_tokens_with_metadata: Vec<serde_json::Value>,
    default_forecast: DefaultForecast,
    filter: Option<String>,
    groupings: Option<String>,
    #[schema(value_type = Object)]
    settings: CostSettings,
    created_at: String,
    workspace_token: String,
    previous_period_start_date: Option<String>,
    previous_period_end_date: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    date_interval: String,
    chart_type: String,
    date_bin: String,
    #[schema(value_type = Object)]
    chart_settings: ChartSettings,
}

/// The business metrics attached to the account's reports, by report.
type Attached = std::collections::HashMap<String, Vec<(crate::model::token::BusinessMetricToken, Attachment)>>;

fn body(state: &AppState, r: ReportObject, attached: &Attached) -> Result<CostReportBody> {
    let d = reports::report_definition(&r)?;
    let metrics = attached
        .get(&r.token)
        .map(|list| {
            list.iter()
                .map(|(token, a)| {
                    let mut item = serde_json::json!({"business_metric_token": token, "unit_scale": a.unit_scale.as_str(),
                        "calculation_type": a.calculation_type.as_str()});
                    if let Some(label) = &a.label {
                        item["label"] = serde_json::json!(label);
                    }
                    if let Some(filter) = &a.label_filter {
                        item["label_filter"] = serde_json::json!(filter);
                    }
                    item
                })
                .collect()
        })
        .unwrap_or_default();
    let previous = d.settings.show_previous_period.then(|| d.previous_dates((state.today)()));
    Ok(CostReportBody {
        token: r.token,
        title: r.title,
        folder_token: r.folder_token,
        saved_filter_tokens: r.saved_filter_tokens,
        business_metric_tokens_with_metadata: metrics,
        default_forecast: DefaultForecast { kind: "baseline", report_forecast_token: None },
        filter: d.filter,
        groupings: d.groupings,
        settings: d.settings,
        created_at: timestamp(r.created_at),
        workspace_token: r.workspace_token,
        previous_period_start_date: previous.map(|(s, _)| s.to_string()),
        previous_period_end_date: previous.map(|(_, e)| e.to_string()),
        start_date: d.start_date.map(|s| s.to_string()),
        end_date: d.end_date.map(|e| e.to_string()),
        date_interval: d.date_interval,
        chart_type: d.chart_type,
        date_bin: d.date_bin,
        chart_settings: d.chart_settings,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostReportsBody {
    cost_reports: Vec<CostReportBody>,
    links: Links,
}

#[utoipa::path(get, path = "/cost_reports", tag = "cost_reports", operation_id = "cost_reports_list", responses((status = 200, description = "OK", body = CostReportsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<CostReportsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::CostReport, &params, &paging).await?;
    let attached = reports::metrics_of(state.store.as_ref(), &caller.account_token).await?;
    let cost_reports = items.into_iter().map(|r| body(&state, r, &attached)).collect::<Result<_>>()?;
    Ok(axum::Json(CostReportsBody { cost_reports, links }))
}

#[utoipa::path(post, path = "/cost_reports", tag = "cost_reports", operation_id = "cost_reports_create", request_body = CostReportFields, responses((status = 201, description = "Created", body = CostReportBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<CostReportFields>,
) -> Result<(StatusCode, axum::Json<CostReportBody>)> {
    let created = reports::create_report(state.store.as_ref(), &caller.account_token, fields).await?;
    let attached = reports::metrics_of(state.store.as_ref(), &caller.account_token).await?;
    Ok((StatusCode::CREATED, axum::Json(body(&state, created, &attached)?)))
}

#[utoipa::path(get, path = "/cost_reports/{cost_report_token}", tag = "cost_reports", operation_id = "cost_reports_show", params(("cost_report_token" = String, Path)), responses((status = 200, description = "OK", body = CostReportBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<CostReportBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::CostReport, &token).await?;
    let attached = reports::metrics_of(state.store.as_ref(), &caller.account_token).await?;
    Ok(axum::Json(body(&state, found, &attached)?))
}

#[utoipa::path(put, path = "/cost_reports/{cost_report_token}", tag = "cost_reports", operation_id = "cost_reports_update", request_body = CostReportFields, params(("cost_report_token" = String, Path)), responses((status = 200, description = "OK", body = CostReportBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<CostReportFields>,
) -> Result<axum::Json<CostReportBody>> {
    let updated = reports::update_report(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    let attached = reports::metrics_of(state.store.as_ref(), &caller.account_token).await?;
    Ok(axum::Json(body(&state, updated, &attached)?))
}

#[utoipa::path(delete, path = "/cost_reports/{cost_report_token}", tag = "cost_reports", operation_id = "cost_reports_remove", params(("cost_report_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::CostReport, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

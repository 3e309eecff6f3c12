//! `/v2/business_metrics`: business metrics (docs/unit-costs.md), the cost reports they are attached to and
//! their values (from `PUT …/values.csv` or the `values` fields), in Vantage's shapes.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Json;
use super::pagination::{Links, Paging};
use super::{path_token, ApiError, AppState, Result};
use crate::model::business_metric::{Attachment, BusinessMetric, MetricFields, MetricValue, ValueKind};
use crate::model::decimal::to_wire;
use crate::model::token::BusinessMetricToken;
use crate::service::business_metrics::{self, ValueBin, ValuesQuery};
use crate::store::ValueRange;

/// Largest values file read (100,000 rows of about 40 bytes fit).
const MAX_CSV_BYTES: usize = 8 << 20;
/// Largest create or update body: 100,000 values in JSON fit.
const MAX_BODY: usize = 16 << 20;
/// Vantage's largest page of metrics, values and labels.
const MAX_PAGE: u32 = 5000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(list, create))
                .routes(routes!(show, update, remove))
                .layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .routes(routes!(labels))
        .routes(routes!(values, delete_values))
        .routes(routes!(forecasted_values))
        .merge(OpenApiRouter::new().routes(routes!(upload_csv)).layer(DefaultBodyLimit::max(MAX_CSV_BYTES * 3)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AttachmentBody {
    cost_report_token: String,
    unit_scale: &'static str,
    calculation_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_filter: Option<Vec<String>>,
}

impl From<Attachment> for AttachmentBody {
    fn from(a: Attachment) -> Self {
        AttachmentBody {
            cost_report_token: a.cost_report_token,
            unit_scale: a.unit_scale.as_str(),
            calculation_type: a.calculation_type.as_str(),
            label: a.label,
            label_filter: a.label_filter,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BusinessMetricBody {
    #[schema(value_type = String)]
    token: BusinessMetricToken,
    title: String,
    created_by_token: Option<String>,
    cost_report_tokens_with_metadata: Vec<AttachmentBody>,
    /// Always `csv`: costd imports values from CSV and the API.
    import_type: &'static str,
    /// Always empty: no integration pulls the values.
    integration_token: &'static str,
}

impl From<BusinessMetric> for BusinessMetricBody {
    fn from(m: BusinessMetric) -> Self {
        BusinessMetricBody {
            token: m.token,
            title: m.title,
            created_by_token: m.created_by_token,
            cost_report_tokens_with_metadata: m.attachments.into_iter().map(Into::into).collect(),
            import_type: "csv",
            integration_token: "",
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BusinessMetricsBody {
    business_metrics: Vec<BusinessMetricBody>,
    links: Links,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MetricValueBody {
    /// Midnight UTC of the value's day (or month, with `date_bin=month`).
    date: String,
    /// Exact decimal text.
    amount: String,
    label: Option<String>,
}

impl From<MetricValue> for MetricValueBody {
    fn from(v: MetricValue) -> Self {
        MetricValueBody {
            date: format!("{}T00:00:00Z", v.date.format("%Y-%m-%d")),
            amount: to_wire(v.amount),
            label: v.label,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct ValuesBody {
    values: Vec<MetricValueBody>,
    links: Links,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LabelBody {
    value: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LabelsBody {
    labels: Vec<LabelBody>,
    links: Links,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeletedBody {
    deleted_count: u64,
}

fn not_found() -> ApiError {
    ApiError::NotFound("business metric not found".into())
}

fn token(text: &str) -> Result<BusinessMetricToken> {
    path_token(text, BusinessMetricToken::parse, not_found)
}

/// The query string's pairs (`label_values[]` and repeated keys kept).
fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A day from a query parameter: `2024-03-01`, or a timestamp whose day it takes.
fn query_day(field: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("{field} must be a date like 2024-03-01, got {text:?}")))
}

fn flag(field: &str, text: &str) -> Result<bool> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::bad_request(format!("{field} must be true or false, got {other:?}"))),
    }
}

#[utoipa::path(get, path = "/business_metrics", tag = "business_metrics", operation_id = "business_metrics_list", params(("q" = Option<String>, Query, description = "Titles containing this text (any case).")), responses((status = 200, description = "OK", body = BusinessMetricsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging<MAX_PAGE>,
) -> Result<axum::Json<BusinessMetricsBody>> {
    let q = pairs(paging.url.query()).into_iter().find(|(k, _)| k == "q").map(|(_, v)| v);
    let found = business_metrics::list(state.store.as_ref(), &caller.account_token, q.as_deref(), paging.page).await?;
    Ok(axum::Json(BusinessMetricsBody {
        business_metrics: found.items.into_iter().map(Into::into).collect(),
        links: paging.links(found.total),
    }))
}

#[utoipa::path(post, path = "/business_metrics", tag = "business_metrics", operation_id = "business_metrics_create", request_body = MetricFields, responses((status = 201, description = "Created", body = BusinessMetricBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<MetricFields>,
) -> Result<(StatusCode, axum::Json<BusinessMetricBody>)> {
    let created =
        business_metrics::create(state.store.as_ref(), &caller.account_token, &caller.user_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/business_metrics/{business_metric_token}", tag = "business_metrics", operation_id = "business_metrics_show", params(("business_metric_token" = String, Path)), responses((status = 200, description = "OK", body = BusinessMetricBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<BusinessMetricBody>> {
    Ok(axum::Json(business_metrics::get(state.store.as_ref(), &caller.account_token, &token(&text)?).await?.into()))
}

#[utoipa::path(put, path = "/business_metrics/{business_metric_token}", tag = "business_metrics", operation_id = "business_metrics_update", request_body = MetricFields, params(("business_metric_token" = String, Path)), responses((status = 200, description = "OK", body = BusinessMetricBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<MetricFields>,
) -> Result<axum::Json<BusinessMetricBody>> {
    let token = token(&text)?;
    Ok(axum::Json(business_metrics::update(state.store.as_ref(), &caller.account_token, &token, fields).await?.into()))
}

#[utoipa::path(delete, path = "/business_metrics/{business_metric_token}", tag = "business_metrics", operation_id = "business_metrics_remove", params(("business_metric_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    business_metrics::delete(state.store.as_ref(), &caller.account_token, &token(&text)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/business_metrics/{business_metric_token}/labels", tag = "business_metrics", operation_id = "business_metrics_labels", params(("business_metric_token" = String, Path)), responses((status = 200, description = "OK", body = LabelsBody), super::openapi::ApiErrors))]
async fn labels(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    paging: Paging<MAX_PAGE>,
) -> Result<axum::Json<LabelsBody>> {
    let found =
        business_metrics::labels(state.store.as_ref(), &caller.account_token, &token(&text)?, paging.page).await?;
    Ok(axum::Json(LabelsBody {
        labels: found.items.into_iter().map(|value| LabelBody { value }).collect(),
        links: paging.links(found.total),
    }))
}

/// `start_date`, `label_values` and `date_bin` (day or month).
fn values_query(query: &str) -> Result<ValuesQuery> {
    let mut out = ValuesQuery::default();
    for (k, v) in pairs(query) {
        match k.as_str() {
            "start_date" => out.start = Some(query_day("start_date", &v)?),
            // Repeated (`label_values[]=a&label_values[]=b`) or, as the TypeScript client joins an array,
            // comma-separated.
            "label_values[]" => out.labels.push(v),
            "label_values" => out.labels.extend(v.split(',').map(str::to_string)),
            "date_bin" => {
                out.bin = Some(match v.as_str() {
                    "day" => ValueBin::Day,
                    "month" => ValueBin::Month,
                    other => {
                        return Err(ApiError::bad_request(format!("date_bin must be day or month, got {other:?}")))
                    }
                })
            }
            _ => {}
        }
    }
    Ok(out)
}

async fn list_values(
    state: &AppState,
    caller: &Caller,
    text: &str,
    kind: ValueKind,
    paging: &Paging<MAX_PAGE>,
) -> Result<ValuesBody> {
    let query = values_query(paging.url.query())?;
    let found =
        business_metrics::values(state.store.as_ref(), &caller.account_token, &token(text)?, kind, &query, paging.page)
            .await?;
    Ok(ValuesBody { values: found.items.into_iter().map(Into::into).collect(), links: paging.links(found.total) })
}

#[utoipa::path(get, path = "/business_metrics/{business_metric_token}/values", tag = "business_metrics", operation_id = "business_metrics_values", params(("business_metric_token" = String, Path), ("start_date" = Option<String>, Query), ("label_values" = Option<Vec<String>>, Query), ("date_bin" = Option<String>, Query, description = "day or month")), responses((status = 200, description = "OK", body = ValuesBody), super::openapi::ApiErrors))]
async fn values(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    paging: Paging<MAX_PAGE>,
) -> Result<axum::Json<ValuesBody>> {
    Ok(axum::Json(list_values(&state, &caller, &text, ValueKind::Actual, &paging).await?))
}

#[utoipa::path(get, path = "/business_metrics/{business_metric_token}/forecasted_values", tag = "business_metrics", operation_id = "business_metrics_forecasted_values", params(("business_metric_token" = String, Path), ("start_date" = Option<String>, Query)), responses((status = 200, description = "OK", body = ValuesBody), super::openapi::ApiErrors))]
async fn forecasted_values(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    paging: Paging<MAX_PAGE>,
) -> Result<axum::Json<ValuesBody>> {
    Ok(axum::Json(list_values(&state, &caller, &text, ValueKind::Forecast, &paging).await?))
}

/// Deletes values: `start_date` and `end_date` inclusive, `label` when present (empty: the unlabelled
/// values), `forecasted=true` the forecast instead of the history. Read from the query string, or from a JSON
/// body (the TypeScript client sends a DELETE's parameters as one).
#[utoipa::path(delete, path = "/business_metrics/{business_metric_token}/values", tag = "business_metrics", operation_id = "business_metrics_delete_values", params(("business_metric_token" = String, Path), ("start_date" = Option<String>, Query), ("end_date" = Option<String>, Query), ("label" = Option<String>, Query), ("forecasted" = Option<bool>, Query)), responses((status = 200, description = "OK", body = DeletedBody), super::openapi::ApiErrors))]
async fn delete_values(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> Result<axum::Json<DeletedBody>> {
    let token = token(&text)?;
    let mut params = pairs(query.as_deref().unwrap_or_default());
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let sent: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body must be a JSON object of parameters: {e}")))?;
        for (k, v) in sent {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => params.push((k, s)),
                other => params.push((k, other.to_string())),
            }
        }
    }
    let (mut range, mut kind) = (ValueRange::default(), ValueKind::Actual);
    for (k, v) in params {
        match k.as_str() {
            "start_date" => range.start = Some(query_day("start_date", &v)?),
            "end_date" => range.end = Some(query_day("end_date", &v)?),
            "label" => range.label = Some(v.trim().to_string()),
            "forecasted" if flag("forecasted", &v)? => kind = ValueKind::Forecast,
            _ => {}
        }
    }
    let deleted =
        business_metrics::delete_values(state.store.as_ref(), &caller.account_token, &token, kind, &range).await?;
    Ok(axum::Json(DeletedBody { deleted_count: deleted }))
}

/// The values file, in the field `csv`, and whether it holds forecasts.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ValuesForm {
    /// Rows of `date,amount,label` (the label and a header row optional).
    #[schema(value_type = String, format = Binary)]
    csv: Vec<u8>,
    forecasted: Option<bool>,
}

#[utoipa::path(put, path = "/business_metrics/{business_metric_token}/values.csv", tag = "business_metrics", operation_id = "business_metrics_upload_values_csv", params(("business_metric_token" = String, Path)), request_body(content((inline(ValuesForm) = "multipart/form-data"), (inline(ValuesForm) = "application/x-www-form-urlencoded"))), responses((status = 200, description = "OK", body = BusinessMetricBody), super::openapi::ApiErrors))]
async fn upload_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    request: Request,
) -> Result<axum::Json<BusinessMetricBody>> {
    let token = token(&text)?;
    let form = super::uploads::small_form(&state, request, MAX_CSV_BYTES).await?;
    let forecasted = form.field("forecasted").map(|v| flag("forecasted", v)).transpose()?.unwrap_or(false);
    let metric =
        business_metrics::upload_csv(state.store.as_ref(), &caller.account_token, &token, &form.csv, forecasted)
            .await?;
    Ok(axum::Json(metric.into()))
}

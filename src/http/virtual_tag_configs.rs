//! `/v2/virtual_tag_configs`: virtual tags (docs/allocation.md) and their values, in Vantage's shapes.
//! costd computes a virtual tag when a query runs, so a saved change is in the next query: the status is
//! never "processing", and an update answers 200 with the tag rather than 202 with a request to poll.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::ListUrl;
use super::{path_token, ApiError, AppState, Result};
use crate::model::token::{VirtualTagToken, VirtualTagValueToken};
use crate::model::virtual_tag::{Assign, Basis, TagFields, TagValue, ValueFields, VirtualTag};
use crate::service::virtual_tags;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(preview))
        .routes(routes!(show, update, remove))
        .routes(routes!(status))
        .routes(routes!(update_async))
        .routes(routes!(async_status))
        .routes(routes!(create_value))
        .routes(routes!(show_value, update_value, remove_value))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CollapsedKeyBody {
    key: String,
    providers: Vec<String>,
    filter: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PercentageBody {
    value: String,
    /// The percentage as an exact JSON number (`33.333333`).
    #[schema(value_type = f64)]
    pct: serde_json::Number,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DateRangeBody {
    start_date: Option<String>,
    end_date: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ValueBody {
    #[schema(value_type = String)]
    token: VirtualTagValueToken,
    filter: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
    business_metric_token: Option<String>,
    label_key: Option<String>,
    label_values: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    cost_metric: Option<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    label_transforms: Vec<serde_json::Value>,
    percentages: Vec<PercentageBody>,
    date_ranges: Vec<DateRangeBody>,
}

impl From<TagValue> for ValueBody {
    fn from(v: TagValue) -> Self {
        let (mut business_metric_token, mut label_key, mut label_values, mut cost_metric) = (None, None, None, None);
        let mut label_transforms = Vec::new();
        let (name, display_name, percentages) = match v.assign {
            Assign::Name(n) => (Some(n), None, Vec::new()),
            Assign::Proportional { display_name, basis } => {
                match basis {
                    Basis::Costs { filter, tag } => {
                        let filter = filter.map(|f| f.text().to_string()).unwrap_or_default();
                        cost_metric = Some(serde_json::json!({"filter": filter, "aggregation": {"tag": tag}}));
                    }
                    Basis::Metric { token, label_key: key, labels, transforms } => {
                        business_metric_token = Some(token);
                        label_key = key;
                        label_values = Some(labels);
                        label_transforms = transforms.iter().map(|t| t.to_json()).collect();
                    }
                }
                (None, display_name, Vec::new())
            }
            Assign::Percentages { display_name, shares } => (
                None,
                display_name,
                shares
                    .into_iter()
                    .map(|s| PercentageBody {
                        value: s.value,
                        // A decimal prints plain digits (never an exponent): always a JSON number, kept
                        // digit for digit by `arbitrary_precision`.
                        pct: serde_json::from_str(&s.pct.normalize().to_string())
                            .expect("a decimal's text is a JSON number"),
                    })
                    .collect(),
            ),
        };
        let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        ValueBody {
            token: v.token,
            filter: v.filter.map(|f| f.text().to_string()),
            name,
            display_name,
            business_metric_token,
            label_key,
            label_values,
            cost_metric,
            label_transforms,
            percentages,
            date_ranges: v
                .date_ranges
                .into_iter()
                .map(|r| DateRangeBody { start_date: day(r.start), end_date: day(r.end) })
                .collect(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct VirtualTagConfigBody {
    #[schema(value_type = String)]
    token: VirtualTagToken,
    created_by_token: Option<String>,
    key: String,
    hidden: bool,
    preferred: bool,
    overridable: bool,
    backfill_until: String,
    collapsed_tag_keys: Vec<CollapsedKeyBody>,
    values: Vec<ValueBody>,
}

impl From<VirtualTag> for VirtualTagConfigBody {
    fn from(t: VirtualTag) -> Self {
        let d = t.definition;
        VirtualTagConfigBody {
            token: t.token,
            created_by_token: t.created_by_token,
            key: d.key,
            hidden: d.hidden,
            preferred: d.preferred,
            overridable: d.overridable,
            // Vantage's clients require a date here. costd computes a virtual tag on every day a query
            // reads, so a tag saved without one is backfilled to the beginning: the earliest date shown.
            backfill_until: d.backfill_until.unwrap_or(EARLIEST).format("%Y-%m-%d").to_string(),
            collapsed_tag_keys: d
                .collapsed_tag_keys
                .into_iter()
                .map(|c| CollapsedKeyBody {
                    key: c.key,
                    providers: c.providers,
                    filter: c.filter.map(|f| f.text().to_string()),
                })
                .collect(),
            values: d.values.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct VirtualTagConfigsBody {
    virtual_tag_configs: Vec<VirtualTagConfigBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ProviderStatusBody {
    provider: String,
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct StatusBody {
    #[schema(value_type = String)]
    token: VirtualTagToken,
    processing: bool,
    providers: Vec<ProviderStatusBody>,
}

#[derive(Deserialize, utoipa::IntoParams)]
struct ListParams {
    /// Keys containing this text (any case).
    q: Option<String>,
}

/// What `backfill_until` shows for a tag saved without one.
const EARLIEST: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

fn not_found() -> ApiError {
    ApiError::NotFound("virtual tag config not found".into())
}

fn value_not_found() -> ApiError {
    ApiError::NotFound("virtual tag config value not found".into())
}

#[utoipa::path(get, path = "/virtual_tag_configs", tag = "virtual_tags", operation_id = "virtual_tag_configs_list", params(ListParams), responses((status = 200, description = "OK", body = VirtualTagConfigsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<VirtualTagConfigsBody>> {
    let tags = virtual_tags::list(state.store.as_ref(), &caller.account_token, params.q.as_deref()).await?;
    Ok(axum::Json(VirtualTagConfigsBody { virtual_tag_configs: tags.into_iter().map(Into::into).collect() }))
}

#[utoipa::path(post, path = "/virtual_tag_configs", tag = "virtual_tags", operation_id = "virtual_tag_configs_create", request_body = TagFields, responses((status = 201, description = "Created", body = VirtualTagConfigBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<TagFields>,
) -> Result<(StatusCode, axum::Json<VirtualTagConfigBody>)> {
    let created = virtual_tags::create(state.store.as_ref(), &caller.account_token, &caller.user_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// costd's extension (docs/allocation.md): the costs a tag would give if saved, in `/v2/costs`'s shape
/// grouped by the tag's key, for the query string's window and settings (`start_date`, `end_date`,
/// `date_bin`, `filter`, `workspace_token`, …). The body is a create's; it takes the place of the saved tag
/// of its key, so an edit is previewed by sending the edited tag. Nothing is written; a read token may ask.
#[utoipa::path(post, path = "/virtual_tag_configs/preview", tag = "virtual_tags", operation_id = "virtual_tag_configs_preview", request_body = TagFields, responses((status = 200, description = "OK", body = super::costs::CostsBody), super::openapi::ApiErrors))]
async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    url: ListUrl,
    Json(fields): Json<TagFields>,
) -> Result<axum::Json<super::costs::CostsBody>> {
    let params = super::costs::costs_params(&state, &caller, url.query()).await?;
    let workspace = params.workspace_token.as_deref();
    let (_, answer) =
        virtual_tags::preview(&state.costs_context(), &caller.account_token, workspace, fields, params.query.clone())
            .await?;
    Ok(axum::Json(super::costs::costs_body(answer, &params, &url)?))
}

#[utoipa::path(get, path = "/virtual_tag_configs/{token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_show", params(("token" = String, Path)), responses((status = 200, description = "OK", body = VirtualTagConfigBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<VirtualTagConfigBody>> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    Ok(axum::Json(virtual_tags::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/virtual_tag_configs/{token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_update", request_body = TagFields, params(("token" = String, Path)), responses((status = 200, description = "OK", body = VirtualTagConfigBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<TagFields>,
) -> Result<axum::Json<VirtualTagConfigBody>> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    let updated = virtual_tags::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/virtual_tag_configs/{token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_remove", params(("token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    virtual_tags::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct AsyncUpdateBody {
    request_id: String,
    status_url: String,
}

/// Vantage's asynchronous update: applied before it answers 202 (see `virtual_tags::update_async`).
#[utoipa::path(put, path = "/virtual_tag_configs/{token}/async", tag = "virtual_tags", operation_id = "virtual_tag_configs_update_async", request_body = TagFields, params(("token" = String, Path)), responses((status = 202, description = "Accepted (already applied)", body = AsyncUpdateBody), super::openapi::ApiErrors))]
async fn update_async(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<TagFields>,
) -> Result<(StatusCode, axum::Json<AsyncUpdateBody>)> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    let request_id = virtual_tags::update_async(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    let status_url = format!("/v2/virtual_tag_configs/async/{request_id}");
    Ok((StatusCode::ACCEPTED, axum::Json(AsyncUpdateBody { request_id, status_url })))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AsyncStatusBody {
    request_id: String,
    status: &'static str,
    virtual_tag_config: VirtualTagConfigBody,
}

/// 200 once the update is applied (Vantage's clients read 200 as done and 404 as not yet); costd applies
/// it before answering its PUT, so an id it gave is done until its tag is deleted.
#[utoipa::path(get, path = "/virtual_tag_configs/async/{request_id}", tag = "virtual_tags", operation_id = "virtual_tag_configs_async_status", params(("request_id" = String, Path)), responses((status = 200, description = "Applied", body = AsyncStatusBody), super::openapi::ApiErrors))]
async fn async_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(request_id): Path<String>,
) -> Result<axum::Json<AsyncStatusBody>> {
    let tag = virtual_tags::async_update(state.store.as_ref(), &caller.account_token, &request_id).await?;
    Ok(axum::Json(AsyncStatusBody { request_id, status: "completed", virtual_tag_config: tag.into() }))
}

/// Always complete: queries compute virtual tags as they run, so there is nothing to process.
#[utoipa::path(get, path = "/virtual_tag_configs/{token}/status", tag = "virtual_tags", operation_id = "virtual_tag_configs_status", params(("token" = String, Path)), responses((status = 200, description = "OK", body = StatusBody), super::openapi::ApiErrors))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<StatusBody>> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    let tag = virtual_tags::get(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(StatusBody {
        token: tag.token,
        processing: false,
        providers: vec![ProviderStatusBody { provider: "custom_provider".into(), status: "complete" }],
    }))
}

#[utoipa::path(post, path = "/virtual_tag_configs/{virtual_tag_config_token}/values", tag = "virtual_tags", operation_id = "virtual_tag_configs_values_create", request_body = ValueFields, params(("virtual_tag_config_token" = String, Path)), responses((status = 201, description = "Created", body = ValueBody), super::openapi::ApiErrors))]
async fn create_value(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<ValueFields>,
) -> Result<(StatusCode, axum::Json<ValueBody>)> {
    let token = path_token(&text, VirtualTagToken::parse, not_found)?;
    let value = virtual_tags::add_value(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(value.into())))
}

fn tokens(tag: &str, value: &str) -> Result<(VirtualTagToken, VirtualTagValueToken)> {
    let tag = path_token(tag, VirtualTagToken::parse, not_found)?;
    let value = path_token(value, VirtualTagValueToken::parse, value_not_found)?;
    Ok((tag, value))
}

#[utoipa::path(get, path = "/virtual_tag_configs/{virtual_tag_config_token}/values/{virtual_tag_config_value_token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_values_show", params(("virtual_tag_config_token" = String, Path), ("virtual_tag_config_value_token" = String, Path)), responses((status = 200, description = "OK", body = ValueBody), super::openapi::ApiErrors))]
async fn show_value(
    State(state): State<AppState>,
    caller: Caller,
    Path((tag, value)): Path<(String, String)>,
) -> Result<axum::Json<ValueBody>> {
    let (tag, value) = tokens(&tag, &value)?;
    Ok(axum::Json(virtual_tags::get_value(state.store.as_ref(), &caller.account_token, &tag, &value).await?.into()))
}

#[utoipa::path(patch, path = "/virtual_tag_configs/{virtual_tag_config_token}/values/{virtual_tag_config_value_token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_values_update", request_body = ValueFields, params(("virtual_tag_config_token" = String, Path), ("virtual_tag_config_value_token" = String, Path)), responses((status = 200, description = "OK", body = ValueBody), super::openapi::ApiErrors))]
async fn update_value(
    State(state): State<AppState>,
    caller: Caller,
    Path((tag, value)): Path<(String, String)>,
    Json(fields): Json<ValueFields>,
) -> Result<axum::Json<ValueBody>> {
    let (tag, value) = tokens(&tag, &value)?;
    let changed = virtual_tags::update_value(state.store.as_ref(), &caller.account_token, &tag, &value, fields).await?;
    Ok(axum::Json(changed.into()))
}

#[utoipa::path(delete, path = "/virtual_tag_configs/{virtual_tag_config_token}/values/{virtual_tag_config_value_token}", tag = "virtual_tags", operation_id = "virtual_tag_configs_values_remove", params(("virtual_tag_config_token" = String, Path), ("virtual_tag_config_value_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove_value(
    State(state): State<AppState>,
    caller: Caller,
    Path((tag, value)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (tag, value) = tokens(&tag, &value)?;
    virtual_tags::delete_value(state.store.as_ref(), &caller.account_token, &tag, &value).await?;
    Ok(StatusCode::NO_CONTENT)
}

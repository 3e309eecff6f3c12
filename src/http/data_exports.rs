//! Cost data exports: `POST /v2/costs/data_exports` (202 with the export's `Location`; unit costs' in
//! `super::unit_costs`),
//! `GET /v2/data_exports/{token}` (202 with `Location` and `Retry-After` while it runs, then 200 with the
//! file links), and `GET /v2/data_exports/{token}/files/costs.csv` (or `unit_costs.csv`), streamed with the caller's token,
//! gzip-compressed when the request accepts it.

use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Json;
use super::pagination::base_url;
use super::{timestamp, ApiError, AppState, Result};
use crate::service::exports;
use crate::store::DataExport;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(show)).merge(
        OpenApiRouter::new()
            .routes(routes!(file))
            .layer(tower_http::compression::CompressionLayer::new().gzip(true).no_br().no_deflate().no_zstd()),
    )
}

/// Groupings as a list (Vantage's spec) or comma-separated text.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Groupings {
    List(Vec<String>),
    Text(String),
}

/// `createCostExport`: the costs query's parameters as a JSON body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ExportFields {
    cost_report_token: Option<String>,
    filter: Option<String>,
    workspace_token: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    groupings: Option<Groupings>,
    date_bin: Option<String>,
    schema: Option<String>,
    #[schema(value_type = Option<Object>)]
    settings: Option<serde_json::Map<String, Value>>,
}

impl ExportFields {
    /// The body as the query string `GET /v2/costs` takes, plus `extra` (Vantage's Python client sends
    /// `groupings` in the query string): one checker for both.
    fn query_string(&self, extra: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("cost_report_token", &self.cost_report_token),
            ("filter", &self.filter),
            ("workspace_token", &self.workspace_token),
            ("start_date", &self.start_date),
            ("end_date", &self.end_date),
            ("date_bin", &self.date_bin),
        ] {
            if let Some(v) = value {
                q.append_pair(key, v);
            }
        }
        match &self.groupings {
            Some(Groupings::List(list)) => {
                q.append_pair("groupings", &list.join(","));
            }
            Some(Groupings::Text(text)) => {
                q.append_pair("groupings", text);
            }
            None => {}
        }
        for (name, value) in self.settings.iter().flatten() {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            q.append_pair(&format!("settings[{name}]"), &text);
        }
        let mut text = q.finish();
        if !extra.is_empty() {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str(extra);
        }
        text
    }
}

fn export_url(state: &AppState, headers: &HeaderMap, token: &str) -> String {
    format!("{}/v2/data_exports/{token}", base_url(state.public_url.as_deref(), headers))
}

/// Vantage's `DataExport`, plus `error` when it failed.
fn body(state: &AppState, headers: &HeaderMap, e: &DataExport) -> Value {
    let export_type = exports::export_type(e);
    let files: Vec<String> = if e.status == "completed" {
        vec![format!("{}/files/{}", export_url(state, headers, &e.token), exports::file_of(&export_type))]
    } else {
        Vec::new()
    };
    json!({
        "token": e.token,
        "status": e.status,
        "created_at": timestamp(e.created_at),
        "export_type": export_type,
        "manifest": {
            "files": files,
            "completed_at": e.completed_at.map(timestamp),
            "valid_until": e.valid_until.map(timestamp),
        },
        "attributes": serde_json::from_str::<Value>(&e.attributes).unwrap_or(Value::Null),
        "row_count": e.rows,
        "error": e.error,
    })
}

/// The answer while an export runs: 202, where to look and when.
pub(super) fn pending(state: &AppState, headers: &HeaderMap, e: &DataExport) -> Response {
    let mut response = (StatusCode::ACCEPTED, axum::Json(body(state, headers, e))).into_response();
    if let Ok(location) = HeaderValue::from_str(&export_url(state, headers, &e.token)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

#[utoipa::path(post, path = "/costs/data_exports", tag = "data_exports", operation_id = "data_exports_create", request_body = ExportFields, responses((status = 202, description = "Queued: the export's Location and its pending state"), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Json(fields): Json<ExportFields>,
) -> Result<Response> {
    if let Some(schema) = fields.schema.as_deref().filter(|s| *s != "vntg") {
        return Err(ApiError::bad_request(format!(
            "schema: costd exports the vntg schema (its costs as GET /v2/costs groups them), not {schema:?}"
        )));
    }
    let raw = fields.query_string(uri.query().unwrap_or_default());
    let params = super::costs::costs_params(&state, &caller, &raw).await?;
    // What the query would only find out in the background, a caller hears now.
    if let Some(ws) = params.workspace_token.as_deref() {
        crate::service::workspaces::get(state.store.as_ref(), &caller.account_token, ws).await?;
    }
    let q = &params.query;
    let attributes = json!({
        "report_token": fields.cost_report_token,
        "start_date": q.start.to_string(),
        "end_date": q.end.to_string(),
        "groupings": q.groupings,
        "vql": q.filter.as_ref().map(|f| f.text().to_string()),
        "settings": fields.settings,
        "date_bin": format!("{:?}", q.date_bin).to_lowercase(),
        "workspace_token": params.workspace_token,
    });
    let job = exports::ExportJob::Costs { workspace: params.workspace_token.clone(), query: params.query };
    let created =
        exports::start(state.costs_context(), state.exports.clone(), caller.account_token.clone(), job, attributes)
            .await?;
    Ok(pending(&state, &headers, &created))
}

async fn find(state: &AppState, caller: &Caller, token: &str) -> Result<DataExport> {
    Ok(exports::get(state.store.as_ref(), &caller.account_token, token).await?)
}

#[utoipa::path(get, path = "/data_exports/{data_export_token}", tag = "data_exports", operation_id = "data_exports_show", params(("data_export_token" = String, Path)), responses((status = 200, description = "The finished export and its files"), (status = 202, description = "Still running: see Location and Retry-After"), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let e = find(&state, &caller, &token).await?;
    if e.status == "pending" {
        return Ok(pending(&state, &headers, &e));
    }
    Ok(axum::Json(body(&state, &headers, &e)).into_response())
}

#[utoipa::path(get, path = "/data_exports/{data_export_token}/files/{file}", tag = "data_exports", operation_id = "data_exports_file", params(("data_export_token" = String, Path), ("file" = String, Path)), responses((status = 200, description = "OK"), super::openapi::ApiErrors))]
async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path((token, name)): Path<(String, String)>,
) -> Result<Response> {
    let e = find(&state, &caller, &token).await?;
    if name != exports::file_of(&exports::export_type(&e)) || e.status != "completed" {
        return Err(ApiError::NotFound("no such file in this data export".into()));
    }
    let Some(stream) = state.exports.open(&token).await? else {
        return Err(ApiError::NotFound("the export's file is gone (past its retention)".into()));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{token}.csv\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

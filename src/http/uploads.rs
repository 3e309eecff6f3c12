//! Cost uploads of a custom-provider integration:
//! `POST /v2/integrations/{t}/costs.csv` (multipart `csv`), `GET /v2/integrations/{t}/costs`,
//! `DELETE /v2/integrations/{t}/costs/{upload}`.
//!
//! The `csv` part is streamed, chunk by chunk, into the ingest running on a blocking thread; memory stays
//! bounded and the size limit (`--max-upload-bytes`) counts the decompressed CSV. Only after the whole part
//! arrived, every row passed and the Parquet file is on disk is the upload recorded, in one store
//! transaction (`service::uploads`).

use crate::service::slots::Busy;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use futures::StreamExt;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Multipart;
use super::form::{sniff_boundary, UrlEncodedCsv};
use super::integrations::not_found as integration_not_found;
use super::pagination::{Links, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::token::{IntegrationToken, UploadToken};
use crate::service::uploads::{self, streamed_csv, upload as service_upload, NewUpload};
use crate::store::Upload;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // No body limit here: an upload is a stream, limited by `--max-upload-bytes` as it is read
        // (Vantage stops at 2 MB; we do not).
        .merge(OpenApiRouter::new().routes(routes!(upload)).layer(DefaultBodyLimit::disable()))
        .routes(routes!(list))
        .routes(routes!(remove))
}

/// A costs upload as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct UploadBody {
    #[schema(value_type = String)]
    token: UploadToken,
    filename: String,
    #[schema(value_type = String)]
    amount: crate::model::amount::Amount,
    start_date: String,
    end_date: String,
    import_status: String,
    created_by_token: String,
    created_at: String,
}

impl From<Upload> for UploadBody {
    fn from(u: Upload) -> Self {
        UploadBody {
            token: u.token,
            filename: u.filename,
            amount: u.amount,
            start_date: u.start_date.to_string(),
            end_date: u.end_date.to_string(),
            import_status: u.import_status,
            created_by_token: u.created_by_token,
            created_at: timestamp(u.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct UploadsBody {
    user_costs_uploads: Vec<UploadBody>,
    links: Links,
}

/// The upload's form as `/v2/openapi.json` describes it (Vantage's `csv` field). The handler streams the body
/// itself, multipart or URL-encoded, so nothing is ever parsed into this.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The cost file: Vantage's custom-provider CSV, or a FOCUS export's CSV.
    #[schema(value_type = String, format = Binary)]
    csv: Vec<u8>,
    /// Accepted and ignored: FOCUS columns are read as they are.
    auto_transform: Option<bool>,
}

/// Chunks buffered between the request body and the ingest thread (each at most a few hundred KiB).
const CHUNKS_IN_FLIGHT: usize = 8;

#[utoipa::path(post, path = "/integrations/{integration_token}/costs.csv", tag = "uploads", operation_id = "uploads_upload", request_body(content((inline(UploadForm) = "multipart/form-data"), (inline(UploadForm) = "application/x-www-form-urlencoded"))), params(("integration_token" = String, Path)), responses((status = 201, description = "Created", body = UploadBody), super::openapi::ApiErrors))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    request: Request,
) -> Result<(StatusCode, axum::Json<UploadBody>)> {
    let integration = path_token(&text, IntegrationToken::parse, integration_not_found)?;
    // Whether it takes files at all (a bucket integration does not) is the upload service's rule.
    // Each upload holds a blocking thread for its ingest: a tenant (or everyone together) gets a bounded
    // number at once, and hears so at once rather than queueing connections.
    let _slots = state.upload_slots.try_acquire(&caller.account_token).map_err(|busy| match busy {
        Busy::Account(n) => ApiError::TooManyRequests(format!(
            "this account already has {n} uploads in progress; wait for one to finish"
        )),
        Busy::Node => ApiError::Unavailable("the server is busy with other uploads; try again shortly".into()),
    })?;
    let content_type =
        request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let new = |filename: Option<String>| NewUpload {
        account: caller.account_token.clone(),
        integration: integration.clone(),
        filename,
        created_by: caller.user_token.clone(),
        source: uploads::UploadSource::File,
    };
    let record = if content_type.starts_with("application/x-www-form-urlencoded") {
        upload_form(&state, new(None), request.into_body()).await?
    } else if content_type.starts_with("multipart/form-data") {
        let request = with_boundary(request).await?;
        let multipart = Multipart::from_request(request, &state).await?.0;
        upload_multipart(&state, new, multipart).await?
    } else {
        return Err(ApiError::bad_request(
            "the body must be multipart/form-data or application/x-www-form-urlencoded with the cost file in the \
             field csv",
        ));
    };
    Ok((StatusCode::CREATED, axum::Json(record.into())))
}

/// A small file's form: the `csv` field whole, and the other short fields sent with it (`forecasted`).
pub(super) struct SmallForm {
    pub csv: Vec<u8>,
    fields: Vec<(String, String)>,
}

impl SmallForm {
    /// The text of field `name`, when sent.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Longest value of a field other than `csv` that is kept (they are flags).
const MAX_FIELD: usize = 1024;

/// The `csv` field of a small file (exchange rates), whole, from either body Vantage's clients send: more
/// than `limit` bytes is a 413.
pub(super) async fn small_csv(state: &AppState, request: Request, limit: usize) -> Result<Vec<u8>> {
    Ok(small_form(state, request, limit).await?.csv)
}

/// [`small_csv`] with the form's other short fields (business metric values: `forecasted`).
pub(super) async fn small_form(state: &AppState, request: Request, limit: usize) -> Result<SmallForm> {
    let too_large = || ApiError::PayloadTooLarge(format!("the csv file may be at most {limit} bytes"));
    let content_type =
        request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        // Percent-encoding at most triples the file.
        let body = axum::body::to_bytes(request.into_body(), limit.saturating_mul(3)).await.map_err(|_| too_large())?;
        let (mut decoder, mut csv) = (UrlEncodedCsv::default(), Vec::new());
        decoder.feed(&body, &mut csv).map_err(ApiError::bad_request)?;
        decoder.finish().map_err(ApiError::bad_request)?;
        if csv.len() > limit {
            return Err(too_large());
        }
        // The other fields are short: decode those, never the file again.
        let fields = body
            .split(|b| *b == b'&')
            .filter(|pair| pair.len() <= MAX_FIELD && !pair.starts_with(b"csv="))
            .flat_map(|pair| form_urlencoded::parse(pair).map(|(k, v)| (k.into_owned(), v.into_owned())))
            .collect();
        return Ok(SmallForm { csv, fields });
    }
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::bad_request(
            "the body must be multipart/form-data or application/x-www-form-urlencoded with the file in the field csv",
        ));
    }
    let request = with_boundary(request).await?;
    let mut multipart = Multipart::from_request(request, state).await?.0;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("the multipart body could not be read: {}", e.body_text()))
    };
    let (mut csv, mut fields) = (None::<Vec<u8>>, Vec::new());
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        let is_csv = name == "csv";
        if is_csv && csv.is_some() {
            return Err(ApiError::bad_request("send one csv file"));
        }
        let cap = if is_csv { limit } else { MAX_FIELD };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > cap {
                if is_csv {
                    return Err(too_large());
                }
                return Err(ApiError::bad_request(format!("the form field {name} is longer than {MAX_FIELD} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_csv {
            csv = Some(bytes);
        } else {
            fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    let csv = csv.ok_or_else(|| ApiError::bad_request("the multipart field csv (the file) is required"))?;
    Ok(SmallForm { csv, fields })
}

/// A multipart request whose Content-Type lacks its boundary, with the boundary read from the body's first
/// line (Vantage's TypeScript client sends `multipart/form-data` bare); any other request as it is.
async fn with_boundary(request: Request) -> Result<Request> {
    let has_boundary = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("boundary="));
    if has_boundary {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let boundary = loop {
        if let Some(found) = sniff_boundary(&head) {
            break found.map_err(ApiError::bad_request)?;
        }
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(ApiError::bad_request(format!("the upload could not be read: {e}"))),
            None => return Err(ApiError::bad_request("the multipart body ends before its first boundary")),
        }
    };
    let value = format!("multipart/form-data; boundary={boundary}");
    parts.headers.insert(CONTENT_TYPE, value.parse().map_err(|_| ApiError::bad_request("bad multipart boundary"))?);
    let rest = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(head)) }).chain(stream);
    Ok(Request::from_parts(parts, Body::from_stream(rest)))
}

async fn upload_multipart(
    state: &AppState,
    new: impl Fn(Option<String>) -> NewUpload,
    mut multipart: axum::extract::Multipart,
) -> Result<Upload> {
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("the multipart body could not be read: {}", e.body_text()))
    };
    let mut uploaded = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("csv") {
            // `auto_transform` and unknown parts: FOCUS columns are read as they are.
            continue;
        }
        if uploaded.is_some() {
            return Err(ApiError::bad_request("send one csv file per upload"));
        }
        // `blob` is the name FormData gives every Blob (Vantage's TypeScript client): no name the user chose,
        // and two such uploads must not replace each other.
        let filename = field.file_name().map(str::trim).filter(|f| !f.is_empty() && *f != "blob").map(str::to_string);
        // The part streams, chunk by chunk, into the ingest on its blocking thread.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        let ingest = streamed_csv(rx, state.max_upload_bytes);
        // Dropping `tx` when the part ends (or breaks) is the ingest's end of input.
        let pump = async move {
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return None; // the ingest stopped early; its result says why
                        }
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other("the upload was interrupted"))).await;
                        return Some(e);
                    }
                }
            }
        };
        let (result, body_error) = tokio::join!(
            service_upload(state.store.as_ref(), &state.files, &state.alert_wake.evaluate, new(filename), ingest),
            pump
        );
        if let Some(e) = body_error {
            return Err(multipart_error(e));
        }
        uploaded = Some(result?.record);
    }
    uploaded.ok_or_else(|| ApiError::bad_request("the multipart field csv (the cost file) is required"))
}

/// A form-urlencoded body: the `csv` field's value, decoded as it streams, is the file.
async fn upload_form(state: &AppState, new: NewUpload, body: Body) -> Result<Upload> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let ingest = streamed_csv(rx, state.max_upload_bytes);
    let pump = async move {
        let mut stream = body.into_data_stream();
        let mut decoder = UrlEncodedCsv::default();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other("the upload was interrupted"))).await;
                    return Err(format!("the upload could not be read: {e}"));
                }
            };
            let mut decoded = Vec::with_capacity(chunk.len());
            if let Err(e) = decoder.feed(&chunk, &mut decoded) {
                let _ = tx.send(Err(std::io::Error::other("the form body is malformed"))).await;
                return Err(e);
            }
            if !decoded.is_empty() && tx.send(Ok(Bytes::from(decoded))).await.is_err() {
                return Ok(()); // the ingest stopped early; its result says why
            }
        }
        decoder.finish()
    };
    let (result, body_error) =
        tokio::join!(service_upload(state.store.as_ref(), &state.files, &state.alert_wake.evaluate, new, ingest), pump);
    body_error.map_err(ApiError::bad_request)?;
    Ok(result?.record)
}

#[utoipa::path(get, path = "/integrations/{integration_token}/costs", tag = "uploads", operation_id = "uploads_list", params(("integration_token" = String, Path)), responses((status = 200, description = "OK", body = UploadsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    paging: Paging,
) -> Result<axum::Json<UploadsBody>> {
    let integration = path_token(&text, IntegrationToken::parse, integration_not_found)?;
    let page = paging.page;
    let found = uploads::list(state.store.as_ref(), &caller.account_token, &integration, page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(UploadsBody { user_costs_uploads: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(delete, path = "/integrations/{integration_token}/costs/{user_costs_upload_token}", tag = "uploads", operation_id = "uploads_remove", params(("integration_token" = String, Path), ("user_costs_upload_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((integration, upload)): Path<(String, String)>,
) -> Result<StatusCode> {
    let not_found = || ApiError::NotFound("costs upload not found".into());
    let integration = path_token(&integration, IntegrationToken::parse, not_found)?;
    let upload = path_token(&upload, UploadToken::parse, not_found)?;
    uploads::delete(state.store.as_ref(), &caller.account_token, &integration, &upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

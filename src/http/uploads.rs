//! Cost uploads of a custom-provider integration:
//! `POST /v2/integrations/{t}/costs.csv` (multipart `csv`), `GET /v2/integrations/{t}/costs`,
//! `DELETE /v2/integrations/{t}/costs/{upload}`.
//!
//! The `csv` part is streamed, chunk by chunk, into the ingest running on a blocking thread; no body
//! limit applies and memory stays bounded. Only after the whole part arrived, every row passed and the
//! Parquet file is on disk is the upload recorded, in one store transaction.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::auth::Caller;
use super::extract::{Multipart, Query};
use super::integrations::not_found as integration_not_found;
use super::pagination::{base_url, Links, ListParams, MAX_LIMIT};
use super::{timestamp, ApiError, AppState, Result};
use crate::engine::ingest::{ingest_csv, maybe_gunzip, parse::format_amount, IngestError};
use crate::engine::uploads::{remove_upload_files, upload_path, uploads_dir};
use crate::model::token::{new_token, prefix};
use crate::store::{Upload, UploadCommit};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/integrations/{integration_token}/costs.csv",
            // No size limit: an upload is a stream of any length (Vantage stops at 2 MB; we do not).
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/integrations/{integration_token}/costs", get(list))
        .route("/integrations/{integration_token}/costs/{user_costs_upload_token}", delete(remove))
}

/// A costs upload as the API shows it.
#[derive(Serialize)]
struct UploadBody {
    token: String,
    filename: String,
    amount: String,
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

#[derive(Serialize)]
struct UploadsBody {
    user_costs_uploads: Vec<UploadBody>,
    links: Links,
}

/// Chunks buffered between the request body and the ingest thread (each at most a few hundred KiB).
const CHUNKS_IN_FLIGHT: usize = 8;

async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(integration): Path<String>,
    Multipart(mut multipart): Multipart,
) -> Result<(StatusCode, axum::Json<UploadBody>)> {
    state.store.get_integration(&caller.account_token, &integration).await?.ok_or_else(integration_not_found)?;

    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("the multipart body could not be read: {}", e.body_text()))
    };
    let mut ingested = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("csv") {
            // `auto_transform` and unknown parts: FOCUS columns are read as they are.
            continue;
        }
        if ingested.is_some() {
            return Err(ApiError::bad_request("send one csv file per upload"));
        }
        let filename = field.file_name().filter(|f| !f.trim().is_empty()).unwrap_or("costs.csv").to_string();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        let dir = uploads_dir(&state.data_dir);
        let ingest = tokio::task::spawn_blocking(move || {
            let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            let body = SyncIoBridge::new(StreamReader::new(Box::pin(chunks)));
            let input = maybe_gunzip(body).map_err(|e| IngestError::Io(e.into()))?;
            ingest_csv(input, &dir, &mut ())
        });
        let mut body_error = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break; // the ingest stopped early; its result says why
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other("the upload was interrupted"))).await;
                    body_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let result = ingest.await.map_err(|e| anyhow::anyhow!("the ingest task failed: {e}"))?;
        if let Some(e) = body_error {
            return Err(multipart_error(e));
        }
        ingested = Some((filename, result));
    }
    let Some((filename, result)) = ingested else {
        return Err(ApiError::bad_request("the multipart field csv (the cost file) is required"));
    };
    let pending = match result {
        Ok(p) => p,
        Err(IngestError::Invalid(problems)) => return Err(ApiError::Unprocessable(problems)),
        Err(IngestError::Io(e)) => return Err(ApiError::Internal(e)),
    };

    let s = pending.summary.clone();
    let record = Upload {
        token: new_token(prefix::COSTS_UPLOAD),
        integration_token: integration.clone(),
        filename,
        amount: format_amount(s.amount),
        currency: s.currency,
        rows: i64::try_from(s.rows).unwrap_or(i64::MAX),
        start_date: s.start_date,
        end_date: s.end_date,
        import_status: "complete".into(),
        created_by_token: caller.user_token.clone(),
        created_at: crate::store::now(),
    };
    let path = upload_path(&state.data_dir, &record.token);
    let persist = tokio::task::spawn_blocking({
        let path = path.clone();
        move || pending.persist(&path)
    });
    persist.await.map_err(|e| anyhow::anyhow!("the persist task failed: {e}"))??;
    match state.store.commit_upload(&caller.account_token, &record).await {
        Ok(UploadCommit::Committed { replaced }) => {
            remove_upload_files(&state.data_dir, &replaced);
            tracing::info!(upload = %record.token, rows = record.rows, "upload committed");
            Ok((StatusCode::CREATED, axum::Json(record.into())))
        }
        Ok(UploadCommit::IntegrationGone) => {
            remove_upload_files(&state.data_dir, &[record.token]);
            Err(integration_not_found())
        }
        Err(e) => {
            remove_upload_files(&state.data_dir, &[record.token]);
            Err(e.into())
        }
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(integration): Path<String>,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<UploadsBody>> {
    let page = params.page_request(MAX_LIMIT)?;
    state.store.get_integration(&caller.account_token, &integration).await?.ok_or_else(integration_not_found)?;
    let found = state.store.list_uploads(&caller.account_token, &integration, page).await?;
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    Ok(axum::Json(UploadsBody { user_costs_uploads: found.items.into_iter().map(Into::into).collect(), links }))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((integration, upload)): Path<(String, String)>,
) -> Result<StatusCode> {
    if state.store.delete_upload(&caller.account_token, &integration, &upload).await? {
        remove_upload_files(&state.data_dir, &[upload]);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("costs upload not found".into()))
    }
}

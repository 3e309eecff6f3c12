//! `/v2/files/invoices/{invoice_token}/{file}`: the files behind signed download links (see
//! [`crate::service::signed`]), served without an API token: the link's signature is the permission.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Query;
use super::{ApiError, AppState, Result};
use crate::model::invoice::invoice_number;
use crate::model::token::{AccountToken, InvoiceToken};
use crate::render::invoice::{csv as invoice_csv, pdf as invoice_pdf};
use crate::service::signed::InvoiceFile;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(serve))
}

#[derive(Deserialize)]
struct LinkParams {
    account: Option<String>,
    expires: Option<i64>,
    signature: Option<String>,
}

fn refused(msg: impl Into<String>) -> ApiError {
    ApiError::Forbidden(msg.into())
}

#[utoipa::path(get, path = "/files/invoices/{invoice_token}/{file}", tag = "files", operation_id = "files_serve", params(("invoice_token" = String, Path), ("file" = String, Path)), responses((status = 200, description = "OK"), (status = 403, description = "An altered or expired link"), (status = 404, description = "No such invoice")))]
async fn serve(
    State(state): State<AppState>,
    Path((invoice_text, file_name)): Path<(String, String)>,
    Query(params): Query<LinkParams>,
) -> Result<Response> {
    let not_found = || ApiError::NotFound("no such file".into());
    let file = InvoiceFile::from_name(&file_name).ok_or_else(not_found)?;
    let invoice_token = InvoiceToken::parse(&invoice_text).ok_or_else(not_found)?;
    let (Some(account), Some(expires), Some(signature)) = (params.account, params.expires, params.signature) else {
        return Err(refused("a download link needs account, expires and signature; ask the API for one"));
    };
    let msp = AccountToken::parse(&account).ok_or_else(|| refused("this download link is not valid"))?;
    state
        .signer()
        .await?
        .verify(&msp, &invoice_token, file, expires, &signature, chrono::Utc::now().timestamp())
        .map_err(|e| refused(e.to_string()))?;
    let invoice = crate::service::invoices::get(state.store.as_ref(), &msp, &invoice_token).await?;
    let stem = invoice_number(invoice.number);
    let (body, content_type, name) = match file {
        InvoiceFile::Pdf => (invoice_pdf(&invoice), "application/pdf", format!("{stem}.pdf")),
        InvoiceFile::Csv => (invoice_csv(&invoice)?, "text/csv; charset=utf-8", format!("{stem}.csv")),
        InvoiceFile::CostReport => {
            let csv = crate::service::invoices::daily_costs_csv(&state.costs_context(), &invoice).await?.ok_or_else(
                || ApiError::NotFound(format!("the managed account {} no longer exists", invoice.account_token)),
            )?;
            (csv, "text/csv; charset=utf-8", format!("{stem}-costs.csv"))
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

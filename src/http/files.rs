//! `/v2/files/invoices/{invoice_token}/{file}`: the files behind signed download links (see
//! [`crate::service::signed`]), served without an API token: the link's signature is the permission.

use crate::model::spreadsheet::text_cell;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::extract::Query;
use super::{ApiError, AppState, Result};
use crate::model::invoice::invoice_number;
use crate::model::token::{AccountToken, InvoiceToken};
use crate::render::invoice::{csv as invoice_csv, pdf as invoice_pdf};
use crate::service::costs::costs;
use crate::service::invoices::invoice_query;
use crate::service::signed::InvoiceFile;

pub fn router() -> Router<AppState> {
    Router::new().route("/files/invoices/{invoice_token}/{file}", get(serve))
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

#[utoipa::path(get, path = "/v2/files/invoices/{invoice_token}/{file}", tag = "files", operation_id = "files_serve", params(("invoice_token" = String, Path), ("file" = String, Path)), responses((status = 200, description = "OK"), (status = 403, description = "An altered or expired link"), (status = 404, description = "No such invoice")))]
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
    let invoice = state.store.get_invoice(&msp, &invoice_token).await?.ok_or_else(not_found)?;
    let stem = invoice_number(invoice.number);
    let (body, content_type, name) = match file {
        InvoiceFile::Pdf => (invoice_pdf(&invoice), "application/pdf", format!("{stem}.pdf")),
        InvoiceFile::Csv => (invoice_csv(&invoice)?, "text/csv; charset=utf-8", format!("{stem}.csv")),
        InvoiceFile::CostReport => {
            (cost_report(&state, &invoice).await?, "text/csv; charset=utf-8", format!("{stem}-costs.csv"))
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

/// The invoice period's daily costs of its managed account, as they are now (rules applied), by provider,
/// service and charge type.
async fn cost_report(state: &AppState, invoice: &crate::store::Invoice) -> Result<Vec<u8>> {
    // An invoice outlives its managed account; the account's current costs do not.
    if state.store.get_managed_account(&invoice.msp_account_token, &invoice.account_token).await?.is_none() {
        return Err(ApiError::NotFound(format!("the managed account {} no longer exists", invoice.account_token)));
    }
    let query = invoice_query(&invoice.period, crate::engine::costs::DateBin::Day);
    let answer = costs(&state.costs_context(), &invoice.account_token, None, &query).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["date", "provider", "service", "charge_type", "amount", "currency"])
        .map_err(anyhow::Error::from)?;
    for row in &answer.result.rows {
        // Provider, service, charge type and currency come from uploads: text a spreadsheet must not run.
        let record = [
            row.accrued_at.to_string(),
            text_cell(&row.dimension(0)).into_owned(),
            text_cell(&row.dimension(1)).into_owned(),
            text_cell(&row.dimension(2)).into_owned(),
            row.amount.to_string(),
            text_cell(&row.currency).into_owned(),
        ];
        w.write_record(&record).map_err(anyhow::Error::from)?;
    }
    Ok(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
}

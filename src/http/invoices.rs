//! `/v2/invoices`: an MSP's invoices to its managed accounts — create (a numbered draft), list, show,
//! regenerate (drafts only), download links (PDF, CSV), the period's cost report, send and send-and-approve
//! (by email; freezes the invoice). The life cycle is [`crate::model::invoice::InvoiceStatus`]'s.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{base_url, Links, ListParams, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::invoice::invoice_number;
use crate::model::token::{AccountToken, InvoiceToken};
use crate::render::invoice::plain_total;
use crate::service::invoices::{self as invoicing, InvoiceFields};
use crate::service::signed::InvoiceFile;
use crate::store::Invoice;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(regenerate))
        .routes(routes!(download))
        .routes(routes!(cost_report))
        .routes(routes!(send))
        .routes(routes!(send_and_approve))
}

/// Vantage's `Invoice`, plus the currency and due date (which its clients ignore and people need).
#[derive(Serialize, utoipa::ToSchema)]
struct InvoiceBody {
    #[schema(value_type = String)]
    token: InvoiceToken,
    invoice_number: String,
    /// Rounded once to the currency's places, half away from zero.
    total: String,
    currency: String,
    billing_period_start: String,
    billing_period_end: String,
    due_date: String,
    status: &'static str,
    created_at: String,
    updated_at: String,
    #[schema(value_type = String)]
    account_token: AccountToken,
    account_name: String,
    #[schema(value_type = String)]
    msp_account_token: AccountToken,
}

impl From<Invoice> for InvoiceBody {
    fn from(i: Invoice) -> Self {
        InvoiceBody {
            invoice_number: invoice_number(i.number),
            total: plain_total(i.document.total, &i.document.currency),
            currency: i.document.currency,
            billing_period_start: i.period.start.to_string(),
            billing_period_end: i.period.end.to_string(),
            due_date: i.document.due_on.to_string(),
            status: i.status.as_str(),
            created_at: timestamp(i.created_at),
            updated_at: timestamp(i.updated_at),
            account_token: i.account_token,
            account_name: i.account_name,
            msp_account_token: i.msp_account_token,
            token: i.token,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct InvoicesBody {
    invoices: Vec<InvoiceBody>,
    links: Links,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct DownloadFields {
    file_type: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DownloadBody {
    download_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct InvoiceCostReportBody {
    cost_report_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SendBody {
    recipients: Vec<String>,
    /// The invoice as it now is (sent or approved).
    invoice: InvoiceBody,
}

fn not_found() -> ApiError {
    ApiError::NotFound("invoice not found".into())
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

#[utoipa::path(get, path = "/invoices", tag = "invoices", operation_id = "invoices_list", responses((status = 200, description = "OK", body = InvoicesBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    paging: Paging,
) -> Result<axum::Json<InvoicesBody>> {
    let page = paging.page;
    let found =
        invoicing::list(state.store.as_ref(), &caller.account_token, params.managed_account_token.as_deref(), page)
            .await?;
    let links = paging.links(found.total);
    Ok(axum::Json(InvoicesBody { invoices: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/invoices", tag = "invoices", operation_id = "invoices_create", request_body = InvoiceFields, responses((status = 201, description = "Created", body = InvoiceBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<InvoiceFields>,
) -> Result<(StatusCode, axum::Json<InvoiceBody>)> {
    let created = invoicing::create(&state.costs_context(), &caller.account_token, fields, today()).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/invoices/{invoice_token}", tag = "invoices", operation_id = "invoices_show", params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = InvoiceBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<InvoiceBody>> {
    let token = path_token(&text, InvoiceToken::parse, not_found)?;
    Ok(axum::Json(invoicing::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(post, path = "/invoices/{invoice_token}/regenerate", tag = "invoices", operation_id = "invoices_regenerate", params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = InvoiceBody), super::openapi::ApiErrors))]
async fn regenerate(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<InvoiceBody>> {
    let token = path_token(&text, InvoiceToken::parse, not_found)?;
    let invoice = invoicing::regenerate(&state.costs_context(), &caller.account_token, &token, today()).await?;
    Ok(axum::Json(invoice.into()))
}

/// A signed link to one of the invoice's files, valid for the configured time.
async fn link(state: &AppState, headers: &HeaderMap, invoice: &Invoice, file: InvoiceFile) -> Result<String> {
    let expires = chrono::Utc::now().timestamp() + state.download_ttl.as_secs() as i64;
    let base = base_url(state.public_url.as_deref(), headers);
    Ok(state.signer().await?.url(&base, &invoice.msp_account_token, &invoice.token, file, expires))
}

#[utoipa::path(post, path = "/invoices/{invoice_token}/download", tag = "invoices", operation_id = "invoices_download", request_body = DownloadFields, params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = DownloadBody), super::openapi::ApiErrors))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    headers: HeaderMap,
    Json(fields): Json<DownloadFields>,
) -> Result<axum::Json<DownloadBody>> {
    let token = path_token(&text, InvoiceToken::parse, not_found)?;
    let file = match fields.file_type.as_deref().map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        Some("pdf") => InvoiceFile::Pdf,
        Some("csv") => InvoiceFile::Csv,
        Some(other) => return Err(ApiError::bad_request(format!("file_type must be pdf or csv, got {other:?}"))),
        None => return Err(ApiError::bad_request("file_type is required (pdf or csv)")),
    };
    let invoice = invoicing::get(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(DownloadBody { download_url: link(&state, &headers, &invoice, file).await? }))
}

#[utoipa::path(get, path = "/invoices/{invoice_token}/cost_report", tag = "invoices", operation_id = "invoices_cost_report", params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = InvoiceCostReportBody), super::openapi::ApiErrors))]
async fn cost_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<InvoiceCostReportBody>> {
    let token = path_token(&text, InvoiceToken::parse, not_found)?;
    let invoice = invoicing::get(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(InvoiceCostReportBody {
        cost_report_url: link(&state, &headers, &invoice, InvoiceFile::CostReport).await?,
    }))
}

async fn send_as(state: AppState, caller: Caller, text: String, approve: bool) -> Result<axum::Json<SendBody>> {
    let token = path_token(&text, InvoiceToken::parse, not_found)?;
    let (invoice, recipients) =
        invoicing::send(state.store.as_ref(), state.mailer.as_deref(), &caller.account_token, &token, approve).await?;
    Ok(axum::Json(SendBody { recipients, invoice: invoice.into() }))
}

#[utoipa::path(post, path = "/invoices/{invoice_token}/send", tag = "invoices", operation_id = "invoices_send", params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = SendBody), super::openapi::ApiErrors))]
async fn send(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<axum::Json<SendBody>> {
    send_as(state, caller, text, false).await
}

#[utoipa::path(post, path = "/invoices/{invoice_token}/send_and_approve", tag = "invoices", operation_id = "invoices_send_and_approve", params(("invoice_token" = String, Path)), responses((status = 200, description = "OK", body = SendBody), super::openapi::ApiErrors))]
async fn send_and_approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<SendBody>> {
    send_as(state, caller, text, true).await
}

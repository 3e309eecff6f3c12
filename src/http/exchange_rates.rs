//! `/v2/exchange_rates`: the account's exchange rates (list) and `POST /v2/exchange_rates/csv` (a file of
//! `base_currency_code,currency_code,rate,date` rows, stored whole or not at all). docs/currency.md says how a
//! workspace with currency conversion uses them.

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::pagination::{Links, Paging};
use super::{timestamp, AppState, Result};
use crate::service::exchange_rates;
use crate::store::StoredExchangeRate;

/// Largest rates file read (100,000 rows of about 30 bytes fit).
const MAX_CSV_BYTES: usize = 8 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .merge(OpenApiRouter::new().routes(routes!(upload_csv)).layer(DefaultBodyLimit::max(MAX_CSV_BYTES * 3)))
}

/// A rate as the API shows it: one `base_currency_code` is worth `rate` `currency_code` from `effective_date`.
#[derive(Serialize, utoipa::ToSchema)]
struct ExchangeRateBody {
    base_currency_code: String,
    currency_code: String,
    /// Exact decimal text, as uploaded (trailing zeros dropped).
    rate: String,
    effective_date: String,
    updated_at: String,
}

impl From<StoredExchangeRate> for ExchangeRateBody {
    fn from(s: StoredExchangeRate) -> Self {
        ExchangeRateBody {
            base_currency_code: s.rate.base,
            currency_code: s.rate.currency,
            rate: s.rate.rate.to_string(),
            effective_date: s.rate.effective_date.to_string(),
            updated_at: timestamp(s.updated_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct ExchangeRatesBody {
    exchange_rates: Vec<ExchangeRateBody>,
    links: Links,
}

#[utoipa::path(get, path = "/exchange_rates", tag = "exchange_rates", operation_id = "exchange_rates_list", responses((status = 200, description = "OK", body = ExchangeRatesBody), super::openapi::ApiErrors))]
async fn list(State(state): State<AppState>, caller: Caller, paging: Paging) -> Result<axum::Json<ExchangeRatesBody>> {
    let found = exchange_rates::list(state.store.as_ref(), &caller.account_token, paging.page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(ExchangeRatesBody { exchange_rates: found.items.into_iter().map(Into::into).collect(), links }))
}

/// The rates file, in the field `csv`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RatesForm {
    /// Rows of `base_currency_code,currency_code,rate,date` (YYYY-MM-DD); a header row is optional.
    #[schema(value_type = String, format = Binary)]
    csv: Vec<u8>,
}

/// What an accepted file stored.
#[derive(Serialize, utoipa::ToSchema)]
struct UploadedBody {
    /// How many rates the file held (each new, or replacing the rate of its pair and day).
    exchange_rates_count: usize,
}

#[utoipa::path(post, path = "/exchange_rates/csv", tag = "exchange_rates", operation_id = "exchange_rates_upload_csv", request_body(content((inline(RatesForm) = "multipart/form-data"), (inline(RatesForm) = "application/x-www-form-urlencoded"))), responses((status = 201, description = "Created", body = UploadedBody), super::openapi::ApiErrors))]
async fn upload_csv(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<(StatusCode, axum::Json<UploadedBody>)> {
    let csv = super::uploads::small_csv(&state, request, MAX_CSV_BYTES).await?;
    let count = exchange_rates::upload_csv(state.store.as_ref(), &caller.account_token, &csv).await?;
    Ok((StatusCode::CREATED, axum::Json(UploadedBody { exchange_rates_count: count })))
}

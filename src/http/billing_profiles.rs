//! `/v2/billing_profiles`: an MSP's invoicing identities — company and address, custom fields, bank
//! details, and the adjustments (taxes, fees, discounts) its invoices carry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Json;
use super::pagination::{Links, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::billing_profile::{
    masked, BankingInformation, BillingInformation, BillingProfileFields, CustomField,
};
use crate::model::decimal::to_wire;
use crate::model::token::{part_token, BillingProfileToken};
use crate::service::invoices::{self as invoicing};
use crate::store::BillingProfile;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// Billing information as Vantage shows it: every key present, null when unset (its clients' models
/// require the keys).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BillingInformationBody {
    token: String,
    company_name: Option<String>,
    country_code: Option<String>,
    address_line_1: Option<String>,
    address_line_2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    billing_email: Option<Vec<String>>,
}

impl BillingInformationBody {
    pub(crate) fn new(owner: &str, b: BillingInformation) -> Self {
        BillingInformationBody {
            token: part_token("bllng_inf_", owner),
            company_name: b.company_name,
            country_code: b.country_code,
            address_line_1: b.address_line_1,
            address_line_2: b.address_line_2,
            city: b.city,
            state: b.state,
            postal_code: b.postal_code,
            billing_email: b.billing_email,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BusinessInformationBody {
    token: String,
    metadata: BusinessMetadataBody,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BusinessMetadataBody {
    custom_fields: Vec<CustomFieldBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CustomFieldBody {
    name: String,
    value: Option<String>,
}

impl BusinessInformationBody {
    pub(crate) fn new(owner: &str, fields: Vec<CustomField>) -> Self {
        BusinessInformationBody {
            token: part_token("bsnss_inf_", owner),
            metadata: BusinessMetadataBody {
                custom_fields: fields.into_iter().map(|f| CustomFieldBody { name: f.name, value: f.value }).collect(),
            },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BankingInformationBody {
    token: String,
    bank_name: Option<String>,
    beneficiary_name: Option<String>,
    tax_id: Option<String>,
    /// Account numbers are masked on every read (the PDF, which the customer pays from, prints them).
    secure_data: SecureDataBody,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SecureDataBody {
    account_number: Option<String>,
    routing_number: Option<String>,
    iban: Option<String>,
    swift_bic: Option<String>,
}

impl BankingInformationBody {
    fn new(owner: &str, b: BankingInformation) -> Self {
        let mask = |v: Option<String>| v.map(|v| masked(&v));
        BankingInformationBody {
            token: part_token("bnkng_inf_", owner),
            bank_name: b.bank_name,
            beneficiary_name: b.beneficiary_name,
            tax_id: b.tax_id,
            secure_data: SecureDataBody {
                account_number: mask(b.account_number),
                routing_number: mask(b.routing_number),
                iban: mask(b.iban),
                swift_bic: b.swift_bic,
            },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct InvoiceAdjustmentBody {
    token: String,
    adjustment_items: Vec<AdjustmentItemBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AdjustmentItemBody {
    name: String,
    adjustment_type: &'static str,
    calculation_type: &'static str,
    amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BillingProfileBody {
    #[schema(value_type = String)]
    token: BillingProfileToken,
    nickname: String,
    created_at: String,
    updated_at: String,
    billing_information_attributes: BillingInformationBody,
    business_information_attributes: BusinessInformationBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    banking_information_attributes: Option<BankingInformationBody>,
    invoice_adjustment_attributes: InvoiceAdjustmentBody,
    managed_accounts_count: String,
}

impl From<BillingProfile> for BillingProfileBody {
    fn from(p: BillingProfile) -> Self {
        let owner = p.token.to_string();
        let s = p.settings;
        BillingProfileBody {
            nickname: s.nickname,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            billing_information_attributes: BillingInformationBody::new(&owner, s.billing),
            business_information_attributes: BusinessInformationBody::new(&owner, s.custom_fields),
            banking_information_attributes: s.banking.map(|b| BankingInformationBody::new(&owner, b)),
            invoice_adjustment_attributes: InvoiceAdjustmentBody {
                token: part_token("invc_adjstmnt_", &owner),
                adjustment_items: s
                    .adjustments
                    .into_iter()
                    .map(|a| AdjustmentItemBody {
                        name: a.name,
                        adjustment_type: a.adjustment_type.as_str(),
                        calculation_type: a.calculation_type.as_str(),
                        amount: to_wire(a.amount),
                    })
                    .collect(),
            },
            managed_accounts_count: p.managed_accounts_count.to_string(),
            token: p.token,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BillingProfilesBody {
    billing_profiles: Vec<BillingProfileBody>,
    links: Links,
}

fn not_found() -> ApiError {
    ApiError::NotFound("billing profile not found".into())
}

#[utoipa::path(get, path = "/billing_profiles", tag = "billing_profiles", operation_id = "billing_profiles_list", responses((status = 200, description = "OK", body = BillingProfilesBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
) -> Result<axum::Json<BillingProfilesBody>> {
    let page = paging.page;
    let found = invoicing::list_profiles(state.store.as_ref(), &caller.account_token, page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(BillingProfilesBody { billing_profiles: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/billing_profiles", tag = "billing_profiles", operation_id = "billing_profiles_create", request_body = BillingProfileFields, responses((status = 201, description = "Created", body = BillingProfileBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<BillingProfileFields>,
) -> Result<(StatusCode, axum::Json<BillingProfileBody>)> {
    let created = invoicing::create_profile(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/billing_profiles/{billing_profile_token}", tag = "billing_profiles", operation_id = "billing_profiles_show", params(("billing_profile_token" = String, Path)), responses((status = 200, description = "OK", body = BillingProfileBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<BillingProfileBody>> {
    let token = path_token(&text, BillingProfileToken::parse, not_found)?;
    Ok(axum::Json(invoicing::get_profile(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/billing_profiles/{billing_profile_token}", tag = "billing_profiles", operation_id = "billing_profiles_update", request_body = BillingProfileFields, params(("billing_profile_token" = String, Path)), responses((status = 200, description = "OK", body = BillingProfileBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<BillingProfileFields>,
) -> Result<axum::Json<BillingProfileBody>> {
    let token = path_token(&text, BillingProfileToken::parse, not_found)?;
    let updated = invoicing::update_profile(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/billing_profiles/{billing_profile_token}", tag = "billing_profiles", operation_id = "billing_profiles_remove", params(("billing_profile_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, BillingProfileToken::parse, not_found)?;
    invoicing::delete_profile(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! MSP invoicing: billing profiles, and invoices computed from a managed account's costs with its billing
//! rules applied — the same query `GET /v2/costs` runs for that account — then numbered, stored whole,
//! rendered (PDF, CSV), sent by email and frozen. The life cycle is [`InvoiceStatus`]'s.

use crate::service::ServiceError;
use chrono::NaiveDate;
use serde::Deserialize;

use super::costs::{costs, CostsContext};
use crate::model::billing_profile::{BillingProfileFields, BillingProfileSettings};
use crate::model::cost_query::{Aggregate, ColumnGrouping, CostQuery, DateBin, Grouping, Settings};
use crate::model::exchange_rate::{Direction, RateDate};
use crate::model::invoice::{
    BillingPeriod, InvoiceConversion, InvoiceDocument, InvoiceInput, InvoiceStatus, Party, RateUsed,
};
use crate::model::token::{AccountToken, BillingProfileToken, IntegrationToken, InvoiceToken};
use crate::store::{
    BillingProfile, Invoice, InvoiceChange, InvoiceCreate, ManagedAccount, NewInvoice, PageRequest, Paged,
    ProfileDeletion, Store,
};

/// Only a top-level (MSP) account invoices.
async fn require_msp(store: &dyn Store, caller: &AccountToken) -> Result<(), ServiceError> {
    let account = store.get_account(caller).await?.ok_or_else(|| anyhow::anyhow!("the caller's account vanished"))?;
    if account.parent_account_token.is_some() {
        return Err(ServiceError::Forbidden("invoicing is for MSP accounts; a managed account cannot invoice".into()));
    }
    Ok(())
}

pub async fn list_profiles(
    store: &dyn Store,
    caller: &AccountToken,
    page: PageRequest,
) -> Result<Paged<BillingProfile>, ServiceError> {
    require_msp(store, caller).await?;
    Ok(store.list_billing_profiles(caller, page).await?)
}

pub async fn get_profile(
    store: &dyn Store,
    caller: &AccountToken,
    token: &BillingProfileToken,
) -> Result<BillingProfile, ServiceError> {
    store.get_billing_profile(caller, token).await?.ok_or(ServiceError::NotFound("billing profile"))
}

pub async fn create_profile(
    store: &dyn Store,
    caller: &AccountToken,
    fields: BillingProfileFields,
) -> Result<BillingProfile, ServiceError> {
    require_msp(store, caller).await?;
    let settings = BillingProfileSettings::create(fields).map_err(ServiceError::Invalid)?;
    Ok(store.create_billing_profile(caller, &settings).await?)
}

pub async fn update_profile(
    store: &dyn Store,
    caller: &AccountToken,
    token: &BillingProfileToken,
    fields: BillingProfileFields,
) -> Result<BillingProfile, ServiceError> {
    let current = get_profile(store, caller, token).await?;
    let settings = current.settings.update(fields).map_err(ServiceError::Invalid)?;
    store.update_billing_profile(caller, token, &settings).await?.ok_or(ServiceError::NotFound("billing profile"))
}

pub async fn delete_profile(
    store: &dyn Store,
    caller: &AccountToken,
    token: &BillingProfileToken,
) -> Result<(), ServiceError> {
    match store.delete_billing_profile(caller, token).await? {
        ProfileDeletion::Deleted => Ok(()),
        ProfileDeletion::NotFound => Err(ServiceError::NotFound("billing profile")),
        ProfileDeletion::InUse(n) => Err(ServiceError::Conflict(format!(
            "billing profile {token} is used by {n} managed account(s); link them to another profile first"
        ))),
    }
}

/// `POST /v2/invoices` as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct InvoiceFields {
    pub account_token: Option<String>,
    pub billing_period_start: Option<String>,
    pub billing_period_end: Option<String>,
}

/// Creates (numbers and stores) a draft invoice of a managed account for a period.
#[tracing::instrument(skip_all, fields(msp = %caller))]
pub async fn create(
    ctx: &CostsContext,
    caller: &AccountToken,
    fields: InvoiceFields,
    today: NaiveDate,
) -> Result<Invoice, ServiceError> {
    let store = ctx.store.as_ref();
    require_msp(store, caller).await?;
    let mut errors = Vec::new();
    let period = BillingPeriod::parse(fields.billing_period_start.as_deref(), fields.billing_period_end.as_deref())
        .map_err(|e| errors.extend(e))
        .ok();
    let account = match fields.account_token.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push("account_token is required (the managed account to invoice)".to_string());
            None
        }
        Some(t) => {
            let found = match AccountToken::parse(t) {
                Some(token) => store.get_managed_account(caller, &token).await?,
                None => None,
            };
            if found.is_none() {
                errors.push(format!("account_token: no managed account {t} in this account"));
            }
            found
        }
    };
    let (Some(period), Some(account)) = (period, account) else { return Err(ServiceError::Invalid(errors)) };
    let document = generate(ctx, caller, &account, &period, today).await?;
    let new = NewInvoice {
        account_token: account.account.token.clone(),
        account_name: account.account.name.clone(),
        period,
        document,
    };
    match store.create_invoice(caller, &new).await? {
        InvoiceCreate::Created(invoice) => Ok(invoice),
        InvoiceCreate::Overlaps(other) => Err(ServiceError::Conflict(format!(
            "invoice {} ({}) already covers {}..{} for {}; regenerate it, or invoice a period that does not overlap",
            crate::model::invoice::invoice_number(other.number),
            other.token,
            other.period.start,
            other.period.end,
            other.account_token
        ))),
    }
}

/// The invoice document for a managed account and period: its costs with its rules applied, grouped by
/// provider, service and charge type, with its billing profile's seller details and adjustments.
async fn generate(
    ctx: &CostsContext,
    msp: &AccountToken,
    account: &ManagedAccount,
    period: &BillingPeriod,
    today: NaiveDate,
) -> Result<InvoiceDocument, ServiceError> {
    let store = ctx.store.as_ref();
    let Some(profile_token) = &account.invoicing.billing_profile else {
        return Err(ServiceError::Invalid(vec![format!(
            "managed account {} has no billing profile: set its msp_billing_profile_token first",
            account.account.token
        )]));
    };
    let profile = store
        .get_billing_profile(msp, profile_token)
        .await?
        .ok_or_else(|| anyhow::anyhow!("managed account {} links a missing billing profile", account.account.token))?;
    let msp_account = store.get_account(msp).await?.ok_or_else(|| anyhow::anyhow!("the MSP account vanished"))?;
    let tag_key = account.invoicing.tag_key.clone();
    // Lines by the tag's values, or by provider named as the customer knows it: a cost's integration's name.
    let first = match &tag_key {
        Some(key) => vec![Grouping::Tag(key.clone())],
        None => vec![Grouping::Integration, ColumnGrouping::Provider.into()],
    };
    let query = invoice_query(period, DateBin::Month, first);
    let answer = costs(ctx, &account.account.token, None, &query).await?;
    let currency = match answer.result.totals.as_slice() {
        [] => answer.currency.clone(),
        [(currency, _)] => currency.clone(),
        several => {
            let names: Vec<&str> = several.iter().map(|(c, _)| c.as_str()).collect();
            return Err(ServiceError::unprocessable(format!(
                "the costs of {} for {}..{} are in several currencies ({}); an invoice has one",
                account.account.token,
                period.start,
                period.end,
                names.join(", ")
            )));
        }
    };
    let costs = if tag_key.is_some() {
        answer
            .result
            .rows
            .iter()
            .map(|row| (row.dimension(0), row.dimension(1), row.dimension(2), row.amount))
            .collect()
    } else {
        // An integration's name (an MSP's own, so read from it); a billing rule's line item keeps its provider.
        let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for row in answer.result.rows.iter() {
            let integration = row.dimension(0);
            if integration.is_empty() || names.contains_key(&integration) {
                continue;
            }
            let name = match IntegrationToken::parse(&integration) {
                Some(t) => store.get_integration(msp, &t).await?.map(|i| i.name),
                None => None,
            };
            names.insert(integration, name.unwrap_or_else(|| row.dimension(1)));
        }
        answer
            .result
            .rows
            .iter()
            .map(|row| {
                let provider = names.get(&row.dimension(0)).cloned().unwrap_or_else(|| row.dimension(1));
                (provider, row.dimension(2), row.dimension(3), row.amount)
            })
            .collect()
    };
    let settings = profile.settings;
    let seller = Party {
        name: settings.billing.company_name.clone().unwrap_or_else(|| msp_account.name.clone()),
        billing: settings.billing,
        custom_fields: settings.custom_fields,
    };
    let buyer = Party {
        name: account.invoicing.billing.company_name.clone().unwrap_or_else(|| account.account.name.clone()),
        billing: account.invoicing.billing.clone(),
        custom_fields: account.invoicing.custom_fields.clone(),
    };
    // The rates each upload's currency was converted by over the period, when the workspace converts.
    let conversion = answer.conversion.as_ref().and_then(|(conversion, currencies)| {
        let mut rates = Vec::new();
        for from in currencies.iter().filter(|c| **c != conversion.to) {
            for (effective_date, rate, direction) in conversion.used(from, period.start, period.end) {
                let (base, currency) = match direction {
                    Direction::Multiply => (from.clone(), conversion.to.clone()),
                    Direction::Divide => (conversion.to.clone(), from.clone()),
                };
                rates.push(RateUsed { base, currency, rate, effective_date });
            }
        }
        (!rates.is_empty()).then(|| InvoiceConversion {
            end_of_billing_period: conversion.date == RateDate::EndOfBillingPeriod,
            rates,
        })
    });
    InvoiceDocument::compute(InvoiceInput {
        seller,
        buyer,
        banking: settings.banking,
        issued_on: today,
        payment_terms_days: account.invoicing.payment_terms_days,
        currency,
        costs,
        adjustments: settings.adjustments,
        conversion,
        tag_key,
    })
    .map_err(ServiceError::unprocessable)
}

/// The invoice period's daily costs of its managed account, as they are now (rules applied), by provider,
/// service and charge type, as CSV (`date`, the three, `amount`, `currency`); `None` once the managed
/// account is gone (an invoice outlives it; its current costs do not).
pub async fn daily_costs_csv(ctx: &CostsContext, invoice: &Invoice) -> Result<Option<Vec<u8>>, ServiceError> {
    if ctx.store.get_managed_account(&invoice.msp_account_token, &invoice.account_token).await?.is_none() {
        return Ok(None);
    }
    let first = match &invoice.document.tag_key {
        Some(key) => Grouping::Tag(key.clone()),
        None => ColumnGrouping::Provider.into(),
    };
    let query = invoice_query(&invoice.period, DateBin::Day, vec![first]);
    let answer = costs(ctx, &invoice.account_token, None, &query).await?;
    let written = (|| {
        let mut csv = crate::engine::costs::CostRowsCsv::new(Vec::new(), &query, "date")?;
        for row in answer.result.rows.iter().cloned() {
            csv.write(row)?;
        }
        csv.finish()
    })();
    Ok(Some(written.map_err(ServiceError::from)?))
}

/// The costs query behind an invoice: the period, by `first` (the integration and provider, or the managed
/// account's invoice tag), then service and charge type, with every kind of cost (credits and refunds
/// included: an invoice bills what the rules produce, all of it).
pub fn invoice_query(period: &BillingPeriod, date_bin: DateBin, first: Vec<Grouping>) -> CostQuery {
    let mut groupings = first;
    groupings.extend([ColumnGrouping::Service.into(), ColumnGrouping::ChargeType.into()]);
    CostQuery {
        start: period.start,
        end: period.end,
        groupings,
        date_bin,
        descending: false,
        // Amortized, as `GET /v2/costs` is by default, so an invoice matches what the costs API shows.
        settings: Settings { include_credits: true, include_refunds: true, ..Settings::default() },
        aggregate: Aggregate::Cost,
        filter: None,
        segment: None,
    }
}

pub async fn list(
    store: &dyn Store,
    caller: &AccountToken,
    managed_account: Option<&str>,
    page: PageRequest,
) -> Result<Paged<Invoice>, ServiceError> {
    require_msp(store, caller).await?;
    let filter = match managed_account.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match AccountToken::parse(t) {
            Some(token) => Some(token),
            // No account has that token, so it has no invoices.
            None => return Ok(Paged { items: Vec::new(), total: 0 }),
        },
    };
    Ok(store.list_invoices(caller, filter.as_ref(), page).await?)
}

pub async fn get(store: &dyn Store, caller: &AccountToken, token: &InvoiceToken) -> Result<Invoice, ServiceError> {
    store.get_invoice(caller, token).await?.ok_or(ServiceError::NotFound("invoice"))
}

/// Recomputes a draft from today's costs, rules and profile; its number and period stay.
#[tracing::instrument(skip_all, fields(invoice = %token))]
pub async fn regenerate(
    ctx: &CostsContext,
    caller: &AccountToken,
    token: &InvoiceToken,
    today: NaiveDate,
) -> Result<Invoice, ServiceError> {
    let store = ctx.store.as_ref();
    let invoice = get(store, caller, token).await?;
    if invoice.status.is_frozen() {
        return Err(frozen(&invoice));
    }
    let account = store.get_managed_account(caller, &invoice.account_token).await?.ok_or_else(|| {
        ServiceError::Conflict(format!(
            "the managed account {} of this invoice no longer exists",
            invoice.account_token
        ))
    })?;
    let document = generate(ctx, caller, &account, &invoice.period, today).await?;
    match store.regenerate_invoice(caller, token, &document).await? {
        InvoiceChange::Done(i) => Ok(i),
        InvoiceChange::Refused(_) => Err(frozen(&invoice)),
        InvoiceChange::NotFound => Err(ServiceError::NotFound("invoice")),
    }
}

fn frozen(invoice: &Invoice) -> ServiceError {
    ServiceError::Conflict(format!(
        "invoice {} is {} and cannot be regenerated: a sent invoice is final",
        crate::model::invoice::invoice_number(invoice.number),
        invoice.status.as_str()
    ))
}

/// Who receives an invoice: the customer's billing emails, or its contact email.
pub async fn recipients(
    store: &dyn Store,
    caller: &AccountToken,
    invoice: &Invoice,
) -> Result<Vec<String>, ServiceError> {
    let from_document = invoice.document.buyer.billing.billing_email.clone().unwrap_or_default();
    if !from_document.is_empty() {
        return Ok(from_document);
    }
    match store.get_managed_account(caller, &invoice.account_token).await? {
        Some(account) => {
            Ok(account.invoicing.billing.billing_email.clone().unwrap_or_else(|| vec![account.contact_email]))
        }
        None => Err(ServiceError::Conflict(format!(
            "the managed account {} of this invoice no longer exists and the invoice names no billing email",
            invoice.account_token
        ))),
    }
}

/// Sends an invoice by email (PDF and CSV attached) to the customer's billing emails, and records it as
/// sent (`approve`: approved). The status changes first, so the document emailed is the one frozen; if
/// the email fails, the status goes back and nothing is recorded as sent.
#[tracing::instrument(skip_all, fields(invoice = %token, approve))]
pub async fn send(
    store: &dyn Store,
    mailer: Option<&crate::mail::Mailer>,
    caller: &AccountToken,
    token: &InvoiceToken,
    approve: bool,
) -> Result<(Invoice, Vec<String>), ServiceError> {
    let invoice = get(store, caller, token).await?;
    let Some(mailer) = mailer else {
        return Err(ServiceError::Invalid(vec![
            "costd has no SMTP server to send invoices through: start it with --smtp-url (COSTD_SMTP_URL), \
             or download the invoice and send it yourself"
                .into(),
        ]));
    };
    let to = recipients(store, caller, &invoice).await?;
    if to.len() > crate::mail::MAX_RECIPIENTS {
        return Err(ServiceError::Invalid(vec![format!(
            "the invoice would go to {} addresses; an invoice is emailed to at most {} (the billing emails of the \
             managed account)",
            to.len(),
            crate::mail::MAX_RECIPIENTS
        )]));
    }
    // Counted before the status changes: a refused send changes nothing.
    mailer.limits().check(caller.as_str(), token.as_str()).map_err(ServiceError::TooMany)?;
    let target = if approve { InvoiceStatus::Approved } else { invoice.status.after_send() };
    let sent = match store.set_invoice_status(caller, token, &[invoice.status], target).await? {
        InvoiceChange::Done(i) => i,
        InvoiceChange::Refused(now) => {
            return Err(ServiceError::Conflict(format!(
                "invoice {} changed to {} while being sent; try again",
                crate::model::invoice::invoice_number(invoice.number),
                now.as_str()
            )))
        }
        InvoiceChange::NotFound => return Err(ServiceError::NotFound("invoice")),
    };
    let files = crate::render::invoice::Files::of(&sent)?;
    if let Err(e) = mailer.send_invoice(&to, &sent, &files).await {
        if sent.status != invoice.status {
            store.set_invoice_status(caller, token, &[sent.status], invoice.status).await?;
        }
        return Err(ServiceError::Upstream(format!("the invoice could not be sent: {e:#}")));
    }
    Ok((sent, to))
}

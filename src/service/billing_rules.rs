//! Billing rules: created and changed from a request's fields. An update lays the fields it sets over the
//! rule's current ones and checks the whole as a create would; a rule's type never changes (a new rule is
//! made instead), so what a rule did before stays explainable.

use crate::model::billing_rule::{RuleColumns, RuleDefinition, RuleFields, RuleType};
use crate::model::token::{AccountToken, RuleToken};
use crate::service::ServiceError;
use crate::store::{BillingRuleRow, PageRequest, Paged, Store};

const NOT_FOUND: ServiceError = ServiceError::NotFound("billing rule");

pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    page: PageRequest,
) -> Result<Paged<BillingRuleRow>, ServiceError> {
    Ok(store.list_billing_rules(account, page).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &RuleToken) -> Result<BillingRuleRow, ServiceError> {
    store.get_billing_rule(account, token).await?.ok_or(NOT_FOUND)
}

/// Creates a rule made by `created_by` (a user token).
pub async fn create(
    store: &dyn Store,
    account: &AccountToken,
    created_by: &str,
    fields: RuleFields,
) -> Result<BillingRuleRow, ServiceError> {
    let rule = RuleDefinition::try_from(fields).map_err(ServiceError::Invalid)?;
    Ok(store.create_billing_rule(account, created_by, &RuleColumns::from(&rule)).await?)
}

pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &RuleToken,
    mut fields: RuleFields,
) -> Result<BillingRuleRow, ServiceError> {
    let current = get(store, account, token).await?;
    if let Some(requested) = fields.rule_type.take() {
        let requested = requested.parse::<RuleType>().map_err(ServiceError::invalid)?;
        if requested != current.columns.rule_type {
            return Err(ServiceError::invalid(format!(
                "type cannot be changed (this rule is {}); create a new rule instead",
                current.columns.rule_type
            )));
        }
    }
    let rule =
        RuleDefinition::try_from(RuleFields::from(current.columns).overlay(fields)).map_err(ServiceError::Invalid)?;
    store.update_billing_rule(account, token, &RuleColumns::from(&rule)).await?.ok_or(NOT_FOUND)
}

pub async fn delete(store: &dyn Store, account: &AccountToken, token: &RuleToken) -> Result<(), ServiceError> {
    if store.delete_billing_rule(account, token).await? {
        Ok(())
    } else {
        Err(NOT_FOUND)
    }
}

//! Managed accounts (an MSP's customers): creating and changing them with their integrations and ordered
//! billing rules checked, and the rules each one actually runs (its own, plus the parent's `apply_to_all`
//! rules at the end of their group). A page of accounts costs a fixed number of store reads.

use crate::service::ServiceError;
use std::collections::HashMap;

use crate::model::billing_rule::{check_rule_order, effective_rules, RuleGroup};
use crate::model::managed_account::{ManagedAccountFields, ManagedAccountSettings};
use crate::model::token::{AccountToken, RuleToken};
use crate::store::{BillingRuleRow, ManagedAccount, PageRequest, Paged, Store};

/// A managed account with the rules it runs, in order.
#[derive(Debug, Clone)]
pub struct ManagedView {
    pub account: ManagedAccount,
    /// Its listed rules (those still existing) with the parent's `apply_to_all` rules.
    pub effective_rule_tokens: Vec<RuleToken>,
}

/// A page of `parent`'s managed accounts.
pub async fn list(
    store: &dyn Store,
    parent: &AccountToken,
    page: PageRequest,
) -> Result<Paged<ManagedView>, ServiceError> {
    let found = store.list_managed_accounts(parent, page).await?;
    let items = views(store, parent, found.items).await?;
    Ok(Paged { items, total: found.total })
}

/// The managed account `token` of `parent`.
pub async fn get(store: &dyn Store, parent: &AccountToken, token: &AccountToken) -> Result<ManagedView, ServiceError> {
    let found = store.get_managed_account(parent, token).await?.ok_or(ServiceError::NotFound("managed account"))?;
    one(store, parent, found).await
}

/// Creates a managed account of `parent` from a request's fields.
pub async fn create(
    store: &dyn Store,
    parent: &AccountToken,
    fields: ManagedAccountFields,
) -> Result<ManagedView, ServiceError> {
    let settings = ManagedAccountSettings::try_from(fields).map_err(ServiceError::Invalid)?;
    validate(store, parent, &settings).await?;
    let created = store.create_managed_account(parent, &settings).await?;
    one(store, parent, created).await
}

/// Changes the fields a request sets; the result is checked as a create would be.
pub async fn update(
    store: &dyn Store,
    parent: &AccountToken,
    token: &AccountToken,
    fields: ManagedAccountFields,
) -> Result<ManagedView, ServiceError> {
    let current = store.get_managed_account(parent, token).await?.ok_or(ServiceError::NotFound("managed account"))?;
    let settings = current.settings().update(fields).map_err(ServiceError::Invalid)?;
    validate(store, parent, &settings).await?;
    let updated = store
        .update_managed_account(parent, token, &settings)
        .await?
        .ok_or(ServiceError::NotFound("managed account"))?;
    one(store, parent, updated).await
}

/// Deletes a managed account with its tokens and workspaces.
pub async fn delete(store: &dyn Store, parent: &AccountToken, token: &AccountToken) -> Result<(), ServiceError> {
    if store.delete_managed_account(parent, token).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("managed account"))
    }
}

/// The rules a managed account runs, in order: its listed rules (those still existing) with the
/// parent's `apply_to_all` rules added at the end of their group. Two store reads.
pub async fn effective_rules_of(
    store: &dyn Store,
    parent: &AccountToken,
    listed: &[RuleToken],
) -> anyhow::Result<Vec<BillingRuleRow>> {
    let apply_to_all = store.apply_to_all_rules(parent).await?;
    let rules = store.get_billing_rules(parent, listed).await?;
    let groups = Groups::of(rules.iter().chain(&apply_to_all));
    let mut by_token: HashMap<RuleToken, BillingRuleRow> =
        rules.into_iter().chain(apply_to_all.iter().cloned()).map(|r| (r.token.clone(), r)).collect();
    let order = groups.effective(listed, &apply_to_all);
    Ok(order.into_iter().filter_map(|t| by_token.remove(&t)).collect())
}

/// Each rule's group, worked out once per rule however many accounts list it.
struct Groups(HashMap<RuleToken, RuleGroup>);

impl Groups {
    fn of<'a>(rules: impl Iterator<Item = &'a BillingRuleRow>) -> Groups {
        Groups(rules.map(|r| (r.token.clone(), r.columns.group)).collect())
    }

    /// The effective order for one account's list (rules deleted meanwhile drop out, as their delete detaches
    /// them anyway).
    fn effective(&self, listed: &[RuleToken], apply_to_all: &[BillingRuleRow]) -> Vec<RuleToken> {
        let with_group = |tokens: &mut dyn Iterator<Item = &RuleToken>| -> Vec<(RuleToken, RuleGroup)> {
            tokens.filter_map(|t| self.0.get(t).map(|g| (t.clone(), *g))).collect()
        };
        let listed = with_group(&mut listed.iter());
        let all = with_group(&mut apply_to_all.iter().map(|r| &r.token));
        effective_rules(&listed, &all)
    }
}

async fn one(store: &dyn Store, parent: &AccountToken, account: ManagedAccount) -> Result<ManagedView, ServiceError> {
    Ok(views(store, parent, vec![account]).await?.pop().expect("one view per account"))
}

/// Views of a page of accounts: the parent's `apply_to_all` rules and every listed rule, read once.
async fn views(
    store: &dyn Store,
    parent: &AccountToken,
    accounts: Vec<ManagedAccount>,
) -> anyhow::Result<Vec<ManagedView>> {
    let apply_to_all = store.apply_to_all_rules(parent).await?;
    let mut listed: Vec<RuleToken> = accounts.iter().flat_map(|a| a.rule_tokens.iter().cloned()).collect();
    listed.sort();
    listed.dedup();
    let rules = store.get_billing_rules(parent, &listed).await?;
    let groups = Groups::of(rules.iter().chain(&apply_to_all));
    Ok(accounts
        .into_iter()
        .map(|account| {
            let effective_rule_tokens = groups.effective(&account.rule_tokens, &apply_to_all);
            ManagedView { account, effective_rule_tokens }
        })
        .collect())
}

/// Checks that the caller may manage accounts and that every named integration and rule is its own,
/// with the rules in group order.
async fn validate(
    store: &dyn Store,
    parent: &AccountToken,
    settings: &ManagedAccountSettings,
) -> Result<(), ServiceError> {
    let caller = store.get_account(parent).await?.ok_or_else(|| anyhow::anyhow!("the caller's account vanished"))?;
    if caller.parent_account_token.is_some() {
        return Err(ServiceError::Forbidden("a managed account cannot have managed accounts".into()));
    }
    let mut errors = Vec::new();
    for t in &settings.integration_tokens {
        if store.get_integration(parent, t).await?.is_none() {
            errors.push(format!("access_credential_tokens: no integration {t} in this account"));
        }
    }
    if let Some(profile) = &settings.invoicing.billing_profile {
        if store.get_billing_profile(parent, profile).await?.is_none() {
            errors.push(format!("msp_billing_profile_token: no billing profile {profile} in this account"));
        }
    }
    let rules = store.get_billing_rules(parent, &settings.rule_tokens).await?;
    let groups = Groups::of(rules.iter());
    let mut ordered = Vec::with_capacity(settings.rule_tokens.len());
    for t in &settings.rule_tokens {
        match groups.0.get(t) {
            Some(g) => ordered.push((t.clone(), *g)),
            None => errors.push(format!("billing_rule_tokens: no billing rule {t} in this account")),
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    check_rule_order(&ordered).map_err(|e| ServiceError::Invalid(vec![e]))
}

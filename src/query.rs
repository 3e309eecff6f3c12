//! The costs query as both the API and `costd query` run it: parameters (a Vantage query string) checked
//! into a [`CostQuery`], and the caller's [`CostSource`]: which integrations' uploads it sees and which
//! billing rules shape them.

use chrono::{Datelike, NaiveDate, Utc};

use crate::engine::costs::{CostQuery, CostSource, DateBin, Settings, GROUPINGS};
use crate::engine::rules::compile::RuleStep;
use crate::engine::uploads::upload_path;
use crate::model::billing_rule::{effective_rules, group_of, RuleDefinition, RuleFields, RuleGroup};
use crate::store::{BillingRuleRow, PageRequest, Store};

/// Largest `limit` of `/v2/costs`.
pub const MAX_COSTS_LIMIT: u32 = 5000;
const DEFAULT_GROUPINGS: [&str; 3] = ["provider", "service", "account_id"];

/// Why a cost source could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The named workspace is not the caller's.
    #[error("workspace not found")]
    WorkspaceNotFound,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The rules a managed account runs, in order: its listed rules (those still existing) with the
/// parent's `apply_to_all` rules added at the end of their group. Each rule is read from the store once.
pub async fn effective_rules_of(
    store: &dyn Store,
    parent: &str,
    listed: &[String],
) -> anyhow::Result<Vec<BillingRuleRow>> {
    let mut rows: Vec<BillingRuleRow> = Vec::with_capacity(listed.len());
    for t in listed {
        // A rule deleted meanwhile is detached by its delete; skipping it here is the same outcome.
        rows.extend(store.get_billing_rule(parent, t).await?);
    }
    let apply_to_all = store.apply_to_all_rules(parent).await?;
    let groups = |rows: &[BillingRuleRow]| -> Vec<(String, RuleGroup)> {
        rows.iter().map(|r| (r.token.clone(), group_of(&r.columns))).collect()
    };
    let order = effective_rules(&groups(&rows), &groups(&apply_to_all));
    rows.extend(apply_to_all);
    Ok(order.into_iter().filter_map(|t| rows.iter().position(|r| r.token == t).map(|i| rows[i].clone())).collect())
}

/// The query string, checked; every problem is listed.
pub struct Params {
    pub query: CostQuery,
    pub workspace_token: Option<String>,
    pub page: PageRequest,
}

fn parse_bool(name: &str, v: &str, errors: &mut Vec<String>) -> Option<bool> {
    match v {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(format!("{name} must be true or false, got {v:?}"));
            None
        }
    }
}

pub fn parse_params(raw: &str) -> Result<Params, Vec<String>> {
    let mut errors = Vec::new();
    let today = Utc::now().date_naive();
    let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("valid date");
    let month_end =
        month_start.checked_add_months(chrono::Months::new(1)).expect("valid date").pred_opt().expect("valid date");
    let (mut start, mut end) = (month_start, month_end);
    let (mut groupings, mut date_bin, mut descending) = (None::<Vec<String>>, DateBin::Day, true);
    let (mut page, mut limit) = (1u32, 100u32);
    let mut settings = Settings::default();
    let (mut filter, mut workspace_token) = (None, None);

    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let v = value.trim();
        match key.as_ref() {
            "filter" if !v.is_empty() => match costs_filter(v) {
                Ok(e) => filter = Some(e),
                Err(e) => errors.push(e),
            },
            "filter" => {}
            "cost_report_token" => {
                errors.push("cost_report_token: cost reports are not supported yet; pass a VQL filter".into())
            }
            "workspace_token" => workspace_token = Some(v.to_string()),
            "start_date" | "end_date" => match NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d") {
                Ok(d) if key == "start_date" => start = d,
                Ok(d) => end = d,
                Err(_) => errors.push(format!("{key} must be a date like 2024-05-01, got {v:?}")),
            },
            "groupings" | "groupings[]" => {
                let list = groupings.get_or_insert_with(Vec::new);
                for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if GROUPINGS.iter().any(|(name, _)| *name == g) {
                        if !list.iter().any(|x| x == g) {
                            list.push(g.to_string());
                        }
                    } else if g == "tagged" || g.strip_prefix("tag:").is_some_and(|k| !k.is_empty()) {
                        if !list.iter().any(|x| x == g) {
                            list.push(g.to_string());
                        }
                    } else {
                        let valid: Vec<&str> = GROUPINGS.iter().map(|(n, _)| *n).collect();
                        errors.push(format!("groupings: unknown grouping {g:?}; valid: {}", valid.join(", ")));
                    }
                }
            }
            "date_bin" => match v.parse::<DateBin>() {
                Ok(b) => date_bin = b,
                Err(e) => errors.push(e),
            },
            "order" => match v {
                "asc" => descending = false,
                "desc" => descending = true,
                _ => errors.push(format!("order must be asc or desc, got {v:?}")),
            },
            "page" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => page = p,
                _ => errors.push(format!("page must be a whole number from 1, got {v:?}")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(l) if (1..=MAX_COSTS_LIMIT).contains(&l) => limit = l,
                _ => errors.push(format!("limit must be between 1 and {MAX_COSTS_LIMIT}, got {v:?}")),
            },
            "settings[include_credits]" => settings.include_credits = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_refunds]" => settings.include_refunds = parse_bool(&key, v, &mut errors).unwrap_or(false),
            "settings[include_discounts]" => {
                settings.include_discounts = parse_bool(&key, v, &mut errors).unwrap_or(true)
            }
            "settings[include_tax]" => settings.include_tax = parse_bool(&key, v, &mut errors).unwrap_or(true),
            _ => {}
        }
    }
    if end < start {
        errors.push(format!("end_date ({end}) must not be before start_date ({start})"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let groupings = groupings.unwrap_or_else(|| DEFAULT_GROUPINGS.iter().map(|g| g.to_string()).collect());
    Ok(Params {
        query: CostQuery { start, end, groupings, date_bin, descending, settings, filter },
        workspace_token,
        page: PageRequest { page, limit },
    })
}

fn costs_filter(v: &str) -> Result<datafusion::logical_expr::Expr, String> {
    crate::engine::vql::compile(v)
}

/// The costs `account` sees: for a managed account, its integrations' uploads (owned by its parent) with
/// its rules; for a top-level account, all its integrations' raw uploads. `workspace`, when given, must be
/// the caller's; a top-level account then sees the integrations in that workspace (or in none).
pub async fn cost_source(
    store: &dyn Store,
    data_dir: &std::path::Path,
    account: &str,
    workspace: Option<&str>,
) -> Result<CostSource, SourceError> {
    let acct = store.get_account(account).await?.ok_or_else(|| anyhow::anyhow!("no account {account}"))?;
    if let Some(ws) = workspace {
        store.get_workspace(account, ws).await?.ok_or(SourceError::WorkspaceNotFound)?;
    }
    let (owner, integrations, rules) = match acct.parent_account_token {
        Some(parent) => {
            let managed = store
                .get_managed_account(&parent, account)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a managed account without its parent link"))?;
            let mut rules = Vec::new();
            for row in effective_rules_of(store, &parent, &managed.rule_tokens).await? {
                let token = row.token;
                let rule = RuleDefinition::try_from(RuleFields::from(row.columns))
                    .map_err(|e| anyhow::anyhow!("stored rule {token} no longer parses: {}", e.join("; ")))?;
                rules.push(RuleStep { token, rule });
            }
            (parent, managed.integration_tokens, rules)
        }
        None => {
            let mut integrations = Vec::new();
            let mut page = 1;
            loop {
                let found = store.list_integrations(account, PageRequest { page, limit: 1000 }, None, None).await?;
                let done = found.items.len() < 1000;
                integrations.extend(
                    found
                        .items
                        .into_iter()
                        // An integration in no workspace shows in every workspace.
                        .filter(|i| {
                            workspace.is_none_or(|ws| {
                                i.workspace_tokens.is_empty() || i.workspace_tokens.iter().any(|w| w == ws)
                            })
                        })
                        .map(|i| i.token),
                );
                if done {
                    break;
                }
                page += 1;
            }
            (account.to_string(), integrations, Vec::new())
        }
    };
    let uploads = store.live_uploads(&owner, &integrations).await?;
    Ok(CostSource {
        currency: uploads.first().map(|u| u.currency.clone()).unwrap_or_else(|| "USD".into()),
        one_currency: uploads.windows(2).all(|pair| pair[0].currency == pair[1].currency),
        files: uploads.iter().map(|u| (u.integration_token.clone(), upload_path(data_dir, &u.token))).collect(),
        rules,
    })
}

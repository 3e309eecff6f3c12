//! Budgets and budget alerts: where each belongs (the report's workspace, or its children's), references
//! checked to be the caller's, what may be deleted, and a budget's performance (actual per period).
//!
//! A budget's actual for a period is its report's costs query (the report's filters, saved filters,
//! settings and workspace; its own dates and groupings do not matter) over the period's days up to today,
//! summed exactly; a hierarchical budget's is its children's, summed period by period. Both stores keep
//! budgets and alerts beside reports (`report_objects`, kinds `budget` and `budget_alert`).

use crate::service::ServiceError;
use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::amount::Amount;
use crate::model::budget::{BudgetAlertDefinition, BudgetAlertFields, BudgetDefinition, BudgetFields, BudgetPeriod};
use crate::model::cost_query::{Aggregate, CostQuery, DateBin};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::model::vql::Filter;
use crate::service::costs::{costs, CostsContext};
use crate::service::reports;
use crate::store::{PageRequest, ReportObject, ReportObjectFields, ReportObjectFilter, Store};

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// A stored object's definition, read (an unreadable one is an internal error naming it).
pub(crate) fn stored<T: serde::de::DeserializeOwned>(object: &ReportObject) -> Result<T> {
    serde_json::from_str(&object.definition).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "{} {} has an unreadable definition: {e}",
            object.kind.noun(),
            object.token
        ))
    })
}

pub fn budget_definition(budget: &ReportObject) -> Result<BudgetDefinition> {
    stored(budget)
}

pub fn alert_definition(alert: &ReportObject) -> Result<BudgetAlertDefinition> {
    stored(alert)
}

/// Creates (`token` none) or replaces an object of `kind` outside any folder: how budgets, alerts and
/// notifications are written.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn put<T: serde::Serialize>(
    store: &dyn Store,
    account: &AccountToken,
    kind: ViewKind,
    token: Option<&str>,
    workspace_token: String,
    title: String,
    definition: &T,
) -> Result<ReportObject> {
    let fields = ReportObjectFields {
        workspace_token,
        folder_token: None,
        title,
        definition: json(definition),
        saved_filter_tokens: Vec::new(),
    };
    match token {
        None => Ok(store.create_report_object(account, kind, &fields).await?),
        Some(token) => {
            store.update_report_object(account, kind, token, &fields).await?.ok_or(ServiceError::NotFound(kind.noun()))
        }
    }
}

/// Every object of `kind` in the account (budgets and alerts are few per account: a list, not a query).
pub async fn all(store: &dyn Store, account: &AccountToken, kind: ViewKind) -> Result<Vec<ReportObject>> {
    let mut out = Vec::new();
    for page in 1.. {
        let found = store
            .list_report_objects(account, kind, &ReportObjectFilter::default(), PageRequest { page, limit: 1000 })
            .await?;
        let done = found.items.len() < 1000;
        out.extend(found.items);
        if done {
            break;
        }
    }
    Ok(out)
}

fn name(value: Option<&str>, current: Option<&str>, errors: &mut Vec<String>) -> String {
    match value.map(str::trim) {
        Some("") => errors.push("name must not be blank".into()),
        Some(n) if n.chars().count() > 255 => errors.push("name is longer than 255 characters".into()),
        Some(n) => return n.to_string(),
        None if current.is_none() => errors.push("name is required".into()),
        None => {}
    }
    current.unwrap_or_default().to_string()
}

/// The budget's workspace, checked with its report or children.
async fn placement(
    store: &dyn Store,
    account: &AccountToken,
    token: Option<&str>,
    definition: &BudgetDefinition,
    workspace_given: Option<&str>,
    current_workspace: Option<&str>,
    errors: &mut Vec<String>,
) -> Result<String> {
    let mut workspace: Option<String> = None;
    if let Some(report) = &definition.cost_report_token {
        match store.get_report_object(account, ViewKind::CostReport, report).await? {
            Some(r) => workspace = Some(r.workspace_token),
            None => errors.push(format!("cost_report_token: no cost report {report} in this account")),
        }
    }
    for child in &definition.child_budget_tokens {
        if Some(child.as_str()) == token {
            errors.push("child_budget_tokens: a budget cannot contain itself".into());
            continue;
        }
        match store.get_report_object(account, ViewKind::Budget, child).await? {
            None => errors.push(format!("child_budget_tokens: no budget {child} in this account")),
            Some(c) => {
                if budget_definition(&c)?.is_hierarchical() {
                    errors.push(format!(
                        "child_budget_tokens: {child} has children of its own; a hierarchical budget holds leaf budgets"
                    ));
                }
                match &workspace {
                    Some(w) if *w != c.workspace_token => errors
                        .push(format!("child_budget_tokens: {child} is in workspace {}, not {w}", c.workspace_token)),
                    Some(_) => {}
                    None => workspace = Some(c.workspace_token),
                }
            }
        }
    }
    // A leaf budget used as a child may not become hierarchical (a budget stays one level deep).
    if let (Some(token), true) = (token, definition.is_hierarchical()) {
        for parent in all(store, account, ViewKind::Budget).await? {
            if budget_definition(&parent)?.child_budget_tokens.iter().any(|c| c == token) {
                errors.push(format!(
                    "child_budget_tokens: this budget is a child of {}; it cannot have children",
                    parent.token
                ));
            }
        }
    }
    let given = workspace_given.map(str::trim).filter(|w| !w.is_empty());
    match (workspace, given) {
        (Some(w), Some(g)) if w != g => {
            errors.push(format!(
                "workspace_token: the budget's costs are in workspace {w}; leave it out or pass that one"
            ));
            Ok(w)
        }
        (Some(w), _) => Ok(w),
        (None, _) => Ok(current_workspace.unwrap_or_default().to_string()),
    }
}

pub async fn create(store: &dyn Store, account: &AccountToken, fields: BudgetFields) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let title = name(fields.name.as_deref(), None, &mut errors);
    let definition = BudgetDefinition::overlay(None, &fields).unwrap_or_else(|e| {
        errors.extend(e);
        BudgetDefinition::default()
    });
    let workspace =
        placement(store, account, None, &definition, fields.workspace_token.as_deref(), None, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    put(store, account, ViewKind::Budget, None, workspace, title, &definition).await
}

pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: BudgetFields,
) -> Result<ReportObject> {
    let current = reports::get(store, account, ViewKind::Budget, token).await?;
    let mut errors = Vec::new();
    let title = name(fields.name.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.is_some() {
        errors.push("workspace_token is set when a budget is created (it follows its report)".into());
    }
    let definition = BudgetDefinition::overlay(Some(&budget_definition(&current)?), &fields).unwrap_or_else(|e| {
        errors.extend(e);
        BudgetDefinition::default()
    });
    let workspace =
        placement(store, account, Some(token), &definition, None, Some(&current.workspace_token), &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    put(store, account, ViewKind::Budget, Some(token), workspace, title, &definition).await
}

/// Deletes a budget that no hierarchical budget holds and no alert watches (409 naming them otherwise).
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    reports::get(store, account, ViewKind::Budget, token).await?;
    let mut users = Vec::new();
    for parent in all(store, account, ViewKind::Budget).await? {
        if budget_definition(&parent)?.child_budget_tokens.iter().any(|c| c == token) {
            users.push(format!("budget {}", parent.token));
        }
    }
    for alert in all(store, account, ViewKind::BudgetAlert).await? {
        if alert_definition(&alert)?.budget_tokens.iter().any(|b| b == token) {
            users.push(format!("budget alert {}", alert.token));
        }
    }
    if !users.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "the budget is used by {}; remove it from them first",
            users.join(", ")
        )));
    }
    reports::delete(store, account, ViewKind::Budget, token).await
}

/// The alerts watching each budget of the account.
pub async fn alerts_by_budget(store: &dyn Store, account: &AccountToken) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in all(store, account, ViewKind::BudgetAlert).await? {
        for budget in alert_definition(&alert)?.budget_tokens {
            out.entry(budget).or_default().push(alert.token.clone());
        }
    }
    Ok(out)
}

/// One period of a budget with what was spent in it up to today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodPerformance {
    pub period: BudgetPeriod,
    pub actual: Amount,
}

/// A budget's periods (a hierarchical budget's: its children's, summed by period) and its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    pub periods: Vec<PeriodPerformance>,
    pub currency: String,
}

/// A leaf budget's actuals for `periods`: one costs query by day over their days up to `today`.
async fn leaf_actuals(
    ctx: &CostsContext,
    account: &AccountToken,
    definition: &BudgetDefinition,
    periods: &[BudgetPeriod],
    today: NaiveDate,
) -> Result<Performance> {
    let mut out: Vec<PeriodPerformance> =
        periods.iter().map(|p| PeriodPerformance { period: *p, actual: Amount::ZERO }).collect();
    let (Some(first), Some(last), Some(report)) = (periods.first(), periods.last(), &definition.cost_report_token)
    else {
        return Ok(Performance { periods: out, currency: "USD".into() });
    };
    let end = last.end.min(today);
    if end < first.start {
        return Ok(Performance { periods: out, currency: "USD".into() });
    }
    let defaults = reports::report_defaults(ctx.store.as_ref(), account, report, today).await?;
    let query = CostQuery {
        start: first.start,
        end,
        groupings: Vec::new(),
        date_bin: DateBin::Day,
        descending: false,
        settings: defaults.settings.engine(),
        aggregate: Aggregate::Cost,
        filter: Filter::all(defaults.filters),
    };
    let answer = costs(ctx, account, defaults.workspace.as_deref(), &query).await?;
    let currency = answer.single_currency()?;
    for row in &answer.result.rows {
        if let Some(p) = out.iter_mut().find(|p| p.period.contains(row.accrued_at)) {
            p.actual = p.actual.checked_add(row.amount).ok_or_else(|| {
                ServiceError::unprocessable("a budget period's actual does not fit Decimal128(38, 18)")
            })?;
        }
    }
    Ok(Performance { periods: out, currency })
}

/// A budget's performance on `today`, for its periods that `wanted` keeps (all, or the one holding today).
pub async fn performance(
    ctx: &CostsContext,
    account: &AccountToken,
    budget: &ReportObject,
    today: NaiveDate,
    wanted: impl Fn(&BudgetPeriod) -> bool,
) -> Result<Performance> {
    let definition = budget_definition(budget)?;
    if !definition.is_hierarchical() {
        let periods: Vec<BudgetPeriod> = definition.periods.iter().copied().filter(|p| wanted(p)).collect();
        return leaf_actuals(ctx, account, &definition, &periods, today).await;
    }
    // Children's periods, summed where they are the same days.
    let mut summed: BTreeMap<(NaiveDate, NaiveDate), (Amount, Amount)> = BTreeMap::new();
    let mut currency = None;
    for child in &definition.child_budget_tokens {
        let Some(c) = ctx.store.get_report_object(account, ViewKind::Budget, child).await? else { continue };
        let child_definition = budget_definition(&c)?;
        let periods: Vec<BudgetPeriod> = child_definition.periods.iter().copied().filter(|p| wanted(p)).collect();
        let p = leaf_actuals(ctx, account, &child_definition, &periods, today).await?;
        currency.get_or_insert(p.currency);
        for one in p.periods {
            let slot = summed.entry((one.period.start, one.period.end)).or_insert((Amount::ZERO, Amount::ZERO));
            let overflow =
                || ServiceError::unprocessable("a hierarchical budget's sum does not fit Decimal128(38, 18)");
            slot.0 = slot.0.checked_add(one.period.amount).ok_or_else(overflow)?;
            slot.1 = slot.1.checked_add(one.actual).ok_or_else(overflow)?;
        }
    }
    Ok(Performance {
        periods: summed
            .into_iter()
            .map(|((start, end), (amount, actual))| PeriodPerformance {
                period: BudgetPeriod { start, end, amount },
                actual,
            })
            .collect(),
        currency: currency.unwrap_or_else(|| "USD".into()),
    })
}

/// The forecast of `period`'s days after `today` for `budget` (a hierarchical budget's: its children's that
/// have a period of the same days, summed): what a `based_on: forecast` alert adds to the actual so far.
/// The forecast is the report's (`service::forecast`), so the console, the forecast endpoint and alerts
/// agree to the digit.
pub async fn forecast_rest(
    ctx: &CostsContext,
    account: &AccountToken,
    budget: &ReportObject,
    period: &BudgetPeriod,
    today: NaiveDate,
) -> Result<Amount> {
    let Some(from) = today.succ_opt().filter(|d| *d <= period.end) else { return Ok(Amount::ZERO) };
    let from = from.max(period.start);
    let definition = budget_definition(budget)?;
    let mut reports = Vec::new();
    if definition.is_hierarchical() {
        for child in &definition.child_budget_tokens {
            let Some(c) = ctx.store.get_report_object(account, ViewKind::Budget, child).await? else { continue };
            let d = budget_definition(&c)?;
            if d.periods.iter().any(|p| (p.start, p.end) == (period.start, period.end)) {
                reports.extend(d.cost_report_token);
            }
        }
    } else {
        reports.extend(definition.cost_report_token);
    }
    let mut sum = Amount::ZERO;
    for report in reports {
        let f = crate::service::forecast::forecast(
            ctx,
            account,
            &report,
            today,
            Some(from),
            Some(period.end),
            Some("all"),
            Some("all"),
        )
        .await
        .map_err(|e| match e {
            // The forecast's dates are the budget's own: a refusal of them is costd's fault, not the caller's.
            ServiceError::Invalid(problems) => {
                ServiceError::Internal(anyhow::anyhow!("budget {}: {}", budget.token, problems.join("; ")))
            }
            e => e,
        })?;
        for day in f.days() {
            sum = sum.checked_add(day.amount).ok_or_else(|| {
                ServiceError::unprocessable("a budget period's forecast does not fit Decimal128(38, 18)")
            })?;
        }
    }
    Ok(sum)
}

/// The periods a budget shows: its own, or (hierarchical) its children's summed, without actuals.
pub async fn periods_of(store: &dyn Store, account: &AccountToken, budget: &ReportObject) -> Result<Vec<BudgetPeriod>> {
    let definition = budget_definition(budget)?;
    if !definition.is_hierarchical() {
        return Ok(definition.periods);
    }
    let mut summed: BTreeMap<(NaiveDate, NaiveDate), Amount> = BTreeMap::new();
    for child in &definition.child_budget_tokens {
        if let Some(c) = store.get_report_object(account, ViewKind::Budget, child).await? {
            for p in budget_definition(&c)?.periods {
                let slot = summed.entry((p.start, p.end)).or_insert(Amount::ZERO);
                *slot = slot.checked_add(p.amount).unwrap_or(*slot);
            }
        }
    }
    Ok(summed.into_iter().map(|((start, end), amount)| BudgetPeriod { start, end, amount }).collect())
}

async fn check_budgets(
    store: &dyn Store,
    account: &AccountToken,
    tokens: &[String],
    errors: &mut Vec<String>,
) -> Result<()> {
    for token in tokens {
        if store.get_report_object(account, ViewKind::Budget, token).await?.is_none() {
            errors.push(format!("budget_tokens: no budget {token} in this account"));
        }
    }
    Ok(())
}

/// What an alert is titled in the store (alerts have no name in Vantage's API).
fn alert_title(d: &BudgetAlertDefinition) -> String {
    format!("{}% of {}", d.threshold, d.budget_tokens.join(", "))
}

pub async fn create_alert(
    store: &dyn Store,
    account: &AccountToken,
    fields: BudgetAlertFields,
) -> Result<ReportObject> {
    let definition = BudgetAlertDefinition::overlay(None, &fields).map_err(bad)?;
    let mut errors = Vec::new();
    check_budgets(store, account, &definition.budget_tokens, &mut errors).await?;
    crate::service::users::check_tokens(store, account, &definition.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    let first = reports::get(store, account, ViewKind::Budget, &definition.budget_tokens[0]).await?;
    put(store, account, ViewKind::BudgetAlert, None, first.workspace_token, alert_title(&definition), &definition).await
}

pub async fn update_alert(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: BudgetAlertFields,
) -> Result<ReportObject> {
    let current = reports::get(store, account, ViewKind::BudgetAlert, token).await?;
    let definition = BudgetAlertDefinition::overlay(Some(&alert_definition(&current)?), &fields).map_err(bad)?;
    let mut errors = Vec::new();
    check_budgets(store, account, &definition.budget_tokens, &mut errors).await?;
    crate::service::users::check_tokens(store, account, &definition.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    put(
        store,
        account,
        ViewKind::BudgetAlert,
        Some(token),
        current.workspace_token,
        alert_title(&definition),
        &definition,
    )
    .await
}

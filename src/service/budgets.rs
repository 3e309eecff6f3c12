//! Budgets and budget alerts: where each belongs (the report's workspace, or its children's), references
//! checked to be the caller's, what may be deleted, and a budget's performance (actual per period).
//!
//! A budget's actual for a period is its report's costs query (the report's filters, saved filters,
//! settings and workspace; its own dates and groupings do not matter) over the period's days up to today,
//! summed exactly; a hierarchical budget's is its children's, summed period by period. Budgets and alerts
//! are records of their own tables (`store::wing`): a budget's children and an alert's budgets are foreign
//! keys, so a budget in use is not deleted (409 naming its users).

use crate::service::ServiceError;
use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::amount::Amount;
use crate::model::budget::{
    Budget, BudgetAlert, BudgetAlertDefinition, BudgetAlertFields, BudgetDefinition, BudgetFields, BudgetPeriod,
};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::costs::CostsContext;
use crate::service::records;
use crate::service::series::{report_series, By, SeriesQuery};
use crate::store::wing::{BudgetAlerts, Budgets, RecordFilter};
use crate::store::Store;

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
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
        match store.record::<Budgets>(account, child).await? {
            None => errors.push(format!("child_budget_tokens: no budget {child} in this account")),
            Some(c) => {
                if c.definition.is_hierarchical() {
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
        let filter = RecordFilter { linked: Some(("budget_children", token.to_string())), ..Default::default() };
        for parent in store.all_records::<Budgets>(account, &filter).await? {
            errors.push(format!(
                "child_budget_tokens: this budget is a child of {}; it cannot have children",
                parent.token
            ));
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

pub async fn create(store: &dyn Store, account: &AccountToken, fields: BudgetFields) -> Result<Budget> {
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
    records::put::<Budgets>(store, account, None, workspace, title, &definition).await
}

pub async fn update(store: &dyn Store, account: &AccountToken, token: &str, fields: BudgetFields) -> Result<Budget> {
    let current = records::get::<Budgets>(store, account, token).await?;
    let mut errors = Vec::new();
    let title = name(fields.name.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.is_some() {
        errors.push("workspace_token is set when a budget is created (it follows its report)".into());
    }
    let definition = BudgetDefinition::overlay(Some(&current.definition), &fields).unwrap_or_else(|e| {
        errors.extend(e);
        BudgetDefinition::default()
    });
    let workspace =
        placement(store, account, Some(token), &definition, None, Some(&current.workspace_token), &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    records::put::<Budgets>(store, account, Some(token), workspace, title, &definition).await
}

/// Deletes a budget that no hierarchical budget holds and no alert watches (the foreign keys refuse it
/// otherwise: 409 naming them).
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    records::delete::<Budgets>(store, account, token).await
}

/// The alerts watching each budget of the account.
pub async fn alerts_by_budget(store: &dyn Store, account: &AccountToken) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in records::all::<BudgetAlerts>(store, account).await? {
        for budget in alert.definition.budget_tokens {
            out.entry(budget).or_default().push(alert.token.to_string());
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
    let query = SeriesQuery { start: first.start, end, by: By::Whole, usage_only: false };
    let series = report_series(ctx, account, report, today, &query).await?;
    let by_period = series.sum_by("a budget period's actual", |p| out.iter().position(|o| o.period.contains(p.day)))?;
    for (i, actual) in by_period {
        out[i].actual = actual;
    }
    let currency = series.currency;
    Ok(Performance { periods: out, currency })
}

/// A budget's performance on `today`, for its periods that `wanted` keeps (all, or the one holding today).
pub async fn performance(
    ctx: &CostsContext,
    account: &AccountToken,
    budget: &Budget,
    today: NaiveDate,
    wanted: impl Fn(&BudgetPeriod) -> bool,
) -> Result<Performance> {
    let definition = &budget.definition;
    if !definition.is_hierarchical() {
        let periods: Vec<BudgetPeriod> = definition.periods.iter().copied().filter(|p| wanted(p)).collect();
        return leaf_actuals(ctx, account, definition, &periods, today).await;
    }
    // Children's periods, summed where they are the same days.
    let mut summed: BTreeMap<(NaiveDate, NaiveDate), (Amount, Amount)> = BTreeMap::new();
    let mut currency = None;
    for c in children(ctx.store.as_ref(), account, definition).await? {
        let child_definition = c.definition;
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
    budget: &Budget,
    period: &BudgetPeriod,
    today: NaiveDate,
) -> Result<Amount> {
    let Some(from) = today.succ_opt().filter(|d| *d <= period.end) else { return Ok(Amount::ZERO) };
    let from = from.max(period.start);
    let definition = &budget.definition;
    let mut reports = Vec::new();
    if definition.is_hierarchical() {
        for c in children(ctx.store.as_ref(), account, definition).await? {
            let d = c.definition;
            if d.periods.iter().any(|p| (p.start, p.end) == (period.start, period.end)) {
                reports.extend(d.cost_report_token);
            }
        }
    } else {
        reports.extend(definition.cost_report_token.clone());
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
pub async fn periods_of(store: &dyn Store, account: &AccountToken, budget: &Budget) -> Result<Vec<BudgetPeriod>> {
    Ok(periods_of_page(store, account, std::slice::from_ref(budget)).await?.pop().unwrap_or_default())
}

/// [`periods_of`] for each of a page of budgets, reading the account's budgets at most once.
pub async fn periods_of_page(
    store: &dyn Store,
    account: &AccountToken,
    page: &[Budget],
) -> Result<Vec<Vec<BudgetPeriod>>> {
    let by_token: std::collections::HashMap<String, Budget> = if page.iter().any(|b| b.definition.is_hierarchical()) {
        records::all::<Budgets>(store, account).await?.into_iter().map(|b| (b.token.to_string(), b)).collect()
    } else {
        Default::default()
    };
    let mut out = Vec::with_capacity(page.len());
    for budget in page {
        let definition = &budget.definition;
        if !definition.is_hierarchical() {
            out.push(definition.periods.clone());
            continue;
        }
        let mut summed: BTreeMap<(NaiveDate, NaiveDate), Amount> = BTreeMap::new();
        for c in definition.child_budget_tokens.iter().filter_map(|t| by_token.get(t)) {
            for p in &c.definition.periods {
                let slot = summed.entry((p.start, p.end)).or_insert(Amount::ZERO);
                *slot = slot.checked_add(p.amount).ok_or_else(|| {
                    ServiceError::unprocessable("a hierarchical budget's sum does not fit Decimal128(38, 18)")
                })?;
            }
        }
        out.push(summed.into_iter().map(|((start, end), amount)| BudgetPeriod { start, end, amount }).collect());
    }
    Ok(out)
}

async fn check_budgets(
    store: &dyn Store,
    account: &AccountToken,
    tokens: &[String],
    errors: &mut Vec<String>,
) -> Result<()> {
    for token in tokens {
        if store.record::<Budgets>(account, token).await?.is_none() {
            errors.push(format!("budget_tokens: no budget {token} in this account"));
        }
    }
    Ok(())
}

/// What an alert is titled in the store (alerts have no name in Vantage's API).
fn alert_title(d: &BudgetAlertDefinition) -> String {
    format!("{}% of {}", d.threshold, d.budget_tokens.join(", "))
}

pub async fn create_alert(store: &dyn Store, account: &AccountToken, fields: BudgetAlertFields) -> Result<BudgetAlert> {
    let definition = BudgetAlertDefinition::overlay(None, &fields).map_err(bad)?;
    let mut errors = Vec::new();
    check_budgets(store, account, &definition.budget_tokens, &mut errors).await?;
    crate::service::users::check_tokens(store, account, &definition.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    let first = records::get::<Budgets>(store, account, &definition.budget_tokens[0]).await?;
    records::put::<BudgetAlerts>(store, account, None, first.workspace_token, alert_title(&definition), &definition)
        .await
}

pub async fn update_alert(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: BudgetAlertFields,
) -> Result<BudgetAlert> {
    let current = records::get::<BudgetAlerts>(store, account, token).await?;
    let definition = BudgetAlertDefinition::overlay(Some(&current.definition), &fields).map_err(bad)?;
    let mut errors = Vec::new();
    check_budgets(store, account, &definition.budget_tokens, &mut errors).await?;
    crate::service::users::check_tokens(store, account, &definition.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    records::put::<BudgetAlerts>(
        store,
        account,
        Some(token),
        current.workspace_token,
        alert_title(&definition),
        &definition,
    )
    .await
}

/// A hierarchical budget's children, in its order (one read; a child deleted meanwhile is left out).
async fn children(store: &dyn Store, account: &AccountToken, definition: &BudgetDefinition) -> Result<Vec<Budget>> {
    if definition.child_budget_tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut all: std::collections::HashMap<String, Budget> =
        records::all::<Budgets>(store, account).await?.into_iter().map(|b| (b.token.to_string(), b)).collect();
    Ok(definition.child_budget_tokens.iter().filter_map(|t| all.remove(t)).collect())
}

/// A page of the account's budget alerts, in one workspace and watching one budget when those are named.
pub async fn list_alerts(
    store: &dyn Store,
    account: &AccountToken,
    workspace_token: Option<&str>,
    budget_token: Option<&str>,
    page: crate::store::PageRequest,
) -> Result<crate::store::Paged<BudgetAlert>> {
    let text = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let filter = RecordFilter {
        workspace_token: text(workspace_token),
        linked: text(budget_token).map(|b| ("budget_alert_budgets", b)),
        ..Default::default()
    };
    Ok(store.records::<BudgetAlerts>(account, &filter, page).await?)
}

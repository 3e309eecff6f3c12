//! Billing rules compiled into DataFusion plan steps over the costs table (DESIGN.md "Billing rules"):
//! exclusion → filter, adjustment → CASE projection, custom UPDATE → CASE projection per assigned column,
//! credit/charge → monthly line items unioned in. Every amount is cast back to `Decimal128(38, 18)` after
//! each step (Arrow rounds half away from zero when it drops decimal places), so nothing overflows or
//! silently widens.

use std::ops::Not;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray};
use chrono::{Datelike, NaiveDate};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{binary_expr, cast, col, lit, when, Expr, ExprSchemable, Operator};
use datafusion::prelude::SessionContext;
use rust_decimal::Decimal;
use sqlparser::ast::{self as sql, BinaryOperator, UnaryOperator};

use super::custom_sql::{CustomStatement, RuleGroup};
use crate::engine::ingest::parse::days_since_epoch;
use crate::engine::schema::{amount_type, col as c, AMOUNT_SCALE};
use crate::model::billing_rule::{BillingRule, LineItem, RuleDefinition};

type Result<T> = std::result::Result<T, DataFusionError>;

/// A rule to run, with the token that names its inserted rows.
#[derive(Debug, Clone)]
pub struct RuleStep {
    pub token: String,
    pub rule: RuleDefinition,
}

impl RuleStep {
    /// The group the step runs in.
    pub fn group(&self) -> RuleGroup {
        match &self.rule.rule {
            BillingRule::Custom(sql) => sql.group(),
            BillingRule::Credit(_) | BillingRule::Charge(_) => RuleGroup::MonthlyInsert,
            _ => RuleGroup::Transform,
        }
    }
}

/// The query's date range (inclusive), which credits and charges need to know which months to add.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

fn date_lit(d: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some(days_since_epoch(d))))
}

/// `accrued_at` within the rule's start/end dates (or `true` when it has none).
fn in_rule_range(rule: &RuleDefinition) -> Expr {
    let mut cond = lit(true);
    if let Some(s) = rule.start_date {
        cond = cond.and(col(c::ACCRUED_AT).gt_eq(date_lit(s)));
    }
    if let Some(e) = rule.end_date {
        cond = cond.and(col(c::ACCRUED_AT).lt_eq(date_lit(e)));
    }
    cond
}

/// An exact decimal literal with as few digits as it needs, so `amount × literal` stays within 38 digits.
fn decimal_lit(d: Decimal) -> Expr {
    let d = d.normalize();
    let digits = d.mantissa().unsigned_abs().to_string().len().max(d.scale() as usize + 1) as u8;
    lit(ScalarValue::Decimal128(Some(d.mantissa()), digits.min(38), d.scale() as i8))
}

fn to_amount(e: Expr) -> Expr {
    cast(e, amount_type())
}

/// The costs columns custom SQL may name, mapped to the stored schema.
fn column_of(name: &str) -> &'static str {
    match name {
        "accrued_at" => c::ACCRUED_AT,
        "amount" => c::AMOUNT,
        "currency" => c::CURRENCY,
        "usage_amount" => c::USAGE_AMOUNT,
        "usage_unit" => c::USAGE_UNIT,
        "provider" => "provider",
        "billing_account_id" => c::BILLING_ACCOUNT_ID,
        "account_id" => c::ACCOUNT_ID,
        "service" => c::SERVICE,
        "region" => c::REGION,
        "resource_id" => c::RESOURCE_ID,
        "cost_category" => c::COST_CATEGORY,
        "cost_sub_category" => c::COST_SUBCATEGORY,
        _ => c::CHARGE_TYPE, // cost_type: the grammar admits no other name
    }
}

/// Applies the rules, in order, to `costs` (rows already limited to `window`).
pub fn apply_rules(ctx: &SessionContext, mut costs: DataFrame, rules: &[RuleStep], window: Window, currency: &str) -> Result<DataFrame> {
    for step in rules {
        costs = apply_rule(ctx, costs, step, window, currency)?;
    }
    Ok(costs)
}

fn apply_rule(ctx: &SessionContext, costs: DataFrame, step: &RuleStep, window: Window, currency: &str) -> Result<DataFrame> {
    let rule = &step.rule;
    match &rule.rule {
        // SELECT * FROM costs WHERE NOT (lower(charge_type) = lower('X') AND accrued_at IN range)
        BillingRule::Exclusion { charge_type } => {
            let hit = f::lower(col(c::CHARGE_TYPE)).eq(lit(charge_type.to_lowercase())).and(in_rule_range(rule));
            costs.filter(hit.not())
        }
        // SELECT …, CASE WHEN in range THEN amount * pct / 100 ELSE amount END AS amount FROM costs
        BillingRule::Adjustment { percentage } => {
            let factor = decimal_lit(*percentage / Decimal::from(100));
            let adjusted = when(in_rule_range(rule), to_amount(col(c::AMOUNT) * factor)).otherwise(col(c::AMOUNT))?;
            replace_columns(costs, vec![(c::AMOUNT, adjusted)])
        }
        BillingRule::Credit(item) => union_line_items(ctx, costs, step, item, true, window, currency),
        BillingRule::Charge(item) => union_line_items(ctx, costs, step, item, false, window, currency),
        BillingRule::Custom(custom) => {
            let mut costs = costs;
            for statement in custom.statements() {
                costs = match statement {
                    // SELECT …, CASE WHEN cond THEN expr ELSE col END AS col, … FROM costs
                    CustomStatement::Update { assignments, selection } => {
                        let cond = match selection {
                            Some(s) => to_expr(s)?.and(in_rule_range(rule)),
                            None => in_rule_range(rule),
                        };
                        let schema = costs.schema().clone();
                        let mut replaced = Vec::with_capacity(assignments.len());
                        for (column, value) in assignments {
                            let target = column_of(column);
                            let ty = col(target).get_type(&schema)?;
                            let new = when(cond.clone(), cast(to_expr(value)?, ty)).otherwise(col(target))?;
                            replaced.push((target, new));
                        }
                        replace_columns(costs, replaced)?
                    }
                    CustomStatement::InsertValues { .. } | CustomStatement::InsertSelect { .. } => {
                        return Err(DataFusionError::NotImplemented(
                            "custom INSERT rules are accepted but not yet applied by the costs engine".into(),
                        ))
                    }
                };
            }
            Ok(costs)
        }
    }
}

/// Re-projects every column, replacing the named ones (all computed from the row before the change, as an
/// SQL UPDATE does).
fn replace_columns(costs: DataFrame, replaced: Vec<(&str, Expr)>) -> Result<DataFrame> {
    let names: Vec<String> = costs.schema().fields().iter().map(|f| f.name().clone()).collect();
    let exprs: Vec<Expr> = names
        .iter()
        .map(|name| match replaced.iter().find(|(n, _)| n == name) {
            Some((_, e)) => e.clone().alias(name.as_str()),
            None => col(name.as_str()),
        })
        .collect();
    costs.select(exprs)
}

/// First days of the months in `window` that the rule covers.
fn months(rule: &RuleDefinition, window: Window) -> Vec<NaiveDate> {
    let first = |d: NaiveDate| NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("valid month");
    let start = rule.start_date.map_or(window.start, |s| s.max(window.start));
    let end = rule.end_date.map_or(window.end, |e| e.min(window.end));
    let mut out = Vec::new();
    let mut m = first(start);
    while m <= end {
        // A month's line item is accrued on its 1st, so it shows when the query covers that day.
        if m >= window.start && m >= first(rule.start_date.unwrap_or(m)) {
            out.push(m);
        }
        m = m.checked_add_months(chrono::Months::new(1)).expect("months stay in range");
    }
    out
}

/// SELECT * FROM costs UNION ALL (one credit or fee line item per covered month)
fn union_line_items(
    ctx: &SessionContext,
    costs: DataFrame,
    step: &RuleStep,
    item: &LineItem,
    credit: bool,
    window: Window,
    currency: &str,
) -> Result<DataFrame> {
    let months = months(&step.rule, window);
    if months.is_empty() {
        return Ok(costs);
    }
    let n = months.len();
    let scale = 10i128.pow(AMOUNT_SCALE as u32);
    let mut unscaled = item.amount.abs();
    unscaled.rescale(AMOUNT_SCALE as u32);
    let amount = unscaled.mantissa() * if credit { -1 } else { 1 };
    debug_assert!(amount.abs() < 10i128.pow(38) / scale * scale);
    let schema = costs.schema().as_arrow().clone();
    let text = |v: &str| Arc::new(StringArray::from(vec![Some(v); n])) as ArrayRef;
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            c::ACCRUED_AT => Arc::new(Date32Array::from(months.iter().map(|m| days_since_epoch(*m)).collect::<Vec<_>>())) as ArrayRef,
            c::AMOUNT => Arc::new(
                Decimal128Array::from(vec![amount; n]).with_precision_and_scale(38, AMOUNT_SCALE).expect("valid decimal"),
            ) as ArrayRef,
            c::CURRENCY => text(currency),
            c::CHARGE_TYPE => text(if credit { "Credit" } else { "Fee" }),
            c::SERVICE => text(&item.service),
            c::COST_CATEGORY => text(&item.category),
            c::COST_SUBCATEGORY => text(&item.sub_category),
            c::RESOURCE_ID => text(&step.token),
            "provider" => text("billing_rule"),
            _ => arrow::array::new_null_array(field.data_type(), n),
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(schema), columns)?;
    costs.union(ctx.read_batch(batch)?)
}

/// A checked custom-SQL expression as a DataFusion expression.
pub fn to_expr(e: &sql::Expr) -> Result<Expr> {
    let unsupported = |what: &dyn std::fmt::Display| DataFusionError::Plan(format!("cannot compile {what}"));
    Ok(match e {
        sql::Expr::Identifier(id) => col(column_of(&id.value.to_ascii_lowercase())),
        sql::Expr::CompoundIdentifier(ids) => {
            col(column_of(&ids.last().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()))
        }
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => lit(i),
                Err(_) => decimal_lit(
                    Decimal::from_scientific(n).or_else(|_| n.parse::<Decimal>()).map_err(|_| unsupported(n))?,
                ),
            },
            sql::Value::SingleQuotedString(s) => lit(s.clone()),
            sql::Value::Boolean(b) => lit(*b),
            sql::Value::Null => lit(ScalarValue::Null),
            other => return Err(unsupported(other)),
        },
        sql::Expr::Nested(inner) => to_expr(inner)?,
        sql::Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Plus => Operator::Plus,
                BinaryOperator::Minus => Operator::Minus,
                BinaryOperator::Multiply => Operator::Multiply,
                BinaryOperator::Divide => Operator::Divide,
                BinaryOperator::Modulo => Operator::Modulo,
                BinaryOperator::Gt => Operator::Gt,
                BinaryOperator::Lt => Operator::Lt,
                BinaryOperator::GtEq => Operator::GtEq,
                BinaryOperator::LtEq => Operator::LtEq,
                BinaryOperator::Eq => Operator::Eq,
                BinaryOperator::NotEq => Operator::NotEq,
                BinaryOperator::And => Operator::And,
                BinaryOperator::Or => Operator::Or,
                other => return Err(unsupported(other)),
            };
            binary_expr(to_expr(left)?, op, to_expr(right)?)
        }
        sql::Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => to_expr(expr)?.not(),
            UnaryOperator::Minus => Expr::Negative(Box::new(to_expr(expr)?)),
            UnaryOperator::Plus => to_expr(expr)?,
            other => return Err(unsupported(other)),
        },
        sql::Expr::IsNull(inner) => to_expr(inner)?.is_null(),
        sql::Expr::IsNotNull(inner) => to_expr(inner)?.is_not_null(),
        sql::Expr::Like { negated, expr, pattern, .. } => {
            let like = to_expr(expr)?.like(to_expr(pattern)?);
            if *negated {
                like.not()
            } else {
                like
            }
        }
        sql::Expr::InList { expr, list, negated } => {
            to_expr(expr)?.in_list(list.iter().map(to_expr).collect::<Result<Vec<_>>>()?, *negated)
        }
        sql::Expr::Between { expr, negated, low, high } => {
            let between = to_expr(expr)?.between(to_expr(low)?, to_expr(high)?);
            if *negated {
                between.not()
            } else {
                between
            }
        }
        sql::Expr::Case { operand, conditions, else_result } => {
            let mut arms = conditions.iter();
            let first = arms.next().ok_or_else(|| unsupported(&"CASE without WHEN"))?;
            let cond = |w: &sql::Expr| -> Result<Expr> {
                Ok(match operand {
                    Some(o) => to_expr(o)?.eq(to_expr(w)?),
                    None => to_expr(w)?,
                })
            };
            let mut builder = when(cond(&first.condition)?, to_expr(&first.result)?);
            for arm in arms {
                builder = builder.when(cond(&arm.condition)?, to_expr(&arm.result)?);
            }
            match else_result {
                Some(e) => builder.otherwise(to_expr(e)?)?,
                None => builder.end()?,
            }
        }
        sql::Expr::Function(func) => {
            let name = func.name.to_string().to_ascii_uppercase();
            let args: Vec<Expr> = match &func.args {
                sql::FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .map(|a| match a {
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => to_expr(e),
                        other => Err(unsupported(other)),
                    })
                    .collect::<Result<_>>()?,
                _ => Vec::new(),
            };
            let mut args = args.into_iter();
            match name.as_str() {
                "COALESCE" => f::coalesce(args.collect()),
                "ROUND" => f::round(args.collect()),
                "LOWER" => f::lower(args.next().ok_or_else(|| unsupported(&name))?),
                "UPPER" => f::upper(args.next().ok_or_else(|| unsupported(&name))?),
                _ => return Err(unsupported(&name)),
            }
        }
        other => return Err(unsupported(other)),
    })
}

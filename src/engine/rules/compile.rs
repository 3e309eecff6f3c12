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
use crate::engine::amounts;
use crate::engine::ingest::parse::days_since_epoch;
use crate::engine::schema::{col as c, AMOUNT_SCALE};
use crate::model::billing_rule::{BillingRule, LineItem, RuleDefinition};

type Result<T> = std::result::Result<T, DataFusionError>;

/// A rule to run, with the token that names its inserted rows.
#[derive(Debug, Clone)]
pub struct RuleStep {
    pub token: String,
    pub rule: RuleDefinition,
}

impl RuleStep {
    /// Whether the step can give a row a currency other than its upload's (a custom UPDATE or INSERT
    /// naming the currency column).
    pub fn sets_currency(&self) -> bool {
        let names = |columns: &[String]| columns.iter().any(|c| column_of(c) == c::CURRENCY);
        match &self.rule.rule {
            BillingRule::Custom(sql) => sql.statements().iter().any(|statement| match statement {
                CustomStatement::Update { assignments, .. } => {
                    assignments.iter().any(|(column, _)| column_of(column) == c::CURRENCY)
                }
                CustomStatement::InsertValues { columns, .. } | CustomStatement::InsertSelect { columns, .. } => {
                    names(columns)
                }
            }),
            _ => false,
        }
    }

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
pub fn apply_rules(
    ctx: &SessionContext,
    mut costs: DataFrame,
    rules: &[RuleStep],
    window: Window,
    currency: &str,
) -> Result<DataFrame> {
    for step in rules {
        costs = apply_rule(ctx, costs, step, window, currency)?;
    }
    Ok(costs)
}

fn apply_rule(
    ctx: &SessionContext,
    costs: DataFrame,
    step: &RuleStep,
    window: Window,
    currency: &str,
) -> Result<DataFrame> {
    let rule = &step.rule;
    match &rule.rule {
        // SELECT * FROM costs WHERE NOT (charge_type ILIKE 'X' AND accrued_at IN range)
        BillingRule::Exclusion { charge_type } => {
            // ILIKE without wildcards is Arrow's case-insensitive equality: no lower-cased copy of the column.
            let pattern = charge_type.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let hit = col(c::CHARGE_TYPE).ilike(lit(pattern)).and(in_rule_range(rule));
            costs.filter(hit.not())
        }
        // SELECT …, CASE WHEN in range THEN amount * pct / 100 ELSE amount END AS amount FROM costs
        BillingRule::Adjustment { percentage } => {
            let factor = *percentage / Decimal::from(100);
            let adjusted =
                when(in_rule_range(rule), amounts::times(col(c::AMOUNT), factor)).otherwise(col(c::AMOUNT))?;
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
                            let value = match amount_factor(value) {
                                Some(factor) if target == c::AMOUNT => amounts::times(col(c::AMOUNT), factor),
                                _ => cast(to_expr(value)?, ty),
                            };
                            let new = when(cond.clone(), value).otherwise(col(target))?;
                            replaced.push((target, new));
                        }
                        replace_columns(costs, replaced)?
                    }
                    CustomStatement::InsertValues { columns, rows } => {
                        insert_values(ctx, costs, step, columns, rows, window, currency)?
                    }
                    CustomStatement::InsertSelect { columns, projection, selection, group_by, having } => {
                        let parts = SelectParts {
                            columns,
                            projection,
                            selection: selection.as_ref(),
                            group_by,
                            having: having.as_ref(),
                        };
                        insert_select(costs, step, parts, window, currency)?
                    }
                };
            }
            Ok(costs)
        }
    }
}

/// The value of a column an INSERT does not list: the rule's own line-item defaults.
fn default_value(name: &str, step: &RuleStep, window: Window, currency: &str) -> Expr {
    match name {
        c::ACCRUED_AT => date_lit(step.rule.start_date.unwrap_or(window.start).max(window.start)),
        c::AMOUNT => lit(ScalarValue::Decimal128(Some(0), 38, AMOUNT_SCALE)),
        c::CURRENCY => lit(currency.to_string()),
        c::CHARGE_TYPE => lit("Fee"),
        c::RESOURCE_ID => lit(step.token.clone()),
        "provider" => lit("billing_rule"),
        _ => lit(ScalarValue::Null),
    }
}

/// Inserted rows keep to the query's window and the rule's dates.
fn keep_in_window(inserted: DataFrame, step: &RuleStep, window: Window) -> Result<DataFrame> {
    inserted
        .filter(col(c::ACCRUED_AT).between(date_lit(window.start), date_lit(window.end)).and(in_rule_range(&step.rule)))
}

/// SELECT * FROM costs UNION ALL VALUES (…) — literal rows, unlisted columns from [`default_value`].
fn insert_values(
    ctx: &SessionContext,
    costs: DataFrame,
    step: &RuleStep,
    columns: &[String],
    rows: &[Vec<sql::Expr>],
    window: Window,
    currency: &str,
) -> Result<DataFrame> {
    let fields: Vec<(String, arrow::datatypes::DataType)> =
        costs.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let mut exprs = Vec::with_capacity(fields.len());
        for (name, ty) in &fields {
            let value = match columns.iter().position(|c| column_of(c) == name) {
                Some(i) => to_expr(&row[i])?,
                None => default_value(name, step, window, currency),
            };
            exprs.push(cast(value, ty.clone()));
        }
        values.push(exprs);
    }
    let plan = datafusion::logical_expr::LogicalPlanBuilder::values(values)?.build()?;
    let inserted = DataFrame::new(ctx.state(), plan);
    let names: Vec<String> = inserted.schema().fields().iter().map(|f| f.name().clone()).collect();
    let renamed = inserted.select(
        names.iter().zip(&fields).map(|(from, (to, _))| col(from.as_str()).alias(to.as_str())).collect::<Vec<_>>(),
    )?;
    costs.union(keep_in_window(renamed, step, window)?)
}

/// The parts of a checked `INSERT INTO costs (…) SELECT …`.
struct SelectParts<'a> {
    columns: &'a [String],
    projection: &'a [sql::Expr],
    selection: Option<&'a sql::Expr>,
    group_by: &'a [sql::Expr],
    having: Option<&'a sql::Expr>,
}

/// SELECT * FROM costs UNION ALL (SELECT … FROM costs WHERE … GROUP BY month(accrued_at), … HAVING …):
/// the aggregate runs per calendar month; an unlisted accrued_at is the month's 1st.
fn insert_select(
    costs: DataFrame,
    step: &RuleStep,
    parts: SelectParts<'_>,
    window: Window,
    currency: &str,
) -> Result<DataFrame> {
    let fields: Vec<(String, arrow::datatypes::DataType)> =
        costs.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let month = crate::engine::dates::bin(crate::engine::dates::Unit::Month, col(c::ACCRUED_AT));
    let mut source = costs.clone().filter(in_rule_range(&step.rule))?;
    if let Some(cond) = parts.selection {
        source = source.filter(to_expr(cond)?)?;
    }
    let mut group_exprs = vec![month.alias("__month")];
    for (i, g) in parts.group_by.iter().enumerate() {
        // A grouped column keeps its name, so the SELECT list can name it.
        let name = match g {
            sql::Expr::Identifier(id) => column_of(&id.value.to_ascii_lowercase()).to_string(),
            sql::Expr::CompoundIdentifier(ids) => {
                column_of(&ids.last().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default()).to_string()
            }
            _ => format!("__group{i}"),
        };
        group_exprs.push(to_expr(g)?.alias(name));
    }
    let mut aggs = Vec::new();
    let projection = parts.projection.iter().map(|p| to_expr_over_groups(p, &mut aggs)).collect::<Result<Vec<_>>>()?;
    let having = parts.having.map(|h| to_expr_over_groups(h, &mut aggs)).transpose()?;
    let mut grouped = source.aggregate(group_exprs, aggs)?;
    if let Some(h) = having {
        grouped = grouped.filter(h)?;
    }
    let exprs: Vec<Expr> = fields
        .iter()
        .map(|(name, ty)| {
            let value = match parts.columns.iter().position(|c| column_of(c) == name) {
                Some(i) => projection[i].clone(),
                None if name == c::ACCRUED_AT => col("__month"),
                None => default_value(name, step, window, currency),
            };
            cast(value, ty.clone()).alias(name.as_str())
        })
        .collect();
    costs.union(keep_in_window(grouped.select(exprs)?, step, window)?)
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
    // Inserted rows leave unknown columns null, so every field of their batch is nullable.
    let schema = arrow::datatypes::Schema::new(
        costs.schema().as_arrow().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    );
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| {
            // Text in the costs' own string type (Utf8View when read from upload files).
            let text = |v: &str| {
                let strings = StringArray::from(vec![Some(v); n]);
                arrow::compute::cast(&strings, field.data_type()).expect("text casts to any string type")
            };
            match field.name().as_str() {
                c::ACCRUED_AT => {
                    Arc::new(Date32Array::from(months.iter().map(|m| days_since_epoch(*m)).collect::<Vec<_>>()))
                        as ArrayRef
                }
                c::AMOUNT => Arc::new(
                    Decimal128Array::from(vec![amount; n])
                        .with_precision_and_scale(38, AMOUNT_SCALE)
                        .expect("valid decimal"),
                ) as ArrayRef,
                c::CURRENCY => text(currency),
                c::CHARGE_TYPE => text(if credit { "Credit" } else { "Fee" }),
                c::SERVICE => text(&item.service),
                c::COST_CATEGORY => text(&item.category),
                c::COST_SUBCATEGORY => text(&item.sub_category),
                c::RESOURCE_ID => text(&step.token),
                "provider" => text("billing_rule"),
                _ => arrow::array::new_null_array(field.data_type(), n),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(schema), columns)?;
    costs.union(ctx.read_batch(batch)?)
}

/// The factor of `amount * <number>` or `<number> * amount`, the usual custom UPDATE, which then runs as
/// one exact multiply (same result as the generic path's multiply and cast, overflow an error).
fn amount_factor(e: &sql::Expr) -> Option<Decimal> {
    let is_amount = |e: &sql::Expr| match e {
        sql::Expr::Identifier(id) => id.value.eq_ignore_ascii_case("amount"),
        sql::Expr::CompoundIdentifier(ids) => ids.last().is_some_and(|i| i.value.eq_ignore_ascii_case("amount")),
        _ => false,
    };
    let number = |e: &sql::Expr| match e {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => n
                .parse::<i64>()
                .map(Decimal::from)
                .ok()
                .or_else(|| Decimal::from_scientific(n).ok())
                .or_else(|| n.parse().ok()),
            _ => None,
        },
        _ => None,
    };
    match e {
        sql::Expr::Nested(inner) => amount_factor(inner),
        sql::Expr::BinaryOp { left, op: BinaryOperator::Multiply, right } if is_amount(left) => number(right),
        sql::Expr::BinaryOp { left, op: BinaryOperator::Multiply, right } if is_amount(right) => number(left),
        _ => None,
    }
}

/// A checked custom-SQL expression as a DataFusion expression.
pub fn to_expr(e: &sql::Expr) -> Result<Expr> {
    convert(e, &mut Vec::new(), false)
}

/// Like [`to_expr`], but each aggregate call becomes a reference to a column `__aggN`, and the aggregate
/// itself (aliased `__aggN`) is pushed to `aggs` for the Aggregate step underneath.
fn to_expr_over_groups(e: &sql::Expr, aggs: &mut Vec<Expr>) -> Result<Expr> {
    convert(e, aggs, true)
}

fn convert(e: &sql::Expr, aggs: &mut Vec<Expr>, allow_aggs: bool) -> Result<Expr> {
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
        sql::Expr::Nested(inner) => convert(inner, aggs, allow_aggs)?,
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
            binary_expr(convert(left, aggs, allow_aggs)?, op, convert(right, aggs, allow_aggs)?)
        }
        sql::Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => convert(expr, aggs, allow_aggs)?.not(),
            UnaryOperator::Minus => Expr::Negative(Box::new(convert(expr, aggs, allow_aggs)?)),
            UnaryOperator::Plus => convert(expr, aggs, allow_aggs)?,
            other => return Err(unsupported(other)),
        },
        sql::Expr::IsNull(inner) => convert(inner, aggs, allow_aggs)?.is_null(),
        sql::Expr::IsNotNull(inner) => convert(inner, aggs, allow_aggs)?.is_not_null(),
        sql::Expr::Like { negated, expr, pattern, .. } => {
            let like = convert(expr, aggs, allow_aggs)?.like(convert(pattern, aggs, allow_aggs)?);
            if *negated {
                like.not()
            } else {
                like
            }
        }
        sql::Expr::InList { expr, list, negated } => convert(expr, aggs, allow_aggs)?
            .in_list(list.iter().map(|x| convert(x, aggs, allow_aggs)).collect::<Result<Vec<_>>>()?, *negated),
        sql::Expr::Between { expr, negated, low, high } => {
            let between = convert(expr, aggs, allow_aggs)?
                .between(convert(low, aggs, allow_aggs)?, convert(high, aggs, allow_aggs)?);
            if *negated {
                between.not()
            } else {
                between
            }
        }
        sql::Expr::Case { operand, conditions, else_result } => {
            let operand = match operand {
                Some(o) => Some(convert(o, aggs, allow_aggs)?),
                None => None,
            };
            let mut arms = Vec::with_capacity(conditions.len());
            for w in conditions {
                let c = convert(&w.condition, aggs, allow_aggs)?;
                let c = match &operand {
                    Some(o) => o.clone().eq(c),
                    None => c,
                };
                arms.push((c, convert(&w.result, aggs, allow_aggs)?));
            }
            let mut arms = arms.into_iter();
            let (c0, r0) = arms.next().ok_or_else(|| unsupported(&"CASE without WHEN"))?;
            let mut builder = when(c0, r0);
            for (c, r) in arms {
                builder = builder.when(c, r);
            }
            match else_result {
                Some(e) => builder.otherwise(convert(e, aggs, allow_aggs)?)?,
                None => builder.end()?,
            }
        }
        sql::Expr::Function(func) => {
            let name = func.name.to_string().to_ascii_uppercase();
            let is_aggregate = matches!(name.as_str(), "SUM" | "COUNT" | "MIN" | "MAX");
            if is_aggregate && !allow_aggs {
                return Err(unsupported(&name));
            }
            let mut args: Vec<Expr> = Vec::new();
            if let sql::FunctionArguments::List(list) = &func.args {
                for a in &list.args {
                    match a {
                        // Inside an aggregate the arguments are row-level expressions.
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => {
                            args.push(convert(e, aggs, allow_aggs && !is_aggregate)?)
                        }
                        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard) => args.push(lit(1i64)),
                        other => return Err(unsupported(other)),
                    }
                }
            }
            if is_aggregate {
                use datafusion::functions_aggregate::expr_fn as agg;
                let arg = args.into_iter().next().ok_or_else(|| unsupported(&name))?;
                let call = match name.as_str() {
                    "SUM" => agg::sum(arg),
                    "COUNT" => agg::count(arg),
                    "MIN" => agg::min(arg),
                    _ => agg::max(arg),
                };
                let alias = format!("__agg{}", aggs.len());
                aggs.push(call.alias(alias.as_str()));
                return Ok(col(alias.as_str()));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::billing_rule::RuleFields;
    use arrow::array::AsArray;
    use arrow::datatypes::{Date32Type, Decimal128Type};
    use serde_json::json;

    const ONE: i128 = 1_000_000_000_000_000_000;

    /// A small costs table: July EC2 100 (us-east-1) and Tax 10; August S3 50 (eu-west-1).
    fn table(ctx: &SessionContext, amounts: [i128; 3]) -> DataFrame {
        let d = |s: &str| days_since_epoch(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        // Text as the costs query reads it from upload files.
        let schema = crate::engine::schema::scan_schema();
        let text_of = |name: &str, v: [Option<&str>; 3]| {
            let ty = schema.field_with_name(name).unwrap().data_type();
            arrow::compute::cast(&StringArray::from(v.to_vec()), ty).unwrap()
        };
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                c::ACCRUED_AT => {
                    Arc::new(Date32Array::from(vec![d("2024-07-05"), d("2024-07-10"), d("2024-08-01")])) as ArrayRef
                }
                c::AMOUNT => {
                    Arc::new(Decimal128Array::from(amounts.to_vec()).with_precision_and_scale(38, 18).unwrap())
                        as ArrayRef
                }
                c::CURRENCY => text_of(c::CURRENCY, [Some("USD"); 3]),
                c::CHARGE_TYPE => text_of(c::CHARGE_TYPE, [Some("Usage"), Some("Tax"), Some("Usage")]),
                c::SERVICE => text_of(c::SERVICE, [Some("EC2"), Some("EC2"), Some("S3")]),
                c::REGION => text_of(c::REGION, [Some("us-east-1"), Some("us-east-1"), Some("eu-west-1")]),
                _ => arrow::array::new_null_array(f.data_type(), 3),
            })
            .collect();
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        ctx.read_batch(batch).unwrap().with_column("provider", lit("custom_provider")).unwrap()
    }

    #[test]
    fn only_custom_sql_naming_the_currency_can_set_it() {
        let custom = |sql: &str| step(json!({"type": "custom", "title": "t", "sql_query": sql}));
        assert!(custom("UPDATE costs SET currency = 'EUR'").sets_currency());
        assert!(custom("INSERT INTO costs (amount, currency) VALUES (1, 'EUR')").sets_currency());
        assert!(!custom("UPDATE costs SET amount = amount * 2 WHERE currency = 'USD'").sets_currency());
        assert!(!step(json!({"type": "adjustment", "title": "t", "percentage": 50})).sets_currency());
    }

    fn step(body: serde_json::Value) -> RuleStep {
        let rule = RuleDefinition::try_from(serde_json::from_value::<RuleFields>(body).unwrap()).unwrap();
        RuleStep { token: "bllng_rule_test".into(), rule }
    }

    /// (date, charge_type, service, amount) rows after the rules, sorted.
    async fn run_with(amounts: [i128; 3], rules: Vec<RuleStep>) -> Vec<(String, String, String, i128)> {
        let ctx = SessionContext::new();
        let window = Window {
            start: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 8, 31).unwrap(),
        };
        let df = apply_rules(&ctx, table(&ctx, amounts), &rules, window, "USD").unwrap();
        let mut out = Vec::new();
        for b in df.collect().await.unwrap() {
            let dates = b.column_by_name(c::ACCRUED_AT).unwrap().as_primitive::<Date32Type>();
            let amounts = b.column_by_name(c::AMOUNT).unwrap().as_primitive::<Decimal128Type>();
            let types =
                arrow::compute::cast(b.column_by_name(c::CHARGE_TYPE).unwrap(), &arrow::datatypes::DataType::Utf8)
                    .unwrap();
            let services =
                arrow::compute::cast(b.column_by_name(c::SERVICE).unwrap(), &arrow::datatypes::DataType::Utf8).unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    crate::engine::ingest::parse::date_from_days(dates.value(i)).to_string(),
                    types.as_string::<i32>().value(i).to_string(),
                    services.as_string::<i32>().value(i).to_string(),
                    amounts.value(i),
                ));
            }
        }
        out.sort();
        out
    }

    async fn run(rules: Vec<RuleStep>) -> Vec<(String, String, String, i128)> {
        run_with([100 * ONE, 10 * ONE, 50 * ONE], rules).await
    }

    fn r(d: &str, t: &str, s: &str, a: i128) -> (String, String, String, i128) {
        (d.into(), t.into(), s.into(), a)
    }

    #[tokio::test]
    async fn an_exclusion_removes_its_charge_type_within_its_dates() {
        let all = run(vec![step(json!({"type": "exclusion", "title": "t", "charge_type": "TAX"}))]).await;
        assert_eq!(all, vec![r("2024-07-05", "Usage", "EC2", 100 * ONE), r("2024-08-01", "Usage", "S3", 50 * ONE)]);
        let bounded =
            run(vec![step(json!({"type": "exclusion", "title": "t", "charge_type": "Tax", "end_date": "2024-07-06"}))])
                .await;
        assert_eq!(bounded.len(), 3, "the Tax row of 07-10 is after the rule's end");
    }

    #[tokio::test]
    async fn an_adjustment_shows_its_percentage_and_rounds_half_away_from_zero() {
        let got = run(vec![step(json!({"type": "adjustment", "title": "t", "percentage": 75}))]).await;
        assert_eq!(got.iter().map(|x| x.3).collect::<Vec<_>>(), vec![75 * ONE, 75 * ONE / 10, 375 * ONE / 10]);
        // 1.000000000000000005 × 50% = 0.5000000000000000025 → 0.500000000000000003
        let got =
            run_with([ONE + 5, ONE, ONE], vec![step(json!({"type": "adjustment", "title": "t", "percentage": 50}))])
                .await;
        assert_eq!(got[0].3, ONE / 2 + 3);
    }

    #[tokio::test]
    async fn a_custom_update_changes_only_rows_matching_its_where() {
        let got = run(vec![step(json!({"type": "custom", "title": "t",
            "sql_query": "UPDATE costs SET amount = amount * 2, service = 'S3 (doubled)' WHERE service = 'S3'"}))])
        .await;
        assert_eq!(got[2], r("2024-08-01", "Usage", "S3 (doubled)", 100 * ONE));
        assert_eq!(got[0].3, 100 * ONE);
    }

    #[tokio::test]
    async fn credits_and_charges_add_one_line_item_per_covered_month() {
        let got = run(vec![
            step(
                json!({"type": "credit", "title": "c", "service": "Support", "category": "Credit", "sub_category": "M",
                "amount": 10, "start_date": "2024-07-01"}),
            ),
            step(json!({"type": "charge", "title": "f", "service": "MSP", "category": "Fee", "sub_category": "M",
                "amount": -5, "start_date": "2024-07-01", "end_date": "2024-07-31"})),
        ])
        .await;
        let inserted: Vec<_> = got.into_iter().filter(|x| x.2 == "Support" || x.2 == "MSP").collect();
        assert_eq!(
            inserted,
            vec![
                r("2024-07-01", "Credit", "Support", -10 * ONE),
                r("2024-07-01", "Fee", "MSP", 5 * ONE),
                r("2024-08-01", "Credit", "Support", -10 * ONE)
            ]
        );
    }

    #[tokio::test]
    async fn a_custom_insert_values_adds_its_rows() {
        let got = run(vec![step(json!({"type": "custom", "title": "t",
            "sql_query": "INSERT INTO costs (accrued_at, amount, service) VALUES ('2024-07-15', 42.5, 'Setup'), ('2025-01-01', 1, 'Later')"}))])
        .await;
        assert!(got.contains(&r("2024-07-15", "Fee", "Setup", 425 * ONE / 10)), "{got:?}");
        assert_eq!(got.len(), 4, "the 2025 row is outside the query's window");
    }

    #[tokio::test]
    async fn a_custom_insert_select_aggregates_per_calendar_month() {
        let got = run(vec![step(json!({"type": "custom", "title": "t",
            "sql_query": "INSERT INTO costs (service, amount) SELECT 'Support', SUM(amount) * 0.1 FROM costs WHERE cost_type = 'Usage'"}))])
        .await;
        let support: Vec<_> = got.into_iter().filter(|x| x.2 == "Support").collect();
        // July: 100 × 0.1 (the Tax row is not Usage); August: 50 × 0.1.
        assert_eq!(
            support,
            vec![r("2024-07-01", "Fee", "Support", 10 * ONE), r("2024-08-01", "Fee", "Support", 5 * ONE)]
        );
    }
}

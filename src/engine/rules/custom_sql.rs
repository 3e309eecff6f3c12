//! The custom-SQL billing rule grammar (DESIGN.md "Billing rules"): an allow-list over sqlparser's AST.
//!
//! Accepted, against the single table `costs` and its known columns (`costs.col` or `col`):
//! - `UPDATE costs SET col = expr, … [WHERE cond]`
//! - `INSERT INTO costs (cols) VALUES (…), …` (literal rows)
//! - `INSERT INTO costs (cols) SELECT … FROM costs [WHERE …] [GROUP BY …] [HAVING …]`
//!
//! Expressions: literals, columns, arithmetic, comparisons, AND/OR/NOT, LIKE, IN (list), BETWEEN,
//! IS [NOT] NULL, CASE, and the functions SUM, COUNT, MIN, MAX (aggregates: only in INSERT … SELECT),
//! COALESCE, ROUND, LOWER, UPPER. Everything else is refused with a sentence that names it. SQL comments
//! are refused too: a rule's text is what runs, with nothing hidden in it.
//!
//! The rule is never sent to a database: the parsed statements are kept for the costs engine to compile.

use std::fmt;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Insert, ObjectName, Query,
    Select, SelectFlavor, SelectItem, SetExpr, Statement, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// The columns of the `costs` table a custom rule may name.
pub const COLUMNS: [&str; 14] = [
    "accrued_at",
    "amount",
    "currency",
    "usage_amount",
    "usage_unit",
    "provider",
    "billing_account_id",
    "account_id",
    "service",
    "region",
    "resource_id",
    "cost_category",
    "cost_sub_category",
    "cost_type",
];

const AGGREGATES: [&str; 4] = ["SUM", "COUNT", "MIN", "MAX"];
const SCALAR_FUNCTIONS: [&str; 4] = ["COALESCE", "ROUND", "LOWER", "UPPER"];

/// Where a custom statement runs among a managed account's rules (DESIGN.md: inserts, transforms, monthly inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleGroup {
    /// `INSERT INTO costs … VALUES …`: rows added before any transform.
    CostInsert,
    /// Exclusions, adjustments and `UPDATE costs …`.
    Transform,
    /// Credits, charges and `INSERT INTO costs … SELECT … FROM costs …`, per calendar month.
    MonthlyInsert,
}

/// One checked statement of a custom rule, in the form the engine compiles.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomStatement {
    /// `UPDATE costs SET … [WHERE …]`: each assignment is (column, expression).
    Update { assignments: Vec<(String, Expr)>, selection: Option<Expr> },
    /// `INSERT INTO costs (columns) VALUES rows`.
    InsertValues { columns: Vec<String>, rows: Vec<Vec<Expr>> },
    /// `INSERT INTO costs (columns) SELECT projection FROM costs [WHERE] [GROUP BY] [HAVING]`.
    InsertSelect {
        columns: Vec<String>,
        projection: Vec<Expr>,
        selection: Option<Expr>,
        group_by: Vec<Expr>,
        having: Option<Expr>,
    },
}

impl CustomStatement {
    /// The group this statement runs in.
    pub fn group(&self) -> RuleGroup {
        match self {
            CustomStatement::InsertValues { .. } => RuleGroup::CostInsert,
            CustomStatement::Update { .. } => RuleGroup::Transform,
            CustomStatement::InsertSelect { .. } => RuleGroup::MonthlyInsert,
        }
    }
}

/// A custom rule's SQL: the text as written and its checked statements (all of one [`RuleGroup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomSql {
    text: String,
    statements: Vec<CustomStatement>,
}

/// Why a custom rule's SQL was refused: one sentence for the API's error list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarError(String);

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(msg: impl Into<String>) -> Result<T, GrammarError> {
    Err(GrammarError(msg.into()))
}

impl CustomSql {
    /// Parses and checks a rule's SQL.
    pub fn parse(sql: &str) -> Result<CustomSql, GrammarError> {
        let dialect = GenericDialect {};
        let tokens =
            Tokenizer::new(&dialect, sql).tokenize().map_err(|e| GrammarError(format!("could not be parsed: {e}")))?;
        if tokens.iter().any(|t| {
            matches!(t, Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)))
        }) {
            return refuse("comments are not allowed (a rule's text must be exactly what runs)");
        }
        let parsed = Parser::parse_sql(&dialect, sql).map_err(|e| GrammarError(format!("could not be parsed: {e}")))?;
        if parsed.is_empty() {
            return refuse("has no statement; write UPDATE costs … or INSERT INTO costs …");
        }
        let statements = parsed.iter().map(check_statement).collect::<Result<Vec<_>, _>>()?;
        let group = statements[0].group();
        if statements.iter().any(|s| s.group() != group) {
            return refuse(
                "mixes statement kinds: put UPDATE, INSERT … VALUES and INSERT … SELECT in separate rules \
                 so each runs in its own group",
            );
        }
        Ok(CustomSql { text: sql.to_string(), statements })
    }

    /// The SQL as the client wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The checked statements, in order.
    pub fn statements(&self) -> &[CustomStatement] {
        &self.statements
    }

    /// The group every statement of this rule runs in.
    pub fn group(&self) -> RuleGroup {
        self.statements[0].group()
    }
}

fn check_statement(stmt: &Statement) -> Result<CustomStatement, GrammarError> {
    match stmt {
        Statement::Update { table, assignments, from, selection, returning, or } => {
            // Display reproduces aliases, joins and hints: only a bare `costs` prints as `costs`.
            check_table(&table.to_string())?;
            if from.is_some() {
                return refuse("UPDATE … FROM is not allowed: a rule can only read the costs table");
            }
            if returning.is_some() || or.is_some() {
                return refuse("UPDATE may not have RETURNING or OR clauses");
            }
            let ctx = ExprContext { columns: true, aggregates: false };
            let mut checked = Vec::with_capacity(assignments.len());
            for a in assignments {
                let column = match &a.target {
                    sqlparser::ast::AssignmentTarget::ColumnName(name) => column_of_name(name)?,
                    other => return refuse(format!("cannot assign to {other}")),
                };
                check_expr(&a.value, ctx)?;
                checked.push((column, a.value.clone()));
            }
            if let Some(cond) = selection {
                check_expr(cond, ctx)?;
            }
            Ok(CustomStatement::Update { assignments: checked, selection: selection.clone() })
        }
        Statement::Insert(insert) => check_insert(insert),
        other => {
            let keyword = other.to_string().split_whitespace().next().unwrap_or("this").to_uppercase();
            refuse(format!(
                "{keyword} statements are not allowed; a custom rule is UPDATE costs SET … or INSERT INTO costs …"
            ))
        }
    }
}

fn check_table(name: &str) -> Result<(), GrammarError> {
    if name.eq_ignore_ascii_case("costs") {
        Ok(())
    } else {
        refuse(format!("only the table costs can be used, not {name}"))
    }
}

fn check_column(name: &str) -> Result<String, GrammarError> {
    let lower = name.to_ascii_lowercase();
    if COLUMNS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        refuse(format!("unknown column {name}; the columns of costs are {}", COLUMNS.join(", ")))
    }
}

/// `col` or `costs.col`.
fn column_of_parts(parts: &[&str]) -> Result<String, GrammarError> {
    match parts {
        [col] => check_column(col),
        [table, col] => {
            check_table(table)?;
            check_column(col)
        }
        _ => refuse(format!("{} is not a column of costs", parts.join("."))),
    }
}

fn column_of_name(name: &ObjectName) -> Result<String, GrammarError> {
    let parts: Vec<&str> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.as_str()).collect();
    column_of_parts(&parts)
}

fn check_insert(insert: &Insert) -> Result<CustomStatement, GrammarError> {
    check_table(&insert.table.to_string())?;
    let extras = insert.or.is_some()
        || insert.ignore
        || insert.table_alias.is_some()
        || insert.overwrite
        || !insert.assignments.is_empty()
        || insert.partitioned.is_some()
        || !insert.after_columns.is_empty()
        || insert.on.is_some()
        || insert.returning.is_some()
        || insert.replace_into
        || insert.priority.is_some()
        || insert.insert_alias.is_some()
        || insert.settings.is_some()
        || insert.format_clause.is_some();
    if extras {
        return refuse("INSERT may only be INSERT INTO costs (columns) VALUES … or … SELECT … FROM costs");
    }
    if insert.columns.is_empty() {
        return refuse("INSERT INTO costs must list its columns, e.g. INSERT INTO costs (service, amount) …");
    }
    let mut columns = Vec::with_capacity(insert.columns.len());
    for c in &insert.columns {
        let col = check_column(&c.value)?;
        if columns.contains(&col) {
            return refuse(format!("column {col} is listed twice"));
        }
        columns.push(col);
    }
    let Some(source) = &insert.source else {
        return refuse("INSERT needs VALUES or SELECT");
    };
    check_query_clauses(source)?;
    match source.body.as_ref() {
        SetExpr::Values(values) => {
            let ctx = ExprContext { columns: false, aggregates: false };
            for (i, row) in values.rows.iter().enumerate() {
                if row.len() != columns.len() {
                    return refuse(format!(
                        "VALUES row {} has {} values for {} columns",
                        i + 1,
                        row.len(),
                        columns.len()
                    ));
                }
                for e in row {
                    check_expr(e, ctx)?;
                }
            }
            Ok(CustomStatement::InsertValues { columns, rows: values.rows.clone() })
        }
        SetExpr::Select(select) => check_select(select, columns),
        other => refuse(format!("INSERT source {other} is not allowed; use VALUES or SELECT … FROM costs")),
    }
}

fn check_query_clauses(q: &Query) -> Result<(), GrammarError> {
    let extras = q.with.is_some()
        || q.order_by.is_some()
        || q.limit.is_some()
        || !q.limit_by.is_empty()
        || q.offset.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some();
    if extras {
        return refuse("WITH, ORDER BY, LIMIT, OFFSET and FETCH are not allowed in a rule");
    }
    Ok(())
}

fn check_select(select: &Select, columns: Vec<String>) -> Result<CustomStatement, GrammarError> {
    let extras = select.distinct.is_some()
        || select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.connect_by.is_some()
        || select.value_table_mode.is_some()
        || select.flavor != SelectFlavor::Standard;
    if extras {
        return refuse("SELECT may only have a projection, FROM costs, WHERE, GROUP BY and HAVING");
    }
    match select.from.as_slice() {
        [only] => check_table(&only.to_string())?,
        [] => return refuse("INSERT … SELECT must read FROM costs"),
        _ => return refuse("SELECT may read only the table costs, once"),
    }
    if select.projection.len() != columns.len() {
        return refuse(format!("SELECT gives {} values for {} columns", select.projection.len(), columns.len()));
    }
    let with_aggregates = ExprContext { columns: true, aggregates: true };
    let row_level = ExprContext { columns: true, aggregates: false };
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            other => return refuse(format!("{other} is not allowed; name each inserted value")),
        };
        check_expr(expr, with_aggregates)?;
        projection.push(expr.clone());
    }
    if let Some(cond) = &select.selection {
        check_expr(cond, row_level)?;
    }
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            for e in exprs {
                check_expr(e, row_level)?;
            }
            exprs.clone()
        }
        other => return refuse(format!("{other} is not allowed; list GROUP BY expressions")),
    };
    if let Some(h) = &select.having {
        check_expr(h, with_aggregates)?;
    }
    // Outside an aggregate, the SELECT list may only name columns it groups by (per month, per group).
    let grouped: Vec<String> = group_by
        .iter()
        .filter_map(|g| match g {
            Expr::Identifier(id) => Some(id.value.to_ascii_lowercase()),
            Expr::CompoundIdentifier(ids) => ids.last().map(|i| i.value.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    for e in projection.iter().chain(select.having.iter()) {
        let mut bare = Vec::new();
        bare_columns(e, &mut bare);
        if let Some(c) = bare.iter().find(|c| !grouped.contains(c)) {
            return refuse(format!("{c} must be inside SUM/COUNT/MIN/MAX or listed in GROUP BY"));
        }
    }
    Ok(CustomStatement::InsertSelect {
        columns,
        projection,
        selection: select.selection.clone(),
        group_by,
        having: select.having.clone(),
    })
}

/// Column names referenced outside any aggregate call.
fn bare_columns(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Identifier(id) => out.push(id.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(ids) => out.extend(ids.last().map(|i| i.value.to_ascii_lowercase())),
        Expr::Function(f) if AGGREGATES.contains(&f.name.to_string().to_ascii_uppercase().as_str()) => {}
        Expr::Function(f) => {
            if let FunctionArguments::List(list) = &f.args {
                for a in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) = a {
                        bare_columns(inner, out);
                    }
                }
            }
        }
        Expr::BinaryOp { left, right, .. } => {
            bare_columns(left, out);
            bare_columns(right, out);
        }
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::IsNull(expr) | Expr::IsNotNull(expr) => {
            bare_columns(expr, out)
        }
        Expr::Like { expr, pattern, .. } => {
            bare_columns(expr, out);
            bare_columns(pattern, out);
        }
        Expr::InList { expr, list, .. } => {
            bare_columns(expr, out);
            list.iter().for_each(|x| bare_columns(x, out));
        }
        Expr::Between { expr, low, high, .. } => {
            bare_columns(expr, out);
            bare_columns(low, out);
            bare_columns(high, out);
        }
        Expr::Case { operand, conditions, else_result } => {
            operand.iter().for_each(|o| bare_columns(o, out));
            for w in conditions {
                bare_columns(&w.condition, out);
                bare_columns(&w.result, out);
            }
            else_result.iter().for_each(|x| bare_columns(x, out));
        }
        _ => {}
    }
}

/// What an expression may contain where it stands.
#[derive(Debug, Clone, Copy)]
struct ExprContext {
    /// Column references (not in `VALUES`).
    columns: bool,
    /// SUM/COUNT/MIN/MAX (only in `INSERT … SELECT` projections and HAVING, never nested).
    aggregates: bool,
}

fn check_expr(expr: &Expr, ctx: ExprContext) -> Result<(), GrammarError> {
    let column = |parts: &[&str]| -> Result<(), GrammarError> {
        if !ctx.columns {
            return refuse(format!("VALUES cannot refer to the column {}", parts.join(".")));
        }
        column_of_parts(parts).map(|_| ())
    };
    match expr {
        Expr::Identifier(id) => column(&[id.value.as_str()]),
        Expr::CompoundIdentifier(ids) => {
            let parts: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
            column(&parts)
        }
        Expr::Value(v) => match &v.value {
            Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null => Ok(()),
            Value::DoubleQuotedString(s) => refuse(format!("\"{s}\" is not allowed: strings take single quotes")),
            other => refuse(format!("the value {other} is not allowed")),
        },
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator::*;
            match op {
                Plus | Minus | Multiply | Divide | Modulo | Gt | Lt | GtEq | LtEq | Eq | NotEq | And | Or => {
                    check_expr(left, ctx)?;
                    check_expr(right, ctx)
                }
                other => refuse(format!("the operator {other} is not allowed")),
            }
        }
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus => check_expr(expr, ctx),
            other => refuse(format!("the operator {other} is not allowed")),
        },
        Expr::Nested(e) | Expr::IsNull(e) | Expr::IsNotNull(e) => check_expr(e, ctx),
        Expr::Like { any: false, expr, pattern, escape_char: None, .. } => {
            check_expr(expr, ctx)?;
            check_expr(pattern, ctx)
        }
        Expr::InList { expr, list, .. } => {
            if list.is_empty() {
                return refuse("IN () needs at least one value");
            }
            check_expr(expr, ctx)?;
            list.iter().try_for_each(|e| check_expr(e, ctx))
        }
        Expr::Between { expr, low, high, .. } => {
            check_expr(expr, ctx)?;
            check_expr(low, ctx)?;
            check_expr(high, ctx)
        }
        Expr::Case { operand, conditions, else_result } => {
            if let Some(o) = operand {
                check_expr(o, ctx)?;
            }
            for when in conditions {
                check_expr(&when.condition, ctx)?;
                check_expr(&when.result, ctx)?;
            }
            match else_result {
                Some(e) => check_expr(e, ctx),
                None => Ok(()),
            }
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_uppercase();
            let is_aggregate = AGGREGATES.contains(&name.as_str());
            if !is_aggregate && !SCALAR_FUNCTIONS.contains(&name.as_str()) {
                return refuse(format!(
                    "the function {} is not allowed; allowed: {}, {}",
                    f.name,
                    AGGREGATES.join(", "),
                    SCALAR_FUNCTIONS.join(", ")
                ));
            }
            if is_aggregate && !ctx.aggregates {
                return refuse(format!(
                    "{name}() is only allowed in the SELECT list or HAVING of INSERT INTO costs … SELECT, not nested"
                ));
            }
            let plain = f.over.is_none()
                && f.filter.is_none()
                && f.null_treatment.is_none()
                && f.within_group.is_empty()
                && matches!(f.parameters, FunctionArguments::None)
                && !f.uses_odbc_syntax;
            let FunctionArguments::List(list) = &f.args else {
                return refuse(format!("{name} needs an argument list"));
            };
            if !plain || list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                return refuse(format!("{name} may not have OVER, FILTER, DISTINCT or other clauses"));
            }
            let arity_ok = match name.as_str() {
                "COALESCE" => !list.args.is_empty(),
                "ROUND" => (1..=2).contains(&list.args.len()),
                _ => list.args.len() == 1,
            };
            if !arity_ok {
                return refuse(format!("{name} was given {} arguments", list.args.len()));
            }
            // Inside an aggregate only row-level expressions are allowed: no SUM(SUM(x)).
            let inner = ExprContext { columns: ctx.columns, aggregates: ctx.aggregates && !is_aggregate };
            for arg in &list.args {
                match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => check_expr(e, inner)?,
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if name == "COUNT" => {}
                    other => return refuse(format!("the argument {other} of {name} is not allowed")),
                }
            }
            Ok(())
        }
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
            refuse("subqueries are not allowed; a rule reads only the costs table")
        }
        other => refuse(format!("the expression {other} is not allowed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(sql: &str) -> String {
        CustomSql::parse(sql).unwrap_err().to_string()
    }

    #[test]
    fn vantage_example_update_is_accepted() {
        let rule = CustomSql::parse("UPDATE costs SET costs.amount = costs.amount * 0.95").unwrap();
        assert_eq!(rule.group(), RuleGroup::Transform);
        assert!(
            matches!(&rule.statements()[0], CustomStatement::Update { assignments, .. } if assignments[0].0 == "amount")
        );
    }

    #[test]
    fn update_with_case_where_and_functions_is_accepted() {
        CustomSql::parse(
            "UPDATE costs SET amount = CASE WHEN LOWER(service) LIKE '%ec2%' THEN ROUND(amount * 1.1, 2) \
             ELSE amount END WHERE provider IN ('aws', 'gcp') AND accrued_at BETWEEN '2024-01-01' AND '2024-12-31' \
             AND region IS NOT NULL AND NOT (cost_type = 'Tax')",
        )
        .unwrap();
    }

    #[test]
    fn insert_values_and_insert_select_are_accepted_in_their_groups() {
        let v = CustomSql::parse(
            "INSERT INTO costs (accrued_at, amount, service) VALUES ('2024-05-01', 100, 'Support'), ('2024-06-01', -5.5, 'Support')",
        )
        .unwrap();
        assert_eq!(v.group(), RuleGroup::CostInsert);
        let s = CustomSql::parse(
            "INSERT INTO costs (service, amount) SELECT 'Support', SUM(amount) * 0.03 FROM costs \
             WHERE provider = 'aws' GROUP BY service HAVING COUNT(*) > 0",
        )
        .unwrap();
        assert_eq!(s.group(), RuleGroup::MonthlyInsert);
    }

    #[test]
    fn other_tables_are_refused() {
        assert!(err("UPDATE users SET amount = 1").contains("only the table costs"));
        assert!(err("INSERT INTO costs (amount) SELECT amount FROM invoices").contains("only the table costs"));
        assert!(err("UPDATE costs SET amount = 1 WHERE service IN (SELECT name FROM users)").contains("subqueries"));
        assert!(err("UPDATE costs SET amount = other.amount FROM other").contains("FROM is not allowed"));
    }

    #[test]
    fn ddl_delete_and_truncate_are_refused() {
        assert!(err("DROP TABLE costs").starts_with("DROP statements are not allowed"));
        assert!(err("DELETE FROM costs").starts_with("DELETE statements are not allowed"));
        assert!(err("TRUNCATE costs").starts_with("TRUNCATE statements are not allowed"));
        assert!(err("CREATE TABLE x (a int)").starts_with("CREATE statements are not allowed"));
        assert!(err("SELECT * FROM costs").starts_with("SELECT statements are not allowed"));
    }

    #[test]
    fn stacked_statements_with_one_bad_are_refused() {
        assert!(err("UPDATE costs SET amount = 1; DROP TABLE costs").starts_with("DROP statements"));
    }

    #[test]
    fn comments_are_refused() {
        assert!(err("UPDATE costs SET amount = 1 -- ; DROP TABLE costs").contains("comments are not allowed"));
        assert!(err("UPDATE costs SET amount = 1 /* DELETE FROM costs */").contains("comments are not allowed"));
    }

    #[test]
    fn unknown_columns_and_functions_are_refused() {
        assert!(err("UPDATE costs SET price = 1").contains("unknown column price"));
        assert!(err("UPDATE costs SET amount = amount WHERE owner = 'x'").contains("unknown column owner"));
        assert!(err("UPDATE costs SET amount = pg_sleep(10)").contains("function pg_sleep is not allowed"));
        assert!(err("UPDATE costs SET amount = SUM(amount)").contains("SUM() is only allowed"));
    }

    #[test]
    fn malformed_sql_says_it_could_not_be_parsed() {
        assert!(err("UPDATE costs SET").starts_with("could not be parsed"));
        assert!(err("").starts_with("has no statement"));
    }

    #[test]
    fn values_cannot_read_columns_and_must_match_the_column_list() {
        assert!(err("INSERT INTO costs (amount) VALUES (amount)").contains("VALUES cannot refer"));
        assert!(err("INSERT INTO costs (amount, service) VALUES (1)").contains("1 values for 2 columns"));
        assert!(err("INSERT INTO costs VALUES (1)").contains("must list its columns"));
    }

    #[test]
    fn insert_select_may_only_name_grouped_columns_outside_aggregates() {
        assert!(err("INSERT INTO costs (service, amount) SELECT service, SUM(amount) FROM costs")
            .contains("service must be inside"));
        CustomSql::parse("INSERT INTO costs (service, amount) SELECT service, SUM(amount) FROM costs GROUP BY service")
            .unwrap();
    }

    #[test]
    fn mixed_statement_kinds_in_one_rule_are_refused() {
        assert!(err("UPDATE costs SET amount = 1; INSERT INTO costs (amount) VALUES (1)").contains("mixes"));
    }
}

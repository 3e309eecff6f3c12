//! The custom-SQL billing rule grammar (docs/design.md "Billing rules"), parsed with sqlparser into costd's own
//! closed, typed AST ([`RuleExpr`]). A rule is checked here, when it is created or updated, for shape *and*
//! types, so that a rule that was accepted can never make a costs query fail.
//!
//! Accepted, against the single table `costs` and its columns ([`CostColumn`]; `costs.col` or `col`):
//! - `UPDATE costs SET col = expr, … [WHERE cond]`
//! - `INSERT INTO costs (cols) VALUES (…), …` (literal rows)
//! - `INSERT INTO costs (cols) SELECT … FROM costs [WHERE …] [GROUP BY …] [HAVING …]`
//!
//! Expressions: literals, columns, `+ - * / %`, comparisons, AND/OR/NOT, LIKE, IN (list), BETWEEN,
//! IS \[NOT\] NULL, CASE, and the functions SUM, COUNT, MIN, MAX (aggregates: only in INSERT … SELECT),
//! COALESCE, ROUND, LOWER, UPPER. SQL comments are refused: a rule's text is what runs.
//!
//! Types: `accrued_at` is a date; `amount` and `usage_amount` are numbers (exact, 18 places); every other
//! column is text. A string literal where a date is expected must be a date (`'2024-07-01'`); a number must
//! fit an amount (at most 20 digits before the point and 18 after); both sides of a comparison, the values
//! of IN/BETWEEN/CASE/COALESCE, and an assigned value and its column must agree. `accrued_at`, `amount`,
//! `currency`, `cost_type` and `provider` never hold NULL, so a value that may be NULL (a nullable column, a
//! CASE without ELSE, a division) must be wrapped (`COALESCE(amount / usage_amount, 0)`). Division or
//! modulo by a literal zero is refused; by a value that turns out zero, the result is NULL.
//!
//! The rule is never sent to a database: the checked statements are what the costs engine compiles.

use std::fmt;

use chrono::NaiveDate;
use sqlparser::ast::{
    self as sql, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Insert,
    ObjectName, Query, Select, SelectFlavor, SelectItem, SetExpr, Statement, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::amount;

/// A column of the `costs` table as custom SQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CostColumn {
    AccruedAt,
    Amount,
    Currency,
    UsageAmount,
    UsageUnit,
    Provider,
    BillingAccountId,
    AccountId,
    Service,
    Region,
    ResourceId,
    CostCategory,
    CostSubCategory,
    CostType,
}

/// The type of a value in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Date,
    /// An exact decimal at 18 places (an amount).
    Number,
    Text,
    Boolean,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Date => "a date",
            ValueType::Number => "a number",
            ValueType::Text => "text",
            ValueType::Boolean => "a condition",
        })
    }
}

impl CostColumn {
    /// Every column, in the order the DESIGN lists them.
    pub const ALL: [CostColumn; 14] = [
        CostColumn::AccruedAt,
        CostColumn::Amount,
        CostColumn::Currency,
        CostColumn::UsageAmount,
        CostColumn::UsageUnit,
        CostColumn::Provider,
        CostColumn::BillingAccountId,
        CostColumn::AccountId,
        CostColumn::Service,
        CostColumn::Region,
        CostColumn::ResourceId,
        CostColumn::CostCategory,
        CostColumn::CostSubCategory,
        CostColumn::CostType,
    ];

    /// The name custom SQL uses.
    pub fn sql_name(self) -> &'static str {
        match self {
            CostColumn::AccruedAt => "accrued_at",
            CostColumn::Amount => "amount",
            CostColumn::Currency => "currency",
            CostColumn::UsageAmount => "usage_amount",
            CostColumn::UsageUnit => "usage_unit",
            CostColumn::Provider => "provider",
            CostColumn::BillingAccountId => "billing_account_id",
            CostColumn::AccountId => "account_id",
            CostColumn::Service => "service",
            CostColumn::Region => "region",
            CostColumn::ResourceId => "resource_id",
            CostColumn::CostCategory => "cost_category",
            CostColumn::CostSubCategory => "cost_sub_category",
            CostColumn::CostType => "cost_type",
        }
    }

    /// The column's type.
    pub fn value_type(self) -> ValueType {
        match self {
            CostColumn::AccruedAt => ValueType::Date,
            CostColumn::Amount | CostColumn::UsageAmount => ValueType::Number,
            _ => ValueType::Text,
        }
    }

    /// Whether the column may hold NULL. The ones that may not are what every total is binned, summed and
    /// labelled by.
    pub fn nullable(self) -> bool {
        !matches!(
            self,
            CostColumn::AccruedAt
                | CostColumn::Amount
                | CostColumn::Currency
                | CostColumn::CostType
                | CostColumn::Provider
        )
    }

    fn from_name(name: &str) -> Option<CostColumn> {
        let lower = name.to_ascii_lowercase();
        CostColumn::ALL.into_iter().find(|c| c.sql_name() == lower)
    }
}

/// A literal value, already of its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Date(NaiveDate),
    /// Unscaled at 18 places.
    Number(i128),
    Text(String),
    Boolean(bool),
    /// NULL, typed by where it stands.
    Null(ValueType),
}

/// `+ - * / %` on numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    /// Exact to 18 places, rounded half away from zero; NULL where the divisor is zero.
    Div,
    /// NULL where the divisor is zero.
    Mod,
}

/// Comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// Row-level functions.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarFn {
    Coalesce,
    Lower,
    Upper,
    /// ROUND(x, places): half away from zero, places 0–18.
    Round(u32),
}

/// Aggregates (INSERT … SELECT only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Sum,
    /// A number (COUNT(*) when its argument is absent).
    Count,
    Min,
    Max,
}

/// A checked expression over the costs columns.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleExpr {
    Column(CostColumn),
    Literal(Literal),
    Arith(ArithOp, Box<RuleExpr>, Box<RuleExpr>),
    Negate(Box<RuleExpr>),
    Compare(CmpOp, Box<RuleExpr>, Box<RuleExpr>),
    And(Box<RuleExpr>, Box<RuleExpr>),
    Or(Box<RuleExpr>, Box<RuleExpr>),
    Not(Box<RuleExpr>),
    IsNull {
        expr: Box<RuleExpr>,
        negated: bool,
    },
    Like {
        expr: Box<RuleExpr>,
        pattern: Box<RuleExpr>,
        negated: bool,
    },
    InList {
        expr: Box<RuleExpr>,
        list: Vec<RuleExpr>,
        negated: bool,
    },
    Between {
        expr: Box<RuleExpr>,
        low: Box<RuleExpr>,
        high: Box<RuleExpr>,
        negated: bool,
    },
    /// Searched CASE (a CASE with an operand becomes `operand = value` per branch).
    Case {
        branches: Vec<(RuleExpr, RuleExpr)>,
        otherwise: Option<Box<RuleExpr>>,
    },
    Scalar(ScalarFn, Vec<RuleExpr>),
    Aggregate(AggFn, Option<Box<RuleExpr>>),
}

/// Where a custom statement runs among a managed account's rules (docs/design.md: inserts, transforms, monthly inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleGroup {
    /// `INSERT INTO costs … VALUES …`: rows added before any transform.
    CostInsert,
    /// Exclusions, adjustments and `UPDATE costs …`.
    Transform,
    /// Credits, charges and `INSERT INTO costs … SELECT … FROM costs …`, per calendar month.
    MonthlyInsert,
}

impl RuleGroup {
    /// How the store keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleGroup::CostInsert => "cost_insert",
            RuleGroup::Transform => "transform",
            RuleGroup::MonthlyInsert => "monthly_insert",
        }
    }
}

impl std::str::FromStr for RuleGroup {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cost_insert" => Ok(RuleGroup::CostInsert),
            "transform" => Ok(RuleGroup::Transform),
            "monthly_insert" => Ok(RuleGroup::MonthlyInsert),
            other => Err(format!("unknown rule group {other:?}")),
        }
    }
}

/// One checked statement of a custom rule, in the form the engine compiles.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomStatement {
    /// `UPDATE costs SET … [WHERE …]`.
    Update { assignments: Vec<(CostColumn, RuleExpr)>, selection: Option<RuleExpr> },
    /// `INSERT INTO costs (columns) VALUES rows` (every value a literal of its column's type).
    InsertValues { columns: Vec<CostColumn>, rows: Vec<Vec<RuleExpr>> },
    /// `INSERT INTO costs (columns) SELECT projection FROM costs [WHERE] [GROUP BY] [HAVING]`.
    InsertSelect {
        columns: Vec<CostColumn>,
        projection: Vec<RuleExpr>,
        selection: Option<RuleExpr>,
        group_by: Vec<RuleExpr>,
        having: Option<RuleExpr>,
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

    /// Whether the statement writes `column` (an assignment or an inserted column).
    pub fn writes(&self, column: CostColumn) -> bool {
        match self {
            CustomStatement::Update { assignments, .. } => assignments.iter().any(|(c, _)| *c == column),
            CustomStatement::InsertValues { columns, .. } | CustomStatement::InsertSelect { columns, .. } => {
                columns.contains(&column)
            }
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

/// Deepest expression nesting accepted: far beyond any real rule, and a bound on the checker's recursion.
const MAX_DEPTH: usize = 64;
/// Deepest nesting of parentheses accepted in the text (see [`crate::nesting_depth`]).
const MAX_NESTING: usize = 24;
/// Most statements one rule may hold: each is a step of every query the rule runs in (and an
/// `INSERT … SELECT` one that keeps the rows so far in memory), so a rule is a program of bounded length.
pub const MAX_STATEMENTS: usize = 32;

impl CustomSql {
    /// Parses and checks a rule's SQL.
    pub fn parse(sql: &str) -> Result<CustomSql, GrammarError> {
        if crate::nesting_depth(sql) > MAX_NESTING {
            return refuse(format!("nests parentheses more than {MAX_NESTING} levels deep"));
        }
        let dialect = GenericDialect {};
        let tokens =
            Tokenizer::new(&dialect, sql).tokenize().map_err(|e| GrammarError(format!("could not be parsed: {e}")))?;
        if tokens.iter().any(|t| {
            matches!(t, Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)))
        }) {
            return refuse("comments are not allowed (a rule's text must be exactly what runs)");
        }
        let parsed = Parser::new(&dialect)
            .with_recursion_limit(MAX_DEPTH)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
            .map_err(|e| GrammarError(format!("could not be parsed: {e}")))?;
        if parsed.is_empty() {
            return refuse("has no statement; write UPDATE costs … or INSERT INTO costs …");
        }
        if parsed.len() > MAX_STATEMENTS {
            return refuse(format!(
                "has {} statements; a rule may hold at most {MAX_STATEMENTS} (split it into several rules)",
                parsed.len()
            ));
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
            let ctx = Ctx { columns: true, aggregates: false, depth: 0 };
            let mut checked: Vec<(CostColumn, RuleExpr)> = Vec::with_capacity(assignments.len());
            for a in assignments {
                let column = match &a.target {
                    sql::AssignmentTarget::ColumnName(name) => column_of_name(name)?,
                    other => return refuse(format!("cannot assign to {other}")),
                };
                if checked.iter().any(|(c, _)| *c == column) {
                    return refuse(format!("{} is assigned twice", column.sql_name()));
                }
                let value = assigned(column, &a.value, ctx)?;
                checked.push((column, value));
            }
            let selection = selection.as_ref().map(|cond| condition(cond, ctx, "WHERE")).transpose()?;
            Ok(CustomStatement::Update { assignments: checked, selection })
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

fn check_column(name: &str) -> Result<CostColumn, GrammarError> {
    CostColumn::from_name(name).map_or_else(
        || {
            let names: Vec<&str> = CostColumn::ALL.iter().map(|c| c.sql_name()).collect();
            refuse(format!("unknown column {name}; the columns of costs are {}", names.join(", ")))
        },
        Ok,
    )
}

/// `col` or `costs.col`.
fn column_of_parts(parts: &[&str]) -> Result<CostColumn, GrammarError> {
    match parts {
        [col] => check_column(col),
        [table, col] => {
            check_table(table)?;
            check_column(col)
        }
        _ => refuse(format!("{} is not a column of costs", parts.join("."))),
    }
}

fn column_of_name(name: &ObjectName) -> Result<CostColumn, GrammarError> {
    let parts: Vec<&str> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.as_str()).collect();
    column_of_parts(&parts)
}

/// A value for `column` (an assignment, a VALUES cell, a SELECT projection): of its type, and not NULL
/// where the column never is.
fn assigned(column: CostColumn, e: &Expr, ctx: Ctx) -> Result<RuleExpr, GrammarError> {
    let name = column.sql_name();
    let ty = column.value_type();
    let typed = check_expr(e, ctx, Some(ty))?;
    match typed.ty {
        Some(t) if t != ty => {
            return refuse(format!("{name} is {ty}, but {e} is {t}"));
        }
        _ => {}
    }
    if typed.nullable && !column.nullable() {
        return refuse(format!(
            "{name} can never be NULL, but {e} may be NULL (a nullable column, a CASE without ELSE or a \
             division can be); wrap it in COALESCE(…, default)"
        ));
    }
    Ok(typed.expr.retyped(ty))
}

/// A WHERE / HAVING / WHEN condition.
fn condition(e: &Expr, ctx: Ctx, clause: &str) -> Result<RuleExpr, GrammarError> {
    let typed = check_expr(e, ctx, Some(ValueType::Boolean))?;
    match typed.ty {
        Some(ValueType::Boolean) | None => Ok(typed.expr.retyped(ValueType::Boolean)),
        Some(t) => refuse(format!("{clause} needs a condition, but {e} is {t}")),
    }
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
            return refuse(format!("column {} is listed twice", col.sql_name()));
        }
        columns.push(col);
    }
    let Some(source) = &insert.source else {
        return refuse("INSERT needs VALUES or SELECT");
    };
    check_query_clauses(source)?;
    match source.body.as_ref() {
        SetExpr::Values(values) => {
            let ctx = Ctx { columns: false, aggregates: false, depth: 0 };
            let mut rows = Vec::with_capacity(values.rows.len());
            for (i, row) in values.rows.iter().enumerate() {
                if row.len() != columns.len() {
                    return refuse(format!(
                        "VALUES row {} has {} values for {} columns",
                        i + 1,
                        row.len(),
                        columns.len()
                    ));
                }
                let checked = columns.iter().zip(row).map(|(c, e)| assigned(*c, e, ctx)).collect::<Result<_, _>>()?;
                rows.push(checked);
            }
            Ok(CustomStatement::InsertValues { columns, rows })
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

fn check_select(select: &Select, columns: Vec<CostColumn>) -> Result<CustomStatement, GrammarError> {
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
    let with_aggregates = Ctx { columns: true, aggregates: true, depth: 0 };
    let row_level = Ctx { columns: true, aggregates: false, depth: 0 };
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            exprs.iter().map(|e| check_expr(e, row_level, None).map(|t| t.expr)).collect::<Result<Vec<_>, _>>()?
        }
        other => return refuse(format!("{other} is not allowed; list GROUP BY expressions")),
    };
    let grouped: Vec<CostColumn> = group_by
        .iter()
        .filter_map(|g| match g {
            RuleExpr::Column(c) => Some(*c),
            _ => None,
        })
        .collect();
    let mut projection = Vec::with_capacity(select.projection.len());
    for (item, column) in select.projection.iter().zip(&columns) {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            other => return refuse(format!("{other} is not allowed; name each inserted value")),
        };
        let value = assigned(*column, expr, with_aggregates)?;
        ungrouped_column(&value, &grouped)?;
        projection.push(value);
    }
    let selection = select.selection.as_ref().map(|c| condition(c, row_level, "WHERE")).transpose()?;
    let having = select.having.as_ref().map(|h| condition(h, with_aggregates, "HAVING")).transpose()?;
    if let Some(h) = &having {
        ungrouped_column(h, &grouped)?;
    }
    Ok(CustomStatement::InsertSelect { columns, projection, selection, group_by, having })
}

/// Outside an aggregate, an INSERT … SELECT may only name columns it groups by (per month, per group).
fn ungrouped_column(e: &RuleExpr, grouped: &[CostColumn]) -> Result<(), GrammarError> {
    let mut bare = Vec::new();
    e.bare_columns(&mut bare);
    match bare.into_iter().find(|c| !grouped.contains(c)) {
        Some(c) => refuse(format!("{} must be inside SUM/COUNT/MIN/MAX or listed in GROUP BY", c.sql_name())),
        None => Ok(()),
    }
}

impl RuleExpr {
    /// Columns referenced outside any aggregate call.
    fn bare_columns(&self, out: &mut Vec<CostColumn>) {
        match self {
            RuleExpr::Column(c) => out.push(*c),
            RuleExpr::Literal(_) | RuleExpr::Aggregate(..) => {}
            RuleExpr::Arith(_, a, b) | RuleExpr::Compare(_, a, b) | RuleExpr::And(a, b) | RuleExpr::Or(a, b) => {
                a.bare_columns(out);
                b.bare_columns(out);
            }
            RuleExpr::Negate(e) | RuleExpr::Not(e) | RuleExpr::IsNull { expr: e, .. } => e.bare_columns(out),
            RuleExpr::Like { expr, pattern, .. } => {
                expr.bare_columns(out);
                pattern.bare_columns(out);
            }
            RuleExpr::InList { expr, list, .. } => {
                expr.bare_columns(out);
                list.iter().for_each(|x| x.bare_columns(out));
            }
            RuleExpr::Between { expr, low, high, .. } => {
                expr.bare_columns(out);
                low.bare_columns(out);
                high.bare_columns(out);
            }
            RuleExpr::Case { branches, otherwise } => {
                for (c, r) in branches {
                    c.bare_columns(out);
                    r.bare_columns(out);
                }
                otherwise.iter().for_each(|x| x.bare_columns(out));
            }
            RuleExpr::Scalar(_, args) => args.iter().for_each(|x| x.bare_columns(out)),
        }
    }

    /// Gives an untyped NULL the type of where it stands.
    fn retyped(self, ty: ValueType) -> RuleExpr {
        match self {
            RuleExpr::Literal(Literal::Null(_)) => RuleExpr::Literal(Literal::Null(ty)),
            other => other,
        }
    }

    fn is_zero_literal(&self) -> bool {
        matches!(self, RuleExpr::Literal(Literal::Number(0)))
    }

    fn nonzero_literal(&self) -> bool {
        matches!(self, RuleExpr::Literal(Literal::Number(n)) if *n != 0)
    }
}

/// What an expression may contain where it stands.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Column references (not in `VALUES`).
    columns: bool,
    /// SUM/COUNT/MIN/MAX (only in `INSERT … SELECT` projections and HAVING, never nested).
    aggregates: bool,
    depth: usize,
}

impl Ctx {
    fn deeper(self) -> Result<Ctx, GrammarError> {
        if self.depth >= MAX_DEPTH {
            return refuse(format!("is nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(Ctx { depth: self.depth + 1, ..self })
    }
}

/// A checked expression with its type (`None`: a bare NULL, whose type comes from where it stands) and
/// whether it may be NULL.
struct Typed {
    expr: RuleExpr,
    ty: Option<ValueType>,
    nullable: bool,
}

impl Typed {
    fn new(expr: RuleExpr, ty: ValueType, nullable: bool) -> Typed {
        Typed { expr, ty: Some(ty), nullable }
    }
}

/// Two types that must agree (NULL agrees with anything); the common one.
fn unify(
    what: &dyn fmt::Display,
    a: Option<ValueType>,
    b: Option<ValueType>,
) -> Result<Option<ValueType>, GrammarError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => refuse(format!("{what} mixes {x} and {y}")),
        (x, y) => Ok(x.or(y)),
    }
}

/// Checks `e` against a type it should have (`expected`), which decides how string literals read (a date
/// where a date is expected). The caller compares the result's type with what it needs.
fn check_expr(e: &Expr, ctx: Ctx, expected: Option<ValueType>) -> Result<Typed, GrammarError> {
    let ctx = ctx.deeper()?;
    let number = |t: Typed, what: &Expr| -> Result<Typed, GrammarError> {
        match t.ty {
            Some(ValueType::Number) | None => Ok(Typed { expr: t.expr.retyped(ValueType::Number), ..t }),
            Some(other) => refuse(format!("{what} is {other}, where a number is needed")),
        }
    };
    let boolean = |t: Typed, what: &Expr| -> Result<Typed, GrammarError> {
        match t.ty {
            Some(ValueType::Boolean) | None => Ok(Typed { expr: t.expr.retyped(ValueType::Boolean), ..t }),
            Some(other) => refuse(format!("{what} is {other}, where a condition is needed")),
        }
    };
    let text = |t: Typed, what: &Expr| -> Result<Typed, GrammarError> {
        match t.ty {
            Some(ValueType::Text) | None => Ok(Typed { expr: t.expr.retyped(ValueType::Text), ..t }),
            Some(other) => refuse(format!("{what} is {other}, where text is needed")),
        }
    };
    match e {
        Expr::Identifier(id) => column_ref(&[id.value.as_str()], ctx),
        Expr::CompoundIdentifier(ids) => {
            let parts: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
            column_ref(&parts, ctx)
        }
        Expr::Value(v) => literal(&v.value, expected),
        Expr::Nested(inner) => check_expr(inner, ctx, expected),
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator as B;
            match op {
                B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                    let l = number(check_expr(left, ctx, Some(ValueType::Number))?, left)?;
                    let r = number(check_expr(right, ctx, Some(ValueType::Number))?, right)?;
                    let op = match op {
                        B::Plus => ArithOp::Add,
                        B::Minus => ArithOp::Sub,
                        B::Multiply => ArithOp::Mul,
                        B::Divide => ArithOp::Div,
                        _ => ArithOp::Mod,
                    };
                    if matches!(op, ArithOp::Div | ArithOp::Mod) && r.expr.is_zero_literal() {
                        return refuse(format!("{e} divides by zero"));
                    }
                    let may_divide_by_zero = matches!(op, ArithOp::Div | ArithOp::Mod) && !r.expr.nonzero_literal();
                    let nullable = l.nullable || r.nullable || may_divide_by_zero;
                    Ok(Typed::new(RuleExpr::Arith(op, Box::new(l.expr), Box::new(r.expr)), ValueType::Number, nullable))
                }
                B::Gt | B::Lt | B::GtEq | B::LtEq | B::Eq | B::NotEq => {
                    let (l, r) = same_type_pair(left, right, ctx)?;
                    let op = match op {
                        B::Gt => CmpOp::Gt,
                        B::Lt => CmpOp::Lt,
                        B::GtEq => CmpOp::GtEq,
                        B::LtEq => CmpOp::LtEq,
                        B::Eq => CmpOp::Eq,
                        _ => CmpOp::NotEq,
                    };
                    let nullable = l.nullable || r.nullable;
                    Ok(Typed::new(
                        RuleExpr::Compare(op, Box::new(l.expr), Box::new(r.expr)),
                        ValueType::Boolean,
                        nullable,
                    ))
                }
                B::And | B::Or => {
                    let l = boolean(check_expr(left, ctx, Some(ValueType::Boolean))?, left)?;
                    let r = boolean(check_expr(right, ctx, Some(ValueType::Boolean))?, right)?;
                    let nullable = l.nullable || r.nullable;
                    let expr = if *op == B::And {
                        RuleExpr::And(Box::new(l.expr), Box::new(r.expr))
                    } else {
                        RuleExpr::Or(Box::new(l.expr), Box::new(r.expr))
                    };
                    Ok(Typed::new(expr, ValueType::Boolean, nullable))
                }
                other => refuse(format!("the operator {other} is not allowed")),
            }
        }
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => {
                let t = boolean(check_expr(expr, ctx, Some(ValueType::Boolean))?, expr)?;
                Ok(Typed::new(RuleExpr::Not(Box::new(t.expr)), ValueType::Boolean, t.nullable))
            }
            UnaryOperator::Minus | UnaryOperator::Plus => {
                let t = number(check_expr(expr, ctx, Some(ValueType::Number))?, expr)?;
                if *op == UnaryOperator::Plus {
                    return Ok(t);
                }
                let negated = match t.expr {
                    RuleExpr::Literal(Literal::Number(n)) => RuleExpr::Literal(Literal::Number(-n)),
                    other => RuleExpr::Negate(Box::new(other)),
                };
                Ok(Typed::new(negated, ValueType::Number, t.nullable))
            }
            other => refuse(format!("the operator {other} is not allowed")),
        },
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            let t = check_expr(inner, ctx, None)?;
            let negated = matches!(e, Expr::IsNotNull(_));
            Ok(Typed::new(RuleExpr::IsNull { expr: Box::new(t.expr), negated }, ValueType::Boolean, false))
        }
        Expr::Like { negated, any: false, expr, pattern, escape_char: None } => {
            let l = text(check_expr(expr, ctx, Some(ValueType::Text))?, expr)?;
            let p = text(check_expr(pattern, ctx, Some(ValueType::Text))?, pattern)?;
            let nullable = l.nullable || p.nullable;
            let like = RuleExpr::Like { expr: Box::new(l.expr), pattern: Box::new(p.expr), negated: *negated };
            Ok(Typed::new(like, ValueType::Boolean, nullable))
        }
        Expr::InList { expr, list, negated } => {
            if list.is_empty() {
                return refuse("IN () needs at least one value");
            }
            let head = check_expr(expr, ctx, None)?;
            let mut ty = head.ty;
            let mut nullable = head.nullable;
            let mut items = Vec::with_capacity(list.len());
            for item in list {
                let t = check_expr(item, ctx, ty)?;
                ty = unify(e, ty, t.ty)?;
                nullable |= t.nullable;
                items.push(t.expr);
            }
            let ty = ty.unwrap_or(ValueType::Text);
            let items = items.into_iter().map(|i| i.retyped(ty)).collect();
            let expr = RuleExpr::InList { expr: Box::new(head.expr.retyped(ty)), list: items, negated: *negated };
            Ok(Typed::new(expr, ValueType::Boolean, nullable))
        }
        Expr::Between { expr, negated, low, high } => {
            let head = check_expr(expr, ctx, None)?;
            let lo = check_expr(low, ctx, head.ty)?;
            let hi = check_expr(high, ctx, head.ty.or(lo.ty))?;
            let ty = unify(e, unify(e, head.ty, lo.ty)?, hi.ty)?.unwrap_or(ValueType::Number);
            let nullable = head.nullable || lo.nullable || hi.nullable;
            let expr = RuleExpr::Between {
                expr: Box::new(head.expr.retyped(ty)),
                low: Box::new(lo.expr.retyped(ty)),
                high: Box::new(hi.expr.retyped(ty)),
                negated: *negated,
            };
            Ok(Typed::new(expr, ValueType::Boolean, nullable))
        }
        Expr::Case { operand, conditions, else_result } => {
            let operand = operand.as_ref().map(|o| check_expr(o, ctx, None)).transpose()?;
            let mut branches = Vec::with_capacity(conditions.len());
            let mut ty = expected;
            let mut result_ty: Option<ValueType> = None;
            let mut nullable = else_result.is_none();
            for when in conditions {
                let cond = match &operand {
                    // CASE x WHEN v THEN …: x = v.
                    Some(o) => {
                        let v = check_expr(&when.condition, ctx, o.ty)?;
                        let t = unify(e, o.ty, v.ty)?.unwrap_or(ValueType::Text);
                        RuleExpr::Compare(CmpOp::Eq, Box::new(o.expr.clone().retyped(t)), Box::new(v.expr.retyped(t)))
                    }
                    None => condition(&when.condition, ctx, "WHEN")?,
                };
                let r = check_expr(&when.result, ctx, ty)?;
                result_ty = unify(e, result_ty, r.ty)?;
                ty = ty.or(r.ty);
                nullable |= r.nullable;
                branches.push((cond, r.expr));
            }
            let otherwise = match else_result {
                Some(x) => {
                    let r = check_expr(x, ctx, ty)?;
                    result_ty = unify(e, result_ty, r.ty)?;
                    nullable |= r.nullable;
                    Some(r.expr)
                }
                None => None,
            };
            let Some(ty) = result_ty.or(expected) else {
                return refuse(format!("{e} gives only NULL"));
            };
            let branches = branches.into_iter().map(|(c, r)| (c, r.retyped(ty))).collect();
            let case = RuleExpr::Case { branches, otherwise: otherwise.map(|o| Box::new(o.retyped(ty))) };
            Ok(Typed::new(case, ty, nullable))
        }
        Expr::Function(f) => function(f, e, ctx, expected),
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
            refuse("subqueries are not allowed; a rule reads only the costs table")
        }
        other => refuse(format!("the expression {other} is not allowed")),
    }
}

/// A column where one may stand.
fn column_ref(parts: &[&str], ctx: Ctx) -> Result<Typed, GrammarError> {
    if !ctx.columns {
        return refuse(format!("VALUES cannot refer to the column {}", parts.join(".")));
    }
    let c = column_of_parts(parts)?;
    Ok(Typed::new(RuleExpr::Column(c), c.value_type(), c.nullable()))
}

/// A literal, read as the type expected where it stands.
fn literal(v: &Value, expected: Option<ValueType>) -> Result<Typed, GrammarError> {
    match v {
        Value::Number(n, _) => {
            let unscaled = amount::parse("the number", n).map_err(|e| {
                GrammarError(format!(
                    "{e} (a number in a rule must fit an amount: 20 digits before the point, 18 after)"
                ))
            })?;
            Ok(Typed::new(RuleExpr::Literal(Literal::Number(unscaled)), ValueType::Number, false))
        }
        Value::SingleQuotedString(s) => match expected {
            Some(ValueType::Date) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) if s.len() == 10 => Ok(Typed::new(RuleExpr::Literal(Literal::Date(d)), ValueType::Date, false)),
                _ => refuse(format!("'{s}' is not a date like '2024-07-01'")),
            },
            _ => Ok(Typed::new(RuleExpr::Literal(Literal::Text(s.clone())), ValueType::Text, false)),
        },
        Value::Boolean(b) => Ok(Typed::new(RuleExpr::Literal(Literal::Boolean(*b)), ValueType::Boolean, false)),
        Value::Null => Ok(Typed {
            expr: RuleExpr::Literal(Literal::Null(expected.unwrap_or(ValueType::Text))),
            ty: None,
            nullable: true,
        }),
        Value::DoubleQuotedString(s) => refuse(format!("\"{s}\" is not allowed: strings take single quotes")),
        other => refuse(format!("the value {other} is not allowed")),
    }
}

/// Both sides of a comparison, of one type: a literal side reads as the other side's type.
fn same_type_pair(left: &Expr, right: &Expr, ctx: Ctx) -> Result<(Typed, Typed), GrammarError> {
    let is_literal = |e: &Expr| matches!(e, Expr::Value(_));
    let (l, r) = if is_literal(left) && !is_literal(right) {
        let r = check_expr(right, ctx, None)?;
        let l = check_expr(left, ctx, r.ty)?;
        (l, r)
    } else {
        let l = check_expr(left, ctx, None)?;
        let r = check_expr(right, ctx, l.ty)?;
        (l, r)
    };
    let what = format!("{left} compared with {right}");
    let ty = unify(&what, l.ty, r.ty)?.unwrap_or(ValueType::Text);
    Ok((Typed { expr: l.expr.retyped(ty), ..l }, Typed { expr: r.expr.retyped(ty), ..r }))
}

const AGGREGATES: [&str; 4] = ["SUM", "COUNT", "MIN", "MAX"];
const SCALAR_FUNCTIONS: [&str; 4] = ["COALESCE", "ROUND", "LOWER", "UPPER"];

fn function(f: &sql::Function, e: &Expr, ctx: Ctx, expected: Option<ValueType>) -> Result<Typed, GrammarError> {
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
    let inner = Ctx { aggregates: ctx.aggregates && !is_aggregate, ..ctx };
    let mut args: Vec<&Expr> = Vec::with_capacity(list.args.len());
    for arg in &list.args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(a)) => args.push(a),
            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if name == "COUNT" => {} // COUNT(*): no argument
            other => return refuse(format!("the argument {other} of {name} is not allowed")),
        }
    }
    match name.as_str() {
        "COUNT" => {
            let arg = args.first().map(|a| check_expr(a, inner, None)).transpose()?;
            Ok(Typed::new(RuleExpr::Aggregate(AggFn::Count, arg.map(|a| Box::new(a.expr))), ValueType::Number, false))
        }
        "SUM" => {
            let a = check_expr(args[0], inner, Some(ValueType::Number))?;
            if a.ty.is_some_and(|t| t != ValueType::Number) {
                return refuse(format!("SUM needs a number, but {} is {}", args[0], a.ty.expect("checked")));
            }
            let arg = a.expr.retyped(ValueType::Number);
            Ok(Typed::new(RuleExpr::Aggregate(AggFn::Sum, Some(Box::new(arg))), ValueType::Number, a.nullable))
        }
        "MIN" | "MAX" => {
            let a = check_expr(args[0], inner, expected)?;
            let Some(ty) = a.ty.or(expected) else { return refuse(format!("{e} has no type")) };
            if ty == ValueType::Boolean {
                return refuse(format!("{name} needs a date, a number or text, not a condition"));
            }
            let agg = if name == "MIN" { AggFn::Min } else { AggFn::Max };
            Ok(Typed::new(RuleExpr::Aggregate(agg, Some(Box::new(a.expr.retyped(ty)))), ty, a.nullable))
        }
        "COALESCE" => {
            let mut ty = expected;
            let mut checked = Vec::with_capacity(args.len());
            let mut nullable = true;
            let mut result_ty = None;
            for a in &args {
                let t = check_expr(a, inner, ty)?;
                result_ty = unify(e, result_ty, t.ty)?;
                ty = ty.or(t.ty);
                nullable &= t.nullable;
                checked.push(t.expr);
            }
            let Some(ty) = result_ty.or(expected) else { return refuse(format!("{e} gives only NULL")) };
            if ty == ValueType::Boolean {
                return refuse("COALESCE needs dates, numbers or text, not conditions");
            }
            let checked = checked.into_iter().map(|c| c.retyped(ty)).collect();
            Ok(Typed::new(RuleExpr::Scalar(ScalarFn::Coalesce, checked), ty, nullable))
        }
        "LOWER" | "UPPER" => {
            let a = check_expr(args[0], inner, Some(ValueType::Text))?;
            if a.ty.is_some_and(|t| t != ValueType::Text) {
                return refuse(format!("{name} needs text, but {} is {}", args[0], a.ty.expect("checked")));
            }
            let func = if name == "LOWER" { ScalarFn::Lower } else { ScalarFn::Upper };
            Ok(Typed::new(RuleExpr::Scalar(func, vec![a.expr.retyped(ValueType::Text)]), ValueType::Text, a.nullable))
        }
        _ => {
            // ROUND(x [, places])
            let a = check_expr(args[0], inner, Some(ValueType::Number))?;
            if a.ty.is_some_and(|t| t != ValueType::Number) {
                return refuse(format!("ROUND needs a number, but {} is {}", args[0], a.ty.expect("checked")));
            }
            let places = match args.get(1) {
                None => 0,
                Some(Expr::Value(v)) => match &v.value {
                    Value::Number(n, _) => match n.parse::<u32>() {
                        Ok(p) if p <= amount::SCALE => p,
                        _ => return refuse(format!("ROUND's places must be a whole number from 0 to 18, not {n}")),
                    },
                    other => return refuse(format!("ROUND's places must be a whole number from 0 to 18, not {other}")),
                },
                Some(other) => {
                    return refuse(format!("ROUND's places must be a whole number from 0 to 18, not {other}"))
                }
            };
            let arg = a.expr.retyped(ValueType::Number);
            Ok(Typed::new(RuleExpr::Scalar(ScalarFn::Round(places), vec![arg]), ValueType::Number, a.nullable))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(sql: &str) -> String {
        CustomSql::parse(sql).unwrap_err().to_string()
    }

    fn ok(sql: &str) -> CustomSql {
        CustomSql::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn a_rule_holds_a_bounded_number_of_statements() {
        let statement = "UPDATE costs SET amount = amount * 2";
        ok(&vec![statement; MAX_STATEMENTS].join("; "));
        let e = err(&vec![statement; MAX_STATEMENTS + 1].join("; "));
        assert!(e.contains("33 statements") && e.contains("at most 32"), "{e}");
    }

    #[test]
    fn vantage_example_update_is_accepted() {
        let rule = ok("UPDATE costs SET costs.amount = costs.amount * 0.95");
        assert_eq!(rule.group(), RuleGroup::Transform);
        let CustomStatement::Update { assignments, .. } = &rule.statements()[0] else { panic!() };
        assert_eq!(assignments[0].0, CostColumn::Amount);
        assert_eq!(
            assignments[0].1,
            RuleExpr::Arith(
                ArithOp::Mul,
                Box::new(RuleExpr::Column(CostColumn::Amount)),
                Box::new(RuleExpr::Literal(Literal::Number(950_000_000_000_000_000)))
            )
        );
    }

    #[test]
    fn update_with_case_where_and_functions_is_accepted() {
        ok("UPDATE costs SET amount = CASE WHEN LOWER(service) LIKE '%ec2%' THEN ROUND(amount * 1.1, 2) \
             ELSE amount END WHERE provider IN ('aws', 'gcp') AND accrued_at BETWEEN '2024-01-01' AND '2024-12-31' \
             AND region IS NOT NULL AND NOT (cost_type = 'Tax')");
    }

    #[test]
    fn insert_values_and_insert_select_are_accepted_in_their_groups() {
        let v = ok("INSERT INTO costs (accrued_at, amount, service) VALUES ('2024-05-01', 100, 'Support'), \
                    ('2024-06-01', -5.5, 'Support')");
        assert_eq!(v.group(), RuleGroup::CostInsert);
        let s = ok("INSERT INTO costs (service, amount) SELECT 'Support', SUM(amount) * 0.03 FROM costs \
                    WHERE provider = 'aws' GROUP BY service HAVING COUNT(*) > 0");
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
        ok("INSERT INTO costs (service, amount) SELECT service, SUM(amount) FROM costs GROUP BY service");
    }

    #[test]
    fn mixed_statement_kinds_in_one_rule_are_refused() {
        assert!(err("UPDATE costs SET amount = 1; INSERT INTO costs (amount) VALUES (1)").contains("mixes"));
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_naming_column_and_value() {
        let e = err("UPDATE costs SET accrued_at = 'not a date'");
        assert!(e.contains("'not a date' is not a date"), "{e}");
        let e = err("INSERT INTO costs (amount, service) VALUES ('abc', 'x')");
        assert!(e.contains("amount is a number, but 'abc' is text"), "{e}");
        let e = err("UPDATE costs SET service = 5");
        assert!(e.contains("service is text, but 5 is a number"), "{e}");
        let e = err("UPDATE costs SET amount = service");
        assert!(e.contains("amount is a number, but service is text"), "{e}");
        let e = err("UPDATE costs SET amount = amount WHERE accrued_at > 'soon'");
        assert!(e.contains("'soon' is not a date"), "{e}");
        let e = err("UPDATE costs SET amount = amount WHERE amount > 'lots'");
        assert!(e.contains("mixes a number and text"), "{e}");
        let e = err("UPDATE costs SET amount = amount + accrued_at");
        assert!(e.contains("accrued_at is a date, where a number is needed"), "{e}");
        let e = err("UPDATE costs SET service = LOWER(amount)");
        assert!(e.contains("LOWER needs text"), "{e}");
        let e = err("UPDATE costs SET amount = amount WHERE service");
        assert!(e.contains("WHERE needs a condition"), "{e}");
        let e = err("UPDATE costs SET amount = CASE WHEN service = 'a' THEN 1 ELSE 'x' END");
        assert!(e.contains("mixes a number and text"), "{e}");
    }

    #[test]
    fn division_by_a_literal_zero_and_numbers_beyond_an_amount_are_refused() {
        assert!(err("UPDATE costs SET amount = COALESCE(amount / 0, 0)").contains("divides by zero"));
        assert!(err("UPDATE costs SET amount = COALESCE(amount % 0.0, 0)").contains("divides by zero"));
        let e = err("UPDATE costs SET amount = amount * 1e400");
        assert!(e.contains("too large"), "{e}");
        let e = err("UPDATE costs SET amount = amount * 0.0000000000000000001");
        assert!(e.contains("more than 18 decimal places"), "{e}");
        ok("UPDATE costs SET amount = amount * 99999999999999999999.999999999999999999");
    }

    #[test]
    fn a_value_that_may_be_null_cannot_go_where_null_never_is() {
        let e = err("UPDATE costs SET amount = amount / usage_amount");
        assert!(e.contains("amount can never be NULL"), "{e}");
        ok("UPDATE costs SET amount = COALESCE(amount / usage_amount, 0)");
        ok("UPDATE costs SET amount = amount / 4");
        assert!(err("UPDATE costs SET currency = NULL").contains("currency can never be NULL"));
        assert!(err("UPDATE costs SET amount = CASE WHEN region = 'x' THEN 0 END").contains("can never be NULL"));
        ok("UPDATE costs SET region = NULL");
        ok("UPDATE costs SET service = CASE WHEN region = 'x' THEN 'X' END");
    }

    #[test]
    fn literals_take_the_type_of_where_they_stand() {
        let rule = ok("UPDATE costs SET amount = 1 WHERE '2024-07-01' <= accrued_at AND accrued_at IN ('2024-07-02')");
        let CustomStatement::Update { selection: Some(RuleExpr::And(l, r)), .. } = &rule.statements()[0] else {
            panic!()
        };
        let day = |d| RuleExpr::Literal(Literal::Date(NaiveDate::from_ymd_opt(2024, 7, d).unwrap()));
        assert_eq!(
            **l,
            RuleExpr::Compare(CmpOp::LtEq, Box::new(day(1)), Box::new(RuleExpr::Column(CostColumn::AccruedAt)))
        );
        let RuleExpr::InList { list, .. } = &**r else { panic!() };
        assert_eq!(list, &vec![day(2)]);
    }

    #[test]
    fn round_takes_places_from_0_to_18() {
        ok("UPDATE costs SET amount = ROUND(amount, 2)");
        ok("UPDATE costs SET amount = ROUND(amount)");
        assert!(err("UPDATE costs SET amount = ROUND(amount, 19)").contains("from 0 to 18"));
        assert!(err("UPDATE costs SET amount = ROUND(amount, amount)").contains("from 0 to 18"));
    }

    #[test]
    fn absurdly_nested_expressions_are_refused_not_overflowed() {
        let deep = format!("UPDATE costs SET amount = {}amount{}", "(".repeat(500), ")".repeat(500));
        assert!(!err(&deep).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_accepted_or_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = CustomSql::parse(&s);
        }

        #[test]
        fn sql_shaped_noise_is_accepted_or_refused_without_panicking(
            words in proptest::collection::vec(proptest::sample::select(vec![
                "UPDATE", "costs", "SET", "amount", "=", "*", "/", "WHERE", "service", "'x'", "1e400", "0", "(", ")",
                "CASE", "WHEN", "THEN", "ELSE", "END", "INSERT", "INTO", "VALUES", "SELECT", "SUM(", "FROM", "GROUP",
                "BY", ",", "NULL", "AND", "OR", "NOT", "IN", "LIKE", "accrued_at", "'2024-07-01'", "COALESCE(", ";",
            ]), 0..40)
        ) {
            let _ = CustomSql::parse(&words.join(" "));
        }
    }
}

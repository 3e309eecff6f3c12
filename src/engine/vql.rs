//! VQL, Vantage's filter language, parsed with sqlparser's expression parser and compiled to a DataFusion
//! expression over the costs columns. A bad filter is an error sentence that says where.
//!
//! Fields: `costs.provider`, `service`, `region`, `account_id`, `provider_account_id`, `category`,
//! `subcategory`, `resource_id`, `charge_type`. Operators: `=`, `!=`, `<>`, `IN`, `NOT IN`, `LIKE`,
//! `NOT LIKE`, `~*`, `!~*`, `AND`, `OR`, `NOT`, parentheses. Strings take single quotes. AND and OR may not
//! be mixed in one parenthesised group (Vantage's rule, which keeps precedence from surprising anyone).

use std::ops::Not;

use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{col, lit, Expr};
use sqlparser::ast::{self as sql, BinaryOperator, UnaryOperator};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Longest filter accepted.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses accepted; real filters use two to four levels (see
/// [`crate::model::nesting_depth`] for why there is a limit at all).
pub const MAX_FILTER_NESTING: usize = 8;

/// A VQL field: its column and whether LIKE/regex matching makes sense on it (from [`super::schema::FIELDS`]).
fn field(name: &str) -> Option<(&'static str, bool)> {
    super::schema::vql_field(name)
}

/// The fields a filter may name, for messages.
fn fields() -> String {
    let mut names: Vec<String> =
        super::schema::FIELDS.iter().filter_map(|f| f.vql).map(|(n, _)| format!("costs.{n}")).collect();
    names.extend(["tags.name".to_string(), "tags.value".to_string()]);
    names.join(", ")
}

/// A checked VQL filter: its text (what a cache key or a log shows) and its compiled form, which stays
/// inside the engine.
#[derive(Clone)]
pub struct Filter {
    text: String,
    expr: Expr,
}

impl Filter {
    /// Parses and compiles a filter; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Filter, String> {
        Ok(Filter { text: text.to_string(), expr: compile(text)? })
    }

    /// Every filter at once: `(a) AND (b) …` (each already checked); `None` for none.
    pub fn all(filters: Vec<Filter>) -> Option<Filter> {
        filters
            .into_iter()
            .reduce(|a, b| Filter { text: format!("({}) AND ({})", a.text, b.text), expr: a.expr.and(b.expr) })
    }

    /// The filter as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(in crate::engine) fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Filter").field(&self.text).finish()
    }
}

/// Parses and compiles a filter.
fn compile(filter: &str) -> Result<Expr, String> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(format!("filter must be at most {MAX_FILTER_LEN} characters"));
    }
    if crate::model::nesting_depth(filter) > MAX_FILTER_NESTING {
        return Err(format!("filter nests parentheses more than {MAX_FILTER_NESTING} levels deep"));
    }
    let dialect = PostgreSqlDialect {};
    let parsed = Parser::new(&dialect)
        .try_with_sql(filter)
        .and_then(|mut p| {
            let e = p.parse_expr()?;
            p.expect_token(&sqlparser::tokenizer::Token::EOF)?;
            Ok(e)
        })
        .map_err(|e| format!("filter could not be parsed: {e}"))?;
    to_expr(&parsed)
}

fn column(e: &sql::Expr) -> Result<(&'static str, bool, String), String> {
    let parts: Vec<&sql::Ident> = match e {
        sql::Expr::CompoundIdentifier(ids) => ids.iter().collect(),
        sql::Expr::Identifier(id) => vec![id],
        other => return Err(format!("filter: expected a field like costs.service, found {other}")),
    };
    if let Some(q) = parts.iter().find(|p| p.quote_style == Some('"')) {
        return Err(format!("filter: \"{}\" uses double quotes; strings take single quotes ('{}')", q.value, q.value));
    }
    let name = match parts.as_slice() {
        [table, f] if table.value == "costs" => f.value.as_str(),
        [f] => f.value.as_str(),
        _ => "",
    };
    let shown = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(".");
    let (col_name, like_ok) =
        field(name).ok_or_else(|| format!("filter: unknown field {shown}; fields are {}", fields()))?;
    Ok((col_name, like_ok, shown))
}

/// `column = 'value'`; a provider of `custom_provider:<integration token>` names one integration.
fn equals(column: &str, value: String) -> Expr {
    match value.strip_prefix("custom_provider:") {
        Some(integration) if column == "provider" => col("provider")
            .eq(lit("custom_provider"))
            .and(col(super::costs::INTEGRATION).eq(lit(integration.to_string()))),
        _ => col(column).eq(lit(value)),
    }
}

fn string(e: &sql::Expr) -> Result<String, String> {
    match e {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::SingleQuotedString(s) => Ok(s.clone()),
            other => Err(format!("filter: expected a 'single-quoted' string, found {other}")),
        },
        sql::Expr::Identifier(id) if id.quote_style == Some('"') => {
            Err(format!("filter: \"{}\" uses double quotes; strings take single quotes ('{}')", id.value, id.value))
        }
        other => Err(format!("filter: expected a 'single-quoted' string, found {other}")),
    }
}

/// AND and OR may not be mixed without parentheses: `a AND b OR c` is ambiguous to a reader.
fn check_not_mixed(op: &BinaryOperator, side: &sql::Expr) -> Result<(), String> {
    if let sql::Expr::BinaryOp { op: inner, .. } = side {
        let mixed = matches!(
            (op, inner),
            (BinaryOperator::And, BinaryOperator::Or) | (BinaryOperator::Or, BinaryOperator::And)
        );
        if mixed {
            return Err(format!("filter: AND and OR are mixed in one group near `{side}`; add parentheses"));
        }
    }
    Ok(())
}

/// `tags.name` or `tags.value`, if `e` names one.
fn tag_field(e: &sql::Expr) -> Option<&'static str> {
    let sql::Expr::CompoundIdentifier(ids) = e else { return None };
    let names: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
    match names.as_slice() {
        ["tags", "name"] | ["costs", "tags", "name"] => Some("name"),
        ["tags", "value"] | ["costs", "tags", "value"] => Some("value"),
        _ => None,
    }
}

/// `tags.name = 'k'` / `tags.value = 'v'` as (field, value).
fn tag_comparison(e: &sql::Expr) -> Option<(&'static str, String)> {
    let sql::Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = e else { return None };
    let field = tag_field(left)?;
    string(right).ok().map(|v| (field, v))
}

fn tag_expr(e: &sql::Expr) -> Option<Result<Expr, String>> {
    use super::tags::{has_tag, untagged};
    match e {
        sql::Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            // `tags.name = 'k' AND tags.value = 'v'` is one tag, k = v.
            match (tag_comparison(left), tag_comparison(right)) {
                (Some(("name", k)), Some(("value", v))) | (Some(("value", v)), Some(("name", k))) => {
                    Some(Ok(has_tag(Some(&k), Some(&v))))
                }
                _ => None,
            }
        }
        sql::Expr::BinaryOp { left, op, right } if tag_field(left).is_some() => {
            let field = tag_field(left).expect("checked");
            let negate = match op {
                BinaryOperator::Eq => false,
                BinaryOperator::NotEq => true,
                other => return Some(Err(format!("filter: tags.{field} supports = and != only, not {other}"))),
            };
            let cond = match right.as_ref() {
                sql::Expr::Value(v) if v.value == sql::Value::Null && field == "name" => Ok(untagged()),
                _ => string(right)
                    .map(|v| if field == "name" { has_tag(Some(&v), None) } else { has_tag(None, Some(&v)) }),
            };
            Some(cond.map(|c| if negate { c.not() } else { c }))
        }
        sql::Expr::InList { expr, list, negated } => {
            let sql::Expr::Tuple(fields) = expr.as_ref() else { return None };
            if fields.len() != 2 || tag_field(&fields[0]) != Some("name") || tag_field(&fields[1]) != Some("value") {
                return Some(Err(format!("filter: a tuple IN takes (tags.name, tags.value), near `{e}`")));
            }
            let mut any = Vec::new();
            for item in list {
                let sql::Expr::Tuple(pair) = item else {
                    return Some(Err(format!("filter: expected ('name', 'value') pairs near `{item}`")));
                };
                match (pair.first().map(string), pair.get(1).map(string), pair.len()) {
                    (Some(Ok(k)), Some(Ok(v)), 2) => any.push(has_tag(Some(&k), Some(&v))),
                    _ => return Some(Err(format!("filter: expected ('name', 'value') pairs near `{item}`"))),
                }
            }
            let cond = any.into_iter().reduce(|a, b| a.or(b))?;
            Some(Ok(if *negated { cond.not() } else { cond }))
        }
        _ => None,
    }
}

fn to_expr(e: &sql::Expr) -> Result<Expr, String> {
    if let Some(tag) = tag_expr(e) {
        return tag;
    }
    match e {
        sql::Expr::Nested(inner) => to_expr(inner),
        sql::Expr::UnaryOp { op: UnaryOperator::Not, expr } => Ok(to_expr(expr)?.not()),
        sql::Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                check_not_mixed(op, left)?;
                check_not_mixed(op, right)?;
                let (l, r) = (to_expr(left)?, to_expr(right)?);
                Ok(if *op == BinaryOperator::And { l.and(r) } else { l.or(r) })
            }
            BinaryOperator::Eq | BinaryOperator::NotEq => {
                let (column, _, _) = column(left)?;
                let eq = equals(column, string(right)?);
                Ok(if *op == BinaryOperator::Eq { eq } else { eq.not() })
            }
            BinaryOperator::PGRegexIMatch | BinaryOperator::PGRegexNotIMatch => {
                let (column, like_ok, shown) = column(left)?;
                if !like_ok {
                    return Err(format!("filter: {shown} does not support ~* matching; use = or IN"));
                }
                let pattern = string(right)?;
                regex::Regex::new(&format!("(?i){pattern}"))
                    .map_err(|e| format!("filter: bad pattern '{pattern}': {e}"))?;
                let m = f::regexp_like(col(column), lit(pattern), Some(lit("i")));
                Ok(if *op == BinaryOperator::PGRegexIMatch { m } else { m.not() })
            }
            other => Err(format!("filter: the operator {other} is not supported near `{e}`")),
        },
        sql::Expr::InList { expr, list, negated } => {
            let (column, _, _) = column(expr)?;
            if list.is_empty() {
                return Err(format!("filter: IN () needs at least one value near `{e}`"));
            }
            let values = list.iter().map(string).collect::<Result<Vec<_>, _>>()?;
            if column == "provider" {
                let any =
                    values.into_iter().map(|v| equals(column, v)).reduce(|a, b| a.or(b)).expect("a non-empty list");
                return Ok(if *negated { any.not() } else { any });
            }
            Ok(col(column).in_list(values.into_iter().map(lit).collect(), *negated))
        }
        sql::Expr::Like { negated, expr, pattern, any: false, escape_char: None } => {
            let (column, like_ok, shown) = column(expr)?;
            if !like_ok {
                return Err(format!("filter: {shown} does not support LIKE; use = or IN"));
            }
            let like = col(column).like(lit(string(pattern)?));
            Ok(if *negated { like.not() } else { like })
        }
        other => Err(format!("filter: `{other}` is not a VQL condition; compare a field with = 'value'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_filters_compile() {
        for f in [
            "costs.provider = 'custom_provider'",
            "costs.service = 'EC2' AND costs.region IN ('us-east-1', 'eu-west-1')",
            "(costs.service LIKE '%S3%' OR costs.service ~* 'lambda') AND costs.charge_type != 'Tax'",
            "NOT (costs.account_id = '1')",
            "tags.name = 'env' AND tags.value = 'prod'",
            "(tags.name, tags.value) IN (('env', 'prod'), ('team', 'web'))",
            "tags.name = NULL",
            "costs.region NOT IN ('x') AND costs.resource_id NOT LIKE 'i-%'",
        ] {
            compile(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn deeply_nested_filters_are_refused_at_once() {
        // Found by fuzzing: sqlparser took seconds on function calls nested 20 deep.
        let started = std::time::Instant::now();
        let deep = format!("{}x{}", "F(".repeat(20), ")".repeat(20));
        assert!(Filter::parse(&deep).unwrap_err().contains("more than 8 levels"));
        let found = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/vql-timeout-1.txt"))
            .unwrap();
        assert!(Filter::parse(&found).is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        assert!(
            Filter::parse("((costs.service = 'a' OR costs.service = '(((((((((') AND (costs.region = 'b'))").is_ok()
        );
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let cases = [
            ("costs.service = \"EC2\"", "double quotes"),
            ("costs.owner = 'me'", "unknown field costs.owner"),
            ("(costs.service = 'EC2'", "could not be parsed"),
            ("costs.service = 'a' AND costs.region = 'b' OR costs.region = 'c'", "mixed"),
            ("costs.provider LIKE 'aw%'", "does not support LIKE"),
            ("costs.service IN ()", "could not be parsed"),
        ];
        for (f, expected) in cases {
            let e = compile(f).unwrap_err();
            assert!(e.contains(expected), "{f}: expected {expected:?} in {e:?}");
        }
    }

    fn quoted(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn condition() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let field = proptest::sample::select(vec![
            "costs.provider",
            "costs.service",
            "costs.region",
            "costs.account_id",
            "costs.provider_account_id",
            "costs.category",
            "costs.subcategory",
            "costs.resource_id",
            "costs.charge_type",
        ]);
        let text = "\\PC{0,12}";
        prop_oneof![
            (field.clone(), proptest::sample::select(vec!["=", "!=", "<>"]), text)
                .prop_map(|(f, op, v)| format!("{f} {op} {}", quoted(&v))),
            (field, proptest::collection::vec(text, 1..4), any::<bool>()).prop_map(|(f, vs, not)| {
                let list: Vec<String> = vs.iter().map(|v| quoted(v)).collect();
                format!("{f} {}IN ({})", if not { "NOT " } else { "" }, list.join(", "))
            }),
            (text, text).prop_map(|(k, v)| format!("tags.name = {} AND tags.value = {}", quoted(&k), quoted(&v))),
            (text, text).prop_map(|(k, v)| format!("(tags.name, tags.value) IN (({}, {}))", quoted(&k), quoted(&v))),
            (proptest::sample::select(vec!["costs.service", "costs.region"]), "[a-z%_]{0,8}")
                .prop_map(|(f, p)| format!("{f} LIKE {}", quoted(&p))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_text_compiles_or_is_refused_without_panicking(s in "\\PC{0,80}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn filters_built_from_the_grammar_compile(
            conds in proptest::collection::vec(condition(), 1..4),
            and in proptest::prelude::any::<bool>(),
        ) {
            let joined = conds.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(if and { " AND " } else { " OR " });
            proptest::prop_assert!(Filter::parse(&joined).is_ok(), "{} did not compile: {:?}", joined, Filter::parse(&joined).err());
        }
    }
}

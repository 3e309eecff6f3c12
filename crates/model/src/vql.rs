//! VQL, Vantage's filter language, parsed into costd's own closed AST: what a filter means, with no engine
//! type in it, so a query that holds one can be compared, hashed and cached as a value. The engine
//! compiles it (`engine::vql`); a bad filter is an error sentence that says where.
//!
//! Grammar (parsed with sqlparser's PostgreSQL expression parser, then checked):
//!
//! ```text
//! filter    := condition | filter AND filter | filter OR filter | NOT filter | ( filter )
//! condition := field = 'v' | field != 'v' | field <> 'v'
//!            | field [NOT] IN ('v', …)
//!            | field [NOT] LIKE 'pattern'          (fields that allow patterns)
//!            | field ~* 'regex' | field !~* 'regex' (fields that allow patterns; case-insensitive)
//!            | tags.name = 'k' [AND tags.value = 'v'] | tags.value = 'v' | tags.name = NULL
//!            | tags.name != … | (tags.name, tags.value) [NOT] IN (('k', 'v'), …)
//! field     := costs.provider | costs.service | costs.region | costs.account_id
//!            | costs.provider_account_id | costs.category | costs.subcategory | costs.resource_id
//!            | costs.charge_type                    (the `costs.` prefix is optional)
//! ```
//!
//! Strings take single quotes. AND and OR may not be mixed in one parenthesised group (Vantage's rule,
//! which keeps precedence from surprising anyone). Every negation (`!=`, `NOT IN`, `NOT LIKE`, `!~*`) is
//! [`Condition::Not`] of its positive form, which is what SQL's three-valued logic makes of it anyway.

use sqlparser::ast::{self as sql, BinaryOperator, UnaryOperator};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Longest filter accepted.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting of parentheses accepted; real filters use two to four levels (see
/// [`crate::nesting_depth`] for why there is a limit at all).
pub const MAX_FILTER_NESTING: usize = 8;

/// A field a filter may compare: `costs.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Provider,
    Service,
    Region,
    AccountId,
    ProviderAccountId,
    Category,
    Subcategory,
    ResourceId,
    ChargeType,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Provider,
        Field::Service,
        Field::Region,
        Field::AccountId,
        Field::ProviderAccountId,
        Field::Category,
        Field::Subcategory,
        Field::ResourceId,
        Field::ChargeType,
    ];

    /// Its name after `costs.`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Provider => "provider",
            Field::Service => "service",
            Field::Region => "region",
            Field::AccountId => "account_id",
            Field::ProviderAccountId => "provider_account_id",
            Field::Category => "category",
            Field::Subcategory => "subcategory",
            Field::ResourceId => "resource_id",
            Field::ChargeType => "charge_type",
        }
    }

    /// Whether LIKE and `~*` make sense on it: not on the closed lists (providers, charge types), whose
    /// values are compared whole.
    pub fn takes_patterns(self) -> bool {
        !matches!(self, Field::Provider | Field::ChargeType)
    }

    fn named(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What a filter keeps, as a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    /// `field = 'value'`; on the provider, `custom_provider:<integration token>` names one integration.
    Equals(Field, String),
    /// `field IN (…)`, never empty.
    In(Field, Vec<String>),
    /// `field LIKE 'pattern'` (SQL's `%` and `_`).
    Like(Field, String),
    /// `field ~* 'regex'`: a case-insensitive regular expression, checked to compile.
    Matches(Field, String),
    /// A row with a tag of this name and/or value (at least one is given).
    Tag {
        name: Option<String>,
        value: Option<String>,
    },
    /// A row with no tags (`tags.name = NULL`).
    Untagged,
}

/// A checked filter: the text as written (what a log or a stored report shows) and what it means. Two
/// filters are equal when they mean the same tree, however they were spaced or quoted.
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    condition: Condition,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.condition == other.condition
    }
}

impl Eq for Filter {}

impl std::hash::Hash for Filter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.condition.hash(state);
    }
}

impl Filter {
    /// Parses and checks a filter; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Filter, String> {
        Ok(Filter { text: text.to_string(), condition: parse(text)? })
    }

    /// Every filter at once: `(a) AND (b) …`; `None` for none.
    pub fn all(filters: Vec<Filter>) -> Option<Filter> {
        filters.into_iter().reduce(|a, b| Filter {
            text: format!("({}) AND ({})", a.text, b.text),
            condition: Condition::And(Box::new(a.condition), Box::new(b.condition)),
        })
    }

    /// The filter as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What it keeps.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

/// The fields a filter may name, for messages.
fn fields() -> String {
    let mut names: Vec<String> = Field::ALL.iter().map(|f| format!("costs.{}", f.name())).collect();
    names.extend(["tags.name".to_string(), "tags.value".to_string()]);
    names.join(", ")
}

fn parse(filter: &str) -> Result<Condition, String> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(format!("filter must be at most {MAX_FILTER_LEN} characters"));
    }
    if crate::nesting_depth(filter) > MAX_FILTER_NESTING {
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
    condition(&parsed)
}

fn field(e: &sql::Expr) -> Result<(Field, String), String> {
    if let Some(tag) = tag_field(e) {
        return Err(format!("filter: tags.{tag} supports = and != only (and IN with (tags.name, tags.value))"));
    }
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
    let field = Field::named(name).ok_or_else(|| format!("filter: unknown field {shown}; fields are {}", fields()))?;
    Ok((field, shown))
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

fn tag(name: Option<String>, value: Option<String>) -> Condition {
    Condition::Tag { name, value }
}

fn not(c: Condition) -> Condition {
    Condition::Not(Box::new(c))
}

fn negated_if(negated: bool, c: Condition) -> Condition {
    if negated {
        not(c)
    } else {
        c
    }
}

/// The tag conditions, if `e` is one.
fn tag_condition(e: &sql::Expr) -> Option<Result<Condition, String>> {
    match e {
        sql::Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            // `tags.name = 'k' AND tags.value = 'v'` is one tag, k = v.
            match (tag_comparison(left), tag_comparison(right)) {
                (Some(("name", k)), Some(("value", v))) | (Some(("value", v)), Some(("name", k))) => {
                    Some(Ok(tag(Some(k), Some(v))))
                }
                _ => None,
            }
        }
        sql::Expr::BinaryOp { left, op, right } if tag_field(left).is_some() => {
            let field = tag_field(left).expect("checked");
            let negated = match op {
                BinaryOperator::Eq => false,
                BinaryOperator::NotEq => true,
                other => return Some(Err(format!("filter: tags.{field} supports = and != only, not {other}"))),
            };
            let cond = match right.as_ref() {
                sql::Expr::Value(v) if v.value == sql::Value::Null && field == "name" => Ok(Condition::Untagged),
                _ => string(right).map(|v| if field == "name" { tag(Some(v), None) } else { tag(None, Some(v)) }),
            };
            Some(cond.map(|c| negated_if(negated, c)))
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
                    (Some(Ok(k)), Some(Ok(v)), 2) => any.push(tag(Some(k), Some(v))),
                    _ => return Some(Err(format!("filter: expected ('name', 'value') pairs near `{item}`"))),
                }
            }
            let cond = any.into_iter().reduce(|a, b| Condition::Or(Box::new(a), Box::new(b)))?;
            Some(Ok(negated_if(*negated, cond)))
        }
        _ => None,
    }
}

fn condition(e: &sql::Expr) -> Result<Condition, String> {
    if let Some(tag) = tag_condition(e) {
        return tag;
    }
    match e {
        sql::Expr::Nested(inner) => condition(inner),
        sql::Expr::UnaryOp { op: UnaryOperator::Not, expr } => Ok(not(condition(expr)?)),
        sql::Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                check_not_mixed(op, left)?;
                check_not_mixed(op, right)?;
                let (l, r) = (Box::new(condition(left)?), Box::new(condition(right)?));
                Ok(if *op == BinaryOperator::And { Condition::And(l, r) } else { Condition::Or(l, r) })
            }
            BinaryOperator::Eq | BinaryOperator::NotEq => {
                let (field, _) = field(left)?;
                Ok(negated_if(*op == BinaryOperator::NotEq, Condition::Equals(field, string(right)?)))
            }
            BinaryOperator::PGRegexIMatch | BinaryOperator::PGRegexNotIMatch => {
                let (field, shown) = field(left)?;
                if !field.takes_patterns() {
                    return Err(format!("filter: {shown} does not support ~* matching; use = or IN"));
                }
                let pattern = string(right)?;
                regex::Regex::new(&format!("(?i){pattern}"))
                    .map_err(|e| format!("filter: bad pattern '{pattern}': {e}"))?;
                Ok(negated_if(*op == BinaryOperator::PGRegexNotIMatch, Condition::Matches(field, pattern)))
            }
            other => Err(format!("filter: the operator {other} is not supported near `{e}`")),
        },
        sql::Expr::InList { expr, list, negated } => {
            let (field, _) = field(expr)?;
            if list.is_empty() {
                return Err(format!("filter: IN () needs at least one value near `{e}`"));
            }
            let values = list.iter().map(string).collect::<Result<Vec<_>, _>>()?;
            Ok(negated_if(*negated, Condition::In(field, values)))
        }
        sql::Expr::Like { negated, expr, pattern, any: false, escape_char: None } => {
            let (field, shown) = field(expr)?;
            if !field.takes_patterns() {
                return Err(format!("filter: {shown} does not support LIKE; use = or IN"));
            }
            Ok(negated_if(*negated, Condition::Like(field, string(pattern)?)))
        }
        other => Err(format!("filter: `{other}` is not a VQL condition; compare a field with = 'value'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_filters_parse() {
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
            Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn a_filter_means_its_tree_however_it_is_written() {
        let a = Filter::parse("costs.service = 'EC2' AND NOT (costs.region IN ('x'))").unwrap();
        let b = Filter::parse("service='EC2'   AND   costs.region NOT IN ('x')").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.condition(),
            &Condition::And(
                Box::new(Condition::Equals(Field::Service, "EC2".into())),
                Box::new(Condition::Not(Box::new(Condition::In(Field::Region, vec!["x".into()])))),
            )
        );
        assert_ne!(a, Filter::parse("costs.service = 'ec2' AND costs.region NOT IN ('x')").unwrap());
        let tags = Filter::parse("tags.value = 'prod' AND tags.name = 'env'").unwrap();
        assert_eq!(tags.condition(), &Condition::Tag { name: Some("env".into()), value: Some("prod".into()) });
        assert_eq!(Filter::parse("tags.name != NULL").unwrap().condition(), &not(Condition::Untagged));
    }

    #[test]
    fn deeply_nested_filters_are_refused_at_once() {
        // Found by fuzzing: sqlparser took seconds on function calls nested 20 deep.
        let started = std::time::Instant::now();
        let deep = format!("{}x{}", "F(".repeat(20), ")".repeat(20));
        assert!(Filter::parse(&deep).unwrap_err().contains("more than 8 levels"));
        let found =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/vql-timeout-1.txt"))
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
            ("costs.charge_type ~* 'us'", "does not support ~*"),
            ("costs.service ~* '('", "bad pattern"),
            ("costs.service IN ()", "could not be parsed"),
            ("tags.name LIKE 'e%'", "supports = and != only"),
        ];
        for (f, expected) in cases {
            let e = Filter::parse(f).unwrap_err();
            assert!(e.contains(expected), "{f}: expected {expected:?} in {e:?}");
        }
    }

    fn quoted(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn condition() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let field =
            proptest::sample::select(Field::ALL.iter().map(|f| format!("costs.{}", f.name())).collect::<Vec<_>>());
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
        fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,80}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn filters_built_from_the_grammar_parse(
            conds in proptest::collection::vec(condition(), 1..4),
            and in proptest::prelude::any::<bool>(),
        ) {
            let joined = conds.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(if and { " AND " } else { " OR " });
            proptest::prop_assert!(Filter::parse(&joined).is_ok(), "{} did not parse: {:?}", joined, Filter::parse(&joined).err());
        }
    }
}

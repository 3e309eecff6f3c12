//! VQL filters ([`costd_model::vql`]) compiled to a DataFusion expression over the costs columns. The
//! filter was checked when it was parsed, so compiling it cannot fail.

use std::ops::Not;

use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{col, lit, Expr};

use costd_model::segment::SegmentScope;
use costd_model::vql::{Condition, Field, Filter};

/// The column a field reads (from [`super::schema::FIELDS`]).
fn column(field: Field) -> &'static str {
    super::schema::vql_column(field)
}

/// `column = 'value'`; a provider of `custom_provider:<integration token>` names one integration.
fn equals(field: Field, value: &str) -> Expr {
    match value.strip_prefix("custom_provider:") {
        Some(integration) if field == Field::Provider => col(column(field))
            .eq(lit("custom_provider"))
            .and(col(super::costs::INTEGRATION).eq(lit(integration.to_string()))),
        _ => col(column(field)).eq(lit(value.to_string())),
    }
}

/// The expression keeping the rows `filter` keeps, reading provider tags only.
pub fn compile(filter: &Filter) -> Expr {
    expr(filter.condition(), &Vec::new())
}

/// The same where the plan computed virtual tags: a tag condition naming one's key reads its column, and a
/// condition on any tag (`tags.value = 'x'`, `tags.name = NULL`) sees provider and virtual tags alike.
pub fn compile_with(filter: &Filter, virtual_tags: &super::allocation::TagColumns) -> Expr {
    expr(filter.condition(), virtual_tags)
}

/// The rows a segment is assigned (`costd_model::segment`): at every level, those its filter keeps and no
/// higher-priority sibling's filter keeps. "Keeps" is "is true": a filter that is NULL for a row (a
/// comparison with a missing region) does not keep it, so the row stays for the siblings after, where a
/// plain `NOT` would drop it from every one of them and lose its cost.
pub fn segment(scope: &SegmentScope, virtual_tags: &super::allocation::TagColumns) -> Expr {
    let keeps = |f: &Option<Filter>| f.as_ref().map_or(lit(true), |f| expr(f.condition(), virtual_tags).is_true());
    scope
        .levels
        .iter()
        .flat_map(|level| std::iter::once(keeps(&level.keep)).chain(level.before.iter().map(|f| keeps(f).not())))
        .reduce(Expr::and)
        .unwrap_or(lit(true))
}

/// Rows of any of these providers (`custom_provider:<token>` naming one integration).
pub fn providers(values: &[String]) -> Expr {
    values.iter().map(|v| equals(Field::Provider, v)).reduce(|a, b| a.or(b)).unwrap_or(lit(false))
}

fn expr(c: &Condition, vtags: &[(String, String)]) -> Expr {
    use super::tags::{has_tag, untagged};
    let virtual_value = |value: Option<&str>| -> Vec<Expr> {
        vtags
            .iter()
            .map(|(_, column)| match value {
                Some(v) => col(column.as_str()).eq(lit(v.to_string())).is_true(),
                None => col(column.as_str()).is_not_null(),
            })
            .collect()
    };
    match c {
        Condition::And(l, r) => expr(l, vtags).and(expr(r, vtags)),
        Condition::Or(l, r) => expr(l, vtags).or(expr(r, vtags)),
        Condition::Not(inner) => expr(inner, vtags).not(),
        Condition::Equals(field, value) => equals(*field, value),
        // A provider may be `custom_provider:<token>`, which is two columns: a disjunction of equalities.
        Condition::In(Field::Provider, values) => providers(values),
        Condition::In(field, values) => {
            col(column(*field)).in_list(values.iter().map(|v| lit(v.clone())).collect(), false)
        }
        Condition::Like(field, pattern) => col(column(*field)).like(lit(pattern.clone())),
        Condition::Matches(field, pattern) => f::regexp_like(col(column(*field)), lit(pattern.clone()), Some(lit("i"))),
        Condition::Tag { name: Some(name), value } => match vtags.iter().find(|(key, _)| key == name) {
            Some((_, column)) => match value {
                Some(v) => col(column.as_str()).eq(lit(v.clone())).is_true(),
                None => col(column.as_str()).is_not_null(),
            },
            None => has_tag(Some(name), value.as_deref()),
        },
        Condition::Tag { name: None, value } => {
            virtual_value(value.as_deref()).into_iter().fold(has_tag(None, value.as_deref()), Expr::or)
        }
        Condition::Untagged => virtual_value(None).into_iter().fold(untagged(), |e, tagged| e.and(tagged.not())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_a_column() {
        for field in Field::ALL {
            assert!(!column(field).is_empty());
        }
        let f = Filter::parse("costs.provider IN ('aws', 'custom_provider:accss_crdntl_1')").unwrap();
        let compiled = compile(&f).to_string();
        assert!(compiled.contains("integration"), "{compiled}");
    }
}

//! VQL filters ([`costd_model::vql`]) compiled to a DataFusion expression over the costs columns. The
//! filter was checked when it was parsed, so compiling it cannot fail.

use std::ops::Not;

use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{col, lit, Expr};

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

/// The expression keeping the rows `filter` keeps.
pub fn compile(filter: &Filter) -> Expr {
    expr(filter.condition())
}

fn expr(c: &Condition) -> Expr {
    use super::tags::{has_tag, untagged};
    match c {
        Condition::And(l, r) => expr(l).and(expr(r)),
        Condition::Or(l, r) => expr(l).or(expr(r)),
        Condition::Not(inner) => expr(inner).not(),
        Condition::Equals(field, value) => equals(*field, value),
        // A provider may be `custom_provider:<token>`, which is two columns: a disjunction of equalities.
        Condition::In(Field::Provider, values) => {
            values.iter().map(|v| equals(Field::Provider, v)).reduce(|a, b| a.or(b)).unwrap_or(lit(false))
        }
        Condition::In(field, values) => {
            col(column(*field)).in_list(values.iter().map(|v| lit(v.clone())).collect(), false)
        }
        Condition::Like(field, pattern) => col(column(*field)).like(lit(pattern.clone())),
        Condition::Matches(field, pattern) => f::regexp_like(col(column(*field)), lit(pattern.clone()), Some(lit("i"))),
        Condition::Tag { name, value } => has_tag(name.as_deref(), value.as_deref()),
        Condition::Untagged => untagged(),
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

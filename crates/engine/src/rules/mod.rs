//! Billing rules as the engine runs them: [`compile`] turns each rule (custom SQL arrives already parsed
//! and type-checked by `model::billing_rule::custom_sql`) into plan steps over the costs table.

pub mod compile;

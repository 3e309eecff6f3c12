//! Billing rules as the engine sees them. [`custom_sql`] parses and checks custom SQL rules when they are
//! created, so the costs query can compile them into plan steps without ever failing on their grammar.

pub mod compile;
pub mod custom_sql;

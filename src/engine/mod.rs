//! The cost engine. Today it owns the billing-rule grammar ([`rules`]); ingest, VQL and the costs query
//! (Arrow/DataFusion) join it here, and nothing in it knows about HTTP.

pub mod rules;

//! The Arrow schema of stored cost rows (DESIGN.md "Cost data" mapping), shared by ingest and queries.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Precision and scale of every amount: `Decimal128(38, 18)` (DESIGN.md "Money").
pub const AMOUNT_PRECISION: u8 = 38;
pub const AMOUNT_SCALE: i8 = 18;

/// Column names, in file order.
pub mod col {
    pub const ACCRUED_AT: &str = "accrued_at";
    pub const AMOUNT: &str = "amount";
    pub const CURRENCY: &str = "currency";
    pub const CHARGE_TYPE: &str = "charge_type";
    pub const SERVICE: &str = "service";
    pub const COST_CATEGORY: &str = "cost_category";
    pub const COST_SUBCATEGORY: &str = "cost_subcategory";
    pub const REGION: &str = "region";
    pub const RESOURCE_ID: &str = "resource_id";
    pub const RESOURCE_NAME: &str = "resource_name";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const BILLING_ACCOUNT_ID: &str = "billing_account_id";
    pub const USAGE_AMOUNT: &str = "usage_amount";
    pub const USAGE_UNIT: &str = "usage_unit";
    pub const TAGS: &str = "tags";
}

/// The decimal type of amounts.
pub fn amount_type() -> DataType {
    DataType::Decimal128(AMOUNT_PRECISION, AMOUNT_SCALE)
}

/// The schema of every upload's Parquet file.
pub fn cost_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                Field::new(col::ACCRUED_AT, DataType::Date32, false),
                Field::new(col::AMOUNT, amount_type(), false),
                text(col::CURRENCY, false),
                text(col::CHARGE_TYPE, false),
                text(col::SERVICE, false),
                text(col::COST_CATEGORY, true),
                text(col::COST_SUBCATEGORY, true),
                text(col::REGION, true),
                text(col::RESOURCE_ID, true),
                text(col::RESOURCE_NAME, true),
                text(col::ACCOUNT_ID, true),
                text(col::BILLING_ACCOUNT_ID, true),
                Field::new(col::USAGE_AMOUNT, amount_type(), true),
                text(col::USAGE_UNIT, true),
                // The FOCUS Tags object as JSON text: keys vary per row, and queries read few of them.
                text(col::TAGS, true),
            ]))
        })
        .clone()
}

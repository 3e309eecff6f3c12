//! The Arrow schema of stored cost rows (DESIGN.md "Cost data" mapping), shared by ingest and queries.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Precision and scale of every amount: `Decimal128(38, 18)` (DESIGN.md "Money").
pub const AMOUNT_PRECISION: u8 = 38;
pub const AMOUNT_SCALE: i8 = crate::model::amount::SCALE as i8;

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
            let text = |name: &str, nullable: bool| {
                let ty = if LOW_CARDINALITY.contains(&name) {
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
                } else {
                    DataType::Utf8
                };
                Field::new(name, ty, nullable)
            };
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

/// Text columns with few distinct values per file (names of services, regions, accounts, charge types …).
/// Files store them as dictionaries, and their Arrow schema says so, so queries read them back as
/// dictionaries: a filter then compares each distinct value once and moves 4-byte keys.
const LOW_CARDINALITY: [&str; 9] = [
    col::CURRENCY,
    col::CHARGE_TYPE,
    col::SERVICE,
    col::COST_CATEGORY,
    col::COST_SUBCATEGORY,
    col::REGION,
    col::ACCOUNT_ID,
    col::BILLING_ACCOUNT_ID,
    col::USAGE_UNIT,
];

/// The schema queries read upload files with: [`cost_schema`] with its other text columns as `Utf8View`,
/// which points into Parquet's pages instead of copying each row's bytes.
pub fn scan_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(
                cost_schema()
                    .fields()
                    .iter()
                    .map(|f| match f.data_type() {
                        DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
                        _ => f.as_ref().clone(),
                    })
                    .collect::<Vec<_>>(),
            ))
        })
        .clone()
}

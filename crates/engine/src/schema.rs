//! The cost columns, once: [`FIELDS`] says for each where it comes from (its FOCUS column), how it is kept
//! (the Arrow schema of upload files), and what the costs query's groupings, VQL and custom SQL call it.
//! Ingest, the schema, groupings, VQL fields and the rule compiler all read this table.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use costd_model::billing_rule::custom_sql::CostColumn;
use costd_model::cost_query::ColumnGrouping;
use costd_model::vql::Field as VqlField;

/// Precision and scale of every amount: `Decimal128(38, 18)` (docs/design.md "Money").
pub const AMOUNT_PRECISION: u8 = 38;
pub const AMOUNT_SCALE: i8 = costd_model::amount::SCALE as i8;

/// Column names, in file order.
pub mod col {
    pub const ACCRUED_AT: &str = "accrued_at";
    pub const AMOUNT: &str = "amount";
    /// FOCUS EffectiveCost: the amortized amount, read when `settings[amortize]` is on (null: `amount`).
    pub const AMORTIZED_AMOUNT: &str = "amortized_amount";
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
    // FOCUS columns kept since cloud exports are synced (issue 22); files written before lack them, and the
    // scan reads them there as nulls.
    pub const BILLING_PERIOD_START: &str = "billing_period_start";
    pub const BILLING_PERIOD_END: &str = "billing_period_end";
    pub const CHARGE_CLASS: &str = "charge_class";
    pub const LIST_COST: &str = "list_cost";
    pub const CONTRACTED_COST: &str = "contracted_cost";
    pub const COMMITMENT_DISCOUNT_ID: &str = "commitment_discount_id";
    pub const COMMITMENT_DISCOUNT_TYPE: &str = "commitment_discount_type";
    pub const COMMITMENT_DISCOUNT_STATUS: &str = "commitment_discount_status";
    pub const INVOICE_ID: &str = "invoice_id";
    pub const ACCOUNT_NAME: &str = "account_name";
    pub const PRICING_CATEGORY: &str = "pricing_category";
    /// Not in files: every row of a custom-provider upload is `custom_provider`.
    pub const PROVIDER: &str = "provider";
}

/// The decimal type of amounts.
pub fn amount_type() -> DataType {
    DataType::Decimal128(AMOUNT_PRECISION, AMOUNT_SCALE)
}

/// How a column's values are read from a cost file and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A FOCUS date or timestamp, kept as the UTC date (`Date32`).
    Date,
    /// An exact amount (`Decimal128(38, 18)`).
    Amount,
    /// Text; `low_cardinality` text (names of services, regions, accounts …) is stored as a dictionary, so
    /// a filter compares each distinct value once and queries move 4-byte keys.
    Text { low_cardinality: bool },
}

/// A check beyond the kind, for the columns that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// One of FOCUS's ChargeCategory values, case-sensitive.
    ChargeCategory,
    /// A three-letter ISO 4217 code.
    Currency,
    /// A JSON object (FOCUS Tags).
    JsonObject,
    /// Needs the named FOCUS column in the same row (a quantity needs its unit).
    Needs(&'static str),
}

/// Where a column's values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A column of every upload file, under this name.
    File(&'static str),
    /// Computed by the query, under this name (the provider, from the integration).
    Derived(&'static str),
    /// Read and checked, not kept.
    No,
}

/// One cost column: the single place that says where it comes from, how it is kept, and what every
/// interface calls it. Adding a column is a line here, plus its parsing if its kind needs new parsing.
#[derive(Debug, Clone, Copy)]
pub struct CostField {
    pub stored: Stored,
    /// The FOCUS CSV column it is read from, if any.
    pub focus: Option<&'static str>,
    pub kind: Kind,
    /// A row must have a value (the upload is refused otherwise).
    pub required: bool,
    /// The value of a row that has none.
    pub default: Option<&'static str>,
    pub check: Check,
    /// Its grouping in `GET /v2/costs?groupings=`.
    pub grouping: Option<ColumnGrouping>,
    /// Its VQL field (`costs.<name>`).
    pub vql: Option<VqlField>,
    /// Its column in custom SQL rules.
    pub sql: Option<CostColumn>,
}

const fn text(stored: Stored, focus: Option<&'static str>, low_cardinality: bool) -> CostField {
    CostField {
        stored,
        focus,
        kind: Kind::Text { low_cardinality },
        required: false,
        default: None,
        check: Check::None,
        grouping: None,
        vql: None,
        sql: None,
    }
}

/// Every cost column, stored ones in file order (docs/design.md "Cost data" mapping).
pub const FIELDS: [CostField; 29] = [
    CostField {
        kind: Kind::Date,
        required: true,
        sql: Some(CostColumn::AccruedAt),
        ..text(Stored::File(col::ACCRUED_AT), Some("ChargePeriodStart"), false)
    },
    CostField {
        kind: Kind::Amount,
        required: true,
        sql: Some(CostColumn::Amount),
        ..text(Stored::File(col::AMOUNT), Some("BilledCost"), false)
    },
    // Files written before this column existed lack it; the scan reads it there as nulls (so `amount`).
    CostField { kind: Kind::Amount, ..text(Stored::File(col::AMORTIZED_AMOUNT), Some("EffectiveCost"), false) },
    CostField {
        default: Some("USD"),
        check: Check::Currency,
        sql: Some(CostColumn::Currency),
        ..text(Stored::File(col::CURRENCY), Some("BillingCurrency"), true)
    },
    CostField {
        required: true,
        check: Check::ChargeCategory,
        grouping: Some(ColumnGrouping::ChargeType),
        vql: Some(VqlField::ChargeType),
        sql: Some(CostColumn::CostType),
        ..text(Stored::File(col::CHARGE_TYPE), Some("ChargeCategory"), true)
    },
    CostField {
        required: true,
        grouping: Some(ColumnGrouping::Service),
        vql: Some(VqlField::Service),
        sql: Some(CostColumn::Service),
        ..text(Stored::File(col::SERVICE), Some("ServiceName"), true)
    },
    CostField {
        grouping: Some(ColumnGrouping::CostCategory),
        vql: Some(VqlField::Category),
        sql: Some(CostColumn::CostCategory),
        ..text(Stored::File(col::COST_CATEGORY), Some("ServiceCategory"), true)
    },
    CostField {
        grouping: Some(ColumnGrouping::CostSubcategory),
        vql: Some(VqlField::Subcategory),
        sql: Some(CostColumn::CostSubCategory),
        ..text(Stored::File(col::COST_SUBCATEGORY), Some("ResourceType"), true)
    },
    CostField {
        grouping: Some(ColumnGrouping::Region),
        vql: Some(VqlField::Region),
        sql: Some(CostColumn::Region),
        ..text(Stored::File(col::REGION), Some("RegionId"), true)
    },
    CostField {
        grouping: Some(ColumnGrouping::ResourceId),
        vql: Some(VqlField::ResourceId),
        sql: Some(CostColumn::ResourceId),
        ..text(Stored::File(col::RESOURCE_ID), Some("ResourceId"), false)
    },
    text(Stored::File(col::RESOURCE_NAME), Some("ResourceName"), false),
    CostField {
        grouping: Some(ColumnGrouping::AccountId),
        vql: Some(VqlField::AccountId),
        sql: Some(CostColumn::AccountId),
        ..text(Stored::File(col::ACCOUNT_ID), Some("SubAccountId"), true)
    },
    CostField {
        grouping: Some(ColumnGrouping::BillingAccountId),
        vql: Some(VqlField::ProviderAccountId),
        sql: Some(CostColumn::BillingAccountId),
        ..text(Stored::File(col::BILLING_ACCOUNT_ID), Some("BillingAccountId"), true)
    },
    CostField {
        kind: Kind::Amount,
        check: Check::Needs("ConsumedUnit"),
        sql: Some(CostColumn::UsageAmount),
        ..text(Stored::File(col::USAGE_AMOUNT), Some("ConsumedQuantity"), false)
    },
    CostField {
        grouping: Some(ColumnGrouping::UsageUnit),
        sql: Some(CostColumn::UsageUnit),
        ..text(Stored::File(col::USAGE_UNIT), Some("ConsumedUnit"), true)
    },
    // The FOCUS Tags object as JSON text: keys vary per row, and queries read few of them.
    CostField { check: Check::JsonObject, ..text(Stored::File(col::TAGS), Some("Tags"), false) },
    // Kept for what users ask of a cloud's bill; no Vantage grouping or VQL name (so none here yet), and no
    // rollup dimension: a query that reads them reads the rows.
    CostField { kind: Kind::Date, ..text(Stored::File(col::BILLING_PERIOD_START), Some("BillingPeriodStart"), false) },
    CostField { kind: Kind::Date, ..text(Stored::File(col::BILLING_PERIOD_END), Some("BillingPeriodEnd"), false) },
    text(Stored::File(col::CHARGE_CLASS), Some("ChargeClass"), true),
    CostField { kind: Kind::Amount, ..text(Stored::File(col::LIST_COST), Some("ListCost"), false) },
    CostField { kind: Kind::Amount, ..text(Stored::File(col::CONTRACTED_COST), Some("ContractedCost"), false) },
    text(Stored::File(col::COMMITMENT_DISCOUNT_ID), Some("CommitmentDiscountId"), false),
    text(Stored::File(col::COMMITMENT_DISCOUNT_TYPE), Some("CommitmentDiscountType"), true),
    text(Stored::File(col::COMMITMENT_DISCOUNT_STATUS), Some("CommitmentDiscountStatus"), true),
    text(Stored::File(col::INVOICE_ID), Some("InvoiceId"), true),
    text(Stored::File(col::ACCOUNT_NAME), Some("SubAccountName"), true),
    text(Stored::File(col::PRICING_CATEGORY), Some("PricingCategory"), true),
    CostField { kind: Kind::Date, ..text(Stored::No, Some("ChargePeriodEnd"), false) },
    CostField {
        grouping: Some(ColumnGrouping::Provider),
        vql: Some(VqlField::Provider),
        sql: Some(CostColumn::Provider),
        ..text(Stored::Derived(col::PROVIDER), None, false)
    },
];

/// The stored (or derived) column of the field `named` picks; `what` says which name, for the panic a
/// table without it would be (each is checked by a unit test below).
fn stored_column(named: impl Fn(&CostField) -> bool, what: &str) -> &'static str {
    FIELDS
        .iter()
        .filter(|f| named(f))
        .find_map(|f| match f.stored {
            Stored::File(name) | Stored::Derived(name) => Some(name),
            Stored::No => None,
        })
        .unwrap_or_else(|| panic!("every {what} is a stored or derived cost field"))
}

/// The stored (or derived) column of a custom-SQL column.
pub fn column_of(column: CostColumn) -> &'static str {
    stored_column(|f| f.sql == Some(column), "custom-SQL column")
}

/// The column a column grouping reads (`tagged` and `tag:<key>` read the tags instead).
pub fn grouping_column(grouping: ColumnGrouping) -> &'static str {
    stored_column(|f| f.grouping == Some(grouping), "column grouping")
}

/// The column a VQL field reads.
pub fn vql_column(field: VqlField) -> &'static str {
    stored_column(|f| f.vql == Some(field), "VQL field")
}

/// The columns of every upload file, in order.
pub fn file_fields() -> impl Iterator<Item = (&'static str, &'static CostField)> {
    FIELDS.iter().filter_map(|f| match f.stored {
        Stored::File(name) => Some((name, f)),
        _ => None,
    })
}

/// The schema of every upload's Parquet file.
pub fn cost_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields: Vec<Field> = file_fields()
                .map(|(name, f)| {
                    let ty = match f.kind {
                        Kind::Date => DataType::Date32,
                        Kind::Amount => amount_type(),
                        Kind::Text { low_cardinality: true } => {
                            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
                        }
                        Kind::Text { low_cardinality: false } => DataType::Utf8,
                    };
                    Field::new(name, ty, !f.required && f.default.is_none())
                })
                .collect();
            Arc::new(Schema::new(fields))
        })
        .clone()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_files_keep_the_schema_they_were_written_with() {
        let schema = cost_schema();
        let described: Vec<String> =
            schema.fields().iter().map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable())).collect();
        let dict = "Dictionary(Int32, Utf8)";
        assert_eq!(
            described,
            [
                "accrued_at Date32 false".to_string(),
                "amount Decimal128(38, 18) false".into(),
                "amortized_amount Decimal128(38, 18) true".into(),
                format!("currency {dict} false"),
                format!("charge_type {dict} false"),
                format!("service {dict} false"),
                format!("cost_category {dict} true"),
                format!("cost_subcategory {dict} true"),
                format!("region {dict} true"),
                "resource_id Utf8 true".into(),
                "resource_name Utf8 true".into(),
                format!("account_id {dict} true"),
                format!("billing_account_id {dict} true"),
                "usage_amount Decimal128(38, 18) true".into(),
                format!("usage_unit {dict} true"),
                "tags Utf8 true".into(),
                "billing_period_start Date32 true".into(),
                "billing_period_end Date32 true".into(),
                format!("charge_class {dict} true"),
                "list_cost Decimal128(38, 18) true".into(),
                "contracted_cost Decimal128(38, 18) true".into(),
                "commitment_discount_id Utf8 true".into(),
                format!("commitment_discount_type {dict} true"),
                format!("commitment_discount_status {dict} true"),
                format!("invoice_id {dict} true"),
                format!("account_name {dict} true"),
                format!("pricing_category {dict} true"),
            ]
        );
    }

    #[test]
    fn every_interface_name_is_unique_and_every_sql_column_has_a_field() {
        for column in CostColumn::ALL {
            column_of(column); // panics if a custom-SQL column has no field
        }
        let unique = |names: Vec<&str>| {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{names:?}");
        };
        unique(FIELDS.iter().filter_map(|f| f.grouping.map(ColumnGrouping::name)).collect());
        unique(FIELDS.iter().filter_map(|f| f.vql.map(VqlField::name)).collect());
        unique(FIELDS.iter().filter_map(|f| f.focus).collect());
        for g in ColumnGrouping::ALL {
            grouping_column(g); // panics if a grouping reads no column
        }
        for f in VqlField::ALL {
            vql_column(f); // panics if a field reads no column
        }
        assert_eq!(vql_column(VqlField::ProviderAccountId), col::BILLING_ACCOUNT_ID);
    }
}

//! The custom-SQL rule checker: any text is accepted or refused without a panic, and a rule it accepts runs
//! over a small costs table without an error (an amount beyond 38 digits is the one failure data may cause).
#![no_main]

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray};
use costd::engine::rules::compile::{apply_rules, RuleStep, Window};
use costd::engine::schema::scan_schema;
use costd::model::billing_rule::{RuleDefinition, RuleFields};
use datafusion::error::DataFusionError;
use datafusion::prelude::{lit, SessionContext};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

/// Three rows as the costs query reads them from upload files.
fn table(ctx: &SessionContext) -> datafusion::dataframe::DataFrame {
    let schema = scan_schema();
    let text = |name: &str, v: [Option<&str>; 3]| {
        let ty = schema.field_with_name(name).unwrap().data_type().clone();
        arrow::compute::cast(&StringArray::from(v.to_vec()), &ty).unwrap()
    };
    let one = 1_000_000_000_000_000_000i128;
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "accrued_at" => Arc::new(Date32Array::from(vec![19908, 19913, 19936])) as ArrayRef,
            "amount" => Arc::new(
                Decimal128Array::from(vec![100 * one, -10 * one, one / 3]).with_precision_and_scale(38, 18).unwrap(),
            ) as ArrayRef,
            "usage_amount" => Arc::new(
                Decimal128Array::from(vec![Some(2 * one), None, Some(0)]).with_precision_and_scale(38, 18).unwrap(),
            ) as ArrayRef,
            "currency" => text("currency", [Some("USD"); 3]),
            "charge_type" => text("charge_type", [Some("Usage"), Some("Credit"), Some("Tax")]),
            "service" => text("service", [Some("EC2"), Some("EC2"), Some("S3")]),
            "region" => text("region", [Some("us-east-1"), None, Some("eu-west-1")]),
            _ => arrow::array::new_null_array(f.data_type(), 3),
        })
        .collect();
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    ctx.read_batch(batch).unwrap().with_column("provider", lit("custom_provider")).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let fields: RuleFields =
        serde_json::from_value(serde_json::json!({"type": "custom", "title": "t", "sql_query": sql})).unwrap();
    let Ok(rule) = RuleDefinition::try_from(fields) else { return };
    let step = RuleStep { token: "bllng_rule_fuzz".into(), rule };
    let ctx = SessionContext::new();
    let window = Window {
        start: chrono_date(2024, 7, 1),
        end: chrono_date(2024, 8, 31),
    };
    let outcome: Result<(), DataFusionError> = runtime().block_on(async {
        let df = apply_rules(&ctx, table(&ctx), &[step], window, "USD").await?;
        df.collect().await?;
        Ok(())
    });
    if let Err(e) = outcome {
        let overflow = matches!(e.find_root(), DataFusionError::ArrowError(a, _)
            if matches!(**a, arrow::error::ArrowError::ArithmeticOverflow(_)));
        assert!(overflow, "{sql:?} was accepted but failed: {e}");
    }
});

fn chrono_date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

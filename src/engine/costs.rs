//! The costs query (`GET /v2/costs`): live upload files → date range → billing rules → settings flags →
//! VQL filter → group by date bin and dimensions → sum, all as one DataFusion plan.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type};
use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{col, lit, Expr, SortExpr};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::dates;
use super::ingest::parse::{date_from_days, days_since_epoch, format_amount};
use super::rules::compile::{apply_rules, RuleStep, Window};
use super::schema::{col as c, scan_schema};

/// The column naming each row's integration (not returned; read by VQL's `custom_provider:<token>`).
pub const INTEGRATION: &str = "integration";

/// How rows are binned in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBin {
    Day,
    Week,
    Month,
    Quarter,
}

impl std::str::FromStr for DateBin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(DateBin::Day),
            "week" => Ok(DateBin::Week),
            "month" => Ok(DateBin::Month),
            "quarter" => Ok(DateBin::Quarter),
            other => Err(format!("date_bin must be day, week, month or quarter, got {other:?}")),
        }
    }
}

/// The groupings `GET /v2/costs` accepts, with the column each reads.
pub const GROUPINGS: [(&str, &str); 10] = [
    ("account_id", c::ACCOUNT_ID),
    ("billing_account_id", c::BILLING_ACCOUNT_ID),
    ("charge_type", c::CHARGE_TYPE),
    ("cost_category", c::COST_CATEGORY),
    ("cost_subcategory", c::COST_SUBCATEGORY),
    ("provider", "provider"),
    ("region", c::REGION),
    ("resource_id", c::RESOURCE_ID),
    ("service", c::SERVICE),
    ("usage_unit", c::USAGE_UNIT),
];

/// Which charge types show (Vantage's `settings[include_*]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub include_credits: bool,
    pub include_refunds: bool,
    pub include_discounts: bool,
    pub include_tax: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { include_credits: false, include_refunds: false, include_discounts: true, include_tax: true }
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct CostQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Grouping names from [`GROUPINGS`], in the order given.
    pub groupings: Vec<String>,
    pub date_bin: DateBin,
    pub descending: bool,
    pub settings: Settings,
    /// A compiled VQL filter over the costs columns.
    pub filter: Option<Expr>,
}

/// Where the costs come from and what shapes them.
#[derive(Debug, Clone, Default)]
pub struct CostSource {
    /// Parquet files of the live uploads, each with its integration's token.
    pub files: Vec<(String, PathBuf)>,
    /// Rules to run, in order.
    pub rules: Vec<RuleStep>,
    /// Currency of inserted line items (the uploads' currency; USD when there are none).
    pub currency: String,
    /// Every upload is in `currency`, so unless a rule sets a currency every row is, and the query need
    /// not group by it.
    pub one_currency: bool,
}

/// One grouped, binned row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRow {
    pub accrued_at: NaiveDate,
    /// Exact, unscaled at 18 places.
    pub amount: i128,
    pub currency: String,
    /// (grouping name, value) in the order asked.
    pub dimensions: Vec<(String, Option<String>)>,
}

/// Every row of the result (pagination happens above) and the total per currency.
#[derive(Debug, Clone)]
pub struct CostResult {
    pub rows: Vec<CostRow>,
    pub totals: Vec<(String, i128)>,
}

/// Why a costs query failed.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The query is fine but the engine cannot run one of the rules yet, or a rule takes an amount past
    /// `Decimal128(38, 18)`.
    #[error("{0}")]
    Unsupported(String),
    /// An upload file listed for the query was gone when it was read: a concurrent replace or delete.
    /// Listing the files again finds what replaced it.
    #[error("an upload file was replaced or deleted during the query: {0}")]
    FileGone(String),
    #[error(transparent)]
    Engine(#[from] anyhow::Error),
}

impl From<DataFusionError> for CostError {
    fn from(e: DataFusionError) -> Self {
        let root = e.find_root();
        let gone = match root {
            DataFusionError::ObjectStore(os) => matches!(**os, datafusion::object_store::Error::NotFound { .. }),
            DataFusionError::IoError(io) => io.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        };
        // An amount beyond Decimal128(38, 18) after a rule: the query is fine, these costs and rules are not.
        let overflow = match root {
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                arrow::error::ArrowError::ArithmeticOverflow(msg) => Some(msg.clone()),
                _ => None,
            },
            _ => None,
        };
        if gone {
            return CostError::FileGone(root.to_string());
        }
        match (e, overflow) {
            (_, Some(msg)) => CostError::Unsupported(msg),
            (DataFusionError::NotImplemented(msg), _) => CostError::Unsupported(msg),
            (other, _) => CostError::Engine(anyhow::Error::new(other).context("the costs query failed")),
        }
    }
}

fn date_lit(d: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some(days_since_epoch(d))))
}

/// The session every query runs in: two partitions, one per core of the machines we target.
fn session() -> SessionContext {
    let config =
        SessionConfig::new().with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
    SessionContext::new_with_config(config)
}

/// Runs `query` over `source`.
#[tracing::instrument(skip_all, fields(files = source.files.len(), rules = source.rules.len()))]
pub async fn run(source: &CostSource, query: &CostQuery) -> Result<CostResult, CostError> {
    let ctx = session();
    // SELECT *, '<integration>' AS integration FROM <its uploads> UNION ALL … (one scan per integration,
    // so VQL can name `custom_provider:<integration token>`)
    let mut raw: Option<DataFrame> = None;
    let mut integrations: Vec<&str> = source.files.iter().map(|(i, _)| i.as_str()).collect();
    integrations.dedup();
    for integration in integrations {
        let paths: Vec<String> =
            source.files.iter().filter(|(i, _)| i == integration).map(|(_, p)| p.display().to_string()).collect();
        let scan = ctx
            .read_parquet(paths, ParquetReadOptions::default().schema(&scan_schema()))
            .await?
            .with_column(INTEGRATION, lit(integration.to_string()))?;
        raw = Some(match raw {
            Some(df) => df.union(scan)?,
            None => scan,
        });
    }
    let raw = match raw {
        Some(df) => df,
        None => ctx.read_batch(RecordBatch::new_empty(scan_schema()))?.with_column(INTEGRATION, lit(""))?,
    };
    // … WHERE accrued_at BETWEEN start AND end, with provider 'custom_provider'
    let costs = raw
        .with_column("provider", lit("custom_provider"))?
        .filter(col(c::ACCRUED_AT).between(date_lit(query.start), date_lit(query.end)))?;

    let window = Window { start: query.start, end: query.end };
    let currency = if source.currency.is_empty() { "USD" } else { &source.currency };
    let mut costs = apply_rules(&ctx, costs, &source.rules, window, currency)?;

    // WHERE charge_type NOT IN (the kinds the settings hide)
    let mut hidden = Vec::new();
    let s = query.settings;
    for (shown, kind) in [
        (s.include_credits, "Credit"),
        (s.include_refunds, "Refund"),
        (s.include_discounts, "Discount"),
        (s.include_tax, "Tax"),
    ] {
        if !shown {
            hidden.push(lit(kind));
        }
    }
    if !hidden.is_empty() {
        costs = costs.filter(col(c::CHARGE_TYPE).in_list(hidden, true))?;
    }
    if let Some(filter) = &query.filter {
        costs = costs.filter(filter.clone())?;
    }

    // SELECT bin(accrued_at) AS accrued_at, <groupings>, currency, sum(amount) … GROUP BY … ORDER BY accrued_at
    let bin = match query.date_bin {
        DateBin::Day => col(c::ACCRUED_AT),
        DateBin::Week => dates::bin(dates::Unit::Week, col(c::ACCRUED_AT)),
        DateBin::Month => dates::bin(dates::Unit::Month, col(c::ACCRUED_AT)),
        DateBin::Quarter => dates::bin(dates::Unit::Quarter, col(c::ACCRUED_AT)),
    };
    let mut group_exprs = vec![bin.alias("bin")];
    for g in &query.groupings {
        let expr = if g == "tagged" {
            super::tags::tagged()
        } else if let Some(key) = g.strip_prefix("tag:") {
            super::tags::tag_value(key)
        } else {
            col(GROUPINGS.iter().find(|(name, _)| name == g).map(|(_, col)| *col).unwrap_or(c::SERVICE))
        };
        group_exprs.push(expr.alias(format!("g_{g}")));
    }
    // Grouping by a text column costs a row encoding per row; a currency known in advance is a constant.
    let fixed_currency = source.one_currency && !source.rules.iter().any(RuleStep::sets_currency);
    group_exprs.push(if fixed_currency { lit(currency.to_string()) } else { col(c::CURRENCY) }.alias("cur"));
    let mut sort: Vec<SortExpr> = vec![col("bin").sort(!query.descending, false)];
    for g in &query.groupings {
        sort.push(col(format!("g_{g}")).sort(true, true));
    }
    let grouped = costs.aggregate(group_exprs, vec![sum(col(c::AMOUNT)).alias("total")])?.sort(sort)?;
    let task_ctx = grouped.task_ctx();
    let plan = grouped.create_physical_plan().await?;
    let batches = datafusion::physical_plan::collect(plan.clone(), Arc::new(task_ctx)).await?;
    tracing::debug!(
        plan = %datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true),
        "costs plan, with the time and rows of each step"
    );
    // DataFusion skips a listed path that no longer exists. Upload files are never re-created under the same
    // name, so a file still there now was there for the whole query; one that is gone may be missing from it.
    for (_, path) in &source.files {
        if !tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Err(CostError::FileGone(path.display().to_string()));
        }
    }

    let mut rows = Vec::new();
    let mut totals: Vec<(String, i128)> = Vec::new();
    for batch in &batches {
        let bins = batch.column_by_name("bin").expect("bin column").as_primitive::<Date32Type>();
        let cur = arrow::compute::cast(
            batch.column_by_name("cur").expect("currency column"),
            &arrow::datatypes::DataType::Utf8,
        )
        .map_err(|e| CostError::Engine(e.into()))?;
        let cur = cur.as_string::<i32>();
        let total_col =
            arrow::compute::cast(batch.column_by_name("total").expect("total column"), &super::schema::amount_type())
                .map_err(|e| CostError::Engine(e.into()))?;
        let totals_col = total_col.as_primitive::<Decimal128Type>();
        let dims: Vec<Arc<dyn Array>> = query
            .groupings
            .iter()
            .map(|g| {
                arrow::compute::cast(
                    batch.column_by_name(&format!("g_{g}")).expect("grouping column"),
                    &arrow::datatypes::DataType::Utf8,
                )
                .map_err(|e| CostError::Engine(e.into()))
            })
            .collect::<Result<_, _>>()?;
        for i in 0..batch.num_rows() {
            let amount = if totals_col.is_null(i) { 0 } else { totals_col.value(i) };
            let currency = cur.value(i).to_string();
            match totals.iter_mut().find(|(c, _)| c == &currency) {
                Some((_, t)) => *t += amount,
                None => totals.push((currency.clone(), amount)),
            }
            rows.push(CostRow {
                accrued_at: date_from_days(bins.value(i)),
                amount,
                currency,
                dimensions: query
                    .groupings
                    .iter()
                    .zip(&dims)
                    .map(|(g, d)| {
                        let d = d.as_string::<i32>();
                        (g.clone(), (!d.is_null(i)).then(|| d.value(i).to_string()))
                    })
                    .collect(),
            });
        }
    }
    Ok(CostResult { rows, totals })
}

/// Results of recent queries. The key is a hash of everything a result depends on: the live upload files
/// (an upload's token is in its path, so a new, replaced or deleted upload changes the key), the rules
/// with their every field, and the query. A change to any of them is a new key, so nothing is ever
/// invalidated by hand and nothing stale can be served.
pub struct ResultCache {
    entries: std::sync::Mutex<std::collections::HashMap<u64, Arc<CostResult>>>,
}

/// Most cached results (each is the grouped result, not the cost rows); past it the cache starts over.
const RESULT_CACHE_CAPACITY: usize = 256;

impl Default for ResultCache {
    fn default() -> Self {
        ResultCache { entries: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }
}

impl ResultCache {
    fn key(source: &CostSource, query: &CostQuery) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{source:?}|{query:?}").hash(&mut h);
        h.finish()
    }

    /// The result of `query` over `source`, from the cache or computed.
    pub async fn run(&self, source: &CostSource, query: &CostQuery) -> Result<Arc<CostResult>, CostError> {
        let key = Self::key(source, query);
        if let Some(hit) = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let result = Arc::new(run(source, query).await?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= RESULT_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, result.clone());
        Ok(result)
    }
}

/// `total_cost.amount`: rounded to 2 places, half away from zero.
pub fn round_total(unscaled: i128) -> String {
    let step = 10i128.pow(16); // 18 places → 2 places
    let half = step / 2;
    let rounded = if unscaled >= 0 { (unscaled + half) / step } else { (unscaled - half) / step };
    format_amount(rounded * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quarter() -> CostQuery {
        CostQuery {
            start: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 9, 30).unwrap(),
            groupings: vec!["service".into()],
            date_bin: DateBin::Month,
            descending: false,
            settings: Settings::default(),
            filter: None,
        }
    }

    #[tokio::test]
    async fn a_file_gone_under_the_query_is_told_apart_from_other_failures() {
        let dir = tempfile::tempdir().unwrap();
        let source = CostSource {
            files: vec![("accss_crdntl_1".into(), dir.path().join("usr_csts_upld_gone.parquet"))],
            ..CostSource::default()
        };
        match run(&source, &quarter()).await {
            Err(CostError::FileGone(msg)) => assert!(msg.contains("usr_csts_upld_gone"), "{msg}"),
            other => panic!("expected FileGone, got {other:?}"),
        }
    }

    #[test]
    fn totals_round_half_away_from_zero() {
        let one = 10i128.pow(18);
        assert_eq!(round_total(one * 1005 / 1000), "1.01");
        assert_eq!(round_total(-one * 1005 / 1000), "-1.01");
        assert_eq!(round_total(one * 1004 / 1000), "1.0");
        assert_eq!(round_total(0), "0.0");
    }
}

//! The costs query (`GET /v2/costs`): live upload files → date range → billing rules → settings flags →
//! VQL filter → group by date bin and dimensions → sum, all as one DataFusion plan.

use costd_model::spreadsheet::text_cell;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use arrow::datatypes::{Date32Type, Decimal128Type};
use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{cast, col, lit, Expr, SortExpr};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::dates;
use super::ingest::parse::{date_from_days, days_since_epoch};
use super::rules::compile::{apply_rules, RuleStep, Window};
use super::schema::{col as c, scan_schema};
use costd_model::amount::Amount;
use costd_model::cost_query::{Aggregate, CostQuery, DateBin, Grouping};

/// The column naming each row's integration (not returned; read by VQL's `custom_provider:<token>`).
pub const INTEGRATION: &str = "integration";

/// Where the costs come from and what shapes them.
#[derive(Debug, Clone, Default)]
pub struct CostSource {
    /// The live uploads; their files are in `storage`.
    pub files: Vec<SourceFile>,
    /// Where the upload files live (needed whenever `files` is not empty).
    pub storage: Option<super::storage::Storage>,
    /// Rules to run, in order.
    pub rules: Vec<RuleStep>,
    /// Currency of inserted line items (the uploads' currency; USD when there are none).
    pub currency: String,
    /// Every upload is in `currency`, so unless a rule sets a currency every row is, and the query need
    /// not group by it.
    pub one_currency: bool,
    /// The account's virtual tags (`engine::allocation`), computed where a query reads them.
    pub virtual_tags: Vec<costd_model::virtual_tag::VirtualTagDefinition>,
    /// The workspace converts every cost to its currency (`engine::currency`), after the rules.
    pub conversion: Option<costd_model::exchange_rate::Conversion>,
    /// The values (of the query's months) of the business metrics the virtual tags split by, by token.
    pub metric_values: std::collections::BTreeMap<String, Vec<costd_model::business_metric::MetricValue>>,
    /// Set by `with_rollups` when `files` are rollups and a proportional split is applied: every upload
    /// again, whose rows (one per cost) give the rows that split divides, which it rounds one by one. The
    /// rollups give every other row. Empty otherwise.
    pub split_rows: Vec<SourceFile>,
}

/// One upload a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The integration's token (VQL's `custom_provider:<token>`).
    pub integration: String,
    /// The name of its file in the storage: the upload's token, or its rollup's name.
    pub upload: String,
    /// The upload has a rollup whose amounts have at most this many places (`engine::rollup`).
    pub rollup_decimals: Option<u8>,
}

/// One grouped, binned row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRow {
    pub accrued_at: NaiveDate,
    pub amount: Amount,
    pub currency: String,
    /// (grouping name, value) in the order asked.
    pub dimensions: Vec<(String, Option<String>)>,
    /// With [`Aggregate::Usage`]: the summed usage and its unit (`None`: rows without a unit).
    pub usage: Option<(Amount, String)>,
}

impl CostRow {
    /// The value of the `i`th grouping asked for; empty when the row has none.
    pub fn dimension(&self, i: usize) -> String {
        self.dimensions.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// Every row of the result (pagination happens above) and the total per currency.
#[derive(Debug, Clone)]
pub struct CostResult {
    pub rows: Vec<CostRow>,
    pub totals: Vec<(String, Amount)>,
    /// With [`Aggregate::Usage`]: the usage total per unit, in the order units first appear.
    pub usage_totals: Vec<(String, Amount)>,
}

impl CostResult {
    /// About how many bytes of memory the result holds (what a cache of results counts).
    pub fn approx_bytes(&self) -> usize {
        let text = |s: &String| s.capacity();
        let row = |r: &CostRow| {
            std::mem::size_of::<CostRow>()
                + text(&r.currency)
                + r.dimensions.capacity() * std::mem::size_of::<(String, Option<String>)>()
                + r.dimensions.iter().map(|(k, v)| text(k) + v.as_ref().map_or(0, text)).sum::<usize>()
                + r.usage.as_ref().map_or(0, |(_, u)| text(u))
        };
        let totals = |t: &Vec<(String, Amount)>| {
            t.capacity() * std::mem::size_of::<(String, Amount)>() + t.iter().map(|(c, _)| text(c)).sum::<usize>()
        };
        std::mem::size_of::<CostResult>()
            + self.rows.iter().map(row).sum::<usize>()
            + (self.rows.capacity() - self.rows.len()) * std::mem::size_of::<CostRow>()
            + totals(&self.totals)
            + totals(&self.usage_totals)
    }
}

/// Why a costs query failed.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The costs and rules are fine but an amount (a row after a rule, or a sum) does not fit
    /// `Decimal128(38, 18)`: the one way data, rather than a query or a rule, can fail a query.
    #[error("{0}")]
    Overflow(String),
    /// The rules make more rows than they may keep ([`crate::rules::compile::RULES_TOO_LARGE`]).
    #[error("{0}")]
    RulesTooLarge(String),
    /// A cost's currency has no exchange rate in effect on its day ([`crate::currency::NO_RATE`]).
    #[error("{0}")]
    NoRate(String),
    #[error(transparent)]
    Engine(#[from] anyhow::Error),
}

impl From<DataFusionError> for CostError {
    fn from(e: DataFusionError) -> Self {
        let overflow = match e.find_root() {
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                arrow::error::ArrowError::ArithmeticOverflow(msg) => Some(msg.clone()),
                _ => None,
            },
            _ => None,
        };
        if let DataFusionError::Execution(msg) = e.find_root() {
            if msg.starts_with(crate::currency::NO_RATE) {
                return CostError::NoRate(msg.clone());
            }
        }
        if let DataFusionError::ResourcesExhausted(msg) = e.find_root() {
            if msg.starts_with(crate::rules::compile::RULES_TOO_LARGE) {
                return CostError::RulesTooLarge(msg.clone());
            }
        }
        match overflow {
            Some(msg) => CostError::Overflow(msg),
            None => CostError::Engine(anyhow::Error::new(e).context("the costs query failed")),
        }
    }
}

/// Sums back to amounts: a sum beyond 38 digits is an overflow, never a null or a truncated number.
fn narrow_totals(totals: &dyn Array) -> Result<arrow::array::ArrayRef, CostError> {
    let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
    arrow::compute::cast_with_options(totals, &super::schema::amount_type(), &options).map_err(|e| match e {
        arrow::error::ArrowError::CastError(_) | arrow::error::ArrowError::InvalidArgumentError(_) => {
            CostError::Overflow(format!("a total does not fit an amount (at most 38 digits, 18 after the point): {e}"))
        }
        other => CostError::Engine(other.into()),
    })
}

/// The result column of the `i`-th grouping.
fn grouping_column(i: usize) -> String {
    format!("g{i}")
}

fn date_lit(d: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some(days_since_epoch(d))))
}

/// The storage of a source with files.
fn storage_of(source: &CostSource) -> Result<&super::storage::Storage, CostError> {
    source
        .storage
        .as_ref()
        .ok_or_else(|| CostError::Engine(anyhow::anyhow!("a costs source with files but no storage")))
}

/// The files of each integration, each integration once, in the order integrations first appear. Files of
/// one integration need not be adjacent (the store lists uploads in commit order), and each file must be
/// read exactly once.
fn files_by_integration<'a>(
    source: &CostSource,
    files: &'a [SourceFile],
) -> Result<Vec<(&'a str, Vec<String>)>, CostError> {
    let mut grouped: Vec<(&str, Vec<String>)> = Vec::new();
    for file in files {
        let path = storage_of(source)?.location(&file.upload);
        match grouped.iter_mut().find(|(i, _)| *i == file.integration) {
            Some((_, paths)) => paths.push(path),
            None => grouped.push((file.integration.as_str(), vec![path])),
        }
    }
    Ok(grouped)
}

/// The column of every asked tag's value, when a query groups by several tags.
const TAG_VALUES: &str = "__tag_values";

/// The session every query runs in: two partitions, one per core of the machines we target.
fn session() -> SessionContext {
    let config =
        SessionConfig::new().with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
    SessionContext::new_with_config(config)
}

/// What shapes the costs before a query's own filter: the query, the virtual tags it reads, their parts.
struct Shape<'a> {
    query: &'a CostQuery,
    used: &'a [usize],
    bases: &'a super::allocation::Bases,
    fused: Option<usize>,
}

/// The costs of `files` as a query filters and groups them: in its window, after the rules, the
/// conversion and the settings' hidden kinds, with the virtual tags it reads.
async fn shaped(
    ctx: &SessionContext,
    source: &CostSource,
    files: &[SourceFile],
    shape: &Shape<'_>,
) -> Result<(DataFrame, super::allocation::TagColumns, Option<super::allocation::fused::FusedSplit>), CostError> {
    let query = shape.query;
    // SELECT *, '<integration>' AS integration FROM <its uploads> UNION ALL … (one scan per integration,
    // so VQL can name `custom_provider:<integration token>`)
    let mut raw: Option<DataFrame> = None;
    for (integration, paths) in files_by_integration(source, files)? {
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
    let mut costs = raw
        .with_column(c::PROVIDER, lit("custom_provider"))?
        .filter(col(c::ACCRUED_AT).between(date_lit(query.start), date_lit(query.end)))?;
    // Amortized: the rules and the sums see EffectiveCost as the amount, where a row has one.
    if query.settings.amortize {
        costs = costs.with_column(c::AMOUNT, coalesce(vec![col(c::AMORTIZED_AMOUNT), col(c::AMOUNT)]))?;
    }

    let window = Window { start: query.start, end: query.end };
    let currency = if source.currency.is_empty() { "USD" } else { &source.currency };
    let mut costs = apply_rules(ctx, costs, &source.rules, window, currency).await?;
    // The workspace's currency, once the rules have run in the bill's.
    if let Some(conversion) = &source.conversion {
        costs = super::currency::convert(costs, conversion, (date_lit(query.start), date_lit(query.end)))?;
    }

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
    let bins_span_months = matches!(query.date_bin, DateBin::Week | DateBin::Quarter);
    Ok(super::allocation::apply(costs, &source.virtual_tags, shape.used, shape.bases, shape.fused, bins_span_months)?)
}

/// The grouped, sorted plan of `query` over `source` (not yet run), the proportional splits' parts from
/// `bases` (every month the query touches; none where only the plan's columns matter).
async fn grouped(
    source: &CostSource,
    query: &CostQuery,
    bases: &super::allocation::Bases,
) -> Result<DataFrame, CostError> {
    let ctx = session();
    if let Some(storage) = &source.storage {
        storage.register(&ctx);
    }
    // The virtual tags the query reads, as columns (splits make a row per share).
    let used = super::allocation::used(&source.virtual_tags, query);
    let fused = super::allocation::fusable(&source.virtual_tags, &used, query);
    let fused_key = fused.map(|i| source.virtual_tags[i].key.clone());
    let shape = Shape { query, used: &used, bases, fused };
    let (mut costs, virtual_columns, fused) = shaped(&ctx, source, &source.files, &shape).await?;
    if !source.split_rows.is_empty() {
        // `files` are rollups: the rows a proportional split divides come from the rows, the rest from the
        // rollups (`with_rollups`). Each side is every cost, so each keeps its own part.
        let divided = fused.as_ref().and_then(|f| f.divided()).ok_or_else(|| {
            CostError::Engine(anyhow::anyhow!("rows to split were given to a plan that does not split them"))
        })?;
        let (rows, _, _) = shaped(&ctx, source, &source.split_rows, &shape).await?;
        costs = costs.filter(divided.clone().is_not_true())?.union(rows.filter(divided)?)?;
    }
    if let Some(filter) = &query.filter {
        costs = costs.filter(super::vql::compile_with(filter, &virtual_columns))?;
    }
    if let Some(segment) = &query.segment {
        costs = costs.filter(super::vql::segment(segment, &virtual_columns))?;
    }
    let virtual_column = |key: &str| virtual_columns.iter().find(|(k, _)| k == key).map(|(_, column)| column.clone());

    // SELECT bin(accrued_at) AS accrued_at, <groupings>, currency, sum(amount) … GROUP BY … ORDER BY accrued_at
    let bin = match query.date_bin {
        DateBin::Day => col(c::ACCRUED_AT),
        DateBin::Week => dates::bin(dates::Unit::Week, col(c::ACCRUED_AT)),
        DateBin::Month => dates::bin(dates::Unit::Month, col(c::ACCRUED_AT)),
        DateBin::Quarter => dates::bin(dates::Unit::Quarter, col(c::ACCRUED_AT)),
    };
    let mut group_exprs = vec![bin.alias("bin")];
    // Several `tag:` groupings read one struct of their values, parsed from each row's tags once.
    let tag_keys: Vec<String> = query
        .groupings
        .iter()
        .filter_map(|g| match g {
            Grouping::Tag(key) if virtual_column(key).is_none() && fused_key.as_ref() != Some(key) => Some(key.clone()),
            _ => None,
        })
        .collect();
    if tag_keys.len() > 1 {
        costs = costs.with_column(TAG_VALUES, super::tags::tag_values(&tag_keys))?;
    }
    let mut fused_grouping = None;
    for (i, g) in query.groupings.iter().enumerate() {
        let expr = match g {
            // Named after its shares are summed (below).
            Grouping::Tag(key) if fused_key.as_ref() == Some(key) => {
                fused_grouping = Some(i);
                continue;
            }
            Grouping::Tagged => super::tags::tagged_or(virtual_columns.iter().map(|(_, column)| col(column.as_str()))),
            Grouping::Tag(key) if virtual_column(key).is_some() => col(virtual_column(key).unwrap_or_default()),
            Grouping::Tag(key) => match tag_keys.iter().position(|k| k == key) {
                Some(k) if tag_keys.len() > 1 => super::tags::tag_values_field(TAG_VALUES, k, tag_keys.len()),
                _ => super::tags::tag_value(key),
            },
            Grouping::Column(c) => col(super::schema::grouping_column(*c)),
            Grouping::Integration => col(INTEGRATION),
        };
        // Positional names: a grouping's own text (`tag:kubernetes.io/cluster`) is no safe column name.
        group_exprs.push(expr.alias(grouping_column(i)));
    }
    // Grouping by a text column costs a row encoding per row; a currency known in advance is a constant.
    let currency = if source.currency.is_empty() { "USD" } else { &source.currency };
    let fixed_currency = match &source.conversion {
        Some(conversion) => Some(conversion.to.as_str()),
        None => (source.one_currency && !source.rules.iter().any(RuleStep::sets_currency)).then_some(currency),
    };
    group_exprs.push(match fixed_currency {
        Some(currency) => lit(currency.to_string()).alias("cur"),
        None => col(c::CURRENCY).alias("cur"),
    });
    let with_usage = query.aggregate == Aggregate::Usage;
    if with_usage {
        group_exprs.push(col(c::USAGE_UNIT).alias("unit"));
    }
    let mut sort: Vec<SortExpr> = vec![col("bin").sort(!query.descending, false)];
    for i in 0..query.groupings.len() {
        sort.push(col(grouping_column(i)).sort(true, true));
    }
    // DataFusion sums decimals with wrapping adds; in 256 bits no number of 38-digit amounts can wrap, and
    // the cast back to 38 digits below fails rather than truncates.
    let wide = |column| cast(col(column), DataType::Decimal256(76, super::schema::AMOUNT_SCALE));
    let mut sums = vec![sum(wide(c::AMOUNT)).alias("total")];
    if with_usage {
        sort.push(col("unit").sort(true, true));
        sums.push(sum(wide(c::USAGE_AMOUNT)).alias("usage"));
    }
    let (Some(fused), Some(position)) = (fused, fused_grouping) else {
        return Ok(costs.aggregate(group_exprs, sums)?.sort(sort)?);
    };
    // A splitting tag only grouped by: each group's shares summed, then named and grouped again
    // (`engine::allocation::fused`).
    let names: Vec<Expr> = group_exprs.iter().map(|e| col(e.schema_name().to_string())).collect();
    group_exprs.extend(fused.keys());
    let mut sums = vec![fused.sum(c::AMOUNT).alias("total")];
    let mut summed = vec!["total"];
    if with_usage {
        sums.push(fused.sum(c::USAGE_AMOUNT).alias("usage"));
        summed.push("usage");
    }
    let shares = fused.shares(costs.aggregate(group_exprs, sums)?, &summed, "bin", &grouping_column(position))?;
    let mut again = names;
    again.push(col(grouping_column(position)));
    let sums: Vec<Expr> = summed.iter().map(|s| sum(col(*s)).alias(*s)).collect();
    Ok(shares.aggregate(again, sums)?.sort(sort)?)
}

/// DataFusion skips a listed path that does not exist. Upload files are immutable and pinned for the
/// query, so a missing one is lost data: fail loudly rather than answer short.
async fn check_files(source: &CostSource) -> Result<(), CostError> {
    for file in source.files.iter().chain(&source.split_rows) {
        let storage = storage_of(source)?;
        if !storage.exists(&file.upload).await? {
            let missing = storage.location(&file.upload);
            return Err(CostError::Engine(anyhow::anyhow!("the upload file {missing} is missing")));
        }
    }
    Ok(())
}

/// `source` reading each upload's rollup instead of its rows wherever that gives the same sums to the
/// last digit (see `engine::rollup`); `None` when no upload's can.
pub(crate) async fn with_rollups(source: &CostSource, query: &CostQuery) -> Result<Option<CostSource>, CostError> {
    if query.aggregate != Aggregate::Cost || source.files.iter().all(|f| f.rollup_decimals.is_none()) {
        return Ok(None);
    }
    // A provider tag's value is in no rollup: say so without planning (a split's basis is such a query).
    let provider_tag = |key: &str| !source.virtual_tags.iter().any(|t| t.key == key);
    if query.groupings.iter().any(|g| matches!(g, Grouping::Tag(key) if provider_tag(key))) {
        return Ok(None);
    }
    let Some(places) = super::rollup::factor_places(&source.rules) else { return Ok(None) };
    // A proportional split divides each row by its basis, which rounds: only the rows give its digits. When
    // the plan sums that split without a row per share (`allocation::fused`), the rows it divides are read
    // from the rows (`split_rows`) and every other row from the rollups; else the rows answer.
    let used = super::allocation::used(&source.virtual_tags, query);
    let divides = used.iter().any(|&i| source.virtual_tags[i].splits_by_proportion());
    if divides && super::allocation::fusable(&source.virtual_tags, &used, query).is_none() {
        return Ok(None);
    }
    // A split multiplies amounts by its shares' fractions: on sums exactly as on rows while no product rounds.
    let places = places + source.virtual_tags.iter().map(|t| t.split_places()).max().unwrap_or(0);
    // A rate multiplies the same way; one given the other way divides, which sums do not commute with.
    let places = match &source.conversion {
        Some(conversion) => match conversion.added_places() {
            Some(more) => places + more,
            None => return Ok(None),
        },
        None => places,
    };
    // What the plan over the rows reads from them, after DataFusion pruned every column it does not need:
    // the coarsest level holding all of it answers. (The splits' parts change no column read.)
    let plan = grouped(source, query, &Default::default()).await?.into_optimized_plan()?;
    let read = columns_read(&plan)?;
    let Some(level) = super::rollup::Level::ALL
        .into_iter()
        .find(|level| read.as_ref().is_some_and(|read| read.iter().all(|c| level.columns().any(|l| l == c))))
    else {
        return Ok(None);
    };
    let files = source
        .files
        .iter()
        .map(|f| match f.rollup_decimals {
            Some(d) if u32::from(d) + places <= super::schema::AMOUNT_SCALE as u32 => {
                SourceFile { upload: super::storage::rollup_name(&f.upload, level), rollup_decimals: None, ..f.clone() }
            }
            _ => f.clone(),
        })
        .collect::<Vec<_>>();
    if files == source.files {
        return Ok(None);
    }
    let split_rows = if divides { source.files.clone() } else { Vec::new() };
    Ok(Some(CostSource { files, split_rows, ..source.clone() }))
}

/// The columns the scans of `plan` read (in their projections and pushed filters); `None` when a scan
/// reads every column.
fn columns_read(plan: &datafusion::logical_expr::LogicalPlan) -> Result<Option<Vec<String>>, CostError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::LogicalPlan;
    let mut read = Some(Vec::new());
    plan.apply(|node| {
        if let (LogicalPlan::TableScan(scan), Some(columns)) = (node, read.as_mut()) {
            let Some(indices) = &scan.projection else {
                read = None;
                return Ok(TreeNodeRecursion::Stop);
            };
            let schema = scan.source.schema();
            columns.extend(indices.iter().map(|&i| schema.field(i).name().clone()));
            for filter in &scan.filters {
                columns.extend(filter.column_refs().into_iter().map(|c| c.name.clone()));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(read)
}

/// Runs `query` over `source`: on the uploads' rollups where they answer exactly, else on their rows.
#[tracing::instrument(skip_all, fields(files = source.files.len(), rules = source.rules.len()))]
pub async fn run(source: &CostSource, query: &CostQuery) -> Result<CostResult, CostError> {
    let bases = bases_of(source, query).await?;
    if let Some(rolled) = with_rollups(source, query).await? {
        match run_over(&rolled, query, &bases).await {
            // A sum may pass 38 digits before a rule scales it back; the rows say whether it really does.
            Err(CostError::Overflow(_)) => {}
            done => return done,
        }
    }
    run_over(source, query, &bases).await
}

/// The parts of the proportional splits `query` applies (read once, whichever files answer).
async fn bases_of(source: &CostSource, query: &CostQuery) -> Result<super::allocation::Bases, CostError> {
    let used = super::allocation::used(&source.virtual_tags, query);
    super::allocation::bases(source, query, &used).await
}

async fn run_over(
    source: &CostSource,
    query: &CostQuery,
    bases: &super::allocation::Bases,
) -> Result<CostResult, CostError> {
    let grouped = grouped(source, query, bases).await?;
    let task_ctx = grouped.task_ctx();
    let plan = grouped.create_physical_plan().await?;
    let batches = datafusion::physical_plan::collect(plan.clone(), Arc::new(task_ctx)).await?;
    tracing::debug!(
        plan = %datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true),
        "costs plan, with the time and rows of each step"
    );
    check_files(source).await?;

    let mut rows = Vec::new();
    let mut totals: Vec<(String, Amount)> = Vec::new();
    let mut usage_totals: Vec<(String, Amount)> = Vec::new();
    for batch in &batches {
        for row in batch_rows(batch, query)? {
            add_to(&mut totals, &row.currency, row.amount, "total")?;
            if let Some((used, unit)) = &row.usage {
                add_to(&mut usage_totals, unit, *used, "usage total")?;
            }
            rows.push(row);
        }
    }
    Ok(CostResult { rows, totals, usage_totals })
}

/// Streams the result of `query` over `source` to `out` as CSV, one batch of rows at a time (memory
/// follows the grouped result, never the cost rows): `accrued_at`, the groupings, `amount`, `currency`,
/// and with usage `usage_amount`, `usage_unit`. Answers the number of rows written.
pub async fn export_csv(
    source: &CostSource,
    query: &CostQuery,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, CostError> {
    use futures::StreamExt;
    let bases = bases_of(source, query).await?;
    let rolled = with_rollups(source, query).await?;
    let source = rolled.as_ref().unwrap_or(source);
    let grouped = grouped(source, query, &bases).await?;
    let mut stream = grouped.execute_stream().await?;
    let mut csv = CostRowsCsv::new(out, query, "accrued_at")?;
    let mut written = 0;
    while let Some(batch) = stream.next().await {
        for row in batch_rows(&batch?, query)? {
            csv.write(row)?;
            written += 1;
        }
    }
    csv.finish()?;
    check_files(source).await?;
    Ok(written)
}

/// Cost rows as CSV, the one writer of them (`costd query --format csv` and data exports): `accrued_at`,
/// (or another name), the groupings, `amount`, `currency`, and with usage `usage_amount`, `usage_unit`. Dimensions,
/// currencies and units come from uploads: text a spreadsheet must not run (`text_cell`); dates and
/// amounts are costd's own.
pub struct CostRowsCsv<W: std::io::Write> {
    csv: csv::Writer<W>,
    with_usage: bool,
}

fn csv_error(e: impl Into<anyhow::Error>) -> CostError {
    CostError::Engine(e.into().context("failed to write the cost rows"))
}

impl<W: std::io::Write> CostRowsCsv<W> {
    /// Writes the header of `query`'s rows, the first column named `date_column`.
    pub fn new(out: W, query: &CostQuery, date_column: &str) -> Result<Self, CostError> {
        let mut csv = csv::Writer::from_writer(out);
        let with_usage = query.aggregate == Aggregate::Usage;
        let mut header = vec![date_column.to_string()];
        header.extend(query.groupings.iter().map(|g| text_cell(&g.name()).into_owned()));
        header.extend(["amount".to_string(), "currency".to_string()]);
        if with_usage {
            header.extend(["usage_amount".to_string(), "usage_unit".to_string()]);
        }
        csv.write_record(&header).map_err(csv_error)?;
        Ok(CostRowsCsv { csv, with_usage })
    }

    pub fn write(&mut self, row: CostRow) -> Result<(), CostError> {
        let mut record = vec![row.accrued_at.to_string()];
        record.extend(row.dimensions.into_iter().map(|(_, v)| text_cell(&v.unwrap_or_default()).into_owned()));
        record.extend([row.amount.to_string(), text_cell(&row.currency).into_owned()]);
        if self.with_usage {
            let (used, unit) = row.usage.map(|(a, u)| (a.to_string(), u)).unwrap_or_default();
            record.extend([used, text_cell(&unit).into_owned()]);
        }
        self.csv.write_record(&record).map_err(csv_error)
    }

    /// Flushes what is buffered and gives the output back.
    pub fn finish(self) -> Result<W, CostError> {
        self.csv.into_inner().map_err(|e| csv_error(e.into_error()))
    }
}

/// The rows of one result batch.
fn batch_rows(batch: &RecordBatch, query: &CostQuery) -> Result<Vec<CostRow>, CostError> {
    let with_usage = query.aggregate == Aggregate::Usage;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let bins = batch.column_by_name("bin").expect("bin column").as_primitive::<Date32Type>();
    let cur =
        arrow::compute::cast(batch.column_by_name("cur").expect("currency column"), &arrow::datatypes::DataType::Utf8)
            .map_err(|e| CostError::Engine(e.into()))?;
    let cur = cur.as_string::<i32>();
    let total_col = narrow_totals(batch.column_by_name("total").expect("total column"))?;
    let totals_col = total_col.as_primitive::<Decimal128Type>();
    let dims: Vec<Arc<dyn Array>> = (0..query.groupings.len())
        .map(|i| {
            arrow::compute::cast(
                batch.column_by_name(&grouping_column(i)).expect("grouping column"),
                &arrow::datatypes::DataType::Utf8,
            )
            .map_err(|e| CostError::Engine(e.into()))
        })
        .collect::<Result<_, _>>()?;
    let usage = if with_usage {
        let units = arrow::compute::cast(batch.column_by_name("unit").expect("unit column"), &DataType::Utf8)
            .map_err(|e| CostError::Engine(e.into()))?;
        Some((units, narrow_totals(batch.column_by_name("usage").expect("usage column"))?))
    } else {
        None
    };
    for i in 0..batch.num_rows() {
        let amount = if totals_col.is_null(i) { 0 } else { totals_col.value(i) };
        let amount = Amount::from_unscaled(amount).expect("narrowed to an amount above");
        let currency = cur.value(i).to_string();
        let usage = match &usage {
            Some((units, sums)) => {
                let (units, sums) = (units.as_string::<i32>(), sums.as_primitive::<Decimal128Type>());
                if units.is_null(i) {
                    None
                } else {
                    let unit = units.value(i).to_string();
                    let used = Amount::from_unscaled(if sums.is_null(i) { 0 } else { sums.value(i) })
                        .expect("narrowed to an amount above");
                    Some((used, unit))
                }
            }
            None => None,
        };
        rows.push(CostRow {
            usage,
            accrued_at: date_from_days(bins.value(i)),
            amount,
            currency,
            dimensions: query
                .groupings
                .iter()
                .zip(&dims)
                .map(|(g, d)| {
                    let d = d.as_string::<i32>();
                    (g.to_string(), (!d.is_null(i)).then(|| d.value(i).to_string()))
                })
                .collect(),
        });
    }
    Ok(rows)
}

/// Adds `amount` to the total keyed `key` (a currency, or a usage unit).
fn add_to(totals: &mut Vec<(String, Amount)>, key: &str, amount: Amount, what: &str) -> Result<(), CostError> {
    match totals.iter_mut().find(|(k, _)| k == key) {
        Some((_, t)) => {
            *t = t.checked_add(amount).ok_or_else(|| {
                CostError::Overflow(format!(
                    "the {key} {what} does not fit an amount (at most 38 digits, 18 after the point)"
                ))
            })?
        }
        None => totals.push((key.to_string(), amount)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use costd_model::cost_query::Settings;

    fn quarter() -> CostQuery {
        CostQuery {
            start: NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2024, 9, 30).unwrap(),
            groupings: vec![Grouping::Column(costd_model::cost_query::ColumnGrouping::Service)],
            date_bin: DateBin::Month,
            descending: false,
            settings: Settings::default(),
            aggregate: Aggregate::Cost,
            filter: None,
            segment: None,
        }
    }

    #[tokio::test]
    async fn a_missing_upload_file_fails_the_query_instead_of_answering_short() {
        let dir = tempfile::tempdir().unwrap();
        let source = CostSource {
            files: vec![SourceFile {
                integration: "accss_crdntl_1".into(),
                upload: "usr_csts_upld_gone".into(),
                rollup_decimals: None,
            }],
            storage: Some(crate::storage::Storage::Local { dir: dir.path().to_path_buf() }),
            ..CostSource::default()
        };
        match run(&source, &quarter()).await {
            Err(CostError::Engine(e)) => assert!(e.to_string().contains("usr_csts_upld_gone"), "{e}"),
            other => panic!("expected an engine error, got {other:?}"),
        }
    }
}

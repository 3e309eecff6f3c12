//! Virtual tags in the costs plan (docs/allocation.md): each virtual tag a query reads becomes one text
//! column of the costs, computed after the billing rules and before the query's own filter, so groupings
//! (`tag:<key>`), VQL tag conditions, and everything built on the costs query (reports, budgets, alerts,
//! exports, invoices) see it like a provider tag. Nothing is written: a changed tag is a new plan.
//!
//! Per tag, for each cost row:
//! 1. `p`, the provider's value: the row's tag of the key, else of a collapsed key (within the collapsed
//!    key's providers and filter);
//! 2. the index of the first value whose filter keeps the row on a day its date ranges hold (the filters
//!    see provider columns and provider tags only, so one virtual tag can never depend on another and
//!    there are no cycles to refuse); a tag that is not `overridable` leaves rows with a `p` alone;
//! 3. a row matched by a split becomes one row per share ([`DataFrame::unnest_columns`]): each share but the
//!    last is `amount × pct / 100` (a percentage split) or `amount × part / whole` (a proportional split:
//!    the row's month's parts of its basis, `bases`) rounded half away from zero to 18 places, and the
//!    last is the amount less the others, so the shares add up to the row's amount exactly. Usage is split
//!    the same way; no other column changes. A proportional split whose basis has nothing in the row's
//!    month leaves the row whole, named "unallocated";
//! 4. the column holds the value's name (or the share's), else `p`, else NULL (not tagged by the key).
//!
//! A proportional split's basis is read before the plan is built, for the whole months the query touches:
//! another costs query over the same source (rules, conversion and the query's settings; no virtual tags,
//! so no tag can depend on another) summed by month and provider tag, or a business metric's values
//! summed by month and label. Only positive parts share; they are ordered by name, so the last share (the
//! one that takes the rounding) is the same in every query.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array, Int32Array, ListBuilder, PrimitiveBuilder, StringBuilder};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{cast, col, create_udf, lit, when, ColumnarValue, Expr, Volatility};
use rust_decimal::Decimal;

use costd_model::cost_query::{Aggregate, CostQuery, DateBin, Grouping};
use costd_model::virtual_tag::{Assign, Basis, TagValue, VirtualTagDefinition};
use costd_model::vql::Condition;

pub mod fused;

use super::costs::{CostError, CostSource};
use super::ingest::parse::days_since_epoch;
use super::schema::{amount_type, col as c, AMOUNT_PRECISION, AMOUNT_SCALE};

/// The virtual tags a plan computes: (key, the column holding its value), in the order of the source.
pub type TagColumns = Vec<(String, String)>;

/// The column of the `i`th virtual tag of a source.
fn value_column(i: usize) -> String {
    format!("__vtag_{i}")
}

fn index_column(i: usize) -> String {
    format!("__vtag_{i}_value")
}

fn provider_column(i: usize) -> String {
    format!("__vtag_{i}_provider")
}

fn share_column(i: usize) -> String {
    format!("__vtag_{i}_share")
}

/// The indices (into `tags`) of the virtual tags `query` reads: those it groups by or names in its filter;
/// every one when it asks whether a row is tagged at all, or for a tag value under any key.
pub fn used(tags: &[VirtualTagDefinition], query: &CostQuery) -> Vec<usize> {
    let mut keys = BTreeSet::new();
    let mut all = false;
    for g in &query.groupings {
        match g {
            Grouping::Tag(key) => {
                keys.insert(key.as_str());
            }
            Grouping::Tagged => all = true,
            Grouping::Integration => {}
            Grouping::Column(_) => {}
        }
    }
    for filter in query.filters() {
        walk(filter.condition(), &mut |c| match c {
            Condition::Tag { name: Some(name), .. } => {
                keys.insert(name.as_str());
            }
            Condition::Tag { name: None, .. } | Condition::Untagged => all = true,
            _ => {}
        });
    }
    (0..tags.len()).filter(|&i| all || keys.contains(tags[i].key.as_str())).collect()
}

fn walk<'a>(c: &'a Condition, f: &mut impl FnMut(&'a Condition)) {
    f(c);
    match c {
        Condition::And(l, r) | Condition::Or(l, r) => {
            walk(l, f);
            walk(r, f);
        }
        Condition::Not(inner) => walk(inner, f),
        _ => {}
    }
}

/// A proportional split's parts in each month: (name, part) with positive parts, ordered by name, keyed by
/// the month's first day (days since the epoch).
pub type MonthParts = HashMap<i32, Vec<(String, i128)>>;

/// The parts of every proportional split a query applies: by (tag index, value index).
pub type Bases = HashMap<(usize, usize), Arc<MonthParts>>;

/// The first day of the month of `start` and the last of the month of `end`: the whole months a query
/// touches, which a proportional split's basis covers.
pub fn whole_months(start: chrono::NaiveDate, end: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let first = start.with_day(1).expect("every month has a first day");
    let next = if end.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(end.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(end.year(), end.month() + 1, 1)
    };
    (first, next.and_then(|n| n.pred_opt()).unwrap_or(end))
}

/// The parts of each proportional split of the `used` tags, for the months of `query` (see the module doc).
pub(crate) async fn bases(source: &CostSource, query: &CostQuery, used: &[usize]) -> Result<Bases, CostError> {
    let (start, end) = whole_months(query.start, query.end);
    let mut out = Bases::new();
    // The same basis (a filter and a tag) read once however many values name it.
    let mut read: HashMap<&Basis, Arc<MonthParts>> = HashMap::new();
    for &i in used {
        for (k, value) in source.virtual_tags[i].values.iter().enumerate() {
            let Assign::Proportional { basis, .. } = &value.assign else { continue };
            let parts = match read.get(basis) {
                Some(parts) => parts.clone(),
                None => {
                    let parts = Arc::new(match basis {
                        Basis::Costs { filter, tag } => {
                            let basis_query = CostQuery {
                                start,
                                end,
                                groupings: vec![Grouping::Tag(tag.clone())],
                                date_bin: DateBin::Month,
                                descending: false,
                                settings: query.settings,
                                aggregate: Aggregate::Cost,
                                filter: filter.clone(),
                                segment: None,
                            };
                            // Provider tags only: no virtual tag (nor a split) shapes another's basis.
                            let plain = CostSource {
                                virtual_tags: Vec::new(),
                                metric_values: BTreeMap::new(),
                                ..source.clone()
                            };
                            let result = Box::pin(super::costs::run(&plain, &basis_query)).await?;
                            parts_of(result.rows.into_iter().filter_map(|r| {
                                let name = r.dimensions.into_iter().next().and_then(|(_, v)| v)?;
                                Some((r.accrued_at, name, r.amount.unscaled()))
                            }))
                        }
                        Basis::Metric { token, labels, transforms, .. } => {
                            let values = source.metric_values.get(token).map(Vec::as_slice).unwrap_or_default();
                            parts_of(values.iter().filter_map(|v| {
                                let label = v.label.clone()?;
                                if v.date < start || v.date > end || !(labels.is_empty() || labels.contains(&label)) {
                                    return None;
                                }
                                let amount = costd_model::amount::Amount::from_decimal(v.amount)?;
                                let name = costd_model::virtual_tag::transformed(transforms, &label);
                                Some((v.date, name, amount.unscaled()))
                            }))
                        }
                    });
                    read.insert(basis, parts.clone());
                    parts
                }
            };
            out.insert((i, k), parts);
        }
    }
    Ok(out)
}

/// (day, name, amount) summed by month and name: the positive parts, ordered by name.
fn parts_of(items: impl Iterator<Item = (chrono::NaiveDate, String, i128)>) -> MonthParts {
    let mut sums: BTreeMap<(i32, String), i128> = BTreeMap::new();
    for (day, name, amount) in items {
        let month = super::dates::month_start(days_since_epoch(day));
        let slot = sums.entry((month, name)).or_default();
        // Saturating: a basis past 10^38 only skews its own proportions, never an amount.
        *slot = slot.saturating_add(amount);
    }
    let mut parts = MonthParts::new();
    for ((month, name), amount) in sums {
        if amount > 0 {
            parts.entry(month).or_default().push((name, amount));
        }
    }
    // Only a month's proportions matter: its parts divided by their greatest common divisor give every
    // share's digits unchanged, and amounts of a few places (sums of 6-place costs are multiples of 10^12
    // at 18 places) become small enough that `amount × part` fits 128 bits, the fast path.
    for month in parts.values_mut() {
        let divisor = month.iter().fold(0u128, |g, (_, p)| gcd(g, p.unsigned_abs()));
        if divisor > 1 {
            for (_, p) in month.iter_mut() {
                *p = (p.unsigned_abs() / divisor) as i128;
            }
        }
    }
    parts
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The one splitting tag of `used` that `query` only groups by, so its shares can be summed without a row
/// per share ([`fused`]): `None` when the general plan is needed (several splitting tags, a filter or
/// segment naming a tag, a `tagged` grouping, or another tag of the same key read first).
pub fn fusable(tags: &[VirtualTagDefinition], used: &[usize], query: &CostQuery) -> Option<usize> {
    let splitting: Vec<usize> = used.iter().copied().filter(|&i| tags[i].splits()).collect();
    let [i] = splitting[..] else { return None };
    let key = tags[i].key.as_str();
    if used.iter().find(|&&j| tags[j].key == key) != Some(&i) {
        return None;
    }
    let mut groupings = 0;
    for g in &query.groupings {
        match g {
            Grouping::Tag(k) if k == key => groupings += 1,
            Grouping::Tagged => return None,
            _ => {}
        }
    }
    let mut names_a_tag = false;
    for filter in query.filters() {
        walk(filter.condition(), &mut |c| {
            names_a_tag |= matches!(c, Condition::Tag { .. } | Condition::Untagged);
        });
    }
    (groupings == 1 && !names_a_tag).then_some(i)
}

/// `costs` with a value column for each of `tags` at `used` (see the module doc), the proportional splits'
/// parts from `bases`; answers the columns. The tag at `fused` (from [`fusable`]) gets its value index and
/// provider columns only, and how its shares are summed (`bins_span_months`: a bin of the query, a week
/// or a quarter, may hold days of two months).
pub fn apply(
    mut costs: DataFrame,
    tags: &[VirtualTagDefinition],
    used: &[usize],
    bases: &Bases,
    fused: Option<usize>,
    bins_span_months: bool,
) -> Result<(DataFrame, TagColumns, Option<fused::FusedSplit>), DataFusionError> {
    // Every tag's value index from the provider's columns first: a split's rows must not be seen (and split
    // again) by the next tag's filters as new costs, only as shares of the same cost.
    let mut reads_provider = Vec::with_capacity(used.len());
    for &i in used {
        let tag = &tags[i];
        // An overriding tag whose values end in a catch-all names every row itself: the provider's value
        // would never be read, so the row's tags are not parsed for it.
        let catch_all = tag.values.iter().any(|v| v.filter.is_none() && v.date_ranges.is_empty());
        let ignored = tag.overridable && catch_all;
        reads_provider.push(!ignored);
        let provider = if ignored { lit(ScalarValue::Utf8(None)) } else { provider_value(tag) };
        costs = costs.with_column(&provider_column(i), provider)?;
        costs = costs.with_column(&index_column(i), value_index(tag, col(provider_column(i))))?;
    }
    let mut columns = TagColumns::new();
    let mut fused_split = None;
    for (n, &i) in used.iter().enumerate() {
        let tag = &tags[i];
        let splitter = Arc::new(Splitter::new(tag, i, bases));
        if fused == Some(i) {
            fused_split = Some(fused::FusedSplit::new(splitter, i, reads_provider[n], bins_span_months));
            continue;
        }
        let share = if tag.splits() {
            let day = col(c::ACCRUED_AT);
            costs = costs
                .with_column(&share_column(i), shares_udf(&splitter).call(vec![col(index_column(i)), day.clone()]))?;
            costs = costs.unnest_columns(&[&share_column(i)])?;
            let split = |column: &str| {
                split_udf(&splitter).call(vec![col(column), col(index_column(i)), col(share_column(i)), day.clone()])
            };
            costs =
                costs.with_column(c::AMOUNT, split(c::AMOUNT))?.with_column(c::USAGE_AMOUNT, split(c::USAGE_AMOUNT))?;
            col(share_column(i))
        } else {
            lit(0i32)
        };
        costs = costs.with_column(&value_column(i), value_name(tag, col(index_column(i)), share, i, &splitter))?;
        columns.push((tag.key.clone(), value_column(i)));
    }
    Ok((costs, columns, fused_split))
}

/// The provider's value of the tag's key: its own tag, else the first collapsed key's in scope.
fn provider_value(tag: &VirtualTagDefinition) -> Expr {
    let text = |e: Expr| cast(e, DataType::Utf8);
    let mut options = vec![text(super::tags::tag_value(&tag.key))];
    for collapsed in &tag.collapsed_tag_keys {
        let mut scope = lit(true);
        if !collapsed.providers.is_empty() {
            scope = scope.and(super::vql::providers(&collapsed.providers));
        }
        if let Some(filter) = &collapsed.filter {
            scope = scope.and(super::vql::compile(filter));
        }
        let value = text(super::tags::tag_value(&collapsed.key));
        options.push(when(scope, value).otherwise(lit(ScalarValue::Utf8(None))).expect("a valid CASE"));
    }
    if options.len() == 1 {
        options.remove(0)
    } else {
        coalesce(options)
    }
}

/// Whether `value` applies to a row: its filter keeps it on a day its date ranges hold.
fn applies(value: &TagValue) -> Expr {
    let day = |d: chrono::NaiveDate| lit(ScalarValue::Date32(Some(days_since_epoch(d))));
    let filter = value.filter.as_ref().map_or(lit(true), super::vql::compile);
    if value.date_ranges.is_empty() {
        return filter;
    }
    let in_ranges = value
        .date_ranges
        .iter()
        .map(|r| {
            let mut e = lit(true);
            if let Some(start) = r.start {
                e = e.and(col(c::ACCRUED_AT).gt_eq(day(start)));
            }
            if let Some(end) = r.end {
                e = e.and(col(c::ACCRUED_AT).lt_eq(day(end)));
            }
            e
        })
        .reduce(Expr::or)
        .unwrap_or(lit(true));
    filter.and(in_ranges)
}

/// `CASE WHEN … THEN … ELSE otherwise END` (just `otherwise` without a branch).
pub(crate) fn case(branches: Vec<(Expr, Expr)>, otherwise: Expr) -> Expr {
    if branches.is_empty() {
        return otherwise;
    }
    Expr::Case(datafusion::logical_expr::Case {
        expr: None,
        when_then_expr: branches.into_iter().map(|(w, t)| (Box::new(w), Box::new(t))).collect(),
        else_expr: Some(Box::new(otherwise)),
    })
}

/// The index of the first value applying to a row (NULL: none, or a provider value the tag may not override).
fn value_index(tag: &VirtualTagDefinition, provider: Expr) -> Expr {
    let none = lit(ScalarValue::Int32(None));
    let mut branches = Vec::new();
    if !tag.overridable {
        branches.push((provider.is_not_null(), none.clone()));
    }
    for (k, value) in tag.values.iter().enumerate() {
        branches.push((applies(value), lit(k as i32)));
    }
    case(branches, none)
}

/// The name a row gets: its value's (or its share's), else the provider's.
fn value_name(tag: &VirtualTagDefinition, index: Expr, share: Expr, i: usize, splitter: &Arc<Splitter>) -> Expr {
    // A split's rows are many: one pass of a lookup names them, where a CASE would compare every row once per
    // share and build each name.
    if tag.splits() {
        return names_udf(splitter).call(vec![index, share, col(c::ACCRUED_AT), col(provider_column(i))]);
    }
    let mut branches = Vec::new();
    for (k, value) in tag.values.iter().enumerate() {
        if let Assign::Name(name) = &value.assign {
            branches.push((index.clone().eq(lit(k as i32)), lit(name.clone())));
        }
    }
    case(branches, col(provider_column(i)))
}

/// A split's parts by month, ordered: (first day, first day of the next month, parts).
type Months = Vec<(i32, i32, Vec<(String, i128)>)>;

fn months(parts: &MonthParts) -> Months {
    let mut months: Months = parts
        .iter()
        // Every month has at most 31 days: 31 days after its first is in the next one.
        .map(|(&start, parts)| (start, super::dates::month_start(start + 31), parts.clone()))
        .collect();
    months.sort_unstable_by_key(|(start, _, _)| *start);
    months
}

/// How one value of a tag splits a row.
#[derive(Debug)]
enum ValueSplit {
    /// It names the row whole.
    Whole(String),
    /// By fixed fractions (`pct / 100`, as digits and places), each share under its name.
    Fixed(Vec<(String, i128, u32)>),
    /// By its basis's parts in the row's month; unallocated (whole, under this name) in a month without.
    ByMonth(Arc<Months>, String),
}

/// What a tag's values do to a row, for the split functions of the plan.
#[derive(Debug)]
struct Splitter {
    values: Vec<ValueSplit>,
}

impl Splitter {
    fn new(tag: &VirtualTagDefinition, i: usize, bases: &Bases) -> Splitter {
        let values = tag
            .values
            .iter()
            .enumerate()
            .map(|(k, v)| match &v.assign {
                Assign::Name(name) => ValueSplit::Whole(name.clone()),
                Assign::Percentages { shares, .. } => ValueSplit::Fixed(
                    shares
                        .iter()
                        .map(|s| {
                            let f = (s.pct / Decimal::ONE_HUNDRED).normalize();
                            (s.value.clone(), f.mantissa(), f.scale())
                        })
                        .collect(),
                ),
                Assign::Proportional { .. } => {
                    let parts = bases.get(&(i, k)).map(|p| months(p)).unwrap_or_default();
                    ValueSplit::ByMonth(Arc::new(parts), v.assign.unallocated())
                }
            })
            .collect();
        Splitter { values }
    }

    fn split(&self, index: Option<i32>) -> Option<&ValueSplit> {
        index.and_then(|k| self.values.get(k as usize))
    }

    /// The parts of `day`'s month (none: unallocated).
    fn parts(months: &Months, day: i32) -> &[(String, i128)] {
        // The last month starting on or before `day`, if `day` is in it: a search, not a date conversion
        // and a hash per row.
        let i = months.partition_point(|(start, _, _)| *start <= day);
        match i.checked_sub(1).map(|i| &months[i]) {
            Some((_, next, parts)) if day < *next => parts,
            _ => &[],
        }
    }

    /// How many shares a row of value `index` on `day` becomes.
    fn count(&self, index: Option<i32>, day: i32) -> usize {
        match self.split(index) {
            None | Some(ValueSplit::Whole(_)) => 1,
            Some(ValueSplit::Fixed(fractions)) => fractions.len().max(1),
            Some(ValueSplit::ByMonth(parts, _)) => Self::parts(parts, day).len().max(1),
        }
    }

    /// Share `s` of `amount` for a row of value `index` on `day`.
    fn part(&self, amount: i128, index: Option<i32>, s: usize, day: i32) -> Result<i128, arrow::error::ArrowError> {
        match self.split(index) {
            None | Some(ValueSplit::Whole(_)) => Ok(amount),
            Some(ValueSplit::Fixed(fractions)) => {
                let last = fractions.len().saturating_sub(1);
                if s < last {
                    let (_, mantissa, places) = fractions[s];
                    return super::amounts::scaled_by_places(amount, mantissa, places);
                }
                // The last share: what the others leave, so the shares add up to the amount exactly.
                let mut rest = amount;
                for &(_, mantissa, places) in &fractions[..last] {
                    rest -= super::amounts::scaled_by_places(amount, mantissa, places)?;
                }
                Ok(rest)
            }
            Some(ValueSplit::ByMonth(parts, _)) => match Self::parts(parts, day) {
                [] => Ok(amount),
                parts => share_by_parts(amount, parts, s),
            },
        }
    }

    /// Every share of `amount` for a row of value `index` on `day`, into `out`: share `s` is
    /// [`Self::part`]`(amount, index, s, day)`, each worked out once.
    fn parts_into(
        &self,
        amount: i128,
        index: Option<i32>,
        day: i32,
        out: &mut Vec<i128>,
    ) -> Result<(), arrow::error::ArrowError> {
        out.clear();
        match self.split(index) {
            None | Some(ValueSplit::Whole(_)) => out.push(amount),
            Some(ValueSplit::Fixed(fractions)) => {
                let mut rest = amount;
                for &(_, mantissa, places) in &fractions[..fractions.len().saturating_sub(1)] {
                    let share = super::amounts::scaled_by_places(amount, mantissa, places)?;
                    rest -= share;
                    out.push(share);
                }
                out.push(rest);
            }
            Some(ValueSplit::ByMonth(parts, _)) => match Self::parts(parts, day) {
                [] => out.push(amount),
                parts => {
                    let whole = parts.iter().fold(0i128, |sum, (_, p)| sum.saturating_add(*p));
                    let mut rest = amount;
                    for (_, p) in &parts[..parts.len() - 1] {
                        let share = super::amounts::scaled_by_ratio(amount, *p, whole)?;
                        rest -= share;
                        out.push(share);
                    }
                    out.push(rest);
                }
            },
        }
        Ok(())
    }

    /// The name of share `s` of a row of value `index` on `day` (`None`: no value applies).
    fn name(&self, index: Option<i32>, s: usize, day: i32) -> Option<&str> {
        match self.split(index)? {
            ValueSplit::Whole(name) => Some(name.as_str()),
            ValueSplit::Fixed(shares) => shares.get(s).map(|(name, _, _)| name.as_str()),
            ValueSplit::ByMonth(parts, unallocated) => match Self::parts(parts, day) {
                [] => Some(unallocated.as_str()),
                parts => parts.get(s).map(|(name, _)| name.as_str()),
            },
        }
    }
}

/// (index, day) → the list of its share numbers (`[0, 1, …]` for a split, `[0]` otherwise), to unnest.
fn shares_udf(splitter: &Arc<Splitter>) -> datafusion::logical_expr::ScalarUDF {
    let splitter = splitter.clone();
    let item = Arc::new(arrow::datatypes::Field::new("item", DataType::Int32, true));
    let out = DataType::List(item.clone());
    create_udf(
        "vtag_shares",
        vec![DataType::Int32, DataType::Date32],
        out,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (index, day) = (arrays[0].as_primitive::<Int32Type>(), arrays[1].as_primitive::<Date32Type>());
            let mut list = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new()).with_field(item.clone());
            for i in 0..index.len() {
                let n = splitter.count(index.is_valid(i).then(|| index.value(i)), day.value(i));
                for s in 0..n {
                    list.values().append_value(s as i32);
                }
                list.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(list.finish())))
        }),
    )
}

/// (amount, index, share, day) → the share's part of the amount (the whole amount where the row is not split).
fn split_udf(splitter: &Arc<Splitter>) -> datafusion::logical_expr::ScalarUDF {
    let splitter = splitter.clone();
    create_udf(
        "vtag_split",
        vec![amount_type(), DataType::Int32, DataType::Int32, DataType::Date32],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (amounts, index, share, day) = (
                arrays[0].as_primitive::<Decimal128Type>(),
                arrays[1].as_primitive::<Int32Type>(),
                arrays[2].as_any().downcast_ref::<Int32Array>().expect("share numbers"),
                arrays[3].as_primitive::<Date32Type>(),
            );
            let mut out = Vec::with_capacity(amounts.len());
            for i in 0..amounts.len() {
                if amounts.is_null(i) {
                    out.push(None);
                    continue;
                }
                let amount = amounts.value(i);
                let part = if share.is_null(i) {
                    amount
                } else {
                    let index = index.is_valid(i).then(|| index.value(i));
                    splitter.part(amount, index, share.value(i) as usize, day.value(i))?
                };
                out.push(Some(part));
            }
            let array = Decimal128Array::from(out).with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)?;
            Ok(ColumnarValue::Array(Arc::new(array)))
        }),
    )
}

/// (index, share, day, provider value) → the name a row of a splitting tag gets: its value's or share's,
/// else the provider's.
fn names_udf(splitter: &Arc<Splitter>) -> datafusion::logical_expr::ScalarUDF {
    let splitter = splitter.clone();
    create_udf(
        "vtag_name",
        vec![DataType::Int32, DataType::Int32, DataType::Date32, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (index, share, day) = (
                arrays[0].as_primitive::<Int32Type>(),
                arrays[1].as_primitive::<Int32Type>(),
                arrays[2].as_primitive::<Date32Type>(),
            );
            let provider = arrays[3].as_string::<i32>();
            let mut out = StringBuilder::with_capacity(index.len(), index.len() * 8);
            for i in 0..index.len() {
                let s = if share.is_valid(i) { share.value(i) as usize } else { 0 };
                match splitter.name(index.is_valid(i).then(|| index.value(i)), s, day.value(i)) {
                    Some(name) => out.append_value(name),
                    None => out.append_option(provider.is_valid(i).then(|| provider.value(i))),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// Share `s` of `amount` split by `parts`: each but the last `amount × part / whole` rounded half away
/// from zero, the last whatever the others leave, so the shares add up to `amount` exactly.
pub fn share_by_parts(amount: i128, parts: &[(String, i128)], s: usize) -> Result<i128, arrow::error::ArrowError> {
    // Parts are positive: the whole is at least each of them, so every share is at most the amount.
    let whole = parts.iter().fold(0i128, |sum, (_, p)| sum.saturating_add(*p));
    let last = parts.len().saturating_sub(1);
    if s < last {
        return super::amounts::scaled_by_ratio(amount, parts[s].1, whole);
    }
    let mut rest = amount;
    for (_, p) in &parts[..last] {
        rest -= super::amounts::scaled_by_ratio(amount, *p, whole)?;
    }
    Ok(rest)
}

/// Share `s` of `amount` (unscaled at 18 places) split by `fractions`: each but the last rounded half away
/// from zero, the last whatever the others leave, so the shares add up to `amount` exactly.
pub fn share_of(amount: i128, fractions: &[Decimal], s: usize) -> Result<i128, arrow::error::ArrowError> {
    let last = fractions.len().saturating_sub(1);
    if s < last {
        return super::amounts::scaled_by_fraction(amount, fractions[s]);
    }
    let mut rest = amount;
    for &f in &fractions[..last] {
        // |share| ≤ |amount| while the fractions are at most 1, so the remainder stays in range.
        rest -= super::amounts::scaled_by_fraction(amount, f)?;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_last_share_takes_what_rounding_leaves() {
        let thirds = [Decimal::new(333333, 6), Decimal::new(333333, 6), Decimal::new(333334, 6)];
        // 1e-18 split in thirds: the first two round to 0, the last holds it all.
        assert_eq!((0..3).map(|s| share_of(1, &thirds, s).unwrap()).collect::<Vec<_>>(), vec![0, 0, 1]);
        let half = [Decimal::new(5, 1), Decimal::new(5, 1)];
        // 3e-18 in halves: 1.5 rounds away from zero to 2, the last gets 1.
        assert_eq!((0..2).map(|s| share_of(-3, &half, s).unwrap()).collect::<Vec<_>>(), vec![-2, -1]);
    }

    /// A source of one upload of `csv` in `dir`, tagged by `tag`.
    fn source(dir: &std::path::Path, csv: &str, tag: serde_json::Value) -> super::super::costs::CostSource {
        use super::super::costs::{CostSource, SourceFile};
        let tmp = dir.join("usr_csts_upld_1.parquet.tmp");
        let pending = super::super::ingest::ingest_csv(csv.as_bytes(), &tmp, Default::default(), &mut ()).unwrap();
        let rollup_decimals = pending.summary.rollup_decimals;
        pending.persist(&dir.join("usr_csts_upld_1.parquet")).unwrap();
        let fields: costd_model::virtual_tag::TagFields = serde_json::from_value(tag).unwrap();
        CostSource {
            files: vec![SourceFile {
                integration: "accss_crdntl_1".into(),
                upload: "usr_csts_upld_1".into(),
                rollup_decimals,
            }],
            storage: Some(super::super::storage::Storage::Local { dir: dir.to_path_buf() }),
            currency: "USD".into(),
            one_currency: true,
            virtual_tags: vec![VirtualTagDefinition::try_from(fields).unwrap()],
            ..CostSource::default()
        }
    }

    fn query(groupings: &[&str], filter: Option<&str>) -> CostQuery {
        use costd_model::cost_query::{Aggregate, DateBin, Settings};
        CostQuery {
            start: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2024, 7, 31).unwrap(),
            groupings: groupings.iter().map(|g| g.parse().unwrap()).collect(),
            date_bin: DateBin::Month,
            descending: false,
            settings: Settings::default(),
            aggregate: Aggregate::Cost,
            filter: filter.map(|f| costd_model::vql::Filter::parse(f).unwrap()),
            segment: None,
        }
    }

    const CSV: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n\
        Usage,2024-07-01,10.00,Support,{}\n\
        Usage,2024-07-02,0.000000000000000001,Support,{}\n\
        Usage,2024-07-03,7.00,Compute,\"{\"\"team\"\":\"\"web\"\"}\"\n\
        Usage,2024-07-20,5.00,Compute,{}\n\
        Usage,2024-07-04,3.00,Storage,\"{\"\"Team\"\":\"\"ops\"\"}\"\n";

    fn by_value(result: &super::super::costs::CostResult) -> Vec<(String, String)> {
        result.rows.iter().map(|r| (r.dimension(0), r.amount.to_string())).collect()
    }

    #[tokio::test]
    async fn a_virtual_tag_names_splits_and_keeps_every_cent() {
        let dir = tempfile::tempdir().unwrap();
        let tag = serde_json::json!({"key": "team", "overridable": false,
        "collapsed_tag_keys": [{"key": "Team"}],
        "values": [
            {"filter": "costs.service = 'Support'", "percentages": [
                {"value": "web", "pct": 33.333333}, {"value": "data", "pct": 33.333333}, {"value": "ops", "pct": 33.333334}]},
            {"filter": "costs.service = 'Compute'", "name": "platform",
             "date_ranges": [{"start_date": "2024-07-10", "end_date": null}]}
        ]});
        let source = source(dir.path(), CSV, tag);
        let result = super::super::costs::run(&source, &query(&["tag:team"], None)).await.unwrap();
        assert_eq!(
            by_value(&result),
            vec![
                ("data".into(), "3.3333333".into()),
                ("ops".into(), "6.333333400000000001".into()),
                ("platform".into(), "5.0".into()),
                ("web".into(), "10.3333333".into()),
            ],
            "Support split (the 1e-18 all to the last share), Compute from the 10th, the provider's web and Team kept"
        );
        assert_eq!(result.totals[0].1.to_string(), "25.000000000000000001");
        let web =
            super::super::costs::run(&source, &query(&["service"], Some("tags.name = 'team' AND tags.value = 'web'")))
                .await
                .unwrap();
        assert_eq!(by_value(&web), vec![("Compute".into(), "7.0".into()), ("Support".into(), "3.3333333".into())]);
        let untagged = super::super::costs::run(&source, &query(&["service"], Some("tags.name = NULL"))).await.unwrap();
        assert_eq!(by_value(&untagged), vec![], "every row has a team now");
    }

    /// `q` over `source` as it runs (its rollup where that answers) and over its rows alone, asserted equal
    /// to the last digit; the result.
    async fn as_rolled_and_as_rows(
        source: &super::super::costs::CostSource,
        q: &CostQuery,
    ) -> super::super::costs::CostResult {
        let mut rows = source.clone();
        rows.files[0].rollup_decimals = None;
        let (a, b) =
            (super::super::costs::run(source, q).await.unwrap(), super::super::costs::run(&rows, q).await.unwrap());
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.totals, b.totals);
        a
    }

    /// A tag that reads no provider tag (an overriding catch-all, filters on rolled-up columns) is answered
    /// from the upload's rollup, and the rollup gives the very digits the rows give.
    #[tokio::test]
    async fn a_split_over_the_rollup_gives_the_digits_of_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
        for i in 0..200i64 {
            let service = ["Support", "Compute", "Storage"][(i % 3) as usize];
            csv.push_str(&format!(
                "Usage,2024-07-{:02},{}.{:04},{service}\n",
                i % 28 + 1,
                i * 37 - 900,
                (i * 7919) % 10_000
            ));
        }
        let tag = serde_json::json!({"key": "owner", "overridable": true, "values": [
            {"filter": "costs.service = 'Compute'", "name": "platform"},
            {"filter": "", "percentages": [{"value": "web", "pct": 33.333333}, {"value": "data", "pct": 66.666667}]}]});
        let source = source(dir.path(), &csv, tag);
        assert!(source.files[0].rollup_decimals.is_some());
        let q = query(&["tag:owner", "service"], None);
        let rolled = super::super::costs::with_rollups(&source, &q).await.unwrap();
        assert!(rolled.is_some(), "the rollup answers a tag that reads no provider tag");
        let a = as_rolled_and_as_rows(&source, &q).await;
        assert!(a.rows.iter().any(|r| r.dimension(0) == "web"), "{:?}", a.rows);
    }

    /// A proportional split over rolled-up uploads: the rows it divides are read one per cost (each share
    /// rounded per row), every other row from the rollup, and the result is the rows' to the last digit.
    #[tokio::test]
    async fn a_proportional_split_reads_only_the_rows_it_divides_and_keeps_their_digits() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n");
        for i in 0..240i64 {
            let service = ["Support", "EC2", "Storage", "Other"][(i % 4) as usize];
            let team = ["web", "data", "ops"][(i % 3) as usize];
            // Several rows of one day and service: their sum splits to other digits than they do one by one.
            csv.push_str(&format!(
                "Usage,2024-07-{:02},{}.{:07},{service},\"{{\"\"team\"\":\"\"{team}\"\"}}\"\n",
                i % 5 + 1,
                i % 17,
                (i * 7919) % 10_000_000
            ));
        }
        let tag = serde_json::json!({"key": "owner", "overridable": true, "values": [
            {"filter": "costs.service = 'Storage'", "name": "platform"},
            {"filter": "costs.service = 'Support'", "display_name": "Support",
             "cost_metric": {"filter": "costs.service = 'EC2'", "aggregation": {"tag": "team"}}},
            {"filter": "", "percentages": [{"value": "web", "pct": 50}, {"value": "data", "pct": 50}]}]});
        let source = source(dir.path(), &csv, tag);
        let q = query(&["tag:owner"], None);
        let rolled = super::super::costs::with_rollups(&source, &q).await.unwrap().expect("the rollup answers");
        assert_eq!(rolled.split_rows, source.files, "the divided rows come from the rows");
        let a = as_rolled_and_as_rows(&source, &q).await;
        assert!(a.rows.iter().any(|r| r.dimension(0) == "ops"), "Support split by EC2's teams: {:?}", a.rows);
        // Read from the rollup alone (every row summed first), Support's shares have other digits: the
        // test can tell the two apart.
        let only_rollup = super::super::costs::CostSource { split_rows: Vec::new(), ..rolled };
        let c = super::super::costs::run(&only_rollup, &q).await;
        assert!(c.is_err() || c.unwrap().rows != a.rows);
        // Grouped by another column too, or filtered by the tag (the general plan): the rows answer.
        let filtered = query(&["service"], Some("tags.name = 'owner' AND tags.value = 'ops'"));
        assert!(super::super::costs::with_rollups(&source, &filtered).await.unwrap().is_none());
    }

    /// Splits in proportion to another cost by tag and to a metric by label, per month, exactly; a month
    /// without a basis leaves the cost whole and says so.
    #[tokio::test]
    async fn a_proportional_split_follows_its_basis_month_by_month() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n\
            Usage,2024-07-01,10.00,Support,{}\n\
            Usage,2024-07-02,3.00,EC2,\"{\"\"team\"\":\"\"web\"\"}\"\n\
            Usage,2024-07-03,1.00,EC2,\"{\"\"team\"\":\"\"data\"\"}\"\n\
            Usage,2024-07-04,-5.00,EC2,\"{\"\"team\"\":\"\"ops\"\"}\"\n\
            Usage,2024-07-05,1.00,Storage,{}\n\
            Usage,2024-08-01,1.00,Support,{}\n";
        let tag = serde_json::json!({"key": "team", "overridable": false, "values": [
            {"filter": "costs.service = 'Support'", "display_name": "Support",
             "cost_metric": {"filter": "costs.service = 'EC2'", "aggregation": {"tag": "team"}}},
            {"filter": "costs.service = 'Storage'", "business_metric_token": "bsnss_mtrc_1"}]});
        let mut source = source(dir.path(), csv, tag);
        let value = |day: &str, amount: &str, label: Option<&str>| costd_model::business_metric::MetricValue {
            date: day.parse().unwrap(),
            amount: amount.parse().unwrap(),
            label: label.map(str::to_string),
        };
        source.metric_values.insert(
            "bsnss_mtrc_1".into(),
            vec![
                value("2024-07-10", "1", Some("a")),
                value("2024-07-11", "2", Some("b")),
                value("2024-07-12", "5", None),
            ],
        );
        let mut q = query(&["tag:team"], None);
        q.end = chrono::NaiveDate::from_ymd_opt(2024, 8, 31).unwrap();
        let result = super::super::costs::run(&source, &q).await.unwrap();
        let rows: Vec<(String, String, String)> =
            result.rows.iter().map(|r| (r.accrued_at.to_string(), r.dimension(0), r.amount.to_string())).collect();
        let row = |d: &str, v: &str, a: &str| (d.to_string(), v.to_string(), a.to_string());
        assert_eq!(
            rows,
            vec![
                // Support's 10.00 by July's EC2 cost per team (web 3, data 1; ops's negative cost has no part),
                // Storage's 1.00 by the metric's labels (a 1, b 2; the unlabelled value has no part).
                row("2024-07-01", "a", "0.333333333333333333"),
                row("2024-07-01", "b", "0.666666666666666667"),
                row("2024-07-01", "data", "3.5"),
                row("2024-07-01", "ops", "-5.0"),
                row("2024-07-01", "web", "10.5"),
                // No EC2 cost in August: Support's cost stays whole, unallocated.
                row("2024-08-01", "Support (unallocated)", "1.0"),
            ]
        );
        assert_eq!(result.totals[0].1.to_string(), "11.0", "nothing made or lost");
        // A query of part of July splits by the whole month's basis.
        let mut part = query(&["tag:team"], Some("costs.service = 'Support'"));
        part.end = chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        let result = super::super::costs::run(&source, &part).await.unwrap();
        assert_eq!(by_value(&result), vec![("data".into(), "2.5".into()), ("web".into(), "7.5".into())]);
    }

    /// A splitting tag only grouped by is summed without a row per share (`fused`): the same rows, to the
    /// last digit, as the general plan gives when a filter reads the tag, in every bin and with usage.
    #[tokio::test]
    async fn summing_shares_per_group_gives_the_digits_of_a_row_per_share() {
        use costd_model::cost_query::{Aggregate, DateBin};
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from(
            "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,ConsumedQuantity,ConsumedUnit,Tags\n",
        );
        for i in 0..300i64 {
            let service = ["Support", "EC2", "Storage", "Other"][(i % 4) as usize];
            let team = ["web", "data", "ops"][(i % 3) as usize];
            // EC2's rows all have a team (no value names them); some of the others have none.
            let tags = if i % 5 == 0 && service != "EC2" {
                "{}".to_string()
            } else {
                format!("\"{{\"\"team\"\":\"\"{team}\"\"}}\"")
            };
            csv.push_str(&format!(
                "Usage,2024-{:02}-{:02},{}.{:06},{service},{}.{:03},Hrs,{tags}\n",
                7 + i % 3,
                i % 28 + 1,
                i * 37 - 900,
                (i * 7919) % 1_000_000,
                i % 7,
                (i * 31) % 1000,
            ));
        }
        let tag = serde_json::json!({"key": "team", "overridable": false, "values": [
            {"filter": "costs.service = 'Support'",
             "cost_metric": {"filter": "costs.service = 'EC2'", "aggregation": {"tag": "team"}}},
            {"filter": "costs.service = 'Storage'", "percentages": [
                {"value": "web", "pct": 33.333333}, {"value": "data", "pct": 66.666667}]},
            {"filter": "costs.service = 'Other'", "name": "data"}]});
        let source = source(dir.path(), &csv, tag);
        for bin in [DateBin::Day, DateBin::Week, DateBin::Month, DateBin::Quarter] {
            for aggregate in [Aggregate::Cost, Aggregate::Usage] {
                let mut fused = query(&["tag:team", "service"], None);
                (fused.date_bin, fused.aggregate) = (bin, aggregate);
                fused.end = chrono::NaiveDate::from_ymd_opt(2024, 9, 30).unwrap();
                let used = used(&source.virtual_tags, &fused);
                assert_eq!(fusable(&source.virtual_tags, &used, &fused), Some(0));
                // Every row has a team (its own, or a value's): the filter keeps them all, row by row.
                let mut general = fused.clone();
                general.filter = Some(costd_model::vql::Filter::parse("tags.name = 'team'").unwrap());
                assert_eq!(fusable(&source.virtual_tags, &used, &general), None);
                let (a, b) = (
                    super::super::costs::run(&source, &fused).await.unwrap(),
                    super::super::costs::run(&source, &general).await.unwrap(),
                );
                assert_eq!(a.rows, b.rows, "{bin:?} {aggregate:?}");
                assert_eq!(a.totals, b.totals);
                assert_eq!(a.usage_totals, b.usage_totals);
                assert!(a.rows.iter().any(|r| r.dimension(0) == "web"), "{:?}", a.rows);
            }
        }
    }

    #[test]
    fn a_share_by_parts_rounds_each_but_the_last() {
        let parts = [("a".to_string(), 1), ("b".to_string(), 1), ("c".to_string(), 1)];
        assert_eq!((0..3).map(|s| share_by_parts(100, &parts, s).unwrap()).collect::<Vec<_>>(), vec![33, 33, 34]);
        assert_eq!((0..3).map(|s| share_by_parts(-2, &parts, s).unwrap()).collect::<Vec<_>>(), vec![-1, -1, 0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Any costs, any percentages, a split by another cost: reading the rollups for every row the
        /// proportional split does not divide (and the rows for those it does) gives the rows' digits, in
        /// every bin, and the total without the tag.
        #[test]
        fn a_split_over_rollups_and_rows_gives_the_digits_of_the_rows(
            rows in prop::collection::vec((0u8..4, 0u8..3, 0usize..5, -5_000_000i64..5_000_000, 0u32..=9), 50..120),
            web in 1u32..100,
            bin in 0usize..3,
        ) {
            use costd_model::cost_query::DateBin;
            let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n");
            for (service, team, day, units, places) in &rows {
                let service = ["Support", "EC2", "Storage", "Other"][usize::from(*service)];
                let team = ["web", "data", "ops"][usize::from(*team)];
                // Few days (so the upload gets a rollup), two in one week across July and August.
                let day = ["2024-07-01", "2024-07-15", "2024-07-31", "2024-08-01", "2024-08-15"][*day];
                let amount = Decimal::new(*units, *places);
                csv.push_str(&format!(
                    "Usage,{day},{amount},{service},\"{{\"\"team\"\":\"\"{team}\"\"}}\"\n"
                ));
            }
            let tag = serde_json::json!({"key": "owner", "overridable": true, "values": [
                {"filter": "costs.service = 'Storage'", "name": "platform"},
                {"filter": "costs.service = 'Support'", "display_name": "Support",
                 "cost_metric": {"filter": "costs.service = 'EC2'", "aggregation": {"tag": "team"}}},
                {"filter": "", "percentages": [{"value": "web", "pct": web}, {"value": "data", "pct": 100 - web}]}]});
            let dir = tempfile::tempdir().unwrap();
            let source = source(dir.path(), &csv, tag);
            prop_assert!(source.files[0].rollup_decimals.is_some(), "the upload has a rollup");
            let mut q = query(&["tag:owner"], None);
            q.end = chrono::NaiveDate::from_ymd_opt(2024, 8, 31).unwrap();
            q.date_bin = [DateBin::Month, DateBin::Week, DateBin::Day][bin];
            let mut rows_only = source.clone();
            rows_only.files[0].rollup_decimals = None;
            let mut untagged = q.clone();
            untagged.groupings = Vec::new();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (rolled, plain, whole, mixed) = rt.block_on(async {
                let mixed = super::super::costs::with_rollups(&source, &q).await.unwrap();
                (
                    super::super::costs::run(&source, &q).await.unwrap(),
                    super::super::costs::run(&rows_only, &q).await.unwrap(),
                    super::super::costs::run(&source, &untagged).await.unwrap(),
                    mixed.is_some_and(|m| !m.split_rows.is_empty()),
                )
            });
            prop_assert!(mixed, "the plan reads the rollups and the divided rows");
            prop_assert_eq!(&rolled.rows, &plain.rows);
            prop_assert_eq!(&rolled.totals, &whole.totals, "allocation makes and loses nothing");
        }
    }

    proptest! {
        /// A split never makes or loses money, to the last of 18 places.
        #[test]
        fn a_split_adds_up_to_the_amount(
            amount in -(10i128.pow(37))..10i128.pow(37),
            raw in prop::collection::vec(1u32..100_000_000, 1..12),
        ) {
            // Percentages with 6 places, scaled so they add up to exactly 100.
            let total: u64 = raw.iter().map(|&r| u64::from(r)).sum();
            let mut pcts: Vec<Decimal> = raw
                .iter()
                .map(|&r| (Decimal::from(r) * Decimal::from(100) / Decimal::from(total)).round_dp(6))
                .collect();
            let others: Decimal = pcts[..pcts.len() - 1].iter().copied().sum();
            *pcts.last_mut().unwrap() = Decimal::ONE_HUNDRED - others;
            prop_assume!(pcts.iter().all(|p| !p.is_sign_negative()));
            let fractions: Vec<Decimal> = pcts.iter().map(|p| p / Decimal::ONE_HUNDRED).collect();
            let parts: Vec<i128> = (0..fractions.len()).map(|s| share_of(amount, &fractions, s).unwrap()).collect();
            prop_assert_eq!(parts.iter().sum::<i128>(), amount);
        }

        /// Parts divided by a common divisor (what the bases do, for the 128-bit path) split alike.
        #[test]
        fn parts_in_the_same_proportions_split_alike(
            amount in -(10i128.pow(37))..10i128.pow(37),
            raw in prop::collection::vec(1i128..10i128.pow(9), 1..8),
            k in 1i128..10i128.pow(20),
        ) {
            let small: Vec<(String, i128)> = raw.iter().enumerate().map(|(i, p)| (format!("v{i}"), *p)).collect();
            let large: Vec<(String, i128)> = small.iter().map(|(n, p)| (n.clone(), p * k)).collect();
            for s in 0..small.len() {
                prop_assert_eq!(share_by_parts(amount, &small, s).unwrap(), share_by_parts(amount, &large, s).unwrap());
            }
        }

        /// A split by parts never makes or loses money either, whatever the parts.
        #[test]
        fn a_split_by_parts_adds_up_to_the_amount(
            amount in -(10i128.pow(37))..10i128.pow(37),
            raw in prop::collection::vec(1i128..10i128.pow(30), 1..12),
        ) {
            let parts: Vec<(String, i128)> = raw.into_iter().enumerate().map(|(i, p)| (format!("v{i}"), p)).collect();
            let shares: Vec<i128> = (0..parts.len()).map(|s| share_by_parts(amount, &parts, s).unwrap()).collect();
            prop_assert_eq!(shares.iter().sum::<i128>(), amount);
            prop_assert!(shares.iter().all(|s| s.unsigned_abs() <= amount.unsigned_abs()));
        }
    }
}

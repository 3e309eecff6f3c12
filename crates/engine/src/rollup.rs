//! Per-upload rollups: the daily sums of one upload by its low-cardinality dimensions, written beside its
//! file in the same cost schema (the other columns null), so the costs plan runs on any of them unchanged.
//! Two levels ([`Level`]): `<token>.rollup.parquet` by every dimension, and `<token>.rollup.coarse.parquet`
//! without the accounts (most queries of a managed account never look at them). Real exports repeat each
//! (day, service, region, account, charge type) many times: a 10M-row upload of the bench has about a tenth
//! as many groups, and a fiftieth of those without the accounts.
//!
//! Built while the ingest's batches go by ([`RollupBuilder`]), over dictionary ids rather than strings, each
//! group's key packed into 128 bits (a day from 1970 to 2149 and ids of at most 14 bits; anything else
//! drops the rollup), written a 64k-row batch at a time: an import's memory is mostly this map.
//! A query may read the rollup instead of the rows only when that cannot change a single digit of any
//! sum (`engine::costs::with_rollups` decides):
//! - everything the query and its rules read is a rollup column ([`Level::columns`]), and no condition looks
//!   at an amount (a per-row test on a sum would be another test);
//! - every amount the rules compute is linear in the row's amount: `amount × factor` (adjustments,
//!   `SET amount = amount * n`) or rows that do not depend on the costs (credits, charges, INSERT VALUES);
//! - no product is rounded: a row's amount has at most `decimals` places (recorded per upload), and
//!   `decimals` plus the places of every factor the rules may apply stays within 18, so
//!   Σ round(aᵢ·f) = Σ aᵢ·f = round((Σ aᵢ)·f) exactly.
//!
//! A split in proportion to a basis divides, which does round: the rows it divides are read from the rows
//! beside the rollups (`CostSource::split_rows`), never from the rollups.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, Date32Array, Decimal128Array, DictionaryArray, Int32Array, StringArray,
};
use arrow::datatypes::{Date32Type, Decimal128Type, Int32Type};
use arrow::record_batch::RecordBatch;
use datafusion::common::HashMap;

use super::rules::compile::RuleStep;
use super::schema::{col, cost_schema, AMOUNT_PRECISION, AMOUNT_SCALE};
use costd_model::amount::MAX_UNSCALED;
use costd_model::billing_rule::custom_sql::{ArithOp, CostColumn, CustomStatement, Literal, RuleExpr};
use costd_model::billing_rule::BillingRule;

/// The dimensions a rollup keeps, besides the day.
pub const DIMENSIONS: [&str; 8] = [
    col::CURRENCY,
    col::CHARGE_TYPE,
    col::SERVICE,
    col::COST_CATEGORY,
    col::COST_SUBCATEGORY,
    col::REGION,
    col::ACCOUNT_ID,
    col::BILLING_ACCOUNT_ID,
];

/// The dimensions the coarse level leaves out.
const ACCOUNTS: [&str; 2] = [col::ACCOUNT_ID, col::BILLING_ACCOUNT_ID];

/// A rollup file of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// By day and every dimension.
    Fine,
    /// By day and every dimension but the accounts.
    Coarse,
}

impl Level {
    /// Both levels, coarsest first (the order a query tries them in).
    pub const ALL: [Level; 2] = [Level::Coarse, Level::Fine];

    /// What follows the upload's token in the file's name, before `.parquet`.
    pub fn suffix(self) -> &'static str {
        match self {
            Level::Fine => ".rollup",
            Level::Coarse => ".rollup.coarse",
        }
    }

    /// Every column the level's file holds values in (the rest of the cost schema is null there).
    pub fn columns(self) -> impl Iterator<Item = &'static str> {
        [col::ACCRUED_AT, col::AMOUNT, col::AMORTIZED_AMOUNT]
            .into_iter()
            .chain(DIMENSIONS)
            .filter(move |c| self == Level::Fine || !ACCOUNTS.contains(c))
    }
}

/// How many decimal places the factors of `rules` may add to a row's amount, when every amount the rules
/// compute is linear in the row's amount and no condition reads an amount; `None` when a rule does
/// anything else (then only the rows answer exactly).
pub fn factor_places(rules: &[RuleStep]) -> Option<u32> {
    let mut places = 0u32;
    for step in rules {
        match &step.rule.rule {
            BillingRule::Exclusion { .. } | BillingRule::Credit(_) | BillingRule::Charge(_) => {}
            BillingRule::Adjustment { percentage } => {
                let factor = (*percentage / rust_decimal::Decimal::ONE_HUNDRED).normalize();
                places += factor.scale();
            }
            BillingRule::Custom(custom) => {
                for statement in custom.statements() {
                    match statement {
                        CustomStatement::InsertValues { .. } => {}
                        CustomStatement::InsertSelect { .. } => return None,
                        CustomStatement::Update { assignments, selection } => {
                            if selection.as_ref().is_some_and(reads_a_number) {
                                return None;
                            }
                            for (column, value) in assignments {
                                places += match (column, value) {
                                    (CostColumn::Amount, RuleExpr::Column(CostColumn::Amount)) => 0,
                                    (CostColumn::Amount, RuleExpr::Arith(ArithOp::Mul, l, r)) => {
                                        match (l.as_ref(), r.as_ref()) {
                                            (
                                                RuleExpr::Column(CostColumn::Amount),
                                                RuleExpr::Literal(Literal::Number(n)),
                                            )
                                            | (
                                                RuleExpr::Literal(Literal::Number(n)),
                                                RuleExpr::Column(CostColumn::Amount),
                                            ) => unscaled_places(*n),
                                            _ => return None,
                                        }
                                    }
                                    (CostColumn::Amount | CostColumn::UsageAmount, _) => return None,
                                    // A dimension set to a constant is the same on a group as on its rows.
                                    (_, RuleExpr::Literal(_)) => 0,
                                    _ => return None,
                                };
                            }
                        }
                    }
                }
            }
        }
    }
    Some(places)
}

/// The decimal places of a number given unscaled at 18 places.
fn unscaled_places(mut n: i128) -> u32 {
    let mut places = AMOUNT_SCALE as u32;
    while places > 0 && n % 10 == 0 {
        n /= 10;
        places -= 1;
    }
    places
}

/// Whether a condition reads an amount (a test per row that a sum of rows would not pass alike).
fn reads_a_number(e: &RuleExpr) -> bool {
    match e {
        RuleExpr::Column(c) => matches!(c, CostColumn::Amount | CostColumn::UsageAmount),
        RuleExpr::Literal(_) => false,
        RuleExpr::Arith(_, a, b) | RuleExpr::Compare(_, a, b) | RuleExpr::And(a, b) | RuleExpr::Or(a, b) => {
            reads_a_number(a) || reads_a_number(b)
        }
        RuleExpr::Negate(a) | RuleExpr::Not(a) => reads_a_number(a),
        RuleExpr::IsNull { expr, .. } => reads_a_number(expr),
        RuleExpr::Like { expr, pattern, .. } => reads_a_number(expr) || reads_a_number(pattern),
        RuleExpr::InList { expr, list, .. } => reads_a_number(expr) || list.iter().any(reads_a_number),
        RuleExpr::Between { expr, low, high, .. } => {
            reads_a_number(expr) || reads_a_number(low) || reads_a_number(high)
        }
        RuleExpr::Case { branches, otherwise } => {
            branches.iter().any(|(w, t)| reads_a_number(w) || reads_a_number(t))
                || otherwise.as_deref().is_some_and(reads_a_number)
        }
        RuleExpr::Scalar(_, args) => args.iter().any(reads_a_number),
        // An aggregate in a condition is not a per-row test at all.
        RuleExpr::Aggregate(..) => true,
    }
}

/// Past this many groups the rollup is dropped: it would not pay, and its memory stays bounded.
const MAX_GROUPS: usize = 4_000_000;

/// Distinct values of one dimension, numbered from 1 (0 is null).
#[derive(Default)]
struct Dimension {
    ids: HashMap<String, u32>,
    values: Vec<String>,
}

impl Dimension {
    fn id(&mut self, value: &str) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        self.values.push(value.to_string());
        let id = self.values.len() as u32;
        self.ids.insert(value.to_string(), id);
        id
    }
}

/// (day, one id per dimension) packed into 128 bits, the day in the top [`DAY_BITS`] and each dimension's id
/// in [`ID_BITS`] after it in order, so keys sort as the tuples do. A third of the bytes of the tuple: the
/// group map is most of an import's memory.
type Key = u128;

const DAY_BITS: u32 = 16;
const ID_BITS: u32 = 14;
/// Ids a dimension may have before the rollup is dropped (one more and they no longer fit the key).
const MAX_ID: u32 = (1 << ID_BITS) - 1;
const _: () = assert!(DAY_BITS + ID_BITS * DIMENSIONS.len() as u32 == 128);

fn shift_of(d: usize) -> u32 {
    ID_BITS * (DIMENSIONS.len() - 1 - d) as u32
}

/// The key of `day` (days since 1970, 0..2^16: 1970 to 2149) and the ids, or `None` past what fits.
fn pack(day: i32, ids: impl Iterator<Item = u32>) -> Option<Key> {
    let day = u16::try_from(day).ok()?;
    let mut key = u128::from(day) << (128 - DAY_BITS);
    for (d, id) in ids.enumerate() {
        if id > MAX_ID {
            return None;
        }
        key |= u128::from(id) << shift_of(d);
    }
    Some(key)
}

fn day_of(key: Key) -> i32 {
    (key >> (128 - DAY_BITS)) as i32
}

fn id_of(key: Key, d: usize) -> u32 {
    ((key >> shift_of(d)) & u128::from(MAX_ID)) as u32
}

/// Sums of one group: the billed amount, and the amortized one (EffectiveCost where a row has it).
#[derive(Clone, Copy, Default)]
struct Sums {
    amount: i128,
    amortized: i128,
}

/// A rollup being built from an upload's batches.
pub struct RollupBuilder {
    positions: [usize; DIMENSIONS.len()],
    amount: usize,
    amortized: usize,
    accrued_at: usize,
    dimensions: [Dimension; DIMENSIONS.len()],
    groups: HashMap<Key, Sums>,
    /// The fewest trailing decimal zeros of any amount seen (at 18 places), so `18 - zeros` places.
    zeros: u32,
    rows: u64,
    /// Why no rollup will be written (a sum past 38 digits, too many groups).
    dropped: bool,
}

impl Default for RollupBuilder {
    fn default() -> Self {
        let schema = cost_schema();
        let index = |name: &str| schema.index_of(name).expect("a cost column");
        RollupBuilder {
            positions: DIMENSIONS.map(index),
            amount: index(col::AMOUNT),
            amortized: index(col::AMORTIZED_AMOUNT),
            accrued_at: index(col::ACCRUED_AT),
            dimensions: Default::default(),
            groups: HashMap::default(),
            zeros: AMOUNT_SCALE as u32,
            rows: 0,
            dropped: false,
        }
    }
}

/// 10^k for k in 0..=18.
const POW10: [i64; 19] = {
    let mut p = [1i64; 19];
    let mut k = 1;
    while k < 19 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

impl RollupBuilder {
    /// Adds one batch of the cost schema (as the ingest writes it: dimensions dictionary-encoded).
    pub fn add(&mut self, batch: &RecordBatch) {
        if self.dropped {
            return;
        }
        self.rows += batch.num_rows() as u64;
        // Per dimension: each row's id, through the batch's dictionary.
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(DIMENSIONS.len());
        for (d, &position) in self.positions.iter().enumerate() {
            let column = batch.column(position);
            let Some(dict) = column.as_dictionary_opt::<Int32Type>() else {
                self.dropped = true;
                return;
            };
            let values = dict.values().as_string::<i32>();
            let remap: Vec<u32> = (0..values.len())
                .map(|i| if values.is_null(i) { 0 } else { self.dimensions[d].id(values.value(i)) })
                .collect();
            let keys = dict.keys();
            ids.push(
                (0..keys.len()).map(|i| if keys.is_null(i) { 0 } else { remap[keys.value(i) as usize] }).collect(),
            );
        }
        let days = batch.column(self.accrued_at).as_primitive::<Date32Type>();
        let amounts = batch.column(self.amount).as_primitive::<Decimal128Type>();
        let amortized = batch.column(self.amortized).as_primitive::<Decimal128Type>();
        for row in 0..batch.num_rows() {
            let amount = amounts.value(row);
            let effective = if amortized.is_null(row) { amount } else { amortized.value(row) };
            self.note_places(amount);
            self.note_places(effective);
            let Some(key) = pack(days.value(row), ids.iter().map(|column| column[row])) else {
                // A day before 1970 or after 2149, or a dimension with more than 16,383 values: no rollup.
                self.dropped = true;
                self.groups = HashMap::default();
                return;
            };
            let sums = self.groups.entry(key).or_default();
            match (sums.amount.checked_add(amount), sums.amortized.checked_add(effective)) {
                (Some(a), Some(e)) if a.abs() <= MAX_UNSCALED && e.abs() <= MAX_UNSCALED => {
                    *sums = Sums { amount: a, amortized: e };
                }
                _ => {
                    self.dropped = true;
                    return;
                }
            }
        }
        // Past a million rows, a file with more groups than half its rows will not get a rollup (see
        // `finish`): let its memory go now rather than at the end.
        if self.groups.len() > MAX_GROUPS || (self.rows >= 1 << 20 && (self.groups.len() as u64) * 2 > self.rows) {
            self.dropped = true;
            self.groups = HashMap::default();
        }
    }

    /// Lowers the trailing-zero count until `value` has that many.
    #[inline]
    fn note_places(&mut self, value: i128) {
        while self.zeros > 0 {
            let p = POW10[self.zeros as usize];
            let divisible = match i64::try_from(value) {
                Ok(v) => v % p == 0,
                Err(_) => value % i128::from(p) == 0,
            };
            if divisible {
                return;
            }
            self.zeros -= 1;
        }
    }

    /// The rollup at each level, with the most decimal places of any amount; `None` when there is none worth
    /// having (no rows, a sum past 38 digits, or not at least half as many groups as rows). The groups
    /// leave the hash map for a sorted list before anything else is built, so the map's memory is gone by
    /// the time the files are written.
    pub fn finish(mut self) -> Option<Rollup> {
        if self.dropped || self.rows == 0 || (self.groups.len() as u64) * 2 > self.rows {
            return None;
        }
        let mut fine: Vec<(Key, Sums)> = std::mem::take(&mut self.groups).into_iter().collect();
        fine.sort_unstable_by_key(|(key, _)| *key);
        let accounts: Key = DIMENSIONS
            .iter()
            .enumerate()
            .filter(|(_, d)| ACCOUNTS.contains(d))
            .fold(0, |mask, (d, _)| mask | (u128::from(MAX_ID) << shift_of(d)));
        let mut coarse: HashMap<Key, Sums> = HashMap::default();
        for (key, sums) in &fine {
            let total = coarse.entry(key & !accounts).or_default();
            let amount = total.amount.checked_add(sums.amount).filter(|a| a.abs() <= MAX_UNSCALED)?;
            let amortized = total.amortized.checked_add(sums.amortized).filter(|a| a.abs() <= MAX_UNSCALED)?;
            *total = Sums { amount, amortized };
        }
        let mut coarse: Vec<(Key, Sums)> = coarse.into_iter().collect();
        coarse.sort_unstable_by_key(|(key, _)| *key);
        let values = self.dimensions.map(|d| Arc::new(StringArray::from_iter_values(d.values.iter())) as ArrayRef);
        Some(Rollup {
            fine,
            coarse,
            values,
            positions: self.positions,
            amount: self.amount,
            amortized: self.amortized,
            accrued_at: self.accrued_at,
            decimals: (AMOUNT_SCALE as u32 - self.zeros) as u8,
        })
    }
}

/// A finished rollup: each level's groups sorted by day and ids, turned into batches of the cost schema a
/// chunk at a time (a batch holds every cost column, most of them null, so one batch of every group would
/// cost more memory than the groups themselves).
pub struct Rollup {
    fine: Vec<(Key, Sums)>,
    coarse: Vec<(Key, Sums)>,
    /// Each dimension's values, in id order (id 1 is the first).
    values: [ArrayRef; DIMENSIONS.len()],
    positions: [usize; DIMENSIONS.len()],
    amount: usize,
    amortized: usize,
    accrued_at: usize,
    /// The most decimal places of any amount summed.
    pub decimals: u8,
}

impl Rollup {
    /// How many rows `level` has.
    pub fn rows(&self, level: Level) -> usize {
        self.groups(level).len()
    }

    fn groups(&self, level: Level) -> &[(Key, Sums)] {
        match level {
            Level::Fine => &self.fine,
            Level::Coarse => &self.coarse,
        }
    }

    /// `level`'s rows as batches of at most `chunk` rows, in order.
    pub fn batches(&self, level: Level, chunk: usize) -> impl Iterator<Item = RecordBatch> + '_ {
        self.groups(level).chunks(chunk.max(1)).map(|groups| self.batch(groups))
    }

    fn batch(&self, groups: &[(Key, Sums)]) -> RecordBatch {
        let schema = cost_schema();
        let decimal = |values: Vec<i128>| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)
                    .expect("valid decimal type"),
            )
        };
        let mut columns: Vec<ArrayRef> =
            schema.fields().iter().map(|f| new_null_array(f.data_type(), groups.len())).collect();
        columns[self.accrued_at] =
            Arc::new(Date32Array::from(groups.iter().map(|(k, _)| day_of(*k)).collect::<Vec<_>>()));
        columns[self.amount] = decimal(groups.iter().map(|(_, s)| s.amount).collect());
        columns[self.amortized] = decimal(groups.iter().map(|(_, s)| s.amortized).collect());
        for (d, values) in self.values.iter().enumerate() {
            let keys: Int32Array =
                groups.iter().map(|(k, _)| id_of(*k, d).checked_sub(1).map(|id| id as i32)).collect();
            let dict = DictionaryArray::<Int32Type>::try_new(keys, values.clone()).expect("ids within the values");
            columns[self.positions[d]] = Arc::new(dict);
        }
        RecordBatch::try_new(schema, columns).expect("columns of the cost schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (day, service, region, amount, amortized)
    type Row<'a> = (i32, &'a str, Option<&'a str>, i128, Option<i128>);

    fn batch(rows: &[Row<'_>]) -> RecordBatch {
        // (day, service, region, amount, amortized)
        let schema = cost_schema();
        let dict = |values: Vec<Option<&str>>| -> ArrayRef {
            Arc::new(values.into_iter().collect::<DictionaryArray<Int32Type>>())
        };
        let decimal = |values: Vec<Option<i128>>| -> ArrayRef {
            Arc::new(Decimal128Array::from(values).with_precision_and_scale(38, 18).unwrap())
        };
        let columns = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    col::ACCRUED_AT => Arc::new(Date32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                    col::AMOUNT => decimal(rows.iter().map(|r| Some(r.3)).collect()),
                    col::AMORTIZED_AMOUNT => decimal(rows.iter().map(|r| r.4).collect()),
                    col::SERVICE => dict(rows.iter().map(|r| Some(r.1)).collect()),
                    col::REGION => dict(rows.iter().map(|r| r.2).collect()),
                    col::CURRENCY => dict(rows.iter().map(|_| Some("USD")).collect()),
                    col::CHARGE_TYPE => dict(rows.iter().map(|_| Some("Usage")).collect()),
                    _ if matches!(f.data_type(), arrow::datatypes::DataType::Dictionary(_, _)) => {
                        dict(rows.iter().map(|_| None).collect())
                    }
                    _ => new_null_array(f.data_type(), rows.len()),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    const ONE: i128 = 1_000_000_000_000_000_000;

    #[test]
    fn packed_keys_read_back_and_sort_as_their_tuples() {
        let tuples = [
            (19_000, [1, 2, 3, 4, 5, 6, 7, MAX_ID]),
            (19_000, [1, 2, 3, 4, 5, 6, 8, 0]),
            (19_001, [0; 8]),
            (0, [MAX_ID; 8]),
            (i32::from(u16::MAX), [0, 0, 0, 0, 0, 0, 0, 1]),
        ];
        let mut keys: Vec<(Key, (i32, [u32; 8]))> =
            tuples.iter().map(|&(day, ids)| (pack(day, ids.into_iter()).unwrap(), (day, ids))).collect();
        for (key, (day, ids)) in &keys {
            assert_eq!(day_of(*key), *day);
            assert_eq!((0..8).map(|d| id_of(*key, d)).collect::<Vec<_>>(), ids.to_vec());
        }
        keys.sort_by_key(|(k, _)| *k);
        let mut sorted: Vec<(i32, [u32; 8])> = tuples.to_vec();
        sorted.sort();
        assert_eq!(keys.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), sorted);
        assert!(pack(-1, [0; 8].into_iter()).is_none(), "before 1970");
        assert!(pack(1, [MAX_ID + 1, 0, 0, 0, 0, 0, 0, 0].into_iter()).is_none(), "an id past 14 bits");
    }

    #[test]
    fn rows_of_one_day_and_dimensions_become_one_row_with_exact_sums() {
        let mut builder = RollupBuilder::default();
        builder.add(&batch(&[
            (1, "EC2", Some("us-east-1"), ONE / 4, None),
            (1, "EC2", Some("us-east-1"), ONE / 8, Some(ONE)),
            (1, "S3", None, 3 * ONE, None),
        ]));
        // A second batch with its own dictionaries: ids are the values', not the batch's.
        builder.add(&batch(&[(1, "S3", None, ONE, None), (2, "EC2", Some("us-east-1"), ONE, None)]));
        builder.add(&batch(&[(1, "EC2", Some("us-east-1"), 5, None); 6]));
        let finished = builder.finish().expect("11 rows in 3 groups pay");
        assert_eq!(finished.decimals, 18, "5e-18 has all 18 places");
        assert_eq!(finished.rows(Level::Coarse), 3, "no accounts here: the coarse level has the same groups");
        let rollup = finished.batches(Level::Fine, usize::MAX).next().unwrap();
        assert_eq!(rollup.num_rows(), 3);
        // In chunks, the same rows in the same order.
        let chunks: Vec<RecordBatch> = finished.batches(Level::Fine, 2).collect();
        assert_eq!(chunks.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(arrow::compute::concat_batches(&cost_schema(), &chunks).unwrap(), rollup);
        let service =
            arrow::compute::cast(rollup.column_by_name(col::SERVICE).unwrap(), &arrow::datatypes::DataType::Utf8)
                .unwrap();
        let amounts = rollup.column_by_name(col::AMOUNT).unwrap().as_primitive::<Decimal128Type>();
        let amortized = rollup.column_by_name(col::AMORTIZED_AMOUNT).unwrap().as_primitive::<Decimal128Type>();
        let rows: Vec<(i32, String, i128, i128)> = (0..3)
            .map(|i| {
                let day = rollup.column(0).as_primitive::<Date32Type>().value(i);
                (day, service.as_string::<i32>().value(i).to_string(), amounts.value(i), amortized.value(i))
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (1, "EC2".into(), ONE / 4 + ONE / 8 + 30, ONE / 4 + ONE + 30),
                (1, "S3".into(), 4 * ONE, 4 * ONE),
                (2, "EC2".into(), ONE, ONE),
            ]
        );
        assert!(rollup.column_by_name(col::REGION).unwrap().is_null(1), "a null dimension stays null");
    }

    #[test]
    fn decimals_are_the_most_places_any_amount_has() {
        let places = |amounts: &[i128]| {
            let mut builder = RollupBuilder::default();
            let rows: Vec<_> = amounts.iter().map(|a| (1, "EC2", None, *a, None)).collect();
            builder.add(&batch(&rows));
            builder.add(&batch(&rows));
            builder.finish().map(|r| r.decimals)
        };
        assert_eq!(places(&[ONE, 2 * ONE]), Some(0));
        assert_eq!(places(&[ONE / 4, ONE]), Some(2), "0.25");
        assert_eq!(places(&[-ONE / 8, 12_345_678_901 * 10_000_000]), Some(11), "0.125 and 1.2345678901");
    }

    #[test]
    fn no_rollup_when_it_would_not_pay_or_a_sum_would_overflow() {
        let mut distinct = RollupBuilder::default();
        distinct.add(&batch(&[(1, "EC2", None, ONE, None), (2, "EC2", None, ONE, None)]));
        assert!(distinct.finish().is_none(), "as many groups as rows");

        let mut huge = RollupBuilder::default();
        huge.add(&batch(&[(1, "EC2", None, MAX_UNSCALED, None), (1, "EC2", None, MAX_UNSCALED, None)]));
        assert!(huge.finish().is_none());
    }

    /// Rows over a small domain (so groups repeat), with amounts of 0 to 18 decimal places.
    fn rows_csv(rows: &[(u8, u8, u8, u8, i64, u32)]) -> String {
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,RegionId,SubAccountId\n");
        for &(day, service, region, charge, mantissa, places) in rows {
            let unscaled = i128::from(mantissa) * 10i128.pow(18 - places.min(18));
            let charge = ["Usage", "Tax", "Credit"][usize::from(charge % 3)];
            let region = ["us-east-1", "eu-west-1", ""][usize::from(region % 3)];
            csv.push_str(&format!(
                "{charge},2024-07-{:02},{},Service {},{region},acct-{}\n",
                day % 40 + 1,
                costd_model::amount::format(unscaled),
                service % 2,
                mantissa.rem_euclid(2)
            ));
        }
        csv
    }

    fn rule(body: serde_json::Value) -> RuleStep {
        use costd_model::billing_rule::{RuleDefinition, RuleFields};
        let fields: RuleFields = serde_json::from_value(body).unwrap();
        RuleStep { token: "bllng_rule_1".into(), rule: RuleDefinition::try_from(fields).unwrap() }
    }

    fn rules(picked: &[usize]) -> Vec<RuleStep> {
        use serde_json::json;
        let all = [
            json!({"type": "exclusion", "title": "t", "charge_type": "Tax"}),
            json!({"type": "adjustment", "title": "t", "percentage": 90}),
            json!({"type": "adjustment", "title": "t", "percentage": 12.345}),
            json!({"type": "custom", "title": "t", "sql_query": "UPDATE costs SET amount = amount * 1.1 WHERE region = 'us-east-1'"}),
            json!({"type": "custom", "title": "t", "sql_query": "UPDATE costs SET amount = 0.123456789 * amount"}),
            json!({"type": "custom", "title": "t", "sql_query": "UPDATE costs SET amount = amount * 2 WHERE amount > 1"}),
            json!({"type": "custom", "title": "t", "sql_query": "UPDATE costs SET service = 'Renamed' WHERE service = 'Service 1'"}),
            json!({"type": "credit", "title": "t", "service": "Support", "category": "Credit", "sub_category": "M", "amount": 7.5, "start_date": "2024-07-01"}),
        ];
        picked.iter().map(|&i| rule(all[i % all.len()].clone())).collect()
    }

    fn query(groupings: &[&str], month: bool) -> costd_model::cost_query::CostQuery {
        use costd_model::cost_query::{Aggregate, CostQuery, DateBin, Settings};
        CostQuery {
            start: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2024, 8, 31).unwrap(),
            groupings: groupings.iter().map(|g| g.parse().unwrap()).collect(),
            date_bin: if month { DateBin::Month } else { DateBin::Day },
            descending: false,
            settings: Settings { include_credits: true, ..Settings::default() },
            aggregate: Aggregate::Cost,
            filter: None,
            segment: None,
        }
    }

    /// The upload of `csv` in `dir`, as a query source with (or without) its rollup.
    fn source(dir: &std::path::Path, csv: &str, rules: Vec<RuleStep>) -> super::super::costs::CostSource {
        use super::super::costs::{CostSource, SourceFile};
        let tmp = dir.join("usr_csts_upld_1.parquet.tmp");
        let pending = super::super::ingest::ingest_csv(csv.as_bytes(), &tmp, Default::default(), &mut ()).unwrap();
        let decimals = pending.summary.rollup_decimals;
        pending.persist(&dir.join("usr_csts_upld_1.parquet")).unwrap();
        CostSource {
            files: vec![SourceFile {
                integration: "accss_crdntl_1".into(),
                upload: "usr_csts_upld_1".into(),
                rollup_decimals: decimals,
            }],
            storage: Some(super::super::storage::Storage::Local { dir: dir.to_path_buf() }),
            rules,
            currency: "USD".into(),
            one_currency: true,
            ..CostSource::default()
        }
    }

    fn without_rollup(source: &super::super::costs::CostSource) -> super::super::costs::CostSource {
        let mut rows = source.clone();
        rows.files[0].rollup_decimals = None;
        rows
    }

    #[tokio::test]
    async fn a_query_whose_rules_are_linear_reads_the_rollup_and_others_read_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<_> = (0..60u8).map(|i| (i % 3, i % 2, i % 3, i % 3, i64::from(i) * 25 + 1, 2)).collect();
        let source = source(dir.path(), &rows_csv(&rows), rules(&[0, 1, 3, 7]));
        assert_eq!(source.files[0].rollup_decimals, Some(2));
        let uses = |s: &super::super::costs::CostSource, groupings: &[&str]| {
            let (s, q) = (s.clone(), query(groupings, true));
            async move { super::super::costs::with_rollups(&s, &q).await.unwrap().map(|r| r.files[0].upload.clone()) }
        };
        assert_eq!(uses(&source, &["service", "region"]).await.as_deref(), Some("usr_csts_upld_1.rollup.coarse"));
        assert_eq!(uses(&source, &["account_id"]).await.as_deref(), Some("usr_csts_upld_1.rollup"));
        assert_eq!(uses(&source, &["resource_id"]).await, None, "a column the rollup lacks");
        assert_eq!(uses(&source, &["tag:team"]).await, None);
        let mut per_row = source.clone();
        per_row.rules = rules(&[5]);
        assert_eq!(uses(&per_row, &["service"]).await, None, "a condition on a row's amount");
        let mut too_fine = source.clone();
        too_fine.rules = rules(&[2, 2, 2, 2, 2, 2]); // 0.12345 six times: 30 places
        assert_eq!(uses(&too_fine, &["service"]).await, None, "a product that would round");
        let result = super::super::costs::run(&source, &query(&["service", "region"], true)).await.unwrap();
        let rows =
            super::super::costs::run(&without_rollup(&source), &query(&["service", "region"], true)).await.unwrap();
        assert_eq!(result.rows, rows.rows);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// The rollup never changes a digit: every result equals the one computed from the rows.
        #[test]
        fn the_rollup_and_the_rows_give_the_same_costs_to_the_last_digit(
            rows in proptest::collection::vec((0u8..2, 0u8..2, 0u8..3, 0u8..2, -1_000_000i64..1_000_000, 0u32..=18), 40..120),
            picked in proptest::collection::vec(0usize..8, 0..5),
            groupings in proptest::sample::subsequence(vec!["service", "region", "charge_type", "account_id"], 0..=4),
            month in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let source = source(dir.path(), &rows_csv(&rows), rules(&picked));
            let q = query(&groupings, month);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (rolled, plain) = rt.block_on(async {
                (super::super::costs::run(&source, &q).await, super::super::costs::run(&without_rollup(&source), &q).await)
            });
            match (rolled, plain) {
                (Ok(a), Ok(b)) => {
                    proptest::prop_assert_eq!(a.rows, b.rows);
                    proptest::prop_assert_eq!(a.totals, b.totals);
                }
                (a, b) => proptest::prop_assert_eq!(format!("{:?}", a.err()), format!("{:?}", b.err())),
            }
        }
    }
}

//! A splitting virtual tag a query only groups by, summed without a row per share.
//!
//! The general plan ([`super::apply`]) turns each split row into one row per share (an unnest) and names
//! every share before the query groups them: a 50/30/20 split triples the rows the aggregation hashes, and
//! each carries a name. When the query groups by one splitting tag and nothing else reads its value (no
//! filter, segment or `tagged` grouping names a tag), the same sums come from far less work:
//! 1. group the rows by the query's other groups and by what decides a row's shares (the tag's value index,
//!    the provider's value where the tag may keep it, and the row's month when a proportional split's parts
//!    change within a bin: a week or a quarter);
//! 2. within each group, `SplitSum` splits every row into its shares exactly as the general plan does
//!    (`Splitter::parts_into`: each share rounded half away from zero, the last what the others leave) and
//!    sums share by share, in 256 bits: every row of a group has the same shares, so share `s` of the group
//!    is the sum of share `s` of its rows;
//! 3. unnest each group's sums (a few rows per group, not per cost), name the shares as the general plan
//!    names them (`names_udf`), and group once more by name, so a name two values (or a value and
//!    the provider) share is one group.
//!
//! Each share is rounded per row, as before, so the digits are those of the general plan
//! (`tests/api/differential.rs` compares both with the reference evaluator).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Decimal256Builder, ListArray, ListBuilder};
use arrow::datatypes::{i256, DataType, Date32Type, Decimal128Type, Field, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    col, create_udf, lit, Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, Expr, GroupsAccumulator,
    Signature, Volatility,
};

use super::{index_column, provider_column, Splitter, ValueSplit};
use crate::schema::{amount_type, col as c, AMOUNT_SCALE};

/// The type of a share's sum: as wide as the query's other sums, so no number of 38-digit amounts wraps.
fn sum_type() -> DataType {
    DataType::Decimal256(76, AMOUNT_SCALE)
}

fn list_type(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// How a query groups by its one splitting tag without a row per share (see the module doc).
pub struct FusedSplit {
    splitter: Arc<Splitter>,
    /// The tag's position among the source's tags (its plan columns).
    tag: usize,
    /// The provider's value may name a row (else it is never read).
    provider: bool,
    /// A proportional split's parts change within the query's bins: the month is a group key.
    by_month: bool,
}

/// Group-key columns of a fused split.
const INDEX: &str = "__fused_index";
const PROVIDER: &str = "__fused_provider";
const MONTH: &str = "__fused_month";
const SHARE: &str = "__fused_share";

impl FusedSplit {
    pub(super) fn new(splitter: Arc<Splitter>, tag: usize, provider: bool, bins_span_months: bool) -> FusedSplit {
        let by_month = bins_span_months && splitter.values.iter().any(|v| matches!(v, ValueSplit::ByMonth(..)));
        FusedSplit { splitter, tag, provider, by_month }
    }

    /// Whether a row is one a proportional split divides (its value's), which only the rows, not their
    /// rollups, give the digits of (`engine::costs::with_rollups`); `None` when no value so splits.
    pub fn divided(&self) -> Option<Expr> {
        let values: Vec<Expr> = (self.splitter.values.iter().enumerate())
            .filter(|(_, v)| matches!(v, ValueSplit::ByMonth(..)))
            .map(|(k, _)| lit(k as i32))
            .collect();
        (!values.is_empty()).then(|| col(index_column(self.tag)).in_list(values, false))
    }

    /// What decides a row's shares, as group keys.
    pub fn keys(&self) -> Vec<Expr> {
        let mut keys = vec![col(index_column(self.tag)).alias(INDEX)];
        if self.provider {
            keys.push(col(provider_column(self.tag)).alias(PROVIDER));
        }
        if self.by_month {
            keys.push(crate::dates::bin(crate::dates::Unit::Month, col(c::ACCRUED_AT)).alias(MONTH));
        }
        keys
    }

    /// The sums of `column`'s shares in a group: a list, share by share.
    pub fn sum(&self, column: &str) -> Expr {
        let udaf = AggregateUDF::from(SplitSum::new(self.splitter.clone()));
        udaf.call(vec![col(column), col(index_column(self.tag)), col(c::ACCRUED_AT)])
    }

    /// After the first grouping (whose bin column is `bin`): a row per share of each group, the share's sum in
    /// each of `sums` and its name in `name` (grouped again by the caller).
    pub fn shares(
        &self,
        grouped: datafusion::dataframe::DataFrame,
        sums: &[&str],
        bin: &str,
        name: &str,
    ) -> Result<datafusion::dataframe::DataFrame> {
        let mut columns: Vec<&str> = sums.to_vec();
        columns.push(SHARE);
        let df = grouped.with_column(SHARE, share_numbers().call(vec![col(sums[0])]))?.unnest_columns(&columns)?;
        // The row's month decides a proportional split's names; a day or month bin lies in its rows' month.
        let day = if self.by_month { col(MONTH) } else { col(bin) };
        let provider = if self.provider { col(PROVIDER) } else { lit(ScalarValue::Utf8(None)) };
        df.with_column(name, super::names_udf(&self.splitter).call(vec![col(INDEX), col(SHARE), day, provider]))
    }
}

/// (list) → `[0, 1, …]` as long as the list: each share's number, to unnest beside its sums.
fn share_numbers() -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "vtag_share_numbers",
        vec![list_type(sum_type())],
        list_type(DataType::Int32),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let lists = arrays[0].as_list::<i32>();
            let mut out = ListBuilder::new(arrow::array::Int32Builder::new()).with_field(Arc::new(Field::new(
                "item",
                DataType::Int32,
                true,
            )));
            for i in 0..lists.len() {
                let n = if lists.is_valid(i) { lists.value_length(i) } else { 1 };
                for s in 0..n {
                    out.values().append_value(s);
                }
                out.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// `vtag_split_sum(amount, index, day)`: the sums, share by share, of a group's rows split by a tag.
#[derive(Debug)]
struct SplitSum {
    splitter: Arc<Splitter>,
    signature: Signature,
}

impl SplitSum {
    fn new(splitter: Arc<Splitter>) -> SplitSum {
        let signature = Signature::exact(vec![amount_type(), DataType::Int32, DataType::Date32], Volatility::Immutable);
        SplitSum { splitter, signature }
    }
}

// One function per plan: the splitter it was made with is its identity.
impl PartialEq for SplitSum {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.splitter, &other.splitter)
    }
}

impl Eq for SplitSum {}

impl Hash for SplitSum {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.splitter).hash(state);
    }
}

impl AggregateUDFImpl for SplitSum {
    fn name(&self) -> &str {
        "vtag_split_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(list_type(sum_type()))
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup { splitter: self.splitter.clone(), sums: Sums::default() }))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ManyGroups { splitter: self.splitter.clone(), groups: Vec::new() }))
    }
}

/// One group's sums, share by share (`None`: no amount yet). Empty until the group's first row.
type Sums = Vec<Option<i256>>;

fn differing_shares() -> DataFusionError {
    DataFusionError::Internal("the rows of one group split into different shares".into())
}

/// Adds one row's shares (`parts`, or a row without an amount that splits `count` ways) to `sums`.
fn add_parts(sums: &mut Sums, parts: Option<&[i128]>, count: usize) -> Result<()> {
    if sums.is_empty() {
        sums.resize(count, None);
    } else if sums.len() != count {
        return Err(differing_shares());
    }
    if let Some(parts) = parts {
        for (slot, &part) in sums.iter_mut().zip(parts) {
            let part = i256::from_i128(part);
            *slot = Some(slot.map_or(part, |s| s.wrapping_add(part)));
        }
    }
    Ok(())
}

/// Adds a list of sums (another partition's state) to `sums`.
fn add_list(sums: &mut Sums, list: &dyn Array) -> Result<()> {
    let list = list.as_primitive::<arrow::datatypes::Decimal256Type>();
    if sums.is_empty() {
        sums.resize(list.len(), None);
    } else if sums.len() != list.len() {
        return Err(differing_shares());
    }
    for (s, slot) in sums.iter_mut().enumerate() {
        if list.is_valid(s) {
            let v = list.value(s);
            *slot = Some(slot.map_or(v, |sum| sum.wrapping_add(v)));
        }
    }
    Ok(())
}

fn to_lists<'a>(groups: impl Iterator<Item = &'a Sums>) -> Result<ListArray> {
    let item = Decimal256Builder::new().with_data_type(sum_type());
    let mut out = ListBuilder::new(item).with_field(Arc::new(Field::new("item", sum_type(), true)));
    for sums in groups {
        for sum in sums {
            out.values().append_option(*sum);
        }
        out.append(true);
    }
    Ok(out.finish())
}

/// Splits each row of a batch (`amount`, `index`, `day`) and hands its shares to `add` with the row number.
fn each_row(
    splitter: &Splitter,
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
    mut add: impl FnMut(usize, Option<&[i128]>, usize) -> Result<()>,
) -> Result<()> {
    let amounts = values[0].as_primitive::<Decimal128Type>();
    let index = values[1].as_primitive::<Int32Type>();
    let day = values[2].as_primitive::<Date32Type>();
    let mut parts = Vec::new();
    for i in 0..amounts.len() {
        if filter.is_some_and(|f| !f.is_valid(i) || !f.value(i)) {
            continue;
        }
        let k = index.is_valid(i).then(|| index.value(i));
        if amounts.is_null(i) {
            add(i, None, splitter.count(k, day.value(i)))?;
        } else {
            splitter.parts_into(amounts.value(i), k, day.value(i), &mut parts)?;
            add(i, Some(&parts), parts.len())?;
        }
    }
    Ok(())
}

/// The accumulator of a single group (an aggregation without group keys).
#[derive(Debug)]
struct OneGroup {
    splitter: Arc<Splitter>,
    sums: Sums,
}

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let sums = &mut self.sums;
        each_row(&self.splitter, values, None, |_, parts, count| add_parts(sums, parts, count))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(Arc::new(to_lists(std::iter::once(&self.sums))?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * std::mem::size_of::<Option<i256>>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                add_list(&mut self.sums, lists.value(i).as_ref())?;
            }
        }
        Ok(())
    }
}

/// The accumulator of every group of a partition.
struct ManyGroups {
    splitter: Arc<Splitter>,
    groups: Vec<Sums>,
}

impl GroupsAccumulator for ManyGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Sums::default);
        let groups = &mut self.groups;
        each_row(&self.splitter, values, opt_filter, |i, parts, count| {
            add_parts(&mut groups[group_indices[i]], parts, count)
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let taken = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(to_lists(taken.iter())?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.groups.resize_with(total_num_groups, Sums::default);
        let lists = values[0].as_list::<i32>();
        for (i, &g) in group_indices.iter().enumerate() {
            if lists.is_null(i) {
                continue;
            }
            add_list(&mut self.groups[g], lists.value(i).as_ref())?;
        }
        Ok(())
    }

    /// Each row as a group of its own: its shares (a row left out by the filter adds nothing: NULL).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let rows = values[0].len();
        let mut states: Vec<Option<Sums>> = vec![None; rows];
        each_row(&self.splitter, values, opt_filter, |i, parts, count| {
            let mut sums = Sums::default();
            add_parts(&mut sums, parts, count)?;
            states[i] = Some(sums);
            Ok(())
        })?;
        let item = Decimal256Builder::new().with_data_type(sum_type());
        let mut out = ListBuilder::new(item).with_field(Arc::new(Field::new("item", sum_type(), true)));
        for state in &states {
            match state {
                Some(sums) => {
                    for sum in sums {
                        out.values().append_option(*sum);
                    }
                    out.append(true);
                }
                None => out.append(false),
            }
        }
        Ok(vec![Arc::new(out.finish())])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Sums>()
            + self.groups.iter().map(|s| s.capacity() * std::mem::size_of::<Option<i256>>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_sums_each_share_of_its_rows_and_keeps_a_share_without_amounts_null() {
        let mut sums = Sums::default();
        add_parts(&mut sums, Some(&[1, 2, 3]), 3).unwrap();
        add_parts(&mut sums, None, 3).unwrap();
        add_parts(&mut sums, Some(&[10, 20, 30]), 3).unwrap();
        assert_eq!(sums, vec![Some(i256::from_i128(11)), Some(i256::from_i128(22)), Some(i256::from_i128(33))]);
        assert!(add_parts(&mut sums, Some(&[1]), 1).is_err(), "rows of a group split alike");
        let mut nothing = Sums::default();
        add_parts(&mut nothing, None, 2).unwrap();
        let lists = to_lists(std::iter::once(&nothing)).unwrap();
        assert_eq!(lists.value_length(0), 2);
        assert_eq!(lists.value(0).null_count(), 2, "no amount: NULL sums, as SUM gives");
    }
}

//! Tags: each cost row keeps its FOCUS Tags object as JSON text; these scalar functions read it for
//! `tag:<key>` groupings, the `tagged` grouping and VQL's `tags.name` / `tags.value` conditions.
//!
//! A tags column repeats few texts: one per tag set in use (a resource's tags, the same on each of its
//! rows), which is also why the Parquet writer keeps it dictionary-encoded. So every function here parses
//! each distinct text of a batch once (`per_distinct`) and gives the other rows with that text the same
//! answer: a row costs a lookup of its 16-byte view (rows of one Parquet dictionary page share it), or of its
//! text where views differ, not a JSON parse. The values come out as `Utf8View`, each distinct value written
//! once and each row a view of it. The answer depends on the text alone, so this changes nothing a query
//! returns (the property tests below compare against a parse of every row, in every column layout).

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray, StringViewArray, UInt32Array};
use arrow::datatypes::DataType;
use datafusion::common::{HashMap, ScalarValue};
use datafusion::logical_expr::{col, create_udf, lit, ColumnarValue, Expr, ScalarUDF, Volatility};
use serde_json::{Map, Value};

use super::schema::col as c;

fn object(text: &str) -> Option<Map<String, Value>> {
    serde_json::from_str::<Map<String, Value>>(text).ok()
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values of tags `wanted` in the JSON object `text` (null where a key is absent), as [`object`] then a
/// lookup would give them, or `None` when `text` is not one JSON object. One pass over the text: keys are
/// compared where they lie (borrowed unless escaped), and only wanted values are built; every other value is
/// skipped, not allocated. A repeated key's last value wins, as in [`object`].
fn wanted_values(text: &str, wanted: &[String]) -> Option<Vec<Option<String>>> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct Key<'de>(Cow<'de, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_string())))
                }
            }
            d.deserialize_str(V)
        }
    }

    struct Wanted<'k>(&'k [String]);
    impl<'de> DeserializeSeed<'de> for Wanted<'_> {
        type Value = Vec<Option<String>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Wanted<'_> {
        type Value = Vec<Option<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = vec![None; self.0.len()];
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                match self.0.iter().position(|w| *w == key) {
                    Some(i) => out[i] = Some(as_text(&map.next_value::<Value>()?)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let values = Wanted(wanted).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(values)
}

/// Reads a tags column as the scan gives it (`Utf8View`; `Utf8` from anything else) without casting it: a cast
/// would copy every row's JSON before the first key is read.
enum TagsColumn<'a> {
    View(&'a arrow::array::StringViewArray),
    Plain(&'a StringArray),
}

impl<'a> TagsColumn<'a> {
    fn of(array: &'a arrow::array::ArrayRef) -> datafusion::error::Result<TagsColumn<'a>> {
        match array.data_type() {
            DataType::Utf8View => Ok(TagsColumn::View(array.as_string_view())),
            DataType::Utf8 => Ok(TagsColumn::Plain(array.as_string::<i32>())),
            other => Err(datafusion::error::DataFusionError::Internal(format!("tags as {other}"))),
        }
    }

    fn len(&self) -> usize {
        match self {
            TagsColumn::View(a) => a.len(),
            TagsColumn::Plain(a) => a.len(),
        }
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            TagsColumn::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            TagsColumn::Plain(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }
}

/// `f` of each distinct non-null text of `tags`, computed once, and each row's index into those results
/// (`None` for a null row).
struct PerDistinct<T> {
    results: Vec<T>,
    rows: Vec<Option<u32>>,
}

fn per_distinct<'a, T>(tags: &TagsColumn<'a>, mut f: impl FnMut(&'a str) -> T) -> PerDistinct<T> {
    let mut by_text: HashMap<&'a str, u32> = HashMap::default();
    let mut results = Vec::new();
    let mut result_of = |text: &'a str| {
        *by_text.entry(text).or_insert_with(|| {
            results.push(f(text));
            (results.len() - 1) as u32
        })
    };
    let rows = match tags {
        // A view names its bytes (inline, or a buffer, offset and length), so rows with one view have one
        // text. The Parquet reader gives every row of a dictionary page a view into the page's dictionary, so
        // most rows are answered by a lookup of their 16-byte view, without hashing or comparing their text.
        // Equal texts under different views (another page's dictionary) still meet in `by_text`.
        TagsColumn::View(array) => {
            let mut by_view: HashMap<u128, u32> = HashMap::default();
            let mut last: Option<(u128, u32)> = None;
            let views = array.views();
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        return None;
                    }
                    let view = views[i];
                    Some(match last {
                        Some((v, r)) if v == view => r,
                        _ => {
                            let r = *by_view.entry(view).or_insert_with(|| result_of(array.value(i)));
                            last = Some((view, r));
                            r
                        }
                    })
                })
                .collect()
        }
        TagsColumn::Plain(_) => (0..tags.len()).map(|i| tags.get(i).map(&mut result_of)).collect(),
    };
    PerDistinct { results, rows }
}

impl<T> PerDistinct<T> {
    /// Each row's result (`None` for a null row).
    fn each(&self) -> impl Iterator<Item = Option<&T>> + '_ {
        self.rows.iter().map(|r| r.map(|i| &self.results[i as usize]))
    }

    /// Each row's `text` of its result, as a `Utf8View` column: each distinct text is written (and checked as
    /// UTF-8) once, and each row is a 16-byte view of it, gathered by `take` (texts of up to 12 bytes, most tag
    /// values, live in the view itself). A `Utf8` column would copy the text into every row, and views built
    /// row by row would be checked row by row.
    fn texts(&self, text: impl Fn(&T) -> Option<&str>) -> datafusion::error::Result<ArrayRef> {
        let distinct: StringViewArray = self.results.iter().map(text).collect();
        let rows: UInt32Array = self.rows.iter().copied().collect();
        Ok(arrow::compute::take(&distinct, &rows, None)?)
    }
}

/// A text argument that is the same on every row (a literal), as the functions below are called.
fn constant_text(arg: &ColumnarValue) -> Option<Option<String>> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v)) => {
            Some(v.clone())
        }
        _ => None,
    }
}

/// The tags object `text` has a tag `name` (any name when `None`) whose value is `value` (any value when
/// `None`); text that is not one JSON object has none.
fn has(text: &str, name: Option<&str>, value: Option<&str>) -> bool {
    object(text).is_some_and(|m| {
        m.iter().any(|(k, v)| name.is_none_or(|n| n == k) && value.is_none_or(|want| want == as_text(v)))
    })
}

/// `tag_value(tags, key)`: the row's value of tag `key`, or null.
fn tag_value_udf() -> &'static ScalarUDF {
    static UDF: OnceLock<ScalarUDF> = OnceLock::new();
    UDF.get_or_init(|| {
        create_udf(
            "tag_value",
            vec![DataType::Utf8View, DataType::Utf8],
            DataType::Utf8View,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                if let (ColumnarValue::Array(tags), Some(key)) = (&args[0], constant_text(&args[1])) {
                    let tags = TagsColumn::of(tags)?;
                    let Some(key) = key else {
                        return Ok(ColumnarValue::Array(arrow::array::new_null_array(&DataType::Utf8View, tags.len())));
                    };
                    let wanted = [key];
                    let values =
                        per_distinct(&tags, |text| wanted_values(text, &wanted).and_then(|mut v| v.pop().flatten()));
                    return Ok(ColumnarValue::Array(values.texts(Option::as_deref)?));
                }
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let tags = TagsColumn::of(&arrays[0])?;
                let keys = arrays[1].as_string::<i32>();
                let out: StringViewArray = (0..tags.len())
                    .map(|i| {
                        let text = tags.get(i)?;
                        if keys.is_null(i) {
                            return None;
                        }
                        wanted_values(text, &[keys.value(i).to_string()]).and_then(|mut v| v.pop().flatten())
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }),
        )
    })
}

/// `tag_match(tags, name, value)`: the row has a tag `name` (any name when null) whose value is `value`
/// (any value when null).
fn tag_match_udf() -> &'static ScalarUDF {
    static UDF: OnceLock<ScalarUDF> = OnceLock::new();
    UDF.get_or_init(|| {
        create_udf(
            "tag_match",
            vec![DataType::Utf8View, DataType::Utf8, DataType::Utf8],
            DataType::Boolean,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                if let (ColumnarValue::Array(tags), Some(name), Some(value)) =
                    (&args[0], constant_text(&args[1]), constant_text(&args[2]))
                {
                    let tags = TagsColumn::of(tags)?;
                    let matches = per_distinct(&tags, |text| has(text, name.as_deref(), value.as_deref()));
                    let out: BooleanArray = matches.each().map(|m| Some(m.copied().unwrap_or(false))).collect();
                    return Ok(ColumnarValue::Array(Arc::new(out)));
                }
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let (tags, names, values) =
                    (TagsColumn::of(&arrays[0])?, arrays[1].as_string::<i32>(), arrays[2].as_string::<i32>());
                let out: BooleanArray = (0..tags.len())
                    .map(|i| {
                        let name = (!names.is_null(i)).then(|| names.value(i));
                        let value = (!values.is_null(i)).then(|| values.value(i));
                        Some(tags.get(i).is_some_and(|text| has(text, name, value)))
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }),
        )
    })
}

/// The value of tag `key` (for a `tag:<key>` grouping).
pub fn tag_value(key: &str) -> Expr {
    tag_value_udf().call(vec![col(c::TAGS), lit(key.to_string())])
}

/// The values of every tag in `keys`, as a struct with one text field per key (`k0`, `k1`, …), from one parse
/// of the row's tags: several `tag:` groupings read the tags once, not once each.
pub fn tag_values(keys: &[String]) -> Expr {
    let fields = tag_fields(keys.len());
    let wanted: Vec<String> = keys.to_vec();
    let out_fields = fields.clone();
    let udf = create_udf(
        "tag_values",
        vec![DataType::Utf8View],
        DataType::Struct(fields),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let tags = TagsColumn::of(&arrays[0])?;
            let values = per_distinct(&tags, |text| wanted_values(text, &wanted));
            let columns = (0..wanted.len())
                .map(|k| values.texts(|row| row.as_ref().and_then(|v| v[k].as_deref())))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let array = arrow::array::StructArray::try_new(out_fields.clone(), columns, None)?;
            Ok(ColumnarValue::Array(Arc::new(array)))
        }),
    );
    udf.call(vec![col(c::TAGS)])
}

/// The fields of a [`tag_values`] struct of `n` keys.
fn tag_fields(n: usize) -> arrow::datatypes::Fields {
    (0..n).map(|i| arrow::datatypes::Field::new(format!("k{i}"), DataType::Utf8View, true)).collect()
}

/// The `i`th value of a [`tag_values`] struct of `n` keys in `column`. (A function of costd's own rather than
/// DataFusion's `get_field`, which its `push_down_leaf_projections` rule moves below the projection that
/// makes the struct, and then fails on the plan's schema.)
pub fn tag_values_field(column: &str, i: usize, n: usize) -> Expr {
    let udf = create_udf(
        "tag_values_field",
        vec![DataType::Struct(tag_fields(n))],
        DataType::Utf8View,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            Ok(ColumnarValue::Array(arrays[0].as_struct().column(i).clone()))
        }),
    );
    udf.call(vec![col(column)])
}

/// `'true'` when the row has at least one tag, else `'false'` (the `tagged` grouping).
pub fn tagged() -> Expr {
    tagged_or(std::iter::empty())
}

/// The same where a row is also tagged by a non-null value in any of `virtual_values`.
pub fn tagged_or(virtual_values: impl Iterator<Item = Expr>) -> Expr {
    let has = tag_match_udf().call(vec![
        col(c::TAGS),
        lit(datafusion::common::ScalarValue::Utf8(None)),
        lit(datafusion::common::ScalarValue::Utf8(None)),
    ]);
    let has = virtual_values.fold(has, |e, v| e.or(v.is_not_null()));
    datafusion::logical_expr::when(has, lit("true")).otherwise(lit("false")).expect("a valid CASE")
}

/// Rows with a tag `name` whose value is `value` (either may be `None`: any).
pub fn has_tag(name: Option<&str>, value: Option<&str>) -> Expr {
    let text = |v: Option<&str>| lit(datafusion::common::ScalarValue::Utf8(v.map(str::to_string)));
    tag_match_udf().call(vec![col(c::TAGS), text(name), text(value)])
}

/// Rows with no tags at all (`tags.name = NULL`).
pub fn untagged() -> Expr {
    use std::ops::Not;
    has_tag(None, None).not()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use proptest::prelude::*;

    /// Per asked key, its value on each row.
    type Values = Vec<Vec<Option<String>>>;

    /// How a test lays out its tags column.
    #[derive(Debug, Clone, Copy)]
    enum Layout {
        Utf8,
        /// Each row's own view (long texts copied per row).
        View,
        /// As the Parquet reader gives a dictionary page: rows with one text share one view of it.
        SharedViews,
    }

    /// What the functions give over one column of `tags`, laid out as `layout` says.
    struct Read {
        /// Per asked key, each row's value from `tag_value`.
        one: Values,
        /// The same from the one-parse struct.
        all: Values,
        /// Each row's `has_tag(name, value)` for each asked (name, value).
        matches: Vec<Vec<bool>>,
    }

    fn read(
        tags: &[Option<String>],
        keys: &[String],
        asked: &[(Option<String>, Option<String>)],
        layout: Layout,
    ) -> Read {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let ctx = SessionContext::new();
            let (column, data_type): (arrow::array::ArrayRef, _) = match layout {
                Layout::Utf8 => {
                    let a: StringArray = tags.iter().map(Option::as_deref).collect();
                    (Arc::new(a), DataType::Utf8)
                }
                Layout::View => {
                    let a: StringViewArray = tags.iter().map(Option::as_deref).collect();
                    (Arc::new(a), DataType::Utf8View)
                }
                Layout::SharedViews => {
                    let mut distinct: Vec<&str> = Vec::new();
                    let rows: arrow::array::UInt32Array = tags
                        .iter()
                        .map(|t| {
                            let t = t.as_deref()?;
                            Some(distinct.iter().position(|d| *d == t).unwrap_or_else(|| {
                                distinct.push(t);
                                distinct.len() - 1
                            }) as u32)
                        })
                        .collect();
                    let dictionary: StringViewArray = distinct.iter().map(|d| Some(*d)).collect();
                    (arrow::compute::take(&dictionary, &rows, None).unwrap(), DataType::Utf8View)
                }
            };
            let schema =
                Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(c::TAGS, data_type, true)]));
            let batch = arrow::record_batch::RecordBatch::try_new(schema, vec![column]).unwrap();
            let df = ctx.read_batch(batch).unwrap().with_column("__tv", tag_values(keys)).unwrap();
            let mut exprs = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                exprs.push(tag_value(key).alias(format!("one{i}")));
                exprs.push(tag_values_field("__tv", i, keys.len()).alias(format!("all{i}")));
            }
            for (i, (name, value)) in asked.iter().enumerate() {
                exprs.push(has_tag(name.as_deref(), value.as_deref()).alias(format!("match{i}")));
            }
            let batches = df.select(exprs).unwrap().collect().await.unwrap();
            let text = |name: &str| -> Vec<Option<String>> {
                batches
                    .iter()
                    .flat_map(|b| {
                        let a = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
                        let a = a.as_string::<i32>().clone();
                        (0..a.len()).map(move |r| (!a.is_null(r)).then(|| a.value(r).to_string())).collect::<Vec<_>>()
                    })
                    .collect()
            };
            let truth = |name: &str| -> Vec<bool> {
                batches
                    .iter()
                    .flat_map(|b| {
                        let a = b.column_by_name(name).unwrap().as_boolean().clone();
                        (0..a.len()).map(move |r| a.value(r)).collect::<Vec<_>>()
                    })
                    .collect()
            };
            Read {
                one: (0..keys.len()).map(|i| text(&format!("one{i}"))).collect(),
                all: (0..keys.len()).map(|i| text(&format!("all{i}"))).collect(),
                matches: (0..asked.len()).map(|i| truth(&format!("match{i}"))).collect(),
            }
        })
    }

    /// What a lookup in the whole parsed object gives: the reference [`wanted_values`] must agree with.
    fn reference(text: &str, wanted: &[String]) -> Option<Vec<Option<String>>> {
        object(text).map(|m| wanted.iter().map(|k| m.get(k).map(as_text)).collect())
    }

    #[test]
    fn escaped_repeated_and_nested_keys_read_as_the_whole_object_does() {
        let wanted: Vec<String> = ["a\"b", "team", "n", "deep"].iter().map(|s| s.to_string()).collect();
        for text in [
            r#"{"a\"b": "x", "team": "web", "team": "data", "n": 1.50, "deep": {"k": [1, 2]}}"#,
            r#"{"te\u0061m": "escaped"}"#,
            r#"{"team": "web"} trailing"#,
            r#"["team", "web"]"#,
            r#"{"team": null}"#,
            "",
        ] {
            assert_eq!(wanted_values(text, &wanted), reference(text, &wanted), "{text}");
        }
        assert_eq!(wanted_values(r#"{"n": 1.50}"#, &wanted).unwrap()[2].as_deref(), Some("1.50"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The one-pass reader gives what a lookup in the whole parsed object gives, on any text.
        #[test]
        fn the_one_pass_reader_agrees_with_the_whole_object(
            entries in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["env", "team", "t\\\"q", "Cost Center", "\\u0074eam"]),
                    proptest::prop_oneof![
                        "[a-z\"\\\\]{0,4}".prop_map(|s| serde_json::Value::String(s).to_string()),
                        (-100i64..100).prop_map(|n| n.to_string()),
                        Just("1.250".to_string()),
                        Just("null".to_string()),
                        Just("true".to_string()),
                        Just("{\"x\": [1, {\"y\": null}]}".to_string()),
                    ],
                ),
                0..6,
            ),
            garbage in proptest::option::of("[ {}\\[\\]:,\"a-z0-9]{0,6}"),
            keys in proptest::sample::subsequence(vec!["env", "team", "t\"q", "Cost Center", "absent"], 1..5),
        ) {
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            let text = format!("{{{}}}{}", body.join(", "), garbage.unwrap_or_default());
            let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
            prop_assert_eq!(wanted_values(&text, &keys), reference(&text, &keys), "{}", text);
        }

        /// Each function, answering once per distinct text, gives every row what a parse of that row alone
        /// gives: the per-key value, the several-keys struct (several `tag:` groupings), and tag conditions
        /// (missing keys, nulls, numbers, bad JSON, repeated texts; as `Utf8`, as `Utf8View` and with views shared
        /// as a Parquet dictionary page gives them).
        #[test]
        fn every_row_gets_what_a_parse_of_that_row_alone_gives(
            rows in proptest::collection::vec(
                proptest::option::of(proptest::prop_oneof![
                    proptest::collection::btree_map(
                        proptest::sample::select(vec!["env", "team", "Cost Center", "kubernetes.io/cluster"]),
                        proptest::prop_oneof![
                            "[ab]{0,2}".prop_map(serde_json::Value::String),
                            // Longer than a view holds inline.
                            "[ab]{13,16}".prop_map(serde_json::Value::String),
                            (0i64..100).prop_map(serde_json::Value::from),
                        ],
                        0..4,
                    )
                    .prop_map(|m| serde_json::to_string(&m).unwrap()),
                    Just("not json".to_string()),
                ]),
                1..40,
            ),
            keys in proptest::sample::subsequence(vec!["env", "team", "Cost Center", "kubernetes.io/cluster", "absent"], 2..5),
            asked in proptest::collection::vec(
                (
                    proptest::option::of(proptest::sample::select(vec!["env", "team", "absent"])),
                    proptest::option::of(proptest::sample::select(vec!["a", "ab", "1", "web"])),
                ),
                0..3,
            ),
            layout in proptest::sample::select(vec![Layout::Utf8, Layout::View, Layout::SharedViews]),
        ) {
            let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
            let asked: Vec<(Option<String>, Option<String>)> =
                asked.into_iter().map(|(n, v)| (n.map(str::to_string), v.map(str::to_string))).collect();
            let got = read(&rows, &keys, &asked, layout);
            // The reference parses every row on its own.
            let expected: Values = (0..keys.len())
                .map(|k| {
                    rows.iter()
                        .map(|row| row.as_deref().and_then(|t| reference(t, &keys)).and_then(|v| v[k].clone()))
                        .collect()
                })
                .collect();
            let expected_matches: Vec<Vec<bool>> = asked
                .iter()
                .map(|(name, value)| {
                    rows.iter()
                        .map(|row| {
                            row.as_deref().and_then(object).is_some_and(|m| {
                                m.iter().any(|(k, v)| {
                                    name.as_ref().is_none_or(|n| n == k) && value.as_ref().is_none_or(|w| *w == as_text(v))
                                })
                            })
                        })
                        .collect()
                })
                .collect();
            prop_assert_eq!(&got.one, &expected);
            prop_assert_eq!(&got.all, &expected);
            prop_assert_eq!(&got.matches, &expected_matches);
        }
    }
}

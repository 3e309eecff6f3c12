//! What discovery needs from an upload (`GET /v2/cost_services`, `/v2/tags`, `/v2/tags/{key}/values`):
//! its distinct services and tag key/value pairs, read once from its file before it is committed, so that
//! discovery never scans cost rows at request time.
//!
//! The file is read in batches of two columns (service, a dictionary, and the tags' JSON text), so memory
//! stays flat however many rows it has; a row's tags are parsed only when that exact text was not just
//! seen (real exports repeat a few tag sets across millions of rows).

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::schema::col;

/// Distinct tag texts remembered at once; past it the memory starts over (a cache, not a limit).
const SEEN_TAG_TEXTS: usize = 100_000;

pub use costd_model::catalog::{Catalog, MAX_CATALOG_ENTRIES};

/// Reads the catalog of an upload file.
pub fn catalog(path: &Path) -> anyhow::Result<Catalog> {
    let file = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    catalog_from(file)
}

/// Reads the catalog of an upload file's bytes (a local file, or an object read whole).
pub fn catalog_from<R: parquet::file::reader::ChunkReader + 'static>(file: R) -> anyhow::Result<Catalog> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> =
        (0..schema.num_columns()).filter(|&i| [col::SERVICE, col::TAGS].contains(&schema.column(i).name())).collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build()?;
    let mut catalog = Catalog::default();
    let mut seen: HashSet<String> = HashSet::new();
    for batch in reader {
        let batch = batch?;
        if let Some(services) = batch.column_by_name(col::SERVICE) {
            // A dictionary: its values are the batch's distinct services (all used: files are written whole).
            let services = match services.data_type() {
                DataType::Dictionary(_, _) => services.as_any_dictionary().values().clone(),
                _ => services.clone(),
            };
            let services = arrow::compute::cast(&services, &DataType::Utf8)?;
            let services = services.as_string::<i32>();
            for i in 0..services.len() {
                if !services.is_null(i) {
                    catalog.add_service(services.value(i));
                }
            }
        }
        if let Some(tags) = batch.column_by_name(col::TAGS) {
            let tags = arrow::compute::cast(tags, &DataType::Utf8)?;
            let tags = tags.as_string::<i32>();
            for i in 0..tags.len() {
                if tags.is_null(i) || catalog.full() {
                    continue;
                }
                let text = tags.value(i);
                if seen.contains(text) {
                    continue;
                }
                if seen.len() >= SEEN_TAG_TEXTS {
                    seen.clear();
                }
                seen.insert(text.to_string());
                catalog.add_tags(text);
            }
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_services_and_tags_are_read_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags
Usage,2024-07-01,1,EC2,\"{\"\"team\"\": \"\"web\"\", \"\"kubernetes.io/cluster\"\": \"\"prod\"\"}\"
Usage,2024-07-02,1,EC2,\"{\"\"team\"\": \"\"web\"\", \"\"kubernetes.io/cluster\"\": \"\"prod\"\"}\"
Usage,2024-07-02,1,S3,\"{\"\"team\"\": \"\"data\"\", \"\"Cost Center\"\": 42}\"
Usage,2024-07-03,1,RDS,
";
        let tmp = dir.path().join("u.parquet.tmp");
        let pending = super::super::ingest::ingest_csv(csv.as_bytes(), &tmp, Default::default(), &mut ()).unwrap();
        let path = dir.path().join("u.parquet");
        pending.persist(&path).unwrap();
        let c = catalog(&path).unwrap();
        assert_eq!(c.services.iter().collect::<Vec<_>>(), ["EC2", "RDS", "S3"]);
        let tags: Vec<(&str, Vec<&str>)> =
            c.tags.iter().map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            tags,
            [("Cost Center", vec!["42"]), ("kubernetes.io/cluster", vec!["prod"]), ("team", vec!["data", "web"])]
        );
    }

    #[test]
    fn an_upload_with_a_tag_value_per_row_records_a_bounded_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,Tags\n");
        for i in 0..MAX_CATALOG_ENTRIES + 5_000 {
            csv.push_str(&format!("Usage,2024-07-01,1,EC2,\"{{\"\"resource\"\": \"\"i-{i}\"\"}}\"\n"));
        }
        let tmp = dir.path().join("u.parquet.tmp");
        let pending = super::super::ingest::ingest_csv(csv.as_bytes(), &tmp, Default::default(), &mut ()).unwrap();
        let path = dir.path().join("u.parquet");
        pending.persist(&path).unwrap();
        let c = catalog(&path).unwrap();
        assert_eq!(c.len(), MAX_CATALOG_ENTRIES);
        assert_eq!(c.services.len() + c.tags["resource"].len(), MAX_CATALOG_ENTRIES);
        assert!(c.services.contains("EC2"));
    }
}

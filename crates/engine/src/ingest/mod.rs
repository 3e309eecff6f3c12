//! Ingest: a custom-provider cost CSV (FOCUS column names) streamed into one Parquet file.
//!
//! The CSV is read as a stream (bounded memory, no row limit) on the calling thread (or records already split
//! into fields arrive from another reader, [`RecordSource`]), converted into Arrow
//! batches of the cost schema, and encoded to Parquet on a second thread, so both cores work. Every row is
//! checked; problems are collected as `Row N: …` sentences (capped, with a count of the rest) and any
//! problem discards the output. The output is a temporary file that only [`PendingUpload::persist`]
//! makes permanent (fsync, then rename), so a failed or interrupted ingest leaves no trace.

pub mod guard;
pub mod parse;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

pub use guard::{Limits, StreamProblem};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, Date32Builder, Decimal128Builder, StringBuilder, StringDictionaryBuilder};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::schema::{col, cost_schema, Check, Kind, Stored, AMOUNT_PRECISION, AMOUNT_SCALE, FIELDS};
use costd_model::amount::Amount;
use parse::{is_null, CHARGE_CATEGORIES};

/// Rows per Arrow batch handed to the Parquet encoder.
const BATCH_ROWS: usize = 32 * 1024;
/// Bytes of CSV per Arrow batch, at most (whichever of this and [`BATCH_ROWS`] comes first): rows of long
/// fields (64 KiB tag objects, say) would otherwise make one batch gigabytes, from a gzip body of a few KB.
const BATCH_BYTES: usize = 16 << 20;
/// Bytes of CSV per Parquet row group, at most, for the same reason (the encoder buffers a row group).
const ROW_GROUP_BYTES: usize = 128 << 20;
/// Rows per Parquet row group: large enough for good compression and scan speed, small enough that the
/// encoder's buffered row group stays far below the memory budget.
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Rows of a rollup built into one batch at a time (each batch carries every cost column, mostly null).
const ROLLUP_CHUNK_ROWS: usize = 64 * 1024;
/// Most row problems listed; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 100;

/// Longest field accepted, in bytes. Real exports' longest fields (resource ids, tag objects) are a few
/// KiB; past this a row is refused, and memory stays bounded however long a broken field runs.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The FOCUS columns every file must have (from [`FIELDS`]).
pub fn required_columns() -> Vec<&'static str> {
    FIELDS.iter().filter(|f| f.required).filter_map(|f| f.focus).collect()
}

/// Why an ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file's content is wrong: header problems or `Row N: …` sentences, listed for the client.
    #[error("the CSV has {} problem(s)", .0.len())]
    Invalid(Vec<String>),
    /// The file is larger than [`Limits::max_bytes`].
    #[error("the file is larger than the upload limit of {0} bytes")]
    TooLarge(u64),
    /// Reading the input or writing the output failed.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// What an ingested file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub rows: u64,
    /// Sum of BilledCost, exact.
    pub amount: Amount,
    /// The file's one BillingCurrency.
    pub currency: String,
    /// Earliest and latest ChargePeriodStart dates.
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Bytes of (decompressed) CSV read.
    pub bytes: u64,
    /// With a rollup file beside the upload's: the most decimal places of any amount (`engine::rollup`).
    pub rollup_decimals: Option<u8>,
}

/// An ingested file not yet made permanent. Dropping it deletes the file, so every failure path
/// (an error, a dropped request, a panic) cleans up by itself.
#[derive(Debug)]
pub struct PendingUpload {
    tmp: Option<PathBuf>,
    /// The rollups' temporary files (one per level), when there are.
    rollups: Vec<(super::rollup::Level, PathBuf)>,
    pub summary: IngestSummary,
}

/// Where the `level` rollup of the upload whose temporary file is `tmp` (`<token>.parquet.tmp`) is written.
pub fn rollup_tmp_path(tmp: &Path, level: super::rollup::Level) -> PathBuf {
    let name = tmp.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let token = name.strip_suffix(".parquet.tmp").unwrap_or(&name);
    tmp.with_file_name(format!("{token}{}.parquet.tmp", level.suffix()))
}

/// The permanent name of the `level` rollup of the upload file `dest` (`<token>.parquet`).
pub fn rollup_path(dest: &Path, level: super::rollup::Level) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let token = name.strip_suffix(".parquet").unwrap_or(&name);
    dest.with_file_name(format!("{token}{}.parquet", level.suffix()))
}

impl PendingUpload {
    /// The complete temporary file.
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().expect("a pending upload holds its file until persisted")
    }

    /// The complete temporary rollup files, with their levels (none when the upload has no rollup).
    pub fn rollup_paths(&self) -> impl Iterator<Item = (super::rollup::Level, &Path)> {
        self.rollups.iter().map(|(level, path)| (*level, path.as_path()))
    }

    /// Moves the file (and its rollup first) to `dest` atomically (rename after fsync) and syncs the
    /// directory.
    pub fn persist(mut self, dest: &Path) -> anyhow::Result<()> {
        // On failure the temporary files stay owned by `self`, whose drop removes them.
        while let Some((level, rollup)) = self.rollups.last() {
            let to = rollup_path(dest, *level);
            std::fs::rename(rollup, &to).with_context(|| format!("failed to move the rollup to {}", to.display()))?;
            self.rollups.pop();
        }
        let tmp = self.tmp.as_ref().expect("a pending upload is persisted once");
        std::fs::rename(tmp, dest).with_context(|| format!("failed to move the upload to {}", dest.display()))?;
        self.tmp = None;
        if let Some(dir) = dest.parent() {
            File::open(dir).and_then(|d| d.sync_all()).context("failed to sync the uploads directory")?;
        }
        Ok(())
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
        for (_, rollup) in self.rollups.drain(..) {
            let _ = std::fs::remove_file(rollup);
        }
    }
}

/// Progress of a long ingest: rows converted and input bytes read so far.
pub trait Progress {
    fn update(&mut self, rows: u64, bytes: u64);
}

impl Progress for () {
    fn update(&mut self, _: u64, _: u64) {}
}

/// Where each cost field's FOCUS column sits in the header, and which fields the summary reads.
#[derive(Debug)]
struct Columns {
    /// Every header name as written (trimmed), to name a field in a row problem.
    names: Vec<String>,
    /// (position in [`FIELDS`], header position) of every field whose FOCUS column the file has.
    present: Vec<(usize, usize)>,
    /// (field, the field it needs) for [`Check::Needs`], both positions in [`FIELDS`].
    needs: Vec<(usize, usize)>,
    /// (field, its default) for fields with a default whose column the file lacks.
    absent_defaults: Vec<(usize, &'static str)>,
    accrued_at: usize,
    amount: usize,
    currency: usize,
}

/// The position in [`FIELDS`] of the field stored as `name`.
fn field_index(name: &'static str) -> usize {
    FIELDS.iter().position(|f| f.stored == Stored::File(name)).expect("a stored cost field")
}

/// A CSV header's column names as written, trimmed (a UTF-8 byte-order mark may precede the first).
pub fn header_names(header: &csv::ByteRecord) -> Vec<String> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            let h = if i == 0 { h.trim_start_matches('\u{feff}') } else { &h };
            h.trim().to_string()
        })
        .collect()
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Columns, Vec<String>> {
        let written = header_names(header);
        let names: Vec<String> = written.iter().map(|n| n.to_ascii_lowercase()).collect();
        let find = |name: &str| names.iter().position(|n| n == &name.to_ascii_lowercase());
        let required = required_columns();
        let missing: Vec<&str> = required.iter().copied().filter(|c| find(c).is_none()).collect();
        if !missing.is_empty() {
            return Err(vec![format!(
                "Header: missing required column(s) {}; the required columns are {}",
                missing.join(", "),
                required.join(", ")
            )]);
        }
        let present = FIELDS.iter().enumerate().filter_map(|(k, f)| f.focus.and_then(find).map(|i| (k, i))).collect();
        let needs = FIELDS
            .iter()
            .enumerate()
            .filter_map(|(k, f)| match f.check {
                Check::Needs(other) => FIELDS.iter().position(|g| g.focus == Some(other)).map(|j| (k, j)),
                _ => None,
            })
            .collect();
        let absent_defaults = FIELDS
            .iter()
            .enumerate()
            .filter_map(|(k, f)| match (f.default, f.focus.and_then(find)) {
                (Some(d), None) => Some((k, d)),
                _ => None,
            })
            .collect();
        Ok(Columns {
            names: written,
            present,
            needs,
            absent_defaults,
            accrued_at: field_index(col::ACCRUED_AT),
            amount: field_index(col::AMOUNT),
            currency: field_index(col::CURRENCY),
        })
    }
}

/// A builder of a dictionary-encoded text column (see [`super::schema::Kind::Text`]).
type LowCardinality = StringDictionaryBuilder<Int32Type>;

/// The Arrow builder of one stored column.
enum ColumnBuilder {
    Date(Date32Builder),
    Amount(Decimal128Builder),
    Low(LowCardinality),
    Text(StringBuilder),
}

/// Arrow builders for one batch of cost rows: one per stored field, in file order.
struct Builders {
    /// (position in [`FIELDS`], its builder).
    columns: Vec<(usize, ColumnBuilder)>,
    rows: usize,
    /// Bytes of CSV in the batch so far.
    bytes: usize,
}

impl Builders {
    fn new() -> Self {
        let columns = FIELDS
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.stored, Stored::File(_)))
            .map(|(k, f)| {
                let builder = match f.kind {
                    Kind::Date => ColumnBuilder::Date(Date32Builder::with_capacity(BATCH_ROWS)),
                    Kind::Amount => ColumnBuilder::Amount(
                        Decimal128Builder::with_capacity(BATCH_ROWS)
                            .with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)
                            .expect("valid decimal type"),
                    ),
                    Kind::Text { low_cardinality: true } => {
                        ColumnBuilder::Low(LowCardinality::with_capacity(BATCH_ROWS, 64, 1024))
                    }
                    Kind::Text { low_cardinality: false } => {
                        ColumnBuilder::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))
                    }
                };
                (k, builder)
            })
            .collect();
        Builders { columns, rows: 0, bytes: 0 }
    }

    #[inline]
    fn append(&mut self, values: &[Value<'_>; FIELDS.len()]) {
        for (k, builder) in &mut self.columns {
            match (builder, values[*k]) {
                (ColumnBuilder::Date(b), Value::Date(d)) => b.append_value(d),
                (ColumnBuilder::Amount(b), Value::Amount(a)) => b.append_value(a.unscaled()),
                (ColumnBuilder::Low(b), Value::Text(t)) => b.append_value(t),
                (ColumnBuilder::Text(b), Value::Text(t)) => b.append_value(t),
                (ColumnBuilder::Date(b), _) => b.append_null(),
                (ColumnBuilder::Amount(b), _) => b.append_null(),
                (ColumnBuilder::Low(b), _) => b.append_null(),
                (ColumnBuilder::Text(b), _) => b.append_null(),
            }
        }
        self.rows += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        self.bytes = 0;
        let columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(_, b)| -> ArrayRef {
                match b {
                    ColumnBuilder::Date(b) => Arc::new(b.finish()),
                    ColumnBuilder::Amount(b) => Arc::new(b.finish()),
                    ColumnBuilder::Low(b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        RecordBatch::try_new(cost_schema(), columns).expect("builders match the cost schema")
    }
}

/// Collected row problems: the first [`MAX_LISTED_ERRORS`] listed, the rest counted.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, msg: String) {
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(msg);
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn into_messages(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("... and {} more problem(s)", self.more));
        }
        self.listed
    }
}

/// Opens a possibly gzip-compressed stream: gzip is recognised by its magic bytes, not by a file name.
/// Errors of the decompressor surface as [`StreamProblem::Gzip`].
pub fn maybe_gunzip<R: Read + Send + 'static>(input: R) -> std::io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(guard::Gunzip::new(buffered, 256 * 1024)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Where the ingest's records come from, the header first: a CSV file ([`ingest_csv`]), or records another
/// reader has already split into fields (a cloud export's Parquet and CSV files, `engine::bills`), which then
/// skip being written as CSV text only to be parsed again.
pub trait RecordSource {
    /// Reads the next record into `record`; `Ok(false)` at the end. An I/O error ends the ingest; any other
    /// error is a problem of that row.
    fn next_record(&mut self, record: &mut csv::ByteRecord) -> Result<bool, csv::Error>;
    /// Bytes read so far.
    fn bytes_read(&self) -> u64;
}

/// A CSV file's records, through the [`guard::Guard`] that enforces the upload's limits.
struct CsvRecords<R: Read> {
    reader: csv::Reader<guard::Guard<R>>,
}

impl<R: Read> CsvRecords<R> {
    fn new(input: R, limits: Limits) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(guard::Guard::new(input, limits));
        CsvRecords { reader }
    }
}

impl<R: Read> RecordSource for CsvRecords<R> {
    fn next_record(&mut self, record: &mut csv::ByteRecord) -> Result<bool, csv::Error> {
        self.reader.read_byte_record(record)
    }

    fn bytes_read(&self) -> u64 {
        self.reader.get_ref().bytes_read()
    }
}

/// Reads a cost CSV from `input` into the temporary Parquet file `tmp` (its directory is created).
#[tracing::instrument(skip_all, fields(tmp = %tmp.display()))]
pub fn ingest_csv(
    input: impl Read,
    tmp: &Path,
    limits: Limits,
    progress: &mut dyn Progress,
) -> Result<PendingUpload, IngestError> {
    ingest_records(&mut CsvRecords::new(input, limits), tmp, progress)
}

/// Reads the records of `source` (a header, then rows) into the temporary Parquet file `tmp` (its directory
/// is created).
#[tracing::instrument(skip_all, fields(tmp = %tmp.display()))]
pub fn ingest_records(
    source: &mut dyn RecordSource,
    tmp: &Path,
    progress: &mut dyn Progress,
) -> Result<PendingUpload, IngestError> {
    if let Some(dir) = tmp.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let tmp = tmp.to_path_buf();
    // From here on the guard owns the file: every early return removes it.
    let rollup_tmps: Vec<_> =
        super::rollup::Level::ALL.iter().map(|&level| (level, rollup_tmp_path(&tmp, level))).collect();
    let mut pending = PendingUpload { tmp: Some(tmp.clone()), rollups: Vec::new(), summary: empty_summary() };
    let file = File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let sync_handle = file.try_clone().context("failed to open the upload file for syncing")?;

    let props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let (tx, rx) = sync_channel::<RecordBatch>(2);
    let rollup_files = rollup_tmps.clone();
    let encoder = std::thread::Builder::new()
        .name("parquet-encoder".into())
        .spawn(move || -> anyhow::Result<Option<u8>> {
            let mut writer = ArrowWriter::try_new(file, cost_schema(), Some(props.clone()))?;
            let mut rollup = super::rollup::RollupBuilder::default();
            for batch in rx {
                rollup.add(&batch);
                writer.write(&batch)?;
                if writer.in_progress_size() >= ROW_GROUP_BYTES {
                    writer.flush()?;
                }
            }
            writer.close()?;
            let Some(rollup) = rollup.finish() else { return Ok(None) };
            for (level, path) in &rollup_files {
                let file = File::create(path)?;
                let mut writer = ArrowWriter::try_new(file.try_clone()?, cost_schema(), Some(props.clone()))?;
                for batch in rollup.batches(*level, ROLLUP_CHUNK_ROWS) {
                    writer.write(&batch)?;
                }
                writer.close()?;
                file.sync_all()?;
            }
            Ok(Some(rollup.decimals))
        })
        .context("failed to start the Parquet encoder thread")?;

    let converted = convert(source, tx, progress);
    let encoded = encoder.join().map_err(|_| anyhow::anyhow!("the Parquet encoder thread panicked"))?;
    // Owned from here, so any failure below removes the rollup too.
    pending.rollups = rollup_tmps;
    let mut summary = converted?;
    summary.rollup_decimals = encoded.context("failed to write the upload's Parquet file")?;
    if summary.rollup_decimals.is_none() {
        for (_, rollup) in pending.rollups.drain(..) {
            let _ = std::fs::remove_file(rollup);
        }
    }
    sync_handle.sync_all().context("failed to sync the upload's Parquet file")?;
    pending.summary = summary;
    Ok(pending)
}

fn empty_summary() -> IngestSummary {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    IngestSummary {
        rows: 0,
        amount: Amount::ZERO,
        currency: String::new(),
        start_date: epoch,
        end_date: epoch,
        bytes: 0,
        rollup_decimals: None,
    }
}

/// Parses every row, sending batches while the file is clean; returns the summary or every problem.
fn convert(
    reader: &mut dyn RecordSource,
    tx: std::sync::mpsc::SyncSender<RecordBatch>,
    progress: &mut dyn Progress,
) -> Result<IngestSummary, IngestError> {
    let mut record = csv::ByteRecord::new();

    let header_read = match reader.next_record(&mut record) {
        Ok(read) => read,
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(stream_error(e, Problems::default())),
        Err(e) => return Err(IngestError::Invalid(vec![format!("Header: {e}")])),
    };
    if !header_read {
        return Err(IngestError::Invalid(vec![format!(
            "The file is empty: expected a header row with {}",
            required_columns().join(", ")
        )]));
    }
    let header_len = record.len();
    let cols = Columns::from_header(&record).map_err(IngestError::Invalid)?;

    let mut problems = Problems::default();
    let mut builders = Builders::new();
    let mut sender = Some(tx);
    let mut summary = empty_summary();
    let (mut min_day, mut max_day) = (i32::MAX, i32::MIN);
    let mut row: u64 = 0;

    loop {
        match reader.next_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // An I/O error (a dropped upload, bad gzip, a cut file) ends the ingest; a CSV syntax error
                // is a row problem.
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(stream_error(e, problems));
                }
                row += 1;
                problems.push(format!("Row {row}: {e}"));
                continue;
            }
        }
        row += 1;
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            row -= 1; // a blank line is not a row
            continue;
        }
        if record.len() != header_len {
            problems.push(format!("Row {row}: has {} fields, the header has {header_len}", record.len()));
            continue;
        }
        // Length first: a field cut at the limit by a reader (`engine::bills`) may end inside a character.
        if let Some(i) = (0..record.len()).find(|&i| record.get(i).is_some_and(|f| f.len() > MAX_FIELD_BYTES)) {
            let name = cols.names.get(i).map_or("a field", String::as_str);
            problems.push(format!("Row {row}: a field is longer than {MAX_FIELD_BYTES} bytes ({name})"));
            continue;
        }
        // The row's bytes as text, once; each field must also start and end on a character boundary (a
        // two-byte character split by a comma is valid UTF-8 as a whole and invalid in each field).
        let line = std::str::from_utf8(record.as_slice()).ok().filter(|line| {
            (0..record.len()).all(|i| {
                record.range(i).is_some_and(|r| line.is_char_boundary(r.start) && line.is_char_boundary(r.end))
            })
        });
        let Some(line) = line else {
            let bad = (0..record.len()).find(|&i| std::str::from_utf8(record.get(i).unwrap_or_default()).is_err());
            let name = bad.and_then(|i| cols.names.get(i)).map_or("a field", String::as_str);
            problems.push(format!("Row {row}: {name} is not valid UTF-8"));
            continue;
        };
        let field = |i: usize| -> &str { record.range(i).map_or("", |r| &line[r]) };
        let mut values = [Value::Null; FIELDS.len()];
        match convert_row(&cols, field, &mut values) {
            Err(msgs) => {
                for m in msgs {
                    problems.push(format!("Row {row}: {m}"));
                }
            }
            Ok(parsed) if problems.is_empty() => {
                if summary.currency.is_empty() {
                    summary.currency = parsed.currency.to_string();
                } else if summary.currency != parsed.currency {
                    problems.push(format!(
                        "Row {row}: BillingCurrency {} differs from {} in earlier rows; upload one currency per file",
                        parsed.currency, summary.currency
                    ));
                    continue;
                }
                summary.amount = match summary.amount.checked_add(parsed.amount) {
                    Some(sum) => sum,
                    None => {
                        problems.push(format!("Row {row}: the file's total BilledCost overflows"));
                        continue;
                    }
                };
                min_day = min_day.min(parsed.day);
                max_day = max_day.max(parsed.day);
                builders.append(&values);
                builders.bytes += record.as_slice().len();
                if builders.rows == BATCH_ROWS || builders.bytes >= BATCH_BYTES {
                    if let Some(tx) = &sender {
                        if tx.send(builders.finish()).is_err() {
                            sender = None; // the encoder failed; its error is reported after the join
                        }
                    }
                }
            }
            // After the first problem nothing more is written; rows are still checked to report them all.
            Ok(_) => {}
        }
        if row.is_multiple_of(65_536) {
            progress.update(row, reader.bytes_read());
        }
    }
    summary.bytes = reader.bytes_read();
    progress.update(row, summary.bytes);

    if row == 0 {
        problems.push("The file has a header but no data rows".to_string());
    }
    if !problems.is_empty() {
        return Err(IngestError::Invalid(problems.into_messages()));
    }
    if builders.rows > 0 {
        if let Some(tx) = &sender {
            let _ = tx.send(builders.finish());
        }
    }
    summary.rows = row;
    summary.start_date = parse::date_from_days(min_day);
    summary.end_date = parse::date_from_days(max_day);
    Ok(summary)
}

/// What an I/O error under the parser means: a problem with the file ([`StreamProblem`]: listed after the
/// row problems found before it), or a failure to read the input (a dropped upload).
fn stream_error(e: csv::Error, problems: Problems) -> IngestError {
    let csv::ErrorKind::Io(io) = e.kind() else { unreachable!("called for I/O errors only") };
    match StreamProblem::of(io) {
        Some(StreamProblem::TooLarge { limit }) => IngestError::TooLarge(*limit),
        Some(problem) => {
            let problem = match problem {
                StreamProblem::Gzip(_) => format!("The file is not readable: {problem}"),
                other => other.to_string(),
            };
            let mut messages = problems.into_messages();
            messages.push(problem);
            IngestError::Invalid(messages)
        }
        None => IngestError::Io(anyhow::Error::new(e).context("failed to read the CSV")),
    }
}

/// One parsed field of a row.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Null,
    /// Days since 1970-01-01.
    Date(i32),
    Amount(Amount),
    Text(&'a str),
}

/// What the file's summary needs of a valid row (the row's values stay in the caller's buffer).
struct Row<'a> {
    day: i32,
    amount: Amount,
    currency: &'a str,
}

/// A text field's own check.
fn check_text(check: Check, focus: &str, v: &str) -> Result<(), String> {
    match check {
        Check::ChargeCategory if !CHARGE_CATEGORIES.contains(&v) => {
            Err(format!("{focus} {v:?} is not one of {}", CHARGE_CATEGORIES.join(", ")))
        }
        Check::Currency if v.len() != 3 || !v.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(format!("{focus} {v:?} is not a three-letter ISO 4217 code like USD"))
        }
        Check::JsonObject if !is_json_object(v) => {
            Err(format!("{focus} must be a JSON object like {{\"team\": \"web\"}}, got {}", preview(v)))
        }
        _ => Ok(()),
    }
}

/// Parses one row into `values` (a value per field of [`FIELDS`], all `Null` on entry).
#[inline]
fn convert_row<'a>(
    cols: &Columns,
    field: impl Fn(usize) -> &'a str,
    values: &mut [Value<'a>; FIELDS.len()],
) -> Result<Row<'a>, Vec<String>> {
    let mut errors = Vec::new();
    for &(k, at) in &cols.present {
        let f = &FIELDS[k];
        let focus = f.focus.unwrap_or_default();
        let raw = Some(field(at));
        // Required fields and codes are read trimmed; other text is kept as the file writes it.
        let text = if f.required {
            raw.map(str::trim).filter(|v| !is_null(v))
        } else {
            raw.filter(|v| !is_null(v)).map(|v| if f.check == Check::Currency { v.trim() } else { v })
        };
        let Some(v) = text.or(f.default) else {
            if f.required {
                errors.push(format!("{focus} is required"));
            }
            continue;
        };
        values[k] = match f.kind {
            Kind::Date => match parse::date(focus, v) {
                Ok(d) => Value::Date(d),
                Err(e) => {
                    errors.push(e);
                    Value::Null
                }
            },
            Kind::Amount => match Amount::parse(focus, v) {
                Ok(a) => Value::Amount(a),
                Err(e) => {
                    errors.push(e);
                    Value::Null
                }
            },
            Kind::Text { .. } => {
                if let Err(e) = check_text(f.check, focus, v) {
                    errors.push(e);
                }
                Value::Text(v)
            }
        };
    }
    for &(k, j) in &cols.needs {
        if !matches!(values[k], Value::Null) && matches!(values[j], Value::Null) {
            let (f, g) = (FIELDS[k].focus.unwrap_or_default(), FIELDS[j].focus.unwrap_or_default());
            errors.push(format!("{f} is given without {g}"));
        }
    }
    for &(k, default) in &cols.absent_defaults {
        values[k] = Value::Text(default);
    }
    match (errors.is_empty(), values[cols.accrued_at], values[cols.amount], values[cols.currency]) {
        (true, Value::Date(day), Value::Amount(amount), Value::Text(currency)) => Ok(Row { day, amount, currency }),
        (true, ..) => Err(vec!["a required value is missing".into()]),
        _ => Err(errors),
    }
}

/// True when `s` is one JSON object (its contents are checked for syntax, not kept).
fn is_json_object(s: &str) -> bool {
    let t = s.trim();
    t.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
}

fn preview(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::Decimal128Type;

    const HEADER: &str = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,ConsumedQuantity,ConsumedUnit,Tags";

    #[test]
    fn batches_are_bounded_by_bytes_as_well_as_rows() {
        // 600 rows of 60 KiB: far fewer rows than a batch holds, far more bytes than one may.
        let field = "x".repeat(60 * 1024);
        let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,ResourceId\n");
        for _ in 0..600 {
            csv.push_str(&format!("Usage,2024-07-01,1,EC2,{field}\n"));
        }
        let (tx, rx) = sync_channel::<RecordBatch>(2);
        let sizes = std::thread::spawn(move || rx.into_iter().map(|b| b.num_rows()).collect::<Vec<_>>());
        convert(&mut CsvRecords::new(csv.as_bytes(), Limits::default()), tx, &mut ()).unwrap();
        let sizes = sizes.join().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 600);
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n * 60 * 1024 <= BATCH_BYTES + 64 * 1024), "{sizes:?}");
    }

    fn ingest(csv: &[u8]) -> (tempfile::TempDir, Result<PendingUpload, IngestError>) {
        let dir = tempfile::tempdir().unwrap();
        let result = ingest_csv(csv, &dir.path().join("u.parquet.tmp"), Limits::default(), &mut ());
        (dir, result)
    }

    fn problems(csv: &str) -> Vec<String> {
        let (dir, result) = ingest(csv.as_bytes());
        let problems = match result {
            Err(IngestError::Invalid(p)) => p,
            Err(IngestError::Io(e)) => panic!("unexpected I/O error {e:#}"),
            Err(IngestError::TooLarge(l)) => panic!("unexpected size limit {l}"),
            Ok(_) => panic!("expected problems for {csv:?}"),
        };
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a rejected ingest leaves no file");
        problems
    }

    fn amounts(path: &Path) -> Vec<i128> {
        crate::storage::read_file(path)
            .unwrap()
            .iter()
            .flat_map(|b| {
                let col = b.column(1).as_primitive::<Decimal128Type>();
                (0..col.len()).map(|i| col.value(i)).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_clean_file_becomes_a_parquet_file_with_exact_amounts() {
        let csv = format!(
            "{HEADER}\nUsage,2024-09-01,1245,EC2,3,Hours,{{\"team\":\"web\"}}\nCredit,2024-09-30T10:00:00Z,-$1.23,EC2,NULL,NULL,NULL\n"
        );
        let (dir, result) = ingest(csv.as_bytes());
        let pending = result.unwrap();
        let s = pending.summary.clone();
        assert_eq!((s.rows, s.amount.to_string()), (2, "1243.77".to_string()));
        assert_eq!((s.start_date.to_string(), s.end_date.to_string()), ("2024-09-01".into(), "2024-09-30".into()));
        assert_eq!(s.currency, "USD");
        let dest = dir.path().join("u.parquet");
        pending.persist(&dest).unwrap();
        assert_eq!(amounts(&dest), vec![1245 * 10i128.pow(18), -123 * 10i128.pow(16)]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only the persisted file remains");
    }

    #[test]
    fn dropping_a_pending_upload_removes_its_file() {
        let (dir, result) = ingest(format!("{HEADER}\nUsage,2024-09-01,1,EC2,,,\n").as_bytes());
        drop(result.unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_focus_sample_ingests_as_it_is() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/focus/focus_sample_1000_multicloud_focus1.0.csv");
        let Ok(bytes) = std::fs::read(&path) else {
            assert!(std::env::var("CI").is_err(), "CI must have the FOCUS sample at {}", path.display());
            eprintln!("SKIPPED: no FOCUS sample at {}", path.display());
            return;
        };
        let (_dir, result) = ingest(&bytes);
        let pending = result.unwrap();
        let s = pending.summary.clone();
        assert_eq!(s.rows, 1000);
        assert_eq!(s.amount.to_string(), "20.52022672899");
        assert_eq!(s.currency, "USD");
        // The FOCUS columns kept since issue 22 are in the file.
        let batches = super::super::storage::read_file(pending.path()).unwrap();
        let mut types = Vec::new();
        for b in &batches {
            let t = arrow::compute::cast(
                b.column_by_name(col::COMMITMENT_DISCOUNT_TYPE).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let t = t.as_string::<i32>();
            types.extend(t.iter().flatten().map(str::to_string));
        }
        assert_eq!(types, vec!["Savings Plan"; 4]);
    }

    #[test]
    fn bom_crlf_and_quoted_newlines_are_fine() {
        let csv = "\u{feff}\"ChargeCategory\",ChargePeriodStart,BilledCost,ServiceName\r\nUsage,2024-09-01,1,\"Multi\nline\"\r\n".to_string();
        let (_dir, result) = ingest(csv.as_bytes());
        assert_eq!(result.unwrap().summary.rows, 1);
    }

    #[test]
    fn each_bad_row_is_reported_with_its_number() {
        let csv = format!(
            "{HEADER}\n\
             usage,2024-09-01,1,EC2,,,\n\
             Usage,2024-13-01,1,EC2,,,\n\
             Usage,2024-09-01,1.2.3,EC2,,,\n\
             Usage,2024-09-01,1,EC2,,,[1]\n\
             Usage,2024-09-01,1,EC2,5,,\n\
             Usage,2024-09-01,1\n\
             Usage,2024-09-01,1,,,,\n\
             Usage,2024-09-01,\"1,245\",EC2,,,\n"
        );
        let p = problems(&csv);
        let expect = [
            "Row 1: ChargeCategory \"usage\" is not one of",
            "Row 2: ChargePeriodStart \"2024-13-01\" is not a date",
            "Row 3: BilledCost \"1.2.3\" is not a number",
            "Row 4: Tags must be a JSON object",
            "Row 5: ConsumedQuantity is given without ConsumedUnit",
            "Row 6: has 3 fields, the header has 7",
            "Row 7: ServiceName is required",
            "Row 8: BilledCost \"1,245\" has a thousands separator",
        ];
        assert_eq!(p.len(), expect.len(), "{p:#?}");
        for (got, want) in p.iter().zip(expect) {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_a_row_problem() {
        let mut csv = format!("{HEADER}\nUsage,2024-09-01,1,").into_bytes();
        csv.extend_from_slice(&[0xff, 0xfe]);
        csv.extend_from_slice(b",,,\n");
        assert_eq!(problems_bytes(&csv), vec!["Row 1: ServiceName is not valid UTF-8"]);
    }

    fn problems_bytes(csv: &[u8]) -> Vec<String> {
        match ingest(csv).1 {
            Err(IngestError::Invalid(p)) => p,
            _ => panic!("expected problems"),
        }
    }

    #[test]
    fn empty_files_header_only_files_and_missing_columns_are_refused() {
        assert!(problems("")[0].starts_with("The file is empty"));
        assert_eq!(problems(&format!("{HEADER}\n")), vec!["The file has a header but no data rows"]);
        let p = problems("ChargeCategory,BilledCost\nUsage,1\n");
        assert!(p[0].contains("missing required column(s) ChargePeriodStart, ServiceName"), "{p:?}");
    }

    #[test]
    fn mixed_currencies_in_one_file_are_refused() {
        let csv = "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName,BillingCurrency\n\
                   Usage,2024-09-01,1,EC2,USD\nUsage,2024-09-01,1,EC2,EUR\n";
        assert!(problems(csv)[0].starts_with("Row 2: BillingCurrency EUR differs from USD"));
    }

    #[test]
    fn the_problem_list_is_capped_with_a_count_of_the_rest() {
        let mut csv = format!("{HEADER}\n");
        for _ in 0..250 {
            csv.push_str("Bogus,2024-09-01,1,EC2,,,\n");
        }
        let p = problems(&csv);
        assert_eq!(p.len(), MAX_LISTED_ERRORS + 1);
        assert_eq!(p.last().unwrap(), "... and 150 more problem(s)");
    }

    #[test]
    fn gzip_input_is_recognised_by_its_magic_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(format!("{HEADER}\nUsage,2024-09-01,2.5,EC2,,,\n").as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        let input = maybe_gunzip(std::io::Cursor::new(compressed)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s =
            ingest_csv(input, &dir.path().join("u.parquet.tmp"), Limits::default(), &mut ()).unwrap().summary.clone();
        assert_eq!(s.amount.to_string(), "2.5");
    }

    fn outcome(bytes: &[u8]) -> Result<Option<IngestSummary>, String> {
        let dir = tempfile::tempdir().unwrap();
        let result = ingest_csv(bytes, &dir.path().join("u.parquet.tmp"), Limits::default(), &mut ());
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        match result {
            Ok(p) => Ok(Some(p.summary.clone())),
            Err(IngestError::Invalid(_)) if left == 0 => Ok(None),
            Err(IngestError::Invalid(_)) => Err(format!("a refused file left {left} file(s)")),
            Err(other) => Err(format!("in-memory input failed with {other:?}")),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]
        #[test]
        fn any_bytes_are_imported_or_refused_whole_without_panicking(
            header in proptest::sample::select(vec!["", HEADER, "ChargeCategory,ChargePeriodStart,BilledCost,ServiceName"]),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let mut bytes = format!("{header}\n").into_bytes();
            bytes.extend_from_slice(&body);
            proptest::prop_assert!(outcome(&bytes).is_ok(), "{:?}", outcome(&bytes));
        }

        #[test]
        fn csv_shaped_noise_is_imported_or_refused_whole_without_panicking(
            cells in proptest::collection::vec(proptest::sample::select(vec![
                "Usage", "Tax", "2024-09-01", "2024-09-0\u{e9}", "1.5", "$-2", "1e400", "EC2", "\"", "\"\"", ",", "\n", "\r\n",
                "NULL", "{\"a\":1}", "\u{feff}", "\u{1f4b8}", "", "9999999999999999999999",
            ]), 0..60)
        ) {
            let bytes = format!("{HEADER}\n{}", cells.concat()).into_bytes();
            proptest::prop_assert!(outcome(&bytes).is_ok(), "{:?}", outcome(&bytes));
        }

        #[test]
        fn clean_rows_sum_to_the_exact_total(amounts in proptest::collection::vec(-10i128.pow(24)..10i128.pow(24), 1..50)) {
            let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,ServiceName\n");
            for a in &amounts {
                csv.push_str(&format!("Usage,2024-09-01,{},EC2\n", parse::format_amount(*a)));
            }
            let summary = outcome(csv.as_bytes()).unwrap().expect("a clean file imports");
            proptest::prop_assert_eq!(summary.amount.unscaled(), amounts.iter().sum::<i128>());
            proptest::prop_assert_eq!(summary.rows, amounts.len() as u64);
        }
    }
}

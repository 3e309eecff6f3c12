//! The stream under the CSV parser: what the `csv` crate cannot tell us about its input.
//!
//! - A file that ends inside a quoted field was cut off (the parser would quietly take the partial row and
//!   lose every row after the cut), so EOF inside quotes is an error.
//! - A record longer than [`MAX_RECORD_BYTES`] is an error raised before the parser buffers it, so a
//!   broken quote or a pasted blob cannot make memory grow with the file.
//! - The whole (decompressed) file may be capped ([`Limits::max_bytes`]), so one upload cannot fill the disk.
//! - Errors of the gzip decoder are told apart from errors of the input itself (a dropped connection).
//!
//! Quote tracking follows the RFC 4180 reading the `csv` crate uses: a `"` opens a quoted field only at the
//! start of a field, `""` inside quotes is a literal quote, and a `"` elsewhere is an ordinary character.
//! The scan jumps between interesting bytes with `memchr`, so it costs little next to parsing.

use std::io::{self, Read};

/// Longest record (row) the stream lets through, in bytes: [`super::MAX_FIELD_BYTES`] per field is the
/// documented limit; this bound keeps a row whose quote never closes from being buffered whole.
pub const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;

/// Why the stream stopped: carried inside an `io::Error` through the CSV parser and told apart after it.
#[derive(Debug, thiserror::Error)]
pub enum StreamProblem {
    /// The input ended inside a quoted field; `row` is the data row it started in (1-based).
    #[error("Row {row}: the file ends inside a quoted field, so it was probably cut off; nothing was imported")]
    Truncated { row: u64 },
    /// A record longer than [`MAX_RECORD_BYTES`]; `row` is its data row.
    #[error("Row {row}: the row is longer than {MAX_RECORD_BYTES} bytes (is a quote left open?)")]
    RecordTooLong { row: u64 },
    /// More bytes than the configured limit.
    #[error("the file is larger than the upload limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The data starts with gzip's signature but does not decompress.
    #[error("the file starts with the gzip signature but is not a valid gzip stream ({0})")]
    Gzip(String),
}

impl StreamProblem {
    /// The problem inside an I/O error, if the error is one of ours.
    pub fn of(e: &io::Error) -> Option<&StreamProblem> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<StreamProblem>())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// What the guard enforces beyond well-formed quoting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Most (decompressed) bytes accepted; `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// A reader that watches quoting, record length and total size of the bytes passing through it.
pub struct Guard<R> {
    inner: R,
    limits: Limits,
    /// Bytes read so far.
    bytes: u64,
    /// Inside a quoted field.
    in_quotes: bool,
    /// Inside quotes, the previous byte was a `"` whose meaning (close or escape) the next byte decides.
    quote_pending: bool,
    /// The previous byte outside quotes, to tell a field-opening `"` from a literal one (`b','` at start).
    prev: u8,
    /// Bytes of the current record so far.
    record_bytes: u64,
    /// Non-empty records completed (the header is the first).
    records: u64,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        Guard {
            inner,
            limits,
            bytes: 0,
            in_quotes: false,
            quote_pending: false,
            prev: b'\n',
            record_bytes: 0,
            records: 0,
        }
    }

    /// Bytes read so far (after decompression).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The data row the current record is: every completed record before it but the header, plus one.
    fn row(&self) -> u64 {
        self.records
    }

    fn end_record(&mut self) {
        if self.record_bytes > 0 {
            self.records += 1;
        }
        self.record_bytes = 0;
    }

    /// Follows the quoting state through `buf`.
    fn scan(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut i = 0;
        while i < buf.len() {
            if self.quote_pending {
                self.quote_pending = false;
                if buf[i] == b'"' {
                    // `""`: a literal quote, still inside.
                    self.record_bytes += 1;
                    self.prev = b'"';
                    i += 1;
                    continue;
                }
                self.in_quotes = false;
                self.prev = b'"';
            }
            if self.in_quotes {
                match memchr::memchr(b'"', &buf[i..]) {
                    Some(at) => {
                        self.record_bytes += at as u64 + 1;
                        self.quote_pending = true;
                        i += at + 1;
                    }
                    None => {
                        self.record_bytes += (buf.len() - i) as u64;
                        i = buf.len();
                    }
                }
            } else {
                match memchr::memchr3(b'"', b'\n', b'\r', &buf[i..]) {
                    Some(at) => {
                        let pos = i + at;
                        let before = if at > 0 { buf[pos - 1] } else { self.prev };
                        match buf[pos] {
                            b'"' => {
                                self.record_bytes += at as u64 + 1;
                                if matches!(before, b',' | b'\n' | b'\r') {
                                    self.in_quotes = true;
                                }
                                self.prev = b'"';
                            }
                            _ => {
                                self.record_bytes += at as u64;
                                self.end_record();
                                self.prev = buf[pos];
                            }
                        }
                        i = pos + 1;
                    }
                    None => {
                        self.record_bytes += (buf.len() - i) as u64;
                        self.prev = buf[buf.len() - 1];
                        i = buf.len();
                    }
                }
            }
            if self.record_bytes > MAX_RECORD_BYTES {
                return Err(StreamProblem::RecordTooLong { row: self.row() }.into_io());
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            // A pending quote at EOF closed its field; an open one means the file was cut.
            if self.in_quotes && !self.quote_pending {
                return Err(StreamProblem::Truncated { row: self.row() }.into_io());
            }
            return Ok(0);
        }
        self.bytes += n as u64;
        if let Some(limit) = self.limits.max_bytes {
            if self.bytes > limit {
                return Err(StreamProblem::TooLarge { limit }.into_io());
            }
        }
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

/// Marks errors of the raw input (under a decompressor) so they are not mistaken for bad gzip data.
struct Source<R>(R);

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct SourceError(io::Error);

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| io::Error::new(e.kind(), SourceError(e)))
    }
}

/// A gzip decoder whose own errors become [`StreamProblem::Gzip`] and whose input's errors pass unchanged.
pub struct Gunzip<R: Read>(flate2::read::MultiGzDecoder<io::BufReader<Source<R>>>);

impl<R: Read> Gunzip<R> {
    pub fn new(input: R, buffer: usize) -> Self {
        Gunzip(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(buffer, Source(input))))
    }
}

impl<R: Read> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let from_source = e.get_ref().is_some_and(|inner| inner.is::<SourceError>());
            if from_source {
                let inner = e.into_inner().expect("checked above").downcast::<SourceError>().expect("checked above");
                inner.0
            } else {
                StreamProblem::Gzip(e.to_string()).into_io()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        Guard::new(Chunked(data, chunk), Limits::default()).read_to_end(&mut out)?;
        Ok(out)
    }

    fn problem(data: &[u8]) -> Option<String> {
        // Every chunking must agree: the state carries across reads.
        let results: Vec<Option<String>> = [1, 2, 3, 7, 64, 1 << 16]
            .iter()
            .map(|&c| read_all(data, c).err().map(|e| StreamProblem::of(&e).expect("ours").to_string()))
            .collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        results[0].clone()
    }

    #[test]
    fn closed_quotes_escaped_quotes_and_literal_quotes_pass() {
        for data in [
            &b"a,b\n1,2\n"[..],
            b"a,b\n\"x,\"\"y\"\"\",2\n",
            b"a,b\n\"multi\nline\",2",
            b"a,b\nab\"c,2\n",
            b"a,b\r\n\"x\"\r\n",
            b"a,b\n\"\"\n",
            b"a,b\n\"closed at EOF\"",
        ] {
            assert_eq!(problem(data), None, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn eof_inside_quotes_is_a_truncated_file_with_its_row() {
        assert_eq!(
            problem(b"a,b\n1,2\n3,\"cut off\nhere").as_deref(),
            Some("Row 2: the file ends inside a quoted field, so it was probably cut off; nothing was imported")
        );
        assert!(problem(b"a,b\n1,\"x\"\"").unwrap().contains("Row 1"), "an escaped quote keeps the field open");
    }

    #[test]
    fn a_record_past_the_bound_is_refused_before_it_is_buffered() {
        let mut data = b"a,b\n1,2\n3,\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES as usize + 1));
        assert!(problem(&data).unwrap().starts_with("Row 2: the row is longer than"));
    }

    #[test]
    fn the_size_limit_counts_every_byte() {
        let mut out = Vec::new();
        let err = Guard::new(&b"a,b\n1,2\n"[..], Limits { max_bytes: Some(4) }).read_to_end(&mut out).unwrap_err();
        assert!(matches!(StreamProblem::of(&err), Some(StreamProblem::TooLarge { limit: 4 })));
    }

    #[test]
    fn gzip_errors_are_told_apart_from_input_errors() {
        let mut out = Vec::new();
        let err = Gunzip::new(&[0x1f, 0x8b, 1, 2, 3][..], 64).read_to_end(&mut out).unwrap_err();
        assert!(matches!(StreamProblem::of(&err), Some(StreamProblem::Gzip(_))), "{err}");

        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let err = Gunzip::new(Broken, 64).read_to_end(&mut out).unwrap_err();
        assert!(StreamProblem::of(&err).is_none());
        assert_eq!(err.to_string(), "connection reset");
    }
}

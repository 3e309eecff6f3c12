//! Upload bodies as Vantage's clients send them (see `docs/clients.md`):
//! - [`UrlEncodedCsv`]: `application/x-www-form-urlencoded` with the file in the field `csv` (Vantage's spec
//!   lists this form; the Python client sends it), decoded as a stream so a large file never sits in memory;
//! - [`sniff_boundary`]: `multipart/form-data` whose Content-Type lacks its `boundary` (the TypeScript
//!   client sets the header itself and drops it), recovered from the body's first line.

/// Streaming decoder of a form-urlencoded body that yields the value of its `csv` field.
#[derive(Debug, Default)]
pub struct UrlEncodedCsv {
    state: State,
    /// The current field name (bounded: names are short).
    key: Vec<u8>,
    /// A `%` escape's digits seen so far.
    escape: Vec<u8>,
    seen_csv: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Key,
    /// Inside a value; `true` when it is the `csv` field's.
    Value(bool),
    /// After the `csv` field's value: the rest of the body is ignored.
    Done,
}

/// Longest field name kept; longer ones are no field we read.
const MAX_KEY: usize = 64;

impl UrlEncodedCsv {
    /// Feeds the next body bytes; decoded bytes of the `csv` field are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        for &b in chunk {
            match self.state {
                State::Done => return Ok(()),
                State::Key => match b {
                    b'=' => {
                        let key = decode_all(&self.key)?;
                        let is_csv = key == b"csv";
                        if is_csv && self.seen_csv {
                            return Err("send one csv field per upload".into());
                        }
                        self.seen_csv |= is_csv;
                        self.state = State::Value(is_csv);
                        self.key.clear();
                    }
                    b'&' => self.key.clear(),
                    _ if self.key.len() < MAX_KEY => self.key.push(b),
                    _ => {}
                },
                State::Value(is_csv) => match b {
                    b'&' if self.escape.is_empty() => {
                        self.state = if is_csv { State::Done } else { State::Key };
                    }
                    _ if !is_csv => {}
                    b'%' if self.escape.is_empty() => self.escape.push(b),
                    _ if !self.escape.is_empty() => {
                        self.escape.push(b);
                        if self.escape.len() == 3 {
                            out.push(hex_byte(self.escape[1], self.escape[2])?);
                            self.escape.clear();
                        }
                    }
                    b'+' => out.push(b' '),
                    _ => out.push(b),
                },
            }
        }
        Ok(())
    }

    /// Checks the body ended well: the `csv` field was there and no escape was cut.
    pub fn finish(&self) -> Result<(), String> {
        if !self.escape.is_empty() {
            return Err("the form body ends inside a %-escape".into());
        }
        if !self.seen_csv {
            return Err("the form field csv (the cost file) is required".into());
        }
        Ok(())
    }
}

fn hex_byte(hi: u8, lo: u8) -> Result<u8, String> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    match (digit(hi), digit(lo)) {
        (Some(h), Some(l)) => Ok(h * 16 + l),
        _ => Err(format!("the form body has a bad %-escape %{}{}", hi as char, lo as char)),
    }
}

fn decode_all(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = UrlEncodedCsv { state: State::Value(true), ..Default::default() };
    let mut out = Vec::new();
    decoder.feed(raw, &mut out)?;
    if !decoder.escape.is_empty() {
        return Err("a form field name ends inside a %-escape".into());
    }
    Ok(out)
}

/// The boundary of a multipart body from its first line (`--BOUNDARY\r\n`), when `head` holds that line.
/// `None` while `head` may still be too short; `Some(Err)` when the body is not multipart at all.
pub fn sniff_boundary(head: &[u8]) -> Option<Result<String, String>> {
    let line_end = head.windows(2).position(|w| w == b"\r\n");
    let Some(end) = line_end else {
        return (head.len() > MAX_BOUNDARY_LINE)
            .then(|| Err("the multipart body does not start with a boundary".into()));
    };
    let line = &head[..end];
    match line.strip_prefix(b"--") {
        Some(boundary) if !boundary.is_empty() && boundary.len() <= 70 => match std::str::from_utf8(boundary) {
            Ok(b) if b.bytes().all(|c| c.is_ascii_graphic() || c == b' ') => Some(Ok(b.to_string())),
            _ => Some(Err("the multipart boundary is not printable ASCII".into())),
        },
        _ => Some(Err("the multipart body does not start with a boundary".into())),
    }
}

/// RFC 2046 boundaries are at most 70 characters; with `--` and CRLF a first line fits in this.
pub const MAX_BOUNDARY_LINE: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
        let mut d = UrlEncodedCsv::default();
        let mut out = Vec::new();
        for c in body.chunks(chunk.max(1)) {
            d.feed(c, &mut out)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn the_csv_field_is_decoded_whatever_the_chunking() {
        let body = b"auto_transform=false&csv=ChargeCategory%2CBilledCost%0AUsage%2C1.5+USD&x=1";
        for chunk in [1, 2, 3, 5, 100] {
            assert_eq!(decode(body, chunk).unwrap(), b"ChargeCategory,BilledCost\nUsage,1.5 USD");
        }
        assert_eq!(decode(b"c%73v=a%26b", 1).unwrap(), b"a&b", "an encoded field name");
    }

    #[test]
    fn a_missing_field_a_bad_escape_and_two_files_are_errors() {
        assert!(decode(b"auto_transform=false", 4).unwrap_err().contains("csv"));
        assert!(decode(b"csv=abc%2", 4).unwrap_err().contains("%-escape"));
        assert!(decode(b"csv=abc%zz", 4).unwrap_err().contains("bad %-escape"));
        assert!(decode(b"csv=a&csv=b", 4).is_ok(), "the body after the first csv field is not read");
    }

    #[test]
    fn a_boundary_is_read_from_the_first_line() {
        assert_eq!(sniff_boundary(b"--abc123\r\nContent-Disposition").unwrap().unwrap(), "abc123");
        assert!(sniff_boundary(b"--abc").is_none(), "more bytes are needed");
        assert!(sniff_boundary(b"csv=1\r\n").unwrap().is_err());
        assert!(sniff_boundary(&[b'x'; 100]).unwrap().is_err());
    }
}

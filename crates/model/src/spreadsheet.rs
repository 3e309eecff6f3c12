//! Text that lands in a CSV someone opens in a spreadsheet. A cell starting with `=`, `+`, `-`, `@`, a tab
//! or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets (CSV injection: a
//! tenant's service name `=HYPERLINK(…)` would run on the MSP's machine). Text cells get a leading `'`,
//! which those tools show as text and drop from the value, as OWASP recommends; numbers costd formats
//! itself (amounts, dates) are written as they are, so a negative amount stays a number.

use std::borrow::Cow;

/// `text` made safe as a spreadsheet cell: unchanged unless it would start a formula.
pub fn text_cell(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_would_start_a_formula_are_quoted() {
        for (given, written) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
        ] {
            assert_eq!(text_cell(given), written);
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in ["Amazon EC2", "", "us-east-1", "a=b", "'quoted", "1.25"] {
            assert!(matches!(text_cell(text), Cow::Borrowed(t) if t == text));
        }
    }
}

//! Parsed domain types. Request bodies become these through `TryFrom`, collecting every problem as a
//! sentence that names the field; past this layer a value is valid by construction.

pub mod account;
pub mod amount;
pub mod anomaly;
pub mod audit;
pub mod billing_profile;
pub mod billing_rule;
pub mod bucket_export;
pub mod budget;
pub mod business_metric;
pub mod catalog;
pub mod cost_alert;
pub mod cost_query;
pub mod csv_table;
pub mod data_export;
pub mod decimal;
pub mod exchange_rate;
pub mod integration;
pub mod invoice;
pub mod managed_account;
pub mod record;
pub mod report;
pub mod segment;
pub mod spreadsheet;
pub mod token;
pub mod upload;
pub mod user;
pub mod virtual_tag;
pub mod vql;
pub mod workspace;

/// Which slice of a list to read. `page` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    /// How many items come before the page.
    pub fn offset(&self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// How deeply `text` nests brackets (`(` and `[`), outside quoted strings. SQL parsers backtrack through
/// nested calls, some exponentially (found by fuzzing: a VQL filter nested 20 deep took seconds), so
/// parsers of user text check this first.
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None::<u8>);
    for b in text.bytes() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, b')' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The longest name, title or label we store. Vantage documents no limit; 255 keeps rows small and
/// rejects obvious garbage (a pasted file) with a clear message.
pub const MAX_TEXT_LEN: usize = 255;

/// Checks a required, human-entered string: present, not blank, at most [`MAX_TEXT_LEN`] characters.
pub(crate) fn required_text(field: &str, value: Option<String>, errors: &mut Vec<String>) -> Option<String> {
    match value {
        None => {
            errors.push(format!("{field} is required"));
            None
        }
        Some(v) => text(field, v, errors),
    }
}

/// Checks a present string: not blank, at most [`MAX_TEXT_LEN`] characters.
pub(crate) fn text(field: &str, value: String, errors: &mut Vec<String>) -> Option<String> {
    if value.trim().is_empty() {
        errors.push(format!("{field} must not be blank"));
        None
    } else if value.chars().count() > MAX_TEXT_LEN {
        errors.push(format!("{field} must be at most {MAX_TEXT_LEN} characters"));
        None
    } else {
        Some(value)
    }
}

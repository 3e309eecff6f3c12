//! Small CSV files a user uploads whole (exchange rates, business metric values): rows read by the service's
//! CSV reader arrive here as `(line, cells)`, and [`parse_rows`] turns them into checked items or into every
//! problem by line, so one bad row refuses the whole file and the user sees all that is wrong at once.
//!
//! A first row that names any known column is a header (columns in any order, optional ones may be
//! missing); otherwise the columns are in [`Column`] order.

use std::collections::HashMap;
use std::hash::Hash;

/// Errors listed before the rest are left out (a wrong file would otherwise answer one per row).
pub const MAX_ERRORS: usize = 20;

/// One column a file may have.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Other header names accepted for it.
    pub aliases: &'static [&'static str],
    /// Whether a header must name it.
    pub required: bool,
}

/// What the files of one kind hold.
pub struct Table<'a> {
    pub columns: &'a [Column],
    /// Most rows a file may hold.
    pub max_rows: usize,
    /// What one row is, plural (`rates`, `values`), for messages.
    pub items: &'a str,
}

/// One row's cells by column (its index in [`Table::columns`]); a missing cell is empty.
pub struct Cells<'a> {
    cells: &'a [String],
    order: &'a [Option<usize>],
}

impl Cells<'_> {
    pub fn get(&self, column: usize) -> &str {
        self.order[column].and_then(|i| self.cells.get(i)).map(|c| c.trim()).unwrap_or_default()
    }
}

/// Reads `rows` as `table` says: `parse` makes an item of a row's cells (or its problems), `key` is what two
/// rows of one file may not share, `clash` says what they shared. Blank rows are skipped; a file with no
/// item is refused.
pub fn parse_rows<T, K: Eq + Hash>(
    table: &Table,
    rows: impl IntoIterator<Item = (u64, Vec<String>)>,
    parse: impl Fn(&Cells) -> Result<T, Vec<String>>,
    key: impl Fn(&T) -> K,
    clash: impl Fn(&T) -> String,
) -> Result<Vec<T>, Vec<String>> {
    let mut rows = rows.into_iter().peekable();
    let mut order: Vec<Option<usize>> = (0..table.columns.len()).map(Some).collect();
    let mut errors = Vec::new();
    if let Some((_, first)) = rows.peek() {
        let names: Vec<String> =
            first.iter().map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()).collect();
        let named = |c: &Column, n: &String| n == c.name || c.aliases.contains(&n.as_str());
        if names.iter().any(|n| table.columns.iter().any(|c| named(c, n))) {
            for (k, column) in table.columns.iter().enumerate() {
                order[k] = names.iter().position(|n| named(column, n));
                if order[k].is_none() && column.required {
                    errors.push(format!("line 1: the header has no column {}", column.name));
                }
            }
            rows.next();
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut items: Vec<T> = Vec::new();
    // What a row set → its line: one file may not say two things about one key.
    let mut seen = HashMap::new();
    for (line, cells) in rows {
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if items.len() + errors.len() >= table.max_rows {
            errors.push(format!("line {line}: a file may hold at most {} {}; split it", table.max_rows, table.items));
            break;
        }
        match parse(&Cells { cells: &cells, order: &order }) {
            Ok(item) => match seen.insert(key(&item), line) {
                Some(first) => errors.push(format!("line {line}: {} is already on line {first}", clash(&item))),
                None => items.push(item),
            },
            Err(problems) => errors.extend(problems.into_iter().map(|p| format!("line {line}: {p}"))),
        }
        if errors.len() >= MAX_ERRORS {
            errors.push("(more errors not shown)".into());
            break;
        }
    }
    if items.is_empty() && errors.is_empty() {
        let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        errors.push(format!("the file has no {}; each row is {}", table.items, columns.join(",")));
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: Table = Table {
        columns: &[
            Column { name: "day", aliases: &["date"], required: true },
            Column { name: "n", aliases: &[], required: true },
            Column { name: "note", aliases: &[], required: false },
        ],
        max_rows: 3,
        items: "numbers",
    };

    fn rows(lines: &[&str]) -> Vec<(u64, Vec<String>)> {
        lines.iter().enumerate().map(|(i, l)| (i as u64 + 1, l.split(',').map(str::to_string).collect())).collect()
    }

    fn read(lines: &[&str]) -> Result<Vec<(String, i64, String)>, Vec<String>> {
        parse_rows(
            &TABLE,
            rows(lines),
            |c| {
                let n = c.get(1).parse::<i64>().map_err(|_| vec![format!("n must be a number, got {:?}", c.get(1))])?;
                Ok((c.get(0).to_string(), n, c.get(2).to_string()))
            },
            |item| item.0.clone(),
            |item| format!("day {}", item.0),
        )
    }

    #[test]
    fn a_header_may_reorder_columns_and_leave_out_optional_ones() {
        assert_eq!(read(&["N, Date", "1,a"]).unwrap(), vec![("a".into(), 1, String::new())]);
        assert_eq!(read(&["a,2,x", "", "b,3"]).unwrap().len(), 2);
        assert_eq!(read(&["n,note", "1,a"]).unwrap_err(), vec!["line 1: the header has no column day"]);
    }

    #[test]
    fn every_bad_line_is_named_and_clashes_name_both_lines() {
        assert_eq!(
            read(&["a,x", "b,1", "b,2"]).unwrap_err(),
            vec!["line 1: n must be a number, got \"x\"", "line 3: day b is already on line 2"]
        );
        assert_eq!(
            read(&["a,1", "b,1", "c,1", "d,1"]).unwrap_err(),
            vec!["line 4: a file may hold at most 3 numbers; split it"]
        );
        assert_eq!(read(&["day,n"]).unwrap_err(), vec!["the file has no numbers; each row is day,n,note"]);
    }
}

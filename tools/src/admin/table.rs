//! [`Table`]: the aligned text tables of the human output, and [`Printer`], which prints a
//! command's result either as such text or as one JSON document (`--json`).
//!
//! Columns are as wide as their widest cell (counted in characters, not bytes, so topic names
//! outside ASCII still line up), separated by two spaces; a column whose cells are all numbers
//! is right-aligned, as `kafka-consumer-groups.sh` and `rpk` do, so offsets compare at a
//! glance. The last column is not padded, so lines carry no trailing spaces.

use std::io::Write;

use serde::Serialize;

use crate::admin::error::AdminError;

/// A table of text cells under a header row.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    ///
    /// # Panics
    /// When the row does not have one cell per column (a bug in the calling command).
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.header.len(),
            "a row must fill every column"
        );
        self.rows.push(cells);
    }

    /// The table as lines of text, each ending in a newline.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        // A column is numeric when every cell is a number or `-` and at least one is a number.
        let mut numeric = vec![true; columns];
        let mut any_number = vec![false; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
                let number = cell.parse::<i64>().is_ok();
                numeric[i] &= number || cell == NO_VALUE;
                any_number[i] |= number;
            }
        }
        for (numeric, any) in numeric.iter_mut().zip(any_number) {
            *numeric &= any;
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == columns;
                if numeric[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// The cell shown for a missing value; it sits in numeric columns without making them text.
pub const NO_VALUE: &str = "-";

/// Where a command's result goes, in the format the operator asked for.
pub struct Printer<'a> {
    json: bool,
    out: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    /// Prints JSON when `json`, human text otherwise, to `out`.
    pub fn new(json: bool, out: &'a mut dyn Write) -> Self {
        Self { json, out }
    }

    /// Whether the output is JSON (commands print nothing else then).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes `text` and a newline as it is (commands that print as they go; see
    /// [`Printer::flush`]).
    ///
    /// # Errors
    /// [`AdminError::Output`] when writing fails.
    pub fn line(&mut self, text: &str) -> Result<(), AdminError> {
        writeln!(self.out, "{text}").map_err(AdminError::Output)
    }

    /// Sends what was written on (after a command's lines for one step).
    ///
    /// # Errors
    /// [`AdminError::Output`] when writing fails.
    pub fn flush(&mut self) -> Result<(), AdminError> {
        self.out.flush().map_err(AdminError::Output)
    }

    /// Prints `value` as one JSON document, or the text `human` makes of it.
    ///
    /// # Errors
    /// [`AdminError::Output`] when writing fails.
    pub fn print<T: Serialize>(
        &mut self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> Result<(), AdminError> {
        let text = if self.json {
            let mut doc = serde_json::to_string_pretty(value)
                .map_err(|e| AdminError::Output(std::io::Error::other(e)))?;
            doc.push('\n');
            doc
        } else {
            human(value)
        };
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(AdminError::Output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let mut t = Table::new(&["TOPIC", "PARTITION", "END"]);
        t.row(vec!["orders".into(), "0".into(), "12345".into()]);
        t.row(vec!["ünï".into(), "10".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "TOPIC   PARTITION    END\n\
             orders          0  12345\n\
             ünï            10      -\n"
        );
    }

    #[test]
    fn a_column_of_dashes_is_text() {
        let mut t = Table::new(&["NODE", "RACK", "CONTROLLER"]);
        t.row(vec!["0".into(), "-".into(), "yes".into()]);
        assert_eq!(t.render(), "NODE  RACK  CONTROLLER\n   0  -     yes\n");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        let t = Table::new(&["GROUP", "STATE"]);
        assert_eq!(t.render(), "GROUP  STATE\n");
    }

    #[test]
    fn json_output_is_one_document() {
        let mut out = Vec::new();
        Printer::new(true, &mut out)
            .print(&vec![1, 2], |_| unreachable!())
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc, serde_json::json!([1, 2]));
    }
}

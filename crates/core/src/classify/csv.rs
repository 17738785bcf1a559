//! CSV (RFC 4180) into labelled examples: quoted fields may hold commas, quotes (`""`) and
//! line breaks; a UTF-8 byte-order mark and CRLF line ends are accepted. Every bad row is
//! named by its line number (the line the row starts on, the header being line 1).

use super::readable;
use super::train::Example;

/// A parsed CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    /// Each row with the line it starts on.
    pub rows: Vec<(usize, Vec<String>)>,
}

/// Why a file does not give examples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("the file is empty")]
    Empty,
    #[error("line {0}: a quoted field is never closed")]
    Unclosed(usize),
    #[error(
        "line {line}: a quote in the middle of an unquoted field or text after a closing quote"
    )]
    StrayQuote { line: usize },
    #[error("no column {name:?} (the header has {header})")]
    NoColumn { name: String, header: String },
    #[error("{count} row(s) {problem} ({})", lines_list(.lines, *.count))]
    BadRows {
        problem: &'static str,
        count: usize,
        /// The first few lines.
        lines: Vec<usize>,
    },
    #[error("no data rows")]
    NoRows,
}

fn lines_list(lines: &[usize], count: usize) -> String {
    let mut s = String::from("line");
    if count > 1 {
        s.push('s');
    }
    s.push(' ');
    s.push_str(
        &lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if count > lines.len() {
        s.push_str(", …");
    }
    s
}

/// Parses CSV text (header first).
pub fn parse(text: &str) -> Result<Table, DataError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    let mut quoted = false; // inside quotes
    let mut was_quoted = false; // this field was quoted (closing quote seen)
    let mut any = false; // the current row has content
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    was_quoted = true;
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                any = true;
            }
            '"' => return Err(DataError::StrayQuote { line }),
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if any || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    rows.push((row_line, std::mem::take(&mut fields)));
                }
                was_quoted = false;
                any = false;
                line += 1;
                row_line = line;
            }
            _ if was_quoted => return Err(DataError::StrayQuote { line }),
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(DataError::Unclosed(row_line));
    }
    if any || !field.is_empty() {
        fields.push(field);
        rows.push((row_line, fields));
    }
    let mut it = rows.into_iter();
    let (_, header) = it.next().ok_or(DataError::Empty)?;
    let header = header.into_iter().map(|h| h.trim().to_string()).collect();
    Ok(Table {
        header,
        rows: it.collect(),
    })
}

impl Table {
    fn column(&self, name: &str) -> Result<usize, DataError> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::NoColumn {
                name: name.to_string(),
                header: self.header.join(","),
            })
    }

    /// The examples: the text columns joined by a newline, the label column trimmed.
    /// Refused, with the rows named: rows of another width, rows without a label, rows
    /// whose text is empty or only punctuation. With `need_labels` false the label may be
    /// empty (texts to predict).
    pub fn examples(
        &self,
        text_cols: &[&str],
        label_col: &str,
        need_labels: bool,
    ) -> Result<Vec<Example>, DataError> {
        let cols = text_cols
            .iter()
            .map(|c| self.column(c.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let label = self.column(label_col)?;
        if self.rows.is_empty() {
            return Err(DataError::NoRows);
        }
        let mut width = Vec::new();
        let mut unlabelled = Vec::new();
        let mut empty = Vec::new();
        let mut out = Vec::with_capacity(self.rows.len());
        for (line, f) in &self.rows {
            if f.len() != self.header.len() {
                width.push(*line);
                continue;
            }
            let text = cols
                .iter()
                .map(|&c| f[c].trim())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            let l = f[label].trim();
            if need_labels && l.is_empty() {
                unlabelled.push(*line);
            }
            if readable(&text).is_err() {
                empty.push(*line);
            }
            out.push(Example {
                text,
                label: l.to_string(),
            });
        }
        let bad = |problem, lines: Vec<usize>| DataError::BadRows {
            problem,
            count: lines.len(),
            lines: lines.into_iter().take(10).collect(),
        };
        if !width.is_empty() {
            return Err(bad("do not have as many fields as the header", width));
        }
        if !unlabelled.is_empty() {
            return Err(bad("have no label", unlabelled));
        }
        if !empty.is_empty() {
            return Err(bad(
                "have no text to read (empty, or only punctuation or emoji)",
                empty,
            ));
        }
        Ok(out)
    }
}

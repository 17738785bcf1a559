//! Staff corrections for retraining (智能分拨, issue 14): every `classify` in a case log is
//! a label a person gave a citizen's text. `cityos classify corrections` writes them as a
//! CSV (`text,label,suggested,score,case,at`: the first report's text, the category staff
//! picked, what the model had suggested and its score, the case number and the time of
//! the pick); `cityos classify train --corrections FILE` adds those rows to the training
//! examples, so that the model learns the district's own usage.
//!
//! The file holds citizens' words: it is personal data of the district. It is written in
//! the data directory by default, readable by its owner only, and never leaves it;
//! phone numbers, ID numbers and e-mail addresses are masked in it.

use cityos_core::case::{Case, Change, LogEntry, Report};
use cityos_core::classify::csv::parse;
use cityos_core::classify::train::Example;
use cityos_core::privacy::mask_personal;
use cityos_core::time::format_rfc3339;
use cityos_engine::query::Sql;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_engine::{Store, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The header of a corrections file.
pub const HEADER: &str = "text,label,suggested,score,case,at";

/// The default corrections file inside a data directory.
pub const DEFAULT_FILE: &str = "classify-corrections.csv";

/// One staff label.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    pub text: String,
    pub label: String,
    pub suggested: String,
    pub score: Option<f32>,
    pub case: String,
    pub at: i64,
}

/// Every classified case of the store: its first report's text (personal data masked),
/// the category of its latest `classify`, the suggestion it had; ordered by case.
pub fn collect(store: &mut dyn Store) -> Result<Vec<Correction>, StoreError> {
    let ids = store.query_groups(&Sql {
        text: "SELECT 'classified', CAST(case_id AS BIGINT), CAST(MAX(seq) AS BIGINT) FROM case_log WHERE action = 'classify' GROUP BY case_id ORDER BY case_id".into(),
        params: vec![],
    })?;
    let mut out = Vec::with_capacity(ids.len());
    for (_, id, _) in ids {
        let Some(case) = store.load_case(id)? else {
            continue;
        };
        let log = store.load_log(id)?;
        let reports = store.reports_of(id)?;
        if let Some(c) = correction(&case, &log, &reports) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The correction a case's log records, if staff classified it.
pub fn correction(case: &Case, log: &[LogEntry], reports: &[Report]) -> Option<Correction> {
    let (entry, label) = log.iter().rev().find_map(|e| {
        (e.action == "classify").then_some(())?;
        e.changes.iter().find_map(|c| match c {
            Change::Categorised { category, .. } => Some((e, category.clone())),
            _ => None,
        })
    })?;
    let first = case.reports.first().copied();
    let report = reports
        .iter()
        .min_by_key(|r| (Some(r.id) != first, r.at, r.id))?;
    let s = case.suggestion.as_deref();
    Some(Correction {
        text: mask_personal(report.text.trim()),
        label,
        suggested: s.map(|s| s.category.clone()).unwrap_or_default(),
        score: s.map(|s| s.score),
        case: case.number.clone(),
        at: entry.at,
    })
}

fn field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The CSV text of `rows` (every field quoted; text may hold commas and line breaks).
pub fn to_csv(rows: &[Correction]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            field(&r.text),
            field(&r.label),
            field(&r.suggested),
            r.score.map(|x| format!("{x:.3}")).unwrap_or_default(),
            field(&r.case),
            field(&format_rfc3339(r.at)),
        ));
    }
    s
}

/// `cityos classify corrections`: the store of `data_dir` (or `db`) → `out` (default:
/// `DATA_DIR/classify-corrections.csv`), written whole or not at all, owner-readable only.
pub fn export_cmd(data_dir: &Path, db: Option<&str>, out: Option<PathBuf>) -> Result<(), String> {
    let mut store: Box<dyn Store> = match db {
        Some(url) => cityos_engine::open_store(url).map_err(|e| e.to_string())?,
        None => {
            let path = data_dir.join("cityos.db");
            if !path.exists() {
                return Err(format!(
                    "{}: no store here (give the data directory the server runs on with --data-dir, or --db URL)",
                    path.display()
                ));
            }
            Box::new(
                SqliteStore::open_secondary(&path, Durability::Normal)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            )
        }
    };
    let rows = collect(store.as_mut()).map_err(|e| e.to_string())?;
    let out = out.unwrap_or_else(|| data_dir.join(DEFAULT_FILE));
    let tmp = out.with_extension("csv.tmp");
    write_private(&tmp, to_csv(&rows).as_bytes())
        .and_then(|_| std::fs::rename(&tmp, &out))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let taken = rows
        .iter()
        .filter(|r| !r.suggested.is_empty() && r.suggested == r.label)
        .count();
    let suggested = rows.iter().filter(|r| !r.suggested.is_empty()).count();
    println!(
        "wrote {} staff labels to {} ({} took the model's suggestion, {} corrected it, {} had none); the file holds citizens' words: keep it in the data directory",
        rows.len(),
        out.display(),
        taken,
        suggested - taken,
        rows.len() - suggested
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A text file's contents; unreadable or not UTF-8 named with the file.
pub fn read_utf8(path: &std::path::Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The training examples of corrections files (columns `text` and `label`); a file that
/// is not a corrections file is refused with its name and the problem.
pub fn load(files: &[PathBuf]) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for path in files {
        let text = read_utf8(path)?;
        let table = parse(&text)
            .map_err(|e| format!("{}: not a corrections file ({HEADER}): {e}", path.display()))?;
        let rows = match table.examples(&["text"], "label", true) {
            Ok(rows) => rows,
            // A file with only the header: no staff labels yet.
            Err(cityos_core::classify::csv::DataError::NoRows) => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "{}: not a corrections file ({HEADER}): {e}",
                    path.display()
                ))
            }
        };
        out.extend(rows);
    }
    Ok(out)
}

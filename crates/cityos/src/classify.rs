//! `cityos classify train | eval | predict`: the citizen-text classifier of
//! `cityos_core::classify` from the command line. The model lives in the data directory as
//! `classifier.model`; messages used for training are read from the file given, at run
//! time, and never copied anywhere else.

use cityos_core::classify::calibrate::Fit;
use cityos_core::classify::csv::{parse, Table};
use cityos_core::classify::eval::{cross_validate, Metrics};
use cityos_core::classify::train::Example;
use cityos_core::classify::{train, Model, ModelError, Scratch, TrainOptions};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

/// The model file inside a data directory.
pub const MODEL_FILE: &str = "classifier.model";

/// Which columns of the CSV hold the text and the label.
pub struct Columns {
    pub text_cols: String,
    pub label_col: String,
}

/// The training settings `eval` can try (the defaults are those `train` uses, chosen by
/// measurement: BENCHMARKS.md).
#[derive(clap::Args)]
pub struct Tuning {
    /// The SVM's cost C.
    #[arg(long)]
    pub c: Option<f32>,
    /// Character n-gram lengths, e.g. 1-3.
    #[arg(long)]
    pub ngrams: Option<String>,
    /// Buckets seen in fewer training messages get no weight.
    #[arg(long)]
    pub min_df: Option<u32>,
    /// Smoothing of the naive-Bayes feature scaling (0: no scaling, a plain SVM).
    #[arg(long)]
    pub nb_alpha: Option<f32>,
    /// Leading characters whose n-grams also count apart (0: none).
    #[arg(long)]
    pub head: Option<u16>,
    /// Weigh every class's errors alike instead of balancing the classes.
    #[arg(long)]
    pub unbalanced: bool,
    /// Share of a plain SVM mixed into each class's NBSVM scorer (0..1; 0: none).
    #[arg(long)]
    pub plain_mix: Option<f32>,
    /// Longest n-gram counted near the start (0: as long as the others).
    #[arg(long)]
    pub head_max_n: Option<u8>,
    /// Internal folds the score's calibration is fitted on (0: none, a fixed scale).
    #[arg(long)]
    pub calib_folds: Option<u32>,
    /// What the calibration fits besides the scale: scale (nothing else), bias, cross.
    #[arg(long)]
    pub calib_fit: Option<String>,
}

impl Tuning {
    pub fn options(&self, seed: u64) -> Result<TrainOptions, String> {
        let mut o = TrainOptions {
            seed,
            ..Default::default()
        };
        if let Some(c) = self.c {
            if !(c > 0.0 && c.is_finite()) {
                return Err(format!("--c must be a positive number, not {c}"));
            }
            o.c = c;
        }
        if let Some(n) = &self.ngrams {
            let bad = || format!("--ngrams wants two lengths like 1-3 (1 to 8), not {n:?}");
            let (a, b) = n.split_once('-').ok_or_else(bad)?;
            let (a, b): (u8, u8) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a == 0 || b < a || b > 8 {
                return Err(bad());
            }
            o.features.min_n = a;
            o.features.max_n = b;
        }
        if let Some(m) = self.min_df {
            o.min_df = m;
        }
        if let Some(a) = self.nb_alpha {
            if !(a >= 0.0 && a.is_finite()) {
                return Err(format!("--nb-alpha must be 0 or more, not {a}"));
            }
            o.nb_alpha = (a > 0.0).then_some(a);
        }
        if let Some(h) = self.head {
            o.features.head = h;
        }
        if let Some(m) = self.plain_mix {
            if !(0.0..=1.0).contains(&m) {
                return Err(format!("--plain-mix must be between 0 and 1, not {m}"));
            }
            o.plain_mix = m;
        }
        if let Some(n) = self.head_max_n {
            if n > 8 {
                return Err(format!("--head-max-n must be 0 to 8, not {n}"));
            }
            o.features.head_max_n = n;
        }
        if let Some(f) = self.calib_folds {
            if f == 1 || f > 20 {
                return Err(format!(
                    "--calib-folds must be 0 (no calibration) or 2 to 20, not {f}"
                ));
            }
            o.calib_folds = f;
        }
        if let Some(f) = &self.calib_fit {
            o.calib_fit = match f.as_str() {
                "scale" => Fit::Scale,
                "bias" => Fit::Bias,
                "cross" => Fit::Cross,
                _ => {
                    return Err(format!(
                        "--calib-fit must be scale, bias or cross, not {f:?}"
                    ))
                }
            };
        }
        o.balanced = !self.unbalanced;
        Ok(o)
    }
}

/// Reads a CSV file and its labelled examples, every problem named with the file.
pub fn load_examples(path: &Path, cols: &Columns) -> Result<Vec<Example>, String> {
    let text = crate::corrections::read_utf8(path)?;
    let table: Table = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let text_cols: Vec<&str> = cols.text_cols.split(',').collect();
    table
        .examples(&text_cols, cols.label_col.trim(), true)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the model of a data directory: missing or corrupt is a [`ModelError`].
pub fn load_model(data: &Path) -> Result<Model, ModelError> {
    let path = data.join(MODEL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Missing(path.display().to_string()))
        }
        Err(e) => return Err(ModelError::Malformed(format!("{}: {e}", path.display()))),
    };
    Model::from_bytes(&bytes)
}

/// `cityos classify train`.
pub fn train_cmd(
    data_file: &Path,
    cols: &Columns,
    data: &Path,
    seed: u64,
    corrections: &[std::path::PathBuf],
) -> Result<(), String> {
    let mut examples = load_examples(data_file, cols)?;
    let staff = crate::corrections::load(corrections)?;
    if !corrections.is_empty() {
        println!("{} staff corrections added", staff.len());
    }
    examples.extend(staff);
    let started = Instant::now();
    let o = TrainOptions {
        seed,
        ..Default::default()
    };
    let model = train(&examples, &o).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = model.to_bytes();
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let path = data.join(MODEL_FILE);
    let tmp = data.join(format!("{MODEL_FILE}.tmp"));
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "trained on {} messages, {} labels ({}), in {:.1} s; wrote {} ({} bytes)",
        examples.len(),
        model.labels.len(),
        model.labels.join(", "),
        secs,
        path.display(),
        bytes.len()
    );
    let cal = model.calibration();
    println!(
        "scores calibrated on {}-fold out-of-fold margins: scale {:.3}, bias {}",
        o.calib_folds,
        cal.scale,
        cal.bias
            .iter()
            .map(|b| format!("{b:+.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// `cityos classify eval`: k-fold cross-validation on the file.
pub fn eval_cmd(
    data_file: &Path,
    cols: &Columns,
    folds: usize,
    o: TrainOptions,
    json: bool,
) -> Result<(), String> {
    if folds < 2 {
        return Err(format!("--folds must be at least 2, not {folds}"));
    }
    let examples = load_examples(data_file, cols)?;
    if folds > examples.len() {
        return Err(format!(
            "--folds {folds} is more than the {} rows",
            examples.len()
        ));
    }
    let started = Instant::now();
    let m = cross_validate(&examples, folds, &o).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    print_metrics(&m);
    println!(
        "{} messages, {folds} stratified folds, {:.1} s",
        examples.len(),
        secs
    );
    if json {
        println!("{}", metrics_json(&m, folds, examples.len()));
    }
    Ok(())
}

fn print_metrics(m: &Metrics) {
    let w = m
        .labels
        .iter()
        .map(|l| l.chars().count() * 2)
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<w$}  precision  recall     f1  support", "class");
    for c in &m.per_class {
        let pad = w.saturating_sub(c.label.chars().count() * 2);
        println!(
            "{}{}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}",
            c.label,
            " ".repeat(pad),
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    println!("accuracy {:.4}   macro-F1 {:.4}", m.accuracy, m.macro_f1);
    println!("confusion matrix (rows: true, columns: predicted, in the order above):");
    for row in &m.confusion {
        println!(
            "  {}",
            row.iter().map(|x| format!("{x:>5}")).collect::<String>()
        );
    }
    let r = &m.reliability;
    println!(
        "score calibration: ECE {:.4} (10 bins), mean score {:.4} against accuracy {:.4}",
        r.ece, r.mean_score, r.accuracy
    );
    println!("  score ≥   messages   accuracy among them");
    for t in &r.thresholds {
        println!(
            "  {:>7.1}   {:>7.1} %   {:>8.1} %",
            t.threshold,
            t.share * 100.0,
            t.accuracy * 100.0
        );
    }
    println!("  score bin   messages   mean score   accuracy");
    for b in r.bins.iter().filter(|b| b.count > 0) {
        println!(
            "  {:.1}–{:.1}   {:>8}   {:>10.3}   {:>8.3}",
            b.lower,
            b.lower + 0.1,
            b.count,
            b.mean_score,
            b.accuracy
        );
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn metrics_json(m: &Metrics, folds: usize, n: usize) -> serde_json::Value {
    serde_json::json!({
        "messages": n,
        "folds": folds,
        "macro_f1": round4(m.macro_f1),
        "accuracy": round4(m.accuracy),
        "labels": m.labels,
        "per_class": m.per_class.iter().map(|c| serde_json::json!({
            "label": c.label, "precision": round4(c.precision), "recall": round4(c.recall),
            "f1": round4(c.f1), "support": c.support
        })).collect::<Vec<_>>(),
        "confusion": m.confusion,
        "calibration": {
            "ece": round4(m.reliability.ece),
            "mean_score": round4(m.reliability.mean_score),
            "thresholds": m.reliability.thresholds.iter().map(|t| serde_json::json!({
                "threshold": t.threshold, "share": round4(t.share), "accuracy": round4(t.accuracy)
            })).collect::<Vec<_>>(),
            "bins": m.reliability.bins.iter().map(|b| serde_json::json!({
                "lower": b.lower, "count": b.count, "mean_score": round4(b.mean_score),
                "accuracy": round4(b.accuracy)
            })).collect::<Vec<_>>(),
        },
    })
}

/// `cityos classify predict`: one text per line on stdin → one JSON object per line on
/// stdout; a line that cannot be read answers `{"line":…,"error":…}` and the rest go on.
pub fn predict_cmd(data: &Path) -> Result<(), String> {
    let model = load_model(data).map_err(|e| e.to_string())?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut s = Scratch::default();
    for (i, line) in stdin.lock().split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let text = String::from_utf8_lossy(&line);
        let v = match model.predict_with(&text, 3, &mut s) {
            Ok(p) => serde_json::json!({
                "line": i + 1,
                "label": p.label,
                "score": round4(p.score as f64),
                "margin": round4(p.margin as f64),
                "top": p.top.iter().map(|(l, s)| serde_json::json!({"label": l, "score": round4(*s as f64)})).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"line": i + 1, "error": e.to_string()}),
        };
        writeln!(out, "{v}").map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    Ok(())
}
